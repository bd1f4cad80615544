"""A local model emulator that speaks OpenAI Chat Completions, served in process as an
httpx transport: the demo recipe's provider, so aimw runs with no keys and no network.

Its model ("aimw-demo-1") answers text, streams it word by word, and calls tools:
- a user prompt starting with ``!`` asks for the ``Bash`` tool (when the request declares
  it) with the rest of the prompt as ``command``;
- after a tool result it reports what the tool returned;
- anything else gets a short answer quoting the prompt.
Claude Code's ``<system-reminder>`` blocks are ignored when reading the prompt.
Wire format as in OpenAI's API reference ("Chat Completions", chunk objects, errors).
"""

from __future__ import annotations

import asyncio
import math
import re
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import msgspec

MODEL = "aimw-demo-1"
_REMINDER = re.compile(r"<system-reminder>.*?</system-reminder>", re.DOTALL)


class _Request(msgspec.Struct):
    model: str
    messages: list[dict[str, Any]]
    stream: bool = False
    tools: list[dict[str, Any]] | None = None


class Reply(msgspec.Struct):
    """What the emulated model says: ``text`` and/or one ``tool_call`` (name, arguments)."""

    text: str
    tool_call: tuple[str, str] | None = None


def _text_of(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


def reply_to(messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None) -> Reply:
    """The emulated model's answer to a Chat Completions conversation."""
    last = messages[-1] if messages else {}
    if last.get("role") == "tool":
        output = _text_of(last.get("content")).strip()
        return Reply(f"The tool returned: {output}" if output else "The tool returned nothing.")
    prompt = ""
    for message in reversed(messages):
        if message.get("role") == "user":
            prompt = _REMINDER.sub("", _text_of(message.get("content"))).strip()
            break
    tool_names = {tool.get("function", {}).get("name") for tool in tools or ()}
    if prompt.startswith("!") and "Bash" in tool_names:
        command = prompt[1:].strip()
        arguments = msgspec.json.encode({"command": command, "description": "Run the requested command"}).decode()
        return Reply("I'll run that command.", ("Bash", arguments))
    shown = prompt if len(prompt) <= 200 else prompt[:200] + "..."
    return Reply(f"Hello from the aimw demo model. You said: {shown}")


def _error(status: int, message: str, error_type: str) -> httpx.Response:
    return _json_response(status, {"error": {"message": message, "type": error_type, "code": None}})


def _json_response(status: int, payload: dict[str, Any]) -> httpx.Response:
    body = msgspec.json.encode(payload)
    return httpx.Response(
        status,
        stream=httpx.ByteStream(body),
        headers={"content-type": "application/json", "content-length": str(len(body))},
    )


class EmulatorTransport(httpx.AsyncBaseTransport):
    """Answer ``POST /v1/chat/completions`` like an OpenAI-compatible server.

    Args:
        word_delay: seconds between streamed words (0 streams as fast as possible).
    """

    def __init__(self, *, word_delay: float = 0.02) -> None:
        self.word_delay = word_delay

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method != "POST" or request.url.path != "/v1/chat/completions":
            return _error(404, f"Unknown request URL: {request.method} {request.url.path}", "invalid_request_error")
        try:
            body = msgspec.json.decode(await request.aread(), type=_Request)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            return _error(400, f"Invalid request body: {exc}", "invalid_request_error")
        reply = reply_to(body.messages, body.tools)
        prompt_tokens = max(1, math.ceil(len(msgspec.json.encode(body.messages)) / 4))
        completion_tokens = max(1, len(reply.text.split()) + (8 if reply.tool_call else 0))
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        completion_id = "chatcmpl-" + uuid.uuid4().hex
        if body.stream:
            stream = _ChunkStream(completion_id, reply, usage, self.word_delay)
            return httpx.Response(200, stream=stream, headers={"content-type": "text/event-stream"})
        message: dict[str, Any] = {"role": "assistant", "content": reply.text}
        if reply.tool_call:
            message["tool_calls"] = [_tool_call(reply.tool_call)]
        completion = {
            "id": completion_id,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": MODEL,
            "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if reply.tool_call else "stop"}],
            "usage": usage,
        }
        return _json_response(200, completion)


def _tool_call(call: tuple[str, str]) -> dict[str, Any]:
    return {
        "id": "call_" + uuid.uuid4().hex[:24],
        "type": "function",
        "function": {"name": call[0], "arguments": call[1]},
    }


class _ChunkStream(httpx.AsyncByteStream):
    def __init__(self, completion_id: str, reply: Reply, usage: dict[str, Any], word_delay: float) -> None:
        self.completion_id = completion_id
        self.reply = reply
        self.usage = usage
        self.word_delay = word_delay

    def _chunk(
        self, delta: dict[str, Any], finish_reason: str | None = None, usage: dict[str, Any] | None = None
    ) -> bytes:
        chunk = {
            "id": self.completion_id,
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": MODEL,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}] if usage is None else [],
        }
        if usage is not None:
            chunk["usage"] = usage
        return b"data: " + msgspec.json.encode(chunk) + b"\n\n"

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self._chunk({"role": "assistant", "content": ""})
        words = re.findall(r"\S+\s*", self.reply.text)
        for word in words:
            if self.word_delay:
                await asyncio.sleep(self.word_delay)
            yield self._chunk({"content": word})
        if self.reply.tool_call:
            call = _tool_call(self.reply.tool_call)
            arguments = call["function"]["arguments"]
            call["function"]["arguments"] = ""
            yield self._chunk({"tool_calls": [{"index": 0, **call}]})
            middle = len(arguments) // 2
            for piece in (arguments[:middle], arguments[middle:]):
                yield self._chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
        yield self._chunk({}, "tool_calls" if self.reply.tool_call else "stop")
        yield self._chunk({}, usage=self.usage)
        yield b"data: [DONE]\n\n"
