"""Anthropic's own Messages API, reached without translation (for logging and control).

Source: Anthropic API reference, "Messages" (``POST https://api.anthropic.com/v1/messages``,
``x-api-key``, ``anthropic-version``) and "Count message tokens"
(``POST /v1/messages/count_tokens``).
"""

from aimw.providers import Provider

ANTHROPIC = Provider(
    name="anthropic",
    base_url="https://api.anthropic.com",
    path="/v1/messages",
    wire_format="anthropic",
    default_model="claude-sonnet-4-5",
    auth_header="x-api-key",
    auth_prefix="",
)
