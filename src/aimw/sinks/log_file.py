"""LogFile: an append-only file shared by several worker processes, following logrotate.

Each line is written with one ``write(2)`` on an ``O_APPEND`` descriptor, so processes that
share the file never tear or interleave lines; the file is reopened when it is no longer
the one at its path (logrotate renamed or removed it), so every worker moves on to the new
file. A failing disk is logged, never raised.
"""

from __future__ import annotations

import logging
import os

logger = logging.getLogger("aimw.log_file")

FILE_MODE = 0o640


class LogFile:
    """Append lines (bytes ending in a newline) to ``path`` (created with its parent
    directories if missing)."""

    __slots__ = ("_fd", "_identity", "path")

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = None
        self._identity = (0, 0)  # (st_ino, st_dev) of the open file: a descriptor's never changes

    def write(self, line: bytes) -> None:
        try:
            if self._fd is not None and not self._still_at_path():
                os.close(self._fd)
                self._fd = None
            if self._fd is None:
                os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
                opened = os.fstat(self._fd)
                self._identity = (opened.st_ino, opened.st_dev)
            os.write(self._fd, line)
        except OSError as exc:
            logger.error("cannot write the aimw log %s: %s", self.path, exc)

    def _still_at_path(self) -> bool:
        """Whether the path still names the open file (one stat(2) per line)."""
        try:
            at_path = os.stat(self.path)
        except FileNotFoundError:
            return False
        return (at_path.st_ino, at_path.st_dev) == self._identity
