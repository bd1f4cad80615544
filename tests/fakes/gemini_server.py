"""A fake of Google's generateContent service (the Gemini API and Vertex AI) on a real
loopback HTTP server.

It checks what Google checks, and answers 4xx in Google's error shape otherwise:

- ``POST`` and the resource path of the expected model: the Gemini API's
  ``/v1beta/models/{model}:generateContent`` or Vertex AI's ``/v1/projects/{project}/
  locations/{location}/publishers/google/models/{model}:generateContent``;
  ``:streamGenerateContent`` with the query exactly ``alt=sse`` (without it Google answers a
  JSON array, which is not what a gateway streaming SSE reads), ``:generateContent`` with
  none. A ``key=`` in the query is refused outright: the key must never be in a URL.
- the credential: ``x-goog-api-key: <key>`` for the Gemini API, ``Authorization: Bearer
  <token>`` for Vertex AI (a token the fake OAuth server issued); every other credential
  header, and Anthropic's own headers, are refused.
- a JSON body a strict Gemini request check accepts (:func:`generate_content_problems`):
  only known top-level fields; ``contents`` roles alternating user / model starting with
  user, no empty ``parts``, one data field per part, no empty text (unless it carries a
  thought signature, as Gemini's own parts may), every ``functionResponse`` answering by
  name a ``functionCall`` of the model turn just before (one response per call), calls only
  in model turns, responses only in user turns; ``systemInstruction`` with text parts;
  ``tools[].functionDeclarations`` with valid unique names and ``parameters`` (Gemini's
  OpenAPI Schema subset) or ``parametersJsonSchema`` (the JSON Schema keywords Gemini
  documents) holding nothing else; ``toolConfig`` and ``generationConfig`` with known keys
  and values in range.
- thought signatures (Gemini API docs, "Thought signatures"): every ``thoughtSignature`` in a
  request must be one this fake gave, on the same kind of part of a model turn (a function
  call's on that call, a thought's on a thought, a text part's on text); a call it gave with
  a signature must come back with it. None may be invented.

Answers come from a scripted queue of :class:`~tests.fakes.scripted_server.Reply` (then
``responder``), built with the helpers below: whole ``GenerateContentResponse`` JSON
(:func:`response`, :func:`captured_response` from ../shared/fixtures/kong/gemini), SSE
streams of such responses, one flushed HTTP chunk per ``data:`` event separated by
``\\r\\n\\r\\n`` as Google sends them (:func:`sse_reply`, :func:`text_chunks`,
:func:`function_call_chunks`, :func:`captured_stream_chunks`), Google errors
(:func:`google_error_reply`, :func:`rate_limited`, :func:`unavailable`) and errors inside a
200 stream (:func:`error_chunk`). :class:`ToolThenReport` is a responder for a Claude Code
session: a function call first, then a text that reports what the tool returned.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.scripted_server import RecordedRequest, Reply, ScriptedServer, error_reply, json_reply
from tests.shared_data import KONG

GEMINI_FIXTURES = KONG / "gemini"
CAPTURED_RESPONSES = GEMINI_FIXTURES / "llm-v1-chat" / "responses"
CAPTURED_STREAMS = GEMINI_FIXTURES / "stream-captures"

DEFAULT_MODEL = "gemini-2.5-flash"  # the recipes' default
MAX_OUTPUT_TOKENS = 65536  # gemini-2.5-flash's output limit (Google's model card)
GENERATE, STREAM = "generateContent", "streamGenerateContent"

__all__ = [
    "DEFAULT_MODEL",
    "FakeGeminiServer",
    "FunctionCall",
    "GeminiService",
    "ToolThenReport",
    "captured_response",
    "captured_stream_chunks",
    "error_chunk",
    "function_call_chunks",
    "gemini_api",
    "generate_content_problems",
    "google_error",
    "google_error_reply",
    "json_reply",
    "new_signature",
    "rate_limited",
    "response",
    "sse_reply",
    "text_chunks",
    "unavailable",
    "usage_metadata",
    "vertex_ai",
]

# ---------------------------------------------------------------- the two services


@dataclass(frozen=True)
class GeminiService:
    """Where the fake serves models and which credential it takes.

    prefix: the path before ``{model}:{method}``.
    auth_header: ``x-goog-api-key`` (the Gemini API) or ``authorization`` (Vertex AI, Bearer).
    """

    name: str
    prefix: str
    auth_header: str

    @property
    def vertex(self) -> bool:
        return self.auth_header == "authorization"

    def path(self, model: str, method: str) -> str:
        return f"{self.prefix}{model}:{method}"


def gemini_api() -> GeminiService:
    return GeminiService("Gemini API", "/v1beta/models/", "x-goog-api-key")


def vertex_ai(project: str, location: str) -> GeminiService:
    return GeminiService(
        "Vertex AI", f"/v1/projects/{project}/locations/{location}/publishers/google/models/", "authorization"
    )


# ---------------------------------------------------------------- replies: errors


def google_error(code: int, status: str, message: str, details: Sequence[dict] = ()) -> dict:
    """Google's error body (AIP-193): ``{"error": {"code", "message", "status", "details"?}}``."""
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = list(details)
    return {"error": error}


def google_error_reply(
    code: int, status: str, message: str, details: Sequence[dict] = (), headers: Iterable[tuple[str, str]] = ()
) -> Reply:
    return error_reply(
        code,
        google_error(code, status, message, details),
        content_type="application/json; charset=UTF-8",
        headers=headers,
    )


