"""OpenAI Chat Completions, and every server that speaks it (vLLM, Ollama, llama.cpp, LM Studio).

Source: OpenAI API reference, "Chat Completions - Create"
(``POST https://api.openai.com/v1/chat/completions``, ``Authorization: Bearer``;
``max_tokens`` is deprecated and not accepted by reasoning models (o-series, gpt-5),
which take ``max_completion_tokens``).
"""

from aimw.providers import Provider
from aimw.translators.openai_chat import ChatOptions, MaxTokensField, OpenAIChat

DEFAULT_MODEL = "gpt-4.1"
_COMPLETION_TOKENS_MODELS = ("o1", "o3", "o4", "gpt-5")


def max_tokens_field_for(model: str) -> MaxTokensField:
    """``max_completion_tokens`` for OpenAI's reasoning model families, else ``max_tokens``
    (what self-hosted OpenAI-compatible servers accept)."""
    return "max_completion_tokens" if model.startswith(_COMPLETION_TOKENS_MODELS) else "max_tokens"


def openai(model: str = DEFAULT_MODEL, *, max_tokens_field: MaxTokensField | None = None) -> Provider:
    """The Provider for OpenAI (or a compatible server at AIMW_UPSTREAM_URL) serving ``model``."""
    options = ChatOptions(max_tokens_field=max_tokens_field or max_tokens_field_for(model))
    return Provider(
        name="openai", base_url="https://api.openai.com", wire_format=OpenAIChat(options), default_model=model
    )
