"""The clocks: the system clock re-reads the wall clock; the simulated one runs on MockClock."""

from __future__ import annotations

import contextlib
import math
import pathlib
import re
import threading
import time as _time
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import pytest
import trio
from trio.testing import MockClock, assert_checkpoints, wait_all_tasks_blocked

from chronolog import ConfigError
from chronolog._clock import Clock, SystemClock
from chronolog.testing import SimulatedClock

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable


def test_now_is_aware_utc() -> None:
    assert SystemClock().now().tzinfo is UTC


async def test_sleep_until_a_past_instant_returns_at_once() -> None:
    clock = SystemClock()
    before = clock.now()
    await clock.sleep_until(before - timedelta(hours=1))
    assert clock.now() - before < timedelta(seconds=1)


async def test_sleep_until_waits_for_the_wall_clock() -> None:
    clock = SystemClock()
    target = clock.now() + timedelta(milliseconds=5)
    await clock.sleep_until(target)
    assert clock.now() >= target


# --- SimulatedClock: a wall clock laid over trio.testing.MockClock ---------------------------

BERLIN = ZoneInfo("Europe/Berlin")
START = datetime(2026, 3, 28, tzinfo=BERLIN)  # the day before spring-forward


def run_simulated(sim: SimulatedClock, main: Callable[[], Awaitable[object]]) -> None:
    trio.run(main, clock=sim.trio_clock)


def test_simulated_clock_is_a_clock() -> None:
    clock: Clock = SimulatedClock(START)
    assert isinstance(clock.hold_still(), contextlib.AbstractContextManager)


def test_a_naive_start_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"aware start.*ZoneInfo") as info:
        SimulatedClock(datetime(2026, 3, 28))
    assert isinstance(info.value, ValueError)


def test_a_mock_clock_of_another_kind_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"needs a trio\.testing\.MockClock"):
        SimulatedClock(START, mock_clock=object())  # type: ignore[arg-type]


def test_it_owns_an_autojumping_mock_clock_by_default() -> None:
    sim = SimulatedClock(START)
    assert isinstance(sim.trio_clock, MockClock)
    assert sim.trio_clock.autojump_threshold == 0
    assert "2026-03-27T23:00:00+00:00" in repr(sim)


def test_now_before_the_run_is_the_start_in_utc() -> None:
    sim = SimulatedClock(START)
    assert sim.now() == START
    assert sim.now().tzinfo is UTC
    assert sim.now().isoformat() == "2026-03-27T23:00:00+00:00"


def test_time_counts_from_when_the_simulated_clock_was_made() -> None:
    mock = MockClock()
    mock.jump(1000.5)
    sim = SimulatedClock(START, mock_clock=mock)
    assert sim.now() == START
    mock.jump(1.25)
    assert sim.now() == START + timedelta(seconds=1.25)


def test_sleeping_until_3am_on_spring_forward_day_lands_on_it_exactly() -> None:
    sim = SimulatedClock(START)
    three_am = datetime(2026, 3, 29, 3, tzinfo=BERLIN)  # 02:00 CET -> 03:00 CEST
    seen: list[datetime] = []

    async def main() -> None:
        await sim.sleep_until(three_am)
        seen.append(sim.now())
        # 00:00 CET on the 28th to 03:00 CEST on the 29th is 26 elapsed hours.
        assert trio.current_time() == 26 * 3600

    run_simulated(sim, main)
    assert seen == [three_am]
    assert seen[0].isoformat() == "2026-03-29T01:00:00+00:00"
    assert seen[0].astimezone(BERLIN).isoformat() == "2026-03-29T03:00:00+02:00"


def test_both_0230s_of_fall_back_night_are_an_hour_apart() -> None:
    sim = SimulatedClock(datetime(2026, 10, 25, tzinfo=BERLIN))  # 00:00 CEST, 22:00Z
    first = datetime(2026, 10, 25, 2, 30, tzinfo=BERLIN, fold=0)  # CEST, 00:30Z
    second = datetime(2026, 10, 25, 2, 30, tzinfo=BERLIN, fold=1)  # CET, 01:30Z
    landed: list[tuple[float, str]] = []

    async def main() -> None:
        for target in (first, second):
            await sim.sleep_until(target)
            # Not `sim.now() == target`: by PEP 495, == across zones is always False
            # for a time in a repeated hour. Compare in UTC.
            assert sim.now() == target.astimezone(UTC)
            landed.append((trio.current_time(), sim.now().astimezone(BERLIN).isoformat()))

    run_simulated(sim, main)
    assert landed == [
        (2.5 * 3600, "2026-10-25T02:30:00+02:00"),
        (3.5 * 3600, "2026-10-25T02:30:00+01:00"),
    ]


