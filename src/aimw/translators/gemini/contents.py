"""Anthropic turns -> Gemini ``contents``: parts, roles, and tool calls paired with their
results (Google's API reference, "Content" and "Part"; Gemini API docs, "Function calling").

Part shapes sent: ``{"text"}``, ``{"inlineData": {"mimeType", "data"}}``, ``{"fileData":
{"mimeType", "fileUri"}}``, ``{"functionCall": {"name", "args"}}``, ``{"functionResponse":
{"name", "response"}}``, each possibly with ``thoughtSignature``; ``{"text", "thought": true,
"thoughtSignature"}`` for a thought given back. A part never has empty text unless it carries
a signature.
"""

from __future__ import annotations

from types import MappingProxyType

from msgspec import UNSET, Raw, Struct, UnsetType

from aimw.errors import GatewayError
from aimw.translators.anthropic import messages as a
from aimw.translators.gemini import signatures


class Blob(Struct, rename="camel"):
    mime_type: str
    data: str  # base64


class FileData(Struct, rename="camel", omit_defaults=True):
    file_uri: str
    mime_type: str | UnsetType = UNSET


class FunctionCall(Struct):
    name: str
    args: Raw  # a JSON object


class FunctionResponse(Struct):
    name: str
    response: dict[str, str]


class Part(Struct, rename="camel", omit_defaults=True):
    text: str | UnsetType = UNSET
    inline_data: Blob | UnsetType = UNSET
    file_data: FileData | UnsetType = UNSET
    function_call: FunctionCall | UnsetType = UNSET
    function_response: FunctionResponse | UnsetType = UNSET
    thought: bool | UnsetType = UNSET
    thought_signature: str | UnsetType = UNSET


NO_RESULT = "No result was provided for this tool call."

# Anthropic URL images name no media type; Vertex AI wants one on fileData.
_IMAGE_TYPES = MappingProxyType(
    {
        "png": "image/png",
        "jpg": "image/jpeg",
        "jpeg": "image/jpeg",
        "gif": "image/gif",
        "webp": "image/webp",
        "heic": "image/heic",
        "heif": "image/heif",
    }
)


def _image(source: a.ImageSource) -> Part:
    if source.type == "base64" and isinstance(source.data, str):
        if not isinstance(source.media_type, str):
            raise GatewayError(400, "a base64 image needs its media_type")
        return Part(inline_data=Blob(source.media_type, source.data))
    if source.type == "url" and isinstance(source.url, str):
        extension = source.url.split("?", 1)[0].rsplit(".", 1)[-1].lower()
        return Part(file_data=FileData(source.url, _IMAGE_TYPES.get(extension, UNSET)))
    raise GatewayError(400, f"image source type {source.type!r} cannot be sent to Gemini")


def _document(block: a.DocumentBlock) -> Part:
    source = block.source
    if source.type == "text" and isinstance(source.data, str):
        return Part(text=source.data)
    if source.type == "base64" and isinstance(source.data, str):
        media_type = source.media_type if isinstance(source.media_type, str) else "application/pdf"
        return Part(inline_data=Blob(media_type, source.data))
    if source.type == "url" and isinstance(source.url, str):
        return Part(file_data=FileData(source.url, "application/pdf"))  # Anthropic's URL documents are PDFs
    raise GatewayError(400, f"document source type {source.type!r} cannot be sent to Gemini")


def _part(block: a.ContentBlock | a.ToolResultContentBlock) -> Part | None:
    """A text-like, image or document block as a part; None for others and for empty text."""
    text = a.block_text(block)
    if text is not None:
        return Part(text=text) if text else None
    if isinstance(block, a.ImageBlock):
        return _image(block.source)
    if isinstance(block, a.DocumentBlock):
        return _document(block)
    return None


def _function_call(block: a.ToolUseBlock) -> Part:
    """``args`` is the tool_use input as sent (a JSON object); the id gives the signature back."""
    if bytes(block.input).lstrip()[:1] != b"{":
        raise GatewayError(400, f"tool_use {block.id!r}: input must be a JSON object")
    signature = signatures.signature_of_tool_use(block.id)
    return Part(function_call=FunctionCall(block.name, block.input), thought_signature=signature or UNSET)


