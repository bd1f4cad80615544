"""Settings.from_env, required_env / optional_env, and a recipe started without its key."""

from __future__ import annotations

import os
import subprocess
import sys

import anyio
import pytest

from aimw.config import load_config
from aimw.gateway import config_gateway, translated_gateway
from aimw.middleware.failover import FailoverMiddleware
from aimw.middleware.translate import TranslateMiddleware
from aimw.providers.gemini import GEMINI
from aimw.providers.huggingface import HUGGINGFACE
from aimw.settings import (
    DEFAULT_LOG_PATH,
    DEFAULT_MAX_REQUEST_BODY_SIZE,
    DEFAULT_UPSTREAM_TIMEOUT,
    ConfigurationError,
    Settings,
    optional_env,
    required_env,
)
from aimw.translators.openai_chat import OpenAIChat
from aimw.upstream import UpstreamApp
from tests.asgi_helpers import JSON_HEADERS, RecordingSend, ScriptedReceive, http_scope
from tests.fakes.openai_chat_server import FakeChatServer, completion, json_reply
from tests.shared_data import CORPUS, REPO


def test_defaults():
    settings = Settings.from_env({})
    assert settings == Settings()
    assert settings.log_path == DEFAULT_LOG_PATH == "aimw.log"
    assert settings.max_request_body_size == DEFAULT_MAX_REQUEST_BODY_SIZE == 8 * 1024 * 1024
    assert settings.upstream_timeout == DEFAULT_UPSTREAM_TIMEOUT == 600.0
    assert settings.upstream_url is None
    assert settings.model is None
    assert settings.max_tokens is None
    assert settings.temperature is None
    assert settings.log_payloads is False
    assert settings.system_turns == "inline"
    assert settings.base_url("https://router.huggingface.co") == "https://router.huggingface.co"


def test_empty_values_mean_unset():
    environ = dict.fromkeys(
        ("AIMW_UPSTREAM_URL", "AIMW_MODEL", "AIMW_LOG_PATH", "AIMW_MAX_TOKENS", "AIMW_LOG_PAYLOADS"), "  "
    )
    assert Settings.from_env(environ) == Settings()


def test_every_variable_is_read():
    settings = Settings.from_env(
        {
            "AIMW_UPSTREAM_URL": "http://127.0.0.1:9999/",
            "AIMW_MODEL": "Qwen/Qwen3-Coder-480B-A35B-Instruct",
            "AIMW_LOG_PATH": "/var/log/aimw/gateway.log",
            "AIMW_MAX_REQUEST_BODY_SIZE": "524288",
            "AIMW_MAX_TOKENS": " 4096 ",
            "AIMW_TEMPERATURE": "0.25",
            "AIMW_LOG_PAYLOADS": "1",
            "AIMW_UPSTREAM_TIMEOUT": "30",
            "AIMW_CLIENT_BODY_TIMEOUT": "7.5",
            "AIMW_POOL_TIMEOUT": "0.5",
            "AIMW_UPSTREAM_MAX_CONNECTIONS": "16",
            "AIMW_ALLOWED_HOSTS": "gw.internal, gateway.example.com",
            "AIMW_ALLOWED_ORIGINS": "https://ok.example",
            "AIMW_FORWARD_PATHS": "get /v1/models, DELETE /v1/files/x",
            "AIMW_FORWARD_HEADERS": "X-Trace, x-e2e-case",
            "AIMW_SYSTEM_TURNS": " merge ",
            "UNRELATED": "x",
        }
    )
    assert settings == Settings(
        upstream_url="http://127.0.0.1:9999",
        model="Qwen/Qwen3-Coder-480B-A35B-Instruct",
        log_path="/var/log/aimw/gateway.log",
        max_request_body_size=524288,
        max_tokens=4096,
        temperature=0.25,
        log_payloads=True,
        upstream_timeout=30.0,
        client_body_timeout=7.5,
        pool_timeout=0.5,
        upstream_max_connections=16,
        allowed_hosts=("gw.internal", "gateway.example.com"),
        allowed_origins=("https://ok.example",),
        forward_paths=(("GET", "/v1/models"), ("DELETE", "/v1/files/x")),
        forward_headers=("x-trace", "x-e2e-case"),
        system_turns="merge",
    )
    assert isinstance(settings.max_tokens, int)
    assert isinstance(settings.upstream_timeout, float)
    assert settings.base_url("https://router.huggingface.co") == "http://127.0.0.1:9999"
    assert Settings.from_env({"AIMW_LOG_PAYLOADS": "0"}).log_payloads is False
    assert Settings.from_env({"AIMW_UPSTREAM_URL": "https://proxy.internal"}).upstream_url == "https://proxy.internal"


