"""LogWriter: group commit, claims, durability, failures, shutdown, backpressure.

Ordering is made deterministic without sleeping: a `WrappedLog` can *hold*
its appends (the write in flight waits for `release`), and
`trio.testing.wait_all_tasks_blocked` lets every submitter reach the writer's
queue before the next one starts. So "B and C queued while A was written"
is a fact of the test, not a race.
"""

from __future__ import annotations

import contextlib
import errno
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import msgspec
import pytest
import trio
import trio.testing
from trio.testing import wait_all_tasks_blocked

from chronolog._errors import ClaimConflict, LogClosed
from chronolog._events import (
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
)
from chronolog._ids import time_occurrence
from chronolog._invariants import check_invariants
from chronolog._projection import State, replay
from chronolog._triggers import Manual
from chronolog._writer import LogWriter, WriterStatistics
from chronolog.log import EventLog, FileLog, MemoryLog

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Callable, Iterable, Iterator, Sequence
    from pathlib import Path

T0 = datetime(2026, 3, 29, 1, 0, tzinfo=UTC)


# -- events ---------------------------------------------------------------------


def defined(task: str) -> TaskDefined:
    return TaskDefined(task=task, at=T0, trigger=Manual(), target="jobs:run")


def occurrence(task: str, n: int = 0) -> str:
    return time_occurrence(task, T0 + timedelta(hours=n))


def scheduled(task: str, n: int = 0) -> Scheduled:
    return Scheduled(task=task, at=T0, occurrence=occurrence(task, n), due=T0 + timedelta(hours=n))


def started(task: str, n: int = 0, attempt: int = 1) -> Started:
    return Started(task=task, at=T0, occurrence=occurrence(task, n), attempt=attempt)


def completed(task: str, n: int = 0, attempt: int = 1) -> Completed:
    return Completed(task=task, at=T0, occurrence=occurrence(task, n), attempt=attempt)


def failed(task: str, n: int = 0, attempt: int = 1, *, retry: bool = True) -> Failed:
    return Failed(
        task=task,
        at=T0,
        occurrence=occurrence(task, n),
        attempt=attempt,
        error="boom",
        retry_at=T0 + timedelta(minutes=5) if retry else None,
    )


def note(n: int, task: str = "notes") -> TaskPaused:
    """A claim-free event, numbered so that it can be found in the log."""
    return TaskPaused(task=task, at=T0, note=str(n))


def notes(records: Iterable[Event], *, task: str | None = None) -> list[str]:
    """The notes of the `note` events among ``records`` (of ``task`` if given)."""
    return [
        record.note
        for record in records
        if isinstance(record, TaskPaused) and (task is None or record.task == task)
    ]


def unnumbered(records: Sequence[Event]) -> list[Event]:
    return [msgspec.structs.replace(record, seq=0) for record in records]


# -- test doubles ---------------------------------------------------------------


class FakeClock:
    """A Clock that never moves and records when the writer holds it still."""

    def __init__(self) -> None:
        self.holding = 0
        self.holds = 0

    def now(self) -> datetime:
        return T0

    async def sleep_until(self, when: datetime) -> None:
        await trio.lowlevel.checkpoint()

    @contextlib.contextmanager
    def hold_still(self) -> Iterator[None]:
        self.holds += 1
        self.holding += 1
        try:
            yield
        finally:
            self.holding -= 1


class WrappedLog(EventLog):
    """A log seen through a wrapper that counts appends, can hold them, can fail them."""

    def __init__(self, inner: EventLog | None = None, *, clock: FakeClock | None = None) -> None:
        self.inner = inner if inner is not None else MemoryLog()
        self.clock = clock
        self.calls: list[list[Event]] = []
        self.held_still: list[bool] = []
        self.fail_calls: dict[int, Exception] = {}
        self.gate: trio.Event | None = None

    @property
    def last_seq(self) -> int:
        return self.inner.last_seq

    @property
    def closed(self) -> bool:
        return self.inner.closed

    @property
    def sizes(self) -> list[int]:
        return [len(call) for call in self.calls]

    def hold(self) -> None:
        """Appends from now on wait in flight until `release`."""
        self.gate = trio.Event()

    def release(self) -> None:
        assert self.gate is not None
        self.gate.set()
        self.gate = None

    async def append(self, events: Sequence[Event]) -> list[Event]:
        call = len(self.calls)
        self.calls.append(list(events))
        if self.clock is not None:
            self.held_still.append(self.clock.holding > 0)
        if self.gate is not None:
            await self.gate.wait()
        if call in self.fail_calls:
            raise self.fail_calls[call]
        return await self.inner.append(events)

    def read(self, after_seq: int = 0) -> Iterator[Event]:
        return self.inner.read(after_seq)

    def follow(self, after_seq: int = 0) -> AsyncGenerator[Event, None]:
        return self.inner.follow(after_seq)

    async def aclose(self) -> None:
        await self.inner.aclose()


