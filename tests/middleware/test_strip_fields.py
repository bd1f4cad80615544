"""StripFieldsMiddleware at the ASGI level: what the inner app receives, and the errors."""

from __future__ import annotations

import json

import msgspec
import pytest

from aimw.exchange import exchange_of
from aimw.middleware.strip_fields import StripFieldsMiddleware
from tests.asgi_helpers import InnerApp, RecordingSend, ScriptedReceive, call, http_scope, split_at

pytestmark = pytest.mark.anyio

# Odd spacing and key order on purpose: untouched values must come through byte for byte.
BODY = (
    b'{"model": "claude-opus-5-5", "messages": [{"role":"user","content":"caf\\u00e9  \xc3\xa9"}],'
    b' "system": [ {"type": "text", "text": "x", "cache_control": {"type":"ephemeral"}} ],'
    b' "metadata": {"user_id": "{\\"a\\": 1}"}, "max_tokens": 32000, "temperature": 1.0, "stream": true}'
)


def middleware(inner, **kwargs) -> StripFieldsMiddleware:
    kwargs.setdefault("drop", ("model",))
    return StripFieldsMiddleware(inner, **kwargs)


async def test_drops_sets_caps_and_keeps_the_rest_byte_identical():
    inner = InnerApp()
    app = middleware(inner, set={"temperature": 0.2}, cap={"max_tokens": 4096})
    response = await call(app, http_scope(body=BODY), [BODY])

    assert response.status == 200
    fields = json.loads(inner.body)
    assert "model" not in fields
    assert fields["temperature"] == 0.2
    assert fields["max_tokens"] == 4096
    # untouched values are the client's exact bytes (msgspec.Raw), not re-encoded
    assert b'"messages":[{"role":"user","content":"caf\\u00e9  \xc3\xa9"}]' in inner.body
    assert b'"system":[ {"type": "text", "text": "x", "cache_control": {"type":"ephemeral"}} ]' in inner.body
    assert b'"metadata":{"user_id": "{\\"a\\": 1}"}' in inner.body
    assert b'"stream":true' in inner.body
    assert list(fields) == ["messages", "system", "metadata", "max_tokens", "temperature", "stream"]
    assert inner.header_values(b"content-length") == [str(len(inner.body)).encode()]


async def test_cap_only_lowers_and_only_when_present():
    inner = InnerApp()
    app = middleware(inner, cap={"max_tokens": 4096}, drop=())

    body = b'{"messages": [], "max_tokens": 100}'
    await call(app, http_scope(body=body), [body])
    assert inner.body == body  # nothing to change: the body goes on byte for byte

    body = b'{"messages": [], "max_tokens": 4096}'
    await call(app, http_scope(body=body), [body])
    assert json.loads(inner.body)["max_tokens"] == 4096

    body = b'{"messages": []}'
    await call(app, http_scope(body=body), [body])
    assert "max_tokens" not in json.loads(inner.body)

    body = b'{"messages": [], "max_tokens": "many"}'  # not a number: left for the provider to refuse
    await call(app, http_scope(body=body), [body])
    assert json.loads(inner.body)["max_tokens"] == "many"


async def test_set_adds_a_missing_field():
    inner = InnerApp()
    body = b'{"messages": []}'
    await call(middleware(inner, set={"temperature": 0.5}), http_scope(body=body), [body])
    assert json.loads(inner.body) == {"messages": [], "temperature": 0.5}


async def test_records_the_model_finally_sent():
    inner = InnerApp()
    scope = http_scope(body=BODY)
    await call(middleware(inner, drop=()), scope, [BODY])
    assert exchange_of(inner.scope).request_model == "claude-opus-5-5"
    assert exchange_of(scope) is exchange_of(inner.scope)

    inner = InnerApp()
    scope = http_scope(body=BODY)
    await call(middleware(inner, set={"model": "meta/llama"}), scope, [BODY])
    assert exchange_of(scope).request_model == "meta/llama"

    inner = InnerApp()
    scope = http_scope(body=BODY)
    await call(middleware(inner), scope, [BODY])  # dropped: nothing is sent, nothing recorded
    assert exchange_of(scope).request_model is None


