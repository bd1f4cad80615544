"""How the Gemini targets are started: their recipes, credentials and the throwaway service account."""

from __future__ import annotations

import importlib.util
import json
import stat

from bench import gemini
from bench.cli import options_from, parser
from bench.targets import TARGETS, RunContext, service_account_file


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
