"""The Anthropic recipe's own behaviour end to end: the Anthropic Python SDK (and raw httpx)
-> Hypercorn serving recipes.anthropic:app (a real process) -> the fake Anthropic API on
loopback. What every recipe does is tested in test_recipe_scenarios.py.

A pass-through: bodies and streams go on byte for byte, the client's key passes unless the
gateway has its own ANTHROPIC_API_KEY, and every exchange is logged with Anthropic's usage.
The fake checks path, query, key and anthropic-version as the API does (see
tests/fakes/anthropic_server.py).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

import anthropic
from tests.asgi_helpers import anthropic_stream
from tests.e2e.harness import (
    CLIENT_KEY,
    GatewayProcess,
    assert_log_usage,
    checked_fake,
    exact_log_lines,
    running_gateway,
    sdk_client,
)
from tests.e2e.scenarios import (
    USER,
    assert_error,
    only_request,
    rejected_key_error,
    request_error,
    stream_tool_use,
    tool_result,
    tool_result_turn,
)
from tests.e2e.scenarios import assert_still_serving as assert_serving_after
from tests.fakes.anthropic_server import (
    COUNT_TOKENS_PATH,
    MESSAGES_PATH,
    FakeAnthropicServer,
    anthropic_error,
    bad_request,
    cached_usage_events,
    capture_bytes,
    capture_stream,
    count_tokens_reply,
    good_message,
    good_message_bytes,
    split_events,
    stream_reply,
    text_events,
    tool_use_events,
)

pytestmark = pytest.mark.e2e

GATEWAY_KEY = "sk-ant-gateway-" + "Yb7Qm2Vx9Lp4"  # the keyed gateway's own ANTHROPIC_API_KEY
OVERRIDE_MODEL = "claude-opus-override-e2e"  # the keyed gateway's AIMW_MODEL
MAX_TOKENS_CAP = 1000  # the keyed gateway's AIMW_MAX_TOKENS
BETAS = "claude-code-20250219,interleaved-thinking-2025-05-14"
BASH_TOOL = {
    "name": "Bash",
    "description": "Run a shell command.",
    "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]},
}


@pytest.fixture(scope="module")
def anthropic_api(recipe_servers) -> FakeAnthropicServer:
    return recipe_servers["anthropic"].fake


@pytest.fixture(scope="module")
def gateway(recipe_servers) -> GatewayProcess:
    """No ANTHROPIC_API_KEY and no AIMW_* field setting: the client's key and bytes pass."""
    return recipe_servers["anthropic"].gateway


@pytest.fixture(scope="module")
def keyed_gateway(anthropic_api, tmp_path_factory) -> Iterator[GatewayProcess]:
    """The gateway's own key, a model override and a max_tokens cap."""
    env = {
        "AIMW_UPSTREAM_URL": anthropic_api.url,
        "ANTHROPIC_API_KEY": GATEWAY_KEY,
        "AIMW_MODEL": OVERRIDE_MODEL,
        "AIMW_MAX_TOKENS": str(MAX_TOKENS_CAP),
    }
    with running_gateway("recipes.anthropic:app", env, tmp_path_factory, "anthropic-keyed-gateway") as gw:
        yield gw


@pytest.fixture
def fake(anthropic_api, gateway, request) -> Iterator[FakeAnthropicServer]:
    with checked_fake(anthropic_api, [gateway], request) as server:
        yield server


@pytest.fixture
def keyed_fake(anthropic_api, keyed_gateway, request) -> Iterator[FakeAnthropicServer]:
    with checked_fake(anthropic_api, [keyed_gateway], request) as server:
        server.expected_key = GATEWAY_KEY
        yield server


def raw_post(url: str, body: bytes, case: str, headers: dict[str, str] | None = None) -> tuple[httpx.Response, bytes]:
    """POST ``body`` as Claude Code does (x-api-key, anthropic-version, anthropic-beta); the
    response and its raw bytes (no decoding of any kind)."""
    all_headers = {
        "x-api-key": CLIENT_KEY,
        "anthropic-version": "2023-06-01",
        "anthropic-beta": BETAS,
        "content-type": "application/json",
        "x-e2e-case": case,
        **(headers or {}),
    }
    with (
        httpx.Client(trust_env=False, timeout=30) as http,
        http.stream("POST", url, content=body, headers=all_headers) as response,
    ):
        raw = b"".join(response.iter_raw())
    return response, raw


