"""The Azure OpenAI recipe's own behaviour end to end: the Anthropic Python SDK -> Hypercorn
serving recipes.azure:app (a real process) -> a fake Azure OpenAI deployment on loopback.
What every recipe does is tested in test_recipe_scenarios.py.

The fake (tests/fakes/openai_chat_server.py with an Azure profile) checks what Azure
checks: ``POST /openai/deployments/{deployment}/chat/completions?api-version=<version>``,
the ``api-key`` header (or ``Authorization: Bearer``), a valid Chat Completions body, and
``max_completion_tokens`` only for a reasoning-model deployment. It answers in Azure's
shapes: prompt_filter_results / content_filter_results, the content_filter error.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

import anthropic
from tests.e2e.harness import (
    GatewayProcess,
    assert_log_usage,
    checked_fake,
    exact_log_lines,
    running_gateway,
    sdk_client,
)
from tests.e2e.recipes import AZURE, AZURE_INSTANCE, AZURE_KEY, Usage
from tests.e2e.scenarios import USER, assert_error, assert_still_serving, create_or_stream, only_request, request_error
from tests.fakes.openai_chat_server import (
    FakeChatServer,
    azure_completion,
    azure_content_filter_error,
    azure_filtered_stream,
    azure_profile,
    azure_text_stream,
    json_reply,
)

pytestmark = pytest.mark.e2e

# the second gateway: a reasoning-model deployment, Bearer auth, an explicit api-version
REASONING_DEPLOYMENT = "o3-mini-e2e"
REASONING_API_VERSION = "2024-12-01-preview"
REASONING_PROFILE = dataclasses.replace(
    azure_profile(REASONING_DEPLOYMENT, REASONING_API_VERSION, auth_header="authorization"),
    max_tokens_field="max_completion_tokens",
)


@pytest.fixture(scope="module")
def azure_api(recipe_servers) -> FakeChatServer:
    return recipe_servers["azure"].fake


@pytest.fixture(scope="module")
def gateway(recipe_servers) -> GatewayProcess:
    return recipe_servers["azure"].gateway


@pytest.fixture(scope="module")
def reasoning_gateway(azure_api, tmp_path_factory) -> Iterator[GatewayProcess]:
    env = {
        **AZURE.env(azure_api.url),
        "AZURE_DEPLOYMENT_ID": REASONING_DEPLOYMENT,
        "AZURE_API_VERSION": REASONING_API_VERSION,
        "AIMW_AUTH_HEADER": "authorization",
        "AZURE_MAX_TOKENS_FIELD": "max_completion_tokens",
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


def still_serving(gateway: GatewayProcess, fake: FakeChatServer, case: str) -> None:
    assert_still_serving(gateway, fake, case, AZURE.completion("still serving", Usage(3, 2)), USER)


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
    still_serving(gateway, fake, case)


def test_filtered_completion_stream_is_refusal(client, fake, gateway, case):
    fake.enqueue(azure_filtered_stream(("Here is how ", "to"), usage=(40, 6)))
    with client.messages.stream(model="claude-x", max_tokens=64, messages=USER) as stream:
        message = stream.get_final_message()
    assert message.content[0].text == "Here is how to"
    assert message.stop_reason == "refusal"
    assert_log_usage(exact_log_lines(gateway, case)[0], 40, 6)


def test_filtered_completion_oneshot_is_refusal(client, fake, case):
    fake.enqueue(
        json_reply(azure_completion("Here is", finish_reason="content_filter", filtered=("violence",), usage=(40, 2)))
    )
    message = client.messages.create(model="claude-x", max_tokens=64, messages=USER)
    assert message.stop_reason == "refusal"
    assert message.content[0].text == "Here is"


# ---------------------------------------------------------------- Bearer auth, max_completion_tokens, api-version


@pytest.mark.parametrize("stream", [False, True], ids=["oneshot", "stream"])
def test_bearer_auth_and_max_completion_tokens(reasoning_gateway, reasoning_fake, case, stream):
    """AIMW_AUTH_HEADER=authorization, AZURE_MAX_TOKENS_FIELD=max_completion_tokens and
    AZURE_API_VERSION reach the deployment; the fake rejects max_tokens here."""
    reasoning_fake.enqueue(
        azure_text_stream(("Because ", "math."), usage=(20, 400))
        if stream
        else json_reply(azure_completion("Because math.", usage=(20, 400)))
    )

    message = create_or_stream(
        sdk_client(reasoning_gateway.url, case), stream, model="claude-x", max_tokens=32000, messages=USER
    )

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
    meta = line["ai"]["proxy"]["meta"]
    assert (meta["provider_name"], meta["request_model"]) == ("azure", REASONING_DEPLOYMENT)
    assert (meta["azure_instance_id"], meta["azure_deployment_id"], meta["azure_api_version"]) == (
        AZURE_INSTANCE,
        REASONING_DEPLOYMENT,
        REASONING_API_VERSION,
    )
    assert_log_usage(line, 20, 400)
    assert AZURE_KEY not in reasoning_gateway.log_text()
