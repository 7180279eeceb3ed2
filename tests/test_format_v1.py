"""Every chronolog must read what format versions 1 and 2 wrote: committed fixture logs.

``tests/fixtures/format-v1/`` holds a file log and an SQLite log written by
the chronolog of format version 1 (see ``make_fixture.py`` there) and
``expected.json``: what they replay to; ``tests/fixtures/format-v2/`` the
same logs compacted by the chronolog of version 2. Later versions read them
as they are (no writes), replay them to that same summary, and upgrade them
when they open them to write: the same records, each with its checksum
(format version 3).
"""

# The tests prepare and inspect small files with plain blocking calls.
# ruff: noqa: ASYNC240

from __future__ import annotations

import errno
import json
import os
import shutil
import sqlite3
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import pytest

from chronolog import Completed, FileLog, LogCorrupted, SQLiteLog, check_invariants, replay
from chronolog._events import (
    Scheduled,
    TaskPaused,
    TaskResumed,
    encode_event,
    encode_header,
    encode_lines,
)
from chronolog.log._checksum import unsealed

if TYPE_CHECKING:
    from chronolog import Event, State

FIXTURES = Path(__file__).parent / "fixtures" / "format-v1"
FIXTURES_V2 = Path(__file__).parent / "fixtures" / "format-v2"
#: How many of the newest runs per task the summary pins.
HISTORY = 20


def summary(state: State, records: list[Event]) -> dict[str, Any]:
    """What a log replays to, as plain JSON: tasks, open runs, recent history."""
    document = {
        "seq": state.seq,
        "records": len(records),
        "event_types": dict(sorted(Counter(type(r).__name__ for r in records).items())),
        "tasks": [msgspec.to_builtins(status) for status in state.tasks()],
        "watermarks": {
            name: msgspec.to_builtins(state.watermark(name)) for name in state.task_names()
        },
        "history": {
            name: msgspec.to_builtins(state.history(name, limit=HISTORY))
            for name in state.task_names()
        },
    }
    result: dict[str, Any] = json.loads(msgspec.json.encode(document))
    # `Run` gained last_due and count (ranges of missed due times) after the
    # fixtures were made: a log from before has no range, so every run holds
    # their defaults, and the pinned summary leaves them out.
    for runs in result["history"].values():
        for run in runs:
            assert (run.pop("last_due"), run.pop("count")) == (None, 1)
    return result


@pytest.fixture(scope="module")
def expected() -> dict[str, Any]:
    result: dict[str, Any] = json.loads((FIXTURES / "expected.json").read_text())
    return result


@pytest.fixture
def file_log(tmp_path: Path) -> Path:
    return Path(shutil.copy(FIXTURES / "jobs.jsonl", tmp_path / "jobs.jsonl"))


@pytest.fixture
def sqlite_log(tmp_path: Path) -> Path:
    return Path(shutil.copy(FIXTURES / "jobs.sqlite", tmp_path / "jobs.sqlite"))


def test_the_fixtures_are_version_1_and_hold_every_event_type(sqlite_log: Path) -> None:
    assert (FIXTURES / "jobs.jsonl").read_bytes().startswith(b'{"format":"chronolog","version":1}')
    # A copy: even reading a WAL database writes files beside it.
    assert _version(sqlite_log) == 1
    records = list(FileLog(FIXTURES / "jobs.jsonl").read())
    assert len(Counter(type(record).__name__ for record in records)) == 9
    assert any(isinstance(r, Scheduled) and r.content_hash for r in records)
    assert b"\n {" in (FIXTURES / "jobs.jsonl").read_bytes()  # batches of several lines


def test_the_file_log_replays_to_the_known_state(file_log: Path, expected: dict[str, Any]) -> None:
    log = FileLog(file_log)
    records = list(log.read())
    assert summary(log.load_state(), records) == expected
    assert check_invariants(records) == []
    assert file_log.read_bytes() == (FIXTURES / "jobs.jsonl").read_bytes()  # read only


