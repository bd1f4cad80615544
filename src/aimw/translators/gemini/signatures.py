"""Gemini's thought signatures across the Anthropic round trip.

Gemini returns ``thoughtSignature`` (an opaque, base64 ``bytes`` field) on some parts of a
model turn and wants each one back on the same part of that turn in the next request (Gemini
API docs, "Thought signatures"; Google's API reference, "Part"). Anthropic clients send
back the assistant's content blocks as they got them, and nothing else, so a signature rides
in a field the client keeps:

- on a ``functionCall`` part: inside the tool_use ``id``,
  ``toolu_<32 hex>_gsig_<the signature, base64url without padding>`` (Anthropic's id
  alphabet ``[A-Za-z0-9_-]``; the client echoes it in every tool_result);
- on a ``thought`` part: the ``signature`` of the thinking block holding that thought,
  ``gemini-thought:<signature>``;
- on a text part: the ``signature`` of an empty thinking block that follows the text block,
  ``gemini-text:<signature>`` (Anthropic's own display-omitted thinking blocks look alike).

Signatures not made here (Claude's own thinking signatures, other ids) are never sent to
Gemini, and none is ever invented.
"""

from __future__ import annotations

import re

from aimw.translators.anthropic.stream_writer import new_tool_use_id

THOUGHT_PREFIX = "gemini-thought:"  # the signature of the thinking block's own thought part
TEXT_PREFIX = "gemini-text:"  # the signature of the text part just before the thinking block

_ID_SEPARATOR = "_gsig_"
_SIGNED_ID = re.compile(r"toolu_[0-9a-f]{32}_gsig_([A-Za-z0-9_-]+)")
_BASE64 = re.compile(r"[A-Za-z0-9+/_-]+=*")
_TO_URL_SAFE = str.maketrans("+/", "-_")
_FROM_URL_SAFE = str.maketrans("-_", "+/")


def tool_use_id(signature: str | None) -> str:
    """A new tool_use id; it carries ``signature`` (base64) when the call had one."""
    if not signature or not _BASE64.fullmatch(signature):
        return new_tool_use_id()
    return new_tool_use_id() + _ID_SEPARATOR + signature.translate(_TO_URL_SAFE).rstrip("=")


def signature_of_tool_use(tool_use_id: str) -> str | None:
    """The thought signature a tool_use id made by :func:`tool_use_id` carries, else None.

    Returned in standard base64 with its padding: the same bytes Gemini sent, in the form
    it sends them."""
    match = _SIGNED_ID.fullmatch(tool_use_id)
    if match is None:
        return None
    encoded = match.group(1).translate(_FROM_URL_SAFE)
    return encoded + "=" * (-len(encoded) % 4)


def thinking_signature(prefix: str, signature: str) -> str:
    """The Anthropic thinking-block signature for a Gemini ``signature`` (``prefix`` says
    which part it came with: THOUGHT_PREFIX or TEXT_PREFIX)."""
    return prefix + signature


def signature_of_thinking(signature: str) -> tuple[str, str] | None:
    """``(prefix, Gemini signature)`` of a thinking-block signature made here, else None."""
    for prefix in (THOUGHT_PREFIX, TEXT_PREFIX):
        if signature.startswith(prefix) and len(signature) > len(prefix):
            return prefix, signature[len(prefix) :]
    return None
