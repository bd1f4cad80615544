"""Anthropic Messages request -> OpenAI Chat Completions request (OpenAI API reference,
"Chat Completions - Create"; Anthropic API reference, "Messages")."""

from __future__ import annotations

import hashlib
import logging
from typing import Any, Literal

import msgspec
from msgspec import UNSET, Raw, Struct, UnsetType

from aimw.errors import GatewayError
from aimw.translators.anthropic import messages as a
from aimw.translators.openai_chat.content import content_parts, message_content, tool_result_text


class FunctionCall(Struct):
    name: str
    arguments: str


class ToolCall(Struct):
    id: str
    function: FunctionCall
    type: str = "function"


class ChatMessage(Struct, omit_defaults=True):
    role: str
    content: str | list[dict[str, Any]] | None = None
    reasoning_content: str | UnsetType = UNSET
    tool_calls: list[ToolCall] | UnsetType = UNSET
    tool_call_id: str | UnsetType = UNSET


class FunctionDefinition(Struct, omit_defaults=True):
    name: str
    parameters: Raw
    description: str | UnsetType = UNSET


class ChatTool(Struct):
    function: FunctionDefinition
    type: str = "function"


class StreamOptions(Struct):
    include_usage: bool = True


class ChatRequest(Struct, omit_defaults=True):
    model: str
    messages: list[ChatMessage]
    stream: bool = False
    stream_options: StreamOptions | UnsetType = UNSET
    max_tokens: int | UnsetType = UNSET
    max_completion_tokens: int | UnsetType = UNSET
    temperature: float | UnsetType = UNSET
    top_p: float | UnsetType = UNSET
    stop: list[str] | UnsetType = UNSET
    tools: list[ChatTool] | UnsetType = UNSET
    tool_choice: str | dict[str, Any] | UnsetType = UNSET
    parallel_tool_calls: bool | UnsetType = UNSET
    user: str | UnsetType = UNSET
    enable_thinking: bool | UnsetType = UNSET
    thinking_budget: int | UnsetType = UNSET


ThinkingFormat = Literal["none", "qwen"]
"""How a provider takes Anthropic thinking: ``none`` (not sent) or ``qwen`` (DashScope /
Qwen3: ``enable_thinking`` + ``thinking_budget``, earlier thinking as the assistant's
``reasoning_content``; Alibaba Cloud Model Studio docs, "Deep thinking")."""

SystemTurns = Literal["inline", "merge"]
"""Where Claude Code's ``role: "system"`` turns inside messages[] go: ``inline`` (role
"system" messages where they stand) or ``merge`` (into the leading system message, for
models whose chat template takes only a leading one)."""

logger = logging.getLogger("aimw.translators.openai_chat")

MAX_STOP_SEQUENCES = 4  # OpenAI's limit on ``stop`` ("Up to 4 sequences")
MAX_TOOL_CALL_ID = 40  # characters: OpenAI refuses a longer tool call id ("maximum length 40")
_request_encoder = msgspec.json.Encoder()

_EMPTY_SCHEMA = Raw(b'{"type":"object","properties":{}}')


def _assistant(message: a.Message, thinking_format: ThinkingFormat) -> ChatMessage:
    if isinstance(message.content, str):
        return ChatMessage(role="assistant", content=message.content)
    texts: list[str] = []
    thoughts: list[str] = []
    calls: list[ToolCall] = []
    for block in message.content:
        text = a.block_text(block)
        if text is not None:
            texts.append(text)
        elif isinstance(block, a.ToolUseBlock):
            calls.append(
                ToolCall(
                    id=_call_id(block.id), function=FunctionCall(block.name, a.raw_text(block.input, "tool_use.input"))
                )
            )
        elif isinstance(block, a.ThinkingBlock) and block.thinking:
            thoughts.append(block.thinking)
    text = "\n\n".join(texts)
    chat = ChatMessage(role="assistant", content=text or None) if calls else ChatMessage(role="assistant", content=text)
    if calls:
        chat.tool_calls = calls
    if thoughts and thinking_format == "qwen":
        chat.reasoning_content = "\n\n".join(thoughts)
    return chat


