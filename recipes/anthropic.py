"""Claude Code -> aimw -> Anthropic, unchanged: every exchange logged and counted.

hypercorn recipes.anthropic:app                          # the client's own key passes
ANTHROPIC_API_KEY=sk-ant-... hypercorn recipes.anthropic:app  # the gateway's key replaces it
"""

from aimw import Settings, optional_env, passthrough_gateway
from aimw.providers.anthropic import ANTHROPIC

settings = Settings.from_env()
app = passthrough_gateway(ANTHROPIC, settings, secret=optional_env("ANTHROPIC_API_KEY"))
