"""The Gemini API recipe end to end: the Anthropic Python SDK and the real Claude Code CLI ->
Hypercorn serving recipes.gemini:app (a real process) -> a fake of Google's generateContent
service on loopback (tests/fakes/gemini_server.py), which checks the path, the ``alt=sse``
query, the ``x-goog-api-key`` header and the body as Google does.

The scenario tests here (those taking ``target``) are the ones both Google recipes share:
test_vertex_recipe.py runs them again against Vertex AI with its own fixtures. The Gemini
API's own tests (the key never in a URL or the log, AIMW_MODEL / AIMW_MAX_TOKENS, the key
required) take the Gemini fixtures directly.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest

import anthropic
from bench.validate import AnthropicStream, read_anthropic_stream
from tests.e2e.harness import (
    CLIENT_KEY,
    GatewayProcess,
    assert_log_usage,
    checked_fake,
    clean_env,
    exact_log_lines,
    run_claude,
    running_gateway,
    sdk_client,
)
from tests.fakes.gemini_server import (
    DEFAULT_MODEL,
    FakeGeminiServer,
    FunctionCall,
    ToolThenReport,
    captured_response,
    captured_stream_chunks,
    error_chunk,
    function_call_chunks,
    function_responses,
    gemini_api,
    google_error_reply,
    json_reply,
    new_signature,
    rate_limited,
    response,
    sse_reply,
    text_chunks,
    text_response,
    unavailable,
    usage_metadata,
)
from tests.fakes.scripted_server import RecordedRequest, Reply
from tests.shared_data import REPO

pytestmark = pytest.mark.e2e

GEMINI_KEY = "AIzaSy" + "E2eTestKey0aimwQ9wX2vB7nM4pL6rT1"  # Gemini API keys: AIza + 35 characters
MODEL = "claude-x"  # what the SDK asks for; the recipe sends its own model
DEFAULT_MAX_TOKENS = 8192  # the recipes' cap (Kong's Claude Code guide for Gemini)
USER = [{"role": "user", "content": "Is everything okay?"}]
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "The current weather in a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


@dataclass
class Target:
    """One Google recipe as the shared scenarios see it.

    path_prefix: the resource path before ``{model}:{method}``.
    check_credential: asserts a request the fake got carried the recipe's credential.
    secrets: the texts that must never be in a log line or a client's answer (the key, the
        access tokens given so far).
    """

    name: str
    gateway: GatewayProcess
    fake: FakeGeminiServer
    path_prefix: str
    check_credential: Callable[[RecordedRequest], None]
    secrets: Callable[[], tuple[str, ...]]

    def path(self, method: str, model: str = DEFAULT_MODEL) -> str:
        return f"{self.path_prefix}{model}:{method}"


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def gemini_fake() -> Iterator[FakeGeminiServer]:
    with FakeGeminiServer(gemini_api(), api_key=GEMINI_KEY) as server:
        yield server


@pytest.fixture(scope="module")
def gemini_gateway(gemini_fake, tmp_path_factory) -> Iterator[GatewayProcess]:
    env = {"GEMINI_API_KEY": GEMINI_KEY, "AIMW_UPSTREAM_URL": gemini_fake.url}
    with running_gateway("recipes.gemini:app", env, tmp_path_factory, "gemini-gateway") as gateway:
        yield gateway


@pytest.fixture(scope="module")
def tuned_gateway(gemini_fake, tmp_path_factory) -> Iterator[GatewayProcess]:
    env = {
        "GEMINI_API_KEY": GEMINI_KEY,
        "AIMW_UPSTREAM_URL": gemini_fake.url,
        "AIMW_MODEL": "gemini-2.5-pro",
        "AIMW_MAX_TOKENS": "1000",
    }
    with running_gateway("recipes.gemini:app", env, tmp_path_factory, "gemini-tuned-gateway") as gateway:
        yield gateway


def _gemini_credential(request: RecordedRequest) -> None:
    assert request.headers["x-goog-api-key"] == GEMINI_KEY
    assert "authorization" not in request.headers
    assert "key=" not in request.query


@pytest.fixture(scope="module")
def target(gemini_fake, gemini_gateway) -> Target:
    return Target("gemini", gemini_gateway, gemini_fake, "/v1beta/models/", _gemini_credential, lambda: (GEMINI_KEY,))


@pytest.fixture
def fake(target, request) -> Iterator[FakeGeminiServer]:
    with checked_fake(target.fake, [target.gateway], request) as server:
        yield server


@pytest.fixture
def client(target, case) -> anthropic.Anthropic:
    return sdk_client(target.gateway.url, case)


# ---------------------------------------------------------------- helpers


def only_request(fake: FakeGeminiServer, case: str) -> RecordedRequest:
    requests = fake.requests_for(case)
    assert len(requests) == 1, [(r.method, r.path) for r in requests]
    return requests[0]


def create_or_stream(client: anthropic.Anthropic, stream: bool, **kwargs) -> anthropic.types.Message:
    if not stream:
        return client.messages.create(**kwargs)
    with client.messages.stream(**kwargs) as events:
        return events.get_final_message()


def request_error(client: anthropic.Anthropic, stream: bool, **kwargs) -> anthropic.APIStatusError:
    try:
        create_or_stream(client, stream, **{"model": MODEL, "max_tokens": 64, "messages": USER, **kwargs})
    except anthropic.APIStatusError as error:
        return error
    raise AssertionError("the request did not fail")


def raw_stream(target: Target, case: str, **body) -> tuple[httpx.Response, AnthropicStream]:
    """POST a streamed request with httpx: the response and its stream, read by the shared
    validator (every DESIGN §6 invariant checked)."""
    response = httpx.post(
        target.gateway.url + "/v1/messages",
        json={"model": MODEL, "max_tokens": 64, "stream": True, "messages": USER, **body},
        headers={"x-api-key": CLIENT_KEY, "anthropic-version": "2023-06-01", "x-e2e-case": case},
        timeout=30.0,
        trust_env=False,
    )
    stream = read_anthropic_stream(response.content)
    assert not stream.problems, stream.problems
    return response, stream


def assert_meta(
    target: Target, line: dict, mode: str, response_model: str = DEFAULT_MODEL, model: str = DEFAULT_MODEL
) -> None:
    meta = line["ai"]["proxy"]["meta"]
    assert (meta["provider_name"], meta["request_model"], meta["response_model"], meta["request_mode"]) == (
        "gemini",
        model,
        response_model,
        mode,
    )


def assert_no_secret(target: Target, *texts: str) -> None:
    """No secret of the recipe (nor the client's key) in the log or in ``texts``."""
    for text in (target.gateway.log_text(), *texts):
        for secret in (*target.secrets(), CLIENT_KEY):
            assert secret not in text


def assert_still_serving(target: Target, case: str) -> None:
    """After an error the gateway answers the next request normally."""
    target.fake.enqueue(json_reply(text_response("still serving", usage=(3, 2))))
    message = sdk_client(target.gateway.url, case + "-after").messages.create(model=MODEL, max_tokens=16, messages=USER)
    assert message.content[0].text == "still serving"


def with_usage(chunks: list[dict], prompt: int, total: int) -> list[dict]:
    """Captured chunks with the cumulative usageMetadata Google puts on each."""
    return [
        {**chunk, "usageMetadata": usage_metadata(prompt, round(total * (i + 1) / len(chunks)))}
        for i, chunk in enumerate(chunks)
    ]


def resplit(reply: Reply, size: int) -> Reply:
    """The same stream cut into ``size``-byte HTTP chunks, ignoring event bounds (``\\r\\n``
    pairs cut in two included)."""
    data = b"".join(reply.chunks)
    return Reply(reply.status, reply.headers, b"", tuple(data[i : i + size] for i in range(0, len(data), size)))


# ---------------------------------------------------------------- text


def test_text_oneshot(target, fake, client, case):
    """Kong's captured generateContent answer; the client's 32000 max_tokens capped at 8192."""
    fake.enqueue(json_reply(captured_response("good")))

    message = client.messages.create(model=MODEL, max_tokens=32000, system="Be brief.", messages=USER)

    assert [block.type for block in message.content] == ["text"]
    assert message.content[0].text == "Everything is okay."
    assert message.stop_reason == "end_turn"
    assert message.model == "gemini-1.5-flash-002"  # the answer's modelVersion
    assert (message.usage.input_tokens, message.usage.output_tokens) == (2, 11)
    sent = only_request(fake, case)
    assert (sent.path, sent.query) == (target.path("generateContent"), "")
    target.check_credential(sent)
    assert CLIENT_KEY not in json.dumps(sent.headers) and CLIENT_KEY.encode() not in sent.raw_body
    assert sent.body == {
        "contents": [{"role": "user", "parts": [{"text": USER[0]["content"]}]}],
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "generationConfig": {"maxOutputTokens": DEFAULT_MAX_TOKENS},
    }
    (line,) = exact_log_lines(target.gateway, case)
    assert_meta(target, line, "oneshot", response_model="gemini-1.5-flash-002")
    assert line["upstream_uri"] == target.path("generateContent")
    assert line["response"]["status"] == 200
    assert_log_usage(line, 2, 11)
    assert_no_secret(target, json.dumps(message.model_dump()))


def test_text_stream(target, fake, client, case):
    """Kong's captured text stream (one alt=sse event per response), with Google's usage."""
    captured = captured_stream_chunks("streamGenerateContent-text")
    fake.enqueue(sse_reply(with_usage(captured, 9, 6)))

    with client.messages.stream(model=MODEL, max_tokens=256, messages=USER) as stream:
        texts = list(stream.text_stream)
        message = stream.get_final_message()

    assert texts == ["Gemini", " is", " a", " powerful", " model", "."]
    assert message.stop_reason == "end_turn"
    assert message.model == DEFAULT_MODEL  # the capture has no modelVersion: the model asked
    assert (message.usage.input_tokens, message.usage.output_tokens) == (9, 6)
    sent = only_request(fake, case)
    assert (sent.path, sent.query) == (target.path("streamGenerateContent"), "alt=sse")
    target.check_credential(sent)
    assert sent.body["generationConfig"] == {"maxOutputTokens": 256}
    (line,) = exact_log_lines(target.gateway, case)
    assert_meta(target, line, "stream")
    assert line["upstream_uri"] == target.path("streamGenerateContent") + "?alt=sse"
    assert_log_usage(line, 9, 6)
    assert line["ai"]["proxy"]["usage"]["time_to_first_token"] >= 0
    assert_no_secret(target)


def test_stream_cut_anywhere(target, fake, case):
    """Events split at every few bytes (``\\r\\n`` pairs too) are read whole."""
    pieces = ("Ein", "s, zwei, ", "drei — ", "vier.")
    fake.enqueue(
        resplit(sse_reply(text_chunks(pieces, usage=(14, 9), cached=4, model_version="gemini-2.5-flash-001")), 7)
    )

    response, stream = raw_stream(target, case)

    assert response.status_code == 200
    assert stream.text == "".join(pieces)
    assert stream.stop_reason == "end_turn"
    assert stream.message["model"] == "gemini-2.5-flash-001"
    usage = stream.usage
    assert (usage["input_tokens"], usage["cache_read_input_tokens"], usage["output_tokens"]) == (10, 4, 9)
    (line,) = exact_log_lines(target.gateway, case)
    assert_meta(target, line, "stream", response_model="gemini-2.5-flash-001")
    assert_log_usage(line, 14, 9, cached=4)


# ---------------------------------------------------------------- tools


def test_tool_round_trip(target, fake, client, case):
    """functionCall (with Gemini's thought signature) -> tool_use; tool_result ->
    functionResponse named after the call, the call given back with its signature."""
    signature = new_signature(301)
    fake.enqueue(
        sse_reply(function_call_chunks([FunctionCall("get_weather", {"city": "Lisbon"}, signature)], usage=(110, 18)))
    )
    question = "Weather in Lisbon?"

    with client.messages.stream(
        model=MODEL, max_tokens=512, messages=[{"role": "user", "content": question}], tools=[WEATHER_TOOL]
    ) as stream:
        fragments = [
            e.delta.partial_json
            for e in stream
            if e.type == "content_block_delta" and e.delta.type == "input_json_delta"
        ]
        message = stream.get_final_message()

    assert [(b.type, b.name, b.input) for b in message.content] == [("tool_use", "get_weather", {"city": "Lisbon"})]
    assert message.content[0].id.startswith("toolu_")
    assert len(fragments) == 1  # Gemini sends the whole args at once
    assert message.stop_reason == "tool_use"
    first = only_request(fake, case)
    (declaration,) = first.body["tools"][0]["functionDeclarations"]
    assert declaration["name"] == "get_weather" and declaration["description"] == WEATHER_TOOL["description"]
    assert declaration.get("parametersJsonSchema", declaration.get("parameters"))["required"] == ["city"]

    fake.enqueue(sse_reply(text_chunks(("Sunny, ", "24 °C."), usage=(140, 6), cached=100)))
    tool_use = message.content[0]
    answer = create_or_stream(
        client,
        True,
        model=MODEL,
        max_tokens=512,
        tools=[WEATHER_TOOL],
        messages=[
            {"role": "user", "content": question},
            {"role": "assistant", "content": message.content},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": tool_use.id, "content": "sunny, 24 °C"}],
            },
        ],
    )

    assert answer.content[0].text == "Sunny, 24 °C."
    assert (answer.usage.input_tokens, answer.usage.cache_read_input_tokens) == (40, 100)
    second = fake.requests_for(case)[1]
    user, model, result = second.body["contents"]
    assert user == {"role": "user", "parts": [{"text": question}]}
    assert model == {
        "role": "model",
        "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Lisbon"}}, "thoughtSignature": signature}],
    }
    assert function_responses(result) == [{"name": "get_weather", "response": {"content": "sunny, 24 °C"}}]
    first_line, second_line = exact_log_lines(target.gateway, case, 2)
    assert_log_usage(first_line, 110, 18)
    assert_log_usage(second_line, 140, 6, cached=100)


