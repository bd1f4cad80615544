"""What OpenAI's Chat Completions API accepts as a request body, strictly.

Source: OpenAI API reference, "Chat Completions - Create" (the request body: messages by role
- system, user, assistant, tool - and their content parts; ``tools`` of type function, at
most 128, a function name matching ``^[a-zA-Z0-9_-]{1,64}$`` and parameters an object JSON
Schema; ``tool_choice``; ``stop`` up to 4 sequences; ``temperature`` 0-2, ``top_p`` 0-1;
``stream_options`` only with ``stream``), and the errors the API answers when a tool
message answers no tool call, an assistant's tool calls are not all answered before the
next message, a tool call id is longer than 40 characters ("string too long. Expected a
string with maximum length 40"), or ``tool_choice`` / ``parallel_tool_calls`` come without
``tools``. DashScope's Qwen extensions (``enable_thinking``, ``thinking_budget``, an
assistant's ``reasoning_content``; Alibaba Cloud Model Studio, "Deep thinking") are
accepted with ``qwen``.

The Structs forbid unknown fields, so an Anthropic-only field that leaked fails too.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

FunctionName = Annotated[str, Meta(pattern=r"^[a-zA-Z0-9_-]{1,64}$")]
ToolCallId = Annotated[str, Meta(min_length=1, max_length=40)]
ImageUrl = Annotated[str, Meta(pattern=r"^(https?://|data:image/[a-z0-9.+-]+;base64,)")]
FileData = Annotated[str, Meta(pattern=r"^data:[a-z0-9.+/-]+;base64,")]


class _Strict(Struct, forbid_unknown_fields=True, omit_defaults=True):
    pass


class TextPart(_Strict, tag="text", tag_field="type"):
    text: str


class ImageURL(_Strict):
    url: ImageUrl
    detail: Literal["auto", "low", "high"] | UnsetType = UNSET


class ImagePart(_Strict, tag="image_url", tag_field="type"):
    image_url: ImageURL


class File(_Strict):
    filename: str | UnsetType = UNSET
    file_data: FileData | UnsetType = UNSET
    file_id: str | UnsetType = UNSET


class FilePart(_Strict, tag="file", tag_field="type"):
    file: File


TextParts = Annotated[list[TextPart], Meta(min_length=1)]
UserParts = Annotated[list[TextPart | ImagePart | FilePart], Meta(min_length=1)]


class Function(_Strict):
    name: FunctionName
    arguments: str


class ToolCall(_Strict):
    id: ToolCallId
    type: Literal["function"]
    function: Function


class SystemMessage(_Strict, tag="system", tag_field="role"):
    content: str | TextParts
    name: str | UnsetType = UNSET


class UserMessage(_Strict, tag="user", tag_field="role"):
    content: str | UserParts
    name: str | UnsetType = UNSET


class AssistantMessage(_Strict, tag="assistant", tag_field="role"):
    content: str | TextParts | None = None
    tool_calls: Annotated[list[ToolCall], Meta(min_length=1)] | UnsetType = UNSET
    name: str | UnsetType = UNSET
    reasoning_content: str | UnsetType = UNSET  # DashScope (qwen) only


class ToolMessage(_Strict, tag="tool", tag_field="role"):
    content: str | TextParts
    tool_call_id: ToolCallId


Message = SystemMessage | UserMessage | AssistantMessage | ToolMessage


class FunctionDefinition(_Strict):
    name: FunctionName
    description: str | UnsetType = UNSET
    parameters: dict[str, Any] | UnsetType = UNSET
    strict: bool | UnsetType = UNSET


class Tool(_Strict):
    type: Literal["function"]
    function: FunctionDefinition


class NamedFunction(_Strict):
    name: FunctionName


class NamedToolChoice(_Strict):
    type: Literal["function"]
    function: NamedFunction


class StreamOptions(_Strict):
    include_usage: bool


class ChatCompletionRequest(_Strict):
    model: Annotated[str, Meta(min_length=1)]
    messages: Annotated[list[Message], Meta(min_length=1)]
    stream: bool | UnsetType = UNSET
    stream_options: StreamOptions | UnsetType = UNSET
    max_tokens: Annotated[int, Meta(ge=1)] | UnsetType = UNSET
    max_completion_tokens: Annotated[int, Meta(ge=1)] | UnsetType = UNSET
    temperature: Annotated[float, Meta(ge=0, le=2)] | UnsetType = UNSET
    top_p: Annotated[float, Meta(ge=0, le=1)] | UnsetType = UNSET
    stop: str | Annotated[list[str], Meta(min_length=1, max_length=4)] | UnsetType = UNSET
    tools: Annotated[list[Tool], Meta(min_length=1, max_length=128)] | UnsetType = UNSET
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | UnsetType = UNSET
    parallel_tool_calls: bool | UnsetType = UNSET
    user: str | UnsetType = UNSET
    enable_thinking: bool | UnsetType = UNSET  # DashScope (qwen) only
    thinking_budget: Annotated[int, Meta(ge=1)] | UnsetType = UNSET  # DashScope (qwen) only


_decoder = msgspec.json.Decoder(ChatCompletionRequest)


def assert_chat_request(body: bytes, *, qwen: bool = False) -> ChatCompletionRequest:
    """``body`` as the API accepts it (the decoded request), else AssertionError saying why."""
    try:
        request = _decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise AssertionError(f"not a Chat Completions request: {exc}") from None
    if not qwen:
        assert request.enable_thinking is UNSET and request.thinking_budget is UNSET, "DashScope fields sent"
        assert all(not isinstance(m, AssistantMessage) or m.reasoning_content is UNSET for m in request.messages), (
            "reasoning_content sent"
        )
    assert request.stream_options is UNSET or request.stream is True, "stream_options without stream"
    assert (request.max_tokens is UNSET) or (request.max_completion_tokens is UNSET), "both max_tokens fields"
    names = [tool.function.name for tool in request.tools or ()]
    assert len(names) == len(set(names)), f"function names repeat: {names}"
    for tool in request.tools or ():
        parameters = tool.function.parameters
        assert parameters is UNSET or parameters.get("type") == "object", f"{tool.function.name}: not an object schema"
    if request.tools is UNSET:
        assert request.tool_choice is UNSET and request.parallel_tool_calls is UNSET, "tool_choice without tools"
    if isinstance(request.tool_choice, NamedToolChoice):
        assert request.tool_choice.function.name in names, "tool_choice names no tool"
    _assert_tool_messages(request.messages)
    return request


def _assert_tool_messages(messages: list[Message]) -> None:
    """Every assistant's tool calls answered by the tool messages right after it (each id
    once), no tool message elsewhere; arguments are JSON objects; an assistant without tool
    calls has content. Tool call ids are unique in the request (the Anthropic requests fuzzed
    have unique tool_use ids: a translation must not make two of them one)."""
    seen: set[str] = set()
    waiting: set[str] = set()
    for index, message in enumerate(messages):
        if isinstance(message, ToolMessage):
            assert message.tool_call_id in waiting, f"messages[{index}]: tool message answers no pending call"
            waiting.discard(message.tool_call_id)
            continue
        assert not waiting, f"messages[{index}]: tool calls {sorted(waiting)} have no tool message before it"
        if not isinstance(message, AssistantMessage):
            continue
        if message.tool_calls is UNSET:
            assert message.content is not None, f"messages[{index}]: assistant with neither content nor tool calls"
            continue
        for call in message.tool_calls:
            assert call.id not in seen, f"tool call id {call.id!r} repeats"
            seen.add(call.id)
            arguments = json.loads(call.function.arguments)
            assert isinstance(arguments, dict), f"arguments of {call.id!r} are not a JSON object"
        waiting = {call.id for call in message.tool_calls}
    assert not waiting, f"tool calls {sorted(waiting)} have no tool message"
