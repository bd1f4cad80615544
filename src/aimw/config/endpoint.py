"""Where a target's requests go when ``model.options.upstream_url`` (or the deprecated
``upstream_path``) is given, in Kong's meaning (Kong's ai-proxy-advanced reference:
"Manually specify or override the full URL to the AI operation endpoints").

``upstream_url`` is the WHOLE URL of the provider's operation: its ``scheme://host[:port]``
replaces the provider's, and its path replaces the wire format's path:

- Chat Completions providers (openai, azure, dashscope, huggingface): the path and the query
  as written (``https://llm.internal:8443/openai/v1/chat/completions?tenant=a``); Azure's
  ``api-version={azure_api_version}`` is added when the URL's query has none.
- gemini: the model's resource, ``…/models/<model>`` optionally followed by
  ``:generateContent`` or ``:streamGenerateContent``; the method is chosen per request (a
  stream or not), and the model comes from ``model.name`` (the URL's when the name is absent).
- anthropic: only ``scheme://host[:port]`` (path empty, ``/`` or ``/v1/messages``), since the
  pass-through forwards both ``/v1/messages`` and ``/v1/messages/count_tokens``.

A URL without a path (or with ``/``) replaces only ``scheme://host[:port]``: POSTing to ``/``
is never what a provider serves, so the provider's own path is kept (aimw's reading).
``upstream_path`` alone replaces the path on the provider's own host. No user name or
password before the host (the URL reaches every log line; put a credential in ``auth``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, quote, unquote, urlsplit

_GEMINI_RESOURCE = re.compile(
    r"(?P<head>/(?:.*/)?models/)(?P<model>[^/:]+)(?::(?:generateContent|streamGenerateContent))?"
)
_ANTHROPIC_PATHS = ("", "/v1/messages")


@dataclass(frozen=True, slots=True)
class Endpoint:
    """The parts of a provider's endpoint a target replaces.

    base_url: ``scheme://host[:port]`` replacing the provider's; None keeps the provider's.
    path: the wire format's path; ``""`` keeps the provider's. For gemini, the model
        resource with ``{model}`` in place of the model (GeminiOptions.path).
    query: the Chat wire format's query (without ``?``); None keeps the provider's.
    model: the model named in a gemini URL's path; None when there is none.
    """

    base_url: str | None = None
    path: str = ""
    query: str | None = None
    model: str | None = None


def endpoint(provider: str, upstream_url: str | None, upstream_path: str | None, azure_api_version: str) -> Endpoint:
    """The Endpoint of ``options.upstream_url`` / ``options.upstream_path`` for ``provider``
    (a Kong provider_name); ``Endpoint()`` when neither is given.

    Raises:
        ValueError: ``"options.upstream_url: <what is expected>"`` (the URL itself is never
            repeated: it may hold a key in its query).
    """
    if upstream_url is None and upstream_path is None:
        return Endpoint()
    if upstream_url is not None and upstream_path is not None:
        raise ValueError("options.upstream_path: expected the whole URL in upstream_url only (not both)")
    base: str | None = None
    query: str | None = None
    if upstream_url is not None:
        field = "options.upstream_url"
        base, path, query = _split(upstream_url)
    else:
        field, path = "options.upstream_path", upstream_path or ""
        if not path.startswith("/") or "?" in path or "#" in path:
            raise ValueError(f"{field}: expected a path starting with / (no query)")
    path = "" if path == "/" else path
    if provider == "anthropic":
        if path not in _ANTHROPIC_PATHS or query:
            raise ValueError(f"{field}: for provider anthropic, expected only scheme://host[:port]")
        return Endpoint(base)
    if provider == "gemini":
        return _gemini(field, base, path, query)
    if provider == "azure" and query is not None and "api-version" not in parse_qs(query):
        query = "&".join(part for part in (query, f"api-version={quote(azure_api_version, safe='')}") if part)
    return Endpoint(base, path, query)


def _split(url: str) -> tuple[str, str, str]:
    """``(scheme://host[:port], path, query)`` of an http(s) URL.

    Raises:
        ValueError: naming options.upstream_url and what is wrong with it.
    """
    try:
        parts = urlsplit(url)
        valid = parts.scheme.lower() in ("http", "https") and bool(parts.hostname) and parts.port != 0
    except ValueError:  # an unclosed [IPv6] host, a port that is not a number in 0-65535
        valid = False
    if not valid:
        raise ValueError("options.upstream_url: expected a URL, http(s)://host[:port][/path]")
    if "@" in parts.netloc:
        raise ValueError("options.upstream_url: must not hold a user name or password before its host")
    if parts.fragment:
        raise ValueError("options.upstream_url: must not end in a #fragment")
    return f"{parts.scheme.lower()}://{parts.netloc}", parts.path, parts.query


def _gemini(field: str, base: str | None, path: str, query: str | None) -> Endpoint:
    if query:
        raise ValueError(f"{field}: for provider gemini, expected no query (alt=sse is added to streams)")
    if not path:
        return Endpoint(base)
    match = _GEMINI_RESOURCE.fullmatch(path)
    if match is None:
        raise ValueError(f"{field}: for provider gemini, expected a path …/models/<model>[:generateContent]")
    head = match["head"].replace("{", "{{").replace("}", "}}")
    return Endpoint(base, head + "{model}", None, unquote(match["model"]))
