"""Simulated schedulers: real schedules on simulated time, with faults on demand.

Two entry points:

* ``async with simulated_scheduler(start=...) as sim:`` inside a Trio test
  running on a ``trio.testing.MockClock`` (pytest-trio's ``autojump_clock``):
  ``sim.scheduler`` is a real :class:`~chronolog.Scheduler`, and
  ``await sim.advance(timedelta(days=30))`` runs a month in milliseconds.
* ``simulate(setup, start=..., until=...) -> Timeline`` from any test suite:
  it runs Trio on a ``MockClock`` itself.

Time only passes inside ``advance``/``advance_to`` (and a graceful stop), and
each of them returns once everything due up to its target instant has
happened: the runs that fired have started, the quick ones have finished,
their records are in the log. A simulation is exact and deterministic: the
same set-up gives the same log, instant for instant, on a MemoryLog or a
FileLog -- and byte for byte under ``simulate`` (see `same_order_every_run`),
with two exceptions: manual runs get random ids, and runs whose jobs end
at the same instant by sleeping may be recorded in either order (Trio
breaks ties between equal deadlines by object address).

A crash (``Crash``, ``sim.crash()``) abandons the scheduler as ``kill -9``
would: the log is cut off from it at that instant, its runs are cancelled,
and the next scheduler replays exactly what was durable.

Why one module of this size: both entry points, the crash and the quiet
point that ``advance`` waits for share one model of "everything due has
happened", and that model is the subtle part; keeping it in one place keeps
the simulated time exact.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, Self

import trio
import trio.testing
from trio.testing import MockClock

from .._clock import SimulatedClock
from .._errors import ChronologError, ConfigError, LogClosed
from .._scheduler import open_scheduler
from .._words import instant_text
from ..log import EventLog, FileLog, MemoryLog
from .faults import ClockJump, Crash, Restart
from .timeline import Note, Timeline

if TYPE_CHECKING:
    from collections.abc import (
        AsyncGenerator,
        AsyncIterator,
        Awaitable,
        Callable,
        Iterable,
        Iterator,
        Sequence,
    )

    from .._events import Event
    from .._scheduler import Scheduler
    from .._triggers import Trigger
    from .._views import TaskStatus
    from .faults import Fault

    Setup = Callable[[Scheduler], Awaitable[object]]

__all__ = ["Simulation", "SimulationError", "simulate", "simulated_scheduler"]

#: How long (real time) a settle waits for a worker thread (log I/O, a sync
#: target) before looking again: the thread ends by itself, time stands still.
_THREAD_POLL_SECONDS: Final = 0.0005
#: Where a scheduler reports trouble. A process killed by ``kill -9`` says
#: nothing more, so while a simulated crash is carried out these stay quiet
#: (the abandoned scheduler would otherwise warn about every record it can
#: no longer write).
_SCHEDULER_LOGGERS: Final = ("chronolog.writer", "chronolog.scheduler")


class _Silenced(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return False


class SimulationError(ChronologError, RuntimeError):
    """A simulation was asked for something its state does not allow (e.g. a
    scheduler while it is down after a crash)."""


class _CountingClock:
    """The simulated clock as a scheduler sees it, counting holds.

    A hold is log I/O or a sync target running in a worker thread; while one
    is active, time stands still and the simulation is not settled yet.
    """

    def __init__(self, clock: SimulatedClock) -> None:
        self.now = clock.now
        self.sleep_until = clock.sleep_until
        # A TrioDeadlineClock, as the simulated clock is: actors sleep cheaper.
        self._look_again_at = clock._look_again_at
        self._until_stepped = clock._until_stepped
        self._clock = clock
        self.holding = 0

    @contextlib.contextmanager
    def hold_still(self) -> Iterator[None]:
        self.holding += 1
        try:
            with self._clock.hold_still():
                yield
        finally:
            self.holding -= 1


class _ProcessLog(EventLog):
    """One scheduler process's view of the simulation's log.

    Appends go through to the log until the process crashes; from then on
    they fail with ``LogClosed``, so nothing the abandoned scheduler still
    tries to write (a ``Failed`` for its runs, its shutdown) ever lands.
    """

    def __init__(self, log: EventLog, on_records: Callable[[Sequence[Event]], None]) -> None:
        self._log = log
        self._on_records = on_records
        self._cut: str | None = None

    def __repr__(self) -> str:
        state = "cut off" if self._cut is not None else "live"
        return f"<{state} simulated process on {self._log!r}>"

    @property
    def last_seq(self) -> int:
        return self._log.last_seq

    @property
    def closed(self) -> bool:
        return self._cut is not None or self._log.closed

    def cut(self, reason: str) -> None:
        if self._cut is None:
            self._cut = reason

    async def open(self) -> Self:
        await trio.lowlevel.checkpoint()
        return self

    async def append(self, events: Sequence[Event]) -> list[Event]:
        if self._cut is not None:
            raise LogClosed(self._cut)
        records = await self._log.append(events)
        self._on_records(records)
        return records

    def append_nowait(self, events: Sequence[Event]) -> list[Event]:
        if self._cut is not None:
            raise LogClosed(self._cut)
        records = self._log.append_nowait(events)
        self._on_records(records)
        return records

    def read(self, after_seq: int = 0) -> Iterator[Event]:
        return self._log.read(after_seq)

    async def follow(self, after_seq: int = 0) -> AsyncGenerator[Event, None]:
        async with contextlib.aclosing(self._log.follow(after_seq)) as records:
            async for record in records:
                if self._cut is not None:
                    return
                yield record

    async def aclose(self) -> None:
        self.cut("the simulated process closed its log")
        await trio.lowlevel.checkpoint()


class _Life:
    """One scheduler process, from start to its stop or crash."""

    def __init__(self, log: _ProcessLog) -> None:
        self.log = log
        self.scheduler: Scheduler | None = None
        self.finish = trio.Event()
        self.ended = trio.Event()


class Simulation:
    """A scheduler on simulated time, with faults on demand; from :func:`simulated_scheduler`.

    ``scheduler`` is the scheduler running now -- a new object after every
    restart, so ask for it each time rather than keeping it.
    """

    def __init__(
        self,
        *,
        clock: SimulatedClock,
        log: EventLog,
        nursery: trio.Nursery,
        setup: Setup | None,
        options: dict[str, Any],
    ) -> None:
        self.clock = clock
        """The simulated clock (``clock.now()``, ``clock.trio_clock``)."""
        self.log = log
        """The log every scheduler of this simulation writes, one after the other."""
        self._nursery = nursery
        self._setup = setup
        self._options = options
        self._counting = _CountingClock(clock)
        self._declared: dict[str, tuple[Trigger, Callable[[], Any], dict[str, Any]]] = {}
        self._life: _Life | None = None
        self._timed: list[Crash | Restart | ClockJump] = []
        self._armed: list[tuple[Crash, int]] = []
        self._restart_at: datetime | None = None
        self._notes: list[Note] = []
        self._wake: trio.CancelScope | None = None
        self._started = False
        self._silenced: _Silenced | None = None

    def __repr__(self) -> str:
        state = "up" if self.up else "down"
        return f"<Simulation at {instant_text(self.now())}, scheduler {state}, log {self.log!r}>"

    # -- what is there -----------------------------------------------------------

    @property
    def up(self) -> bool:
        """Whether a scheduler is running (False after a crash or stop, until a restart)."""
        return self._life is not None and not self._life.finish.is_set()

    @property
    def scheduler(self) -> Scheduler:
        """The scheduler running now. Raises ``SimulationError`` while it is down."""
        life = self._life
        if life is None or life.scheduler is None or life.finish.is_set():
            raise SimulationError(
                f"the simulated scheduler is down at {instant_text(self.now())} (it crashed "
                "or was stopped); await sim.restart() to start it again on the same log"
            )
        return life.scheduler

    @property
    def notes(self) -> list[Note]:
        """What the harness did so far: crashes, restarts, stops, clock jumps."""
        return list(self._notes)

    def now(self) -> datetime:
        """The simulated wall clock (aware UTC)."""
        return self.clock.now()

    def records(self) -> list[Event]:
        """Every record in the log so far."""
        return list(self.log.read())

    def timeline(self) -> Timeline:
        """The log so far as a :class:`Timeline`, with the harness's notes."""
        return Timeline(self.log.read(), notes=self._notes)

    # -- declaring tasks ---------------------------------------------------------

    async def add(
        self, name: str, trigger: Trigger, target: Callable[[], Any], **options: Any
    ) -> TaskStatus:
        """``scheduler.add`` -- and declare the task again after every restart.

        An application declares its tasks each time it starts; this is that
        declaration. Tasks added on ``sim.scheduler`` directly are not
        declared again: after a restart the scheduler imports their targets
        by path, as a real restart would (a lambda or a closure cannot be
        imported, and the task ends up paused with a note saying so).
        """
        status = await self.scheduler.add(name, trigger, target, **options)
        self._declared[name] = (trigger, target, options)
        return status

    # -- time ----------------------------------------------------------------------

    async def advance(self, delta: timedelta) -> None:
        """Let ``delta`` of simulated time pass (see :meth:`advance_to`)."""
        if not isinstance(delta, timedelta) or delta < timedelta(0):
            raise ConfigError(
                f"advance() needs a timedelta of zero or more, got {delta!r}; to step the "
                "wall clock back, use jump()"
            )
        await self.advance_to(self.now() + delta)

    async def advance_to(self, when: datetime) -> None:
        """Let simulated time pass until ``when``, applying the faults due on the way.

        Returns with ``now() == when`` (unless a clock jump stepped past it)
        once everything due up to ``when`` has happened and the simulation
        is quiet: fired runs have started, runs that take no time have
        finished, and their records are in the log.
        """
        when = _aware(when, "advance_to()")
        if when < self.now():
            raise ConfigError(
                f"advance_to({instant_text(when)}) is before now ({instant_text(self.now())}); "
                "simulated time only moves forward -- to step the wall clock back, use jump()"
            )
        while True:
            await self._handle_due()
            if self.now() >= when:
                return
            await self._sleep_until(min([when, *self._upcoming()]))

    async def settle(self) -> None:
        """Let everything due at this instant happen, without letting time pass."""
        await self._handle_due()

    async def jump(self, delta: timedelta) -> None:
        """Step the wall clock by ``delta`` (negative: back), as NTP or a suspend does."""
        if not isinstance(delta, timedelta) or not delta:
            raise ConfigError(f"jump() needs a non-zero timedelta, got {delta!r}")
        before = self.now()
        self.clock.jump(delta)
        sign = "+" if delta > timedelta(0) else "-"
        self._note(
            "clock jump",
            f"{sign}{abs(delta)}: {instant_text(before)} -> {instant_text(self.now())}",
        )
        await self._settle()

    # -- faults ----------------------------------------------------------------------

    def inject(self, *faults: Fault) -> None:
        """Arm faults: each is applied when its instant comes, or its record lands."""
        for fault in faults:
            if not isinstance(fault, Crash | Restart | ClockJump):
                raise ConfigError(
                    f"inject() takes Crash, Restart or ClockJump faults, got {fault!r}"
                )
            if isinstance(fault, Crash) and fault.at is None:
                self._armed.append((fault, 0))
                continue
            at = fault.at
            assert at is not None
            if at < self.now():
                raise ConfigError(
                    f"{fault!r} is due at {instant_text(at)}, before now "
                    f"({instant_text(self.now())}); a fault can only be planned for now or later"
                )
            self._timed.append(fault)
        self._timed.sort(key=lambda fault: fault.at or self.now())

    async def crash(self, *, reason: str = "crash()") -> None:
        """Kill the scheduler now, as ``kill -9`` would. It stays down until :meth:`restart`."""
        self._kill(reason)
        await self._reap()

    async def stop(self) -> None:
        """Stop the scheduler gracefully (runs get ``shutdown_grace``); it stays down."""
        life = self._running_life("stop()")
        life.finish.set()
        with self._flowing():
            await life.ended.wait()
        self._life = None
        self._note("stop", "graceful: runs got the shutdown grace, pending ones stay scheduled")
        await self._settle()

    async def restart(self) -> None:
        """Start a scheduler again on the same log (stopping the running one gracefully first).

        The new scheduler replays the log, records runs the old one left
        running as interrupted, catches up what was missed, and the tasks are
        declared again (the ``setup`` and every :meth:`add`).
        """
        self._restart_at = None
        if self.up:
            await self.stop()
        await self._reap()
        await self._start()
        await self._settle()

    # -- the machinery ---------------------------------------------------------------

    def _note(self, kind: str, text: str) -> None:
        self._notes.append(Note(self.now(), self.log.last_seq, kind, text))

    def _running_life(self, what: str) -> _Life:
        life = self._life
        if life is None or life.finish.is_set():
            raise SimulationError(
                f"{what} needs a running scheduler, but it is down at {instant_text(self.now())}; "
                "await sim.restart() first"
            )
        return life

    async def _start(self) -> None:
        if self._started:
            self._note("restart", "a new scheduler replays the log")
        self._started = True
        life = _Life(_ProcessLog(self.log, self._observe))
        self._life = life
        scheduler = await self._nursery.start(self._live, life)
        if self._setup is not None:
            await self._setup(scheduler)
        for name, (trigger, target, options) in self._declared.items():
            await scheduler.add(name, trigger, target, **options)

    async def _live(self, life: _Life, task_status: trio.TaskStatus[Scheduler]) -> None:
        try:
            async with open_scheduler(life.log, clock=self._counting, **self._options) as sched:
                life.scheduler = sched
                task_status.started(sched)
                await life.finish.wait()
        finally:
            life.ended.set()

    def _kill(self, reason: str) -> None:
        life = self._running_life("crash()")
        life.log.cut(
            f"the simulated scheduler crashed at {instant_text(self.now())}: nothing it does "
            "afterwards reaches the log"
        )
        life.finish.set()
        if life.scheduler is not None:
            # kill -9: every run and every actor stops where it stands, at
            # once, recording nothing (the scheduler's run nursery holds them
            # all; only its log writer is outside, and the log is cut off).
            life.scheduler.run_nursery.cancel_scope.cancel()
        if self._silenced is None:
            self._silenced = _Silenced()
            for name in _SCHEDULER_LOGGERS:
                logging.getLogger(name).addFilter(self._silenced)
        self._note("crash", f"{reason}: the scheduler was killed, as by kill -9")
        if self._wake is not None:
            self._wake.cancel()

    def _observe(self, records: Sequence[Event]) -> None:
        """After each append: does a ``Crash(after=...)`` fire?"""
        if not self._armed or not self.up:
            return
        for index, (crash, seen) in enumerate(self._armed):
            seen += sum(1 for record in records if crash.matches(record))
            if seen >= crash.nth:
                del self._armed[index]
                self._kill(crash.describe())
                if crash.restart_after is not None:
                    self._restart_at = self.now() + crash.restart_after
                return
            self._armed[index] = (crash, seen)

    async def _reap(self) -> None:
        """Wait until a scheduler that was killed or stopped has really ended."""
        life = self._life
        if life is not None and life.finish.is_set():
            with self._flowing():
                await life.ended.wait()
            self._life = None
        if self._silenced is not None:
            for name in _SCHEDULER_LOGGERS:
                logging.getLogger(name).removeFilter(self._silenced)
            self._silenced = None

    def _upcoming(self) -> list[datetime]:
        upcoming = [fault.at for fault in self._timed[:1] if fault.at is not None]
        if self._restart_at is not None:
            upcoming.append(self._restart_at)
        return upcoming

    async def _handle_due(self) -> None:
        """Settle, then apply every fault and restart due by now, in time order."""
        while True:
            await self._reap()
            await self._settle()
            now = self.now()
            due: list[tuple[datetime, int]] = []
            if self._timed and (fault_at := self._timed[0].at) is not None and fault_at <= now:
                due.append((fault_at, 0))
            if self._restart_at is not None and self._restart_at <= now:
                due.append((self._restart_at, 1))
            if not due:
                return
            if min(due)[1] == 0:
                await self._apply(self._timed.pop(0))
            else:
                self._restart_at = None
                await self._start()

    async def _apply(self, fault: Fault) -> None:
        if isinstance(fault, ClockJump):
            await self.jump(fault.by)
        elif isinstance(fault, Crash):
            if self.up:  # a scheduler that is down already cannot crash
                self._kill(f"Crash(at={instant_text(fault.at)})")
                if fault.restart_after is not None:
                    self._restart_at = self.now() + fault.restart_after
        else:
            if self.up:
                await self.stop()
            # Down already (crashed, stopped): the deploy brings it back all the same.
            self._restart_at = self.now() + fault.down_for

    async def _sleep_until(self, when: datetime) -> None:
        with trio.CancelScope() as wake:
            self._wake = wake
            try:
                with self._flowing():
                    await self.clock.sleep_until(when)
            finally:
                self._wake = None

    @contextlib.contextmanager
    def _flowing(self) -> Iterator[None]:
        """Let simulated time pass as fast as it can, whatever the mock clock's setting."""
        previous = self.clock.autojump_threshold
        self.clock.autojump_threshold = 0
        try:
            yield
        finally:
            self.clock.autojump_threshold = previous

    async def _settle(self) -> None:
        """Return once every task is blocked and no worker thread is busy.

        While a task waits in ``wait_all_tasks_blocked`` the mock clock does
        not jump, so this lets the present instant play out without letting
        time pass.
        """
        while True:
            await trio.testing.wait_all_tasks_blocked()
            if not self._counting.holding:
                return
            await trio.testing.wait_all_tasks_blocked(_THREAD_POLL_SECONDS)


