"""The real Claude Code CLI against each new recipe: anthropic, azure, dashscope, openai.

As in test_claude_code_cli.py (the Hugging Face recipe), a two-turn headless session: the
fake provider's turn 1 streams a Bash tool call in the provider's own wire format, the CLI
runs the command, turn 2 carries its output back (a tool_result block for Anthropic, a
role "tool" message for the others), and the CLI prints the fake's final answer. The log
must have one line per request with the fake's token counts.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from tests.fakes.anthropic_server import MESSAGES_PATH, FakeAnthropicServer, stream_reply, text_events, tool_use_events
from tests.fakes.openai_chat_server import (
    CHAT_PATH,
    DASHSCOPE,
    DASHSCOPE_PATH,
    OPENAI,
    OPENAI_MODEL,
    FakeChatServer,
    Reply,
    ToolCall,
    azure_profile,
    azure_text_stream,
    azure_tool_call_stream,
    dashscope_stream,
    dashscope_tool_call_stream,
    text_stream,
    tool_call_stream,
)

from tests.e2e.harness import CLIENT_KEY, GatewayProcess, checked_fake, running_gateway, run_claude

pytestmark = pytest.mark.e2e

CLI_MODEL = "claude-e2e-model"  # what the CLI is told to use (ANTHROPIC_MODEL)
AZURE_KEY = "5d2e8f1a" + "9c3b4e7d6a0f1b2c3d4e5f60"
AZURE_DEPLOYMENT, AZURE_API_VERSION = "gpt-4o-cli", "2025-01-01-preview"
DASHSCOPE_KEY = "sk-" + "cli0e2e1dashscope2key3abc"
OPENAI_KEY = "sk-proj-" + "cliE2eOpenAiKey7Hq2"
TOOL_ID = "toolu_bash_cli_1"  # also the Chat Completions call id
FIRST_TEXT = ("I will run ", "the command.")


@dataclass(frozen=True)
class Usage:
    """One turn's token counts as the fake reports them, and what the log must show."""

    input: int
    output: int
    cache_read: int = 0
    cache_creation: int = 0

    @property
    def prompt_tokens(self) -> int:
        return self.input + self.cache_read + self.cache_creation


@dataclass(frozen=True)
class Recipe:
    """How one recipe is served and how its fake provider speaks."""

    name: str
    app: str
    env: Callable[[str], dict[str, str]]  # fake url -> gateway environment
    new_fake: Callable[[], FakeChatServer | FakeAnthropicServer]
    tool_turn: Callable[[str, Usage], Reply]  # (Bash command, usage) -> turn 1
    final_turn: Callable[[str, Usage], Reply]  # (final text, usage) -> turn 2
    usages: tuple[Usage, Usage]
    request_model: str  # what the log names as the model sent upstream


def _bash_input(command: str) -> dict:
    return {"command": command, "description": "Print the e2e token"}


def _anthropic_usage(usage: Usage) -> dict:
    return {
        "input_tokens": usage.input,
        "cache_creation_input_tokens": usage.cache_creation,
        "cache_read_input_tokens": usage.cache_read,
        "output_tokens": 1,
    }


def _final_pieces(text: str) -> tuple[str, str]:
    return text[:12], text[12:]


