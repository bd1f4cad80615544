"""The real Claude Code CLI -> Hypercorn serving recipes.huggingface:app (a real process)
-> the fake Hugging Face router: a two-turn session in which the CLI runs a Bash command.

The CLI runs headless and offline (fresh HOME and cwd, CLAUDE_CODE_MAX_RETRIES=0); its
requests carry ``x-e2e-case`` through ANTHROPIC_CUSTOM_HEADERS so log lines are its own.
"""

from __future__ import annotations

import json
import uuid

import pytest

from tests.fakes.openai_chat_server import (
    FakeChatServer,
    ToolCall,
    completion,
    cut_stream,
    json_reply,
    rate_limited,
    text_stream,
    tool_call_stream,
)

from tests.e2e.harness import CLIENT_KEY, HF_MODEL, HF_TOKEN, GatewayProcess, run_claude

pytestmark = pytest.mark.e2e


def test_two_turn_bash_session(claude_bin, hf_gateway: GatewayProcess, fake: FakeChatServer, case, tmp_path):
    token = uuid.uuid4().hex[:12]
    command = f"echo aimw-e2e-$((6*7))-{token}"
    printed = f"aimw-e2e-42-{token}"  # only running the command produces this text
    final_text = f"The command printed {printed}."
    fake.enqueue(
        tool_call_stream(
            [ToolCall("call_bash_1", "Bash", {"command": command, "description": "Print the e2e token"})],
            text=("I will run ", "the command."),
            pieces=4,
            usage=(1500, 40),
        ),
        text_stream(("The command printed ", f"{printed}."), usage=(1600, 15)),
    )

    completed, output = run_claude(
        claude_bin,
        hf_gateway.url,
        f"Run `{command}` and tell me what it printed.",
        tmp_path,
        "--allowedTools",
        "Bash",
        headers={"x-e2e-case": case},
    )

    diagnostics = f"exit {completed.returncode}\nstdout: {completed.stdout[-2000:]}\nstderr: {completed.stderr[-2000:]}"
    assert completed.returncode == 0, diagnostics
    assert output is not None, diagnostics
    assert output["is_error"] is False, diagnostics
    assert output["result"] == final_text
    assert output["num_turns"] == 2
    # The CLI adds up the usage it was given, turn by turn (input excludes nothing cached here).
    assert output["usage"]["input_tokens"] == 1500 + 1600
    assert output["usage"]["output_tokens"] == 40 + 15

    requests = fake.requests_for(case)
    assert len(requests) == 2, [r.body.get("messages", [])[-1:] for r in requests]
    first, second = (request.body for request in requests)
    for body in (first, second):
        assert body["model"] == HF_MODEL
        assert body["stream"] is True
        assert body["messages"][0]["role"] == "system"
        assert "Bash" in {tool["function"]["name"] for tool in body["tools"]}
    assert any(m["role"] == "user" and command in json.dumps(m["content"]) for m in first["messages"])
    assert not any(m["role"] in ("assistant", "tool") for m in first["messages"])

    # Turn 2 carries the assistant's tool call and a role "tool" message with the real output.
    calls = [
        (i, m) for i, m in enumerate(second["messages"]) if m["role"] == "assistant" and m.get("tool_calls")
    ]
    assert len(calls) == 1
    index, assistant = calls[0]
    assert assistant["content"] == "I will run the command."
    (call,) = assistant["tool_calls"]
    assert (call["id"], call["function"]["name"]) == ("call_bash_1", "Bash")
    assert json.loads(call["function"]["arguments"])["command"] == command
    tool = second["messages"][index + 1]
    assert tool["role"] == "tool" and tool["tool_call_id"] == "call_bash_1"
    assert printed in tool["content"]
    assert not tool["content"].startswith("Error")

    for request in requests:
        assert request.headers["authorization"] == f"Bearer {HF_TOKEN}"
        assert request.headers["user-agent"].startswith("claude-cli/")
        assert CLIENT_KEY not in json.dumps(request.headers)

    # One log line per request the CLI made, each with the fake's token counts.
    lines = hf_gateway.wait_log_lines(len(requests), case)
    assert len(lines) == len(requests) == 2
    for line, (prompt_tokens, completion_tokens) in zip(lines, [(1500, 40), (1600, 15)]):
        assert line["request"]["method"] == "POST"
        assert line["request"]["uri"] == "/v1/messages?beta=true"
        assert line["request"]["headers"]["x-api-key"] == "REDACTED"
        assert line["response"]["status"] == 200
        meta, usage = line["ai"]["proxy"]["meta"], line["ai"]["proxy"]["usage"]
        assert meta["provider_name"] == "huggingface"
        assert meta["request_mode"] == "stream"
        assert meta["request_model"] == HF_MODEL
        assert "error" not in meta
        assert (usage["prompt_tokens"], usage["completion_tokens"]) == (prompt_tokens, completion_tokens)
        assert usage["total_tokens"] == prompt_tokens + completion_tokens
    log = hf_gateway.log_text()
    assert CLIENT_KEY not in log and HF_TOKEN not in log


def test_cut_stream_then_non_streaming_retry(claude_bin, hf_gateway: GatewayProcess, fake: FakeChatServer, case, tmp_path):
    """A provider stream cut mid-way reaches the CLI as ``event: error``; the CLI re-sends the
    same request with stream false and the gateway answers it."""
    fake.enqueue(cut_stream(("Half an ", "answer")), json_reply(completion("Recovered without streaming.", finish_reason="stop", usage=(900, 5))))

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
    assert (oneshot["ai"]["proxy"]["usage"]["prompt_tokens"], oneshot["ai"]["proxy"]["usage"]["completion_tokens"]) == (900, 5)


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
