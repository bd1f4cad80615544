"""A fake of Google's OAuth 2.0 token endpoint (``https://oauth2.googleapis.com/token``) on a
real loopback HTTP server, for service-account keys (RFC 7523 JWT-bearer grant; Google's
"Using OAuth 2.0 for Server to Server Applications").

It makes a throwaway RSA key pair and writes service-account keys whose ``token_uri`` is
itself (:meth:`FakeGoogleOAuth.service_account_key`). Each grant is checked as Google checks
it: ``POST /token``, a form body, ``grant_type`` the JWT-bearer URN, an ``assertion`` signed
(RS256) with the key of a known ``client_email`` and ``kid`` its ``private_key_id``, whose
claims are ``iss`` = the account, ``aud`` = ``https://oauth2.googleapis.com/token`` (always
that, wherever the grant is posted), a ``scope``, ``iat`` / ``exp`` at most an hour apart.
A good grant is answered with a fresh ``ya29.`` access token (``expires_in`` 3599 s, as
Google does); :meth:`FakeGoogleOAuth.is_valid_token` says whether a token is one it issued.

``refusing`` makes it answer every grant ``400 invalid_grant`` (a revoked or deleted key),
``server_error`` (an HTTP status, 0 for none) answer every grant that status with Google's
backend error (the endpoint failing, not refusing), ``delay`` (seconds) answer each grant
that much later (a slow endpoint: concurrent requests overlap);
every grant is recorded in ``grants`` (with its account, for per-gateway counts), every
problem in ``problems``.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import google.auth.exceptions
import google.auth.jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"  # the assertion's aud, wherever it is posted
CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"  # what Vertex AI needs
TOKEN_LIFETIME = 3599  # seconds, as Google answers
REFUSED = {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}  # Google's answer for a revoked key
BACKEND_ERROR = {"error": "internal_failure", "error_description": "Backend Error"}  # the endpoint failing


@dataclass(frozen=True)
class Grant:
    """One JWT-bearer grant the fake answered: who asked, for what, what it got."""

    client_email: str
    scopes: tuple[str, ...]
    token: str | None  # None: refused or failed


def _key_pair() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return private.decode(), public.decode()


class FakeGoogleOAuth:
    """Google's token endpoint on ``127.0.0.1``; use as a context manager or start()/stop()."""

    def __init__(self) -> None:
        self._private_pem, self._public_pem = _key_pair()
        self._accounts: dict[str, str] = {}  # client_email -> private_key_id
        self._tokens: dict[str, str] = {}  # access token -> client_email
        self._lock = threading.Lock()
        self.grants: list[Grant] = []
        self.problems: list[str] = []
        self.refusing = False
        self.server_error = 0
        self.delay = 0.0
        self._server: ThreadingHTTPServer | None = None

    # -- lifecycle

    def start(self) -> FakeGoogleOAuth:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length).decode("utf-8", "replace")
                status, answer = fake._grant(self.path, self.headers.get("content-type", ""), body)
                time.sleep(min(fake.delay, 5.0))
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Cache-Control", "no-cache, no-store, max-age=0, must-revalidate")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                fake._problem(f"GET {self.path}: the token endpoint takes POST")
                self.send_response(405)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:  # quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="fake-google-oauth", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeGoogleOAuth:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def token_uri(self) -> str:
        assert self._server is not None, "start the fake first"
        return f"http://127.0.0.1:{self._server.server_address[1]}/token"

    # -- keys and tokens

    def service_account_key(self, client_email: str, project_id: str = "aimw-e2e-project") -> dict[str, str]:
        """A service-account key (the JSON Google's console downloads) for ``client_email``,
        signed with this fake's RSA key, its ``token_uri`` this fake."""
        key_id = secrets.token_hex(20)
        with self._lock:
            self._accounts[client_email] = key_id
        return {
            "type": "service_account",
            "project_id": project_id,
            "private_key_id": key_id,
            "private_key": self._private_pem,
            "client_email": client_email,
            "client_id": str(secrets.randbelow(10**20)),
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": self.token_uri,
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/"
            + client_email.replace("@", "%40"),
            "universe_domain": "googleapis.com",
        }

    @property
    def private_key_pem(self) -> str:
        """The private key every service-account key of this fake holds (for leak checks)."""
        return self._private_pem

    def is_valid_token(self, token: str) -> bool:
        with self._lock:
            return token in self._tokens

    def account_of(self, token: str) -> str | None:
        with self._lock:
            return self._tokens.get(token)

    def grants_for(self, client_email: str) -> list[Grant]:
        with self._lock:
            return [grant for grant in self.grants if grant.client_email == client_email]

    def tokens_for(self, client_email: str) -> list[str]:
        return [grant.token for grant in self.grants_for(client_email) if grant.token is not None]

    # -- the endpoint (server threads)

    def _problem(self, problem: str) -> None:
        with self._lock:
            self.problems.append(problem)

    def _grant(self, path: str, content_type: str, body: str) -> tuple[int, dict]:
        if path != "/token":
            self._problem(f"POST {path}: the token endpoint is /token")
            return 404, {"error": "not_found"}
        if content_type.split(";")[0].strip() != "application/x-www-form-urlencoded":
            self._problem(f"content-type {content_type!r}, not a form")
            return 400, {"error": "invalid_request", "error_description": "Bad Request"}
        form = parse_qs(body, keep_blank_values=True)
        if form.get("grant_type") != [JWT_BEARER]:
            self._problem(f"grant_type {form.get('grant_type')!r}")
            return 400, {
                "error": "unsupported_grant_type",
                "error_description": "Invalid grant_type: " + str(form.get("grant_type")),
            }
        assertion = form.get("assertion", [""])
        try:
            header = google.auth.jwt.decode_header(assertion[0])
            claims = google.auth.jwt.decode(assertion[0], certs=self._public_pem, audience=GOOGLE_TOKEN_AUDIENCE)
        except (ValueError, google.auth.exceptions.GoogleAuthError) as exc:
            self._problem(f"the assertion does not verify: {exc}")
            return 400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
        email = claims.get("iss")
        scopes = tuple(str(claims.get("scope", "")).split())
        problems = []
        with self._lock:
            key_id = self._accounts.get(email)
        if key_id is None:
            problems.append(f"iss {email!r} is no account of this fake")
        elif header.get("kid") != key_id:
            problems.append(f"kid {header.get('kid')!r} is not the key's private_key_id")
        if header.get("alg") != "RS256":
            problems.append(f"alg {header.get('alg')!r}, not RS256")
        if not scopes:
            problems.append("no scope claim")
        issued_at, expires = claims.get("iat"), claims.get("exp")
        if not (isinstance(issued_at, int) and isinstance(expires, int) and 0 < expires - issued_at <= 3600):
            problems.append(f"iat {issued_at!r} / exp {expires!r} are not at most an hour apart")
        elif abs(issued_at - time.time()) > 300:
            problems.append(f"iat {issued_at} is not now")
        if problems:
            for problem in problems:
                self._problem(problem)
            return 400, {"error": "invalid_grant", "error_description": "; ".join(problems)}
        if self.refusing or self.server_error:
            with self._lock:
                self.grants.append(Grant(email, scopes, None))
            return (self.server_error, BACKEND_ERROR) if self.server_error else (400, REFUSED)
        token = f"ya29.c.e2e{len(self.grants) + 1}" + secrets.token_urlsafe(48)
        with self._lock:
            self._tokens[token] = email
            self.grants.append(Grant(email, scopes, token))
        return 200, {"access_token": token, "expires_in": TOKEN_LIFETIME, "token_type": "Bearer"}