def rate_limited(retry_delay: str | None = "37s", model: str = DEFAULT_MODEL) -> Reply:
    """The Gemini API's 429 for a spent quota: QuotaFailure, Help and RetryInfo details (Gemini
    API docs, "Rate limits"; Google sends no retry-after header)."""
    details: list[dict] = [
        {
            "@type": "type.googleapis.com/google.rpc.QuotaFailure",
            "violations": [
                {
                    "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                    "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                    "quotaDimensions": {"location": "global", "model": model},
                    "quotaValue": "10",
                }
            ],
        },
        {
            "@type": "type.googleapis.com/google.rpc.Help",
            "links": [
                {
                    "description": "Learn more about Gemini API quotas",
                    "url": "https://ai.google.dev/gemini-api/docs/rate-limits",
                }
            ],
        },
    ]
    if retry_delay is not None:
        details.append({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry_delay})
    message = (
        "You exceeded your current quota, please check your plan and billing details. For more information on this "
        "error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.\n"
        "* Quota exceeded for metric: generativelanguage.googleapis.com/generate_content_free_tier_requests, limit: 10"
    )
    return google_error_reply(429, "RESOURCE_EXHAUSTED", message, details)


def unavailable() -> Reply:
    """Google's 503 when the model is overloaded."""
    return google_error_reply(503, "UNAVAILABLE", "The model is overloaded. Please try again later.")


def invalid_api_key() -> Reply:
    """The Gemini API's answer to a wrong key."""
    return google_error_reply(
        400,
        "INVALID_ARGUMENT",
        "API key not valid. Please pass a valid API key.",
        [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"},
            },
            {
                "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
                "locale": "en-US",
                "message": "API key not valid. Please pass a valid API key.",
            },
        ],
    )


def unregistered_caller() -> Reply:
    """The Gemini API's answer to a request with no key at all."""
    return google_error_reply(
        403,
        "PERMISSION_DENIED",
        "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other "
        "form of API consumer identity to call this API.",
    )


def vertex_unauthenticated() -> Reply:
    """Vertex AI's answer to a missing or unknown access token."""
    return google_error_reply(
        401,
        "UNAUTHENTICATED",
        "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid "
        "authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
        [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "ACCESS_TOKEN_TYPE_UNSUPPORTED",
                "metadata": {
                    "method": "google.cloud.aiplatform.v1.PredictionService.GenerateContent",
                    "service": "aiplatform.googleapis.com",
                },
            }
        ],
    )


def not_found(model: str, service: GeminiService) -> Reply:
    if service.vertex:
        resource = f"{service.prefix.strip('/')}/{model}"
        message = f"Publisher Model `{resource}` was not found or your project does not have access to it."
    else:
        message = f"models/{model} is not found for API version v1beta, or is not supported for generateContent."
    return google_error_reply(404, "NOT_FOUND", message)


def error_chunk(
    code: int = 503, status: str = "UNAVAILABLE", message: str = "The model is overloaded. Please try again later."
) -> dict:
    """An error as Google sends it inside a 200 stream: one event whose data is the error body."""
    return google_error(code, status, message)


# ---------------------------------------------------------------- replies: answers


def new_signature(size: int = 256) -> str:
    """An opaque thought signature as Gemini's JSON carries one: standard base64 with padding
    (``size`` random bytes; not a multiple of 3 leaves padding)."""
    return base64.b64encode(secrets.token_bytes(size)).decode()


def usage_metadata(prompt: int, candidates: int, *, thoughts: int = 0, cached: int = 0) -> dict:
    """``usageMetadata`` as Google reports it: promptTokenCount includes the cached tokens."""
    usage: dict[str, Any] = {
        "promptTokenCount": prompt,
        "candidatesTokenCount": candidates,
        "totalTokenCount": prompt + candidates + thoughts,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}],
    }
    if thoughts:
        usage["thoughtsTokenCount"] = thoughts
    if cached:
        usage["cachedContentTokenCount"] = cached
        usage["cacheTokensDetails"] = [{"modality": "TEXT", "tokenCount": cached}]
    return usage


def response(
    parts: Sequence[dict] | None,
    *,
    finish_reason: str | None = "STOP",
    usage: tuple[int, int] | None = (12, 7),
    thoughts: int = 0,
    cached: int = 0,
    model_version: str = DEFAULT_MODEL,
    response_id: str | None = None,
) -> dict:
    """One GenerateContentResponse (a whole answer, or one stream event): a model candidate
    holding ``parts`` (None: no content), its finishReason, the usage so far."""
    candidate: dict[str, Any] = {"index": 0}
    if parts is not None:
        candidate["content"] = {"parts": list(parts), "role": "model"}
    if finish_reason is not None:
        candidate["finishReason"] = finish_reason
    body: dict[str, Any] = {"candidates": [candidate]}
    if usage is not None:
        body["usageMetadata"] = usage_metadata(*usage, thoughts=thoughts, cached=cached)
    body["modelVersion"] = model_version
    body["responseId"] = response_id or secrets.token_urlsafe(18)
    return body


def text_response(text: str, **kwargs: Any) -> dict:
    return response([{"text": text}], **kwargs)


def captured_response(name: str) -> dict:
    """A GenerateContentResponse captured from Google (Kong's fixtures): ``good``,
    ``good-gemini-2.0-flash``, ``fails_safety``, ``fails-model-armor-floor``."""
    return json.loads((CAPTURED_RESPONSES / f"{name}.json").read_text())


def captured_stream_chunks(name: str) -> list[dict]:
    """The responses of a streamGenerateContent capture (``streamGenerateContent-text``,
    ``streamGenerateContent-functionCall``): the captured JSON array's items, each one
    ``alt=sse`` event."""
    pieces = json.loads((CAPTURED_STREAMS / f"{name}.chunks.json").read_text())
    return json.loads("".join(pieces))


