"""Anthropic Messages <-> OpenAI Chat Completions, wire to wire.

Sources: OpenAI API reference, "Chat Completions" (create, the chat completion object,
the chat completion chunk object, ``stream_options.include_usage``); Anthropic API
reference, "Messages" and "Streaming Messages". Also spoken by Hugging Face's router and
TGI, Azure OpenAI, DashScope's compatible mode, vLLM, Ollama, llama.cpp and LM Studio;
``reasoning_content`` (DeepSeek, Qwen, vLLM) and ``reasoning`` (vLLM, OpenRouter) carry
thinking.

Entry points:
    request_from_anthropic(request, model, ...) -> bytes   (Chat Completions JSON body)
    response_to_anthropic(body, fallback_model) -> (bytes, reasoning tokens)
    ChatStreamTranslator: feed(data) -> bytes, finish() -> bytes (Anthropic SSE bytes)
"""

from __future__ import annotations

import hashlib
import logging
import os
from types import MappingProxyType
from typing import Literal

import msgspec
from msgspec import UNSET, Raw, Struct, UnsetType

from aimw.errors import GatewayError, error_type_for_status, provider_error_message, redact
from aimw.translators import anthropic as a

logger = logging.getLogger("aimw.translators.openai_chat")

# ---------------------------------------------------------------- request Structs


class FunctionCall(Struct):
    name: str
    arguments: str


class ToolCall(Struct):
    id: str
    function: FunctionCall
    type: str = "function"


class ChatMessage(Struct, omit_defaults=True):
    role: str
    content: str | list[dict] | None = None
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
    tool_choice: str | dict | UnsetType = UNSET
    parallel_tool_calls: bool | UnsetType = UNSET
    user: str | UnsetType = UNSET
    enable_thinking: bool | UnsetType = UNSET
    thinking_budget: int | UnsetType = UNSET


ThinkingFormat = Literal["none", "qwen"]
"""How a provider takes Anthropic thinking: ``none`` (not sent) or ``qwen`` (DashScope /
Qwen3: ``enable_thinking`` + ``thinking_budget``, earlier thinking as the assistant's
``reasoning_content``; Alibaba Cloud Model Studio docs, "Deep thinking")."""

_request_encoder = msgspec.json.Encoder()

_EMPTY_OBJECT = Raw(b"{}")
_EMPTY_SCHEMA = Raw(b'{"type":"object","properties":{}}')


def _image_part(source: a.ImageSource) -> dict:
    if source.type == "base64" and source.data is not UNSET:
        media_type = source.media_type if source.media_type is not UNSET else "image/png"
        return {"type": "image_url", "image_url": {"url": f"data:{media_type};base64,{source.data}"}}
    if source.type == "url" and source.url is not UNSET:
        return {"type": "image_url", "image_url": {"url": source.url}}
    raise GatewayError(400, f"image source type {source.type!r} cannot be sent to an OpenAI Chat Completions provider")


def _document_part(block: a.DocumentBlock) -> dict:
    source = block.source
    if source.type == "text" and source.data is not UNSET:
        return {"type": "text", "text": source.data}
    if source.type == "base64" and source.data is not UNSET:
        media_type = source.media_type if source.media_type is not UNSET else "application/pdf"
        title = block.title if isinstance(block.title, str) else "document.pdf"
        return {"type": "file", "file": {"filename": title, "file_data": f"data:{media_type};base64,{source.data}"}}
    if source.type == "url" and source.url is not UNSET:
        return {"type": "text", "text": source.url}
    raise GatewayError(400, f"document source type {source.type!r} cannot be sent to an OpenAI Chat Completions provider")


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
        return "\n\n".join([f"Search result: {block.title}\nSource: {block.source}", *(text.text for text in block.content)])
    if isinstance(block, a.ServerToolUseBlock):
        return f"Called server tool {block.name} (id {block.id}) with input {bytes(block.input).decode()}"
    if isinstance(block, (a.WebSearchToolResultBlock, a.WebFetchToolResultBlock)):
        return f"Result of server tool call {block.tool_use_id}: {bytes(block.content).decode()}"
    return None


