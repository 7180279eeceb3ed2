"""The Trio scheduler, driven through its public API on simulated time.

Every test ends by checking the two promises against the log itself: the
live state equals ``replay(log)``, and the invariant checker finds nothing.
"""

from __future__ import annotations

import contextlib
import functools
import signal
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pytest
import trio

from chronolog import (
    At,
    CatchUp,
    ChronologError,
    Completed,
    ConfigError,
    Cron,
    DuplicateTask,
    Every,
    Failed,
    FileLog,
    FileWatch,
    Manual,
    MemoryLog,
    Outcome,
    Overlap,
    Retry,
    Scheduled,
    Scheduler,
    Skipped,
    SkipReason,
    Started,
    TaskDefined,
    UnknownTask,
    check_invariants,
    current_run,
    open_scheduler,
    replay,
    serve_scheduler,
)
from chronolog._actor import TaskActor
from chronolog._ids import content_hash, jitter_for, manual_occurrence, time_occurrence
from chronolog.testing import SimulatedClock, assert_nothing_lost

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable
    from pathlib import Path

    from trio.testing import MockClock

    from chronolog import Event

BERLIN = ZoneInfo("Europe/Berlin")
START = datetime(2026, 3, 27, 12, 0, tzinfo=UTC)


@pytest.fixture
def sim(autojump_clock: MockClock) -> SimulatedClock:
    """Simulated time. Tests also take ``autojump_clock`` themselves: pytest-trio
    runs a test on a clock only when the test function receives it."""
    return SimulatedClock(START, mock_clock=autojump_clock)


def assert_sound(sched: Scheduler) -> None:
    records = list(sched.log.read())
    assert replay(records) == sched.state
    assert check_invariants(records) == []


@contextlib.asynccontextmanager
async def scheduler(
    log: MemoryLog, sim: SimulatedClock, **options: Any
) -> AsyncIterator[Scheduler]:
    async with open_scheduler(log, clock=sim, **options) as sched:
        yield sched
        assert_sound(sched)
    assert_sound_log(log)


def assert_sound_log(log: MemoryLog) -> None:
    assert check_invariants(log.read()) == []


def of_type(log: MemoryLog, kind: type, task: str | None = None) -> list[Any]:
    return [r for r in log.read() if isinstance(r, kind) and (task is None or r.task == task)]


async def step_until(sim: SimulatedClock, condition: Callable[[], bool], what: str) -> None:
    """Step simulated time until ``condition`` holds, for at most ten real seconds.

    The file system works in real time: a file watcher polls every simulated
    second, and the OS reports a change when it does. Each step gives it a
    real millisecond, so a loaded machine, which reports late, still does
    within the bound.
    """
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if condition():
            return
        await sim.advance(timedelta(milliseconds=200))
        time.sleep(0.001)  # noqa: ASYNC251 - real time for the OS, on purpose
    raise AssertionError(f"gave up waiting for {what}")


class Calls:
    """A target that records when it ran, and can be told to fail or to hang."""

    def __init__(self, sim: SimulatedClock, *, fail: int = 0, takes: timedelta | None = None):
        self.sim = sim
        self.times: list[datetime] = []
        self.fail = fail
        self.takes = takes

    async def __call__(self) -> dict[str, int]:
        self.times.append(self.sim.now())
        if self.takes is not None:
            await self.sim.sleep_until(self.sim.now() + self.takes)
        if len(self.times) <= self.fail:
            raise RuntimeError(f"failure {len(self.times)}")
        return {"call": len(self.times)}


async def test_a_cron_task_runs_at_its_due_times_across_spring_forward(
    sim: SimulatedClock, autojump_clock: MockClock
) -> None:
    log = MemoryLog()
    calls = Calls(sim)
    async with scheduler(log, sim) as sched:
        await sched.add("backup", Cron("30 2 * * *", tz="Europe/Berlin"), calls)
        await sim.advance(timedelta(days=4))
        runs = sched.history("backup")
    # 2026-03-29 02:30 does not exist in Berlin: it runs at 03:00 CEST (01:00Z).
    assert calls.times == [
        datetime(2026, 3, 28, 1, 30, tzinfo=UTC),
        datetime(2026, 3, 29, 1, 0, tzinfo=UTC),
        datetime(2026, 3, 30, 0, 30, tzinfo=UTC),
        datetime(2026, 3, 31, 0, 30, tzinfo=UTC),
    ]
    assert [run.outcome for run in runs if run.outcome != Outcome.SCHEDULED] == [
        Outcome.COMPLETED
    ] * 4
    assert runs[1].result == {"call": 4}


async def test_every_keeps_its_anchor_when_declared_again(
    sim: SimulatedClock, autojump_clock: MockClock
) -> None:
    log = MemoryLog()
    calls = Calls(sim)
    async with scheduler(log, sim) as sched:
        await sched.add("tick", Every(timedelta(minutes=10)), calls)
        await sim.advance(timedelta(minutes=25))
        await sched.add("tick", Every(timedelta(minutes=10)), calls)  # a re-declaration
        await sim.advance(timedelta(minutes=20))
    assert len(of_type(log, TaskDefined)) == 1
    assert calls.times == [START + timedelta(minutes=m) for m in (10, 20, 30, 40)]


async def test_retries_back_off_then_succeed(
    sim: SimulatedClock, autojump_clock: MockClock
) -> None:
    log = MemoryLog()
    calls = Calls(sim, fail=2)
    async with scheduler(log, sim) as sched:
        await sched.add(
            "flaky",
            At(START + timedelta(minutes=1)),
            calls,
            retry=Retry(max_attempts=3, backoff=timedelta(seconds=10), factor=3),
        )
        await sim.advance(timedelta(hours=1))
        (run,) = [r for r in sched.history("flaky") if r.outcome is Outcome.COMPLETED]
    due = START + timedelta(minutes=1)
    assert calls.times == [due, due + timedelta(seconds=10), due + timedelta(seconds=40)]
    assert run.attempts == 3
    failures = of_type(log, Failed)
    assert [f.error for f in failures] == ["failure 1", "failure 2"]
    assert failures[0].error_type == "RuntimeError"
    assert "RuntimeError: failure 1" in failures[0].traceback


async def test_an_overlapping_occurrence_is_skipped(
    sim: SimulatedClock, autojump_clock: MockClock
) -> None:
    log = MemoryLog()
    calls = Calls(sim, takes=timedelta(minutes=25))
    async with scheduler(log, sim) as sched:
        await sched.add("slow", Every(timedelta(minutes=10)), calls, overlap=Overlap.SKIP)
        await sim.advance(timedelta(minutes=65))
    assert calls.times == [START + timedelta(minutes=m) for m in (10, 40)]
    skipped = of_type(log, Skipped, "slow")
    assert {s.reason for s in skipped} == {SkipReason.OVERLAP}
    assert len(skipped) == 4


