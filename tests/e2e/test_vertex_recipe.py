"""The Vertex AI recipe end to end: the Anthropic Python SDK and the real Claude Code CLI ->
Hypercorn serving recipes.vertex:app (a real process, Kong's variables) -> a fake of Vertex
AI's generateContent on loopback (tests/fakes/gemini_server.py), with google-auth fetching
access tokens for real from a fake Google token endpoint (tests/fakes/google_oauth.py) that
verifies each JWT-bearer grant against a throwaway RSA key.

The scenarios both Google recipes share are test_gemini_recipe's, run here again with
Vertex AI's fixtures (``target``, ``fake``, ``client``). Vertex AI's own tests: the token
fetched once and sent as Bearer, a refusing token endpoint, the key's forms (a file path,
JSON text, Application Default Credentials) and the keys that stop the recipe at start.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import anthropic
from tests.e2e import test_gemini_recipe as shared
from tests.e2e.harness import (
    CLIENT_KEY,
    GatewayProcess,
    checked_fake,
    clean_env,
    exact_log_lines,
    running_gateway,
    sdk_client,
)
from tests.e2e.test_gemini_recipe import MODEL, USER, Target, create_or_stream
from tests.fakes.gemini_server import FakeGeminiServer, json_reply, sse_reply, text_chunks, text_response, vertex_ai
from tests.fakes.google_oauth import CLOUD_PLATFORM_SCOPE, FakeGoogleOAuth
from tests.fakes.scripted_server import RecordedRequest
from tests.shared_data import REPO

pytestmark = pytest.mark.e2e

PROJECT = "aimw-e2e-project"
LOCATION = "us-central1"
ENDPOINT = "us-central1-aiplatform.googleapis.com"
PREFIX = f"/v1/projects/{PROJECT}/locations/{LOCATION}/publishers/google/models/"
KEY_FILE_ACCOUNT = "aimw-key-file@aimw-e2e-project.iam.gserviceaccount.com"  # the main gateway's key, a file path
KEY_TEXT_ACCOUNT = "aimw-key-text@aimw-e2e-project.iam.gserviceaccount.com"  # the second gateway's, JSON text
ADC_ACCOUNT = "aimw-adc@aimw-e2e-project.iam.gserviceaccount.com"  # Application Default Credentials
FAILING_ENDPOINT_ACCOUNT = "aimw-failing@aimw-e2e-project.iam.gserviceaccount.com"  # its token endpoint fails first
VERTEX_ENV = {"GCP_PROJECT_ID": PROJECT, "GEMINI_LOCATION_ID": LOCATION, "GEMINI_API_ENDPOINT": ENDPOINT}

# The scenarios both Google recipes share, run against the Vertex AI fixtures below.
test_text_oneshot = shared.test_text_oneshot
test_text_stream = shared.test_text_stream
test_stream_cut_anywhere = shared.test_stream_cut_anywhere
test_tool_round_trip = shared.test_tool_round_trip
test_parallel_calls_are_answered_in_call_order = shared.test_parallel_calls_are_answered_in_call_order
test_thinking_stream_then_signature_back = shared.test_thinking_stream_then_signature_back
test_thinking_oneshot_signed_thought_goes_back = shared.test_thinking_oneshot_signed_thought_goes_back
test_resource_exhausted_is_rate_limit_error = shared.test_resource_exhausted_is_rate_limit_error
test_resource_exhausted_retry_info_is_retry_after = shared.test_resource_exhausted_retry_info_is_retry_after
test_unavailable_is_overloaded_error = shared.test_unavailable_is_overloaded_error
test_invalid_argument_is_400_with_googles_message = shared.test_invalid_argument_is_400_with_googles_message
test_error_chunk_in_a_200_stream_is_event_error = shared.test_error_chunk_in_a_200_stream_is_event_error
test_cut_stream_is_event_error = shared.test_cut_stream_is_event_error
test_malformed_function_call_is_a_retryable_error = shared.test_malformed_function_call_is_a_retryable_error
test_blocked_prompt_is_400_naming_the_reason = shared.test_blocked_prompt_is_400_naming_the_reason
test_safety_stop_is_a_refusal = shared.test_safety_stop_is_a_refusal
test_max_tokens_stop = shared.test_max_tokens_stop
test_error_as_a_json_array_body = shared.test_error_as_a_json_array_body
test_tool_choice_and_an_image = shared.test_tool_choice_and_an_image
test_count_tokens_is_local = shared.test_count_tokens_is_local
test_claude_code_two_turn_bash_session = shared.test_claude_code_two_turn_bash_session


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def oauth() -> Iterator[FakeGoogleOAuth]:
    with FakeGoogleOAuth() as server:
        yield server


@pytest.fixture(scope="module")
def vertex_fake(oauth) -> Iterator[FakeGeminiServer]:
    with FakeGeminiServer(vertex_ai(PROJECT, LOCATION), valid_token=oauth.is_valid_token) as server:
        yield server


@pytest.fixture(scope="module")
def key_file(oauth, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("vertex-key") / "service-account.json"
    path.write_text(json.dumps(oauth.service_account_key(KEY_FILE_ACCOUNT), indent=2))
    return path


@pytest.fixture(scope="module")
def gateway(vertex_fake, key_file, tmp_path_factory) -> Iterator[GatewayProcess]:
    """GEMINI_API_KEY a path to the key file; the endpoint without a scheme."""
    env = {**VERTEX_ENV, "GEMINI_API_KEY": str(key_file), "AIMW_UPSTREAM_URL": vertex_fake.url}
    with running_gateway("recipes.vertex:app", env, tmp_path_factory, "vertex-gateway") as gw:
        yield gw


@pytest.fixture(scope="module")
def text_key_gateway(vertex_fake, oauth, tmp_path_factory) -> Iterator[GatewayProcess]:
    """GEMINI_API_KEY the key's JSON text (Kong's ``$(cat key.json)``); the endpoint with
    ``https://``; AIMW_MODEL and AIMW_MAX_TOKENS. Its first request is the refusal test's."""
    env = {
        **VERTEX_ENV,
        "GEMINI_API_ENDPOINT": f"https://{ENDPOINT}/",
        "GEMINI_API_KEY": json.dumps(oauth.service_account_key(KEY_TEXT_ACCOUNT), indent=2),
        "AIMW_UPSTREAM_URL": vertex_fake.url,
        "AIMW_MODEL": "gemini-2.5-pro",
        "AIMW_MAX_TOKENS": "2000",
    }
    with running_gateway("recipes.vertex:app", env, tmp_path_factory, "vertex-text-key-gateway") as gw:
        yield gw


