"""LogFile: whole lines appended with one write(2), safe across processes, following logrotate."""

from __future__ import annotations

import json
import multiprocessing

import orjson

from aimw.sinks.log_file import LogFile


def test_lines_are_appended_and_parent_directories_created(tmp_path):
    path = tmp_path / "logs" / "nested" / "aimw.log"
    log = LogFile(str(path))
    log.write(b'{"n": 1}\n')
    log.write(b'{"n": 2}\n')
    assert path.read_text() == '{"n": 1}\n{"n": 2}\n'
    assert LogFile(str(path)).path == str(path)


def test_an_existing_file_is_appended_to(tmp_path):
    path = tmp_path / "aimw.log"
    path.write_text('{"n": 0}\n')
    LogFile(str(path)).write(b'{"n": 1}\n')
    assert path.read_text() == '{"n": 0}\n{"n": 1}\n'


def test_an_unwritable_log_is_logged_never_raised(tmp_path, caplog):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x")
    log = LogFile(str(blocker / "aimw.log"))
    log.write(b'{"n": 1}\n')
    assert "cannot write the aimw log" in caplog.text
    assert str(blocker / "aimw.log") in caplog.text


def test_the_log_follows_a_rotation(tmp_path):
    """After logrotate renames the file, the next line goes to a new file at the same path."""
    path = tmp_path / "aimw.log"
    log = LogFile(str(path))
    log.write(b'{"n": 1}\n')
    path.rename(tmp_path / "aimw.log.1")
    log.write(b'{"n": 2}\n')
    (tmp_path / "aimw.log").unlink()
    log.write(b'{"n": 3}\n')
    assert (tmp_path / "aimw.log.1").read_text() == '{"n": 1}\n'
    assert path.read_text() == '{"n": 3}\n'


# ------------------------------------------------------------------ several processes, one file

PROCESSES = 4
LINES_PER_PROCESS = 300
PAD = 3000  # bytes of padding per line (~3 KB lines)
GUARD_SECONDS = 60  # hang guard only


def _append_lines(path: str, worker: int, start) -> None:
    """One worker process: LINES_PER_PROCESS lines of ~3 KB through LogFile.write."""
    log = LogFile(path)
    lines = [
        orjson.dumps({"worker": worker, "seq": seq, "pad": chr(ord("a") + worker) * PAD}) + b"\n"
        for seq in range(LINES_PER_PROCESS)
    ]
    start.wait(GUARD_SECONDS)
    for line in lines:
        log.write(line)


def test_several_processes_append_whole_lines(tmp_path):
    path = str(tmp_path / "shared.log")
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(PROCESSES)  # all write at once, once all are up
    workers = [context.Process(target=_append_lines, args=(path, n, start)) for n in range(PROCESSES)]
    try:
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(GUARD_SECONDS)
            assert worker.exitcode == 0
    finally:
        for worker in workers:
            if worker.is_alive():
                worker.terminate()
                worker.join()

    raw = (tmp_path / "shared.log").read_bytes()
    assert raw.endswith(b"\n")
    lines = raw.split(b"\n")[:-1]
    assert len(lines) == PROCESSES * LINES_PER_PROCESS
    seen = set()
    records = []
    for line in lines:
        record = json.loads(line)  # a torn or interleaved line would not parse
        assert record["pad"] == chr(ord("a") + record["worker"]) * PAD
        seen.add((record["worker"], record["seq"]))
        records.append(record)
    assert seen == {(w, s) for w in range(PROCESSES) for s in range(LINES_PER_PROCESS)}
    for w in range(PROCESSES):  # each process's lines stay in its own order
        assert [r["seq"] for r in records if r["worker"] == w] == list(range(LINES_PER_PROCESS))
