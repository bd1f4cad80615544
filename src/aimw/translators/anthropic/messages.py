"""Anthropic Messages API: request and response Structs.

Source: Anthropic API reference, "Messages" (POST /v1/messages), "Streaming Messages" and
"Count message tokens". Only the fields aimw translates are typed; unknown fields are
ignored on decode (clients add fields faster than gateways learn them).
"""

from __future__ import annotations

from typing import Literal

import msgspec
from msgspec import UNSET, Raw, Struct, UnsetType

from aimw.errors import GatewayError

# ---------------------------------------------------------------- content blocks


class TextBlock(Struct, tag="text", tag_field="type"):
    text: str


class ImageSource(Struct):
    """``type`` is ``base64`` (with media_type and data), ``url`` (with url) or ``file``."""

    type: str
    media_type: str | UnsetType = UNSET
    data: str | UnsetType = UNSET
    url: str | UnsetType = UNSET
    file_id: str | UnsetType = UNSET


class ImageBlock(Struct, tag="image", tag_field="type"):
    source: ImageSource


class DocumentSource(Struct):
    """``type`` is ``text`` (data is the text), ``base64`` (a PDF), ``url`` or ``content``."""

    type: str
    media_type: str | UnsetType = UNSET
    data: str | UnsetType = UNSET
    url: str | UnsetType = UNSET


class DocumentBlock(Struct, tag="document", tag_field="type"):
    source: DocumentSource
    title: str | UnsetType | None = UNSET


class ToolUseBlock(Struct, tag="tool_use", tag_field="type"):
    id: str
    name: str
    input: Raw


class SearchResultBlock(Struct, tag="search_result", tag_field="type"):
    """A search result given to the model (in a user turn or a tool_result)."""

    source: str
    title: str
    content: list[TextBlock]


class ToolReferenceBlock(Struct, tag="tool_reference", tag_field="type"):
    """In a tool_result only: the tool search tool (Claude Code's ToolSearch) loaded the
    deferred tool ``tool_name`` (Anthropic docs, "Tool search tool")."""

    tool_name: str


ToolResultContentBlock = TextBlock | ImageBlock | DocumentBlock | SearchResultBlock | ToolReferenceBlock


class ToolResultBlock(Struct, tag="tool_result", tag_field="type"):
    tool_use_id: str
    content: str | list[ToolResultContentBlock] = ""
    is_error: bool = False


class ThinkingBlock(Struct, tag="thinking", tag_field="type"):
    thinking: str
    signature: str = ""


class RedactedThinkingBlock(Struct, tag="redacted_thinking", tag_field="type"):
    data: str


class ServerToolUseBlock(Struct, tag="server_tool_use", tag_field="type"):
    """A call of a server tool (web_search, web_fetch ...) that ran on Anthropic's servers."""

    id: str
    name: str
    input: Raw


class WebSearchToolResultBlock(Struct, tag="web_search_tool_result", tag_field="type"):
    """``content`` is a list of web_search_result blocks or an error object."""

    tool_use_id: str
    content: Raw


class WebFetchToolResultBlock(Struct, tag="web_fetch_tool_result", tag_field="type"):
    """``content`` is a web_fetch_result block or an error object."""

    tool_use_id: str
    content: Raw


ContentBlock = (
    TextBlock
    | ImageBlock
    | DocumentBlock
    | SearchResultBlock
    | ToolUseBlock
    | ToolResultBlock
    | ThinkingBlock
    | RedactedThinkingBlock
    | ServerToolUseBlock
    | WebSearchToolResultBlock
    | WebFetchToolResultBlock
)

# ---------------------------------------------------------------- request


class Message(Struct):
    """One turn. Claude Code also sends ``role: "system"`` turns inside messages[]."""

    role: Literal["user", "assistant", "system"]
    content: str | list[ContentBlock]


class Tool(Struct):
    """A client tool (name, description, input_schema) or a server tool (with ``type``)."""

    name: str
    description: str | UnsetType = UNSET
    input_schema: Raw | UnsetType = UNSET
    type: str | UnsetType | None = UNSET
    defer_loading: bool = False


class ToolChoice(Struct):
    type: Literal["auto", "any", "tool", "none"]
    name: str | UnsetType = UNSET
    disable_parallel_tool_use: bool = False


class Metadata(Struct):
    user_id: str | UnsetType | None = UNSET


class Thinking(Struct):
    """``type`` enabled (with budget_tokens), disabled or adaptive."""

    type: str
    budget_tokens: int | UnsetType = UNSET


class MessagesRequest(Struct):
    """POST /v1/messages body (and /v1/messages/count_tokens, which has no max_tokens)."""

    messages: list[Message]
    model: str | UnsetType = UNSET
    system: str | list[TextBlock] | UnsetType = UNSET
    max_tokens: int | UnsetType = UNSET
    tools: list[Tool] | UnsetType = UNSET
    tool_choice: ToolChoice | UnsetType = UNSET
    stop_sequences: list[str] | UnsetType = UNSET
    temperature: float | UnsetType = UNSET
    top_p: float | UnsetType = UNSET
    top_k: int | UnsetType = UNSET
    metadata: Metadata | UnsetType = UNSET
    thinking: Thinking | UnsetType = UNSET
    stream: bool = False


