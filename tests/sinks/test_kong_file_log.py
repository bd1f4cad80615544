"""KongFileLog under ObserveMiddleware: one Kong-shaped JSON line per exchange, secrets redacted.

The log never decodes a body: the fakes below fill the exchange as the real layers do, or the
real layers (StripFields, Translate, SSERewrite with Anthropic's own format) run above a fake
upstream that records its attempt as UpstreamApp does."""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Callable

import pytest

from aimw.asgi import ClientDisconnected, read_body
from aimw.errors import register_secret
from aimw.exchange import Attempt, Usage, exchange_of
from aimw.middleware.observe import ObserveMiddleware
from aimw.middleware.sse_rewrite import SSERewriteMiddleware
from aimw.middleware.strip_fields import StripFieldsMiddleware
from aimw.middleware.translate import TranslateMiddleware
from aimw.sinks import KongFileLog
from aimw.translators.anthropic import ANTHROPIC_MESSAGES
from aimw.types import Scope
from tests.asgi_helpers import InnerApp, RecordingSend, ScriptedReceive, call, http_scope, split_at

pytestmark = pytest.mark.anyio

CLIENT_KEY = "sk-ant-client-supersecret-0001"
CLIENT_TOKEN = "client-bearer-supersecret-0002"
REQUEST_BODY = b'{"messages":[{"role":"user","content":"What is 1 + 1?"}],"max_tokens":512,"stream":true}'
CLIENT_HEADERS = [
    (b"x-api-key", CLIENT_KEY.encode()),
    (b"authorization", b"Bearer " + CLIENT_TOKEN.encode()),
    (b"content-type", b"application/json"),
    (b"accept", b"application/json"),
    (b"accept", b"text/event-stream"),
]
HF_MODEL = "meta-llama/Llama-3.3-70B-Instruct"

SSE_EVENTS = [
    b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant",'
    b'"model":"provider-model-7b","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":100,'
    b'"output_tokens":1,"cache_creation_input_tokens":5,"cache_read_input_tokens":20}}}\n\n',
    b'event: content_block_start\ndata: {"type":"content_block_start","index":0,'
    b'"content_block":{"type":"text","text":""}}\n\n',
    b'event: ping\ndata: {"type":"ping"}\n\n',
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
    b'"delta":{"type":"text_delta","text":"2"}}\n\n',
    b'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n',
    b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},'
    b'"usage":{"output_tokens":30}}\n\n',
    b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},'
    b'"usage":{"output_tokens":42}}\n\n',
    b'event: message_stop\ndata: {"type":"message_stop"}\n\n',
]
SSE_BODY = b"".join(SSE_EVENTS)
JSON_MESSAGE = (
    b'{"id":"msg_2","type":"message","role":"assistant","model":"json-model","content":[{"type":"text","text":"2"}],'
    b'"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":26,"output_tokens":40,'
    b'"cache_creation_input_tokens":0,"cache_read_input_tokens":0}}'
)
MS = 1_000_000  # ns


def hf_attempt(**fields) -> Attempt:
    return Attempt("huggingface", HF_MODEL, "https", "router.huggingface.co", 443, "/v1/chat/completions", **fields)


def translating(mode: str = "stream", status: int = 200) -> Callable[[Scope], None]:
    """What StripFields, UpstreamApp and the layer that wrote the answer record for a request
    in ``mode``: one attempt answered ``status`` in 50 ms, the first token 20 ms after it was
    sent, the usage."""

    def fill(scope: Scope) -> None:
        exchange = exchange_of(scope)
        exchange.provider_name = "huggingface"
        exchange.request_model = HF_MODEL
        exchange.request_mode = mode
        sent = exchange.received_ns + 1 * MS
        exchange.attempts.append(hf_attempt(sent_ns=sent, last_byte_ns=sent + 50 * MS, status=status))
        exchange.first_token_ns = sent + 20 * MS
        exchange.response_model = "provider-model-7b"
        exchange.usage = Usage(
            input_tokens=100, output_tokens=42, cache_creation_input_tokens=5, cache_read_input_tokens=20
        )

    return fill


def pass_through(scope: Scope) -> None:
    """What the pass-through stack records: the provider and model are known, request_mode is not."""
    exchange = exchange_of(scope)
    exchange.provider_name = "anthropic"
    exchange.request_model = "claude-sonnet-4-5"


