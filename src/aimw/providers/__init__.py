"""Where each provider lives: its wire format (with that format's options), base URL,
default model, kind of credential and log meta. Data and tiny functions only; recipes
combine a Provider with Settings.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from aimw.credentials import bearer
from aimw.types import Credential, WireFormat


@dataclass(frozen=True, slots=True)
class Provider:
    """One provider's facts.

    name: Kong's provider_name (``huggingface``, ``azure`` ...).
    base_url: scheme://host[:port] of the real service.
    wire_format: the WireFormat object it speaks, its options set (path, query, fields).
    default_model: the model used when neither AIMW_MODEL nor the client names one.
    credential: makes the provider's Credential from its secret (default ``Authorization:
        Bearer``).
    log_meta: extra ai.proxy.meta fields (Kong's names, e.g. azure_instance_id).
    """

    name: str
    base_url: str
    wire_format: WireFormat
    default_model: str
    credential: Callable[[str], Credential] = bearer
    log_meta: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def credential_for(self, secret: str | None) -> Credential | None:
        """The provider's credential for ``secret``; None when there is no secret."""
        return None if secret is None else self.credential(secret)