def test_parallel_calls_are_answered_in_call_order(target, fake, client, case):
    """Two calls in one candidate -> two tool_use blocks; their results, sent in the other
    order and one an error, go back as one functionResponse each in call order."""
    calls = [FunctionCall("get_weather", {"city": "Oslo"}), FunctionCall("get_weather", {"city": "Rome"})]
    fake.enqueue(
        json_reply(response([{"functionCall": {"name": c.name, "args": c.args}} for c in calls], usage=(90, 20)))
    )
    question = "Weather in Oslo and Rome?"

    message = client.messages.create(
        model=MODEL, max_tokens=512, messages=[{"role": "user", "content": question}], tools=[WEATHER_TOOL]
    )

    assert [(b.type, b.input) for b in message.content] == [
        ("tool_use", {"city": "Oslo"}),
        ("tool_use", {"city": "Rome"}),
    ]
    assert message.stop_reason == "tool_use"
    oslo, rome = message.content
    assert oslo.id != rome.id
    fake.enqueue(json_reply(text_response("Oslo: unknown. Rome: hot.", usage=(130, 8))))
    results = [
        {"type": "tool_result", "tool_use_id": rome.id, "content": [{"type": "text", "text": "hot"}]},
        {"type": "tool_result", "tool_use_id": oslo.id, "content": "station offline", "is_error": True},
    ]
    client.messages.create(
        model=MODEL,
        max_tokens=512,
        tools=[WEATHER_TOOL],
        messages=[
            {"role": "user", "content": question},
            {"role": "assistant", "content": message.content},
            {"role": "user", "content": results},
        ],
    )
    answered = fake.requests_for(case)[1].body["contents"][-1]
    assert answered["role"] == "user"
    assert function_responses(answered) == [
        {"name": "get_weather", "response": {"error": "station offline"}},
        {"name": "get_weather", "response": {"content": "hot"}},
    ]