def gateway(
    chunks, content_type=b"text/event-stream; charset=utf-8", *, status=200, mode="stream", fill=None, error=None
) -> InnerApp:
    """Stands in for the stack below Observe: reads the body, fills the exchange like the real
    layers do (``fill``, by default :func:`translating` in ``mode``; ``mode`` None: no
    provider, nothing filled), answers ``chunks`` with ``content_type`` and a provider
    cookie (or raises ``error`` before answering)."""
    if fill is None and mode is not None:
        fill = translating(mode, status)
    headers = [(b"content-type", content_type), (b"set-cookie", b"provider-session=zzz")]
    return InnerApp(status, chunks=chunks, headers=headers, error=error, error_before_start=True, on_request=fill)


class AnthropicUpstream:
    """The provider below the real layers: records its Attempt as UpstreamApp does, then
    answers ``chunks`` as they are (after ``before(exchange)``, if given)."""

    def __init__(self, chunks, content_type=b"text/event-stream", *, status=200, before=None):
        self.chunks = chunks
        self.content_type = content_type
        self.status = status
        self.before = before

    async def __call__(self, scope, receive, send) -> None:
        while (await receive()).get("more_body", False):
            pass
        exchange = exchange_of(scope)
        exchange.provider_name = "anthropic"
        attempt = Attempt(
            "anthropic",
            exchange.request_model,
            "https",
            "api.anthropic.com",
            443,
            scope["path"],
            scope["query_string"].decode(),
            sent_ns=time.monotonic_ns(),
        )
        exchange.attempts.append(attempt)
        if self.before is not None:
            self.before(exchange)
        attempt.status, attempt.first_byte_ns = self.status, time.monotonic_ns()
        await send(
            {"type": "http.response.start", "status": self.status, "headers": [(b"content-type", self.content_type)]}
        )
        for index, piece in enumerate(self.chunks):
            await send({"type": "http.response.body", "body": piece, "more_body": index < len(self.chunks) - 1})
        attempt.last_byte_ns = time.monotonic_ns()


def real_layers(upstream) -> StripFieldsMiddleware:
    """StripFields > Translate > SSERewrite for Anthropic's own format (the pass-through gateway's)."""
    leg = SSERewriteMiddleware(upstream, wire_format=ANTHROPIC_MESSAGES)
    leg = TranslateMiddleware(leg, wire_format=ANTHROPIC_MESSAGES, default_model="claude-sonnet-4-5")
    return StripFieldsMiddleware(leg)


def observed(app, log, **kwargs) -> ObserveMiddleware:
    return ObserveMiddleware(app, sinks=[KongFileLog(str(log))], **kwargs)


def read_lines(path) -> list[dict]:
    raw = path.read_bytes()
    assert raw.endswith(b"\n")
    return [json.loads(line) for line in raw.split(b"\n")[:-1]]


def scope_for(body=REQUEST_BODY, path="/v1/messages", query=b"beta=true", method="POST"):
    return http_scope(method, path, query=query, headers=CLIENT_HEADERS, body=body)


