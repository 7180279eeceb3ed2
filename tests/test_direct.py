"""Control without a scheduler: the records a command appends, checked against a scheduler.

The builders must append what a running `Scheduler` would have appended for
the same command, so a scheduler started later on the log carries on as if
it had been running all along.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from chronolog import (
    At,
    ConfigError,
    Cron,
    DuplicateTask,
    Every,
    Failed,
    FileWatch,
    Manual,
    MemoryLog,
    Overlap,
    Policy,
    Retry,
    Scheduled,
    Skipped,
    SkipReason,
    Started,
    TaskDefined,
    TaskPaused,
    TaskRemoved,
    TaskResumed,
    UnknownTask,
    check_invariants,
    open_scheduler,
    replay,
)
from chronolog._command_rules import (
    define_events,
    pause_events,
    remove_events,
    resume_events,
    run_now_events,
)
from chronolog._direct import event_log_at
from chronolog._targets import target_path
from chronolog.log import FileLog, SQLiteLog
from chronolog.testing import SimulatedClock

if TYPE_CHECKING:
    from pathlib import Path

    from trio.testing import MockClock

    from chronolog import Event, Trigger

START = datetime(2026, 3, 27, 12, 0, tzinfo=UTC)


@pytest.fixture
def sim(autojump_clock: MockClock) -> SimulatedClock:
    return SimulatedClock(START, mock_clock=autojump_clock)


class Calls:
    def __init__(self, sim: SimulatedClock) -> None:
        self.sim = sim
        self.times: list[datetime] = []

    async def __call__(self) -> str:
        self.times.append(self.sim.now())
        return "ok"


async def append(log: MemoryLog, events: list[Event]) -> None:
    await log.append(events)
    assert check_invariants(log.read()) == []


def kinds(records: list[Event]) -> list[str]:
    return [type(record).__name__ for record in records]


TRIGGERS: list[Trigger] = [
    Cron("30 2 * * *", tz="Europe/Berlin"),
    Every(timedelta(minutes=10)),
    Every(timedelta(hours=1), start=START + timedelta(minutes=7)),
    At(START + timedelta(days=1)),
    FileWatch("/tmp/chronolog-test-watched"),
    Manual(),
]


@pytest.mark.parametrize("trigger", TRIGGERS)
async def test_a_definition_written_directly_is_one_the_scheduler_keeps(
    trigger: Trigger, sim: SimulatedClock, autojump_clock: MockClock
) -> None:
    calls = Calls(sim)
    policy = Policy(overlap=Overlap.QUEUE, retry=Retry(max_attempts=2), timeout=timedelta(1))
    log = MemoryLog()
    state = replay(log.read())
    await append(log, define_events(state, "job", trigger, target_path(calls), policy, sim.now()))
    async with open_scheduler(log, clock=sim) as sched:
        seq = sched.state.seq
        await sched.add(
            "job",
            trigger,
            calls,
            overlap=Overlap.QUEUE,
            retry=Retry(max_attempts=2),
            timeout=timedelta(1),
        )
        assert [r for r in log.read() if isinstance(r, TaskDefined) and r.seq > seq] == []


async def test_declaring_again_is_idempotent_and_keeps_the_every_anchor(
    sim: SimulatedClock, autojump_clock: MockClock
) -> None:
    log = MemoryLog()
    await append(
        log,
        define_events(replay(log.read()), "t", Every(timedelta(hours=1)), "m:f", Policy(), START),
    )
    defined, planned = log.read()
    assert isinstance(defined, TaskDefined)
    assert defined.trigger == Every(timedelta(hours=1), anchor=START)
    assert isinstance(planned, Scheduled)
    assert planned.due == START + timedelta(hours=1)
    later = START + timedelta(minutes=17, microseconds=5)
    state = replay(log.read())
    assert define_events(state, "t", Every(timedelta(hours=1)), "m:f", Policy(), later) == []
    changed = define_events(state, "t", Every(timedelta(minutes=30)), "m:f", Policy(), later)
    # A new grid, anchored at 12:17: 13:00 is not on it (skipped), 12:47 is next.
    assert [type(e) for e in changed] == [Skipped, TaskDefined, Scheduled]
    assert changed[1].trigger == Every(  # type: ignore[union-attr]
        timedelta(minutes=30), anchor=START + timedelta(minutes=17)
    )
    assert changed[1].version == 2  # type: ignore[union-attr]
    assert changed[2].due == START + timedelta(minutes=47)  # type: ignore[union-attr]


async def test_a_changed_definition_skips_what_was_scheduled_like_the_scheduler(
    sim: SimulatedClock, autojump_clock: MockClock
) -> None:
    calls = Calls(sim)
    log = MemoryLog()
    async with open_scheduler(log, clock=sim) as sched:
        await sched.add("t", Every(timedelta(hours=1)), calls)
        await sim.advance(timedelta(minutes=90))
    state = replay(log.read())
    pending = [run.occurrence for run in state.open_occurrences("t")]
    assert len(pending) == 1
    now = sim.now()
    # Another target, the same trigger: the pending run is the next due time, kept.
    (kept,) = define_events(state, "t", Every(timedelta(hours=1)), "m:other", Policy(), now)
    assert isinstance(kept, TaskDefined)
    assert (kept.version, kept.target) == (2, "m:other")
    # Another trigger that does not fire then: the pending run is skipped.
    events = define_events(state, "t", Every(timedelta(minutes=7)), "m:other", Policy(), now)
    assert events[0] == Skipped(
        task="t", at=now, occurrence=pending[0], reason=SkipReason.REDEFINED
    )
    assert isinstance(events[1], TaskDefined)
    assert events[1].version == 2
    assert define_events(state, "t", Manual(), "m:other", Policy(), now, "keep") == []
    with pytest.raises(DuplicateTask, match="exists with another definition"):
        define_events(state, "t", Manual(), "m:other", Policy(), now, "error")
    with pytest.raises(ConfigError, match="if_exists must be"):
        define_events(state, "t", Manual(), "m:other", Policy(), now, "replace")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="task name"):
        define_events(state, " t", Manual(), "m:other", Policy(), now)
    await append(log, events)


async def test_a_pause_written_directly_holds_when_a_scheduler_starts_and_resume_releases_it(
    sim: SimulatedClock, autojump_clock: MockClock
) -> None:
    calls = Calls(sim)
    log = MemoryLog()
    async with open_scheduler(log, clock=sim) as sched:
        await sched.add("report", Every(timedelta(hours=1)), calls)
        await sim.advance(timedelta(minutes=90))
    state = replay(log.read())
    events = pause_events(state, "report", "maintenance", sim.now())
    assert kinds(events) == ["TaskPaused"]  # the 14:00 run stays scheduled
    await append(log, events)
    assert pause_events(replay(log.read()), "report", "again", sim.now()) == []
    async with open_scheduler(log, clock=sim) as sched:
        await sched.add("report", Every(timedelta(hours=1)), calls)
        await sim.advance(timedelta(hours=3))
        assert sched.status("report").note == "maintenance"
    assert calls.times == [START + timedelta(hours=1)]
    # Still paused when 14:00 came: skipped then, once; nothing planned after it.
    (skipped,) = [r for r in log.read() if isinstance(r, Skipped)]
    assert (skipped.reason, skipped.at) == (SkipReason.PAUSED, START + timedelta(hours=2))
    state = replay(log.read())
    resumed_at = sim.now()
    resumed = resume_events(state, "report", "done", resumed_at)
    assert kinds(resumed) == ["TaskResumed", "Scheduled"]
    await append(log, resumed)
    assert resume_events(replay(log.read()), "report", "", sim.now()) == []
    async with open_scheduler(log, clock=sim) as sched:
        await sched.add("report", Every(timedelta(hours=1)), calls)
        await sim.advance(timedelta(hours=1))
    # Resumed at 16:30: the next due time of the hourly grid is 17:00.
    assert calls.times == [START + timedelta(hours=1), START + timedelta(hours=5)]
    assert [type(r) for r in log.read() if isinstance(r, TaskPaused | TaskResumed)] == [
        TaskPaused,
        TaskResumed,
    ]


async def test_a_run_recorded_while_down_runs_once_at_the_next_start(
    sim: SimulatedClock, autojump_clock: MockClock
) -> None:
    calls = Calls(sim)
    log = MemoryLog()
    async with open_scheduler(log, clock=sim) as sched:
        await sched.add("by-hand", Manual(), calls)
    occurrence, events = run_now_events(replay(log.read()), "by-hand", sim.now())
    assert occurrence.startswith("by-hand!")
    assert events == [
        Scheduled(task="by-hand", at=sim.now(), occurrence=occurrence, due=sim.now())
    ]
    await append(log, events)
    await sim.advance(timedelta(hours=1))
    for _ in range(2):  # started once, and only once, across restarts
        async with open_scheduler(log, clock=sim) as sched:
            await sched.add("by-hand", Manual(), calls)
            await sim.advance(timedelta(seconds=1))
    assert calls.times == [START + timedelta(hours=1)]
    assert [r.occurrence for r in log.read() if isinstance(r, Started)] == [occurrence]


async def test_remove_records_a_dangling_run_as_interrupted(
    sim: SimulatedClock, autojump_clock: MockClock
) -> None:
    now = START + timedelta(hours=2)
    occurrence = "t@2026-03-27T13:00:00Z"
    log = MemoryLog()
    await append(
        log,
        [
            TaskDefined(
                task="t", at=START, trigger=Every(timedelta(hours=1), anchor=START), target="m:f"
            ),
            Scheduled(task="t", at=START, occurrence=occurrence, due=START + timedelta(hours=1)),
            Started(task="t", at=START + timedelta(hours=1), occurrence=occurrence, attempt=1),
            Scheduled(
                task="t",
                at=START,
                occurrence="t@2026-03-27T14:00:00Z",
                due=START + timedelta(hours=2),
            ),
        ],
    )
    events = remove_events(replay(log.read()), "t", now)
    assert events == [
        Failed(
            task="t",
            at=now,
            occurrence=occurrence,
            attempt=1,
            error="interrupted",
            error_type="Interrupted",
        ),
        Skipped(task="t", at=now, occurrence="t@2026-03-27T14:00:00Z", reason=SkipReason.REMOVED),
        TaskRemoved(task="t", at=now),
    ]
    await append(log, events)
    assert replay(log.read()).task_names() == []


@pytest.mark.parametrize(
    "build",
    [
        lambda state: pause_events(state, "bakup", "", START),
        lambda state: resume_events(state, "bakup", "", START),
        lambda state: remove_events(state, "bakup", START),
        lambda state: run_now_events(state, "bakup", START),
    ],
)
def test_an_unknown_task_is_refused_with_the_closest_name(build: Any) -> None:
    state = replay([TaskDefined(seq=1, task="backup", at=START, trigger=Manual(), target="m:f")])
    with pytest.raises(UnknownTask, match=r"no task named 'bakup'; did you mean 'backup'\?"):
        build(state)


def test_the_backend_follows_the_suffix(tmp_path: Path) -> None:
    assert type(event_log_at(tmp_path / "jobs.jsonl")) is FileLog
    assert type(event_log_at(tmp_path / "jobs.sqlite")) is SQLiteLog
    assert type(event_log_at(tmp_path / "jobs.DB")) is SQLiteLog
