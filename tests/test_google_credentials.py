"""GoogleAccessToken with google-auth for real: a throwaway RSA key, a service-account key
whose token_uri is a fake OAuth server on loopback that checks the JWT-bearer grant the way
Google's does (RFC 7523; Google's "Using OAuth 2.0 for Server to Server Applications")."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import anyio
import google.auth.jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from aimw.errors import GatewayError
from aimw.google_token import CLOUD_PLATFORM_SCOPE, TOKEN_REQUEST_TIMEOUT, GoogleAccessToken

pytestmark = pytest.mark.anyio

CLIENT_EMAIL = "aimw-test@example-project.iam.gserviceaccount.com"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"  # the assertion's aud, wherever it is posted


REFUSED = {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
BACKEND_ERROR = {"error": "internal_failure", "error_description": "Backend Error"}
BAD_GATEWAY_PAGE = b"<html><title>502 Bad Gateway</title><body>Bad Gateway</body></html>"


class FakeOAuth:
    """Google's token endpoint: verifies each grant's JWT with the key's public half and
    answers ``ya29.token-<n>`` (``expires_in`` seconds), or ``status`` with ``answer`` (an
    OAuth error by default: invalid_grant for a 4xx, internal_failure for a 5xx; bytes go as
    an HTML page). ``hanging``: every grant is read and never answered (until close)."""

    def __init__(self, public_pem: bytes) -> None:
        self.public_pem = public_pem
        self.grants: list[dict] = []
        self.problems: list[str] = []
        self.status = 200
        self.answer: dict | bytes | None = None
        self.expires_in = 3600
        self.delay = 0.0
        self.hanging = False
        self.released = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"])).decode()
                fake.check(self.path, self.headers.get("content-type", ""), parse_qs(body))
                if fake.hanging:
                    fake.released.wait(30)
                    self.close_connection = True
                    return
                time.sleep(fake.delay)
                answer = fake.answer
                if fake.status == 200:
                    answer = {
                        "access_token": f"ya29.token-{len(fake.grants)}",
                        "expires_in": fake.expires_in,
                        "token_type": "Bearer",
                    }
                elif answer is None:
                    answer = BACKEND_ERROR if fake.status >= 500 else REFUSED
                html = isinstance(answer, bytes)
                data = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
                self.send_response(fake.status)
                self.send_header("content-type", "text/html" if html else "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.token_uri = f"http://127.0.0.1:{self.server.server_address[1]}/token"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def check(self, path: str, content_type: str, form: dict[str, list[str]]) -> None:
        if path != "/token" or content_type != "application/x-www-form-urlencoded":
            self.problems.append(f"{path} {content_type}")
        if form.get("grant_type") != [JWT_BEARER]:
            self.problems.append(f"grant_type {form.get('grant_type')}")
            return
        claims = google.auth.jwt.decode(
            form["assertion"][0], certs=self.public_pem.decode(), audience=GOOGLE_TOKEN_AUDIENCE
        )
        if claims["iss"] != CLIENT_EMAIL or CLOUD_PLATFORM_SCOPE not in claims["scope"].split():
            self.problems.append(f"claims {claims}")
        self.grants.append(claims)

    def close(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def key_pair() -> tuple[bytes, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, public


@pytest.fixture
def oauth(key_pair):
    fake = FakeOAuth(key_pair[1])
    yield fake
    fake.close()


@pytest.fixture
def account(key_pair, oauth) -> dict[str, str]:
    """A service-account key whose token_uri is the fake."""
    return {
        "type": "service_account",
        "project_id": "example-project",
        "private_key_id": "0123456789abcdef",
        "private_key": key_pair[0].decode(),
        "client_email": CLIENT_EMAIL,
        "client_id": "1234567890",
        "token_uri": oauth.token_uri,
    }


@pytest.fixture
def credential(account) -> GoogleAccessToken:
    return GoogleAccessToken.from_service_account_info(account)


async def test_one_grant_then_the_cached_token(credential, oauth):
    first = await credential.authorization()
    second = await credential.authorization()
    assert first == second == ([(b"authorization", b"Bearer ya29.token-1")], b"")
    assert len(oauth.grants) == 1 and oauth.problems == []
    assert "ya29" not in repr(credential)


async def test_an_expiring_token_is_refreshed(credential, oauth):
    oauth.expires_in = 60  # inside google-auth's refresh threshold: stale at once
    await credential.authorization()
    assert await credential.authorization() == ([(b"authorization", b"Bearer ya29.token-2")], b"")
    assert len(oauth.grants) == 2 and oauth.problems == []


async def test_concurrent_requests_share_one_refresh_off_the_event_loop(credential, oauth):
    oauth.delay = 0.5
    ticks = 0

    async def ticking() -> None:
        nonlocal ticks
        while not done:
            ticks += 1
            await anyio.sleep(0.01)

    results = []
    done = False
    async with anyio.create_task_group() as tg:
        tg.start_soon(ticking)

        async def one() -> None:
            results.append(await credential.authorization())

        async with anyio.create_task_group() as requests:
            for _ in range(20):
                requests.start_soon(one)
        done = True
    assert len(oauth.grants) == 1
    assert results == [([(b"authorization", b"Bearer ya29.token-1")], b"")] * 20
    assert ticks >= 10  # the loop kept running while the token endpoint took 0.5 s (a blocked loop: 1)


@pytest.mark.parametrize("status", [400, 401])  # RFC 6749 5.2: 401 for invalid_client
async def test_a_refused_refresh_is_an_authentication_error_and_the_next_request_retries(credential, oauth, status):
    oauth.status = status
    with pytest.raises(GatewayError) as raised:
        await credential.authorization()
    assert (raised.value.status, raised.value.error_type) == (401, "authentication_error")
    assert "invalid_grant" in raised.value.message
    oauth.status = 200
    assert await credential.authorization() == ([(b"authorization", b"Bearer ya29.token-2")], b"")


async def test_an_unreachable_token_endpoint_is_an_api_error(credential, oauth):
    oauth.close()
    with pytest.raises(GatewayError) as raised:
        await credential.authorization()
    assert (raised.value.status, raised.value.error_type) == (502, "api_error")


@pytest.mark.parametrize(
    "status, answer, tries",
    [
        (500, None, 3),  # google-auth retries 500 / 503 / 504 / 408 / 429 twice, 1 s then 2 s later
        (429, {"error": "rate_limit_exceeded"}, 3),  # a 4xx, but no refusal
        (502, BAD_GATEWAY_PAGE, 1),  # a front end's page: not retried by google-auth, not a refusal either
    ],
    ids=["500", "429", "502-html"],
)
async def test_a_failing_token_endpoint_is_an_api_error_and_the_next_request_retries(
    credential, oauth, status, answer, tries
):
    """The token endpoint's own failure is no refusal of the credentials: 502 api_error
    (which Claude Code retries), never 401; once it recovers the next request is served."""
    oauth.status, oauth.answer = status, answer
    with pytest.raises(GatewayError) as raised:
        await credential.authorization()
    assert (raised.value.status, raised.value.error_type) == (502, "api_error")
    assert f"HTTP {status}" in raised.value.message and "Bad Gateway" not in raised.value.message
    assert len(oauth.grants) == tries
    oauth.status = 200
    assert await credential.authorization() == ([(b"authorization", f"Bearer ya29.token-{tries + 1}".encode())], b"")
    assert oauth.problems == []


async def test_a_hanging_token_endpoint_fails_within_the_timeout(account, oauth):
    """An endpoint that takes the grant and never answers: 502 after the request timeout, not
    google-auth's 120 s default; nothing hangs."""
    credential = GoogleAccessToken.from_service_account_info(account, timeout=0.5)
    oauth.hanging = True
    started = time.monotonic()
    with anyio.fail_after(10):
        with pytest.raises(GatewayError) as raised:
            await credential.authorization()
    elapsed = time.monotonic() - started
    assert (raised.value.status, raised.value.error_type) == (502, "api_error")
    assert "did not answer within 0.5 s" in raised.value.message
    assert 0.4 < elapsed < 5 and len(oauth.grants) == 1


