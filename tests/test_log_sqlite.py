"""SQLiteLog: the shared contract, plus the database layout, lock, claims and damage."""

# The tests prepare and inspect small databases with plain blocking calls:
# blocking the test's own event loop for a moment is harmless, and it keeps
# them readable.
# ruff: noqa: ASYNC240

from __future__ import annotations

import errno
import os
import sqlite3
import subprocess
import sys
import textwrap
from contextlib import closing, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import pytest
import trio
import trio.testing

from chronolog import (
    ClaimConflict,
    Every,
    FileLog,
    LogClosed,
    LogCorrupted,
    LogLocked,
    Outcome,
    Retry,
    SQLiteLog,
    Started,
    check_invariants,
    open_scheduler,
    replay,
)
from chronolog._events import Event, Scheduled, encode_event, encode_header, encode_lines
from chronolog.log import _sqlite_connection as connection_module
from chronolog.testing import SimulatedClock

from .log_contract import (
    MakeLog,
    PersistentEventLogContract,
    collect,
    one_of_each_event,
    sample_events,
    unappended,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


class TestSQLiteLog(PersistentEventLogContract):
    @pytest.fixture
    def make_log(self, tmp_path: Path) -> MakeLog:
        return lambda: SQLiteLog(
            tmp_path / "jobs.sqlite", poll_interval=timedelta(milliseconds=10)
        )


class TestSQLiteLogSynchronousNormal(PersistentEventLogContract):
    @pytest.fixture
    def make_log(self, tmp_path: Path) -> MakeLog:
        return lambda: SQLiteLog(tmp_path / "jobs.sqlite", synchronous="normal")


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "jobs.sqlite"


@pytest.fixture
def store_format_version(path: Path) -> Callable[[int], None]:
    """For the contract's version checks: write another version into chronolog_meta."""

    def store(version: int) -> None:
        with connect(path) as connection:
            connection.execute(
                "UPDATE chronolog_meta SET value = ? WHERE key = 'version'", (version,)
            )

    return store


async def write_log(path: Path, *batches: int) -> list[Event]:
    """A log at ``path`` holding batches of fresh events of the given sizes."""
    records: list[Event] = []
    async with SQLiteLog(path) as log:
        for size in batches:
            records += await log.append(sample_events(size))
    return records


@contextmanager
def connect(path: Path) -> Iterator[sqlite3.Connection]:
    """A plain sqlite3 connection, as another program would open the log."""
    with closing(sqlite3.connect(path, isolation_level=None)) as connection:
        yield connection


T0 = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)


def started(occurrence: str = "backup@x", attempt: int = 1) -> Started:
    return Started(task="backup", at=T0, occurrence=occurrence, attempt=attempt)


def scheduled(occurrence: str = "backup@x") -> Scheduled:
    return Scheduled(task="backup", at=T0, occurrence=occurrence, due=T0)


# -- the database ------------------------------------------------------------------


async def test_each_record_is_one_row_of_the_same_json_as_a_file_log_line(
    path: Path, tmp_path: Path
) -> None:
    records = await write_log(path, 3, 1)
    with connect(path) as connection:
        rows = connection.execute("SELECT seq, record FROM chronolog_records ORDER BY seq")
        assert [(seq, text.encode()) for seq, text in rows] == [
            (record.seq, encode_event(record)) for record in records
        ]
    file_log = FileLog(tmp_path / "same.jsonl")
    async with file_log:
        await file_log.append(unappended(records[:3]))
        await file_log.append(unappended(records[3:]))
    assert list(file_log.read()) == records


async def test_the_database_names_its_format_and_uses_wal(path: Path) -> None:
    async with SQLiteLog(path):
        pass
    with connect(path) as connection:
        meta = dict(connection.execute("SELECT key, value FROM chronolog_meta"))
        assert meta == {"format": "chronolog", "version": 3, "schema": 2}
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)