async def test_stream_exchange_line_has_kongs_shape(tmp_path):
    log = tmp_path / "logs" / "aimw.log"  # parent directory created on demand
    app = observed(gateway([*split_at(SSE_BODY, 3, 200, 201, 700), b""]), log, input_cost=3.0, output_cost=15.0)
    before_ms = int(time.time() * 1000)
    await call(app, scope_for(), split_at(REQUEST_BODY, 10))
    after_ms = int(time.time() * 1000)

    [line] = read_lines(log)
    assert list(line) == ["request", "response", "upstream_uri", "latencies", "client_ip", "started_at", "ai"]
    assert line["request"] == {
        "method": "POST",
        "uri": "/v1/messages?beta=true",
        "url": "http://localhost:8000/v1/messages?beta=true",
        "querystring": {"beta": "true"},
        "headers": {
            "host": "localhost:8000",
            "x-api-key": "REDACTED",
            "authorization": "REDACTED",
            "content-type": "application/json",
            "accept": "application/json, text/event-stream",
            "content-length": str(len(REQUEST_BODY)),
        },
        "size": len(REQUEST_BODY),
    }
    assert line["response"] == {
        "status": 200,
        "headers": {"content-type": "text/event-stream; charset=utf-8", "set-cookie": "REDACTED"},
        "size": len(SSE_BODY),
    }
    assert line["upstream_uri"] == "/v1/chat/completions"
    latencies = line["latencies"]
    assert set(latencies) == {"request", "proxy", "gateway"}
    assert latencies["proxy"] == 50
    assert all(isinstance(v, int) and v >= 0 for v in latencies.values())
    assert latencies["gateway"] == max(latencies["request"] - 50, 0)
    assert line["client_ip"] == "127.0.0.1"
    assert before_ms <= line["started_at"] <= after_ms

    proxy = line["ai"]["proxy"]
    meta = proxy["meta"]
    assert meta == {
        "plugin_id": meta["plugin_id"],
        "provider_name": "huggingface",
        "request_model": HF_MODEL,
        "response_model": "provider-model-7b",
        "llm_latency": 50,
        "request_mode": "stream",
    }
    uuid.UUID(meta["plugin_id"])
    assert proxy["usage"] == {
        "prompt_tokens": 125,  # input + cache read + cache creation
        "completion_tokens": 42,
        "total_tokens": 167,
        "time_to_first_token": 20,
        "time_per_token": round(50 / 42, 3),
        "cost": round((125 * 3.0 + 42 * 15.0) / 1e6, 8),
        "prompt_tokens_details": {"cached_tokens": 20},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }
    assert proxy["tried_targets"] == [
        {
            "provider": "huggingface",
            "model": HF_MODEL,
            "host": "router.huggingface.co",
            "port": 443,
            "ip": None,
            "upstream_scheme": "https",
            "upstream_uri": "/v1/chat/completions",
            "route_type": "llm/v1/chat",
        }
    ]
    assert "payload" not in proxy
    assert CLIENT_KEY.encode() not in log.read_bytes()
    assert CLIENT_TOKEN.encode() not in log.read_bytes()


async def test_stream_usage_through_the_real_layers(tmp_path):
    log = tmp_path / "aimw.log"
    app = observed(real_layers(AnthropicUpstream(split_at(SSE_BODY, 3, 200, 201, 700))), log)
    response = await call(app, scope_for(), split_at(REQUEST_BODY, 10))
    assert response.body == SSE_BODY
    [line] = read_lines(log)
    assert line["upstream_uri"] == "/v1/messages?beta=true"
    proxy = line["ai"]["proxy"]
    assert proxy["meta"]["provider_name"] == "anthropic"
    assert proxy["meta"]["request_model"] == "claude-sonnet-4-5"
    assert proxy["meta"]["response_model"] == "provider-model-7b"
    assert proxy["meta"]["request_mode"] == "stream"
    usage = proxy["usage"]
    assert usage["prompt_tokens"] == 125  # input + cache read + cache creation
    assert usage["completion_tokens"] == 42  # cumulative message_delta usage replaces, never adds
    assert usage["prompt_tokens_details"] == {"cached_tokens": 20}
    assert isinstance(usage["time_to_first_token"], int) and usage["time_to_first_token"] >= 0


async def test_json_message_usage_through_the_real_layers(tmp_path):
    log = tmp_path / "aimw.log"
    body = b'{"messages":[{"role":"user","content":"What is 1 + 1?"}],"max_tokens":512}'
    upstream = AnthropicUpstream(split_at(JSON_MESSAGE, 50, 51), b"application/json")
    response = await call(observed(real_layers(upstream), log), scope_for(body, query=b""), [body])
    assert response.body == JSON_MESSAGE
    [line] = read_lines(log)
    assert line["request"]["uri"] == "/v1/messages"
    assert line["request"]["querystring"] == {}
    meta, usage = line["ai"]["proxy"]["meta"], line["ai"]["proxy"]["usage"]
    assert meta["response_model"] == "json-model"
    assert meta["request_mode"] == "oneshot"
    assert (usage["prompt_tokens"], usage["completion_tokens"], usage["total_tokens"]) == (26, 40, 66)
    assert usage["prompt_tokens_details"] == {"cached_tokens": 0}
    assert usage["cost"] == 0