@pytest.fixture(scope="module")
def adc_gateway(vertex_fake, oauth, tmp_path_factory) -> Iterator[GatewayProcess]:
    """No GEMINI_API_KEY: Application Default Credentials (GOOGLE_APPLICATION_CREDENTIALS)."""
    path = tmp_path_factory.mktemp("vertex-adc") / "adc.json"
    path.write_text(json.dumps(oauth.service_account_key(ADC_ACCOUNT)))
    env = {
        **VERTEX_ENV,
        "GEMINI_API_KEY": "",  # empty is unset (and hides any inherited one)
        "GOOGLE_APPLICATION_CREDENTIALS": str(path),
        "AIMW_UPSTREAM_URL": vertex_fake.url,
    }
    with running_gateway("recipes.vertex:app", env, tmp_path_factory, "vertex-adc-gateway") as gw:
        yield gw


@pytest.fixture(scope="module")
def failing_endpoint_gateway(vertex_fake, oauth, tmp_path_factory) -> Iterator[GatewayProcess]:
    """A gateway of its own whose first request meets a failing token endpoint."""
    env = {
        **VERTEX_ENV,
        "GEMINI_API_KEY": json.dumps(oauth.service_account_key(FAILING_ENDPOINT_ACCOUNT)),
        "AIMW_UPSTREAM_URL": vertex_fake.url,
    }
    with running_gateway("recipes.vertex:app", env, tmp_path_factory, "vertex-failing-endpoint-gateway") as gw:
        yield gw


def _credential_of(oauth: FakeGoogleOAuth, account: str):
    def check(request: RecordedRequest) -> None:
        authorization = request.headers.get("authorization", "")
        assert authorization.startswith("Bearer "), authorization[:12]
        assert oauth.account_of(authorization.removeprefix("Bearer ")) == account
        assert "x-goog-api-key" not in request.headers
        assert "key=" not in request.query

    return check