def _parts(blocks: list) -> list[dict]:
    """Text-like (``_block_text``), image and document blocks -> Chat Completions content
    parts (others are skipped)."""
    parts: list[dict] = []
    for block in blocks:
        text = _block_text(block)
        if text is not None:
            parts.append({"type": "text", "text": text})
        elif isinstance(block, a.ImageBlock):
            parts.append(_image_part(block.source))
        elif isinstance(block, a.DocumentBlock):
            parts.append(_document_part(block))
    return parts


def _content(parts: list[dict]) -> str | list[dict]:
    """A plain string when every part is text (the form every compatible server accepts)."""
    if all(part["type"] == "text" for part in parts):
        return "\n\n".join(part["text"] for part in parts)
    return parts


def _tool_result_text(block: a.ToolResultBlock) -> tuple[str, list[dict]]:
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
    others: list = []
    for block in message.content:
        if isinstance(block, a.ToolResultBlock):
            results[block.tool_use_id] = block
        else:
            others.append(block)
    answers: list[ChatMessage] = []
    images: list[dict] = []
    for call_id in pending_calls:
        result = results.pop(call_id, None)
        if result is None:
            answers.extend(_unanswered([call_id]))
            continue
        text, result_images = _tool_result_text(result)
        answers.append(ChatMessage(role="tool", content=text, tool_call_id=call_id))
        images.extend(result_images)
    parts: list[dict] = []
    for orphan in results.values():  # a tool_result whose tool_use is not in the previous turn
        text, result_images = _tool_result_text(orphan)
        parts.append({"type": "text", "text": f"Result of tool call {orphan.tool_use_id}: {text}"})
        parts.extend(result_images)
    parts.extend(images)
    parts.extend(_parts(others))
    return answers, [ChatMessage(role=message.role, content=_content(parts))] if parts else []


def _unanswered(call_ids: list[str]) -> list[ChatMessage]:
    """Chat Completions rejects a tool call with no tool message after it; say it had none."""
    return [ChatMessage(role="tool", content="No result was provided for this tool call.", tool_call_id=i) for i in call_ids]


def _loaded_tools(request: a.MessagesRequest) -> set[str]:
    """Names of the deferred tools that tool search loaded: the tool_reference blocks in the
    messages' tool_results (Anthropic docs, "Tool search tool")."""
    names: set[str] = set()
    for message in request.messages:
        if isinstance(message.content, str):
            continue
        for block in message.content:
            if isinstance(block, a.ToolResultBlock) and not isinstance(block.content, str):
                names.update(inner.tool_name for inner in block.content if isinstance(inner, a.ToolReferenceBlock))
    return names


def _tools(request: a.MessagesRequest) -> list[ChatTool]:
    """Client tools only: a deferred tool (``defer_loading``) is shown to the model once
    tool search has loaded it (a tool_reference names it), as Anthropic does; server
    tools (``type`` other than custom) run only on Anthropic's servers."""
    if request.tools is UNSET:
        return []
    loaded = _loaded_tools(request)
    tools = []
    for tool in request.tools:
        if (tool.defer_loading and tool.name not in loaded) or tool.type not in (UNSET, None, "custom"):
            continue
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


def _tool_choice(choice: a.ToolChoice) -> str | dict:
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


# ---------------------------------------------------------------- responses

FINISH_TO_STOP_REASON = MappingProxyType(
    {
        "stop": "end_turn",
        "eos_token": "end_turn",  # Hugging Face TGI
        "stop_sequence": "end_turn",  # TGI: a stop sequence matched
        "length": "max_tokens",
        "tool_calls": "tool_use",
        "function_call": "tool_use",
        "content_filter": "refusal",
    }
)


def stop_reason_for(finish_reason: str | None, tool_used: bool) -> str:
    """DESIGN §6: tool_use whenever a tool_use block was emitted (unless max_tokens), and
    only then (Anthropic never says tool_use without a tool_use block); an absent or empty
    finish_reason is end_turn; an unknown one becomes end_turn and is logged."""
    if not finish_reason:  # None, or "" (SGLang 0.4.x and older Ollama send it on every chunk)
        stop_reason = "end_turn"
    else:
        stop_reason = FINISH_TO_STOP_REASON.get(finish_reason)
        if stop_reason is None:
            logger.warning("unknown finish_reason %r mapped to end_turn", finish_reason)
            stop_reason = "end_turn"
    if tool_used and stop_reason != "max_tokens":
        return "tool_use"
    if stop_reason == "tool_use":  # finish_reason tool_calls, yet no tool call came through
        return "end_turn"
    return stop_reason