def _aware(when: object, what: str) -> datetime:
    if not isinstance(when, datetime) or when.utcoffset() is None:
        raise ConfigError(
            f"{what} needs an aware datetime (e.g. datetime(2026, 3, 29, tzinfo=UTC) or "
            f"tzinfo=ZoneInfo('Europe/Berlin')), got {when!r}"
        )
    return when.astimezone(UTC)


def _clock_for(start: datetime | None, clock: SimulatedClock | None) -> SimulatedClock:
    running = trio.lowlevel.current_clock()
    if clock is not None:
        if start is not None:
            raise ConfigError(
                "simulated_scheduler() takes start= or clock=, not both: a SimulatedClock "
                "already knows where it started"
            )
        if not isinstance(clock, SimulatedClock):
            raise ConfigError(
                f"simulated_scheduler(clock=...) needs a chronolog.testing.SimulatedClock, "
                f"got {clock!r}"
            )
        if clock.trio_clock is not running:
            raise ConfigError(
                f"the SimulatedClock given follows {clock.trio_clock!r}, but Trio runs on "
                f"{running!r}; build it with mock_clock= the clock this run uses"
            )
        return clock
    if start is None:
        raise ConfigError(
            "simulated_scheduler() needs start= (an aware datetime: where simulated time "
            "begins) or clock= (a SimulatedClock)"
        )
    start = _aware(start, "simulated_scheduler(start=...)")
    if not isinstance(running, MockClock):
        raise ConfigError(
            f"simulated_scheduler() needs Trio to run on a trio.testing.MockClock, but this "
            f"run uses {running!r}. In a pytest-trio test, take the autojump_clock fixture as "
            "an argument (pytest-trio runs a test on a clock only when the test function "
            "receives it); with trio.run(), pass clock=trio.testing.MockClock(); from "
            "synchronous code, call chronolog.testing.simulate() instead"
        )
    return SimulatedClock(start, mock_clock=running)


