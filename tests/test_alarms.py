"""Alarms: actors due at the same instant share one timer, and each wakes exactly then."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest
import trio
import trio.testing

from chronolog._alarms import ROUND, Alarms, Sleeper
from chronolog._clock import SystemClock
from chronolog.testing import SimulatedClock

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from contextlib import AbstractContextManager

    from chronolog._clock import Clock

START = datetime(2026, 3, 29, 0, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


@pytest.fixture
def sim(autojump_clock: trio.testing.MockClock) -> SimulatedClock:
    return SimulatedClock(START, mock_clock=autojump_clock)


@pytest.fixture
async def alarms(sim: SimulatedClock) -> AsyncIterator[Alarms]:
    alarms = Alarms(sim)
    async with trio.open_nursery() as nursery:
        await nursery.start(alarms.run)
        yield alarms
        nursery.cancel_scope.cancel()


class Napper:
    """A task that sleeps until an instant and notes when and how it woke."""

    def __init__(self, alarms: Alarms, sim: Clock, when: datetime) -> None:
        self.alarms, self.sim, self.when = alarms, sim, when
        self.sleeper = Sleeper()
        self.woke: datetime | None = None
        self.cancelled = False

    async def run(self) -> None:
        try:
            await self.alarms.sleep_until(self.when, self.sleeper)
        except trio.Cancelled:
            self.cancelled = True
            raise
        self.woke = self.sim.now()


async def nap_all(alarms: Alarms, sim: SimulatedClock, whens: list[datetime]) -> list[Napper]:
    nappers = [Napper(alarms, sim, when) for when in whens]
    async with trio.open_nursery() as nursery:
        for napper in nappers:
            nursery.start_soon(napper.run)
    return nappers


async def test_sleepers_sharing_an_instant_all_wake_exactly_then(
    alarms: Alarms, sim: SimulatedClock, autojump_clock: trio.testing.MockClock
) -> None:
    whens = [START + MINUTE] * 50 + [START + 2 * MINUTE] * 3 + [START + 90 * MINUTE]
    nappers = await nap_all(alarms, sim, whens)
    assert [n.woke for n in nappers] == whens
    assert "0 parked, 0 alone" in repr(alarms)


async def test_the_sleepers_of_an_instant_take_their_steps_in_one_round(
    alarms: Alarms, sim: SimulatedClock, autojump_clock: trio.testing.MockClock
) -> None:
    # Each sleeper notes that it woke, yields once, then counts who woke:
    # when all of them woke in one scheduling round, each one sees all.
    woke: list[int] = []
    seen: list[int] = []

    async def nap(index: int) -> None:
        await alarms.sleep_until(START + MINUTE, Sleeper())
        woke.append(index)
        await trio.lowlevel.checkpoint()
        seen.append(len(woke))

    async with trio.open_nursery() as nursery:
        for index in range(20):
            nursery.start_soon(nap, index)
    assert seen == [20] * 20


async def test_a_crowd_due_at_one_instant_is_called_in_rounds_in_key_order(
    alarms: Alarms, sim: SimulatedClock, autojump_clock: trio.testing.MockClock
) -> None:
    # 2.5 rounds of calls at one instant, keys in reverse order of arrival: a
    # task that yields in a loop sees each round end before the next begins,
    # so the first claims of a burst are written while later ones are made.
    count = ROUND * 5 // 2
    called: list[str] = []
    between: list[int] = []
    for index in reversed(range(count)):
        alarms.call_at(START + MINUTE, lambda i=index: called.append(f"{i:05}"), key=f"{index:05}")

    async def watch() -> None:
        await sim.sleep_until(START + MINUTE)  # wakes with the keeper
        while len(called) < count:
            await trio.lowlevel.checkpoint()
            if called and (not between or between[-1] != len(called)):
                between.append(len(called))

    with trio.fail_after(3600):
        await watch()
    assert called == sorted(called)
    # Seen part-way (which rounds a look falls between depends on the order
    # Trio runs one batch in), and only ever whole rounds.
    assert between[-1] == count
    assert len(between) >= 2
    assert all(seen % ROUND == 0 for seen in between[:-1])
    assert sim.now() == START + MINUTE


async def test_after_the_first_round_of_a_crowd_the_keeper_awaits_its_hook(
    sim: SimulatedClock, autojump_clock: trio.testing.MockClock
) -> None:
    # The scheduler's hook: the writer has made the first round's claims
    # durable. Awaited once per crowd, after its first round only.
    called: list[int] = []
    seen_by_hook: list[int] = []

    async def hook() -> None:
        seen_by_hook.append(len(called))
        await trio.lowlevel.checkpoint()

    alarms = Alarms(sim, after_first_round=hook)
    for index in range(ROUND * 3):
        alarms.call_at(START + MINUTE, lambda i=index: called.append(i), key=f"{index:05}")
    for index in range(ROUND * 2):
        when = START + 2 * MINUTE
        alarms.call_at(when, lambda i=index: called.append(i), key=f"{index:05}")
    alarms.call_at(START + 3 * MINUTE, lambda: called.append(-1), key="alone")
    with trio.fail_after(3600):
        async with trio.open_nursery() as nursery:
            await nursery.start(alarms.run)
            await sim.sleep_until(START + 4 * MINUTE)
            nursery.cancel_scope.cancel()
    assert len(called) == ROUND * 5 + 1
    assert seen_by_hook == [ROUND, ROUND * 4]


async def test_wake_ends_a_sleep_early_alone_or_parked(
    alarms: Alarms, sim: SimulatedClock, autojump_clock: trio.testing.MockClock
) -> None:
    due = START + 10 * MINUTE
    first, second = Napper(alarms, sim, due), Napper(alarms, sim, due)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(first.run)
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(second.run)  # parks: `first` sleeps until the same instant
        await sim.sleep_until(START + MINUTE)
        alarms.wake(second.sleeper)
        alarms.wake(second.sleeper)  # already woken: nothing more
        await trio.testing.wait_all_tasks_blocked()
        assert second.woke == START + MINUTE
        alarms.wake(first.sleeper)
    assert first.woke == START + MINUTE
    alarms.wake(Sleeper())  # not asleep: nothing happens


async def test_a_cancelled_sleeper_leaves_the_others_on_time(
    alarms: Alarms, sim: SimulatedClock, autojump_clock: trio.testing.MockClock
) -> None:
    due = START + 5 * MINUTE
    nappers = [Napper(alarms, sim, due) for _ in range(3)]
    async with trio.open_nursery() as nursery:
        for napper in nappers[:2]:
            nursery.start_soon(napper.run)
        scope = trio.CancelScope()
        nursery.start_soon(_run_in, scope, nappers[2])
        await trio.testing.wait_all_tasks_blocked()
        scope.cancel()
    assert [n.woke for n in nappers] == [due, due, None]
    assert nappers[2].cancelled


async def _run_in(scope: trio.CancelScope, napper: Napper) -> None:
    with scope:
        await napper.run()


async def test_an_earlier_instant_rearms_the_keeper(
    alarms: Alarms, sim: SimulatedClock, autojump_clock: trio.testing.MockClock
) -> None:
    late, early = START + 60 * MINUTE, START + 5 * MINUTE
    whens = [late, late, early, early]
    nappers = [Napper(alarms, sim, when) for when in whens]
    async with trio.open_nursery() as nursery:
        for napper in nappers:
            nursery.start_soon(napper.run)
            await trio.testing.wait_all_tasks_blocked()  # each in turn: the keeper rearms
        # The one sleeping alone until `early` leaves: the parked one must
        # still wake then, from the keeper (which slept until `late`).
        alarms.wake(nappers[2].sleeper)
    assert [n.woke for n in nappers] == [late, late, START, early]


async def test_clock_jumps_wake_those_passed_and_no_one_else(
    alarms: Alarms, sim: SimulatedClock, autojump_clock: trio.testing.MockClock
) -> None:
    soon, later = START + 10 * MINUTE, START + 3 * 60 * MINUTE
    nappers = [Napper(alarms, sim, when) for when in (soon, soon, later, later)]
    async with trio.open_nursery() as nursery:
        for napper in nappers:
            nursery.start_soon(napper.run)
        await trio.testing.wait_all_tasks_blocked()
        sim.jump(timedelta(minutes=30))  # NTP step forward past `soon`
        await trio.testing.wait_all_tasks_blocked()
        assert [n.woke for n in nappers] == [soon + 20 * MINUTE] * 2 + [None, None]
        sim.jump(-timedelta(hours=1))  # and back: `later` is further away again
    assert [n.woke for n in nappers[2:]] == [later, later]


async def test_sleeps_woken_early_do_not_pile_up(
    alarms: Alarms, sim: SimulatedClock, autojump_clock: trio.testing.MockClock
) -> None:
    anchor = Napper(alarms, sim, START + 24 * 60 * MINUTE)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(anchor.run)
        await trio.testing.wait_all_tasks_blocked()
        for _ in range(2000):
            napper = Napper(alarms, sim, anchor.when)
            nursery.start_soon(napper.run)
            await trio.testing.wait_all_tasks_blocked()
            alarms.wake(napper.sleeper)
        assert len(alarms._heap) < 600  # woken ones are dropped, not kept for a day
        alarms.wake(anchor.sleeper)


class PlainClock:
    """A clock of the user's own (only the Clock protocol): the generic sleep path."""

    def __init__(self, inner: SimulatedClock) -> None:
        self.inner = inner

    def now(self) -> datetime:
        return self.inner.now()

    async def sleep_until(self, when: datetime) -> None:
        await self.inner.sleep_until(when)

    def hold_still(self) -> AbstractContextManager[None]:
        return self.inner.hold_still()


