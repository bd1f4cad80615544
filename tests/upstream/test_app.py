"""UpstreamApp against a real HTTP/1.1 server on loopback (tests/fakes/loopback_server: hand-written
responses so the tests control every byte, pause and connection close)."""

from __future__ import annotations

import asyncio
import gc
import json
import socket

import anyio
import httpx
import pytest

from aimw.errors import GatewayError
from aimw.exchange import exchange_of
from aimw.upstream import (
    UpstreamApp,
    UpstreamBrokeOff,
    UpstreamBusy,
    UpstreamTimeout,
    UpstreamUnreachable,
    environment_proxy,
)
from tests.asgi_helpers import RecordingSend, ScriptedReceive, http_scope, split_at
from tests.fakes.loopback_server import LoopbackServer, Request, chunked, response_head

pytestmark = pytest.mark.anyio

GUARD = 10  # seconds: a hang guard only, never an assertion about speed


async def echo(request: Request, reader, writer, connection) -> None:
    body = json.dumps({"method": request.method, "target": request.target, "length": len(request.body)}).encode()
    writer.write(
        response_head(
            201,
            [
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(body))),
                ("X-Upstream-Thing", "yes"),
                ("Retry-After", "7"),
                ("Connection", "keep-alive"),
                ("Keep-Alive", "timeout=5"),
            ],
        )
        + (b"" if request.method == "HEAD" else body)  # RFC 9110 §9.3.2: a HEAD answer has no content
    )
    await writer.drain()


async def run_app(app, scope, receive, send=None) -> RecordingSend:
    send = send or RecordingSend()
    with anyio.fail_after(GUARD):
        await app(scope, receive, send)
    return send


def upstream_scope(method="POST", path="/v1/chat/completions", query=b"", headers=(), body=b"") -> dict:
    return http_scope(method, path, query=query, headers=headers, body=body if method != "GET" else None)


# ------------------------------------------------------------------ forwarding


async def test_forwards_method_path_query_body_and_headers():
    body = b'{"model":"m","messages":[{"role":"user","content":"' + b"x" * 5000 + b'"}]}'
    client_headers = [
        (b"content-type", b"application/json"),
        (b"authorization", b"Bearer provider-key"),
        (b"x-custom", b"kept"),
        (b"connection", b"upgrade-me"),
        (b"keep-alive", b"timeout=99"),
        (b"te", b"trailers"),
        (b"upgrade", b"h2c"),
        (b"proxy-connection", b"close-me"),
        (b"trailer", b"x-foo"),
        (b"accept-encoding", b"gzip, deflate, br, zstd"),
    ]
    async with LoopbackServer(echo) as server:
        app = UpstreamApp(server.url + "/", provider_name="huggingface")
        scope = upstream_scope(query=b"a=1&b=%20two", headers=client_headers, body=body)
        exchange_of(scope).request_model = "meta-llama/Llama-3.3-70B-Instruct"
        send = await run_app(app, scope, ScriptedReceive(split_at(body, 1, 100, 4000), disconnect_now=False))
        await app.transport.close()

    [request] = server.requests
    assert request.method == "POST"
    assert request.target == "/v1/chat/completions?a=1&b=%20two"
    assert request.body == body
    assert request.values("content-type") == ["application/json"]
    assert request.values("authorization") == ["Bearer provider-key"]
    assert request.values("x-custom") == ["kept"]
    assert request.values("content-length") == [str(len(body))]
    assert request.values("accept-encoding") == ["identity"]
    assert request.values("host") == [f"127.0.0.1:{server.port}"]
    for name, value in client_headers:
        if name in (b"connection", b"keep-alive", b"te", b"upgrade", b"proxy-connection", b"trailer"):
            assert value.decode() not in request.values(name.decode()), name
    assert request.values("transfer-encoding") == []

    assert send.status == 201
    assert all(name == name.lower() for name, _ in send.header_list), send.header_list  # ASGI: lower-case names
    assert send.header(b"x-upstream-thing") == b"yes"
    assert send.header(b"retry-after") == b"7"
    assert send.header(b"connection") is None
    assert send.header(b"keep-alive") is None
    assert send.header(b"x-aimw-llm-model") == b"huggingface/meta-llama/Llama-3.3-70B-Instruct"
    assert send.complete
    assert json.loads(send.body) == {
        "method": "POST",
        "target": "/v1/chat/completions?a=1&b=%20two",
        "length": len(body),
    }

    exchange = exchange_of(scope)
    assert exchange.provider_name == "huggingface"
    [attempt] = exchange.attempts
    assert (attempt.provider, attempt.model) == ("huggingface", "meta-llama/Llama-3.3-70B-Instruct")
    assert (attempt.upstream_scheme, attempt.host, attempt.port, attempt.ip) == (
        "http",
        "127.0.0.1",
        server.port,
        "127.0.0.1",
    )
    assert (attempt.upstream_uri, attempt.upstream_query) == ("/v1/chat/completions", "a=1&b=%20two")
    assert attempt.route_type == "llm/v1/chat"
    assert 0 < attempt.sent_ns <= attempt.first_byte_ns <= attempt.last_byte_ns
    assert (attempt.status, attempt.failure) == (201, None)
    assert exchange.error is None


