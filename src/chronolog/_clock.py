"""Time, injected: the only module of chronolog that reads the wall clock.

Everything else asks a :class:`Clock`, so tests can run months of schedules
on simulated time, and a test can check (by reading the source) that nothing
else calls ``datetime.now()``.
"""

from __future__ import annotations

import contextlib
import math
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Final, Protocol, runtime_checkable

if TYPE_CHECKING:
    from collections.abc import Iterator

    from trio.testing import MockClock

import trio

from ._errors import ConfigError

__all__ = ["Clock", "SimulatedClock", "SystemClock", "wall_clock_now"]

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


@runtime_checkable
class TrioDeadlineClock(Clock, Protocol):
    """A clock that says which Trio deadline to sleep to: the built-in ones.

    The runtime's alarms (``_alarms.py``) then sleep in a cancel scope of
    their own, one per sleep, instead of one around the clock's sleep.
    """

    def _look_again_at(self, when: datetime) -> float:
        """The Trio time at which to read the clock again, waiting for ``when``."""
        ...

    async def _until_stepped(self) -> None:
        """Return when the wall clock is stepped, if the clock can tell."""
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

    # TrioDeadlineClock: the runtime's alarms sleep in a scope of their own.

    def _look_again_at(self, when: datetime) -> float:
        """The Trio time at which to read the wall clock again, waiting for ``when``."""
        remaining = min(when - self.now(), MAX_SLEEP_SLICE)
        return trio.current_time() + max(remaining.total_seconds(), 0.0)

    async def _until_stepped(self) -> None:
        """Return when the wall clock is stepped: never noticed but by reading it."""
        await trio.sleep_forever()


