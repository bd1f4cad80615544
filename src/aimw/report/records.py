"""The log read line by line: one :class:`Record` per exchange, in constant memory.

Lines read (JSON objects, one a line; fields by their Kong names, latencies in ms):

- aimw's own (:mod:`aimw.sinks.kong_file_log`): ``started_at``, ``response.status``,
  ``consumer`` and ``ai.proxy.{meta, usage, tried_targets}``, with aimw's additions
  ``meta.error`` and ``usage.estimated`` when present;
- Kong's file-log plugin behind AI Proxy (Kong docs, "File Log" log format and "AI Gateway"
  analytics): the same fields. Kong's Azure guide prints ``meta`` and ``usage`` directly under
  ``ai`` (no ``proxy``): read as well.

A line that is not such a record (not JSON, cut short, not an object, no ``started_at``,
a field of the wrong type, longer than ``MAX_LINE_BYTES``) is skipped and counted. A line
without an ``ai`` block is an exchange only when it is an error answer (status >= 400: the
gateway refused it before any provider); the others (pre-flight ``HEAD``, ``count_tokens``)
are counted apart.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

import msgspec

from aimw.errors import ERROR_TYPE_BY_STATUS, error_type_for_status
from aimw.exchange import MAX_TOKEN_COUNT

MAX_LINE_BYTES = 16 * 1024 * 1024  # a line with both payloads (1 MiB each, JSON-escaped) fits
MAX_STARTED_AT_MS = 32503680000000  # 3000-01-01: a later started_at is not a time
UNKNOWN = "-"  # a provider, model or consumer the line does not name
CLIENT_CLOSED_REQUEST = "client_closed_request"  # status 499 (nginx's name): the client left
CLIENT_CLOSED_STATUS = 499
ANTHROPIC_ERROR_TYPES = frozenset(ERROR_TYPE_BY_STATUS.values())


class _Consumer(msgspec.Struct):
    id: str | None = None
    username: str | None = None
    custom_id: str | None = None


class _Response(msgspec.Struct):
    status: int | None = None


class _PromptDetails(msgspec.Struct):
    cached_tokens: float | None = None


class _Usage(msgspec.Struct):
    prompt_tokens: float | None = None
    completion_tokens: float | None = None
    cost: float | None = None
    time_to_first_token: float | None = None
    time_per_token: float | None = None
    prompt_tokens_details: _PromptDetails | None = None
    estimated: bool = False


class _Meta(msgspec.Struct):
    provider_name: str | None = None
    request_model: str | None = None
    response_model: str | None = None
    error: str | None = None


class _Proxy(msgspec.Struct):
    meta: _Meta | None = None
    usage: _Usage | None = None
    tried_targets: list[msgspec.Raw] | None = None


class _AI(msgspec.Struct):
    proxy: _Proxy | None = None
    meta: _Meta | None = None  # Kong's Azure guide: meta, usage directly under ai
    usage: _Usage | None = None


class _Line(msgspec.Struct):
    started_at: float
    response: _Response | None = None
    consumer: _Consumer | None = None
    ai: _AI | None = None


_decoder = msgspec.json.Decoder(_Line)
_NO_USAGE = _Usage()
_NO_META = _Meta()


@dataclass(slots=True)
class Record:
    """One exchange as the report counts it.

    started_at_ms: when it started (ms since the epoch, UTC).
    provider / model / consumer: ``meta.provider_name``; ``meta.request_model`` (else
        ``response_model``); the consumer's username (else custom_id, else id); ``-`` when absent.
    error_type: the Anthropic error type of a failed exchange, ``client_closed_request`` for a
        client that left (499), None for a success.
    prompt_tokens (cached included), cached_tokens, completion_tokens: tokens; cost: as logged.
    time_to_first_token_ms: 0 when none was logged.
    tokens_per_second: ``1000 / time_per_token``, 0 when unknown.
    tried_targets: upstream attempts logged; estimated: the usage is aimw's estimate.
    """

    started_at_ms: float
    provider: str
    model: str
    consumer: str
    error_type: str | None
    prompt_tokens: int
    cached_tokens: int
    completion_tokens: int
    cost: float
    time_to_first_token_ms: float
    tokens_per_second: float
    tried_targets: int
    estimated: bool


@dataclass(slots=True)
class LineCounts:
    """What the reader saw: lines ``read`` (blank ones aside), ``exchanges`` reported,
    ``not_exchanges`` (no ai block, not an error), ``unreadable`` lines skipped, and
    ``before_since`` exchanges left out by ``--since``."""

    read: int = 0
    exchanges: int = 0
    not_exchanges: int = 0
    unreadable: int = 0
    before_since: int = 0


def read_records(streams: Iterable[BinaryIO], counts: LineCounts, since_ms: float | None = None) -> Iterator[Record]:
    """The exchanges of ``streams`` (binary files, read line by line) started at or after
    ``since_ms``; ``counts`` is updated as lines are read."""
    for stream in streams:
        for line in _lines(stream, counts):
            counts.read += 1
            try:
                record = _record(_decoder.decode(line))
            except ValueError:  # msgspec's DecodeError and ValidationError, a started_at out of range
                counts.unreadable += 1
                continue
            if record is None:
                counts.not_exchanges += 1
            elif since_ms is not None and record.started_at_ms < since_ms:
                counts.before_since += 1
            else:
                counts.exchanges += 1
                yield record


def _lines(stream: BinaryIO, counts: LineCounts) -> Iterator[bytes]:
    """Non-blank lines of at most MAX_LINE_BYTES; a longer one is skipped to its end and counted."""
    while line := stream.readline(MAX_LINE_BYTES):
        if len(line) == MAX_LINE_BYTES and not line.endswith(b"\n"):
            while (rest := stream.readline(MAX_LINE_BYTES)) and not rest.endswith(b"\n"):
                pass
            counts.read += 1
            counts.unreadable += 1
        elif not line.isspace():
            yield line


def _record(line: _Line) -> Record | None:
    """The exchange ``line`` holds, None for a line that is not one; ValueError for a
    ``started_at`` that is not a time."""
    if not 0 <= line.started_at < MAX_STARTED_AT_MS:
        raise ValueError(f"started_at out of range: {line.started_at}")
    status = line.response.status if line.response is not None else None
    ai = line.ai
    proxy = ai.proxy if ai is not None else None
    if proxy is not None:
        meta, usage, tried = proxy.meta or _NO_META, proxy.usage or _NO_USAGE, proxy.tried_targets
    elif ai is not None and (ai.meta is not None or ai.usage is not None):
        meta, usage, tried = ai.meta or _NO_META, ai.usage or _NO_USAGE, None
    elif status is not None and status >= 400:
        meta, usage, tried = _NO_META, _NO_USAGE, None
    else:
        return None
    details = usage.prompt_tokens_details
    time_per_token = usage.time_per_token or 0.0
    completion_tokens = _tokens(usage.completion_tokens)
    return Record(
        started_at_ms=line.started_at,
        provider=meta.provider_name or UNKNOWN,
        model=meta.request_model or meta.response_model or UNKNOWN,
        consumer=_consumer_name(line.consumer),
        error_type=error_type(status, meta.error),
        prompt_tokens=_tokens(usage.prompt_tokens),
        cached_tokens=_tokens(details.cached_tokens if details is not None else None),
        completion_tokens=completion_tokens,
        cost=usage.cost or 0.0,
        time_to_first_token_ms=max(usage.time_to_first_token or 0.0, 0.0),
        tokens_per_second=1000 / time_per_token if time_per_token > 0 and completion_tokens else 0.0,
        tried_targets=len(tried) if tried is not None else 0,
        estimated=usage.estimated,
    )


def error_type(status: int | None, error: str | None) -> str | None:
    """The Anthropic error type of an exchange with ``status`` and logged ``error``:
    ``client_closed_request`` for 499; the type the error names first (aimw logs
    ``"<type>: <message>"``, a mid-stream failure included); else the status's type
    (:func:`aimw.errors.error_type_for_status`); ``api_error`` for an error under a 2xx
    status; None for a success."""
    if status == CLIENT_CLOSED_STATUS:
        return CLIENT_CLOSED_REQUEST
    if error:
        named = error.split(":", 1)[0]
        if named in ANTHROPIC_ERROR_TYPES:
            return named
    if status is not None and status >= 400:
        return error_type_for_status(status)
    return "api_error" if error else None


def _consumer_name(consumer: _Consumer | None) -> str:
    if consumer is None:
        return UNKNOWN
    return consumer.username or consumer.custom_id or consumer.id or UNKNOWN


def _tokens(value: float | None) -> int:
    return int(min(value, MAX_TOKEN_COUNT)) if value is not None and value > 0 else 0