async def test_pause_skips_the_pending_occurrence_once_and_resume_does_not_catch_up(
    sim: SimulatedClock, autojump_clock: MockClock
) -> None:
    log = MemoryLog()
    calls = Calls(sim)
    async with scheduler(log, sim) as sched:
        await sched.add("report", Every(timedelta(hours=1)), calls)
        await sim.advance(timedelta(minutes=90))
        await sched.pause("report", note="maintenance")
        assert sched.status("report").paused
        await sim.advance(timedelta(hours=5))
        await sched.resume("report")
        await sim.advance(timedelta(minutes=70))
    assert calls.times == [START + timedelta(hours=1), START + timedelta(hours=7)]
    skipped = of_type(log, Skipped, "report")
    assert [s.reason for s in skipped] == [SkipReason.PAUSED]


async def test_a_pause_with_a_note_no_status_can_show_is_refused_and_writes_nothing(
    sim: SimulatedClock, autojump_clock: MockClock
) -> None:
    log = MemoryLog()
    async with scheduler(log, sim) as sched:
        await sched.add("report", Every(timedelta(hours=1)), Calls(sim))
        before = list(log.read())
        with pytest.raises(ConfigError, match="control characters"):
            await sched.pause("report", note="disk full\nsee ticket")
        with pytest.raises(ConfigError, match="at most 1000"):
            await sched.pause("report", note="x" * 1001)
        assert list(log.read()) == before
        assert not sched.status("report").paused


async def test_tasks_with_equal_policies_share_one_policy_object(
    sim: SimulatedClock, autojump_clock: MockClock
) -> None:
    """Memory: a hundred thousand tasks mostly carry a handful of policies."""
    async with scheduler(MemoryLog(), sim) as sched:
        for name in ("a", "b"):
            await sched.add(name, Every(timedelta(hours=1)), Calls(sim), timeout=timedelta(1))
        await sched.add("c", Every(timedelta(hours=1)), Calls(sim), timeout=timedelta(2))
        a, b, c = (sched.state.definition(name).policy for name in "abc")
    assert a is b
    assert a == b != c


async def test_run_now_runs_at_once_even_when_paused(
    sim: SimulatedClock, autojump_clock: MockClock
) -> None:
    log = MemoryLog()
    calls = Calls(sim)
    async with scheduler(log, sim) as sched:
        await sched.add("manual", Manual(), calls, paused=True)
        first = await sched.run_now("manual")
        second = await sched.run_now("manual")
        await sim.advance(timedelta(seconds=1))
        assert first != second
        assert first.startswith("manual!")
        assert sched.status("manual").run_count == 2
    assert calls.times == [START, START]


async def test_a_restart_after_a_crash_records_the_interrupted_run_and_retries_it(
    sim: SimulatedClock, autojump_clock: MockClock
) -> None:
    log = MemoryLog()
    calls = Calls(sim, takes=timedelta(hours=1))
    with trio.CancelScope() as crash:
        async with open_scheduler(log, clock=sim) as sched:
            await sched.add(
                "export",
                At(START + timedelta(minutes=5)),
                calls,
                retry=Retry(max_attempts=2, backoff=timedelta(minutes=1)),
            )
            await sim.advance(timedelta(minutes=10))  # the run is in its hour
            survived = list(log.read())  # what was durable when the process died
            crash.cancel()
    assert isinstance(survived[-1], Started)
    restarted = MemoryLog(survived)
    quick = Calls(sim)
    async with scheduler(restarted, sim) as sched:
        await sched.add(
            "export",
            At(START + timedelta(minutes=5)),
            quick,
            retry=Retry(max_attempts=2, backoff=timedelta(minutes=1)),
        )
        await sim.advance(timedelta(minutes=5))
        (run,) = [r for r in sched.history("export") if r.outcome is Outcome.COMPLETED]
    interrupted = of_type(restarted, Failed)
    assert [f.error for f in interrupted] == ["interrupted"]
    assert run.attempts == 2
    assert len(quick.times) == 1


async def test_missed_runs_are_caught_up_by_policy(
    sim: SimulatedClock, autojump_clock: MockClock
) -> None:
    log = MemoryLog()
    calls = Calls(sim)
    async with scheduler(log, sim) as sched:
        await sched.add("daily", Cron("0 6 * * *"), calls, catch_up=CatchUp.LATEST)
        await sim.advance(timedelta(days=1))
    assert len(calls.times) == 1
    await sim.advance(timedelta(days=5))  # the scheduler is down
    async with scheduler(log, sim) as sched:
        await sched.add("daily", Cron("0 6 * * *"), calls, catch_up=CatchUp.LATEST)
        await sim.advance(timedelta(minutes=1))
    # Four mornings missed while down: one record, the first, the last and how many.
    (missed,) = [s for s in of_type(log, Skipped, "daily") if s.reason is SkipReason.MISSED]
    assert (missed.due, missed.last_due, missed.count) == (
        START + timedelta(days=2, hours=-6),
        START + timedelta(days=5, hours=-6),
        4,
    )
    assert missed.occurrence == time_occurrence("daily", START + timedelta(days=2, hours=-6))
    assert len(calls.times) == 2
    assert calls.times[-1] == START + timedelta(days=6)  # late, right after the restart


async def test_a_timeout_fails_the_run(sim: SimulatedClock, autojump_clock: MockClock) -> None:
    log = MemoryLog()
    async with scheduler(log, sim) as sched:
        await sched.add(
            "hang",
            At(START + timedelta(minutes=1)),
            Calls(sim, takes=timedelta(days=1)),
            timeout=timedelta(seconds=30),
        )
        await sim.advance(timedelta(minutes=5))
        status = sched.status("hang")
    (failed,) = of_type(log, Failed)
    assert failed.error == "timed out after 30 s"
    assert failed.duration == timedelta(seconds=30)
    assert status.last_error == failed.error


async def test_shutdown_cancels_runs_after_the_grace_and_keeps_pending_ones(
    sim: SimulatedClock, autojump_clock: MockClock
) -> None:
    log = MemoryLog()
    async with scheduler(log, sim, shutdown_grace=timedelta(seconds=5)) as sched:
        await sched.add(
            "long", At(START + timedelta(minutes=1)), Calls(sim, takes=timedelta(hours=1))
        )
        await sched.add("later", At(START + timedelta(days=1)), Calls(sim))
        await sim.advance(timedelta(minutes=2))
    (failed,) = of_type(log, Failed)
    assert failed.error == "shutdown"
    state = replay(log.read())
    assert [run.outcome for run in state.open_occurrences("later")] == [Outcome.SCHEDULED]


async def test_add_is_idempotent_and_versions_changes(
    sim: SimulatedClock, autojump_clock: MockClock
) -> None:
    log = MemoryLog()
    calls = Calls(sim)
    async with scheduler(log, sim) as sched:
        await sched.add("job", Cron("0 * * * *"), calls)
        await sched.add("job", Cron("0 * * * *"), calls)
        assert len(of_type(log, TaskDefined)) == 1
        with pytest.raises(DuplicateTask, match="exists with another definition"):
            await sched.add("job", Cron("30 * * * *"), calls, if_exists="error")
        await sched.add("job", Cron("30 * * * *"), calls, if_exists="keep")
        assert sched.status("job").trigger == Cron("0 * * * *")
        await sched.add("job", Cron("30 * * * *"), calls)
        assert sched.status("job").version == 2
        await sim.advance(timedelta(minutes=40))
    assert calls.times == [START + timedelta(minutes=30)]