@pytest.mark.parametrize(
    "name, value",
    [
        ("AIMW_MAX_REQUEST_BODY_SIZE", "8MiB"),
        ("AIMW_MAX_REQUEST_BODY_SIZE", "1.5"),
        ("AIMW_MAX_REQUEST_BODY_SIZE", "-1"),
        ("AIMW_MAX_TOKENS", "lots"),
        ("AIMW_MAX_TOKENS", "4096.0"),
        ("AIMW_MAX_TOKENS", "-5"),
        ("AIMW_TEMPERATURE", "warm"),
        ("AIMW_TEMPERATURE", "-0.1"),
        ("AIMW_TEMPERATURE", "nan"),
        ("AIMW_UPSTREAM_TIMEOUT", "10s"),
        ("AIMW_UPSTREAM_TIMEOUT", "-1"),
        ("AIMW_UPSTREAM_TIMEOUT", "nan"),
        ("AIMW_LOG_PAYLOADS", "yes"),
        ("AIMW_LOG_PAYLOADS", "true"),
        ("AIMW_LOG_PAYLOADS", "2"),
        ("AIMW_UPSTREAM_URL", "router.huggingface.co"),
        ("AIMW_UPSTREAM_URL", "ftp://router.huggingface.co"),
        ("AIMW_UPSTREAM_URL", "localhost:8080"),
        ("AIMW_UPSTREAM_URL", "http://"),
        ("AIMW_UPSTREAM_URL", "https:///v1"),
        ("AIMW_CLIENT_BODY_TIMEOUT", "soon"),
        ("AIMW_POOL_TIMEOUT", "-1"),
        ("AIMW_FORWARD_PATHS", "/v1/models"),
        ("AIMW_FORWARD_PATHS", "GET v1/models"),
        ("AIMW_SYSTEM_TURNS", "merged"),
        ("AIMW_SYSTEM_TURNS", "MERGE"),
        ("AIMW_SYSTEM_TURNS", "leading"),
    ],
)
def test_malformed_values_are_refused_naming_the_variable(name, value):
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env({name: value})
    message = str(caught.value)
    assert name in message
    assert value.strip() in message
    assert isinstance(caught.value, SystemExit)  # stops the process at start


def test_a_system_turns_value_is_refused_naming_the_allowed_ones():
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env({"AIMW_SYSTEM_TURNS": "append"})
    assert str(caught.value) == "aimw: AIMW_SYSTEM_TURNS must be one of inline, merge; got 'append'"
    assert Settings.from_env({"AIMW_SYSTEM_TURNS": "inline"}).system_turns == "inline"


@pytest.mark.parametrize(
    ("value", "entry"),
    [
        ("gw.example:8000", "gw.example:8000"),
        ("gw.internal, gw.example:8000", "gw.example:8000"),
        ("[::1]:8000", "[::1]:8000"),
        ("fd00::7", "fd00::7"),
    ],
)
def test_an_allowed_host_with_a_port_is_refused(value, entry):
    """A Host's port is not compared: an entry with one would silently never match."""
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env({"AIMW_ALLOWED_HOSTS": value})
    message = str(caught.value)
    assert "AIMW_ALLOWED_HOSTS" in message
    assert "without a port" in message
    assert repr(entry) in message


