"""The OpenAI recipe's own behaviour end to end: the Anthropic Python SDK -> Hypercorn serving
recipes.openai:app (a real process) -> a fake OpenAI Chat Completions server on loopback,
playing api.openai.com (``Authorization: Bearer <OPENAI_API_KEY>``; reasoning models take
only ``max_completion_tokens``) or a local OpenAI-compatible server (vLLM, Ollama) that
wants no credential at all. What every recipe does is tested in test_recipe_scenarios.py.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.harness import (
    CLIENT_KEY,
    GatewayProcess,
    assert_log_usage,
    checked_fake,
    exact_log_lines,
    running_gateway,
    sdk_client,
)
from tests.e2e.recipes import OPENAI_KEY
from tests.e2e.scenarios import USER, create_or_stream, only_request
from tests.fakes.openai_chat_server import OPENAI, FakeChatServer, json_reply, openai_completion, text_stream

pytestmark = pytest.mark.e2e

LOCAL_MODEL = "qwen3-coder"
REASONING_PROFILE = dataclasses.replace(OPENAI, max_tokens_field="max_completion_tokens")


@pytest.fixture(scope="module")
def openai_api(recipe_servers) -> FakeChatServer:
    return recipe_servers["openai"].fake


@pytest.fixture(scope="module", params=["o3-mini", "gpt-5"])
def reasoning_gateway(openai_api, tmp_path_factory, request) -> Iterator[GatewayProcess]:
    env = {"OPENAI_API_KEY": OPENAI_KEY, "AIMW_UPSTREAM_URL": openai_api.url, "AIMW_MODEL": request.param}
    with running_gateway("recipes.openai:app", env, tmp_path_factory, f"openai-{request.param}-gateway") as gw:
        yield gw


@pytest.fixture(scope="module")
def local_gateway(openai_api, tmp_path_factory) -> Iterator[GatewayProcess]:
    """A local vLLM / Ollama: AIMW_UPSTREAM_URL and a model, no OPENAI_API_KEY."""
    env = {"AIMW_UPSTREAM_URL": openai_api.url, "AIMW_MODEL": LOCAL_MODEL}
    with running_gateway("recipes.openai:app", env, tmp_path_factory, "openai-local-gateway") as gw:
        yield gw


@pytest.fixture
def reasoning_fake(openai_api, reasoning_gateway, request) -> Iterator[FakeChatServer]:
    with checked_fake(openai_api, [reasoning_gateway], request) as server:
        server.profile = REASONING_PROFILE
        yield server


@pytest.fixture
def local_fake(openai_api, local_gateway, request) -> Iterator[FakeChatServer]:
    with checked_fake(openai_api, [local_gateway], request) as server:
        server.expected_token = None  # any credential header is a violation
        yield server


# ---------------------------------------------------------------- reasoning models


@pytest.mark.parametrize("stream", [False, True], ids=["oneshot", "stream"])
def test_reasoning_model_gets_max_completion_tokens(reasoning_gateway, reasoning_fake, case, stream):
    model = reasoning_gateway.env["AIMW_MODEL"]
    reasoning_fake.enqueue(
        text_stream(("2",), usage=(20, 300), reasoning_tokens=290, model=model)
        if stream
        else json_reply(openai_completion("2", model=model, usage=(20, 300)))
    )

    message = create_or_stream(
        sdk_client(reasoning_gateway.url, case), stream, model="claude-x", max_tokens=32000, messages=USER
    )

    assert message.content[0].text == "2"
    sent = only_request(reasoning_fake, case)
    assert sent.body["model"] == model
    assert sent.body["max_completion_tokens"] == 32000 and "max_tokens" not in sent.body
    assert sent.headers["authorization"] == f"Bearer {OPENAI_KEY}"
    (line,) = exact_log_lines(reasoning_gateway, case)
    assert line["ai"]["proxy"]["meta"]["request_model"] == model
    assert_log_usage(line, 20, 300)


# ---------------------------------------------------------------- a local OpenAI-compatible server


@pytest.mark.parametrize("stream", [False, True], ids=["oneshot", "stream"])
def test_local_server_gets_no_credentials(local_gateway, local_fake, case, stream):
    """No OPENAI_API_KEY with AIMW_UPSTREAM_URL: nothing in Authorization (the fake rejects
    any credential header), and the client's key never leaves the gateway."""
    local_fake.enqueue(
        text_stream(("local",), usage=(9, 1), model=LOCAL_MODEL)
        if stream
        else json_reply(openai_completion("local", model=LOCAL_MODEL, usage=(9, 1)))
    )

    response = httpx.post(
        local_gateway.url + "/v1/messages?beta=true",
        json={"model": "claude-x", "max_tokens": 64, "stream": stream, "messages": USER},
        headers={
            "x-api-key": CLIENT_KEY,
            "authorization": f"Bearer {CLIENT_KEY}",
            "anthropic-version": "2023-06-01",
            "x-e2e-case": case,
        },
        trust_env=False,
    )

    assert response.status_code == 200
    assert "local" in response.text
    sent = only_request(local_fake, case)
    assert "authorization" not in sent.headers and "x-api-key" not in sent.headers
    assert CLIENT_KEY not in json.dumps(sent.headers) and CLIENT_KEY.encode() not in sent.raw_body
    assert sent.body["model"] == LOCAL_MODEL
    assert sent.body["max_tokens"] == 64 and "max_completion_tokens" not in sent.body
    (line,) = exact_log_lines(local_gateway, case)
    assert line["ai"]["proxy"]["meta"]["provider_name"] == "openai"
    assert_log_usage(line, 9, 1)
    assert CLIENT_KEY not in local_gateway.log_text()


def test_key_required_without_upstream_url(tmp_path_factory):
    """Pointed at api.openai.com, the recipe refuses to start without OPENAI_API_KEY, naming it."""
    gateway = GatewayProcess("recipes.openai:app", {}, tmp_path_factory.mktemp("openai-no-key"))
    with pytest.raises(AssertionError, match="exited"):
        gateway.start()
    assert "OPENAI_API_KEY" in gateway.output()
    assert not gateway.alive()
