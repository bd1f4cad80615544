"""Where each provider lives: base URL, path, wire format, default model, auth, log meta.

Data and tiny functions only; recipes combine a Provider with Settings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from aimw.translators.openai_chat import ThinkingFormat

WireFormat = Literal["openai_chat", "anthropic"]


@dataclass(frozen=True, slots=True)
class Provider:
    """One provider's facts.

    name: Kong's provider_name (``huggingface``, ``azure`` ...).
    base_url: scheme://host[:port] of the real service.
    path: the request path; ``{model}`` is replaced by the upstream model name.
    query: the query string sent upstream (without ``?``), e.g. Azure's api-version.
    wire_format: the format the provider speaks.
    default_model: the model used when neither AIMW_MODEL nor the client names one.
    auth_header: the request header carrying the credential (lower-case).
    auth_prefix: what stands before the credential in that header (``"Bearer "`` or ``""``).
    max_tokens_field: ``max_tokens`` or ``max_completion_tokens`` (OpenAI reasoning models).
    thinking_format: how Anthropic thinking is sent (``none`` or ``qwen``), see openai_chat.
    log_meta: extra ai.proxy.meta fields (Kong's names, e.g. azure_instance_id).
    """

    name: str
    base_url: str
    path: str
    wire_format: WireFormat
    default_model: str
    auth_header: str = "authorization"
    auth_prefix: str = "Bearer "
    query: str = ""
    max_tokens_field: str = "max_tokens"
    thinking_format: ThinkingFormat = "none"
    log_meta: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def upstream_path(self, model: str) -> tuple[str, str]:
        """(path, query) of the upstream request for ``model``."""
        return self.path.replace("{model}", model), self.query
