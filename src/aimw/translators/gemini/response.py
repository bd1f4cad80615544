"""Gemini ``GenerateContentResponse`` -> Anthropic Message, and what streams share with it:
the views decoded, the parts -> blocks rules, finishReason and usage (Google's API
reference, "GenerateContentResponse", "Candidate", "FinishReason", "UsageMetadata",
"PromptFeedback"; Anthropic API reference, "Messages").

Shape read: ``{"candidates": [{"content": {"parts": [{"text", "thought", "thoughtSignature",
"functionCall": {"name", "args"}}]}, "finishReason", "finishMessage"}], "promptFeedback":
{"blockReason", "blockReasonMessage"}, "usageMetadata": {"promptTokenCount",
"cachedContentTokenCount", "candidatesTokenCount", "thoughtsTokenCount"}, "modelVersion",
"error"}``. Only the first candidate is read: Anthropic has one answer.
"""

from __future__ import annotations

import logging
from types import MappingProxyType
from typing import Protocol

import msgspec
from msgspec import UNSET, Raw, Struct, UnsetType

from aimw.errors import GatewayError
from aimw.exchange import Usage, token_count
from aimw.translators.anthropic import messages as a
from aimw.translators.anthropic.stream_writer import new_message_id
from aimw.translators.gemini import signatures
from aimw.translators.gemini.errors import GoogleError, gateway_error
from aimw.translators.wire import AnthropicAnswer

logger = logging.getLogger("aimw.translators.gemini")

# ---------------------------------------------------------------- views
# gc=False: decoded, read and dropped, never in a reference cycle; untracked, they decode faster.


class FunctionCallView(Struct, gc=False):
    name: str | None = None
    args: Raw | UnsetType = UNSET  # msgspec takes Raw only alone or with UNSET


class PartView(Struct, rename="camel", gc=False):
    text: str | None = None
    thought: bool = False
    thought_signature: str | None = None
    function_call: FunctionCallView | None = None


class ContentView(Struct, gc=False):
    parts: list[PartView] | None = None


class Candidate(Struct, rename="camel", gc=False):
    content: ContentView | None = None
    finish_reason: str | None = None
    finish_message: str | None = None


class PromptFeedback(Struct, rename="camel", gc=False):
    block_reason: str | None = None
    block_reason_message: str | None = None


class UsageMetadata(Struct, rename="camel", gc=False):
    prompt_token_count: int | None = None
    cached_content_token_count: int | None = None
    candidates_token_count: int | None = None
    thoughts_token_count: int | None = None


class GenerateContentResponse(Struct, rename="camel", gc=False):
    """A generateContent answer, or one event of streamGenerateContent (a whole response
    each), or an error object inside a 200 stream."""

    candidates: list[Candidate] | None = None
    prompt_feedback: PromptFeedback | None = None
    usage_metadata: UsageMetadata | None = None
    model_version: str | None = None
    error: GoogleError | None = None


response_decoder = msgspec.json.Decoder(GenerateContentResponse)

# ---------------------------------------------------------------- finishReason, usage

FINISH_TO_STOP_REASON = MappingProxyType(
    {
        "STOP": "end_turn",
        "FINISH_REASON_UNSPECIFIED": "end_turn",
        "OTHER": "end_turn",
        "MAX_TOKENS": "max_tokens",
        "SAFETY": "refusal",
        "RECITATION": "refusal",
        "LANGUAGE": "refusal",
        "BLOCKLIST": "refusal",
        "PROHIBITED_CONTENT": "refusal",
        "SPII": "refusal",
        "IMAGE_SAFETY": "refusal",
        "IMAGE_PROHIBITED_CONTENT": "refusal",
        "IMAGE_RECITATION": "refusal",
        "MODEL_ARMOR": "refusal",  # Vertex AI
    }
)

FAILED_CALL_REASONS = frozenset(("MALFORMED_FUNCTION_CALL", "UNEXPECTED_TOOL_CALL", "TOO_MANY_TOOL_CALLS"))
"""The model tried a function call and produced none that works: an error the client retries
(a 502 api_error, an ``event: error`` in a stream), never an empty success."""


def stop_reason_for(finish_reason: str | None, tool_used: bool) -> str:
    """tool_use whenever a tool_use block was emitted (unless max_tokens; DESIGN §6); an
    absent finishReason is end_turn; an unknown one becomes end_turn and is logged."""
    stop_reason = "end_turn"
    if finish_reason:
        known = FINISH_TO_STOP_REASON.get(finish_reason)
        if known is None:
            logger.warning("unknown Gemini finishReason %r mapped to end_turn", finish_reason)
        else:
            stop_reason = known
    if tool_used and stop_reason != "max_tokens":
        return "tool_use"
    return stop_reason


def failed_call(candidate: Candidate) -> str | None:
    """The error message when the candidate ended in a failed function call, else None."""
    if candidate.finish_reason not in FAILED_CALL_REASONS:
        return None
    detail = f": {candidate.finish_message}" if candidate.finish_message else ""
    return f"Gemini ended with {candidate.finish_reason}{detail}; the request can be retried"


def usage_to_anthropic(usage: UsageMetadata) -> Usage:
    """Gemini's promptTokenCount includes the cached tokens; Anthropic's input_tokens exclude
    cache reads. Thinking tokens (thoughtsTokenCount) are output, and kept as reasoning_tokens."""
    cached = token_count(usage.cached_content_token_count)
    thoughts = token_count(usage.thoughts_token_count)
    return Usage(
        input_tokens=max(token_count(usage.prompt_token_count) - cached, 0),
        output_tokens=token_count(token_count(usage.candidates_token_count) + thoughts),
        cache_read_input_tokens=cached,
        reasoning_tokens=thoughts,
    )