class Harness:
    """A writer running in a nursery, and submitters whose outcomes it collects."""

    def __init__(
        self, nursery: trio.Nursery, log: WrappedLog, state: State, **options: Any
    ) -> None:
        self.nursery = nursery
        self.log = log
        self.state = state
        self.clock = log.clock if log.clock is not None else FakeClock()
        self.writer = LogWriter(log, state, clock=self.clock, **options)
        self.results: dict[str, list[Event] | Exception] = {}
        self.submitted: dict[str, list[Event]] = {}
        self.run_returned = False
        self.writer_scope = trio.CancelScope()

    @classmethod
    async def start(
        cls,
        nursery: trio.Nursery,
        *setup: Event,
        log: WrappedLog | None = None,
        run: bool = True,
        **options: Any,
    ) -> Harness:
        """A harness over a log that already holds ``setup`` (state replayed from it)."""
        log = log if log is not None else WrappedLog(clock=FakeClock())
        if setup:
            await log.inner.append(list(setup))
        harness = cls(nursery, log, replay(log.read()), **options)
        if run:
            await harness.start_writer()
        return harness

    async def start_writer(self) -> None:
        await self.nursery.start(self._run_writer)

    async def _run_writer(self, *, task_status: trio.TaskStatus[None]) -> None:
        with self.writer_scope:
            await self.writer.run(task_status=task_status)
            self.run_returned = True

    def submit(self, key: str, events: Sequence[Event]) -> None:
        self.submitted[key] = list(events)

        async def submitter() -> None:
            try:
                self.results[key] = await self.writer.append(events)
            except Exception as error:
                self.results[key] = error

        self.nursery.start_soon(submitter)

    async def submit_in_order(self, *submissions: tuple[str, Sequence[Event]]) -> None:
        """Submit one after another, each reaching the writer before the next starts."""
        for key, events in submissions:
            self.submit(key, events)
            await wait_all_tasks_blocked()

    def records(self, key: str) -> list[Event]:
        result = self.results[key]
        assert isinstance(result, list), result
        return result

    def check(self) -> None:
        """Each success is its own events, stored contiguously; state == replay(log)."""
        log_records = list(self.log.read())
        seqs = [record.seq for record in log_records]
        assert seqs == sorted(set(seqs))
        by_seq = {record.seq: index for index, record in enumerate(log_records)}
        for key, result in self.results.items():
            if isinstance(result, list):
                assert unnumbered(result) == self.submitted[key]
                start = by_seq[result[0].seq]
                assert log_records[start : start + len(result)] == result
        assert replay(log_records) == self.state


# -- group commit -----------------------------------------------------------------


async def test_simultaneous_submitters_share_one_write() -> None:
    tasks = [f"t{n}" for n in range(50)]
    async with trio.open_nursery() as nursery:
        h = await Harness.start(
            nursery, *(defined(task) for task in tasks), *map(scheduled, tasks)
        )
        for task in tasks:
            h.submit(task, [started(task), completed(task)])
        await wait_all_tasks_blocked()
        h.writer.close()
    # 50 submissions at the same moment, 100 records: far fewer writes than
    # submitters (with Trio's scheduler, exactly one).
    assert len(h.log.calls) <= 2
    assert sum(h.log.sizes) == 100
    assert all(isinstance(result, list) for result in h.results.values())
    h.check()
    assert all(h.state.status(task).run_count == 1 for task in tasks)


async def test_submissions_arriving_during_a_write_go_out_together() -> None:
    async with trio.open_nursery() as nursery:
        h = await Harness.start(nursery)
        h.log.hold()
        await h.submit_in_order(("first", [note(0)]))
        await h.submit_in_order(*((f"s{n}", [note(n), note(n)]) for n in range(1, 21)))
        assert h.writer.statistics().queued == 20
        h.log.release()
        await wait_all_tasks_blocked()
        h.writer.close()
    assert h.log.sizes == [1, 40]
    # Written in acceptance order, each submission contiguous.
    assert notes(h.log.read()) == ["0"] + [str(n) for n in range(1, 21) for _ in range(2)]
    h.check()


async def test_one_task_keeps_its_order_and_its_groups_stay_contiguous() -> None:
    async def one_task(h: Harness, name: str) -> None:
        for n in range(10):
            events: list[Event] = [note(n, task=name)] * 3
            h.submitted[f"{name}{n}"] = events
            h.results[f"{name}{n}"] = await h.writer.append(events)

    async with trio.open_nursery() as nursery:
        h = await Harness.start(nursery)
        async with trio.open_nursery() as submitters:
            for name in ("a", "b", "c"):
                submitters.start_soon(one_task, h, name)
        h.writer.close()
    records = list(h.log.read())
    for name in ("a", "b", "c"):
        assert notes(records, task=name) == [str(n) for n in range(10) for _ in range(3)]
    h.check()


