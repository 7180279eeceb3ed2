"""Faults as values, and targets that misbehave on purpose."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest
import trio

from chronolog import Completed, ConfigError, Every, Failed, Outcome, Retry, Started
from chronolog.testing import (
    ClockJump,
    Crash,
    FlakyTarget,
    HangingTarget,
    Restart,
    Timeline,
    simulate,
    simulated_scheduler,
)

if TYPE_CHECKING:
    from trio.testing import MockClock

    from chronolog import Event, Scheduler

START = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)


def test_faults_check_their_arguments() -> None:
    with pytest.raises(ConfigError, match="exactly one of at="):
        Crash()
    with pytest.raises(ConfigError, match="exactly one of at="):
        Crash(at=START, after=Started)
    with pytest.raises(ConfigError, match="aware datetime"):
        Crash(at=datetime(2026, 1, 1))
    with pytest.raises(ConfigError, match="event class"):
        Crash(after=int)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"task=.* narrows"):
        Crash(at=START, task="x")
    with pytest.raises(ConfigError, match="counts matching records from 1"):
        Crash(after=Started, nth=0)
    with pytest.raises(ConfigError, match="zero or more"):
        Crash(at=START, restart_after=timedelta(seconds=-1))
    with pytest.raises(ConfigError, match="zero or more"):
        Restart(at=START, down_for=timedelta(minutes=-1))
    with pytest.raises(ConfigError, match="non-zero"):
        ClockJump(at=START, by=timedelta(0))
    with pytest.raises(ConfigError, match="0 or more"):
        FlakyTarget(-1)
    with pytest.raises(ConfigError, match="zero or more"):
        HangingTarget(timedelta(seconds=-1))
    assert Crash(at=START.astimezone(UTC)).at == START
    assert Crash(after=lambda record: record.task == "x").matches(
        Started(task="x", at=START, occurrence="x!1", attempt=1)
    )


def test_crash_after_the_nth_match_of_a_predicate() -> None:
    def second_completion(record: Event) -> bool:
        return isinstance(record, Completed)

    async def setup(scheduler: Scheduler) -> None:
        await scheduler.add(
            "tick", Every(timedelta(minutes=5), anchor=START), HangingTarget(timedelta(0))
        )

    timeline = simulate(
        setup,
        start=START,
        until=timedelta(minutes=30),
        faults=[Crash(after=second_completion, nth=2, restart_after=timedelta(minutes=7))],
    )
    crash, restart = [note for note in timeline.notes if note.kind in ("crash", "restart")]
    assert crash.at == START + timedelta(minutes=10)
    assert "right after a matching record #2" in crash.text
    assert restart.at == START + timedelta(minutes=17)
    # Down from 10 to 17: the 15-minute run is caught up at the restart.
    (late,) = timeline.runs("tick", start=START + timedelta(minutes=16))[:1]
    assert (late.due, late.started) == (START + timedelta(minutes=15), restart.at)


def test_a_flaky_target_fails_then_succeeds_under_retry() -> None:
    flaky = FlakyTarget(2, result="done")

    async def setup(scheduler: Scheduler) -> None:
        await scheduler.add(
            "export",
            Every(timedelta(hours=1), anchor=START),
            flaky,
            retry=Retry(max_attempts=3, backoff=timedelta(minutes=1)),
        )

    timeline = simulate(setup, start=START, until=timedelta(hours=2))
    first, second = timeline.runs("export")
    assert [a.error for a in first.attempts] == [
        "simulated failure 1 of 2",
        "simulated failure 2 of 2",
        None,
    ]
    assert first.outcome is Outcome.COMPLETED
    assert first.result == "done"
    assert len(second.attempts) == 1
    assert flaky.calls == 4
    assert repr(flaky) == "<FlakyTarget failures=2 calls=4>"


async def test_a_flaky_target_raises_the_given_error(autojump_clock: MockClock) -> None:
    flaky = FlakyTarget(1, error=ValueError("bad input"))
    async with simulated_scheduler(START) as sim:
        await sim.add("t", Every(timedelta(minutes=1), anchor=START), flaky)
        await sim.advance(timedelta(minutes=2))
    failed = [r for r in sim.records() if isinstance(r, Failed)]
    assert [(f.error, f.error_type) for f in failed] == [("bad input", "ValueError")]


async def test_a_hanging_target_times_out_and_counts_what_happened(
    autojump_clock: MockClock,
) -> None:
    hang = HangingTarget()
    async with simulated_scheduler(START) as sim:
        await sim.add(
            "stuck", Every(timedelta(hours=1), anchor=START), hang, timeout=timedelta(minutes=5)
        )
        await sim.advance(timedelta(hours=2, minutes=10))
    timeline = Timeline(sim.records())
    assert [r.error for r in timeline.runs("stuck")] == ["timed out after 5 min"] * 2
    assert (hang.calls, hang.cancelled, hang.finished) == (2, 2, 0)
    assert repr(hang) == "<HangingTarget duration=None calls=2 cancelled=2 finished=0>"


async def test_targets_are_not_importable_so_a_restart_needs_them_declared(
    autojump_clock: MockClock,
) -> None:
    async with simulated_scheduler(START) as sim:
        status = await sim.add("t", Every(timedelta(minutes=1)), FlakyTarget(0))
        assert status.target == "chronolog.testing.faults:FlakyTarget<failures=0>"
        await trio.lowlevel.checkpoint()
