"""Torn writes: a log cut at every byte of its last records, as a crash leaves it.

The log under test is a real one: a scheduler on simulated time ran three
tasks with retries, was killed with runs in flight, restarted (recording
the interrupted runs in one batch) and paused tasks (one batch each), so
its tail holds several multi-record batches.

`FileLog`: for every byte offset inside the last batches, opening repairs
the tail with a `LogRepaired` warning (the torn bytes kept beside the log),
keeps every whole batch before the cut, shows no record of the torn batch,
and appends again. Readers that do not open the log see the same prefix.

`SQLiteLog`: the same records, one transaction per batch. Cutting or
damaging the write-ahead log (WAL) anywhere, or cutting the database file
after a checkpoint, gives the committed prefix or `LogCorrupted` -- never
other records, never a record that was not committed, never another
exception.
"""

# The tests prepare and inspect small files with plain blocking calls.
# ruff: noqa: ASYNC240

from __future__ import annotations

import os
import shutil
import sqlite3
import warnings
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import msgspec
import pytest
import trio

from chronolog import (
    Every,
    Failed,
    FileLog,
    LogCorrupted,
    LogRepaired,
    Retry,
    SQLiteLog,
    check_invariants,
    open_scheduler,
)
from chronolog._events import encode_header
from chronolog.testing import SimulatedClock

if TYPE_CHECKING:
    from pathlib import Path

    from chronolog import Event, Scheduler

START = datetime(2026, 3, 27, 12, 0, tzinfo=UTC)
HEADER = encode_header(checksums=True)
#: What a record's line holds besides its JSON: the checksum field (and the
#: newline) that take the place of its closing brace.
CHECKSUM_TAIL = len(',"crc":"01234567"}\n') - 1
#: After a cut that is not at a batch boundary, check appending at every
#: this many bytes.
APPEND_EVERY = 8


async def work() -> str:
    await trio.sleep(90)  # simulated: runs are in flight when the process dies
    return "done"


async def declare(sched: Scheduler) -> None:
    for name in ("alpha", "beta", "gamma"):
        await sched.add(name, Every(timedelta(minutes=5)), work, retry=Retry(max_attempts=3))


@pytest.fixture(scope="module")
def scheduler_log(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, list[list[Event]]]:
    """A FileLog written by a scheduler, as bytes, and its records batch by batch."""
    path = tmp_path_factory.mktemp("torn") / "jobs.jsonl"
    sim = SimulatedClock(START)

    async def main() -> None:
        async with open_scheduler(path, clock=sim) as sched:
            await declare(sched)
            await sim.advance(timedelta(minutes=16))  # runs at :05, :10 (and :15 in flight)
            at_kill = path.read_bytes()  # what kill -9 would leave
        path.write_bytes(at_kill)  # the graceful shutdown above never happened
        async with open_scheduler(path, clock=sim) as sched:
            await declare(sched)  # recovery: the three interrupted runs in one batch
            # TaskDefined + its first Scheduled, one batch each:
            await sched.add("delta", Every(timedelta(minutes=5)), work)
            await sched.add("epsilon", Every(timedelta(minutes=5)), work)

    trio.run(main, clock=sim.trio_clock)
    data = path.read_bytes()
    # Split by the file's framing: a line that starts with a space goes on.
    batches: list[list[Event]] = []
    current: list[Event] = []
    records = iter(FileLog(path).read())
    for line in data.splitlines()[1:]:
        current.append(next(records))
        if not line.startswith(b" "):
            batches.append(current)
            current = []
    assert check_invariants(record for batch in batches for record in batch) == []
    return data, batches


def batch_ends(batches: list[list[Event]]) -> list[tuple[int, int]]:
    """(byte offset where a batch ends, records up to it), from the header on."""
    ends = [(len(HEADER), 0)]
    for batch in batches:
        offset, count = ends[-1]
        size = sum(len(msgspec.json.encode(record)) + CHECKSUM_TAIL for record in batch)
        size += len(batch) - 1  # the leading spaces of the framing
        ends.append((offset + size, count + len(batch)))
    return ends


def test_the_log_ends_with_multi_record_batches(
    scheduler_log: tuple[bytes, list[list[Event]]],
) -> None:
    data, batches = scheduler_log
    assert batch_ends(batches)[-1][0] == len(data)  # the framing is understood
    recovery, add_delta, add_epsilon = batches[-3:]
    assert [type(r) for r in recovery] == [Failed, Failed, Failed]
    assert {r.error for r in recovery if isinstance(r, Failed)} == {"interrupted"}
    assert len(add_delta) == len(add_epsilon) == 2