async def test_max_batch_records_bounds_a_write_but_never_splits_a_submission() -> None:
    async with trio.open_nursery() as nursery:
        h = await Harness.start(nursery, max_batch_records=4)
        h.log.hold()
        await h.submit_in_order(
            ("a", [note(0)]),
            ("b", [note(1)] * 2),
            ("c", [note(2)] * 2),
            ("d", [note(3)] * 2),
            ("e", [note(4)] * 6),
            ("f", [note(5)]),
        )
        h.log.release()
        await wait_all_tasks_blocked()
        h.writer.close()
    assert h.log.sizes == [1, 4, 2, 6, 1]
    stats = h.writer.statistics()
    assert (stats.submissions, stats.largest_batch) == (6, 6)
    h.check()


async def test_file_log_group_commit_survives_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "jobs.jsonl"
    tasks = [f"t{n}" for n in range(30)]
    async with FileLog(path) as file_log, trio.open_nursery() as nursery:
        log = WrappedLog(file_log, clock=FakeClock())
        h = await Harness.start(nursery, *map(defined, tasks), *map(scheduled, tasks), log=log)
        for task in tasks:
            h.submit(task, [started(task)])
        await wait_all_tasks_blocked()
        h.writer.close()
    assert len(log.calls) <= 2
    assert all(isinstance(result, list) for result in h.results.values())
    assert replay(FileLog(path).read()) == h.state
    h.check()


# -- durability and the state -------------------------------------------------------


async def test_append_returns_only_once_written_and_folded() -> None:
    async with trio.open_nursery() as nursery:
        h = await Harness.start(nursery, defined("job"), scheduled("job"))
        seq_before = h.state.seq
        h.log.hold()
        await h.submit_in_order(("run", [started("job")]))
        # The write is in flight: the submitter waits, the state has not moved.
        assert "run" not in h.results
        assert h.state.seq == seq_before
        assert h.state.status("job").running == ()
        h.log.release()
        await wait_all_tasks_blocked()
        assert h.state.status("job").running == (occurrence("job"),)
        h.writer.close()
    assert h.records("run")[0].seq == seq_before + 1
    h.check()


async def test_state_reflects_the_records_when_append_returns() -> None:
    async with trio.open_nursery() as nursery:
        h = await Harness.start(nursery, defined("job"), scheduled("job"))
        records = await h.writer.append([started("job")])
        assert h.state.seq >= records[-1].seq
        assert h.state.status("job").running == (occurrence("job"),)
        records = await h.writer.append([completed("job")])
        assert h.state.status("job").running == ()
        assert h.state.status("job").run_count == 1
        h.writer.close()
    h.check()


async def test_time_stands_still_during_every_write() -> None:
    async with trio.open_nursery() as nursery:
        h = await Harness.start(nursery)
        await h.submit_in_order(("a", [note(1)]), ("b", [note(2)]))
        h.log.fail_calls[2] = OSError(errno.EIO, "I/O error")
        await h.submit_in_order(("c", [note(3)]))
        h.writer.close()
    assert h.log.held_still == [True, True, True]
    assert h.clock.holds == 3
    assert h.clock.holding == 0


# -- claims -----------------------------------------------------------------------


async def test_a_duplicate_claim_in_one_batch_loses_alone() -> None:
    async with trio.open_nursery() as nursery:
        h = await Harness.start(nursery, defined("job"), scheduled("job"))
        h.log.hold()
        await h.submit_in_order(
            ("filler", [note(0)]),
            ("winner", [started("job")]),
            ("loser", [note(1), started("job")]),
            ("bystander", [note(2)]),
        )
        h.log.release()
        await wait_all_tasks_blocked()
        h.writer.close()
    loser = h.results["loser"]
    assert isinstance(loser, ClaimConflict)
    message = str(loser)
    assert "'job'" in message
    assert repr(occurrence("job")) in message
    assert "attempt 1" in message
    assert "running" in message
    assert h.log.sizes == [1, 2]  # winner and bystander, one write
    assert sum(type(record) is Started for record in h.log.read()) == 1
    assert notes(h.log.read()) == ["0", "2"]
    h.check()


async def test_a_duplicate_claim_in_a_later_batch_loses() -> None:
    async with trio.open_nursery() as nursery:
        h = await Harness.start(nursery, defined("job"), scheduled("job"))
        await h.writer.append([started("job")])
        with pytest.raises(ClaimConflict, match=r"attempt 1 of it is running"):
            await h.writer.append([started("job")])
        h.writer.close()
    assert sum(type(record) is Started for record in h.log.read()) == 1
    assert replay(h.log.read()) == h.state


