"""TranslateMiddleware at the ASGI level, with the fake inner app standing in for the provider."""

from __future__ import annotations

import json

import pytest

from aimw.exchange import Attempt, Usage, exchange_of
from aimw.middleware.translate import TranslateMiddleware
from aimw.providers.huggingface import HUGGINGFACE
from aimw.token_estimate import estimate_input_tokens
from aimw.translators.anthropic import ANTHROPIC_MESSAGES
from aimw.translators.anthropic.messages import decode_request
from aimw.upstream import UpstreamBrokeOff, UpstreamTimeout, UpstreamUnreachable
from tests.asgi_helpers import InnerApp, RecordingSend, ScriptedReceive, call, http_scope, split_at
from tests.shared_data import CORPUS, KONG

pytestmark = pytest.mark.anyio

MODEL = "meta-llama/Llama-3.3-70B-Instruct"
HF_RESPONSES = KONG / "huggingface" / "llm-v1-chat" / "responses"

CLIENT_HEADERS = [
    (b"content-type", b"application/json"),
    (b"x-api-key", b"sk-ant-test-key"),
    (b"anthropic-version", b"2023-06-01"),
    (b"anthropic-beta", b"claude-code-20250219,interleaved-thinking-2025-05-14"),
    (b"anthropic-dangerous-direct-browser-access", b"true"),
    (b"user-agent", b"claude-cli/2.1.329 (external, sdk-cli)"),
]


def messages_body(stream: bool = False, **extra) -> bytes:
    body = {
        "model": "claude-opus-5-5",
        "messages": [{"role": "user", "content": "What is 1 + 1?"}],
        "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        "max_tokens": 512,
        "stream": stream,
        **extra,
    }
    return json.dumps(body).encode()


def translate(inner, **kwargs) -> TranslateMiddleware:
    kwargs.setdefault("model", MODEL)
    return TranslateMiddleware(
        inner, wire_format=HUGGINGFACE.wire_format, default_model=HUGGINGFACE.default_model, **kwargs
    )


def good_completion() -> bytes:
    return (HF_RESPONSES / "good.json").read_bytes()


async def post_messages(app, body: bytes, *, path="/v1/messages", query=b"", chunks=None) -> tuple[RecordingSend, dict]:
    scope = http_scope(path=path, query=query, headers=CLIENT_HEADERS, body=body)
    response = await call(app, scope, chunks or [body])
    return response, scope


def assert_anthropic_error(response: RecordingSend, status: int, error_type: str) -> str:
    assert response.status == status, response.body
    assert response.header(b"content-type") == b"application/json"
    assert response.header(b"content-length") == str(len(response.body)).encode()
    assert response.complete
    error = response.json()
    assert error["type"] == "error"
    assert error["error"]["type"] == error_type
    assert isinstance(error["error"]["message"], str) and error["error"]["message"]
    return error["error"]["message"]


# ------------------------------------------------------------------ request side


@pytest.mark.parametrize(
    "path, query",
    [("/v1/messages", b""), ("/v1/messages", b"beta=true"), ("/anything/v1/messages", b"beta=true")],
)
async def test_request_becomes_a_chat_completions_request(path, query):
    inner = InnerApp(body=good_completion())
    body = messages_body(stream=True)
    _, scope = await post_messages(translate(inner), body, path=path, query=query, chunks=split_at(body, 7, 90))

    assert inner.calls == 1
    assert inner.scope["method"] == "POST"
    assert inner.scope["path"] == "/v1/chat/completions"
    assert inner.scope["raw_path"] == b"/v1/chat/completions"
    assert inner.scope["root_path"] == ""
    assert inner.scope["query_string"] == b""  # ?beta=true is Anthropic's only
    for name in (b"anthropic-version", b"anthropic-beta", b"anthropic-dangerous-direct-browser-access"):
        assert inner.header_values(name) == []
    assert inner.header_values(b"content-type") == [b"application/json"]
    assert inner.header_values(b"content-length") == [str(len(inner.body)).encode()]
    assert inner.header_values(b"user-agent") == [b"claude-cli/2.1.329 (external, sdk-cli)"]

    chat = json.loads(inner.body)
    assert chat["model"] == MODEL
    assert chat["stream"] is True
    assert chat["max_tokens"] == 512
    assert chat["messages"][0]["role"] == "system"
    assert chat["messages"][-1] == {"role": "user", "content": "What is 1 + 1?"}
    assert "cache_control" not in inner.body.decode()

    exchange = exchange_of(scope)
    assert exchange is exchange_of(inner.scope)
    assert exchange.request_model == MODEL
    assert exchange.request_mode == "stream"
    # released once translated (a long stream must not pin them), with what an early end needs
    assert exchange.request_body is None
    assert exchange.messages_request is None
    assert exchange.input_tokens_estimate == estimate_input_tokens(decode_request(body))