async def test_get_without_model_has_no_model_header_and_reuses_the_connection():
    async with LoopbackServer(echo) as server:
        app = UpstreamApp(server.url)
        sends = []
        for n in range(3):
            scope = upstream_scope("GET", "/v1/models", query=f"n={n}".encode())
            sends.append(await run_app(app, scope, ScriptedReceive(disconnect_now=False)))
        await app.transport.close()
    assert [json.loads(s.body)["target"] for s in sends] == ["/v1/models?n=0", "/v1/models?n=1", "/v1/models?n=2"]
    assert all(s.header(b"x-aimw-llm-model") is None for s in sends)
    assert [r.method for r in server.requests] == ["GET"] * 3
    assert len(server.connections) == 1  # one pooled keep-alive connection


async def test_a_request_without_a_body_is_sent_without_one():
    """HEAD / and GET carry neither content-length nor transfer-encoding: nor may the upstream request."""
    async with LoopbackServer(echo) as server:
        app = UpstreamApp(server.url)
        for method in ("GET", "HEAD"):
            await run_app(app, http_scope(method, "/", body=None), ScriptedReceive(disconnect_now=False))
        await app.transport.close()
    for request in server.requests:
        assert request.values("transfer-encoding") == [] and request.values("content-length") in ([], ["0"])
        assert request.body == b""


async def test_percent_encoding_in_the_path_is_forwarded_as_sent():
    async with LoopbackServer(echo) as server:
        app = UpstreamApp(server.url)
        scope = {**http_scope("GET", "/team a/v1/files/a b", body=None), "raw_path": b"/team%20a/v1/files/a%20b"}
        send = await run_app(app, scope, ScriptedReceive(disconnect_now=False))
        await app.transport.close()
    assert json.loads(send.body)["target"] == "/team%20a/v1/files/a%20b"


async def test_streams_the_response_back_chunk_by_chunk():
    pieces = [b"data: one\n\n", b"data: two\n\n", b"data: three\n\n"]
    delivered = [asyncio.Event() for _ in pieces]

    async def stream(request, reader, writer, connection):
        writer.write(response_head(200, [("Content-Type", "text/event-stream"), ("Transfer-Encoding", "chunked")]))
        for index, piece in enumerate(pieces):
            writer.write(chunked(piece))
            await writer.drain()
            await delivered[index].wait()  # the next piece only after the client got this one
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    class Send(RecordingSend):
        async def __call__(self, message):
            await super().__call__(message)
            body = message.get("body", b"")
            for index, piece in enumerate(pieces):
                if body and piece in body:
                    delivered[index].set()

    async with LoopbackServer(stream) as server:
        app = UpstreamApp(server.url)
        send = await run_app(app, upstream_scope(body=b"{}"), ScriptedReceive([b"{}"]), Send())
        await app.transport.close()

    assert send.status == 200
    assert send.header(b"transfer-encoding") is None
    assert send.complete
    assert [m["body"] for m in send.body_messages] == [*pieces, b""]