@pytest.fixture
def no_fsync(monkeypatch: pytest.MonkeyPatch) -> None:
    """What is checked here is the file's content after a repair, not its
    durability: without fsync, a thousand repairs take seconds, not minutes."""
    monkeypatch.setattr(os, "fsync", lambda fd: None)


async def test_a_file_log_cut_at_every_byte_of_its_last_batches(
    tmp_path: Path, scheduler_log: tuple[bytes, list[list[Event]]], no_fsync: None
) -> None:
    data, batches = scheduler_log
    records = [record for batch in batches for record in batch]
    ends = batch_ends(batches)
    path = tmp_path / "jobs.jsonl"
    first_cut = ends[-4][0]  # from the end of the last batch before the recovery
    for cut in range(first_cut, len(data) + 1):
        boundary, kept = max(end for end in ends if end[0] <= cut)
        for leftover in tmp_path.iterdir():
            leftover.unlink()
        path.write_bytes(data[:cut])
        # A reader that does not open the log sees whole batches only.
        assert list(FileLog(path).read()) == records[:kept]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            log = await FileLog(path).open()
        appended: list[Event] = []
        async with log:
            assert list(log.read()) == records[:kept], f"cut at byte {cut}"
            assert log.last_seq == records[kept - 1].seq
            # Appending after a repair: at every boundary, and every few bytes
            # (each append is a trip to a worker thread).
            if cut == boundary or cut % APPEND_EVERY == 0:
                appended = await log.append([msgspec.structs.replace(records[-1], seq=0)])
                assert appended[0].seq == records[kept - 1].seq + 1
        torn = sorted(tmp_path.glob("jobs.jsonl.torn-*"))
        if cut == boundary:
            assert caught == [], f"cut at byte {cut} is a batch boundary: nothing to repair"
            assert torn == []
        else:
            assert [w.category for w in caught] == [LogRepaired], f"cut at byte {cut}"
            assert f"{cut - boundary} bytes after byte offset {boundary}" in str(caught[0].message)
            assert [p.name for p in torn] == [f"jobs.jsonl.torn-{boundary}"]
            assert torn[0].read_bytes() == data[boundary:cut]
        assert path.read_bytes()[:boundary] == data[:boundary]
        assert list(FileLog(path).read()) == [*records[:kept], *appended]


# -- SQLite ---------------------------------------------------------------------------


def sqlite_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("jobs.sqlite*"))


@pytest.fixture(scope="module")
def crashed_sqlite(
    tmp_path_factory: pytest.TempPathFactory, scheduler_log: tuple[bytes, list[list[Event]]]
) -> tuple[Path, list[list[Event]]]:
    """The scheduler's batches in a SQLiteLog whose writer was killed: the
    database and its WAL as they were, never checkpointed nor closed."""
    _, batches = scheduler_log
    live = tmp_path_factory.mktemp("live") / "jobs.sqlite"
    crashed = tmp_path_factory.mktemp("crashed")

    async def main() -> None:
        async with SQLiteLog(live) as log:
            for batch in batches:
                await log.append([msgspec.structs.replace(r, seq=0) for r in batch])
            for name in ("jobs.sqlite", "jobs.sqlite-wal"):
                shutil.copyfile(live.with_name(name), crashed / name)

    trio.run(main)
    return crashed / "jobs.sqlite", batches


def read_or_corrupted(path: Path) -> tuple[list[Event], LogCorrupted | None]:
    """What a reader gets: the records, and the `LogCorrupted` that ended them."""
    records: list[Event] = []
    try:
        records.extend(SQLiteLog(path).read())
    except LogCorrupted as error:
        return records, error
    return records, None


def wal_offsets(size: int, page_size: int) -> list[int]:
    """Offsets to cut a WAL at: every byte of its header and of each frame
    header, around each frame's end, and through each page every 512 bytes.

    SQLite checks a frame as a whole (its checksum covers header and page),
    so these are the places where a cut can change the outcome.
    """
    frame = 24 + page_size
    offsets = set(range(0, 33))
    frames = (size - 32) // frame
    for index in range(frames + 1):
        start = 32 + index * frame
        offsets.update(range(start - 1, start + 26))
        offsets.update(range(start + 24, start + frame, 512))
    return sorted(offset for offset in offsets if 0 <= offset <= size)


