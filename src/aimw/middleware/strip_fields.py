"""StripFieldsMiddleware: drop, set and cap top-level fields of JSON request bodies.

The rest of the body is not parsed: top-level values are kept as ``msgspec.Raw`` and
written back verbatim (Kong's ``pre-function`` that deletes ``model``, plus overrides), so
a body that no rule changes goes on byte for byte, and what an Anthropic upstream needs
(fields aimw does not translate) survives. The body is read once per exchange and the
edited body kept at ``Exchange.request_body``, for the layers below and for every attempt.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping

import msgspec

from aimw.asgi import ClientDisconnected, answer_error, replay_body, request_body, with_headers
from aimw.errors import GatewayError
from aimw.exchange import exchange_of
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

    A body that is not a JSON object gets 400 invalid_request_error. The model finally
    sent (if any) is recorded as the exchange's request_model, and ``stream`` as its
    request_mode (Kong's stream / oneshot); content-length is fixed.
    A body that no rule changes goes on byte for byte.
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
    ) -> None:
        self.app = app
        self.drop = frozenset(drop)
        self.set = {name: msgspec.Raw(_encoder.encode(value)) for name, value in (set or {}).items()}
        self.cap = dict(cap or {})
        self.path_suffixes = path_suffixes
        self.max_body_size = max_body_size

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or not scope["path"].endswith(self.path_suffixes):
            await self.app(scope, receive, send)
            return
        try:
            body = self.edit(await request_body(scope, receive, self.max_body_size), scope)
        except GatewayError as error:
            await answer_error(scope, send, error)
            return
        except ClientDisconnected:
            return
        exchange_of(scope).request_body = body
        headers = with_headers(
            scope["headers"], drop=frozenset((b"content-length",)), add=((b"content-length", b"%d" % len(body)),)
        )
        await self.app({**scope, "headers": headers}, replay_body(body, receive), send)

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
            capped = fields.get(name)
            if capped is None:
                continue
            try:
                value = msgspec.json.decode(capped)
            except msgspec.DecodeError:
                continue
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value > limit:
                fields[name] = msgspec.Raw(_encoder.encode(limit))
                changed = True
        exchange = exchange_of(scope)
        model = fields.get("model")
        if model is not None:
            with contextlib.suppress(msgspec.ValidationError):
                exchange.request_model = _string_decoder.decode(model)
        exchange.request_mode = "stream" if fields.get("stream") == _TRUE else "oneshot"
        return _encoder.encode(fields) if changed else body