def _private_key_lines(oauth: FakeGoogleOAuth) -> tuple[str, ...]:
    """Lines of the key's base64 body: none may leak anywhere."""
    return tuple(oauth.private_key_pem.splitlines()[1:-1:5])


@pytest.fixture(scope="module")
def target(vertex_fake, gateway, oauth) -> Target:
    key_lines = _private_key_lines(oauth)
    return Target(
        "vertex",
        gateway,
        vertex_fake,
        PREFIX,
        _credential_of(oauth, KEY_FILE_ACCOUNT),
        lambda: (*key_lines, *oauth.tokens_for(KEY_FILE_ACCOUNT)),
    )


@pytest.fixture
def fake(target, oauth, request) -> Iterator[FakeGeminiServer]:
    """The fake Vertex AI, emptied for this test (see checked_fake); the token endpoint must
    have found nothing wrong with the grants either."""
    oauth.problems.clear()
    with checked_fake(target.fake, [target.gateway], request) as server:
        yield server
    assert not oauth.problems, oauth.problems


@pytest.fixture
def client(target, case) -> anthropic.Anthropic:
    return sdk_client(target.gateway.url, case)


# ---------------------------------------------------------------- the access token


def test_key_file_token_fetched_once_and_sent_as_bearer(target, fake, oauth, key_file, case):
    """GEMINI_API_KEY a key file's path: one JWT-bearer grant with the cloud-platform scope
    for the whole module's requests, its token in every request's Authorization and never in
    the log."""
    assert os.path.isfile(target.gateway.env["GEMINI_API_KEY"]) and target.gateway.env["GEMINI_API_KEY"] == str(
        key_file
    )
    fake.enqueue(json_reply(text_response("one")), sse_reply(text_chunks(("two",))), json_reply(text_response("three")))
    client = sdk_client(target.gateway.url, case)
    texts = [
        create_or_stream(client, stream, model=MODEL, max_tokens=8, messages=USER).content[0].text
        for stream in (False, True, False)
    ]

    assert texts == ["one", "two", "three"]
    (grant,) = oauth.grants_for(KEY_FILE_ACCOUNT)
    assert CLOUD_PLATFORM_SCOPE in grant.scopes and grant.token is not None
    requests = fake.requests_for(case)
    assert [r.path.rsplit(":", 1)[1] for r in requests] == [
        "generateContent",
        "streamGenerateContent",
        "generateContent",
    ]
    assert {r.headers["authorization"] for r in requests} == {f"Bearer {grant.token}"}
    lines = exact_log_lines(target.gateway, case, 3)
    assert [line["upstream_uri"] for line in lines] == [
        f"{PREFIX}gemini-2.5-flash:generateContent",
        f"{PREFIX}gemini-2.5-flash:streamGenerateContent?alt=sse",
        f"{PREFIX}gemini-2.5-flash:generateContent",
    ]
    shared.assert_no_secret(target)


def test_refused_grant_is_401_then_the_next_request_succeeds(text_key_gateway, vertex_fake, oauth, request, case):
    """The token endpoint answers 400 invalid_grant: the client gets 401
    authentication_error, nothing reaches Vertex AI, the gateway keeps serving; once the
    endpoint grants again, the next request gets a token and succeeds (and keeps it)."""
    oauth.problems.clear()
    with checked_fake(vertex_fake, [text_key_gateway], request):
        vertex_fake.model = "gemini-2.5-pro"  # AIMW_MODEL
        client = sdk_client(text_key_gateway.url, case)
        oauth.refusing = True
        try:
            with pytest.raises(anthropic.AuthenticationError) as refused:
                client.messages.create(model=MODEL, max_tokens=32000, messages=USER)
        finally:
            oauth.refusing = False
        error = refused.value
        assert error.status_code == 401 and error.body["error"]["type"] == "authentication_error"
        assert "token endpoint" in error.message
        assert vertex_fake.requests_for(case) == []
        assert [grant.token for grant in oauth.grants_for(KEY_TEXT_ACCOUNT)] == [None]
        (line,) = exact_log_lines(text_key_gateway, case)
        assert line["response"]["status"] == 401

        vertex_fake.enqueue(json_reply(text_response("granted")), sse_reply(text_chunks(("still granted",))))
        assert client.messages.create(model=MODEL, max_tokens=32000, messages=USER).content[0].text == "granted"
        assert (
            create_or_stream(client, True, model=MODEL, max_tokens=100, messages=USER).content[0].text
            == "still granted"
        )

        refused_grant, grant = oauth.grants_for(KEY_TEXT_ACCOUNT)  # one new grant for both requests
        assert refused_grant.token is None
        first, second = vertex_fake.requests_for(case)
        assert first.headers["authorization"] == second.headers["authorization"] == f"Bearer {grant.token}"
        assert first.path == f"{PREFIX}gemini-2.5-pro:generateContent"  # the endpoint given with https://
        assert [r.body["generationConfig"]["maxOutputTokens"] for r in (first, second)] == [2000, 100]
        log = text_key_gateway.log_text()
        for secret in (*_private_key_lines(oauth), grant.token, CLIENT_KEY):
            assert secret not in log and secret not in error.response.text
    assert not oauth.problems, oauth.problems


