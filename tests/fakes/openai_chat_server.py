"""A fake Hugging Face router (OpenAI Chat Completions) on a real loopback HTTP server.

It checks what the real router checks and a little more (what OpenAI-compatible servers
reject): ``POST /v1/chat/completions`` with no query string, ``Authorization: Bearer
<token>`` (401 with the router's body otherwise), and a valid Chat Completions body (400
with a TGI-style ``{"error", "error_type"}`` body otherwise). Anthropic's headers and
Anthropic-only body fields are rejected too: they must never reach an OpenAI provider.

Every request is recorded (method, path, query, headers, parsed body) and every problem
found is kept in ``violations`` so tests can assert the gateway sent none. Answers come
from a scripted queue of :class:`Reply` (then from ``responder`` when set): JSON
completions, SSE streams flushed one ``chat.completion.chunk`` per HTTP chunk, streams cut
mid-way (connection closed without ``[DONE]`` and without the last chunk of the chunked
body), and errors with any status, body and headers.

Shapes follow the real captures in ../shared/fixtures/kong (huggingface/llm-v1-chat and
openai/stream-captures/chat-good.sse).

The same server plays the other OpenAI-compatible providers through a :class:`ChatProfile`
(what the provider accepts: path, query string, credential header, extra body fields,
``max_tokens`` or ``max_completion_tokens``, its 401 body): ``HUGGINGFACE`` (the default),
:func:`azure_profile`, ``DASHSCOPE``, ``OPENAI``. Provider-shaped replies (Azure's content
filter, DashScope's ``reasoning_content`` chunks ...) are built by the helpers at the end.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.fakes.scripted_server import RecordedRequest, Reply, ScriptedServer, error_reply
from tests.fakes.scripted_server import json_reply as json_reply  # re-exported: tests script answers from here
from tests.shared_data import KONG

HF_RESPONSES = KONG / "huggingface" / "llm-v1-chat" / "responses"
OPENAI_RESPONSES = KONG / "openai" / "llm-v1-chat" / "responses"

CHAT_PATH = "/v1/chat/completions"
DEFAULT_MODEL = "meta-llama/Llama-3.3-70B-Instruct"

# ---------------------------------------------------------------- replies


def hf_unauthorized() -> Reply:
    """The router's 401 (captured)."""
    return error_reply(401, (HF_RESPONSES / "unauthorized.json").read_bytes())


def hf_model_loading() -> Reply:
    """The router's 503 while a model loads (captured)."""
    return error_reply(503, (HF_RESPONSES / "bad_response_model_load.json").read_bytes())


def hf_bad_request() -> Reply:
    """TGI's 400 (captured)."""
    return error_reply(400, (HF_RESPONSES / "bad_request.json").read_bytes())


def html_internal_server_error() -> Reply:
    """A 500 with an HTML page (captured from a mock server)."""
    return error_reply(500, (OPENAI_RESPONSES / "internal_server_error.html").read_bytes(), content_type="text/html")


def rate_limited(retry_after: str = "7", *, header_name: str = "Retry-After") -> Reply:
    """A 429 with a retry-after header (seconds)."""
    return error_reply(
        429,
        {"error": "Rate limit reached. You reached free usage limit (reset hourly).", "error_type": "rate_limit"},
        headers=((header_name, retry_after),),
    )


def hf_server_error(status: int) -> Reply:
    """TGI's answer when generation fails on the server."""
    return error_reply(
        status,
        {"error": "Request failed during generation: Server error: worker unavailable", "error_type": "generation"},
    )