def _messages(
    request: a.MessagesRequest, thinking_format: ThinkingFormat, system_turns: SystemTurns
) -> list[ChatMessage]:
    """Chat Completions wants the role "tool" answers right after the assistant's tool calls,
    so an inline system turn that comes between (Claude Code sends some) waits until they
    are out; merged system turns (``_merged_system``) leave messages[] altogether."""
    out: list[ChatMessage] = []
    merge = system_turns == "merge"
    system = "\n\n".join(_merged_system(request) if merge else a.system_texts(request))
    if system:
        out.append(ChatMessage(role="system", content=system))
    pending_calls: list[str] = []  # tool_call ids of the last assistant turn, in order
    held: list[ChatMessage] = []  # system turns met while pending_calls await their answers
    for message in request.messages:
        if message.role == "assistant":
            out.extend(_unanswered(pending_calls))
            out.extend(held)
            chat = _assistant(message, thinking_format)
            out.append(chat)
            pending_calls = [call.id for call in chat.tool_calls] if chat.tool_calls else []
            held = []
            continue
        if message.role == "system" and merge:
            continue
        if message.role == "system" and pending_calls:
            held.extend(_turn(message, [])[1])
            continue
        answers, rest = _turn(message, pending_calls)
        out.extend(answers)
        out.extend(held)
        out.extend(rest)
        pending_calls, held = [], []
    out.extend(_unanswered(pending_calls))
    out.extend(held)
    return out


def _merged_system(request: a.MessagesRequest) -> list[str]:
    """The top-level system texts, then each system turn's texts (its text-like blocks,
    ``a.block_text``), in order; empty texts are left out."""
    texts = a.system_texts(request)
    for message in request.messages:
        if message.role != "system":
            continue
        if isinstance(message.content, str):
            texts.append(message.content)
        else:
            texts.extend(text for text in map(a.block_text, message.content) if text is not None)
    return [text for text in texts if text]


def _turn(message: a.Message, pending_calls: list[str]) -> tuple[list[ChatMessage], list[ChatMessage]]:
    """A user or system turn -> (role "tool" answers to ``pending_calls``, in call order;
    the turn's other content). A tool_result that answers no pending call becomes text."""
    if isinstance(message.content, str):
        return _unanswered(pending_calls), [ChatMessage(role=message.role, content=message.content)]
    results: dict[str, a.ToolResultBlock] = {}
    others: list[Any] = []
    for block in message.content:
        if isinstance(block, a.ToolResultBlock):
            results[_call_id(block.tool_use_id)] = block
        else:
            others.append(block)
    answers: list[ChatMessage] = []
    images: list[dict[str, Any]] = []
    for call_id in pending_calls:
        result = results.pop(call_id, None)
        if result is None:
            answers.extend(_unanswered([call_id]))
            continue
        text, result_images = tool_result_text(result)
        answers.append(ChatMessage(role="tool", content=text, tool_call_id=call_id))
        images.extend(result_images)
    parts: list[dict[str, Any]] = []
    for orphan in results.values():  # a tool_result whose tool_use is not in the previous turn
        text, result_images = tool_result_text(orphan)
        parts.append({"type": "text", "text": f"Result of tool call {orphan.tool_use_id}: {text}"})
        parts.extend(result_images)
    parts.extend(images)
    parts.extend(content_parts(others))
    return answers, [ChatMessage(role=message.role, content=message_content(parts))] if parts else []


def _call_id(tool_use_id: str) -> str:
    """A tool_use id as a tool call id: as it is up to MAX_TOOL_CALL_ID characters, else
    ``toolu_`` and 34 hex digits of its SHA-256 (stable: its tool message says the same id).
    Anthropic ids are about 30 characters; other providers' can be longer (vLLM's 46)."""
    if len(tool_use_id) <= MAX_TOOL_CALL_ID:
        return tool_use_id
    return "toolu_" + hashlib.sha256(tool_use_id.encode()).hexdigest()[:34]


def _unanswered(call_ids: list[str]) -> list[ChatMessage]:
    """Chat Completions rejects a tool call with no tool message after it; say it had none."""
    return [
        ChatMessage(role="tool", content="No result was provided for this tool call.", tool_call_id=i) for i in call_ids
    ]


def _tools(request: a.MessagesRequest) -> list[ChatTool]:
    """The request's client tools (messages.client_tools) as Chat Completions functions."""
    tools = []
    for tool in a.client_tools(request):
        parameters = tool.input_schema if tool.input_schema is not UNSET else _EMPTY_SCHEMA
        tools.append(ChatTool(FunctionDefinition(name=tool.name, parameters=parameters, description=tool.description)))
    return tools


MAX_USER_CHARS = 64


def _end_user(user_id: str) -> str:
    """OpenAI's ``user`` is a short stable end-user id; Claude Code's metadata.user_id is a
    JSON string of device and session ids (about 150 characters). A longer id is sent as
    its SHA-256 hex digest: as stable, 64 characters, and without the raw ids."""
    if len(user_id) <= MAX_USER_CHARS:
        return user_id
    return hashlib.sha256(user_id.encode()).hexdigest()