async def test_unknown_names_and_bad_options_are_clear(
    sim: SimulatedClock, autojump_clock: MockClock
) -> None:
    log = MemoryLog()
    async with scheduler(log, sim) as sched:
        await sched.add("backup", Manual(), Calls(sim))
        with pytest.raises(UnknownTask, match="did you mean 'backup'"):
            await sched.pause("bakup")
        with pytest.raises(ConfigError, match="target must be callable"):
            await sched.add("x", Manual(), "not callable")  # type: ignore[arg-type]
        with pytest.raises(ConfigError, match="task name"):
            await sched.add("", Manual(), Calls(sim))


async def test_remove_after_run_and_remove(sim: SimulatedClock, autojump_clock: MockClock) -> None:
    log = MemoryLog()
    calls = Calls(sim)
    async with scheduler(log, sim) as sched:
        await sched.add("once", At(START + timedelta(minutes=1)), calls, remove_after_run=True)
        await sched.add("hourly", Every(timedelta(hours=1)), calls)
        await sim.advance(timedelta(minutes=5))
        assert [t.name for t in sched.tasks()] == ["hourly"]
        await sched.remove("hourly")
        await sim.advance(timedelta(hours=3))
        assert sched.tasks() == []
    assert calls.times == [START + timedelta(minutes=1)]


async def test_waiting_for_a_task_to_be_idle_outlasts_runs_that_start_meanwhile(
    sim: SimulatedClock, autojump_clock: MockClock
) -> None:
    """remove_after_run waits until no run of the task is left; a run that
    starts while it waits must not make it wait for ever."""
    log = MemoryLog()
    calls = Calls(sim, takes=timedelta(minutes=15))
    three = Every(timedelta(minutes=10), end=START + timedelta(minutes=30))
    async with scheduler(log, sim) as sched:
        await sched.add("burst", three, calls, overlap=Overlap.ALLOW, remove_after_run=True)
        # 00:10 runs to 00:25 and succeeds: the task is to be removed once idle.
        # 00:20 is still running then, and 00:30 starts meanwhile (until 00:45).
        await sim.advance(timedelta(minutes=50))
        assert sched.tasks() == []
    assert calls.times == [START + timedelta(minutes=m) for m in (10, 20, 30)]


async def test_a_sync_target_runs_in_a_thread(
    sim: SimulatedClock, autojump_clock: MockClock
) -> None:
    log = MemoryLog()
    seen: list[str] = []

    def work() -> str:
        seen.append(trio.lowlevel.current_root_task.__name__)
        return "done"

    async with scheduler(log, sim) as sched:
        await sched.add("sync", At(START + timedelta(minutes=1)), work)
        await sim.advance(timedelta(minutes=2))
        assert sched.status("sync").last_result == "done"
    assert seen


async def test_one_failing_task_never_stops_another(
    sim: SimulatedClock, autojump_clock: MockClock
) -> None:
    log = MemoryLog()
    good = Calls(sim)

    async def broken() -> None:
        raise ZeroDivisionError("boom")

    async with scheduler(log, sim) as sched:
        await sched.add("broken", Every(timedelta(minutes=1)), broken)
        await sched.add("good", Every(timedelta(minutes=1)), good)
        await sim.advance(timedelta(minutes=5, seconds=30))
        assert sched.status("broken").error_count == 5
    assert len(good.times) == 5


async def test_events_starts_at_the_call_not_at_the_first_iteration(
    sim: SimulatedClock, autojump_clock: MockClock
) -> None:
    async with scheduler(MemoryLog(), sim) as sched:
        await sched.add("early", Manual(), Calls(sim))
        records = sched.events()
        await sched.add("late", Manual(), Calls(sim))
        async with contextlib.aclosing(records):
            first = await anext(records)
    assert (type(first), first.task) == (TaskDefined, "late")


async def test_events_streams_records_as_they_land(
    sim: SimulatedClock, autojump_clock: MockClock
) -> None:
    log = MemoryLog()
    seen: list[Event] = []
    async with scheduler(log, sim) as sched:

        async def listen(records: AsyncIterator[Event]) -> None:
            async for record in records:
                seen.append(record)

        async with trio.open_nursery() as nursery:
            # From the call on: the TaskDefined lands before `listen` first runs.
            nursery.start_soon(listen, sched.events())
            await sched.add("job", At(START + timedelta(minutes=1)), Calls(sim))
            await sim.advance(timedelta(minutes=2))
            nursery.cancel_scope.cancel()
        stats = sched.statistics()
    kinds = [type(r).__name__ for r in seen]
    # An At task whose one run has ended is finished: the status says so, nothing is recorded.
    assert kinds == ["TaskDefined", "Scheduled", "Started", "Completed"]
    assert (stats.tasks, stats.log_seq, stats.running) == (1, 4, 0)
    assert stats.lateness_p50 == timedelta(0)


async def test_a_file_watch_runs_on_each_content_change(
    sim: SimulatedClock, autojump_clock: MockClock, tmp_path: Path
) -> None:
    watched = tmp_path / "input.csv"
    watched.write_text("a")
    log = MemoryLog()

    async def ingest() -> None:
        pass

    async def runs_reach(count: int) -> None:
        await step_until(sim, lambda: len(of_type(log, Started)) >= count, f"{count} runs")

    async with scheduler(log, sim) as sched:
        await sched.add("ingest", FileWatch(str(watched), poll=timedelta(seconds=1)), ingest)
        await runs_reach(1)  # the first sighting: nothing was logged before
        watched.write_text("b")
        await runs_reach(2)
        watched.write_text("a")
        await runs_reach(3)
        await sim.advance(timedelta(seconds=5))
        assert sched.status("ingest").run_count == 3
    hashes = [r.content_hash for r in of_type(log, Scheduled)]
    assert hashes == [content_hash(b"a"), content_hash(b"b"), content_hash(b"a")]
    occurrences = [r.occurrence for r in of_type(log, Started)]
    assert len(set(occurrences)) == 3
    assert all(o.startswith("ingest#") for o in occurrences)


async def test_replace_cancels_the_running_run(
    sim: SimulatedClock, autojump_clock: MockClock
) -> None:
    log = MemoryLog()
    calls = Calls(sim, takes=timedelta(minutes=15))
    async with scheduler(log, sim) as sched:
        await sched.add("sync", Every(timedelta(minutes=10)), calls, overlap=Overlap.REPLACE)
        await sim.advance(timedelta(minutes=25))
    replaced = [f for f in of_type(log, Failed) if f.error == "replaced"]
    assert [f.occurrence for f in replaced] == [
        time_occurrence("sync", START + timedelta(minutes=10))
    ]
    assert calls.times[:2] == [START + timedelta(minutes=10), START + timedelta(minutes=20)]