def completion(
    text: str | None = "The sum of 1 + 1 is 2.",
    *,
    model: str = DEFAULT_MODEL,
    finish_reason: str = "eos_token",
    usage: tuple[int, int] = (26, 40),
    tool_calls: Sequence[tuple[str, str, dict]] = (),
    reasoning_content: str | None = None,
    template: Path = HF_RESPONSES / "good.json",
) -> dict:
    """A chat.completion shaped like the router's captured good.json (or ``template``, another
    captured chat.completion).

    tool_calls: (id, name, arguments) triples.
    """
    payload = json.loads(template.read_text())
    payload["id"] = "chatcmpl-" + uuid.uuid4().hex
    payload["model"] = model
    message = payload["choices"][0]["message"]
    message["content"] = text
    if reasoning_content is not None:
        message["reasoning_content"] = reasoning_content
    if tool_calls:
        message["tool_calls"] = [
            {"id": call_id, "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}
            for call_id, name, arguments in tool_calls
        ]
    payload["choices"][0]["finish_reason"] = finish_reason
    payload["usage"] = {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": sum(usage)}
    return payload


class Chunks:
    """chat.completion.chunk objects of one stream, shaped like chat-good.sse.

    extra: top-level fields every chunk also carries (DashScope's ``"usage": null``).
    choice_extra: fields every choice also carries (Azure's ``content_filter_results``).
    """

    def __init__(
        self, model: str = DEFAULT_MODEL, *, extra: dict | None = None, choice_extra: dict | None = None
    ) -> None:
        self.model = model
        self.id = "chatcmpl-" + uuid.uuid4().hex
        self.created = int(time.time())
        self.extra = dict(extra or {})
        self.choice_extra = dict(choice_extra or {})

    def chunk(self, delta: dict, finish_reason: str | None = None) -> dict:
        choice = {"delta": delta, "finish_reason": finish_reason, "index": 0, "logprobs": None, **self.choice_extra}
        return {
            "choices": [choice],
            "created": self.created,
            "id": self.id,
            "model": self.model,
            "object": "chat.completion.chunk",
            "system_fingerprint": None,
            **self.extra,
        }

    def usage(
        self,
        prompt_tokens: int,
        completion_tokens: int,
        *,
        cached_tokens: int | None = None,
        reasoning_tokens: int | None = None,
    ) -> dict:
        """The last chunk with ``stream_options.include_usage``: no choices, the usage."""
        usage: dict = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        if cached_tokens is not None:
            usage["prompt_tokens_details"] = {"cached_tokens": cached_tokens}
        if reasoning_tokens is not None:
            usage["completion_tokens_details"] = {"reasoning_tokens": reasoning_tokens}
        return {
            "choices": [],
            "created": self.created,
            "id": self.id,
            "model": self.model,
            "object": "chat.completion.chunk",
            "system_fingerprint": None,
            **self.extra,
            "usage": usage,
        }


def sse_reply(chunks: Iterable[dict | bytes | threading.Event], *, done: bool = True, cut: bool = False) -> Reply:
    """An event stream: each chunk object is one ``data:`` event in one HTTP chunk (bytes and
    Events pass as they are)."""
    events = [
        chunk if isinstance(chunk, (bytes, threading.Event)) else b"data: " + json.dumps(chunk).encode() + b"\n\n"
        for chunk in chunks
    ]
    if done and not cut:
        events.append(b"data: [DONE]\n\n")
    return Reply(200, (("Content-Type", "text/event-stream"), ("Cache-Control", "no-cache")), b"", tuple(events), cut)


def fragments(text: str, count: int) -> list[str]:
    """``text`` split into ``count`` non-empty pieces (cut anywhere, as providers do)."""
    count = max(1, min(count, len(text)))
    step = len(text) / count
    bounds = [round(step * i) for i in range(count + 1)]
    return [text[bounds[i] : bounds[i + 1]] for i in range(count)]


def text_chunks(
    pieces: Sequence[str],
    *,
    usage: tuple[int, int] = (25, 12),
    cached_tokens: int | None = None,
    reasoning: Sequence[str] = (),
    reasoning_tokens: int | None = None,
    finish_reason: str = "stop",
    model: str = DEFAULT_MODEL,
    chunks: Chunks | None = None,
) -> list[dict]:
    """``chunks`` (else ``Chunks(model)``) shapes every chunk."""
    c = chunks or Chunks(model)
    out = [c.chunk({"content": "", "role": "assistant"})]
    out += [c.chunk({"reasoning_content": piece}) for piece in reasoning]
    out += [c.chunk({"content": piece}) for piece in pieces]
    out.append(c.chunk({}, finish_reason))
    out.append(c.usage(*usage, cached_tokens=cached_tokens, reasoning_tokens=reasoning_tokens))
    return out


def text_stream(pieces: Sequence[str] = ("The ", "answer ", "to 1 + ", "1 is ", "2."), **kwargs) -> Reply:
    """Text streamed piece by piece, then finish_reason, then a usage chunk, then [DONE]."""
    return sse_reply(text_chunks(pieces, **kwargs))


def reasoning_stream(
    reasoning: Sequence[str] = ("Let me ", "add the ", "numbers."),
    pieces: Sequence[str] = ("It is ", "2."),
    **kwargs,
) -> Reply:
    """``reasoning_content`` deltas (DeepSeek / Qwen / vLLM style), then text."""
    return sse_reply(text_chunks(pieces, reasoning=reasoning, **kwargs))


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: dict

    @property
    def arguments_json(self) -> str:
        return json.dumps(self.arguments)


def tool_call_chunks(
    calls: Sequence[ToolCall],
    *,
    text: Sequence[str] = (),
    pieces: int = 4,
    usage: tuple[int, int] = (120, 30),
    model: str = DEFAULT_MODEL,
    chunks: Chunks | None = None,
) -> list[dict]:
    """Optional text, then each call: a first chunk with id, name and empty arguments, then
    its arguments in ``pieces`` fragments; finish_reason tool_calls; a usage chunk.
    ``chunks`` (else ``Chunks(model)``) shapes every chunk."""
    c = chunks or Chunks(model)
    out = [c.chunk({"content": "", "role": "assistant"})]
    out += [c.chunk({"content": piece}) for piece in text]
    for index, call in enumerate(calls):
        out.append(
            c.chunk(
                {
                    "tool_calls": [
                        {
                            "index": index,
                            "id": call.id,
                            "type": "function",
                            "function": {"name": call.name, "arguments": ""},
                        }
                    ]
                }
            )
        )
        for piece in fragments(call.arguments_json, pieces):
            out.append(c.chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}))
    out.append(c.chunk({}, "tool_calls"))
    out.append(c.usage(*usage))
    return out


