"""OpenAI Chat Completions as a :class:`~aimw.types.WireFormat`: its options and its three
entry points (request, JSON answer, stream)."""

from __future__ import annotations

from typing import Literal

import msgspec

from aimw.errors import GatewayError, error_from_provider
from aimw.translators.openai_chat.request import SystemTurns, ThinkingFormat, request_from_anthropic
from aimw.translators.openai_chat.response import response_to_anthropic
from aimw.translators.openai_chat.stream import ChatStreamTranslator
from aimw.translators.wire import AnthropicAnswer, AnthropicCall, UpstreamRequest

MaxTokensField = Literal["max_tokens", "max_completion_tokens"]


class ChatOptions(msgspec.Struct, frozen=True):
    """What differs between servers of Chat Completions.

    path: the request path (``/v1/chat/completions``; Azure's names the deployment).
    query: the raw query string, without ``?`` (Azure's ``api-version=…``).
    max_tokens_field: ``max_tokens``, or ``max_completion_tokens`` (OpenAI's reasoning models
        and Azure deployments of them accept only that).
    thinking: how Anthropic thinking is sent (``none`` or ``qwen``, see ThinkingFormat).
    system_turns: where Claude Code's ``role: "system"`` turns go (``inline`` or ``merge``,
        see SystemTurns; AIMW_SYSTEM_TURNS).
    """

    path: str = "/v1/chat/completions"
    query: str = ""
    max_tokens_field: MaxTokensField = "max_tokens"
    thinking: ThinkingFormat = "none"
    system_turns: SystemTurns = "inline"


class OpenAIChat:
    """Anthropic Messages <-> OpenAI Chat Completions for one kind of server (``options``)."""

    name = "openai_chat"
    passthrough = False
    parses_request = True

    __slots__ = ("_query", "options")

    def __init__(self, options: ChatOptions | None = None) -> None:
        self.options = options or ChatOptions()
        self._query = self.options.query.encode()

    def __repr__(self) -> str:
        return f"OpenAIChat({self.options!r})"

    def build_request(self, call: AnthropicCall) -> UpstreamRequest:
        if call.request is None:
            raise GatewayError(500, "openai_chat needs the parsed Messages request", "api_error")
        body = request_from_anthropic(
            call.request,
            call.model,
            max_tokens_field=self.options.max_tokens_field,
            thinking_format=self.options.thinking,
            system_turns=self.options.system_turns,
        )
        return UpstreamRequest(self.options.path, self._query, body)

    def response_to_anthropic(self, body: bytes, model: str) -> AnthropicAnswer:
        return response_to_anthropic(body, model)

    def error_to_anthropic(self, status: int, body: bytes) -> tuple[int, bytes]:
        return error_from_provider(status, body)

    def retry_after(self, status: int, body: bytes) -> int | None:
        """None: Chat Completions servers say it in their own ``retry-after`` header."""
        return None

    def new_stream(self, model: str) -> ChatStreamTranslator:
        return ChatStreamTranslator(model)
