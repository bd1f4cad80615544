"""The DashScope (Alibaba Cloud Model Studio, Qwen) recipe's own behaviour end to end: the
Anthropic Python SDK -> Hypercorn serving recipes.dashscope:app (a real process) -> a fake
DashScope compatible-mode endpoint on loopback. What every recipe does is tested in
test_recipe_scenarios.py.

The fake (tests/fakes/openai_chat_server.py, DASHSCOPE profile) checks ``POST
/compatible-mode/v1/chat/completions``, ``Authorization: Bearer <key>`` and a valid body,
where DashScope's ``enable_thinking`` / ``thinking_budget`` and an assistant's
``reasoning_content`` are allowed. It streams as DashScope does (``"usage": null`` on every
chunk, ``reasoning_content`` deltas, tool call fragments with an empty ``id``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.harness import GatewayProcess, checked_fake, exact_log_lines, running_gateway, sdk_client
from tests.e2e.recipes import DASHSCOPE, DASHSCOPE_MAX_TOKENS, DASHSCOPE_TEMPERATURE
from tests.e2e.scenarios import USER, only_request
from tests.fakes.openai_chat_server import FakeChatServer, dashscope_completion, dashscope_stream, json_reply

pytestmark = pytest.mark.e2e

# the tuned gateway's settings
TUNED_MODEL = "qwen3-max"
TUNED_MAX_TOKENS = 1000
TUNED_TEMPERATURE = 0.3


@pytest.fixture(scope="module")
def dashscope_api(recipe_servers) -> FakeChatServer:
    return recipe_servers["dashscope"].fake


@pytest.fixture(scope="module")
def gateway(recipe_servers) -> GatewayProcess:
    return recipe_servers["dashscope"].gateway


@pytest.fixture(scope="module")
def tuned_gateway(dashscope_api, tmp_path_factory) -> Iterator[GatewayProcess]:
    env = {
        **DASHSCOPE.env(dashscope_api.url),
        "AIMW_MODEL": TUNED_MODEL,
        "AIMW_MAX_TOKENS": str(TUNED_MAX_TOKENS),
        "AIMW_TEMPERATURE": str(TUNED_TEMPERATURE),
    }
    with running_gateway("recipes.dashscope:app", env, tmp_path_factory, "dashscope-tuned-gateway") as gw:
        yield gw


@pytest.fixture
def fake(dashscope_api, gateway, request) -> Iterator[FakeChatServer]:
    with checked_fake(dashscope_api, [gateway], request) as server:
        yield server


@pytest.fixture
def tuned_fake(dashscope_api, tuned_gateway, request) -> Iterator[FakeChatServer]:
    with checked_fake(dashscope_api, [tuned_gateway], request) as server:
        yield server


# ---------------------------------------------------------------- defaults and settings


def test_stream_caps_max_tokens_and_sets_temperature(client, fake, case):
    """Kong's Claude Code guide for DashScope: max_tokens at most 8192, temperature 1.0,
    whatever the client asked."""
    fake.enqueue(dashscope_stream(("1 + 1 ", "= 2."), usage=(25, 7)))

    with client.messages.stream(
        model="claude-x", max_tokens=32000, messages=USER, extra_body={"temperature": 0.2}
    ) as stream:
        assert stream.get_final_message().content[0].text == "1 + 1 = 2."

    sent = only_request(fake, case)
    assert sent.body["max_tokens"] == DASHSCOPE_MAX_TOKENS
    assert sent.body["temperature"] == DASHSCOPE_TEMPERATURE


def test_settings_override_the_defaults(tuned_gateway, tuned_fake, case):
    """AIMW_MODEL, AIMW_MAX_TOKENS and AIMW_TEMPERATURE replace the recipe's defaults."""
    tuned_fake.enqueue(
        dashscope_stream(("ok",), model=TUNED_MODEL), json_reply(dashscope_completion("ok", model=TUNED_MODEL))
    )
    client = sdk_client(tuned_gateway.url, case)
    with client.messages.stream(
        model="claude-x", max_tokens=32000, messages=USER, extra_body={"temperature": 0.9}
    ) as stream:
        assert stream.get_final_message().content[0].text == "ok"
    assert client.messages.create(model="claude-x", max_tokens=500, messages=USER).content[0].text == "ok"

    streamed, oneshot = (request.body for request in tuned_fake.requests_for(case))
    assert (streamed["model"], streamed["max_tokens"], streamed["temperature"]) == (
        TUNED_MODEL,
        TUNED_MAX_TOKENS,
        TUNED_TEMPERATURE,
    )
    assert (oneshot["model"], oneshot["max_tokens"], oneshot["temperature"]) == (TUNED_MODEL, 500, TUNED_TEMPERATURE)
    lines = exact_log_lines(tuned_gateway, case, 2)
    assert [line["ai"]["proxy"]["meta"]["request_model"] for line in lines] == [TUNED_MODEL] * 2