async def test_the_log_is_private_to_its_owner(path: Path) -> None:
    async with SQLiteLog(path) as log:
        await log.append(sample_events(1))
        assert path.stat().st_mode & 0o077 == 0
        wal = path.with_name(path.name + "-wal")
        assert wal.stat().st_mode & 0o077 == 0


@pytest.mark.parametrize(("synchronous", "level"), [("full", 2), ("normal", 1)])
async def test_the_durability_setting_reaches_sqlite(
    path: Path, synchronous: Any, level: int
) -> None:
    async with SQLiteLog(path, synchronous=synchronous) as log:
        assert log.synchronous == synchronous
        assert log._connection is not None
        assert log._connection.execute("PRAGMA synchronous").fetchone() == (level,)


@pytest.mark.parametrize(("synchronous", "flushes"), [("full", 0), ("normal", 1)])
async def test_closing_flushes_what_normal_left_in_the_cache(
    path: Path, monkeypatch: pytest.MonkeyPatch, synchronous: Any, flushes: int
) -> None:
    """SQLite's own fsyncs do not go through ``os.fsync``: these are the log's."""
    calls: list[int] = []
    real_fsync = os.fsync
    log = await SQLiteLog(path, synchronous=synchronous).open()
    await log.append(sample_events(2))
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(fd), real_fsync(fd))[1])
    await log.aclose()
    assert len(calls) == flushes


def test_the_options_are_checked(path: Path) -> None:
    with pytest.raises(ValueError, match=r"synchronous must be 'full' .* got 'off'"):
        SQLiteLog(path, synchronous="off")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="poll_interval must be a positive duration"):
        SQLiteLog(path, poll_interval=timedelta(0))


async def test_appending_before_opening_is_an_error(path: Path) -> None:
    with pytest.raises(LogClosed, match="not open for writing"):
        await SQLiteLog(path).append(sample_events(1))


async def test_opening_twice_is_an_error(path: Path) -> None:
    async with SQLiteLog(path) as log:
        with pytest.raises(RuntimeError, match="already open"):
            await log.open()
        async with log:  # entering an open log keeps it open
            assert log.is_open
    assert not log.is_open
    with pytest.raises(LogClosed, match="create a new SQLiteLog"):
        await log.open()


async def test_last_seq_without_opening(path: Path) -> None:
    records = await write_log(path, 4)
    assert SQLiteLog(path).last_seq == records[-1].seq


@pytest.mark.parametrize("prepare", ["empty file", "database without tables"])
async def test_an_empty_database_becomes_a_log(path: Path, prepare: str) -> None:
    if prepare == "empty file":
        path.write_bytes(b"")
    else:
        with connect(path) as connection:
            connection.execute("PRAGMA user_version = 7")  # a valid database, no tables
    assert SQLiteLog(path).last_seq == 0
    assert list(SQLiteLog(path).read()) == []
    records = await write_log(path, 2)
    assert list(SQLiteLog(path).read()) == records


# -- claims ------------------------------------------------------------------------


async def test_a_claim_taken_through_another_connection_is_refused(path: Path) -> None:
    async with SQLiteLog(path) as log:
        first = await log.append([scheduled(), started()])
    async with SQLiteLog(path) as log:  # a new connection, as after a restart
        with pytest.raises(ClaimConflict) as caught:
            await log.append([scheduled("backup@y"), started()])
        message = str(caught.value)
        assert "attempt 1 of occurrence 'backup@x' of task 'backup' is already claimed" in message
        assert f"the Started at seq {first[1].seq} holds it" in message
        assert "Nothing of this batch of 2 events was written; do not run it" in message
        assert isinstance(caught.value.__cause__, sqlite3.IntegrityError)
        # The whole batch was rolled back, and the log goes on.
        assert log.last_seq == first[-1].seq
        assert list(log.read()) == first
        retry = await log.append([started(attempt=2)])
        assert retry[0].seq == first[-1].seq + 1
    assert list(SQLiteLog(path).read()) == first + retry


