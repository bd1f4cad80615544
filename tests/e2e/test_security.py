"""Issue 8's attacks, replayed end to end: raw sockets (where framing matters) and httpx ->
Hypercorn serving a recipe (a real process) -> a hostile provider on loopback
(tests/fakes/hostile_provider.py), which records every byte it gets and answers early,
holds streams, sets cookies, echoes keys or redirects, as each attack needs.

One group per finding of issue 8 (the comment above each names it). Each test states the
behaviour the fix gives; those that passed before the fixes document what held up.
Nothing here is a timing assert: every wait is a bound (socket timeouts, gates), so a
regression fails instead of hanging.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.e2e.harness import CLIENT_KEY, HF_TOKEN, GatewayProcess, clean_env, running_gateway
from tests.fakes.anthropic_server import good_message_bytes, message_start
from tests.fakes.hostile_provider import Answer, HostileProvider, Seen, json_answer
from tests.fakes.openai_chat_server import completion
from tests.shared_data import REPO

pytestmark = pytest.mark.e2e

GATEWAY_KEY = "sk-ant-api03-" + "SecE2eGw7Kq2Vx9Lp4Zr8Tn"  # the keyed pass-through's ANTHROPIC_API_KEY
AZURE_KEY = "9e4b1c7a" + "5d2f08e3b6a14c9d7f2e5a0b"  # 32 hex digits, no prefix a pattern would know
POLICY_MODEL = "policy-model-e2e"  # AIMW_MODEL of the translated and pass-through gateways
POLICY_MAX_TOKENS = 64
POLICY_TEMPERATURE = 0.1
TEXT = "The sum of 1 + 1 is 2."  # what every default answer says
RAW_TIMEOUT = 10.0  # seconds a raw-socket client waits for a whole answer (a hang guard)
VICTIM_TIMEOUT = 5.0  # seconds the victim of a smuggled request waits for its answer
BODY_TIMEOUT = 1  # seconds: the slow-upload gateway's AIMW_CLIENT_BODY_TIMEOUT
SLOW_CLIENTS = 20
MiB = 1024 * 1024
KiB = 1024
SSE_HEADERS = (("Content-Type", "text/event-stream"), ("Cache-Control", "no-cache"))


# ---------------------------------------------------------------- the provider's default answers


def default_answer(seen: Seen) -> Answer:
    """What an honest provider answers: a Chat Completion, a count, or an Anthropic Message."""
    if seen.path.endswith("/chat/completions"):
        return json_answer(json.dumps(completion(TEXT)).encode())
    if seen.path.endswith("/count_tokens"):
        return json_answer(b'{"input_tokens": 12}')
    return json_answer(good_message_bytes())


@dataclass
class Served:
    """A hostile provider and the gateway process in front of it."""

    fake: HostileProvider
    gateway: GatewayProcess

    @property
    def port(self) -> int:
        return self.gateway.port

    @property
    def url(self) -> str:
        return self.gateway.url


@pytest.fixture(autouse=True)
def _fresh(request: pytest.FixtureRequest) -> Iterator[None]:
    """Each Served a test uses starts with an empty provider; its gateway must survive the test."""
    used = [request.getfixturevalue(name) for name in request.fixturenames if name in SERVED_FIXTURES]
    for served in used:
        served.fake.reset()
    yield
    for served in used:
        served.fake.release()
        assert served.gateway.alive(), f"the gateway {served.gateway.app} died:\n{served.gateway.output()[-4000:]}"


def _serve(
    tmp_path_factory: pytest.TempPathFactory,
    name: str,
    app: str,
    env: dict[str, str],
    *,
    early: bool = False,
    by_name: bool = False,
) -> Iterator[Served]:
    with HostileProvider(default_answer, early=early) as fake:
        upstream = fake.named_url if by_name else fake.url
        with running_gateway(app, {"AIMW_UPSTREAM_URL": upstream, **env}, tmp_path_factory, name) as gateway:
            yield Served(fake, gateway)


def policy_env() -> dict[str, str]:
    return {
        "AIMW_MODEL": POLICY_MODEL,
        "AIMW_MAX_TOKENS": str(POLICY_MAX_TOKENS),
        "AIMW_TEMPERATURE": str(POLICY_TEMPERATURE),
    }


def hf_env() -> dict[str, str]:
    return {"HUGGINGFACE_API_TOKEN": HF_TOKEN, **policy_env()}


@pytest.fixture(scope="module")
def smuggle(tmp_path_factory) -> Iterator[Served]:
    """The keyed pass-through in front of a provider that answers before reading bodies."""
    yield from _serve(
        tmp_path_factory, "sec-smuggle", "recipes.anthropic:app", {"ANTHROPIC_API_KEY": GATEWAY_KEY}, early=True
    )


@pytest.fixture(scope="module")
def passthrough(tmp_path_factory) -> Iterator[Served]:
    """recipes.anthropic with the gateway's own key (the key an attacker wants to spend) and the policy."""
    env = {"ANTHROPIC_API_KEY": GATEWAY_KEY, **policy_env()}
    yield from _serve(tmp_path_factory, "sec-passthrough", "recipes.anthropic:app", env)


@pytest.fixture(scope="module")
def forward_paths(tmp_path_factory) -> Iterator[Served]:
    env = {"ANTHROPIC_API_KEY": GATEWAY_KEY, "AIMW_FORWARD_PATHS": "GET /v1/models"}
    yield from _serve(tmp_path_factory, "sec-forward-paths", "recipes.anthropic:app", env)


