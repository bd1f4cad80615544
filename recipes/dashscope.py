"""Claude Code -> aimw -> Alibaba Cloud Model Studio (DashScope), Qwen models.

DASHSCOPE_API_KEY=sk-... hypercorn recipes.dashscope:app
"""

from aimw import Settings, choice_env, required_env, translated_gateway
from aimw.providers.dashscope import DEFAULT_MAX_TOKENS, DEFAULT_TEMPERATURE, dashscope

settings = Settings.from_env()
key = required_env(
    "DASHSCOPE_API_KEY", "the dashscope recipe sends it to Model Studio (export DASHSCOPE_API_KEY=sk-...)"
)
provider = dashscope(choice_env("DASHSCOPE_REGION", ("international", "china")))
app = translated_gateway(
    provider,
    settings,
    secret=key,
    default_max_tokens=DEFAULT_MAX_TOKENS,
    default_temperature=DEFAULT_TEMPERATURE,
)
