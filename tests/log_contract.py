"""The contract every `EventLog` backend passes.

A backend's test module subclasses `EventLogContract` (or
`PersistentEventLogContract` for a log that outlives its object) in a
``Test...`` class and provides one fixture, ``make_log``: a callable that
returns a new, unopened log object each time it is called -- for a
persistent backend, a new object over the *same* storage, so calling it again
is how the suite "reopens" the log::

    class TestFileLog(PersistentEventLogContract):
        @pytest.fixture
        def make_log(self, tmp_path):
            return lambda: FileLog(tmp_path / "jobs.jsonl")

Tests use no real sleeps: in-process appends wake followers at once, and the
one test that depends on a backend polling runs on ``autojump_clock``.

`PersistentEventLogContract` also needs ``store_format_version``: a callable
that writes a format version into the stored log (after it was created), for
the header/version checks.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from contextlib import aclosing
from datetime import UTC, datetime, timedelta

import msgspec
import pytest
import trio
import trio.testing

from chronolog._errors import ClaimConflict, LogClosed, LogCorrupted
from chronolog._events import (
    FORMAT_VERSION,
    Completed,
    Event,
    Failed,
    Scheduled,
    Skipped,
    SkipReason,
    Started,
    TaskDefined,
    TaskPaused,
    TaskRemoved,
    TaskResumed,
)
from chronolog._policies import Overlap, Policy, Retry
from chronolog._projection import State, replay
from chronolog._triggers import At, Every, Manual
from chronolog.log import EventLog

__all__ = ["EventLogContract", "MakeLog", "PersistentEventLogContract", "sample_events"]

MakeLog = Callable[[], EventLog]
StoreFormatVersion = Callable[[int], None]

T0 = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)


_calls = itertools.count()


def sample_events(count: int, *, task: str = "backup") -> list[Event]:
    """``count`` unappended events (seq 0), cycling through the run lifecycle.

    Each occurrence is scheduled, started, then completed or (every other
    one) failed, so after a ``TaskDefined`` of ``task`` the events keep every
    rule of a log (`defined_runs`): a strict `load_state` takes them.

    Every call gives occurrences no earlier call gave (each call starts on a
    later day), so appending several batches to one log never claims an
    attempt twice -- a log that enforces claims itself (SQLite, PostgreSQL)
    would rightly refuse that.
    """
    events: list[Event] = []
    first = T0 + timedelta(days=next(_calls))
    for n in range(count):
        due = first + timedelta(minutes=n - n % 3)
        at = first + timedelta(minutes=n)
        occurrence = f"{task}@{due.isoformat()}"
        kind = n % 3
        if kind == 0:
            events.append(Scheduled(task=task, at=at, occurrence=occurrence, due=due))
        elif kind == 1:
            events.append(Started(task=task, at=at, occurrence=occurrence, attempt=1))
        elif n % 6 == 2:
            events.append(
                Completed(task=task, at=at, occurrence=occurrence, attempt=1, result={"n": n})
            )
        else:
            events.append(
                Failed(task=task, at=at, occurrence=occurrence, attempt=1, error=f"boom {n}")
            )
    return events


def one_of_each_event() -> list[Event]:
    """Every event type, with the optional fields set to something other than defaults."""
    due = T0 + timedelta(hours=1)
    occurrence = f"nightly ✓@{due.isoformat()}"
    return [
        TaskDefined(
            task="nightly ✓",
            at=T0,
            trigger=At(when=due),
            target="pkg.jobs:nightly",
            policy=Policy(overlap=Overlap.QUEUE, retry=Retry(max_attempts=3)),
            version=2,
        ),
        TaskDefined(task='say "hi"\n', at=T0, trigger=Manual(), target="<lambda>"),
        TaskPaused(task="nightly ✓", at=T0, note="disk full"),
        TaskResumed(task="nightly ✓", at=T0, note="🧹 cleaned"),
        Scheduled(task="nightly ✓", at=T0, occurrence=occurrence, due=due, content_hash="ab12"),
        Started(task="nightly ✓", at=due, occurrence=occurrence, attempt=1, node="host-1"),
        Failed(
            task="nightly ✓",
            at=due + timedelta(seconds=3),
            occurrence=occurrence,
            attempt=1,
            duration=timedelta(seconds=2.5),
            error="ValueError: nope",
            error_type="ValueError",
            traceback="Traceback...\n  line 1",
            retry_at=due + timedelta(seconds=10),
        ),
        Completed(
            task="nightly ✓",
            at=due + timedelta(seconds=15),
            occurrence=occurrence,
            attempt=2,
            duration=timedelta(milliseconds=1500),
            result={"rows": [1, 2.5, None, True], "note": "größer \u2028 line"},
        ),
        Skipped(task="nightly ✓", at=due, occurrence="x@y", reason=SkipReason.MISSED, due=due),
        TaskRemoved(task="nightly ✓", at=due + timedelta(days=1)),
    ]


def defined_runs(count: int, *, task: str = "backup") -> list[Event]:
    """A ``TaskDefined`` then ``sample_events(count - 1)``: a log the projection
    folds into a task with runs, so snapshots of it hold something."""
    definition = TaskDefined(
        task=task, at=T0, trigger=Every(timedelta(minutes=1), anchor=T0), target="jobs:work"
    )
    return [definition, *sample_events(count - 1, task=task)]


def doctored(records: list[Event], seq: int) -> State:
    """A State at ``seq`` that the records up to it do not give: it has a task
    named ``"doctored"`` besides. Loading it shows that a snapshot was used.
    (The records after ``seq`` fold onto it as onto the true state, so even a
    strict load takes it.)"""
    before = [record for record in records if record.seq <= seq]
    extra = TaskDefined(task="doctored", at=T0, trigger=Manual(), target="jobs:x", seq=seq)
    return replay([*before, extra])


def unappended(records: list[Event]) -> list[Event]:
    return [msgspec.structs.replace(record, seq=0) for record in records]


async def collect(log: EventLog, count: int, *, after_seq: int = 0) -> list[Event]:
    """The first ``count`` records that ``log.follow(after_seq)`` yields."""
    received: list[Event] = []
    if count == 0:
        return received
    async with aclosing(log.follow(after_seq)) as records:
        async for record in records:
            received.append(record)
            if len(received) == count:
                break
    return received


class EventLogContract:
    """Behaviour every backend shares. Subclasses provide the ``make_log`` fixture."""

    # -- append and read ---------------------------------------------------

    async def test_a_new_log_is_empty(self, make_log: MakeLog) -> None:
        async with make_log() as log:
            assert log.last_seq == 0
            assert list(log.read()) == []
            assert not log.closed

    async def test_async_with_gives_the_log_itself(self, make_log: MakeLog) -> None:
        log = make_log()
        async with log as entered:
            assert entered is log

    async def test_append_assigns_strictly_increasing_seqs(self, make_log: MakeLog) -> None:
        events = sample_events(5)
        async with make_log() as log:
            first = await log.append(events[:3])
            second = await log.append(events[3:])
            seqs = [record.seq for record in first + second]
            assert seqs == sorted(set(seqs))
            assert seqs[0] > 0
            assert unappended(first + second) == events
            assert log.last_seq == second[-1].seq

    async def test_read_gives_every_record_in_order(self, make_log: MakeLog) -> None:
        async with make_log() as log:
            records = []
            for size in (1, 4, 2, 7):
                records += await log.append(sample_events(size))
            assert list(log.read()) == records
            assert list(log.read(0)) == records

    async def test_read_after_seq_skips_up_to_and_including_it(self, make_log: MakeLog) -> None:
        async with make_log() as log:
            records = await log.append(sample_events(6))
            for after in [0, *(record.seq for record in records), records[-1].seq + 10]:
                assert list(log.read(after_seq=after)) == [
                    record for record in records if record.seq > after
                ]

    async def test_every_event_type_round_trips(self, make_log: MakeLog) -> None:
        events = one_of_each_event()
        async with make_log() as log:
            records = await log.append(events)
            assert unappended(records) == events
            assert list(log.read()) == records

    async def test_an_empty_batch_appends_nothing(self, make_log: MakeLog) -> None:
        async with make_log() as log:
            records = await log.append(sample_events(2))
            assert await log.append([]) == []
            assert log.last_seq == records[-1].seq
            assert list(log.read()) == records

    async def test_events_that_already_have_a_seq_are_rejected(self, make_log: MakeLog) -> None:
        events = sample_events(3)
        events[1] = msgspec.structs.replace(events[1], seq=7)
        async with make_log() as log:
            with pytest.raises(ValueError, match="already has seq 7"):
                await log.append(events)
            # The batch is atomic: the valid events around the bad one are not stored.
            assert log.last_seq == 0
            assert list(log.read()) == []

    async def test_a_record_cannot_be_appended_twice(self, make_log: MakeLog) -> None:
        async with make_log() as log:
            records = await log.append(sample_events(1))
            with pytest.raises(ValueError, match="seq 0"):
                await log.append(records)

    async def test_non_events_are_rejected(self, make_log: MakeLog) -> None:
        async with make_log() as log:
            with pytest.raises(TypeError, match="item 0 of the batch is dict"):
                await log.append([{"type": "Started"}])  # type: ignore[list-item]
            assert log.last_seq == 0

    async def test_concurrent_appends_never_interleave(self, make_log: MakeLog) -> None:
        results: dict[int, list[Event]] = {}

        async def append_batch(n: int) -> None:
            results[n] = await log.append(sample_events(3, task=f"task {n}"))

        async with make_log() as log:
            async with trio.open_nursery() as nursery:
                for n in range(20):
                    nursery.start_soon(append_batch, n)
            stored = list(log.read())
        assert len(stored) == 60
        assert [r.seq for r in stored] == sorted({r.seq for r in stored})
        position = {record.seq: index for index, record in enumerate(stored)}
        for batch in results.values():
            first = position[batch[0].seq]
            assert stored[first : first + 3] == batch

    async def test_an_append_cancelled_before_it_starts_stores_nothing(
        self, make_log: MakeLog
    ) -> None:
        async with make_log() as log:
            with trio.CancelScope() as scope:
                scope.cancel()
                await log.append(sample_events(2))
            assert scope.cancelled_caught
            assert log.last_seq == 0
            assert list(log.read()) == []

    # -- follow ------------------------------------------------------------

    async def test_follow_yields_existing_records_then_new_ones(self, make_log: MakeLog) -> None:
        async with make_log() as log:
            existing = await log.append(sample_events(3))
            received: list[Event] = []
            async with trio.open_nursery() as nursery:

                async def follower() -> None:
                    received.extend(await collect(log, 7))

                nursery.start_soon(follower)
                await trio.testing.wait_all_tasks_blocked()
                assert received == []
                later = await log.append(sample_events(2, task="a"))
                later += await log.append(sample_events(2, task="b"))
        assert received == existing + later

    async def test_follow_after_seq(self, make_log: MakeLog) -> None:
        async with make_log() as log:
            records = await log.append(sample_events(5))
            assert await collect(log, 3, after_seq=records[1].seq) == records[2:]

    async def test_follow_wakes_every_follower(self, make_log: MakeLog) -> None:
        async with make_log() as log:
            results: list[list[Event]] = []
            async with trio.open_nursery() as nursery:

                async def follower() -> None:
                    results.append(await collect(log, 2))

                for _ in range(3):
                    nursery.start_soon(follower)
                await trio.testing.wait_all_tasks_blocked()
                records = await log.append(sample_events(2))
        assert results == [records] * 3

    async def test_follow_ends_once_the_log_is_closed(self, make_log: MakeLog) -> None:
        log = make_log()
        await log.open()
        received: list[Event] = []
        async with trio.open_nursery() as nursery:

            async def follower() -> None:
                async with aclosing(log.follow()) as records:
                    async for record in records:
                        received.append(record)

            nursery.start_soon(follower)
            records = await log.append(sample_events(2))
            await log.aclose()
        assert received == records

    async def test_follow_can_be_cancelled_while_waiting(self, make_log: MakeLog) -> None:
        async with make_log() as log:
            await log.append(sample_events(1))
            with trio.move_on_after(0.001) as scope:
                await collect(log, 2)
            assert scope.cancelled_caught

    # -- claims ------------------------------------------------------------

    async def test_claims_are_the_log_s_or_the_writer_s(self, make_log: MakeLog) -> None:
        """A log that enforces claims refuses a second Started for an attempt and
        keeps nothing of that batch; any other stores it (the writer checks)."""
        scheduled, started = sample_events(2)
        async with make_log() as log:
            first = await log.append([scheduled, started])
            again = [Skipped(task="backup", at=T0, occurrence="o", reason=SkipReason.MISSED)]
            again.append(started)
            if log.enforces_claims:
                with pytest.raises(ClaimConflict, match=r"already claimed|refused"):
                    await log.append(again)
                assert list(log.read()) == first
                assert log.last_seq == first[-1].seq
            else:
                stored = await log.append(again)
                assert list(log.read()) == first + stored

    # -- snapshots -----------------------------------------------------------

    async def test_load_state_without_a_snapshot_replays_every_record(
        self, make_log: MakeLog
    ) -> None:
        async with make_log() as log:
            assert log.load_state() == State()
            records = await log.append(defined_runs(6))
            assert log.load_state() == replay(records)
            assert log.load_state(history_limit=1) == replay(records, history_limit=1)
            assert log.base_seq == 0
            assert log.base_state() == State()

    async def test_a_snapshot_plus_the_records_after_it(self, make_log: MakeLog) -> None:
        async with make_log() as log:
            records = await log.append(defined_runs(5))
            await log.save_snapshot(replay(records[:3]))
            records += await log.append(sample_events(4))
            assert log.load_state() == replay(records)

    async def test_the_snapshot_saved_last_is_the_one_used(self, make_log: MakeLog) -> None:
        async with make_log() as log:
            records = await log.append(defined_runs(6))
            await log.save_snapshot(replay(records[:2]))
            await log.save_snapshot(doctored(records, records[4].seq))
            assert "doctored" in log.load_state().task_names()
            await log.save_snapshot(replay(records[:3]))
            assert log.load_state() == replay(records)

    async def test_a_snapshot_with_a_shorter_history_is_passed_over(
        self, make_log: MakeLog
    ) -> None:
        async with make_log() as log:
            records = await log.append(defined_runs(9))
            await log.save_snapshot(doctored(records, records[-1].seq))
            assert "doctored" in log.load_state().task_names()
            assert log.load_state(history_limit=500) == replay(records, history_limit=500)

    async def test_a_snapshot_must_be_of_a_stored_record(self, make_log: MakeLog) -> None:
        async with make_log() as log:
            records = await log.append(defined_runs(3))
            state = replay(records)
            with pytest.raises(ValueError, match="seq"):
                await log.save_snapshot(state, seq=1)
            with pytest.raises(ValueError, match=f"seq {records[-1].seq + 5}"):
                await log.save_snapshot(doctored(records, records[-1].seq + 5))
            with pytest.raises(TypeError, match="takes a chronolog State"):
                await log.save_snapshot(records)  # type: ignore[arg-type]
            assert log.load_state() == state

    # -- compaction ----------------------------------------------------------

    async def test_compaction_keeps_seqs_and_state(self, make_log: MakeLog) -> None:
        async with make_log() as log:
            records = await log.append(defined_runs(8))
            await log.compact(replay(records[:5]))
            assert log.base_seq == records[4].seq
            assert log.base_state() == replay(records[:5])
            assert list(log.read()) == records[5:]
            assert list(log.read(after_seq=1)) == records[5:]
            assert list(log.read(after_seq=records[6].seq)) == records[7:]
            assert log.load_state() == replay(records)
            more = await log.append(sample_events(2))
            assert more[0].seq > records[-1].seq
            assert log.load_state() == replay(records + more)

    async def test_compacting_everything_keeps_last_seq(self, make_log: MakeLog) -> None:
        async with make_log() as log:
            records = await log.append(defined_runs(4))
            await log.compact(replay(records))
            assert list(log.read()) == []
            assert log.last_seq == records[-1].seq
            assert log.load_state() == replay(records)
            more = await log.append(sample_events(1))
            assert more[0].seq > records[-1].seq

    async def test_compaction_must_cut_at_a_stored_record(self, make_log: MakeLog) -> None:
        async with make_log() as log:
            records = await log.append(defined_runs(6))
            await log.compact(replay(records[:3]))
            with pytest.raises(ValueError, match="no record with that seq"):
                await log.compact(replay(records[:2]))
            with pytest.raises(ValueError, match="no record with that seq"):
                await log.save_snapshot(replay(records[:2]))
            await log.compact(replay(records[:3]))  # the base already: nothing to do
            assert list(log.read()) == records[3:]

    # -- closing -----------------------------------------------------------

    async def test_nothing_is_appended_after_close(self, make_log: MakeLog) -> None:
        async with make_log() as log:
            records = await log.append(sample_events(2))
        assert log.closed
        with pytest.raises(LogClosed, match="closed"):
            await log.append(sample_events(1))
        with pytest.raises(LogClosed):
            await log.append([])
        # What was appended stays readable.
        assert list(log.read()) == records
        assert await collect(log, 2) == records

    async def test_snapshots_and_compaction_stop_at_close(self, make_log: MakeLog) -> None:
        async with make_log() as log:
            records = await log.append(defined_runs(4))
            await log.save_snapshot(replay(records[:2]))
        with pytest.raises(LogClosed):
            await log.save_snapshot(replay(records))
        with pytest.raises(LogClosed):
            await log.compact(replay(records[:3]))
        # What was stored stays readable, snapshot and all.
        assert log.load_state() == replay(records)
        assert log.base_state() == State()
        assert list(log.read()) == records

    async def test_aclose_is_idempotent(self, make_log: MakeLog) -> None:
        log = make_log()
        await log.open()
        await log.aclose()
        await log.aclose()
        assert log.closed

    async def test_aclose_works_in_a_cancelled_scope(self, make_log: MakeLog) -> None:
        log = make_log()
        await log.open()
        with trio.CancelScope() as scope:
            scope.cancel()
            await log.aclose()
        assert log.closed

    async def test_close_during_appends_keeps_every_returned_record(
        self, make_log: MakeLog
    ) -> None:
        returned: list[Event] = []
        refused = 0

        async def append_batch(n: int) -> None:
            nonlocal refused
            try:
                returned.extend(await log.append(sample_events(2, task=f"t{n}")))
            except LogClosed:
                refused += 1

        log = make_log()
        await log.open()
        async with trio.open_nursery() as nursery:
            for n in range(10):
                nursery.start_soon(append_batch, n)
            nursery.start_soon(log.aclose)
        assert sorted(returned, key=lambda r: r.seq) == list(log.read())
        assert len(returned) + 2 * refused == 20


class PersistentEventLogContract(EventLogContract):
    """More behaviour, for backends whose records outlive the log object."""

    async def test_records_survive_reopening(self, make_log: MakeLog) -> None:
        async with make_log() as log:
            records = await log.append(sample_events(3))
            records += await log.append(one_of_each_event())
        async with make_log() as log:
            assert log.last_seq == records[-1].seq
            assert list(log.read()) == records
            more = await log.append(sample_events(2))
            assert more[0].seq > records[-1].seq
        assert list(make_log().read()) == records + more

    async def test_reopening_an_empty_log(self, make_log: MakeLog) -> None:
        async with make_log():
            pass
        async with make_log() as log:
            assert log.last_seq == 0
            assert (await log.append(sample_events(1)))[0].seq > 0

    async def test_a_snapshot_survives_reopening(self, make_log: MakeLog) -> None:
        async with make_log() as log:
            records = await log.append(defined_runs(6))
            await log.save_snapshot(doctored(records, records[3].seq))
        assert "doctored" in make_log().load_state().task_names()
        async with make_log() as log:
            assert "doctored" in log.load_state().task_names()
            await log.save_snapshot(replay(records))
            more = await log.append(sample_events(2))
        assert make_log().load_state() == replay(records + more)

    async def test_a_compacted_log_survives_reopening(self, make_log: MakeLog) -> None:
        async with make_log() as log:
            records = await log.append(defined_runs(7))
            await log.compact(replay(records[:4]))
        reader = make_log()
        assert reader.base_seq == records[3].seq
        assert reader.last_seq == records[-1].seq
        assert list(reader.read()) == records[4:]
        assert reader.base_state() == replay(records[:4])
        async with make_log() as log:
            assert log.last_seq == records[-1].seq
            more = await log.append(sample_events(2))
            assert log.load_state() == replay(records + more)
        assert make_log().load_state() == replay(records + more)

    async def test_a_newer_format_version_is_refused(
        self, make_log: MakeLog, store_format_version: StoreFormatVersion
    ) -> None:
        async with make_log() as log:
            await log.append(defined_runs(2))
        store_format_version(FORMAT_VERSION + 1)
        message = (
            f"format version {FORMAT_VERSION + 1}; this chronolog reads versions 1 to "
            f"{FORMAT_VERSION} -- upgrade chronolog"
        )
        with pytest.raises(LogCorrupted, match=message):
            await make_log().open()
        with pytest.raises(LogCorrupted, match=message):
            list(make_log().read())
        with pytest.raises(LogCorrupted, match=message):
            make_log().load_state()

    async def test_another_object_reads_while_one_writes(self, make_log: MakeLog) -> None:
        reader = make_log()
        async with make_log() as writer:
            first = await writer.append(sample_events(2))
            assert list(reader.read()) == first
            second = await writer.append(sample_events(2))
            assert list(reader.read()) == first + second
            assert list(reader.read(after_seq=first[-1].seq)) == second

    async def test_another_object_follows_appends(
        self, make_log: MakeLog, autojump_clock: trio.testing.MockClock
    ) -> None:
        reader = make_log()
        async with make_log() as writer:
            existing = await writer.append(sample_events(2))
            received: list[Event] = []
            async with trio.open_nursery() as nursery:

                async def follower() -> None:
                    received.extend(await collect(reader, 5))

                nursery.start_soon(follower)
                later = await writer.append(sample_events(3))
        assert received == existing + later