async def test_lifespan_opens_and_closes_the_client():
    async with LoopbackServer(echo) as server:
        app = UpstreamApp(server.url)
        to_app, from_test = anyio.create_memory_object_stream(10)
        sent: list[dict] = []
        acknowledged = anyio.Event()

        async def send(message):
            sent.append(message)
            acknowledged.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(app, {"type": "lifespan", "asgi": {"version": "3.0"}}, from_test.receive, send)
            assert app.transport.current is None
            await to_app.send({"type": "lifespan.startup"})
            with anyio.fail_after(GUARD):
                await acknowledged.wait()
            assert sent == [{"type": "lifespan.startup.complete"}]
            client = app.transport.current
            assert client is not None

            response = await run_app(app, upstream_scope("GET", "/x"), ScriptedReceive(disconnect_now=False))
            assert response.status == 201
            assert app.transport.current is client  # the lifespan's client serves requests
            session = client.client  # AiohttpTransport's aiohttp.ClientSession, opened by the request
            assert not session.closed

            acknowledged = anyio.Event()
            await to_app.send({"type": "lifespan.shutdown"})
            with anyio.fail_after(GUARD):
                await acknowledged.wait()
        assert sent[-1] == {"type": "lifespan.shutdown.complete"}
        assert session.closed
        assert app.transport.current is None


# ------------------------------------------------------------------ failures before the answer


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_unreachable_upstream_raises_unreachable():
    """A refused connection (which httpx-aiohttp reports as a ConnectTimeout) is unreachable."""
    app = UpstreamApp(f"http://127.0.0.1:{closed_port()}", timeout=5)
    scope = upstream_scope(body=b"{}")
    send = RecordingSend()
    with pytest.raises(UpstreamUnreachable, match="unreachable"):
        await run_app(app, scope, ScriptedReceive([b"{}"]), send)
    await app.transport.close()
    assert send.messages == []  # the layer that speaks Anthropic answers
    [attempt] = exchange_of(scope).attempts
    assert attempt.status is None and attempt.failure.startswith("the upstream provider is unreachable")


async def test_no_answer_within_the_timeout_raises_timeout():
    async def silent(request, reader, writer, connection):
        await asyncio.Event().wait()

    async with LoopbackServer(silent) as server:
        app = UpstreamApp(server.url, timeout=0.2)
        scope = upstream_scope(body=b"{}")
        send = RecordingSend()
        with pytest.raises(UpstreamTimeout):
            await run_app(app, scope, ScriptedReceive([b"{}"]), send)
        await app.transport.close()
    assert server.requests[0].body == b"{}"
    assert send.messages == []
    assert exchange_of(scope).attempts[0].failure == "the upstream provider did not answer in time"


# ------------------------------------------------------------------ failures after the answer started


async def test_upstream_dying_mid_body_raises_broke_off():
    async def dying(request, reader, writer, connection):
        writer.write(response_head(200, [("Content-Type", "text/event-stream"), ("Content-Length", "1000")]))
        writer.write(b"data: partial\n\n")
        await writer.drain()
        writer.transport.abort()  # gone without the rest of the body
        raise ConnectionResetError

    async with LoopbackServer(dying) as server:
        app = UpstreamApp(server.url)
        scope = upstream_scope(body=b"{}")
        send = RecordingSend()
        with pytest.raises(UpstreamBrokeOff):
            await run_app(app, scope, ScriptedReceive([b"{}"]), send)
        await app.transport.close()
    assert send.status == 200
    assert not send.complete
    [attempt] = exchange_of(scope).attempts
    assert attempt.last_byte_ns and attempt.status == 200
    assert attempt.failure.startswith("the upstream provider's answer broke off")