def sse_reply(events: Iterable[dict | bytes | threading.Event], *, cut: bool = False) -> Reply:
    """``alt=sse``: each response one ``data:`` event ended by ``\\r\\n\\r\\n``, one flushed HTTP
    chunk each (bytes and Events pass as they are); the body just ends, no end marker."""
    chunks = tuple(
        event if isinstance(event, (bytes, threading.Event)) else b"data: " + json.dumps(event).encode() + b"\r\n\r\n"
        for event in events
    )
    return Reply(200, (("Content-Type", "text/event-stream"), ("Cache-Control", "no-cache")), b"", chunks, cut)


def _spread(total: int, count: int) -> list[int]:
    """Cumulative counts reaching ``total`` over ``count`` events."""
    return [round(total * (i + 1) / count) for i in range(count)]


def text_chunks(
    pieces: Sequence[str],
    *,
    thoughts: Sequence[str] = (),
    usage: tuple[int, int] = (12, 7),
    thoughts_tokens: int = 0,
    cached: int = 0,
    signature: str | None = None,
    model_version: str = DEFAULT_MODEL,
) -> list[dict]:
    """A streamed answer: ``thoughts`` (``thought: true`` parts), then the text ``pieces``, one
    part per event, cumulative usage on each, finishReason STOP on the last. ``signature``:
    a last event holding an empty text part with that thoughtSignature (as Gemini ends a
    thinking answer)."""
    parts: list[dict] = [{"text": thought, "thought": True} for thought in thoughts] + [
        {"text": piece} for piece in pieces
    ]
    if signature is not None:
        parts.append({"text": "", "thoughtSignature": signature})
    response_id = secrets.token_urlsafe(18)
    prompt, total = usage
    thought_counts = _spread(thoughts_tokens, len(thoughts))
    text_counts = _spread(total, len(parts) - len(thoughts))
    events = []
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        in_thoughts = i < len(thoughts)
        events.append(
            response(
                [part],
                finish_reason="STOP" if last else None,
                usage=(prompt, 0 if in_thoughts else text_counts[i - len(thoughts)]),
                thoughts=thought_counts[i] if in_thoughts else thoughts_tokens,
                cached=cached,
                model_version=model_version,
                response_id=response_id,
            )
        )
    return events


@dataclass(frozen=True)
class FunctionCall:
    name: str
    args: dict
    signature: str | None = None  # the part's thoughtSignature


