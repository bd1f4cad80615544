"""Where finished exchanges go (the :class:`~aimw.types.Sink` protocol): the Kong file log."""

from aimw.sinks.kong_file_log import KongFileLog
from aimw.sinks.log_file import LogFile

__all__ = ["KongFileLog", "LogFile"]