async def test_a_batch_that_claims_twice_is_refused(path: Path) -> None:
    async with SQLiteLog(path) as log:
        with pytest.raises(ClaimConflict, match=r"this batch claims it twice \(seqs 2 and 3\)"):
            await log.append([scheduled(), started(), started()])
        assert list(log.read()) == []


async def test_the_database_itself_enforces_claims(path: Path) -> None:
    """Any program that writes the table meets the unique key, not only SQLiteLog."""
    records = await write_log(path, 2)  # seq 2 is a Started
    claim = records[1]
    assert isinstance(claim, Started)
    with connect(path) as connection, pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
        connection.execute(
            "INSERT INTO chronolog_records (seq, record, claim_occurrence, claim_attempt) "
            "VALUES (99, '{}', ?, ?)",
            (claim.occurrence, claim.attempt),
        )


async def test_a_seq_taken_by_a_writer_without_the_lock_is_refused(path: Path) -> None:
    async with SQLiteLog(path) as log:
        records = await log.append(sample_events(1))
        with connect(path) as intruder:
            intruder.execute(
                "INSERT INTO chronolog_records (seq, record) VALUES (2, ?)",
                (encode_event(msgspec.structs.replace(scheduled(), seq=2)).decode(),),
            )
        with pytest.raises(LogLocked, match=r"seq 2 of .*jobs.sqlite is already taken: another"):
            await log.append(sample_events(2))
        assert log.last_seq == records[-1].seq


# -- not a chronolog log -------------------------------------------------------------


def make_foreign_database(path: Path) -> None:
    with connect(path) as connection:
        connection.execute("CREATE TABLE users (name TEXT)")


def make_foreign_meta(path: Path) -> None:
    with connect(path) as connection:
        connection.execute("CREATE TABLE chronolog_meta (key TEXT PRIMARY KEY, value)")
        connection.execute("INSERT INTO chronolog_meta VALUES ('format', 'other')")


@pytest.mark.parametrize(
    ("prepare", "message"),
    [
        (lambda path: path.write_bytes(b"hello\n" * 1000), "not an SQLite database"),
        (
            lambda path: path.write_bytes(encode_header() + encode_lines(sample_events(2))),
            r"is a chronolog JSON Lines log, not an SQLite one: open it with FileLog",
        ),
        (make_foreign_database, r"an SQLite database but not a chronolog log \(its tables: use"),
        (make_foreign_meta, "its chronolog_meta table holds {'format': 'other'}"),
    ],
)
async def test_a_file_that_is_not_a_log_is_refused_and_left_alone(
    path: Path, prepare: Any, message: str
) -> None:
    prepare(path)
    before = path.read_bytes()
    with pytest.raises(LogCorrupted, match=message):
        await SQLiteLog(path).open()
    with pytest.raises(LogCorrupted, match=message):
        list(SQLiteLog(path).read())
    assert path.read_bytes() == before
    assert not path.with_name(path.name + "-wal").exists()
    # ... and the failed open released the lock.
    assert not SQLiteLog(path).lock_path.read_bytes()


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        (
            "version",
            4,
            "written by format version 4; this chronolog reads versions 1 to 3 -- upgrade",
        ),
        ("schema", 3, "uses SQLite log schema 3; this chronolog knows schema 2 -- upgrade"),
    ],
)
async def test_a_newer_version_asks_for_an_upgrade(
    path: Path, key: str, value: int, message: str
) -> None:
    records = await write_log(path, 2)
    with connect(path) as connection:
        connection.execute("UPDATE chronolog_meta SET value = ? WHERE key = ?", (value, key))
    with pytest.raises(LogCorrupted, match=message):
        await SQLiteLog(path).open()
    with pytest.raises(LogCorrupted, match=message):
        list(SQLiteLog(path).read())
    with connect(path) as connection:  # never written to
        assert connection.execute("SELECT count(*) FROM chronolog_records").fetchone() == (
            len(records),
        )


# -- damage --------------------------------------------------------------------------


