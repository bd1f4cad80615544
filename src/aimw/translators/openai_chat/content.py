"""Anthropic content blocks -> Chat Completions content: a plain string, or parts (``text``,
``image_url``, ``file``) (OpenAI API reference, "Chat Completions - Create", the messages'
content parts; Anthropic API reference, "Messages", content blocks)."""

from __future__ import annotations

from typing import Any

from msgspec import UNSET

from aimw.errors import GatewayError
from aimw.translators.anthropic import messages as a


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


def content_parts(blocks: list[Any]) -> list[dict[str, Any]]:
    """Text-like (``a.block_text``), image and document blocks -> Chat Completions content
    parts (others are skipped)."""
    parts: list[dict[str, Any]] = []
    for block in blocks:
        text = a.block_text(block)
        if text is not None:
            parts.append({"type": "text", "text": text})
        elif isinstance(block, a.ImageBlock):
            parts.append(_image_part(block.source))
        elif isinstance(block, a.DocumentBlock):
            parts.append(_document_part(block))
    return parts


def message_content(parts: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    """A plain string when every part is text (the form every compatible server accepts)."""
    if all(part["type"] == "text" for part in parts):
        return "\n\n".join(part["text"] for part in parts)
    return parts


def tool_result_text(block: a.ToolResultBlock) -> tuple[str, list[dict[str, Any]]]:
    """(text for the role "tool" message, image parts that must travel in a user message)."""
    if isinstance(block.content, str):
        text, images = block.content, []
    else:
        parts = content_parts(block.content)
        text = "\n\n".join(part["text"] for part in parts if part["type"] == "text")
        images = [part for part in parts if part["type"] != "text"]
    if block.is_error:
        text = f"Error: {text}" if text else "Error"
    return text, images