async def test_upstream_stalling_mid_body_raises_broke_off():
    async def stalling(request, reader, writer, connection):
        writer.write(response_head(200, [("Content-Type", "text/event-stream"), ("Transfer-Encoding", "chunked")]))
        writer.write(chunked(b"data: first\n\n"))
        await writer.drain()
        await asyncio.Event().wait()

    async with LoopbackServer(stalling) as server:
        app = UpstreamApp(server.url, timeout=0.2)
        send = RecordingSend()
        with pytest.raises(UpstreamBrokeOff, match="ReadTimeout"):
            await run_app(app, upstream_scope(body=b"{}"), ScriptedReceive([b"{}"]), send)
        await app.transport.close()
    assert send.body == b"data: first\n\n"


async def test_client_disconnect_cancels_the_upstream_request():
    stopped = asyncio.Event()
    sent_pieces = 0

    async def slow_stream(request, reader, writer, connection):
        nonlocal sent_pieces
        writer.write(response_head(200, [("Content-Type", "text/event-stream"), ("Transfer-Encoding", "chunked")]))
        eof = asyncio.ensure_future(reader.read(1))
        try:
            while not eof.done():
                writer.write(chunked(b"data: tick\n\n"))
                await writer.drain()
                sent_pieces += 1
                await asyncio.wait([eof], timeout=0.02)
        except ConnectionError:
            pass
        finally:
            eof.cancel()
            stopped.set()  # the connection is gone: the generator stopped
            connection.closed_by_peer.set()

    async with LoopbackServer(slow_stream) as server:
        app = UpstreamApp(server.url)
        scope = upstream_scope(body=b"{}")
        send = RecordingSend()
        receive = ScriptedReceive([b"{}"])

        async def disconnect_after_first_piece():
            await send.first_body.wait()
            receive.release()

        async with anyio.create_task_group() as tg:
            tg.start_soon(disconnect_after_first_piece)
            await run_app(app, scope, receive, send)  # returns: the upstream call was cancelled
        with anyio.fail_after(GUARD):
            await stopped.wait()
            await server.connections[0].closed_by_peer.wait()
        await app.transport.close()

    assert sent_pieces >= 1
    assert send.status == 200
    assert not send.complete  # never a fake end of stream
    assert exchange_of(scope).error == "client closed request"
    assert exchange_of(scope).attempts[0].failure == "client closed request"


async def test_a_client_leaving_mid_body_never_takes_an_upstream_connection():
    """The body is read whole before a connection is taken (issue 8, finding 3)."""
    async with LoopbackServer(echo) as server:
        app = UpstreamApp(server.url)
        scope = upstream_scope(body=b'{"messages": []}')
        send = RecordingSend()
        receive = ScriptedReceive([b'{"mess'], disconnect_now=True, complete=False)
        await run_app(app, scope, receive, send)
        await app.transport.close()
    assert server.connections == []
    assert send.messages == []  # nobody to answer
    assert exchange_of(scope).error == "client closed request"
    assert exchange_of(scope).attempts == []