# ---------------------------------------------------------------- thinking


def test_thinking_stream_then_signature_back(target, fake, client, case):
    """Anthropic thinking enabled -> thinkingConfig; thought parts -> a thinking block, the
    signature Gemini ends the answer with goes back on the text part it came with."""
    signature = new_signature(200)
    thoughts = ("**Adding**\nOne plus one ", "is two.")
    fake.enqueue(
        sse_reply(
            text_chunks(("1 + 1 ", "= 2."), thoughts=thoughts, usage=(20, 6), thoughts_tokens=30, signature=signature)
        )
    )
    thinking = {"type": "enabled", "budget_tokens": 2048}

    with client.messages.stream(model=MODEL, max_tokens=4096, thinking=thinking, messages=USER) as stream:
        message = stream.get_final_message()

    assert message.content[0].type == "thinking"
    assert message.content[0].thinking == "".join(thoughts)
    assert [block.text for block in message.content if block.type == "text"] == ["1 + 1 = 2."]
    assert (message.usage.input_tokens, message.usage.output_tokens) == (20, 36)  # thoughts are output
    sent = only_request(fake, case)
    assert sent.body["generationConfig"] == {
        "maxOutputTokens": 4096,
        "thinkingConfig": {"includeThoughts": True, "thinkingBudget": 2048},
    }
    (line,) = exact_log_lines(target.gateway, case)
    assert_log_usage(line, 20, 36)
    assert line["ai"]["proxy"]["usage"]["completion_tokens_details"]["reasoning_tokens"] == 30

    fake.enqueue(json_reply(text_response("Yes.", usage=(40, 1))))
    follow_up = [*USER, {"role": "assistant", "content": message.content}, {"role": "user", "content": "Sure?"}]
    client.messages.create(model=MODEL, max_tokens=4096, thinking=thinking, messages=follow_up)
    model_turn = fake.requests_for(case)[1].body["contents"][1]
    assert model_turn == {"role": "model", "parts": [{"text": "1 + 1 = 2.", "thoughtSignature": signature}]}


