"""build_targets: each target's provider at the URL it really calls (``upstream_url`` as
Kong means it: the whole endpoint), its credential (registered for redaction, never shown),
model, aliases and field rules."""

from __future__ import annotations

import json

import pytest

from aimw.config import TargetSpec, build_targets, load_config
from aimw.credentials import HeaderCredential, QueryCredential
from aimw.errors import redact
from aimw.google_token import GoogleAccessToken
from aimw.settings import ConfigurationError
from aimw.translators.openai_chat import OpenAIChat
from tests.config.support import requested_url

SECRET = "f00dfeedf00dfeedf00dfeedf00dfeed"  # no shape the redactor's patterns know
AZURE = {"provider": "azure", "options": {"azure_instance": "r", "azure_deployment_id": "gpt-4o"}}
VERTEX = {"provider": "gemini", "options": {"gemini": {"api_endpoint": "h", "project_id": "p", "location_id": "l"}}}


def targets(write_config, *entries: dict, environ: dict[str, str] | None = None) -> list[TargetSpec]:
    """The TargetSpecs of a (JSON) document whose targets are ``entries``."""
    text = json.dumps({"llm_format": "anthropic", "targets": list(entries)})
    return build_targets(load_config(write_config(text, "gateway.json"), environ or {}), environ=environ or {})


def at(url: str, model: dict, **options: object) -> dict:
    """A target of ``model`` with ``options.upstream_url`` ``url`` (and ``options``)."""
    return {"model": model | {"options": model.get("options", {}) | {"upstream_url": url} | options}}


@pytest.mark.parametrize(
    ("target", "stream", "requested"),
    [
        (
            at("http://127.0.0.1:8080/openai/v1/chat/completions?tenant=a", {"provider": "openai", "name": "gpt-4.1"}),
            False,
            "http://127.0.0.1:8080/openai/v1/chat/completions?tenant=a",
        ),
        (
            at("http://localhost:11434", {"provider": "openai", "name": "qwen3-coder"}),
            False,
            "http://localhost:11434/v1/chat/completions",
        ),
        (at("https://hf.internal/", {"provider": "huggingface"}), False, "https://hf.internal/v1/chat/completions"),
        (
            at("https://dashscope.aliyuncs.com/compatible-mode/v1/chat/completions", {"provider": "dashscope"}),
            False,
            "https://dashscope.aliyuncs.com/compatible-mode/v1/chat/completions",
        ),
        (
            at(
                "https://apim.example/openai/deployments/gpt-4o/chat/completions", AZURE, azure_api_version="2024-10-21"
            ),
            False,
            "https://apim.example/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21",
        ),
        (
            at(
                "https://apim.example/openai/deployments/gpt-4o/chat/completions?api-version=2025-01-01-preview&x=1",
                AZURE,
            ),
            False,
            "https://apim.example/openai/deployments/gpt-4o/chat/completions?api-version=2025-01-01-preview&x=1",
        ),
        (
            at(
                "https://gw.example:8443/google/v1beta/models/gemini-2.5-flash:generateContent",
                {"provider": "gemini", "name": "gemini-2.5-pro"},
            ),
            True,
            "https://gw.example:8443/google/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse",
        ),
        (
            at(
                "https://vertex.internal/v1/projects/p/locations/global/publishers/google/models/gemini-2.5-flash",
                VERTEX,
            ),
            False,
            "https://vertex.internal/v1/projects/p/locations/global/publishers/google/models/gemini-2.5-flash"
            ":generateContent",
        ),
        (
            at("http://127.0.0.1:9999", {"provider": "gemini", "name": "gemini-2.5-flash"}),
            False,
            "http://127.0.0.1:9999/v1beta/models/gemini-2.5-flash:generateContent",
        ),
        (
            at("http://127.0.0.1:9000/v1/messages", {"provider": "anthropic"}),
            False,
            "http://127.0.0.1:9000/v1/messages",
        ),
    ],
)
def test_upstream_url_is_the_whole_endpoint(write_config, target, stream, requested):
    [spec] = targets(write_config, target)
    assert requested_url(spec, stream=stream) == requested
    assert spec.provider.base_url == requested[: requested.index("/", len("https://"))]


def test_a_gemini_url_names_the_model_when_model_name_does_not(write_config):
    url = "https://gw.example/v1beta/models/gemini-2.0-flash:streamGenerateContent"
    [spec] = targets(write_config, at(url, {"provider": "gemini"}))
    assert spec.model == "gemini-2.0-flash"


def test_upstream_path_replaces_the_path_on_the_providers_host(write_config):
    azure = AZURE | {"options": AZURE["options"] | {"upstream_path": "/v2/chat"}}
    [spec] = targets(write_config, {"model": azure})
    assert requested_url(spec) == "https://r.openai.azure.com/v2/chat?api-version=2023-05-15"


def test_without_upstream_url_each_provider_is_at_its_real_url(write_config):
    openai, gemini, anthropic = targets(
        write_config,
        {"model": {"provider": "openai", "name": "o3"}},
        {"model": {"provider": "gemini", "name": "gemini-2.5-flash"}},
        {"model": {"provider": "anthropic"}},
    )
    assert isinstance(openai.provider.wire_format, OpenAIChat)
    assert openai.provider.wire_format.options.max_tokens_field == "max_completion_tokens"  # o3, a reasoning model
    assert requested_url(openai) == "https://api.openai.com/v1/chat/completions"
    assert (
        requested_url(gemini)
        == "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent"
    )
    assert requested_url(anthropic, model="claude-sonnet-4-5") == "https://api.anthropic.com/v1/messages"