async def test_queue_waits_for_the_running_run(
    sim: SimulatedClock, autojump_clock: MockClock
) -> None:
    log = MemoryLog()
    calls = Calls(sim, takes=timedelta(minutes=12))
    async with scheduler(log, sim) as sched:
        await sched.add("batch", Every(timedelta(minutes=10)), calls, overlap=Overlap.QUEUE)
        await sim.advance(timedelta(minutes=30))
    # The 00:20 occurrence waited for the 00:10 run (until 00:22), then ran late.
    assert calls.times[:2] == [START + timedelta(minutes=10), START + timedelta(minutes=22)]
    assert not [s for s in of_type(log, Skipped) if s.reason is SkipReason.OVERLAP]


async def test_queue_keeps_one_waiting_and_skips_further_due_times_as_they_come(
    sim: SimulatedClock, autojump_clock: MockClock
) -> None:
    log = MemoryLog()
    calls = Calls(sim, takes=timedelta(minutes=35))
    async with scheduler(log, sim) as sched:
        await sched.add("batch", Every(timedelta(minutes=10)), calls, overlap=Overlap.QUEUE)
        await sim.advance(timedelta(minutes=31))
        # 00:10 runs, 00:20 waits for it; 00:30 came while 00:20 waited.
        skipped = [s for s in of_type(log, Skipped) if s.reason is SkipReason.OVERLAP]
        at_30 = START + timedelta(minutes=30)
        assert [(s.occurrence, s.at) for s in skipped] == [
            (time_occurrence("batch", at_30), at_30)
        ]
        await sim.advance(timedelta(minutes=20))
    # 00:40 also came while 00:20 waited; 00:20 ran when 00:10 ended (00:45),
    # and 00:50 is the one waiting now.
    assert calls.times == [START + timedelta(minutes=10), START + timedelta(minutes=45)]
    skipped = [s.occurrence for s in of_type(log, Skipped) if s.reason is SkipReason.OVERLAP]
    assert skipped == [time_occurrence("batch", START + timedelta(minutes=m)) for m in (30, 40)]
    (waiting,) = [s for s in of_type(log, Scheduled) if s.at == START + timedelta(minutes=45)]
    assert waiting.due == START + timedelta(minutes=50)


async def test_a_pause_ends_a_queue_wait(sim: SimulatedClock, autojump_clock: MockClock) -> None:
    log = MemoryLog()
    calls = Calls(sim, takes=timedelta(minutes=35))
    async with scheduler(log, sim) as sched:
        await sched.add("batch", Every(timedelta(minutes=10)), calls, overlap=Overlap.QUEUE)
        await sim.advance(timedelta(minutes=25))  # 00:20 waits for the 00:10 run
        await sched.pause("batch")
        await sim.advance(timedelta(minutes=60))
    # The waiting occurrence is skipped by the pause and never starts; nothing
    # is recorded for due times while paused.
    assert calls.times == [START + timedelta(minutes=10)]
    reasons = [(s.occurrence, s.reason) for s in of_type(log, Skipped)]
    waited = time_occurrence("batch", START + timedelta(minutes=20))
    assert reasons == [(waited, SkipReason.PAUSED)]


async def test_a_clock_jump_while_queued_skips_each_due_time_it_passes_once(
    sim: SimulatedClock, autojump_clock: MockClock
) -> None:
    log = MemoryLog()
    calls = Calls(sim, takes=timedelta(hours=2))
    async with scheduler(log, sim) as sched:
        await sched.add("batch", Every(timedelta(minutes=10)), calls, overlap=Overlap.QUEUE)
        await sim.advance(timedelta(minutes=25))
        sim.jump(timedelta(minutes=41))  # 00:25 -> 01:06: 00:30 ... 01:00 pass at once
        await sim.advance(timedelta(minutes=1))
        # 00:30 to 01:00 passed at once: one record for the four of them.
        (skipped,) = of_type(log, Skipped)
        assert skipped.occurrence == time_occurrence("batch", START + timedelta(minutes=30))
        assert (skipped.last_due, skipped.count) == (START + timedelta(minutes=60), 4)
        assert skipped.reason is SkipReason.OVERLAP
        await sim.advance(timedelta(hours=2))
    # Each due time has one record at most; 00:20 ran once its turn came.
    occurrences = [r.occurrence for r in of_type(log, (Skipped, Started))]
    assert len(occurrences) == len(set(occurrences))
    assert_nothing_lost(log, until=START + timedelta(hours=3))
    assert calls.times[:2] == [START + timedelta(minutes=10), START + timedelta(minutes=130)]


async def test_max_concurrent_makes_runs_late_never_lost(
    sim: SimulatedClock, autojump_clock: MockClock
) -> None:
    log = MemoryLog()
    calls = Calls(sim, takes=timedelta(minutes=1))
    async with scheduler(log, sim, max_concurrent=1) as sched:
        for name in ("a", "b", "c"):
            await sched.add(name, At(START + timedelta(minutes=5)), calls)
        await sim.advance(timedelta(minutes=10))
    due = START + timedelta(minutes=5)
    assert calls.times == [due, due + timedelta(minutes=1), due + timedelta(minutes=2)]
    assert len(of_type(log, Started)) == 3


async def test_jitter_is_deterministic_and_bounded(
    sim: SimulatedClock, autojump_clock: MockClock
) -> None:
    log = MemoryLog()
    calls = Calls(sim)
    async with scheduler(log, sim) as sched:
        await sched.add("spread", Every(timedelta(hours=1)), calls, jitter=timedelta(minutes=10))
        await sim.advance(timedelta(hours=5))
    offsets = [t - (START + timedelta(hours=n)) for n, t in enumerate(calls.times, start=1)]
    assert len(offsets) == 4
    assert all(timedelta(0) <= o < timedelta(minutes=10) for o in offsets)
    assert offsets == [
        jitter_for(time_occurrence("spread", START + timedelta(hours=n)), timedelta(minutes=10))
        for n in range(1, 5)
    ]


async def test_a_backward_clock_jump_never_reruns_a_settled_occurrence(
    sim: SimulatedClock, autojump_clock: MockClock
) -> None:
    log = MemoryLog()
    calls = Calls(sim)
    async with scheduler(log, sim) as sched:
        await sched.add("hourly", Cron("0 * * * *"), calls)
        await sim.advance(timedelta(hours=2, minutes=30))
        sim.jump(timedelta(hours=-2))  # NTP steps the clock back two hours
        await sim.advance(timedelta(hours=3))
    occurrences = [r.occurrence for r in of_type(log, Started)]
    assert len(occurrences) == len(set(occurrences))
    assert len(calls.times) == 3  # 13:00, 14:00 before the jump; 15:00 after catching up


