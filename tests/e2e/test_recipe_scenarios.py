"""The scenarios every recipe shares, run over the recipe table (tests/e2e/recipes.py): the
Anthropic Python SDK, raw httpx or the real Claude Code CLI -> Hypercorn serving the recipe
(a real process) -> the recipe's fake provider on loopback, which checks what the real one
checks. Each recipe's own behaviour is tested in its module.

Translating recipes (azure, dashscope, huggingface, openai): a text answer, streamed or
not, with cached tokens; a tool use round trip; thinking, for the providers that send
``reasoning_content``; the provider's errors mapped to Anthropic's; count_tokens answered
locally; Claude Code's request form; a base URL with a path prefix; the client's
credentials kept in the gateway. Every recipe, the pass-through one too: a provider that
hangs up, a two-turn Claude Code session running Bash.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import httpx
import pytest

import anthropic
from tests.e2e.harness import (
    CLIENT_KEY,
    GatewayProcess,
    assert_log_usage,
    checked_fake,
    exact_log_lines,
    run_bash_session,
    sdk_client,
)
from tests.e2e.recipes import (
    PROVIDER_KEYS,
    RECIPES,
    TRANSLATED,
    RecipeCase,
    RecipeServers,
    Served,
    TranslatedRecipe,
    Usage,
    provider_message,
)
from tests.e2e.scenarios import (
    MODEL,
    USER,
    WEATHER_TOOL,
    answer_tool_use,
    assert_chat_tool_round_trip,
    assert_count_tokens_is_local,
    assert_error,
    assert_still_serving,
    only_request,
    rejected_key_error,
    request_error,
    stream_tool_use,
    tool_result,
)
from tests.fakes.anthropic_server import MESSAGES_PATH
from tests.fakes.openai_chat_server import ToolCall, cut_stream
from tests.fakes.scripted_server import RecordedRequest, Reply, ScriptedServer

pytestmark = pytest.mark.e2e


def _ids(recipe: RecipeCase) -> str:
    return recipe.name


translated = pytest.mark.parametrize("recipe", TRANSLATED, ids=_ids)
thinking = pytest.mark.parametrize("recipe", [recipe for recipe in TRANSLATED if recipe.reasoning_stream], ids=_ids)
every_recipe = pytest.mark.parametrize("recipe", list(RECIPES.values()), ids=_ids)
STREAM_EVENTS = (
    "message_start",
    "content_block_start",
    "content_block_delta",
    "content_block_stop",
    "message_delta",
    "message_stop",
)
CREDENTIAL_HEADERS = ("authorization", "api-key", "x-api-key")
ANTHROPIC_HEADERS = ("anthropic-version", "anthropic-beta")


@pytest.fixture
def served(recipe: RecipeCase, recipe_servers: RecipeServers) -> Served:
    return recipe_servers[recipe.name]


@pytest.fixture
def gateway(served: Served) -> GatewayProcess:
    return served.gateway


@pytest.fixture
def fake(served: Served, request: pytest.FixtureRequest) -> Iterator[ScriptedServer]:
    """The recipe's fake provider, checked as :func:`tests.e2e.harness.checked_fake` says."""
    with checked_fake(served.fake, [served.gateway], request) as server:
        yield server


def assert_sent_to_provider(recipe: TranslatedRecipe, sent: RecordedRequest) -> None:
    """``sent`` went where the provider wants it, with its credential and nothing of the client's."""
    assert (sent.method, sent.path, sent.query) == ("POST", recipe.path, recipe.query)
    header, value = recipe.auth
    assert sent.headers[header] == value
    for name in (*CREDENTIAL_HEADERS, *ANTHROPIC_HEADERS):
        assert name == header or name not in sent.headers, name
    assert CLIENT_KEY not in json.dumps(sent.headers)
    assert CLIENT_KEY.encode() not in sent.raw_body


def fields(mapping: dict, expected: dict) -> dict:
    """The fields of ``mapping`` that ``expected`` names (absent ones as None), to compare with it."""
    return {name: mapping.get(name) for name in expected}


