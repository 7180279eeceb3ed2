"""A full disk and I/O errors under a running scheduler, on simulated time.

Faults are injected where the operating system reports them: ``os.write``
and ``os.fsync`` of a `FileLog`'s file (only that file's descriptor), and
the ``COMMIT`` of a `SQLiteLog` (SQLite reports a full disk or a failed
write there; the connection is wrapped, as its C methods cannot be
patched). Whatever the fault, the promises are the same:

* nothing starts that could not be recorded (the ``Started`` claim is
  written ahead of the run);
* the error is reported: logged, and in every task's ``status().problem``;
* the scheduler does not crash, and recovers once writes work again;
* nothing acknowledged is lost: records written before the fault are all
  still there, the invariants hold, live state == replay(log), and every
  run whose ``Started`` is in the log ends.
"""

from __future__ import annotations

import errno
import logging
import os
import sqlite3
import warnings
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from chronolog import (
    At,
    Completed,
    Every,
    Failed,
    FileLog,
    LogRepaired,
    Retry,
    Scheduled,
    Skipped,
    SkipReason,
    SQLiteLog,
    Started,
    check_invariants,
    open_scheduler,
    replay,
)
from chronolog.testing import SimulatedClock, assert_exactly_once, assert_nothing_lost

from .log_contract import sample_events

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from trio.testing import MockClock

    from chronolog import Event, EventLog, Scheduler