async def test_max_runs_finishes_the_task(sim: SimulatedClock, autojump_clock: MockClock) -> None:
    log = MemoryLog()
    calls = Calls(sim)
    async with scheduler(log, sim) as sched:
        await sched.add("thrice", Every(timedelta(minutes=1)), calls, max_runs=3)
        await sim.advance(timedelta(minutes=10))
        status = sched.status("thrice")
    assert len(calls.times) == 3
    assert status.finished
    assert (status.state, status.paused, status.next_run) == ("finished", False, None)


async def test_a_forward_clock_jump_goes_through_catch_up(
    sim: SimulatedClock, autojump_clock: MockClock
) -> None:
    log = MemoryLog()
    calls = Calls(sim)
    async with scheduler(log, sim) as sched:
        await sched.add("hourly", Cron("0 * * * *"), calls, catch_up=CatchUp.LATEST)
        await sim.advance(timedelta(minutes=30))
        sim.jump(timedelta(hours=5))  # a laptop wakes from suspend
        await sim.advance(timedelta(minutes=1))
    (missed,) = [s for s in of_type(log, Skipped) if s.reason is SkipReason.MISSED]
    assert missed.occurrence == time_occurrence("hourly", START + timedelta(hours=1))
    assert (missed.last_due, missed.count) == (START + timedelta(hours=4), 4)
    assert missed.at == START + timedelta(hours=5, minutes=30)
    assert calls.times == [START + timedelta(hours=5, minutes=30)]  # 17:00, run late


async def test_catch_up_none_and_misfire_grace(
    sim: SimulatedClock, autojump_clock: MockClock
) -> None:
    for policy, grace, expected_runs in (
        (CatchUp.NONE, None, 0),
        (CatchUp.ALL, None, 5),
        (CatchUp.ALL, timedelta(hours=2, minutes=45), 3),  # 03:00, 04:00 and 05:00 are fresh
    ):
        log = MemoryLog()
        calls = Calls(sim)
        start = sim.now()
        async with scheduler(log, sim) as sched:
            await sched.add(
                "hourly",
                Every(timedelta(hours=1), anchor=start),
                calls,
                catch_up=policy,
                misfire_grace=grace,
            )
            sim.jump(timedelta(hours=5, minutes=30))
            await sim.advance(timedelta(minutes=1))
        assert len(calls.times) == expected_runs, policy
        missed = [s for s in of_type(log, Skipped) if s.reason is SkipReason.MISSED]
        # The due times that do not run are one record, whatever their number.
        assert [(s.due, s.count) for s in missed] == (
            [(start + timedelta(hours=1), 5 - expected_runs)] if expected_runs < 5 else []
        )


async def test_a_target_that_cannot_be_imported_pauses_its_task(
    sim: SimulatedClock, autojump_clock: MockClock
) -> None:
    defined = TaskDefined(
        seq=1,
        task="legacy",
        at=START,
        trigger=Every(timedelta(minutes=1), anchor=START),
        target="nowhere.to.be.found:job",
    )
    log = MemoryLog([defined])
    async with scheduler(log, sim) as sched:
        await sim.advance(timedelta(minutes=5))
        status = sched.status("legacy")
        assert status.paused
        assert "cannot import module 'nowhere.to.be.found'" in status.note
        # Declaring it again with a callable binds it and resumes it.
        calls = Calls(sim)
        await sched.add("legacy", Every(timedelta(minutes=1), anchor=START), calls)
        assert not sched.status("legacy").paused
        await sim.advance(timedelta(minutes=2, seconds=30))
    # Resumed at 12:05, it runs from then on (a due time at the very instant of a
    # resume included: 12:05, 12:06, 12:07); the pause is not caught up.
    assert calls.times == [START + timedelta(minutes=m) for m in (5, 6, 7)]


async def test_serve_scheduler_runs_in_a_nursery_until_cancelled(
    sim: SimulatedClock, autojump_clock: MockClock
) -> None:
    log = MemoryLog()
    calls = Calls(sim)
    async with trio.open_nursery() as nursery:
        sched = await nursery.start(functools.partial(serve_scheduler, log, clock=sim))
        await sched.add("job", Every(timedelta(minutes=1)), calls)
        await sim.advance(timedelta(minutes=3, seconds=30))
        nursery.cancel_scope.cancel()  # the scheduler shuts down gracefully
    assert len(calls.times) == 3
    assert check_invariants(log.read()) == []


async def test_new_york_spring_forward_and_fall_back_exact_instants(
    autojump_clock: MockClock,
) -> None:
    sim = SimulatedClock(datetime(2026, 3, 7, tzinfo=UTC), mock_clock=autojump_clock)
    spring = Calls(sim)
    log = MemoryLog()
    async with scheduler(log, sim) as sched:
        await sched.add("backup", Cron("30 2 * * *", tz="America/New_York"), spring)
        await sim.sleep_until(datetime(2026, 3, 10, tzinfo=UTC))
    assert spring.times == [
        datetime(2026, 3, 7, 7, 30, tzinfo=UTC),  # 02:30 EST
        datetime(2026, 3, 8, 7, 0, tzinfo=UTC),  # 02:30 does not exist: 03:00 EDT
        datetime(2026, 3, 9, 6, 30, tzinfo=UTC),  # 02:30 EDT
    ]
    sim.jump(datetime(2026, 10, 31, tzinfo=UTC) - sim.now())  # skip to the autumn
    hourly = Calls(sim)
    log = MemoryLog()
    async with scheduler(log, sim) as sched:
        await sched.add("hourly", Cron("0 * * * *", tz="America/New_York"), hourly)
        await sim.sleep_until(datetime(2026, 11, 2, 4, 30, tzinfo=UTC))
    new_york = ZoneInfo("America/New_York")
    on_the_day = [
        t for t in hourly.times if t.astimezone(new_york).date().isoformat() == "2026-11-01"
    ]
    assert len(on_the_day) == 25  # the repeated 01:00 hour runs twice


async def test_a_deleted_watched_file_is_a_status_not_a_crash(
    sim: SimulatedClock, autojump_clock: MockClock, tmp_path: Path
) -> None:
    watched = tmp_path / "input.csv"
    watched.write_text("a")
    log = MemoryLog()
    other = Calls(sim)

    async with scheduler(log, sim) as sched:
        await sched.add("ingest", FileWatch(str(watched), poll=timedelta(seconds=1)), Calls(sim))
        await sched.add("other", Every(timedelta(minutes=1)), other)
        await step_until(sim, lambda: len(of_type(log, Started, "ingest")) == 1, "a run")
        assert sched.status("ingest").problem is None
        watched.unlink()
        await step_until(sim, lambda: sched.status("ingest").problem is not None, "a problem")
        status = sched.status("ingest")
        assert status.problem == (
            f"file {watched} does not exist; it fires again once the file can be read"
        )
        assert not status.paused
        assert [s.problem for s in sched.tasks() if s.name == "ingest"] == [status.problem]
        # The log does not record the observation: a replay has no problem.
        assert replay(log.read()).status("ingest").problem is None
        watched.write_text("b")
        await step_until(sim, lambda: len(of_type(log, Started, "ingest")) == 2, "a second run")
        assert sched.status("ingest").problem is None
        await sim.advance(timedelta(minutes=2))
    assert other.times  # the other task ran on as usual
    assert not of_type(log, Failed)


