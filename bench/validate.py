"""Checks of what a target answered against what the fake upstream said (:class:`Answer`).

Each ``check_*`` function takes a whole response body (bytes) and returns the list of
problems found, empty when the answer is valid:

- :func:`check_anthropic_stream`: the Anthropic SSE invariants (DESIGN.md §6) — every
  event has an ``event:`` line naming its data's type; message_start first, with usage;
  content_block_start/stop pairs with the same index, indices from 0 in order, deltas
  only inside their block and of its kind; one message_delta with a stop_reason and
  usage after the last block; message_stop last; no error event — and the content:
  the text equals the fake's, stop_reason and usage match.
- :func:`check_anthropic_message`: the non-streaming Messages response.
- :func:`check_openai_stream`, :func:`check_openai_completion`: what the fake itself
  sends (the direct and pass-through targets).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from bench.answer import Answer

_BLOCK_DELTAS = {
    "text": ("text_delta",),
    "tool_use": ("input_json_delta",),
    "server_tool_use": ("input_json_delta",),
    "thinking": ("thinking_delta", "signature_delta"),
}


_OPENAI_USAGE = ("prompt_tokens", "completion_tokens")


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One server-sent event: its ``event:`` field (None when absent) and its joined ``data:`` lines."""

    event: str | None
    data: str


def parse_sse(body: bytes) -> list[SSEEvent]:
    """Every event of an SSE stream (WHATWG HTML §9.2.6): LF, CRLF or CR line ends, comments,
    multi-line data; a last event not ended by a blank line is kept (the checks flag it)."""
    text = body.decode("utf-8")
    events: list[SSEEvent] = []
    event_type: str | None = None
    data_lines: list[str] = []
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if not line:
            if data_lines or event_type is not None:
                events.append(SSEEvent(event_type, "\n".join(data_lines)))
            event_type, data_lines = None, []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "event":
            event_type = value
        elif name == "data":
            data_lines.append(value)
    if data_lines or event_type is not None:
        events.append(SSEEvent(event_type, "\n".join(data_lines)))
    return events


def count_events(body: bytes) -> int:
    """The number of SSE events in ``body``, by counting blank lines (fast, for every response)."""
    return body.count(b"\n\n") + body.count(b"\r\n\r\n")


def _decode_json(data: str, where: str, problems: list[str]) -> dict | None:
    try:
        value = json.loads(data)
    except ValueError:
        problems.append(f"{where}: data is not JSON: {data[:80]!r}")
        return None
    if not isinstance(value, dict):
        problems.append(f"{where}: data is not a JSON object")
        return None
    return value


def _check_usage_numbers(
    input_tokens, output_tokens, answer: Answer, problems: list[str], names: tuple[str, str] = ("input_tokens", "output_tokens")
) -> None:
    if input_tokens != answer.prompt_tokens:
        problems.append(f"{names[0]} {input_tokens!r}, expected {answer.prompt_tokens}")
    if output_tokens != answer.completion_tokens:
        problems.append(f"{names[1]} {output_tokens!r}, expected {answer.completion_tokens}")


def _check_text(text: str, answer: Answer, problems: list[str]) -> None:
    if text != answer.text:
        expected = answer.text
        at = next((i for i, (a, b) in enumerate(zip(text, expected)) if a != b), min(len(text), len(expected)))
        problems.append(
            f"text differs at character {at} (got {len(text)} characters, expected {len(expected)}): "
            f"{text[at:at + 20]!r} instead of {expected[at:at + 20]!r}"
        )


