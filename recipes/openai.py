"""Claude Code -> aimw -> OpenAI, or any OpenAI-compatible server (vLLM, Ollama, llama.cpp, LM Studio).

OPENAI_API_KEY=sk-... hypercorn recipes.openai:app
AIMW_UPSTREAM_URL=http://localhost:11434 AIMW_MODEL=qwen3-coder hypercorn recipes.openai:app
"""

from aimw import Settings, choice_env, optional_env, required_env, translated_gateway
from aimw.providers.openai import DEFAULT_MODEL, openai

settings = Settings.from_env()
if settings.upstream_url is None:
    key = required_env(
        "OPENAI_API_KEY", "the openai recipe sends it to api.openai.com (or set AIMW_UPSTREAM_URL for a local server)"
    )
else:
    key = optional_env("OPENAI_API_KEY")
max_tokens_field = choice_env("OPENAI_MAX_TOKENS_FIELD", ("auto", "max_tokens", "max_completion_tokens"))
provider = openai(
    settings.model or DEFAULT_MODEL, max_tokens_field=None if max_tokens_field == "auto" else max_tokens_field
)
app = translated_gateway(provider, settings, secret=key)