async def test_append_soon_calls_back_once_written_and_folded_with_no_task_waiting() -> None:
    settled: list[tuple[str, list[Event] | None, Exception | None]] = []

    def answer(key: str) -> Callable[[list[Event] | None, Exception | None], None]:
        def on_settled(records: list[Event] | None, error: Exception | None) -> None:
            # Called by the writer once durable and folded: the state shows it.
            assert records is None or h.state.seq >= records[-1].seq
            settled.append((key, records, error))

        return on_settled

    async with trio.open_nursery() as nursery:
        h = await Harness.start(nursery, defined("job"), scheduled("job"), defined("other"))
        h.log.hold()
        tasks_before = len(nursery.child_tasks)
        assert h.writer.append_soon([started("job")], answer("winner"))
        assert h.writer.append_soon([note(1), started("job")], answer("loser"))
        assert h.writer.append_soon([note(2)], answer("bystander"))
        assert len(nursery.child_tasks) == tasks_before  # nobody waits in a task
        assert settled == []
        h.log.release()
        with trio.fail_after(10):
            await wait_all_tasks_blocked()  # the writer has written and called back
        assert len(settled) == 3
        h.writer.close()
    by_key = {key: (records, error) for key, records, error in settled}
    assert [type(r) for r in by_key["winner"][0] or []] == [Started]
    assert isinstance(by_key["loser"][1], ClaimConflict)
    assert by_key["loser"][0] is None
    assert notes(by_key["bystander"][0] or []) == ["2"]
    assert not h.writer.append_soon([note(3)], answer("late"))  # closed: nothing queued
    assert notes(h.log.read()) == ["2"]
    h.check()


async def test_append_soon_queues_nothing_when_the_queue_is_full() -> None:
    async with trio.open_nursery() as nursery:
        h = await Harness.start(nursery, max_queued=1)
        h.log.hold()
        assert h.writer.append_soon([note(1)], lambda records, error: None)
        await wait_all_tasks_blocked()  # the writer took it and is writing
        assert h.writer.append_soon([note(2)], lambda records, error: None)
        assert not h.writer.append_soon([note(3)], lambda records, error: None)
        h.log.release()
        await wait_all_tasks_blocked()
        h.writer.close()
    assert notes(h.log.read()) == ["1", "2"]


async def test_wait_caught_up_returns_once_everything_queued_is_settled() -> None:
    caught_up: list[list[str]] = []
    async with trio.open_nursery() as nursery:
        h = await Harness.start(nursery)
        with trio.fail_after(10):
            await h.writer.wait_caught_up()  # nothing queued: at once
        h.log.hold()
        assert h.writer.append_soon([note(1)], lambda records, error: None)
        assert h.writer.append_soon([note(2)], lambda records, error: None)

        async def waiter() -> None:
            await h.writer.wait_caught_up()
            caught_up.append(notes(h.log.read()))

        nursery.start_soon(waiter)
        await wait_all_tasks_blocked()
        assert caught_up == []  # the write is held in flight
        h.log.release()
        await wait_all_tasks_blocked()
        assert caught_up == [["1", "2"]]
        h.writer.close()


def skipped(task: str, n: int = 0) -> Skipped:
    return Skipped(task=task, at=T0, occurrence=occurrence(task, n), reason=SkipReason.PAUSED)


async def test_a_skip_planned_before_a_claim_in_the_same_batch_is_dropped() -> None:
    """A pause that read the state just before a claim landed: its skip of the
    now-running occurrence is dropped, its TaskPaused stands."""
    async with trio.open_nursery() as nursery:
        h = await Harness.start(nursery, defined("job"), scheduled("job"))
        h.log.hold()
        await h.submit_in_order(
            ("filler", [note(0)]),
            ("claim", [started("job")]),
            ("pause", [note(1, "job"), skipped("job")]),
        )
        h.log.release()
        await wait_all_tasks_blocked()
        h.writer.close()
    assert [type(r) for r in h.results["pause"]] == [TaskPaused]
    assert not any(type(record) is Skipped for record in h.log.read())
    assert [v for v in check_invariants(h.log.read()) if v.task == "job"] == []
    assert replay(h.log.read()) == h.state


async def test_a_skip_of_an_occurrence_that_started_earlier_is_dropped() -> None:
    async with trio.open_nursery() as nursery:
        h = await Harness.start(nursery, defined("job"), scheduled("job"), scheduled("job", 1))
        await h.writer.append([started("job")])
        records = await h.writer.append([skipped("job"), skipped("job", 1)])
        h.writer.close()
    assert unnumbered(records) == [skipped("job", 1)]  # the one not running stands
    assert check_invariants(h.log.read()) == []
    assert replay(h.log.read()) == h.state