class PromptTokensDetails(Struct):
    cached_tokens: int | None = None


class CompletionTokensDetails(Struct):
    reasoning_tokens: int | None = None


class ChatUsage(Struct):
    prompt_tokens: int | None = 0
    completion_tokens: int | None = 0
    prompt_tokens_details: PromptTokensDetails | None = None
    completion_tokens_details: CompletionTokensDetails | None = None


def reasoning_tokens_of(usage: ChatUsage | None) -> int:
    """``completion_tokens_details.reasoning_tokens`` (tokens; part of completion_tokens), else 0.
    Anthropic's usage has no such field, so it travels beside the translated answer."""
    if usage is None or usage.completion_tokens_details is None:
        return 0
    return usage.completion_tokens_details.reasoning_tokens or 0


def usage_to_anthropic(usage: ChatUsage | None) -> a.ResponseUsage:
    """OpenAI's prompt_tokens include cached tokens; Anthropic's input_tokens exclude cache reads."""
    if usage is None:
        return a.ResponseUsage()
    cached = (usage.prompt_tokens_details.cached_tokens or 0) if usage.prompt_tokens_details else 0
    return a.ResponseUsage(
        input_tokens=max((usage.prompt_tokens or 0) - cached, 0),
        output_tokens=usage.completion_tokens or 0,
        cache_read_input_tokens=cached,
    )


class ResponseFunction(Struct):
    """``arguments`` is a JSON string, or a JSON object as TGI and some llama.cpp builds send."""

    name: str | None = None
    arguments: str | dict | None = None


class ResponseToolCall(Struct):
    id: str | None = None
    function: ResponseFunction | None = None


class ResponseMessage(Struct):
    content: str | None = None
    reasoning_content: str | None = None
    reasoning: str | None = None
    refusal: str | None = None
    tool_calls: list[ResponseToolCall] | None = None


class Choice(Struct):
    message: ResponseMessage | None = None
    finish_reason: str | None = None


class ChunkError(Struct):
    message: str | None = None
    code: int | str | None = None


class ChatCompletion(Struct):
    id: str | None = None
    model: str | None = None
    choices: list[Choice] | None = None
    usage: ChatUsage | None = None
    error: ChunkError | str | None = None  # some servers answer 200 with only an error object


_completion_decoder = msgspec.json.Decoder(ChatCompletion)


def new_tool_use_id() -> str:
    """A tool_use id for a call the provider gave none (128 random bits, as uuid4 has)."""
    return "toolu_" + os.urandom(16).hex()


def new_message_id() -> str:
    return "msg_" + os.urandom(16).hex()


def tool_input(arguments: str | dict | None) -> Raw:
    """Tool call arguments (a JSON string, or an object taken as it is) as the tool_use
    ``input`` object; ``{}`` when absent or not a JSON object (logged, as the Anthropic SDK
    does for invalid partial JSON)."""
    if isinstance(arguments, dict):
        return Raw(msgspec.json.encode(arguments))
    if not arguments:
        return _EMPTY_OBJECT
    try:
        if isinstance(msgspec.json.decode(arguments), dict):
            return Raw(arguments.encode())
    except msgspec.DecodeError:
        pass
    logger.warning("tool call arguments are not a JSON object (%d chars); input set to {}", len(arguments))
    return _EMPTY_OBJECT