async def test_a_sqlite_wal_cut_anywhere_keeps_the_committed_prefix(
    tmp_path: Path, crashed_sqlite: tuple[Path, list[list[Event]]]
) -> None:
    crashed, batches = crashed_sqlite
    records = [record for batch in batches for record in batch]
    prefixes = {0, *(end for _, end in batch_ends(batches))}
    database = crashed.read_bytes()
    wal = crashed.with_name("jobs.sqlite-wal").read_bytes()
    assert len(wal) > 32  # every record is still in the WAL
    page_size = int.from_bytes(wal[8:12], "big")
    path = tmp_path / "jobs.sqlite"
    seen: set[int] = set()
    for cut in wal_offsets(len(wal), page_size):
        for leftover in sqlite_files(tmp_path):
            leftover.unlink()
        path.write_bytes(database)
        path.with_name("jobs.sqlite-wal").write_bytes(wal[:cut])
        read, error = read_or_corrupted(path)
        assert error is None, f"WAL cut at byte {cut}: {error}"
        assert read == records[: len(read)], f"WAL cut at byte {cut}"
        assert len(read) in prefixes, f"WAL cut at byte {cut} split a transaction"
        if len(read) not in seen:  # a writer goes on from each prefix
            seen.add(len(read))
            async with SQLiteLog(path) as log:
                assert log.last_seq == len(read)
                more = await log.append([msgspec.structs.replace(records[0], seq=0)])
                assert more[0].seq == len(read) + 1
            assert list(SQLiteLog(path).read()) == [*records[: len(read)], *more]
    assert len(read) == len(records)  # the whole WAL gives back every record
    assert len(seen) > len(batches) // 2  # the cuts ended at many batch boundaries


async def test_damage_in_the_sqlite_wal_tail_keeps_the_committed_prefix(
    tmp_path: Path, crashed_sqlite: tuple[Path, list[list[Event]]]
) -> None:
    """Garbage over the last frames (a write the crash left half done) fails
    their checksums: SQLite stops the WAL before them."""
    crashed, batches = crashed_sqlite
    records = [record for batch in batches for record in batch]
    prefixes = {0, *(end for _, end in batch_ends(batches))}
    database = crashed.read_bytes()
    wal = crashed.with_name("jobs.sqlite-wal").read_bytes()
    page_size = int.from_bytes(wal[8:12], "big")
    frame = 24 + page_size
    path = tmp_path / "jobs.sqlite"
    for back in range(1, 4):
        start = len(wal) - back * frame
        for offset in (0, 8, 16, 24, 100, frame - 1):  # header fields, checksums, page body
            damaged = bytearray(wal)
            damaged[start + offset] ^= 0xFF
            for leftover in sqlite_files(tmp_path):
                leftover.unlink()
            path.write_bytes(database)
            path.with_name("jobs.sqlite-wal").write_bytes(bytes(damaged))
            read, error = read_or_corrupted(path)
            where = f"frame -{back}, byte {offset}"
            assert error is None, f"{where}: {error}"
            assert read == records[: len(read)], where
            assert len(read) in prefixes, where
            assert len(read) < len(records), f"{where}: a damaged commit was read"


async def test_a_sqlite_database_cut_after_a_checkpoint_is_reported(
    tmp_path: Path, crashed_sqlite: tuple[Path, list[list[Event]]]
) -> None:
    """Once checkpointed, every record lives in the database file: cutting its
    tail loses committed records, and the reader must say so."""
    crashed, batches = crashed_sqlite
    records = [record for batch in batches for record in batch]
    checkpointed = tmp_path / "checkpointed.sqlite"
    for name in ("jobs.sqlite", "jobs.sqlite-wal"):
        shutil.copyfile(
            crashed.with_name(name), checkpointed.with_name(name.replace("jobs", "checkpointed"))
        )
    with sqlite3.connect(checkpointed) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()
    database = checkpointed.read_bytes()
    page_size = int.from_bytes(database[16:18], "big")
    assert list(SQLiteLog(checkpointed).read()) == records
    path = tmp_path / "jobs.sqlite"
    outcomes = {"corrupted": 0, "whole": 0}
    pages = len(database) // page_size
    for page in range(1, pages):
        for cut in (page * page_size, page * page_size + page_size // 2):
            for leftover in sqlite_files(tmp_path):
                leftover.unlink()
            path.write_bytes(database[:cut])
            try:
                read, error = read_or_corrupted(path)
            except OSError as exc:  # SQLite may call a cut file an I/O error
                pytest.fail(f"database cut at byte {cut}: {exc!r}")
            assert read == records[: len(read)], f"database cut at byte {cut}"
            if error is None:
                assert read == records, f"database cut at byte {cut} lost records silently"
                outcomes["whole"] += 1
            else:
                assert str(path) in str(error)
                outcomes["corrupted"] += 1
    assert outcomes["corrupted"] > 0
