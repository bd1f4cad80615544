"""token_estimate: estimate_input_tokens monotone in what the request holds and sane on the
corpus; the usage of a stream cut short (usage_so_far) estimated only where the provider said nothing."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from aimw.exchange import Usage
from aimw.token_estimate import (
    CHARS_PER_TOKEN,
    IMAGE_TOKENS,
    estimate_input_tokens,
    estimate_output_tokens,
    usage_so_far,
)
from aimw.translators.anthropic import messages as a
from tests.shared_data import CORPUS


def estimate(body: dict | bytes) -> int:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return estimate_input_tokens(a.request_decoder.decode(raw))


def request(messages: list | None = None, **fields: Any) -> dict:
    return {
        "model": "m",
        "messages": messages if messages is not None else [{"role": "user", "content": "hello"}],
        **fields,
    }


IMAGE = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo" * 50}}
TOOL = {
    "name": "get_weather",
    "description": "Get the weather for a city, in Celsius.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def test_at_least_one_token() -> None:
    assert estimate(request([])) >= 1
    assert estimate(request([{"role": "user", "content": ""}])) >= 1


def test_grows_with_system() -> None:
    base = estimate(request())
    short = estimate(request(system="You are terse."))
    long = estimate(request(system="You are terse. " * 200))
    assert base < short < long
    # a system given as blocks counts like the same text as a string
    as_blocks = estimate(request(system=[{"type": "text", "text": "You are terse. " * 100}] * 2))
    assert as_blocks == pytest.approx(long, abs=2)


def test_grows_with_messages_and_their_length() -> None:
    one = estimate(request([{"role": "user", "content": "hello"}]))
    two = estimate(request([{"role": "user", "content": "hello"}, {"role": "assistant", "content": "hi"}]))
    longer = estimate(request([{"role": "user", "content": "hello " * 1000}]))
    assert one < two
    assert one < longer
    # text is counted at a few characters per token, not per character or per word
    assert 6000 / 8 < longer < 6000 / 2


def test_grows_with_tools() -> None:
    none = estimate(request())
    one = estimate(request(tools=[TOOL]))
    two = estimate(request(tools=[TOOL, {**TOOL, "name": "get_time"}]))
    bare = estimate(request(tools=[{"name": "get_weather"}]))
    assert none < bare < one < two


def test_each_image_adds_image_tokens() -> None:
    text = [{"type": "text", "text": "what is this?"}]
    without = estimate(request([{"role": "user", "content": text}]))
    one = estimate(request([{"role": "user", "content": [*text, IMAGE]}]))
    two = estimate(request([{"role": "user", "content": [*text, IMAGE, IMAGE]}]))
    assert one - without == IMAGE_TOKENS
    assert two - without == 2 * IMAGE_TOKENS
    # the base64 payload is not counted as text
    assert IMAGE_TOKENS > 100


def test_images_inside_tool_results_count() -> None:
    def with_result(content: Any) -> dict:
        return request(
            [
                {"role": "user", "content": "shot"},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "shot", "input": {}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": content}]},
            ]
        )

    without = estimate(with_result([{"type": "text", "text": "done"}]))
    with_image = estimate(with_result([{"type": "text", "text": "done"}, IMAGE]))
    assert with_image - without == IMAGE_TOKENS


def test_tool_use_tool_result_and_thinking_text_count() -> None:
    def turn(input_: dict, result: str, thinking: str) -> dict:
        return request(
            [
                {"role": "user", "content": "go"},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "thinking", "thinking": thinking, "signature": "s"},
                        {"type": "tool_use", "id": "t", "name": "Bash", "input": input_},
                    ],
                },
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": result}]},
            ]
        )

    base = estimate(turn({}, "", ""))
    assert estimate(turn({"command": "x" * 400}, "", "")) > base + 50
    assert estimate(turn({}, "y" * 400, "")) > base + 50
    assert estimate(turn({}, "", "z" * 400)) > base + 50


def test_text_documents_count() -> None:
    doc = {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "w" * 700}}
    assert (
        estimate(request([{"role": "user", "content": [doc]}]))
        > estimate(request([{"role": "user", "content": []}])) + 100
    )


def test_corpus_count_tokens_bodies_are_ordered() -> None:
    minimal = (CORPUS / "018-count_tokens-minimal-foo.json").read_bytes()
    eleven = (CORPUS / "019-count_tokens-11-tools.json").read_bytes()
    one = (CORPUS / "020-count_tokens-1-tool.json").read_bytes()
    assert len(json.loads(eleven)["tools"]) == 11 and len(json.loads(one)["tools"]) == 1
    estimates = {name: estimate(body) for name, body in (("018", minimal), ("019", eleven), ("020", one))}
    assert all(value > 0 for value in estimates.values())
    assert estimates["019"] > estimates["020"] > estimates["018"]
    # in the range a ~3.5 characters-per-token tokenizer gives for the JSON bodies
    for name, body in (("019", eleven), ("020", one)):
        assert len(body) / 8 < estimates[name] < len(body) / 2, (name, estimates[name], len(body))


# ---------------------------------------------------------------- the usage of a stream cut short


REQUEST = a.request_decoder.decode(json.dumps(request()).encode())


def test_output_is_estimated_at_the_same_rate_as_input() -> None:
    assert estimate_output_tokens(0) == 0
    assert estimate_output_tokens(-5) == 0
    assert estimate_output_tokens(1) == 1
    assert estimate_output_tokens(35) == math.ceil(35 / CHARS_PER_TOKEN)


def test_the_providers_usage_stands_when_it_reported_both_sides() -> None:
    reported = Usage(input_tokens=10, output_tokens=4)
    calls: list[int] = []
    usage, estimated = usage_so_far(reported, 500, lambda: calls.append(1) or 9)
    assert usage is reported and estimated is False
    assert calls == []  # the request is not even looked at


def test_what_the_provider_did_not_report_is_estimated() -> None:
    reported = Usage()
    usage, estimated = usage_so_far(reported, 70, lambda: estimate_input_tokens(REQUEST))
    assert usage == Usage(input_tokens=estimate_input_tokens(REQUEST), output_tokens=math.ceil(70 / CHARS_PER_TOKEN))
    assert estimated is True
    assert reported == Usage()  # never changed in place


def test_cached_input_counts_as_reported_input() -> None:
    usage, estimated = usage_so_far(Usage(cache_read_input_tokens=900), 7, lambda: 123)
    assert usage == Usage(cache_read_input_tokens=900, output_tokens=2)
    assert estimated is True


def test_no_content_and_no_readable_request_estimate_nothing() -> None:
    usage, estimated = usage_so_far(Usage(), 0, lambda: None)
    assert usage == Usage() and estimated is False
