"""Where FileLog and SQLiteLog keep snapshots, and what they do with bad ones.

The behaviour every backend shares (save, reopen, newest wins, the tail
after) is in the contract suite; here: the snapshot file and table, the
checks that keep a snapshot of another log (or of this log before it was
rewritten) from ever being applied, and damage.
"""

# The tests prepare and inspect small files with plain blocking calls.
# ruff: noqa: ASYNC240

from __future__ import annotations

import errno
import json
import os
import sqlite3
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from chronolog._errors import LogClosed, LogCorrupted, LogRepaired, SnapshotIgnored
from chronolog._events import Completed, Event, Scheduled, Started, TaskDefined, encode_event
from chronolog._projection import replay
from chronolog._triggers import Every
from chronolog.log import FileLog, SQLiteLog
from chronolog.log._checksum import chain_of_rows, running_after

from .log_contract import defined_runs, sample_events

if TYPE_CHECKING:
    from pathlib import Path


T0 = datetime(2026, 1, 1, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "jobs.jsonl"


def settled_runs(count: int) -> list[Event]:
    """A task definition and runs that complete: ``count`` events in all."""
    events: list[Event] = [
        TaskDefined(task="sync", at=T0, trigger=Every(MINUTE, anchor=T0), target="jobs:sync")
    ]
    n = 0
    while len(events) < count:
        n += 1
        due = T0 + n * MINUTE
        occurrence = f"sync@{due.isoformat()}"
        events += [
            Scheduled(task="sync", at=due, occurrence=occurrence, due=due),
            Started(task="sync", at=due, occurrence=occurrence, attempt=1),
            Completed(task="sync", at=due, occurrence=occurrence, attempt=1, result=n),
        ]
    return events[:count]


async def snapshotted_log(path: Path, count: int = 12, at: int = 8) -> list[Event]:
    """A file log of ``count`` records, one batch each, with a snapshot after the ``at``-th."""
    async with FileLog(path) as log:
        records = []
        for event in defined_runs(count):
            records += await log.append([event])
        await log.save_snapshot(replay(records[:at]))
    return records


def snapshot_head(path: Path) -> dict[str, Any]:
    content = FileLog(path).snapshot_path.read_bytes()
    return json.loads(content[: content.index(b"\n")])


# -- the snapshot file ---------------------------------------------------------


async def test_the_snapshot_file_names_its_log_and_record(path: Path) -> None:
    records = await snapshotted_log(path)
    head = snapshot_head(path)
    assert head["format"] == "chronolog-log-snapshot"
    assert head["log"] == "jobs.jsonl"
    assert head["seq"] == records[7].seq
    data = path.read_bytes()
    line = data[head["record_start"] : head["record_end"]]
    assert json.loads(line)["seq"] == records[7].seq
    # The tail starts there (inside the batch: the lines of a batch but its
    # last begin with a space).
    assert data[head["record_end"] :].lstrip(b" ").startswith(b'{"type":')
    assert sorted(p.name for p in path.parent.iterdir()) == [
        "jobs.jsonl",
        "jobs.jsonl.lock",
        "jobs.jsonl.snapshot",
    ]
    assert FileLog(path).snapshot_path.stat().st_mode & 0o777 == 0o600


async def test_opening_with_a_snapshot_reads_only_the_tail(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with FileLog(path, fsync=False) as log:
        records = await log.append(settled_runs(20_000))
        await log.save_snapshot(replay(records[:19_990]))
    size = path.stat().st_size
    read = 0
    real_pread = os.pread

    def counting_pread(fd: int, length: int, offset: int) -> bytes:
        nonlocal read
        data = real_pread(fd, length, offset)
        read += len(data)
        return data

    monkeypatch.setattr(os, "pread", counting_pread)
    assert FileLog(path).load_state() == replay(records)
    assert read < size / 20


async def test_saving_needs_the_log_open_for_writing(path: Path) -> None:
    records = await snapshotted_log(path)
    with pytest.raises(LogClosed, match="not open for writing"):
        await FileLog(path).save_snapshot(replay(records))


async def test_a_failed_save_keeps_the_previous_snapshot(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = await snapshotted_log(path)
    before = FileLog(path).snapshot_path.read_bytes()
    async with FileLog(path) as log:

        def full(fd: int, data: bytes) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(os, "write", full)
        with pytest.raises(OSError, match=r"could not save a snapshot of log .*No space") as info:
            await log.save_snapshot(replay(records))
        assert info.value.errno == errno.ENOSPC
        monkeypatch.undo()
    assert FileLog(path).snapshot_path.read_bytes() == before
    assert not path.with_name("jobs.jsonl.snapshot.tmp").exists()


# -- snapshots that must not be applied ----------------------------------------


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda content: b"garbage\n", "not a chronolog snapshot file"),
        (lambda content: content[:-20], "damaged"),
        (lambda content: content[:-30] + b"X" + content[-29:], "damaged"),
        (
            lambda content: content.replace(b'"version":1', b'"version":7', 1),
            "version 7, not one this chronolog reads",
        ),
        (
            lambda content: content.replace(b'"log":"jobs.jsonl"', b'"log":"other.jsonl"'),
            "saved for log 'other.jsonl'",
        ),
    ],
)
async def test_a_damaged_snapshot_is_ignored_with_a_warning(
    path: Path,
    damage,
    message: str,  # type: ignore[no-untyped-def]
) -> None:
    records = await snapshotted_log(path)
    snapshot = FileLog(path).snapshot_path
    snapshot.write_bytes(damage(snapshot.read_bytes()))
    with pytest.warns(SnapshotIgnored, match=message):
        assert FileLog(path).load_state() == replay(records)