async def test_headers_named_in_connection_stay_with_the_client():
    """On the allowlist (user-agent) or added to it (x-trace), a header the client's
    ``Connection`` names is hop-by-hop (RFC 9110 §7.6.1): it does not go on."""
    inner = InnerApp(body=good_completion())
    body = messages_body()
    headers = [
        *CLIENT_HEADERS,
        (b"connection", b"keep-alive, User-Agent , x-trace"),
        (b"x-trace", b"t1"),
        (b"x-request-id", b"r1"),
    ]
    await call(translate(inner, extra_forwarded_headers=[b"x-trace"]), http_scope(headers=headers, body=body), [body])

    assert inner.calls == 1
    assert inner.header_values(b"user-agent") == []
    assert inner.header_values(b"x-trace") == []
    assert inner.header_values(b"connection") == []
    assert inner.header_values(b"x-request-id") == [b"r1"]


async def test_model_falls_back_to_the_clients_then_the_providers_default():
    inner = InnerApp(body=good_completion())
    app = translate(inner, model=None)

    _, scope = await post_messages(app, messages_body())
    assert json.loads(inner.body)["model"] == "claude-opus-5-5"
    assert exchange_of(scope).request_mode == "oneshot"

    body = json.loads(messages_body())
    del body["model"]
    _, scope = await post_messages(app, json.dumps(body).encode())
    assert json.loads(inner.body)["model"] == HUGGINGFACE.default_model
    assert exchange_of(scope).request_model == HUGGINGFACE.default_model


async def test_a_real_claude_code_request_translates():
    body = (CORPUS / "001-default-text-json-2.1.329.json").read_bytes()
    inner = InnerApp(body=good_completion())
    response, _ = await post_messages(translate(inner), body, query=b"beta=true")
    assert response.status == 200
    chat = json.loads(inner.body)
    assert chat["model"] == MODEL
    for anthropic_only in ("context_management", "output_config", "thinking", "metadata"):
        assert anthropic_only not in chat
    assert '"cache_control"' not in inner.body.decode()
    assert '"defer_loading"' not in inner.body.decode()


# ------------------------------------------------------------------ response side


async def test_json_answer_becomes_an_anthropic_message():
    inner = InnerApp(
        body=good_completion(),
        headers=[(b"content-type", b"application/json"), (b"content-length", b"99999"), (b"x-request-id", b"r1")],
    )
    inner.chunks = split_at(good_completion(), 10, 11, 300)
    response, _ = await post_messages(translate(inner), messages_body())

    assert response.status == 200
    assert response.complete
    assert response.header(b"content-type") == b"application/json"
    assert response.header(b"content-length") == str(len(response.body)).encode()
    assert response.header(b"x-request-id") == b"r1"
    message = response.json()
    assert message["type"] == "message"
    assert message["role"] == "assistant"
    assert message["model"] == "mistralai/Mistral-7B-Instruct-v0.2"
    assert message["content"] == [
        {"type": "text", "text": json.loads(good_completion())["choices"][0]["message"]["content"]}
    ]
    assert message["stop_reason"] == "end_turn"
    assert message["usage"]["input_tokens"] == 26
    assert message["usage"]["output_tokens"] == 40