def stream_body(**extra) -> bytes:
    return json.dumps(
        {"model": "claude-x", "max_tokens": 64, "messages": USER, "stream": True, **extra}, indent=1
    ).encode()


def assert_still_serving(gateway: GatewayProcess, fake: FakeAnthropicServer, case: str) -> None:
    assert_serving_after(gateway, fake, case, good_message(), USER, "The sum of 1 + 1 is 2.")


# ---------------------------------------------------------------- streams and bodies pass byte for byte


def test_stream_bytes_pass_unchanged(gateway, fake, case):
    """The captured stream, cut by the fake at arbitrary byte offsets, reaches the client
    byte for byte; the request reaches the fake byte for byte, with its query and headers."""
    fake.enqueue(capture_stream(pieces=7))
    body = stream_body(system=[{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}])

    response, raw = raw_post(gateway.url + "/v1/messages?beta=true", body, case)

    assert response.status_code == 200
    assert raw == capture_bytes()
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert response.headers["request-id"].startswith("req_")  # Anthropic's headers pass too
    sent = only_request(fake, case)
    assert (sent.method, sent.path, sent.query) == ("POST", MESSAGES_PATH, "beta=true")
    assert sent.raw_body == body
    assert sent.headers["x-api-key"] == CLIENT_KEY  # no gateway key: the client's passes
    assert "authorization" not in sent.headers
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert sent.headers["anthropic-beta"] == BETAS
    (line,) = exact_log_lines(gateway, case)
    meta = line["ai"]["proxy"]["meta"]
    assert meta["provider_name"] == "anthropic"
    assert meta["request_mode"] == "stream"
    assert meta["request_model"] == "claude-x"
    assert meta["response_model"] == "claude-2.1"
    assert "error" not in meta
    assert line["upstream_uri"] == MESSAGES_PATH + "?beta=true"
    assert line["request"]["uri"] == "/v1/messages?beta=true"
    assert line["request"]["headers"]["x-api-key"] == "REDACTED"
    assert line["response"]["size"] == len(raw)
    assert_log_usage(line, 15, 9)  # message_start 15 in / 1 out, message_delta 9 out (cumulative)
    assert "time_to_first_token" in line["ai"]["proxy"]["usage"]


def test_json_answer_passes_unchanged(gateway, fake, case):
    fake.enqueue(good_message())
    body = json.dumps({"model": "claude-x", "max_tokens": 256, "messages": USER}).encode()

    response, raw = raw_post(gateway.url + "/v1/messages", body, case, {"anthropic-beta": ""})

    assert response.status_code == 200
    assert raw == good_message_bytes()
    sent = only_request(fake, case)
    assert (sent.path, sent.query) == (MESSAGES_PATH, "")
    assert sent.raw_body == body
    (line,) = exact_log_lines(gateway, case)
    assert line["ai"]["proxy"]["meta"]["request_mode"] == "oneshot"
    assert line["ai"]["proxy"]["meta"]["response_model"] == "claude-2.1"
    assert_log_usage(line, 100, 150)


def test_sdk_text_stream(gateway, fake, case):
    fake.enqueue(capture_stream(pieces=5))
    sent: list = []

    with sdk_client(gateway.url, case, sent=sent).messages.stream(
        model="claude-x", max_tokens=64, messages=USER
    ) as stream:
        texts = list(stream.text_stream)
        message = stream.get_final_message()

    assert texts == ["1", " +", " 1", " =", " 2"]
    assert message.content[0].text == "1 + 1 = 2"
    assert message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (15, 9)
    received = only_request(fake, case)
    assert received.raw_body == sent[0].content  # the SDK's bytes, unchanged
    assert received.query == ""
    assert received.headers["authorization"] == f"Bearer {CLIENT_KEY}"  # the SDK's form passes too
    assert "x-api-key" not in received.headers
    assert "anthropic-beta" not in received.headers  # not sent, not invented
    assert received.headers["anthropic-version"] == sent[0].headers["anthropic-version"]
    (line,) = exact_log_lines(gateway, case)
    assert line["ai"]["proxy"]["meta"]["request_mode"] == "stream"
    assert_log_usage(line, 15, 9)


