"""Alarms under random sleepers: each wakes exactly at its instant, when woken, or never.

Sleepers arrive at random moments with random instants (many shared, so
most of them park with the keeper), and some are woken early or cancelled
at random moments. Whatever the interleaving, a sleeper that is neither
woken nor cancelled wakes at exactly its instant (never early, never late:
the clock is simulated), one woken early wakes then, and a cancelled one
never wakes. Each example is its own ``trio.run`` on a MockClock.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal

import trio
from hypothesis import example, given
from hypothesis import strategies as st
from trio.testing import MockClock

from chronolog._alarms import Alarms, Sleeper
from chronolog.testing import SimulatedClock

START = datetime(2026, 10, 25, 0, 0, tzinfo=UTC)

Ending = Literal["sleep", "wake", "cancel"]


#: (arrives after, sleeps until, how it ends, when that happens): minutes
#: from START. Few instants, so that many sleepers share one.
sleepers = st.tuples(
    st.integers(min_value=0, max_value=4),
    st.sampled_from([0, 3, 5, 8, 12]),
    st.sampled_from(["sleep", "sleep", "wake", "cancel"]),
    st.integers(min_value=0, max_value=12),
)


@given(plan=st.lists(sleepers, min_size=1, max_size=40))
# Rare at random (about one run in a few thousand): the keeper sleeps for
# 00:08 when a sleeper parks for 00:05, and then the one sleeping alone until
# 00:05 is woken early. The keeper must have been rearmed for 00:05.
@example(plan=[(0, 5, "wake", 1), (0, 8, "sleep", 0), (0, 8, "sleep", 0), (1, 5, "sleep", 0)])
def test_every_sleeper_wakes_exactly_at_its_instant_or_when_woken(
    plan: list[tuple[int, int, Ending, int]],
) -> None:
    mock = MockClock(autojump_threshold=0)
    sim = SimulatedClock(START, mock_clock=mock)
    minute = timedelta(minutes=1)
    woke: dict[int, datetime] = {}
    # What each sleeper should see: the instant it sleeps until, or the
    # moment it is woken or cancelled if that comes first.
    expected: dict[int, datetime | None] = {}

    async def sleeper(
        index: int, arrive: datetime, until: datetime, scope: trio.CancelScope, bed: Sleeper
    ) -> None:
        await sim.sleep_until(arrive)
        with scope:
            await alarms.sleep_until(until, bed)
            woke[index] = sim.now()

    async def ender(at: datetime, ending: Ending, scope: trio.CancelScope, bed: Sleeper) -> None:
        await sim.sleep_until(at)
        if ending == "wake":
            alarms.wake(bed)
        else:
            scope.cancel()

    alarms = Alarms(sim)

    async def main() -> None:
        async with trio.open_nursery() as keeper:
            await keeper.start(alarms.run)
            async with trio.open_nursery() as nursery:
                for index, (arrive, until, ending, end_at) in enumerate(plan):
                    scope, bed = trio.CancelScope(), Sleeper()
                    arrive_at = START + arrive * minute
                    until_at = START + until * minute
                    nursery.start_soon(sleeper, index, arrive_at, until_at, scope, bed)
                    due = max(arrive_at, until_at)
                    ends_at = START + end_at * minute
                    if ending == "sleep" or ends_at <= arrive_at or ends_at >= due:
                        # Ended before it slept, or after it woke: a plain sleep.
                        expected[index] = due
                        if ending != "sleep" and ends_at >= due:
                            nursery.start_soon(ender, ends_at + minute, ending, scope, bed)
                        continue
                    expected[index] = ends_at if ending == "wake" else None
                    nursery.start_soon(ender, ends_at, ending, scope, bed)
            keeper.cancel_scope.cancel()

    trio.run(main, clock=mock)
    assert {index: woke.get(index) for index in expected} == expected
    assert "0 parked, 0 alone" in repr(alarms)
