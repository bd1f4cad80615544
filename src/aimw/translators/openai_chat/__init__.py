"""Anthropic Messages <-> OpenAI Chat Completions, wire to wire.

Sources: OpenAI API reference, "Chat Completions" (create, the chat completion object,
the chat completion chunk object, ``stream_options.include_usage``); Anthropic API
reference, "Messages" and "Streaming Messages". Also spoken by Hugging Face's router and
TGI, Azure OpenAI, DashScope's compatible mode, vLLM, Ollama, llama.cpp and LM Studio;
``reasoning_content`` (DeepSeek, Qwen, vLLM) and ``reasoning`` (vLLM, OpenRouter) carry
thinking.

The wire format is :class:`OpenAIChat` (``ChatOptions`` say what differs between servers);
its parts are pure functions and one per-stream state object:
    request_from_anthropic(request, model, ...) -> bytes   (Chat Completions JSON body)
    response_to_anthropic(body, fallback_model) -> AnthropicAnswer
    ChatStreamTranslator(model): feed(bytes) -> bytes, finish() -> bytes (Anthropic SSE bytes)
"""

from aimw.translators.openai_chat.request import ThinkingFormat, request_from_anthropic
from aimw.translators.openai_chat.response import response_to_anthropic, stop_reason_for
from aimw.translators.openai_chat.stream import ChatStreamTranslator
from aimw.translators.openai_chat.wire import ChatOptions, MaxTokensField, OpenAIChat

__all__ = [
    "ChatOptions",
    "ChatStreamTranslator",
    "MaxTokensField",
    "OpenAIChat",
    "ThinkingFormat",
    "request_from_anthropic",
    "response_to_anthropic",
    "stop_reason_for",
]
