"""The Azure OpenAI recipe end to end: the Anthropic Python SDK -> Hypercorn serving
recipes.azure:app (a real process) -> a fake Azure OpenAI deployment on loopback.

The fake (tests/fakes/openai_chat_server.py with an Azure profile) checks what Azure
checks: ``POST /openai/deployments/{deployment}/chat/completions?api-version=<version>``,
the ``api-key`` header (or ``Authorization: Bearer``), a valid Chat Completions body, and
``max_completion_tokens`` only for a reasoning-model deployment. It answers in Azure's
shapes: prompt_filter_results / content_filter_results, the content_filter error.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator

import anthropic
import httpx
import pytest

from tests.fakes.openai_chat_server import (
    AZURE_MODEL,
    FakeChatServer,
    ToolCall,
    azure_completion,
    azure_content_filter_error,
    azure_filtered_stream,
    azure_profile,
    azure_rate_limited,
    azure_text_stream,
    azure_tool_call_stream,
    error_reply,
    json_reply,
)

from tests.e2e.harness import CLIENT_KEY, GatewayProcess, assert_log_usage, checked_fake, exact_log_lines, running_gateway, sdk_client
from tests.e2e.scenarios import WEATHER_TOOL, answer_tool_use, assert_count_tokens_is_local, assert_error, create_or_stream, only_request, rejected_key_error, request_error, stream_tool_use, tool_result
from tests.e2e.scenarios import assert_still_serving as assert_serving_after

pytestmark = pytest.mark.e2e

AZURE_KEY = "3f9c2b7e" + "a1d04e6f8b5c9a2d7e1f3b4c"  # Azure keys are 32 hex digits
INSTANCE = "aimw-e2e-resource"
DEPLOYMENT = "gpt-4o-e2e"
API_VERSION = "2025-01-01-preview"  # the recipe's default (Azure OpenAI REST reference)
# the second gateway: a reasoning-model deployment, Bearer auth, an explicit api-version
REASONING_DEPLOYMENT = "o3-mini-e2e"
REASONING_API_VERSION = "2024-12-01-preview"
USER = [{"role": "user", "content": "Why can't I divide by zero?"}]
PROFILE = azure_profile(DEPLOYMENT, API_VERSION)
REASONING_PROFILE = dataclasses.replace(
    azure_profile(REASONING_DEPLOYMENT, REASONING_API_VERSION, auth_header="authorization"),
    max_tokens_field="max_completion_tokens",
)


@pytest.fixture(scope="module")
def azure_api() -> Iterator[FakeChatServer]:
    with FakeChatServer(AZURE_KEY, PROFILE) as server:
        yield server


@pytest.fixture(scope="module")
def gateway(azure_api, tmp_path_factory) -> Iterator[GatewayProcess]:
    env = {
        "AZURE_OPENAI_API_KEY": AZURE_KEY,
        "AZURE_INSTANCE_NAME": INSTANCE,
        "AZURE_DEPLOYMENT_ID": DEPLOYMENT,
        "AIMW_UPSTREAM_URL": azure_api.url,
    }
    with running_gateway("recipes.azure:app", env, tmp_path_factory, "azure-gateway") as gw:
        yield gw


@pytest.fixture(scope="module")
def reasoning_gateway(azure_api, tmp_path_factory) -> Iterator[GatewayProcess]:
    env = {
        "AZURE_OPENAI_API_KEY": AZURE_KEY,
        "AZURE_INSTANCE_NAME": INSTANCE,
        "AZURE_DEPLOYMENT_ID": REASONING_DEPLOYMENT,
        "AZURE_API_VERSION": REASONING_API_VERSION,
        "AIMW_AUTH_HEADER": "authorization",
        "AZURE_MAX_TOKENS_FIELD": "max_completion_tokens",
        "AIMW_UPSTREAM_URL": azure_api.url,
    }
    with running_gateway("recipes.azure:app", env, tmp_path_factory, "azure-reasoning-gateway") as gw:
        yield gw


@pytest.fixture
def fake(azure_api, gateway, request) -> Iterator[FakeChatServer]:
    with checked_fake(azure_api, [gateway], request) as server:
        yield server


@pytest.fixture
def reasoning_fake(azure_api, reasoning_gateway, request) -> Iterator[FakeChatServer]:
    with checked_fake(azure_api, [reasoning_gateway], request) as server:
        server.profile = REASONING_PROFILE
        yield server


def assert_azure_meta(line: dict, deployment: str = DEPLOYMENT, api_version: str = API_VERSION) -> None:
    meta = line["ai"]["proxy"]["meta"]
    assert meta["provider_name"] == "azure"
    assert meta["request_model"] == deployment
    assert (meta["azure_instance_id"], meta["azure_deployment_id"], meta["azure_api_version"]) == (INSTANCE, deployment, api_version)


def assert_still_serving(gateway: GatewayProcess, fake: FakeChatServer, case: str) -> None:
    assert_serving_after(gateway, fake, case, json_reply(azure_completion("still serving", usage=(3, 2))), USER)


# ---------------------------------------------------------------- text


def test_text_oneshot(client, fake, gateway, case):
    fake.enqueue(json_reply(azure_completion("Dividing by zero is undefined.", usage=(130, 139))))

    message = client.messages.create(model="claude-x", max_tokens=256, system="Be brief.", messages=USER)

    assert [block.type for block in message.content] == ["text"]
    assert message.content[0].text == "Dividing by zero is undefined."
    assert message.stop_reason == "end_turn"
    assert message.model == AZURE_MODEL
    assert (message.usage.input_tokens, message.usage.output_tokens) == (130, 139)
    sent = only_request(fake, case)
    assert (sent.path, sent.query) == (f"/openai/deployments/{DEPLOYMENT}/chat/completions", f"api-version={API_VERSION}")
    assert sent.headers["api-key"] == AZURE_KEY
    assert "authorization" not in sent.headers and "x-api-key" not in sent.headers
    assert CLIENT_KEY not in json.dumps(sent.headers)
    assert sent.body["model"] == DEPLOYMENT
    assert sent.body["max_tokens"] == 256 and "max_completion_tokens" not in sent.body
    assert sent.body["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": USER[0]["content"]}]
    (line,) = exact_log_lines(gateway, case)
    assert_azure_meta(line)
    assert line["ai"]["proxy"]["meta"]["request_mode"] == "oneshot"
    assert line["ai"]["proxy"]["meta"]["response_model"] == AZURE_MODEL
    assert line["upstream_uri"] == f"/openai/deployments/{DEPLOYMENT}/chat/completions?api-version={API_VERSION}"
    assert_log_usage(line, 130, 139)


def test_text_stream(client, fake, gateway, case):
    """Azure's stream starts with a chunk that has no choices, only prompt_filter_results."""
    fake.enqueue(azure_text_stream(("Dividing ", "by zero ", "is undefined."), usage=(41, 9)))

    with client.messages.stream(model="claude-x", max_tokens=256, messages=USER) as stream:
        texts = list(stream.text_stream)
        message = stream.get_final_message()

    assert texts == ["Dividing ", "by zero ", "is undefined."]
    assert message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (41, 9)
    sent = only_request(fake, case)
    assert sent.body["stream"] is True and sent.body["stream_options"] == {"include_usage": True}
    (line,) = exact_log_lines(gateway, case)
    assert_azure_meta(line)
    assert line["ai"]["proxy"]["meta"]["request_mode"] == "stream"
    assert_log_usage(line, 41, 9)


