"""The fake Gemini: what the fake upstream answers on Google's paths, and the service-account
key the ``aimw-vertex`` target signs its token requests with.

The answer is :class:`bench.answer.Answer`'s, as Google sends it (Gemini API reference,
"generateContent", "GenerateContentResponse"; captures in
../shared/fixtures/kong/gemini/):

- ``:streamGenerateContent?alt=sse``: one SSE event per text chunk (the same count as the
  OpenAI stream's text chunks), each ``data: <GenerateContentResponse>`` ended by a CRLF
  blank line, each carrying the cumulative ``usageMetadata``, ``modelVersion`` and
  ``responseId`` as Gemini 2.5 does; the last one also ``finishReason: STOP``. No end marker.
- ``:generateContent``: one GenerateContentResponse with the whole text.
- the token endpoint (``TOKEN_PATH``): the OAuth 2.0 JWT-bearer grant google-auth makes for a
  service account (RFC 7523), answered with a fresh access token valid ``TOKEN_LIFETIME``
  seconds.

Which paths are Google's, and which credential each needs, is in :func:`gemini_method`.
"""

from __future__ import annotations

import base64
import json
import re
from urllib.parse import parse_qs

from bench.answer import MODEL, Answer

API_KEY = "bench-gemini-key"  # what aimw-gemini sends as x-goog-api-key, and the fake expects
TOKEN_PATH = "/oauth2/token"  # the fake's token endpoint (the service-account key's token_uri)
TOKEN_LIFETIME = 3600  # seconds, as Google's tokens
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"  # a grant's aud, whatever the token_uri (google-auth)
RESPONSE_ID = "bench0000000000000000000"
PROJECT, LOCATION = "bench-project", "us-central1"  # aimw-vertex's GCP_PROJECT_ID, GEMINI_LOCATION_ID
SERVICE_ACCOUNT_EMAIL = "bench@bench-project.iam.gserviceaccount.com"

# The resource paths of both services and the two methods (Gemini API: /v1beta/models/{m};
# Vertex AI: /v1/projects/{p}/locations/{l}/publishers/google/models/{m}).
_METHOD_PATH = re.compile(
    rb"/(?:(v1beta)/models|v1/projects/[^/]+/locations/[^/]+/publishers/google/models)/[^/:]+"
    rb":(streamGenerateContent|generateContent)"
)


def gemini_method(path: bytes) -> tuple[bool, bool] | None:
    """For a Gemini API or Vertex AI model path: (streams, Gemini API rather than Vertex AI);
    None for any other path. The Gemini API takes the ``x-goog-api-key``, Vertex AI a Bearer token."""
    match = _METHOD_PATH.fullmatch(path)
    if match is None:
        return None
    return match[2] == b"streamGenerateContent", match[1] is not None


def _json(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def _usage(answer: Answer, candidates: int) -> dict:
    return {
        "promptTokenCount": answer.prompt_tokens,
        "candidatesTokenCount": candidates,
        "totalTokenCount": answer.prompt_tokens + candidates,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": answer.prompt_tokens}],
    }


def _response(text: str, usage: dict, finish: bool) -> dict:
    candidate: dict = {"content": {"parts": [{"text": text}], "role": "model"}, "index": 0}
    if finish:
        candidate["finishReason"] = "STOP"
    return {"candidates": [candidate], "usageMetadata": usage, "modelVersion": MODEL, "responseId": RESPONSE_ID}


def stream_events(answer: Answer) -> list[bytes]:
    """The SSE events of the streamed answer, each ``data: ...\\r\\n\\r\\n``, one per text chunk."""
    per_chunk = answer.completion_tokens // len(answer.chunks)
    last = len(answer.chunks) - 1
    events = []
    for index, text in enumerate(answer.chunks):
        candidates = answer.completion_tokens if index == last else per_chunk * (index + 1)
        events.append(b"data: " + _json(_response(text, _usage(answer, candidates), index == last)) + b"\r\n\r\n")
    return events


def response_body(answer: Answer) -> bytes:
    """The non-streaming GenerateContentResponse of the answer."""
    return _json(_response(answer.text, _usage(answer, answer.completion_tokens), True))


def error_body(code: int, status: str, message: str) -> bytes:
    """A Google error (``{"error": {"code", "message", "status"}}``)."""
    return _json({"error": {"code": code, "message": message, "status": status}})


def _claims(assertion: str) -> dict:
    """The claims of a JWT (its signature is not checked: google-auth signs, the tests of
    aimw.google_token verify it; here only the grant's shape matters)."""
    parts = assertion.split(".")
    if len(parts) != 3:
        raise ValueError("the assertion is not a JWT")
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    claims = json.loads(base64.urlsafe_b64decode(payload))
    if not isinstance(claims, dict):
        raise ValueError("the JWT's claims are not an object")
    return claims


def token_grant_problem(body: bytes) -> str | None:
    """What is wrong with a token request's form body (None: a JWT-bearer grant of the
    bench's service account for the cloud-platform scope)."""
    try:
        form = parse_qs(body.decode("ascii"), strict_parsing=True)
        if form.get("grant_type") != [JWT_BEARER]:
            return f"grant_type must be {JWT_BEARER}"
        claims = _claims(form["assertion"][0])
    except (KeyError, ValueError, UnicodeDecodeError) as exc:
        return f"malformed JWT-bearer grant: {exc}"
    if claims.get("aud") != GOOGLE_TOKEN_AUDIENCE:
        return f"the JWT's aud {claims.get('aud')!r} is not {GOOGLE_TOKEN_AUDIENCE}"
    if CLOUD_PLATFORM_SCOPE not in str(claims.get("scope", "")).split():
        return "the JWT does not ask for the cloud-platform scope"
    if claims.get("iss") != SERVICE_ACCOUNT_EMAIL:
        return f"the JWT's iss {claims.get('iss')!r} is not the bench's service account"
    return None


def token_body(token: str) -> bytes:
    """The token endpoint's answer (RFC 6749 §5.1)."""
    return _json({"access_token": token, "expires_in": TOKEN_LIFETIME, "token_type": "Bearer"})


def service_account_key(token_uri: str) -> dict:
    """A throwaway service-account key (a fresh RSA key, generated here) whose ``token_uri``
    is the fake's token endpoint. Needs ``cryptography`` (imported only here)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return {
        "type": "service_account",
        "project_id": PROJECT,
        "private_key_id": "bench0000000000000000000000000000000000000",
        "private_key": pem,
        "client_email": SERVICE_ACCOUNT_EMAIL,
        "client_id": "100000000000000000000",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
    }