async def test_one_line_per_exchange_in_order(tmp_path):
    log = tmp_path / "aimw.log"
    app = observed(gateway([JSON_MESSAGE], b"application/json", mode="oneshot"), log)
    for n in range(5):
        await call(app, scope_for(query=f"n={n}".encode()), [REQUEST_BODY])
    lines = read_lines(log)
    assert [line["request"]["querystring"]["n"] for line in lines] == ["0", "1", "2", "3", "4"]
    assert len({line["ai"]["proxy"]["meta"]["plugin_id"] for line in lines}) == 1


async def test_error_answers_are_logged(tmp_path):
    log = tmp_path / "aimw.log"
    error_json = b'{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}'
    app = observed(real_layers(AnthropicUpstream([error_json], b"application/json", status=429)), log)
    await call(app, scope_for(), [REQUEST_BODY])
    error_sse = b'event: error\ndata: {"type":"error","error":{"type":"api_error","message":"stream failed"}}\n\n'
    app = observed(real_layers(AnthropicUpstream([SSE_EVENTS[0], error_sse])), log)
    await call(app, scope_for(), [REQUEST_BODY])
    first, second = read_lines(log)
    assert first["response"]["status"] == 429
    assert first["ai"]["proxy"]["meta"]["error"] == "rate_limit_error: slow down"
    assert second["ai"]["proxy"]["meta"]["error"] == "api_error: stream failed"
    assert second["ai"]["proxy"]["usage"]["prompt_tokens"] == 125


async def test_the_gateways_own_reason_is_kept_over_the_error_body(tmp_path):
    log = tmp_path / "aimw.log"
    timeout_json = b'{"type":"error","error":{"type":"timeout_error","message":"the upstream provider did not answer"}}'

    def timed_out(exchange):
        exchange.fail("upstream timed out")  # the layer nearest the cause says why first

    app = observed(
        real_layers(AnthropicUpstream([timeout_json], b"application/json", status=504, before=timed_out)), log
    )
    await call(app, scope_for(), [REQUEST_BODY])
    [line] = read_lines(log)
    assert line["response"]["status"] == 504
    assert line["ai"]["proxy"]["meta"]["error"] == "upstream timed out"


async def test_requests_without_a_model_have_no_ai_block(tmp_path):
    log = tmp_path / "aimw.log"
    app = observed(gateway([b""], b"text/plain", mode=None), log)
    await call(app, http_scope("HEAD", "/api/hello"))
    [line] = read_lines(log)
    assert "ai" not in line
    assert line["request"]["method"] == "HEAD"
    assert line["request"]["size"] == 0
    assert line["upstream_uri"] is None


async def test_credentials_in_the_query_are_redacted(tmp_path):
    log = tmp_path / "aimw.log"
    app = observed(gateway([b""], b"text/plain", mode=None), log)
    await call(app, http_scope("GET", "/v1beta/models", query=b"key=AIzaSECRET123&alt=sse&access_token=ya29.tok"))
    text = log.read_text()
    assert "AIzaSECRET123" not in text and "ya29.tok" not in text
    [line] = read_lines(log)
    assert line["request"]["querystring"] == {"key": "REDACTED", "alt": "sse", "access_token": "REDACTED"}
    assert line["request"]["uri"] == "/v1beta/models?key=REDACTED&alt=sse&access_token=REDACTED"


async def test_query_credentials_are_redacted_whatever_their_case(tmp_path):
    log = tmp_path / "aimw.log"
    app = observed(gateway([b""], b"text/plain", mode=None), log)
    await call(app, http_scope("GET", "/v1/models", query=b"API_KEY=QS3cretOne&Password=QS3cretTwo&Alt=sse"))
    text = log.read_text()
    assert "QS3cretOne" not in text and "QS3cretTwo" not in text
    [line] = read_lines(log)
    assert line["request"]["querystring"] == {"API_KEY": "REDACTED", "Password": "REDACTED", "Alt": "sse"}


def failed_over(scope: Scope) -> None:
    """Two attempts: the first timed out, the second (another host, a query credential) answered."""
    translating()(scope)
    exchange = exchange_of(scope)
    exchange.attempts.insert(0, hf_attempt(failure="the upstream provider did not answer in time"))
    exchange.attempts[-1] = Attempt(
        "gemini",
        "gemini-2.5-flash",
        "http",
        "10.0.0.7",
        8080,
        "/v1beta/models/gemini-2.5-flash:streamGenerateContent",
        upstream_query="alt=sse&key=AIzaSECRET123",
        ip="10.0.0.7",
        sent_ns=exchange.attempts[-1].sent_ns,
        last_byte_ns=exchange.attempts[-1].last_byte_ns,
    )