def test_the_default_token_request_timeout_is_bounded():
    assert 0 < TOKEN_REQUEST_TIMEOUT <= 60  # seconds: never google-auth's 120 s, never unbounded


async def test_requests_waiting_behind_a_failed_refresh_share_its_failure(account, oauth):
    """20 requests arrive while the token endpoint hangs: one grant is tried, and the ones
    that waited for it get its failure at once instead of each trying again in turn (20 x the
    timeout). The next request after that tries again, and is served."""
    credential = GoogleAccessToken.from_service_account_info(account, timeout=0.5)
    oauth.hanging = True
    failures: list[GatewayError] = []

    async def one() -> None:
        try:
            await credential.authorization()
        except GatewayError as exc:
            failures.append(exc)

    started = time.monotonic()
    with anyio.fail_after(10):
        async with anyio.create_task_group() as requests:
            for _ in range(20):
                requests.start_soon(one)
    elapsed = time.monotonic() - started
    assert len(oauth.grants) == 1
    assert [(f.status, f.error_type) for f in failures] == [(502, "api_error")] * 20
    assert elapsed < 3  # one timeout (0.5 s), not twenty

    oauth.hanging = False
    assert await credential.authorization() == ([(b"authorization", b"Bearer ya29.token-2")], b"")
    assert len(oauth.grants) == 2 and oauth.problems == []
