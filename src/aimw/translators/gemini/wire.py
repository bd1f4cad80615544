"""Gemini ``generateContent`` as a :class:`~aimw.types.WireFormat`: its options and its
entry points (request, JSON answer, error, stream).

One format, two services (Google's API reference, "generateContent"): the Gemini API
``POST /v1beta/models/{model}:generateContent`` and Vertex AI ``POST /v1/projects/{project}/
locations/{location}/publishers/google/models/{model}:generateContent``; a stream calls
``:streamGenerateContent?alt=sse`` on the same resource.
"""

from __future__ import annotations

import string
from urllib.parse import quote

import msgspec

from aimw.errors import GatewayError
from aimw.translators.gemini.errors import error_to_anthropic, retry_after
from aimw.translators.gemini.request import request_from_anthropic
from aimw.translators.gemini.response import response_to_anthropic
from aimw.translators.gemini.stream import GeminiStreamTranslator
from aimw.translators.wire import AnthropicAnswer, AnthropicCall, UpstreamRequest

GEMINI_API_PATH = "/v1beta/models/{model}"
VERTEX_AI_PATH = "/v1/projects/{project}/locations/{location}/publishers/google/models/{model}"
_FIELDS = frozenset(("model", "project", "location"))
_GENERATE, _STREAM, _SSE = ":generateContent", ":streamGenerateContent", b"alt=sse"


class GeminiOptions(msgspec.Struct, frozen=True):
    """Where the model lives.

    path: the model's resource path; ``{model}`` becomes the upstream model (percent-encoded)
        on each request, ``{project}`` and ``{location}`` the options below. The method
        (``:generateContent``, ``:streamGenerateContent``) is appended.
    project / location: Vertex AI's project id and region (``us-central1``), for its path.
    """

    path: str = GEMINI_API_PATH
    project: str = ""
    location: str = ""

    @classmethod
    def vertex(cls, project: str, location: str) -> GeminiOptions:
        """Vertex AI's publisher-model path in ``project`` and ``location``."""
        return cls(path=VERTEX_AI_PATH, project=project, location=location)


def _model_path(options: GeminiOptions) -> tuple[str, str]:
    """The path before and after ``{model}``, project and location filled in.

    Raises:
        ValueError: the path has no ``{model}``, another placeholder, or names a project
            or location the options leave empty.
    """
    fields = [field for _, field, _, _ in string.Formatter().parse(options.path) if field is not None]
    if fields.count("model") != 1 or not set(fields) <= _FIELDS:
        raise ValueError(f"Gemini path {options.path!r} needs one {{model}} and no placeholder but project, location")
    values = {"model": "\0"}
    for name in ("project", "location"):
        value = getattr(options, name)
        if name in fields and not value:
            raise ValueError(f"Gemini path {options.path!r} needs the {name} option")
        values[name] = quote(value, safe="")
    head, tail = options.path.format(**values).split("\0")
    return head, tail


class Gemini:
    """Anthropic Messages <-> Gemini generateContent, on the Gemini API or Vertex AI (``options``)."""

    name = "gemini"
    passthrough = False
    parses_request = True

    __slots__ = ("_head", "_tail", "options")

    def __init__(self, options: GeminiOptions | None = None) -> None:
        self.options = options or GeminiOptions()
        self._head, self._tail = _model_path(self.options)

    def __repr__(self) -> str:
        return f"Gemini({self.options!r})"

    def build_request(self, call: AnthropicCall) -> UpstreamRequest:
        """``{path}:generateContent``, or ``{path}:streamGenerateContent`` with ``alt=sse``
        (one whole GenerateContentResponse per SSE event) when the client streams."""
        if call.request is None:
            raise GatewayError(500, "gemini needs the parsed Messages request", "api_error")
        if not call.model:
            raise GatewayError(400, "no model to send to Gemini")
        resource = self._head + quote(call.model, safe="@") + self._tail
        body = request_from_anthropic(call.request)
        if call.stream:
            return UpstreamRequest(resource + _STREAM, _SSE, body)
        return UpstreamRequest(resource + _GENERATE, b"", body)

    def response_to_anthropic(self, body: bytes, model: str) -> AnthropicAnswer:
        return response_to_anthropic(body, model)

    def error_to_anthropic(self, status: int, body: bytes) -> tuple[int, bytes]:
        return error_to_anthropic(status, body)

    def retry_after(self, status: int, body: bytes) -> int | None:
        """The RetryInfo delay of a Google error (Google sends no ``retry-after`` header)."""
        return retry_after(status, body)

    def new_stream(self, model: str) -> GeminiStreamTranslator:
        return GeminiStreamTranslator(model)