def test_allowed_hosts_without_ports_are_kept():
    settings = Settings.from_env({"AIMW_ALLOWED_HOSTS": "gw.example, [fd00::7], 10.0.0.7, *"})
    assert settings.allowed_hosts == ("gw.example", "[fd00::7]", "10.0.0.7", "*")


@pytest.mark.parametrize("url", ["http://user:pass@127.0.0.1:1", "https://token@api.example.com"])
def test_an_upstream_url_with_userinfo_is_refused_without_echoing_it(url):
    """Issue 8, finding 12: user:pass@ broke every request and reached the log."""
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env({"AIMW_UPSTREAM_URL": url})
    assert "AIMW_UPSTREAM_URL" in str(caught.value)
    assert "user:pass" not in str(caught.value) and "token@" not in str(caught.value)


def test_required_env():
    assert required_env("HUGGINGFACE_API_TOKEN", "why", {"HUGGINGFACE_API_TOKEN": " hf_x "}) == "hf_x"
    for environ in ({}, {"HUGGINGFACE_API_TOKEN": ""}, {"HUGGINGFACE_API_TOKEN": "   "}):
        with pytest.raises(ConfigurationError) as caught:
            required_env("HUGGINGFACE_API_TOKEN", "the recipe sends it to Hugging Face", environ)
        assert "HUGGINGFACE_API_TOKEN" in str(caught.value)
        assert "the recipe sends it to Hugging Face" in str(caught.value)


def test_optional_env():
    assert optional_env("X", {"X": " v "}) == "v"
    assert optional_env("X", {"X": ""}) is None
    assert optional_env("X", {}) is None


def recipe_env(**extra: str) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("AIMW_", "HUGGINGFACE_"))}
    environ.update(extra)
    return environ


