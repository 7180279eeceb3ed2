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
    for record in records:
        if isinstance(record, Started):
            attempts[(record.occurrence, record.attempt)] += 1
        if isinstance(record, Completed | Skipped | Failed) and not (
            isinstance(record, Failed) and record.retry_at is not None
        ):
            settled[record.occurrence] += 1
    assert all(count == 1 for count in attempts.values()), "an attempt started twice"
    assert all(count == 1 for count in settled.values()), "an occurrence settled twice"
    # No gaps: every due time before the latest one accounted for is itself
    # settled exactly once, or still open (scheduled, running, or waiting for
    # its retry). Due times after that are not lost but not reached yet: the
    # task was busy, and the next start of the scheduler catches them up.
    state = replay(records)
    still_open = {run.occurrence for run in state.open_occurrences("tick")}
    accounted = set(settled) | still_open
    due = START + INTERVAL
    latest = max((r.due for r in state.history("tick") if r.due is not None), default=START)
    while due <= latest:
        occurrence = occurrence_id("tick", due)
        assert occurrence in accounted, f"lost {occurrence}"
        due += INTERVAL