def tool_call_stream(calls: Sequence[ToolCall], **kwargs) -> Reply:
    return sse_reply(tool_call_chunks(calls, **kwargs))


def cut_stream(pieces: Sequence[str] = ("This answer ", "stops ", "in the mid")) -> Reply:
    """A text stream whose connection closes mid-way: no finish_reason, no usage, no [DONE],
    and the chunked HTTP body never ends."""
    c = Chunks()
    chunks = [c.chunk({"content": "", "role": "assistant"})] + [c.chunk({"content": piece}) for piece in pieces]
    return sse_reply(chunks, cut=True)


# ---------------------------------------------------------------- what the router checks

ROLES = frozenset(("system", "user", "assistant", "tool"))
ALLOWED_TOP_LEVEL = frozenset(
    (
        "model",
        "messages",
        "stream",
        "stream_options",
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "top_p",
        "stop",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "user",
        "seed",
        "n",
        "frequency_penalty",
        "presence_penalty",
        "logprobs",
        "top_logprobs",
        "response_format",
        "logit_bias",
    )
)
ANTHROPIC_ONLY = frozenset(
    (
        "system",
        "thinking",
        "context_management",
        "output_config",
        "metadata",
        "top_k",
        "stop_sequences",
        "cache_control",
        "anthropic_version",
        "anthropic_beta",
        "betas",
        "container",
        "mcp_servers",
        "defer_loading",
        "input_schema",
    )
)
FORBIDDEN_HEADERS = frozenset(
    ("anthropic-version", "anthropic-beta", "x-api-key", "anthropic-dangerous-direct-browser-access")
)
CREDENTIAL_HEADERS = frozenset(("authorization", "api-key", "x-api-key", "x-goog-api-key"))
MESSAGE_KEYS = frozenset(("role", "content", "name", "tool_calls", "tool_call_id"))
MAX_TOKENS_FIELDS = ("max_tokens", "max_completion_tokens")


@dataclass(frozen=True)
class ChatProfile:
    """What one OpenAI-compatible provider accepts (the fake checks exactly this).

    name: for messages.
    path / query: the request path and the exact query string (without ``?``).
    auth_header / auth_prefix: the credential header (lower-case) and what precedes the
        key in it; every other credential header is rejected.
    extra_body_keys: top-level fields accepted beyond OpenAI's (DashScope's
        ``enable_thinking``, ``thinking_budget``).
    extra_message_keys: message fields accepted beyond OpenAI's (``reasoning_content`` on
        assistant messages).
    max_tokens_field: when set, the only one of max_tokens / max_completion_tokens accepted
        (OpenAI's reasoning models reject max_tokens); None accepts both.
    unauthorized: the provider's answer to a wrong or missing key.
    """

    name: str = "huggingface"
    path: str = CHAT_PATH
    query: str = ""
    auth_header: str = "authorization"
    auth_prefix: str = "Bearer "
    extra_body_keys: frozenset[str] = frozenset()
    extra_message_keys: frozenset[str] = frozenset()
    max_tokens_field: str | None = None
    unauthorized: Callable[[], Reply] = hf_unauthorized

    def credential(self, token: str) -> str:
        return self.auth_prefix + token


HUGGINGFACE = ChatProfile()

# ---------------------------------------------------------------- other providers

AZURE_RESPONSES = KONG / "azure" / "unit" / "real-responses"
AZURE_MODEL = "gpt-4o-2024-11-20"  # what Azure says answered (the deployment's model version)
DASHSCOPE_PATH = "/compatible-mode/v1/chat/completions"
DASHSCOPE_MODEL = "qwen-plus"
OPENAI_MODEL = "gpt-4.1-2025-04-14"
AZURE_FILTER_CATEGORIES = ("hate", "self_harm", "sexual", "violence")


def azure_unauthorized() -> Reply:
    """Azure OpenAI's 401 for a wrong or missing key (Azure OpenAI docs, "REST API reference")."""
    return error_reply(
        401,
        {
            "error": {
                "code": "401",
                "message": "Access denied due to invalid subscription key or wrong API endpoint. "
                "Make sure to provide a valid key for an active subscription and use a correct regional API endpoint "
                "for your resource.",
            }
        },
    )


def azure_filter_results(filtered: Sequence[str] = ()) -> dict:
    """Azure's content_filter_result(s): every category, those in ``filtered`` filtered at high severity."""
    results: dict = {
        name: {"filtered": name in filtered, "severity": "high" if name in filtered else "safe"}
        for name in AZURE_FILTER_CATEGORIES
    }
    results["jailbreak"] = {"filtered": "jailbreak" in filtered, "detected": "jailbreak" in filtered}
    return results