def test_streamed_tool_use_then_tool_result(client, fake, gateway, case):
    call = ToolCall("call_az1", "get_weather", {"city": "Seattle"})
    fake.enqueue(azure_tool_call_stream([call], pieces=3, usage=(120, 30)))

    partial, message = stream_tool_use(client, "Weather in Seattle?", [WEATHER_TOOL])

    assert len(partial) == 3
    assert [(b.type, b.id, b.name, b.input) for b in message.content] == [("tool_use", "call_az1", "get_weather", {"city": "Seattle"})]
    assert message.stop_reason == "tool_use"

    fake.enqueue(azure_text_stream(("Rainy, ", "12 °C."), usage=(160, 6)))
    answer = answer_tool_use(client, "Weather in Seattle?", message, tool_result("call_az1", "rain, 12 °C"), tools=[WEATHER_TOOL])
    assert answer.content[0].text == "Rainy, 12 °C."
    assistant, tool = fake.requests_for(case)[1].body["messages"][-2:]
    assert [c["id"] for c in assistant["tool_calls"]] == ["call_az1"]
    assert tool == {"role": "tool", "content": "rain, 12 °C", "tool_call_id": "call_az1"}
    first, second = exact_log_lines(gateway, case, 2)
    assert_log_usage(first, 120, 30)
    assert_log_usage(second, 160, 6)