def test_sdk_text_oneshot(gateway, fake, case):
    fake.enqueue(good_message())
    sent: list = []

    message = sdk_client(gateway.url, case, sent=sent).messages.create(
        model="claude-x", max_tokens=256, system="Be brief.", messages=USER
    )

    assert message.content[0].text == "The sum of 1 + 1 is 2."
    assert message.model == "claude-2.1"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (100, 150)
    assert only_request(fake, case).raw_body == sent[0].content
    (line,) = exact_log_lines(gateway, case)
    assert line["ai"]["proxy"]["meta"]["request_mode"] == "oneshot"
    assert_log_usage(line, 100, 150)


def test_streamed_tool_use_then_tool_result(gateway, fake, case):
    tool_input = {"command": "ls -la /tmp", "description": "List /tmp"}
    fake.enqueue(
        stream_reply(
            tool_use_events("toolu_01E2E", "Bash", tool_input, text=("Let me look.",), pieces=5, output_tokens=31)
        )
    )
    client = sdk_client(gateway.url, case)

    partial, message = stream_tool_use(client, "List /tmp", [BASH_TOOL])

    assert len(partial) == 5
    assert [block.type for block in message.content] == ["text", "tool_use"]
    tool_use = message.content[1]
    assert (tool_use.id, tool_use.name, tool_use.input) == ("toolu_01E2E", "Bash", tool_input)
    assert message.stop_reason == "tool_use"

    fake.enqueue(stream_reply(text_events(("There are ", "3 files."), output_tokens=7)))
    with client.messages.stream(
        model="claude-x",
        max_tokens=512,
        tools=[BASH_TOOL],
        messages=tool_result_turn("List /tmp", message, tool_result("toolu_01E2E", "a\nb\nc")),
    ) as stream:
        answer = stream.get_final_message()

    assert answer.content[0].text == "There are 3 files."
    second = fake.requests_for(case)[1].body
    assert second["messages"][1]["content"][1] == {
        "type": "tool_use",
        "id": "toolu_01E2E",
        "name": "Bash",
        "input": tool_input,
    }
    assert second["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "toolu_01E2E", "content": "a\nb\nc"}
    ]
    first_line, second_line = exact_log_lines(gateway, case, 2)
    assert_log_usage(first_line, 120, 31)
    assert_log_usage(second_line, 20, 7)


def test_cache_usage_reaches_sdk_and_log(gateway, fake, case):
    """prompt_tokens = input + cache read + cache creation; completion_tokens is the final
    cumulative output_tokens of message_delta (replacing message_start's 1, not added)."""
    fake.enqueue(
        stream_reply(cached_usage_events(input_tokens=12, cache_read=3000, cache_creation=500, output_tokens=87))
    )

    with sdk_client(gateway.url, case).messages.stream(model="claude-x", max_tokens=512, messages=USER) as stream:
        message = stream.get_final_message()

    usage = message.usage
    assert (
        usage.input_tokens,
        usage.cache_read_input_tokens,
        usage.cache_creation_input_tokens,
        usage.output_tokens,
    ) == (12, 3000, 500, 87)
    (line,) = exact_log_lines(gateway, case)
    assert_log_usage(line, 12 + 3000 + 500, 87, cached=3000)
    assert line["ai"]["proxy"]["usage"]["time_per_token"] == round(line["ai"]["proxy"]["meta"]["llm_latency"] / 87, 3)


def test_time_to_first_token(gateway, fake, case):
    """The fake holds the first text delta until the client has seen the stream start and
    50 ms more have passed: the logged time to first token cannot be less than that."""
    gate = threading.Event()
    events = text_events(("late ", "words"), output_tokens=3)
    first_delta = next(i for i, e in enumerate(events) if e.startswith(b"event: content_block_delta"))
    fake.enqueue(stream_reply([*events[:first_delta], gate, *events[first_delta:]]))
    try:
        with (
            httpx.Client(trust_env=False, timeout=30) as http,
            http.stream(
                "POST",
                gateway.url + "/v1/messages",
                content=stream_body(),
                headers={
                    "x-api-key": CLIENT_KEY,
                    "anthropic-version": "2023-06-01",
                    "content-type": "application/json",
                    "x-e2e-case": case,
                },
            ) as response,
        ):
            received = b""
            for chunk in response.iter_raw():
                received += chunk
                if b"content_block_start" in received and not gate.is_set():
                    time.sleep(0.05)
                    gate.set()
    finally:
        gate.set()
    assert received == b"".join(events)
    (line,) = exact_log_lines(gateway, case)
    ttft, llm_latency = line["ai"]["proxy"]["usage"]["time_to_first_token"], line["ai"]["proxy"]["meta"]["llm_latency"]
    assert 50 <= ttft <= llm_latency