async def test_body_in_several_chunks_and_a_stale_content_length():
    inner = InnerApp()
    scope = http_scope(body=BODY)
    response = await call(middleware(inner, cap={"max_tokens": 10}), scope, split_at(BODY, 1, 2, 50, 51, 200))
    assert response.status == 200
    fields = json.loads(inner.body)
    assert "model" not in fields and fields["max_tokens"] == 10
    assert inner.header_values(b"content-length") == [str(len(inner.body)).encode()]
    assert len(inner.body) != len(BODY)


@pytest.mark.parametrize(
    "body, needle",
    [
        (b'{"messages": [', "not valid JSON"),
        (b"model=claude", "not valid JSON"),
        (b"", "not valid JSON"),
        (b'[{"model": "x"}]', "JSON object"),
        (b'"just a string"', "JSON object"),
    ],
)
async def test_not_a_json_object_is_400(body, needle):
    inner = InnerApp()
    response = await call(middleware(inner), http_scope(body=body), [body])
    assert response.status == 400
    assert response.header(b"content-type") == b"application/json"
    assert response.header(b"content-length") == str(len(response.body)).encode()
    error = response.json()
    assert error["type"] == "error"
    assert error["error"]["type"] == "invalid_request_error"
    assert needle in error["error"]["message"]
    assert inner.calls == 0


async def test_body_over_the_limit_is_413():
    inner = InnerApp()
    body = b'{"messages": [], "pad": "' + b"x" * 200 + b'"}'
    app = middleware(inner, max_body_size=100)
    response = await call(app, http_scope(body=body), split_at(body, 60, 120))
    assert response.status == 413
    assert response.json()["error"]["type"] == "request_too_large"
    assert "100" in response.json()["error"]["message"]
    assert inner.calls == 0

    # exactly at the limit is fine, and the same instance keeps serving
    prefix = b'{"messages": [], "p": "'
    body = prefix + b"x" * (100 - len(prefix) - 2) + b'"}'
    assert len(body) == 100
    response = await call(app, http_scope(body=body), [body])
    assert response.status == 200 and inner.calls == 1


@pytest.mark.parametrize(
    "method, path",
    [
        ("POST", "/v1/messages/count_tokens"),
        ("GET", "/v1/messages"),
        ("HEAD", "/v1/messages"),
        ("POST", "/v1/complete"),
    ],
)
async def test_other_requests_pass_untouched(method, path):
    inner = InnerApp()
    body = b'{"model": "m", "max_tokens": 99999, "messages": []}'
    scope = http_scope(method, path, body=body)
    await call(middleware(inner, cap={"max_tokens": 1}, set={"temperature": 0}), scope, split_at(body, 5))
    assert inner.scope is scope
    assert inner.body == body


async def test_prefixed_path_is_edited():
    inner = InnerApp()
    body = b'{"model": "m", "messages": []}'
    await call(middleware(inner), http_scope(path="/anything/v1/messages", query=b"beta=true", body=body), [body])
    assert inner.body == b'{"messages":[]}'
    assert inner.scope["query_string"] == b"beta=true"


async def test_lifespan_passes_through():
    inner = InnerApp()
    scope = {"type": "lifespan", "asgi": {"version": "3.0"}}
    await middleware(inner)(scope, ScriptedReceive(), RecordingSend())
    assert inner.scope is scope


async def test_client_gone_before_the_body_ends():
    inner = InnerApp()
    receive = ScriptedReceive([BODY[:10]], disconnect_now=True, complete=False)
    send = RecordingSend()
    await middleware(inner)(http_scope(body=BODY), receive, send)
    assert inner.calls == 0
    assert send.messages == []


