"""Azure OpenAI chat completions on a deployment.

Source: Azure OpenAI REST reference, "Chat completions - Create"
(``POST https://{instance}.openai.azure.com/openai/deployments/{deployment}/chat/completions?api-version=…``,
``api-key`` header or ``Authorization: Bearer``); "Reasoning models" (o-series deployments
take ``max_completion_tokens``, not ``max_tokens``); "Content filtering" (the
``content_filter`` error code and finish_reason).
"""

from types import MappingProxyType

from aimw.providers import Provider

DEFAULT_API_VERSION = "2025-01-01-preview"
AUTH_HEADERS = MappingProxyType({"api-key": ("api-key", ""), "authorization": ("authorization", "Bearer ")})


def azure(
    instance: str,
    deployment: str,
    api_version: str = DEFAULT_API_VERSION,
    *,
    auth_header: str = "api-key",
    max_tokens_field: str = "max_tokens",
) -> Provider:
    """The Provider for one Azure OpenAI deployment.

    ``auth_header`` is ``api-key`` (the key as is) or ``authorization`` (``Bearer <key>``);
    ``max_tokens_field`` is ``max_completion_tokens`` for deployments of reasoning models.
    Log meta: Kong's azure_instance_id, azure_deployment_id, azure_api_version.
    """
    header, prefix = AUTH_HEADERS[auth_header]
    return Provider(
        name="azure",
        base_url=f"https://{instance}.openai.azure.com",
        path=f"/openai/deployments/{deployment}/chat/completions",
        query=f"api-version={api_version}",
        wire_format="openai_chat",
        default_model=deployment,
        auth_header=header,
        auth_prefix=prefix,
        max_tokens_field=max_tokens_field,
        log_meta=MappingProxyType(
            {"azure_instance_id": instance, "azure_deployment_id": deployment, "azure_api_version": api_version}
        ),
    )
