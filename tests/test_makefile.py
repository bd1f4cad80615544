"""``make run`` (issue 8, finding 13): it listens where AIMW_HOST says, loopback by default,
never where an exported HOST says, and refuses an empty AIMW_HOST before serving.

make runs the real recipe with VENV set to a stand-in virtualenv, up to date for ``setup``,
whose ``hypercorn`` only records its arguments: no server can start, whatever the Makefile
does (and ``PYTHON=false`` fails at once should ``setup`` ever want to install).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from hypercorn.config import Config

from tests.shared_data import REPO

MAKE = shutil.which("make")
MAKE_TIMEOUT = 30  # seconds: a hang guard only

pytestmark = pytest.mark.skipif(MAKE is None, reason="make is not installed")


@pytest.fixture
def venv(tmp_path: Path) -> Path:
    """The stand-in virtualenv: its ``bin/.installed`` newer than pyproject.toml, its
    ``bin/hypercorn`` writing its arguments to ``bin/argv``, one a line."""
    bin_dir = tmp_path / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    hypercorn = bin_dir / "hypercorn"
    hypercorn.write_text('#!/bin/sh\nprintf "%s\\n" "$@" > "$(dirname "$0")/argv"\n')
    hypercorn.chmod(0o755)
    installed = bin_dir / ".installed"
    installed.touch()
    stamp = max(time.time(), (REPO / "pyproject.toml").stat().st_mtime + 1)
    os.utime(installed, (stamp, stamp))
    return tmp_path / "venv"


def make_run(venv: Path, *variables: str, **environ: str) -> subprocess.CompletedProcess[str]:
    """``make run`` with the stand-in ``venv``, ``variables`` on the command line and
    ``environ`` exported (no AIMW_*, HOST or MAKE* variable of this process's)."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AIMW_", "MAKE")) and name not in ("HOST", "MFLAGS")
    }
    assert MAKE is not None
    return subprocess.run(
        [MAKE, "--no-print-directory", "run", f"VENV={venv}", "PYTHON=false", *variables],
        cwd=REPO,
        env={**env, **environ},
        capture_output=True,
        text=True,
        timeout=MAKE_TIMEOUT,
    )


def bound_to(venv: Path) -> str:
    """The ``--bind`` value hypercorn was started with."""
    argv = (venv / "bin" / "argv").read_text().splitlines()
    return argv[argv.index("--bind") + 1]


@pytest.mark.parametrize("variable", ["AIMW_HOST=", "AIMW_HOST= "])
def test_an_empty_aimw_host_is_refused_before_serving(venv, variable):
    ran = make_run(venv, variable)

    assert ran.returncode != 0, ran.stdout
    assert "AIMW_HOST is empty" in ran.stderr
    assert not (venv / "bin" / "argv").exists()  # hypercorn never started


def test_an_empty_aimw_host_in_the_environment_is_refused(venv):
    ran = make_run(venv, AIMW_HOST="")

    assert ran.returncode != 0, ran.stdout
    assert "AIMW_HOST is empty" in ran.stderr
    assert not (venv / "bin" / "argv").exists()


def test_an_exported_host_is_ignored(venv):
    ran = make_run(venv, HOST="0.0.0.0")

    assert ran.returncode == 0, ran.stderr
    assert bound_to(venv) == "127.0.0.1:8000"


@pytest.mark.parametrize(
    ("variables", "environ", "bind"),
    [
        (("AIMW_HOST=192.0.2.7",), {}, "192.0.2.7:8000"),
        ((), {"AIMW_HOST": "localhost", "AIMW_PORT": "9001"}, "localhost:9001"),
    ],
)
def test_aimw_host_and_port_decide_where_it_listens(venv, variables, environ, bind):
    ran = make_run(venv, *variables, **environ)

    assert ran.returncode == 0, ran.stderr
    assert bound_to(venv) == bind


def test_make_run_serves_with_the_shipped_hypercorn_settings(venv):
    ran = make_run(venv)

    assert ran.returncode == 0, ran.stderr
    argv = (venv / "bin" / "argv").read_text().splitlines()
    assert argv[argv.index("--config") + 1] == "recipes/hypercorn.toml"
    config = Config.from_toml(REPO / "recipes" / "hypercorn.toml")
    # Hypercorn's default listen backlog (100) overflowed when 500 clients connected at once
    assert config.backlog >= 2048
