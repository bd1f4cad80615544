"""The soak's requests: Claude Code's own, from the captured corpus (../shared/corpus/claude-code,
``AIMW_SHARED_DIR`` to read it elsewhere): the streaming ``POST /v1/messages?beta=true`` bodies
of 40-60 KB (Claude Code's usual size, with its system prompt and tools), sent compact as the
CLI sends them, with the CLI's captured headers; the client key is the soak's own."""

from __future__ import annotations

import json
import os
from pathlib import Path

from bench.soak.plan import HEADER, Plan

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("AIMW_SHARED_DIR", REPO.parent / "shared"))
CORPUS = SHARED / "corpus" / "claude-code"
CLIENT_KEY = "sk-ant-soak-client-" + "4d1c9e"  # what the clients send; must never reach the provider
BODY_SIZES = (40_000, 60_000)  # bytes of the compact bodies used
_NOT_COPIED = {"host", "content-length", "connection", "accept-encoding", "x-api-key"}


class Requests:
    """The request bytes of each plan, for a gateway at ``host:port``: head and body
    separately (a departure during the upload sends only part of the body)."""

    def __init__(self, host: str, port: int, corpus: Path = CORPUS) -> None:
        self.captures = _captures(corpus)
        if not self.captures:
            raise FileNotFoundError(f"no streaming Claude Code request of {BODY_SIZES} bytes in {corpus}")
        self.host = f"{host}:{port}".encode()

    def build(self, plan: Plan) -> tuple[bytes, bytes]:
        """(head, body) of ``plan``'s request: a capture picked by the plan's id."""
        headers, body = self.captures[plan.id % len(self.captures)]
        head = b"POST /v1/messages?beta=true HTTP/1.1\r\nhost: %s\r\n%s" % (self.host, headers)
        head += b"x-api-key: %s\r\n%s: %s\r\n" % (CLIENT_KEY.encode(), HEADER.encode(), plan.header().encode())
        head += b"content-length: %d\r\n\r\n" % len(body)
        return head, body

    @property
    def body_sizes(self) -> list[int]:
        return [len(body) for _, body in self.captures]


def _captures(corpus: Path) -> list[tuple[bytes, bytes]]:
    """(header lines, compact body) of each streaming Messages capture of the right size."""
    captures = []
    for path in sorted(corpus.glob("[0-9]*.json")):
        if path.name.endswith(".headers.json"):
            continue
        meta_path = path.with_name(path.stem + ".headers.json")
        body = json.loads(path.read_text())
        if not isinstance(body, dict) or body.get("stream") is not True or not meta_path.exists():
            continue
        meta = json.loads(meta_path.read_text())
        if meta.get("method") != "POST" or not meta.get("path", "").startswith("/v1/messages?"):
            continue
        compact = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        if not BODY_SIZES[0] <= len(compact) <= BODY_SIZES[1]:
            continue
        lines = b"".join(
            b"%s: %s\r\n" % (name.lower().encode(), value.encode())
            for name, value in meta["headers"]
            if name.lower() not in _NOT_COPIED
        )
        captures.append((lines + b"connection: keep-alive\r\n", compact))
    return captures
