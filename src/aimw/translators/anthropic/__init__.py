"""Anthropic, the hub every translation goes through: the Messages API Structs (messages),
the stream events (events), the stream writer every translator drives (stream_writer), and
Anthropic's own format passed through (passthrough)."""

from aimw.translators.anthropic.passthrough import ANTHROPIC_MESSAGES, AnthropicMessages
from aimw.translators.anthropic.stream_writer import AnthropicStreamWriter

__all__ = ["ANTHROPIC_MESSAGES", "AnthropicMessages", "AnthropicStreamWriter"]