@pytest.mark.anyio
async def test_a_bearer_header_is_sent_whole_and_its_token_redacted(write_config):
    auth = {"header_name": "Authorization", "header_value": "Bearer ${TOKEN}"}
    [spec] = targets(write_config, {"auth": auth, "model": {"provider": "openai"}}, environ={"TOKEN": SECRET})
    assert isinstance(spec.credential, HeaderCredential) and spec.credential.header == "authorization"
    headers, query = await spec.credential.authorization()
    assert [name for name, _ in headers] == [b"authorization"] and query == b""
    assert headers[0][1].startswith(b"Bearer ") and len(headers[0][1]) == len("Bearer ") + len(SECRET)
    assert redact(f"the provider echoed {SECRET}") == "the provider echoed [REDACTED]"
    assert SECRET not in repr(spec)


@pytest.mark.anyio
async def test_a_header_and_a_query_parameter(write_config):
    api_key = {"header_name": "api-key", "header_value": "${KEY}"}
    param = {"param_name": "key", "param_value": "${GEMINI_KEY}", "param_location": "query"}
    environ = {"KEY": SECRET, "GEMINI_KEY": "AIzaSyTest-0123456789"}
    header, parameter = targets(
        write_config,
        {"auth": api_key, "model": AZURE},
        {"auth": param, "model": {"provider": "gemini"}},
        environ=environ,
    )
    assert isinstance(header.credential, HeaderCredential) and header.credential.header == "api-key"
    assert len((await header.credential.authorization())[0][0][1]) == len(SECRET)  # the value as given
    assert isinstance(parameter.credential, QueryCredential) and parameter.credential.name == "key"
    assert (await parameter.credential.authorization())[1].startswith(b"key=")


def test_no_auth_sends_no_credential(write_config):
    [spec] = targets(write_config, at("http://localhost:8080", {"provider": "openai"}))
    assert spec.credential is None


def test_a_vertex_service_account_key(write_config, service_account_json):
    auth = {"gcp_use_service_account": True, "gcp_service_account_json": "${KEY}"}
    [spec] = targets(write_config, {"auth": auth, "model": VERTEX}, environ={"KEY": service_account_json})
    assert isinstance(spec.credential, GoogleAccessToken)
    assert json.loads(service_account_json)["private_key"].splitlines()[1] not in repr(spec)


def test_kongs_gcp_service_account_variable(write_config, service_account_json):
    auth = {"gcp_use_service_account": True}
    environ = {"GCP_SERVICE_ACCOUNT": service_account_json}
    [spec] = targets(write_config, {"auth": auth, "model": {"provider": "gemini"}}, environ=environ)
    assert isinstance(spec.credential, GoogleAccessToken)


def test_application_default_credentials(write_config, service_account_json, tmp_path, monkeypatch):
    key_file = tmp_path / "key.json"
    key_file.write_text(service_account_json)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key_file))
    [spec] = targets(write_config, {"auth": {"gcp_use_service_account": True}, "model": {"provider": "gemini"}})
    assert isinstance(spec.credential, GoogleAccessToken)


def test_a_key_that_is_not_one_is_named_never_shown(write_config):
    not_a_key = json.dumps({"type": "authorized_user", "private_key": SECRET})
    auth = {"gcp_use_service_account": True, "gcp_service_account_json": "${KEY}"}
    with pytest.raises(ConfigurationError) as caught:
        targets(write_config, {"auth": auth, "model": {"provider": "gemini"}}, environ={"KEY": not_a_key})
    message = str(caught.value)
    assert message.startswith("aimw: targets[0].auth.gcp_service_account_json lacks the service-account field(s)")
    assert SECRET not in message


def test_the_rest_of_a_target(write_config):
    options = {"max_tokens": 2048, "top_p": 0.5, "input_cost": 0.4}
    model = {"provider": "openai", "name": "gpt-4.1-mini", "model_alias": ["claude-haiku-*"], "options": options}
    first, second = targets(
        write_config,
        {"weight": 30, "description": "fast", "logging": {"log_payloads": True}, "model": model},
        {"model": {"provider": "openai"}},
    )
    assert (first.index, first.weight, first.description, first.route_type) == (0, 30, "fast", "llm/v1/chat")
    assert (first.model, first.aliases) == ("gpt-4.1-mini", ("claude-haiku-*",))
    assert (first.set_fields, first.cap_fields) == ({"top_p": 0.5}, {"max_tokens": 2048})
    assert (first.log_payloads, first.log_statistics) == (True, False)
    assert (second.index, second.model, second.aliases, second.set_fields, second.cap_fields) == (1, None, (), {}, {})
    assert dict(first.log_meta) == {}


def test_azure_log_meta(write_config):
    [spec] = targets(write_config, {"model": AZURE})
    assert dict(spec.log_meta) == {
        "azure_instance_id": "r",
        "azure_deployment_id": "gpt-4o",
        "azure_api_version": "2023-05-15",
    }