def azure_content_filter_error(filtered: Sequence[str] = ("hate",)) -> Reply:
    """Azure's 400 for a prompt its content filter blocked (Azure OpenAI docs, "Content filtering")."""
    return error_reply(
        400,
        {
            "error": {
                "message": "The response was filtered due to the prompt triggering Azure OpenAI's content management "
                "policy. Please modify your prompt and retry. To learn more about our content filtering policies "
                "please read our documentation: https://go.microsoft.com/fwlink/?linkid=2198766",
                "type": None,
                "param": "prompt",
                "code": "content_filter",
                "status": 400,
                "innererror": {
                    "code": "ResponsibleAIPolicyViolation",
                    "content_filter_result": azure_filter_results(filtered),
                },
            }
        },
    )


def azure_rate_limited(retry_after: str = "7") -> Reply:
    return error_reply(
        429,
        {
            "error": {
                "code": "429",
                "message": "Requests to the ChatCompletions_Create Operation under Azure OpenAI API version "
                "2025-01-01-preview have exceeded token rate limit of your current AIServices S0 pricing tier. "
                f"Please retry after {retry_after} seconds.",
            }
        },
        headers=(("Retry-After", retry_after), ("x-ratelimit-remaining-requests", "0")),
    )


def azure_server_error(status: int) -> Reply:
    """Azure OpenAI's 500 or 503."""
    error = {
        500: {"code": "InternalServerError", "message": "The server had an error while processing your request."},
        503: {"code": "ServiceUnavailable", "message": "The service is temporarily unable to process your request."},
    }[status]
    return error_reply(status, {"error": error})


def azure_completion(
    text: str | None = "Dividing by zero is undefined.",
    *,
    finish_reason: str = "stop",
    usage: tuple[int, int] = (130, 139),
    tool_calls: Sequence[tuple[str, str, dict]] = (),
    filtered: Sequence[str] = (),
    model: str = AZURE_MODEL,
) -> dict:
    """A chat.completion shaped like the captured Azure answer, with Azure's
    prompt_filter_results and content_filter_results."""
    payload = completion(
        text,
        model=model,
        finish_reason=finish_reason,
        usage=usage,
        tool_calls=tool_calls,
        template=AZURE_RESPONSES / "llm-v1-chat.json",
    )
    payload["choices"][0]["content_filter_results"] = azure_filter_results(filtered)
    payload["prompt_filter_results"] = [{"prompt_index": 0, "content_filter_results": azure_filter_results()}]
    return payload


def azure_chunks(model: str = AZURE_MODEL) -> Chunks:
    """Azure's chunks: each choice carries content_filter_results."""
    return Chunks(model, choice_extra={"content_filter_results": azure_filter_results()})


def azure_prelude() -> dict:
    """Azure's first stream chunk: no choices, no model, only the prompt's filter results."""
    return {
        "choices": [],
        "created": 0,
        "id": "",
        "model": "",
        "object": "",
        "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": azure_filter_results()}],
    }


def azure_text_stream(pieces: Sequence[str] = ("Dividing ", "by zero ", "is undefined."), **kwargs) -> Reply:
    return sse_reply([azure_prelude(), *text_chunks(pieces, chunks=azure_chunks(), **kwargs)])


def azure_tool_call_stream(calls: Sequence[ToolCall], **kwargs) -> Reply:
    return sse_reply([azure_prelude(), *tool_call_chunks(calls, chunks=azure_chunks(), **kwargs)])


def azure_filtered_stream(pieces: Sequence[str] = ("Here is how ", "to"), usage: tuple[int, int] = (40, 6)) -> Reply:
    """A completion Azure's filter stopped mid-way: the last choice says finish_reason
    content_filter and which category fired."""
    c = azure_chunks()
    chunks: list[dict] = [azure_prelude(), c.chunk({"content": "", "role": "assistant"})]
    chunks += [c.chunk({"content": piece}) for piece in pieces]
    last = c.chunk({}, "content_filter")
    last["choices"][0]["content_filter_results"] = azure_filter_results(("violence",))
    chunks += [last, c.usage(*usage)]
    return sse_reply(chunks)


def dashscope_unauthorized() -> Reply:
    """DashScope compatible mode's 401 (Model Studio docs, "Error codes": invalid_api_key)."""
    return error_reply(
        401,
        {
            "error": {
                "message": "Incorrect API key provided. ",
                "type": "invalid_request_error",
                "param": None,
                "code": "invalid_api_key",
            },
            "request_id": str(uuid.uuid4()),
        },
    )


def dashscope_rate_limited(retry_after: str = "7") -> Reply:
    return error_reply(
        429,
        {
            "error": {
                "message": "Requests rate limit exceeded, please try again later.",
                "type": "limit_requests",
                "param": None,
                "code": "limit_requests",
            },
            "request_id": str(uuid.uuid4()),
        },
        headers=(("Retry-After", retry_after),),
    )


def dashscope_server_error(status: int) -> Reply:
    return error_reply(
        status,
        {
            "error": {
                "message": "The server had an error while responding.",
                "type": "internal_error",
                "param": None,
                "code": "internal_error",
            },
            "request_id": "b5f3e7a2-0000-4000-8000-000000000000",
        },
    )


