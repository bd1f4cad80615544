"""FileLogMiddleware: one Kong-shaped JSON line per exchange, bytes untouched, safe across processes."""

from __future__ import annotations

import json
import multiprocessing
import time
import uuid

import orjson
import pytest
from asgi_helpers import RecordingSend, ScriptedReceive, call, http_scope, split_at

from aimw.exchange import exchange_of
from aimw.middleware.file_log import FileLogMiddleware

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

SSE_EVENTS = [
    b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant",'
    b'"model":"provider-model-7b","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":100,'
    b'"output_tokens":1,"cache_creation_input_tokens":5,"cache_read_input_tokens":20}}}\n\n',
    b'event: content_block_start\ndata: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}\n\n',
    b'event: ping\ndata: {"type":"ping"}\n\n',
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"2"}}\n\n',
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


class Gateway:
    """Stands in for the stack below FileLog: reads the body, fills the exchange like the
    real middlewares do, answers ``chunks`` with ``content_type`` (or raises ``error``)."""

    def __init__(self, chunks, content_type=b"text/event-stream; charset=utf-8", *, status=200, mode="stream", error=None):
        self.chunks = chunks
        self.content_type = content_type
        self.status = status
        self.mode = mode
        self.error = error

    async def __call__(self, scope, receive, send) -> None:
        while (await receive()).get("more_body", False):
            pass
        exchange = exchange_of(scope)
        if self.mode is not None:
            exchange.provider_name = "huggingface"
            exchange.request_model = "meta-llama/Llama-3.3-70B-Instruct"
            exchange.request_mode = self.mode
            exchange.upstream_uri = "https://router.huggingface.co/v1/chat/completions"
            exchange.tried_targets.append(exchange.upstream_uri)
            exchange.upstream_sent_ns = exchange.received_ns + 1_000_000
            exchange.upstream_last_byte_ns = exchange.upstream_sent_ns + 50_000_000  # 50 ms upstream
        if self.error is not None:
            raise self.error
        await send(
            {
                "type": "http.response.start",
                "status": self.status,
                "headers": [(b"content-type", self.content_type), (b"set-cookie", b"provider-session=zzz")],
            }
        )
        for index, piece in enumerate(self.chunks):
            await send({"type": "http.response.body", "body": piece, "more_body": index < len(self.chunks) - 1})


def read_lines(path) -> list[dict]:
    raw = path.read_bytes()
    assert raw.endswith(b"\n")
    return [json.loads(line) for line in raw.split(b"\n")[:-1]]


def scope_for(body=REQUEST_BODY, path="/v1/messages", query=b"beta=true", method="POST"):
    return http_scope(method, path, query=query, headers=CLIENT_HEADERS, body=body)


