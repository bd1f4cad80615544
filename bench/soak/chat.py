"""What the soak's fake router writes: OpenAI Chat Completions chunks as the Hugging Face
router streams them (``data: <chat.completion.chunk>`` events, one per chunk of a chunked
body, the usage chunk, ``data: [DONE]``), its error bodies, and the tokens' text.

A token's text is ``<word>~<index>~<monotonic ns>~ ``: the word cycles through :data:`WORDS`
(UTF-8 and JSON escapes a gateway could mangle), the index and the moment the fake wrote it
let the client check every token arrived once, in order, and how long it took.
"""

from __future__ import annotations

import json
import time

from bench.http11 import LAST_CHUNK, encode_chunk

WORDS = ("alpha", "délta", 'say "hi"', "back\\slash", "tab\there", "日本")  # UTF-8 and JSON escapes
_WORDS_JSON = tuple(json.dumps(word, ensure_ascii=False)[1:-1].encode() for word in WORDS)
STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
    b"transfer-encoding: chunked\r\n\r\n"
)
ERROR_BODIES = {  # the router's (TGI's) error shapes, ../shared/fixtures/kong/huggingface
    429: b'{"error":"Rate limit reached. You reached free usage limit (reset hourly).","error_type":"rate_limit"}',
    500: b'{"error":"Request failed during generation: Server error: CUDA out of memory","error_type":"generation"}',
    503: b'{"error":"Model meta-llama/Llama-3.3-70B-Instruct is currently loading","estimated_time":42.0}',
}
_REASONS = {
    400: b"Bad Request",
    404: b"Not Found",
    429: b"Too Many Requests",
    500: b"Internal Server Error",
    503: b"Service Unavailable",
}


def response(status: int, body: bytes, content_type: bytes = b"application/json") -> bytes:
    """A whole HTTP/1.1 answer with ``body`` (its length given)."""
    return b"HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %d\r\n\r\n%s" % (
        status, _REASONS.get(status, b"Error"), content_type, len(body), body,
    )  # fmt: skip


def _event(json_text: bytes) -> bytes:
    """One ``data:`` event as one chunk of a chunked body."""
    return encode_chunk(b"data: " + json_text + b"\n\n")


class Chunks:
    """The chunk objects of one stream, as the router sends them, pre-split around what varies."""

    def __init__(self, model: str, exchange_id: int) -> None:
        head = (
            b'{"id":"chatcmpl-soak%d","object":"chat.completion.chunk","created":1760000000,"model":%s,"choices":['
            % (exchange_id, json.dumps(model).encode())
        )
        self.role = _event(head + b'{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}')
        self.text_head = head + b'{"index":0,"delta":{"content":"'
        self.finish = _event(head + b'{"index":0,"delta":{},"finish_reason":"stop"}]}')
        self.head = head

    def token(self, index: int) -> bytes:
        word = _WORDS_JSON[index % len(_WORDS_JSON)]
        text = b"%s~%d~%d~ " % (word, index, time.monotonic_ns())
        return _event(self.text_head + text + b'"},"finish_reason":null}]}')

    def usage(self, prompt_tokens: int, completion_tokens: int) -> bytes:
        usage = b'{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d}' % (
            prompt_tokens, completion_tokens, prompt_tokens + completion_tokens,
        )  # fmt: skip
        return _event(self.head + b'],"usage":' + usage + b"}") + _event(b"[DONE]") + LAST_CHUNK

    def cut(self) -> bytes:
        """An event whose JSON stops mid-string, then the body's end."""
        return _event(self.text_head + b"cut off her") + LAST_CHUNK