async def test_an_occurrence_is_skipped_once_even_when_two_skips_race() -> None:
    """An overlap skip and a pause skip planned from the same state, in one batch
    and in the next: the first settles it, the second is dropped."""
    async with trio.open_nursery() as nursery:
        h = await Harness.start(nursery, defined("job"), scheduled("job"), scheduled("job", 1))
        h.log.hold()
        await h.submit_in_order(
            ("filler", [note(0)]),
            ("overlap", [skipped("job")]),
            ("pause", [note(1, "job"), skipped("job")]),
        )
        h.log.release()
        await wait_all_tasks_blocked()
        later = await h.writer.append([skipped("job"), skipped("job", 1)])
        h.writer.close()
    assert [type(r) for r in h.results["pause"]] == [TaskPaused]
    assert unnumbered(later) == [skipped("job", 1)]
    skips = [r.occurrence for r in h.log.read() if type(r) is Skipped]
    assert skips == [occurrence("job"), occurrence("job", 1)]
    assert [v for v in check_invariants(h.log.read()) if v.task == "job"] == []
    assert replay(h.log.read()) == h.state


async def test_an_attempt_ends_once() -> None:
    async with trio.open_nursery() as nursery:
        h = await Harness.start(nursery, defined("job"), scheduled("job"), started("job"))
        await h.writer.append([completed("job")])
        with pytest.raises(ClaimConflict, match=r"cannot end with Completed: it is not running"):
            await h.writer.append([completed("job")])
        with pytest.raises(ClaimConflict, match=r"cannot end with Failed"):
            await h.writer.append([failed("job", retry=False)])
        with pytest.raises(ClaimConflict, match=r"attempt 2 .* cannot end"):
            await h.writer.append([scheduled("job", 1), started("job", 1), completed("job", 1, 2)])
        h.writer.close()
    assert [type(r) for r in h.log.read()][-1] is Completed
    assert check_invariants(h.log.read()) == []
    assert replay(h.log.read()) == h.state


async def test_a_skip_for_a_task_removed_meanwhile_is_dropped() -> None:
    async with trio.open_nursery() as nursery:
        h = await Harness.start(nursery, defined("job"), scheduled("job"))
        await h.writer.append([skipped("job"), TaskRemoved(task="job", at=T0)])
        assert await h.writer.append([skipped("job", 1)]) == []
        h.writer.close()
    assert check_invariants(h.log.read()) == []


async def test_started_needs_a_scheduled_occurrence_and_a_task() -> None:
    async with trio.open_nursery() as nursery:
        h = await Harness.start(nursery, defined("job"))
        with pytest.raises(ClaimConflict, match=r"not scheduled"):
            await h.writer.append([started("job", 5)])
        with pytest.raises(ClaimConflict, match=r"there is no task 'ghost'"):
            await h.writer.append([started("ghost")])
        h.writer.close()
    assert h.log.calls == []
    assert replay(h.log.read()) == h.state


async def test_scheduled_earlier_in_the_batch_opens_the_occurrence() -> None:
    async with trio.open_nursery() as nursery:
        h = await Harness.start(nursery, defined("job"))
        h.log.hold()
        await h.submit_in_order(
            ("filler", [note(0)]),
            ("schedule", [scheduled("job", 1)]),
            ("start", [started("job", 1)]),
            ("both", [scheduled("job", 2), started("job", 2)]),
            ("new task", [defined("fresh"), scheduled("fresh"), started("fresh")]),
        )
        h.log.release()
        await wait_all_tasks_blocked()
        h.writer.close()
    assert all(isinstance(result, list) for result in h.results.values())
    assert h.log.sizes == [1, 1 + 1 + 2 + 3]
    assert set(h.state.status("job").running) == {occurrence("job", 1), occurrence("job", 2)}
    h.check()


async def test_a_rejected_submission_leaves_nothing_behind() -> None:
    async with trio.open_nursery() as nursery:
        h = await Harness.start(nursery, defined("job"), scheduled("job"))
        h.log.hold()
        await h.submit_in_order(
            ("filler", [note(0)]),
            # Its Scheduled would open job@3, but its second Started is bad:
            # none of it is written...
            ("rejected", [scheduled("job", 3), started("job", 3), started("job", 9)]),
            # ...so job@3 is still not open for this one,
            ("too early", [started("job", 3)]),
            # while the rest of the batch goes on.
            ("fine", [started("job", 0)]),
        )
        h.log.release()
        await wait_all_tasks_blocked()
        h.writer.close()
    assert isinstance(h.results["rejected"], ClaimConflict)
    assert "'job@" in str(h.results["rejected"])
    assert "attempt 1" in str(h.results["rejected"])
    assert isinstance(h.results["too early"], ClaimConflict)
    assert isinstance(h.results["fine"], list)
    assert h.log.sizes == [1, 1]
    h.check()


