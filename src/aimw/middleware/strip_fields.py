"""StripFieldsMiddleware: drop, set and cap top-level fields of JSON request bodies.

Two ways, chosen when the stack is built:

- raw fields (the pass-through): the rest of the body is not parsed: top-level values are
  kept as ``msgspec.Raw`` and written back verbatim (Kong's ``pre-function`` that deletes
  ``model``, plus overrides), so a body that no rule changes goes on byte for byte, and what
  an Anthropic upstream needs (fields aimw does not translate) survives. The edited body is
  kept at ``Exchange.request_body``, for the layers below and for every attempt.
- the parsed request (``parsed=True``, a translated stack): the body is parsed once as a
  Messages request (or the one a layer above parsed is taken), the rules are applied to that
  Struct and it is kept at ``Exchange.messages_request``, which the wire format translates;
  the body itself is not re-encoded. Per-target rules (a leg's own StripFields under
  FailoverMiddleware) edit the request as the layers above left it, on every try.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping

import msgspec

from aimw.asgi import ClientDisconnected, answer_error, replay_body, request_body, with_headers
from aimw.errors import GatewayError
from aimw.exchange import Exchange, exchange_of
from aimw.translators.anthropic.messages import MessagesRequest, decode_request
from aimw.types import ASGIApp, Receive, Scope, Send

_decoder = msgspec.json.Decoder(dict[str, msgspec.Raw])
_encoder = msgspec.json.Encoder()
_string_decoder = msgspec.json.Decoder(str)
_TRUE = msgspec.Raw(b"true")


class StripFieldsMiddleware:
    """Edit the top-level fields of POST bodies whose path ends with one of ``path_suffixes``.

    Args:
        app: the ASGI app to call with the edited request.
        drop: field names removed (e.g. ``("model",)``).
        set: field name -> JSON-encodable value, written whether present or not.
        cap: field name -> number; a present numeric value above it is lowered to it
            (e.g. ``{"max_tokens": 4096}``, tokens).
        path_suffixes: which requests are edited (default Anthropic's ``/v1/messages``).
        max_body_size: request body limit (bytes); larger bodies get 413 request_too_large.
        parsed: apply the rules to the parsed Messages request (``Exchange.messages_request``)
            rather than to the body's raw fields; every rule must then name a field of
            MessagesRequest (ValueError otherwise, when the stack is built).
        deny_stream: with ``parsed``, a request asking for a stream is refused (400; Kong's
            ``response_streaming: deny``).

    A body that is not a JSON object (with ``parsed``, not a Messages request) gets 400
    invalid_request_error naming the problem. The model finally sent (if any) is recorded as
    the exchange's request_model, and ``stream`` as its request_mode (Kong's stream /
    oneshot); content-length is fixed. A body that no rule changes goes on byte for byte.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        drop: Iterable[str] = (),
        set: Mapping[str, object] | None = None,  # noqa: A002 (Kong's name for the rule)
        cap: Mapping[str, float] | None = None,
        path_suffixes: tuple[str, ...] = ("/v1/messages",),
        max_body_size: int = 8 * 1024 * 1024,
        parsed: bool = False,
        deny_stream: bool = False,
    ) -> None:
        self.app = app
        self.drop = frozenset(drop)
        self.set = {name: msgspec.Raw(_encoder.encode(value)) for name, value in (set or {}).items()}
        self.cap = dict(cap or {})
        self.path_suffixes = path_suffixes
        self.max_body_size = max_body_size
        self.parsed = parsed
        self.deny_stream = deny_stream
        self.parsed_set = dict(set or {})
        unknown = (self.drop | self.set.keys() | self.cap.keys()) - frozenset(MessagesRequest.__struct_fields__)
        if parsed and unknown:
            raise ValueError(f"not fields of a Messages request: {', '.join(sorted(unknown))}")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or not scope["path"].endswith(self.path_suffixes):
            await self.app(scope, receive, send)
            return
        try:
            body = await request_body(scope, receive, self.max_body_size)
            if self.parsed:
                self.edit_exchange(exchange_of(scope), body, scope)
            else:
                body = self.edit(body, scope)
        except GatewayError as error:
            await answer_error(scope, send, error)
            return
        except ClientDisconnected:
            return
        exchange_of(scope).request_body = body
        headers = with_headers(
            scope["headers"], drop=frozenset((b"content-length",)), add=((b"content-length", b"%d" % len(body)),)
        )
        receive = replay_body(body, receive)
        del body  # not pinned by this frame for the whole answer
        await self.app({**scope, "headers": headers}, receive, send)

    def edit_exchange(self, exchange: Exchange, body: bytes, scope: Scope) -> None:
        """Edit the exchange's parsed request (parsed from ``body`` unless a layer above did)."""
        parsed = exchange.messages_request or decode_request(body)
        exchange.messages_request = self.edit_request(parsed, scope)

    def edit(self, body: bytes, scope: Scope) -> bytes:
        """The edited body. Raises GatewayError 400 when ``body`` is not a JSON object."""
        try:
            fields = _decoder.decode(body)
        except RecursionError:
            raise GatewayError(400, "request body is nested too deeply") from None
        except msgspec.ValidationError:
            raise GatewayError(400, "request body must be a JSON object") from None
        except msgspec.DecodeError as exc:
            raise GatewayError(400, f"request body is not valid JSON: {exc}") from None
        changed = False
        for name in self.drop:
            changed |= fields.pop(name, None) is not None
        for name, raw in self.set.items():
            changed |= fields.get(name) != raw
            fields[name] = raw
        for name, limit in self.cap.items():
            if _above(fields.get(name), limit):
                fields[name] = msgspec.Raw(_encoder.encode(limit))
                changed = True
        exchange = exchange_of(scope)
        model = fields.get("model")
        if model is not None:  # not a string, or not UTF-8: the provider says so; no model is logged
            with contextlib.suppress(msgspec.ValidationError, msgspec.DecodeError):
                exchange.request_model = _string_decoder.decode(model)
        exchange.request_mode = "stream" if fields.get("stream") == _TRUE else "oneshot"
        return _encoder.encode(fields) if changed else body

    def edit_request(self, request: MessagesRequest, scope: Scope) -> MessagesRequest:
        """``request`` with the rules applied (a dropped field becomes UNSET; a cap keeps the
        field's type: an int field gets an int)."""
        changes: dict[str, object] = dict.fromkeys(self.drop, msgspec.UNSET)
        changes.update(self.parsed_set)
        for name, limit in self.cap.items():
            value = getattr(request, name)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value > limit:
                changes[name] = int(limit) if isinstance(value, int) else limit
        if changes:
            request = msgspec.structs.replace(request, **changes)
        if self.deny_stream and request.stream:
            raise GatewayError(400, "this gateway answers without streaming: send stream false")
        exchange = exchange_of(scope)
        if isinstance(request.model, str):
            exchange.request_model = request.model
        exchange.request_mode = "stream" if request.stream else "oneshot"
        return request


def _above(raw: msgspec.Raw | None, limit: float) -> bool:
    """Whether ``raw`` is a JSON number above ``limit``."""
    if raw is None:
        return False
    try:
        value = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return False
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > limit
