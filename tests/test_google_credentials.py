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
from aimw.google_token import CLOUD_PLATFORM_SCOPE, GoogleAccessToken

pytestmark = pytest.mark.anyio

CLIENT_EMAIL = "aimw-test@example-project.iam.gserviceaccount.com"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"  # the assertion's aud, wherever it is posted


class FakeOAuth:
    """Google's token endpoint: verifies each grant's JWT with the key's public half and
    answers ``ya29.token-<n>`` (``expires_in`` seconds), or ``status`` with an OAuth error."""

    def __init__(self, public_pem: bytes) -> None:
        self.public_pem = public_pem
        self.grants: list[dict] = []
        self.problems: list[str] = []
        self.status = 200
        self.expires_in = 3600
        self.delay = 0.0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"])).decode()
                fake.check(self.path, self.headers.get("content-type", ""), parse_qs(body))
                time.sleep(fake.delay)
                if fake.status != 200:
                    answer = {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
                else:
                    answer = {
                        "access_token": f"ya29.token-{len(fake.grants)}",
                        "expires_in": fake.expires_in,
                        "token_type": "Bearer",
                    }
                data = json.dumps(answer).encode()
                self.send_response(fake.status)
                self.send_header("content-type", "application/json")
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
def credential(key_pair, oauth) -> GoogleAccessToken:
    return GoogleAccessToken.from_service_account_info(
        {
            "type": "service_account",
            "project_id": "example-project",
            "private_key_id": "0123456789abcdef",
            "private_key": key_pair[0].decode(),
            "client_email": CLIENT_EMAIL,
            "client_id": "1234567890",
            "token_uri": oauth.token_uri,
        }
    )


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


async def test_a_refused_refresh_is_an_authentication_error_and_the_next_request_retries(credential, oauth):
    oauth.status = 400
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