class SimulatedClock:
    """A wall clock laid over ``trio.testing.MockClock``: months of schedules in milliseconds.

    ``now()`` is ``start``, plus the Trio time that has passed on the mock
    clock since this object was made, plus every :meth:`jump`. Run the
    program on the mock clock, and sleeps that would take days take no real
    time::

        sim = SimulatedClock(datetime(2026, 3, 28, tzinfo=ZoneInfo("Europe/Berlin")))
        trio.run(main, clock=sim.trio_clock)

    Args:
      start: the wall-clock instant the simulation begins at. Must be aware;
        it is kept (and ``now()`` is reported) in UTC.
      mock_clock: the Trio clock to follow, e.g. pytest-trio's
        ``autojump_clock`` fixture. By default the simulated clock makes and
        owns a ``MockClock(autojump_threshold=0)``, exposed as
        :attr:`trio_clock`.

    Raises:
      ConfigError: ``start`` is naive, or ``mock_clock`` is not a MockClock.

    Time is exact to the microsecond, with no drift: the offset from
    ``start`` is Trio's float time rounded to whole microseconds, and a
    sleep lands on the first float deadline that reads as its target. That
    holds while Trio's time is below 2**31 s (68 years; jumps do not count,
    they are exact ``timedelta`` arithmetic). Beyond that the float has gaps
    wider than a microsecond, and a sleep may end up to one gap late, never
    early.

    A simulated clock belongs to one ``trio.run``, and is used from that
    run's thread only (``jump`` and ``hold_still`` included).
    """

    __slots__ = (
        "_holders",
        "_jump_event",
        "_last_now",
        "_last_trio_time",
        "_mock_clock",
        "_released_threshold",
        "_trio_base",
        "_wall_base",
    )

    def __init__(self, start: datetime, *, mock_clock: MockClock | None = None) -> None:
        if not isinstance(start, datetime) or start.utcoffset() is None:
            raise ConfigError(
                f"SimulatedClock needs an aware start instant, got {start!r}; give it a "
                "time zone, e.g. datetime(2026, 3, 28, tzinfo=ZoneInfo('Europe/Berlin')) "
                "or tzinfo=UTC"
            )
        # Imported here: trio.testing is heavy, and only simulations need it
        # (every `chronolog` command would otherwise pay for it at start-up).
        from trio.testing import MockClock

        if mock_clock is None:
            mock_clock = MockClock(autojump_threshold=0)
        elif not isinstance(mock_clock, MockClock):
            raise ConfigError(
                f"SimulatedClock(mock_clock=...) needs a trio.testing.MockClock, got "
                f"{mock_clock!r}; leave it out to have the simulated clock make its own"
            )
        self._mock_clock: Final = mock_clock
        self._trio_base: Final = mock_clock.current_time()
        #: ``start`` plus every jump: the wall-clock instant at ``_trio_base``.
        self._wall_base = start.astimezone(UTC)
        #: Set (and replaced) by each jump, so sleepers wake and re-check.
        self._jump_event = trio.Event()
        self._holders = 0
        self._released_threshold = mock_clock.autojump_threshold
        # now() for the Trio time it was last computed at: a scheduler reads
        # the time several times per run, mostly without time passing.
        self._last_trio_time = math.nan
        self._last_now = self._wall_base

    def __repr__(self) -> str:
        return f"<SimulatedClock now={self.now().isoformat()} trio_clock={self._mock_clock!r}>"

    @property
    def trio_clock(self) -> MockClock:
        """The Trio clock this simulation follows: pass it to ``trio.run(..., clock=)``."""
        return self._mock_clock

    def now(self) -> datetime:
        """The simulated wall clock, as an aware UTC datetime (exact to the microsecond)."""
        trio_time = self._mock_clock.current_time()
        if trio_time == self._last_trio_time:
            return self._last_now
        # timedelta rounds the float's exact value to the nearest microsecond.
        now = self._wall_base + timedelta(seconds=trio_time - self._trio_base)
        self._last_trio_time, self._last_now = trio_time, now
        return now

    async def sleep_until(self, when: datetime) -> None:
        """Return once ``now() >= when``: at once if it already is, else exactly then.

        With an autojumping mock clock this takes no real time. A jump wakes
        the sleep to re-check: after a forward jump past ``when`` it returns
        at once (``now()`` is then later than ``when``); after a backward
        jump it sleeps on until the wall clock really reaches ``when``.

        Raises:
          ConfigError: ``when`` is naive, or the running Trio clock is not
            :attr:`trio_clock` (sleeps could not end on simulated time).
        """
        if when.utcoffset() is None:
            raise ConfigError(
                f"sleep_until() needs an aware datetime, got {when!r}; give it a time zone"
            )
        # In UTC from here on: == across zones is always False for a time in a
        # repeated hour (PEP 495), and UTC arithmetic is exact.
        when = when.astimezone(UTC)
        self._check_running()
        if self.now() >= when:
            await trio.lowlevel.checkpoint()
            return
        while True:
            jumped = self._jump_event
            with trio.move_on_at(self._trio_deadline(when)):
                await jumped.wait()
            if self.now() >= when:
                return

    def _check_running(self) -> None:
        running = trio.lowlevel.current_clock()
        if running is not self._mock_clock:
            raise ConfigError(
                f"this SimulatedClock follows {self._mock_clock!r}, but Trio runs on "
                f"{running!r}; start the run with trio.run(main, clock=sim.trio_clock), "
                "or build the SimulatedClock with mock_clock= the run's clock"
            )

    # TrioDeadlineClock: the runtime's alarms sleep in a scope of their own.

    def _look_again_at(self, when: datetime) -> float:
        """The Trio time at which ``now()`` reads ``when``."""
        self._check_running()
        return self._trio_deadline(when)

    async def _until_stepped(self) -> None:
        """Return when the wall clock is stepped (`jump`)."""
        await self._jump_event.wait()

    def _trio_deadline(self, when: datetime) -> float:
        """The Trio time at which ``now()`` reads ``when``, as things stand (no more jumps)."""
        elapsed = when - self._wall_base
        deadline = self._trio_base + elapsed.total_seconds()
        # The sum may round down so far that the deadline reads a microsecond
        # early (past 2**31 s of Trio time); step up until it reads ``when``.
        # The reading is monotone in Trio time, so once Trio reaches this
        # deadline, now() >= when -- without this, a sleep could spin forever.
        while timedelta(seconds=deadline - self._trio_base) < elapsed:
            deadline = math.nextafter(deadline, math.inf)
        return deadline

    def jump(self, delta: timedelta) -> None:
        """Step the wall clock by ``delta`` while Trio time stands still.

        This is what an NTP step or a suspend/resume does to a real machine;
        a negative ``delta`` steps it back. Every sleeper wakes and re-checks
        its target. For a scheduler on this clock, a forward jump makes due
        times that were skipped over go through catch-up; a backward jump
        must never re-run an occurrence that is already settled -- that is
        the scheduler's promise, the clock only reports time.
        """
        self._wall_base += delta
        self._last_trio_time = math.nan  # now() moved with Trio time standing still
        jumped, self._jump_event = self._jump_event, trio.Event()
        jumped.set()

    async def advance(self, delta: timedelta) -> None:
        """Sleep until ``now() + delta``: a helper for tests.

        Raises:
          ConfigError: ``delta`` is negative (to step the wall clock back,
            use :meth:`jump`).
        """
        if delta < timedelta(0):
            raise ConfigError(
                f"advance() needs a delta of zero or more, got {delta!r}; "
                "to step the wall clock back, use jump()"
            )
        await self.sleep_until(self.now() + delta)

    @property
    def autojump_threshold(self) -> float:
        """The mock clock's autojump threshold, as it is outside any :meth:`hold_still`.

        Set it here rather than on the mock clock: a value set while some
        task holds the clock still takes effect when the last holder leaves,
        instead of being overwritten then.
        """
        if self._holders:
            return self._released_threshold
        return self._mock_clock.autojump_threshold

    @autojump_threshold.setter
    def autojump_threshold(self, value: float) -> None:
        if self._holders:
            self._released_threshold = value
        else:
            self._mock_clock.autojump_threshold = value

    @contextlib.contextmanager
    def hold_still(self) -> Iterator[None]:
        """Switch the mock clock's autojump off while inside.

        The event loop is idle while a worker thread writes or fsyncs the log,
        and an autojumping ``MockClock`` would take that as leave to jump to
        the next deadline. Inside this context it does not: simulated time
        stands still until the thread is done, so a simulation sees the same
        instants on a FileLog as on a MemoryLog.

        Holds nest and may overlap across tasks; the autojump threshold the
        first holder found is restored when the last one leaves. Hold only
        around work that finishes by itself: with autojump off, a sleep inside
        the hold never ends (unless the mock clock has a ``rate``).
        """
        if self._holders == 0:
            self._released_threshold = self._mock_clock.autojump_threshold
            self._mock_clock.autojump_threshold = math.inf
        self._holders += 1
        try:
            yield
        finally:
            self._holders -= 1
            if self._holders == 0:
                self._mock_clock.autojump_threshold = self._released_threshold
