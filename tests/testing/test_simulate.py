"""Simulated schedulers: exact instants, crashes as kill -9, restarts, clock jumps.

Every test drives the public API only: ``simulated_scheduler`` on
pytest-trio's ``autojump_clock`` (the test takes that fixture so that
pytest-trio runs it on the mock clock), or ``simulate`` from sync code.
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import msgspec
import pytest
import trio

from chronolog import (
    At,
    CatchUp,
    ConfigError,
    Cron,
    Every,
    Failed,
    FileLog,
    LogCorrupted,
    MemoryLog,
    Outcome,
    Retry,
    Scheduled,
    SkipReason,
    Started,
    occurrence_id,
)
from chronolog.testing import (
    ClockJump,
    Crash,
    HangingTarget,
    Restart,
    SimulatedClock,
    SimulationError,
    assert_exactly_once,
    assert_nothing_lost,
    assert_replay_consistent,
    simulate,
    simulated_scheduler,
)

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

    from trio.testing import MockClock

    from chronolog import Event, Scheduler

START = datetime(2026, 3, 27, 12, 0, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")


class Calls:
    """A target that records the simulated instants it was called at."""

    def __init__(self, clock: SimulatedClock | None = None) -> None:
        self.clock = clock
        self.times: list[datetime] = []

    async def __call__(self) -> None:
        await trio.lowlevel.checkpoint()
        assert self.clock is not None
        self.times.append(self.clock.now())


def without_seqs(records: Iterable[Event]) -> Counter[Event]:
    return Counter(msgspec.structs.replace(record, seq=0) for record in records)


def of_type(records: list[Event], kind: type[Any]) -> list[Any]:
    return [record for record in records if isinstance(record, kind)]


async def test_advance_lands_exactly_and_everything_due_has_happened(
    autojump_clock: MockClock,
) -> None:
    async with simulated_scheduler(START) as sim:
        calls = Calls(sim.clock)
        await sim.add("tick", Every(timedelta(minutes=10), anchor=START), calls)
        await sim.advance(timedelta(minutes=30))
        assert sim.now() == START + timedelta(minutes=30)
        # The run due at exactly +30 min has started and finished already.
        assert calls.times == [START + timedelta(minutes=m) for m in (10, 20, 30)]
        assert sim.scheduler.status("tick").run_count == 3
        await sim.advance_to(datetime(2026, 3, 27, 13, 35, tzinfo=BERLIN))  # 12:35 UTC
        assert sim.now() == datetime(2026, 3, 27, 12, 35, tzinfo=UTC)
        assert len(calls.times) == 3
        await sim.advance(timedelta(0))
        assert len(calls.times) == 3
    assert_exactly_once(sim.log)
    assert_replay_consistent(sim.log)


async def test_a_crash_is_kill_9_and_the_restart_recovers_from_the_log(
    autojump_clock: MockClock,
) -> None:
    hang = HangingTarget(timedelta(minutes=30))
    async with simulated_scheduler(START) as sim:
        await sim.add(
            "export",
            At(START + timedelta(minutes=5)),
            hang,
            retry=Retry(max_attempts=2, backoff=timedelta(minutes=1)),
        )
        await sim.advance(timedelta(minutes=10))  # the run is in its half hour
        before = sim.log.last_seq
        await sim.crash()
        assert not sim.up
        # Nothing the abandoned scheduler tried to write reached the log.
        assert sim.log.last_seq == before
        assert hang.cancelled == 1
        with pytest.raises(SimulationError, match=r"down .*restart\(\)"):
            sim.scheduler  # noqa: B018 - the property raises
        await sim.advance(timedelta(minutes=20))  # down for a while
        assert sim.log.last_seq == before
        await sim.restart()
        assert sim.up
        await sim.advance(timedelta(hours=1))
        records = sim.records()
    (interrupted,) = [f for f in of_type(records, Failed) if f.error == "interrupted"]
    assert interrupted.at == START + timedelta(minutes=30)  # recorded by the restart
    assert [s.attempt for s in of_type(records, Started)] == [1, 2]
    assert hang.finished == 1
    assert [note.kind for note in sim.notes][:2] == ["crash", "restart"]
    assert_exactly_once(records)
    assert_replay_consistent(records)


async def test_crash_after_a_record_lands_right_after_it_is_durable(
    autojump_clock: MockClock,
) -> None:
    async with simulated_scheduler(START) as sim:
        await sim.add("tick", Every(timedelta(minutes=10), anchor=START), HangingTarget())
        sim.inject(Crash(after=Started, task="tick", restart_after=timedelta(minutes=3)))
        await sim.advance(timedelta(minutes=10))
        # Crashed right after the claim; down for 3 minutes, so still down.
        assert not sim.up
        # The claim's append is the last: its Started, and the next occurrence
        # planned with it (one write, so the crash cannot come between).
        claim, planned = sim.records()[-2:]
        assert isinstance(claim, Started)
        assert claim.at == START + timedelta(minutes=10)
        assert isinstance(planned, Scheduled)
        assert planned.due == START + timedelta(minutes=20)
        await sim.advance(timedelta(minutes=3))
        assert sim.up
        records = sim.records()
    failed = of_type(records, Failed)
    assert failed[0].error == "interrupted"
    assert failed[0].at == START + timedelta(minutes=13)
    assert_exactly_once(records)


async def test_restart_fault_is_a_graceful_deploy_that_keeps_the_pending_run(
    autojump_clock: MockClock,
) -> None:
    async with simulated_scheduler(START) as sim:
        calls = Calls(sim.clock)
        await sim.add("backup", At(START + timedelta(hours=1)), calls)
        # A deploy a minute before the backup, down for 30 seconds.
        sim.inject(Restart(at=START + timedelta(minutes=59), down_for=timedelta(seconds=30)))
        await sim.advance(timedelta(hours=2))
    assert calls.times == [START + timedelta(hours=1)]
    assert [note.kind for note in sim.notes][:2] == ["stop", "restart"]
    assert sim.notes[1].at == START + timedelta(minutes=59, seconds=30)


async def test_clock_jumps_go_through_catch_up_and_never_rerun(
    autojump_clock: MockClock,
) -> None:
    async with simulated_scheduler(START) as sim:
        calls = Calls(sim.clock)
        await sim.add(
            "tick", Every(timedelta(minutes=10), anchor=START), calls, catch_up=CatchUp.LATEST
        )
        await sim.advance(timedelta(minutes=15))
        await sim.jump(timedelta(hours=1))  # suspend/resume: an hour slept through
        assert calls.times[-1] == START + timedelta(minutes=75)
        await sim.jump(-timedelta(hours=1))  # an NTP step back: nothing runs twice
        await sim.advance(timedelta(hours=1, minutes=5))
        timeline = sim.timeline()
    # The due times slept through are one range: 00:20 to 01:00, five of them.
    (skipped,) = timeline.skipped("tick", reason=SkipReason.MISSED)
    assert (skipped.due, skipped.last_due, skipped.count) == (
        START + timedelta(minutes=20),
        START + timedelta(minutes=60),
        5,
    )
    assert timeline.occurrence(occurrence_id("tick", START + timedelta(minutes=40))) == skipped
    assert_exactly_once(timeline)
    (jump, back) = [note for note in timeline.notes if note.kind == "clock jump"]
    assert jump.text.startswith("+1:00:00")
    assert back.text.startswith("-1:00:00")


def test_simulate_runs_a_year_with_a_crash_from_sync_code() -> None:
    job = HangingTarget(timedelta(minutes=20))

    async def setup(scheduler: Scheduler) -> None:
        await scheduler.add(
            "nightly",
            Cron("0 2 * * *", tz="Europe/Berlin"),
            job,
            retry=Retry(max_attempts=3, backoff=timedelta(minutes=1)),
        )

    start = datetime(2026, 1, 1, tzinfo=BERLIN)
    until = datetime(2027, 1, 1, tzinfo=BERLIN)
    timeline = simulate(
        setup,
        start=start,
        until=until,
        faults=[Crash(at=datetime(2026, 7, 1, 2, 10, tzinfo=BERLIN), restart_after=timedelta(0))],
    )
    runs = timeline.runs("nightly")
    assert len(runs) == 365
    assert timeline.outcomes("nightly", end=until)[Outcome.COMPLETED] == 365
    (july_first,) = timeline.runs(
        "nightly",
        start=datetime(2026, 7, 1, tzinfo=BERLIN),
        end=datetime(2026, 7, 2, tzinfo=BERLIN),
    )
    assert [a.error for a in july_first.attempts] == ["interrupted", None]
    # Spring forward: 02:00 does not exist on 29 March, the job runs at 03:00 CEST.
    (spring,) = timeline.runs(
        "nightly",
        start=datetime(2026, 3, 29, tzinfo=BERLIN),
        end=datetime(2026, 3, 30, tzinfo=BERLIN),
    )
    assert spring.started == datetime(2026, 3, 29, 3, 0, tzinfo=BERLIN)
    assert_exactly_once(timeline)
    assert_nothing_lost(timeline, until=until)


def test_simulate_takes_crash_at_shorthand_and_a_relative_until() -> None:
    async def setup(scheduler: Scheduler) -> None:
        await scheduler.add("tick", Every(timedelta(minutes=10), anchor=START), HangingTarget())

    timeline = simulate(
        setup, start=START, until=timedelta(hours=1), crash_at=START + timedelta(minutes=25)
    )
    assert [note.kind for note in timeline.notes][:2] == ["crash", "restart"]
    assert timeline.records[-1].at == START + timedelta(hours=1, seconds=30)  # the grace


def test_a_planned_restart_brings_back_a_scheduler_left_down_by_a_crash() -> None:
    async def setup(scheduler: Scheduler) -> None:
        await scheduler.add(
            "tick", Every(timedelta(minutes=10), anchor=START), HangingTarget(timedelta(0))
        )

    timeline = simulate(
        setup,
        start=START,
        until=timedelta(hours=2),
        faults=[
            Crash(at=START + timedelta(minutes=15), restart_after=None),
            Restart(at=START + timedelta(hours=1)),
        ],
    )
    assert [(note.kind, note.at - START) for note in timeline.notes] == [
        ("crash", timedelta(minutes=15)),
        ("restart", timedelta(hours=1)),
        ("stop", timedelta(hours=2)),
    ]
    (missed,) = timeline.skipped("tick", reason=SkipReason.MISSED)
    assert (missed.due - START, missed.last_due - START, missed.count) == (
        timedelta(minutes=20),
        timedelta(minutes=50),
        4,
    )
    assert_nothing_lost(timeline, until=START + timedelta(hours=2))


def test_the_same_simulation_writes_the_same_log_on_memory_and_on_file(tmp_path: Path) -> None:
    async def setup(scheduler: Scheduler) -> None:
        await scheduler.add(
            "flaky",
            Every(timedelta(minutes=7), anchor=START),
            HangingTarget(timedelta(minutes=3)),
            retry=Retry(max_attempts=2, backoff=timedelta(minutes=1)),
            timeout=timedelta(minutes=2),
        )
        await scheduler.add(
            "berlin", Cron("*/15 * * * *", tz="Europe/Berlin"), HangingTarget(timedelta(0))
        )

    faults = [
        Crash(at=START + timedelta(hours=1, minutes=3), restart_after=timedelta(minutes=20)),
        ClockJump(at=START + timedelta(hours=2), by=timedelta(minutes=40)),
    ]
    in_memory = simulate(setup, start=START, until=timedelta(hours=4), faults=faults)
    on_file = simulate(
        setup, start=START, until=timedelta(hours=4), faults=faults, log=tmp_path / "jobs.jsonl"
    )
    # Same events at the same instants. Records of different tasks written at
    # one instant may interleave differently (thread I/O changes who goes first).
    assert without_seqs(on_file.records) == without_seqs(in_memory.records)
    assert list(FileLog(tmp_path / "jobs.jsonl").read()) == list(on_file.records)
    assert on_file.notes == in_memory.notes


async def test_setup_and_add_declare_tasks_again_after_each_restart(
    autojump_clock: MockClock,
) -> None:
    declared: list[datetime] = []

    async def setup(scheduler: Scheduler) -> None:
        declared.append(scheduler.clock.now())
        await scheduler.add(
            "a", Every(timedelta(minutes=5), anchor=START), HangingTarget(timedelta(0))
        )

    async with simulated_scheduler(START, setup=setup) as sim:
        closure_calls: list[int] = []

        async def closure() -> None:  # a closure cannot be imported after a restart
            await trio.lowlevel.checkpoint()
            closure_calls.append(1)

        await sim.add("b", Every(timedelta(minutes=5), anchor=START), closure)
        await sim.scheduler.add("c", Every(timedelta(minutes=5), anchor=START), closure)
        await sim.crash()
        await sim.restart()
        await sim.advance(timedelta(minutes=20))
        assert sim.scheduler.status("b").run_count == 4
        status_c = sim.scheduler.status("c")
        assert status_c.paused
        assert "not importable" in status_c.note
    assert declared == [START, START]
    with pytest.raises(
        # 12:05 stays scheduled through the pause and is skipped when it comes;
        # the due times after it are lost: the pause was not the user's.
        AssertionError,
        match=r"(?s)3 due time.* lost.*task 'c', due .*paused at .*not importable",
    ):
        assert_nothing_lost(sim.log, until=START + timedelta(minutes=20))
    assert_nothing_lost(sim.log, until=START + timedelta(minutes=20), task="b")


async def test_simulated_scheduler_accepts_a_simulated_clock_and_a_file_log(
    autojump_clock: MockClock, tmp_path: Path
) -> None:
    clock = SimulatedClock(START, mock_clock=autojump_clock)
    async with simulated_scheduler(clock=clock, log=str(tmp_path / "jobs.jsonl")) as sim:
        await sim.add(
            "tick", Every(timedelta(minutes=1), anchor=START), HangingTarget(timedelta(0))
        )
        await sim.advance(timedelta(minutes=3))
        assert sim.clock is clock
    assert len(of_type(list(FileLog(tmp_path / "jobs.jsonl").read()), Scheduled)) >= 3


async def test_errors_say_what_to_do(autojump_clock: MockClock) -> None:
    with pytest.raises(ConfigError, match="aware datetime"):
        async with simulated_scheduler(datetime(2026, 1, 1)):
            pass
    with pytest.raises(ConfigError, match=r"needs start=.* or clock="):
        async with simulated_scheduler():
            pass
    other = SimulatedClock(START)
    with pytest.raises(ConfigError, match="mock_clock="):
        async with simulated_scheduler(clock=other):
            pass
    closed = MemoryLog()
    await closed.aclose()
    with pytest.raises(ConfigError, match="closed"):
        async with simulated_scheduler(START, log=closed):
            pass
    with pytest.raises(ConfigError, match="an EventLog, a path to a JSON Lines file, or None"):
        async with simulated_scheduler(START, log=42):  # type: ignore[arg-type]
            pass
    async with simulated_scheduler(START) as sim:
        with pytest.raises(ConfigError, match="non-zero timedelta"):
            await sim.jump(timedelta(0))
        with pytest.raises(ConfigError, match="only moves forward"):
            await sim.advance_to(START - timedelta(seconds=1))
        with pytest.raises(ConfigError, match="zero or more"):
            await sim.advance(timedelta(seconds=-1))
        with pytest.raises(ConfigError, match="before now"):
            sim.inject(Crash(at=START - timedelta(hours=1)))
        with pytest.raises(ConfigError, match="Crash, Restart or ClockJump"):
            sim.inject("crash")  # type: ignore[arg-type]
        await sim.crash()
        with pytest.raises(SimulationError, match="down"):
            await sim.crash()
        with pytest.raises(SimulationError, match="down"):
            await sim.stop()

    async def setup(scheduler: Scheduler) -> None:
        await trio.lowlevel.checkpoint()

    with pytest.raises(SimulationError, match="own Trio loop"):
        simulate(setup, start=START, until=START)


def test_simulated_scheduler_needs_a_mock_clock() -> None:
    async def main() -> None:
        async with simulated_scheduler(START):
            pass

    with pytest.raises(ConfigError, match="autojump_clock"):
        trio.run(main)


def test_simulate_rejects_bad_arguments() -> None:
    async def setup(scheduler: Scheduler) -> None:
        await trio.lowlevel.checkpoint()

    with pytest.raises(ConfigError, match="before start"):
        simulate(setup, start=START, until=START - timedelta(days=1))
    with pytest.raises(ConfigError, match="async setup function"):
        simulate("setup", start=START, until=START)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="aware"):
        simulate(setup, start=datetime(2026, 1, 1), until=START)


async def test_an_error_in_the_body_comes_out_as_raised(autojump_clock: MockClock) -> None:
    with pytest.raises(KeyError, match="boom"):
        async with simulated_scheduler(START):
            raise KeyError("boom")


def test_an_error_in_the_setup_comes_out_as_raised() -> None:
    async def setup(scheduler: Scheduler) -> None:
        await scheduler.add("t", Every(timedelta(minutes=1)), HangingTarget())
        raise ValueError("no such export directory")

    with pytest.raises(ValueError, match="no such export directory"):
        simulate(setup, start=START, until=timedelta(hours=1))


def test_a_log_that_cannot_be_opened_comes_out_as_raised(tmp_path: Path) -> None:
    async def setup(scheduler: Scheduler) -> None:
        await trio.lowlevel.checkpoint()

    damaged = tmp_path / "jobs.jsonl"
    damaged.write_text("this is not a chronolog log\n")
    with pytest.raises(LogCorrupted, match=r"jobs\.jsonl"):
        simulate(setup, start=START, until=timedelta(hours=1), log=damaged)


def test_the_same_set_up_writes_the_same_log_byte_for_byte() -> None:
    """Twenty tasks due at the same instants: Trio wakes them in an order it
    picks at random, and simulate() still writes one log, whatever the
    process's random state (the test draws from Trio's generator in between,
    as other code in a test process would)."""

    async def no_op() -> None:
        pass

    async def setup(scheduler: Scheduler) -> None:
        for number in range(20):
            await scheduler.add(f"t{number}", Every(timedelta(minutes=1), anchor=START), no_op)

    logs = []
    for draws in (0, 7, 31):
        for _ in range(draws):
            random.random()
            trio_random = getattr(trio._core._run, "_r", None)
            if trio_random is not None:
                trio_random.random()
        timeline = simulate(setup, start=START, until=timedelta(minutes=5))
        logs.append(msgspec.json.encode(timeline.records))
    assert logs[0] == logs[1] == logs[2]
    assert len(logs[0]) > 20 * 5 * 50  # every task ran every minute