def test_failing_token_endpoint_is_502_then_the_next_request_succeeds(
    failing_endpoint_gateway, vertex_fake, oauth, request, case
):
    """The token endpoint answers 500 (Google's backend failing, not a refusal): google-auth
    tries the grant 3 times, then the client gets 502 api_error, which Claude Code retries,
    never 401 (which would send the user to fix a key that is fine); nothing reaches Vertex
    AI and the gateway keeps serving: once the endpoint recovers the next request gets a
    token and succeeds."""
    gateway = failing_endpoint_gateway
    oauth.problems.clear()
    with checked_fake(vertex_fake, [gateway], request):
        client = sdk_client(gateway.url, case)
        oauth.server_error = 500
        try:
            with pytest.raises(anthropic.InternalServerError) as failed:
                client.messages.create(model=MODEL, max_tokens=16, messages=USER)
        finally:
            oauth.server_error = 0
        error = failed.value
        assert error.status_code == 502 and error.body["error"]["type"] == "api_error"
        assert "token endpoint" in error.message and "HTTP 500" in error.message
        assert vertex_fake.requests_for(case) == []
        assert [grant.token for grant in oauth.grants_for(FAILING_ENDPOINT_ACCOUNT)] == [None] * 3
        (line,) = exact_log_lines(gateway, case)
        assert line["response"]["status"] == 502

        vertex_fake.enqueue(json_reply(text_response("recovered")))
        assert client.messages.create(model=MODEL, max_tokens=16, messages=USER).content[0].text == "recovered"
        *failures, grant = oauth.grants_for(FAILING_ENDPOINT_ACCOUNT)
        assert len(failures) == 3 and grant.token is not None
        (served,) = vertex_fake.requests_for(case)
        assert served.headers["authorization"] == f"Bearer {grant.token}"
        assert exact_log_lines(gateway, case, 2)[1]["response"]["status"] == 200
    assert not oauth.problems, oauth.problems


def test_token_vertex_refuses_is_401(target, fake, case):
    """Vertex AI's UNAUTHENTICATED (a revoked token) -> 401 authentication_error."""
    fake.valid_token = lambda token: False  # restored after the test
    with pytest.raises(anthropic.AuthenticationError) as refused:
        sdk_client(target.gateway.url, case).messages.create(model=MODEL, max_tokens=16, messages=USER)
    assert [r.status for r in fake.requests_for(case)] == [401]
    fake.violations.clear()  # the refusal was this test's doing
    assert refused.value.body["error"]["type"] == "authentication_error"
    assert "invalid authentication credentials" in refused.value.message
    assert exact_log_lines(target.gateway, case)[0]["response"]["status"] == 401


