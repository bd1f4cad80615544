"""Tests of ``aimw report``; EVERY_KIND_LOG holds every kind of line the report meets."""

from pathlib import Path

EVERY_KIND_LOG = Path(__file__).parent / "data" / "every_kind.log"