# ---------------------------------------------------------------- unchanged bodies go on byte for byte


@pytest.mark.parametrize(
    "rules",
    [
        {"drop": ()},
        {"drop": ("not_there",)},
        {"drop": (), "cap": {"max_tokens": 64000, "absent": 1}},
        {"drop": (), "set": {"max_tokens": 32000}},  # the same bytes as the client's
        {"drop": (), "set": {"model": "claude-opus-5-5"}},
    ],
)
async def test_a_body_no_rule_changes_is_forwarded_byte_for_byte(rules):
    inner = InnerApp()
    scope = http_scope(body=BODY)
    response = await call(middleware(inner, **rules), scope, split_at(BODY, 1, 77, 78))
    assert response.status == 200
    assert inner.body == BODY  # odd spacing, key order and \u escapes all kept
    assert inner.header_values(b"content-length") == [str(len(BODY)).encode()]
    assert exchange_of(scope).request_model == "claude-opus-5-5"


async def test_a_changed_body_is_re_encoded():
    inner = InnerApp()
    await call(middleware(inner, drop=(), set={"temperature": 0.5}), http_scope(body=BODY), [BODY])
    assert inner.body != BODY
    assert json.loads(inner.body)["temperature"] == 0.5
    assert inner.header_values(b"content-length") == [str(len(inner.body)).encode()]


async def test_set_compares_the_json_bytes():
    # 1.0 and 1 are the same number but not the same bytes: the override is written
    inner = InnerApp()
    await call(middleware(inner, drop=(), set={"temperature": 1}), http_scope(body=BODY), [BODY])
    assert inner.body != BODY
    assert b'"temperature":1,' in inner.body


async def test_dropping_a_null_field_changes_the_body():
    inner = InnerApp()
    body = b'{"model": null, "messages": []}'
    await call(middleware(inner), http_scope(body=body), [body])
    assert inner.body == b'{"messages":[]}'


async def test_unchanged_body_with_a_stale_content_length_gets_the_right_one():
    inner = InnerApp()
    scope = http_scope(body=BODY, headers=[(b"content-length", b"5")])
    await call(middleware(inner, drop=()), scope, [BODY])
    assert inner.body == BODY
    assert inner.header_values(b"content-length") == [str(len(BODY)).encode()]


async def test_count_tokens_suffix_edits_only_count_tokens():
    body = b'{"model": "claude-x",  "messages": []}'
    inner = InnerApp()
    app = StripFieldsMiddleware(inner, set={"model": "claude-haiku"}, path_suffixes=("/v1/messages/count_tokens",))
    await call(app, http_scope(path="/anything/v1/messages/count_tokens", body=body), [body])
    assert json.loads(inner.body) == {"model": "claude-haiku", "messages": []}

    inner = InnerApp()
    app = StripFieldsMiddleware(inner, set={"model": "claude-haiku"}, path_suffixes=("/v1/messages/count_tokens",))
    scope = http_scope(body=body)
    await call(app, scope, [body])
    assert inner.scope is scope and inner.body == body  # /v1/messages untouched by this one


@pytest.mark.parametrize("stream, mode", [(b"true", "stream"), (b"false", "oneshot"), (None, "oneshot")])
async def test_records_the_request_mode(stream, mode):
    """The log says stream/oneshot from the request even when the answer is an error (pass-through)."""
    inner = InnerApp()
    app = middleware(inner, drop=())
    body = b'{"model": "m", "messages": []' + (b', "stream": ' + stream if stream else b"") + b"}"
    scope = http_scope(body=body)
    await call(app, scope, [body])
    assert exchange_of(scope).request_mode == mode


async def test_the_edited_body_is_kept_on_the_exchange():
    inner = InnerApp()
    scope = http_scope(body=BODY)
    await call(middleware(inner, cap={"max_tokens": 10}), scope, split_at(BODY, 30))
    assert exchange_of(scope).request_body == inner.body
    assert json.loads(inner.body)["max_tokens"] == 10


