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
- :func:`load_consumers` reads the consumers file of ``AIMW_CONSUMERS`` (Kong's consumers
  with their ``keyauth_credentials``, also the config file's top-level ``consumers``);
  :func:`keyring` turns consumers into what ClientAuthMiddleware looks keys up in.
- The file's ``rate_limiting`` section (Kong's ai-rate-limiting-advanced ``config``) is
  typed by aimw.rate_limiting.config with the rest, and served by aimw.rate_limiting.

Modules: schema (the Structs), deck (deck files), environment (substitution), endpoint
(``upstream_url``), problems (error paths), load, targets, consumers (and consumers_file).
"""

from aimw.config.consumers import AuthenticatedConsumer, Consumer, KeyauthCredential, keyring
from aimw.config.consumers_file import load_consumers
from aimw.config.load import load_config
from aimw.config.schema import GatewayConfig
from aimw.config.targets import TargetSpec, build_targets

__all__ = [
    "AuthenticatedConsumer",
    "Consumer",
    "GatewayConfig",
    "KeyauthCredential",
    "TargetSpec",
    "build_targets",
    "keyring",
    "load_config",
    "load_consumers",
]
