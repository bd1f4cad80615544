"""Anthropic Messages request -> OpenAI Chat Completions request (OpenAI API reference,
"Chat Completions - Create"; Anthropic API reference, "Messages")."""

from __future__ import annotations

import hashlib
from typing import Any, Literal

import msgspec
from msgspec import UNSET, Raw, Struct, UnsetType

from aimw.errors import GatewayError
from aimw.translators.anthropic import messages as a


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

_request_encoder = msgspec.json.Encoder()

_EMPTY_SCHEMA = Raw(b'{"type":"object","properties":{}}')


def _image_part(source: a.ImageSource) -> dict[str, Any]:
    if source.type == "base64" and source.data is not UNSET:
        media_type = source.media_type if source.media_type is not UNSET else "image/png"
        return {"type": "image_url", "image_url": {"url": f"data:{media_type};base64,{source.data}"}}
    if source.type == "url" and source.url is not UNSET:
        return {"type": "image_url", "image_url": {"url": source.url}}
    raise GatewayError(400, f"image source type {source.type!r} cannot be sent to an OpenAI Chat Completions provider")


def _document_part(block: a.DocumentBlock) -> dict[str, Any]:
    source = block.source
    if source.type == "text" and source.data is not UNSET:
        return {"type": "text", "text": source.data}
    if source.type == "base64" and source.data is not UNSET:
        media_type = source.media_type if source.media_type is not UNSET else "application/pdf"
        title = block.title if isinstance(block.title, str) else "document.pdf"
        return {"type": "file", "file": {"filename": title, "file_data": f"data:{media_type};base64,{source.data}"}}
    if source.type == "url" and source.url is not UNSET:
        return {"type": "text", "text": source.url}
    raise GatewayError(
        400, f"document source type {source.type!r} cannot be sent to an OpenAI Chat Completions provider"
    )


def _block_text(block: a.ContentBlock | a.ToolResultContentBlock) -> str | None:
    """The text form of a block that is text to a Chat Completions model, else None.

    A tool_reference (tool search loaded a deferred tool; the tool itself is sent by
    ``_tools``) says the tool is available; a search_result is its title, source and texts;
    server_tool_use and web_search / web_fetch results ran on Anthropic's servers, so they
    are told as text (their JSON), never as Chat Completions tool calls.
    """
    if isinstance(block, a.TextBlock):
        return block.text
    if isinstance(block, a.ToolReferenceBlock):
        return f"Tool {block.tool_name} is now available."
    if isinstance(block, a.SearchResultBlock):
        return "\n\n".join(
            [f"Search result: {block.title}\nSource: {block.source}", *(text.text for text in block.content)]
        )
    if isinstance(block, a.ServerToolUseBlock):
        return f"Called server tool {block.name} (id {block.id}) with input {bytes(block.input).decode()}"
    if isinstance(block, (a.WebSearchToolResultBlock, a.WebFetchToolResultBlock)):
        return f"Result of server tool call {block.tool_use_id}: {bytes(block.content).decode()}"
    return None


def _parts(blocks: list[Any]) -> list[dict[str, Any]]:
    """Text-like (``_block_text``), image and document blocks -> Chat Completions content
    parts (others are skipped)."""
    parts: list[dict[str, Any]] = []
    for block in blocks:
        text = _block_text(block)
        if text is not None:
            parts.append({"type": "text", "text": text})
        elif isinstance(block, a.ImageBlock):
            parts.append(_image_part(block.source))
        elif isinstance(block, a.DocumentBlock):
            parts.append(_document_part(block))
    return parts