async def test_tried_targets_and_upstream_uri_after_a_failover(tmp_path):
    log = tmp_path / "aimw.log"
    await call(observed(gateway([SSE_BODY], fill=failed_over), log), scope_for(), [REQUEST_BODY])
    assert "AIzaSECRET123" not in log.read_text()
    [line] = read_lines(log)
    assert line["upstream_uri"] == "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse&key=REDACTED"
    assert line["latencies"]["proxy"] == 50  # the answering attempt's
    first, second = line["ai"]["proxy"]["tried_targets"]
    assert first == {
        "provider": "huggingface",
        "model": HF_MODEL,
        "host": "router.huggingface.co",
        "port": 443,
        "ip": None,
        "upstream_scheme": "https",
        "upstream_uri": "/v1/chat/completions",
        "route_type": "llm/v1/chat",
        "failure": "the upstream provider did not answer in time",
    }
    assert second == {
        "provider": "gemini",
        "model": "gemini-2.5-flash",
        "host": "10.0.0.7",
        "port": 8080,
        "ip": "10.0.0.7",
        "upstream_scheme": "http",
        "upstream_uri": "/v1beta/models/gemini-2.5-flash:streamGenerateContent",
        "route_type": "llm/v1/chat",
    }


async def test_a_credential_quoted_in_a_failure_is_redacted(tmp_path):
    """A provider's error message (the failure of its attempt) may echo the configured key."""
    key = "4d1f9c0b7e2a4c6d8f0b1a3c5e7d9f2b"  # 32 hex digits: no shape a pattern knows
    register_secret(key)  # as aimw.credentials does for every configured credential

    def echoed(scope: Scope) -> None:
        translating("oneshot")(scope)
        exchange_of(scope).attempts[-1].failure = f"invalid_key: the key {key} is not valid"

    log = tmp_path / "aimw.log"
    await call(observed(gateway([JSON_MESSAGE], b"application/json", fill=echoed), log), scope_for(), [REQUEST_BODY])
    assert key not in log.read_text()
    [tried] = read_lines(log)[0]["ai"]["proxy"]["tried_targets"]
    assert tried["failure"] == "invalid_key: the key [REDACTED] is not valid"


async def test_log_meta_fields_join_the_meta(tmp_path):
    def azure(scope: Scope) -> None:
        translating("oneshot")(scope)
        exchange_of(scope).log_meta.update(azure_instance_id="my-instance", azure_deployment_id="gpt-4o")

    log = tmp_path / "aimw.log"
    await call(observed(gateway([JSON_MESSAGE], b"application/json", fill=azure), log), scope_for(), [REQUEST_BODY])
    meta = read_lines(log)[0]["ai"]["proxy"]["meta"]
    assert (meta["azure_instance_id"], meta["azure_deployment_id"]) == ("my-instance", "gpt-4o")


def test_plugin_id_is_given_or_derived_from_the_path(tmp_path):
    assert KongFileLog(str(tmp_path / "a.log"), plugin_id="my-plugin").plugin_id == "my-plugin"
    derived = KongFileLog(str(tmp_path / "a.log")).plugin_id
    uuid.UUID(derived)
    assert KongFileLog(str(tmp_path / "a.log")).plugin_id == derived  # every worker logs the same id
    assert KongFileLog(str(tmp_path / "b.log")).plugin_id != derived


async def test_a_given_plugin_id_is_logged(tmp_path):
    log = tmp_path / "aimw.log"
    app = ObserveMiddleware(
        gateway([JSON_MESSAGE], b"application/json"), sinks=[KongFileLog(str(log), plugin_id="p-1")]
    )
    await call(app, scope_for(), [REQUEST_BODY])
    assert read_lines(log)[0]["ai"]["proxy"]["meta"]["plugin_id"] == "p-1"


