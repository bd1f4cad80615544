"""Anthropic Messages <-> Gemini generateContent, wire to wire (the Gemini API and Vertex AI).

Sources: Google's API reference, "generateContent" (and streamGenerateContent with
``alt=sse``), "GenerateContentResponse", "Content" / "Part", "FunctionDeclaration",
"FunctionCallingConfig", "GenerationConfig", "ThinkingConfig", "UsageMetadata"; the Gemini
API docs, "Function calling", "Thinking" and "Thought signatures"; Google AIP-193 (errors);
Anthropic API reference, "Messages" and "Streaming Messages".

The wire format is :class:`Gemini` (``GeminiOptions`` say where the model lives); its parts
are pure functions and one per-stream state object:
    request_from_anthropic(request) -> bytes          (generateContent JSON body; request.py,
                                                       contents.py, schema.py)
    response_to_anthropic(body, fallback_model) -> AnthropicAnswer   (response.py)
    error_to_anthropic(status, body) -> (status, Anthropic error JSON) (errors.py)
    GeminiStreamTranslator(model): feed(bytes) -> bytes, finish() -> bytes (stream.py)
Thought signatures travel through the Anthropic client as signatures.py describes.
"""

from aimw.translators.gemini.errors import error_to_anthropic, retry_after
from aimw.translators.gemini.request import request_from_anthropic
from aimw.translators.gemini.response import response_to_anthropic, stop_reason_for
from aimw.translators.gemini.schema import function_parameters
from aimw.translators.gemini.stream import GeminiStreamTranslator
from aimw.translators.gemini.wire import GEMINI_API_PATH, VERTEX_AI_PATH, Gemini, GeminiOptions

__all__ = [
    "GEMINI_API_PATH",
    "VERTEX_AI_PATH",
    "Gemini",
    "GeminiOptions",
    "GeminiStreamTranslator",
    "error_to_anthropic",
    "function_parameters",
    "request_from_anthropic",
    "response_to_anthropic",
    "retry_after",
    "stop_reason_for",
]
