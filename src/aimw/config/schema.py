"""Kong's ai-proxy-advanced ``config`` as typed Structs: the same field names, defaults and
meaning (Kong's ai-proxy-advanced reference, and Kong's ``kong/llm/schemas`` for the
``targets[]`` records), checked when the document is converted.

Every Struct refuses unknown fields (a typo is an error naming its path). Kong fields that
aimw cannot honour are declared, so that a configuration written for Kong (or dumped by
deck, which writes every field) loads while they are unset, and is refused naming them
once they are set. Checks across fields raise ``ValueError("<field path>: <what is
expected>")``, which msgspec reports at the Struct's own path.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, ClassVar, Literal

import msgspec

from aimw.config.consumers import Consumer, keyring
from aimw.config.endpoint import endpoint
from aimw.middleware.failover import FailoverCriterion
from aimw.rate_limiting.config import RateLimiting
from aimw.settings import DEFAULT_MAX_REQUEST_BODY_SIZE

Milliseconds = Annotated[int, msgspec.Meta(ge=0, le=2**31 - 2)]  # Kong's timeout typedef
Algorithm = Literal[
    "round-robin", "consistent-hashing", "lowest-latency", "lowest-usage", "priority", "least-connections"
]
ProviderName = Literal["anthropic", "azure", "dashscope", "gemini", "huggingface", "openai"]

KONG_DEFAULT_TIMEOUT = 60_000  # ms
KONG_DEFAULT_FAIL_TIMEOUT = 10_000  # ms
KONG_DEFAULT_AZURE_API_VERSION = "2023-05-15"
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 token
_HEADER_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")  # RFC 9110 field-value: no CR, LF, NUL


class KongStruct(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A record of Kong's schema. ``UNSUPPORTED`` names its Kong fields aimw refuses once
    they are set (null, false or absent is fine), with the reason."""

    UNSUPPORTED: ClassVar[Mapping[str, str]] = {}

    def __post_init__(self) -> None:
        for name, reason in self.UNSUPPORTED.items():
            if getattr(self, name) not in (None, False):
                raise ValueError(f"{name}: not supported by aimw ({reason})")