def test_thinking_oneshot_signed_thought_goes_back(target, fake, client, case):
    """A signed thought part -> a thinking block holding the signature; given back, it is
    the same thought part with the same signature."""
    signature = new_signature(97)
    thought = "The user wants a check."
    fake.enqueue(
        json_reply(
            response(
                [{"text": thought, "thought": True, "thoughtSignature": signature}, {"text": "All fine."}],
                usage=(25, 3),
                thoughts=12,
            )
        )
    )
    thinking = {"type": "enabled", "budget_tokens": 1024}

    message = client.messages.create(model=MODEL, max_tokens=2048, thinking=thinking, messages=USER)

    assert [block.type for block in message.content] == ["thinking", "text"]
    assert message.content[0].thinking == thought and message.content[0].signature
    assert message.content[1].text == "All fine."
    assert message.usage.output_tokens == 15
    fake.enqueue(json_reply(text_response("Yes.", usage=(40, 1))))
    follow_up = [*USER, {"role": "assistant", "content": message.content}, {"role": "user", "content": "Sure?"}]
    client.messages.create(model=MODEL, max_tokens=2048, thinking=thinking, messages=follow_up)
    model_turn = fake.requests_for(case)[1].body["contents"][1]
    assert model_turn == {
        "role": "model",
        "parts": [{"text": thought, "thought": True, "thoughtSignature": signature}, {"text": "All fine."}],
    }


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize("stream", [False, True], ids=["oneshot", "stream"])
def test_resource_exhausted_is_rate_limit_error(target, fake, client, case, stream):
    fake.enqueue(rate_limited("37s"))
    error = request_error(client, stream)
    assert isinstance(error, anthropic.RateLimitError)
    assert error.status_code == 429 and error.body["error"]["type"] == "rate_limit_error"
    assert "You exceeded your current quota" in error.message
    (line,) = exact_log_lines(target.gateway, case)
    assert line["response"]["status"] == 429
    assert_still_serving(target, case)


def test_resource_exhausted_retry_info_is_retry_after(target, fake, client, case):
    """Google gives the delay only in the RetryInfo detail; clients read retry-after (the
    issue: "RESOURCE_EXHAUSTED 429 rate_limit_error with retry-after from the RetryInfo
    detail")."""
    fake.enqueue(rate_limited("37s"))
    error = request_error(client, False)
    assert error.status_code == 429
    assert error.response.headers.get("retry-after") == "37"


@pytest.mark.parametrize("stream", [False, True], ids=["oneshot", "stream"])
def test_unavailable_is_overloaded_error(target, fake, client, case, stream):
    fake.enqueue(unavailable())
    error = request_error(client, stream)
    assert error.status_code == 529 and error.body["error"]["type"] == "overloaded_error"
    assert "The model is overloaded" in error.message
    assert exact_log_lines(target.gateway, case)[0]["response"]["status"] == 529
    assert_still_serving(target, case)