class _AnthropicStreamChecker:
    """The state of one Anthropic stream being checked, event by event."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.problems: list[str] = []
        self.started = False
        self.next_index = 0
        self.open_block: tuple[int, str] | None = None  # (index, block type)
        self.text: list[str] = []
        self.message_delta: dict | None = None
        self.stopped = False
        self.start_usage: dict = {}

    def check(self, events: list[SSEEvent]) -> list[str]:
        for position, event in enumerate(events):
            where = f"event {position}"
            data = _decode_json(event.data, where, self.problems)
            if data is None:
                continue
            kind = data.get("type")
            if event.event is None:
                self.problems.append(f"{where} ({kind}): no 'event:' line")
            elif event.event != kind:
                self.problems.append(f"{where}: 'event: {event.event}' but data type {kind!r}")
            if self.stopped:
                self.problems.append(f"{where} ({kind}) after message_stop")
            self.on_event(where, kind, data)
        self.finish()
        return self.problems

    def on_event(self, where: str, kind, data: dict) -> None:
        if kind == "ping":
            if not self.started:
                self.problems.append(f"{where}: ping before message_start")
        elif kind == "error":
            self.problems.append(f"{where}: error event {data.get('error')!r}")
        elif not self.started and kind != "message_start":
            self.problems.append(f"{where}: {kind!r} before message_start")
            self.started = True
        elif kind == "message_start":
            self.on_message_start(where, data)
        elif kind == "content_block_start":
            self.on_block_start(where, data)
        elif kind == "content_block_delta":
            self.on_block_delta(where, data)
        elif kind == "content_block_stop":
            self.on_block_stop(where, data)
        elif kind == "message_delta":
            self.on_message_delta(where, data)
        elif kind == "message_stop":
            if self.message_delta is None:
                self.problems.append(f"{where}: message_stop without message_delta")
            self.stopped = True
        else:
            self.problems.append(f"{where}: unknown event type {kind!r}")

    def on_message_start(self, where: str, data: dict) -> None:
        if self.started:
            self.problems.append(f"{where}: a second message_start")
        self.started = True
        message = data.get("message")
        if not isinstance(message, dict):
            self.problems.append(f"{where}: message_start without a message")
            return
        if message.get("type") != "message" or message.get("role") != "assistant":
            self.problems.append(f"{where}: message_start message is not an assistant message")
        usage = message.get("usage")
        if not isinstance(usage, dict) or not isinstance(usage.get("input_tokens"), int) or not isinstance(usage.get("output_tokens"), int):
            self.problems.append(f"{where}: message_start without usage (input_tokens, output_tokens)")
        else:
            self.start_usage = usage

    def on_block_start(self, where: str, data: dict) -> None:
        index, block = data.get("index"), data.get("content_block")
        if self.open_block is not None:
            self.problems.append(f"{where}: content_block_start {index!r} while block {self.open_block[0]} is open")
        if self.message_delta is not None:
            self.problems.append(f"{where}: content_block_start after message_delta")
        if index != self.next_index:
            self.problems.append(f"{where}: content_block_start index {index!r}, expected {self.next_index}")
        block_type = block.get("type") if isinstance(block, dict) else None
        if block_type is None:
            self.problems.append(f"{where}: content_block_start without a content_block type")
        elif block_type == "text":
            if block.get("text"):
                self.text.append(block["text"])
        self.open_block = (index, block_type)
        self.next_index = (index if isinstance(index, int) else self.next_index) + 1

    def on_block_delta(self, where: str, data: dict) -> None:
        index, delta = data.get("index"), data.get("delta")
        if self.open_block is None or index != self.open_block[0]:
            self.problems.append(f"{where}: content_block_delta for index {index!r}, which is not the open block")
            return
        delta_type = delta.get("type") if isinstance(delta, dict) else None
        allowed = _BLOCK_DELTAS.get(self.open_block[1], ())
        if delta_type not in allowed:
            self.problems.append(f"{where}: {delta_type!r} inside a {self.open_block[1]!r} block")
        elif delta_type == "text_delta":
            text = delta.get("text")
            if not isinstance(text, str):
                self.problems.append(f"{where}: text_delta without text")
            else:
                self.text.append(text)

    def on_block_stop(self, where: str, data: dict) -> None:
        index = data.get("index")
        if self.open_block is None or index != self.open_block[0]:
            self.problems.append(f"{where}: content_block_stop for index {index!r}, which is not the open block")
        self.open_block = None

    def on_message_delta(self, where: str, data: dict) -> None:
        if self.message_delta is not None:
            self.problems.append(f"{where}: a second message_delta")
        if self.open_block is not None:
            self.problems.append(f"{where}: message_delta while block {self.open_block[0]} is open")
        self.message_delta = data
        delta = data.get("delta")
        if not isinstance(delta, dict) or not delta.get("stop_reason"):
            self.problems.append(f"{where}: message_delta without a stop_reason")
        if not isinstance(data.get("usage"), dict) or not isinstance(data["usage"].get("output_tokens"), int):
            self.problems.append(f"{where}: message_delta without usage.output_tokens")

    def finish(self) -> None:
        problems, answer = self.problems, self.answer
        if not self.started:
            problems.append("no message_start")
        if self.open_block is not None:
            problems.append(f"block {self.open_block[0]} never stopped")
        if self.message_delta is None:
            problems.append("no message_delta")
        else:
            stop_reason = (self.message_delta.get("delta") or {}).get("stop_reason")
            if stop_reason != answer.stop_reason:
                problems.append(f"stop_reason {stop_reason!r}, expected {answer.stop_reason!r}")
            usage = self.message_delta.get("usage") or {}
            input_tokens = usage.get("input_tokens", self.start_usage.get("input_tokens"))
            _check_usage_numbers(input_tokens, usage.get("output_tokens"), answer, problems)
        if not self.stopped:
            problems.append("no message_stop at the end")
        _check_text("".join(self.text), answer, problems)


def check_anthropic_stream(body: bytes, answer: Answer) -> list[str]:
    """Problems with an Anthropic Messages event stream (empty: valid)."""
    try:
        events = parse_sse(body)
    except UnicodeDecodeError as exc:
        return [f"stream is not UTF-8: {exc}"]
    if not body.endswith((b"\n\n", b"\r\n\r\n", b"\r\r")):
        return ["stream does not end with a blank line", *_AnthropicStreamChecker(answer).check(events)]
    return _AnthropicStreamChecker(answer).check(events)


def check_anthropic_message(body: bytes, answer: Answer) -> list[str]:
    """Problems with a non-streaming Anthropic Messages response (empty: valid)."""
    problems: list[str] = []
    message = _decode_json(body.decode("utf-8", "replace"), "body", problems)
    if message is None:
        return problems
    if message.get("type") != "message" or message.get("role") != "assistant":
        problems.append(f"not an assistant message: type {message.get('type')!r}, role {message.get('role')!r}")
    content = message.get("content")
    if not isinstance(content, list) or not all(isinstance(block, dict) for block in content):
        problems.append("content is not a list of blocks")
        content = []
    if not content:
        problems.append("no content block")
    text = "".join(block.get("text", "") for block in content if block.get("type") == "text")
    _check_text(text, answer, problems)
    if message.get("stop_reason") != answer.stop_reason:
        problems.append(f"stop_reason {message.get('stop_reason')!r}, expected {answer.stop_reason!r}")
    usage = message.get("usage")
    if not isinstance(usage, dict):
        problems.append("no usage")
    else:
        _check_usage_numbers(usage.get("input_tokens"), usage.get("output_tokens"), answer, problems)
    return problems


def check_openai_stream(body: bytes, answer: Answer) -> list[str]:
    """Problems with a Chat Completions chunk stream (empty: valid): chunk objects, the
    text, one finish_reason, the usage chunk, ``[DONE]`` last."""
    problems: list[str] = []
    try:
        events = parse_sse(body)
    except UnicodeDecodeError as exc:
        return [f"stream is not UTF-8: {exc}"]
    if not events or events[-1].data != "[DONE]":
        problems.append("the stream does not end with data: [DONE]")
    text: list[str] = []
    finish_reasons: list[str] = []
    usage: dict | None = None
    for position, event in enumerate(events):
        if event.data == "[DONE]":
            if position != len(events) - 1:
                problems.append(f"event {position}: [DONE] before the end")
            continue
        chunk = _decode_json(event.data, f"event {position}", problems)
        if chunk is None:
            continue
        if chunk.get("object") != "chat.completion.chunk":
            problems.append(f"event {position}: object {chunk.get('object')!r}")
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            if isinstance(delta.get("content"), str):
                text.append(delta["content"])
            if choice.get("finish_reason"):
                finish_reasons.append(choice["finish_reason"])
        if chunk.get("usage"):
            usage = chunk["usage"]
    _check_text("".join(text), answer, problems)
    if finish_reasons != [answer.finish_reason]:
        problems.append(f"finish_reasons {finish_reasons!r}, expected [{answer.finish_reason!r}]")
    if usage is None:
        problems.append("no usage chunk")
    else:
        _check_usage_numbers(usage.get("prompt_tokens"), usage.get("completion_tokens"), answer, problems, _OPENAI_USAGE)
    return problems


def check_openai_completion(body: bytes, answer: Answer) -> list[str]:
    """Problems with a non-streaming ``chat.completion`` (empty: valid)."""
    problems: list[str] = []
    completion = _decode_json(body.decode("utf-8", "replace"), "body", problems)
    if completion is None:
        return problems
    choices = completion.get("choices")
    if not isinstance(choices, list) or len(choices) != 1 or not isinstance(choices[0], dict):
        return [*problems, "not exactly one choice"]
    message = choices[0].get("message") or {}
    _check_text(message.get("content") or "", answer, problems)
    if choices[0].get("finish_reason") != answer.finish_reason:
        problems.append(f"finish_reason {choices[0].get('finish_reason')!r}, expected {answer.finish_reason!r}")
    usage = completion.get("usage")
    if not isinstance(usage, dict):
        problems.append("no usage")
    else:
        _check_usage_numbers(usage.get("prompt_tokens"), usage.get("completion_tokens"), answer, problems, _OPENAI_USAGE)
    return problems