class DashScopeChunks(Chunks):
    """DashScope's chunks: ``"usage": null`` on each, ``content`` and ``reasoning_content``
    both present (one of them null)."""

    def __init__(self, model: str = DASHSCOPE_MODEL) -> None:
        super().__init__(model, extra={"usage": None})

    def chunk(self, delta: dict, finish_reason: str | None = None) -> dict:
        if "tool_calls" not in delta:
            delta = {"content": None, "reasoning_content": None, **delta}
        return super().chunk(delta, finish_reason)


def dashscope_stream(
    pieces: Sequence[str] = ("It is ", "2."),
    *,
    reasoning: Sequence[str] = (),
    usage: tuple[int, int] = (30, 16),
    cached_tokens: int | None = None,
    reasoning_tokens: int | None = None,
    model: str = DASHSCOPE_MODEL,
) -> Reply:
    """A Qwen answer as DashScope streams it (deep thinking: ``reasoning_content`` first)."""
    c = DashScopeChunks(model)
    chunks = [
        c.chunk(
            {"role": "assistant", "reasoning_content": "" if reasoning else None, "content": None if reasoning else ""}
        )
    ]
    chunks += [c.chunk({"reasoning_content": piece}) for piece in reasoning]
    chunks += [c.chunk({"content": piece}) for piece in pieces]
    chunks.append(c.chunk({"content": ""}, "stop"))
    chunks.append(c.usage(*usage, cached_tokens=cached_tokens, reasoning_tokens=reasoning_tokens))
    return sse_reply(chunks)


def dashscope_completion(
    text: str | None = "It is 2.",
    *,
    reasoning_content: str | None = None,
    finish_reason: str = "stop",
    usage: tuple[int, int] = (30, 16),
    cached_tokens: int = 0,
    tool_calls: Sequence[tuple[str, str, dict]] = (),
    model: str = DASHSCOPE_MODEL,
) -> dict:
    """A chat.completion as DashScope's compatible mode answers (Model Studio docs, "OpenAI
    compatibility - Chat": ``prompt_tokens_details.cached_tokens`` always present)."""
    message: dict = {"role": "assistant", "content": text}
    if reasoning_content is not None:
        message["reasoning_content"] = reasoning_content
    if tool_calls:
        message["tool_calls"] = [
            {
                "index": i,
                "id": call_id,
                "type": "function",
                "function": {"name": name, "arguments": json.dumps(arguments)},
            }
            for i, (call_id, name, arguments) in enumerate(tool_calls)
        ]
    return {
        "choices": [{"message": message, "finish_reason": finish_reason, "index": 0, "logprobs": None}],
        "object": "chat.completion",
        "usage": {
            "prompt_tokens": usage[0],
            "completion_tokens": usage[1],
            "total_tokens": sum(usage),
            "prompt_tokens_details": {"cached_tokens": cached_tokens},
        },
        "created": int(time.time()),
        "system_fingerprint": None,
        "model": model,
        "id": "chatcmpl-" + str(uuid.uuid4()),
    }


def dashscope_tool_call_stream(
    calls: Sequence[ToolCall],
    *,
    text: Sequence[str] = (),
    pieces: int = 4,
    usage: tuple[int, int] = (120, 30),
    model: str = DASHSCOPE_MODEL,
) -> Reply:
    """Qwen tool calls as DashScope streams them: later fragments repeat ``type`` with an empty ``id``."""
    c = DashScopeChunks(model)
    chunks = [c.chunk({"role": "assistant", "content": ""})]
    chunks += [c.chunk({"content": piece}) for piece in text]
    for index, call in enumerate(calls):
        first, *rest = fragments(call.arguments_json, pieces)
        chunks.append(
            c.chunk(
                {
                    "content": None,
                    "tool_calls": [
                        {
                            "index": index,
                            "id": call.id,
                            "type": "function",
                            "function": {"name": call.name, "arguments": first},
                        }
                    ],
                }
            )
        )
        chunks += [
            c.chunk(
                {
                    "content": None,
                    "tool_calls": [{"index": index, "id": "", "type": "function", "function": {"arguments": piece}}],
                }
            )
            for piece in rest
        ]
    chunks.append(c.chunk({"content": ""}, "tool_calls"))
    chunks.append(c.usage(*usage))
    return sse_reply(chunks)


def openai_unauthorized() -> Reply:
    """OpenAI's 401 (captured, Kong's mock)."""
    return error_reply(401, (OPENAI_RESPONSES / "unauthorized.json").read_bytes())


def openai_rate_limited(retry_after: str = "3") -> Reply:
    """OpenAI's 429 for too many requests per minute (OpenAI API reference, "Error codes")."""
    body = {
        "error": {
            "message": "Rate limit reached for gpt-4.1 on requests per min (RPM): Limit 500, Used 500, Requested 1.",
            "type": "requests",
            "param": None,
            "code": "rate_limit_exceeded",
        }
    }
    return error_reply(429, body, headers=(("retry-after", retry_after), ("x-ratelimit-remaining-requests", "0")))


