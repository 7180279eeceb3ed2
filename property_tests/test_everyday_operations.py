"""Everyday operations never cost a run, for any trigger: a pause skips exactly
the due times that come while it lasts, and a redefinition runs exactly the
new trigger's due times, keeping the pending one when the new trigger has it.

Each example runs a real scheduler on simulated time (days in milliseconds)
and compares the instants its runs started at with the trigger's own due
times, computed independently with ``next_after``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import trio
import trio.testing
from hypothesis import assume, given
from hypothesis import strategies as st

from chronolog import (
    At,
    Every,
    MemoryLog,
    Retry,
    Scheduled,
    Skipped,
    SkipReason,
    Started,
    check_invariants,
    open_scheduler,
    replay,
)
from chronolog.testing import SimulatedClock, triggers

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from chronolog import Scheduler, Trigger

    Script = Callable[[Scheduler, SimulatedClock], Awaitable[None]]

#: A few days around Europe's and North America's spring-forward nights.
START = datetime(2026, 3, 7, 12, 0, tzinfo=UTC)
SPAN = timedelta(days=3)
END = START + SPAN
#: Instants drawn with a microsecond part never coincide with a due time
#: (whole seconds), so "inside the pause" is never a tie.
OFFSETS = st.integers(1, int(SPAN.total_seconds()) - 1).map(
    lambda seconds: timedelta(seconds=seconds, microseconds=250_000)
)
TIME_TRIGGERS = triggers(start=START + timedelta(seconds=1), end=END, max_fires_per_hour=6)


def due_times(trigger: Trigger, after: datetime, until: datetime) -> list[datetime]:
    """The trigger's due times in (after, until], from next_after alone."""
    found: list[datetime] = []
    due = trigger.next_after(after)
    while due is not None and due <= until:
        found.append(due)
        due = trigger.next_after(due)
    return found


async def noop() -> None:
    await trio.lowlevel.checkpoint()


def run_scenario(script: Script) -> MemoryLog:
    log = MemoryLog()
    clock = trio.testing.MockClock(autojump_threshold=0)
    sim = SimulatedClock(START, mock_clock=clock)

    async def main() -> None:
        async with open_scheduler(log, clock=sim) as sched:
            await script(sched, sim)
            assert replay(log.read()) == sched.state

    trio.run(main, clock=clock)
    assert check_invariants(log.read()) == []
    return log


def started_dues(log: MemoryLog) -> list[datetime]:
    """When attempt 1 of each trigger occurrence started (runs take no time, never overlap)."""
    return [r.at for r in log.read() if isinstance(r, Started) and r.attempt == 1]


@given(trigger=TIME_TRIGGERS, pause_at=OFFSETS, pause_for=OFFSETS)
def test_a_pause_skips_exactly_the_due_times_inside_it(
    trigger: Trigger, pause_at: timedelta, pause_for: timedelta
) -> None:
    paused = START + pause_at
    resumed = min(paused + pause_for, END - timedelta(seconds=1))
    assume(resumed > paused)

    async def script(sched: Scheduler, sim: SimulatedClock) -> None:
        await sched.add("job", trigger, noop)
        await sim.advance(paused - sim.now())
        await sched.pause("job")
        await sim.advance(resumed - sim.now())
        await sched.resume("job")
        await sim.advance(END - sim.now())

    log = run_scenario(script)
    expected = [d for d in due_times(trigger, START, END) if not paused <= d < resumed]
    assert started_dues(log) == expected
    skipped = [r for r in log.read() if isinstance(r, Skipped)]
    # The occurrence pending when the pause began is skipped once if its due
    # time came while paused; nothing else is recorded for the paused period.
    inside = [d for d in due_times(trigger, START, END) if paused <= d < resumed]
    assert len(skipped) == (1 if inside else 0)
    assert all(s.reason is SkipReason.PAUSED for s in skipped)
    if inside:
        assert skipped[0].at == inside[0]  # skipped when its due time came, not at the pause


@given(
    first=TIME_TRIGGERS,
    second=TIME_TRIGGERS | st.none(),
    redefine_at=OFFSETS,
    data=st.data(),
)
def test_a_redefinition_runs_exactly_the_new_triggers_due_times(
    first: Trigger, second: Trigger | None, redefine_at: timedelta, data: st.DataObject
) -> None:
    """``second=None``: the same trigger again, with only a policy changed."""
    redefined = START + redefine_at
    new = first if second is None else second
    assume(not (isinstance(new, At) and new.when <= redefined))  # a past one-off: catch-up
    change = data.draw(st.sampled_from(["timeout", "retry", "nothing"]))

    async def script(sched: Scheduler, sim: SimulatedClock) -> None:
        await sched.add("job", first, noop)
        await sim.advance(redefined - sim.now())
        if change == "timeout":
            await sched.add("job", new, noop, timeout=timedelta(hours=1))
        elif change == "retry":
            await sched.add("job", new, noop, retry=Retry(max_attempts=2))
        else:
            await sched.add("job", new, noop)
        await sim.advance(END - sim.now())

    log = run_scenario(script)
    before = due_times(first, START, redefined)
    after = due_times(new, redefined, END)
    assert started_dues(log) == before + after
    due_of = {r.occurrence: r.due for r in log.read() if isinstance(r, Scheduled)}
    for skipped in (r for r in log.read() if isinstance(r, Skipped)):
        # Only a pending occurrence the new trigger does not produce is skipped.
        assert skipped.reason is SkipReason.REDEFINED
        due = due_of[skipped.occurrence]
        assert new.next_after(due - timedelta(microseconds=1)) != due


#: Instants within the first half day, for properties that run every minute.
HALF_DAY_OFFSETS = st.integers(1, 12 * 3600 - 1).map(
    lambda seconds: timedelta(seconds=seconds, microseconds=250_000)
)


@given(
    interval=st.integers(60, 6 * 3600).map(lambda seconds: timedelta(seconds=seconds)),
    declared=st.lists(HALF_DAY_OFFSETS, min_size=1, max_size=4),
    restart_at=HALF_DAY_OFFSETS | st.none(),
)
def test_declaring_an_every_again_never_moves_its_grid(
    interval: timedelta, declared: list[timedelta], restart_at: timedelta | None
) -> None:
    """Re-adding the same Every -- later, any number of times, after a restart --
    keeps the anchor of the first add: every run is due on that grid."""
    log = MemoryLog()
    clock = trio.testing.MockClock(autojump_threshold=0)
    sim = SimulatedClock(START + timedelta(microseconds=137), mock_clock=clock)
    moments = sorted(START + offset for offset in declared)
    horizon = START + timedelta(hours=13)

    async def main() -> None:
        async with open_scheduler(log, clock=sim) as sched:
            await sched.add("tick", Every(interval), noop)
            for moment in moments:
                if restart_at is not None and START + restart_at <= moment:
                    break
                await sim.advance(moment - sim.now())
                await sched.add("tick", Every(interval), noop)
            stop = horizon if restart_at is None else START + restart_at
            await sim.advance(stop - sim.now())
        if restart_at is not None:
            async with open_scheduler(log, clock=sim) as sched:
                await sched.add("tick", Every(interval), noop)
                await sim.advance(horizon - sim.now())

    trio.run(main, clock=clock)
    anchor = START  # the first add's instant, whole seconds
    dues = [r.due for r in log.read() if isinstance(r, Scheduled)]
    assert dues
    assert all((due - anchor) % interval == timedelta(0) for due in dues)
    assert check_invariants(log.read()) == []