def test_stream_names_the_model_azure_reports(client, fake, gateway, case):
    fake.enqueue(azure_text_stream(("Dividing ", "by zero."), usage=(41, 4)))
    with client.messages.stream(model="claude-x", max_tokens=256, messages=USER) as stream:
        message = stream.get_final_message()
    (line,) = exact_log_lines(gateway, case)
    assert (message.model, line["ai"]["proxy"]["meta"]["response_model"]) == (AZURE_MODEL, AZURE_MODEL)


# ---------------------------------------------------------------- content filter


@pytest.mark.parametrize("stream", [False, True], ids=["oneshot", "stream"])
def test_filtered_prompt_is_400_naming_the_filter(client, fake, gateway, case, stream):
    fake.enqueue(azure_content_filter_error(("hate",)))
    error = request_error(anthropic.BadRequestError, client, USER, stream)
    assert_error(error, 400, "invalid_request_error")
    message = error.body["error"]["message"]
    assert "content_filter" in message and "content management policy" in message
    assert "hate" in message
    assert "violence" not in message  # only the categories that fired
    (line,) = exact_log_lines(gateway, case)
    assert line["response"]["status"] == 400
    assert_still_serving(gateway, fake, case)


def test_filtered_completion_stream_is_refusal(client, fake, gateway, case):
    fake.enqueue(azure_filtered_stream(("Here is how ", "to"), usage=(40, 6)))
    with client.messages.stream(model="claude-x", max_tokens=64, messages=USER) as stream:
        message = stream.get_final_message()
    assert message.content[0].text == "Here is how to"
    assert message.stop_reason == "refusal"
    assert_log_usage(exact_log_lines(gateway, case)[0], 40, 6)


def test_filtered_completion_oneshot_is_refusal(client, fake, case):
    fake.enqueue(json_reply(azure_completion("Here is", finish_reason="content_filter", filtered=("violence",), usage=(40, 2))))
    message = client.messages.create(model="claude-x", max_tokens=64, messages=USER)
    assert message.stop_reason == "refusal"
    assert message.content[0].text == "Here is"


# ---------------------------------------------------------------- errors


def test_wrong_key_is_401(client, fake, gateway, case):
    error = rejected_key_error(client, fake, USER, wrong_key="0" * 32, right_key=AZURE_KEY)
    assert_error(error, 401, "authentication_error", "Access denied due to invalid subscription key")
    assert AZURE_KEY not in error.response.text
    assert only_request(fake, case).status == 401
    assert exact_log_lines(gateway, case)[0]["response"]["status"] == 401
    assert_still_serving(gateway, fake, case)


@pytest.mark.parametrize("stream", [False, True], ids=["oneshot", "stream"])
def test_rate_limited_keeps_retry_after(client, fake, gateway, case, stream):
    fake.enqueue(azure_rate_limited("11"))
    error = request_error(anthropic.RateLimitError, client, USER, stream)
    assert_error(error, 429, "rate_limit_error", "exceeded token rate limit")
    assert error.response.headers["retry-after"] == "11"
    assert_still_serving(gateway, fake, case)