RECIPES = {
    "anthropic": Recipe(
        "anthropic",
        "recipes.anthropic:app",
        lambda url: {"AIMW_UPSTREAM_URL": url},
        lambda: FakeAnthropicServer(CLIENT_KEY),
        lambda command, usage: stream_reply(
            tool_use_events(TOOL_ID, "Bash", _bash_input(command), text=FIRST_TEXT, start_usage=_anthropic_usage(usage), output_tokens=usage.output)
        ),
        lambda text, usage: stream_reply(
            text_events(_final_pieces(text), start_usage=_anthropic_usage(usage), output_tokens=usage.output)
        ),
        (Usage(5, 40, cache_creation=1500), Usage(7, 15, cache_read=1500, cache_creation=100)),
        CLI_MODEL,
    ),
    "azure": Recipe(
        "azure",
        "recipes.azure:app",
        lambda url: {
            "AZURE_OPENAI_API_KEY": AZURE_KEY,
            "AZURE_INSTANCE_NAME": "aimw-cli",
            "AZURE_DEPLOYMENT_ID": AZURE_DEPLOYMENT,
            "AIMW_UPSTREAM_URL": url,
        },
        lambda: FakeChatServer(AZURE_KEY, azure_profile(AZURE_DEPLOYMENT, AZURE_API_VERSION)),
        lambda command, usage: azure_tool_call_stream(
            [ToolCall(TOOL_ID, "Bash", _bash_input(command))], text=FIRST_TEXT, usage=(usage.input, usage.output)
        ),
        lambda text, usage: azure_text_stream(_final_pieces(text), usage=(usage.input, usage.output)),
        (Usage(1500, 40), Usage(1600, 15)),
        AZURE_DEPLOYMENT,
    ),
    "dashscope": Recipe(
        "dashscope",
        "recipes.dashscope:app",
        lambda url: {"DASHSCOPE_API_KEY": DASHSCOPE_KEY, "AIMW_UPSTREAM_URL": url},
        lambda: FakeChatServer(DASHSCOPE_KEY, DASHSCOPE),
        lambda command, usage: dashscope_tool_call_stream(
            [ToolCall(TOOL_ID, "Bash", _bash_input(command))], text=FIRST_TEXT, usage=(usage.input, usage.output)
        ),
        lambda text, usage: dashscope_stream(_final_pieces(text), usage=(usage.input + usage.cache_read, usage.output), cached_tokens=usage.cache_read),
        (Usage(1500, 40), Usage(100, 15, cache_read=1500)),
        "qwen-plus",
    ),
    "openai": Recipe(
        "openai",
        "recipes.openai:app",
        lambda url: {"OPENAI_API_KEY": OPENAI_KEY, "AIMW_UPSTREAM_URL": url},
        lambda: FakeChatServer(OPENAI_KEY, OPENAI),
        lambda command, usage: tool_call_stream(
            [ToolCall(TOOL_ID, "Bash", _bash_input(command))], text=FIRST_TEXT, usage=(usage.input, usage.output), model=OPENAI_MODEL
        ),
        lambda text, usage: text_stream(_final_pieces(text), usage=(usage.input, usage.output), model=OPENAI_MODEL),
        (Usage(1500, 40), Usage(1600, 15)),
        "gpt-4.1",
    ),
}


@dataclass
class Served:
    recipe: Recipe
    fake: FakeChatServer | FakeAnthropicServer
    gateway: GatewayProcess


@pytest.fixture(scope="module", params=list(RECIPES))
def served(request, tmp_path_factory) -> Iterator[Served]:
    recipe = RECIPES[request.param]
    with recipe.new_fake() as fake:
        with running_gateway(recipe.app, recipe.env(fake.url), tmp_path_factory, f"{recipe.name}-cli-gateway") as gateway:
            yield Served(recipe, fake, gateway)


@pytest.fixture
def checked(served: Served, request) -> Iterator[Served]:
    with checked_fake(served.fake, [served.gateway], request):
        yield served


def test_two_turn_bash_session(claude_bin, checked: Served, case, tmp_path):
    recipe, fake, gateway = checked.recipe, checked.fake, checked.gateway
    token = uuid.uuid4().hex[:12]
    command = f"echo aimw-{recipe.name}-$((6*7))-{token}"
    printed = f"aimw-{recipe.name}-42-{token}"  # only running the command produces this text
    final_text = f"The command printed {printed}."
    first_usage, second_usage = recipe.usages
    fake.enqueue(recipe.tool_turn(command, first_usage), recipe.final_turn(final_text, second_usage))

    completed, output = run_claude(
        claude_bin,
        gateway.url,
        f"Run `{command}` and tell me what it printed.",
        tmp_path,
        "--allowedTools",
        "Bash",
        model=CLI_MODEL,
        headers={"x-e2e-case": case},
    )

    diagnostics = f"exit {completed.returncode}\nstdout: {completed.stdout[-2000:]}\nstderr: {completed.stderr[-2000:]}"
    assert completed.returncode == 0, diagnostics
    assert output is not None and output["is_error"] is False, diagnostics
    assert output["result"] == final_text
    assert output["num_turns"] == 2
    assert output["usage"]["output_tokens"] == first_usage.output + second_usage.output

    requests = fake.requests_for(case)
    assert len(requests) == 2, [(r.method, r.path) for r in requests]
    if recipe.name == "anthropic":
        assert_anthropic_turns(requests, command, printed)
    else:
        assert_chat_turns(recipe, requests, command, printed)
    for request in requests:
        assert request.headers["user-agent"].startswith("claude-cli/")

    lines = gateway.wait_log_lines(2, case)
    assert len(lines) == 2
    for line, usage in zip(lines, recipe.usages):
        assert line["request"]["uri"] == "/v1/messages?beta=true"
        assert line["request"]["headers"]["x-api-key"] == "REDACTED"
        assert line["response"]["status"] == 200
        meta, logged = line["ai"]["proxy"]["meta"], line["ai"]["proxy"]["usage"]
        assert meta["provider_name"] == recipe.name
        assert meta["request_model"] == recipe.request_model
        assert meta["request_mode"] == "stream"
        assert "error" not in meta
        assert (logged["prompt_tokens"], logged["completion_tokens"]) == (usage.prompt_tokens, usage.output)
        assert logged["total_tokens"] == usage.prompt_tokens + usage.output
        assert logged["prompt_tokens_details"]["cached_tokens"] == usage.cache_read
    log = gateway.log_text()
    assert CLIENT_KEY not in log
    for key in (AZURE_KEY, DASHSCOPE_KEY, OPENAI_KEY):
        assert key not in log