def _content(parts: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    """A plain string when every part is text (the form every compatible server accepts)."""
    if all(part["type"] == "text" for part in parts):
        return "\n\n".join(part["text"] for part in parts)
    return parts


def _tool_result_text(block: a.ToolResultBlock) -> tuple[str, list[dict[str, Any]]]:
    """(text for the role "tool" message, image parts that must travel in a user message)."""
    if isinstance(block.content, str):
        text, images = block.content, []
    else:
        parts = _parts(block.content)
        text = "\n\n".join(part["text"] for part in parts if part["type"] == "text")
        images = [part for part in parts if part["type"] != "text"]
    if block.is_error:
        text = f"Error: {text}" if text else "Error"
    return text, images


def _assistant(message: a.Message, thinking_format: ThinkingFormat) -> ChatMessage:
    if isinstance(message.content, str):
        return ChatMessage(role="assistant", content=message.content)
    texts: list[str] = []
    thoughts: list[str] = []
    calls: list[ToolCall] = []
    for block in message.content:
        text = _block_text(block)
        if text is not None:
            texts.append(text)
        elif isinstance(block, a.ToolUseBlock):
            calls.append(ToolCall(id=block.id, function=FunctionCall(block.name, bytes(block.input).decode())))
        elif isinstance(block, a.ThinkingBlock) and block.thinking:
            thoughts.append(block.thinking)
    text = "\n\n".join(texts)
    chat = ChatMessage(role="assistant", content=text or None) if calls else ChatMessage(role="assistant", content=text)
    if calls:
        chat.tool_calls = calls
    if thoughts and thinking_format == "qwen":
        chat.reasoning_content = "\n\n".join(thoughts)
    return chat


def _messages(request: a.MessagesRequest, thinking_format: ThinkingFormat) -> list[ChatMessage]:
    """Chat Completions wants the role "tool" answers right after the assistant's tool calls,
    so a system turn that comes between (Claude Code sends some) waits until they are out."""
    out: list[ChatMessage] = []
    system = "\n\n".join(a.system_texts(request))
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


def _turn(message: a.Message, pending_calls: list[str]) -> tuple[list[ChatMessage], list[ChatMessage]]:
    """A user or system turn -> (role "tool" answers to ``pending_calls``, in call order;
    the turn's other content). A tool_result that answers no pending call becomes text."""
    if isinstance(message.content, str):
        return _unanswered(pending_calls), [ChatMessage(role=message.role, content=message.content)]
    results: dict[str, a.ToolResultBlock] = {}
    others: list[Any] = []
    for block in message.content:
        if isinstance(block, a.ToolResultBlock):
            results[block.tool_use_id] = block
        else:
            others.append(block)
    answers: list[ChatMessage] = []
    images: list[dict[str, Any]] = []
    for call_id in pending_calls:
        result = results.pop(call_id, None)
        if result is None:
            answers.extend(_unanswered([call_id]))
            continue
        text, result_images = _tool_result_text(result)
        answers.append(ChatMessage(role="tool", content=text, tool_call_id=call_id))
        images.extend(result_images)
    parts: list[dict[str, Any]] = []
    for orphan in results.values():  # a tool_result whose tool_use is not in the previous turn
        text, result_images = _tool_result_text(orphan)
        parts.append({"type": "text", "text": f"Result of tool call {orphan.tool_use_id}: {text}"})
        parts.extend(result_images)
    parts.extend(images)
    parts.extend(_parts(others))
    return answers, [ChatMessage(role=message.role, content=_content(parts))] if parts else []


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
    the model's own default. Anthropic-only fields (thinking, cache_control,
    context_management, output_config, top_k, metadata other than user_id, server tools and
    deferred tools that tool search has not loaded) are not sent. ``metadata.user_id`` ->
    ``user`` (hashed past 64 characters).

    Raises:
        GatewayError: 400 for content that has no Chat Completions form.
    """
    chat = ChatRequest(model=model, messages=_messages(request, thinking_format), stream=request.stream)
    if request.stream:
        chat.stream_options = StreamOptions()
    if request.max_tokens is not UNSET:
        setattr(chat, max_tokens_field, request.max_tokens)
    chat.temperature = request.temperature
    chat.top_p = request.top_p
    if request.stop_sequences:
        chat.stop = request.stop_sequences
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