def _tool_choice(choice: a.ToolChoice) -> str | dict[str, Any]:
    if choice.type == "any":
        return "required"
    if choice.type == "tool":
        if choice.name is UNSET:
            raise GatewayError(400, "tool_choice of type 'tool' needs a name")
        return {"type": "function", "function": {"name": choice.name}}
    return choice.type


def request_from_anthropic(
    request: a.MessagesRequest,
    model: str,
    *,
    max_tokens_field: str = "max_tokens",
    thinking_format: ThinkingFormat = "none",
    system_turns: SystemTurns = "inline",
) -> bytes:
    """Translate an Anthropic Messages request into a Chat Completions request body (JSON bytes).

    ``model`` is the upstream model name. ``max_tokens_field`` is ``max_tokens`` or
    ``max_completion_tokens`` (OpenAI's reasoning models and Azure deployments of them
    accept only the latter). ``thinking_format`` says how thinking is sent (ThinkingFormat):
    with ``qwen``, a non-streaming request always gets ``enable_thinking: false`` (DashScope's
    open-source Qwen3 models refuse a non-streaming call without it: "parameter.enable_thinking
    must be set to false for non-streaming calls"); on a stream, thinking ``enabled`` ->
    ``enable_thinking: true`` and ``thinking_budget`` (budget_tokens, at most max_tokens),
    ``disabled`` -> ``enable_thinking: false``, ``adaptive`` (Claude Code's default) leaves
    the model's own default. ``system_turns`` (SystemTurns): ``inline`` sends each of
    Claude Code's ``role: "system"`` turns as a role "system" message where it stands (after
    the role "tool" answers it would otherwise split from their calls); ``merge`` joins
    their texts, in order, to the leading system message (after the top-level ``system``,
    each text separated by a blank line, as the top-level texts are) and sends no other
    system message. Anthropic-only fields (thinking, cache_control,
    context_management, output_config, top_k, metadata other than user_id, server tools and
    deferred tools that tool search has not loaded) are not sent. ``metadata.user_id`` ->
    ``user`` (hashed past 64 characters). A tool_use id longer than 40 characters (OpenAI's
    limit) is sent as a stable 40-character digest of it, in its call and its tool message.
    ``stop_sequences`` -> ``stop``: OpenAI takes at most
    4, so the first 4 are sent and the number dropped is logged (a warning).

    Raises:
        GatewayError: 400 for content that has no Chat Completions form.
    """
    chat = ChatRequest(model=model, messages=_messages(request, thinking_format, system_turns), stream=request.stream)
    if request.stream:
        chat.stream_options = StreamOptions()
    if request.max_tokens is not UNSET:
        setattr(chat, max_tokens_field, request.max_tokens)
    chat.temperature = request.temperature
    chat.top_p = request.top_p
    if request.stop_sequences:
        chat.stop = _stop(request.stop_sequences)
    tools = _tools(request)
    if tools:
        chat.tools = tools
        if request.tool_choice is not UNSET:
            chat.tool_choice = _tool_choice(request.tool_choice)
            if request.tool_choice.disable_parallel_tool_use:
                chat.parallel_tool_calls = False
    if request.metadata is not UNSET and isinstance(request.metadata.user_id, str):
        chat.user = _end_user(request.metadata.user_id)
    if thinking_format == "qwen":
        _qwen_thinking(chat, request)
    return _request_encoder.encode(chat)


def _stop(stop_sequences: list[str]) -> list[str]:
    """The first MAX_STOP_SEQUENCES; the number dropped is logged (a warning)."""
    if len(stop_sequences) > MAX_STOP_SEQUENCES:
        dropped = len(stop_sequences) - MAX_STOP_SEQUENCES
        logger.warning("Chat Completions takes at most %d stop sequences: %d dropped", MAX_STOP_SEQUENCES, dropped)
    return stop_sequences[:MAX_STOP_SEQUENCES]


def _qwen_thinking(chat: ChatRequest, request: a.MessagesRequest) -> None:
    """``enable_thinking`` / ``thinking_budget`` as request_from_anthropic documents them."""
    if not request.stream:
        chat.enable_thinking = False
    elif request.thinking is UNSET:
        return
    elif request.thinking.type == "enabled":
        chat.enable_thinking = True
        budget = request.thinking.budget_tokens
        if budget is not UNSET and request.max_tokens is not UNSET:
            budget = min(budget, request.max_tokens)  # a capped max_tokens caps the budget too
        chat.thinking_budget = budget
    elif request.thinking.type == "disabled":
        chat.enable_thinking = False
