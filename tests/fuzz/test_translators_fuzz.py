"""Property: any valid Anthropic Messages request translates into a request the provider's
API accepts, or is refused with aimw's own Anthropic-format error.

The requests come from tests/fuzz/anthropic_requests.py (valid ones, and valid ones bent past
Anthropic's rules); what the providers accept is described in tests/fuzz/chat_schema.py
(OpenAI Chat Completions, with DashScope's Qwen extensions) and tests/fuzz/gemini_schema.py
(Gemini generateContent), and the fake providers' own checks (tests/fakes) must find nothing
either. For a valid request a GatewayError is allowed only when it holds a form no provider
can take (anthropic_requests.unsendable); any refusal is a 4xx invalid_request_error, and
no other exception may escape. Bounded by tests/fuzz/budget.py.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from aimw.errors import GatewayError
from aimw.translators import gemini
from aimw.translators import openai_chat as oc
from aimw.translators.anthropic import messages as a
from tests.fakes.gemini_server import generate_content_problems
from tests.fakes.openai_chat_server import DASHSCOPE, HUGGINGFACE, chat_request_problems
from tests.fuzz.anthropic_requests import bent_requests, messages_requests, unsendable
from tests.fuzz.budget import fuzz
from tests.fuzz.chat_schema import AssistantMessage, SystemMessage, ToolMessage, assert_chat_request
from tests.fuzz.gemini_schema import FunctionCall, assert_gemini_request

MODEL = "org/upstream-model"


def decoded(body: dict[str, Any]) -> a.MessagesRequest:
    """The request as TranslateMiddleware has it (a generated request always decodes)."""
    return a.decode_request(json.dumps(body).encode())


def assert_refusal_allowed(body: dict[str, Any], error: GatewayError) -> None:
    assert unsendable(body), f"a valid request was refused: {error.message}"
    assert 400 <= error.status < 500 and error.error_type == "invalid_request_error", (error.status, error.error_type)


@fuzz(150)
@given(
    messages_requests(),
    st.sampled_from(["max_tokens", "max_completion_tokens"]),
    st.sampled_from(["none", "qwen"]),
    st.sampled_from(["inline", "merge"]),
)
def test_any_request_becomes_a_chat_completions_request(
    body: dict[str, Any], max_tokens_field: Any, thinking: Any, system_turns: Any
) -> None:
    try:
        out = oc.request_from_anthropic(
            decoded(body),
            MODEL,
            max_tokens_field=max_tokens_field,
            thinking_format=thinking,
            system_turns=system_turns,
        )
    except GatewayError as error:
        assert_refusal_allowed(body, error)
        return
    chat = assert_chat_request(out, qwen=thinking == "qwen")
    assert chat_request_problems(json.loads(out), DASHSCOPE if thinking == "qwen" else HUGGINGFACE) == []
    assert chat.model == MODEL
    assert (chat.stream is True) is body.get("stream", False)
    if "max_tokens" in body:
        assert getattr(chat, max_tokens_field) == body["max_tokens"]
    system = [i for i, m in enumerate(chat.messages) if isinstance(m, SystemMessage)]
    if system_turns == "merge":
        assert system in ([], [0]), "merge leaves one leading system message"
    calls = [c.id for m in chat.messages if isinstance(m, AssistantMessage) for c in m.tool_calls or ()]
    uses = [
        b for m in body["messages"] if m["role"] == "assistant" and isinstance(m["content"], list) for b in m["content"]
    ]
    assert len(calls) == sum(1 for b in uses if b["type"] == "tool_use"), "every tool_use is a tool call"
    answers = [m.tool_call_id for m in chat.messages if isinstance(m, ToolMessage)]
    assert sorted(answers) == sorted(calls)


@fuzz(150)
@given(messages_requests())
def test_any_request_becomes_a_gemini_request(body: dict[str, Any]) -> None:
    try:
        out = gemini.request_from_anthropic(decoded(body))
    except GatewayError as error:
        assert_refusal_allowed(body, error)
        return
    request = assert_gemini_request(out)
    assert generate_content_problems(json.loads(out)) == []
    calls = [
        p.function_call.name for c in request.contents for p in c.parts if isinstance(p.function_call, FunctionCall)
    ]
    uses = [
        b["name"]
        for m in body["messages"]
        if m["role"] == "assistant" and isinstance(m["content"], list)
        for b in m["content"]
        if b["type"] == "tool_use"
    ]
    assert calls == uses, "every tool_use is a functionCall, in order"


@fuzz(40)
@given(messages_requests(files=False))
def test_requests_without_unsendable_forms_are_never_refused(body: dict[str, Any]) -> None:
    """The strategy's own check: with files=False nothing is unsendable, so both must translate."""
    assert not unsendable(body)
    request = decoded(body)
    assert_chat_request(oc.request_from_anthropic(request, MODEL))
    assert_gemini_request(gemini.request_from_anthropic(request))


@fuzz(100)
@given(bent_requests(), st.sampled_from(["inline", "merge"]))
def test_requests_past_the_rules_still_translate_or_are_refused_cleanly(
    body: dict[str, Any], system_turns: Any
) -> None:
    """Unanswered calls, orphan results, empty texts and turns, odd openings: each translator
    sends a valid request or refuses with a 4xx invalid_request_error, nothing else."""
    request = decoded(body)
    for translate, check in (
        (lambda: oc.request_from_anthropic(request, MODEL, system_turns=system_turns), assert_chat_request),
        (lambda: gemini.request_from_anthropic(request), assert_gemini_request),
    ):
        try:
            out = translate()
        except GatewayError as error:
            assert 400 <= error.status < 500 and error.error_type == "invalid_request_error", error.message
            continue
        check(out)
