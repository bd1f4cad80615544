"""load_config on plain documents: Kong's defaults, every field read, YAML and JSON, the
three ways to name an environment variable, and errors that name the field's path and
what is expected (never a secret)."""

from __future__ import annotations

import json
import textwrap

import pytest

from aimw.config import GatewayConfig, load_config
from aimw.config.schema import Auth, Balancer, Logging, ModelOptions, Target
from aimw.settings import DEFAULT_MAX_REQUEST_BODY_SIZE
from tests.config.support import problem

MINIMAL = """
llm_format: anthropic
targets:
  - model:
      provider: openai
"""


def test_every_default_is_kongs(write_config):
    config = load_config(write_config(MINIMAL), {})
    assert (config.llm_format, config.model_name_header, config.response_streaming, config.genai_category) == (
        "anthropic",
        True,
        "allow",
        "text/generation",
    )
    assert config.max_request_body_size == DEFAULT_MAX_REQUEST_BODY_SIZE == 8 * 1024 * 1024  # aimw's, not Kong's 8192
    assert (config.log, config.strip_model) == (None, False)
    assert config.balancer == Balancer(
        algorithm="round-robin",
        retries=5,
        failover_criteria=("error", "timeout"),
        connect_timeout=60000,
        read_timeout=60000,
        write_timeout=60000,
        max_fails=0,
        fail_timeout=10000,
        hash_on_header="X-Kong-LLM-Request-ID",
        latency_strategy="tpot",
        tokens_count_strategy="total-tokens",
        slots=10000,
    )
    [target] = config.targets
    assert (target.route_type, target.weight, target.description) == ("llm/v1/chat", 100, None)
    assert target.logging == Logging(log_statistics=False, log_payloads=False)
    assert target.auth == Auth()
    assert (target.auth.gcp_use_service_account, target.auth.allow_override) == (False, False)
    assert target.auth.azure_use_managed_identity is False
    assert (target.model.name, target.model.aliases, target.model.max_tokens_cap) == (None, (), None)
    assert target.model.options == ModelOptions()
    assert target.model.options.azure_api_version == "2023-05-15"


EVERY_FIELD = """
llm_format: anthropic
max_request_body_size: 0
model_name_header: false
response_streaming: always
genai_category: text/generation
log: {path: /var/log/aimw/gateway.log}
balancer:
  algorithm: lowest-usage
  retries: 2
  failover_criteria: [error, http_429, http_503, non_idempotent]
  connect_timeout: 1000
  read_timeout: 120000
  write_timeout: 30000
  max_fails: 3
  fail_timeout: 5000
  hash_on_header: X-Session
  latency_strategy: e2e
  tokens_count_strategy: cost
  slots: 100
targets:
  - route_type: llm/v1/chat
    weight: 65535
    description: the cheap one
    logging: {log_statistics: true, log_payloads: true}
    model:
      provider: huggingface
      name: Qwen/Qwen3-Coder-480B-A35B-Instruct
      model_alias: [claude-haiku-*, claude-3-5-haiku-*]
      options:
        max_tokens: 4096
        temperature: 0.5
        top_p: 0.9
        top_k: 40
        input_cost: 0.25
        output_cost: 1.5
        huggingface: {use_cache: false, wait_for_model: true}
  - weight: 1
    model: {provider: openai, model_alias: claude-sonnet-*}
"""


def test_every_field_is_read(write_config):
    config = load_config(write_config(EVERY_FIELD), {})
    assert (config.max_request_body_size, config.model_name_header, config.response_streaming) == (0, False, "always")
    assert config.log is not None and config.log.path == "/var/log/aimw/gateway.log"
    assert config.balancer == Balancer(
        algorithm="lowest-usage",
        retries=2,
        failover_criteria=("error", "http_429", "http_503", "non_idempotent"),
        connect_timeout=1000,
        read_timeout=120000,
        write_timeout=30000,
        max_fails=3,
        fail_timeout=5000,
        hash_on_header="X-Session",
        latency_strategy="e2e",
        tokens_count_strategy="cost",
        slots=100,
    )
    first, second = config.targets
    assert (first.weight, first.description, first.logging) == (
        65535,
        "the cheap one",
        Logging(log_statistics=True, log_payloads=True),
    )
    assert first.model.aliases == ("claude-haiku-*", "claude-3-5-haiku-*")
    options = first.model.options
    assert (options.max_tokens, options.temperature, options.top_p, options.top_k) == (4096, 0.5, 0.9, 40)
    assert (options.input_cost, options.output_cost) == (0.25, 1.5)
    assert options.huggingface is not None and options.huggingface.wait_for_model is True
    assert (second.weight, second.model.aliases) == (1, ("claude-sonnet-*",))