def test_the_sqlite_log_replays_to_the_known_state(
    sqlite_log: Path, expected: dict[str, Any]
) -> None:
    log = SQLiteLog(sqlite_log)
    records = list(log.read())
    assert summary(log.load_state(), records) == expected
    assert records == list(FileLog(FIXTURES / "jobs.jsonl").read())


@pytest.mark.parametrize("kind", ["file", "sqlite"])
async def test_a_version_1_log_is_upgraded_when_opened_to_write(
    file_log: Path, sqlite_log: Path, kind: str, expected: dict[str, Any]
) -> None:
    path = file_log if kind == "file" else sqlite_log

    def make() -> FileLog | SQLiteLog:
        return FileLog(path) if kind == "file" else SQLiteLog(path)

    records = list(make().read())
    async with make() as log:
        assert _version(path) == 1  # checked, but upgraded only before the first write
        assert list(log.read()) == records
        assert summary(log.load_state(), records) == expected
        at = records[-1].at
        more = await log.append(
            [TaskPaused(task="sync", at=at, note="upgrade"), TaskResumed(task="sync", at=at)]
        )
        assert _version(path) == 3  # records with checksums
        assert list(log.read()) == records + more
        await log.save_snapshot(replay(records + more))
        await log.compact(replay(records[:500]))
        assert _version(path) == 3
    whole = replay(records + more)
    assert make().load_state() == whole
    assert make().base_state() == replay(records[:500])
    assert list(make().read()) == records[500:] + more
    assert check_invariants(make().read(), start=make().base_state()) == []


async def test_an_upgraded_file_log_keeps_its_lines_and_batches(file_log: Path) -> None:
    before = file_log.read_bytes().splitlines(keepends=True)
    async with FileLog(file_log):
        pass
    assert file_log.read_bytes() == b"".join(before)  # an open that writes nothing
    async with FileLog(file_log) as log:
        await log.save_snapshot(log.load_state())
    after = file_log.read_bytes().splitlines(keepends=True)
    assert after[0] == b'{"format":"chronolog","version":3}\n'
    # Line for line the same records, with the same batch framing.
    assert [unsealed(line) + b"\n" for line in after[1:]] == before[1:]
    assert not list(file_log.parent.glob("*.upgrade"))


# -- format version 2: compacted logs ------------------------------------------------


@pytest.fixture(scope="module")
def expected_v2() -> dict[str, Any]:
    result: dict[str, Any] = json.loads((FIXTURES_V2 / "expected.json").read_text())
    return result


@pytest.mark.parametrize("name", ["jobs.jsonl", "jobs.sqlite"])
async def test_a_compacted_version_2_log_is_read_as_it_is_then_upgraded(
    tmp_path: Path, name: str, expected_v2: dict[str, Any]
) -> None:
    path = Path(shutil.copy(FIXTURES_V2 / name, tmp_path / name))

    def make() -> FileLog | SQLiteLog:
        return FileLog(path) if name.endswith(".jsonl") else SQLiteLog(path)

    assert _version(path) == 2
    kept = list(make().read())
    base = make().base_state()
    assert (make().base_seq, base.seq, kept[0].seq) == (500, 500, 501)
    assert summary(make().load_state(), kept) == expected_v2
    assert check_invariants(kept, start=base) == []
    if name.endswith(".jsonl"):
        assert path.read_bytes() == (FIXTURES_V2 / name).read_bytes()  # reading writes nothing
    async with make() as log:
        assert (log.base_seq, log.last_seq) == (500, kept[-1].seq)
        assert summary(log.load_state(), kept) == expected_v2
        more = await log.append([TaskPaused(task="sync", at=kept[-1].at, note="after")])
        assert _version(path) == 3
    assert list(make().read()) == kept + more
    assert make().base_state() == base


# -- an upgrade that cannot be done leaves the log as it was -------------------------