@pytest.mark.parametrize("log_payloads", [False, True])
async def test_payload_only_when_asked_and_secrets_never(tmp_path, log_payloads):
    log = tmp_path / "aimw.log"
    app = observed(gateway([SSE_BODY]), log, log_payloads=log_payloads)
    await call(app, scope_for(), split_at(REQUEST_BODY, 5, 6))
    [line] = read_lines(log)
    if log_payloads:
        assert line["ai"]["proxy"]["payload"] == {"request": REQUEST_BODY.decode(), "response": SSE_BODY.decode()}
    else:
        assert "payload" not in line["ai"]["proxy"]
        assert b"What is 1 + 1" not in log.read_bytes()
    raw = log.read_bytes()
    assert CLIENT_KEY.encode() not in raw
    assert CLIENT_TOKEN.encode() not in raw
    assert b"provider-session" not in raw


async def test_an_unexpected_failure_still_writes_a_line(tmp_path):
    log = tmp_path / "aimw.log"
    app = observed(gateway([], error=RuntimeError("boom")), log)
    response = await call(app, scope_for(), [REQUEST_BODY])
    assert response.status == 500
    [line] = read_lines(log)
    assert line["response"]["status"] == 500
    assert line["ai"]["proxy"]["meta"]["error"] == "RuntimeError in the gateway"
    assert line["request"]["size"] == len(REQUEST_BODY)


async def test_a_line_that_cannot_be_encoded_leaves_a_minimal_one(tmp_path, caplog):
    def unencodable(scope: Scope) -> None:
        translating("oneshot")(scope)
        exchange_of(scope).log_meta["azure_instance_id"] = 2**64  # orjson refuses integers past 64 bits

    log = tmp_path / "aimw.log"
    app = observed(gateway([JSON_MESSAGE], b"application/json", fill=unencodable), log)
    response = await call(app, scope_for(), [REQUEST_BODY])
    assert response.status == 200 and response.body == JSON_MESSAGE
    [line] = read_lines(log)  # one line, valid JSON
    assert line["request"] == {"method": "POST", "uri": "/v1/messages"}
    assert line["response"] == {"status": 200}
    assert isinstance(line["started_at"], int)
    meta = line["ai"]["proxy"]["meta"]
    assert meta["error"].startswith("the log line could not be encoded: ")
    assert meta["plugin_id"] == KongFileLog(str(log)).plugin_id
    assert "aimw log line not encodable" in caplog.text


async def test_an_unwritable_log_never_breaks_the_gateway(tmp_path, caplog):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x")
    app = observed(gateway([JSON_MESSAGE], b"application/json"), blocker / "aimw.log")
    response = await call(app, scope_for(), [REQUEST_BODY])
    assert response.status == 200 and response.body == JSON_MESSAGE
    assert "cannot write the aimw log" in caplog.text


# ---------------------------------------------------------------- request_mode when nothing set it


@pytest.mark.parametrize(
    "chunks, content_type, status, mode",
    [
        (split_at(SSE_BODY, 40, 41, 500), b"text/event-stream; charset=utf-8", 200, "stream"),
        ([SSE_BODY], b"text/event-stream", 200, "stream"),
        ([JSON_MESSAGE], b"application/json", 200, "oneshot"),
        (
            [b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}'],
            b"application/json",
            529,
            "oneshot",
        ),
        ([b"<html>bad gateway</html>"], b"text/html", 502, "oneshot"),
        ([b""], b"", 200, "oneshot"),
    ],
)
async def test_request_mode_is_inferred_from_the_answer(tmp_path, chunks, content_type, status, mode):
    log = tmp_path / "aimw.log"
    app = observed(gateway(chunks, content_type, status=status, fill=pass_through), log)
    response = await call(app, scope_for(), [REQUEST_BODY])
    assert response.body == b"".join(chunks)
    [line] = read_lines(log)
    meta = line["ai"]["proxy"]["meta"]
    assert meta["request_mode"] == mode
    assert meta["provider_name"] == "anthropic"


@pytest.mark.parametrize("mode", ["oneshot", "stream"])
async def test_a_request_mode_set_by_the_gateway_wins(tmp_path, mode):
    # the layers know what the client asked for, e.g. a stream answered with a JSON error
    log = tmp_path / "aimw.log"
    if mode == "oneshot":
        chunks, content_type = [SSE_BODY], b"text/event-stream"
    else:
        chunks, content_type = [JSON_MESSAGE], b"application/json"
    app = observed(gateway(chunks, content_type, mode=mode), log)
    await call(app, scope_for(), [REQUEST_BODY])
    [line] = read_lines(log)
    assert line["ai"]["proxy"]["meta"]["request_mode"] == mode


