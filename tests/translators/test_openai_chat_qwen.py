"""openai_chat.request_from_anthropic(thinking_format="qwen"): DashScope / Qwen3 thinking.

Alibaba Cloud Model Studio docs, "Deep thinking": top-level ``enable_thinking`` (bool) and
``thinking_budget`` (tokens); earlier reasoning travels as the assistant's
``reasoning_content``. Claude Code sends ``thinking: {"type": "adaptive"}``, which leaves
the model's own default (no enable_thinking) on a stream. A non-streaming request always
says ``enable_thinking: false``: DashScope's open-source Qwen3 models refuse it otherwise.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from aimw.translators import openai_chat as oc
from aimw.translators.anthropic import messages as a
from tests.shared_data import corpus_bodies

MODEL = "qwen3-max"
QWEN_KEYS = {"enable_thinking", "thinking_budget"}


def translate(body: dict | bytes, thinking_format: str = "qwen", **kwargs: Any) -> dict:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return json.loads(
        oc.request_from_anthropic(a.request_decoder.decode(raw), MODEL, thinking_format=thinking_format, **kwargs)
    )


def body(messages: list | None = None, **fields: Any) -> dict:
    """A streamed request (Qwen3 thinks only on streams), like Claude Code's."""
    return {
        "model": "claude-x",
        "max_tokens": 100,
        "stream": True,
        "messages": messages or [{"role": "user", "content": "hi"}],
        **fields,
    }


def assert_no_anthropic_thinking(out: dict) -> None:
    encoded = json.dumps(out)
    for key in ('"thinking"', '"budget_tokens"', '"signature"', '"redacted_thinking"', '"display"'):
        assert key not in encoded, key


# ---------------------------------------------------------------- the thinking setting


@pytest.mark.parametrize("budget", [1024, 2048, 31999])
def test_enabled_sends_enable_thinking_and_the_budget(budget):
    out = translate(body(max_tokens=32000, thinking={"type": "enabled", "budget_tokens": budget}))
    assert out["enable_thinking"] is True
    assert out["thinking_budget"] == budget
    assert isinstance(out["thinking_budget"], int)
    assert_no_anthropic_thinking(out)


def test_enabled_without_a_budget_sends_no_budget():
    out = translate(body(thinking={"type": "enabled"}))
    assert out["enable_thinking"] is True
    assert "thinking_budget" not in out


def test_disabled_sends_enable_thinking_false():
    out = translate(body(thinking={"type": "disabled"}))
    assert out["enable_thinking"] is False
    assert "thinking_budget" not in out
    assert_no_anthropic_thinking(out)


@pytest.mark.parametrize("thinking", [{"type": "adaptive"}, {"type": "adaptive", "display": "omitted"}])
def test_adaptive_leaves_the_models_default(thinking):
    out = translate(body(thinking=thinking))
    assert not QWEN_KEYS & set(out)
    assert_no_anthropic_thinking(out)


def test_no_thinking_field_sends_nothing():
    assert not QWEN_KEYS & set(translate(body()))


@pytest.mark.parametrize(
    "thinking", [{"type": "enabled", "budget_tokens": 2048}, {"type": "disabled"}, {"type": "adaptive"}]
)
def test_thinking_format_none_drops_the_setting(thinking):
    out = translate(body(thinking=thinking), thinking_format="none")
    assert not QWEN_KEYS & set(out)
    assert_no_anthropic_thinking(out)
    default = json.loads(
        oc.request_from_anthropic(a.request_decoder.decode(json.dumps(body(thinking=thinking)).encode()), MODEL)
    )
    assert out == default  # "none" is the default