def test_invalid_argument_is_400_with_googles_message(target, fake, client, case):
    message = "The input token count (1048577) exceeds the maximum number of tokens allowed (1048576)."
    fake.enqueue(google_error_reply(400, "INVALID_ARGUMENT", message))
    error = request_error(client, False)
    assert isinstance(error, anthropic.BadRequestError)
    assert error.body["error"]["type"] == "invalid_request_error"
    assert message in error.message
    assert exact_log_lines(target.gateway, case)[0]["response"]["status"] == 400
    assert_still_serving(target, case)


def test_error_chunk_in_a_200_stream_is_event_error(target, fake, case):
    """Google may end a 200 stream with an error object as its last event."""
    fake.enqueue(sse_reply([*text_chunks(("Half ", "an "), usage=(12, 2))[:-1], error_chunk()]))

    response, stream = raw_stream(target, case)

    assert response.status_code == 200
    assert stream.names[0] == "message_start" and stream.names[-1] == "error"
    assert stream.text == "Half "  # what came before the error reached the client
    assert stream.error["type"] == "overloaded_error"
    assert "The model is overloaded" in stream.error["message"]
    (line,) = exact_log_lines(target.gateway, case)
    assert line["response"]["status"] == 200
    assert "overloaded" in line["ai"]["proxy"]["meta"]["error"]
    assert_still_serving(target, case)


def test_cut_stream_is_event_error(target, fake, case):
    """The connection closes mid-stream (no finishReason, the chunked body never ends): the
    client must not get a complete-looking answer."""
    fake.enqueue(sse_reply(text_chunks(("This answer ", "stops ", "in the mid"), usage=(12, 3))[:-1], cut=True))

    response, stream = raw_stream(target, case)

    assert response.status_code == 200
    assert stream.names[-1] == "error", stream.names
    assert stream.error["type"] in ("api_error", "overloaded_error")
    assert "message_stop" not in stream.names
    (line,) = exact_log_lines(target.gateway, case)
    assert line["ai"]["proxy"]["meta"]["error"]
    assert_still_serving(target, case)


@pytest.mark.parametrize("stream", [False, True], ids=["oneshot", "stream"])
def test_malformed_function_call_is_a_retryable_error(target, fake, client, case, stream):
    """MALFORMED_FUNCTION_CALL: never an empty success."""
    answer = response(None, finish_reason="MALFORMED_FUNCTION_CALL", usage=(80, 0))
    answer["candidates"][0]["finishMessage"] = "Malformed function call: print(default_api.get_weather(city=Oslo))"
    if not stream:
        fake.enqueue(json_reply(answer))
        error = request_error(client, False, tools=[WEATHER_TOOL])
        assert error.status_code >= 500 and error.body["error"]["type"] in ("api_error", "overloaded_error")
        assert "MALFORMED_FUNCTION_CALL" in error.message
        return
    fake.enqueue(sse_reply([answer]))
    _, events = raw_stream(target, case, tools=[WEATHER_TOOL])
    assert events.names[-1] == "error" and "MALFORMED_FUNCTION_CALL" in events.error["message"]


@pytest.mark.parametrize("stream", [False, True], ids=["oneshot", "stream"])
def test_blocked_prompt_is_400_naming_the_reason(target, fake, client, case, stream):
    """Kong's captured Model Armor block: promptFeedback.blockReason, no candidates."""
    blocked = captured_response("fails-model-armor-floor")
    fake.enqueue(sse_reply([blocked]) if stream else json_reply(blocked))
    if not stream:
        error = request_error(client, False)
        assert isinstance(error, anthropic.BadRequestError)
        assert error.body["error"]["type"] == "invalid_request_error"
        assert "MODEL_ARMOR" in error.message
        return
    _, events = raw_stream(target, case)
    assert events.names[-1] == "error"
    assert events.error["type"] == "invalid_request_error" and "MODEL_ARMOR" in events.error["message"]


def test_safety_stop_is_a_refusal(target, fake, client, case):
    """Kong's captured SAFETY answer: a candidate with no content."""
    fake.enqueue(json_reply(captured_response("fails_safety")))
    message = client.messages.create(model=MODEL, max_tokens=64, messages=USER)
    assert message.stop_reason == "refusal"
    assert message.usage.input_tokens == 319
    assert_log_usage(exact_log_lines(target.gateway, case)[0], 319, 0)


def test_max_tokens_stop(target, fake, client, case):
    pieces = [
        response([{"text": text}], finish_reason=None, usage=(10, n))
        for text, n in (("It is a long ", 5), ("story", 9))
    ]
    fake.enqueue(sse_reply([*pieces, response([{"text": " and"}], finish_reason="MAX_TOKENS", usage=(10, 16))]))
    with client.messages.stream(model=MODEL, max_tokens=16, messages=USER) as stream:
        message = stream.get_final_message()
    assert message.stop_reason == "max_tokens"
    assert message.content[0].text == "It is a long story and"


def test_error_as_a_json_array_body(target, fake, client, case):
    """streamGenerateContent's errors may come as a JSON array of error objects."""
    body = [google_error_reply(429, "RESOURCE_EXHAUSTED", "Resource exhausted. Please try again later.").body]
    fake.enqueue(Reply(429, (("Content-Type", "application/json; charset=UTF-8"),), b"[" + body[0] + b"]"))
    error = request_error(client, True)
    assert error.status_code == 429 and error.body["error"]["type"] == "rate_limit_error"
    assert "Resource exhausted" in error.message


