"""The gateway's configuration file, in Kong's own schema: the ``config`` of Kong's
ai-proxy-advanced plugin (same names, same defaults, same meaning; Kong's ai-proxy-advanced
reference), or a deck file holding Kong's Claude Code guides' plugins.

    AIMW_CONFIG=gateway.yaml hypercorn recipes.config:app

- :func:`load_config` reads the file (YAML or JSON; plain or deck), substitutes the
  environment's secrets (``${VAR}``, ``{vault://env/var-name}``, ``${{ env "DECK_VAR" }}``)
  and types it as a :class:`GatewayConfig`; any problem stops the server at start with a
  ConfigurationError naming the field's path and what is expected.
- :func:`build_targets` turns its targets into :class:`TargetSpec` s: provider, URL, wire
  format, credential, model, field rules.

Modules: schema (the Structs), deck (deck files), environment (substitution), endpoint
(``upstream_url``), problems (error paths), load, targets.
"""

from aimw.config.load import load_config
from aimw.config.schema import GatewayConfig
from aimw.config.targets import TargetSpec, build_targets

__all__ = ["GatewayConfig", "TargetSpec", "build_targets", "load_config"]