async def test_a_clock_of_ones_own_sleeps_and_wakes_the_same(
    sim: SimulatedClock, autojump_clock: trio.testing.MockClock
) -> None:
    alarms = Alarms(PlainClock(sim))
    due = START + 7 * MINUTE
    async with trio.open_nursery() as nursery:
        await nursery.start(alarms.run)
        nappers = [Napper(alarms, sim, due) for _ in range(3)]
        early = Napper(alarms, sim, START + 60 * MINUTE)
        async with trio.open_nursery() as naps:
            for napper in [*nappers, early]:
                naps.start_soon(napper.run)
            await sim.sleep_until(START + MINUTE)
            alarms.wake(early.sleeper)
        nursery.cancel_scope.cancel()
    assert [n.woke for n in nappers] == [due] * 3
    assert early.woke == START + MINUTE


async def test_on_the_system_clock_a_wake_ends_a_long_sleep_at_once() -> None:
    clock = SystemClock()
    alarms = Alarms(clock)
    long = Napper(alarms, clock, clock.now() + timedelta(hours=1))
    short = Napper(alarms, clock, clock.now() + timedelta(milliseconds=5))
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            await nursery.start(alarms.run)
            async with trio.open_nursery() as naps:
                naps.start_soon(long.run)
                naps.start_soon(short.run)
                await trio.sleep(0.02)
                alarms.wake(long.sleeper)
            nursery.cancel_scope.cancel()
    assert short.woke is not None
    assert short.woke >= short.when
    assert long.woke is not None
    assert long.woke < long.when