def response_to_anthropic(body: bytes, fallback_model: str) -> tuple[bytes, int]:
    """Translate a Chat Completions response body into ``(Anthropic Message JSON bytes,
    reasoning tokens)``.

    Raises:
        GatewayError: 502 api_error when ``body`` is not a chat completion.
    """
    try:
        completion = _completion_decoder.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise GatewayError(502, f"upstream provider sent an invalid chat completion: {exc}", "api_error") from None
    if not completion.choices and completion.error is not None:
        raise GatewayError(502, provider_error_message(200, body), "api_error")
    content: list = []
    finish_reason = None
    tool_used = False
    refused = False
    if completion.choices:
        choice = completion.choices[0]
        finish_reason = choice.finish_reason
        message = choice.message or ResponseMessage()
        reasoning = message.reasoning_content or message.reasoning
        if reasoning:
            content.append(a.ResponseThinking(thinking=reasoning))
        if message.content:
            content.append(a.TextBlock(text=message.content))
        if message.refusal:
            content.append(a.TextBlock(text=message.refusal))
            refused = True
        for call in message.tool_calls or ():
            function = call.function or ResponseFunction()
            content.append(
                a.ResponseToolUse(
                    id=call.id or new_tool_use_id(),
                    name=function.name or "",
                    input=tool_input(function.arguments),
                )
            )
            tool_used = True
    stop_reason = "refusal" if refused else stop_reason_for(finish_reason, tool_used)
    response = a.MessageResponse(
        id=new_message_id(),
        model=completion.model or fallback_model,
        content=content,
        stop_reason=stop_reason,
        usage=usage_to_anthropic(completion.usage),
    )
    return a.response_encoder.encode(response), reasoning_tokens_of(completion.usage)


# ---------------------------------------------------------------- streams


class ChunkFunction(Struct):
    """``arguments`` is a piece of a JSON string, or a whole JSON object (TGI, some llama.cpp builds)."""

    name: str | None = None
    arguments: str | dict | None = None


class ChunkToolCall(Struct):
    index: int | None = None
    id: str | None = None
    function: ChunkFunction | None = None


class Delta(Struct):
    content: str | None = None
    reasoning_content: str | None = None
    reasoning: str | None = None
    refusal: str | None = None
    tool_calls: list[ChunkToolCall] | None = None


class ChunkChoice(Struct):
    delta: Delta | None = None
    finish_reason: str | None = None


class ChatChunk(Struct):
    """A chat.completion.chunk view: only what is translated. ``error`` is how vLLM, TGI and
    the Hugging Face router report a failure inside a 200 stream."""

    id: str | None = None
    model: str | None = None
    choices: list[ChunkChoice] | None = None
    usage: ChatUsage | None = None
    error: ChunkError | str | None = None


_chunk_decoder = msgspec.json.Decoder(ChatChunk)

_TEXT, _THINKING, _TOOL = 1, 2, 3