def test_the_rest_of_the_request_is_unchanged_by_qwen():
    request = body(
        [{"role": "user", "content": "weather in Paris?"}],
        system="Be brief.",
        stream=True,
        temperature=0.7,
        thinking={"type": "enabled", "budget_tokens": 4096},
        tools=[{"name": "get_weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}],
    )
    qwen = translate(request)
    plain = translate(request, thinking_format="none")
    assert {k: v for k, v in qwen.items() if k not in QWEN_KEYS} == plain
    assert list(qwen)[-2:] == ["enable_thinking", "thinking_budget"]


def test_max_completion_tokens_field_still_applies():
    out = translate(body(thinking={"type": "enabled", "budget_tokens": 50}), max_tokens_field="max_completion_tokens")
    assert out["max_completion_tokens"] == 100 and "max_tokens" not in out
    assert out["thinking_budget"] == 50


# ---------------------------------------------------------------- earlier thinking in assistant turns


def history(*assistant_blocks: dict) -> dict:
    return body(
        [
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": list(assistant_blocks)},
            {"role": "user", "content": "and tomorrow?"},
        ],
        thinking={"type": "enabled", "budget_tokens": 2000},
    )


def test_assistant_thinking_becomes_reasoning_content():
    out = translate(
        history(
            {"type": "thinking", "thinking": "First, the city.", "signature": "SIG-1"},
            {"type": "text", "text": "Sunny."},
        )
    )
    assistant = out["messages"][1]
    assert assistant == {"role": "assistant", "content": "Sunny.", "reasoning_content": "First, the city."}
    assert "SIG-1" not in json.dumps(out)


def test_several_thinking_blocks_are_joined_in_order():
    out = translate(
        history(
            {"type": "thinking", "thinking": "step one", "signature": "s1"},
            {"type": "text", "text": "Let me check."},
            {"type": "redacted_thinking", "data": "REDACTED-BLOB"},
            {"type": "thinking", "thinking": "step two", "signature": "s2"},
            {"type": "text", "text": "Sunny."},
        )
    )
    assistant = out["messages"][1]
    assert assistant["reasoning_content"] == "step one\n\nstep two"
    assert assistant["content"] == "Let me check.\n\nSunny."
    assert "REDACTED-BLOB" not in json.dumps(out)


def test_empty_thinking_blocks_are_ignored():
    out = translate(
        history(
            {"type": "thinking", "thinking": "", "signature": "s0"},
            {"type": "thinking", "thinking": "real", "signature": "s1"},
            {"type": "thinking", "thinking": "", "signature": "s2"},
            {"type": "text", "text": "ok"},
        )
    )
    assert out["messages"][1]["reasoning_content"] == "real"

    out = translate(history({"type": "thinking", "thinking": "", "signature": "s0"}, {"type": "text", "text": "ok"}))
    assert out["messages"][1] == {"role": "assistant", "content": "ok"}


def test_only_redacted_thinking_sends_no_reasoning_content():
    out = translate(history({"type": "redacted_thinking", "data": "blob"}, {"type": "text", "text": "ok"}))
    assert out["messages"][1] == {"role": "assistant", "content": "ok"}


def test_thinking_with_a_tool_call():
    out = translate(
        body(
            [
                {"role": "user", "content": "weather?"},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "thinking", "thinking": "I need the tool.", "signature": "s"},
                        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
                    ],
                },
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "16C"}]},
            ],
            tools=[{"name": "get_weather", "input_schema": {"type": "object"}}],
        )
    )
    assistant = out["messages"][1]
    assert assistant["reasoning_content"] == "I need the tool."
    assert assistant.get("content") is None
    assert [call["function"]["name"] for call in assistant["tool_calls"]] == ["get_weather"]
    assert out["messages"][2] == {"role": "tool", "tool_call_id": "toolu_1", "content": "16C"}


def test_thinking_alone_keeps_an_empty_content():
    out = translate(history({"type": "thinking", "thinking": "hmm", "signature": "s"}))
    assert out["messages"][1] == {"role": "assistant", "content": "", "reasoning_content": "hmm"}


def test_string_assistant_content_has_no_reasoning():
    out = translate(
        body(
            [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}]
        )
    )
    assert out["messages"][1] == {"role": "assistant", "content": "b"}


def test_thinking_format_none_drops_earlier_thinking():
    out = translate(
        history(
            {"type": "thinking", "thinking": "SECRET-REASONING", "signature": "s"}, {"type": "text", "text": "Sunny."}
        ),
        thinking_format="none",
    )
    assert out["messages"][1] == {"role": "assistant", "content": "Sunny."}
    assert "SECRET-REASONING" not in json.dumps(out)
    assert not QWEN_KEYS & set(out)