def test_application_default_credentials_one_grant_for_concurrent_requests(
    adc_gateway, vertex_fake, oauth, request, case
):
    """No GEMINI_API_KEY: the service account GOOGLE_APPLICATION_CREDENTIALS names. The
    gateway's first requests arrive together while the token endpoint is slow: they share
    one grant."""
    oauth.problems.clear()
    count = 6
    with checked_fake(vertex_fake, [adc_gateway], request):
        vertex_fake.enqueue(*(json_reply(text_response("adc")) for _ in range(count)))
        client = sdk_client(adc_gateway.url, case)
        oauth.delay = 0.5
        try:
            with ThreadPoolExecutor(count) as pool:
                messages = list(
                    pool.map(lambda _: client.messages.create(model=MODEL, max_tokens=16, messages=USER), range(count))
                )
        finally:
            oauth.delay = 0.0
        assert [message.content[0].text for message in messages] == ["adc"] * count
        (grant,) = oauth.grants_for(ADC_ACCOUNT)
        assert {r.headers["authorization"] for r in vertex_fake.requests_for(case)} == {f"Bearer {grant.token}"}
    assert not oauth.problems, oauth.problems


# ---------------------------------------------------------------- keys that stop the recipe

SECRET = "e2eSECRETmaterial7Qw"  # part of every bad key below: it must never be printed


def _bad_keys(tmp_path: Path) -> dict[str, tuple[str, tuple[str, ...]]]:
    """name -> (GEMINI_API_KEY, words the message must hold)."""
    account = {
        "type": "service_account",
        "project_id": PROJECT,
        "private_key_id": SECRET,
        "private_key": f"-----BEGIN PRIVATE KEY-----\n{SECRET}\n-----END PRIVATE KEY-----\n",
        "client_email": KEY_FILE_ACCOUNT,
        "token_uri": "http://127.0.0.1:9/token",
    }
    missing = {k: v for k, v in account.items() if k not in ("private_key", "client_email")}
    p12 = tmp_path / "key.p12"  # the console's other key format: PKCS #12, binary
    p12.write_bytes(
        b"0\x82\t\xda\x02\x01\x030\x82\t\x94\x06\t*\x86H\x86\xf7\r\x01\x07\x01" + SECRET.encode() + bytes(range(256))
    )
    return {
        "not-json": ('{"type": "service_account", "private_key": "' + SECRET, ("JSON",)),
        "not-an-object": (json.dumps([SECRET]), ()),
        "lacks-fields": (json.dumps(missing), ("private_key", "client_email")),
        "not-a-service-account": (json.dumps({**account, "type": "authorized_user"}), ("authorized_user",)),
        "unusable-private-key": (json.dumps(account), ()),
        "missing-file": (str(tmp_path / f"{SECRET}.json"), ()),
        "binary-key-file": (str(p12), ()),
        "an-api-key": ("AIzaSy" + SECRET + "0123456789abcde", ()),
    }


@pytest.mark.parametrize(
    "name",
    [
        "not-json",
        "not-an-object",
        "lacks-fields",
        "not-a-service-account",
        "unusable-private-key",
        "missing-file",
        "binary-key-file",
        "an-api-key",
    ],
)
def test_bad_key_stops_the_recipe_naming_the_variable(name, tmp_path):
    value, words = _bad_keys(tmp_path)[name]
    env = {key: v for key, v in clean_env().items() if not key.startswith(("GEMINI_", "GCP_", "GOOGLE_"))}
    env.update(VERTEX_ENV, GEMINI_API_KEY=value, AIMW_LOG_PATH=str(tmp_path / "aimw.log"))
    result = subprocess.run(
        [sys.executable, "-c", "import recipes.vertex"], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "GEMINI_API_KEY" in result.stderr
    for word in words:
        assert word in result.stderr
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    assert SECRET not in result.stderr and SECRET not in result.stdout
    assert not (tmp_path / "aimw.log").exists()


def test_no_key_and_no_default_credentials_stops_the_recipe(tmp_path):
    env = {key: v for key, v in clean_env().items() if not key.startswith(("GEMINI_", "GCP_", "GOOGLE_", "CLOUDSDK_"))}
    env.update(
        VERTEX_ENV,
        HOME=str(tmp_path),  # no gcloud credentials
        CLOUDSDK_CONFIG=str(tmp_path / "gcloud"),
        NO_GCE_CHECK="True",  # no metadata server probe
        GCE_METADATA_HOST="127.0.0.1:9",
        GCE_METADATA_IP="127.0.0.1:9",
    )
    result = subprocess.run(
        [sys.executable, "-c", "import recipes.vertex"], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "GEMINI_API_KEY" in result.stderr and "Application Default Credentials" in result.stderr
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