async def test_a_damaged_record_is_named_after_the_records_before_it(path: Path) -> None:
    records = await write_log(path, 5)
    with connect(path) as connection:
        connection.execute("UPDATE chronolog_records SET record = '{\"type\":' WHERE seq = 4")
    reader = SQLiteLog(path).read()
    assert [next(reader) for _ in range(3)] == records[:3]
    with pytest.raises(LogCorrupted, match="the record with seq 4 is not a valid record") as e:
        next(reader)
    assert isinstance(e.value.__cause__, msgspec.DecodeError)
    assert "records before it are intact" in str(e.value)


async def test_a_row_whose_record_has_another_seq_is_damage(path: Path) -> None:
    records = await write_log(path, 3)
    with connect(path) as connection:
        moved = encode_event(msgspec.structs.replace(records[0], seq=9)).decode()
        connection.execute("UPDATE chronolog_records SET record = ? WHERE seq = 1", (moved,))
    with pytest.raises(LogCorrupted, match="the record with seq 1 holds a record with seq 9"):
        list(SQLiteLog(path).read())


@pytest.mark.parametrize("missing", [1, 3, 4])
async def test_a_missing_record_is_damage_not_a_shorter_log(path: Path, missing: int) -> None:
    """A damaged database can hide rows from a query without an error: seqs are
    contiguous from 1, so a gap is reported."""
    records = await write_log(path, 5)
    with connect(path) as connection:
        connection.execute("DELETE FROM chronolog_records WHERE seq = ?", (missing,))
    reader = SQLiteLog(path).read()
    if missing > 1:
        assert [next(reader) for _ in range(missing - 1)] == records[: missing - 1]
    with pytest.raises(LogCorrupted, match=f"the record with seq {missing} is missing"):
        next(reader)


def damage_page(path: Path, page: int, offset: int, data: bytes) -> None:
    """Overwrite bytes of one database page (4 KiB, numbered from 0 here)."""
    content = bytearray(path.read_bytes())
    start = page * 4096 + offset
    content[start : start + len(data)] = data
    path.write_bytes(bytes(content))


async def test_garbage_that_hides_rows_is_found(path: Path) -> None:
    """Garbage in a page of records makes SQLite's range scan stop early without
    any error; the gap in the seqs gives it away."""
    records = await write_log(path, 200)
    damage_page(path, 5, 100, b"\xab" * 200)
    yielded: list[Event] = []
    with pytest.raises(LogCorrupted, match=r"the record with seq \d+ is missing \(the last"):
        yielded.extend(SQLiteLog(path).read())  # keeps what came before the error
    assert yielded == records[: len(yielded)]
    assert 0 < len(yielded) < len(records)


async def test_damage_sqlite_detects_is_named(path: Path) -> None:
    await write_log(path, 200)
    damage_page(path, 6, 0, b"\x07")  # not a page type
    with pytest.raises(LogCorrupted, match=r"jobs.sqlite is damaged \(SQLite: database disk") as e:
        list(SQLiteLog(path).read())
    assert isinstance(e.value.__cause__, sqlite3.DatabaseError)


# -- the lock --------------------------------------------------------------------------


async def test_the_lock_file_names_the_writer(path: Path) -> None:
    async with SQLiteLog(path) as log:
        holder = msgspec.json.decode(log.lock_path.read_bytes())
        assert holder["pid"] == os.getpid()
        assert holder["host"]
    assert log.lock_path.read_bytes() == b""


async def test_a_second_writer_in_the_same_process_is_refused(path: Path) -> None:
    async with SQLiteLog(path) as log:
        records = await log.append(sample_events(1))
        with pytest.raises(LogLocked) as caught:
            await SQLiteLog(path).open()
        assert f"jobs.sqlite is locked by process {os.getpid()} on host" in str(caught.value)
        assert "another SQLiteLog is open on the same file" in str(caught.value)
        assert list(log.read()) == records  # the refused writer changed nothing
    async with SQLiteLog(path) as log:  # released on close
        assert log.last_seq == records[-1].seq


