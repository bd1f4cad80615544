"""OpenAI chat completion -> Anthropic Message, and what streams share with it: the
finish_reason and usage mappings and the ids (OpenAI API reference, "The chat completion
object"; Anthropic API reference, "Messages")."""

from __future__ import annotations

import logging
from types import MappingProxyType

import msgspec
from msgspec import Raw, Struct

from aimw.errors import GatewayError, provider_error_message
from aimw.exchange import Usage, token_count
from aimw.translators.anthropic import messages as a
from aimw.translators.anthropic.stream_writer import new_message_id, new_tool_use_id
from aimw.translators.wire import AnthropicAnswer

logger = logging.getLogger("aimw.translators.openai_chat")

EMPTY_OBJECT = Raw(b"{}")

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
    stop_reason = "end_turn"  # None, or "" (SGLang 0.4.x and older Ollama send it on every chunk)
    if finish_reason:
        known = FINISH_TO_STOP_REASON.get(finish_reason)
        if known is None:
            logger.warning("unknown finish_reason %r mapped to end_turn", finish_reason)
        else:
            stop_reason = known
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


def usage_to_anthropic(usage: ChatUsage) -> Usage:
    """OpenAI's prompt_tokens include cached tokens; Anthropic's input_tokens exclude cache
    reads. ``completion_tokens_details.reasoning_tokens`` (part of completion_tokens) is kept
    as reasoning_tokens: Anthropic's usage has no such field, the log does."""
    cached = token_count(usage.prompt_tokens_details.cached_tokens) if usage.prompt_tokens_details else 0
    details = usage.completion_tokens_details
    return Usage(
        input_tokens=max(token_count(usage.prompt_tokens) - cached, 0),
        output_tokens=token_count(usage.completion_tokens),
        cache_read_input_tokens=cached,
        reasoning_tokens=token_count(details.reasoning_tokens) if details is not None else 0,
    )


class ResponseFunction(Struct):
    """``arguments`` is a JSON string, or a JSON object as TGI and some llama.cpp builds send."""

    name: str | None = None
    arguments: str | dict[str, object] | None = None


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


def tool_input(arguments: str | dict[str, object] | None) -> Raw:
    """Tool call arguments (a JSON string, or an object taken as it is) as the tool_use
    ``input`` object; ``{}`` when absent or not a JSON object (logged, as the Anthropic SDK
    does for invalid partial JSON)."""
    if isinstance(arguments, dict):
        return Raw(msgspec.json.encode(arguments))
    if not arguments:
        return EMPTY_OBJECT
    try:
        if isinstance(msgspec.json.decode(arguments), dict):
            return Raw(arguments.encode())
    except msgspec.DecodeError:
        pass
    logger.warning("tool call arguments are not a JSON object (%d chars); input set to {}", len(arguments))
    return EMPTY_OBJECT


def response_to_anthropic(body: bytes, fallback_model: str) -> AnthropicAnswer:
    """Translate a Chat Completions response body into an Anthropic Message (the model is
    the provider's, else ``fallback_model``).

    Raises:
        GatewayError: 502 api_error when ``body`` is not a chat completion.
    """
    try:
        completion = _completion_decoder.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise GatewayError(502, f"upstream provider sent an invalid chat completion: {exc}", "api_error") from None
    if not completion.choices:
        if completion.error is not None:
            raise GatewayError(502, provider_error_message(200, body), "api_error")
        raise GatewayError(502, "upstream provider sent a chat completion without choices", "api_error")
    content: list[a.TextBlock | a.ResponseToolUse | a.ResponseThinking] = []
    tool_used = False
    refused = False
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
    usage = usage_to_anthropic(completion.usage) if completion.usage is not None else Usage()
    response = a.MessageResponse(
        id=new_message_id(),
        model=completion.model or fallback_model,
        content=content,
        stop_reason=stop_reason,
        usage=a.ResponseUsage(
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cache_read_input_tokens=usage.cache_read_input_tokens,
        ),
    )
    return AnthropicAnswer(a.response_encoder.encode(response), usage, completion.model or None)