@pytest.mark.parametrize(
    "status, body, client_status, error_type, needle",
    [
        (400, (HF_RESPONSES / "bad_request.json").read_bytes(), 400, "invalid_request_error", "Template error"),
        (401, (HF_RESPONSES / "unauthorized.json").read_bytes(), 401, "authentication_error", "token seems invalid"),
        (403, b'{"error": {"message": "no access"}}', 403, "permission_error", "no access"),
        (404, b'{"error": "Model not found"}', 404, "not_found_error", "Model not found"),
        (413, b"too big", 413, "request_too_large", "413"),
        (429, b'{"error": {"message": "slow down", "type": "requests"}}', 429, "rate_limit_error", "slow down"),
        (500, (KONG / "openai/llm-v1-chat/responses/internal_server_error.html").read_bytes(), 500, "api_error", "500"),
        (503, (HF_RESPONSES / "bad_response_model_load.json").read_bytes(), 529, "overloaded_error", "loading"),
        (504, (HF_RESPONSES / "bad_response_timeout.json").read_bytes(), 504, "timeout_error", "time out"),
        (
            502,
            b'{"type":"error","error":{"type":"api_error","message":"the upstream provider is unreachable"}}',
            502,
            "api_error",
            "unreachable",
        ),
    ],
)
async def test_provider_errors_become_anthropic_errors(status, body, client_status, error_type, needle):
    inner = InnerApp(status, body, headers=[(b"content-type", b"text/html"), (b"content-length", b"5")])
    inner.chunks = split_at(body, 3)
    response, _ = await post_messages(translate(inner), messages_body(stream=True))
    message = assert_anthropic_error(response, client_status, error_type)
    assert needle in message
    assert b"<html" not in response.body.lower()


async def test_retry_after_and_model_header_survive_an_error():
    inner = InnerApp(
        429,
        b'{"error": "rate limited"}',
        headers=[
            (b"content-type", b"application/json"),
            (b"retry-after", b"7"),
            (b"x-aimw-llm-model", b"huggingface/" + MODEL.encode()),
            (b"set-cookie", b"session=1"),
        ],
    )
    response, _ = await post_messages(translate(inner), messages_body(stream=True))
    assert_anthropic_error(response, 429, "rate_limit_error")
    assert response.header(b"retry-after") == b"7"
    assert response.header(b"x-aimw-llm-model") == b"huggingface/" + MODEL.encode()
    assert response.header(b"set-cookie") is None