@pytest.mark.parametrize(
    ("status", "body", "client_status", "error_type", "text"),
    [
        (500, {"error": {"code": "InternalServerError", "message": "The server had an error while processing your request."}}, 500, "api_error", "The server had an error"),
        (503, {"error": {"code": "ServiceUnavailable", "message": "The service is temporarily unable to process your request."}}, 529, "overloaded_error", "temporarily unable"),
    ],
    ids=["500", "503"],
)
def test_server_errors(client, fake, gateway, case, status, body, client_status, error_type, text):
    fake.enqueue(error_reply(status, body))
    error = request_error(anthropic.APIStatusError, client, USER)
    assert_error(error, client_status, error_type, text)
    assert exact_log_lines(gateway, case)[0]["response"]["status"] == client_status
    assert_still_serving(gateway, fake, case)


def test_count_tokens_is_local(client, fake, gateway, case):
    assert_count_tokens_is_local(client, fake, gateway, case, system="Be brief.", messages=USER, tools=[WEATHER_TOOL])


# ---------------------------------------------------------------- Bearer auth, max_completion_tokens, api-version


@pytest.mark.parametrize("stream", [False, True], ids=["oneshot", "stream"])
def test_bearer_auth_and_max_completion_tokens(reasoning_gateway, reasoning_fake, case, stream):
    """AIMW_AUTH_HEADER=authorization, AZURE_MAX_TOKENS_FIELD=max_completion_tokens and
    AZURE_API_VERSION reach the deployment; the fake rejects max_tokens here."""
    reasoning_fake.enqueue(azure_text_stream(("Because ", "math."), usage=(20, 400)) if stream else json_reply(azure_completion("Because math.", usage=(20, 400))))

    message = create_or_stream(sdk_client(reasoning_gateway.url, case), stream, model="claude-x", max_tokens=32000, messages=USER)

    assert message.content[0].text == "Because math."
    sent = only_request(reasoning_fake, case)
    assert (sent.path, sent.query) == (
        f"/openai/deployments/{REASONING_DEPLOYMENT}/chat/completions",
        f"api-version={REASONING_API_VERSION}",
    )
    assert sent.headers["authorization"] == f"Bearer {AZURE_KEY}"
    assert "api-key" not in sent.headers
    assert sent.body["max_completion_tokens"] == 32000 and "max_tokens" not in sent.body
    assert sent.body["model"] == REASONING_DEPLOYMENT
    (line,) = exact_log_lines(reasoning_gateway, case)
    assert_azure_meta(line, REASONING_DEPLOYMENT, REASONING_API_VERSION)
    assert_log_usage(line, 20, 400)
    assert AZURE_KEY not in reasoning_gateway.log_text()


def test_client_credentials_never_reach_azure(gateway, fake, case):
    fake.enqueue(json_reply(azure_completion("ok")))
    response = httpx.post(
        gateway.url + "/v1/messages?beta=true",
        json={"model": "claude-x", "max_tokens": 8, "messages": USER},
        headers={
            "x-api-key": CLIENT_KEY,
            "authorization": f"Bearer {CLIENT_KEY}",
            "anthropic-version": "2023-06-01",
            "anthropic-beta": "claude-code-20250219",
            "x-e2e-case": case,
        },
        trust_env=False,
    )
    assert response.status_code == 200 and response.json()["content"][0]["text"] == "ok"
    sent = only_request(fake, case)
    assert sent.query == f"api-version={API_VERSION}"  # ?beta=true is not forwarded
    assert sent.headers["api-key"] == AZURE_KEY
    for name in ("authorization", "x-api-key", "anthropic-version", "anthropic-beta"):
        assert name not in sent.headers
    assert CLIENT_KEY not in json.dumps(sent.headers) and CLIENT_KEY.encode() not in sent.raw_body
    log = gateway.log_text()
    assert CLIENT_KEY not in log and AZURE_KEY not in log
