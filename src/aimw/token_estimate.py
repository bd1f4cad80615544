"""Local token estimates: a Messages request's input tokens, for ``/v1/messages/count_tokens``
when the provider has no such endpoint, and the usage of a stream that ended before its
provider reported it (:func:`usage_so_far`).

Counts the system prompt, every message's text (tool_use inputs and tool results
included, and search results, tool references and the calls and results of server
tools), tool names, descriptions and input schemas, and images. Text is taken at
about 3.5 characters per token (Anthropic's tokenizer on English and code); an image is
taken at 1,600 tokens, Anthropic's cost of an image near its 1.15-megapixel optimum
(Anthropic docs, "Vision": tokens = width * height / 750). Each message and tool adds a
few tokens of framing. The estimate is meant for context-window bookkeeping
(Claude Code's ``/context``), not billing.

Output is estimated from the characters of content a stream wrote (text, thinking, tool
input JSON) at the same 3.5 characters per token.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

from msgspec import UNSET

from aimw.exchange import Usage
from aimw.translators.anthropic import messages as a

CHARS_PER_TOKEN = 3.5
IMAGE_TOKENS = 1600
MESSAGE_OVERHEAD_TOKENS = 4
TOOL_OVERHEAD_TOKENS = 8


def estimate_input_tokens(request: a.MessagesRequest) -> int:
    """Estimated input tokens (tokens, >= 1) of ``request``."""
    chars = sum(len(text) for text in a.system_texts(request))
    tokens = 0
    for message in request.messages:
        tokens += MESSAGE_OVERHEAD_TOKENS
        if isinstance(message.content, str):
            chars += len(message.content)
            continue
        for block in message.content:
            block_chars, block_images = _block_size(block)
            chars += block_chars
            tokens += block_images * IMAGE_TOKENS
    if request.tools is not UNSET:
        for tool in request.tools:
            tokens += TOOL_OVERHEAD_TOKENS
            chars += len(tool.name)
            if tool.description is not UNSET:
                chars += len(tool.description)
            if tool.input_schema is not UNSET:
                chars += len(tool.input_schema)
    return max(1, tokens + math.ceil(chars / CHARS_PER_TOKEN))


def estimate_output_tokens(content_chars: int) -> int:
    """Estimated output tokens (tokens, >= 0) of ``content_chars`` characters of content."""
    return math.ceil(max(content_chars, 0) / CHARS_PER_TOKEN)


def usage_so_far(usage: Usage, content_chars: int, input_tokens: Callable[[], int | None]) -> tuple[Usage, bool]:
    """The usage of a stream that ended before its end (the client left, the provider broke
    off): the provider's figures where it reported them, else estimates. Returns (usage,
    whether anything was estimated); ``usage`` itself is never changed.

    Output tokens are estimated from ``content_chars`` (the content written to the client)
    when the provider reported none; input tokens from ``input_tokens()`` (the request's
    estimate: called only then, may return None when the request cannot be read) when it
    reported no input, cached or not.
    """
    output_missing = usage.output_tokens == 0 and content_chars > 0
    input_missing = usage.input_tokens == usage.cache_read_input_tokens == usage.cache_creation_input_tokens == 0
    if not (output_missing or input_missing):
        return usage, False
    estimated = dataclasses.replace(usage)
    if output_missing:
        estimated.output_tokens = estimate_output_tokens(content_chars)
    if input_missing and (tokens := input_tokens()) is not None:
        estimated.input_tokens = tokens
    return estimated, estimated != usage


def _block_size(block: a.ContentBlock | a.ToolResultContentBlock) -> tuple[int, int]:
    """(characters of text, number of images) in one content block."""
    if isinstance(block, a.TextBlock):
        return len(block.text), 0
    if isinstance(block, a.ImageBlock):
        return 0, 1
    if isinstance(block, a.ToolUseBlock):
        return len(block.name) + len(block.input), 0
    if isinstance(block, a.ToolResultBlock):
        if isinstance(block.content, str):
            return len(block.content), 0
        chars = images = 0
        for inner in block.content:
            inner_chars, inner_images = _block_size(inner)
            chars += inner_chars
            images += inner_images
        return chars, images
    if isinstance(block, a.ThinkingBlock):
        return len(block.thinking), 0
    if isinstance(block, a.DocumentBlock):
        data = block.source.data
        return (len(data) if isinstance(data, str) and block.source.type == "text" else 0), 0
    if isinstance(block, a.SearchResultBlock):
        return len(block.title) + len(block.source) + sum(len(text.text) for text in block.content), 0
    if isinstance(block, a.ToolReferenceBlock):
        return len(block.tool_name), 0
    if isinstance(block, a.ServerToolUseBlock):
        return len(block.name) + len(block.input), 0
    if isinstance(block, (a.WebSearchToolResultBlock, a.WebFetchToolResultBlock)):
        return len(block.content), 0
    return 0, 0