@pytest.mark.anyio
async def test_stream_exchange_line_has_kongs_shape(tmp_path):
    log = tmp_path / "logs" / "aimw.log"  # parent directory created on demand
    app = FileLogMiddleware(Gateway(split_at(SSE_BODY, 3, 200, 201, 700) + [b""]), path=str(log), input_cost=3.0, output_cost=15.0)
    before_ms = int(time.time() * 1000)
    await call(app, scope_for(), split_at(REQUEST_BODY, 10))
    after_ms = int(time.time() * 1000)

    [line] = read_lines(log)
    assert list(line) == ["request", "response", "upstream_uri", "latencies", "client_ip", "started_at", "ai"]
    assert line["request"] == {
        "method": "POST",
        "uri": "/v1/messages?beta=true",
        "url": "http://gateway.test/v1/messages?beta=true",
        "querystring": {"beta": "true"},
        "headers": {
            "host": "gateway.test",
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
    assert line["upstream_uri"] == "https://router.huggingface.co/v1/chat/completions"
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
        "request_model": "meta-llama/Llama-3.3-70B-Instruct",
        "response_model": "provider-model-7b",
        "llm_latency": 50,
        "request_mode": "stream",
    }
    uuid.UUID(meta["plugin_id"])
    usage = proxy["usage"]
    ttft = usage.pop("time_to_first_token")
    assert isinstance(ttft, int) and ttft >= 0
    assert usage == {
        "prompt_tokens": 125,  # input + cache read + cache creation
        "completion_tokens": 42,  # cumulative message_delta usage replaces, never adds
        "total_tokens": 167,
        "time_per_token": round(50 / 42, 3),
        "cost": round((125 * 3.0 + 42 * 15.0) / 1e6, 8),
        "prompt_tokens_details": {"cached_tokens": 20},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }
    assert proxy["tried_targets"] == ["https://router.huggingface.co/v1/chat/completions"]
    assert "payload" not in proxy
    assert CLIENT_KEY.encode() not in log.read_bytes()
    assert CLIENT_TOKEN.encode() not in log.read_bytes()


@pytest.mark.anyio
async def test_json_message_usage(tmp_path):
    log = tmp_path / "aimw.log"
    app = FileLogMiddleware(Gateway(split_at(JSON_MESSAGE, 50, 51), b"application/json", mode="oneshot"), path=str(log))
    await call(app, scope_for(query=b""), [REQUEST_BODY])
    [line] = read_lines(log)
    assert line["request"]["uri"] == "/v1/messages"
    assert line["request"]["querystring"] == {}
    meta, usage = line["ai"]["proxy"]["meta"], line["ai"]["proxy"]["usage"]
    assert meta["response_model"] == "json-model"
    assert meta["request_mode"] == "oneshot"
    assert (usage["prompt_tokens"], usage["completion_tokens"], usage["total_tokens"]) == (26, 40, 66)
    assert usage["prompt_tokens_details"] == {"cached_tokens": 0}
    assert usage["cost"] == 0


@pytest.mark.anyio
async def test_one_line_per_exchange_in_order(tmp_path):
    log = tmp_path / "aimw.log"
    app = FileLogMiddleware(Gateway([JSON_MESSAGE], b"application/json", mode="oneshot"), path=str(log))
    for n in range(5):
        await call(app, scope_for(query=f"n={n}".encode()), [REQUEST_BODY])
    lines = read_lines(log)
    assert [line["request"]["querystring"]["n"] for line in lines] == ["0", "1", "2", "3", "4"]
    assert len({line["ai"]["proxy"]["meta"]["plugin_id"] for line in lines}) == 1


@pytest.mark.anyio
async def test_error_answers_are_logged(tmp_path):
    log = tmp_path / "aimw.log"
    error_json = b'{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}'
    app = FileLogMiddleware(Gateway([error_json], b"application/json", status=429, mode="stream"), path=str(log))
    await call(app, scope_for(), [REQUEST_BODY])
    error_sse = b'event: error\ndata: {"type":"error","error":{"type":"api_error","message":"stream failed"}}\n\n'
    app = FileLogMiddleware(Gateway([SSE_EVENTS[0], error_sse]), path=str(log))
    await call(app, scope_for(), [REQUEST_BODY])
    first, second = read_lines(log)
    assert first["response"]["status"] == 429
    assert first["ai"]["proxy"]["meta"]["error"] == "rate_limit_error: slow down"
    assert second["ai"]["proxy"]["meta"]["error"] == "api_error: stream failed"
    assert second["ai"]["proxy"]["usage"]["prompt_tokens"] == 125


@pytest.mark.anyio
async def test_the_gateways_own_reason_is_kept_over_the_error_body(tmp_path):
    log = tmp_path / "aimw.log"
    timeout_json = b'{"type":"error","error":{"type":"timeout_error","message":"the upstream provider did not answer"}}'

    class TimedOut(Gateway):
        async def __call__(self, scope, receive, send):
            exchange_of(scope).error = "upstream timed out"  # what UpstreamApp records
            await super().__call__(scope, receive, send)

    app = FileLogMiddleware(TimedOut([timeout_json], b"application/json", status=504), path=str(log))
    await call(app, scope_for(), [REQUEST_BODY])
    [line] = read_lines(log)
    assert line["response"]["status"] == 504
    assert line["ai"]["proxy"]["meta"]["error"] == "upstream timed out"


@pytest.mark.anyio
async def test_requests_without_a_model_have_no_ai_block(tmp_path):
    log = tmp_path / "aimw.log"
    app = FileLogMiddleware(Gateway([b""], b"text/plain", mode=None), path=str(log))
    await call(app, http_scope("HEAD", "/api/hello"))
    [line] = read_lines(log)
    assert "ai" not in line
    assert line["request"]["method"] == "HEAD"
    assert line["request"]["size"] == 0
    assert line["upstream_uri"] is None


@pytest.mark.anyio
async def test_credentials_in_the_query_are_redacted(tmp_path):
    log = tmp_path / "aimw.log"
    app = FileLogMiddleware(Gateway([b""], b"text/plain", mode=None), path=str(log))
    await call(app, http_scope("GET", "/v1beta/models", query=b"key=AIzaSECRET123&alt=sse&access_token=ya29.tok"))
    text = log.read_text()
    assert "AIzaSECRET123" not in text and "ya29.tok" not in text
    [line] = read_lines(log)
    assert line["request"]["querystring"] == {"key": "REDACTED", "alt": "sse", "access_token": "REDACTED"}
    assert line["request"]["uri"] == "/v1beta/models?key=REDACTED&alt=sse&access_token=REDACTED"


@pytest.mark.anyio
@pytest.mark.parametrize("log_payloads", [False, True])
async def test_payload_only_when_asked_and_secrets_never(tmp_path, log_payloads):
    log = tmp_path / "aimw.log"
    app = FileLogMiddleware(Gateway([SSE_BODY]), path=str(log), log_payloads=log_payloads)
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


@pytest.mark.anyio
@pytest.mark.parametrize(
    "chunks, content_type",
    [
        (split_at(SSE_BODY, 1, 2, 3, 500, 900) + [b""], b"text/event-stream"),
        ([JSON_MESSAGE[:9], JSON_MESSAGE[9:]], b"application/json"),
        ([b"<html>", b"</html>"], b"text/html"),
    ],
)
async def test_client_bytes_identical_with_and_without_the_middleware(tmp_path, chunks, content_type):
    bare = await call(Gateway(chunks, content_type), scope_for(), split_at(REQUEST_BODY, 4))
    logged = await call(
        FileLogMiddleware(Gateway(chunks, content_type), path=str(tmp_path / "aimw.log"), log_payloads=True),
        scope_for(),
        split_at(REQUEST_BODY, 4),
    )
    assert logged.messages == bare.messages
    assert len(logged.body_messages) == len(chunks)


@pytest.mark.anyio
async def test_an_exception_still_writes_a_line_then_propagates(tmp_path):
    log = tmp_path / "aimw.log"
    app = FileLogMiddleware(Gateway([], error=RuntimeError("boom")), path=str(log))
    with pytest.raises(RuntimeError, match="boom"):
        await call(app, scope_for(), [REQUEST_BODY])
    [line] = read_lines(log)
    assert line["response"]["status"] == 500
    assert line["ai"]["proxy"]["meta"]["error"] == "RuntimeError in the gateway"
    assert line["request"]["size"] == len(REQUEST_BODY)


@pytest.mark.anyio
async def test_an_unwritable_log_never_breaks_the_gateway(tmp_path, caplog):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x")
    app = FileLogMiddleware(Gateway([JSON_MESSAGE], b"application/json"), path=str(blocker / "aimw.log"))
    response = await call(app, scope_for(), [REQUEST_BODY])
    assert response.status == 200 and response.body == JSON_MESSAGE
    assert "cannot write the aimw log" in caplog.text


@pytest.mark.anyio
async def test_lifespan_passes_through_and_writes_nothing(tmp_path):
    seen = []

    async def inner(scope, receive, send):
        seen.append(scope["type"])

    log = tmp_path / "aimw.log"
    await FileLogMiddleware(inner, path=str(log))({"type": "lifespan"}, ScriptedReceive(), RecordingSend())
    assert seen == ["lifespan"]
    assert not log.exists()


# ------------------------------------------------------------------ several processes, one file

PROCESSES = 4
LINES_PER_PROCESS = 300
PAD = 3000  # bytes of padding per line (~3 KB lines)
GUARD_SECONDS = 60  # hang guard only


def _append_lines(path: str, worker: int, start) -> None:
    """One worker process: LINES_PER_PROCESS lines of ~3 KB through FileLogMiddleware.write."""
    middleware = FileLogMiddleware(None, path=path)
    lines = [
        orjson.dumps({"worker": worker, "seq": seq, "pad": chr(ord("a") + worker) * PAD}) + b"\n"
        for seq in range(LINES_PER_PROCESS)
    ]
    start.wait(GUARD_SECONDS)
    for line in lines:
        middleware.write(line)


def test_several_processes_append_whole_lines(tmp_path):
    path = str(tmp_path / "shared.log")
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(PROCESSES)  # all write at once, once all are up
    workers = [context.Process(target=_append_lines, args=(path, n, start)) for n in range(PROCESSES)]
    try:
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(GUARD_SECONDS)
            assert worker.exitcode == 0
    finally:
        for worker in workers:
            if worker.is_alive():
                worker.terminate()
                worker.join()

    raw = (tmp_path / "shared.log").read_bytes()
    assert raw.endswith(b"\n")
    lines = raw.split(b"\n")[:-1]
    assert len(lines) == PROCESSES * LINES_PER_PROCESS
    seen = set()
    for line in lines:
        record = json.loads(line)  # a torn or interleaved line would not parse
        assert record["pad"] == chr(ord("a") + record["worker"]) * PAD
        seen.add((record["worker"], record["seq"]))
    assert seen == {(w, s) for w in range(PROCESSES) for s in range(LINES_PER_PROCESS)}
    for w in range(PROCESSES):  # each process's lines stay in its own order
        assert [json.loads(l)["seq"] for l in lines if json.loads(l)["worker"] == w] == list(range(LINES_PER_PROCESS))


# ---------------------------------------------------------------- request_mode when nothing set it


class PassThroughGateway(Gateway):
    """Like the pass-through stack: the provider and model are known, request_mode is not
    (no TranslateMiddleware decoded the request)."""

    async def __call__(self, scope, receive, send) -> None:
        exchange = exchange_of(scope)
        exchange.provider_name = "anthropic"
        exchange.request_model = "claude-sonnet-4-5"
        await super().__call__(scope, receive, send)


@pytest.mark.anyio
@pytest.mark.parametrize(
    "chunks, content_type, status, mode",
    [
        (split_at(SSE_BODY, 40, 41, 500), b"text/event-stream; charset=utf-8", 200, "stream"),
        ([SSE_BODY], b"text/event-stream", 200, "stream"),
        ([JSON_MESSAGE], b"application/json", 200, "oneshot"),
        ([b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}'], b"application/json", 529, "oneshot"),
        ([b"<html>bad gateway</html>"], b"text/html", 502, "oneshot"),
        ([b""], b"", 200, "oneshot"),
    ],
)
async def test_request_mode_is_inferred_from_the_answer(tmp_path, chunks, content_type, status, mode):
    log = tmp_path / "aimw.log"
    app = FileLogMiddleware(PassThroughGateway(chunks, content_type, status=status, mode=None), path=str(log))
    response = await call(app, scope_for(), [REQUEST_BODY])
    assert response.body == b"".join(chunks)
    [line] = read_lines(log)
    meta = line["ai"]["proxy"]["meta"]
    assert meta["request_mode"] == mode
    assert meta["provider_name"] == "anthropic"


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["oneshot", "stream"])
async def test_a_request_mode_set_by_the_gateway_wins(tmp_path, mode):
    # TranslateMiddleware knows what the client asked for, e.g. a stream answered with a JSON error
    log = tmp_path / "aimw.log"
    chunks, content_type = ([SSE_BODY], b"text/event-stream") if mode == "oneshot" else ([JSON_MESSAGE], b"application/json")
    app = FileLogMiddleware(Gateway(chunks, content_type, mode=mode), path=str(log))
    await call(app, scope_for(), [REQUEST_BODY])
    [line] = read_lines(log)
    assert line["ai"]["proxy"]["meta"]["request_mode"] == mode


@pytest.mark.anyio
async def test_inferred_stream_mode_still_reads_usage(tmp_path):
    log = tmp_path / "aimw.log"
    app = FileLogMiddleware(PassThroughGateway([SSE_BODY], mode=None), path=str(log))
    await call(app, scope_for(), [REQUEST_BODY])
    [line] = read_lines(log)
    proxy = line["ai"]["proxy"]
    assert proxy["meta"]["request_mode"] == "stream"
    assert proxy["meta"]["response_model"] == "provider-model-7b"
    assert (proxy["usage"]["prompt_tokens"], proxy["usage"]["completion_tokens"]) == (125, 42)


def test_the_log_follows_a_rotation(tmp_path):
    """After logrotate renames the file, the next line goes to a new file at the same path."""
    log = tmp_path / "aimw.log"
    middleware = FileLogMiddleware(None, path=str(log))
    middleware.write(b'{"n": 1}\n')
    log.rename(tmp_path / "aimw.log.1")
    middleware.write(b'{"n": 2}\n')
    (tmp_path / "aimw.log").unlink()
    middleware.write(b'{"n": 3}\n')
    assert (tmp_path / "aimw.log.1").read_text() == '{"n": 1}\n'
    assert log.read_text() == '{"n": 3}\n'