async def test_a_snapshot_of_another_log_is_ignored(tmp_path: Path) -> None:
    first, second = tmp_path / "a" / "jobs.jsonl", tmp_path / "b" / "jobs.jsonl"
    first.parent.mkdir()
    second.parent.mkdir()
    await snapshotted_log(first)
    records = await snapshotted_log(second, count=14)
    FileLog(second).snapshot_path.write_bytes(FileLog(first).snapshot_path.read_bytes())
    with pytest.warns(SnapshotIgnored, match="belongs to another log"):
        assert FileLog(second).load_state() == replay(records)


async def test_a_snapshot_of_the_log_before_it_was_rewritten_is_ignored(path: Path) -> None:
    await snapshotted_log(path)
    snapshot = FileLog(path).snapshot_path.read_bytes()
    path.unlink()
    records = await snapshotted_log(path)  # same name, same sizes, other times
    FileLog(path).snapshot_path.write_bytes(snapshot)
    with pytest.warns(SnapshotIgnored, match="not in the log where it was"):
        assert FileLog(path).load_state() == replay(records)


async def test_a_snapshot_past_the_end_of_a_cut_log_is_ignored(path: Path) -> None:
    records = await snapshotted_log(path, count=12, at=12)
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:-2]))  # e.g. restored from an older backup
    with pytest.warns(SnapshotIgnored, match="past the end of the log"):
        assert FileLog(path).load_state() == replay(records[:-2])


async def test_a_warning_as_error_still_never_gives_a_wrong_state(path: Path) -> None:
    await snapshotted_log(path)
    FileLog(path).snapshot_path.write_bytes(b"garbage\n")
    with pytest.raises(SnapshotIgnored):
        FileLog(path).load_state()


# -- the base of a compacted file log -------------------------------------------


async def compacted_log(path: Path, *, copy_before: Path | None = None) -> list[Event]:
    async with FileLog(path) as log:
        records = await log.append(defined_runs(10))
        if copy_before is not None:
            copy_before.write_bytes(path.read_bytes())
        await log.compact(replay(records[:6]))
    return records


async def test_a_compacted_file_starts_with_a_header_that_names_its_base(path: Path) -> None:
    before = path.with_name("before.jsonl")
    records = await compacted_log(path, copy_before=before)
    lines = path.read_bytes().splitlines(keepends=True)
    header = json.loads(lines[0])
    assert header["format"] == "chronolog"
    assert header["version"] == 3
    assert header["base_seq"] == records[5].seq
    assert header["base_bytes"] == len(lines[1])
    assert json.loads(lines[1])["format"] == "chronolog-snapshot"
    assert [json.loads(line)["seq"] for line in lines[2:]] == [r.seq for r in records[6:]]
    # The records kept are the very lines they were; the header says where
    # their checksum chain goes on from: the running checksum after seq 6.
    old_lines = before.read_bytes().splitlines(keepends=True)
    assert lines[2:] == old_lines[7:]
    assert int(header["chain"], 16) == running_after(old_lines[6])


async def test_a_damaged_base_is_corruption(path: Path) -> None:
    await compacted_log(path)
    lines = path.read_bytes().splitlines(keepends=True)
    digit = lines[1].index(b'"run_count":') + len(b'"run_count":')
    flipped = b"7" if lines[1][digit : digit + 1] != b"7" else b"8"
    lines[1] = lines[1][:digit] + flipped + lines[1][digit + 1 :]  # same length
    path.write_bytes(b"".join(lines))
    with pytest.raises(LogCorrupted, match=r"line 2 .*does not match its checksum"):
        FileLog(path).load_state()


async def test_a_cut_base_is_corruption(path: Path) -> None:
    await compacted_log(path)
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(lines[0] + lines[1][:100])
    with pytest.raises(LogCorrupted, match="line 2 is not the base snapshot that the header"):
        list(FileLog(path).read())
    with pytest.raises(LogCorrupted, match="line 2 is not the base snapshot"):
        await FileLog(path).open()


async def test_damage_after_the_base_is_named_by_its_line(path: Path) -> None:
    await compacted_log(path)
    lines = path.read_bytes().splitlines(keepends=True)
    lines[3] = b"{oops}\n"
    path.write_bytes(b"".join(lines))
    with pytest.raises(LogCorrupted, match="line 4 is not a valid record"):
        list(FileLog(path).read())


