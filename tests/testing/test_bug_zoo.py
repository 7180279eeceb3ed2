"""The bug zoo: every toy bug is caught by the checkers and by the state machine.

For each toy (see ``zoo.py``) the same scenario is run twice: on a plain
``MemoryLog`` the checkers stay silent, on the toy's log they fail with a
message that names the problem. Then the state machine, left to find the
bug by itself with random steps, must fail with the same message.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, ClassVar

import pytest
from hypothesis import Phase, settings
from hypothesis.stateful import run_state_machine_as_test

from chronolog import Cron, Every, MemoryLog
from chronolog.testing import (
    Crash,
    HangingTarget,
    assert_exactly_once,
    assert_nothing_lost,
    simulate,
)
from chronolog.testing.machine import SchedulerMachine

from .zoo import DoublesDstFires, DoubleStartAfterRestart, ForgetsMissedRuns

if TYPE_CHECKING:
    from chronolog import EventLog, Scheduler

START = datetime(2026, 10, 24, 22, 0, tzinfo=UTC)
TEN = timedelta(minutes=10)
#: Enough random tries to find each bug, no shrinking (keeps the message and
#: the time down), no example database (each run finds the bug afresh).
HUNT = settings(
    max_examples=60,
    stateful_step_count=12,
    deadline=None,
    database=None,
    phases=[Phase.generate],
)


async def every_ten_busy_eight(scheduler: Scheduler) -> None:
    await scheduler.add("export", Every(TEN, anchor=START), HangingTarget(timedelta(minutes=8)))


async def every_ten(scheduler: Scheduler) -> None:
    await scheduler.add("tick", Every(TEN, anchor=START), HangingTarget(timedelta(0)))


async def nightly_at_half_past_two(scheduler: Scheduler) -> None:
    await scheduler.add(
        "nightly", Cron("30 2 * * *", tz="Europe/Berlin"), HangingTarget(timedelta(0))
    )


# -- the checkers ---------------------------------------------------------------------


def test_a_double_start_after_restart_is_caught() -> None:
    crash = [Crash(at=START + timedelta(minutes=15))]  # the 10:00 run is in its 8 minutes
    sound = simulate(every_ten_busy_eight, start=START, until=timedelta(hours=1), faults=crash)
    assert_exactly_once(sound)
    broken = simulate(
        every_ten_busy_eight,
        start=START,
        until=timedelta(hours=1),
        faults=crash,
        log=DoubleStartAfterRestart(),
    )
    with pytest.raises(AssertionError) as failure:
        assert_exactly_once(broken)
    message = str(failure.value)
    assert (
        "occurrence 'export@2026-10-24T22:10:00Z' of task 'export' ran more than once" in message
    )
    assert "yet attempt 1 started again [started-after-settled]" in message
    assert "crash at 2026-10-24 22:15:00Z" in message


def test_a_lost_occurrence_is_caught() -> None:
    down = [Crash(at=START + timedelta(minutes=15), restart_after=timedelta(hours=1))]
    sound = simulate(every_ten, start=START, until=timedelta(hours=2), faults=down)
    assert_nothing_lost(sound, until=START + timedelta(hours=2))
    broken = simulate(
        every_ten, start=START, until=timedelta(hours=2), faults=down, log=ForgetsMissedRuns()
    )
    assert_exactly_once(broken)  # nothing ran twice: the bug is elsewhere
    with pytest.raises(AssertionError) as failure:
        assert_nothing_lost(broken, until=START + timedelta(hours=2))
    message = str(failure.value)
    assert message.startswith(
        "4 due time(s) of task(s) 'tick' up to 2026-10-25 00:00:00Z were lost"
    )
    for minute in (30, 40, 50):
        assert f"due 2026-10-24 22:{minute}:00Z: no occurrence" in message
    assert "harness: restart at 2026-10-24 23:15:00Z" in message


def test_a_dst_double_fire_is_caught() -> None:
    sound = simulate(nightly_at_half_past_two, start=START, until=timedelta(days=2))
    assert_exactly_once(sound)
    broken = simulate(
        nightly_at_half_past_two,
        start=START,
        until=timedelta(days=2),
        log=DoublesDstFires("Europe/Berlin"),
    )
    with pytest.raises(AssertionError) as failure:
        assert_exactly_once(broken)
    message = str(failure.value)
    assert message.startswith("exactly-once is broken: 1 problem(s)")
    assert "DST double fire: task 'nightly' ran at 2026-10-25 01:30:00Z" in message
    assert "the same local wall time twice" in message


# -- the state machine ---------------------------------------------------------------------


class DoubleStartMachine(SchedulerMachine):
    start: ClassVar[datetime] = START

    async def setup(self, scheduler: Scheduler) -> None:
        await every_ten_busy_eight(scheduler)

    def make_log(self) -> EventLog:
        return DoubleStartAfterRestart()


class LostRunMachine(SchedulerMachine):
    start: ClassVar[datetime] = START
    # The toy's own state also drifts from its log; leave that check out, so
    # that what fails is the loss itself (whichever the random steps hit first).
    check_replay: ClassVar[bool] = False

    async def setup(self, scheduler: Scheduler) -> None:
        await every_ten(scheduler)

    def make_log(self) -> EventLog:
        return ForgetsMissedRuns()


class DstMachine(SchedulerMachine):
    start: ClassVar[datetime] = START

    async def setup(self, scheduler: Scheduler) -> None:
        await nightly_at_half_past_two(scheduler)

    def make_log(self) -> EventLog:
        return DoublesDstFires("Europe/Berlin")


@pytest.mark.parametrize(
    ("machine", "problem"),
    [
        (DoubleStartMachine, r"ran more than once:\n.*started again \[started-after-settled\]"),
        (LostRunMachine, r"were lost: never started, never skipped"),
        (DstMachine, r"DST double fire: task 'nightly' ran at 2026-10-25 01:30:00Z"),
    ],
)
def test_the_state_machine_finds_each_bug_by_itself(
    machine: type[SchedulerMachine], problem: str
) -> None:
    with pytest.raises(AssertionError, match=problem):
        run_state_machine_as_test(machine, settings=HUNT)


def test_the_state_machine_is_silent_on_the_sound_scheduler() -> None:
    class Sound(SchedulerMachine):
        start: ClassVar[datetime] = START

        async def setup(self, scheduler: Scheduler) -> None:
            await every_ten_busy_eight(scheduler)
            await nightly_at_half_past_two(scheduler)

        def make_log(self) -> EventLog:
            return MemoryLog()

    run_state_machine_as_test(Sound, settings=settings(HUNT, max_examples=15))