# ---------------------------------------------------------------- thinking


def test_thinking_budget_within_the_capped_max_tokens(client, fake, case):
    """max_tokens 16000 is capped to 8192 before translation; the budget follows the cap."""
    fake.enqueue(dashscope_stream(("2",), reasoning=("1 + 1.",)))
    with client.messages.stream(
        model="claude-x", max_tokens=16000, thinking={"type": "enabled", "budget_tokens": 10000}, messages=USER
    ) as stream:
        stream.get_final_message()
    body = only_request(fake, case).body
    assert body["max_tokens"] == DASHSCOPE_MAX_TOKENS
    assert body["enable_thinking"] is True
    assert body["thinking_budget"] == DASHSCOPE_MAX_TOKENS


@pytest.mark.parametrize(
    ("thinking", "expected"),
    [  # non-streaming: Qwen3 on DashScope refuses thinking off-stream, so it is always turned off
        ({"type": "adaptive"}, {"enable_thinking": False}),
        ({"type": "disabled"}, {"enable_thinking": False}),
        (None, {"enable_thinking": False}),
    ],
    ids=["adaptive", "disabled", "absent"],
)
def test_other_thinking_modes(client, fake, case, thinking, expected):
    fake.enqueue(json_reply(dashscope_completion("2")))
    extra = {} if thinking is None else {"extra_body": {"thinking": thinking}}
    client.messages.create(model="claude-x", max_tokens=1024, messages=USER, **extra)
    body = only_request(fake, case).body
    assert {key: body[key] for key in ("enable_thinking", "thinking_budget") if key in body} == expected


def test_earlier_thinking_goes_back_as_reasoning_content(client, fake, gateway, case):
    """A follow-up turn carries the assistant's thinking block: DashScope gets it as that
    assistant message's reasoning_content."""
    fake.enqueue(dashscope_stream(("It is 2.",), reasoning=("Adding ", "one and one."), usage=(30, 20)))
    thinking = {"type": "enabled", "budget_tokens": 1024}
    with client.messages.stream(model="claude-x", max_tokens=4096, thinking=thinking, messages=USER) as stream:
        first = stream.get_final_message()
    assert [block.type for block in first.content] == ["thinking", "text"]

    fake.enqueue(dashscope_stream(("It is 4.",), usage=(60, 5)))
    with client.messages.stream(
        model="claude-x",
        max_tokens=4096,
        thinking=thinking,
        messages=[*USER, {"role": "assistant", "content": first.content}, {"role": "user", "content": "And 2 + 2?"}],
    ) as stream:
        assert stream.get_final_message().content[0].text == "It is 4."

    messages = fake.requests_for(case)[1].body["messages"]
    assert messages[-2] == {"role": "assistant", "content": "It is 2.", "reasoning_content": "Adding one and one."}
    assert messages[-1] == {"role": "user", "content": "And 2 + 2?"}
    assert "reasoning_content" not in messages[0]