def openai_server_error(status: int) -> Reply:
    body = {
        "error": {
            "message": "The server is overloaded or not ready yet.",
            "type": "server_error",
            "param": None,
            "code": None,
        }
    }
    return error_reply(status, body)


def openai_completion(
    text: str | None = "The sum of 1 + 1 is 2.", *, model: str = OPENAI_MODEL, finish_reason: str = "stop", **kwargs
) -> dict:
    """A chat.completion shaped like OpenAI's captured good.json."""
    return completion(text, model=model, finish_reason=finish_reason, template=OPENAI_RESPONSES / "good.json", **kwargs)


def azure_profile(deployment: str, api_version: str, *, auth_header: str = "api-key") -> ChatProfile:
    """Azure OpenAI: ``/openai/deployments/{deployment}/chat/completions?api-version=...``, the key
    in ``api-key`` (or ``Authorization: Bearer`` with ``auth_header="authorization"``)."""
    return ChatProfile(
        name="azure",
        path=f"/openai/deployments/{deployment}/chat/completions",
        query=f"api-version={api_version}",
        auth_header=auth_header,
        auth_prefix="" if auth_header == "api-key" else "Bearer ",
        unauthorized=azure_unauthorized,
    )


DASHSCOPE = ChatProfile(
    name="dashscope",
    path=DASHSCOPE_PATH,
    extra_body_keys=frozenset(("enable_thinking", "thinking_budget")),
    extra_message_keys=frozenset(("reasoning_content",)),
    unauthorized=dashscope_unauthorized,
)
OPENAI = ChatProfile(name="openai", unauthorized=openai_unauthorized)
TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
PART_KEYS = {"text": {"type", "text"}, "image_url": {"type", "image_url"}, "file": {"type", "file"}}


def _find_key(value, key: str, where: str) -> list[str]:
    if isinstance(value, dict):
        found = [f"{where} has Anthropic-only key {key!r}"] if key in value else []
        for name, inner in value.items():
            found += _find_key(inner, key, f"{where}.{name}")
        return found
    if isinstance(value, list):
        return [problem for i, inner in enumerate(value) for problem in _find_key(inner, key, f"{where}[{i}]")]
    return []


def _content_problems(content, role: str, where: str, *, may_be_empty: bool) -> list[str]:
    if content is None:
        return [] if may_be_empty else [f"{where}.content is null"]
    if isinstance(content, str):
        return []
    if not isinstance(content, list) or not content:
        return [f"{where}.content must be a string or a non-empty list of parts"]
    problems = []
    for i, part in enumerate(content):
        place = f"{where}.content[{i}]"
        if not isinstance(part, dict) or part.get("type") not in PART_KEYS:
            problems.append(f"{place} is not a text/image_url/file part")
            continue
        kind = part["type"]
        if kind != "text" and role != "user":
            problems.append(f"{place}: {kind} parts are only allowed in user messages")
        extra = set(part) - PART_KEYS[kind]
        if extra:
            problems.append(f"{place} has unknown keys {sorted(extra)}")
        if kind == "text" and not isinstance(part.get("text"), str):
            problems.append(f"{place}.text must be a string")
        if kind == "image_url" and not (
            isinstance(part.get("image_url"), dict) and isinstance(part["image_url"].get("url"), str)
        ):
            problems.append(f"{place}.image_url.url must be a string")
    return problems


def _tool_call_problems(calls, where: str) -> list[str]:
    if not isinstance(calls, list) or not calls:
        return [f"{where}.tool_calls must be a non-empty list"]
    problems = []
    for i, call in enumerate(calls):
        place = f"{where}.tool_calls[{i}]"
        if not isinstance(call, dict) or set(call) - {"id", "type", "function"}:
            problems.append(f"{place} must be {{id, type, function}}")
            continue
        if not isinstance(call.get("id"), str) or not call["id"]:
            problems.append(f"{place}.id must be a non-empty string")
        if call.get("type") != "function":
            problems.append(f"{place}.type must be 'function'")
        function = call.get("function")
        if (
            not isinstance(function, dict)
            or not isinstance(function.get("name"), str)
            or not isinstance(function.get("arguments"), str)
        ):
            problems.append(f"{place}.function must have string name and arguments")
            continue
        try:
            json.loads(function["arguments"])
        except ValueError:
            problems.append(f"{place}.function.arguments is not JSON")
    return problems


def _profile_body_problems(body: dict, profile: ChatProfile) -> list[str]:
    """The provider-specific top-level fields: which max tokens field, DashScope's thinking."""
    problems = []
    if profile.max_tokens_field is not None:
        for name in MAX_TOKENS_FIELDS:
            if name != profile.max_tokens_field and name in body:
                problems.append(
                    f"Unsupported parameter: {name!r} is not supported with this model. "
                    f"Use {profile.max_tokens_field!r} instead."
                )
    if "enable_thinking" in body and not isinstance(body["enable_thinking"], bool):
        problems.append("enable_thinking must be a boolean")
    if "thinking_budget" in body:
        budget = body["thinking_budget"]
        if not isinstance(budget, int) or isinstance(budget, bool) or budget < 1:
            problems.append("thinking_budget must be a positive integer")
        if body.get("enable_thinking") is not True:
            problems.append("thinking_budget is only meaningful with enable_thinking: true")
    return problems