async def test_stacked_layers_edit_the_kept_body_in_turn():
    """Two StripFields stacked (as the pass-through gateway does): the inner one gets the
    outer one's edit from the exchange, not the client's body again."""
    inner = InnerApp()
    app = middleware(middleware(inner, drop=(), set={"temperature": 0.5}))
    scope = http_scope(body=BODY)
    response = await call(app, scope, split_at(BODY, 40, 41))
    assert response.status == 200
    fields = json.loads(inner.body)
    assert "model" not in fields and fields["temperature"] == 0.5
    assert exchange_of(scope).request_body == inner.body
    assert inner.header_values(b"content-length") == [str(len(inner.body)).encode()]


async def test_a_body_kept_by_a_layer_above_is_not_read_again():
    inner = InnerApp()
    scope = http_scope(body=BODY)
    exchange_of(scope).request_body = BODY
    receive = ScriptedReceive(disconnect_now=True)
    await middleware(inner)(scope, receive, RecordingSend())
    assert receive.calls == 0
    assert "model" not in json.loads(inner.body)


# ---------------------------------------------------------------- rules on the parsed request


async def test_parsed_rules_edit_the_messages_request_and_leave_the_body():
    inner = InnerApp()
    app = middleware(inner, set={"temperature": 0.2}, cap={"max_tokens": 4096}, parsed=True)
    scope = http_scope(body=BODY)
    await call(app, scope, [BODY])

    request = exchange_of(scope).messages_request
    assert request is not None
    assert request.model is msgspec.UNSET  # dropped: the wire format picks the upstream model
    assert (request.max_tokens, request.temperature, request.stream) == (4096, 0.2, True)
    assert isinstance(request.max_tokens, int)
    assert inner.body == BODY  # nothing re-encoded: the leg translates the parsed request
    assert exchange_of(scope).request_mode == "stream"


async def test_parsed_cap_only_lowers():
    inner = InnerApp()
    app = middleware(inner, cap={"max_tokens": 4096}, drop=(), parsed=True)
    body = b'{"model": "m", "messages": [], "max_tokens": 100}'
    scope = http_scope(body=body)
    await call(app, scope, [body])
    request = exchange_of(scope).messages_request
    assert (request.max_tokens, request.model) == (100, "m")
    assert exchange_of(scope).request_model == "m"


async def test_parsed_rules_refuse_a_body_that_is_no_messages_request():
    inner = InnerApp()
    body = b'{"messages": "not a list"}'
    response = await call(middleware(inner, parsed=True), http_scope(body=body), [body])
    assert response.status == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert "messages" in response.json()["error"]["message"]
    assert inner.calls == 0


def test_parsed_rules_name_fields_of_a_messages_request():
    with pytest.raises(ValueError, match="frequency_penalty"):
        StripFieldsMiddleware(InnerApp(), set={"frequency_penalty": 1}, parsed=True)


async def test_parsed_rules_say_a_deeply_nested_body_is_nested_too_deeply():
    inner = InnerApp()
    body = b'{"model": "m", "messages": ' + b"[" * 10_000 + b"]" * 10_000 + b"}"
    response = await call(middleware(inner, parsed=True), http_scope(body=body), [body])
    assert response.status == 400
    assert response.json()["error"]["message"] == "request body is nested too deeply"
    assert inner.calls == 0


async def test_deny_stream_refuses_streams_only():
    inner = InnerApp()
    app = middleware(inner, parsed=True, deny_stream=True)
    response = await call(app, http_scope(body=BODY), [BODY])
    assert response.status == 400
    assert "stream" in response.json()["error"]["message"]
    body = BODY.replace(b'"stream": true', b'"stream": false')
    response = await call(app, http_scope(body=body), [body])
    assert response.status == 200
    assert inner.calls == 1
