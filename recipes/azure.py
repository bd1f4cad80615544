"""Claude Code -> aimw -> Azure OpenAI (a chat completions deployment).

    AZURE_OPENAI_API_KEY=... AZURE_INSTANCE_NAME=my-resource AZURE_DEPLOYMENT_ID=gpt-4o \\
    hypercorn recipes.azure:app
"""

from aimw import Settings, choice_env, optional_env, required_env, translated_gateway
from aimw.providers.azure import DEFAULT_API_VERSION, azure

settings = Settings.from_env()
key = required_env("AZURE_OPENAI_API_KEY", "the azure recipe sends it to your Azure OpenAI resource")
provider = azure(
    required_env("AZURE_INSTANCE_NAME", "the azure recipe needs the resource name ({name}.openai.azure.com)"),
    required_env("AZURE_DEPLOYMENT_ID", "the azure recipe needs the deployment to call"),
    optional_env("AZURE_API_VERSION") or DEFAULT_API_VERSION,
    auth_header=choice_env("AIMW_AUTH_HEADER", ("api-key", "authorization")),
    max_tokens_field=choice_env("AZURE_MAX_TOKENS_FIELD", ("max_tokens", "max_completion_tokens")),
)
app = translated_gateway(provider, settings, secret=key)