def test_tool_choice_and_an_image(target, fake, client, case):
    """tool_choice naming a tool -> ANY + allowedFunctionNames; a base64 image -> inlineData."""
    png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
    fake.enqueue(json_reply(response([{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}])))
    content = [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": png}},
        {"type": "text", "text": "Weather where this photo was taken?"},
    ]
    message = client.messages.create(
        model=MODEL,
        max_tokens=256,
        tools=[WEATHER_TOOL],
        tool_choice={"type": "tool", "name": "get_weather"},
        messages=[{"role": "user", "content": content}],
    )
    assert message.stop_reason == "tool_use"
    sent = only_request(fake, case).body
    assert sent["toolConfig"] == {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}}
    assert sent["contents"][0]["parts"] == [
        {"inlineData": {"mimeType": "image/png", "data": png}},
        {"text": "Weather where this photo was taken?"},
    ]


# ---------------------------------------------------------------- count_tokens


def test_count_tokens_is_local(target, fake, client, case):
    tokens = client.messages.count_tokens(model=MODEL, system="Be brief.", messages=USER, tools=[WEATHER_TOOL])
    assert tokens.input_tokens > 0
    assert fake.requests_for(case) == []
    (line,) = exact_log_lines(target.gateway, case)
    assert line["response"]["status"] == 200


# ---------------------------------------------------------------- the Claude Code CLI


def test_claude_code_two_turn_bash_session(claude_bin, target, fake, case, tmp_path):
    """The real CLI: turn 1 streams a Bash functionCall (signed, as Gemini 2.5 signs its
    calls), the CLI runs it, turn 2 carries the real output back as the call's
    functionResponse and the fake reports it; the CLI prints that report."""
    token = uuid.uuid4().hex[:12]
    command = f"echo aimw-{target.name}-$((6*7))-{token}"
    printed = f"aimw-{target.name}-42-{token}"  # only running the command produces this text
    session = ToolThenReport(
        "Bash",
        {"command": command, "description": "Print the e2e token"},
        report=lambda output: f"The command printed {output}.",
        usages=((1500, 40), (1600, 15)),
        thoughts_tokens=25,
    )
    fake.responder = session

    completed, output = run_claude(
        claude_bin,
        target.gateway.url,
        f"Run `{command}` and tell me what it printed.",
        tmp_path,
        "--allowedTools",
        "Bash",
        headers={"x-e2e-case": case},
    )

    diagnostics = f"exit {completed.returncode}\nstdout: {completed.stdout[-2000:]}\nstderr: {completed.stderr[-2000:]}"
    assert completed.returncode == 0, diagnostics
    assert output is not None and output["is_error"] is False, diagnostics
    assert output["result"] == f"The command printed {printed}."
    assert output["num_turns"] == 2
    assert output["usage"]["output_tokens"] == 40 + 25 + 15
    assert session.outputs and printed in session.outputs[-1]

    requests = fake.requests_for(case)
    assert len(requests) == 2, [(r.method, r.path) for r in requests]
    for request in requests:
        assert (request.path, request.query) == (target.path("streamGenerateContent"), "alt=sse")
        target.check_credential(request)
        assert request.headers["user-agent"].startswith("claude-cli/")
        body = request.body
        assert body["generationConfig"]["maxOutputTokens"] == DEFAULT_MAX_TOKENS  # the CLI asks 32000
        assert body["systemInstruction"]["parts"]
        declared = {d["name"] for tool in body["tools"] for d in tool.get("functionDeclarations", [])}
        assert "Bash" in declared
    first, second = (request.body for request in requests)
    assert command in json.dumps(first["contents"])
    assert not any(content["role"] == "model" for content in first["contents"])
    # Turn 2: the call as Gemini gave it (text, then the signed call), then its response.
    calls = [(i, c) for i, c in enumerate(second["contents"]) if any("functionCall" in p for p in c["parts"])]
    assert len(calls) == 1
    index, model_turn = calls[0]
    assert model_turn["role"] == "model"
    texts = [p["text"] for p in model_turn["parts"] if "text" in p]
    assert "".join(texts) == "I will run the command."
    (call,) = [p for p in model_turn["parts"] if "functionCall" in p]
    assert call["functionCall"]["name"] == "Bash" and call["functionCall"]["args"]["command"] == command
    assert call["thoughtSignature"] == session.signature
    (result,) = function_responses(second["contents"][index + 1])
    assert result["name"] == "Bash"
    assert printed in result["response"]["content"]
    assert "error" not in result["response"]

    lines = target.gateway.wait_log_lines(2, case)
    assert len(lines) == 2
    for line, (prompt, completion) in zip(lines, [(1500, 40 + 25), (1600, 15)], strict=True):
        assert line["request"]["uri"] == "/v1/messages?beta=true"
        assert line["request"]["headers"]["x-api-key"] == "REDACTED"
        assert line["response"]["status"] == 200
        assert_meta(target, line, "stream")
        assert "error" not in line["ai"]["proxy"]["meta"]
        assert_log_usage(line, prompt, completion)
    assert_no_secret(target, completed.stdout, completed.stderr)


# ---------------------------------------------------------------- the Gemini API's own