class ChatStreamTranslator:
    """One stream's state: Chat Completions chunks in, Anthropic SSE events out.

    ``feed(data)`` takes the ``data`` of one provider event (bytes; empty data is ignored) and returns the encoded
    Anthropic events it yields (possibly ``b""``); ``finish()`` returns the closing events
    when the provider stream ends (``[DONE]`` or end of body, with or without a
    finish_reason). Emitted streams keep DESIGN §6's invariants: message_start first, one
    block open at a time, indices from 0, message_delta with cumulative usage, message_stop.
    After an ``event: error`` nothing more is emitted and ``error`` says what it was.
    """

    __slots__ = (
        "model",
        "message_id",
        "usage",
        "reasoning_tokens",
        "error",
        "started",
        "done",
        "_next_index",
        "_open",
        "_open_index",
        "_tool_blocks",
        "_tool_ids",
        "_last_tool",
        "_tool_used",
        "_finish_reason",
        "_refused",
    )

    def __init__(self, model: str, message_id: str | None = None) -> None:
        self.model = model
        self.message_id = message_id or new_message_id()
        self.usage = a.ResponseUsage()
        self.reasoning_tokens = 0
        self.error: str | None = None
        self.started = False
        self.done = False
        self._next_index = 0
        self._open = 0
        self._open_index = -1
        self._tool_blocks: dict[int, int] = {}  # tool_calls index -> block index of its latest call
        self._tool_ids: dict[int, str] = {}  # block index -> tool_use id
        self._last_tool = -1  # block index of the latest tool_use block
        self._tool_used = False
        self._finish_reason: str | None = None
        self._refused = False

    def feed(self, data: bytes) -> bytes:
        if self.done:
            return b""
        if data == b"[DONE]":
            return self.finish()
        if not data.strip():
            return b""
        try:
            chunk = _chunk_decoder.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            return self._fail("api_error", f"upstream provider sent an invalid stream chunk: {exc}")
        out: list[bytes] = []
        if not self.started:
            if not (chunk.choices or chunk.usage or chunk.error):
                return b""  # e.g. Azure's leading prompt_filter_results chunk: model "" and no choices
            if chunk.model:
                self.model = chunk.model
            out.append(self._start())
        if chunk.error is not None:
            error = chunk.error
            message = error if isinstance(error, str) else (error.message or "upstream provider stream error")
            status = error.code if not isinstance(error, str) and isinstance(error.code, int) else 500
            out.append(self._fail(error_type_for_status(529 if status == 503 else status), message))
            return b"".join(out)
        if chunk.usage is not None:
            self.usage = usage_to_anthropic(chunk.usage)
            self.reasoning_tokens = reasoning_tokens_of(chunk.usage)
        for choice in chunk.choices or ():
            delta = choice.delta
            if delta is not None:
                reasoning = delta.reasoning_content or delta.reasoning
                if reasoning:
                    out.append(self._delta(_THINKING, reasoning))
                if delta.content:
                    out.append(self._delta(_TEXT, delta.content))
                if delta.refusal:
                    self._refused = True
                    out.append(self._delta(_TEXT, delta.refusal))
                if delta.tool_calls:
                    for call in delta.tool_calls:
                        piece = self._tool_call(call)
                        if piece:
                            out.append(piece)
                            if self.done:
                                return b"".join(out)
            if choice.finish_reason:  # "" on every chunk (SGLang 0.4.x, older Ollama) means none yet
                self._finish_reason = choice.finish_reason
                out.append(self._close())
            break  # choices[0] only: Anthropic has one candidate
        return b"".join(out)

    def finish(self) -> bytes:
        if self.done:
            return b""
        out = [b"" if self.started else self._start(), self._close()]
        stop_reason = "refusal" if self._refused else stop_reason_for(self._finish_reason, self._tool_used)
        out.append(a.message_delta(stop_reason, self.usage))
        out.append(a.MESSAGE_STOP)
        self.done = True
        return b"".join(out)

    @property
    def has_content(self) -> bool:
        """True once a content block has been emitted."""
        return self._next_index > 0

    def _start(self) -> bytes:
        self.started = True
        return a.message_start(self.message_id, self.model, a.ResponseUsage())

    def _fail(self, error_type: str, message: str) -> bytes:
        out = b"" if self.started else self._start()
        self.done = True
        self.error = redact(f"{error_type}: {message}")
        return out + a.error_event(error_type, message)

    def _close(self) -> bytes:
        if not self._open:
            return b""
        self._open = 0
        return a.content_block_stop(self._open_index)

    def _open_block(self, kind: int) -> bytes:
        out = self._close()
        self._open = kind
        self._open_index = index = self._next_index
        self._next_index += 1
        return out + (a.text_block_start(index) if kind == _TEXT else a.thinking_block_start(index))

    def _delta(self, kind: int, text: str) -> bytes:
        out = b"" if self._open == kind else self._open_block(kind)
        if kind == _TEXT:
            return out + a.text_delta(self._open_index, text)
        return out + a.thinking_delta(self._open_index, text)

    def _tool_call(self, call: ChunkToolCall) -> bytes:
        """One tool_calls fragment. It continues the tool_use block its ``index`` maps to, or
        the latest one when it has no index (Gemini's OpenAI-compatible API, mistral.rs and
        some Ollama builds send none), unless it carries an ``id`` other than that block's:
        then it is a new call (some Ollama and Dynamo builds give parallel calls one index).
        Object ``arguments`` go out as one input_json_delta of their JSON."""
        function = call.function or ChunkFunction()
        block = self._last_tool if call.index is None else self._tool_blocks.get(call.index, -1)
        out = b""
        if block < 0 or (call.id and call.id != self._tool_ids[block]):
            out = self._close()
            block = self._open_index = self._next_index
            self._next_index += 1
            self._open, self._last_tool, self._tool_used = _TOOL, block, True
            if call.index is not None:
                self._tool_blocks[call.index] = block
            tool_use_id = self._tool_ids[block] = call.id or new_tool_use_id()
            out += a.tool_use_block_start(block, tool_use_id, function.name or "")
        elif self._open != _TOOL or self._open_index != block:
            return self._fail("api_error", "upstream provider interleaved the arguments of parallel tool calls")
        arguments = function.arguments
        if isinstance(arguments, dict):
            arguments = msgspec.json.encode(arguments).decode()
        if arguments:
            out += a.input_json_delta(block, arguments)
        return out
