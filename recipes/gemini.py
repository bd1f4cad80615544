"""Claude Code -> aimw -> Google's Gemini API (generateContent), with an API key.

GEMINI_API_KEY=AIza... hypercorn recipes.gemini:app
"""

from aimw import Settings, required_env, translated_gateway
from aimw.providers.gemini import DEFAULT_MAX_TOKENS, GEMINI

settings = Settings.from_env()
key = required_env("GEMINI_API_KEY", "the gemini recipe sends it to the Gemini API (export GEMINI_API_KEY=AIza...)")
app = translated_gateway(GEMINI, settings, secret=key, default_max_tokens=DEFAULT_MAX_TOKENS)
