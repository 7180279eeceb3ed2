"""Compaction: where the cut falls, atomicity under failures and crashes, and a
scheduler that compacts its own log and carries on as if nothing happened."""

# The tests prepare and inspect small files with plain blocking calls.

from __future__ import annotations

import errno
import functools
import os
import sqlite3
import sys
import textwrap
from contextlib import aclosing
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import msgspec
import pytest
import trio
import trio.testing

from chronolog import (
    Every,
    FileLog,
    LogClosed,
    LogLocked,
    MemoryLog,
    Rule,
    SQLiteLog,
    check_invariants,
    open_scheduler,
    replay,
)
from chronolog import _scheduler as scheduler_module
from chronolog._compaction import compact_log
from chronolog._events import Completed, Event, Scheduled, Started, TaskDefined, TaskRemoved
from chronolog.log import _file_rewrite as rewrite_module
from chronolog.testing import SimulatedClock

if TYPE_CHECKING:
    from pathlib import Path

    from trio.testing import MockClock

T0 = datetime(2026, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)


def hourly_runs(hours: int, *, task: str = "sync") -> list[Event]:
    """A task run once an hour for ``hours`` hours, each event stamped when it happened."""
    events: list[Event] = [
        TaskDefined(task=task, at=T0, trigger=Every(HOUR, anchor=T0), target="jobs:sync")
    ]
    for n in range(1, hours + 1):
        due = T0 + n * HOUR
        occurrence = f"{task}@{due.isoformat()}"
        events += [
            Scheduled(task=task, at=due - HOUR, occurrence=occurrence, due=due),
            Started(task=task, at=due, occurrence=occurrence, attempt=1),
            Completed(task=task, at=due + timedelta(seconds=5), occurrence=occurrence, attempt=1),
        ]
    return events


def numbered(events: list[Event]) -> list[Event]:
    return [msgspec.structs.replace(event, seq=n) for n, event in enumerate(events, start=1)]


# -- where the cut falls ---------------------------------------------------------


async def test_records_older_than_keep_are_folded() -> None:
    records = numbered(hourly_runs(48))
    log = MemoryLog(records)
    now = T0 + 48 * HOUR + timedelta(minutes=1)
    compaction = await compact_log(log, keep=timedelta(hours=12), now=now)
    cut_before = now - timedelta(hours=12)
    assert compaction.cut_before == cut_before
    kept = [record for record in records if record.at >= cut_before]
    assert list(log.read()) == kept
    assert compaction.base_seq == kept[0].seq - 1
    assert (compaction.folded, compaction.kept) == (len(records) - len(kept), len(kept))
    assert log.base_state() == replay(records[: compaction.base_seq])
    assert log.load_state() == replay(records)


async def test_a_clock_that_went_back_never_moves_the_cut_past_a_later_record() -> None:
    events = hourly_runs(10)
    # Seq 5 was stamped late; seq 6 (a clock set back) early again.
    events[4] = msgspec.structs.replace(events[4], at=T0 + 100 * HOUR)
    records = numbered(events)
    log = MemoryLog(records)
    compaction = await compact_log(log, keep=timedelta(0), now=T0 + 50 * HOUR)
    assert compaction.base_seq == 4
    assert [record.seq for record in log.read()] == list(range(5, len(records) + 1))


async def test_nothing_old_enough_changes_nothing() -> None:
    records = numbered(hourly_runs(5))
    log = MemoryLog(records)
    compaction = await compact_log(log, keep=timedelta(days=30), now=T0 + 6 * HOUR)
    assert (compaction.base_seq, compaction.folded, compaction.kept) == (0, 0, len(records))
    assert list(log.read()) == records
    again = await compact_log(log, keep=timedelta(hours=2), now=T0 + 6 * HOUR)
    assert again.folded > 0
    assert (await compact_log(log, keep=timedelta(hours=2), now=T0 + 6 * HOUR)).folded == 0


async def test_keep_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match="keep must be zero or more"):
        await compact_log(MemoryLog(), keep=timedelta(seconds=-1), now=T0)


async def test_a_snapshot_of_the_current_state_is_saved_after(tmp_path: Path) -> None:
    path = tmp_path / "jobs.jsonl"
    async with FileLog(path) as log:
        records = await log.append(hourly_runs(30))
        await compact_log(log, keep=timedelta(hours=10), now=T0 + 31 * HOUR)
        assert log.snapshot_path.exists()
    reader = FileLog(path)
    assert reader.load_state() == replay(records)
    assert reader.base_state() == replay(records[: reader.base_seq])