# ---------------------------------------------------------------- count_tokens, pre-flight, prefix


def test_count_tokens_is_forwarded(gateway, fake, case):
    fake.enqueue(count_tokens_reply(4242), count_tokens_reply(77))
    sent: list = []
    client = sdk_client(gateway.url, case, sent=sent)

    tokens = client.messages.count_tokens(model="claude-x", system="Be brief.", messages=USER, tools=[BASH_TOOL])
    beta_tokens = client.beta.messages.count_tokens(  # Claude Code's form: ?beta=true and anthropic-beta
        model="claude-x", messages=USER, betas=["context-management-2025-06-27"], extra_query={"beta": "true"}
    )

    assert (tokens.input_tokens, beta_tokens.input_tokens) == (4242, 77)
    plain, beta = fake.requests_for(case)
    assert (plain.path, plain.query) == (COUNT_TOKENS_PATH, "")
    assert (beta.path, beta.query) == (COUNT_TOKENS_PATH, "beta=true")
    assert "context-management-2025-06-27" in beta.headers["anthropic-beta"]
    assert beta.headers["anthropic-beta"] == sent[1].headers["anthropic-beta"]
    assert "anthropic-beta" not in plain.headers
    assert [plain.raw_body, beta.raw_body] == [request.content for request in sent]
    lines = exact_log_lines(gateway, case, 2)
    assert [line["response"]["status"] for line in lines] == [200, 200]
    assert [line["upstream_uri"] for line in lines] == [COUNT_TOKENS_PATH, COUNT_TOKENS_PATH + "?beta=true"]


def test_head_preflight_is_answered_by_the_gateway(gateway, fake, case):
    response = httpx.head(gateway.url + "/", headers={"x-e2e-case": case}, trust_env=False)
    assert response.status_code == 200
    assert fake.requests_for(case) == []  # nothing but the Messages API goes upstream


def test_path_prefix_is_dropped(gateway, fake, case):
    fake.enqueue(good_message(), count_tokens_reply(12))
    client = sdk_client(gateway.url + "/anything", case)

    assert (
        client.messages.create(model="claude-x", max_tokens=16, messages=USER).content[0].text
        == "The sum of 1 + 1 is 2."
    )
    assert client.messages.count_tokens(model="claude-x", messages=USER).input_tokens == 12

    assert [request.path for request in fake.requests_for(case)] == [MESSAGES_PATH, COUNT_TOKENS_PATH]
    lines = exact_log_lines(gateway, case, 2)
    assert [line["request"]["uri"] for line in lines] == ["/anything/v1/messages", "/anything/v1/messages/count_tokens"]
    assert lines[0]["upstream_uri"] == MESSAGES_PATH


# ---------------------------------------------------------------- the gateway's own key and settings


def test_gateway_key_replaces_the_clients(keyed_gateway, keyed_fake, case):
    """With ANTHROPIC_API_KEY on the gateway the fake sees that key, in x-api-key, and never
    the client's; AIMW_MODEL and AIMW_MAX_TOKENS edit the body."""
    keyed_fake.enqueue(capture_stream(pieces=3), good_message())
    body = stream_body(max_tokens=32000, metadata={"user_id": "u-1"})

    response, raw = raw_post(keyed_gateway.url + "/v1/messages?beta=true", body, case)
    message = sdk_client(keyed_gateway.url, case).messages.create(model="claude-x", max_tokens=200, messages=USER)

    assert response.status_code == 200 and raw == capture_bytes()
    assert message.content[0].text == "The sum of 1 + 1 is 2."
    streamed, oneshot = keyed_fake.requests_for(case)
    for request in (streamed, oneshot):
        assert request.headers["x-api-key"] == GATEWAY_KEY
        assert "authorization" not in request.headers
        assert CLIENT_KEY not in json.dumps(request.headers)
    assert streamed.headers["anthropic-beta"] == BETAS
    assert streamed.body == {**json.loads(body), "model": OVERRIDE_MODEL, "max_tokens": MAX_TOKENS_CAP}
    assert oneshot.body["model"] == OVERRIDE_MODEL and oneshot.body["max_tokens"] == 200  # a smaller value is kept
    lines = exact_log_lines(keyed_gateway, case, 2)
    assert [line["ai"]["proxy"]["meta"]["request_model"] for line in lines] == [OVERRIDE_MODEL] * 2
    log = keyed_gateway.log_text()
    assert GATEWAY_KEY not in log and CLIENT_KEY not in log