request_decoder = msgspec.json.Decoder(MessagesRequest)


def decode_request(body: bytes) -> MessagesRequest:
    """``body`` as a Messages request.

    Raises:
        GatewayError: 400 invalid_request_error naming what is wrong.
    """
    try:
        return request_decoder.decode(body)
    except RecursionError:
        raise GatewayError(400, "request body is nested too deeply") from None
    except msgspec.ValidationError as exc:
        if _too_deep(body):  # the typed decode stopped at the first wrong type, before the depth limit
            raise GatewayError(400, "request body is nested too deeply") from None
        raise GatewayError(400, f"invalid Messages request: {exc}") from None
    except msgspec.DecodeError as exc:
        raise GatewayError(400, f"request body is not valid JSON: {exc}") from None


def raw_text(raw: Raw, field: str) -> str:
    """A field kept as raw JSON (``tool_use.input``, a server tool's content) as text.

    Raises:
        GatewayError: 400 invalid_request_error when its bytes are not UTF-8 (RFC 8259 §8.1:
            JSON text exchanged between systems is UTF-8; msgspec does not check a Raw field).
    """
    try:
        return bytes(raw).decode()
    except UnicodeDecodeError:
        raise GatewayError(400, f"{field} is not valid UTF-8") from None


def block_text(block: ContentBlock | ToolResultContentBlock) -> str | None:
    """The text form of a block that is text to a model of another wire format (Chat
    Completions, Gemini), else None.

    A tool_reference (tool search loaded a deferred tool; the tool itself is sent with the
    request's tools) says the tool is available; a search_result is its title, source and
    texts; server_tool_use and web_search / web_fetch results ran on Anthropic's servers, so
    they are told as text (their JSON), never as the other format's tool calls.

    Raises:
        GatewayError: 400 when a server tool's raw JSON is not UTF-8.
    """
    if isinstance(block, TextBlock):
        return block.text
    if isinstance(block, ToolReferenceBlock):
        return f"Tool {block.tool_name} is now available."
    if isinstance(block, SearchResultBlock):
        return "\n\n".join(
            [f"Search result: {block.title}\nSource: {block.source}", *(text.text for text in block.content)]
        )
    if isinstance(block, ServerToolUseBlock):
        arguments = raw_text(block.input, "server_tool_use.input")
        return f"Called server tool {block.name} (id {block.id}) with input {arguments}"
    if isinstance(block, (WebSearchToolResultBlock, WebFetchToolResultBlock)):
        result = raw_text(block.content, "server tool result content")
        return f"Result of server tool call {block.tool_use_id}: {result}"
    return None


def _too_deep(body: bytes) -> bool:
    """Whether ``body`` nests past msgspec's depth limit (checked on the error path only)."""
    try:
        msgspec.json.decode(body)
    except RecursionError:
        return True
    except msgspec.DecodeError:
        return False
    return False


def client_tools(request: MessagesRequest) -> list[Tool]:
    """The tools another provider is sent: client tools only, a deferred one
    (``defer_loading``) once tool search has loaded it (a tool_reference in a tool_result names
    it), as Anthropic does; server tools (``type`` other than custom) run only on Anthropic's
    servers (Anthropic docs, "Tool search tool", "Server tools")."""
    if request.tools is UNSET:
        return []
    loaded: set[str] = set()
    for message in request.messages:
        if isinstance(message.content, str):
            continue
        for block in message.content:
            if isinstance(block, ToolResultBlock) and not isinstance(block.content, str):
                loaded.update(inner.tool_name for inner in block.content if isinstance(inner, ToolReferenceBlock))
    return [
        tool
        for tool in request.tools
        if not (tool.defer_loading and tool.name not in loaded) and tool.type in (UNSET, None, "custom")
    ]


def system_texts(request: MessagesRequest) -> list[str]:
    """The top-level system prompt as a list of texts (empty when absent)."""
    system = request.system
    if isinstance(system, str):
        return [system] if system else []
    if isinstance(system, list):
        return [block.text for block in system]
    return []


# ---------------------------------------------------------------- response

StopReason = Literal["end_turn", "max_tokens", "stop_sequence", "tool_use", "pause_turn", "refusal"]


class ResponseToolUse(Struct, tag="tool_use", tag_field="type"):
    id: str
    name: str
    input: Raw


class ResponseThinking(Struct, tag="thinking", tag_field="type"):
    thinking: str
    signature: str = ""


class ResponseUsage(Struct):
    """Token counts (tokens). ``input_tokens`` excludes cache reads and writes."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0


class MessageResponse(Struct, kw_only=True):
    id: str
    type: str = "message"
    role: str = "assistant"
    model: str
    content: list[TextBlock | ResponseToolUse | ResponseThinking]
    stop_reason: str | None
    stop_sequence: str | None = None
    usage: ResponseUsage


response_encoder = msgspec.json.Encoder()