async def test_retries_claim_the_next_attempt_only() -> None:
    async with trio.open_nursery() as nursery:
        h = await Harness.start(nursery, defined("job"), scheduled("job"))
        await h.writer.append([started("job")])
        await h.writer.append([failed("job", attempt=1)])
        with pytest.raises(ClaimConflict, match=r"only attempt 2 may start"):
            await h.writer.append([started("job", attempt=3)])
        with pytest.raises(ClaimConflict, match=r"attempt 1 failed with a retry planned"):
            await h.writer.append([started("job", attempt=1)])
        await h.writer.append([started("job", attempt=2)])
        with pytest.raises(ClaimConflict, match=r"attempt 2 of it is running"):
            await h.writer.append([started("job", attempt=2)])
        await h.writer.append([completed("job", attempt=2)])
        with pytest.raises(ClaimConflict, match=r"already settled \(completed\)"):
            await h.writer.append([started("job", attempt=3)])
        h.writer.close()
    assert [type(record).__name__ for record in h.log.read()][2:] == [
        "Started",
        "Failed",
        "Started",
        "Completed",
    ]
    h.check()


async def test_a_whole_retry_cycle_in_one_batch() -> None:
    async with trio.open_nursery() as nursery:
        h = await Harness.start(nursery, defined("job"), scheduled("job"))
        h.log.hold()
        await h.submit_in_order(
            ("filler", [note(0)]),
            ("start 1", [started("job")]),
            ("fail 1", [failed("job")]),
            ("start 2", [started("job", attempt=2)]),
            ("start 2 again", [started("job", attempt=2)]),
            ("scheduled only", [scheduled("job", 0)]),
        )
        h.log.release()
        await wait_all_tasks_blocked()
        h.writer.close()
    assert isinstance(h.results["start 2 again"], ClaimConflict)
    assert {key for key, result in h.results.items() if isinstance(result, list)} == {
        "filler",
        "start 1",
        "fail 1",
        "start 2",
        "scheduled only",
    }
    assert h.log.sizes == [1, 4]
    h.check()


async def test_records_that_claim_and_settle_nothing_are_written_as_they_are() -> None:
    async with trio.open_nursery() as nursery:
        h = await Harness.start(nursery, defined("job"))
        events = [note(0, "job"), scheduled("job", 7), TaskRemoved(task="job", at=T0)]
        records = await h.writer.append(events)
        h.writer.close()
    assert unnumbered(records) == events
    assert replay(h.log.read()) == h.state


# -- failures -----------------------------------------------------------------------


async def test_a_failed_write_fails_its_whole_batch_and_the_next_one_is_tried() -> None:
    disk_full = OSError(errno.ENOSPC, "No space left on device")
    async with trio.open_nursery() as nursery:
        h = await Harness.start(nursery, defined("job"), scheduled("job"))
        h.log.fail_calls[1] = disk_full
        h.log.hold()
        await h.submit_in_order(
            ("ok", [note(0)]),
            ("b", [started("job")]),
            ("c", [note(1), note(2)]),
        )
        h.log.release()
        await wait_all_tasks_blocked()
        # Both submitters of the failed batch got the very error; nothing of
        # it is in the log or the state.
        assert h.results["b"] is disk_full
        assert h.results["c"] is disk_full
        assert unnumbered(list(h.log.read())) == [defined("job"), scheduled("job"), note(0)]
        assert h.state == replay(h.log.read())
        assert h.state.status("job").running == ()
        # The disk has room again: the writer goes on, and the claim is free.
        records = await h.writer.append([started("job")])
        h.writer.close()
    assert records[0].seq == h.log.last_seq
    assert h.log.sizes == [1, 3, 1]
    stats = h.writer.statistics()
    assert (stats.batches, stats.records) == (3, 2)
    del h.results["b"], h.results["c"]
    h.check()


async def test_the_error_is_raised_in_each_submitters_own_task() -> None:
    disk_full = OSError(errno.ENOSPC, "No space left on device")
    async with trio.open_nursery() as nursery:
        h = await Harness.start(nursery)
        h.log.fail_calls[0] = disk_full
        with pytest.raises(OSError, match="No space left") as caught:
            await h.writer.append([note(0)])
        h.writer.close()
    assert caught.value is disk_full
    assert caught.value.errno == errno.ENOSPC


async def test_a_closed_log_fails_the_appends_but_not_the_writer() -> None:
    async with trio.open_nursery() as nursery:
        h = await Harness.start(nursery)
        await h.writer.append([note(0)])
        await h.log.inner.aclose()
        with pytest.raises(LogClosed):
            await h.writer.append([note(1)])
        with pytest.raises(LogClosed):
            await h.writer.append([note(2)])
        h.writer.close()
    assert h.run_returned
    assert h.writer.statistics().batches == 3