def function_call_chunks(
    calls: Sequence[FunctionCall],
    *,
    text: Sequence[str] = (),
    usage: tuple[int, int] = (120, 30),
    thoughts_tokens: int = 0,
    model_version: str = DEFAULT_MODEL,
) -> list[dict]:
    """A streamed answer that calls functions: optional ``text`` events, then one event with
    every call (whole args, as Gemini sends them) and finishReason STOP."""
    response_id = secrets.token_urlsafe(18)
    prompt, total = usage
    events = [
        response(
            [{"text": piece}],
            finish_reason=None,
            usage=(prompt, count),
            model_version=model_version,
            response_id=response_id,
        )
        for piece, count in zip(text, _spread(total // 2, len(text)), strict=True)
    ]
    parts = []
    for call in calls:
        part: dict[str, Any] = {"functionCall": {"name": call.name, "args": call.args}}
        if call.signature is not None:
            part["thoughtSignature"] = call.signature
        parts.append(part)
    events.append(
        response(
            parts, usage=(prompt, total), thoughts=thoughts_tokens, model_version=model_version, response_id=response_id
        )
    )
    return events


# ---------------------------------------------------------------- what Google checks

REQUEST_KEYS = frozenset(
    ("contents", "systemInstruction", "tools", "toolConfig", "safetySettings", "generationConfig", "cachedContent")
)
VERTEX_REQUEST_KEYS = frozenset(("labels", "modelArmorConfig"))
DATA_FIELDS = frozenset(
    ("text", "inlineData", "fileData", "functionCall", "functionResponse", "executableCode", "codeExecutionResult")
)
PART_METADATA = frozenset(("thought", "thoughtSignature", "videoMetadata", "partMetadata", "mediaResolution"))
GENERATION_CONFIG_KEYS = frozenset(
    (
        "stopSequences",
        "responseMimeType",
        "responseSchema",
        "responseJsonSchema",
        "responseModalities",
        "candidateCount",
        "maxOutputTokens",
        "temperature",
        "topP",
        "topK",
        "seed",
        "presencePenalty",
        "frequencyPenalty",
        "responseLogprobs",
        "logprobs",
        "enableEnhancedCivicAnswers",
        "speechConfig",
        "thinkingConfig",
        "imageConfig",
        "mediaResolution",
    )
)
THINKING_CONFIG_KEYS = frozenset(("includeThoughts", "thinkingBudget", "thinkingLevel"))
TOOL_KEYS = frozenset(
    (
        "functionDeclarations",
        "googleSearch",
        "googleSearchRetrieval",
        "codeExecution",
        "urlContext",
        "computerUse",
        "fileSearch",
        "googleMaps",
    )
)
FUNCTION_DECLARATION_KEYS = frozenset(
    ("name", "description", "parameters", "parametersJsonSchema", "response", "responseJsonSchema", "behavior")
)
FUNCTION_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.:-]{0,63}")
CALLING_MODES = frozenset(("AUTO", "ANY", "NONE", "VALIDATED"))
# Gemini's OpenAPI Schema subset ("Schema" in Google's API reference) for ``parameters``
OPENAPI_SCHEMA_KEYS = frozenset(
    (
        "type",
        "format",
        "title",
        "description",
        "nullable",
        "enum",
        "maxItems",
        "minItems",
        "properties",
        "required",
        "minProperties",
        "maxProperties",
        "minLength",
        "maxLength",
        "pattern",
        "example",
        "anyOf",
        "propertyOrdering",
        "default",
        "items",
        "minimum",
        "maximum",
    )
)
OPENAPI_TYPES = frozenset(("STRING", "NUMBER", "INTEGER", "BOOLEAN", "ARRAY", "OBJECT", "NULL"))
# the JSON Schema keywords Gemini documents for ``parametersJsonSchema`` (the subset listed
# under GenerationConfig.responseJsonSchema), and propertyOrdering
JSON_SCHEMA_KEYS = frozenset(
    (
        "$id",
        "$defs",
        "$ref",
        "$anchor",
        "type",
        "format",
        "title",
        "description",
        "enum",
        "items",
        "prefixItems",
        "minItems",
        "maxItems",
        "minimum",
        "maximum",
        "anyOf",
        "oneOf",
        "properties",
        "additionalProperties",
        "required",
        "propertyOrdering",
    )
)
JSON_TYPES = frozenset(("string", "number", "integer", "boolean", "object", "array", "null"))
FORBIDDEN_HEADERS = frozenset(("anthropic-version", "anthropic-beta", "anthropic-dangerous-direct-browser-access"))
CREDENTIAL_HEADERS = frozenset(("authorization", "x-goog-api-key", "x-api-key", "api-key", "proxy-authorization"))


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_base64(value: object) -> bool:
    if not isinstance(value, str) or not value:
        return False
    try:
        base64.b64decode(value, validate=True)
    except ValueError:
        return False
    return True


def openapi_schema_problems(node: object, where: str) -> list[str]:
    """``parameters``: Gemini's Schema object, nothing else."""
    if not isinstance(node, dict):
        return [f"{where} must be a Schema object"]
    problems = [f"{where}: unknown Schema field {key!r}" for key in sorted(set(node) - OPENAPI_SCHEMA_KEYS)]
    kind = node.get("type")
    if kind is not None and (not isinstance(kind, str) or kind.upper() not in OPENAPI_TYPES):
        problems.append(f"{where}.type {kind!r} is not a Schema type")
    for name, sub in (node.get("properties") or {}).items():
        problems += openapi_schema_problems(sub, f"{where}.properties.{name}")
    if "items" in node:
        problems += openapi_schema_problems(node["items"], f"{where}.items")
    for i, sub in enumerate(node.get("anyOf") or []):
        problems += openapi_schema_problems(sub, f"{where}.anyOf[{i}]")
    problems += _required_problems(node, where)
    return problems


def _required_problems(node: dict, where: str) -> list[str]:
    required = node.get("required")
    if required is None:
        return []
    if not isinstance(required, list) or not all(isinstance(name, str) for name in required):
        return [f"{where}.required must be a list of property names"]
    properties = node.get("properties")
    listed = properties if isinstance(properties, dict) else {}
    return [
        f"{where}.required names {name!r}, which is not among its properties" for name in required if name not in listed
    ]


def json_schema_problems(node: object, where: str, root: dict | None = None) -> list[str]:
    """``parametersJsonSchema``: only the keywords Gemini documents, well-formed."""
    if isinstance(node, bool):
        return []
    if not isinstance(node, dict):
        return [f"{where} must be a JSON Schema (object or boolean)"]
    root = node if root is None else root
    problems = [
        f"{where}: JSON Schema keyword {key!r} is not supported by Gemini"
        for key in sorted(set(node) - JSON_SCHEMA_KEYS)
    ]
    kind = node.get("type")
    if kind is not None:
        kinds = kind if isinstance(kind, list) else [kind]
        if not kinds or not all(isinstance(k, str) and k in JSON_TYPES for k in kinds):
            problems.append(f"{where}.type {kind!r} is not a JSON type")
    if "enum" in node:
        values = node["enum"]
        if not isinstance(values, list) or not values or not all(isinstance(v, str) or _is_number(v) for v in values):
            problems.append(f"{where}.enum must list strings or numbers")
    for key in ("minItems", "maxItems"):
        if key in node and not (_is_int(node[key]) and node[key] >= 0):
            problems.append(f"{where}.{key} must be a non-negative integer")
    for key in ("minimum", "maximum"):
        if key in node and not _is_number(node[key]):
            problems.append(f"{where}.{key} must be a number")
    for key in ("description", "title", "format", "$id", "$anchor"):
        if key in node and not isinstance(node[key], str):
            problems.append(f"{where}.{key} must be a string")
    properties = node.get("properties")
    if properties is not None:
        if not isinstance(properties, dict):
            problems.append(f"{where}.properties must be an object")
        else:
            for name, sub in properties.items():
                problems += json_schema_problems(sub, f"{where}.properties.{name}", root)
    for key in ("items", "additionalProperties"):
        if key in node:
            problems += json_schema_problems(node[key], f"{where}.{key}", root)
    for key in ("anyOf", "oneOf", "prefixItems"):
        if key in node:
            if not isinstance(node[key], list) or not node[key]:
                problems.append(f"{where}.{key} must be a non-empty list of schemas")
                continue
            for i, sub in enumerate(node[key]):
                problems += json_schema_problems(sub, f"{where}.{key}[{i}]", root)
    defs = node.get("$defs")
    if defs is not None:
        if not isinstance(defs, dict):
            problems.append(f"{where}.$defs must be an object")
        else:
            for name, sub in defs.items():
                problems += json_schema_problems(sub, f"{where}.$defs.{name}", root)
    ref = node.get("$ref")
    if ref is not None:
        target = ref.removeprefix("#/$defs/") if isinstance(ref, str) else None
        if target is None or not isinstance(root.get("$defs"), dict) or (ref != "#" and target not in root["$defs"]):
            problems.append(f"{where}.$ref {ref!r} does not resolve")
    problems += _required_problems(node, where)
    return problems


def _part_problems(part: object, role: str, where: str) -> list[str]:
    if not isinstance(part, dict):
        return [f"{where} must be a Part object"]
    problems = [f"{where}: unknown Part field {key!r}" for key in sorted(set(part) - DATA_FIELDS - PART_METADATA)]
    data = [key for key in part if key in DATA_FIELDS]
    if len(data) != 1:
        problems.append(f"{where} must hold exactly one data field (text, inlineData, functionCall ...), has {data}")
        return problems
    (kind,) = data
    value = part[kind]
    if "thoughtSignature" in part and not _is_base64(part["thoughtSignature"]):
        problems.append(f"{where}.thoughtSignature is not base64 bytes")
    if "thought" in part and (not isinstance(part["thought"], bool) or kind != "text"):
        problems.append(f"{where}.thought must be a boolean on a text part")
    if kind == "text":
        if not isinstance(value, str):
            problems.append(f"{where}.text must be a string")
        elif not value and "thoughtSignature" not in part:
            problems.append(f"{where} has an empty text parameter")
    elif kind == "inlineData":
        if (
            not isinstance(value, dict)
            or set(value) - {"mimeType", "data", "displayName"}
            or not value.get("mimeType")
            or not _is_base64(value.get("data"))
        ):
            problems.append(f"{where}.inlineData must be {{mimeType, data (base64)}}")
    elif kind == "fileData":
        if (
            not isinstance(value, dict)
            or set(value) - {"mimeType", "fileUri", "displayName"}
            or not isinstance(value.get("fileUri"), str)
        ):
            problems.append(f"{where}.fileData must be {{mimeType?, fileUri}}")
    elif kind == "functionCall":
        if role != "model":
            problems.append(f"{where}: a functionCall belongs in a model turn")
        if not isinstance(value, dict) or set(value) - {"name", "args", "id"}:
            problems.append(f"{where}.functionCall must be {{name, args}}")
        else:
            if not isinstance(value.get("name"), str) or not FUNCTION_NAME.fullmatch(value["name"]):
                problems.append(f"{where}.functionCall.name {value.get('name')!r} is not a function name")
            if "args" in value and not isinstance(value["args"], dict):
                problems.append(f"{where}.functionCall.args must be an object")
    elif kind == "functionResponse":
        if role != "user":
            problems.append(f"{where}: a functionResponse belongs in a user turn")
        if not isinstance(value, dict) or set(value) - {
            "name",
            "response",
            "id",
            "parts",
            "willContinue",
            "scheduling",
        }:
            problems.append(f"{where}.functionResponse must be {{name, response}}")
        else:
            if not isinstance(value.get("name"), str) or not FUNCTION_NAME.fullmatch(value["name"]):
                problems.append(f"{where}.functionResponse.name {value.get('name')!r} is not a function name")
            if not isinstance(value.get("response"), dict):
                problems.append(f"{where}.functionResponse.response must be an object")
    return problems


def _contents_problems(contents: object) -> list[str]:
    if not isinstance(contents, list) or not contents:
        return ["contents is not specified"]
    problems: list[str] = []
    previous_role: str | None = None
    previous_calls: list[str] = []  # names of the functionCalls of the model turn just before
    for i, content in enumerate(contents):
        where = f"contents[{i}]"
        if not isinstance(content, dict) or set(content) - {"role", "parts"}:
            problems.append(f"{where} must be {{role, parts}}")
            continue
        role = content.get("role")
        if role not in ("user", "model"):
            problems.append(f"{where}.role {role!r} is not user or model")
            continue
        expected = "user" if previous_role in (None, "model") else "model"
        if role != expected:
            problems.append(f"{where}.role is {role!r}: turns must alternate user / model, starting with user")
        parts = content.get("parts")
        if not isinstance(parts, list) or not parts:
            problems.append(f"{where}.parts must not be empty")
            parts = []
        for j, part in enumerate(parts):
            problems += _part_problems(part, role, f"{where}.parts[{j}]")
        calls = [
            p["functionCall"].get("name")
            for p in parts
            if isinstance(p, dict) and isinstance(p.get("functionCall"), dict)
        ]
        responses = [
            p["functionResponse"].get("name")
            for p in parts
            if isinstance(p, dict) and isinstance(p.get("functionResponse"), dict)
        ]
        if role == "user":
            if previous_calls and sorted(responses) != sorted(previous_calls):
                problems.append(
                    f"{where}: the number of function response parts must equal the number of function call parts "
                    f"of the function call turn, named after them (calls {previous_calls}, responses {responses})"
                )
            elif responses and not previous_calls:
                problems.append(
                    f"{where}: function responses {responses} answer no function call of the previous model turn"
                )
        previous_calls = calls if role == "model" else []
        previous_role = role
    return problems


def _tools_problems(tools: object) -> tuple[list[str], set[str]]:
    if not isinstance(tools, list) or not tools:
        return ["tools must be a non-empty list"], set()
    problems: list[str] = []
    names: set[str] = set()
    for i, tool in enumerate(tools):
        where = f"tools[{i}]"
        if not isinstance(tool, dict) or not tool or set(tool) - TOOL_KEYS:
            problems.append(f"{where} must be a Tool ({', '.join(sorted(TOOL_KEYS))})")
            continue
        declarations = tool.get("functionDeclarations")
        if declarations is None:
            continue
        if not isinstance(declarations, list) or not declarations:
            problems.append(f"{where}.functionDeclarations must be a non-empty list")
            continue
        for j, declaration in enumerate(declarations):
            at = f"{where}.functionDeclarations[{j}]"
            if not isinstance(declaration, dict):
                problems.append(f"{at} must be an object")
                continue
            problems += [f"{at}: unknown field {key!r}" for key in sorted(set(declaration) - FUNCTION_DECLARATION_KEYS)]
            name = declaration.get("name")
            if not isinstance(name, str) or not FUNCTION_NAME.fullmatch(name):
                problems.append(f"{at}.name {name!r} is not a valid function name")
            elif name in names:
                problems.append(f"{at}: duplicate function name {name!r}")
            else:
                names.add(name)
            if "description" in declaration and not isinstance(declaration["description"], str):
                problems.append(f"{at}.description must be a string")
            if "parameters" in declaration and "parametersJsonSchema" in declaration:
                problems.append(f"{at}: parameters and parametersJsonSchema are mutually exclusive")
            if "parameters" in declaration:
                schema = declaration["parameters"]
                problems += openapi_schema_problems(schema, f"{at}.parameters")
                if not isinstance(schema, dict) or str(schema.get("type", "")).upper() != "OBJECT":
                    problems.append(f"{at}.parameters must be of type OBJECT")
            if "parametersJsonSchema" in declaration:
                schema = declaration["parametersJsonSchema"]
                problems += json_schema_problems(schema, f"{at}.parametersJsonSchema")
                if not isinstance(schema, dict) or schema.get("type") != "object":
                    problems.append(f"{at}.parametersJsonSchema must describe an object")
    return problems, names


def _tool_config_problems(config: object, names: set[str]) -> list[str]:
    if not isinstance(config, dict) or set(config) - {"functionCallingConfig", "retrievalConfig"}:
        return ["toolConfig must be {functionCallingConfig}"]
    calling = config.get("functionCallingConfig")
    if calling is None:
        return []
    if not isinstance(calling, dict) or set(calling) - {"mode", "allowedFunctionNames"}:
        return ["toolConfig.functionCallingConfig must be {mode, allowedFunctionNames}"]
    problems = []
    mode = calling.get("mode", "AUTO")
    if mode not in CALLING_MODES:
        problems.append(f"functionCallingConfig.mode {mode!r} is not one of {sorted(CALLING_MODES)}")
    if not names and mode in ("ANY", "VALIDATED"):
        problems.append(f"functionCallingConfig.mode {mode} needs function declarations")
    allowed = calling.get("allowedFunctionNames")
    if allowed is not None:
        if mode not in ("ANY", "VALIDATED"):
            problems.append("allowedFunctionNames is only allowed with mode ANY")
        if not isinstance(allowed, list) or not allowed or not all(name in names for name in allowed):
            problems.append(f"allowedFunctionNames {allowed!r} must name declared functions")
    return problems


def _generation_config_problems(config: object) -> list[str]:
    if not isinstance(config, dict):
        return ["generationConfig must be an object"]
    problems = [f"generationConfig: unknown field {key!r}" for key in sorted(set(config) - GENERATION_CONFIG_KEYS)]
    tokens = config.get("maxOutputTokens")
    if tokens is not None and not (_is_int(tokens) and 1 <= tokens <= MAX_OUTPUT_TOKENS):
        problems.append(f"generationConfig.maxOutputTokens {tokens!r} is not in [1, {MAX_OUTPUT_TOKENS}]")
    temperature = config.get("temperature")
    if temperature is not None and not (_is_number(temperature) and 0 <= temperature <= 2):
        problems.append(f"generationConfig.temperature {temperature!r} is not in [0, 2]")
    top_p = config.get("topP")
    if top_p is not None and not (_is_number(top_p) and 0 <= top_p <= 1):
        problems.append(f"generationConfig.topP {top_p!r} is not in [0, 1]")
    top_k = config.get("topK")
    if top_k is not None and not (_is_int(top_k) and top_k >= 1):
        problems.append(f"generationConfig.topK {top_k!r} is not a positive integer")
    stops = config.get("stopSequences")
    if stops is not None and not (
        isinstance(stops, list) and len(stops) <= 5 and all(isinstance(s, str) and s for s in stops)
    ):
        problems.append("generationConfig.stopSequences must be at most 5 non-empty strings")
    thinking = config.get("thinkingConfig")
    if thinking is not None:
        if not isinstance(thinking, dict):
            problems.append("generationConfig.thinkingConfig must be an object")
        else:
            problems += [
                f"thinkingConfig: unknown field {key!r}" for key in sorted(set(thinking) - THINKING_CONFIG_KEYS)
            ]
            budget = thinking.get("thinkingBudget")
            if budget is not None and not (_is_int(budget) and (budget == -1 or 0 <= budget <= 24576)):
                problems.append(f"thinkingConfig.thinkingBudget {budget!r} is not -1 or in [0, 24576]")
            if "includeThoughts" in thinking and not isinstance(thinking["includeThoughts"], bool):
                problems.append("thinkingConfig.includeThoughts must be a boolean")
    return problems


def generate_content_problems(body: object, *, vertex: bool = False) -> list[str]:
    """What Google would refuse (400 INVALID_ARGUMENT) in a generateContent body."""
    if not isinstance(body, dict):
        return ["the body must be a JSON object (a GenerateContentRequest)"]
    allowed = REQUEST_KEYS | (VERTEX_REQUEST_KEYS if vertex else frozenset())
    problems = [f"unknown field {key!r} (Cannot find field)" for key in sorted(set(body) - allowed)]
    problems += _contents_problems(body.get("contents"))
    if "systemInstruction" in body:
        system = body["systemInstruction"]
        if not isinstance(system, dict) or set(system) - {"role", "parts"}:
            problems.append("systemInstruction must be a Content {parts}")
        elif not isinstance(system.get("parts"), list) or not system["parts"]:
            problems.append("systemInstruction.parts must not be empty")
        else:
            for j, part in enumerate(system["parts"]):
                if (
                    not isinstance(part, dict)
                    or set(part) != {"text"}
                    or not isinstance(part["text"], str)
                    or not part["text"]
                ):
                    problems.append(f"systemInstruction.parts[{j}] must be a non-empty text part")
    names: set[str] = set()
    if "tools" in body:
        tool_problems, names = _tools_problems(body["tools"])
        problems += tool_problems
    if "toolConfig" in body:
        problems += _tool_config_problems(body["toolConfig"], names)
    if "generationConfig" in body:
        problems += _generation_config_problems(body["generationConfig"])
    return problems


# ---------------------------------------------------------------- thought signatures


def _reply_responses(reply: Reply) -> list[dict]:
    """The GenerateContentResponses a reply carries (its JSON body, or its SSE events)."""
    found: list[dict] = []
    blobs = [reply.body] if reply.chunks is None else [c for c in reply.chunks if isinstance(c, bytes)]
    for blob in blobs:
        texts = (
            [blob] if reply.chunks is None else [line[5:] for line in blob.splitlines() if line.startswith(b"data:")]
        )
        for text in texts:
            try:
                value = json.loads(text)
            except ValueError:
                continue
            found += [item for item in (value if isinstance(value, list) else [value]) if isinstance(item, dict)]
    return found


def _part_kind(part: dict) -> str:
    if "functionCall" in part:
        return "functionCall"
    return "thought" if part.get("thought") else "text"


def _call_key(call: dict) -> tuple[str, str]:
    return str(call.get("name")), json.dumps(call.get("args", {}), sort_keys=True)


# ---------------------------------------------------------------- the server


class FakeGeminiServer(ScriptedServer):
    """A fake generateContent service on ``127.0.0.1`` (see the module docstring); use as a
    context manager or start()/stop().

    Args:
        service: :func:`gemini_api` or :func:`vertex_ai`.
        api_key: the key the Gemini API accepts (``x-goog-api-key``).
        valid_token: for Vertex AI, whether a Bearer token is good (the fake OAuth server's
            ``is_valid_token``).
        model: the model the path must name.

    ``api_key``, ``valid_token`` and ``model`` may be changed by a test; :meth:`restore` puts
    back the ones given here and forgets the signatures given.
    """

    name = "fake Gemini"
    thread_name = "fake-gemini"

    def __init__(
        self,
        service: GeminiService,
        *,
        api_key: str | None = None,
        valid_token: Callable[[str], bool] | None = None,
        model: str = DEFAULT_MODEL,
    ) -> None:
        self._responder: Callable[[RecordedRequest], Reply] | None = None
        self.signatures: dict[str, str] = {}  # thoughtSignature given -> the kind of part it came on
        self.signed_calls: dict[tuple[str, str], str] = {}  # (name, args) of a call given -> its signature
        super().__init__()
        self.service = service
        self.api_key = api_key
        self.valid_token = valid_token
        self.model = model
        self._initial = (api_key, valid_token, model)
        assert (api_key is None) == service.vertex, "the Gemini API takes an api_key, Vertex AI a valid_token"

    # -- script: every reply's signatures are remembered

    def enqueue(self, *replies: Reply) -> None:
        for reply in replies:
            self._remember(reply)
        super().enqueue(*replies)

    @property
    def responder(self) -> Callable[[RecordedRequest], Reply] | None:
        return self._responder

    @responder.setter
    def responder(self, responder: Callable[[RecordedRequest], Reply] | None) -> None:
        if responder is None:
            self._responder = None
            return

        def remembering(request: RecordedRequest) -> Reply:
            reply = responder(request)
            self._remember(reply)
            return reply

        self._responder = remembering

    def _remember(self, reply: Reply) -> None:
        for answer in _reply_responses(reply):
            for candidate in answer.get("candidates") or []:
                for part in (candidate.get("content") or {}).get("parts") or []:
                    signature = part.get("thoughtSignature")
                    if not signature:
                        continue
                    with self._lock:
                        self.signatures[signature] = _part_kind(part)
                        if "functionCall" in part:
                            self.signed_calls[_call_key(part["functionCall"])] = signature

    def restore(self) -> None:
        """:meth:`reset`, the key, token check and model given at construction back, no
        signature given."""
        self.reset()
        self.api_key, self.valid_token, self.model = self._initial
        with self._lock:
            self.signatures.clear()
            self.signed_calls.clear()

    def missing_reply(self, message: str) -> Reply:
        return google_error_reply(500, "INTERNAL", message)

    # -- checks

    def check(self, request: RecordedRequest) -> Reply | None:
        service = self.service
        match = re.fullmatch(re.escape(service.prefix) + r"([^/:]+):([A-Za-z]+)", request.path)
        if match is None or match.group(2) not in (GENERATE, STREAM):
            request.problems.append(
                f"unexpected path {request.path!r} (expected {service.path(self.model, GENERATE)!r} or :{STREAM})"
            )
            return google_error_reply(404, "NOT_FOUND", "The requested URL was not found on this server.")
        if request.method != "POST":
            request.problems.append(f"unexpected method {request.method}")
            return google_error_reply(405, "INVALID_ARGUMENT", f"Method {request.method} is not allowed.")
        model, method = match.groups()
        if model != self.model:
            request.problems.append(f"model {model!r} in the path, expected {self.model!r}")
            return not_found(model, service)
        query = request.query.split("&") if request.query else []
        if any(item.split("=", 1)[0] == "key" for item in query):
            request.problems.append("an API key in the query string (it must travel in x-goog-api-key, never in a URL)")
        expected_query = "alt=sse" if method == STREAM else ""
        if request.query != expected_query:
            request.problems.append(f"query string {request.query!r}, expected {expected_query!r} for :{method}")
            return google_error_reply(400, "INVALID_ARGUMENT", f"Invalid query string {request.query!r}.")
        auth = self._auth_problem(request)
        if auth is not None:
            return auth
        problems = [
            f"header {name!r} must not reach Google" for name in sorted(FORBIDDEN_HEADERS) if name in request.headers
        ]
        problems += [
            f"credential header {name!r} must not reach {service.name} (it takes {service.auth_header!r})"
            for name in sorted(CREDENTIAL_HEADERS - {service.auth_header})
            if name in request.headers
        ]
        if not request.headers.get("content-type", "").startswith("application/json"):
            problems.append(f"content-type is {request.headers.get('content-type')!r}, not application/json")
        if request.body is None:
            problems.append(f"Invalid JSON payload received ({len(request.raw_body)} bytes)")
        else:
            problems += generate_content_problems(request.body, vertex=service.vertex)
            problems += self._signature_problems(request.body)
        if problems:
            request.problems.extend(problems)
            return google_error_reply(400, "INVALID_ARGUMENT", "\n".join(f"* {problem}" for problem in problems))
        return None

    def _auth_problem(self, request: RecordedRequest) -> Reply | None:
        sent = request.headers.get(self.service.auth_header)
        if self.service.vertex:
            token = sent.removeprefix("Bearer ") if sent and sent.startswith("Bearer ") else None
            if token is None or self.valid_token is None or not self.valid_token(token):
                request.problems.append(
                    "missing or unknown Authorization: Bearer <access token from the token endpoint>"
                )
                return vertex_unauthenticated()
            return None
        if sent is None:
            request.problems.append("no x-goog-api-key")
            return unregistered_caller()
        if sent != self.api_key:
            request.problems.append("wrong x-goog-api-key")
            return invalid_api_key()
        return None

    def _signature_problems(self, body: dict) -> list[str]:
        problems: list[str] = []
        contents = body.get("contents") if isinstance(body.get("contents"), list) else []
        with self._lock:
            signatures, signed_calls = dict(self.signatures), dict(self.signed_calls)
        for i, content in enumerate(contents):
            parts = content.get("parts") if isinstance(content, dict) and isinstance(content.get("parts"), list) else []
            for j, part in enumerate(parts):
                if not isinstance(part, dict):
                    continue
                where = f"contents[{i}].parts[{j}]"
                signature = part.get("thoughtSignature")
                if signature is not None:
                    kind = signatures.get(signature)
                    if kind is None:
                        problems.append(f"{where}: Thought signature is not valid (not one Gemini gave)")
                    elif content.get("role") != "model":
                        problems.append(f"{where}: a thought signature belongs on a model turn's part")
                    elif kind != _part_kind(part):
                        problems.append(
                            f"{where}: the signature Gemini gave on a {kind} part came back on a "
                            f"{_part_kind(part)} part"
                        )
                call = part.get("functionCall")
                if isinstance(call, dict) and content.get("role") == "model":
                    given = signed_calls.get(_call_key(call))
                    if given is not None and signature != given:
                        problems.append(f"{where}: function call {call.get('name')!r} is missing its thought_signature")
        return problems


# ---------------------------------------------------------------- request helpers


def method_of(request: RecordedRequest) -> str:
    return request.path.rsplit(":", 1)[-1]


def is_stream(request: RecordedRequest) -> bool:
    return method_of(request) == STREAM


def parts(request: RecordedRequest, role: str | None = None) -> list[dict]:
    """Every part of the request's contents (of ``role``'s turns when given), in order."""
    return [
        part for content in request.body["contents"] if role in (None, content["role"]) for part in content["parts"]
    ]


def function_responses(content: dict) -> list[dict]:
    return [part["functionResponse"] for part in content["parts"] if "functionResponse" in part]


# ---------------------------------------------------------------- a Claude Code session


@dataclass
class ToolThenReport:
    """A responder (``fake.responder = ToolThenReport(...)``) for a two-turn tool session:

    - a request whose last user turn answers no ``tool`` call is answered with a stream of
      ``text`` and then a call of ``tool`` with ``args`` (and ``signature``, as Gemini 2.5
      signs its calls when it thinks);
    - a request whose last user turn holds the ``functionResponse`` of that call is answered
      with a text stream reporting what the tool returned: ``report(output)``, ``output`` the
      response's ``content`` (or ``error``) as the gateway sent it.

    ``usages``: (prompt, candidates) of the call turn and of the report turn; ``outputs``
    collects what each report turn was given.
    """

    tool: str
    args: dict
    report: Callable[[str], str]
    text: Sequence[str] = ("I will run ", "the command.")
    usages: tuple[tuple[int, int], tuple[int, int]] = ((1500, 40), (1600, 15))
    thoughts_tokens: int = 0
    signature: str | None = field(default_factory=new_signature)
    outputs: list[str] = field(default_factory=list)

    def __call__(self, request: RecordedRequest) -> Reply:
        contents = request.body["contents"] if isinstance(request.body, dict) else []
        last = contents[-1] if contents else {"role": "user", "parts": []}
        answers = (
            [response for response in function_responses(last) if response.get("name") == self.tool]
            if last["role"] == "user"
            else []
        )
        if not answers:
            call = FunctionCall(self.tool, self.args, self.signature)
            return sse_reply(
                function_call_chunks([call], text=self.text, usage=self.usages[0], thoughts_tokens=self.thoughts_tokens)
            )
        result = answers[-1].get("response", {})
        output = str(result.get("content", result.get("error", "")))
        self.outputs.append(output)
        final = self.report(output.strip())
        return sse_reply(text_chunks((final[: len(final) // 2], final[len(final) // 2 :]), usage=self.usages[1]))
