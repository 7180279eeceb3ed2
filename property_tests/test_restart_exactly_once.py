"""A restart never loses an occurrence and never runs one twice.

The scheduler is killed at random instants (its log cut where it stood, as
``kill -9`` would leave it), stays down for random stretches, and restarts on
the same records. Afterwards every due time must be accounted for exactly
once: run, or skipped by the catch-up policy -- never both, never twice,
never silently dropped.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from chronolog import (
    CatchUp,
    Completed,
    Event,
    Every,
    Failed,
    MemoryLog,
    Retry,
    Skipped,
    Started,
    check_invariants,
    occurrence_id,
    open_scheduler,
    replay,
)
from chronolog.testing import SimulatedClock

START = datetime(2026, 10, 24, 22, 0, tzinfo=UTC)
INTERVAL = timedelta(minutes=10)


@settings(max_examples=40, deadline=None)
@given(
    lives=st.lists(
        st.tuples(st.integers(1, 90), st.integers(0, 120), st.integers(0, 15)),
        min_size=1,
        max_size=4,
    ),
    catch_up=st.sampled_from(CatchUp),
    run_minutes=st.integers(0, 14),
)
def test_crashes_and_restarts_lose_nothing_and_repeat_nothing(
    lives: list[tuple[int, int, int]], catch_up: CatchUp, run_minutes: int
) -> None:
    sim = SimulatedClock(START)
    attempts: Counter[tuple[str, int]] = Counter()

    async def work() -> None:
        await sim.advance(timedelta(minutes=run_minutes))

    async def life(records: list[Event], minutes: int) -> list[Event]:
        log = MemoryLog(records)
        survived: list[Event] = []
        with trio.CancelScope() as process:
            async with open_scheduler(log, clock=sim) as sched:
                await sched.add(
                    "tick",
                    Every(INTERVAL, anchor=START),
                    work,
                    catch_up=catch_up,
                    retry=Retry(max_attempts=2, backoff=timedelta(minutes=1)),
                )
                await sim.advance(timedelta(minutes=minutes))
                survived = list(log.read())  # what was durable at the kill
                assert replay(survived) == sched.state
                process.cancel()
        return survived

    async def main() -> list[Event]:
        records: list[Event] = []
        for alive, down, _ in lives:
            records = await life(records, alive)
            await sim.advance(timedelta(minutes=down))
        # A last, clean life long enough to settle everything that came due.
        log = MemoryLog(records)
        async with open_scheduler(log, clock=sim) as sched:
            await sched.add(
                "tick",
                Every(INTERVAL, anchor=START),
                work,
                catch_up=catch_up,
                retry=Retry(max_attempts=2, backoff=timedelta(minutes=1)),
            )
            await sim.advance(timedelta(hours=1))
        return list(log.read())

    records = trio.run(main, clock=sim.trio_clock)
    assert check_invariants(records) == []

    settled: Counter[str] = Counter()
    # Due times missed in one outage are one Skipped: the first occurrence,
    # the last due time, how many. Each due time it covers counts once.
    covered: Counter[str] = Counter()
    for record in records:
        if isinstance(record, Started):
            attempts[(record.occurrence, record.attempt)] += 1
        if isinstance(record, Completed | Skipped | Failed) and not (
            isinstance(record, Failed) and record.retry_at is not None
        ):
            settled[record.occurrence] += 1
            covered[record.occurrence] += 1
        if isinstance(record, Skipped) and record.last_due is not None:
            assert record.due is not None
            inside = record.due + INTERVAL
            while inside <= record.last_due:
                covered[occurrence_id("tick", inside)] += 1
                inside += INTERVAL
            assert record.count == (record.last_due - record.due) // INTERVAL + 1
    assert all(count == 1 for count in attempts.values()), "an attempt started twice"
    assert all(count == 1 for count in settled.values()), "an occurrence settled twice"
    assert all(count == 1 for count in covered.values()), "a due time settled twice"
    # An outage costs a record or two per task, however long: never one per due time.
    missed = [r for r in records if isinstance(r, Skipped) and r.reason == "missed"]
    assert len(missed) <= 2 * (len(lives) + 1), missed
    # No gaps: every due time before the latest one accounted for is itself
    # settled exactly once -- by its own record or inside a range -- or still
    # open (scheduled, running, or waiting for its retry). Due times after
    # that are not lost but not reached yet: the task was busy, and the next
    # start of the scheduler catches them up.
    state = replay(records)
    still_open = {run.occurrence for run in state.open_occurrences("tick")}
    accounted = set(covered) | still_open
    due = START + INTERVAL
    latest = max(
        (
            run.last_due if run.last_due is not None else run.due
            for run in state.history("tick")
            if run.due is not None
        ),
        default=START,
    )
    while due <= latest:
        occurrence = occurrence_id("tick", due)
        assert occurrence in accounted, f"lost {occurrence}"
        due += INTERVAL


@settings(max_examples=25, deadline=None)
@given(
    outages=st.lists(
        st.tuples(st.integers(1, 30), st.integers(0, 4 * 3600)), min_size=1, max_size=3
    ),
    catch_up=st.sampled_from(CatchUp),
    grace=st.none() | st.integers(1, 600),
)
def test_outages_of_a_per_second_task_are_a_record_each_and_cover_every_due_time(
    outages: list[tuple[int, int]], catch_up: CatchUp, grace: int | None
) -> None:
    """Up for a few seconds, down for up to four hours, again and again: each
    outage is at most two records (a range, and the run catch-up picks), and
    every due time is run or covered by exactly one skip."""
    sim = SimulatedClock(START)
    second = timedelta(seconds=1)
    options = {
        "catch_up": catch_up,
        "misfire_grace": None if grace is None else timedelta(seconds=grace),
    }

    async def work() -> None:
        await trio.lowlevel.checkpoint()

    async def main() -> list[Event]:
        records: list[Event] = []
        for up, down in outages:
            log = MemoryLog(records)
            with trio.fail_after(24 * 3600):
                async with open_scheduler(log, clock=sim) as sched:
                    await sched.add("tick", Every(second, anchor=START), work, **options)
                    await sim.advance(timedelta(seconds=up, milliseconds=500))
            records = list(log.read())
            sim.jump(timedelta(seconds=down))
        log = MemoryLog(records)
        with trio.fail_after(24 * 3600):
            async with open_scheduler(log, clock=sim) as sched:
                await sched.add("tick", Every(second, anchor=START), work, **options)
                await sim.advance(timedelta(seconds=200))
        return list(log.read())

    records = trio.run(main, clock=sim.trio_clock)
    assert check_invariants(records) == []
    missed = [r for r in records if isinstance(r, Skipped) and r.reason == "missed"]
    assert len(missed) <= 2 * len(outages), missed
    covered: Counter[datetime] = Counter()
    for record in records:
        if isinstance(record, Started) and record.attempt == 1:
            covered[datetime.fromisoformat(record.occurrence.removeprefix("tick@"))] += 1
        elif isinstance(record, Skipped):
            assert record.due is not None
            last = record.last_due if record.last_due is not None else record.due
            assert record.count == (last - record.due) // second + 1
            for n in range(record.count):
                covered[record.due + n * second] += 1
    assert all(count == 1 for count in covered.values()), "a due time settled twice"
    reached = (max(covered) - START) // second
    assert sorted(covered) == [START + n * second for n in range(1, reached + 1)]
