"""The demo recipe end to end: ``hypercorn recipes.demo:app`` (a real process, no keys, no
network: the model is aimw's in-process emulator) driven by the real Claude Code CLI.

Not in the recipe table of test_recipe_scenarios.py: there is no provider to script, the
emulator answers by itself, so these tests check what it answers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.harness import CLIENT_KEY, GatewayProcess, run_claude, running_gateway, sdk_client

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def demo_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    with running_gateway("recipes.demo:app", {}, tmp_path_factory, "demo-gateway") as gateway:
        yield gateway


def assert_demo_lines(lines: list[dict]) -> None:
    for line in lines:
        assert line["request"]["uri"] == "/v1/messages?beta=true"
        assert line["response"]["status"] == 200
        meta, usage = line["ai"]["proxy"]["meta"], line["ai"]["proxy"]["usage"]
        assert meta["provider_name"] == "demo"
        assert meta["request_mode"] == "stream"
        assert meta["response_model"] == "aimw-demo-1"
        assert "error" not in meta
        assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0


def test_cli_text_prompt(claude_bin, demo_gateway: GatewayProcess, case, tmp_path):
    completed, output = run_claude(
        claude_bin, demo_gateway.url, "Say hello to aimw", tmp_path, headers={"x-e2e-case": case}
    )

    assert completed.returncode == 0, completed.stderr[-2000:]
    assert output["is_error"] is False
    assert output["result"].startswith("Hello from the aimw demo model. You said:")
    assert "Say hello to aimw" in output["result"]
    (line,) = demo_gateway.wait_log_lines(1, case)
    assert_demo_lines([line])


def test_cli_runs_bash(claude_bin, demo_gateway: GatewayProcess, case, tmp_path):
    completed, output = run_claude(
        claude_bin, demo_gateway.url, "!echo demo-ok", tmp_path, "--allowedTools", "Bash", headers={"x-e2e-case": case}
    )

    assert completed.returncode == 0, completed.stderr[-2000:]
    assert output["is_error"] is False
    assert output["num_turns"] == 2
    assert "demo-ok" in output["result"]
    assert output["result"].startswith("The tool returned:")
    lines = demo_gateway.wait_log_lines(2, case)
    assert len(lines) == 2
    assert_demo_lines(lines)


def test_sdk_against_demo(demo_gateway: GatewayProcess, case):
    client = sdk_client(demo_gateway.url, case)
    message = client.messages.create(model="anything", max_tokens=64, messages=[{"role": "user", "content": "ping"}])
    assert message.content[0].text == "Hello from the aimw demo model. You said: ping"
    assert message.model == "aimw-demo-1"
    with client.messages.stream(
        model="anything", max_tokens=64, messages=[{"role": "user", "content": "pong"}]
    ) as stream:
        assert "".join(stream.text_stream) == "Hello from the aimw demo model. You said: pong"
    oneshot, streamed = demo_gateway.wait_log_lines(2, case)
    assert oneshot["ai"]["proxy"]["meta"]["request_mode"] == "oneshot"
    assert streamed["ai"]["proxy"]["meta"]["request_mode"] == "stream"


def test_demo_log_file(demo_gateway: GatewayProcess):
    """Every exchange so far is one JSON line; the client's key is never written."""
    text = demo_gateway.log_text()
    assert text.endswith("\n") and len(text.splitlines()) >= 1
    assert len(demo_gateway.log_lines()) == len(text.splitlines())
    assert CLIENT_KEY not in text