async def test_a_log_another_process_holds_is_not_compacted(tmp_path: Path) -> None:
    path = tmp_path / "jobs.jsonl"
    async with FileLog(path) as holder:
        await holder.append(hourly_runs(3))
        with pytest.raises(LogLocked, match="is locked by process"):
            async with FileLog(path) as log:
                await compact_log(log, keep=timedelta(0), now=T0 + 10 * HOUR)
    with pytest.raises(LogClosed, match="not open for writing"):
        await FileLog(path).compact(replay(list(FileLog(path).read())))


# -- the rewrite is atomic ---------------------------------------------------------


class FailAt:
    """Raises ``EIO`` from the ``at``-th call of the file operations a compaction makes."""

    NAMES = ("open", "write", "fsync", "replace", "fchmod", "pread", "unlink")

    def __init__(self, monkeypatch: pytest.MonkeyPatch, at: int | None) -> None:
        self.calls = 0
        self.at = at
        for name in self.NAMES:
            real = getattr(os, name)
            monkeypatch.setattr(os, name, functools.partial(self._call, real))

    def _call(self, real: Any, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        if self.calls == self.at:
            raise OSError(errno.EIO, f"injected failure in {real.__name__}")
        return real(*args, **kwargs)


async def prepared_log(path: Path) -> list[Event]:
    async with FileLog(path) as log:
        return await log.append(hourly_runs(40))


async def test_a_failure_at_any_step_leaves_the_old_log_or_the_new(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rewrite_module, "_COPY_BYTES", 512)  # several chunks to copy
    source = tmp_path / "source.jsonl"
    records = await prepared_log(source)
    base = replay(records[:60])
    with monkeypatch.context() as patch:  # how many calls a compaction makes
        path = tmp_path / "count.jsonl"
        path.write_bytes(source.read_bytes())
        async with FileLog(path) as log:
            counter = FailAt(patch, None)
            await log.compact(base)
            steps = counter.calls
    assert steps > 10
    outcomes = set()
    for at in range(1, steps + 1):
        path = tmp_path / f"jobs-{at}.jsonl"
        path.write_bytes(source.read_bytes())
        async with FileLog(path) as log:
            with monkeypatch.context() as patch:
                FailAt(patch, at)
                with pytest.raises(OSError, match="injected failure"):
                    await log.compact(base)
            compacted = log.base_seq == 60
            outcomes.add(compacted)
            if not compacted:
                assert path.read_bytes() == source.read_bytes()
            assert log.load_state() == replay(records)
            more = await log.append(hourly_runs(1, task="after"))
        assert not path.with_name(path.name + ".compact").exists()
        reopened = FileLog(path)
        assert reopened.base_seq == (60 if compacted else 0)
        assert reopened.load_state() == replay(records + more)
    # Failures before the rename keep the old log; the directory fsync after it, the new.
    assert outcomes == {False, True}


_CRASHING_CHILD = textwrap.dedent(
    """
    import os, sys, trio
    from chronolog import FileLog, replay
    path, at = sys.argv[1], int(sys.argv[2])
    calls = 0
    def crashing(real):
        def call(*args, **kwargs):
            global calls
            calls += 1
            if calls == at:
                os._exit(9)  # a crash: no cleanup, no except clause runs
            return real(*args, **kwargs)
        return call

    async def main():
        async with FileLog(path) as log:
            base = replay(list(log.read())[:60])
            for name in ("write", "fsync", "replace", "unlink", "open"):
                setattr(os, name, crashing(getattr(os, name)))
            await log.compact(base)
        print("finished", calls)

    trio.run(main)
    """
)


#: Which file operation of a compaction the child dies at (see _CRASHING_CHILD):
#: 1 removing the old snapshot; 4 writing the new file; 6 its fsync; 7 the
#: rename; 8 after the rename, before the directory's fsync; 100 never. The
#: in-process test above fails each operation in turn; these are real deaths.
CRASH_POINTS = (1, 4, 6, 7, 8, 100)


async def test_a_crash_at_any_step_leaves_the_old_log_or_the_new(tmp_path: Path) -> None:
    """A real process dies (``os._exit``) in the middle of a compaction, one
    child per crash point, all at once; then each log is opened and checked."""
    source = tmp_path / "source.jsonl"
    records = await prepared_log(source)
    outcomes: dict[int, str] = {}

    async def crash_at(at: int) -> None:
        path = tmp_path / str(at) / "jobs.jsonl"
        path.parent.mkdir()
        path.write_bytes(source.read_bytes())
        child = await trio.run_process(
            [sys.executable, "-c", _CRASHING_CHILD, str(path), str(at)],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
        assert child.returncode in (0, 9), child.stderr
        outcomes[at] = "finished" if child.returncode == 0 else "crashed"

    async with trio.open_nursery() as nursery:
        for at in CRASH_POINTS:
            nursery.start_soon(crash_at, at)
    assert outcomes == {**dict.fromkeys(CRASH_POINTS[:-1], "crashed"), 100: "finished"}
    compacted = set()
    for at in CRASH_POINTS:
        path = tmp_path / str(at) / "jobs.jsonl"
        log = FileLog(path)
        if log.base_seq == 0:
            assert path.read_bytes() == source.read_bytes()
        else:
            assert log.base_seq == 60
            assert list(log.read()) == records[60:]
        compacted.add(log.base_seq == 60)
        assert log.load_state() == replay(records)
        async with FileLog(path) as writer:  # a leftover temporary file is no obstacle
            more = await writer.append(hourly_runs(1, task="after"))
            await compact_log(writer, keep=timedelta(0), now=T0 + 100 * HOUR)
        assert FileLog(path).load_state() == replay(records + more)
    assert compacted == {False, True}


async def test_the_new_file_keeps_the_log_s_permissions(tmp_path: Path) -> None:
    path = tmp_path / "jobs.jsonl"
    records = await prepared_log(path)
    path.chmod(0o640)
    async with FileLog(path) as log:
        await log.compact(replay(records[:10]))
    assert path.stat().st_mode & 0o777 == 0o640


# -- reading and following across a compaction -----------------------------------


async def test_a_follower_of_the_writer_goes_on_in_the_new_file(tmp_path: Path) -> None:
    path = tmp_path / "jobs.jsonl"
    async with FileLog(path) as log:
        first = await log.append(hourly_runs(3))
        received: list[Event] = []
        async with trio.open_nursery() as nursery:

            async def follower() -> None:
                async with aclosing(log.follow()) as records:
                    async for record in records:
                        received.append(record)
                        if len(received) == len(first) + 4:  # hourly_runs(1)
                            return

            nursery.start_soon(follower)
            await trio.testing.wait_all_tasks_blocked()
            await log.compact(replay(first[:5]))
            later = await log.append(hourly_runs(1, task="after"))
    assert received == first + later


async def test_a_follower_in_another_process_goes_on_in_the_new_file(
    tmp_path: Path, autojump_clock: MockClock
) -> None:
    path = tmp_path / "jobs.jsonl"
    reader = FileLog(path, poll_interval=timedelta(milliseconds=10))
    async with FileLog(path) as log:
        first = await log.append(hourly_runs(3))
        received: list[Event] = []
        async with trio.open_nursery() as nursery:

            async def follower() -> None:
                async with aclosing(reader.follow()) as records:
                    async for record in records:
                        received.append(record)
                        if len(received) == len(first) + 4:  # hourly_runs(1)
                            return

            nursery.start_soon(follower)
            await trio.sleep(0.05)
            assert received == first
            await log.compact(replay(first[:5]))
            later = await log.append(hourly_runs(1, task="after"))
    assert received == first + later


# -- the invariant checker starts from the base -------------------------------------


def test_the_checker_starts_from_a_base() -> None:
    records = numbered(
        [
            *hourly_runs(2),
            Scheduled(task="sync", at=T0, occurrence="sync@x", due=T0 + 9 * HOUR),
            Started(task="sync", at=T0, occurrence="sync@x", attempt=1),
            TaskDefined(task="gone", at=T0, trigger=Every(HOUR, anchor=T0), target="jobs:g"),
            TaskRemoved(task="gone", at=T0),
        ]
    )
    base = replay(records)
    started_at = records[-3].seq
    after = numbered([*records, Started(task="sync", at=T0, occurrence="sync@x", attempt=1)])
    after += [
        msgspec.structs.replace(
            Scheduled(task="gone", at=T0, occurrence="gone@y", due=T0), seq=len(after) + 1
        )
    ]
    tail = after[len(records) :]
    violations = check_invariants(tail, start=base)
    # The same the checker finds in the whole log, but for the removal's seq,
    # which the base does not know.
    whole = check_invariants(after)
    assert violations[0] == whole[0]
    assert (whole[1].rule, whole[1].related) == (Rule.REMOVED_TASK, (records[-1].seq,))
    assert [violation.rule for violation in violations] == [
        Rule.STARTED_TWICE,
        Rule.REMOVED_TASK,
    ]
    assert violations[0].related == (started_at,)
    assert "removed before the log's base" in violations[1].message
    # Without the base, the tail alone makes no sense to the checker.
    assert {violation.rule for violation in check_invariants(tail)} == {Rule.UNKNOWN_TASK}


# -- a scheduler compacts its own log ---------------------------------------------


@pytest.fixture
def sim(autojump_clock: MockClock) -> SimulatedClock:
    return SimulatedClock(datetime(2026, 3, 1, tzinfo=UTC), mock_clock=autojump_clock)


@pytest.mark.parametrize("suffix", [".jsonl", ".sqlite"])
async def test_a_scheduler_compacts_and_carries_on(
    tmp_path: Path, sim: SimulatedClock, autojump_clock: MockClock, suffix: str
) -> None:
    path = tmp_path / f"jobs{suffix}"
    runs: list[datetime] = []

    async def work() -> None:
        runs.append(sim.now())

    async with open_scheduler(path, clock=sim) as sched:
        await sched.add("sync", Every(HOUR), work)
        await sim.advance(timedelta(days=10))
        records = list(sched.log.read())
        compaction = await sched.compact(keep=timedelta(days=2))
        assert compaction.folded > 0
        assert sched.log.base_seq == compaction.base_seq
        # Runs due at this instant went on meanwhile; nothing else changed.
        records += sched.log.read(after_seq=records[-1].seq)
        assert sched.log.load_state() == sched.state == replay(records)
        await sim.advance(timedelta(days=1))
    assert len(runs) == len(set(runs)) == 11 * 24
    log = FileLog(path) if suffix == ".jsonl" else SQLiteLog(path)
    assert check_invariants(log.read(), start=log.base_state()) == []
    async with open_scheduler(path, clock=sim) as sched:
        await sched.add("sync", Every(HOUR), work)
        await sim.advance(timedelta(days=1))
        assert sched.status("sync").run_count == len(runs)
    # Every hour ran once, across the compaction and the restart.
    start = datetime(2026, 3, 1, tzinfo=UTC)
    assert runs == [start + n * HOUR for n in range(1, len(runs) + 1)]
    assert len(runs) >= 12 * 24 - 1
    log = FileLog(path) if suffix == ".jsonl" else SQLiteLog(path)
    assert check_invariants(log.read(), start=log.base_state()) == []


async def test_a_clean_stop_saves_a_snapshot_of_a_long_log(
    tmp_path: Path, sim: SimulatedClock, autojump_clock: MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scheduler_module, "SNAPSHOT_MIN_RECORDS", 100)
    path = tmp_path / "jobs.jsonl"

    async def work() -> None:
        await trio.lowlevel.checkpoint()

    async with open_scheduler(path, clock=sim) as sched:
        await sched.add("sync", Every(HOUR), work)
        await sim.advance(timedelta(hours=48))  # 145 records
        assert not FileLog(path).snapshot_path.exists()
    assert FileLog(path).snapshot_path.exists()
    async with open_scheduler(path, clock=sim) as sched:
        assert sched.state == replay(FileLog(path).read())
    short = tmp_path / "short.jsonl"
    async with open_scheduler(short, clock=sim) as sched:
        await sched.add("sync", Every(HOUR), work)
        await sim.advance(timedelta(hours=2))
    assert not FileLog(short).snapshot_path.exists()


async def test_open_scheduler_starts_from_the_snapshot(
    tmp_path: Path, sim: SimulatedClock, autojump_clock: MockClock
) -> None:
    path = tmp_path / "jobs.jsonl"
    async with FileLog(path) as log:
        records = await log.append(hourly_runs(5))
        doctored = replay(records)
        doctored._tasks["sync"].note = "from the snapshot"
        await log.save_snapshot(doctored)
    async with open_scheduler(path, clock=sim) as sched:
        assert sched.state.status("sync").note == "from the snapshot"


async def test_a_failed_sqlite_compaction_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite"
    async with SQLiteLog(path) as log:
        records = await log.append(hourly_runs(10))
    connection = sqlite3.connect(path)
    with connection:
        connection.execute(
            "CREATE TRIGGER no_deletes BEFORE DELETE ON chronolog_records "
            "BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
        )
    connection.close()
    async with SQLiteLog(path) as log:
        with pytest.raises(OSError, match=r"could not compact log .*injected failure.*unchanged"):
            await log.compact(replay(records[:20]))
        assert log.base_seq == 0
        assert list(log.read()) == records
        more = await log.append(hourly_runs(1, task="after"))
    reader = SQLiteLog(path)
    assert (reader.base_seq, list(reader.read())) == (0, records + more)
