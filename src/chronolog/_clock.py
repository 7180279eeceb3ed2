"""Time, injected: the only module of chronolog that reads the wall clock.

Everything else asks a :class:`Clock`, so tests can run months of schedules
on simulated time, and a test can check (by reading the source) that nothing
else calls ``datetime.now()``.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Final, Protocol

if TYPE_CHECKING:
    from collections.abc import Iterator

import trio

__all__ = ["Clock", "SystemClock", "wall_clock_now"]

#: Longest single sleep: the wall clock is read again at least this often, so
#: a jump (NTP step, suspend/resume) is noticed within this long.
MAX_SLEEP_SLICE: Final = timedelta(seconds=30)


def wall_clock_now() -> datetime:
    """The wall clock, as an aware UTC datetime."""
    return datetime.now(UTC)


class Clock(Protocol):
    """Where a scheduler gets its time from."""

    def now(self) -> datetime:
        """The current time as an aware UTC datetime."""
        ...

    async def sleep_until(self, when: datetime) -> None:
        """Return once ``now() >= when`` (at once if it already is)."""
        ...

    def hold_still(self) -> contextlib.AbstractContextManager[None]:
        """A context in which time must not pass by itself (log I/O in a thread).

        The system clock cannot stop, so this is a no-op there. A simulated
        clock freezes: ``trio.testing.MockClock`` would otherwise jump ahead
        while the event loop waits for a worker thread, and a simulation on
        a FileLog would see other instants than the same one on a MemoryLog.
        """
        ...


class SystemClock:
    """The real wall clock.

    ``sleep_until`` sleeps in slices of at most :data:`MAX_SLEEP_SLICE` and
    re-reads the wall clock after each, because Trio's clock is monotonic and
    the wall clock is not: after a forward jump it returns early enough for
    the scheduler to treat missed due times as missed; after a backward jump
    it keeps sleeping until the wall clock really reaches ``when``.
    """

    def now(self) -> datetime:
        return wall_clock_now()

    @contextlib.contextmanager
    def hold_still(self) -> Iterator[None]:
        yield

    async def sleep_until(self, when: datetime) -> None:
        while True:
            remaining = when - self.now()
            if remaining <= timedelta(0):
                await trio.lowlevel.checkpoint()
                return
            await trio.sleep(min(remaining, MAX_SLEEP_SLICE).total_seconds())