def assert_meta(recipe: RecipeCase, line: dict, mode: str) -> None:
    meta = line["ai"]["proxy"]["meta"]
    assert fields(meta, recipe.log_meta) == recipe.log_meta
    assert meta["request_mode"] == mode
    assert "error" not in meta


def still_serving(recipe: RecipeCase, gateway: GatewayProcess, fake: ScriptedServer, case: str) -> None:
    assert_still_serving(gateway, fake, case, recipe.completion("still serving", Usage(3, 2)), USER)


# ---------------------------------------------------------------- text


@translated
def test_text_oneshot(recipe, client, fake, gateway, case):
    fake.enqueue(recipe.completion(" The sum of 1 + 1 is 2.", Usage(26, 40)))  # TGI's leading space kept

    message = client.messages.create(model=MODEL, max_tokens=256, system="Be brief.", messages=USER)

    assert [(block.type, block.text) for block in message.content] == [("text", " The sum of 1 + 1 is 2.")]
    assert message.stop_reason == "end_turn"
    assert message.model == recipe.response_model
    assert (message.usage.input_tokens, message.usage.output_tokens, message.usage.cache_read_input_tokens) == (
        26,
        40,
        0,
    )
    sent = only_request(fake, case)
    assert_sent_to_provider(recipe, sent)
    assert sent.body["model"] == recipe.request_model
    assert sent.body["max_tokens"] == 256 and "max_completion_tokens" not in sent.body
    assert sent.body.get("stream", False) is False and "stream_options" not in sent.body
    assert sent.body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": USER[0]["content"]},
    ]
    assert fields(sent.body, recipe.body_defaults) == recipe.body_defaults
    assert fields(sent.body, recipe.oneshot_body) == recipe.oneshot_body
    (line,) = exact_log_lines(gateway, case)
    assert_meta(recipe, line, "oneshot")
    assert line["ai"]["proxy"]["meta"]["response_model"] == recipe.response_model
    assert line["response"]["status"] == 200
    assert line["upstream_uri"] == recipe.path + (f"?{recipe.query}" if recipe.query else "")  # Kong's: path and query
    port = int(fake.url.rsplit(":", 1)[1])
    assert line["ai"]["proxy"]["tried_targets"] == [
        {
            "provider": recipe.log_meta["provider_name"],
            "model": recipe.request_model,
            "host": "127.0.0.1",
            "port": port,
            "ip": "127.0.0.1",
            "upstream_scheme": "http",
            "upstream_uri": recipe.path,
            "route_type": "llm/v1/chat",
        }
    ]
    assert_log_usage(line, 26, 40)