@pytest.fixture(scope="module")
def slow(tmp_path_factory) -> Iterator[Served]:
    """A short body deadline and a one-connection pool with a short wait for it."""
    env = {
        "ANTHROPIC_API_KEY": GATEWAY_KEY,
        "AIMW_CLIENT_BODY_TIMEOUT": str(BODY_TIMEOUT),
        "AIMW_UPSTREAM_MAX_CONNECTIONS": "1",
        "AIMW_POOL_TIMEOUT": "0.5",
    }
    yield from _serve(tmp_path_factory, "sec-slow", "recipes.anthropic:app", env)


@pytest.fixture(scope="module")
def translated(tmp_path_factory) -> Iterator[Served]:
    """recipes.huggingface with a model, a max_tokens cap and a temperature: the policy."""
    yield from _serve(tmp_path_factory, "sec-translated", "recipes.huggingface:app", hf_env())


@pytest.fixture(scope="module")
def cookie_passthrough(tmp_path_factory) -> Iterator[Served]:
    """The pass-through reaching its provider by host name (aiohttp keeps no cookies of IP hosts)."""
    env = {"ANTHROPIC_API_KEY": GATEWAY_KEY}
    yield from _serve(tmp_path_factory, "sec-cookie-pt", "recipes.anthropic:app", env, by_name=True)


@pytest.fixture(scope="module")
def cookie_translated(tmp_path_factory) -> Iterator[Served]:
    yield from _serve(tmp_path_factory, "sec-cookie-hf", "recipes.huggingface:app", hf_env(), by_name=True)


@pytest.fixture(scope="module")
def azure(tmp_path_factory) -> Iterator[Served]:
    env = {"AZURE_OPENAI_API_KEY": AZURE_KEY, "AZURE_INSTANCE_NAME": "aimw-sec", "AZURE_DEPLOYMENT_ID": "gpt-4o-sec"}
    yield from _serve(tmp_path_factory, "sec-azure", "recipes.azure:app", env)


@pytest.fixture(scope="module")
def allowed(tmp_path_factory) -> Iterator[Served]:
    env = {
        "ANTHROPIC_API_KEY": GATEWAY_KEY,
        "AIMW_ALLOWED_HOSTS": "gw.internal",
        "AIMW_ALLOWED_ORIGINS": "https://ok.example",
    }
    yield from _serve(tmp_path_factory, "sec-allowed", "recipes.anthropic:app", env)


SERVED_FIXTURES = frozenset(
    (
        "smuggle",
        "passthrough",
        "forward_paths",
        "slow",
        "translated",
        "cookie_passthrough",
        "cookie_translated",
        "azure",
        "allowed",
    )
)


@pytest.fixture
def served(request: pytest.FixtureRequest) -> Iterator[Served]:
    """The Served named by the test's indirect parameter, fresh as :func:`_fresh` makes them."""
    chosen: Served = request.getfixturevalue(request.param)
    chosen.fake.reset()
    yield chosen
    chosen.fake.release()
    assert chosen.gateway.alive(), f"the gateway {chosen.gateway.app} died:\n{chosen.gateway.output()[-4000:]}"


@pytest.fixture
def case() -> str:
    """A unique marker for this test: in the prompt (it survives translation) and in ``x-e2e-case``."""
    return f"sec-{uuid.uuid4().hex[:12]}"


# ---------------------------------------------------------------- clients


def body_of(marker: str, *, stream: bool = False, **extra) -> bytes:
    payload = {
        "model": "claude-x",
        "max_tokens": 1000,
        "temperature": 0.9,
        "messages": [{"role": "user", "content": f"What is 1 + 1? [{marker}]"}],
        **extra,
    }
    if stream:
        payload["stream"] = True
    return json.dumps(payload).encode()


def client_headers(case: str, **extra: str) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "x-api-key": CLIENT_KEY,
        "anthropic-version": "2023-06-01",
        "x-e2e-case": case,
        **extra,
    }


def post(
    served: Served, path: str, body: bytes, case: str, headers: dict[str, str] | None = None, timeout: float = 30
) -> httpx.Response:
    with httpx.Client(trust_env=False, timeout=timeout) as http:
        return http.post(served.url + path, content=body, headers={**client_headers(case), **(headers or {})})


@dataclass
class RawResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def values(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name]

    def json(self):
        return json.loads(self.body)


def request_bytes(
    method: str,
    target: str,
    port: int,
    *,
    body: bytes = b"",
    headers: list[tuple[str, str]] = (),
    content_length: int | None = None,
    chunked: bool = False,
    chunk_size: int | None = None,
) -> bytes:
    """A request exactly as written: ``content_length`` is the header sent (the body's own
    length when None and not chunked); ``chunked`` frames the body as chunks."""
    lines = [f"{method} {target} HTTP/1.1", f"Host: 127.0.0.1:{port}", *(f"{k}: {v}" for k, v in headers)]
    if chunked:
        lines.append("Transfer-Encoding: chunked")
    if content_length is not None:
        lines.append(f"Content-Length: {content_length}")
    elif not chunked and (body or method in ("POST", "PUT", "PATCH")):
        lines.append(f"Content-Length: {len(body)}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    if not chunked:
        return head + body
    size = chunk_size or max(len(body), 1)
    pieces = [body[i : i + size] for i in range(0, len(body), size)]
    return head + b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces) + b"0\r\n\r\n"