async def test_inferred_stream_mode_still_has_the_streams_usage(tmp_path):
    log = tmp_path / "aimw.log"
    app = observed(SSERewriteMiddleware(gateway([SSE_BODY], fill=pass_through), wire_format=ANTHROPIC_MESSAGES), log)
    await call(app, scope_for(), [REQUEST_BODY])
    [line] = read_lines(log)
    proxy = line["ai"]["proxy"]
    assert proxy["meta"]["request_mode"] == "stream"
    assert proxy["meta"]["response_model"] == "provider-model-7b"
    assert (proxy["usage"]["prompt_tokens"], proxy["usage"]["completion_tokens"]) == (125, 42)


# ---------------------------------------------------------------- clients that leave


async def test_a_client_that_left_during_its_upload_has_an_ai_block_with_the_reason(tmp_path):
    async def reads_the_body(scope, receive, send):
        try:
            await read_body(receive, 1 << 20)
        except ClientDisconnected:
            return  # as AnthropicEndpoints does: nobody to answer

    log = tmp_path / "aimw.log"
    receive = ScriptedReceive([REQUEST_BODY[:20]], disconnect_now=True, complete=False)
    await observed(reads_the_body, log)(scope_for(), receive, RecordingSend())
    [line] = read_lines(log)
    assert line["response"] == {"status": 499, "headers": {}, "size": 0}
    assert line["request"]["size"] == 20
    assert line["upstream_uri"] is None
    proxy = line["ai"]["proxy"]
    meta = proxy["meta"]
    assert meta == {
        "plugin_id": meta["plugin_id"],
        "provider_name": None,  # no target was chosen yet
        "request_model": None,
        "response_model": None,
        "llm_latency": 0,
        "request_mode": None,  # the body, which says it, never came whole
        "error": "client closed request during upload (after 20 bytes of its body)",
    }
    assert (proxy["usage"]["prompt_tokens"], proxy["usage"]["completion_tokens"]) == (0, 0)
    assert "estimated" not in proxy["usage"]
    assert proxy["tried_targets"] == []


class LeavingAnthropicUpstream:
    """Anthropic's stream, of which ``chunks`` came before the client left: the provider below
    the real layers records its Attempt, sends the chunks, then waits for the client's
    ``http.disconnect`` (skipping the bodies the layers above replay) and returns without
    ending the body, as UpstreamApp does when its departure watch cancelled the call."""

    def __init__(self, chunks) -> None:
        self.chunks = chunks

    async def __call__(self, scope, receive, send) -> None:
        exchange = exchange_of(scope)
        exchange.provider_name = "anthropic"
        attempt = Attempt("anthropic", exchange.request_model, "https", "api.anthropic.com", 443, scope["path"])
        exchange.attempts.append(attempt)
        attempt.sent_ns = attempt.first_byte_ns = time.monotonic_ns()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
        for piece in self.chunks:
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        while (await receive())["type"] != "http.disconnect":
            pass
        attempt.failure = "client closed request"


async def test_a_client_that_left_mid_stream_has_the_usage_so_far_marked_estimated(tmp_path):
    log = tmp_path / "aimw.log"
    upstream = LeavingAnthropicUpstream(SSE_EVENTS[:4])  # message_start (usage), a block, one text delta
    response = await call(observed(real_layers(upstream), log), scope_for(), [REQUEST_BODY])
    assert response.body == b"".join(SSE_EVENTS[:4]) and not response.complete
    [line] = read_lines(log)
    assert line["response"]["status"] == 499
    assert line["response"]["headers"] == {"content-type": "text/event-stream"}  # what went out
    proxy = line["ai"]["proxy"]
    expected_bytes = len(b"".join(SSE_EVENTS[:4]))
    assert proxy["meta"]["error"] == f"client closed request mid-stream (after HTTP 200 and {expected_bytes} bytes)"
    assert proxy["meta"]["request_mode"] == "stream"
    assert proxy["tried_targets"][0]["failure"] == "client closed request"
    usage = proxy["usage"]
    assert usage["estimated"] is True
    assert usage["prompt_tokens"] == 125  # message_start's, the provider's own
    assert usage["completion_tokens"] == math.ceil(len("2") / 3.5)  # message_start's output_tokens 1 not taken
    assert usage["total_tokens"] == 126