async def test_it_follows_pytest_trios_autojump_clock(autojump_clock: MockClock) -> None:
    sim = SimulatedClock(datetime(2026, 1, 1, tzinfo=UTC), mock_clock=autojump_clock)
    await sim.advance(timedelta(days=40, microseconds=3))
    assert sim.now() == datetime(2026, 2, 10, 0, 0, 0, 3, tzinfo=UTC)


async def test_sleeping_on_another_trio_clock_is_refused() -> None:
    sim = SimulatedClock(START)  # its own MockClock, but this test runs on the system clock
    with pytest.raises(ConfigError, match=r"clock=sim.trio_clock"):
        await sim.sleep_until(START + timedelta(seconds=1))


def test_a_naive_target_is_refused() -> None:
    sim = SimulatedClock(START)

    async def main() -> None:
        with pytest.raises(ConfigError, match="aware datetime"):
            await sim.sleep_until(datetime(2026, 3, 29, 3))

    run_simulated(sim, main)


def test_sleeping_until_the_past_is_a_checkpoint_and_takes_no_time() -> None:
    sim = SimulatedClock(START)

    async def main() -> None:
        with assert_checkpoints():
            await sim.sleep_until(START - timedelta(days=3))
        with assert_checkpoints():
            await sim.sleep_until(START)
        with assert_checkpoints():
            await sim.advance(timedelta(0))
        assert trio.current_time() == 0
        assert sim.now() == START

    run_simulated(sim, main)


def test_advancing_by_a_negative_delta_is_refused() -> None:
    sim = SimulatedClock(START)

    async def main() -> None:
        with pytest.raises(ConfigError, match=r"use jump\(\)"):
            await sim.advance(timedelta(seconds=-1))

    run_simulated(sim, main)


def test_a_year_of_daily_sleeps_lands_on_every_midnight() -> None:
    sim = SimulatedClock(datetime(2026, 1, 1, tzinfo=BERLIN))
    days = 365
    landed: list[datetime] = []

    async def main() -> None:
        for day in range(1, days + 1):
            midnight = datetime.combine(
                date(2026, 1, 1) + timedelta(days=day), time(), tzinfo=BERLIN
            )
            await sim.sleep_until(midnight)
            landed.append(sim.now())
            assert sim.now() == midnight

    run_simulated(sim, main)
    assert len(landed) == days
    assert landed[-1] == datetime(2027, 1, 1, tzinfo=BERLIN)
    # Two DST changes: 365 days minus the hour lost in March plus the one regained.
    assert sim.trio_clock.current_time() == days * 86400


def test_ten_years_of_odd_microseconds_do_not_drift() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    sim = SimulatedClock(start)

    async def main() -> None:
        for day in range(1, 3651):
            target = start + timedelta(days=day, microseconds=7 * day + 1)
            await sim.sleep_until(target)
            assert sim.now() == target

    run_simulated(sim, main)
    assert sim.now() == datetime(2035, 12, 30, 0, 0, 0, 25551, tzinfo=UTC)


def test_a_forward_jump_wakes_sleepers_whose_target_it_passes() -> None:
    sim = SimulatedClock(START)
    woke: dict[str, tuple[float, datetime]] = {}

    async def sleeper(name: str, target: datetime) -> None:
        await sim.sleep_until(target)
        assert sim.now() >= target
        woke[name] = (trio.current_time(), sim.now())

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(sleeper, "in 1h", START + timedelta(hours=1))
            nursery.start_soon(sleeper, "in 3h", START + timedelta(hours=3))
            await sim.advance(timedelta(minutes=30))
            sim.jump(timedelta(hours=2))  # the wall clock is now START + 2h30
            await wait_all_tasks_blocked()
            assert woke == {"in 1h": (1800.0, START + timedelta(hours=2, minutes=30))}

    run_simulated(sim, main)
    # The 3h sleeper needed only 30 more minutes of Trio time once the clock jumped.
    assert woke["in 3h"] == (3600.0, START + timedelta(hours=3))


def test_after_a_backward_jump_sleepers_wait_for_the_wall_clock() -> None:
    sim = SimulatedClock(START)
    target = START + timedelta(hours=1)
    woke: list[tuple[float, datetime]] = []

    async def sleeper() -> None:
        await sim.sleep_until(target)
        woke.append((trio.current_time(), sim.now()))

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(sleeper)
            await sim.advance(timedelta(minutes=30))
            sim.jump(timedelta(hours=-2))
            assert sim.now() == START - timedelta(hours=1, minutes=30)
            await wait_all_tasks_blocked()
            assert woke == []

    run_simulated(sim, main)
    # 30 min of Trio time before the jump, then 2h30 to get from -1h30 to +1h.
    assert woke == [(3 * 3600.0, target)]


def test_a_jump_before_the_run_moves_now() -> None:
    sim = SimulatedClock(START)
    sim.jump(timedelta(days=-1, microseconds=1))
    assert sim.now() == START - timedelta(days=1) + timedelta(microseconds=1)
    assert sim.trio_clock.current_time() == 0


