"""Every error stops the server at start (ConfigurationError) with the field's path and what
is expected: typos, wrong types and ranges, what aimw refuses and why, files that are not
YAML, JSON or a mapping; never a secret's value."""

from __future__ import annotations

import pytest

from aimw.config import load_config
from aimw.settings import ConfigurationError
from tests.config.support import problem

OPENAI = "{provider: openai}"
AZURE = "{provider: azure, options: {azure_instance: my-resource, azure_deployment_id: gpt-4o}}"
SECRET = "s3cr3t-value-0123456789"


def document(target: str = f"{{model: {OPENAI}}}", top: str = "llm_format: anthropic") -> str:
    return f"{top}\ntargets:\n  - {target}\n"


CASES = [
    # typos and types
    (
        document(top="llm_format: anthropic\nllm_fromat: x"),
        "llm_fromat: unknown field (not in Kong's schema here: a typo?)",
    ),
    (document(top="llm_format: anthropic\nbalancer: {retry: 3}"), "balancer.retry: unknown field"),
    (
        document("{model: {provider: openai, options: {temprature: 1}}}"),
        "targets[0].model.options.temprature: unknown field",
    ),
    (document(top="llm_format: anthropic\nbalancer: {retries: many}"), "balancer.retries: expected int, got str"),
    (
        document(top="llm_format: anthropic\nbalancer: {connect_timeout: -1}"),
        "balancer.connect_timeout: expected int >= 0",
    ),
    (
        document(top="llm_format: anthropic\nbalancer: {failover_criteria: [error, http_418]}"),
        "balancer.failover_criteria[1]: expected one of error, http_403, http_404, http_429, http_500, http_502, "
        "http_503, http_504, invalid_header, non_idempotent, timeout; got 'http_418'",
    ),
    (
        document(top="llm_format: anthropic\nbalancer: {hash_on_header: X Session}"),
        "balancer.hash_on_header: expected a header name (letters, digits, -)",
    ),
    (document(f"{{weight: 0, model: {OPENAI}}}"), "targets[0].weight: expected int >= 1"),
    (document(f"{{weight: 65536, model: {OPENAI}}}"), "targets[0].weight: expected int <= 65535"),
    (
        document("{model: {provider: openai, options: {temperature: 7}}}"),
        "targets[0].model.options.temperature: expected float <= 5.0",
    ),
    (
        document("{model: {provider: openai, model_alias: ['']}}"),
        "targets[0].model.model_alias: expected non-empty patterns",
    ),
    ("llm_format: anthropic\n", "targets: required"),
    ("llm_format: anthropic\ntargets: []\n", "targets: expected array of length >= 1"),
    (document("{weight: 1}"), "targets[0].model: required"),
    (document("{model: {name: gpt-4.1}}"), "targets[0].model.provider: required"),
    # what Kong means and aimw does not serve
    (
        document(top=""),
        "llm_format: required (Claude Code speaks Anthropic's Messages format: set llm_format: anthropic)",
    ),
    (
        document(top="llm_format: openai"),
        "llm_format: expected one of anthropic; got 'openai' "
        "(Claude Code speaks Anthropic's Messages format: set llm_format: anthropic)",
    ),
    (
        document(top="llm_format: anthropic\nbalancer: {algorithm: semantic}"),
        "balancer.algorithm: expected one of consistent-hashing, least-connections, lowest-latency, lowest-usage, "
        "priority, round-robin; got 'semantic' "
        "(semantic routing (embeddings and a vector database) is out of aimw's scope)",
    ),
    (
        document(top="llm_format: anthropic\nembeddings: {model: {provider: openai}}"),
        "embeddings: not supported by aimw (for the semantic algorithm, out of aimw's scope)",
    ),
    (
        document("{model: {provider: bedrock}}"),
        "targets[0].model.provider: expected one of anthropic, azure, dashscope, gemini, huggingface, openai; "
        "got 'bedrock' "
        "(Kong's bedrock, cohere, llama2 and mistral are not served by aimw)",
    ),
    (
        document(f"{{route_type: preserve, model: {OPENAI}}}"),
        "targets[0].route_type: expected one of llm/v1/chat; got 'preserve' "
        "(Claude Code's Messages requests are Kong's llm/v1/chat)",
    ),
    (
        document(top="llm_format: anthropic\ngenai_category: audio/speech"),
        "genai_category: expected one of text/generation; got 'audio/speech'",
    ),
    (
        document("{model: {provider: openai, options: {llama2_format: ollama}}}"),
        "targets[0].model.options.llama2_format: not supported by aimw (for provider llama2)",
    ),
    # azure, gemini and the model's options
    (
        document("{model: {provider: azure, options: {azure_deployment_id: gpt-4o}}}"),
        "targets[0].model.options.azure_instance: required for provider azure",
    ),
    (
        document("{model: {provider: azure, options: {azure_instance: my-resource}}}"),
        "targets[0].model.options.azure_deployment_id: required for provider azure",
    ),
    (
        document("{model: {provider: openai, options: {gemini: {}}}}"),
        "targets[0].model.options.gemini: only for provider gemini (Vertex AI)",
    ),
    (
        document("{model: {provider: gemini, options: {gemini: {api_endpoint: h, location_id: l}}}}"),
        "targets[0].model.options.gemini.project_id: required with api_endpoint",
    ),
    (
        document("{model: {provider: gemini, max_tokens: 8192, options: {max_tokens: 4096}}}"),
        "targets[0].model.max_tokens: given twice; expected only options.max_tokens",
    ),
    # auth
    (
        document(f"{{auth: {{allow_override: true}}, model: {OPENAI}}}"),
        "targets[0].auth.allow_override: not supported by aimw "
        "(the configured credential always replaces the client's)",
    ),
    (
        document(f"{{auth: {{azure_use_managed_identity: true}}, model: {AZURE}}}"),
        "targets[0].auth.azure_use_managed_identity: not supported by aimw "
        "(no Azure managed identity; give the key in header_name: api-key)",
    ),
    (
        document(f"{{auth: {{param_name: key, param_value: v, param_location: body}}, model: {OPENAI}}}"),
        "targets[0].auth.param_location: body is not supported by aimw (expected query)",
    ),
    (
        document(f"{{auth: {{header_name: Authorization}}, model: {OPENAI}}}"),
        "targets[0].auth.header_value: required with header_name",
    ),
    (
        document(f"{{auth: {{param_name: key, param_value: v}}, model: {OPENAI}}}"),
        "targets[0].auth.param_location: required with param_name",
    ),
    (
        document(
            "{auth: {header_name: a, header_value: b, param_name: key, param_value: v, param_location: query}, "
            f"model: {OPENAI}}}"
        ),
        "targets[0].auth.param_name: expected one credential per target, not both header_name and param_name",
    ),
    (
        document(f"{{auth: {{gcp_use_service_account: true}}, model: {OPENAI}}}"),
        "targets[0].auth.gcp_use_service_account: only for provider gemini (Vertex AI)",
    ),
    (
        document("{auth: {gcp_service_account_json: '{}'}, model: {provider: gemini}}"),
        "targets[0].auth.gcp_service_account_json: used only with gcp_use_service_account: true",
    ),
    (
        document(f"{{auth: {{header_name: 'Bad Name', header_value: v}}, model: {OPENAI}}}"),
        "targets[0].auth.header_name: expected a header name (letters, digits, -)",
    ),
    # upstream_url
    (
        document("{model: {provider: openai, options: {upstream_url: 'ftp://files.example'}}}"),
        "targets[0].model.options.upstream_url: expected a URL, http(s)://host[:port][/path]",
    ),
    (
        document("{model: {provider: openai, options: {upstream_url: 'http://localhost:99999'}}}"),
        "targets[0].model.options.upstream_url: expected a URL, http(s)://host[:port][/path]",
    ),
    (
        document("{model: {provider: openai, options: {upstream_url: 'http://localhost#x'}}}"),
        "targets[0].model.options.upstream_url: must not end in a #fragment",
    ),
    (
        document("{model: {provider: anthropic, options: {upstream_url: 'https://proxy.example/anthropic/v1'}}}"),
        "targets[0].model.options.upstream_url: for provider anthropic, expected only scheme://host[:port]",
    ),
    (
        document("{model: {provider: gemini, options: {upstream_url: 'https://g.example/v1beta/chat'}}}"),
        "targets[0].model.options.upstream_url: for provider gemini, "
        "expected a path …/models/<model>[:generateContent]",
    ),
    (
        document("{model: {provider: gemini, options: {upstream_url: 'https://g.example/v1beta/models/m?alt=sse'}}}"),
        "targets[0].model.options.upstream_url: for provider gemini, expected no query (alt=sse is added to streams)",
    ),
    (
        document("{model: {provider: openai, options: {upstream_url: 'http://h', upstream_path: /v1/x}}}"),
        "targets[0].model.options.upstream_path: expected the whole URL in upstream_url only (not both)",
    ),
    (
        document("{model: {provider: openai, options: {upstream_path: v1/chat}}}"),
        "targets[0].model.options.upstream_path: expected a path starting with / (no query)",
    ),
    # the document itself
    ("strip_model: true\n" + document(), "strip_model: unknown field (a deck file's pre-function plugin sets it)"),
    ("- llm_format: anthropic\n", "expected a mapping (Kong's ai-proxy-advanced config, or a deck file)"),
    ("", "expected a mapping (Kong's ai-proxy-advanced config, or a deck file)"),
    (
        "llm_format: anthropic\ntargets: [\n",
        "not valid YAML (expected the node content, but found '<stream end>', line 3, column 1)",
    ),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_the_error_names_the_path_and_what_is_expected(write_config, text, expected):
    message = problem(write_config, text)
    assert message.startswith(expected), message


def test_not_valid_json(write_config):
    assert problem(write_config, '{"llm_format": "anthropic",}', name="gateway.json").startswith("not valid JSON (")


def test_an_unreadable_file_is_named(tmp_path):
    missing = str(tmp_path / "nowhere.yaml")
    with pytest.raises(ConfigurationError, match=f"aimw: cannot read the configuration file {missing}: No such file"):
        load_config(missing, {})


def test_secrets_are_never_shown(write_config):
    bad_header = document(f"{{auth: {{header_name: api-key, header_value: '${{KEY}}'}}, model: {OPENAI}}}")
    message = problem(write_config, bad_header, {"KEY": f"{SECRET}\r\nX-Injected: 1"})
    assert message == "targets[0].auth.header_value: expected a header value (Latin-1 text, no line break)"
    # a key written in the file itself, on a line YAML cannot parse
    message = problem(write_config, f"llm_format: anthropic\nkey: {SECRET}: [\n")
    assert message.startswith("not valid YAML (") and SECRET not in message