async def test_event_stream_passes_through_untouched():
    chunks = [b"event: message_start\ndata: {}\n\n", b"event: ping\nda", b"ta: {}\n\n", b""]
    headers = [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache")]
    inner = InnerApp(200, headers=headers, chunks=chunks)
    response, _ = await post_messages(translate(inner), messages_body(stream=True))
    assert response.messages == [
        {"type": "http.response.start", "status": 200, "headers": headers},
        *({"type": "http.response.body", "body": c, "more_body": i < 3} for i, c in enumerate(chunks)),
    ]


async def test_invalid_provider_json_is_502():
    inner = InnerApp(200, b"<html>proxy says hi</html>")
    response, _ = await post_messages(translate(inner), messages_body())
    assert_anthropic_error(response, 502, "api_error")


async def test_provider_answer_over_the_limit_is_502():
    inner = InnerApp(200, chunks=[b"x" * 60, b"x" * 60])
    response, _ = await post_messages(translate(inner, max_response_body_size=100), messages_body())
    assert_anthropic_error(response, 502, "api_error")


# ------------------------------------------------------------------ other paths (local answers: test_endpoints.py)


@pytest.mark.parametrize(
    "method, path",
    [
        ("GET", "/v1/models"),
        ("GET", "/v1/messages"),
        ("POST", "/v1/complete"),
        ("POST", "/v1/messages/batches"),
        ("GET", "/"),
        ("HEAD", "/"),
        ("POST", "/v1/messages/count_tokens"),
    ],
)
async def test_other_endpoints_are_404(method, path):
    inner = InnerApp(body=b"")
    response = await call(translate(inner), http_scope(method, path, body=b""))
    message = assert_anthropic_error(response, 404, "not_found_error")
    assert path in message
    assert inner.calls == 0


# ------------------------------------------------------------------ client errors


@pytest.mark.parametrize(
    "body, needles",
    [
        (b'{"messages": [', ["not valid JSON"]),
        (b"hello", ["not valid JSON"]),
        (b'{"model": "x", "max_tokens": 5}', ["messages"]),
        (b'{"messages": [{"role": "robot", "content": "hi"}]}', ["role", "messages[0]"]),
        (b'{"messages": [{"role": "user", "content": 5}]}', ["content"]),
        (b'{"messages": [], "stream": "yes"}', ["stream"]),
    ],
)
async def test_bad_requests_are_400_naming_the_problem(body, needles):
    inner = InnerApp(body=good_completion())
    app = translate(inner)
    response, _ = await post_messages(app, body)
    message = assert_anthropic_error(response, 400, "invalid_request_error")
    for needle in needles:
        assert needle in message
    assert inner.calls == 0
    # the same instance keeps serving
    response, _ = await post_messages(app, messages_body())
    assert response.status == 200 and inner.calls == 1


async def test_body_over_the_limit_is_413():
    inner = InnerApp(body=good_completion())
    body = messages_body()
    response, _ = await post_messages(translate(inner, max_body_size=len(body) - 1), body, chunks=split_at(body, 20))
    assert_anthropic_error(response, 413, "request_too_large")
    assert inner.calls == 0


async def test_unexpected_failure_before_responding_is_500_without_details():
    inner = InnerApp(
        body=good_completion(), error=RuntimeError("kaboom in /secret/path.py line 12"), error_before_start=True
    )
    app = translate(inner)
    response, scope = await post_messages(app, messages_body())
    message = assert_anthropic_error(response, 500, "api_error")
    assert "kaboom" not in response.body.decode()
    assert "Traceback" not in response.body.decode()
    assert message == "internal gateway error (RuntimeError)"
    assert exchange_of(scope).error == "api_error: internal gateway error (RuntimeError)"

    inner.error = None  # the same instance keeps serving
    response, _ = await post_messages(app, messages_body())
    assert response.status == 200
    assert response.json()["type"] == "message"


async def test_failure_after_the_stream_started_is_raised():
    inner = InnerApp(
        200,
        headers=[(b"content-type", b"text/event-stream")],
        chunks=[b"event: ping\ndata: {}\n\n"],
        error=RuntimeError("cut"),
    )
    send = RecordingSend()
    body = messages_body(stream=True)
    with pytest.raises(RuntimeError, match="cut"):
        await translate(inner)(http_scope(body=body), ScriptedReceive([body], disconnect_now=True), send)
    assert send.status == 200  # no second http.response.start was attempted
    assert len(send.messages) == 2


async def test_client_gone_while_sending_the_body():
    inner = InnerApp(body=b"")
    send = RecordingSend()
    receive = ScriptedReceive([b'{"messages"'], disconnect_now=True, complete=False)
    await translate(inner)(http_scope(body=b'{"messages": []}'), receive, send)
    assert send.messages == []
    assert inner.calls == 0


async def test_lifespan_passes_through():
    inner = InnerApp()
    scope = {"type": "lifespan", "asgi": {"version": "3.0"}}
    await translate(inner)(scope, ScriptedReceive(), RecordingSend())
    assert inner.scopes == [scope]


async def test_one_instance_keeps_serving_through_every_kind_of_error():
    inner = InnerApp(body=good_completion())
    app = translate(inner, max_body_size=4096)
    good = messages_body()

    async def good_request():
        inner.status, inner.headers, inner.chunks, inner.error = (
            200,
            [(b"content-type", b"application/json")],
            [good_completion()],
            None,
        )
        response, _ = await post_messages(app, good)
        assert response.status == 200 and response.json()["type"] == "message"

    failures = [
        lambda: post_messages(app, b"{not json"),
        lambda: post_messages(app, b'{"messages": [{"role": "robot", "content": "x"}]}'),
        lambda: post_messages(app, b'{"messages": [], "pad": "' + b"x" * 5000 + b'"}'),
        lambda: call(app, http_scope("GET", "/v1/models")),
    ]
    for failure in failures:
        response = await failure()
        response = response[0] if isinstance(response, tuple) else response
        assert response.status in (400, 404, 413)
        await good_request()
    for status in (429, 500, 503):
        inner.status, inner.chunks = status, [b'{"error": "nope"}']
        response, _ = await post_messages(app, good)
        assert response.status == (529 if status == 503 else status)
        await good_request()
    inner.error = RuntimeError("unexpected")
    response, _ = await post_messages(app, good)
    assert response.status == 500
    await good_request()


@pytest.mark.parametrize("stream", [False, True])
async def test_only_safe_provider_headers_reach_the_client(stream):
    """Cookies and the operator's organisation / project ids stay in the gateway."""
    provider_headers = [
        (b"x-request-id", b"req-1"),
        (b"x-ratelimit-remaining-requests", b"99"),
        (b"set-cookie", b"__cf_bm=abc"),
        (b"openai-organization", b"org-secret123"),
        (b"openai-project", b"proj-secret"),
        (b"server", b"cloudflare"),
    ]
    if stream:
        headers = [
            (b"content-type", b"text/event-stream; charset=utf-8"),
            (b"cache-control", b"no-cache"),
            *provider_headers,
        ]
        inner = InnerApp(200, headers=headers, chunks=[b"event: ping\ndata: {}\n\n", b""])
    else:
        inner = InnerApp(200, good_completion(), headers=[(b"content-type", b"application/json"), *provider_headers])
    response, _ = await post_messages(translate(inner), messages_body(stream=stream))
    assert response.status == 200
    names = {name for name, _ in response.messages[0]["headers"]}
    assert {b"x-request-id", b"x-ratelimit-remaining-requests", b"content-type"} <= names
    assert not names & {b"set-cookie", b"openai-organization", b"openai-project", b"server"}


async def test_an_answer_that_broke_off_below_is_502():
    """UpstreamApp raises UpstreamBrokeOff when a JSON answer is cut: what arrived is never translated as whole."""
    reason = "the upstream provider's answer broke off (ClientPayloadError)"
    inner = InnerApp(200, chunks=[good_completion()[:40]], error=UpstreamBrokeOff(reason))
    response, scope = await post_messages(translate(inner), messages_body())
    assert assert_anthropic_error(response, 502, "api_error") == reason
    assert exchange_of(scope).error == f"api_error: {reason}"


@pytest.mark.parametrize(
    "failure, status, error_type",
    [
        (UpstreamUnreachable("the upstream provider is unreachable (ClientConnectorError)"), 502, "api_error"),
        (UpstreamTimeout("the upstream provider did not answer in time"), 504, "timeout_error"),
        (UpstreamBrokeOff("the upstream provider's answer broke off (ServerDisconnectedError)"), 502, "api_error"),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
async def test_upstream_failures_before_any_answer_become_anthropic_errors(failure, status, error_type, stream):
    inner = InnerApp(error=failure, error_before_start=True)
    response, scope = await post_messages(translate(inner), messages_body(stream=stream))
    assert assert_anthropic_error(response, status, error_type) == failure.reason
    assert exchange_of(scope).error == f"{error_type}: {failure.reason}"


async def test_an_upstream_failure_after_the_stream_started_is_only_recorded():
    """SSERewriteMiddleware ends such a stream with event: error; nothing more can be answered."""
    inner = InnerApp(
        200,
        headers=[(b"content-type", b"text/event-stream")],
        chunks=[b"event: ping\ndata: {}\n\n"],
        error=UpstreamBrokeOff("late"),
    )
    response, scope = await post_messages(translate(inner), messages_body(stream=True))
    assert response.status == 200
    assert [m["type"] for m in response.messages] == ["http.response.start", "http.response.body"]
    assert exchange_of(scope).error == "api_error: late"


# ------------------------------------------------------------------ what the exchange records


async def test_a_json_answer_records_usage_model_and_first_token():
    inner = InnerApp(body=good_completion())
    response, scope = await post_messages(translate(inner), messages_body())
    exchange = exchange_of(scope)
    message = response.json()
    assert exchange.usage == Usage(input_tokens=26, output_tokens=40)
    assert (message["usage"]["input_tokens"], message["usage"]["output_tokens"]) == (26, 40)
    assert exchange.response_model == "mistralai/Mistral-7B-Instruct-v0.2"
    assert exchange.first_token_ns > 0
    assert exchange.error is None


async def test_log_meta_is_recorded():
    inner = InnerApp(body=good_completion())
    _, scope = await post_messages(translate(inner, log_meta={"azure_instance_id": "my-instance"}), messages_body())
    assert exchange_of(scope).log_meta == {"azure_instance_id": "my-instance"}


async def test_a_provider_error_marks_the_attempt_and_the_exchange():
    def record_the_attempt(scope) -> None:
        attempt = Attempt("huggingface", MODEL, "https", "router.huggingface.co", 443, "/v1/chat/completions")
        exchange_of(scope).attempts.append(attempt)

    inner = InnerApp(429, b'{"error": {"message": "slow down", "type": "requests"}}', on_request=record_the_attempt)
    response, scope = await post_messages(translate(inner), messages_body())
    assert_anthropic_error(response, 429, "rate_limit_error")
    exchange = exchange_of(scope)
    [attempt] = exchange.attempts
    assert attempt.failure == "provider answered HTTP 429"
    assert exchange.error == "rate_limit_error: slow down"
    assert exchange.usage == Usage()


async def test_the_body_a_layer_above_kept_is_used_without_reading_again():
    inner = InnerApp(body=good_completion())
    body = messages_body()
    scope = http_scope(headers=CLIENT_HEADERS, body=body)
    exchange_of(scope).request_body = body  # as StripFields left it
    receive = ScriptedReceive(disconnect_now=True)
    send = RecordingSend()
    await translate(inner)(scope, receive, send)
    assert send.status == 200
    assert receive.calls == 0
    assert json.loads(inner.body)["messages"][-1] == {"role": "user", "content": "What is 1 + 1?"}


async def test_a_second_attempt_re_translates_without_reading_or_parsing_again():
    """What a failover layer does: the same exchange through the leg twice."""
    inner = InnerApp(body=good_completion())
    app = translate(inner)
    body = messages_body()
    scope = http_scope(headers=CLIENT_HEADERS, body=body)
    exchange = exchange_of(scope)
    parsed = exchange.messages_request = decode_request(body)  # as StripFields(parsed=True) leaves it
    await call(app, scope, [body])
    first_upstream_body = inner.body
    assert exchange.messages_request is None  # released once translated

    exchange.messages_request, exchange.request_body = parsed, body  # what Failover restores before each try
    receive = ScriptedReceive(disconnect_now=True)
    send = RecordingSend()
    await app(scope, receive, send)
    assert send.status == 200
    assert receive.calls == 0
    assert inner.calls == 2
    assert inner.body == first_upstream_body


# ------------------------------------------------------------------ Anthropic's own format, passed through

PASSTHROUGH_HEADERS = [*CLIENT_HEADERS, (b"content-length", b"1")]
ANTHROPIC_MESSAGE = (
    b'{"id":"msg_2","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929",'
    b'"content":[{"type":"text","text":"2"}],"stop_reason":"end_turn","stop_sequence":null,'
    b'"usage":{"input_tokens":26,"output_tokens":40,"cache_creation_input_tokens":3,"cache_read_input_tokens":7}}'
)


def passthrough(inner, **kwargs) -> TranslateMiddleware:
    return TranslateMiddleware(inner, wire_format=ANTHROPIC_MESSAGES, default_model="claude-sonnet-4-5", **kwargs)


async def test_passthrough_sends_the_request_as_the_client_did():
    inner = InnerApp(body=ANTHROPIC_MESSAGE)
    body = messages_body(stream=True)
    scope = http_scope(path="/anything/v1/messages", query=b"beta=true", headers=PASSTHROUGH_HEADERS, body=body)
    exchange = exchange_of(scope)
    exchange.request_model, exchange.request_mode = "claude-opus-5-5", "stream"  # as StripFields recorded them
    await call(passthrough(inner), scope, split_at(body, 9))

    assert inner.body == body  # byte for byte
    assert (inner.scope["path"], inner.scope["raw_path"]) == ("/anything/v1/messages", b"/anything/v1/messages")
    assert inner.scope["query_string"] == b"beta=true"
    for name, value in CLIENT_HEADERS:
        if name != b"content-type":
            assert inner.header_values(name) == [value]
    assert inner.header_values(b"content-type") == [b"application/json"]
    assert inner.header_values(b"content-length") == [str(len(body)).encode()]
    assert (exchange.request_model, exchange.request_mode) == ("claude-opus-5-5", "stream")
    assert exchange.messages_request is None  # never parsed


async def test_passthrough_model_is_the_override_then_the_default():
    inner = InnerApp(body=ANTHROPIC_MESSAGE)
    _, scope = await post_messages(passthrough(inner), messages_body())
    assert exchange_of(scope).request_model == "claude-sonnet-4-5"
    assert exchange_of(scope).request_mode is None  # no StripFields read the raw fields: the log infers it
    _, scope = await post_messages(passthrough(inner, model="claude-haiku-4-5"), messages_body())
    assert exchange_of(scope).request_model == "claude-haiku-4-5"
    assert inner.body == messages_body()  # the model is StripFields' to set in the body


async def test_passthrough_json_answer_passes_byte_for_byte_and_is_recorded():
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", b"99999"),
        (b"request-id", b"req_1"),
        (b"anthropic-ratelimit-tokens-remaining", b"1000"),
    ]
    inner = InnerApp(headers=headers, chunks=split_at(ANTHROPIC_MESSAGE, 20, 21))
    response, scope = await post_messages(passthrough(inner), messages_body())
    assert response.status == 200
    assert response.body == ANTHROPIC_MESSAGE
    length = (b"content-length", str(len(ANTHROPIC_MESSAGE)).encode())
    assert response.header_list == [headers[0], *headers[2:], length]  # all but the provider's length
    exchange = exchange_of(scope)
    assert exchange.usage == Usage(
        input_tokens=26, output_tokens=40, cache_creation_input_tokens=3, cache_read_input_tokens=7
    )
    assert exchange.response_model == "claude-sonnet-4-5-20250929"


async def test_passthrough_anthropic_errors_pass_unchanged():
    error = b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_9"}'
    inner = InnerApp(529, error)
    response, scope = await post_messages(passthrough(inner), messages_body())
    assert response.status == 529
    assert response.body == error
    assert exchange_of(scope).error == "overloaded_error: Overloaded"


async def test_passthrough_other_paths_are_relayed_untouched():
    inner = InnerApp(200, b'{"input_tokens": 12}', headers=[(b"content-type", b"application/json"), (b"x-a", b"1")])
    body = b'{"messages": []}'
    scope = http_scope(path="/v1/messages/count_tokens", query=b"beta=true", headers=PASSTHROUGH_HEADERS, body=body)
    response = await call(passthrough(inner), scope, [body])
    assert {key: value for key, value in inner.scope.items() if key != "headers"} == {
        key: value for key, value in scope.items() if key != "headers"
    }
    assert inner.body == body
    assert response.messages == [
        {"type": "http.response.start", "status": 200, "headers": [*inner.headers, (b"content-length", b"20")]},
        {"type": "http.response.body", "body": b'{"input_tokens": 12}', "more_body": False},
    ]
