"""Alibaba Cloud Model Studio (DashScope), OpenAI-compatible mode, for Qwen models.

Source: Alibaba Cloud Model Studio docs, "OpenAI compatibility - Chat"
(``POST https://dashscope-intl.aliyuncs.com/compatible-mode/v1/chat/completions``
internationally, ``dashscope.aliyuncs.com`` in mainland China, ``Authorization: Bearer``),
and "Deep thinking" (``enable_thinking``, ``thinking_budget``, ``reasoning_content``).
Kong's Claude Code guide for DashScope sets max_tokens 8192 and temperature 1.0.
"""

from types import MappingProxyType

from aimw.providers import Provider
from aimw.translators.openai_chat import ChatOptions, OpenAIChat

REGION_HOSTS = MappingProxyType(
    {"international": "https://dashscope-intl.aliyuncs.com", "china": "https://dashscope.aliyuncs.com"}
)
DEFAULT_MAX_TOKENS = 8192  # tokens
DEFAULT_TEMPERATURE = 1.0
QWEN_CHAT = OpenAIChat(ChatOptions(path="/compatible-mode/v1/chat/completions", thinking="qwen"))


def dashscope(region: str = "international") -> Provider:
    """The Provider for DashScope in ``region`` (``international`` or ``china``)."""
    return Provider(name="dashscope", base_url=REGION_HOSTS[region], wire_format=QWEN_CHAT, default_model="qwen-plus")
