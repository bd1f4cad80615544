"""Hugging Face Inference Providers router, OpenAI-compatible Chat Completions.

Source: Hugging Face docs, "Inference Providers" -> "Chat Completion"
(``POST https://router.huggingface.co/v1/chat/completions``, ``Authorization: Bearer hf_...``).
"""

from aimw.providers import Provider

HUGGINGFACE = Provider(
    name="huggingface",
    base_url="https://router.huggingface.co",
    path="/v1/chat/completions",
    wire_format="openai_chat",
    default_model="meta-llama/Llama-3.3-70B-Instruct",
)
