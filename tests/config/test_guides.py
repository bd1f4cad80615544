"""Kong's five Claude Code guides (../shared/kong-guides/00*.txt) as the deck files their
readers would write: each guide's plugins in one file with ``_format_version: "3.0"``, its
variables as deck's ``${{ env "DECK_…" }}``, the file-log plugin, and for Hugging Face the
pre-function that removes ``model``. Each loads, and its target is the guide's provider at
the provider's real URL with the guide's credential header, model and options."""

from __future__ import annotations

from aimw.config import build_targets, load_config
from aimw.credentials import HeaderCredential
from aimw.errors import redact
from aimw.google_token import GoogleAccessToken
from aimw.translators.gemini import VERTEX_AI_PATH, Gemini, GeminiOptions
from aimw.translators.openai_chat import OpenAIChat
from tests.config.support import requested_url

FILE_LOG = """
  - name: file-log
    config:
      path: "/tmp/claude.json"
"""

HUGGINGFACE_GUIDE = (
    """_format_version: "3.0"
plugins:
  - name: pre-function
    config:
      access:
        - |
          local body = kong.request.get_body("application/json", nil, 10485760)
          if not body or body == "" then
            return
          end
          body.model = nil
          kong.service.request.set_body(body, "application/json")
  - name: ai-proxy
    config:
      llm_format: anthropic
      route_type: llm/v1/chat
      logging:
        log_statistics: true
        log_payloads: false
      auth:
        header_name: Authorization
        header_value: Bearer ${{ env "DECK_HUGGINGFACE_API_TOKEN" }}
      model:
        provider: huggingface
        name: meta-llama/Llama-3.3-70B-Instruct
"""
    + FILE_LOG
)

ANTHROPIC_GUIDE = (
    """_format_version: "3.0"
plugins:
  - name: ai-proxy
    config:
      model:
        provider: anthropic
        options:
          anthropic_version: "2023-06-01"
      llm_format: anthropic
      logging:
        log_statistics: true
      max_request_body_size: 524288
      route_type: llm/v1/chat
"""
    + FILE_LOG
)

AZURE_GUIDE = (
    """_format_version: "3.0"
plugins:
  - name: ai-proxy
    config:
      logging:
        log_statistics: true
        log_payloads: true
      route_type: llm/v1/chat
      llm_format: anthropic
      auth:
        header_name: Authorization
        header_value: Bearer ${{ env "DECK_AZURE_OPENAI_API_KEY" }}
      model:
        provider: azure
        options:
          azure_api_version: "2025-01-01-preview"
          azure_instance: ${{ env "DECK_AZURE_INSTANCE_NAME" }}
          azure_deployment_id: ${{ env "DECK_AZURE_DEPLOYMENT_ID" }}
"""
    + FILE_LOG
)

DASHSCOPE_GUIDE = """_format_version: "3.0"
plugins:
- name: ai-proxy
  config:
    llm_format: anthropic
    route_type: llm/v1/chat
    logging:
      log_statistics: true
      log_payloads: false
    auth:
      header_name: Authorization
      header_value: Bearer ${{ env "DECK_DASHSCOPE_API_KEY" }}
    model:
      provider: dashscope
      name: qwen-plus
      options:
        max_tokens: 8192
        temperature: 1.0
- name: file-log
  config:
    path: "/tmp/claude.json"
"""

VERTEX_GUIDE = (
    """_format_version: "3.0"
plugins:
  - name: ai-proxy-advanced
    config:
      llm_format: anthropic
      targets:
        - route_type: llm/v1/chat
          logging:
            log_statistics: true
            log_payloads: false
          auth:
            allow_override: false
            gcp_use_service_account: true
            gcp_service_account_json: ${{ env "DECK_GEMINI_API_KEY" }}
          model:
              provider: gemini
              name: gemini-2.5-flash
              options:
                gemini:
                  api_endpoint: ${{ env "DECK_GEMINI_API_ENDPOINT" }}
                  project_id: ${{ env "DECK_GCP_PROJECT_ID" }}
                  location_id: ${{ env "DECK_GEMINI_LOCATION_ID" }}
              max_tokens: 8192
"""
    + FILE_LOG
)

AZURE_KEY = "0123456789abcdef0123456789abcdef"  # Azure's keys: 32 hex digits, no shape a pattern knows