# ---------------------------------------------------------------- the Claude Code corpus

CORPUS = [path for path in corpus_bodies() if "count_tokens" not in path.name]


def test_the_corpus_sends_adaptive_thinking():
    assert len(CORPUS) >= 15
    kinds = {json.loads(path.read_bytes()).get("thinking", {}).get("type") for path in CORPUS}
    assert kinds == {"adaptive"}


@pytest.mark.parametrize("path", CORPUS, ids=[path.name.split("-")[0] for path in CORPUS])
def test_corpus_adaptive_leaves_thinking_alone_on_streams(path):
    raw = path.read_bytes()
    qwen = translate(raw)
    if json.loads(raw).get("stream"):
        assert not QWEN_KEYS & set(qwen)
    else:  # Claude Code's non-streaming fallback
        assert qwen.pop("enable_thinking") is False and "thinking_budget" not in qwen
    assert_no_anthropic_thinking(qwen)
    # the corpus holds no thinking blocks: qwen changes nothing else
    assert qwen == translate(raw, thinking_format="none")
    assert all("reasoning_content" not in message for message in qwen["messages"])


@pytest.mark.parametrize("path", CORPUS[:5], ids=[path.name.split("-")[0] for path in CORPUS[:5]])
def test_corpus_with_thinking_enabled_or_disabled(path):
    raw = json.loads(path.read_bytes())
    enabled = translate({**raw, "thinking": {"type": "enabled", "budget_tokens": 8000}})
    assert (enabled["enable_thinking"], enabled["thinking_budget"]) == (True, 8000)
    disabled = translate({**raw, "thinking": {"type": "disabled"}})
    assert disabled["enable_thinking"] is False and "thinking_budget" not in disabled
    base = translate(raw)
    assert {k: v for k, v in enabled.items() if k not in QWEN_KEYS} == base
    assert {k: v for k, v in disabled.items() if k not in QWEN_KEYS} == base


# ---------------------------------------------------------------- the answer side (reasoning_content back)


def test_qwen_reasoning_content_comes_back_as_thinking():
    answer = json.dumps(
        {
            "id": "chatcmpl-q",
            "model": MODEL,
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": "4", "reasoning_content": "2 + 2 is 4."},
                }
            ],
            "usage": {
                "prompt_tokens": 9,
                "completion_tokens": 30,
                "completion_tokens_details": {"reasoning_tokens": 25},
            },
        }
    ).encode()
    translated = oc.response_to_anthropic(answer, MODEL)
    message = json.loads(translated.body)
    assert [block["type"] for block in message["content"]] == ["thinking", "text"]
    assert message["content"][0]["thinking"] == "2 + 2 is 4."
    assert translated.usage.reasoning_tokens == 25


def test_thinking_budget_never_exceeds_max_tokens() -> None:
    """A max_tokens capped by AIMW_MAX_TOKENS (or DashScope's 8192) caps the budget with it."""
    capped = translate(body(max_tokens=8192, thinking={"type": "enabled", "budget_tokens": 20000}))
    assert capped["thinking_budget"] == 8192
    kept = translate(body(max_tokens=8192, thinking={"type": "enabled", "budget_tokens": 2048}))
    assert kept["thinking_budget"] == 2048


@pytest.mark.parametrize(
    "thinking", [{"type": "enabled", "budget_tokens": 1024}, {"type": "disabled"}, {"type": "adaptive"}, None]
)
def test_a_non_streaming_request_always_disables_thinking(thinking) -> None:
    """DashScope's open-source Qwen3 models refuse a non-streaming call unless it says
    enable_thinking false ("parameter.enable_thinking must be set to false for non-streaming calls")."""
    fields = {"thinking": thinking} if thinking else {}
    out = translate(body(max_tokens=4096, stream=False, **fields))
    assert out["enable_thinking"] is False
    assert "thinking_budget" not in out
    assert_no_anthropic_thinking(out)
    assert not QWEN_KEYS & set(translate(body(max_tokens=4096, stream=False, **fields), thinking_format="none"))
