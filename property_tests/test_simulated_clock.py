"""SimulatedClock under random sleeps and jumps: exact, monotone between jumps, never early.

Each example is its own ``trio.run`` on the simulated clock's MockClock (a
SimulatedClock belongs to one run).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal

import trio
from hypothesis import given
from hypothesis import strategies as st
from trio.testing import MockClock, wait_all_tasks_blocked

from chronolog.testing import SimulatedClock

Step = tuple[Literal["advance", "sleep_until", "jump"], timedelta]

aware_starts = st.datetimes(
    min_value=datetime(2000, 1, 1),
    max_value=datetime(2100, 1, 1),
    # Any IANA zone: the start is read as an instant (even in a DST gap or fold).
    timezones=st.one_of(st.just(UTC), st.timezones()),
)


def durations(*, longest: timedelta) -> st.SearchStrategy[timedelta]:
    """Zero or more, to the microsecond: mostly short, sometimes up to ``longest``."""
    return st.one_of(
        st.timedeltas(min_value=timedelta(0), max_value=timedelta(seconds=5)),
        st.timedeltas(min_value=timedelta(0), max_value=longest),
    )


def signed_durations(*, longest: timedelta) -> st.SearchStrategy[timedelta]:
    return st.one_of(durations(longest=longest), durations(longest=longest).map(lambda d: -d))


def steps(*, longest: timedelta = timedelta(days=400)) -> st.SearchStrategy[Step]:
    return st.one_of(
        st.tuples(st.just("advance"), durations(longest=longest)),
        st.tuples(st.just("sleep_until"), signed_durations(longest=longest)),
        st.tuples(st.just("jump"), signed_durations(longest=longest)),
    )


#: Where the MockClock already stands when the SimulatedClock is made.
trio_bases = st.one_of(st.just(0.0), st.floats(min_value=0, max_value=1e6))


def mock_clock_at(trio_base: float) -> MockClock:
    mock = MockClock(autojump_threshold=0)
    mock.jump(trio_base)
    return mock


@given(start=aware_starts, trio_base=trio_bases, script=st.lists(steps(), max_size=30))
def test_now_is_start_plus_sleeps_plus_jumps(
    start: datetime, trio_base: float, script: list[Step]
) -> None:
    sim = SimulatedClock(start, mock_clock=mock_clock_at(trio_base))
    assert sim.now() == start.astimezone(UTC)

    async def main() -> None:
        expected = start.astimezone(UTC)
        slept = timedelta(0)
        for kind, delta in script:
            before = sim.now()
            if kind == "advance":
                await sim.advance(delta)
                slept += delta
                expected += delta
            elif kind == "sleep_until":
                target = before + delta
                await sim.sleep_until(target)
                assert sim.now() >= target
                slept += max(delta, timedelta(0))
                expected = max(expected, target)
            else:
                sim.jump(delta)
                expected += delta
            after = sim.now()
            assert after == expected, (kind, delta)
            assert after.tzinfo is UTC
            if kind != "jump" or delta >= timedelta(0):
                assert after >= before, "time went back without a backward jump"
        # Trio time moved by exactly the sleeps; the jumps moved only the wall clock.
        assert timedelta(seconds=trio.current_time() - trio_base) == slept

    trio.run(main, clock=sim.trio_clock)


@given(
    start=aware_starts,
    trio_base=trio_bases,
    targets=st.lists(signed_durations(longest=timedelta(days=10)), min_size=1, max_size=8),
    script=st.lists(
        st.tuples(
            durations(longest=timedelta(days=2)), signed_durations(longest=timedelta(days=3))
        ),
        max_size=10,
    ),
)
def test_sleepers_wake_exactly_when_the_wall_clock_reaches_them(
    start: datetime,
    trio_base: float,
    targets: list[timedelta],
    script: list[tuple[timedelta, timedelta]],
) -> None:
    """Several sleepers, a driver that waits and jumps: none early, none left asleep when due.

    A sleeper returns with ``now() == target`` unless the wall clock was
    already past its target -- when it fell asleep, or by a forward jump -- in
    which case it returns at that very Trio instant.
    """
    sim = SimulatedClock(start, mock_clock=mock_clock_at(trio_base))
    wall_targets = [sim.now() + offset for offset in targets]
    woke: dict[int, tuple[float, datetime]] = {}
    #: Trio instants at which the wall clock could have overtaken a target.
    overtaken_at = {trio_base}

    async def sleeper(index: int) -> None:
        await sim.sleep_until(wall_targets[index])
        now = sim.now()
        assert now >= wall_targets[index], "sleep_until returned early"
        woke[index] = (trio.current_time(), now)

    def assert_none_overdue() -> None:
        for index, target in enumerate(wall_targets):
            if index not in woke:
                assert sim.now() < target, f"sleeper {index} still asleep past {target}"

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            for index in range(len(wall_targets)):
                nursery.start_soon(sleeper, index)
            await wait_all_tasks_blocked()
            assert_none_overdue()
            for wait, jump in script:
                await sim.advance(wait)
                sim.jump(jump)
                overtaken_at.add(trio.current_time())
                await wait_all_tasks_blocked()
                assert_none_overdue()

    trio.run(main, clock=sim.trio_clock)
    assert sorted(woke) == list(range(len(wall_targets)))
    for index, (trio_time, now) in woke.items():
        target = wall_targets[index]
        assert now == target or (now > target and trio_time in overtaken_at), (index, target, now)
