"""Shared test fixtures: where the real captures live (../shared beside the repository)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("AIMW_SHARED_DIR", REPO.parent / "shared"))
CORPUS = SHARED / "corpus" / "claude-code"
KONG = SHARED / "fixtures" / "kong"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def corpus_bodies() -> list[Path]:
    """Every captured Claude Code request body that has one (HEAD pre-flights have none)."""
    return [
        path
        for path in sorted(CORPUS.glob("[0-9]*.json"))
        if not path.name.endswith(".headers.json") and path.read_bytes().strip() != b"null"
    ]