async def test_cancellation_from_outside_shuts_down_without_losing_the_pending_run(
    sim: SimulatedClock, autojump_clock: MockClock
) -> None:
    log = MemoryLog()
    slow = Calls(sim, takes=timedelta(hours=2))
    with trio.move_on_after(90):  # mock-clock seconds: cancels mid-run
        async with open_scheduler(log, clock=sim, shutdown_grace=timedelta(seconds=5)) as sched:
            await sched.add("slow", Cron("* * * * *"), slow)
            await trio.sleep_forever()
    assert len(slow.times) == 1
    (failed,) = of_type(log, Failed)
    assert failed.error == "shutdown"
    state = replay(log.read())
    # The next occurrence stays scheduled for a restart to run it on time.
    assert [run.outcome for run in state.open_occurrences("slow")] == [Outcome.SCHEDULED]
    assert check_invariants(log.read()) == []
    async with scheduler(log, sim) as sched:
        await sched.add("slow", Cron("* * * * *"), slow)  # as an application restarts
        await sim.advance(timedelta(minutes=1))
    assert slow.times[1] == START + timedelta(minutes=2)


def test_ctrl_c_records_the_shutdown_and_propagates() -> None:
    log = MemoryLog()
    sim = SimulatedClock(START)
    slow = Calls(sim, takes=timedelta(hours=2))

    async def main() -> None:
        async with open_scheduler(log, clock=sim, shutdown_grace=timedelta(0)) as sched:
            await sched.add("slow", Cron("* * * * *"), slow)
            await sim.advance(timedelta(minutes=1, seconds=30))
            signal.raise_signal(signal.SIGINT)  # as the user pressing Ctrl-C
            await trio.sleep_forever()

    with pytest.raises(KeyboardInterrupt):
        trio.run(main, clock=sim.trio_clock)
    assert len(slow.times) == 1
    (failed,) = of_type(log, Failed)
    assert failed.error == "shutdown"
    assert check_invariants(log.read()) == []
    assert replay(log.read()).status("slow").running == ()


async def test_an_error_in_the_body_propagates_as_raised_after_a_graceful_shutdown(
    sim: SimulatedClock, autojump_clock: MockClock
) -> None:
    log = MemoryLog()
    calls = Calls(sim)

    async def application() -> None:
        async with open_scheduler(log, clock=sim) as sched:
            await sched.add("job", Every(timedelta(minutes=1)), calls)
            await sim.advance(timedelta(minutes=1, seconds=30))
            raise ValueError("application bug")

    with pytest.raises(ValueError, match="application bug"):
        await application()
    assert len(calls.times) == 1
    assert check_invariants(log.read()) == []


async def test_run_now_on_a_busy_task_never_races_its_actor(
    sim: SimulatedClock, autojump_clock: MockClock
) -> None:
    log = MemoryLog()
    busy = Calls(sim, takes=timedelta(seconds=50))
    async with scheduler(log, sim) as sched:
        await sched.add("busy", Every(timedelta(minutes=1)), busy, overlap=Overlap.SKIP)
        for _ in range(30):
            await sim.advance(timedelta(seconds=17))
            await sched.run_now("busy")
    manual = [r for r in of_type(log, Started) if "#" in r.occurrence or "!" in r.occurrence]
    assert len(manual) == 30
    # Only time-based occurrences are ever skipped for overlap.
    assert all("@" in r.occurrence for r in of_type(log, Skipped))


async def test_a_changed_policy_keeps_the_pending_occurrence(
    sim: SimulatedClock, autojump_clock: MockClock
) -> None:
    """A deploy at 02:59 that changes the backup's timeout keeps tonight's 03:00 run."""
    log = MemoryLog()
    backup = Calls(sim)
    async with scheduler(log, sim) as sched:
        await sched.add("backup", Cron("0 13 * * *"), backup)
        await sim.sleep_until(START + timedelta(minutes=59))
        await sched.add("backup", Cron("0 13 * * *"), backup, timeout=timedelta(minutes=5))
        await sim.advance(timedelta(minutes=2))
        assert sched.status("backup").version == 2
        # A new trigger that does not fire at 13:00 tomorrow skips that one.
        await sched.add("backup", Cron("30 13 * * *"), backup)
    assert backup.times == [START + timedelta(hours=1)]
    (redefined,) = of_type(log, Skipped)
    assert redefined.reason is SkipReason.REDEFINED
    assert redefined.occurrence == time_occurrence("backup", START + timedelta(days=1, hours=1))


async def test_catch_up_all_runs_the_latest_missed_ones_and_latest_runs_one(
    sim: SimulatedClock, autojump_clock: MockClock
) -> None:
    for catch_up, limit, expected_runs in ((CatchUp.ALL, 3, 3), (CatchUp.LATEST, 3, 1)):
        log = MemoryLog()
        calls = Calls(sim)
        async with scheduler(log, sim) as sched:
            await sched.add(
                "hourly", Cron("0 * * * *"), calls, catch_up=catch_up, catch_up_limit=limit
            )
        down_since = sim.now().replace(minute=0, second=0, microsecond=0)
        sim.jump(timedelta(hours=10))  # stopped for ten hours
        async with scheduler(log, sim) as sched:
            await sched.add(
                "hourly", Cron("0 * * * *"), calls, catch_up=catch_up, catch_up_limit=limit
            )
            await sim.advance(timedelta(seconds=1))
        (missed,) = [r for r in of_type(log, Skipped) if r.reason is SkipReason.MISSED]
        ran = [r.occurrence for r in of_type(log, Started)]
        assert len(ran) == expected_runs, catch_up
        # Every missed due time has a record: the runs, and one range for the rest.
        assert missed.count + len(ran) == 10
        # The ones that ran are the latest; everything older was skipped.
        assert missed.last_due == down_since + timedelta(hours=10 - expected_runs)
        assert ran == [
            time_occurrence("hourly", down_since + timedelta(hours=h))
            for h in range(11 - expected_runs, 11)
        ]


async def test_cancel_stops_a_waiting_retry(
    sim: SimulatedClock, autojump_clock: MockClock
) -> None:
    log = MemoryLog()
    flaky = Calls(sim, fail=10)
    async with scheduler(log, sim) as sched:
        await sched.add(
            "flaky",
            At(START + timedelta(minutes=1)),
            flaky,
            retry=Retry(max_attempts=5, backoff=timedelta(minutes=5)),
        )
        await sim.advance(timedelta(minutes=2))
        assert await sched.cancel("flaky") == 1
        await sim.advance(timedelta(hours=1))
    assert len(flaky.times) == 1  # the retry never ran
    (cancelled,) = of_type(log, Skipped)
    assert cancelled.reason is SkipReason.CANCELLED