def raw_headers(case: str, **extra: str) -> list[tuple[str, str]]:
    return [(name, value) for name, value in client_headers(case, **extra).items()]


def read_response(sock: socket.socket) -> RawResponse | None:
    """One whole response from ``sock`` (content-length, chunked or closed); None on timeout."""
    buffer = bytearray()
    try:
        while b"\r\n\r\n" not in buffer:
            data = sock.recv(65536)
            if not data:
                return None
            buffer += data
        head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = [(k.strip().lower(), v.strip()) for k, _, v in (line.partition(":") for line in lines[1:])]
        response = RawResponse(status, headers, b"")
        lengths = response.values("content-length")
        if "chunked" in ",".join(response.values("transfer-encoding")).lower():
            body, data = bytearray(), bytearray(rest)
            while True:
                while b"\r\n" not in data:
                    more = sock.recv(65536)
                    if not more:
                        response.body = bytes(body)
                        return response
                    data += more
                line, _, remainder = bytes(data).partition(b"\r\n")
                size = int(line.split(b";")[0] or b"0", 16)
                data = bytearray(remainder)
                while len(data) < size + 2:
                    more = sock.recv(65536)
                    if not more:
                        body += data
                        response.body = bytes(body)
                        return response
                    data += more
                if size == 0:
                    break
                body += data[:size]
                del data[: size + 2]
            response.body = bytes(body)
        elif lengths:
            body = bytearray(rest)
            while len(body) < int(lengths[0]):
                more = sock.recv(65536)
                if not more:
                    break
                body += more
            response.body = bytes(body)
        else:
            body = bytearray(rest)
            while more := sock.recv(65536):
                body += more
            response.body = bytes(body)
        return response
    except TimeoutError:
        return None


def raw_request(port: int, data: bytes, timeout: float = RAW_TIMEOUT) -> RawResponse | None:
    """Send ``data`` on a new connection; the one response, or None when none came in ``timeout``."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        return read_response(sock)


def answered(response: RawResponse | None, what: str = "the gateway") -> RawResponse:
    assert response is not None, f"{what} sent no complete answer within the socket timeout (it hung)"
    return response


def assert_error_shape(status: int, body: bytes, expected_status: int, error_type: str) -> dict:
    """``body`` is Anthropic's error shape with this status and type; the parsed body."""
    assert status == expected_status, (status, body[:500])
    payload = json.loads(body)
    assert payload["type"] == "error", payload
    assert payload["error"]["type"] == error_type, payload
    assert isinstance(payload["error"]["message"], str)
    return payload


def assert_raw_error(response: RawResponse | None, expected_status: int, error_type: str) -> dict:
    response = answered(response)
    return assert_error_shape(response.status, response.body, expected_status, error_type)


def assert_http_error(response: httpx.Response, expected_status: int, error_type: str) -> dict:
    return assert_error_shape(response.status_code, response.content, expected_status, error_type)


def assert_message(response: httpx.Response | RawResponse) -> dict:
    status = response.status_code if isinstance(response, httpx.Response) else response.status
    body = response.content if isinstance(response, httpx.Response) else response.body
    assert status == 200, (status, body[:500])
    message = json.loads(body)
    assert TEXT in message["content"][0]["text"], message
    return message


def log_line(gateway: GatewayProcess, case: str) -> dict:
    (line,) = gateway.wait_log_lines(1, case)[-1:]
    return line


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what} after {timeout:.0f} s")
        time.sleep(0.02)


# ================================================================ finding 1: request smuggling


@pytest.mark.parametrize("path", ["/v1/messages", "/v1/messages/count_tokens"])
def test_1_chunked_with_content_length_is_refused(smuggle, case, path):
    """Both framings at once is the smuggler's request: refused, and nothing goes upstream."""
    body = body_of(case)
    data = request_bytes(
        "POST", path, smuggle.port, body=body, headers=raw_headers(case), chunked=True, content_length=len(body) + 300
    )

    assert_raw_error(raw_request(smuggle.port, data), 400, "invalid_request_error")
    time.sleep(0.2)  # anything forwarded would have reached the provider by now
    assert smuggle.fake.seen() == [], [(seen.method, seen.target, seen.headers) for seen in smuggle.fake.seen()]


def assert_own_framing(seen: Seen, body: bytes) -> None:
    """The provider got exactly ``body``, framed by one correct content-length or by chunks."""
    assert seen.complete, f"the body never ended where its framing says: {seen.body[:300]!r}"
    assert not seen.problems, seen.problems
    assert seen.body == body, seen.body[:300]
    if seen.framing == "content-length":
        assert seen.values("content-length") == [str(len(body))]
    else:
        assert seen.framing == "chunked", seen.headers


def test_1_plain_chunked_request_is_forwarded_with_its_own_length(smuggle, case):
    body = body_of(case)
    data = request_bytes(
        "POST", "/v1/messages", smuggle.port, body=body, headers=raw_headers(case), chunked=True, chunk_size=17
    )

    assert_message(answered(raw_request(smuggle.port, data)))
    (seen,) = wait_for(lambda: [s for s in smuggle.fake.seen() if s.complete], RAW_TIMEOUT, "the forwarded request")
    assert (seen.method, seen.path) == ("POST", "/v1/messages")
    assert_own_framing(seen, body)