def chat_request_problems(body, profile: ChatProfile = HUGGINGFACE) -> list[str]:
    """Everything an OpenAI-compatible server (the HF router, TGI, OpenAI, or the provider
    ``profile`` describes) would reject in ``body``, plus Anthropic-only fields; empty when
    the request is valid."""
    if not isinstance(body, dict):
        return ["the body must be a JSON object"]
    problems: list[str] = []
    for key in body:
        if key in ANTHROPIC_ONLY:
            problems.append(f"unknown field {key!r} (Anthropic-only)")
        elif key not in ALLOWED_TOP_LEVEL and key not in profile.extra_body_keys:
            problems.append(f"unknown field {key!r}")
    problems += _profile_body_problems(body, profile)
    if not isinstance(body.get("model"), str) or not body["model"]:
        problems.append("model must be a non-empty string")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        problems.append("stream must be a boolean")
    if "stream_options" in body:
        if stream is not True:
            problems.append("stream_options is only allowed when stream is true")
        options = body["stream_options"]
        if (
            not isinstance(options, dict)
            or set(options) - {"include_usage"}
            or not isinstance(options.get("include_usage", False), bool)
        ):
            problems.append("stream_options must be {include_usage: bool}")
    for name in ("max_tokens", "max_completion_tokens"):
        if name in body and (not isinstance(body[name], int) or isinstance(body[name], bool) or body[name] < 1):
            problems.append(f"{name} must be a positive integer")
    if "temperature" in body and not (isinstance(body["temperature"], (int, float)) and 0 <= body["temperature"] <= 2):
        problems.append("temperature must be a number in [0, 2]")
    if "top_p" in body and not (isinstance(body["top_p"], (int, float)) and 0 <= body["top_p"] <= 1):
        problems.append("top_p must be a number in [0, 1]")
    if "stop" in body:
        stop = body["stop"]
        if not (
            isinstance(stop, str)
            or (isinstance(stop, list) and len(stop) <= 4 and all(isinstance(s, str) for s in stop))
        ):
            problems.append("stop must be a string or at most 4 strings")
    if "user" in body and not isinstance(body["user"], str):
        problems.append("user must be a string")

    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        problems.append("messages must be a non-empty list")
        messages = []
    pending: list[str] = []  # tool_call ids of the last assistant turn not yet answered
    seen_ids: set[str] = set()
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            problems.append(f"{where} must be an object")
            continue
        role = message.get("role")
        if role not in ROLES:
            problems.append(f"{where}.role {role!r} is not one of system/user/assistant/tool")
            continue
        extra = set(message) - MESSAGE_KEYS - profile.extra_message_keys
        if extra:
            problems.append(f"{where} has unknown keys {sorted(extra)}")
        if "reasoning_content" in message and (
            role != "assistant" or not isinstance(message["reasoning_content"], str)
        ):
            problems.append(f"{where}.reasoning_content must be a string on an assistant message")
        problems += _find_key(message, "cache_control", where)
        if role != "tool" and pending:
            problems.append(
                f"{where}: an assistant message with 'tool_calls' must be followed by tool messages "
                f"responding to each 'tool_call_id'; missing {pending}"
            )
            pending = []
        if role == "tool":
            call_id = message.get("tool_call_id")
            if not isinstance(call_id, str) or call_id not in pending:
                problems.append(
                    f"{where}: tool message with tool_call_id {call_id!r} does not answer a preceding tool call"
                )
            else:
                pending.remove(call_id)
            problems += _content_problems(message.get("content"), role, where, may_be_empty=False)
            continue
        if "tool_call_id" in message:
            problems.append(f"{where}: tool_call_id only belongs in tool messages")
        if role == "assistant" and "tool_calls" in message:
            call_problems = _tool_call_problems(message["tool_calls"], where)
            problems += call_problems
            if not call_problems:
                ids = [call["id"] for call in message["tool_calls"]]
                if len(set(ids)) != len(ids) or seen_ids & set(ids):
                    problems.append(f"{where}: duplicate tool call ids {ids}")
                seen_ids.update(ids)
                pending = ids
            problems += _content_problems(message.get("content"), role, where, may_be_empty=True)
        else:
            if "tool_calls" in message:
                problems.append(f"{where}: tool_calls only belong in assistant messages")
            problems += _content_problems(message.get("content"), role, where, may_be_empty=False)
    if pending:
        problems.append(f"tool calls {pending} have no tool message answering them")

    tool_names: set[str] = set()
    if "tools" in body:
        tools = body["tools"]
        if not isinstance(tools, list) or not tools:
            problems.append("tools must be a non-empty list")
            tools = []
        for i, tool in enumerate(tools):
            where = f"tools[{i}]"
            if not isinstance(tool, dict) or set(tool) != {"type", "function"} or tool.get("type") != "function":
                problems.append(
                    f"{where} must be exactly {{type: 'function', function}} "
                    f"(got keys {sorted(tool) if isinstance(tool, dict) else tool!r})"
                )
                continue
            function = tool["function"]
            if not isinstance(function, dict):
                problems.append(f"{where}.function must be an object")
                continue
            extra = set(function) - {"name", "description", "parameters", "strict"}
            if extra:
                problems.append(f"{where}.function has unknown keys {sorted(extra)}")
            name = function.get("name")
            if not isinstance(name, str) or not TOOL_NAME.match(name):
                problems.append(f"{where}.function.name {name!r} is not a valid function name")
            elif name in tool_names:
                problems.append(f"{where}: duplicate function name {name!r}")
            else:
                tool_names.add(name)
            if "description" in function and not isinstance(function["description"], str):
                problems.append(f"{where}.function.description must be a string")
            parameters = function.get("parameters")
            if not isinstance(parameters, dict) or parameters.get("type") != "object":
                problems.append(f"{where}.function.parameters must be a JSON Schema object with type 'object'")
    if "tool_choice" in body:
        choice = body["tool_choice"]
        if "tools" not in body:
            problems.append("tool_choice is only allowed when tools are specified")
        if isinstance(choice, str):
            if choice not in ("none", "auto", "required"):
                problems.append(f"tool_choice {choice!r} is not none/auto/required")
        elif not (
            isinstance(choice, dict)
            and choice.get("type") == "function"
            and isinstance(choice.get("function"), dict)
            and choice["function"].get("name") in tool_names
        ):
            problems.append("tool_choice must name a declared function")
    if "parallel_tool_calls" in body and not isinstance(body["parallel_tool_calls"], bool):
        problems.append("parallel_tool_calls must be a boolean")
    return problems