async def test_a_run_cut_off_by_shutdown_is_retried_by_the_next_start(
    sim: SimulatedClock, autojump_clock: MockClock
) -> None:
    log = MemoryLog()
    slow = Calls(sim, takes=timedelta(minutes=10))
    retry = Retry(max_attempts=2, backoff=timedelta(seconds=30))
    async with scheduler(log, sim, shutdown_grace=timedelta(seconds=5)) as sched:
        await sched.add("slow", At(START + timedelta(minutes=1)), slow, retry=retry)
        await sim.advance(timedelta(minutes=2))
    (cut_off,) = of_type(log, Failed)
    assert cut_off.error == "shutdown"
    assert cut_off.retry_at is not None
    async with scheduler(log, sim) as sched:
        await sched.add("slow", At(START + timedelta(minutes=1)), slow, retry=retry)
        await sim.advance(timedelta(minutes=15))
    assert len(slow.times) == 2
    assert [r.attempt for r in of_type(log, Completed)] == [2]


async def test_shutdown_starts_nothing_that_waited_for_a_slot(
    sim: SimulatedClock, autojump_clock: MockClock
) -> None:
    log = MemoryLog()
    calls = [Calls(sim, takes=timedelta(minutes=15)) for _ in range(3)]
    async with scheduler(log, sim, max_concurrent=1, shutdown_grace=timedelta(0)) as sched:
        for n, target in enumerate(calls):
            await sched.add(f"job-{n}", At(START + timedelta(minutes=1)), target)
        await sim.advance(timedelta(minutes=5))
    assert sum(len(target.times) for target in calls) == 1
    # Every Started in the log belongs to a run that really started.
    assert len(of_type(log, Started)) == 1


async def test_a_bad_policy_choice_is_a_config_error(
    sim: SimulatedClock, autojump_clock: MockClock
) -> None:
    async with scheduler(MemoryLog(), sim) as sched:
        with pytest.raises(ConfigError, match=r"overlap must be one of Overlap.SKIP"):
            await sched.add("x", Every(timedelta(minutes=1)), Calls(sim), overlap="bogus")  # type: ignore[arg-type]


async def test_a_manual_run_recorded_while_stopped_runs_at_the_next_start(
    sim: SimulatedClock, autojump_clock: MockClock
) -> None:
    log = MemoryLog()
    hourly = Calls(sim)
    async with scheduler(log, sim) as sched:
        await sched.add("hourly", Every(timedelta(hours=1)), hourly)
        await sched.pause("hourly")
    # As `chronolog run-now` does when no scheduler runs: record it, start nothing.
    occurrence = manual_occurrence("hourly")
    await log.append(
        [Scheduled(task="hourly", at=sim.now(), occurrence=occurrence, due=sim.now())]
    )
    sim.jump(timedelta(hours=3))
    async with scheduler(log, sim) as sched:
        await sched.add("hourly", Every(timedelta(hours=1)), hourly)
        await sim.advance(timedelta(minutes=1))
        assert sched.status("hourly").paused  # a manual run also runs when paused
    assert [r.occurrence for r in of_type(log, Started)] == [occurrence]
    assert not of_type(log, Skipped, "hourly") or all(
        r.occurrence != occurrence for r in of_type(log, Skipped)
    )


async def test_a_new_trigger_runs_its_own_next_due_time_first(autojump_clock: MockClock) -> None:
    """Found by the state machine: the old pending occurrence (03:00 CEST on the
    spring-forward night) is also a due time of the new trigger, but not its
    next one. It is kept, and the new trigger's earlier due times run before it."""
    sim = SimulatedClock(datetime(2026, 3, 28, 22, 0, tzinfo=UTC), mock_clock=autojump_clock)
    log = MemoryLog()
    calls = Calls(sim)
    kept = datetime(2026, 3, 29, 1, 0, tzinfo=UTC)  # 03:00 CEST
    async with scheduler(log, sim) as sched:
        status = await sched.add("alpha", Cron("30 2 * * *", tz="Europe/Berlin"), calls)
        assert status.next_run == kept
        status = await sched.add("alpha", Cron("*/15 * * * *", tz="Europe/Berlin"), calls)
        assert status.next_run == datetime(2026, 3, 28, 22, 15, tzinfo=UTC)
        await sim.advance(timedelta(minutes=16))
        assert calls.times == [datetime(2026, 3, 28, 22, 15, tzinfo=UTC)]
        await sim.advance(kept + timedelta(seconds=1) - sim.now())
    assert of_type(log, Skipped) == []
    assert calls.times[-1] == kept
    started = [r.occurrence for r in of_type(log, Started)]
    assert len(started) == len(set(started)) == 12  # 22:15 ... 03:00 CEST, each once


async def test_two_actors_claiming_one_task_run_each_occurrence_once(
    sim: SimulatedClock, autojump_clock: MockClock
) -> None:
    """Defence in depth: should a second actor for a task ever exist (a bug; or,
    with a shared log, another node), the log writer's claim check lets one
    claim per attempt through. Without the check each occurrence runs twice."""
    log = MemoryLog()
    calls = Calls(sim)
    async with scheduler(log, sim) as sched:
        await sched.add("tick", Every(timedelta(minutes=1)), calls)
        twin = TaskActor(sched, "tick")
        twin.target = calls
        twin.notify()  # awake: it plans on its own, as the scheduler's actor does
        await sim.advance(timedelta(minutes=5, seconds=30))
    started = [r.occurrence for r in of_type(log, Started)]
    assert len(started) == len(set(started)) == 5
    assert len(calls.times) == 5


async def test_a_due_time_at_the_instant_of_a_resume_runs_though_a_later_one_was_planned(
    sim: SimulatedClock, autojump_clock: MockClock
) -> None:
    """Found by the scheduler state machine: paused and resumed at 12:00, on a
    due time of */15, with 12:15 still scheduled from before the pause. The
    resume counts from just before its instant, so 12:00 runs."""
    log = MemoryLog()
    calls = Calls(sim)
    with trio.fail_after(3600):
        async with scheduler(log, sim) as sched:
            await sched.add("q", Cron("*/15 * * * *"), calls)
            await sched.pause("q")
            await sched.resume("q")
            await sim.advance(timedelta(minutes=16))
    assert calls.times == [START, START + timedelta(minutes=15)]


# -- adding many tasks with one write (Scheduler.batch) ----------------------