@pytest.mark.parametrize("failing_message", [1, 3])  # the http.response.start, the second body piece
async def test_a_failing_client_send_closes_the_upstream_connection(failing_message):
    stopped = asyncio.Event()

    async def endless(request, reader, writer, connection):
        writer.write(response_head(200, [("Content-Type", "text/event-stream"), ("Transfer-Encoding", "chunked")]))
        eof = asyncio.ensure_future(reader.read(1))
        try:
            while not eof.done():
                writer.write(chunked(b"data: tick\n\n"))
                await writer.drain()
                await asyncio.wait([eof], timeout=0.02)
        except ConnectionError:
            pass
        finally:
            eof.cancel()
            stopped.set()

    class BrokenSend(RecordingSend):
        async def __call__(self, message):
            await super().__call__(message)
            if len(self.messages) == failing_message:
                raise OSError("client socket gone")

    async with LoopbackServer(endless) as server:
        app = UpstreamApp(server.url, max_connections=1)
        with pytest.raises(OSError, match="client socket gone"):
            await run_app(app, upstream_scope(body=b"{}"), ScriptedReceive([b"{}"]), BrokenSend())
        with anyio.fail_after(GUARD):
            await stopped.wait()  # closed by UpstreamApp, not left streaming into the pool
        # the pool's only connection was released: the next request gets one
        server.handler = echo
        send = await run_app(app, upstream_scope("GET", "/next"), ScriptedReceive(disconnect_now=False))
        await app.transport.close()
    assert send.status == 201


@pytest.mark.parametrize(
    "environ, url, proxy",
    [
        ({"HTTPS_PROXY": "http://proxy.test:3128"}, "https://router.huggingface.co", "http://proxy.test:3128"),
        (
            {"HTTPS_PROXY": "http://proxy.test:3128", "NO_PROXY": "huggingface.co"},
            "https://router.huggingface.co",
            None,
        ),
        ({"HTTP_PROXY": "http://proxy.test:3128"}, "https://api.openai.com", None),
        ({"HTTP_PROXY": "http://proxy.test:3128"}, "http://127.0.0.1:9999", None),
        ({"ALL_PROXY": "http://proxy.test:3128"}, "http://localhost:11434", None),
        ({}, "https://api.anthropic.com", None),
    ],
)
def test_environment_proxy(monkeypatch, environ, url, proxy):
    """The upstream transport uses the proxy the environment names, as httpx's client did."""
    for name in (
        "HTTPS_PROXY",
        "HTTP_PROXY",
        "ALL_PROXY",
        "NO_PROXY",
        "https_proxy",
        "http_proxy",
        "all_proxy",
        "no_proxy",
    ):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    found = environment_proxy(url)
    assert (found.url if found else None) == (httpx.URL(proxy) if proxy else None)


# ------------------------------------------------------------------ review fixes


@pytest.mark.parametrize("raw_path", [b"@127.0.0.1:9/steal", b"http://127.0.0.1:9/steal", b"*"])
async def test_a_target_that_is_not_a_path_never_leaves_the_gateway(raw_path):
    """``GET @host/x`` pasted after the base URL would change the host (and carry the key there)."""
    async with LoopbackServer(echo) as server:
        app = UpstreamApp(server.url)
        scope = {**upstream_scope("GET", "/x"), "raw_path": raw_path}
        with pytest.raises(GatewayError) as raised:
            await run_app(app, scope, ScriptedReceive(disconnect_now=False))
        await app.transport.close()
    assert (raised.value.status, raised.value.error_type) == (400, "invalid_request_error")
    assert server.requests == []
    assert exchange_of(scope).attempts == []


async def test_client_leaving_while_the_provider_is_still_thinking_cancels_the_call():
    """A non-streaming generation (or a queued stream) is cancelled before any header arrives."""
    request_arrived = asyncio.Event()
    connection_closed = asyncio.Event()

    async def thinking(request, reader, writer, connection):
        request_arrived.set()
        await reader.read(1)  # EOF: the gateway closed the connection
        connection_closed.set()

    async with LoopbackServer(thinking) as server:
        app = UpstreamApp(server.url)
        scope = upstream_scope(body=b'{"stream": false}')
        receive = ScriptedReceive([b'{"stream": false}'])
        send = RecordingSend()
        async with anyio.create_task_group() as tg:
            tg.start_soon(run_app, app, scope, receive, send)
            with anyio.fail_after(GUARD):
                await request_arrived.wait()  # the provider has the request and is "thinking"
            receive.release()
        with anyio.fail_after(GUARD):
            await connection_closed.wait()
        await app.transport.close()
    assert send.messages == []  # nobody to answer
    assert exchange_of(scope).error == "client closed request"