@translated
def test_text_stream(recipe, client, fake, gateway, case):
    pieces = ("The ", "answer ", "to 1 + ", "1 is ", "2.")
    fake.enqueue(recipe.text_stream(pieces, Usage(25, 12)))

    with client.messages.stream(model=MODEL, max_tokens=256, messages=USER) as stream:
        events = [event for event in stream if event.type in STREAM_EVENTS]
        message = stream.get_final_message()

    assert [event.type for event in events] == [
        "message_start",
        "content_block_start",
        *["content_block_delta"] * len(pieces),
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert [event.delta.text for event in events if event.type == "content_block_delta"] == list(pieces)  # as they came
    assert [(block.type, block.text) for block in message.content] == [("text", "The answer to 1 + 1 is 2.")]
    assert message.stop_reason == "end_turn"
    assert message.model == recipe.response_model
    assert (message.usage.input_tokens, message.usage.output_tokens) == (25, 12)
    sent = only_request(fake, case)
    assert_sent_to_provider(recipe, sent)
    assert sent.body["stream"] is True and sent.body["stream_options"] == {"include_usage": True}
    assert sent.body["model"] == recipe.request_model
    assert fields(sent.body, recipe.body_defaults) == recipe.body_defaults
    (line,) = exact_log_lines(gateway, case)
    assert_meta(recipe, line, "stream")
    assert line["ai"]["proxy"]["meta"]["response_model"] == recipe.response_model
    assert line["response"]["headers"]["content-type"].startswith("text/event-stream")
    assert_log_usage(line, 25, 12)


@translated
def test_stream_cached_tokens(recipe, client, fake, gateway, case):
    fake.enqueue(recipe.text_stream(("Cached.",), Usage(200, 20, cache_read=800)))

    with client.messages.stream(model=MODEL, max_tokens=64, messages=USER) as stream:
        message = stream.get_final_message()

    # OpenAI's prompt_tokens include the cached ones; Anthropic's input_tokens do not.
    usage = message.usage
    assert (usage.input_tokens, usage.cache_read_input_tokens, usage.output_tokens) == (200, 800, 20)
    assert_log_usage(exact_log_lines(gateway, case)[0], 1000, 20, cached=800)


# ---------------------------------------------------------------- tools


@translated
@pytest.mark.parametrize("text", [(), ("Let me ", "check.")], ids=["tool-only", "text-first"])
@pytest.mark.parametrize("answer_stream", [True, False], ids=["answer-streamed", "answer-oneshot"])
def test_streamed_tool_use_then_tool_result(recipe, client, fake, gateway, case, text, answer_stream):
    call = ToolCall("call_w1", "get_weather", {"city": "Paris", "unit": "celsius"})
    fake.enqueue(recipe.tool_stream([call], text, 5, Usage(120, 30)))

    partial_json, message = stream_tool_use(client, "Weather in Paris?", [WEATHER_TOOL])

    assert len(partial_json) == 5  # streamed as the fragments arrived, not buffered
    assert json.loads("".join(partial_json)) == call.arguments
    blocks = [
        (block.type, block.text) if block.type == "text" else (block.type, block.id, block.name, block.input)
        for block in message.content
    ]
    assert blocks == [*([("text", "".join(text))] if text else []), ("tool_use", call.id, call.name, call.arguments)]
    assert message.stop_reason == "tool_use"
    first = only_request(fake, case)
    assert first.body["tools"] == [  # no cache_control; input_schema passed verbatim as parameters
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": WEATHER_TOOL["description"],
                "parameters": WEATHER_TOOL["input_schema"],
            },
        }
    ]

    # Turn 2: the tool result goes back as a role "tool" message answering the call.
    if answer_stream:
        fake.enqueue(recipe.text_stream(("It is 18 °C ", "and sunny."), Usage(160, 9)))
    else:
        fake.enqueue(recipe.completion("It is 18 °C and sunny.", Usage(160, 9)))
    result = tool_result(call.id, "18 °C, sunny", cache_control={"type": "ephemeral"})
    answer = answer_tool_use(client, "Weather in Paris?", message, result, tools=[WEATHER_TOOL], stream=answer_stream)

    assert answer.content[0].text == "It is 18 °C and sunny."
    assistant, tool = fake.requests_for(case)[1].body["messages"][-2:]
    assert assistant["role"] == "assistant" and assistant.get("content") == ("".join(text) or None)
    assert [
        (c["id"], c["type"], c["function"]["name"], json.loads(c["function"]["arguments"]))
        for c in assistant["tool_calls"]
    ] == [(call.id, "function", call.name, call.arguments)]
    assert tool == {"role": "tool", "content": "18 °C, sunny", "tool_call_id": call.id}
    first_line, second_line = exact_log_lines(gateway, case, 2)
    assert_log_usage(first_line, 120, 30)
    assert_log_usage(second_line, 160, 9)


# ---------------------------------------------------------------- thinking