HOLDER_SCRIPT = textwrap.dedent(
    """
    import sys, trio
    from chronolog.log import SQLiteLog
    from tests.log_contract import sample_events

    async def main():
        async with SQLiteLog(sys.argv[1]) as log:
            for n in range(int(sys.argv[2])):
                await log.append(sample_events(3, task=f"t{n}"))
            print("ready", flush=True)
            await trio.to_thread.run_sync(sys.stdin.read)

    trio.run(main)
    """
)


@contextmanager
def writer_process(path: Path, batches: int = 0) -> Iterator[subprocess.Popen[str]]:
    """Another Python process that appends ``batches`` batches of 3 events to
    ``path``, then holds the log open for writing until its stdin closes."""
    with subprocess.Popen(
        [sys.executable, "-c", HOLDER_SCRIPT, str(path), str(batches)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parent.parent,
    ) as process:
        try:
            yield process
        finally:
            process.kill()


def wait_ready(process: subprocess.Popen[str]) -> None:
    assert process.stdout is not None
    assert process.stdout.readline() == "ready\n"


def try_open(path: Path) -> None:
    async def main() -> None:
        async with SQLiteLog(path):
            pass

    trio.run(main)


def test_a_writer_in_another_process_is_named(path: Path) -> None:
    with writer_process(path, batches=1) as holder:
        wait_ready(holder)
        with pytest.raises(LogLocked, match=rf"locked by process {holder.pid} on host .*; stop"):
            try_open(path)
        assert SQLiteLog(path).last_seq == 3  # reading needs no lock
        assert holder.stdin is not None
        holder.stdin.close()
        assert holder.wait(timeout=30) == 0
    try_open(path)


def test_the_lock_dies_with_its_process(path: Path) -> None:
    with writer_process(path, batches=1) as holder:
        wait_ready(holder)
        holder.kill()
        holder.wait(timeout=30)
        try_open(path)  # no stale lock to clean up
    assert SQLiteLog(path).last_seq == 3


def test_a_reader_reads_while_another_process_writes(path: Path) -> None:
    """Every read sees whole batches, in order, while the writer commits."""
    batches = 300
    try_open(path)  # the tables exist before the writer starts
    seen: list[int] = []
    with writer_process(path, batches=batches) as writer:
        while True:
            records = list(SQLiteLog(path).read())
            assert len(records) % 3 == 0
            assert [record.seq for record in records] == list(range(1, len(records) + 1))
            seen.append(len(records))
            if len(records) == 3 * batches:
                break
            assert writer.poll() is None, "the writer process died"
        wait_ready(writer)
    assert seen == sorted(seen)
    assert len(set(seen)) > 1  # it did read while the writer was appending


async def test_follow_sees_another_writer(
    path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    records = await write_log(path, 1)
    reader = SQLiteLog(path, poll_interval=timedelta(seconds=1))
    received: list[Event] = []
    async with trio.open_nursery() as nursery:

        async def follower() -> None:
            received.extend(await collect(reader, 3))

        nursery.start_soon(follower)
        await trio.testing.wait_all_tasks_blocked()
        assert received == []
        async with SQLiteLog(path) as writer:
            records += await writer.append(sample_events(2))
        start = trio.current_time()
    assert received == records
    assert trio.current_time() - start <= 1  # seen at the next poll


async def test_follow_waits_for_a_log_that_is_being_created(
    path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    path.write_bytes(b"")  # a writer has created the file, not yet its tables
    received: list[Event] = []
    async with trio.open_nursery() as nursery:

        async def follower() -> None:
            received.extend(await collect(SQLiteLog(path), 2))

        nursery.start_soon(follower)
        await trio.testing.wait_all_tasks_blocked()
        records = await write_log(path, 2)
    assert received == records


async def test_closing_a_reader_ends_its_followers(
    path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    records = await write_log(path, 2)
    reader = SQLiteLog(path)
    received: list[Event] = []
    async with trio.open_nursery() as nursery:

        async def follower() -> None:
            received.extend(await collect(reader, 10))

        nursery.start_soon(follower)
        await trio.testing.wait_all_tasks_blocked()
        await reader.aclose()
    assert received == records


async def test_a_long_log_is_read_and_followed_page_by_page(path: Path) -> None:
    records = await write_log(path, 2500, 1, 700)
    assert list(SQLiteLog(path).read()) == records
    assert list(SQLiteLog(path).read(after_seq=1500)) == records[1500:]
    assert await collect(SQLiteLog(path), len(records)) == records


# -- environment errors -----------------------------------------------------------------


async def test_a_missing_directory_is_named(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "jobs.sqlite"
    with pytest.raises(FileNotFoundError, match=r"directory .*nowhere does not exist; create"):
        await SQLiteLog(path).open()


def test_reading_a_missing_log_is_a_clear_error(path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"log .*jobs.sqlite does not exist") as caught:
        list(SQLiteLog(path).read())
    assert isinstance(caught.value.__cause__, FileNotFoundError)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        SQLiteLog(path).last_seq  # noqa: B018
    assert not path.exists()  # reading never creates the log


async def test_a_directory_is_not_a_log(tmp_path: Path) -> None:
    with pytest.raises(IsADirectoryError, match="it is a directory"):
        list(SQLiteLog(tmp_path).read())
    (tmp_path / "dir.sqlite").mkdir()
    with pytest.raises(IsADirectoryError, match=r"cannot open log .*dir.sqlite for writing"):
        await SQLiteLog(tmp_path / "dir.sqlite").open()


def deny(monkeypatch: pytest.MonkeyPatch, denied: Path) -> None:
    """Make ``os.open`` and ``os.access`` of ``denied`` fail as for a file without
    permission. (Readers ask ``os.access``: they must not open and close a
    database file, see ``_check_readable``.)"""
    real_open, real_access = os.open, os.access

    def open_(file: str | os.PathLike[str], flags: int, *args: int, **kwargs: int) -> int:
        if Path(file) == denied:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(file))
        return real_open(file, flags, *args, **kwargs)

    def access(file: str | os.PathLike[str], mode: int, **kwargs: bool) -> bool:
        return Path(file) != denied and real_access(file, mode, **kwargs)

    monkeypatch.setattr(os, "open", open_)
    monkeypatch.setattr(os, "access", access)


async def test_an_unreadable_log_is_a_clear_error(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await write_log(path, 1)
    deny(monkeypatch, path)
    with pytest.raises(PermissionError, match=r"cannot read log .*jobs.sqlite: Permission denied"):
        list(SQLiteLog(path).read())
    with pytest.raises(PermissionError, match=r"cannot open log .*jobs.sqlite for writing"):
        await SQLiteLog(path).open()
    monkeypatch.undo()
    async with SQLiteLog(path) as log:  # the failed open released the lock
        assert log.last_seq == 1


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
async def test_a_log_without_permissions(path: Path) -> None:
    await write_log(path, 1)
    path.chmod(0)
    with pytest.raises(PermissionError, match="cannot read log"):
        list(SQLiteLog(path).read())
    with pytest.raises(PermissionError, match="cannot open log"):
        await SQLiteLog(path).open()


async def test_a_full_disk_keeps_nothing_of_the_batch(path: Path) -> None:
    async with SQLiteLog(path) as log:
        records = await log.append(sample_events(2))
        assert log._connection is not None
        # SQLite reports a database that reached its page limit as a full disk.
        pages = log._connection.execute("PRAGMA page_count").fetchone()[0]
        log._connection.execute(f"PRAGMA max_page_count = {pages}")
        with pytest.raises(OSError, match=r"could not append to log .*nothing of this") as e:
            await log.append(sample_events(300))
        assert e.value.errno == errno.ENOSPC
        assert isinstance(e.value.__cause__, sqlite3.OperationalError)
        assert list(log.read()) == records
        log._connection.execute("PRAGMA max_page_count = 1073741823")
        more = await log.append(one_of_each_event())  # the log is still usable
    assert list(SQLiteLog(path).read()) == records + more


async def test_a_read_only_database_is_a_permission_error(path: Path) -> None:
    async with SQLiteLog(path) as log:
        assert log._connection is not None
        log._connection.execute("PRAGMA query_only = 1")  # as if the file were read-only
        with pytest.raises(PermissionError, match=r"readonly database; nothing of this batch"):
            await log.append(sample_events(1))


async def test_a_database_kept_locked_by_another_program(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(connection_module, "_BUSY_TIMEOUT_MS", 1)
    async with SQLiteLog(path) as log:
        with connect(path) as other:
            other.execute("BEGIN IMMEDIATE")  # holds SQLite's write lock
            with pytest.raises(LogLocked, match=r"another connection kept the database locked"):
                await log.append(sample_events(1))
            other.execute("ROLLBACK")
        assert (await log.append(sample_events(1)))[0].seq == 1


# -- the scheduler on a SQLiteLog -------------------------------------------------------------

START = datetime(2026, 3, 27, 12, 0, tzinfo=UTC)


class Flaky:
    """Fails every third call, so retries happen too."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self) -> int:
        self.calls += 1
        if self.calls % 3 == 0:
            raise RuntimeError(f"call {self.calls} fails")
        return self.calls


async def test_a_scheduler_runs_and_restarts_on_a_sqlite_log(
    path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    sim = SimulatedClock(START, mock_clock=autojump_clock)
    target = Flaky()

    async def declare(sched: Any) -> None:
        await sched.add("tick", Every(timedelta(minutes=30)), target, retry=Retry(max_attempts=2))

    async with open_scheduler(path, clock=sim) as sched:
        assert isinstance(sched.log, SQLiteLog)
        await declare(sched)
        await sim.advance(timedelta(hours=3))
        assert replay(sched.log.read()) == sched.state
    assert sched.log.closed
    first_runs = target.calls
    async with open_scheduler(SQLiteLog(path), clock=sim) as sched:
        await declare(sched)
        await sim.advance(timedelta(hours=2))
        assert replay(sched.log.read()) == sched.state
        history = sched.history("tick", limit=None)
    records = list(SQLiteLog(path).read())
    assert check_invariants(records) == []
    assert sum(1 for record in records if isinstance(record, Started)) == target.calls
    assert target.calls > first_runs >= 6
    assert any(run.outcome is Outcome.COMPLETED and run.attempts == 2 for run in history)
    occurrences = [r.occurrence for r in records if isinstance(r, Started) and r.attempt == 1]
    assert len(occurrences) == len(set(occurrences))


@pytest.mark.parametrize("name", ["jobs.sqlite", "jobs.sqlite3", "jobs.db", "JOBS.DB"])
async def test_open_scheduler_picks_sqlite_by_suffix(
    tmp_path: Path, autojump_clock: trio.testing.MockClock, name: str
) -> None:
    sim = SimulatedClock(START, mock_clock=autojump_clock)
    async with open_scheduler(str(tmp_path / name), clock=sim) as sched:
        assert isinstance(sched.log, SQLiteLog)
        assert sched.log.path == tmp_path / name
    assert list(SQLiteLog(tmp_path / name).read()) == []


@pytest.mark.parametrize("name", ["jobs.jsonl", "jobs", "jobs.sqlite.jsonl", "db"])
async def test_other_paths_stay_file_logs(
    tmp_path: Path, autojump_clock: trio.testing.MockClock, name: str
) -> None:
    sim = SimulatedClock(START, mock_clock=autojump_clock)
    async with open_scheduler(tmp_path / name, clock=sim) as sched:
        assert isinstance(sched.log, FileLog)


async def test_the_scheduler_opens_and_closes_only_a_log_it_opened(
    path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    sim = SimulatedClock(START, mock_clock=autojump_clock)
    unopened = SQLiteLog(path)
    async with open_scheduler(unopened, clock=sim):
        assert unopened.is_open
    assert unopened.closed
    async with SQLiteLog(path) as mine:
        async with open_scheduler(mine, clock=sim):
            pass
        assert mine.is_open
        assert not mine.closed
