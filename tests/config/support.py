"""Helpers of the configuration file's tests: the error a file gives, and the URL a
target's wire format requests."""

from __future__ import annotations

import json
import textwrap

import pytest

from aimw.config import TargetSpec, load_config
from aimw.settings import ConfigurationError
from aimw.translators.anthropic.messages import decode_request
from aimw.translators.wire import AnthropicCall


def problem(write_config, text: str, environ: dict[str, str] | None = None, name: str = "gateway.yaml") -> str:
    """The ConfigurationError's message after ``aimw: <file>: ``."""
    path = write_config(textwrap.dedent(text), name)
    with pytest.raises(ConfigurationError) as caught:
        load_config(path, environ or {})
    message = str(caught.value)
    assert message.startswith(f"aimw: {path}: ")
    return message.removeprefix(f"aimw: {path}: ")


def requested_url(spec: TargetSpec, *, stream: bool = False, model: str | None = None) -> str:
    """The URL the target's wire format requests for a one-message call of ``model``
    (default: the target's model)."""
    body = json.dumps(
        {
            "model": "claude-sonnet-4-5",
            "max_tokens": 64,
            "stream": stream,
            "messages": [{"role": "user", "content": "Hi"}],
        }
    ).encode()
    call = AnthropicCall(body, decode_request(body), model or spec.model or "client-model", stream, "/v1/messages", b"")
    upstream = spec.provider.wire_format.build_request(call)
    query = f"?{upstream.query.decode()}" if upstream.query else ""
    return f"{spec.provider.base_url}{upstream.path}{query}"