def _sleep_a_little_in_a_thread() -> float:
    _time.sleep(0.01)
    return 0.01


def test_holding_still_keeps_virtual_time_still_during_a_worker_thread() -> None:
    sim = SimulatedClock(START)
    woke: list[float] = []

    async def sleeper() -> None:
        await sim.sleep_until(START + timedelta(seconds=1))
        woke.append(trio.current_time())

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(sleeper)
            await wait_all_tasks_blocked()
            with sim.hold_still():
                assert sim.trio_clock.autojump_threshold == math.inf
                await trio.to_thread.run_sync(_sleep_a_little_in_a_thread)
                assert trio.current_time() == 0
                assert sim.now() == START
            assert sim.trio_clock.autojump_threshold == 0
            assert woke == []

    run_simulated(sim, main)
    assert woke == [1.0]


def test_without_holding_still_a_worker_thread_lets_virtual_time_leak() -> None:
    """Why hold_still exists: an idle loop waiting for a thread autojumps."""
    sim = SimulatedClock(START)

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(sim.advance, timedelta(seconds=1))
            await wait_all_tasks_blocked()
            await trio.to_thread.run_sync(_sleep_a_little_in_a_thread)
            assert trio.current_time() == 1.0

    run_simulated(sim, main)


def test_nested_holds_restore_the_previous_threshold_when_the_last_one_leaves() -> None:
    sim = SimulatedClock(START, mock_clock=MockClock(autojump_threshold=0.25))
    with sim.hold_still():
        assert sim.trio_clock.autojump_threshold == math.inf
        with sim.hold_still():
            assert sim.trio_clock.autojump_threshold == math.inf
        assert sim.trio_clock.autojump_threshold == math.inf
    assert sim.trio_clock.autojump_threshold == 0.25


def test_a_hold_is_released_when_its_body_raises() -> None:
    sim = SimulatedClock(START)
    with pytest.raises(KeyError), sim.hold_still():
        raise KeyError("boom")
    assert sim.trio_clock.autojump_threshold == 0


def test_holds_overlap_across_tasks() -> None:
    sim = SimulatedClock(START)
    left: list[tuple[str, float]] = []

    async def holder(name: str, entered: trio.Event, leave: trio.Event) -> None:
        with sim.hold_still():
            entered.set()
            await leave.wait()
        left.append((name, sim.trio_clock.autojump_threshold))

    async def main() -> None:
        a_in, a_out, b_in, b_out = trio.Event(), trio.Event(), trio.Event(), trio.Event()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(holder, "a", a_in, a_out)
            await a_in.wait()
            nursery.start_soon(holder, "b", b_in, b_out)
            await b_in.wait()
            a_out.set()  # a leaves first; b still holds
            await wait_all_tasks_blocked()
            assert left == [("a", math.inf)]
            b_out.set()

    run_simulated(sim, main)
    assert left == [("a", math.inf), ("b", 0.0)]


def test_past_68_years_of_trio_time_sleeps_end_late_by_a_float_step_never_early() -> None:
    """Beyond 2**31 s, Trio's float time has gaps wider than a microsecond."""
    mock = MockClock(autojump_threshold=0)
    mock.jump(2.0**34)  # 544 years in: one float step is 2**-18 s, about 3.8 us
    start = datetime(2026, 1, 1, tzinfo=UTC)
    sim = SimulatedClock(start, mock_clock=mock)
    late: list[timedelta] = []

    async def main() -> None:
        for step in range(1, 300):
            target = start + timedelta(seconds=1000 * step, microseconds=7 * step)
            await sim.sleep_until(target)
            late.append(sim.now() - target)

    # A sleep that could not land on its target would spin forever: bound it in real time.
    runner = threading.Thread(target=run_simulated, args=(sim, main), daemon=True)
    runner.start()
    runner.join(timeout=30)
    assert not runner.is_alive(), "sleep_until spun instead of sleeping"
    assert len(late) == 299
    assert all(timedelta(0) <= lateness < timedelta(microseconds=4) for lateness in late)


def test_the_full_example_in_the_reference_runs() -> None:
    page = pathlib.Path(__file__).parents[1] / "docs" / "reference" / "clock.md"
    blocks = re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.DOTALL)
    (example,) = [block for block in blocks if "trio.run(main" in block]
    exec(compile(example, str(page), "exec"), {"__name__": "clock_md_example"})


async def test_a_threshold_set_during_a_hold_takes_effect_when_it_ends() -> None:
    mock = MockClock(autojump_threshold=math.inf)
    sim = SimulatedClock(datetime(2026, 1, 1, tzinfo=UTC), mock_clock=mock)
    with sim.hold_still():
        sim.autojump_threshold = 0
        assert mock.autojump_threshold == math.inf  # still held
        assert sim.autojump_threshold == 0
    assert mock.autojump_threshold == 0
