"""Hugging Face Inference Providers router, OpenAI-compatible Chat Completions.

Source: Hugging Face docs, "Inference Providers" -> "Chat Completion"
(``POST https://router.huggingface.co/v1/chat/completions``, ``Authorization: Bearer hf_...``).
"""

from aimw.providers import Provider
from aimw.translators.openai_chat import OpenAIChat

HUGGINGFACE = Provider(
    name="huggingface",
    base_url="https://router.huggingface.co",
    wire_format=OpenAIChat(),
    default_model="meta-llama/Llama-3.3-70B-Instruct",
)