async def test_a_torn_tail_after_the_base_is_repaired(path: Path) -> None:
    records = await compacted_log(path)
    with path.open("ab") as file:
        file.write(b'{"type":"Sched')
    log = FileLog(path)
    with pytest.warns(LogRepaired, match="torn batch"):
        await log.open()
    async with log:
        assert log.last_seq == records[-1].seq
        assert log.load_state() == replay(records)


# -- SQLite --------------------------------------------------------------------


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "jobs.sqlite"


def query(db: Path, sql: str, *parameters: object) -> list[Any]:
    connection = sqlite3.connect(db)
    try:
        with connection:
            return connection.execute(sql, parameters).fetchall()
    finally:
        connection.close()


async def test_sqlite_keeps_one_snapshot_row_besides_the_base(db: Path) -> None:
    async with SQLiteLog(db) as log:
        assert query(db, "SELECT name FROM sqlite_master WHERE name = 'chronolog_snapshots'") == []
        records = await log.append(defined_runs(10))
        await log.save_snapshot(replay(records[:3]))
        await log.save_snapshot(replay(records[:5]))
        assert [row[0] for row in query(db, "SELECT seq FROM chronolog_snapshots")] == [5]
        await log.compact(replay(records[:4]))
        assert [row[0] for row in query(db, "SELECT seq FROM chronolog_snapshots")] == [4, 5]
        assert query(db, "SELECT min(seq) FROM chronolog_records") == [(5,)]
        meta = dict(query(db, "SELECT key, value FROM chronolog_meta"))
        (crc,) = query(db, "SELECT crc FROM chronolog_records WHERE seq = 5")[0]
        chain = meta.pop("chain")
        assert meta == {"format": "chronolog", "version": 3, "schema": 2, "base_seq": 4}
        assert chain_of_rows(encode_event(records[4]), chain) == crc
        await log.save_snapshot(replay(records[:8]))
        assert [row[0] for row in query(db, "SELECT seq FROM chronolog_snapshots")] == [4, 8]
    assert SQLiteLog(db).load_state() == replay(records)


async def test_sqlite_ignores_a_snapshot_whose_record_changed(db: Path) -> None:
    """The snapshot is passed over -- and the changed record is damage all the same."""
    async with SQLiteLog(db) as log:
        records = await log.append(defined_runs(6))
        await log.save_snapshot(replay(records[:4]))
    query(
        db,
        "UPDATE chronolog_records SET record = replace(record, '\"n\":2', '\"n\":7') "
        "WHERE seq = 4",
    )
    with (
        pytest.warns(SnapshotIgnored, match="record at seq 4 is not the one it was taken after"),
        pytest.raises(LogCorrupted, match="the record with seq 4 does not match its checksum"),
    ):
        SQLiteLog(db).load_state()


async def test_sqlite_ignores_a_damaged_snapshot(db: Path) -> None:
    async with SQLiteLog(db) as log:
        records = await log.append(defined_runs(6))
        await log.save_snapshot(replay(records[:4]))
    query(db, "UPDATE chronolog_snapshots SET state = x'7b7d'")
    with pytest.warns(SnapshotIgnored, match="at seq 4 .*not a snapshot document"):
        assert SQLiteLog(db).load_state() == replay(records)


async def test_sqlite_without_its_base_is_corruption(db: Path) -> None:
    async with SQLiteLog(db) as log:
        records = await log.append(defined_runs(6))
        await log.compact(replay(records[:4]))
    query(db, "DELETE FROM chronolog_snapshots")
    with pytest.raises(LogCorrupted, match="compacted up to seq 4, but its base snapshot"):
        SQLiteLog(db).load_state()


async def test_a_sqlite_reader_behind_a_compaction_is_told(db: Path) -> None:
    async with SQLiteLog(db) as log:
        records = await log.append(defined_runs(3000))
        reader = SQLiteLog(db).read()
        first = next(reader)  # the reader has read a page (1024 records)
        assert first == records[0]
        await log.compact(replay(records[:2000]))
        seen = [first]
        with pytest.raises(
            LogCorrupted, match=r"compacted while being read: .* read the log again"
        ):
            seen.extend(reader)
        assert len(seen) == 1024  # nothing skipped silently


async def test_compaction_gives_sqlite_space_back(db: Path) -> None:
    async with SQLiteLog(db, synchronous="normal") as log:
        records = await log.append(settled_runs(5000))
        query(db, "PRAGMA wal_checkpoint(TRUNCATE)")
        before = db.stat().st_size
        await log.compact(replay(records[:4990]))
        query(db, "PRAGMA wal_checkpoint(TRUNCATE)")
        assert db.stat().st_size < before / 2
        more = await log.append(sample_events(2, task="sync"))
    assert SQLiteLog(db).load_state() == replay(records + more)