@thinking
def test_thinking_from_reasoning_content_stream(recipe, client, fake, gateway, case):
    reasoning = ("The user ", "asks 1 + 1; ", "that is 2.")
    fake.enqueue(recipe.reasoning_stream(reasoning, ("It is ", "2."), Usage(30, 120), 100))

    with client.messages.stream(
        model=MODEL, max_tokens=4096, thinking={"type": "enabled", "budget_tokens": 2048}, messages=USER
    ) as stream:
        thinking_deltas = [
            e.delta.thinking for e in stream if e.type == "content_block_delta" and e.delta.type == "thinking_delta"
        ]
        message = stream.get_final_message()

    assert thinking_deltas == list(reasoning)  # streamed as they came
    assert [block.type for block in message.content] == ["thinking", "text"]
    assert message.content[0].thinking == "The user asks 1 + 1; that is 2."
    assert message.content[1].text == "It is 2."
    body = only_request(fake, case).body
    assert "thinking" not in body  # Anthropic-only: never sent as such
    assert fields(body, recipe.thinking_body) == recipe.thinking_body
    (line,) = exact_log_lines(gateway, case)
    assert_log_usage(line, 30, 120)
    assert line["ai"]["proxy"]["usage"]["completion_tokens_details"]["reasoning_tokens"] == 100


@thinking
def test_thinking_from_reasoning_content_oneshot(recipe, client, fake, case):
    fake.enqueue(recipe.completion("2", Usage(30, 16), reasoning_content="One plus one is two."))
    message = client.messages.create(
        model=MODEL, max_tokens=4096, thinking={"type": "enabled", "budget_tokens": 1024}, messages=USER
    )
    assert [(b.type, getattr(b, "thinking", None) or getattr(b, "text", None)) for b in message.content] == [
        ("thinking", "One plus one is two."),
        ("text", "2"),
    ]


# ---------------------------------------------------------------- errors


@translated
def test_wrong_key_is_401(recipe, client, fake, gateway, case):
    error = rejected_key_error(client, fake, USER, wrong_key=recipe.wrong_key, right_key=recipe.key)
    assert_error(error, 401, "authentication_error", provider_message(fake.profile.unauthorized()))
    assert recipe.key not in error.message and recipe.key not in error.response.text
    assert only_request(fake, case).status == 401
    assert exact_log_lines(gateway, case)[0]["response"]["status"] == 401
    still_serving(recipe, gateway, fake, case)


@translated
@pytest.mark.parametrize("stream", [False, True], ids=["oneshot", "stream"])
def test_rate_limited_keeps_retry_after(recipe, client, fake, gateway, case, stream):
    reply = recipe.rate_limited("11")
    fake.enqueue(reply)
    error = request_error(anthropic.RateLimitError, client, USER, stream)
    assert_error(error, 429, "rate_limit_error", provider_message(reply))
    assert error.response.headers["retry-after"] == "11"
    assert exact_log_lines(gateway, case)[0]["response"]["status"] == 429
    still_serving(recipe, gateway, fake, case)


@translated
@pytest.mark.parametrize(
    ("status", "client_status", "error_type"),
    [(500, 500, "api_error"), (503, 529, "overloaded_error")],
    ids=["500", "503"],
)
def test_server_errors(recipe, client, fake, gateway, case, status, client_status, error_type):
    reply = recipe.server_error(status)
    fake.enqueue(reply)
    error = request_error(anthropic.APIStatusError, client, USER)
    assert_error(error, client_status, error_type, provider_message(reply))
    assert exact_log_lines(gateway, case)[0]["response"]["status"] == client_status
    still_serving(recipe, gateway, fake, case)


@translated
def test_cut_stream_is_an_error_event(recipe, client, fake, gateway, case):
    fake.enqueue(cut_stream(("This answer ", "stops ", "in the mid")))
    seen: list[str] = []
    with (
        pytest.raises(anthropic.APIError) as caught,
        client.messages.stream(model=MODEL, max_tokens=64, messages=USER) as stream,
    ):
        for text in stream.text_stream:
            seen.append(text)
    assert "".join(seen) == "This answer stops in the mid"  # what arrived was passed on at once
    assert caught.value.body["error"]["type"] == "api_error"
    (line,) = exact_log_lines(gateway, case)
    assert line["ai"]["proxy"]["meta"]["error"]
    assert line["ai"]["proxy"]["meta"]["request_mode"] == "stream"
    still_serving(recipe, gateway, fake, case)