async def test_model_header_off_sends_no_model_header():
    """Kong's model_name_header: false."""
    async with LoopbackServer(echo) as server:
        app = UpstreamApp(server.url, provider_name="huggingface", model_header=False)
        scope = upstream_scope(body=b"{}")
        exchange_of(scope).request_model = "m"
        send = await run_app(app, scope, ScriptedReceive([b"{}"]))
        await app.transport.close()
    assert send.status == 201
    assert send.header(b"x-aimw-llm-model") is None


async def test_a_json_answer_that_breaks_off_raises_broke_off():
    """A cut JSON answer is no answer: the layer above (which buffers it) answers 502."""

    async def cut_json(request, reader, writer, connection):
        writer.write(
            response_head(200, [("Content-Type", "application/json"), ("Content-Length", "500")]) + b'{"id": "x"'
        )
        await writer.drain()
        writer.close()

    async with LoopbackServer(cut_json) as server:
        app = UpstreamApp(server.url)
        scope = upstream_scope(body=b"{}")
        send = RecordingSend()
        with pytest.raises(UpstreamBrokeOff):
            await run_app(app, scope, ScriptedReceive([b"{}"]), send)
        await app.transport.close()
    assert send.status == 200 and not send.complete
    assert "broke off" in exchange_of(scope).attempts[0].failure


async def test_provider_cookies_are_not_relayed_and_odd_model_names_not_echoed():
    async def with_cookie(request, reader, writer, connection):
        writer.write(
            response_head(
                200, [("Content-Type", "application/json"), ("Set-Cookie", "__cf_bm=abc"), ("Content-Length", "2")]
            )
            + b"{}"
        )
        await writer.drain()

    async with LoopbackServer(with_cookie) as server:
        app = UpstreamApp(server.url, provider_name="anthropic")
        scope = upstream_scope(body=b"{}")
        exchange_of(scope).request_model = "claude\r\nx-evil: 1"
        send = await run_app(app, scope, ScriptedReceive([b"{}"]))
        await app.transport.close()
    assert send.status == 200
    assert send.header(b"set-cookie") is None
    assert send.header(b"x-aimw-llm-model") is None


# ------------------------------------------------------------------ issue 8: framing, cookies, the pool


async def test_the_body_goes_with_its_own_length_never_the_clients():
    """Finding 1: a stale client content-length (the body was de-chunked, or is shorter) and
    the headers the client's Connection names never go upstream."""
    body = b'{"messages": []}'
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", b"999"),
        (b"transfer-encoding", b"chunked"),
        (b"connection", b"keep-alive, X-Secret-Hop"),
        (b"x-secret-hop", b"1"),
        (b"x-kept", b"yes"),
    ]
    async with LoopbackServer(echo) as server:
        app = UpstreamApp(server.url)
        scope = {**upstream_scope(body=body), "headers": [(b"host", b"localhost:8000"), *headers]}
        send = await run_app(app, scope, ScriptedReceive(split_at(body, 3, 9), disconnect_now=False))
        await app.transport.close()
    [request] = server.requests
    assert request.body == body
    assert request.values("content-length") == [str(len(body))]
    assert request.values("transfer-encoding") == []
    assert request.values("x-secret-hop") == [] and request.values("x-kept") == ["yes"]
    assert send.status == 201


