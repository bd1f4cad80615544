"""The soak's marker: ``pytest -m soak`` runs only the soak, ``-m 'not soak'`` everything else."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "soak: the short soak run (bench.soak): a gateway under load, faults, departures"
    )