def _thought(block: a.ThinkingBlock, parts: list[Part]) -> None:
    """A thinking block made from a Gemini part gives back that part's signature: its own
    thought's, or the text part's just before it. Other thinking is not Gemini's to read."""
    carried = signatures.signature_of_thinking(block.signature)
    if carried is None:
        return
    prefix, signature = carried
    if prefix == signatures.THOUGHT_PREFIX:
        parts.append(Part(text=block.thinking, thought=True, thought_signature=signature))
        return
    previous = parts[-1] if parts else None
    unsigned_text = previous is not None and isinstance(previous.text, str) and previous.thought is UNSET
    if previous is not None and unsigned_text and previous.thought_signature is UNSET:
        previous.thought_signature = signature
    else:
        parts.append(Part(text="", thought_signature=signature))


def _model_parts(content: str | list[a.ContentBlock]) -> tuple[list[Part], list[tuple[str, str]]]:
    """An assistant turn -> (its parts, its calls as (tool_use id, name) in order)."""
    if isinstance(content, str):
        return ([Part(text=content)] if content else []), []
    parts: list[Part] = []
    calls: list[tuple[str, str]] = []
    for block in content:
        if isinstance(block, a.ToolUseBlock):
            parts.append(_function_call(block))
            calls.append((block.id, block.name))
        elif isinstance(block, a.ThinkingBlock):
            _thought(block, parts)
        else:
            part = _part(block)
            if part is not None:
                parts.append(part)
    return parts, calls


def _result_content(block: a.ToolResultBlock) -> tuple[str, list[Part]]:
    """A tool_result's (text, image and PDF parts that travel beside its functionResponse)."""
    if isinstance(block.content, str):
        return block.content, []
    texts: list[str] = []
    media: list[Part] = []
    for inner in block.content:
        part = _part(inner)
        if part is None:
            continue
        if isinstance(part.text, str):
            texts.append(part.text)
        else:
            media.append(part)
    return "\n\n".join(texts), media


class Conversation:
    """The contents being built, turn by turn: ``(role, parts)`` pairs, consecutive turns of
    one role merged. Each model turn's function calls are answered in the next user turn by
    one functionResponse each, in call order, named after its call: the tool_result with
    that call's id (a string result as ``{"content": text}``, an ``is_error`` one as
    ``{"error": text}``; its images and PDFs as parts after the responses), or
    ``{"error": NO_RESULT}`` when the client sent none. A tool_result that answers no call
    of the previous model turn becomes text."""

    __slots__ = ("_contents", "_pending")

    def __init__(self) -> None:
        self._contents: list[tuple[str, list[Part]]] = []
        self._pending: list[tuple[str, str]] = []  # (tool_use id, name) of the last model turn's calls

    def model(self, message: a.Message) -> None:
        parts, calls = _model_parts(message.content)
        if not parts:
            return
        self._add("user", self._answers({}))
        self._add("model", parts)
        self._pending = calls

    def user(self, message: a.Message) -> None:
        if isinstance(message.content, str):
            self._add("user", [*self._answers({}), *([Part(text=message.content)] if message.content else [])])
            return
        results: dict[str, a.ToolResultBlock] = {}
        others: list[Part] = []
        for block in message.content:
            if isinstance(block, a.ToolResultBlock):
                results[block.tool_use_id] = block
            else:
                part = _part(block)
                if part is not None:
                    others.append(part)
        answers = self._answers(results)
        for orphan in results.values():  # their tool_use is not in the previous model turn
            text, media = _result_content(orphan)
            label = "Error from tool call" if orphan.is_error else "Result of tool call"
            answers.extend([Part(text=f"{label} {orphan.tool_use_id}: {text}"), *media])
        self._add("user", [*answers, *others])

    def finish(self) -> list[tuple[str, list[Part]]]:
        """The contents, the last model turn's calls answered if the client did not."""
        self._add("user", self._answers({}))
        return self._contents

    def _answers(self, results: dict[str, a.ToolResultBlock]) -> list[Part]:
        """The responses to the pending calls (popped from ``results``), then their media."""
        responses: list[Part] = []
        media: list[Part] = []
        for call_id, name in self._pending:
            result = results.pop(call_id, None)
            if result is None:
                response = {"error": NO_RESULT}
            else:
                text, result_media = _result_content(result)
                response = {"error" if result.is_error else "content": text}
                media.extend(result_media)
            responses.append(Part(function_response=FunctionResponse(name, response)))
        self._pending = []
        return [*responses, *media]

    def _add(self, role: str, parts: list[Part]) -> None:
        if not parts:
            return
        if self._contents and self._contents[-1][0] == role:
            self._contents[-1][1].extend(parts)
        else:
            self._contents.append((role, parts))