async def test_a_batch_records_its_definitions_in_one_write_and_each_task_runs(
    sim: SimulatedClock, autojump_clock: MockClock
) -> None:
    log = MemoryLog()
    calls = Calls(sim)
    due = START + timedelta(minutes=5)
    async with scheduler(log, sim) as sched:
        before = sched.statistics()
        with trio.fail_after(60):
            async with sched.batch() as batch:
                for n in range(300):
                    batch.add(f"job-{n:03}", At(due), calls)
                batch.add("tick", Every(timedelta(minutes=2)), calls, overlap=Overlap.ALLOW)
                assert len(batch) == 301
        after = sched.statistics()
        assert after.batches - before.batches == 1
        assert after.log_seq - before.log_seq == 2 * 301  # TaskDefined + Scheduled each
        assert sched.status("job-000").next_run == due
        assert sched.status("tick").next_run == START + timedelta(minutes=2)
        await sim.advance(timedelta(minutes=5, seconds=1))
    started = [r.occurrence for r in of_type(log, Started)]
    assert len(started) == len(set(started)) == 300 + 2  # tick ran at 12:02 and 12:04


async def test_a_bad_definition_in_a_batch_raises_there_and_nothing_is_written(
    sim: SimulatedClock, autojump_clock: MockClock
) -> None:
    log = MemoryLog()
    calls = Calls(sim)
    async with scheduler(log, sim) as sched:
        await sched.add("kept", Cron("0 3 * * *"), calls)
        seq = sched.state.seq
        for bad, error, words in [
            (lambda b: b.add("x" * 201, Cron("0 4 * * *"), calls), ConfigError, "201 characters"),
            (lambda b: b.add("no-call", Cron("0 4 * * *"), "job"), ConfigError, "no-call"),
            (lambda b: b.add("job-1", Cron("0 4 * * *"), calls), ConfigError, "twice"),
            (
                lambda b: b.add("kept", Cron("0 4 * * *"), calls, if_exists="error"),
                DuplicateTask,
                "kept",
            ),
            (lambda b: b.add("late", At(START), calls, max_runs=0), ConfigError, "max_runs"),
        ]:
            with pytest.raises(error, match=words):  # noqa: PT012 - the whole batch
                async with sched.batch() as batch:
                    batch.add("job-0", Cron("0 4 * * *"), calls)
                    batch.add("job-1", Cron("0 5 * * *"), calls)
                    bad(batch)
                    batch.add("job-2", Cron("0 6 * * *"), calls)
            assert sched.state.seq == seq
            assert [status.name for status in sched.tasks()] == ["kept"]
        # An error of the caller's own in the block abandons the batch as well.
        with pytest.raises(RuntimeError, match="changed my mind"):  # noqa: PT012
            async with sched.batch() as batch:
                batch.add("job-0", Cron("0 4 * * *"), calls)
                raise RuntimeError("changed my mind")
        assert sched.state.seq == seq
        with pytest.raises(ChronologError, match="written already"):
            batch.add("job-3", Cron("0 4 * * *"), calls)


async def test_a_batch_declaring_tasks_again_follows_adds_rules(
    sim: SimulatedClock, autojump_clock: MockClock
) -> None:
    log = MemoryLog()
    calls = Calls(sim)
    async with scheduler(log, sim) as sched:
        await sched.add("same", Cron("0 3 * * *"), calls)
        await sched.add("changed", Cron("0 3 * * *"), calls)
        seq = sched.state.seq
        async with sched.batch() as batch:
            batch.add("same", Cron("0 3 * * *"), calls)  # identical: nothing to record
            batch.add("changed", Cron("0 4 * * *"), calls, if_exists="keep")
        assert sched.state.seq == seq
        async with sched.batch() as batch:
            batch.add("changed", Cron("0 4 * * *"), calls)
        assert sched.state.definition("changed").version == 2
        assert [r.reason for r in of_type(log, Skipped, "changed")] == [SkipReason.REDEFINED]
        assert sched.status("changed").next_run == datetime(2026, 3, 28, 4, 0, tzinfo=UTC)


@pytest.mark.parametrize("kind", ["memory", "file"])
async def test_due_runs_are_claimed_from_the_alarm_with_no_actor_task(
    sim: SimulatedClock,
    autojump_clock: MockClock,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
) -> None:
    """A dormant actor whose occurrence comes due claims it right from its alarm,
    and a new task's actor dozes until its first due time: adding and running a
    burst of one-offs and a crowd of recurring tasks start no actor task at all
    (the claim still comes before the run, and each occurrence runs once)."""
    activations: list[str] = []
    activate = Scheduler.activate

    def counting(self: Scheduler, actor: TaskActor) -> bool:
        activations.append(actor.name)
        return activate(self, actor)

    monkeypatch.setattr(Scheduler, "activate", counting)
    log = MemoryLog() if kind == "memory" else FileLog(tmp_path / "jobs.jsonl")
    ran: list[tuple[str, datetime]] = []

    async def job() -> None:
        run = current_run()
        ran.append((run.task, sim.now()))
        # Write-ahead: the claim of this very attempt is in the state already.
        assert sched.state.occurrence_state(run.task, run.occurrence, run.due).name == "RUNNING"

    due = START + timedelta(minutes=5)
    async with open_scheduler(log, clock=sim) as sched:
        async with sched.batch() as batch:
            for n in range(300):
                batch.add(f"once-{n:03}", At(due), job)
            for n in range(20):
                batch.add(f"tick-{n:02}", Every(timedelta(minutes=1)), job)
        # New tasks doze until their first due time without a step of their
        # own (add() scheduled it), and claim each due time from the alarm.
        await sim.advance(timedelta(minutes=10, seconds=30))
        assert activations == []
        records = list(sched.log.read())
        assert replay(records) == sched.state
    assert check_invariants(records) == []
    assert sorted(ran).count(("once-000", due)) == 1
    assert len([task for task, _ in ran if task.startswith("once-")]) == 300
    assert len([task for task, _ in ran if task == "tick-00"]) == 10
    started = [r.occurrence for r in records if isinstance(r, Started)]
    assert len(started) == len(set(started)) == 300 + 20 * 10


class _Counter:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1

    def bump(self) -> None:
        self.count += 1


async def test_a_callable_object_is_never_run_as_its_class_after_a_restart(
    sim: SimulatedClock, autojump_clock: MockClock
) -> None:
    """Its class's import path would construct a new object, not call this one:
    the path recorded for an object (or a method bound to one) is not importable,
    so a restart that does not give it again pauses the task and says why."""
    log = MemoryLog()
    counter = _Counter()
    async with scheduler(log, sim) as sched:
        await sched.add("object", Every(timedelta(minutes=1)), counter)
        await sched.add("method", Every(timedelta(minutes=1)), counter.bump)
        await sim.advance(timedelta(minutes=1, seconds=1))
    assert counter.count == 2
    targets = {r.task: r.target for r in log.read() if isinstance(r, TaskDefined)}
    assert targets == {
        "object": "tests.test_scheduler:<_Counter object>",
        "method": "tests.test_scheduler:<_Counter.bump of a _Counter object>",
    }
    async with scheduler(log, sim) as sched:
        await sim.advance(timedelta(minutes=2))
        for name in ("object", "method"):
            status = sched.status(name)
            assert status.paused
            assert "callable object has no import path" in status.note
    assert not [r for r in log.read() if isinstance(r, Failed)]