def test_huggingface_recipe_without_its_token_stops_naming_it(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", "import recipes.huggingface"],
        cwd=REPO,
        env=recipe_env(AIMW_LOG_PATH=str(tmp_path / "aimw.log")),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "HUGGINGFACE_API_TOKEN" in result.stderr
    assert "Traceback" not in result.stderr  # a clean message, not a crash
    assert not (tmp_path / "aimw.log").exists()


def test_huggingface_recipe_with_its_token_builds_the_app(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import recipes.huggingface as r; "
            "print(type(r.app.app).__name__, r.settings.log_path, "
            "*(type(s).__name__ + ':' + s.path for s in r.app.app.sinks))",
        ],
        cwd=REPO,
        env=recipe_env(HUGGINGFACE_API_TOKEN="hf_test_token_1234567", AIMW_LOG_PATH=str(tmp_path / "x.log")),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    log = str(tmp_path / "x.log")
    assert result.stdout.split() == ["ObserveMiddleware", log, f"KongFileLog:{log}"]


def test_recipe_with_a_malformed_variable_stops_naming_it():
    result = subprocess.run(
        [sys.executable, "-c", "import recipes.huggingface"],
        cwd=REPO,
        env=recipe_env(HUGGINGFACE_API_TOKEN="hf_test_token_1234567", AIMW_MAX_TOKENS="many"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "AIMW_MAX_TOKENS" in result.stderr


# ---------------------------------------------------------------- choice_env

import json  # noqa: E402

from aimw.settings import choice_env  # noqa: E402

AUTH_CHOICES = ("api-key", "authorization")


def test_choice_env_unset_or_empty_is_the_first_choice():
    assert choice_env("AIMW_AUTH_HEADER", AUTH_CHOICES, {}) == "api-key"
    assert choice_env("AIMW_AUTH_HEADER", AUTH_CHOICES, {"AIMW_AUTH_HEADER": ""}) == "api-key"
    assert choice_env("AIMW_AUTH_HEADER", AUTH_CHOICES, {"AIMW_AUTH_HEADER": "   "}) == "api-key"
    assert choice_env("X", ("b", "a"), {}) == "b"


def test_choice_env_accepts_each_choice():
    for choice in AUTH_CHOICES:
        assert choice_env("AIMW_AUTH_HEADER", AUTH_CHOICES, {"AIMW_AUTH_HEADER": f" {choice} "}) == choice


@pytest.mark.parametrize("value", ["x-api-key", "API-KEY", "Authorization", "api-key,authorization", "bearer"])
def test_choice_env_refuses_anything_else_naming_the_variable(value):
    with pytest.raises(ConfigurationError) as caught:
        choice_env("AIMW_AUTH_HEADER", AUTH_CHOICES, {"AIMW_AUTH_HEADER": value})
    message = str(caught.value)
    assert "AIMW_AUTH_HEADER" in message
    assert "api-key" in message and "authorization" in message  # the allowed values
    assert repr(value) in message
    assert isinstance(caught.value, SystemExit)


def test_choice_env_reads_the_process_environment(monkeypatch):
    monkeypatch.setenv("DASHSCOPE_REGION", "china")
    assert choice_env("DASHSCOPE_REGION", ("international", "china")) == "china"
    monkeypatch.delenv("DASHSCOPE_REGION")
    assert choice_env("DASHSCOPE_REGION", ("international", "china")) == "international"


# ---------------------------------------------------------------- the provider recipes, started for real

PROVIDER_PREFIXES = ("AIMW_", "HUGGINGFACE_", "AZURE_", "DASHSCOPE_", "OPENAI_", "ANTHROPIC_")
AZURE_ENV = {
    "AZURE_OPENAI_API_KEY": "azure-test-key-1",
    "AZURE_INSTANCE_NAME": "my-resource",
    "AZURE_DEPLOYMENT_ID": "gpt-4o-prod",
}

# Imports the recipe and prints what it built: the middleware stack and the facts that
# reached it (log sinks, upstream, wire format and its options, the headers and query the
# credential adds, field rules).
DESCRIBE = """
import asyncio, json, sys
import recipes.{name} as r
from aimw.upstream import UpstreamApp
app, layers, facts = r.app, [], {{"callable": callable(r.app)}}
chat = None
while not isinstance(app, UpstreamApp):
    name = type(app).__name__
    layers.append(name)
    if name == "ObserveMiddleware":
        facts["sinks"] = [[type(s).__name__, s.path] for s in app.sinks]
    elif name == "TranslateMiddleware":
        w = app.wire_format
        facts["wire_format"] = [w.name, w.passthrough]
        if hasattr(w, "options"):
            o = w.options
            facts["system_turns"] = getattr(o, "system_turns", None)
            chat = [o.path, o.query, app.default_model, o.max_tokens_field, o.thinking]
        facts["model"] = app.model
        facts["log_meta"] = app.log_meta
    elif name == "ProviderAuthMiddleware":
        c = app.credential
        headers, query = asyncio.run(c.authorization()) if c is not None else ([], b"")
        facts["auth"] = [[h.decode(), v.decode()] for h, v in headers]
        facts["auth_query"] = query.decode()
    elif name == "AnthropicEndpoints":
        facts["routes"] = sorted(" ".join(reversed(route)) for route in app.routes)
    elif name == "StripFieldsMiddleware":
        facts.setdefault("rules", []).append(
            {{"drop": sorted(app.drop), "set": {{k: bytes(v).decode() for k, v in app.set.items()}}, "cap": app.cap}}
        )
    app = app.app
facts["layers"] = layers
if chat is not None:
    facts["provider"] = [app.provider_name, *chat]
facts["provider_name"] = app.provider_name
facts["base_url"] = app.base_url
json.dump(facts, sys.stdout)
"""


def recipe_run(name: str, tmp_path, **extra: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(PROVIDER_PREFIXES)}
    environ["AIMW_LOG_PATH"] = str(tmp_path / "aimw.log")
    environ.update(extra)
    return subprocess.run(
        [sys.executable, "-c", DESCRIBE.format(name=name)],
        cwd=REPO,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )


def recipe_facts(name: str, tmp_path, **extra: str) -> dict:
    result = recipe_run(name, tmp_path, **extra)
    assert result.returncode == 0, result.stderr
    facts = json.loads(result.stdout)
    assert facts["callable"] is True
    assert facts["layers"][:2] == ["MemoryReleaseMiddleware", "ObserveMiddleware"]
    assert facts["sinks"] == [["KongFileLog", str(tmp_path / "aimw.log")]]
    assert not (tmp_path / "aimw.log").exists()  # nothing written before a request
    return facts


def assert_stops_naming(result: subprocess.CompletedProcess, variable: str, *also: str) -> None:
    assert result.returncode != 0
    assert result.stdout == ""
    assert variable in result.stderr
    for text in also:
        assert text in result.stderr
    assert "Traceback" not in result.stderr  # a clean message, not a crash


# anthropic


def test_anthropic_recipe_needs_no_key(tmp_path):
    facts = recipe_facts("anthropic", tmp_path)
    assert facts["layers"] == [
        "MemoryReleaseMiddleware",
        "ObserveMiddleware",
        "ClientGuard",
        "AnthropicEndpoints",
        "StripFieldsMiddleware",
        "StripFieldsMiddleware",
        "TranslateMiddleware",
        "SSERewriteMiddleware",
    ]
    assert facts["wire_format"] == ["anthropic", True]  # nothing translated
    assert facts["provider_name"] == "anthropic"
    assert "auth" not in facts  # the client's own key passes
    assert facts["base_url"] == "https://api.anthropic.com"
    assert facts["routes"] == ["POST /v1/messages", "POST /v1/messages/count_tokens"]
    assert all(rule == {"drop": [], "set": {}, "cap": {}} for rule in facts["rules"])


def test_anthropic_recipe_with_a_key_and_settings(tmp_path):
    facts = recipe_facts(
        "anthropic",
        tmp_path,
        ANTHROPIC_API_KEY="sk-ant-gateway-1",
        AIMW_MODEL="claude-haiku-4-5",
        AIMW_MAX_TOKENS="2048",
        AIMW_UPSTREAM_URL="http://127.0.0.1:9",
    )
    assert facts["layers"][-1] == "ProviderAuthMiddleware"
    assert facts["auth"] == [["x-api-key", "sk-ant-gateway-1"]]
    assert facts["auth_query"] == ""
    assert facts["base_url"] == "http://127.0.0.1:9"
    messages_rule, count_rule = facts["rules"]
    assert messages_rule == {"drop": [], "set": {"model": '"claude-haiku-4-5"'}, "cap": {"max_tokens": 2048}}
    assert count_rule == {"drop": [], "set": {"model": '"claude-haiku-4-5"'}, "cap": {}}


def test_anthropic_recipe_with_a_malformed_setting_stops_naming_it(tmp_path):
    assert_stops_naming(recipe_run("anthropic", tmp_path, AIMW_TEMPERATURE="hot"), "AIMW_TEMPERATURE", "'hot'")


# azure


@pytest.mark.parametrize("missing", sorted(AZURE_ENV))
def test_azure_recipe_without_a_required_variable_stops_naming_it(tmp_path, missing):
    environ = {k: v for k, v in AZURE_ENV.items() if k != missing}
    assert_stops_naming(recipe_run("azure", tmp_path, **environ), missing)


@pytest.mark.parametrize(
    "variable, value",
    [
        ("AIMW_AUTH_HEADER", "x-api-key"),
        ("AIMW_AUTH_HEADER", "Bearer"),
        ("AZURE_MAX_TOKENS_FIELD", "max_output_tokens"),
        ("AZURE_MAX_TOKENS_FIELD", "MAX_TOKENS"),
    ],
)
def test_azure_recipe_with_a_bad_choice_stops_naming_it(tmp_path, variable, value):
    assert_stops_naming(recipe_run("azure", tmp_path, **AZURE_ENV, **{variable: value}), variable, repr(value))


def test_azure_recipe_defaults(tmp_path):
    facts = recipe_facts("azure", tmp_path, **AZURE_ENV)
    assert facts["layers"] == [
        "MemoryReleaseMiddleware",
        "ObserveMiddleware",
        "ClientGuard",
        "AnthropicEndpoints",
        "StripFieldsMiddleware",
        "TranslateMiddleware",
        "SSERewriteMiddleware",
        "ProviderAuthMiddleware",
    ]
    assert facts["base_url"] == "https://my-resource.openai.azure.com"
    assert facts["provider"] == [
        "azure",
        "/openai/deployments/gpt-4o-prod/chat/completions",
        "api-version=2025-01-01-preview",
        "gpt-4o-prod",
        "max_tokens",
        "none",
    ]
    assert facts["wire_format"] == ["openai_chat", False]
    assert facts["auth"] == [["api-key", "azure-test-key-1"]]
    assert facts["auth_query"] == ""
    assert facts["log_meta"] == {
        "azure_instance_id": "my-resource",
        "azure_deployment_id": "gpt-4o-prod",
        "azure_api_version": "2025-01-01-preview",
    }
    assert facts["rules"] == [{"drop": ["model"], "set": {}, "cap": {}}]


def test_azure_recipe_choices(tmp_path):
    facts = recipe_facts(
        "azure",
        tmp_path,
        **AZURE_ENV,
        AZURE_API_VERSION="2024-10-21",
        AIMW_AUTH_HEADER="authorization",
        AZURE_MAX_TOKENS_FIELD="max_completion_tokens",
    )
    assert facts["provider"][2] == "api-version=2024-10-21"
    assert facts["provider"][4] == "max_completion_tokens"
    assert facts["auth"] == [["authorization", "Bearer azure-test-key-1"]]


# dashscope


def test_dashscope_recipe_without_its_key_stops_naming_it(tmp_path):
    assert_stops_naming(recipe_run("dashscope", tmp_path), "DASHSCOPE_API_KEY")


@pytest.mark.parametrize("region", ["eu", "China", "us-east-1"])
def test_dashscope_recipe_with_an_unknown_region_stops_naming_it(tmp_path, region):
    result = recipe_run("dashscope", tmp_path, DASHSCOPE_API_KEY="sk-ds-1", DASHSCOPE_REGION=region)
    assert_stops_naming(result, "DASHSCOPE_REGION", "international", "china", repr(region))


@pytest.mark.parametrize(
    "region, host",
    [
        (None, "https://dashscope-intl.aliyuncs.com"),
        ("international", "https://dashscope-intl.aliyuncs.com"),
        ("china", "https://dashscope.aliyuncs.com"),
    ],
)
def test_dashscope_recipe_regions_and_defaults(tmp_path, region, host):
    extra = {} if region is None else {"DASHSCOPE_REGION": region}
    facts = recipe_facts("dashscope", tmp_path, DASHSCOPE_API_KEY="sk-ds-1", **extra)
    assert facts["base_url"] == host
    assert facts["provider"] == [
        "dashscope",
        "/compatible-mode/v1/chat/completions",
        "",
        "qwen-plus",
        "max_tokens",
        "qwen",
    ]
    assert facts["auth"] == [["authorization", "Bearer sk-ds-1"]]
    assert facts["rules"] == [{"drop": ["model"], "set": {"temperature": "1.0"}, "cap": {"max_tokens": 8192}}]


def test_dashscope_recipe_settings_win_over_its_defaults(tmp_path):
    facts = recipe_facts(
        "dashscope",
        tmp_path,
        DASHSCOPE_API_KEY="sk-ds-1",
        AIMW_MAX_TOKENS="16384",
        AIMW_TEMPERATURE="0.6",
        AIMW_MODEL="qwen3-max",
    )
    assert facts["rules"] == [{"drop": ["model"], "set": {"temperature": "0.6"}, "cap": {"max_tokens": 16384}}]
    assert facts["model"] == "qwen3-max"


# openai


def test_openai_recipe_without_its_key_stops_naming_it(tmp_path):
    assert_stops_naming(recipe_run("openai", tmp_path), "OPENAI_API_KEY", "AIMW_UPSTREAM_URL")


@pytest.mark.parametrize("value", ["max_output_tokens", "none", "AUTO"])
def test_openai_recipe_with_a_bad_token_field_stops_naming_it(tmp_path, value):
    result = recipe_run("openai", tmp_path, OPENAI_API_KEY="sk-oa-1", OPENAI_MAX_TOKENS_FIELD=value)
    assert_stops_naming(result, "OPENAI_MAX_TOKENS_FIELD", repr(value))


def test_openai_recipe_defaults(tmp_path):
    facts = recipe_facts("openai", tmp_path, OPENAI_API_KEY="sk-oa-1")
    assert facts["base_url"] == "https://api.openai.com"
    assert facts["provider"] == ["openai", "/v1/chat/completions", "", "gpt-4.1", "max_tokens", "none"]
    assert facts["auth"] == [["authorization", "Bearer sk-oa-1"]]


def test_openai_recipe_for_a_local_server_needs_no_key(tmp_path):
    facts = recipe_facts("openai", tmp_path, AIMW_UPSTREAM_URL="http://localhost:11434", AIMW_MODEL="qwen3-coder")
    assert facts["base_url"] == "http://localhost:11434"
    assert facts["provider"][3:5] == ["qwen3-coder", "max_tokens"]
    assert facts["auth"] == []  # the client's credentials removed, none added


@pytest.mark.parametrize(
    "model, field_env, field",
    [
        ("o3", None, "max_completion_tokens"),
        ("o3", "auto", "max_completion_tokens"),
        ("gpt-5-mini", None, "max_completion_tokens"),
        ("o3", "max_tokens", "max_tokens"),
        ("llama3.1", "max_completion_tokens", "max_completion_tokens"),
    ],
)
def test_openai_recipe_token_field(tmp_path, model, field_env, field):
    extra = {} if field_env is None else {"OPENAI_MAX_TOKENS_FIELD": field_env}
    facts = recipe_facts("openai", tmp_path, OPENAI_API_KEY="sk-oa-1", AIMW_MODEL=model, **extra)
    assert facts["provider"][3:5] == [model, field]


# AIMW_SYSTEM_TURNS: read by every translated recipe, applied to Chat Completions providers


@pytest.mark.parametrize(
    ("name", "environ"),
    [
        ("huggingface", {"HUGGINGFACE_API_TOKEN": "hf_test"}),
        ("openai", {"OPENAI_API_KEY": "sk-oa-1"}),
        ("dashscope", {"DASHSCOPE_API_KEY": "sk-ds-1"}),
        ("azure", AZURE_ENV),
    ],
)
def test_chat_recipes_merge_system_turns_when_asked(tmp_path, name, environ):
    assert recipe_facts(name, tmp_path, **environ)["system_turns"] == "inline"
    assert recipe_facts(name, tmp_path, AIMW_SYSTEM_TURNS="merge", **environ)["system_turns"] == "merge"


def wire_format_of(app) -> object:
    while not isinstance(app, TranslateMiddleware):
        app = app.app
    return app.wire_format


def test_gemini_is_left_as_it_is_and_providers_are_not_changed(tmp_path):
    """Gemini has only systemInstruction, where every system text goes whatever the setting;
    a Chat Completions provider's own wire format is not changed (a copy merges)."""
    settings = Settings(log_path=str(tmp_path / "aimw.log"), system_turns="merge")
    assert wire_format_of(translated_gateway(GEMINI, settings, secret="AIza-test")) is GEMINI.wire_format
    merged = wire_format_of(translated_gateway(HUGGINGFACE, settings, secret="hf_test"))
    assert isinstance(merged, OpenAIChat) and merged.options.system_turns == "merge"
    assert merged.options.path == HUGGINGFACE.wire_format.options.path
    assert HUGGINGFACE.wire_format.options.system_turns == "inline"


def test_a_recipe_with_a_bad_system_turns_value_stops_naming_it(tmp_path):
    result = recipe_run("huggingface", tmp_path, HUGGINGFACE_API_TOKEN="hf_test", AIMW_SYSTEM_TURNS="first")
    assert_stops_naming(result, "AIMW_SYSTEM_TURNS", "inline, merge", "'first'")


SYSTEM_TURN_BODY = CORPUS / "009-tool-flow-turn2-bash-tool_result.json"  # user, system, assistant, user


def upstreams(app) -> list[UpstreamApp]:
    """Every UpstreamApp under ``app`` (one per leg)."""
    if isinstance(app, UpstreamApp):
        return [app]
    if isinstance(app, FailoverMiddleware):
        return [upstream for leg in app.legs for upstream in upstreams(leg.app)]
    return upstreams(app.app)


async def sent_roles(app, fake: FakeChatServer) -> list[str]:
    """POST the corpus body with a system turn through ``app``; the roles the fake got."""
    fake.enqueue(json_reply(completion("ok")))
    body = json.dumps({**json.loads(SYSTEM_TURN_BODY.read_bytes()), "stream": False}).encode()
    scope = http_scope("POST", "/v1/messages", query=b"beta=true", headers=JSON_HEADERS, body=body)
    send = RecordingSend()
    with anyio.fail_after(30):
        await app(scope, ScriptedReceive([body]), send)
    for upstream in upstreams(app):
        await upstream.transport.close()
    assert send.status == 200, send.body
    assert fake.violations == []
    sent = fake.requests[-1].body
    assert isinstance(sent, dict)
    return [message["role"] for message in sent["messages"]]


@pytest.mark.anyio
async def test_merge_reaches_the_wire_of_a_translated_gateway(tmp_path):
    with FakeChatServer("hf_test") as fake:
        for value, roles in (
            ("inline", ["system", "user", "system", "assistant", "tool"]),
            ("merge", ["system", "user", "assistant", "tool"]),
        ):
            environ = {"AIMW_UPSTREAM_URL": fake.url, "AIMW_LOG_PATH": str(tmp_path / "aimw.log")}
            settings = Settings.from_env({**environ, "AIMW_SYSTEM_TURNS": value})
            assert await sent_roles(translated_gateway(HUGGINGFACE, settings, secret="hf_test"), fake) == roles


@pytest.mark.anyio
async def test_merge_reaches_the_wire_of_every_configured_target(tmp_path):
    """A Kong-schema target has no place for it: AIMW_SYSTEM_TURNS applies to all targets."""
    with FakeChatServer("hf_test") as fake:
        path = tmp_path / "gateway.yaml"
        path.write_text(
            json.dumps(
                {
                    "llm_format": "anthropic",
                    "targets": [
                        {
                            "auth": {"header_name": "Authorization", "header_value": "Bearer hf_test"},
                            "model": {
                                "provider": "huggingface",
                                "name": "org/model",
                                "options": {"upstream_url": f"{fake.url}/v1/chat/completions"},
                            },
                        }
                    ],
                }
            )
        )
        settings = Settings.from_env({"AIMW_LOG_PATH": str(tmp_path / "aimw.log"), "AIMW_SYSTEM_TURNS": "merge"})
        app = config_gateway(load_config(str(path), {}), settings)
        assert await sent_roles(app, fake) == ["system", "user", "assistant", "tool"]