@pytest.mark.parametrize("kind", ["file", "sqlite"])
async def test_a_log_that_breaks_a_rule_is_not_upgraded(tmp_path: Path, kind: str) -> None:
    """Checksums would vouch for a log: one that breaks a rule keeps its old version."""
    records = list(FileLog(FIXTURES / "jobs.jsonl").read())
    completed = next(r for r in records if isinstance(r, Completed))
    records = [r for r in records if r.seq < completed.seq]
    records.append(msgspec.structs.replace(completed, attempt=completed.attempt + 1))
    path = tmp_path / ("jobs.jsonl" if kind == "file" else "jobs.sqlite")
    if kind == "file":
        path.write_bytes(encode_header() + encode_lines(records))
    else:
        shutil.copy(FIXTURES / "jobs.sqlite", path)
        with sqlite3.connect(path) as connection:
            connection.execute("DELETE FROM chronolog_records WHERE seq >= ?", (completed.seq,))
            connection.execute(
                "INSERT INTO chronolog_records (seq, record) VALUES (?, ?)",
                (completed.seq, encode_event(records[-1]).decode()),
            )
        connection.close()
    before = _contents(path)
    make = FileLog if kind == "file" else SQLiteLog
    with pytest.raises(
        LogCorrupted,
        match=rf"breaks the rule finished-without-start at seq {completed.seq}: Completed for "
        rf"attempt {completed.attempt + 1} .* It is not upgraded to format version 3 .*: it "
        rf"stays version 1",
    ):
        await make(path).open()
    assert _contents(path) == before
    assert _version(path) == 1


async def test_a_full_disk_during_an_upgrade_leaves_the_log_as_it_was(
    file_log: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = file_log.read_bytes()
    real_write = os.write
    written = 0

    def write(fd: int, data: bytes) -> int:
        nonlocal written
        if os.fstat(fd).st_ino != file_log.stat().st_ino and written + len(data) > 50_000:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        written += len(data)
        return real_write(fd, data)

    records = list(FileLog(file_log).read())
    event = TaskPaused(task="sync", at=records[-1].at, note="full")
    monkeypatch.setattr(os, "write", write)
    async with FileLog(file_log) as log:
        with pytest.raises(
            OSError,
            match=r"could not upgrade log .*jobs.jsonl from format version 1 to 3: No space left "
            r"on device; the log is unchanged \(version 1\)",
        ) as caught:
            await log.append([event])
        assert caught.value.errno == errno.ENOSPC
        assert file_log.read_bytes() == before
        assert sorted(p.name for p in file_log.parent.iterdir()) == [
            "jobs.jsonl",
            "jobs.jsonl.lock",
        ]
        monkeypatch.undo()  # space again: the next write upgrades, then appends
        more = await log.append([event])
        assert _version(file_log) == 3
    assert list(FileLog(file_log).read()) == records + more


async def test_too_little_space_for_an_upgrade_is_said_before_writing(
    file_log: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = file_log.read_bytes()
    real = os.statvfs(file_log.parent)

    class Full:
        f_bavail = 10
        f_frsize = real.f_frsize

    monkeypatch.setattr(os, "statvfs", lambda path: Full())
    async with FileLog(file_log) as log:
        with pytest.raises(OSError, match=r"it needs about .* MiB free beside it, and the file"):
            await log.save_snapshot(log.load_state())
    assert file_log.read_bytes() == before


def _contents(path: Path) -> Any:
    if path.suffix == ".jsonl":
        return path.read_bytes()
    with sqlite3.connect(path) as connection:
        rows = connection.execute("SELECT * FROM chronolog_records ORDER BY seq").fetchall()
        meta = connection.execute("SELECT * FROM chronolog_meta ORDER BY key").fetchall()
    connection.close()
    return rows, meta


def _version(path: Path) -> int:
    if path.suffix == ".jsonl":
        header = json.loads(path.read_bytes().split(b"\n", 1)[0])
        return int(header["version"])
    with sqlite3.connect(path) as connection:
        (version,) = connection.execute(
            "SELECT value FROM chronolog_meta WHERE key = 'version'"
        ).fetchone()
    return int(version)