async def test_bad_events_fail_only_their_caller_and_queue_nothing() -> None:
    async with trio.open_nursery() as nursery:
        h = await Harness.start(nursery)
        with pytest.raises(TypeError, match="item 0 of the batch is str"):
            await h.writer.append(["not an event"])  # type: ignore[list-item]
        with pytest.raises(ValueError, match="already has seq 4"):
            await h.writer.append([msgspec.structs.replace(note(0), seq=4)])
        assert await h.writer.append([]) == []
        h.writer.close()
    assert h.log.calls == []
    assert h.writer.statistics() == WriterStatistics(
        submissions=0, batches=0, records=0, largest_batch=0, queued=0
    )


# -- cancellation ---------------------------------------------------------------------


async def test_a_cancelled_submitter_still_gets_its_batch_written() -> None:
    async with trio.open_nursery() as nursery:
        h = await Harness.start(nursery, defined("job"), scheduled("job"))
        in_flight, queued = trio.CancelScope(), trio.CancelScope()

        async def submit(scope: trio.CancelScope, events: Sequence[Event]) -> None:
            with scope:
                await h.writer.append(events)

        h.log.hold()
        nursery.start_soon(submit, in_flight, [started("job")])
        await wait_all_tasks_blocked()
        nursery.start_soon(submit, queued, [note(1)])
        await wait_all_tasks_blocked()
        in_flight.cancel()
        queued.cancel()
        await wait_all_tasks_blocked()
        h.log.release()
        await wait_all_tasks_blocked()
        h.writer.close()
    assert in_flight.cancelled_caught
    assert queued.cancelled_caught
    # Accepted means written: the write in flight, and the one still queued.
    assert unnumbered(list(h.log.read()))[2:] == [started("job"), note(1)]
    assert h.state.status("job").running == (occurrence("job"),)
    assert replay(h.log.read()) == h.state


async def test_a_cancelled_writer_answers_everyone_it_did_not_write() -> None:
    async with trio.open_nursery() as nursery:
        h = await Harness.start(nursery, max_queued=1)
        h.log.hold()
        await h.submit_in_order(("a", [note(0)]), ("b", [note(1)]), ("c", [note(2)]))
        h.writer_scope.cancel()
        await wait_all_tasks_blocked()
        with pytest.raises(LogClosed):
            await h.writer.append([note(3)])
    assert not h.run_returned
    assert isinstance(h.results["a"], LogClosed)
    assert "while this submission was being written" in str(h.results["a"])
    assert isinstance(h.results["b"], LogClosed)
    assert "before writing" in str(h.results["b"])
    assert isinstance(h.results["c"], LogClosed)  # it was never accepted
    assert list(h.log.read()) == []
    assert replay(h.log.read()) == h.state


# -- shutdown and backpressure ----------------------------------------------------------


async def test_close_drains_what_was_accepted_then_run_returns() -> None:
    async with trio.open_nursery() as nursery:
        h = await Harness.start(nursery)
        h.log.hold()
        await h.submit_in_order(("a", [note(0)]), ("b", [note(1)]), ("c", [note(2)]))
        h.writer.close()
        h.writer.close()  # idempotent
        with pytest.raises(LogClosed, match="is closed: nothing more is appended"):
            await h.writer.append([note(3)])
        assert not h.run_returned
        h.log.release()
    assert h.run_returned
    assert notes(h.log.read()) == ["0", "1", "2"]
    assert h.log.sizes == [1, 2]
    h.check()
    with pytest.raises(LogClosed):
        await h.writer.append([note(4)])
    assert len(h.log.calls) == 2


async def test_close_turns_away_submitters_blocked_on_a_full_queue() -> None:
    async with trio.open_nursery() as nursery:
        h = await Harness.start(nursery, max_queued=1)
        h.log.hold()
        await h.submit_in_order(("a", [note(0)]), ("b", [note(1)]), ("c", [note(2)]))
        h.writer.close()
        await wait_all_tasks_blocked()
        assert isinstance(h.results["c"], LogClosed)
        h.log.release()
    assert notes(h.log.read()) == ["0", "1"]
    h.check()


async def test_a_full_queue_blocks_submitters_until_the_writer_takes_one() -> None:
    async with trio.open_nursery() as nursery:
        h = await Harness.start(nursery, max_queued=1, run=False)
        await h.submit_in_order(("a", [note(0)]), ("b", [note(1)]))
        # "a" fills the queue; "b" waits to be accepted.
        assert h.writer.statistics().queued == 1
        assert h.writer.statistics().submissions == 1
        assert h.results == {}
        await h.start_writer()
        await wait_all_tasks_blocked()
        assert h.writer.statistics().submissions == 2
        h.writer.close()
    assert h.log.sizes == [2]
    h.check()


