"""Anthropic's own Messages API, reached without translation (for logging and control).

Source: Anthropic API reference, "Messages" (``POST https://api.anthropic.com/v1/messages``,
``x-api-key``, ``anthropic-version``) and "Count message tokens"
(``POST /v1/messages/count_tokens``).
"""

from functools import partial

from aimw.credentials import HeaderCredential
from aimw.providers import Provider
from aimw.translators.anthropic import ANTHROPIC_MESSAGES

ANTHROPIC = Provider(
    name="anthropic",
    base_url="https://api.anthropic.com",
    wire_format=ANTHROPIC_MESSAGES,
    default_model="claude-sonnet-4-5",
    credential=partial(HeaderCredential, "x-api-key"),
)
