"""The baseline target: aimw as it was at a git revision, measured in the same run as the
working tree (``python -m bench --baseline REF``), so one run compares before and after.

The revision's ``src/`` and ``recipes/`` are extracted with ``git archive | tar -x`` into
the run's raw directory, and its server runs there with ``PYTHONPATH=<dir>/src:<dir>``:
the revision's aimw shadows the working tree's editable install (a ``.pth`` path entry,
which comes after ``PYTHONPATH``). Before the run starts, :func:`check_baseline_imports`
makes the interpreter prove it. Third-party packages are the current virtualenv's.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

APP = "recipes.huggingface"
REQUIRED_FILES = ("src/aimw/__init__.py", "recipes/huggingface.py")
# What the baseline's server would import, printed by the interpreter that runs it.
IMPORT_PROBE = f"import importlib.util, aimw\nprint(aimw.__file__)\nprint(importlib.util.find_spec({APP!r}).origin)\n"


class BaselineError(RuntimeError):
    """The baseline revision cannot be measured; the message says why."""


@dataclass(frozen=True)
class Baseline:
    """A git revision of aimw: ``ref`` as given, ``commit`` its full hash, ``short`` git's short one."""

    ref: str
    commit: str
    short: str

    @property
    def name(self) -> str:
        """The target's name in the run and the report."""
        return f"aimw@{self.short}"

    @property
    def summary(self) -> str:
        ref = "" if self.commit.startswith(self.ref) else f" (`{self.ref}`)"
        return f"Hypercorn + {APP}:app at git {self.short}{ref} (its src/ and recipes/ under raw/, this run's packages)"


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, check=False)
    except OSError as exc:
        raise BaselineError(f"git cannot run: {exc}") from None


def resolve_baseline(ref: str, repo: Path) -> Baseline:
    """The commit ``ref`` names in ``repo``, which must hold aimw and its Hugging Face recipe."""
    if not ref or ref.startswith("-"):
        raise BaselineError(f"not a git revision: {ref!r}")
    found = _git(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    if found.returncode != 0:
        raise BaselineError(f"unknown git revision {ref!r} in {repo}")
    commit = found.stdout.decode().strip()
    missing = [path for path in REQUIRED_FILES if _git(repo, "cat-file", "-e", f"{commit}:{path}").returncode != 0]
    if missing:
        raise BaselineError(f"git revision {ref!r} ({commit[:12]}) has no {', '.join(missing)}")
    short = _git(repo, "rev-parse", "--short", commit).stdout.decode().strip()
    return Baseline(ref, commit, short)


def extract_baseline(baseline: Baseline, repo: Path, into: Path) -> Path:
    """``git archive`` the revision's src/ and recipes/ into ``into/baseline-<short>``; returns that directory."""
    source = into / f"baseline-{baseline.short}"
    archive = _git(repo, "archive", "--format=tar", baseline.commit, "src", "recipes")
    if archive.returncode != 0:
        raise BaselineError(f"git archive {baseline.commit[:12]} failed: {_text(archive.stderr)}")
    source.mkdir(parents=True, exist_ok=True)
    untar = subprocess.run(["tar", "-x", "-C", str(source)], input=archive.stdout, capture_output=True, check=False)
    if untar.returncode != 0:
        raise BaselineError(f"tar could not extract {baseline.name} into {source}: {_text(untar.stderr)}")
    return source


def _text(output: bytes) -> str:
    return output.decode(errors="replace").strip()


def baseline_env(source: Path) -> dict[str, str]:
    """The environment that makes Python import aimw and the recipes from ``source``."""
    return {"PYTHONPATH": os.pathsep.join((str(source / "src"), str(source)))}


def check_baseline_imports(python: str, source: Path) -> None:
    """Raise BaselineError unless ``python``, started as the baseline's server is (``source`` as its
    working directory, :func:`baseline_env`), imports aimw and the recipe from ``source``."""
    probe = subprocess.run(
        [python, "-c", IMPORT_PROBE],
        cwd=source,
        env={**os.environ, **baseline_env(source)},
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode != 0:
        raise BaselineError(f"the baseline in {source} does not import:\n{probe.stderr[-2000:]}")
    root = source.resolve()
    imported = probe.stdout.splitlines()
    outside = [path for path in imported if not Path(path).resolve().is_relative_to(root)]
    if outside or len(imported) != 2:
        raise BaselineError(f"{python} imports {', '.join(outside or imported)}, not the baseline's code in {source}")
