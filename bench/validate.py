"""Checks of Anthropic and OpenAI answers, shared by the benchmark and the test suite.

:func:`read_anthropic_stream` is the one Anthropic stream validator: it assembles an event
stream into the message a client would get and lists every DESIGN.md §6 invariant the
stream breaks (see :class:`AnthropicStream`). The tests assert on what it assembles.

Each ``check_*`` function takes a whole response body (bytes) and returns the list of
problems found against what the fake upstream said (:class:`Answer`), empty when the
answer is valid:

- :func:`check_anthropic_stream`: :func:`read_anthropic_stream`'s problems, an error event,
  and the content: the text equals the fake's, stop_reason and usage match.
- :func:`check_anthropic_message`: the non-streaming Messages response.
- :func:`check_openai_stream`, :func:`check_openai_completion`: what the fake itself
  sends (the direct and pass-through targets).

Nothing here needs more than the standard library and :mod:`bench.answer`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from bench.answer import Answer

_BLOCK_DELTAS = {  # the content block types a stream may hold, with the deltas each takes
    "text": ("text_delta",),
    "tool_use": ("input_json_delta",),
    "server_tool_use": ("input_json_delta",),
    "thinking": ("thinking_delta", "signature_delta"),
    "redacted_thinking": (),
}
_TOOL_BLOCKS = ("tool_use", "server_tool_use")
_DELTA_FIELDS = {  # delta type -> the field it carries
    "text_delta": "text",
    "thinking_delta": "thinking",
    "signature_delta": "signature",
    "input_json_delta": "partial_json",
}
_JOINED_FIELDS = ("text", "thinking", "signature")  # a block's strings its deltas extend
STOP_REASONS = (
    "end_turn",
    "max_tokens",
    "stop_sequence",
    "tool_use",
    "pause_turn",
    "refusal",
    "model_context_window_exceeded",
)


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
    input_tokens,
    output_tokens,
    answer: Answer,
    problems: list[str],
    names: tuple[str, str] = ("input_tokens", "output_tokens"),
) -> None:
    if input_tokens != answer.prompt_tokens:
        problems.append(f"{names[0]} {input_tokens!r}, expected {answer.prompt_tokens}")
    if output_tokens != answer.completion_tokens:
        problems.append(f"{names[1]} {output_tokens!r}, expected {answer.completion_tokens}")


def _check_text(text: str, answer: Answer, problems: list[str]) -> None:
    if text != answer.text:
        expected = answer.text
        at = next(
            (i for i, (a, b) in enumerate(zip(text, expected, strict=False)) if a != b), min(len(text), len(expected))
        )
        problems.append(
            f"text differs at character {at} (got {len(text)} characters, expected {len(expected)}): "
            f"{text[at : at + 20]!r} instead of {expected[at : at + 20]!r}"
        )


@dataclass
class AnthropicStream:
    """An Anthropic Messages event stream as a client assembles it, and what is wrong with it.

    events: every event's ``event:`` field (None when absent) and its decoded data.
    problems: the DESIGN.md §6 invariants the stream breaks; empty when it is well formed.
    message: message_start's message with the assembled ``content`` (text, thinking and
        signature joined, tool input parsed from its input_json_delta pieces; None when
        they are not JSON), message_delta's ``stop_reason`` and the cumulative ``usage``.
    json_fragments: the input_json_delta pieces of each tool block, by block index.
    error: the error object of the ``event: error`` the stream ended with, if it did.
    """

    events: list[tuple[str | None, dict]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    message: dict = field(default_factory=dict)
    json_fragments: dict[int, list[str]] = field(default_factory=dict)
    error: dict | None = None

    @property
    def names(self) -> list[str | None]:
        return [name for name, _ in self.events]

    @property
    def blocks(self) -> list[dict]:
        return self.message.get("content", [])

    @property
    def text(self) -> str:
        return "".join(block["text"] for block in self.blocks if block.get("type") == "text")

    @property
    def stop_reason(self) -> str | None:
        return self.message.get("stop_reason")

    @property
    def usage(self) -> dict:
        return self.message.get("usage", {})


class _AnthropicStreamReader:
    """Reads one Anthropic stream event by event, assembling it and noting each broken invariant."""

    def __init__(self) -> None:
        self.stream = AnthropicStream()
        self.problems = self.stream.problems
        self.started = False
        self.next_index = 0
        self.open_block: tuple[int, str | None] | None = None  # (index, block type)
        self.blocks: dict[int, dict] = {}  # index -> block, its strings as lists of pieces
        self.message_delta: dict | None = None
        self.stopped = False

    def read(self, events: list[SSEEvent]) -> AnthropicStream:
        for position, event in enumerate(events):
            where = f"event {position}"
            data = _decode_json(event.data, where, self.problems)
            if data is None:
                continue
            self.stream.events.append((event.event, data))
            kind = data.get("type")
            if event.event is None:
                self.problems.append(f"{where} ({kind}): no 'event:' line")
            elif event.event != kind:
                self.problems.append(f"{where}: 'event: {event.event}' but data type {kind!r}")
            if self.stopped:
                self.problems.append(f"{where} ({kind}) after message_stop")
            if self.stream.error is not None:
                self.problems.append(f"{where} ({kind}) after the error event")
            self.on_event(where, kind, data)
        self.finish()
        return self.stream

    def on_event(self, where: str, kind, data: dict) -> None:
        if kind == "error":
            self.on_error(where, data)
        elif not self.started and kind != "message_start":
            self.problems.append(f"{where}: {kind!r} before message_start")
            self.started = True
        elif kind == "ping":
            pass
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

    def on_error(self, where: str, data: dict) -> None:
        error = data.get("error")
        if (
            not isinstance(error, dict)
            or set(error) != {"type", "message"}
            or not isinstance(error["type"], str)
            or not isinstance(error["message"], str)
            or not error["message"]
        ):
            self.problems.append(f"{where}: error event {error!r} is not {{type, message}} with a message")
        self.stream.error = error if isinstance(error, dict) else {}

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
        for name in ("id", "model"):
            if not isinstance(message.get(name), str) or not message[name]:
                self.problems.append(f"{where}: message_start message has no {name}")
        if message.get("content") != [] or message.get("stop_reason") is not None:
            self.problems.append(f"{where}: message_start message is not empty (content [], stop_reason null)")
        usage = message.get("usage")
        if (
            not isinstance(usage, dict)
            or not isinstance(usage.get("input_tokens"), int)
            or not isinstance(usage.get("output_tokens"), int)
        ):
            self.problems.append(f"{where}: message_start without usage (input_tokens, output_tokens)")
            usage = {}
        self.stream.message = {**message, "content": [], "usage": dict(usage)}

    def on_block_start(self, where: str, data: dict) -> None:
        index, block = data.get("index"), data.get("content_block")
        if self.open_block is not None:
            self.problems.append(f"{where}: content_block_start {index!r} while block {self.open_block[0]} is open")
        if self.message_delta is not None:
            self.problems.append(f"{where}: content_block_start after message_delta")
        if index != self.next_index:
            self.problems.append(f"{where}: content_block_start index {index!r}, expected {self.next_index}")
        block = dict(block) if isinstance(block, dict) else {}
        block_type = block.get("type")
        if block_type not in _BLOCK_DELTAS:
            self.problems.append(f"{where}: content_block_start with content_block type {block_type!r}")
        elif block_type in _TOOL_BLOCKS:
            if (
                block.get("input") != {}
                or not isinstance(block.get("id"), str)
                or not block["id"]
                or not isinstance(block.get("name"), str)
            ):
                self.problems.append(f"{where}: {block_type} block start without an id, a name and input {{}}")
            self.stream.json_fragments[index] = []
        for name in _JOINED_FIELDS:
            if name in block:
                block[name] = [block[name]] if isinstance(block[name], str) else []
        self.blocks[index] = block
        self.open_block = (index, block_type)
        self.next_index = (index if isinstance(index, int) else self.next_index) + 1

    def on_block_delta(self, where: str, data: dict) -> None:
        index, delta = data.get("index"), data.get("delta")
        if self.open_block is None or index != self.open_block[0]:
            self.problems.append(f"{where}: content_block_delta for index {index!r}, which is not the open block")
            return
        delta_type = delta.get("type") if isinstance(delta, dict) else None
        if delta_type not in _BLOCK_DELTAS.get(self.open_block[1], ()):
            self.problems.append(f"{where}: {delta_type!r} inside a {self.open_block[1]!r} block")
            return
        name = _DELTA_FIELDS[delta_type]
        piece = delta.get(name)
        if not isinstance(piece, str):
            self.problems.append(f"{where}: {delta_type} without {name}")
        elif delta_type == "input_json_delta":
            self.stream.json_fragments[index].append(piece)
        else:
            self.blocks[index].setdefault(name, []).append(piece)

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
        delta = data["delta"] if isinstance(data.get("delta"), dict) else {}
        stop_reason = delta.get("stop_reason")
        if not stop_reason:
            self.problems.append(f"{where}: message_delta without a stop_reason")
        elif stop_reason not in STOP_REASONS:
            self.problems.append(f"{where}: message_delta with an unknown stop_reason {stop_reason!r}")
        usage = data["usage"] if isinstance(data.get("usage"), dict) else {}
        counted = self.stream.usage.get("output_tokens", 0)
        if not isinstance(usage.get("output_tokens"), int):
            self.problems.append(f"{where}: message_delta without usage.output_tokens")
        elif usage["output_tokens"] < counted:
            self.problems.append(
                f"{where}: message_delta output_tokens {usage['output_tokens']} below message_start's {counted} "
                "(usage is cumulative)"
            )
        self.stream.message.update(stop_reason=stop_reason, stop_sequence=delta.get("stop_sequence"))
        self.stream.message.setdefault("usage", {}).update(usage)

    def finish(self) -> None:
        stream, problems = self.stream, self.problems
        for index, parts in stream.json_fragments.items():
            joined = "".join(parts)
            try:
                tool_input = json.loads(joined) if joined else {}
            except ValueError:
                tool_input = None
                if (
                    stream.error is None and stream.stop_reason != "max_tokens"
                ):  # only a cut stream may leave it unfinished
                    problems.append(f"block {index}: its input_json_delta pieces are not JSON: {joined[:80]!r}")
            if tool_input is not None and not isinstance(tool_input, dict):
                problems.append(f"block {index}: its tool input is not a JSON object")
            self.blocks[index]["input"] = tool_input
        stream.message["content"] = [
            {name: "".join(value) if name in _JOINED_FIELDS else value for name, value in block.items()}
            for block in self.blocks.values()
        ]
        if stream.error is not None:
            return
        if not self.started:
            problems.append("no message_start")
        if self.open_block is not None:
            problems.append(f"block {self.open_block[0]} never stopped")
        if self.message_delta is None:
            problems.append("no message_delta")
        elif stream.stop_reason not in ("tool_use", "max_tokens") and any(
            block.get("type") == "tool_use" for block in stream.blocks
        ):
            problems.append(f"stop_reason {stream.stop_reason!r} although a tool_use block was emitted")
        if not self.stopped:
            problems.append("no message_stop at the end")


def read_anthropic_stream(body: bytes) -> AnthropicStream:
    """Assemble an Anthropic Messages event stream and check DESIGN.md §6 on it (see
    :class:`AnthropicStream`): ``event:`` lines naming their data's type; message_start first,
    with usage; content_block_start/stop pairs with the same index, indices from 0 in order,
    deltas only inside their open block and of its kind; one message_delta with a stop_reason
    (tool_use when a tool_use block was emitted, unless max_tokens) and cumulative usage; then
    message_stop, last. Or, at any point, a well-formed ``event: error`` ending it."""
    try:
        events = parse_sse(body)
    except UnicodeDecodeError as exc:
        return AnthropicStream(problems=[f"stream is not UTF-8: {exc}"])
    stream = _AnthropicStreamReader().read(events)
    if not body.endswith((b"\n\n", b"\r\n\r\n", b"\r\r")):
        stream.problems.insert(0, "stream does not end with a blank line")
    return stream


def check_anthropic_stream(body: bytes, answer: Answer) -> list[str]:
    """Problems with an Anthropic Messages event stream (empty: valid): those of
    :func:`read_anthropic_stream`, an error event, and the content against ``answer``."""
    stream = read_anthropic_stream(body)
    problems = list(stream.problems)
    if not stream.events:
        return problems
    if stream.error is not None:
        problems.append(f"error event {stream.error!r}")
    if "message_delta" in stream.names:
        if stream.stop_reason != answer.stop_reason:
            problems.append(f"stop_reason {stream.stop_reason!r}, expected {answer.stop_reason!r}")
        _check_usage_numbers(stream.usage.get("input_tokens"), stream.usage.get("output_tokens"), answer, problems)
    _check_text(stream.text, answer, problems)
    return problems


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
        _check_usage_numbers(
            usage.get("prompt_tokens"), usage.get("completion_tokens"), answer, problems, _OPENAI_USAGE
        )
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
        _check_usage_numbers(
            usage.get("prompt_tokens"), usage.get("completion_tokens"), answer, problems, _OPENAI_USAGE
        )
    return problems