def blocked_prompt(feedback: PromptFeedback | None) -> GatewayError | None:
    """The 400 for a prompt Gemini refused to answer (promptFeedback.blockReason), else None."""
    if feedback is None or not feedback.block_reason:
        return None
    detail = f": {feedback.block_reason_message}" if feedback.block_reason_message else ""
    return GatewayError(400, f"Gemini blocked the prompt ({feedback.block_reason}){detail}")


# ---------------------------------------------------------------- parts -> blocks


class BlockSink(Protocol):
    """Where the blocks of a Gemini answer go: the Message being built, or a stream writer.
    ``signature(value, own_block)`` ends the open thinking block with ``value`` when
    ``own_block`` and one is open, else adds an empty thinking block holding it."""

    def text(self, text: str) -> None: ...

    def thinking(self, thinking: str) -> None: ...

    def signature(self, signature: str, own_block: bool) -> None: ...

    def tool_use(self, tool_use_id: str, name: str, input_json: str) -> None: ...


def args_json(args: Raw | UnsetType) -> str:
    """A functionCall's ``args`` as the tool_use input JSON; ``{}`` when absent or not an object."""
    raw = b"" if isinstance(args, UnsetType) else bytes(args)
    if raw.lstrip()[:1] != b"{":
        if raw.strip() not in (b"", b"null"):
            logger.warning("Gemini functionCall args are not a JSON object (%d bytes); input set to {}", len(raw))
        return "{}"
    return raw.decode()


def candidate_parts(candidate: Candidate) -> list[PartView]:
    return candidate.content.parts or [] if candidate.content is not None else []


def emit_parts(parts: list[PartView], sink: BlockSink) -> None:
    """Parts in order -> blocks: a functionCall -> a tool_use (its signature in the id); a
    thought -> thinking (its signature ends the block); text -> text (its signature in an
    empty thinking block after it); other parts (inline images, code execution) are skipped."""
    for part in parts:
        signature = part.thought_signature
        if part.function_call is not None:
            call = part.function_call
            sink.tool_use(signatures.tool_use_id(signature), call.name or "", args_json(call.args))
        elif part.thought:
            if part.text:
                sink.thinking(part.text)
            if signature:
                sink.signature(signatures.thinking_signature(signatures.THOUGHT_PREFIX, signature), True)
        elif part.text is not None:
            if part.text:
                sink.text(part.text)
            if signature:
                sink.signature(signatures.thinking_signature(signatures.TEXT_PREFIX, signature), False)


class _MessageBlocks:
    """A BlockSink building the content of one Anthropic Message."""

    __slots__ = ("blocks", "tool_used")

    def __init__(self) -> None:
        self.blocks: list[a.TextBlock | a.ResponseToolUse | a.ResponseThinking] = []
        self.tool_used = False

    def text(self, text: str) -> None:
        last = self.blocks[-1] if self.blocks else None
        if isinstance(last, a.TextBlock):
            last.text += text
        else:
            self.blocks.append(a.TextBlock(text=text))

    def thinking(self, thinking: str) -> None:
        last = self.blocks[-1] if self.blocks else None
        if isinstance(last, a.ResponseThinking) and not last.signature:
            last.thinking += thinking
        else:
            self.blocks.append(a.ResponseThinking(thinking=thinking))

    def signature(self, signature: str, own_block: bool) -> None:
        last = self.blocks[-1] if self.blocks else None
        if own_block and isinstance(last, a.ResponseThinking) and not last.signature:
            last.signature = signature
        else:
            self.blocks.append(a.ResponseThinking(thinking="", signature=signature))

    def tool_use(self, tool_use_id: str, name: str, input_json: str) -> None:
        self.blocks.append(a.ResponseToolUse(id=tool_use_id, name=name, input=Raw(input_json.encode())))
        self.tool_used = True


def response_to_anthropic(body: bytes, fallback_model: str) -> AnthropicAnswer:
    """Translate a generateContent answer into an Anthropic Message (the model is the
    response's modelVersion, else ``fallback_model``).

    Raises:
        GatewayError: 400 for a blocked prompt; the mapped error for an error object;
            502 api_error for a failed function call or a body that is not an answer.
    """
    try:
        response = response_decoder.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise GatewayError(502, f"upstream provider sent an invalid Gemini response: {exc}", "api_error") from None
    if response.error is not None:
        raise gateway_error(response.error, 200)
    blocked = blocked_prompt(response.prompt_feedback)
    if blocked is not None:
        raise blocked
    if not response.candidates:
        raise GatewayError(502, "upstream provider sent a Gemini response without candidates", "api_error")
    candidate = response.candidates[0]
    failure = failed_call(candidate)
    if failure is not None:
        raise GatewayError(502, failure, "api_error")
    content = _MessageBlocks()
    emit_parts(candidate_parts(candidate), content)
    usage = usage_to_anthropic(response.usage_metadata) if response.usage_metadata else Usage()
    message = a.MessageResponse(
        id=new_message_id(),
        model=response.model_version or fallback_model,
        content=content.blocks,
        stop_reason=stop_reason_for(candidate.finish_reason, content.tool_used),
        usage=a.ResponseUsage(
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cache_read_input_tokens=usage.cache_read_input_tokens,
        ),
    )
    return AnthropicAnswer(a.response_encoder.encode(message), usage, response.model_version or None)