def test_1_headers_named_in_connection_are_hop_by_hop(smuggle, case):
    body = body_of(case)
    headers = [*raw_headers(case), ("Connection", "x-secret-hop"), ("X-Secret-Hop", "1")]
    data = request_bytes("POST", "/v1/messages", smuggle.port, body=body, headers=headers)

    assert_message(answered(raw_request(smuggle.port, data)))
    (seen,) = wait_for(smuggle.fake.seen, RAW_TIMEOUT, "the forwarded request")
    assert "x-secret-hop" not in seen.names(), seen.headers
    assert "connection" not in seen.names() or seen.header("connection").lower() in ("keep-alive", "close")


def test_1_allowlisted_headers_named_in_connection_are_hop_by_hop_too(passthrough, case):
    """The pass-through's allowlist has ``anthropic-beta`` and ``x-stainless-*``; named in
    ``Connection`` they are the client connection's own, and stop at the gateway."""
    body = body_of(case)
    headers = [
        *raw_headers(case),
        ("Connection", "keep-alive, Anthropic-Beta, x-stainless-hop"),
        ("Anthropic-Beta", "hop-only-2025-01-01"),
        ("X-Stainless-Hop", "1"),
        ("X-Stainless-Lang", "python"),
    ]
    data = request_bytes("POST", "/v1/messages", passthrough.port, body=body, headers=headers)

    assert_message(answered(raw_request(passthrough.port, data)))
    (seen,) = wait_for(passthrough.fake.seen, RAW_TIMEOUT, "the forwarded request")
    assert not seen.names() & {"anthropic-beta", "x-stainless-hop"}, seen.headers
    assert seen.header("x-stainless-lang") == "python"  # on the allowlist and not named: it goes on
    assert seen.header("anthropic-version") == "2023-06-01"


