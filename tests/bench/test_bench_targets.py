"""How the Gemini and config targets are started: their recipes, credentials, the throwaway
service account and the config file."""

from __future__ import annotations

import importlib.util
import json
import stat

from aimw.config import build_targets, load_config
from bench import gemini
from bench.answer import MODEL
from bench.cli import options_from, parser
from bench.targets import CONFIG_TOKEN_VARIABLE, HF_TOKEN, TARGETS, RunContext, service_account_file


def context(tmp_path, upstream_url: str = "http://127.0.0.1:4321") -> RunContext:
    return RunContext(python="python", raw_dir=tmp_path, upstream_url=upstream_url, chunks=5)


def test_aimw_gemini_serves_the_gemini_recipe_with_the_key_the_fake_expects(tmp_path):
    spec = TARGETS["aimw-gemini"].build(context(tmp_path), 8001, 1, "stream-c32.aimw-gemini")
    assert "recipes.gemini:app" in spec.argv and spec.name == "aimw-gemini"
    assert spec.env["GEMINI_API_KEY"] == gemini.API_KEY
    assert spec.env["AIMW_UPSTREAM_URL"] == "http://127.0.0.1:4321"
    assert spec.env["AIMW_LOG_PATH"] == str(tmp_path / "stream-c32.aimw-gemini.aimw.log")
    assert TARGETS["aimw-gemini"].api == "anthropic" and TARGETS["aimw-gemini"].multiworker


def test_aimw_vertex_gets_a_service_account_whose_token_uri_is_the_fake(tmp_path):
    target = TARGETS["aimw-vertex"]
    spec = target.build(context(tmp_path), 8002, 2, "stream-c32-w2.aimw-vertex")
    assert "recipes.vertex:app" in spec.argv and spec.argv[spec.argv.index("--workers") + 1] == "2"
    assert (spec.env["GCP_PROJECT_ID"], spec.env["GEMINI_LOCATION_ID"]) == (gemini.PROJECT, gemini.LOCATION)
    assert spec.env["GEMINI_API_ENDPOINT"] and spec.env["AIMW_UPSTREAM_URL"] == "http://127.0.0.1:4321"
    key_path = tmp_path / "vertex-service-account.json"
    assert spec.env["GEMINI_API_KEY"] == str(key_path)
    assert json.loads(key_path.read_text())["token_uri"] == "http://127.0.0.1:4321" + gemini.TOKEN_PATH
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert "PRIVATE KEY" not in spec.command_line()  # the report prints every command
    assert target.fetches_tokens and target.proxies_upstream


def test_the_key_is_generated_once_per_run_and_again_for_another_upstream(tmp_path):
    first = service_account_file(context(tmp_path)).read_text()
    assert service_account_file(context(tmp_path)).read_text() == first
    moved = service_account_file(context(tmp_path, "http://127.0.0.1:9999")).read_text()
    assert json.loads(moved)["token_uri"] == "http://127.0.0.1:9999" + gemini.TOKEN_PATH
    assert json.loads(moved)["private_key"] != json.loads(first)["private_key"]


def test_aimw_vertex_says_what_is_missing_without_google_auth_s_transport(tmp_path, monkeypatch):
    assert TARGETS["aimw-vertex"].available(context(tmp_path)) is None
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "requests" else real(name))
    assert "requests not installed" in TARGETS["aimw-vertex"].available(context(tmp_path))
    assert TARGETS["aimw-gemini"].available(context(tmp_path)) is None


def test_the_default_run_measures_the_gemini_targets_next_to_aimw(tmp_path):
    options = options_from(parser().parse_args(["--output", str(tmp_path)]))
    assert options.targets[options.targets.index("aimw") + 1 :][:2] == ["aimw-gemini", "aimw-vertex"]


def test_aimw_config_serves_two_round_robin_targets_at_the_fake_from_a_file_under_raw(tmp_path):
    target = TARGETS["aimw-config"]
    spec = target.build(context(tmp_path), 8003, 2, "stream-c32-w2.aimw-config")
    assert "recipes.config:app" in spec.argv and spec.argv[spec.argv.index("--workers") + 1] == "2"
    assert spec.name == "aimw-config" and target.api == "anthropic"
    assert target.multiworker and target.proxies_upstream and not target.fetches_tokens
    config_path = tmp_path / "stream-c32-w2.aimw-config.gateway.yaml"
    assert spec.env["AIMW_CONFIG"] == str(config_path)
    assert "AIMW_UPSTREAM_URL" not in spec.env and "AIMW_LOG_PATH" not in spec.env  # the file says both
    assert f"${{{CONFIG_TOKEN_VARIABLE}}}" in config_path.read_text()  # the token stays in the environment
    config = load_config(str(config_path), spec.env)  # as recipes.config loads it, in the server's environment
    assert config.balancer.algorithm == "round-robin" and len(config.targets) == 2
    assert config.log is not None and config.log.path == str(tmp_path / "stream-c32-w2.aimw-config.aimw.log")
    for entry in config.targets:
        assert (entry.model.provider, entry.model.name) == ("huggingface", MODEL)
        assert entry.model.options.upstream_url == "http://127.0.0.1:4321/v1/chat/completions"
        assert (entry.auth.header_name, entry.auth.header_value) == ("Authorization", f"Bearer {HF_TOKEN}")
    assert len({entry.weight for entry in config.targets}) == 1
    for built in build_targets(config, environ=spec.env):
        assert built.provider.base_url == "http://127.0.0.1:4321"
        assert built.provider.wire_format.options.path == "/v1/chat/completions"


def test_the_default_run_measures_aimw_config_too(tmp_path):
    options = options_from(parser().parse_args(["--output", str(tmp_path)]))
    assert "aimw-config" in options.targets
