"""prometheus-client's multiprocess directory (``PROMETHEUS_MULTIPROC_DIR``) for several worker
processes: checking that the mode is really on, and the directory's clean-up at start.

In multiprocess mode prometheus-client keeps each process's metric values in memory-mapped files
named by kind and pid (``counter_<pid>.db``, ``histogram_<pid>.db``, ``gauge_livesum_<pid>.db``)
and a scrape sums every file (prometheus_client.multiprocess.MultiProcessCollector). The files
outlive their process: an exited worker's counts stay in the sums (counters never go down while
the gateway runs); its gauge file is removed when it shuts down (``mark_process_dead``), so its
streams in flight drop out of ``aimw_streams_in_flight`` (``livesum``).

The clean-up at start (:func:`prepare_directory`): a worker starting finds the ``*.db`` files of
the processes that wrote there before. When none of those processes is still running, they are
a previous run's: removed, so the counts start from zero. When one is (a sibling worker, or a
worker that replaces one that died), nothing is removed but the dead processes' live gauges
(``mark_process_dead``). So no wipe is needed before Hypercorn starts; one (``rm -rf
"$PROMETHEUS_MULTIPROC_DIR"/*``, prometheus-client's own advice) does no harm. Files of this
worker's own pid stay (a previous process of the same pid: its counts continue).
"""

from __future__ import annotations

import contextlib
import os

from prometheus_client import values
from prometheus_client.multiprocess import mark_process_dead

MULTIPROCESS_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"  # prometheus-client's name for the directory


def check_multiprocess(directory: str) -> None:
    """Check that prometheus-client writes this process's values to ``directory``.

    Raises:
        ValueError: PROMETHEUS_MULTIPROC_DIR was not in the environment when prometheus-client
            was imported (its value class is chosen then), or names another directory now.
    """
    if values.ValueClass is values.MutexValue:
        raise ValueError(
            f"{MULTIPROCESS_VARIABLE} must be set before the process starts (prometheus-client reads it once)"
        )
    if os.environ.get(MULTIPROCESS_VARIABLE) != directory:
        raise ValueError(f"{MULTIPROCESS_VARIABLE} in the environment is not {directory!r}")


def prepare_directory(directory: str, pid: int) -> None:
    """Make ``directory`` ready for this worker (module docstring: the clean-up at start).

    Raises:
        OSError: the directory cannot be created or listed.
    """
    os.makedirs(directory, exist_ok=True)
    written: dict[int, list[str]] = {}
    for name in os.listdir(directory):
        pid_of_file = _writer_pid(name) if name.endswith(".db") else None
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


def _writer_pid(name: str) -> int | None:
    """The pid in a file name ``<kind>_<pid>.db`` (None for any other name)."""
    digits = name.rpartition(".")[0].rpartition("_")[2]
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
