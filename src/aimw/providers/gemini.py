"""Google's Gemini API (generateContent) with an API key.

Source: Gemini API reference, "Generating content"
(``POST https://generativelanguage.googleapis.com/v1beta/models/{model}:generateContent``,
``:streamGenerateContent?alt=sse``) and "API keys" (the ``x-goog-api-key`` header). The key
goes in the header, never in the query string (a query is logged by every proxy on the way).
Kong's Claude Code guide for Gemini sets max_tokens 8192.
"""

from functools import partial

from aimw.credentials import HeaderCredential
from aimw.providers import Provider
from aimw.translators.gemini import Gemini, GeminiOptions

DEFAULT_MODEL = "gemini-2.5-flash"
DEFAULT_MAX_TOKENS = 8192  # tokens

GEMINI = Provider(
    name="gemini",
    base_url="https://generativelanguage.googleapis.com",
    wire_format=Gemini(GeminiOptions()),
    default_model=DEFAULT_MODEL,
    credential=partial(HeaderCredential, "x-goog-api-key"),
)