# ---------------------------------------------------------------- the server


class FakeChatServer(ScriptedServer):
    """A fake Hugging Face router (or the provider ``profile`` describes) on ``127.0.0.1``;
    use as a context manager or start()/stop().

    Args:
        token: the key the provider accepts (``Authorization: Bearer <token>`` for the
            router); None: a local server that wants no credential header at all.
        profile: what the provider accepts (default the Hugging Face router).

    ``expected_token`` and ``profile`` may be changed by a test; :meth:`restore` puts back
    the ones given here.
    """

    name = "fake router"
    thread_name = "fake-hf-router"

    def __init__(self, token: str | None, profile: ChatProfile = HUGGINGFACE) -> None:
        super().__init__()
        self.expected_token = token
        self.profile = profile
        self._initial = (token, profile)

    def restore(self) -> None:
        """:meth:`reset`, and the token and profile given at construction back."""
        self.reset()
        self.expected_token, self.profile = self._initial

    def missing_reply(self, message: str) -> Reply:
        return error_reply(500, {"error": message, "error_type": "fake"})

    def check(self, request: RecordedRequest) -> Reply | None:
        """The provider's checks, in its order: path, query, auth, headers and body."""
        profile, token = self.profile, self.expected_token
        if request.path != profile.path:
            request.problems.append(f"unexpected path {request.path!r} (expected {profile.path!r})")
            return error_reply(404, {"error": "Not Found"})
        if request.method != "POST":
            request.problems.append(f"unexpected method {request.method}")
            return error_reply(405, {"error": "Method Not Allowed"})
        if request.query != profile.query:
            request.problems.append(f"unexpected query string {request.query!r} (expected {profile.query!r})")
            return error_reply(400, {"error": f"unexpected query string {request.query!r}", "error_type": "validation"})
        if token is None:
            sent = sorted(name for name in CREDENTIAL_HEADERS if name in request.headers)
            if sent:
                request.problems.append(f"credential headers {sent} reached a server that wants none")
                return profile.unauthorized()
        elif request.headers.get(profile.auth_header) != profile.credential(token):
            request.problems.append(
                f"missing or wrong {profile.auth_header}: {profile.auth_prefix}<{profile.name} key>"
            )
            return profile.unauthorized()
        problems = [
            f"header {name!r} must not reach an OpenAI provider"
            for name in FORBIDDEN_HEADERS
            if name in request.headers
        ]
        problems += [
            f"credential header {name!r} must not reach {profile.name} (it takes {profile.auth_header!r})"
            for name in sorted(CREDENTIAL_HEADERS - {profile.auth_header} - FORBIDDEN_HEADERS)
            if name in request.headers
        ]
        if not request.headers.get("content-type", "").startswith("application/json"):
            problems.append(f"content-type is {request.headers.get('content-type')!r}, not application/json")
        if request.body is None:
            problems.append(f"body is not JSON ({len(request.raw_body)} bytes)")
        else:
            problems += chat_request_problems(request.body, profile)
        if problems:
            request.problems.extend(problems)
            return error_reply(
                400, {"error": "Input validation error: " + "; ".join(problems), "error_type": "validation"}
            )
        return None