def test_hugging_face_guide(write_config):
    token = "hf_guide_test_token_0123456789"
    config = load_config(write_config(HUGGINGFACE_GUIDE), {"DECK_HUGGINGFACE_API_TOKEN": token})
    assert config.strip_model is True
    assert config.log is not None and config.log.path == "/tmp/claude.json"
    assert config.max_request_body_size == 8 * 1024 * 1024  # bytes: aimw's default, Kong's 8192 would refuse it all
    [spec] = build_targets(config)
    assert (spec.provider.name, spec.model) == ("huggingface", "meta-llama/Llama-3.3-70B-Instruct")
    assert requested_url(spec) == "https://router.huggingface.co/v1/chat/completions"
    assert isinstance(spec.credential, HeaderCredential) and spec.credential.header == "authorization"
    assert (spec.log_statistics, spec.log_payloads) == (True, False)
    assert (spec.set_fields, spec.cap_fields, spec.aliases) == ({}, {}, ())
    assert token not in repr(config) and token not in repr(spec)


def test_anthropic_guide(write_config):
    config = load_config(write_config(ANTHROPIC_GUIDE), {})
    assert config.max_request_body_size == 524288  # bytes, as the guide raises it
    assert config.strip_model is False
    [spec] = build_targets(config)
    assert spec.provider.name == "anthropic" and spec.provider.wire_format.passthrough
    assert requested_url(spec, model="claude-sonnet-4-5") == "https://api.anthropic.com/v1/messages"
    assert spec.credential is None  # the client's own key passes (the guide's apiKeyHelper)
    assert spec.model is None and spec.log_statistics is True


def test_azure_guide(write_config):
    environ = {
        "DECK_AZURE_OPENAI_API_KEY": AZURE_KEY,
        "DECK_AZURE_INSTANCE_NAME": "my-resource",
        "DECK_AZURE_DEPLOYMENT_ID": "gpt-4o",
    }
    config = load_config(write_config(AZURE_GUIDE), environ)
    [spec] = build_targets(config)
    assert spec.provider.name == "azure"
    assert requested_url(spec) == (
        "https://my-resource.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2025-01-01-preview"
    )
    assert isinstance(spec.credential, HeaderCredential) and spec.credential.header == "authorization"
    assert redact(f"echoed {AZURE_KEY}") == "echoed [REDACTED]"
    assert dict(spec.log_meta) == {
        "azure_instance_id": "my-resource",
        "azure_deployment_id": "gpt-4o",
        "azure_api_version": "2025-01-01-preview",
    }
    assert (spec.log_statistics, spec.log_payloads) == (True, True)


def test_dashscope_guide(write_config):
    config = load_config(write_config(DASHSCOPE_GUIDE), {"DECK_DASHSCOPE_API_KEY": "sk-dashscope-test-0123456789"})
    [spec] = build_targets(config)
    assert (spec.provider.name, spec.model) == ("dashscope", "qwen-plus")
    assert requested_url(spec) == "https://dashscope-intl.aliyuncs.com/compatible-mode/v1/chat/completions"
    assert isinstance(spec.provider.wire_format, OpenAIChat) and spec.provider.wire_format.options.thinking == "qwen"
    assert isinstance(spec.credential, HeaderCredential) and spec.credential.header == "authorization"
    assert spec.cap_fields == {"max_tokens": 8192}
    assert spec.set_fields == {"temperature": 1.0}


def test_vertex_guide(write_config, service_account_json):
    environ = {
        "DECK_GEMINI_API_KEY": service_account_json,
        "DECK_GEMINI_API_ENDPOINT": "us-central1-aiplatform.googleapis.com",
        "DECK_GCP_PROJECT_ID": "my-project",
        "DECK_GEMINI_LOCATION_ID": "us-central1",
    }
    config = load_config(write_config(VERTEX_GUIDE), environ)
    assert config.targets[0].model.max_tokens == 8192  # where the guide writes it
    [spec] = build_targets(config)
    assert (spec.provider.name, spec.model) == ("gemini", "gemini-2.5-flash")
    assert spec.provider.wire_format.options == GeminiOptions(VERTEX_AI_PATH, "my-project", "us-central1")
    assert isinstance(spec.provider.wire_format, Gemini)
    assert requested_url(spec, stream=True) == (
        "https://us-central1-aiplatform.googleapis.com/v1/projects/my-project/locations/us-central1"
        "/publishers/google/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    )
    assert isinstance(spec.credential, GoogleAccessToken)
    assert spec.cap_fields == {"max_tokens": 8192}
    assert "PRIVATE KEY" not in repr(config)
