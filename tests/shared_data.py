"""Where the real captures live: ../shared beside the repository (AIMW_SHARED_DIR overrides)."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("AIMW_SHARED_DIR", REPO.parent / "shared"))
CORPUS = SHARED / "corpus" / "claude-code"  # requests the real Claude Code CLI sent
KONG = SHARED / "fixtures" / "kong"  # real provider responses and stream captures


def corpus_bodies() -> list[Path]:
    """Every captured Claude Code request body that has one (HEAD pre-flights have none)."""
    return [
        path
        for path in sorted(CORPUS.glob("[0-9]*.json"))
        if not path.name.endswith(".headers.json") and path.read_bytes().strip() != b"null"
    ]
