"""Settings.from_env, required_env / optional_env, and a recipe started without its key."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import REPO

from aimw.settings import (
    DEFAULT_LOG_PATH,
    DEFAULT_MAX_REQUEST_BODY_SIZE,
    DEFAULT_UPSTREAM_TIMEOUT,
    ConfigurationError,
    Settings,
    optional_env,
    required_env,
)


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
    assert settings.base_url("https://router.huggingface.co") == "https://router.huggingface.co"


def test_empty_values_mean_unset():
    environ = {name: "  " for name in ("AIMW_UPSTREAM_URL", "AIMW_MODEL", "AIMW_LOG_PATH", "AIMW_MAX_TOKENS", "AIMW_LOG_PAYLOADS")}
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
    ],
)
def test_malformed_values_are_refused_naming_the_variable(name, value):
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env({name: value})
    message = str(caught.value)
    assert name in message
    assert value.strip() in message
    assert isinstance(caught.value, SystemExit)  # stops the process at start


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
        [sys.executable, "-c", "import recipes.huggingface as r; print(type(r.app).__name__, r.settings.log_path)"],
        cwd=REPO,
        env=recipe_env(HUGGINGFACE_API_TOKEN="hf_test_token_1234567", AIMW_LOG_PATH=str(tmp_path / "x.log")),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["FileLogMiddleware", str(tmp_path / "x.log")]


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