async def test_a_providers_cookie_is_never_sent_on_another_request():
    """Finding 5: aiohttp's default jar kept ``set-cookie`` from a provider reached by host
    NAME (it ignores IP hosts, which hid it) and sent it on every later request."""

    async def cookie_then_echo(request, reader, writer, connection):
        if request.target == "/first":
            writer.write(
                response_head(200, [("Set-Cookie", "session=attacker-visible; Path=/"), ("Content-Length", "2")])
                + b"{}"
            )
            await writer.drain()
        else:
            await echo(request, reader, writer, connection)

    async with LoopbackServer(cookie_then_echo) as server:
        app = UpstreamApp(f"http://localhost:{server.port}")
        first = await run_app(app, upstream_scope("GET", "/first"), ScriptedReceive(disconnect_now=False))
        await run_app(app, upstream_scope("GET", "/second"), ScriptedReceive(disconnect_now=False))
        await app.transport.close()
    assert first.header(b"set-cookie") is None
    assert [request.values("cookie") for request in server.requests] == [[], []]


async def test_a_busy_pool_fails_fast_as_busy():
    """Finding 3: with every pooled connection held, the next request waits pool_timeout,
    not the upstream timeout, then raises UpstreamBusy (529 overloaded_error above)."""
    release = asyncio.Event()

    async def held(request, reader, writer, connection):
        writer.write(response_head(200, [("Content-Type", "text/event-stream"), ("Transfer-Encoding", "chunked")]))
        writer.write(chunked(b"data: first\n\n"))
        await writer.drain()
        await release.wait()
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    async with LoopbackServer(held) as server:
        app = UpstreamApp(server.url, max_connections=1, pool_timeout=0.2)
        first_send = RecordingSend()
        async with anyio.create_task_group() as tg:
            tg.start_soon(run_app, app, upstream_scope(body=b"{}"), ScriptedReceive([b"{}"]), first_send)
            with anyio.fail_after(GUARD):
                await first_send.first_body.wait()
            scope = upstream_scope(body=b"{}")
            with pytest.raises(UpstreamBusy, match=r"no upstream connection became free within 0\.2 s"):
                await run_app(app, scope, ScriptedReceive([b"{}"]))
            release.set()
        await app.transport.close()
    assert exchange_of(scope).attempts[0].failure.startswith("no upstream connection")
    assert len(server.requests) == 1


async def test_a_streaming_answer_does_not_pin_the_request_body():
    """Once the provider answers, the request's body is let go: a stream that lasts minutes must
    not hold its 50 KB request (1,000 streams at once: README, "Reliability")."""
    body = json.dumps({"messages": [{"role": "user", "content": "x" * 50_000}]}).encode()
    streaming, finish = asyncio.Event(), asyncio.Event()
    received: list[int] = []

    async def stream(request, reader, writer, connection):
        received.append(len(request.body))
        writer.write(response_head(200, [("Content-Type", "text/event-stream"), ("Transfer-Encoding", "chunked")]))
        writer.write(chunked(b"data: one\n\n"))
        await writer.drain()
        streaming.set()
        await finish.wait()
        writer.write(chunked(b"data: two\n\n") + b"0\r\n\r\n")
        await writer.drain()

    class Send(RecordingSend):
        async def __call__(self, message):
            await super().__call__(message)
            if message.get("body"):
                relayed.set()  # the client has the first event: the answer is streaming

    relayed = asyncio.Event()
    async with LoopbackServer(stream) as server:
        app = UpstreamApp(server.url)
        call = asyncio.create_task(run_app(app, upstream_scope(body=body), ScriptedReceive([body]), Send()))
        with anyio.fail_after(GUARD):
            await relayed.wait()
        holders = [_holder(holder) for holder in gc.get_referrers(body)]
        finish.set()
        send = await call
        await app.transport.close()

    assert received == [len(body)]  # the provider got it whole
    assert send.complete
    pinned = [name for name in holders if "aimw" in name or name in ("UpstreamRequest", "_RequestBody")]
    assert not pinned, holders


def _holder(holder: object) -> str:
    """What holds a reference: a coroutine by its function's module and name, else its type."""
    code = getattr(holder, "cr_code", None)
    return f"{code.co_filename}:{code.co_qualname}" if code is not None else type(holder).__qualname__
