"""Claude Code -> aimw -> many targets, from a configuration file in Kong's own schema (the
``config`` of Kong's ai-proxy-advanced plugin, or a deck file of Kong's Claude Code guides).

    AIMW_CONFIG=gateway.yaml hypercorn recipes.config:app

Secrets stay in the environment: ``${VAR}``, ``{vault://env/var-name}`` or
``${{ env "DECK_VAR" }}`` in the file. A ``rate_limiting:`` section (Kong's
ai-rate-limiting-advanced ``config``) caps each consumer's tokens and spend; with
``strategy: redis`` the counts are shared through its ``redis:`` record or AIMW_REDIS_URL.
"""

from aimw import Settings, config_gateway, required_env
from aimw.config import load_config

settings = Settings.from_env()
config = load_config(required_env("AIMW_CONFIG", "the config recipe serves the targets of this YAML or JSON file"))
app = config_gateway(config, settings)
