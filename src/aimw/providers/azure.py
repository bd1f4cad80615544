"""Azure OpenAI chat completions on a deployment.

Source: Azure OpenAI REST reference, "Chat completions - Create"
(``POST https://{instance}.openai.azure.com/openai/deployments/{deployment}/chat/completions?api-version=…``,
``api-key`` header or ``Authorization: Bearer``); "Reasoning models" (o-series deployments
take ``max_completion_tokens``, not ``max_tokens``); "Content filtering" (the
``content_filter`` error code and finish_reason).
"""

from collections.abc import Callable
from functools import partial
from types import MappingProxyType

from aimw.credentials import HeaderCredential, bearer
from aimw.providers import Provider
from aimw.translators.openai_chat import ChatOptions, MaxTokensField, OpenAIChat
from aimw.types import Credential

DEFAULT_API_VERSION = "2025-01-01-preview"
CREDENTIALS: MappingProxyType[str, Callable[[str], Credential]] = MappingProxyType(
    {"api-key": partial(HeaderCredential, "api-key"), "authorization": bearer}
)


def azure(
    instance: str,
    deployment: str,
    api_version: str = DEFAULT_API_VERSION,
    *,
    auth_header: str = "api-key",
    max_tokens_field: MaxTokensField = "max_tokens",
) -> Provider:
    """The Provider for one Azure OpenAI deployment.

    ``auth_header`` is ``api-key`` (the key as is) or ``authorization`` (``Bearer <key>``);
    ``max_tokens_field`` is ``max_completion_tokens`` for deployments of reasoning models.
    Log meta: Kong's azure_instance_id, azure_deployment_id, azure_api_version.
    """
    options = ChatOptions(
        path=f"/openai/deployments/{deployment}/chat/completions",
        query=f"api-version={api_version}",
        max_tokens_field=max_tokens_field,
    )
    return Provider(
        name="azure",
        base_url=f"https://{instance}.openai.azure.com",
        wire_format=OpenAIChat(options),
        default_model=deployment,
        credential=CREDENTIALS[auth_header],
        log_meta=MappingProxyType(
            {"azure_instance_id": instance, "azure_deployment_id": deployment, "azure_api_version": api_version}
        ),
    )
