"""Anthropic Messages request -> Gemini ``generateContent`` request body (Google's API
reference, "generateContent" and its "Content", "Part", "Tool", "FunctionCallingConfig",
"GenerationConfig" and "ThinkingConfig"; Anthropic API reference, "Messages").

Shape sent: ``{"contents": [{"role": "user"|"model", "parts": [Part ...]} ...],
"systemInstruction": {"parts": [{"text"} ...]}, "tools": [{"functionDeclarations": [...]}],
"toolConfig": {"functionCallingConfig": {"mode", "allowedFunctionNames"}},
"generationConfig": {"maxOutputTokens", "temperature", "topP", "topK", "stopSequences",
"thinkingConfig": {"thinkingBudget", "includeThoughts"}}}``; the model is in the path.

Limits (Google's API reference, "GenerationConfig": at most 5 ``stopSequences``; the Gemini
API docs, "Thinking": ``thinkingBudget`` 0 to 24576 on Gemini 2.5 Flash, 128 to 32768 on 2.5
Pro, and thinking tokens are output tokens, spent from ``maxOutputTokens``).
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from msgspec import UNSET, Struct, UnsetType

from aimw.errors import GatewayError
from aimw.translators.anthropic import messages as a
from aimw.translators.gemini.contents import Conversation, Part
from aimw.translators.gemini.schema import function_parameters

logger = logging.getLogger("aimw.translators.gemini")

MAX_STOP_SEQUENCES = 5  # Gemini's limit on generationConfig.stopSequences
MAX_THINKING_BUDGET = 24576  # tokens: the largest thinkingBudget Gemini 2.5 Flash takes (2.5 Pro: 32768)
MAX_OUTPUT_TOKENS = 65536  # tokens: the largest maxOutputTokens Gemini 2.5 Flash and Pro take (2.0 models: 8192)


class FunctionDeclaration(Struct, rename="camel", omit_defaults=True):
    name: str
    description: str | UnsetType = UNSET
    parameters_json_schema: dict[str, Any] | UnsetType = UNSET


class Tool(Struct, rename="camel"):
    function_declarations: list[FunctionDeclaration]


class FunctionCallingConfig(Struct, rename="camel", omit_defaults=True):
    """``mode``: AUTO, ANY or NONE (Google's API reference, "FunctionCallingConfig")."""

    mode: str
    allowed_function_names: list[str] | UnsetType = UNSET


class ToolConfig(Struct, rename="camel"):
    function_calling_config: FunctionCallingConfig


class ThinkingConfig(Struct, rename="camel", omit_defaults=True):
    include_thoughts: bool | UnsetType = UNSET
    thinking_budget: int | UnsetType = UNSET


class GenerationConfig(Struct, rename="camel", omit_defaults=True):
    max_output_tokens: int | UnsetType = UNSET
    temperature: float | UnsetType = UNSET
    top_p: float | UnsetType = UNSET
    top_k: int | UnsetType = UNSET
    stop_sequences: list[str] | UnsetType = UNSET
    thinking_config: ThinkingConfig | UnsetType = UNSET


class SystemInstruction(Struct):
    parts: list[Part]


class Content(Struct):
    role: str
    parts: list[Part]


class GenerateContentRequest(Struct, rename="camel", omit_defaults=True):
    contents: list[Content]
    system_instruction: SystemInstruction | UnsetType = UNSET
    tools: list[Tool] | UnsetType = UNSET
    tool_config: ToolConfig | UnsetType = UNSET
    generation_config: GenerationConfig | UnsetType = UNSET


_request_encoder = msgspec.json.Encoder()


def request_from_anthropic(request: a.MessagesRequest) -> bytes:
    """Translate an Anthropic Messages request into a generateContent body (JSON bytes).

    - ``system`` and Claude Code's ``role: "system"`` turns -> ``systemInstruction`` (their
      texts, in order: contents take only roles user and model, so Gemini always gets what
      AIMW_SYSTEM_TURNS=merge gives a Chat Completions provider); user / assistant turns ->
      ``user`` / ``model`` contents, consecutive ones of a role merged (contents.Conversation
      says how each block travels).
    - client tools -> ``functionDeclarations`` with ``parametersJsonSchema`` (schema.py);
      server tools and deferred tools that tool search has not loaded are not sent.
    - ``tool_choice`` auto / any / tool / none -> ``functionCallingConfig`` AUTO / ANY /
      ANY + ``allowedFunctionNames`` / NONE (``disable_parallel_tool_use`` has no Gemini form).
    - ``max_tokens``, ``temperature``, ``top_p``, ``top_k``, ``stop_sequences`` ->
      ``generationConfig``; max_tokens at most 65536 (Gemini refuses a maxOutputTokens past
      the model's limit, "the supported range is from 1 (inclusive) to 65537 (exclusive)" on
      2.5 models; Claude Code asks 32000, or 128000 of its newest models). Gemini takes at
      most 5 stop sequences: the first 5 are sent and the number dropped is logged (a
      warning), so the request is still served; top_k 0 is not sent (Gemini's topK is
      positive).
    - thinking ``enabled`` -> ``thinkingConfig`` {``thinkingBudget``: budget_tokens, at most
      ``maxOutputTokens`` - 1 (the thoughts are spent from it: room is left for the answer,
      which matters once the gateway capped max_tokens) and 24576 (Gemini 2.5 Flash's
      largest), ``includeThoughts``: true}; ``adaptive`` and ``disabled`` leave the model's
      default (a Gemini 2.5 Pro cannot turn thinking off).
    - Anthropic-only fields (cache_control, metadata, context_management, output_config ...)
      are not sent.

    Raises:
        GatewayError: 400 for content or tools that have no Gemini form, or no content at all.
    """
    conversation = Conversation()
    system: list[str] = list(a.system_texts(request))
    for message in request.messages:
        if message.role == "system":
            system.extend(_system_texts(message))
        elif message.role == "assistant":
            conversation.model(message)
        else:
            conversation.user(message)
    contents = [Content(role, parts) for role, parts in conversation.finish()]
    if not contents:
        raise GatewayError(400, "the request has no user or assistant content to send to Gemini")
    gemini = GenerateContentRequest(contents=contents, generation_config=_generation_config(request))
    texts = [Part(text=text) for text in system if text]
    if texts:
        gemini.system_instruction = SystemInstruction(texts)
    declarations = _declarations(request)
    if declarations:
        gemini.tools = [Tool(declarations)]
    if request.tool_choice is not UNSET:
        gemini.tool_config = _tool_config(request.tool_choice, declarations)
    return _request_encoder.encode(gemini)


def _system_texts(message: a.Message) -> list[str]:
    if isinstance(message.content, str):
        return [message.content]
    return [text for text in map(a.block_text, message.content) if text is not None]


def _declarations(request: a.MessagesRequest) -> list[FunctionDeclaration]:
    """The request's client tools (messages.client_tools) as function declarations."""
    declarations = []
    for tool in a.client_tools(request):
        parameters = function_parameters(tool.input_schema, tool.name)
        declarations.append(
            FunctionDeclaration(
                name=tool.name,
                description=tool.description,
                parameters_json_schema=UNSET if parameters is None else parameters,
            )
        )
    return declarations


_MODES = {"auto": "AUTO", "any": "ANY", "tool": "ANY", "none": "NONE"}


def _tool_config(choice: a.ToolChoice, declarations: list[FunctionDeclaration]) -> ToolConfig | UnsetType:
    """Gemini refuses ANY without functions and allowedFunctionNames naming an undeclared one."""
    if choice.type in ("auto", "none") and not declarations:
        return UNSET
    if not declarations:
        raise GatewayError(400, f"tool_choice {choice.type!r} needs at least one client tool")
    config = FunctionCallingConfig(mode=_MODES[choice.type])
    if choice.type == "tool":
        if choice.name is UNSET:
            raise GatewayError(400, "tool_choice of type 'tool' needs a name")
        if choice.name not in {declaration.name for declaration in declarations}:
            raise GatewayError(400, f"tool_choice names {choice.name!r}, which is not one of the tools")
        config.allowed_function_names = [choice.name]
    return ToolConfig(config)


def _generation_config(request: a.MessagesRequest) -> GenerationConfig | UnsetType:
    stops = request.stop_sequences or []
    if len(stops) > MAX_STOP_SEQUENCES:
        logger.warning(
            "Gemini takes at most %d stop_sequences: %d dropped", MAX_STOP_SEQUENCES, len(stops) - MAX_STOP_SEQUENCES
        )
    max_tokens = request.max_tokens
    if not isinstance(max_tokens, UnsetType):
        max_tokens = min(max_tokens, MAX_OUTPUT_TOKENS)
    config = GenerationConfig(
        max_output_tokens=max_tokens,
        temperature=request.temperature,
        top_p=request.top_p,
        top_k=request.top_k if request.top_k != 0 else UNSET,
        stop_sequences=stops[:MAX_STOP_SEQUENCES] if stops else UNSET,
    )
    thinking = request.thinking
    if thinking is not UNSET and thinking.type == "enabled":
        budget = _thinking_budget(thinking.budget_tokens, max_tokens)
        config.thinking_config = ThinkingConfig(include_thoughts=True, thinking_budget=budget)
    return UNSET if config == GenerationConfig() else config


def _thinking_budget(budget: int | UnsetType, max_tokens: int | UnsetType) -> int | UnsetType:
    """``budget`` (tokens) within 0 .. MAX_THINKING_BUDGET and below ``max_tokens``."""
    if budget is UNSET:
        return UNSET
    limit = MAX_THINKING_BUDGET if max_tokens is UNSET else min(MAX_THINKING_BUDGET, max_tokens - 1)
    return max(0, min(budget, limit))