@every_recipe
def test_provider_hangs_up_is_502(recipe, client, fake, gateway, case):
    """A provider that closes the connection without answering -> 502 api_error."""
    fake.enqueue(Reply(drop=True))
    error = request_error(anthropic.APIStatusError, client, USER)
    assert_error(error, 502, "api_error")
    assert exact_log_lines(gateway, case)[0]["response"]["status"] == 502
    still_serving(recipe, gateway, fake, case)


# ---------------------------------------------------------------- requests the gateway shapes


@translated
def test_count_tokens_is_local(recipe, client, fake, gateway, case):
    assert_count_tokens_is_local(client, fake, gateway, case, system="Be brief.", messages=USER, tools=[WEATHER_TOOL])


@translated
def test_claude_code_request_form(recipe, client, fake, gateway, case):
    """Claude Code's form: ?beta=true, anthropic-beta, an Anthropic model name, Anthropic-only fields."""
    fake.enqueue(recipe.text_stream(("ok",), Usage(25, 12)))
    with client.beta.messages.stream(
        model="claude-sonnet-4-7-e2e",
        max_tokens=32000,
        betas=["interleaved-thinking-2025-05-14", "context-management-2025-06-27"],
        system=[{"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}}],
        messages=[
            {"role": "user", "content": [{"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}}]}
        ],
        metadata={"user_id": "user-e2e"},
        extra_body={"context_management": {"edits": []}, "output_config": {"effort": "high"}},
        extra_query={"beta": "true"},
    ) as stream:
        assert stream.get_final_message().content[0].text == "ok"
    sent = only_request(fake, case)
    assert_sent_to_provider(recipe, sent)  # ?beta=true and the anthropic-* headers stay in the gateway
    assert sent.body["model"] == recipe.request_model  # the client's claude-* name never reaches the provider
    assert sent.body["messages"] == [
        {"role": "system", "content": "You are Claude Code."},
        {"role": "user", "content": "hi"},
    ]
    (line,) = exact_log_lines(gateway, case)
    assert line["request"]["uri"] == "/v1/messages?beta=true"
    assert_meta(recipe, line, "stream")


@translated
def test_path_prefix_base_url(recipe, fake, gateway, case):
    fake.enqueue(recipe.completion("prefixed", Usage(26, 40)))
    message = sdk_client(gateway.url + "/anything", case).messages.create(model=MODEL, max_tokens=16, messages=USER)
    assert message.content[0].text == "prefixed"
    assert only_request(fake, case).path == recipe.path
    (line,) = exact_log_lines(gateway, case)
    assert line["request"]["uri"] == "/anything/v1/messages"


@translated
def test_provider_sees_only_its_credential(recipe, fake, gateway, case):
    """The SDK's Authorization: Bearer, Claude Code's x-api-key, the anthropic-* headers and
    ?beta=true never leave the gateway; the log has them redacted and no key at all."""
    fake.enqueue(recipe.completion("bearer", Usage(26, 40)), recipe.completion("x-api-key", Usage(26, 40)))
    bearer = sdk_client(gateway.url, case).messages.create(model=MODEL, max_tokens=8, messages=USER)
    response = httpx.post(
        gateway.url + "/v1/messages?beta=true",
        json={"model": MODEL, "max_tokens": 8, "messages": USER},
        headers={
            "x-api-key": CLIENT_KEY,
            "authorization": f"Bearer {CLIENT_KEY}",
            "anthropic-version": "2023-06-01",
            "anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14",
            "x-e2e-case": case,
        },
        trust_env=False,
    )
    assert bearer.content[0].text == "bearer"
    assert response.status_code == 200 and response.json()["content"][0]["text"] == "x-api-key"
    requests = fake.requests_for(case)
    assert len(requests) == 2
    for request in requests:
        assert_sent_to_provider(recipe, request)
    bearer_line, key_line = exact_log_lines(gateway, case, 2)
    assert bearer_line["request"]["headers"]["authorization"] == "REDACTED"
    assert key_line["request"]["headers"]["x-api-key"] == key_line["request"]["headers"]["authorization"] == "REDACTED"
    log = gateway.log_text()
    assert CLIENT_KEY not in log and recipe.key not in log


# ---------------------------------------------------------------- the real Claude Code CLI

CLI_MODEL = "claude-e2e-model"  # what the CLI is told to use (ANTHROPIC_MODEL)
TOOL_ID = "toolu_bash_cli_1"  # also the Chat Completions call id
FIRST_TEXT = ("I will run ", "the command.")


@every_recipe
def test_two_turn_bash_session(recipe, claude_bin, fake, gateway, case, tmp_path):
    """A headless session: the fake's turn 1 streams a Bash tool call in the provider's own
    wire format, the CLI runs the command, turn 2 carries its output back (a tool_result
    block for Anthropic, a role "tool" message for the others), and the CLI prints the
    fake's final answer. The log has one line per request with the fake's token counts."""
    token = uuid.uuid4().hex[:12]
    command = f"echo aimw-{recipe.name}-$((6*7))-{token}"
    printed = f"aimw-{recipe.name}-42-{token}"  # only running the command produces this text
    final_text = f"The command printed {printed}."
    usages = recipe.cli_usages
    tool_call = ToolCall(TOOL_ID, "Bash", {"command": command, "description": "Print the e2e token"})
    fake.enqueue(
        recipe.tool_stream([tool_call], FIRST_TEXT, 4, usages[0]),
        recipe.text_stream((final_text[:12], final_text[12:]), usages[1]),
    )

    _, output = run_bash_session(claude_bin, gateway.url, command, tmp_path, case, CLI_MODEL)
    assert output["result"] == final_text
    # The CLI adds up the usage it was given, turn by turn.
    assert output["usage"]["input_tokens"] == sum(usage.input for usage in usages)
    assert output["usage"]["output_tokens"] == sum(usage.output for usage in usages)

    requests = fake.requests_for(case)
    assert len(requests) == 2, [(r.method, r.path) for r in requests]
    if isinstance(recipe, TranslatedRecipe):
        assert_chat_turns(recipe, requests, command, printed)
    else:
        assert_anthropic_turns(requests, command, printed)
    for request in requests:
        assert request.headers["user-agent"].startswith("claude-cli/")

    lines = gateway.wait_log_lines(2, case)
    assert len(lines) == 2
    for line, usage in zip(lines, usages, strict=True):
        assert (line["request"]["method"], line["request"]["uri"]) == ("POST", "/v1/messages?beta=true")
        assert line["request"]["headers"]["x-api-key"] == "REDACTED"
        assert line["response"]["status"] == 200
        assert_meta(recipe, line, "stream")
        assert line["ai"]["proxy"]["meta"]["request_model"] == (recipe.request_model or CLI_MODEL)
        assert_log_usage(line, usage.prompt_tokens, usage.output, cached=usage.cache_read)
    log = gateway.log_text()
    for key in (CLIENT_KEY, *PROVIDER_KEYS):
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


def assert_chat_turns(recipe: TranslatedRecipe, requests, command: str, printed: str) -> None:
    """The translated turns: the provider's path and credential, the recipe's model and
    settings; turn 2 carries the call and a role "tool" message with the real output."""
    for request in requests:
        assert_sent_to_provider(recipe, request)
        assert request.body["model"] == recipe.request_model
        assert request.body["stream"] is True
        assert request.body["messages"][0]["role"] == "system"
        assert "Bash" in {tool["function"]["name"] for tool in request.body["tools"]}
        assert fields(request.body, recipe.cli_body) == recipe.cli_body
        assert "enable_thinking" not in request.body  # the CLI's adaptive thinking is not sent
    first, second = (request.body for request in requests)
    assert not any(m["role"] in ("assistant", "tool") for m in first["messages"])
    tool = assert_chat_tool_round_trip(first, second, command, printed, TOOL_ID, "".join(FIRST_TEXT))
    assert not tool["content"].startswith("Error")
