"""The real Claude Code CLI -> Hypercorn serving recipes.huggingface:app (a real process)
-> the fake Hugging Face router: how the CLI lives with a cut stream and a rate limit. The
two-turn session every recipe serves is in test_recipe_scenarios.py.

The CLI runs headless and offline (fresh HOME and cwd, CLAUDE_CODE_MAX_RETRIES=0); its
requests carry ``x-e2e-case`` through ANTHROPIC_CUSTOM_HEADERS so log lines are its own.
"""

from __future__ import annotations

import pytest

from tests.e2e.harness import GatewayProcess, run_claude
from tests.fakes.openai_chat_server import FakeChatServer, completion, cut_stream, json_reply, rate_limited

pytestmark = pytest.mark.e2e


def test_cut_stream_then_non_streaming_retry(
    claude_bin, hf_gateway: GatewayProcess, fake: FakeChatServer, case, tmp_path
):
    """A provider stream cut mid-way reaches the CLI as ``event: error``; the CLI re-sends the
    same request with stream false and the gateway answers it."""
    fake.enqueue(
        cut_stream(("Half an ", "answer")),
        json_reply(completion("Recovered without streaming.", finish_reason="stop", usage=(900, 5))),
    )

    completed, output = run_claude(claude_bin, hf_gateway.url, "Say something.", tmp_path, headers={"x-e2e-case": case})

    assert completed.returncode == 0, completed.stderr[-2000:]
    assert output["is_error"] is False
    assert output["result"] == "Recovered without streaming."
    first, second = fake.requests_for(case)
    assert first.body["stream"] is True
    assert second.body.get("stream", False) is False and "stream_options" not in second.body
    assert second.body["messages"] == first.body["messages"]
    streamed, oneshot = hf_gateway.wait_log_lines(2, case)
    assert streamed["ai"]["proxy"]["meta"]["request_mode"] == "stream"
    assert streamed["ai"]["proxy"]["meta"]["error"]
    assert oneshot["ai"]["proxy"]["meta"]["request_mode"] == "oneshot"
    assert (oneshot["ai"]["proxy"]["usage"]["prompt_tokens"], oneshot["ai"]["proxy"]["usage"]["completion_tokens"]) == (
        900,
        5,
    )


def test_rate_limit_reaches_the_cli(claude_bin, hf_gateway: GatewayProcess, fake: FakeChatServer, case, tmp_path):
    """With retries off, the provider's 429 is the CLI's error (status 429, not a crash)."""
    fake.enqueue(rate_limited("30"))

    completed, output = run_claude(claude_bin, hf_gateway.url, "Say something.", tmp_path, headers={"x-e2e-case": case})

    assert completed.returncode != 0
    assert output is not None and output["is_error"] is True, completed.stdout[-2000:]
    assert output["api_error_status"] == 429
    assert len(fake.requests_for(case)) == 1
    (line,) = hf_gateway.wait_log_lines(1, case)
    assert line["response"]["status"] == 429
    assert line["response"]["headers"]["retry-after"] == "30"
