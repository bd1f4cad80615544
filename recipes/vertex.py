"""Claude Code -> aimw -> Gemini on Vertex AI, with a service account (Kong's guide's variables).

    GEMINI_API_KEY="$(cat key.json)" GCP_PROJECT_ID=my-project GEMINI_LOCATION_ID=us-central1 \\
    GEMINI_API_ENDPOINT=us-central1-aiplatform.googleapis.com hypercorn recipes.vertex:app

GEMINI_API_KEY holds the service-account key's JSON, or a path to it; without it,
Application Default Credentials are used.
"""

from aimw import Settings, optional_env, required_env, translated_gateway
from aimw.providers.vertex import DEFAULT_MAX_TOKENS, vertex, vertex_credential

settings = Settings.from_env()
provider = vertex(
    required_env("GCP_PROJECT_ID", "the vertex recipe needs the Google Cloud project"),
    required_env("GEMINI_LOCATION_ID", "the vertex recipe needs the region (e.g. us-central1)"),
    required_env(
        "GEMINI_API_ENDPOINT", "the vertex recipe needs the endpoint (e.g. us-central1-aiplatform.googleapis.com)"
    ),
)
credential = vertex_credential(optional_env("GEMINI_API_KEY"), "GEMINI_API_KEY")
app = translated_gateway(provider, settings, credential=credential, default_max_tokens=DEFAULT_MAX_TOKENS)
