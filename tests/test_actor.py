"""Task actors, driven through the public API on simulated time: everyday
operations that must never cost a run, and what a job raises.

Every test ends with the scheduler's two promises checked against the log:
live state == replay(log), and no invariant broken.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import logging
import os
import signal
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
import trio

from chronolog import (
    At,
    CatchUp,
    Completed,
    Cron,
    Every,
    Failed,
    MemoryLog,
    Overlap,
    Scheduled,
    Scheduler,
    Skipped,
    SkipReason,
    Started,
    TaskPaused,
    check_invariants,
    occurrence_id,
    open_scheduler,
    replay,
)
from chronolog.testing import SimulatedClock, assert_nothing_lost

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Sequence

    from trio.testing import MockClock

    from chronolog import Event

START = datetime(2026, 3, 27, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


@pytest.fixture
def sim(autojump_clock: MockClock) -> SimulatedClock:
    return SimulatedClock(START, mock_clock=autojump_clock)


def assert_sound(log: MemoryLog, sched: Scheduler | None = None) -> None:
    records = list(log.read())
    if sched is not None:
        assert replay(records) == sched.state
    assert check_invariants(records) == []


@contextlib.asynccontextmanager
async def scheduler(
    log: MemoryLog, sim: SimulatedClock, **options: Any
) -> AsyncIterator[Scheduler]:
    async with open_scheduler(log, clock=sim, **options) as sched:
        yield sched
        assert_sound(log, sched)
    assert_sound(log)


def of_type(log: MemoryLog, kind: type, task: str | None = None) -> list[Any]:
    return [r for r in log.read() if isinstance(r, kind) and (task is None or r.task == task)]


class Calls:
    """A target that records when it ran; it can take time."""

    def __init__(self, sim: SimulatedClock, takes: timedelta | None = None) -> None:
        self.sim = sim
        self.takes = takes
        self.times: list[datetime] = []

    async def __call__(self) -> None:
        self.times.append(self.sim.now())
        if self.takes is not None:
            await self.sim.sleep_until(self.sim.now() + self.takes)


async def advance_to(sim: SimulatedClock, when: datetime) -> None:
    await sim.advance(when - sim.now())


# -- pause ---------------------------------------------------------------------------


async def test_a_five_minute_pause_in_the_afternoon_keeps_tonights_run(
    sim: SimulatedClock, autojump_clock: MockClock
) -> None:
    log = MemoryLog()
    backup = Calls(sim)
    tonight = datetime(2026, 3, 28, 1, 30, tzinfo=UTC)  # 02:30 CET
    async with scheduler(log, sim) as sched:
        await sched.add("backup", Cron("30 2 * * *", tz="Europe/Berlin"), backup)
        await advance_to(sim, datetime(2026, 3, 27, 13, 0, tzinfo=UTC))
        await sched.pause("backup", note="maintenance")
        assert sched.status("backup").next_run == tonight
        await sim.advance(timedelta(minutes=5))
        await sched.resume("backup")
        await advance_to(sim, tonight + MINUTE)
    assert backup.times == [tonight]
    assert of_type(log, Skipped) == []


async def test_an_immediate_pause_and_resume_keeps_the_pending_run(
    sim: SimulatedClock, autojump_clock: MockClock
) -> None:
    log = MemoryLog()
    calls = Calls(sim)
    async with scheduler(log, sim) as sched:
        await sched.add("tick", Every(timedelta(minutes=10)), calls)
        await sched.pause("tick")
        await sched.resume("tick")
        await sim.advance(timedelta(minutes=25))
    # 12:10, pending through the pause, runs. So does 12:00: the grid is
    # anchored at the add, and a resume counts due times from just before its
    # instant ("the first due time at or after the resume", DESIGN.md).
    assert calls.times == [START + timedelta(minutes=m) for m in (0, 10, 20)]
    assert of_type(log, Skipped) == []


async def test_a_pause_over_the_due_time_skips_it_once_when_it_comes(
    sim: SimulatedClock, autojump_clock: MockClock
) -> None:
    log = MemoryLog()
    calls = Calls(sim)
    async with scheduler(log, sim) as sched:
        await sched.add("tick", Every(timedelta(minutes=10)), calls)
        await sim.advance(timedelta(minutes=5))
        await sched.pause("tick")
        await sim.advance(timedelta(minutes=43))  # 12:48: 12:10 ... 12:40 came while paused
        (skipped,) = of_type(log, Skipped)
        # Recorded when its due time came, not when the pause began.
        assert (skipped.occurrence, skipped.reason, skipped.at) == (
            occurrence_id("tick", START + timedelta(minutes=10)),
            SkipReason.PAUSED,
            START + timedelta(minutes=10),
        )
        assert sched.status("tick").next_run is None  # nothing planned while paused
        await sched.resume("tick")
        await sim.advance(timedelta(minutes=13))
    # Resumed at 12:48: from 12:50 on, the paused period is not caught up.
    assert calls.times == [START + timedelta(minutes=50), START + timedelta(minutes=60)]


async def test_a_paused_one_off_is_skipped_at_its_due_time_not_after_its_jitter(
    sim: SimulatedClock, autojump_clock: MockClock
) -> None:
    log = MemoryLog()
    calls = Calls(sim)
    async with scheduler(log, sim) as sched:
        await sched.add(
            "tick", At(START + timedelta(minutes=10)), calls, jitter=timedelta(hours=1)
        )
        await sched.pause("tick")
        await sim.advance(timedelta(hours=2))
        status = sched.status("tick")
    assert calls.times == []
    (skipped,) = of_type(log, Skipped)
    assert (skipped.reason, skipped.at) == (SkipReason.PAUSED, START + timedelta(minutes=10))
    assert (status.state, status.skip_count) == ("finished", 1)


# -- redefinition ----------------------------------------------------------------------


async def test_a_redefinition_of_only_the_timeout_after_a_pause_keeps_the_pending_run(
    sim: SimulatedClock, autojump_clock: MockClock
) -> None:
    log = MemoryLog()
    calls = Calls(sim)
    trigger = Cron("0 13 * * *")
    async with scheduler(log, sim) as sched:
        await sched.add("report", trigger, calls)
        await sched.pause("report")
        await sched.resume("report")
        status = await sched.add("report", trigger, calls, timeout=timedelta(minutes=5))
        assert (status.version, status.next_run) == (2, START + timedelta(hours=1))
        await sim.advance(timedelta(hours=2))
    assert calls.times == [START + timedelta(hours=1)]
    assert of_type(log, Skipped) == []


async def job_of_main() -> None:
    """Stands for the same job started as `python app.py` (module __main__)."""


job_of_main.__module__ = "__main__"


async def job_of_app() -> None:
    """... and as `python -c 'import app; app.main()'` (module app)."""


async def test_a_target_that_changes_only_its_import_path_keeps_the_pending_run(
    sim: SimulatedClock, autojump_clock: MockClock
) -> None:
    log = MemoryLog()
    async with scheduler(log, sim) as sched:
        first = await sched.add("report", Every(timedelta(minutes=10)), job_of_main)
        await sim.advance(timedelta(minutes=3))
        second = await sched.add("report", Every(timedelta(minutes=10)), job_of_app)
        assert first.target != second.target
        assert second.next_run == first.next_run == START + timedelta(minutes=10)
        await sim.advance(timedelta(minutes=8))
    assert [s.occurrence for s in of_type(log, Started)] == [
        occurrence_id("report", START + timedelta(minutes=10))
    ]
    assert of_type(log, Skipped) == []


# -- one-offs and finished tasks ---------------------------------------------------------


@pytest.mark.parametrize(
    ("catch_up", "grace", "runs"),
    [
        (CatchUp.LATEST, None, 1),
        (CatchUp.ALL, None, 1),
        (CatchUp.NONE, None, 0),
        (CatchUp.LATEST, timedelta(milliseconds=500), 0),
        (CatchUp.LATEST, timedelta(seconds=5), 1),
    ],
)
async def test_a_one_off_already_past_when_added_goes_to_catch_up(
    sim: SimulatedClock,
    autojump_clock: MockClock,
    catch_up: CatchUp,
    grace: timedelta | None,
    runs: int,
) -> None:
    log = MemoryLog()
    calls = Calls(sim)
    past = START - timedelta(seconds=1)
    async with scheduler(log, sim) as sched:
        status = await sched.add("once", At(past), calls, catch_up=catch_up, misfire_grace=grace)
        assert status.next_run == past  # planned, not dropped
        await sim.advance(MINUTE)
        status = sched.status("once")
    assert calls.times == [START] * runs  # at once, when it runs
    assert (status.state, status.paused, status.run_count) == ("finished", False, runs)
    if runs == 0:
        (skipped,) = of_type(log, Skipped)
        assert (skipped.occurrence, skipped.reason) == (
            occurrence_id("once", past),
            SkipReason.MISSED,
        )
    assert of_type(log, TaskPaused) == []


async def test_a_burst_of_one_offs_added_late_loses_none(
    sim: SimulatedClock, autojump_clock: MockClock
) -> None:
    """5,000 adds that ran late: every one-off runs (APScheduler runs them within grace)."""
    log = MemoryLog()
    calls = Calls(sim)
    async with scheduler(log, sim) as sched:
        for index in range(500):
            # Half of them are already past when they are added.
            await sched.add(f"once-{index}", At(START + timedelta(seconds=index % 2 - 1)), calls)
        await sim.advance(MINUTE)
        states = {status.state for status in sched.tasks()}
    assert len(calls.times) == 500
    assert states == {"finished"}
    assert_nothing_lost(log, until=START + MINUTE)


async def test_a_finished_one_off_says_so_and_still_runs_now(
    sim: SimulatedClock, autojump_clock: MockClock
) -> None:
    log = MemoryLog()
    calls = Calls(sim)
    async with scheduler(log, sim) as sched:
        await sched.add("once", At(START + MINUTE), calls)
        await sim.advance(2 * MINUTE)
        status = sched.status("once")
        assert (status.state, status.finished, status.paused, status.note) == (
            "finished",
            True,
            False,
            "",
        )
        await sched.run_now("once")
        await sim.advance(MINUTE)
        assert sched.status("once").state == "finished"
    assert calls.times == [START + MINUTE, START + 2 * MINUTE]


async def test_add_returns_the_planned_next_run(
    sim: SimulatedClock, autojump_clock: MockClock
) -> None:
    log = MemoryLog()
    async with scheduler(log, sim) as sched:
        status = await sched.add("nightly", Cron("0 3 * * *", tz="America/New_York"), Calls(sim))
        assert status.next_run == datetime(2026, 3, 28, 7, 0, tzinfo=UTC)  # 03:00 EDT
        assert status.state == "scheduled"
        status = await sched.add("tick", Every(timedelta(minutes=15)), Calls(sim))
        assert status.next_run == START + timedelta(minutes=15)


# -- missed and late ---------------------------------------------------------------------


async def test_one_due_time_missed_while_down_is_missed_not_late(
    sim: SimulatedClock, autojump_clock: MockClock
) -> None:
    """catch_up=NONE skips even a single due time that came while no scheduler ran."""
    log = MemoryLog()
    calls = Calls(sim)
    async with scheduler(log, sim) as sched:
        await sched.add("daily", Cron("0 13 * * *"), calls, catch_up=CatchUp.NONE)
    sim.jump(timedelta(hours=2))  # down over 13:00
    async with scheduler(log, sim) as sched:
        await sched.add("daily", Cron("0 13 * * *"), calls, catch_up=CatchUp.NONE)
        await sim.advance(MINUTE)
    assert calls.times == []
    (skipped,) = of_type(log, Skipped)
    assert (skipped.reason, skipped.occurrence) == (
        SkipReason.MISSED,
        occurrence_id("daily", START + timedelta(hours=1)),
    )


async def test_a_run_that_is_merely_late_runs_even_under_catch_up_none(
    sim: SimulatedClock, autojump_clock: MockClock
) -> None:
    log = MemoryLog()
    calls = Calls(sim)
    async with scheduler(log, sim, max_concurrent=1) as sched:
        await sched.add("hog", At(START + MINUTE), Calls(sim, takes=timedelta(minutes=5)))
        await sched.add("late", At(START + 2 * MINUTE), calls, catch_up=CatchUp.NONE)
        await sim.advance(timedelta(minutes=10))
    # It waited for the only slot until 12:06: late, never missed.
    assert calls.times == [START + timedelta(minutes=6)]


# -- settled once -------------------------------------------------------------------------


async def test_a_pause_at_the_instant_of_an_overlap_skip_settles_the_occurrence_once(
    sim: SimulatedClock, autojump_clock: MockClock
) -> None:
    log = MemoryLog()
    async with scheduler(log, sim) as sched:
        await sched.add("slow", Every(MINUTE), Calls(sim, takes=timedelta(minutes=3)))
        await advance_to(sim, START + 2 * MINUTE)  # 12:02: the 12:02 run overlaps, skipped
        await sched.pause("slow")
        await sim.advance(timedelta(minutes=5))
    skips: dict[str, int] = {}
    for skipped in of_type(log, Skipped):
        skips[skipped.occurrence] = skips.get(skipped.occurrence, 0) + 1
    assert skips
    assert set(skips.values()) == {1}


# -- what a job raises -------------------------------------------------------------------


class Raises:
    def __init__(self, error: BaseException) -> None:
        self.error = error

    async def __call__(self) -> None:
        raise self.error


async def raises_in_a_nursery() -> None:
    async def child() -> None:
        raise SystemExit(4)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(child)


def sync_exit() -> None:
    raise SystemExit(5)


@pytest.mark.parametrize(
    ("target", "error_type"),
    [
        (Raises(SystemExit(3)), "SystemExit"),
        (Raises(KeyboardInterrupt()), "KeyboardInterrupt"),
        (Raises(GeneratorExit()), "GeneratorExit"),
        (raises_in_a_nursery, "ExceptionGroup"),
        (sync_exit, "SystemExit"),
    ],
    ids=["SystemExit", "KeyboardInterrupt", "GeneratorExit", "group", "sync-SystemExit"],
)
async def test_whatever_a_job_raises_fails_that_run_only(
    sim: SimulatedClock, autojump_clock: MockClock, target: Any, error_type: str
) -> None:
    log = MemoryLog()
    others = Calls(sim, takes=timedelta(seconds=30))
    async with scheduler(log, sim) as sched:
        await sched.add("other", Every(MINUTE), others)
        await sched.add("bad", Every(MINUTE), target)
        await sim.advance(timedelta(minutes=3, seconds=10))
        assert sched.status("bad").error_count == 3
    failed = of_type(log, Failed, "bad")
    assert len(failed) == 3
    assert {f.error_type for f in failed} <= {error_type, "BaseExceptionGroup"}
    # The other task's runs, in flight as the bad one raised, all completed.
    assert len(of_type(log, Completed, "other")) == 3
    assert others.times == [START + m * MINUTE for m in (1, 2, 3)]


def test_a_real_ctrl_c_during_a_job_stops_the_program_not_the_job() -> None:
    """Job code runs protected from Ctrl-C: the interrupt reaches the main task."""
    log = MemoryLog()
    ran: list[str] = []

    async def job() -> None:
        ran.append("started")
        signal.raise_signal(signal.SIGINT)  # as if Ctrl-C was pressed now
        await trio.sleep(0.001)
        ran.append("finished")

    async def main() -> None:
        async with open_scheduler(log, shutdown_grace=timedelta(seconds=5)) as sched:
            await sched.add("job", At(datetime.now(UTC)), job)
            await trio.sleep(5)  # Ctrl-C ends this wait

    with pytest.raises(KeyboardInterrupt):
        trio.run(main)
    assert ran == ["started", "finished"]
    (completed,) = of_type(log, Completed)  # the job itself was not interrupted
    assert completed.task == "job"
    assert check_invariants(log.read()) == []


async def test_a_task_whose_target_cannot_be_imported_is_logged(
    sim: SimulatedClock, autojump_clock: MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    from chronolog import TaskDefined

    defined = TaskDefined(
        seq=1, task="legacy", at=START, trigger=Every(MINUTE, anchor=START), target="gone:job"
    )
    log = MemoryLog([defined])
    with caplog.at_level(logging.INFO, logger="chronolog"):
        async with scheduler(log, sim) as sched:
            await sim.advance(timedelta(minutes=2))
            note = sched.status("legacy").note
    assert note.startswith("its target cannot be found: cannot import module 'gone'")
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("chronolog")]
    assert f"task 'legacy' is paused: {note}" in messages


async def test_notable_decisions_go_to_python_logging(
    sim: SimulatedClock, autojump_clock: MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    log = MemoryLog()
    with caplog.at_level(logging.INFO, logger="chronolog"):
        async with scheduler(log, sim) as sched:
            await sched.add("fails", At(START + MINUTE), Raises(RuntimeError("boom")))
            await sched.add("hourly", Every(timedelta(hours=1)), Calls(sim))
            await sim.advance(2 * MINUTE)
            await sched.add("hourly", Every(timedelta(hours=3)), Calls(sim))
        sim.jump(timedelta(hours=10))
        async with scheduler(log, sim) as sched:
            await sched.add("hourly", Every(timedelta(hours=3)), Calls(sim))
            await sim.advance(MINUTE)
    messages = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert (
        "WARNING",
        f"task 'fails': attempt 1 of {occurrence_id('fails', START + MINUTE)} failed: boom",
    ) in messages
    assert (
        "INFO",
        f"task 'hourly': {occurrence_id('hourly', START + timedelta(hours=1))} "
        f"skipped (redefined)",
    ) in messages
    # Redefined at 12:02: every 3 h from then. Down from 12:02 to 22:02, the
    # latest missed one runs (21:02); 15:02 and 18:02 are one line.
    missed = [m for level, m in messages if level == "WARNING" and "(missed)" in m]
    assert missed == [
        "task 'hourly': 2 occurrences skipped (missed), "
        f"{occurrence_id('hourly', START + timedelta(hours=3, minutes=2))} to "
        f"{occurrence_id('hourly', START + timedelta(hours=6, minutes=2))}"
    ]


async def test_scheduled_is_recorded_before_the_run_after_a_restart(
    sim: SimulatedClock, autojump_clock: MockClock
) -> None:
    log = MemoryLog()
    calls = Calls(sim)
    async with scheduler(log, sim) as sched:
        await sched.add("tick", Every(timedelta(minutes=10)), calls)
    async with scheduler(log, sim) as sched:
        await sched.add("tick", Every(timedelta(minutes=10)), calls)
        await sim.advance(timedelta(minutes=11))
    assert len(of_type(log, Scheduled)) == 2
    assert calls.times == [START + timedelta(minutes=10)]


# -- the log fails under every await of the actor ---------------------------------------


class DiskFullFrom(MemoryLog):
    """A memory log whose appends fail with ENOSPC for ``outage`` of simulated
    time, from its ``failing_call``-th append once armed (every append path counts)."""

    def __init__(self, sim: SimulatedClock, failing_call: int, outage: timedelta) -> None:
        super().__init__()
        self.sim = sim
        self.failing_call = failing_call
        self.outage = outage
        self.armed = False
        self.calls = 0
        self.until: datetime | None = None

    def _check_disk(self) -> None:
        if not self.armed:
            return
        self.calls += 1
        if self.until is None and self.calls == self.failing_call:
            self.until = self.sim.now() + self.outage
        if self.until is not None and self.sim.now() < self.until:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    async def append(self, events: Sequence[Event]) -> list[Event]:
        self._check_disk()
        return await super().append(events)

    def append_nowait(self, events: Sequence[Event]) -> list[Event]:
        self._check_disk()
        return super().append_nowait(events)


@pytest.mark.parametrize("overlap", list(Overlap))
@pytest.mark.parametrize("catch_up", list(CatchUp))
async def test_a_full_disk_under_any_await_of_the_actor_is_survived_and_recovered_from(
    autojump_clock: MockClock,
    caplog: pytest.LogCaptureFixture,
    overlap: Overlap,
    catch_up: CatchUp,
) -> None:
    """The outage starts at each append in turn, so under every await the actor
    makes (planning, claims, outcomes, overlap and queue skips, catch-up) --
    until it starts after the first six minutes, by when each has come."""
    outage = timedelta(minutes=3)
    for failing_call in itertools.count(1):
        sim = SimulatedClock(START, mock_clock=autojump_clock)
        log = DiskFullFrom(sim, failing_call, outage)
        caplog.clear()
        # Runs of 40 s, due every minute: a run whose end cannot be recorded
        # overlaps the next due time (a skip, a queue wait, a replaced run), and
        # the backlog of CatchUp.ALL can clear.
        slow = Calls(sim, takes=timedelta(seconds=40))
        async with open_scheduler(log, clock=sim, shutdown_grace=timedelta(minutes=5)) as sched:
            await sched.add("ev", Every(MINUTE), slow, overlap=overlap, catch_up=catch_up)
            log.armed = True
            await sim.advance(timedelta(minutes=20))
            status = sched.status("ev")
            assert replay(log.read()) == sched.state
        context = f"outage from append {failing_call}, {log.until}"
        assert log.until is not None, context
        if log.until > START + timedelta(minutes=6) + outage:
            break
        assert not status.paused, context
        assert "stopped planning" not in caplog.text, context
        records = list(log.read())
        assert check_invariants(records) == [], context
        # Every run whose start was recorded has its end recorded.
        started = {(r.occurrence, r.attempt) for r in records if isinstance(r, Started)}
        ended = {(r.occurrence, r.attempt) for r in records if isinstance(r, Completed | Failed)}
        assert started == ended, context
        # Going on as soon as the disk takes writes: within the actor's longest
        # back-off, and the time a run in flight (or queued) takes to end.
        assert any(
            isinstance(r, Started)
            and log.until <= r.at <= log.until + timedelta(seconds=15 + 40 + 60)
            for r in records
        ), context
        assert_nothing_lost(log, until=START + timedelta(minutes=18))


async def test_a_task_earlier_versions_paused_as_spent_is_finished_and_a_new_trigger_resumes_it(
    sim: SimulatedClock, autojump_clock: MockClock
) -> None:
    from chronolog import TaskDefined

    once = START - timedelta(hours=1)
    occurrence = occurrence_id("once", once)
    log = MemoryLog(
        [
            TaskDefined(
                seq=1,
                task="once",
                at=once,
                trigger=At(once),
                target="tests.test_actor:<Calls object>",
            ),
            Scheduled(seq=2, task="once", at=once, occurrence=occurrence, due=once),
            Started(seq=3, task="once", at=once, occurrence=occurrence, attempt=1),
            Completed(seq=4, task="once", at=once, occurrence=occurrence, attempt=1),
            TaskPaused(
                seq=5,
                task="once",
                at=once,
                note="its trigger will not fire again (past its end, or At is past)",
            ),
        ]
    )
    calls = Calls(sim)
    async with scheduler(log, sim) as sched:
        status = sched.status("once")
        assert (status.state, status.paused) == ("finished", True)
        await sched.add("once", At(once), calls)  # the same definition: stays as it is
        assert sched.status("once").paused
        await sched.add("once", At(START + MINUTE), calls)  # a new one-off
        status = sched.status("once")
        assert (status.state, status.next_run) == ("scheduled", START + MINUTE)
        await sim.advance(2 * MINUTE)
    assert calls.times == [START + MINUTE]


# -- an outage is one record per task -----------------------------------------------


def missed_of(log: MemoryLog, task: str) -> list[Skipped]:
    return [r for r in of_type(log, Skipped, task) if r.reason is SkipReason.MISSED]


async def test_a_two_hour_outage_of_thirty_per_second_tasks_is_one_record_per_task(
    sim: SimulatedClock, autojump_clock: MockClock
) -> None:
    """The workload of issue 17: 30 tasks due every second, down for two hours.
    Each writes one range (7,199 due times), runs its latest, and a minutely
    task unrelated to them runs at its due time, on the instant."""
    log = MemoryLog()
    ticks = {f"tick{n:02}": Calls(sim) for n in range(30)}
    minutely = Calls(sim)

    async def declare(sched: Scheduler) -> None:
        for name, calls in ticks.items():
            await sched.add(name, Every(timedelta(seconds=1), anchor=START), calls)
        await sched.add("minutely", Every(MINUTE, anchor=START), minutely)

    with trio.fail_after(3 * 3600):
        async with scheduler(log, sim) as sched:
            await declare(sched)
            await sim.advance(timedelta(seconds=10, milliseconds=500))
        seq_before = log.last_seq
        down_from = START + timedelta(seconds=10)  # the last due time that ran
        sim.jump(timedelta(hours=2))  # down: 12:00:10.5 to 14:00:10.5
        async with scheduler(log, sim) as sched:
            await declare(sched)
            await sim.advance(timedelta(minutes=1))
    back = START + timedelta(hours=2, seconds=10, milliseconds=500)
    for name, calls in ticks.items():
        (missed,) = missed_of(log, name)
        # 12:00:11 through 14:00:09 are missed; 14:00:10, the latest, runs late.
        assert missed.occurrence == occurrence_id(name, down_from + timedelta(seconds=1))
        assert missed.last_due == down_from + timedelta(hours=2, seconds=-1)
        assert missed.count == 7199
        assert missed.at == back
        assert calls.times[10] == back
        assert calls.times[11:] == [
            START + timedelta(hours=2, seconds=s) for s in range(11, 71)
        ]  # and then every second, on time
    # The minutely task's 14:01:00 run is on the instant: the catch-up delayed nothing.
    assert START + timedelta(hours=2, minutes=1) in minutely.times
    # One record per task, the minutely one included (12:01 to 13:59, 119 of them).
    after = [r for r in log.read() if r.seq > seq_before]
    assert len([r for r in after if isinstance(r, Skipped)]) == 31
    (quiet,) = missed_of(log, "minutely")
    assert (quiet.due, quiet.last_due, quiet.count) == (
        START + MINUTE,
        START + timedelta(hours=2) - MINUTE,
        119,
    )
    assert_nothing_lost(log, until=START + timedelta(hours=2, minutes=1))


async def test_a_per_second_task_down_for_a_year_is_counted_not_enumerated(
    sim: SimulatedClock, autojump_clock: MockClock
) -> None:
    log = MemoryLog()
    calls = Calls(sim)
    with trio.fail_after(2 * 365 * 86_400):
        async with scheduler(log, sim) as sched:
            await sched.add("tick", Every(timedelta(seconds=1), anchor=START), calls)
            await sim.advance(timedelta(milliseconds=1500))
        sim.jump(timedelta(days=365))
        async with scheduler(log, sim) as sched:
            await sched.add("tick", Every(timedelta(seconds=1), anchor=START), calls)
            await sim.advance(timedelta(milliseconds=10))
    (missed,) = missed_of(log, "tick")
    # Due 12:00:02 to a year on, 12:00:00; the year's last due time (12:00:01) runs.
    assert missed.due == START + timedelta(seconds=2)
    assert missed.last_due == START + timedelta(days=365)
    assert missed.count == 365 * 86_400 - 1
    assert calls.times[-1] == START + timedelta(days=365, milliseconds=1500)
    assert replay(log.read()).status("tick").skip_count == missed.count


async def test_a_cron_outage_is_counted_in_slices_and_is_still_one_record(
    sim: SimulatedClock, autojump_clock: MockClock
) -> None:
    """A cron expression has no closed form for its count: the actor steps
    through it, 2,048 fires between checkpoints, and writes one record."""
    log = MemoryLog()
    calls = Calls(sim)
    trigger = Cron("* * * * * *")  # every second
    with trio.fail_after(4 * 3600):
        async with scheduler(log, sim) as sched:
            await sched.add("cron", trigger, calls, catch_up=CatchUp.NONE)
            await sim.advance(timedelta(milliseconds=500))
        sim.jump(timedelta(hours=3))
        async with scheduler(log, sim) as sched:
            await sched.add("cron", trigger, calls, catch_up=CatchUp.NONE)
            await sim.advance(timedelta(milliseconds=100))
    (missed,) = missed_of(log, "cron")
    assert (missed.due, missed.last_due, missed.count) == (
        START + timedelta(seconds=1),
        START + timedelta(hours=3),
        3 * 3600,
    )
    assert calls.times == []  # NONE: nothing missed runs


async def test_catch_up_all_runs_the_newest_up_to_its_limit_and_the_rest_is_one_range(
    sim: SimulatedClock, autojump_clock: MockClock
) -> None:
    log = MemoryLog()
    calls = Calls(sim)
    every = Every(MINUTE, anchor=START)
    with trio.fail_after(3600):
        async with scheduler(log, sim) as sched:
            await sched.add("m", every, calls, catch_up=CatchUp.ALL, catch_up_limit=3)
            await sim.advance(timedelta(seconds=90))
        sim.jump(timedelta(minutes=30))
        async with scheduler(log, sim) as sched:
            await sched.add("m", every, calls, catch_up=CatchUp.ALL, catch_up_limit=3)
            await sim.advance(timedelta(seconds=5))
    (missed,) = missed_of(log, "m")
    # Down 12:01:30 to 12:31:30: 12:02 to 12:31 missed; 12:29, 12:30, 12:31 run.
    assert (missed.due, missed.last_due, missed.count) == (
        START + 2 * MINUTE,
        START + 28 * MINUTE,
        27,
    )
    ran = [r.occurrence for r in of_type(log, Started)]
    assert ran[-3:] == [occurrence_id("m", START + m * MINUTE) for m in (29, 30, 31)]
    assert_nothing_lost(log, until=START + 31 * MINUTE)


async def test_misfire_grace_runs_only_fresh_due_times_and_skips_the_rest_as_one_range(
    sim: SimulatedClock, autojump_clock: MockClock
) -> None:
    log = MemoryLog()
    calls = Calls(sim)
    every = Every(MINUTE, anchor=START)
    options: dict[str, Any] = {"catch_up": CatchUp.ALL, "misfire_grace": timedelta(seconds=150)}
    with trio.fail_after(3600):
        async with scheduler(log, sim) as sched:
            await sched.add("m", every, calls, **options)
            await sim.advance(timedelta(seconds=30))
        sim.jump(timedelta(minutes=10))  # back at 12:10:30
        async with scheduler(log, sim) as sched:
            await sched.add("m", every, calls, **options)
            await sim.advance(timedelta(seconds=5))
    (missed,) = missed_of(log, "m")
    # 12:08, 12:09 and 12:10 are within 2.5 minutes: they run; 12:01-12:07 do not.
    assert (missed.due, missed.last_due, missed.count) == (START + MINUTE, START + 7 * MINUTE, 7)
    assert calls.times[-3:] == [START + timedelta(minutes=10, seconds=30)] * 3


async def test_due_times_that_pass_at_once_while_a_queue_waits_are_one_overlap_range(
    sim: SimulatedClock, autojump_clock: MockClock
) -> None:
    """QUEUE keeps one occurrence waiting; the due times that pass meanwhile are
    skipped as they come -- and those a clock jump passes at once, as one record."""
    log = MemoryLog()
    slow = Calls(sim, takes=timedelta(hours=2))
    every = Every(MINUTE, anchor=START)
    with trio.fail_after(4 * 3600):
        async with scheduler(log, sim, shutdown_grace=timedelta(hours=3)) as sched:
            await sched.add("slow", every, slow, overlap=Overlap.QUEUE)
            await sim.advance(timedelta(minutes=2, seconds=30))  # 12:01 runs, 12:02 waits
            sim.jump(timedelta(minutes=30))  # 12:03 to 12:32 pass at once
            await sim.advance(timedelta(seconds=1))
            overlaps = [r for r in of_type(log, Skipped, "slow") if r.reason is SkipReason.OVERLAP]
    (jumped,) = overlaps
    assert (jumped.due, jumped.last_due, jumped.count) == (
        START + 3 * MINUTE,
        START + 32 * MINUTE,
        30,
    )
    assert jumped.at == START + timedelta(minutes=32, seconds=30)


async def test_a_cron_outage_past_the_bound_per_record_is_caught_up_over_several_records(
    sim: SimulatedClock, autojump_clock: MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cron outage is counted fire by fire, at most so many per record: past
    that, each step writes one record and goes on from its last due time; the
    latest due time runs only once the rest is recorded, so none is lost."""
    import chronolog._actor

    monkeypatch.setattr(chronolog._actor, "_MAX_MISSED_PER_RANGE", 1000)
    monkeypatch.setattr(chronolog._actor, "_COUNT_SLICE", 300)
    log = MemoryLog()
    calls = Calls(sim)
    trigger = Cron("* * * * * *")
    with trio.fail_after(3 * 3600):
        async with scheduler(log, sim) as sched:
            await sched.add("cron", trigger, calls)
            await sim.advance(timedelta(milliseconds=500))
        sim.jump(timedelta(hours=1))  # back at 13:00:00.5
        async with scheduler(log, sim) as sched:
            await sched.add("cron", trigger, calls)
            await sim.advance(timedelta(milliseconds=100))
    missed = missed_of(log, "cron")
    # Each record: the due time it woke for and the 1,000 counted after it.
    assert [(m.due - START, m.count) for m in missed] == [
        (timedelta(seconds=1), 1001),
        (timedelta(seconds=1002), 1001),
        (timedelta(seconds=2003), 1001),
        (timedelta(seconds=3004), 596),
    ]
    assert missed[-1].last_due == START + timedelta(seconds=3599)
    assert calls.times[-1] == START + timedelta(hours=1, milliseconds=500)  # 13:00:00 ran
    assert_nothing_lost(log, until=START + timedelta(hours=1))