class Balancer(KongStruct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """``config.balancer``: how a target is picked and when the next one is tried.

    algorithm: ``round-robin`` (by weight), ``consistent-hashing`` (on ``hash_on_header``),
        ``lowest-latency`` (``latency_strategy``), ``lowest-usage`` (``tokens_count_strategy``),
        ``priority`` (by weight group), ``least-connections``. Kong's ``semantic`` (embeddings
        and a vector database) is out of aimw's scope and refused.
    retries: how many more targets one request may try (default 5).
    failover_criteria: the failures that move a request to the next target (nginx's
        proxy_next_upstream names; default ``error``, ``timeout``).
    connect_timeout / read_timeout / write_timeout: ms (default 60000 each).
    max_fails: failures within ``fail_timeout`` that take a target out of the pick; 0 (the
        default) turns this circuit breaker off. fail_timeout: ms (default 10000).
    hash_on_header: the header consistent-hashing hashes (default ``X-Kong-LLM-Request-ID``).
    latency_strategy: ``tpot`` (time per output token, default) or ``e2e`` (whole request).
    tokens_count_strategy: ``total-tokens`` (default), ``prompt-tokens``,
        ``completion-tokens`` or ``cost``.
    slots: Kong's hash ring size (default 10000): accepted, unused by aimw.
    """

    algorithm: Algorithm = "round-robin"
    retries: Annotated[int, msgspec.Meta(ge=0, le=32767)] = 5
    failover_criteria: tuple[FailoverCriterion, ...] = ("error", "timeout")
    connect_timeout: Milliseconds = KONG_DEFAULT_TIMEOUT
    read_timeout: Milliseconds = KONG_DEFAULT_TIMEOUT
    write_timeout: Milliseconds = KONG_DEFAULT_TIMEOUT
    max_fails: Annotated[int, msgspec.Meta(ge=0, le=32767)] = 0
    fail_timeout: Milliseconds = KONG_DEFAULT_FAIL_TIMEOUT
    hash_on_header: str = "X-Kong-LLM-Request-ID"
    latency_strategy: Literal["tpot", "e2e"] = "tpot"
    tokens_count_strategy: Literal["total-tokens", "prompt-tokens", "completion-tokens", "cost"] = "total-tokens"
    slots: Annotated[int, msgspec.Meta(ge=10, le=2**16)] = 10000

    def __post_init__(self) -> None:
        super().__post_init__()
        _header_name("hash_on_header", self.hash_on_header)


class Auth(KongStruct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """``targets[].auth``: the credential aimw sends to the target's provider (at most one way).

    header_name / header_value: a header, the value whole (``Authorization`` with
        ``Bearer sk-…``, Azure's ``api-key`` with the key).
    param_name / param_value / param_location: a query parameter (Gemini's ``key``);
        ``param_location: body`` is refused: no provider aimw serves reads its key there.
    gcp_use_service_account: an OAuth token of a Google service account (Vertex AI): the
        key's JSON (or its file's path) in ``gcp_service_account_json``, else the variable
        ``GCP_SERVICE_ACCOUNT`` (Kong's fallback), else Application Default Credentials.
    allow_override: refused when true: it would let a client's own header or parameter
        replace the configured credential; in aimw the configured one is always sent and
        clients authenticate to the gateway itself.
    azure_use_managed_identity (and azure_client_id, azure_client_secret, azure_tenant_id):
        refused when set: aimw has no Azure managed-identity token source; give the key.
    aws_access_key_id / aws_secret_access_key: Bedrock's, refused when set.

    ``repr`` never shows a secret (``SECRETS``).
    """

    UNSUPPORTED: ClassVar[Mapping[str, str]] = {
        "allow_override": "the configured credential always replaces the client's",
        "azure_use_managed_identity": "no Azure managed identity; give the key in header_name: api-key",
        "azure_client_id": "used only with azure_use_managed_identity",
        "azure_client_secret": "used only with azure_use_managed_identity",
        "azure_tenant_id": "used only with azure_use_managed_identity",
        "aws_access_key_id": "Bedrock's, a provider aimw does not serve",
        "aws_secret_access_key": "Bedrock's, a provider aimw does not serve",
    }

    SECRETS: ClassVar[frozenset[str]] = frozenset(
        (
            "header_value",
            "param_value",
            "gcp_service_account_json",
            "azure_client_secret",
            "aws_access_key_id",
            "aws_secret_access_key",
        )
    )

    header_name: str | None = None
    header_value: str | None = None
    param_name: str | None = None
    param_value: str | None = None
    param_location: Literal["query", "body"] | None = None
    gcp_use_service_account: bool = False
    gcp_service_account_json: str | None = None
    allow_override: bool = False
    azure_use_managed_identity: bool = False
    azure_client_id: str | None = None
    azure_client_secret: str | None = None
    azure_tenant_id: str | None = None
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = None

    def __repr__(self) -> str:
        """The fields, the secrets' values shown as ``<redacted>``."""
        shown = (
            (name, "<redacted>" if name in self.SECRETS and value is not None else repr(value))
            for name, value in msgspec.structs.asdict(self).items()
        )
        return f"Auth({', '.join(f'{name}={value}' for name, value in shown)})"

    def __post_init__(self) -> None:
        super().__post_init__()
        _together("header_name", self.header_name, "header_value", self.header_value)
        _together("param_name", self.param_name, "param_value", self.param_value)
        _together("param_name", self.param_name, "param_location", self.param_location)
        if self.param_location == "body":
            raise ValueError("param_location: body is not supported by aimw (expected query)")
        ways = [name for name in ("header_name", "param_name") if getattr(self, name) is not None]
        ways += ["gcp_use_service_account"] if self.gcp_use_service_account else []
        if len(ways) > 1:
            raise ValueError(f"{ways[1]}: expected one credential per target, not both {ways[0]} and {ways[1]}")
        if self.gcp_service_account_json is not None and not self.gcp_use_service_account:
            raise ValueError("gcp_service_account_json: used only with gcp_use_service_account: true")
        if self.header_name is not None:
            _header_name("header_name", self.header_name)
        if self.header_value is not None and not _HEADER_VALUE.fullmatch(self.header_value):
            raise ValueError("header_value: expected a header value (Latin-1 text, no line break)")


def _header_name(field: str, value: str) -> None:
    if not _HEADER_NAME.fullmatch(value):
        raise ValueError(f"{field}: expected a header name (letters, digits, -)")


def _together(name: str, value: object, other: str, other_value: object) -> None:
    """Kong's ``mutually_required``: both or neither."""
    if (value is None) != (other_value is None):
        missing = other if value is not None else name
        raise ValueError(f"{missing}: required with {other if missing == name else name}")


class GeminiVertexOptions(KongStruct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """``model.options.gemini``: Vertex AI's ``api_endpoint`` (a host, e.g.
    ``us-central1-aiplatform.googleapis.com``), ``project_id`` and ``location_id``, all three
    or none (Kong's mutually_required); none means the Gemini API."""

    api_endpoint: str | None = None
    project_id: str | None = None
    location_id: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        _together("api_endpoint", self.api_endpoint, "project_id", self.project_id)
        _together("api_endpoint", self.api_endpoint, "location_id", self.location_id)


class HuggingfaceOptions(KongStruct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """``model.options.huggingface``: ``use_cache`` and ``wait_for_model`` of Hugging Face's
    former Inference API; accepted, unused by its router (which aimw calls)."""

    use_cache: bool | None = None
    wait_for_model: bool | None = None


class ModelOptions(KongStruct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """``targets[].model.options``.

    max_tokens: caps the request's max_tokens (tokens). temperature (0-5), top_p (0-1),
        top_k (0-500): set on every request when given.
    input_cost / output_cost: price per million prompt / completion tokens, for the log's cost.
    upstream_url / upstream_path: the provider's endpoint (see aimw.config.endpoint).
    anthropic_version: accepted (Kong's Anthropic guide sets it); the client's
        ``anthropic-version`` header is what Anthropic receives.
    azure_instance, azure_deployment_id (both required for azure), azure_api_version (Kong's
        default 2023-05-15 predates tool calling, which Claude Code needs: Kong's Azure
        guide sets 2025-01-01-preview).
    gemini: Vertex AI's location (GeminiVertexOptions). huggingface: HuggingfaceOptions.
    llama2_format, mistral_format, bedrock: for providers aimw does not serve; refused when set.
    """

    UNSUPPORTED: ClassVar[Mapping[str, str]] = {
        "llama2_format": "for provider llama2",
        "mistral_format": "for provider mistral",
        "bedrock": "for provider bedrock",
    }

    max_tokens: Annotated[int, msgspec.Meta(ge=1)] | None = None
    temperature: Annotated[float, msgspec.Meta(ge=0.0, le=5.0)] | None = None
    top_p: Annotated[float, msgspec.Meta(ge=0.0, le=1.0)] | None = None
    top_k: Annotated[int, msgspec.Meta(ge=0, le=500)] | None = None
    input_cost: Annotated[float, msgspec.Meta(gt=0.0)] | None = None
    output_cost: Annotated[float, msgspec.Meta(gt=0.0)] | None = None
    upstream_url: str | None = None
    upstream_path: str | None = None
    anthropic_version: str | None = None
    azure_instance: str | None = None
    azure_deployment_id: str | None = None
    azure_api_version: str = KONG_DEFAULT_AZURE_API_VERSION
    gemini: GeminiVertexOptions | None = None
    huggingface: HuggingfaceOptions | None = None
    llama2_format: str | None = None
    mistral_format: str | None = None
    bedrock: dict[str, object] | None = None


class Model(KongStruct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """``targets[].model``.

    provider: Kong's provider_name: ``anthropic``, ``azure``, ``dashscope``, ``gemini`` (the
        Gemini API, or Vertex AI with ``options.gemini``, as in Kong), ``huggingface``,
        ``openai``. Kong's bedrock, cohere, llama2 and mistral are refused.
    name: the model sent upstream; absent, the client's model is sent (Kong's meaning), or
        for gemini the model an ``upstream_url`` names.
    model_alias: aimw's: the client models this target serves, one fnmatch pattern or a list
        (``claude-haiku-*``); absent, any client model.
    options: ModelOptions.
    max_tokens: outside Kong's schema, yet Kong's Vertex AI guide for Claude Code writes
        ``max_tokens: 8192`` here: read as ``options.max_tokens`` so that the guide's
        configuration loads as written (an error when both are given).
    """

    provider: ProviderName
    name: str | None = None
    model_alias: str | tuple[str, ...] = ()
    options: ModelOptions = msgspec.field(default_factory=ModelOptions)
    max_tokens: Annotated[int, msgspec.Meta(ge=1)] | None = None

    @property
    def aliases(self) -> tuple[str, ...]:
        """``model_alias`` as a tuple of patterns (``()``: any client model)."""
        return (self.model_alias,) if isinstance(self.model_alias, str) else self.model_alias

    @property
    def max_tokens_cap(self) -> int | None:
        """``options.max_tokens``, else the guide's ``model.max_tokens`` (tokens)."""
        return self.options.max_tokens if self.options.max_tokens is not None else self.max_tokens

    def __post_init__(self) -> None:
        super().__post_init__()
        options = self.options
        if self.max_tokens is not None and options.max_tokens is not None:
            raise ValueError("max_tokens: given twice; expected only options.max_tokens")
        if not all(self.aliases):
            raise ValueError("model_alias: expected non-empty patterns")
        if self.provider == "azure":
            for name in ("azure_instance", "azure_deployment_id"):
                if not getattr(options, name):
                    raise ValueError(f"options.{name}: required for provider azure")
        if options.gemini is not None and self.provider != "gemini":
            raise ValueError("options.gemini: only for provider gemini (Vertex AI)")
        endpoint(self.provider, options.upstream_url, options.upstream_path, options.azure_api_version)


class Logging(KongStruct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """``targets[].logging``: ``log_statistics`` (usage, latencies and cost in the log line's
    ai.proxy) and ``log_payloads`` (request and response bodies as ai.proxy.payload); both
    default false."""

    log_statistics: bool = False
    log_payloads: bool = False


class Target(KongStruct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """``config.targets[]``: one provider and model the balancer may pick.

    route_type: ``llm/v1/chat`` only (required in Kong; aimw's default, Claude Code's
        Messages requests being chat).
    weight: 1-65535 (default 100). description: free text.
    auth (Auth), model (Model, required), logging (Logging).
    """

    route_type: Literal["llm/v1/chat"] = "llm/v1/chat"
    weight: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 100
    description: str | None = None
    auth: Auth = msgspec.field(default_factory=Auth)
    model: Model
    logging: Logging = msgspec.field(default_factory=Logging)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.auth.gcp_use_service_account and self.model.provider != "gemini":
            raise ValueError("auth.gcp_use_service_account: only for provider gemini (Vertex AI)")


class Log(KongStruct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """``config.log``, aimw's (outside Kong's schema; a deck file's file-log plugin):
    ``path``, the JSON-lines log file."""

    path: Annotated[str, msgspec.Meta(min_length=1)]


class GatewayConfig(KongStruct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """The gateway's configuration: Kong's ai-proxy-advanced ``config``.

    llm_format: required, and only ``anthropic``: Claude Code speaks Anthropic's Messages
        format, and Kong's default (``openai``) means another one, so it is never implied.
    max_request_body_size: bytes, 0 for unlimited. Absent, aimw's 8 MiB
        (AIMW_MAX_REQUEST_BODY_SIZE's default), not Kong's 8192: Claude Code's requests carry
        its whole tool list and run to about 100 KB, so Kong's default would refuse them all.
    model_name_header: the ``X-Kong-LLM-Model: <provider>/<model>`` response header (default
        true).
    response_streaming: ``allow`` (the client chooses, default), ``deny`` or ``always``.
    genai_category: ``text/generation`` only.
    balancer: Balancer. targets: at least one Target.
    log: Log, aimw's; None: AIMW_LOG_PATH (Settings.log_path).
    strip_model: remove the client's ``model`` before a target sees it: set by a deck file's
        pre-function plugin (Kong's guides), False otherwise; a plain document may not set it.
    embeddings / vectordb: Kong's, for the semantic algorithm; refused when set.
    consumers: outside the plugin's schema: Kong's consumers with their key-auth
        ``keyauth_credentials``, as deck writes them (aimw.config.consumers): who may call,
        each key once; None (absent): anyone who reaches the gateway.
    rate_limiting: aimw's (Kong's ai-rate-limiting-advanced ``config``, aimw.rate_limiting.
        config): token limits and budgets per consumer; None (absent): none.
    """

    UNSUPPORTED: ClassVar[Mapping[str, str]] = {
        "embeddings": "for the semantic algorithm, out of aimw's scope",
        "vectordb": "for the semantic algorithm, out of aimw's scope",
    }

    llm_format: Literal["anthropic"]
    max_request_body_size: Annotated[int, msgspec.Meta(ge=0)] = DEFAULT_MAX_REQUEST_BODY_SIZE
    model_name_header: bool = True
    response_streaming: Literal["allow", "deny", "always"] = "allow"
    genai_category: Literal["text/generation"] = "text/generation"
    balancer: Balancer = msgspec.field(default_factory=Balancer)
    targets: Annotated[tuple[Target, ...], msgspec.Meta(min_length=1)]
    log: Log | None = None
    strip_model: bool = False
    embeddings: dict[str, object] | None = None
    vectordb: dict[str, object] | None = None
    consumers: tuple[Consumer, ...] | None = None
    rate_limiting: RateLimiting | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.consumers is not None:
            keyring(self.consumers)


NOTES: Mapping[str, str] = {
    "llm_format": "Claude Code speaks Anthropic's Messages format: set llm_format: anthropic",
    "algorithm=semantic": "semantic routing (embeddings and a vector database) is out of aimw's scope",
    "provider": "Kong's bedrock, cohere, llama2 and mistral are not served by aimw",
    "route_type": "Claude Code's Messages requests are Kong's llm/v1/chat",
    "genai_category": "aimw serves text generation (the Messages API) only",
}
"""What a refused or missing value means, by field name (``name=value`` for one value)."""