async def test_statistics_count_submissions_batches_and_records() -> None:
    async with trio.open_nursery() as nursery:
        h = await Harness.start(nursery, max_queued=4)
        h.log.hold()
        await h.submit_in_order(
            ("a", [note(0)]), ("b", [note(1)] * 2), ("c", [note(2)] * 3), ("d", [note(3)])
        )
        assert h.writer.statistics() == WriterStatistics(
            submissions=4, batches=1, records=0, largest_batch=0, queued=3
        )
        h.log.release()
        await wait_all_tasks_blocked()
        h.writer.close()
    assert h.writer.statistics() == WriterStatistics(
        submissions=4, batches=2, records=7, largest_batch=6, queued=0
    )


async def test_run_runs_once() -> None:
    async with trio.open_nursery() as nursery:
        h = await Harness.start(nursery)
        with pytest.raises(RuntimeError, match=r"run\(\) runs once"):
            await h.writer.run()
        h.writer.close()


@pytest.mark.parametrize("option", ["max_queued", "max_batch_records"])
def test_limits_must_be_positive(option: str) -> None:
    with pytest.raises(ValueError, match=f"{option} must be at least 1, got 0"):
        LogWriter(MemoryLog(), State(), clock=FakeClock(), **{option: 0})


# -- appending without waiting (in memory) ------------------------------------------


class WatchedMemoryLog(MemoryLog):
    """A memory log whose subclass watches every append (and so never appends at once)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[int] = []

    async def append(self, events: Sequence[Event]) -> list[Event]:
        self.seen.append(len(events))
        return await super().append(events)


async def start_writer(nursery: trio.Nursery, log: EventLog, *setup: Event) -> LogWriter:
    if setup:
        await log.append(list(setup))
    writer = LogWriter(log, replay(log.read()), clock=FakeClock())
    await nursery.start(writer.run)
    return writer


async def test_an_idle_writer_on_a_memory_log_appends_in_the_callers_task() -> None:
    log = MemoryLog()
    async with trio.open_nursery() as nursery:
        writer = await start_writer(nursery, log, defined("a"), scheduled("a"))
        state = writer._state
        # No await: written, folded and counted before the call returns.
        records = writer.append_now([started("a")])
        assert records is not None
        assert [r.seq for r in records] == [3]
        assert state.occurrence_state("a", occurrence("a")).name == "RUNNING"
        assert writer.statistics() == WriterStatistics(
            submissions=1, batches=1, records=1, largest_batch=1, queued=0
        )
        # append() takes the same path, and is still a checkpoint.
        assert [r.seq for r in await writer.append([completed("a")])] == [4]
        writer.close()
    assert replay(log.read()) == state
    assert check_invariants(log.read()) == []


async def test_appending_at_once_refuses_a_taken_claim_and_writes_nothing() -> None:
    log = MemoryLog()
    async with trio.open_nursery() as nursery:
        writer = await start_writer(nursery, log, defined("a"), scheduled("a"), started("a"))
        with pytest.raises(ClaimConflict, match="its claim is taken"):
            writer.append_now([started("a"), note(9)])
        writer.close()
    assert log.last_seq == 3


async def test_appending_at_once_declines_where_it_would_wait(tmp_path: Path) -> None:
    async with trio.open_nursery() as nursery:
        # Logs that write to disk always wait; so does a writer not yet running.
        async with FileLog(tmp_path / "log.jsonl") as file_log:
            writer = await start_writer(nursery, file_log)
            assert writer.append_now([note(0)]) is None
            writer.close()
        idle = LogWriter(MemoryLog(), State(), clock=FakeClock())
        assert idle.append_now([note(0)]) is None
        # A submission waiting in the queue comes first: nothing overtakes it.
        held = WrappedLog(MemoryLog())
        h = await Harness.start(nursery, log=held)
        held.hold()
        await h.submit_in_order(("first", [note(0)]), ("second", [note(1)]))
        assert h.writer.append_now([note(2)]) is None
        held.release()
        await wait_all_tasks_blocked()
        h.writer.close()
    assert notes(held.read()) == ["0", "1"]


async def test_appending_at_once_says_why_it_cannot() -> None:
    async with trio.open_nursery() as nursery:
        writer = await start_writer(nursery, MemoryLog())
        with pytest.raises(TypeError, match="takes chronolog events"):
            writer.append_now(["not an event"])  # type: ignore[list-item]
        writer.close()
    with pytest.raises(LogClosed, match="is closed"):
        writer.append_now([note(0)])


async def test_a_memory_log_whose_append_is_overridden_sees_every_append() -> None:
    log = WatchedMemoryLog()
    with pytest.raises(trio.WouldBlock):
        log.append_nowait([note(0)])
    async with trio.open_nursery() as nursery:
        writer = await start_writer(nursery, log)
        assert [r.seq for r in await writer.append([note(0), note(1)])] == [1, 2]
        writer.close()
    assert log.seen == [2]