def test_key_travels_in_the_header_only(gemini_gateway, gemini_fake, request, case):
    """Streamed or not, the key is in x-goog-api-key, in no query string and in no log line
    (nor the upstream_uri Kong's log keeps)."""
    with checked_fake(gemini_fake, [gemini_gateway], request):
        gemini_fake.enqueue(json_reply(text_response("one")), sse_reply(text_chunks(("two",))))
        client = sdk_client(gemini_gateway.url, case)
        assert create_or_stream(client, False, model=MODEL, max_tokens=8, messages=USER).content[0].text == "one"
        assert create_or_stream(client, True, model=MODEL, max_tokens=8, messages=USER).content[0].text == "two"
        requests = gemini_fake.requests_for(case)
        assert [r.query for r in requests] == ["", "alt=sse"]
        for sent in requests:
            _gemini_credential(sent)
        lines = exact_log_lines(gemini_gateway, case, 2)
        assert [line["upstream_uri"] for line in lines] == [
            f"/v1beta/models/{DEFAULT_MODEL}:generateContent",
            f"/v1beta/models/{DEFAULT_MODEL}:streamGenerateContent?alt=sse",
        ]
        assert GEMINI_KEY not in gemini_gateway.log_text()


def test_wrong_key_is_googles_400_without_the_key(gemini_gateway, gemini_fake, request, case):
    with checked_fake(gemini_fake, [gemini_gateway], request):
        gemini_fake.api_key = "AIzaSy" + "SomeOtherKey00000000000000000000"
        try:
            error = request_error(sdk_client(gemini_gateway.url, case), False)
        finally:
            gemini_fake.violations.clear()  # the refusal was this test's doing
            gemini_fake.api_key = GEMINI_KEY
        assert error.status_code == 400
        assert "API key not valid" in error.message
        assert GEMINI_KEY not in error.response.text
        assert GEMINI_KEY not in gemini_gateway.log_text()


@pytest.mark.parametrize("stream", [False, True], ids=["oneshot", "stream"])
def test_aimw_model_and_max_tokens(tuned_gateway, gemini_fake, request, case, stream):
    """AIMW_MODEL names the model in the path; AIMW_MAX_TOKENS caps max_tokens, smaller asks kept."""
    with checked_fake(gemini_fake, [tuned_gateway], request):
        gemini_fake.model = "gemini-2.5-pro"
        reply = (
            sse_reply(text_chunks(("ok",), model_version="gemini-2.5-pro"))
            if stream
            else json_reply(text_response("ok", model_version="gemini-2.5-pro"))
        )
        gemini_fake.enqueue(reply, reply)
        client = sdk_client(tuned_gateway.url, case)
        for asked in (32000, 500):
            message = create_or_stream(client, stream, model=MODEL, max_tokens=asked, messages=USER)
            assert message.content[0].text == "ok" and message.model == "gemini-2.5-pro"
        method = "streamGenerateContent" if stream else "generateContent"
        requests = gemini_fake.requests_for(case)
        assert [r.path for r in requests] == [f"/v1beta/models/gemini-2.5-pro:{method}"] * 2
        assert [r.body["generationConfig"]["maxOutputTokens"] for r in requests] == [1000, 500]
        lines = exact_log_lines(tuned_gateway, case, 2)
        assert {line["ai"]["proxy"]["meta"]["request_model"] for line in lines} == {"gemini-2.5-pro"}


def test_key_required(tmp_path):
    env = clean_env(AIMW_LOG_PATH=str(tmp_path / "aimw.log"))
    env.pop("GEMINI_API_KEY", None)
    result = subprocess.run(
        [sys.executable, "-c", "import recipes.gemini"], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "GEMINI_API_KEY" in result.stderr
    assert "Traceback" not in result.stderr


# ---------------------------------------------------------------- the fake refuses what Google refuses

GOOD_BODY = {
    "contents": [
        {"role": "user", "parts": [{"text": "Weather in Oslo?"}]},
        {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"content": "cold"}}}]},
    ],
    "systemInstruction": {"parts": [{"text": "Be brief."}]},
    "tools": [
        {
            "functionDeclarations": [
                {
                    "name": "get_weather",
                    "parametersJsonSchema": {
                        "type": "object",
                        "properties": {"city": {"type": "string"}},
                        "required": ["city"],
                    },
                }
            ]
        }
    ],
    "generationConfig": {"maxOutputTokens": 8192},
}


def _broken(change: Callable[[dict], None]) -> dict:
    body = json.loads(json.dumps(GOOD_BODY))
    change(body)
    return body