def test_gateway_model_on_count_tokens(keyed_gateway, keyed_fake, case):
    keyed_fake.enqueue(count_tokens_reply(31))
    tokens = sdk_client(keyed_gateway.url, case).messages.count_tokens(model="claude-x", messages=USER)
    assert tokens.input_tokens == 31
    sent = only_request(keyed_fake, case)
    assert sent.body == {"model": OVERRIDE_MODEL, "messages": USER}
    assert sent.headers["x-api-key"] == GATEWAY_KEY


# ---------------------------------------------------------------- errors


def test_wrong_key_is_401(gateway, fake, case):
    error = rejected_key_error(
        sdk_client(gateway.url, case),
        fake,
        USER,
        wrong_key="sk-ant-the-key-the-api-wants",
        right_key=CLIENT_KEY,
        key_attribute="expected_key",
    )
    assert error.status_code == 401
    assert error.body["error"] == {"type": "authentication_error", "message": "Invalid API Key"}
    assert only_request(fake, case).status == 401
    (line,) = exact_log_lines(gateway, case)
    assert line["response"]["status"] == 401
    assert_still_serving(gateway, fake, case)


@pytest.mark.parametrize("stream", [False, True], ids=["oneshot", "stream"])
@pytest.mark.parametrize(
    ("reply", "error_class", "status", "error_type"),
    [
        (lambda: bad_request(), anthropic.BadRequestError, 400, "invalid_request_error"),
        (
            lambda: anthropic_error(
                429,
                "rate_limit_error",
                "Number of request tokens has exceeded your rate limit.",
                (("retry-after", "7"),),
            ),
            anthropic.RateLimitError,
            429,
            "rate_limit_error",
        ),
        (
            lambda: anthropic_error(500, "api_error", "Internal server error"),
            anthropic.InternalServerError,
            500,
            "api_error",
        ),
        (
            lambda: anthropic_error(529, "overloaded_error", "Overloaded"),
            anthropic.OverloadedError,
            529,
            "overloaded_error",
        ),
    ],
    ids=["400", "429", "500", "529"],
)
def test_errors_pass_unchanged(gateway, fake, case, reply, error_class, status, error_type, stream):
    error = reply()
    fake.enqueue(error)
    caught = request_error(error_class, sdk_client(gateway.url, case), USER, stream)
    assert_error(caught, status, error_type)
    assert caught.response.content == error.body  # Anthropic's own error, byte for byte
    if status == 429:
        assert caught.response.headers["retry-after"] == "7"
    (line,) = exact_log_lines(gateway, case)
    assert line["response"]["status"] == status
    assert_still_serving(gateway, fake, case)


def test_stream_request_answered_with_an_error_is_logged_as_stream(gateway, fake, case):
    fake.enqueue(anthropic_error(529, "overloaded_error", "Overloaded"))
    response, _ = raw_post(gateway.url + "/v1/messages?beta=true", stream_body(), case)
    assert response.status_code == 529
    (line,) = exact_log_lines(gateway, case)
    assert line["ai"]["proxy"]["meta"]["request_mode"] == "stream"


def test_cut_stream_ends_with_error_event(gateway, fake, case):
    """The fake closes the connection in the middle of the fourth event: the client gets the
    three whole events, then ``event: error``, nothing of the broken one."""
    capture = capture_bytes()
    events = split_events(capture)
    whole = b"".join(events[:3])
    fake.enqueue(stream_reply(capture[: len(whole) + len(events[3]) // 2], pieces=4, cut=True))

    response, raw = raw_post(gateway.url + "/v1/messages?beta=true", stream_body(), case)

    assert response.status_code == 200
    assert raw.startswith(whole)
    assert anthropic_stream(raw).error["type"] == "api_error"  # the whole stream: a well-formed error ending
    error = raw[len(whole) :]
    assert error.startswith(b"event: error\ndata: ") and error.endswith(b"\n\n")
    assert json.loads(error.split(b"data: ", 1)[1])["error"]["type"] == "api_error"
    (line,) = exact_log_lines(gateway, case)
    assert line["ai"]["proxy"]["meta"]["error"]
    assert line["ai"]["proxy"]["meta"]["request_mode"] == "stream"
    assert_still_serving(gateway, fake, case)