START = datetime(2026, 3, 27, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


@pytest.fixture
def sim(autojump_clock: MockClock) -> SimulatedClock:
    return SimulatedClock(START, mock_clock=autojump_clock)


# -- fault injection -------------------------------------------------------------------


#: A fault disarms itself after this many failures, so that a scheduler that
#: would retry forever ends the test (which then fails) instead of hanging it.
FAILURE_BUDGET = 200


class FileFault:
    """Makes ``os.write`` or ``os.fsync`` of one file fail while armed.

    A failing fsync fails once per batch: the next fsync of the file (the
    one that makes the undo of the failed batch durable) works, as on Linux,
    where a write-back error is reported once.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch, path: Path, where: str, code: int) -> None:
        self.armed = False
        self.failures = 0
        self._path = path
        self._code = code
        real = getattr(os, where)
        just_failed = False

        def faulty(fd: int, *args: Any) -> Any:
            nonlocal just_failed
            if self.armed and self._is_log(fd) and not (where == "fsync" and just_failed):
                self.failures += 1
                self.armed = self.failures < FAILURE_BUDGET
                just_failed = True
                raise OSError(code, os.strerror(code))
            just_failed = False
            return real(fd, *args)

        monkeypatch.setattr(os, where, faulty)

    def _is_log(self, fd: int) -> bool:
        try:
            return os.path.samestat(os.fstat(fd), os.stat(self._path))
        except OSError:
            return False

    def attach(self, log: EventLog) -> None:
        pass


class _FailingCommits:
    """A SQLite connection whose ``COMMIT`` fails, as on a full or broken disk."""

    def __init__(self, connection: sqlite3.Connection, fault: SQLiteFault) -> None:
        self._connection = connection
        self._fault = fault

    def execute(self, sql: str, *args: Any) -> Any:
        if sql == "COMMIT" and self._fault.armed:
            self._fault.failures += 1
            self._fault.armed = self._fault.failures < FAILURE_BUDGET
            raise self._fault.error()
        return self._connection.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)


class SQLiteFault:
    def __init__(self, name: str, message: str) -> None:
        self.armed = False
        self.failures = 0
        self._name = name
        self._message = message

    def error(self) -> sqlite3.OperationalError:
        error = sqlite3.OperationalError(self._message)
        error.sqlite_errorname = self._name
        return error

    def attach(self, log: EventLog) -> None:
        assert isinstance(log, SQLiteLog)
        assert log._connection is not None
        log._connection = _FailingCommits(log._connection, self)  # type: ignore[assignment]


Fault = FileFault | SQLiteFault

# (backend file name, how to make the fault, errno the scheduler reports)
FAULTS: dict[str, tuple[str, Callable[[pytest.MonkeyPatch, Path], Fault], int]] = {
    "file-write-ENOSPC": (
        "jobs.jsonl",
        lambda mp, path: FileFault(mp, path, "write", errno.ENOSPC),
        errno.ENOSPC,
    ),
    "file-write-EIO": (
        "jobs.jsonl",
        lambda mp, path: FileFault(mp, path, "write", errno.EIO),
        errno.EIO,
    ),
    "file-fsync-EIO": (
        "jobs.jsonl",
        lambda mp, path: FileFault(mp, path, "fsync", errno.EIO),
        errno.EIO,
    ),
    "file-fsync-ENOSPC": (
        "jobs.jsonl",
        lambda mp, path: FileFault(mp, path, "fsync", errno.ENOSPC),
        errno.ENOSPC,
    ),
    "sqlite-commit-FULL": (
        "jobs.sqlite",
        lambda mp, path: SQLiteFault("SQLITE_FULL", "database or disk is full"),
        errno.ENOSPC,
    ),
    "sqlite-commit-IOERR": (
        "jobs.sqlite",
        lambda mp, path: SQLiteFault("SQLITE_IOERR_FSYNC", "disk I/O error"),
        errno.EIO,
    ),
}


@pytest.fixture(params=sorted(FAULTS))
def faulty(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Path, Fault, int]:
    name, make, code = FAULTS[request.param]
    path = tmp_path / name
    return path, make(monkeypatch, path), code


def open_log(path: Path) -> EventLog:
    return SQLiteLog(path) if path.suffix == ".sqlite" else FileLog(path)


# -- checks ----------------------------------------------------------------------------


class Work:
    """A target that takes ``takes`` of simulated time and fails its first
    ``fail_first`` calls of each occurrence-to-be (by call count)."""

    def __init__(self, sim: SimulatedClock, *, takes: timedelta, fail_every: int = 0) -> None:
        self.sim = sim
        self.takes = takes
        self.fail_every = fail_every
        self.starts: list[datetime] = []

    async def __call__(self) -> int:
        self.starts.append(self.sim.now())
        await self.sim.sleep_until(self.sim.now() + self.takes)
        if self.fail_every and len(self.starts) % self.fail_every == 1:
            raise RuntimeError(f"call {len(self.starts)} fails")
        return len(self.starts)


def assert_sound(sched: Scheduler) -> None:
    """Live state == replay(log), and the invariants hold."""
    records = list(sched.log.read())
    assert replay(records) == sched.state
    assert check_invariants(records) == []


def assert_every_run_ended(records: list[Event]) -> None:
    ended = {(r.occurrence, r.attempt) for r in records if isinstance(r, Completed | Failed)}
    started = [(r.occurrence, r.attempt) for r in records if isinstance(r, Started)]
    assert len(started) == len(set(started)), "an attempt was claimed twice"
    assert set(started) <= ended, f"runs that never ended: {set(started) - ended}"


def log_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


# -- the scheduler through a fault -------------------------------------------------------


async def test_nothing_starts_while_the_log_cannot_be_written_and_all_recovers(
    sim: SimulatedClock,
    autojump_clock: MockClock,
    faulty: tuple[Path, Fault, int],
    caplog: pytest.LogCaptureFixture,
) -> None:
    path, fault, code = faulty
    work = Work(sim, takes=timedelta(seconds=20))
    caplog.set_level(logging.WARNING, logger="chronolog")
    async with open_scheduler(path, clock=sim) as sched:
        fault.attach(sched.log)
        await sched.add("tick", Every(MINUTE), work)
        # Runs at 12:01, 12:02, 12:03; the fault comes while the 12:03 one runs.
        await sim.advance(3 * MINUTE + timedelta(seconds=10))
        acknowledged = list(sched.log.read())
        assert len(work.starts) == 3
        fault.armed = True
        await sim.advance(7 * MINUTE)
        outage = sim.now()

        assert fault.failures > 0
        assert len(work.starts) == 3, "a run started that could not be recorded"
        assert list(sched.log.read()) == acknowledged  # nothing half-written either
        assert sched.state == replay(acknowledged)
        problem = sched.status("tick").problem
        assert problem is not None
        assert "the log cannot be written" in problem
        assert os.strerror(code) in problem or str(path) in problem
        assert sched.tasks()[0].problem == problem
        # The 12:03 run keeps its claim while its end cannot be recorded.
        assert sched.status("tick").running == ("tick@2026-03-27T12:03:00Z",)
        messages = log_warnings(caplog)
        assert any("cannot record how tick@2026-03-27T12:03:00Z ended" in m for m in messages)
        assert any("cannot write to the log" in m for m in messages)

        fault.armed = False
        await sim.advance(5 * MINUTE)
        assert sched.status("tick").problem is None
        assert "tick@2026-03-27T12:03:00Z" not in sched.status("tick").running
        assert len(work.starts) > 3, "the scheduler did not recover"
        assert_sound(sched)
    records = list(open_log(path).read())
    assert records[: len(acknowledged)] == acknowledged
    assert_every_run_ended(records)
    assert_exactly_once(records)
    assert_nothing_lost(records, until=sim.now() - MINUTE)
    # The run that ended during the outage is recorded once, once writes worked.
    (ended,) = [r for r in records if isinstance(r, Completed) and r.occurrence.endswith("03:00Z")]
    assert ended.at >= outage
    assert ended.duration == timedelta(seconds=20)
    # Due times the outage swallowed are accounted for: caught up, not lost.
    assert any(isinstance(r, Skipped) and r.reason is SkipReason.MISSED for r in records)
    assert sum(isinstance(r, Started) for r in records) == len(work.starts)


async def test_a_retry_that_cannot_be_claimed_waits_for_the_log(
    sim: SimulatedClock,
    autojump_clock: MockClock,
    faulty: tuple[Path, Fault, int],
) -> None:
    """A failed attempt plans its retry; the fault comes before the retry is
    claimed. The retry starts only once its ``Started`` can be written."""
    path, fault, _ = faulty
    work = Work(sim, takes=timedelta(seconds=5), fail_every=1000)  # only the first call fails
    async with open_scheduler(path, clock=sim) as sched:
        fault.attach(sched.log)
        await sched.add(
            "tick",
            Every(timedelta(hours=1)),
            work,
            retry=Retry(max_attempts=3, backoff=MINUTE),
        )
        await sim.advance(timedelta(hours=1, seconds=30))  # attempt 1 failed at 13:00:05
        assert len(work.starts) == 1
        fault.armed = True
        await sim.advance(5 * MINUTE)
        assert len(work.starts) == 1, "the retry started without its claim"
        fault.armed = False
        await sim.advance(5 * MINUTE)
        assert len(work.starts) == 2
        assert_sound(sched)
    records = list(open_log(path).read())
    assert_every_run_ended(records)
    attempts = [(r.attempt, type(r).__name__) for r in records if isinstance(r, Started | Failed)]
    attempts += [(r.attempt, "Completed") for r in records if isinstance(r, Completed)]
    assert sorted(attempts) == [(1, "Failed"), (1, "Started"), (2, "Completed"), (2, "Started")]


async def test_shutdown_is_not_held_up_by_an_outcome_that_cannot_be_recorded(
    sim: SimulatedClock,
    autojump_clock: MockClock,
    faulty: tuple[Path, Fault, int],
) -> None:
    """Leaving the scheduler during the fault ends within its grace; the run's
    outcome is lost with the process, and the next start records it as
    interrupted and retries it."""
    path, fault, _ = faulty
    work = Work(sim, takes=timedelta(seconds=20))
    grace = timedelta(seconds=30)
    retry = Retry(max_attempts=2, backoff=timedelta(seconds=10))
    async with open_scheduler(path, clock=sim, shutdown_grace=grace) as sched:
        fault.attach(sched.log)
        await sched.add("tick", Every(MINUTE), work, retry=retry)
        await sim.advance(MINUTE + timedelta(seconds=10))
        fault.armed = True
        await sim.advance(timedelta(seconds=20))  # the run ends; its end is not recorded
        stopping = sim.now()
    assert fault.armed, "the shutdown went on until the fault gave up"
    assert sim.now() - stopping <= grace + timedelta(seconds=1)
    fault.armed = False
    records = list(open_log(path).read())
    assert [type(r) for r in records if isinstance(r, Started | Completed | Failed)] == [Started]

    async with open_scheduler(path, clock=sim) as sched:
        await sched.add("tick", Every(MINUTE), work, retry=retry)
        await sim.advance(timedelta(seconds=15))
        assert_sound(sched)
    records = list(open_log(path).read())
    (interrupted,) = [r for r in records if isinstance(r, Failed)]
    assert (interrupted.error, interrupted.attempt) == ("interrupted", 1)
    assert interrupted.retry_at is not None  # per the task's retry policy
    retried = [r for r in records if isinstance(r, Started) and r.attempt == 2]
    assert [r.occurrence for r in retried] == [interrupted.occurrence]
    assert_every_run_ended(records)


async def test_commands_get_the_error_and_change_nothing(
    sim: SimulatedClock,
    autojump_clock: MockClock,
    faulty: tuple[Path, Fault, int],
) -> None:
    path, fault, code = faulty
    work = Work(sim, takes=timedelta(seconds=1))
    async with open_scheduler(path, clock=sim) as sched:
        fault.attach(sched.log)
        await sched.add("tick", Every(timedelta(hours=1)), work)
        before = list(sched.log.read())
        fault.armed = True
        with pytest.raises(OSError, match="could not append to log") as caught:
            await sched.pause("tick", note="maintenance")
        assert caught.value.errno == code
        with pytest.raises(OSError, match="could not append to log"):
            await sched.run_now("tick")
        assert not sched.status("tick").paused
        assert work.starts == []
        assert list(sched.log.read()) == before
        fault.armed = False
        await sched.pause("tick", note="maintenance")
        assert sched.status("tick").paused
        assert sched.status("tick").problem is None
        assert_sound(sched)


# -- what a FileLog holds after an append it could not undo ----------------------------


@pytest.mark.parametrize("written", ["all", "half"])
async def test_a_batch_whose_failed_append_could_not_be_undone_is_never_half_visible(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, written: str
) -> None:
    """The write (or the fsync after it) failed, and so did the truncation that
    undoes it: the bytes of the batch may stay in the file. The FileLog then
    accepts no more appends; reopening it finds either the whole batch (as if
    the process had crashed right after writing it) or a torn tail that it
    repairs -- never part of the batch."""
    path = tmp_path / "jobs.jsonl"
    async with FileLog(path) as log:
        first = await log.append(sample_events(2))
        real_write = os.write

        def write(fd: int, data: bytes) -> int:
            if written == "half":
                real_write(fd, bytes(data[: len(data) // 2]))
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return real_write(fd, data)

        def fail(*args: object) -> None:
            raise OSError(errno.EIO, os.strerror(errno.EIO))

        monkeypatch.setattr(os, "write", write)
        monkeypatch.setattr(os, "fsync", fail)
        monkeypatch.setattr(os, "ftruncate", fail)
        with pytest.raises(OSError, match="part of this batch may remain"):
            await log.append(sample_events(3))
        monkeypatch.undo()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        async with FileLog(path) as log:
            records = list(log.read())
            more = await log.append(sample_events(1))
    assert records[:2] == first
    if written == "all":
        assert [r.seq for r in records] == [1, 2, 3, 4, 5]
        assert caught == []
    else:
        assert records == first
        assert [w.category for w in caught] == [LogRepaired]
    assert more[0].seq == records[-1].seq + 1


async def test_a_scheduler_on_a_file_log_that_stopped_appending(
    sim: SimulatedClock,
    autojump_clock: MockClock,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """After a failed append that could not be undone, the FileLog refuses every
    append ("close it and reopen the log"). The scheduler starts nothing from
    then on and says so; restarting it reopens the log and goes on."""
    path = tmp_path / "jobs.jsonl"
    work = Work(sim, takes=timedelta(seconds=5))
    caplog.set_level(logging.WARNING, logger="chronolog")
    async with open_scheduler(path, clock=sim) as sched:
        await sched.add("tick", Every(MINUTE), work)
        await sim.advance(2 * MINUTE + timedelta(seconds=10))
        runs_before = len(work.starts)

        def fail(*args: object) -> None:
            raise OSError(errno.EIO, os.strerror(errno.EIO))

        monkeypatch.setattr(os, "fsync", fail)
        monkeypatch.setattr(os, "ftruncate", fail)
        await sim.advance(MINUTE)
        monkeypatch.undo()
        await sim.advance(3 * MINUTE)
        assert len(work.starts) == runs_before
        problem = sched.status("tick").problem
        assert problem is not None
        assert "accepts no more appends" in problem
        assert "close it and reopen the log" in problem
        # Said a few times, not in a busy loop that appends again and again.
        assert 0 < len(log_warnings(caplog)) < 10
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LogRepaired)
        async with open_scheduler(path, clock=sim) as sched:
            await sched.add("tick", Every(MINUTE), work)
            await sim.advance(2 * MINUTE)
            assert len(work.starts) > runs_before
            assert_sound(sched)
    records = list(FileLog(path).read())
    assert check_invariants(records) == []
    assert_every_run_ended(records)
    assert any(isinstance(r, Scheduled) for r in records)


async def test_a_task_that_cannot_be_removed_after_its_run_stays(
    sim: SimulatedClock,
    autojump_clock: MockClock,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """``remove_after_run``: the run is recorded, then the removal finds the disk
    full. That used to take the scheduler down; now the task stays, finished."""
    path = tmp_path / "jobs.jsonl"
    real_write = os.write

    def write(fd: int, data: bytes) -> int:
        if b'"TaskRemoved"' in bytes(data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", write)
    work = Work(sim, takes=timedelta(seconds=5))
    caplog.set_level(logging.WARNING, logger="chronolog")
    async with open_scheduler(path, clock=sim) as sched:
        await sched.add("once", At(START + MINUTE), work, remove_after_run=True)
        await sim.advance(10 * MINUTE)
        status = sched.status("once")
        assert (status.run_count, status.last_error) == (1, None)
        assert status.state == "finished"  # its trigger is spent: it waits, finished
        assert_sound(sched)
    assert any("ran but could not be removed" in m for m in log_warnings(caplog))
    records = list(FileLog(path).read())
    assert_every_run_ended(records)
    assert sum(isinstance(r, Completed) for r in records) == 1