BROKEN_BODIES = {
    "two-user-turns": lambda b: b["contents"].insert(1, {"role": "user", "parts": [{"text": "And?"}]}),
    "starts-with-model": lambda b: b["contents"].insert(0, {"role": "model", "parts": [{"text": "Hi."}]}),
    "empty-parts": lambda b: b["contents"][0].update(parts=[]),
    "empty-text": lambda b: b["contents"][0]["parts"].append({"text": ""}),
    "two-data-fields": lambda b: b["contents"][0]["parts"][0].update(
        inlineData={"mimeType": "image/png", "data": "AAAA"}
    ),
    "response-misnamed": lambda b: b["contents"][2]["parts"][0]["functionResponse"].update(name="get_time"),
    "call-unanswered": lambda b: b["contents"][2].update(parts=[{"text": "cold"}]),
    "response-without-call": lambda b: b["contents"][1].update(parts=[{"text": "Let me see."}]),
    "response-not-an-object": lambda b: b["contents"][2]["parts"][0]["functionResponse"].update(response="cold"),
    "anthropic-field": lambda b: b.update(max_tokens=10),
    "system-without-parts": lambda b: b.update(systemInstruction={"parts": []}),
    "json-schema-keyword": lambda b: b["tools"][0]["functionDeclarations"][0]["parametersJsonSchema"].update(
        {"$schema": "https://json-schema.org/draft/2020-12/schema"}
    ),
    "exclusive-minimum": lambda b: b["tools"][0]["functionDeclarations"][0]["parametersJsonSchema"][
        "properties"
    ].update(days={"type": "integer", "exclusiveMinimum": 0}),
    "openapi-additional-properties": lambda b: b["tools"][0]["functionDeclarations"][0].update(
        parameters={"type": "OBJECT", "additionalProperties": False}
    ),
    "required-not-a-property": lambda b: b["tools"][0]["functionDeclarations"][0]["parametersJsonSchema"].update(
        required=["town"]
    ),
    "duplicate-function": lambda b: b["tools"].append(GOOD_BODY["tools"][0]),
    "generation-config-key": lambda b: b["generationConfig"].update(max_output_tokens=5),
    "max-output-tokens": lambda b: b["generationConfig"].update(maxOutputTokens=128000),
    "thinking-config-key": lambda b: b["generationConfig"].update(thinkingConfig={"budget_tokens": 5}),
    "invented-signature": lambda b: b["contents"][1]["parts"][0].update(thoughtSignature="c2lnbmVk"),
    "allowed-names-without-any": lambda b: b.update(
        toolConfig={"functionCallingConfig": {"mode": "AUTO", "allowedFunctionNames": ["get_weather"]}}
    ),
}


@pytest.fixture(scope="module")
def lone_fake() -> Iterator[FakeGeminiServer]:
    """A fake Gemini API no gateway talks to."""
    with FakeGeminiServer(gemini_api(), api_key=GEMINI_KEY) as server:
        yield server


@pytest.fixture
def strict_fake(lone_fake) -> FakeGeminiServer:
    lone_fake.restore()
    return lone_fake


def _post(
    fake: FakeGeminiServer, body, *, method: str = "generateContent", query: str = "", **headers: str
) -> httpx.Response:
    url = f"{fake.url}/v1beta/models/{DEFAULT_MODEL}:{method}" + (f"?{query}" if query else "")
    return httpx.post(url, json=body, headers={"x-goog-api-key": GEMINI_KEY, **headers}, trust_env=False, timeout=10)


def test_the_fake_accepts_a_good_request(strict_fake):
    strict_fake.enqueue(json_reply(text_response("ok")), sse_reply(text_chunks(("ok",))))
    assert _post(strict_fake, GOOD_BODY).status_code == 200
    assert _post(strict_fake, GOOD_BODY, method="streamGenerateContent", query="alt=sse").status_code == 200
    assert strict_fake.violations == []


@pytest.mark.parametrize("name", sorted(BROKEN_BODIES))
def test_the_fake_refuses_a_body_google_refuses(strict_fake, name):
    answer = _post(strict_fake, _broken(BROKEN_BODIES[name]))
    assert answer.status_code == 400 and answer.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert strict_fake.violations


@pytest.mark.parametrize(
    ("method", "query", "headers", "status"),
    [
        ("generateContent", f"key={GEMINI_KEY}", {}, 400),
        ("streamGenerateContent", "", {}, 400),
        ("generateContent", "alt=sse", {}, 400),
        ("generateContent", "", {"x-goog-api-key": "AIzaSyWrong"}, 400),
        ("generateContent", "", {"authorization": "Bearer sk-ant-client"}, 400),
        ("generateContent", "", {"anthropic-version": "2023-06-01"}, 400),
        ("countTokens", "", {}, 404),
    ],
    ids=[
        "key-in-query",
        "stream-without-alt-sse",
        "alt-sse-without-stream",
        "wrong-key",
        "client-bearer",
        "anthropic-header",
        "unknown-method",
    ],
)
def test_the_fake_refuses_a_request_google_refuses(strict_fake, method, query, headers, status):
    assert _post(strict_fake, GOOD_BODY, method=method, query=query, **headers).status_code == status
    assert strict_fake.violations


def test_the_fake_wants_each_signature_back_where_it_gave_it(strict_fake):
    signature = new_signature(40)
    strict_fake.enqueue(sse_reply(function_call_chunks([FunctionCall("get_weather", {"city": "Oslo"}, signature)])))
    question = {"contents": GOOD_BODY["contents"][:1]}
    assert _post(strict_fake, question, method="streamGenerateContent", query="alt=sse").status_code == 200
    lost = _post(strict_fake, GOOD_BODY)  # the call again, without its signature
    assert lost.status_code == 400 and "thought_signature" in lost.text
    strict_fake.violations.clear()
    moved = _broken(lambda b: b["contents"][0]["parts"][0].update(thoughtSignature=signature))
    assert _post(strict_fake, moved).status_code == 400  # on a user turn's text
    strict_fake.enqueue(json_reply(text_response("ok")))
    signed = _broken(lambda b: b["contents"][1]["parts"][0].update(thoughtSignature=signature))
    assert _post(strict_fake, signed).status_code == 200