def test_1_two_clients_after_an_early_answer_stay_two_requests(smuggle, case):
    """Client A's chunked upload (sent in two parts) is answered early; client B's request
    then reaches the provider as its own request, never as the tail of A's body."""
    body_a, body_b = body_of(case + "-a"), body_of(case + "-b")
    data_a = request_bytes(
        "POST", "/v1/messages", smuggle.port, body=body_a, headers=raw_headers(case), chunked=True, chunk_size=40
    )
    with socket.create_connection(("127.0.0.1", smuggle.port), timeout=RAW_TIMEOUT) as sock:
        sock.sendall(data_a[: len(data_a) // 2])
        time.sleep(0.2)
        sock.sendall(data_a[len(data_a) // 2 :])
        answered(read_response(sock), "the gateway (to client A)")
    data_b = request_bytes(
        "POST", "/v1/messages", smuggle.port, body=body_b, headers=raw_headers(case, **{"x-api-key": "victim"})
    )

    assert_message(answered(raw_request(smuggle.port, data_b, VICTIM_TIMEOUT), "the gateway (to client B)"))
    seen = wait_for(
        lambda: [s for s in smuggle.fake.seen() if s.complete] if len(smuggle.fake.seen()) >= 2 else None,
        RAW_TIMEOUT,
        "two requests",
    )
    assert len(seen) == 2, [(s.target, s.body[:200]) for s in smuggle.fake.seen()]
    assert_own_framing(seen[0], body_a)
    assert_own_framing(seen[1], body_b)


@pytest.mark.parametrize("path", ["/v1/messages/count_tokens", "/v1/complete"])
def test_1_next_client_never_becomes_the_tail_of_a_smuggled_body(smuggle, case, path):
    """The attack itself: a chunked body with a stale, larger content-length. Whatever the
    gateway answers the attacker, the next client's request (the gateway's key, its prompt)
    is its own request at the provider and gets its own answer."""
    attacker, victim = body_of(case + "-attacker"), body_of(case + "-victim")
    data = request_bytes(
        "POST",
        path,
        smuggle.port,
        body=attacker,
        headers=raw_headers(case),
        chunked=True,
        content_length=len(attacker) + 400,
    )
    raw_request(smuggle.port, data, VICTIM_TIMEOUT)  # any answer, or none

    victim_data = request_bytes(
        "POST", "/v1/messages", smuggle.port, body=victim, headers=raw_headers(case + "-victim")
    )
    response = raw_request(smuggle.port, victim_data, VICTIM_TIMEOUT)

    time.sleep(0.2)
    smuggled = [s for s in smuggle.fake.seen() if b"POST /v1/messages" in s.body or b"HTTP/1.1" in s.body]
    assert not smuggled, f"the victim's request became the tail of another body: {smuggled[0].body[:400]!r}"
    assert_message(answered(response, "the gateway (to the victim)"))
    victims = [s for s in smuggle.fake.seen() if (case + "-victim").encode() in s.body]
    assert len(victims) == 1
    assert_own_framing(victims[0], victim)
    for seen in smuggle.fake.seen():
        assert seen.complete and not seen.problems and seen.body in (attacker, victim), (seen.target, seen.body[:300])


# ================================================================ finding 2: the upstream API under the gateway's key

REFUSED_TARGETS = [
    ("GET", "/v1/models", 404, "not_found_error"),
    ("DELETE", "/v1/files/x", 404, "not_found_error"),
    ("POST", "/v1/complete", 404, "not_found_error"),
    ("POST", "/v1/../admin", 400, "invalid_request_error"),
    ("POST", "/v1/%2e%2e/admin", 400, "invalid_request_error"),
    ("POST", "/v1/messages%2F..", 400, "invalid_request_error"),
    ("POST", "/v1/messages;x", 400, "invalid_request_error"),
    ("POST", "/v1\\messages", 400, "invalid_request_error"),
]


@pytest.mark.parametrize(
    ("method", "target", "status", "error_type"), REFUSED_TARGETS, ids=[f"{m} {t}" for m, t, _, _ in REFUSED_TARGETS]
)
def test_2_only_the_messages_api_is_forwarded(passthrough, case, method, target, status, error_type):
    body = body_of(case) if method == "POST" else b""
    data = request_bytes(method, target, passthrough.port, body=body, headers=raw_headers(case))

    assert_raw_error(raw_request(passthrough.port, data), status, error_type)
    time.sleep(0.1)
    assert passthrough.fake.seen() == [], [(s.method, s.target) for s in passthrough.fake.seen()]


@pytest.mark.parametrize(
    ("target", "forwarded"),
    [
        ("/v1/messages", "/v1/messages"),
        ("/v1/messages?beta=true&x=1", "/v1/messages?beta=true"),
        ("/anything/v1/messages?beta=true", "/v1/messages?beta=true"),
        ("/v1/messages/count_tokens?x=1", "/v1/messages/count_tokens"),
        ("/anything/v1/messages/count_tokens?beta=true", "/v1/messages/count_tokens?beta=true"),
    ],
)
def test_2_messages_are_forwarded_with_exactly_the_matched_path(passthrough, case, target, forwarded):
    body = body_of(case)
    response = answered(
        raw_request(
            passthrough.port, request_bytes("POST", target, passthrough.port, body=body, headers=raw_headers(case))
        )
    )

    assert response.status == 200, response.body[:300]
    (seen,) = passthrough.fake.seen()
    assert seen.target == forwarded
    assert seen.header("x-api-key") == GATEWAY_KEY
    assert log_line(passthrough.gateway, case)["upstream_uri"] == forwarded  # the URL actually sent


def test_2_a_forward_paths_setting_adds_a_route(forward_paths, case):
    with httpx.Client(trust_env=False, timeout=30) as http:
        response = http.get(forward_paths.url + "/v1/models", headers={"x-e2e-case": case, "x-api-key": CLIENT_KEY})

    assert response.status_code == 200
    (seen,) = forward_paths.fake.seen()
    assert (seen.method, seen.target) == ("GET", "/v1/models")
    assert seen.header("x-api-key") == GATEWAY_KEY


def test_2_a_forward_paths_setting_adds_only_its_route(forward_paths, case):
    data = request_bytes("DELETE", "/v1/models", forward_paths.port, headers=raw_headers(case))

    assert_raw_error(raw_request(forward_paths.port, data), 404, "not_found_error")
    assert forward_paths.fake.seen() == []


# ================================================================ finding 3: slow uploads and the upstream pool


def slow_upload(port: int, case: str, timeout: float) -> socket.socket:
    """A client that sends its headers and one byte of a 200-byte body, then stalls."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    head = request_bytes("POST", "/v1/messages", port, headers=raw_headers(case), content_length=200)
    sock.sendall(head + b"{")
    return sock


def test_3_a_stalled_upload_gets_408_and_never_reaches_the_provider(slow, case):
    connections = slow.fake.connections
    with slow_upload(slow.port, case, timeout=BODY_TIMEOUT + 5) as sock:
        response = read_response(sock)

    assert_raw_error(response, 408, "timeout_error")
    assert slow.fake.connections == connections
    assert slow.fake.seen() == []
    assert log_line(slow.gateway, case)["response"]["status"] == 408


def test_3_stalled_uploads_do_not_stop_other_clients(slow, case):
    sockets = [slow_upload(slow.port, f"{case}-slow{i}", timeout=RAW_TIMEOUT) for i in range(SLOW_CLIENTS)]
    try:
        response = post(
            slow, "/v1/messages", body_of(case), case, timeout=RAW_TIMEOUT
        )  # a hang guard, not a speed assert
        assert_message(response)
    finally:
        for sock in sockets:
            sock.close()


def test_3_no_pool_slot_means_529(slow, case):
    """One request holds the only pooled connection (its answer held open by the provider);
    the next one waits AIMW_POOL_TIMEOUT for a slot, then gets 529 overloaded_error."""
    gate = slow.fake.gate()
    held = Answer(200, SSE_HEADERS, parts=(message_start({"input_tokens": 3, "output_tokens": 1}), gate))
    slow.fake.on(case + "-held", held)
    first = request_bytes(
        "POST", "/v1/messages", slow.port, body=body_of(case + "-held", stream=True), headers=raw_headers(case)
    )
    with socket.create_connection(("127.0.0.1", slow.port), timeout=RAW_TIMEOUT) as sock:
        sock.sendall(first)
        wait_for(lambda: slow.fake.seen_with(case + "-held"), RAW_TIMEOUT, "the held request at the provider")
        try:
            response = post(slow, "/v1/messages", body_of(case + "-second"), case, timeout=RAW_TIMEOUT)
        finally:
            gate.set()
        answered(read_response(sock), "the gateway (to the held request)")

    assert_http_error(response, 529, "overloaded_error")


# ================================================================ finding 4: policy bypass by path spelling


@pytest.mark.parametrize("served", ["translated", "passthrough"], indirect=True)
@pytest.mark.parametrize("target", ["/v1/./messages", "/v1/messages/.", "/v1/x/../messages", "/v1/messages#x"])
def test_4_odd_spellings_of_the_messages_path_are_refused(served, case, target):
    data = request_bytes("POST", target, served.port, body=body_of(case), headers=raw_headers(case))

    assert_raw_error(raw_request(served.port, data), 400, "invalid_request_error")
    time.sleep(0.1)
    assert served.fake.seen() == [], [(s.target, s.body[:300]) for s in served.fake.seen()]


@pytest.mark.parametrize("served", ["translated", "passthrough"], indirect=True)
def test_4_the_policy_applies_on_the_canonical_path(served, case):
    assert_message(post(served, "/v1/messages", body_of(case), case))

    (seen,) = served.fake.seen()
    sent = json.loads(seen.body)
    assert (sent["model"], sent["max_tokens"], sent["temperature"]) == (
        POLICY_MODEL,
        POLICY_MAX_TOKENS,
        POLICY_TEMPERATURE,
    )


# ================================================================ finding 5: provider cookies replayed to other clients


@pytest.mark.parametrize("served", ["cookie_passthrough", "cookie_translated"], indirect=True)
def test_5_a_provider_cookie_never_reaches_another_client_or_request(served, case):
    served.fake.on(
        case + "-a",
        lambda seen: Answer(
            default_answer(seen).status,
            (*default_answer(seen).headers, ("Set-Cookie", "session=attacker-visible; Path=/")),
            default_answer(seen).body,
        ),
    )

    first = post(served, "/v1/messages", body_of(case + "-a"), case)
    second = post(served, "/v1/messages", body_of(case + "-b"), case + "-b")

    assert_message(first)
    assert_message(second)
    assert "set-cookie" not in first.headers and "set-cookie" not in second.headers
    (seen_b,) = served.fake.seen_with(case + "-b")
    assert "cookie" not in seen_b.names(), seen_b.headers


# ================================================================ finding 6: browsers and DNS rebinding


def test_6_a_foreign_host_is_refused(passthrough, case):
    response = post(passthrough, "/v1/messages", body_of(case), case, {"host": "evil.example"})

    assert_http_error(response, 403, "permission_error")
    assert passthrough.fake.seen() == []
    assert log_line(passthrough.gateway, case)["response"]["status"] == 403


@pytest.mark.parametrize("host", ["localhost:{port}", "127.0.0.1:{port}", "[::1]:{port}", "localhost"])
def test_6_loopback_hosts_are_accepted(passthrough, case, host):
    assert_message(post(passthrough, "/v1/messages", body_of(case), case, {"host": host.format(port=passthrough.port)}))


def test_6_an_allowed_host_is_accepted(allowed, case):
    assert_message(post(allowed, "/v1/messages", body_of(case), case, {"host": "gw.internal:8000"}))


def test_6_a_foreign_origin_is_refused(passthrough, case):
    response = post(passthrough, "/v1/messages", body_of(case), case, {"origin": "https://evil.example"})

    assert_http_error(response, 403, "permission_error")
    assert passthrough.fake.seen() == []
    assert log_line(passthrough.gateway, case)["response"]["status"] == 403


def test_6_an_allowed_origin_is_accepted_and_others_still_refused(allowed, case):
    host = {"host": "gw.internal:8000"}
    assert_message(post(allowed, "/v1/messages", body_of(case), case, {**host, "origin": "https://ok.example"}))
    refused = post(
        allowed, "/v1/messages", body_of(case + "-evil"), case + "-evil", {**host, "origin": "https://evil.example"}
    )
    assert_http_error(refused, 403, "permission_error")
    assert len(allowed.fake.seen()) == 1


def test_6_a_browser_simple_post_is_refused(passthrough, case):
    """``text/plain`` is what a cross-site form or fetch may send without a CORS pre-flight."""
    response = post(passthrough, "/v1/messages", body_of(case), case, {"content-type": "text/plain"})

    assert_http_error(response, 403, "permission_error")
    assert passthrough.fake.seen() == []
    assert log_line(passthrough.gateway, case)["response"]["status"] == 403


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8"])
def test_6_json_posts_are_accepted(passthrough, case, content_type):
    assert_message(post(passthrough, "/v1/messages", body_of(case), case, {"content-type": content_type}))


# ================================================================ finding 7: quadratic SSE buffering


def endless_line(first: bytes, gate: threading.Event) -> Answer:
    """``first``, then one 8 MiB ``data:`` line without a newline in 64 KiB writes, held
    by ``gate`` after 6 MiB (so the provider cannot finish before the test lets it)."""
    piece = b"x" * (64 * KiB)
    parts: list = [first, b"data: "]
    parts += [piece] * (6 * MiB // len(piece))
    parts.append(gate)
    parts += [piece] * (2 * MiB // len(piece))
    parts.append(b"\n\n")
    return Answer(200, SSE_HEADERS, parts=tuple(parts))


def read_until_error_event(chunks: Iterator[bytes], budget: float) -> dict:
    """The data of the first ``event: error`` of a stream's ``chunks`` (bounded by ``budget``
    seconds); the chunks after the one holding it are left unread."""
    deadline = time.monotonic() + budget
    buffer = bytearray()
    for chunk in chunks:
        buffer += chunk
        start = buffer.find(b"event: error\n")
        if start >= 0:
            data_start = buffer.find(b"data: ", start)
            end = buffer.find(b"\n", data_start) if data_start >= 0 else -1
            if end >= 0:
                return json.loads(bytes(buffer[data_start + len(b"data: ") : end]))
        assert time.monotonic() < deadline, f"no event: error within {budget:.0f} s ({len(buffer)} bytes)"
    raise AssertionError(f"the stream ended without event: error: {bytes(buffer[-300:])!r}")


def read_to_the_end(chunks: Iterator[bytes]) -> bytes:
    """The rest of a stream's ``chunks``; fails when the stream stays open past the client's
    read timeout (a hang guard)."""
    try:
        return b"".join(chunks)
    except httpx.ReadTimeout:
        raise AssertionError("the stream stayed open after its event: error") from None


CHAT_FIRST_CHUNK = (
    b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m",'
    b'"choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"},"finish_reason":null}]}\n\n'
)


@pytest.mark.parametrize("served", ["translated", "passthrough"], indirect=True)
def test_7_an_oversized_event_ends_the_stream_in_time(served, case):
    """The error event ends the client's response while the provider still holds its stream
    open, and the gateway closes the provider's connection (no pool slot stays held)."""
    gate = served.fake.gate()
    first = (
        CHAT_FIRST_CHUNK
        if served.gateway.app == "recipes.huggingface:app"
        else message_start({"input_tokens": 3, "output_tokens": 1})
    )
    served.fake.on(case + "-big", endless_line(first, gate))

    with (
        httpx.Client(trust_env=False, timeout=httpx.Timeout(15.0)) as http,
        http.stream(
            "POST",
            served.url + "/v1/messages",
            content=body_of(case + "-big", stream=True),
            headers=client_headers(case),
        ) as streamed,
    ):
        assert streamed.status_code == 200
        chunks = streamed.iter_raw()
        error = read_until_error_event(chunks, 20.0)
        rest = read_to_the_end(chunks)
        assert not gate.is_set()  # the provider is still held: the stream ended well before its answer did
        second = post(served, "/v1/messages", body_of(case + "-second"), case + "-second", timeout=RAW_TIMEOUT)
        gate.set()
        (big,) = served.fake.seen_with(case + "-big")
        # while the client still holds its connection (its departure would close the provider's too)
        wait_for(lambda: big.hung_up, RAW_TIMEOUT, "the provider to find its connection closed by the gateway")

    assert error["type"] == "error"
    assert "large" in error["error"]["message"].lower(), error
    assert rest.strip() == b"", rest[:300]  # nothing after the error event
    assert_message(second)


# ================================================================ finding 8: client headers to translated providers

CLIENT_ONLY_HEADERS = {
    "x-hf-bill-to": "victim-org",
    "openai-organization": "org-attacker",
    "openai-project": "proj-attacker",
    "cookie": "sid=client-cookie",
    "x-forwarded-for": "203.0.113.9",
    "forwarded": "for=203.0.113.9",
    "x-api-key": CLIENT_KEY,
    "anthropic-beta": "claude-code-20250219",
}


def test_8_only_allowlisted_client_headers_reach_a_translated_provider(translated, case):
    headers = {
        **CLIENT_ONLY_HEADERS,
        "accept": "application/json",
        "user-agent": "aimw-sec-e2e/1.0",
        "x-request-id": f"req-{case}",
    }
    assert_message(post(translated, "/v1/messages", body_of(case), case, headers))

    (seen,) = translated.fake.seen()
    leaked = sorted(seen.names() & set(CLIENT_ONLY_HEADERS))
    assert not leaked, {name: seen.header(name) for name in leaked}
    assert seen.header("content-type").startswith("application/json")
    assert seen.header("accept")
    assert seen.header("user-agent") == "aimw-sec-e2e/1.0"
    assert seen.header("x-request-id") == f"req-{case}"
    assert seen.header("authorization") == f"Bearer {HF_TOKEN}"


# ================================================================ finding 9: redaction by value


def assert_key_hidden(
    key: str, body: bytes, headers: list[tuple[str, str]], gateway: GatewayProcess, case: str
) -> None:
    assert key not in body.decode("latin-1"), body[:500]
    assert b"REDACTED" in body, body[:500]
    leaked = [(name, value) for name, value in headers if key in value]
    assert not leaked, leaked
    log_line(gateway, case)
    assert key not in gateway.log_text()


def test_9_an_echoed_azure_key_is_redacted(azure, case):
    echo = {"error": {"code": "401", "message": f"Access denied: the key {AZURE_KEY} is not valid for this resource."}}
    azure.fake.on(case, json_answer(json.dumps(echo).encode(), 401, (("x-echo", AZURE_KEY),)))

    response = post(azure, "/v1/messages", body_of(case), case)

    assert_http_error(response, 401, "authentication_error")
    assert_key_hidden(AZURE_KEY, response.content, list(response.headers.items()), azure.gateway, case)


def test_9_a_key_echoed_in_a_2xx_error_body_is_redacted_in_tried_targets(azure, case):
    """A 200 answer that is only an error object: its message becomes the attempt's failure."""
    echo = {"error": {"code": "invalid_key", "message": f"the key {AZURE_KEY} is not valid for this resource"}}
    azure.fake.on(case, json_answer(json.dumps(echo).encode()))

    response = post(azure, "/v1/messages", body_of(case), case)

    assert_http_error(response, 502, "api_error")
    assert_key_hidden(AZURE_KEY, response.content, list(response.headers.items()), azure.gateway, case)
    (tried,) = log_line(azure.gateway, case)["ai"]["proxy"]["tried_targets"]
    assert "[REDACTED]" in tried["failure"], tried


def test_9_an_echoed_gateway_key_is_redacted_in_the_passthrough(passthrough, case):
    echo = {"type": "error", "error": {"type": "authentication_error", "message": f"invalid x-api-key: {GATEWAY_KEY}"}}
    passthrough.fake.on(case, json_answer(json.dumps(echo).encode(), 401, (("x-echo", GATEWAY_KEY),)))

    response = post(passthrough, "/v1/messages", body_of(case), case)

    assert_http_error(response, 401, "authentication_error")
    assert_key_hidden(GATEWAY_KEY, response.content, list(response.headers.items()), passthrough.gateway, case)


# ================================================================ finding 10: deeply nested JSON

NESTED = b'{"model":"m","max_tokens":5,"messages":' + b"[" * 10_000 + b"]" * 10_000 + b"}"


@pytest.mark.parametrize("served", ["translated", "passthrough"], indirect=True)
def test_10_deeply_nested_json_is_a_400(served, case):
    output_before = len(served.gateway.output())

    response = post(served, "/v1/messages", NESTED, case)

    payload = assert_http_error(response, 400, "invalid_request_error")
    message = payload["error"]["message"].lower()
    assert "nest" in message or "depth" in message or "deep" in message, message
    assert served.fake.seen() == []
    assert log_line(served.gateway, case)["response"]["status"] == 400
    assert "Traceback" not in served.gateway.output()[output_before:]


# ================================================================ finding 11: usage numbers past 2**63


def test_11_huge_usage_numbers_still_answer_and_log(translated, case):
    huge = completion(TEXT)
    huge["usage"] = {"prompt_tokens": 2**70, "completion_tokens": 5, "total_tokens": 2**70 + 5}
    translated.fake.on(case, json_answer(json.dumps(huge).encode()))

    response = post(translated, "/v1/messages", body_of(case), case)

    assert_message(response)
    line = log_line(translated.gateway, case)  # a complete, valid JSON line
    assert isinstance(line["ai"]["proxy"]["usage"]["prompt_tokens"], int)


# ================================================================ finding 12: userinfo in AIMW_UPSTREAM_URL


@pytest.mark.parametrize("url", ["http://user:pass@127.0.0.1:1", "http://aimw:Hunter2Secret@127.0.0.1:1"])
def test_12_an_upstream_url_with_userinfo_refuses_to_start(tmp_path, url):
    """The recipe itself exits non-zero naming the variable; served by Hypercorn it never
    accepts a connection (Hypercorn's supervisor exits 0 when its worker cannot import the
    app, so only the exit itself is asserted there). The password is printed nowhere."""
    env = {"AIMW_UPSTREAM_URL": url, "ANTHROPIC_API_KEY": GATEWAY_KEY}
    imported = subprocess.run(
        [sys.executable, "-c", "import recipes.anthropic"],
        cwd=REPO,
        env=clean_env(AIMW_LOG_PATH=str(tmp_path / "import.log"), **env),
        capture_output=True,
        text=True,
        timeout=30,
    )
    gateway = GatewayProcess("recipes.anthropic:app", env, tmp_path)
    try:
        with pytest.raises(AssertionError, match="exited"):
            gateway.start()
    finally:
        started = gateway.alive()
        gateway.stop()
    assert not started, f"the recipe started with AIMW_UPSTREAM_URL={url!r}"

    assert imported.returncode != 0, imported
    userinfo = url.split("//")[1].split("@")[0]
    password = userinfo.split(":")[1]
    for output in (imported.stdout + imported.stderr, gateway.output()):
        assert "AIMW_UPSTREAM_URL" in output, output
        assert userinfo not in output and f":{password}@" not in output, output
        if len(password) > 8:  # a distinctive one: nowhere, in any form
            assert password not in output, output
    assert password not in gateway.log_text()


# ======================================================== finding 14: query secrets, redirects, malformed answers


def test_14_credential_query_parameters_are_redacted_in_the_log(translated, case):
    secrets = {"x-api-key": "QS3cretOne", "apikey": "QS3cretTwo", "password": "QS3cretThree"}
    query = "&".join(f"{name}={value}" for name, value in secrets.items())

    assert_message(post(translated, "/v1/messages?beta=true&" + query, body_of(case), case))

    line = log_line(translated.gateway, case)
    text = translated.gateway.log_text()
    for name, value in secrets.items():
        assert value not in text, name
        assert line["request"]["querystring"][name] == "REDACTED"


@pytest.mark.parametrize("served", ["passthrough", "translated"], indirect=True)
def test_14_an_upstream_redirect_is_a_502(served, case):
    served.fake.on(case, Answer(302, (("Location", "http://evil.example/"), ("Content-Type", "text/plain")), b"moved"))

    response = post(served, "/v1/messages", body_of(case), case)

    assert_http_error(response, 502, "api_error")
    assert "location" not in response.headers
    assert len(served.fake.seen()) == 1  # not followed


@pytest.mark.parametrize("answer", [b"{}", b'{"choices": []}'], ids=["empty-object", "no-choices"])
def test_14_a_malformed_2xx_chat_answer_is_a_502(translated, case, answer):
    translated.fake.on(case, json_answer(answer))

    response = post(translated, "/v1/messages", body_of(case), case)

    assert_http_error(response, 502, "api_error")