def assert_anthropic_turns(requests, command: str, printed: str) -> None:
    """Claude Code's own requests reach Anthropic unchanged: its query, key, betas and body."""
    for request in requests:
        assert (request.path, request.query) == (MESSAGES_PATH, "beta=true")
        assert request.headers["x-api-key"] == CLIENT_KEY  # the recipe has no key of its own
        assert request.headers["anthropic-version"] == "2023-06-01"
        assert "claude-code-20250219" in request.headers["anthropic-beta"]
        assert request.body["model"] == CLI_MODEL
        assert request.body["stream"] is True
        assert "Bash" in {tool["name"] for tool in request.body["tools"]}
    first, second = (request.body for request in requests)
    assert any(m["role"] == "user" and command in json.dumps(m["content"]) for m in first["messages"])
    # Turn 2: the assistant's tool_use as it was streamed, then a tool_result with the real output.
    uses = [
        (i, block)
        for i, m in enumerate(second["messages"])
        if m["role"] == "assistant" and isinstance(m["content"], list)
        for block in m["content"]
        if block["type"] == "tool_use"
    ]
    assert len(uses) == 1
    index, use = uses[0]
    assert (use["id"], use["name"], use["input"]["command"]) == (TOOL_ID, "Bash", command)
    texts = [block["text"] for block in second["messages"][index]["content"] if block["type"] == "text"]
    assert texts == ["".join(FIRST_TEXT)]
    results = [block for block in second["messages"][index + 1]["content"] if block["type"] == "tool_result"]
    assert len(results) == 1
    assert results[0]["tool_use_id"] == TOOL_ID
    assert printed in json.dumps(results[0]["content"])
    assert not results[0].get("is_error", False)


def assert_chat_turns(recipe: Recipe, requests, command: str, printed: str) -> None:
    """The translated turns: the provider's path and credential; turn 2 carries the call and
    a role "tool" message with the real output."""
    expected = {
        "azure": (f"/openai/deployments/{AZURE_DEPLOYMENT}/chat/completions", f"api-version={AZURE_API_VERSION}", "api-key", AZURE_KEY),
        "dashscope": (DASHSCOPE_PATH, "", "authorization", f"Bearer {DASHSCOPE_KEY}"),
        "openai": (CHAT_PATH, "", "authorization", f"Bearer {OPENAI_KEY}"),
    }[recipe.name]
    for request in requests:
        assert (request.path, request.query) == expected[:2]
        assert request.headers[expected[2]] == expected[3]
        assert CLIENT_KEY not in json.dumps(request.headers)
        assert request.body["stream"] is True
        assert request.body["messages"][0]["role"] == "system"
        assert "Bash" in {tool["function"]["name"] for tool in request.body["tools"]}
        if recipe.name == "dashscope":  # Kong's DashScope guide: 8192 tokens, temperature 1.0; adaptive thinking not sent
            assert (request.body["max_tokens"], request.body["temperature"]) == (8192, 1.0)
            assert "enable_thinking" not in request.body
        else:
            assert request.body["max_tokens"] == 32000
    first, second = (request.body for request in requests)
    assert any(m["role"] == "user" and command in json.dumps(m["content"]) for m in first["messages"])
    assert not any(m["role"] in ("assistant", "tool") for m in first["messages"])
    calls = [(i, m) for i, m in enumerate(second["messages"]) if m["role"] == "assistant" and m.get("tool_calls")]
    assert len(calls) == 1
    index, assistant = calls[0]
    assert assistant["content"] == "".join(FIRST_TEXT)
    (call,) = assistant["tool_calls"]
    assert (call["id"], call["function"]["name"]) == (TOOL_ID, "Bash")
    assert json.loads(call["function"]["arguments"])["command"] == command
    tool = second["messages"][index + 1]
    assert tool["role"] == "tool" and tool["tool_call_id"] == TOOL_ID
    assert printed in tool["content"] and not tool["content"].startswith("Error")