def _as_log(log: EventLog | str | os.PathLike[str] | None) -> tuple[EventLog, bool]:
    """The log to simulate on, and whether the simulation must open (and close) it."""
    if log is None:
        return MemoryLog(), False
    if isinstance(log, FileLog):
        return log, not log.is_open
    if isinstance(log, EventLog):
        if log.closed:
            raise ConfigError(f"{log!r} is closed; a simulation needs a log it can append to")
        return log, False
    if isinstance(log, str | os.PathLike):
        return FileLog(log), True
    raise ConfigError(
        f"log must be an EventLog, a path to a JSON Lines file, or None (a fresh MemoryLog), "
        f"got {type(log).__name__} {log!r}"
    )


@contextlib.asynccontextmanager
async def simulated_scheduler(
    start: datetime | None = None,
    *,
    clock: SimulatedClock | None = None,
    log: EventLog | str | os.PathLike[str] | None = None,
    setup: Setup | None = None,
    max_concurrent: int | None = None,
    shutdown_grace: timedelta = timedelta(seconds=30),
    node: str = "simulated",
    result_max_bytes: int = 8192,
) -> AsyncIterator[Simulation]:
    """A real scheduler on simulated time: ``async with simulated_scheduler(start=t) as sim:``.

    Needs Trio to run on a ``trio.testing.MockClock`` (in pytest-trio, take
    the ``autojump_clock`` fixture). ``start`` is where simulated time
    begins; or pass ``clock=`` a :class:`SimulatedClock` on the run's mock
    clock. ``log`` is the log to write (default: a fresh ``MemoryLog``; a
    path means a ``FileLog``). ``setup(scheduler)`` runs at every start --
    the first and each restart -- as an application's startup code declares
    its tasks. The other options go to ``open_scheduler``.

    Leaving the block stops the scheduler gracefully (simulated time passes
    for the shutdown grace if runs are still running).
    """
    sim_clock = _clock_for(start, clock)
    event_log, owned = _as_log(log)
    options: dict[str, Any] = {
        "max_concurrent": max_concurrent,
        "shutdown_grace": shutdown_grace,
        "node": node,
        "result_max_bytes": result_max_bytes,
    }
    async with contextlib.AsyncExitStack() as stack:
        if owned:
            await stack.enter_async_context(event_log)
        body_error: BaseException | None = None
        unwrapped: BaseException | None = None
        try:
            async with trio.open_nursery() as nursery:
                simulation = Simulation(
                    clock=sim_clock, log=event_log, nursery=nursery, setup=setup, options=options
                )
                try:
                    await simulation._start()  # runs the setup: its errors are the caller's
                    await simulation._settle()
                    yield simulation
                except BaseException as error:
                    body_error = error
                    raise
                finally:
                    with trio.CancelScope(shield=True):
                        if simulation.up:
                            await simulation.stop()
                        await simulation._reap()
        except BaseExceptionGroup as group:
            # The nursery wraps what the setup or the body raised in a group;
            # when that is all that went wrong, give it back as raised
            # (pytest.raises and `except` clauses must see the real exception).
            if body_error is None or group.exceptions != (body_error,):
                raise
            unwrapped = body_error
        if unwrapped is not None:
            raise unwrapped


