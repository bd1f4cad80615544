"""Claude Code -> aimw -> Hugging Face Inference Providers (OpenAI Chat Completions).

HUGGINGFACE_API_TOKEN=hf_... hypercorn recipes.huggingface:app
"""

from aimw import Settings, required_env, translated_gateway
from aimw.providers.huggingface import HUGGINGFACE

settings = Settings.from_env()
token = required_env(
    "HUGGINGFACE_API_TOKEN", "the huggingface recipe sends it to Hugging Face (export HUGGINGFACE_API_TOKEN=hf_...)"
)
app = translated_gateway(HUGGINGFACE, settings, secret=token)