def test_json_reads_as_yaml_does(write_config):
    document = {"llm_format": "anthropic", "targets": [{"model": {"provider": "openai", "name": "gpt-4.1"}}]}
    from_json = load_config(write_config(json.dumps(document, indent="\t"), "gateway.json"), {})
    from_yaml = load_config(
        write_config("llm_format: anthropic\ntargets: [{model: {provider: openai, name: gpt-4.1}}]"), {}
    )
    assert from_json == from_yaml
    assert isinstance(from_json, GatewayConfig) and isinstance(from_json.targets[0], Target)


def test_a_yaml_date_stays_text(write_config):
    text = """
    llm_format: anthropic
    targets:
      - model:
          provider: azure
          options: {azure_instance: my-resource, azure_deployment_id: gpt-4o, azure_api_version: 2024-02-01}
    """
    config = load_config(write_config(textwrap.dedent(text)), {})
    assert config.targets[0].model.options.azure_api_version == "2024-02-01"


def test_the_three_ways_to_name_a_variable(write_config):
    text = """
    llm_format: anthropic
    targets:
      - auth: {header_name: api-key, header_value: "${AZURE_KEY}"}
        model:
          provider: azure
          options:
            azure_instance: "{vault://env/azure-instance-name}"
            azure_deployment_id: ${{ env "DECK_AZURE_DEPLOYMENT_ID" }}
            azure_api_version: '${{env "DECK_VERSION"}}-preview'
    """
    environ = {
        "AZURE_KEY": '  key: with # YAML {special} "characters"\n',
        "AZURE_INSTANCE_NAME": "my-resource",
        "DECK_AZURE_DEPLOYMENT_ID": "gpt-4o",
        "DECK_VERSION": "2025-01-01",
    }
    config = load_config(write_config(textwrap.dedent(text)), environ)
    target = config.targets[0]
    assert target.auth.header_value == 'key: with # YAML {special} "characters"'  # one string, stripped
    options = target.model.options
    assert (options.azure_instance, options.azure_deployment_id) == ("my-resource", "gpt-4o")
    assert options.azure_api_version == "2025-01-01-preview"


def test_substituted_text_is_not_scanned_again(write_config):
    text = MINIMAL.replace("provider: openai", "provider: openai\n      name: ${FIRST}")
    config = load_config(write_config(text), {"FIRST": "${SECOND}", "SECOND": "never"})
    assert config.targets[0].model.name == "${SECOND}"


def test_a_variable_gives_a_number_or_a_boolean(write_config):
    text = """
    llm_format: anthropic
    model_name_header: ${HEADER}
    balancer: {retries: "${RETRIES}"}
    targets:
      - weight: ${WEIGHT}
        model: {provider: openai, options: {temperature: "${TEMPERATURE}"}}
    """
    environ = {"HEADER": "false", "RETRIES": "3", "WEIGHT": "70", "TEMPERATURE": "0.2"}
    config = load_config(write_config(textwrap.dedent(text)), environ)
    assert (config.model_name_header, config.balancer.retries, config.targets[0].weight) == (False, 3, 70)
    assert config.targets[0].model.options.temperature == 0.2


@pytest.mark.parametrize(
    ("reference", "named"),
    [
        ("${HF_TOKEN}", "the environment variable HF_TOKEN is not set"),
        ("{vault://env/hf-token}", "the environment variable HF_TOKEN (from {vault://env/hf-token}) is not set"),
        ('${{ env "DECK_HF_TOKEN" }}', "the environment variable DECK_HF_TOKEN is not set"),
    ],
)
def test_a_missing_variable_is_named_with_its_field(write_config, reference, named):
    text = MINIMAL + f"    auth: {{header_name: Authorization, header_value: 'Bearer {reference}'}}\n"
    message = problem(write_config, text, {"OTHER": "x"})
    assert message.startswith(f"targets[0].auth.header_value: {named}")


def test_an_empty_variable_is_missing(write_config):
    message = problem(write_config, MINIMAL.replace("openai", "${PROVIDER}"), {"PROVIDER": "  "})
    assert message == "targets[0].model.provider: the environment variable PROVIDER is not set (or is empty)"


def test_only_kongs_env_vault_is_read(write_config):
    message = problem(write_config, MINIMAL.replace("openai", "'{vault://aws/openai-key}'"))
    assert message.startswith("targets[0].model.provider: expected a vault reference {vault://env/name}")


def test_kong_fields_aimw_does_not_use_load_while_unset(write_config):
    """As deck dumps write them: every field, the unset ones null or false."""
    text = """
    llm_format: anthropic
    embeddings: null
    vectordb: null
    targets:
      - auth:
          allow_override: false
          azure_use_managed_identity: false
          azure_client_id: null
          aws_access_key_id: null
        model:
          provider: openai
          options: {llama2_format: null, mistral_format: null, bedrock: null, gemini: null, huggingface: null}
    """
    config = load_config(write_config(textwrap.dedent(text)), {})
    assert config.targets[0].auth == Auth()