def simulate(
    setup: Setup,
    *,
    start: datetime,
    until: datetime | timedelta,
    faults: Iterable[Fault] = (),
    crash_at: datetime | Iterable[datetime] = (),
    log: EventLog | str | os.PathLike[str] | None = None,
    max_concurrent: int | None = None,
    shutdown_grace: timedelta = timedelta(seconds=30),
    node: str = "simulated",
) -> Timeline:
    """Run a scheduler on simulated time from ``start`` to ``until``; return its Timeline.

    Synchronous: it runs Trio on a ``trio.testing.MockClock`` itself, so any
    test suite can call it. ``setup(scheduler)`` is an async function that
    declares the tasks; it runs at the first start and at every restart.
    ``until`` is an aware datetime or a duration after ``start``.
    ``crash_at`` is shorthand for ``Crash(at=t)`` faults (restart at once);
    ``faults`` takes any ``Crash``, ``Restart`` and ``ClockJump``. The
    simulation ends with a graceful stop at ``until``.
    """
    try:
        trio.lowlevel.current_trio_token()
    except RuntimeError:
        pass
    else:
        raise SimulationError(
            "simulate() runs its own Trio loop and cannot be called inside one; in async "
            "code use `async with simulated_scheduler(start=...) as sim:` instead"
        )
    if not callable(setup):
        raise ConfigError(
            f"simulate() takes an async setup function, e.g. `async def setup(scheduler): "
            f"await scheduler.add(...)`, got {setup!r}"
        )
    begin = _aware(start, "simulate(start=...)")
    end = begin + until if isinstance(until, timedelta) else _aware(until, "simulate(until=)")
    if end < begin:
        raise ConfigError(f"simulate(until={until!r}) is before start ({instant_text(begin)})")
    crash_instants = [crash_at] if isinstance(crash_at, datetime) else list(crash_at)
    planned: list[Fault] = [*faults, *(Crash(at=when) for when in crash_instants)]
    mock = MockClock(autojump_threshold=0)
    sim_clock = SimulatedClock(begin, mock_clock=mock)

    async def main() -> Timeline:
        async with simulated_scheduler(
            clock=sim_clock,
            log=log,
            setup=setup,
            max_concurrent=max_concurrent,
            shutdown_grace=shutdown_grace,
            node=node,
        ) as simulation:
            simulation.inject(*planned)
            await simulation.advance_to(end)
        return simulation.timeline()

    with same_order_every_run():
        return trio.run(main, clock=mock)


@contextlib.contextmanager
def same_order_every_run() -> Iterator[None]:
    """Seed Trio's choice between tasks woken at the same step, for one run.

    Trio picks that order at random, on purpose, so that programs do not come
    to rely on it; two runs due at one instant are then written in either
    order. A simulation promises the same log for the same set-up, so
    ``simulate`` seeds that choice for its run and gives the process its
    randomness back afterwards. (Trio keeps the generator private; if it
    moves, simulations stay exact instant for instant, only not byte for byte.)
    """
    core = getattr(trio, "_core", None)
    generator = getattr(getattr(core, "_run", None), "_r", None)
    if not isinstance(generator, random.Random):
        yield
        return
    saved = generator.getstate()
    generator.seed(0)
    try:
        yield
    finally:
        generator.setstate(saved)
