"""The Prometheus metrics of several worker processes, summed: one snapshot file per worker in
``PROMETHEUS_MULTIPROC_DIR`` (prometheus-client's multiprocess directory).

Each worker counts in its own memory (aimw.sinks.prometheus) and writes its totals, at most
once a second while it counts, to ``aimw_<pid>.json`` (written whole, then renamed over the
last one: a reader never sees half a file). The worker that answers a scrape adds up its own
counts and every other worker's file, so any worker answers for all. A worker that has exited
keeps its file: its counts stay in the sums (counters never go down while the gateway runs);
its streams in flight do not (a gauge counts live processes only).

The directory's clean-up at start (:func:`prepare_directory`): a worker starting finds the
files of the processes that wrote there before (``aimw_<pid>.json``, and prometheus-client's
own ``<kind>_<pid>.db``). When none of those processes is still running, they are a previous
run's: removed, so the counts start from zero. When one is (a sibling worker, or a worker
that replaces one that died), nothing is removed but the dead processes' live gauges
(prometheus-client's ``mark_process_dead``). So no wipe is needed before Hypercorn starts;
one (``rm -rf "$PROMETHEUS_MULTIPROC_DIR"/*``, prometheus-client's own advice) does no harm.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import logging
import os
from collections.abc import Callable

import orjson
from prometheus_client.multiprocess import mark_process_dead

logger = logging.getLogger("aimw.metrics")

FLUSH_DELAY = 1.0  # seconds from a change to this worker's snapshot file

Snapshot = dict[str, object]
"""One worker's totals as JSON: ``{"families": {name: [[*labels, *numbers], ...]},
"streams_in_flight": n}`` (aimw.sinks.prometheus builds and reads them)."""


class WorkerSnapshots:
    """This worker's snapshot file in ``directory`` and the other workers' files.

    Args:
        directory: the multiprocess directory (created when missing).
        pid: this worker's process id.
    """

    __slots__ = ("_timer", "directory", "path", "pid")

    def __init__(self, directory: str, pid: int) -> None:
        self.directory = directory
        self.pid = pid
        self.path = os.path.join(directory, f"aimw_{pid}.json")
        self._timer: asyncio.TimerHandle | None = None

    def changed(self, take: Callable[[], Snapshot]) -> None:
        """The counts changed: write ``take()`` FLUSH_DELAY seconds after the first change
        since the last write (at once outside an event loop)."""
        if self._timer is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.write(take())
            return
        self._timer = loop.call_later(FLUSH_DELAY, self.flush, take)

    def flush(self, take: Callable[[], Snapshot]) -> None:
        """Write ``take()`` now (a pending write is then not needed)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.write(take())

    def write(self, snapshot: Snapshot) -> None:
        """Replace this worker's file with ``snapshot`` (a failing disk is logged, not raised)."""
        partial = os.path.join(self.directory, f".aimw_{self.pid}.partial")
        try:
            with open(partial, "wb") as file:
                file.write(orjson.dumps(snapshot))
            os.replace(partial, self.path)
        except OSError as exc:
            logger.error("aimw: cannot write the metrics snapshot %s: %s", self.path, exc)

    def others(self) -> list[tuple[Snapshot, bool]]:
        """The other workers' snapshots, each with whether its process is still running
        (unreadable files are skipped and logged)."""
        found: list[tuple[Snapshot, bool]] = []
        for path in glob.glob(os.path.join(self.directory, "aimw_*.json")):
            pid = _writer_pid(path)
            if pid is None or pid == self.pid:
                continue
            try:
                with open(path, "rb") as file:
                    snapshot = orjson.loads(file.read())
            except (OSError, orjson.JSONDecodeError) as exc:
                logger.warning("aimw: metrics snapshot %s skipped: %s", path, exc)
                continue
            if isinstance(snapshot, dict):
                found.append((snapshot, _running(pid)))
        return found


def prepare_directory(directory: str, pid: int) -> None:
    """Make ``directory`` ready for this worker (module docstring: the clean-up at start).

    Raises:
        OSError: the directory cannot be created or listed.
    """
    os.makedirs(directory, exist_ok=True)
    written: dict[int, list[str]] = {}
    for name in os.listdir(directory):
        pid_of_file = _writer_pid(name) if name.endswith((".db", ".json")) else None
        if pid_of_file is not None and pid_of_file != pid:  # this process's own files stay
            written.setdefault(pid_of_file, []).append(os.path.join(directory, name))
    running = {writer for writer in written if _running(writer)}
    if running:
        for writer in written.keys() - running:
            mark_process_dead(writer, directory)  # type: ignore[no-untyped-call]
        return
    for paths in written.values():
        for path in paths:
            with contextlib.suppress(FileNotFoundError):  # a sibling starting now removed it first
                os.remove(path)


def _writer_pid(path: str) -> int | None:
    """The pid in a file name ``<kind>_<pid>.<ext>`` (None for any other name)."""
    stem = os.path.basename(path).rpartition(".")[0]
    digits = stem.rpartition("_")[2]
    return int(digits) if digits.isdigit() else None


def _running(pid: int) -> bool:
    """Whether process ``pid`` exists (signal 0 checks without sending anything)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process: it exists
    return True
