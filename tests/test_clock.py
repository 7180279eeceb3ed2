"""The system clock: aware UTC time, and sleeps that re-read the wall clock."""

from __future__ import annotations

from datetime import UTC, timedelta

from chronolog._clock import SystemClock


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
