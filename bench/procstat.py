"""CPU time and memory of a process and its descendants, read from Linux's /proc.

A server under test may be several processes (Hypercorn's master and its workers), so
every figure is summed over the process tree rooted at the pid we started.
"""

from __future__ import annotations

import os
from pathlib import Path

CLOCK_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")
PROC = Path("/proc")


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its living descendants (from /proc/<pid>/task/<tid>/children)."""
    tree, index = [pid], 0
    while index < len(tree):
        for task in _read_tasks(tree[index]):
            try:
                children = (PROC / str(tree[index]) / "task" / task / "children").read_text().split()
            except OSError:
                continue
            tree.extend(int(child) for child in children)
        index += 1
    return tree


def _read_tasks(pid: int) -> list[str]:
    try:
        return os.listdir(PROC / str(pid) / "task")
    except OSError:
        return []


def cpu_seconds(pid: int) -> float:
    """User + system CPU time (seconds) used so far by one process (0.0 once it is gone)."""
    try:
        stat = (PROC / str(pid) / "stat").read_bytes()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(b")") + 2 :].split()
    # After "pid (comm) ": state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime stime
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS_PER_SECOND


def tree_cpu_seconds(pids: list[int]) -> float:
    """Summed CPU time (seconds) of ``pids``."""
    return sum(cpu_seconds(pid) for pid in pids)


def rss_bytes(pid: int) -> int:
    """Resident set size (bytes) of one process: VmRSS in /proc/<pid>/status (0 once it is gone)."""
    try:
        with open(PROC / str(pid) / "status", "rb") as status:
            for line in status:
                if line.startswith(b"VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def tree_rss_bytes(pids: list[int]) -> int:
    """Summed VmRSS (bytes) of ``pids`` (pages shared between workers count once per process)."""
    return sum(rss_bytes(pid) for pid in pids)


def machine_cpu_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat's "cpu" line.

    Busy is every state but idle and iowait; total includes them. Over a window, the
    difference shows how much CPU processes other than ours took.
    """
    with open(PROC / "stat", "rb") as stat:
        fields = [int(value) for value in stat.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    total = sum(fields[:8])  # user nice system idle iowait irq softirq steal (guest is inside user)
    return (total - idle) / CLOCK_TICKS_PER_SECOND, total / CLOCK_TICKS_PER_SECOND
