"""A Hypothesis state machine over a simulated scheduler, for users to subclass.

:class:`SchedulerMachine` already knows how to drive a scheduler: let time
pass, crash it (``kill -9``) and restart it after a downtime, restart it
gracefully, jump the wall clock, and pause, resume, run now or remove a
task. After every step it checks that no occurrence ran twice, that nothing
due was lost, and that the live state is the replay of the log. A subclass
says which tasks exist (:meth:`SchedulerMachine.setup`) and adds its own
rules and invariants::

    class NightlyExport(SchedulerMachine):
        async def setup(self, scheduler):
            await scheduler.add("export", Cron("0 2 * * *", tz="Europe/Berlin"), export)

    TestNightlyExport = NightlyExport.TestCase

The scheduler runs in a Trio loop on a thread of its own, on simulated time
that stands still between steps, so every step is deterministic and a
failure replays exactly.
"""

from __future__ import annotations

import contextlib
import math
import threading
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Final, TypeVar

import trio
from trio.testing import MockClock

try:
    from hypothesis import strategies as st
    from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
except ImportError as error:  # pragma: no cover - exercised in a venv without Hypothesis
    raise ImportError(
        "chronolog.testing.machine needs Hypothesis, which is not installed; "
        "install it with: pip install 'chronolog[testing]'"
    ) from error

from .._clock import SimulatedClock
from ..log import MemoryLog
from .invariants import assert_exactly_once, assert_nothing_lost, assert_replay_consistent
from .simulate import simulated_scheduler

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from .._scheduler import Scheduler
    from ..log import EventLog
    from .simulate import Simulation
    from .timeline import Timeline

__all__ = ["SchedulerMachine"]

T = TypeVar("T")

#: How long (real time) a failed call waits for a dying loop to say why it died.
_DEATH_SECONDS: Final = 10.0

_MINUTES = st.integers(1, 59).map(lambda m: timedelta(minutes=m))
_HOURS = st.integers(1, 6).map(lambda h: timedelta(hours=h))
_JUMPS = st.sampled_from([-120, -60, -30, -1, 1, 30, 60, 120]).map(lambda m: timedelta(minutes=m))


class _Loop:
    """A Trio loop on its own thread, on a mock clock that never jumps by itself."""

    def __init__(self, clock: MockClock) -> None:
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._thread = threading.Thread(
            target=self._main, args=(clock,), name="chronolog-scheduler-machine", daemon=True
        )
        self._thread.start()
        self._ready.wait()
        if self._failure is not None:
            raise self._failure

    def _main(self, clock: MockClock) -> None:
        try:
            trio.run(self._serve, clock=clock)
        except BaseException as failure:  # reported to the test thread by call()
            self._failure = failure
            self._ready.set()

    async def _serve(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        self._stop = trio.Event()
        async with trio.open_nursery() as nursery:
            self.nursery = nursery
            self._ready.set()
            await self._stop.wait()
            nursery.cancel_scope.cancel()

    def call(self, function: Callable[..., Awaitable[T]], *args: Any) -> T:
        if self._failure is not None:
            raise self._failure
        try:
            return trio.from_thread.run(function, *args, trio_token=self._token)
        except (trio.Cancelled, trio.RunFinishedError):
            # The loop itself died (the simulation raised) and the call only
            # saw it shut down: report why it died instead.
            self._thread.join(timeout=_DEATH_SECONDS)
            if self._failure is not None:
                raise self._failure from None
            raise

    def close(self) -> None:
        if self._failure is None:
            with contextlib.suppress(trio.RunFinishedError):
                trio.from_thread.run_sync(self._stop.set, trio_token=self._token)
        self._thread.join()


class SchedulerMachine(RuleBasedStateMachine):
    """Drives a simulated scheduler with random steps, crashes included; subclass it.

    Override :meth:`setup` to declare tasks (it runs at every start, as an
    application's startup code does) and :meth:`make_log` to use another
    log (a ``FileLog`` in a temporary directory, say). Class attributes set
    where time starts and which checks run after each step. Add ``@rule``\\ s
    and ``@invariant``\\ s of your own; inside them, ``self.call(fn)`` runs
    an async function in the scheduler's loop and lets the present instant
    settle, and ``self.simulation`` / ``self.scheduler`` / ``self.timeline()``
    answer questions. The base rules may remove a task (the next restart
    declares it again, as the application would), so a rule of your own
    checks ``name in self.scheduler.state`` before commanding a task.
    """

    start: ClassVar[datetime] = datetime(2026, 3, 28, 22, 0, tzinfo=UTC)
    """Where simulated time begins (by default a few hours before Europe's spring-forward)."""
    shutdown_grace: ClassVar[timedelta] = timedelta(seconds=30)
    check_exactly_once: ClassVar[bool] = True
    check_nothing_lost: ClassVar[bool] = True
    check_replay: ClassVar[bool] = True

    def __init__(self) -> None:
        super().__init__()
        self._clock = MockClock(autojump_threshold=math.inf)
        self._loop = _Loop(self._clock)
        self._closing: trio.Event | None = None
        self._closed: trio.Event | None = None
        self.simulation: Simulation = self._loop.call(self._open)

    # -- for subclasses ----------------------------------------------------------------

    async def setup(self, scheduler: Scheduler) -> None:
        """Declare the tasks (runs at the first start and after every restart)."""

    def make_log(self) -> EventLog:
        """The log the simulation writes; a fresh ``MemoryLog`` unless overridden."""
        return MemoryLog()

    @property
    def scheduler(self) -> Scheduler:
        """The scheduler running now (a new one after each restart)."""
        return self.simulation.scheduler

    def call(self, function: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run ``await function(*args)`` in the scheduler's loop, then settle the present."""

        async def run() -> T:
            result = await function(*args)
            await self.simulation.settle()
            return result

        return self._loop.call(run)

    def timeline(self) -> Timeline:
        """The log so far, with the machine's crashes and restarts, as a Timeline."""
        return self.simulation.timeline()

    # -- plumbing ----------------------------------------------------------------------

    async def _open(self) -> Simulation:
        opened = trio.Event()
        closing = self._closing = trio.Event()
        closed = self._closed = trio.Event()
        holder: list[Simulation] = []

        async def hold() -> None:
            try:
                async with simulated_scheduler(
                    clock=SimulatedClock(self.start, mock_clock=self._clock),
                    log=self.make_log(),
                    setup=self.setup,
                    shutdown_grace=self.shutdown_grace,
                ) as simulation:
                    holder.append(simulation)
                    opened.set()
                    await closing.wait()
            finally:
                closed.set()

        self._loop.nursery.start_soon(hold)
        await opened.wait()
        return holder[0]

    def teardown(self) -> None:
        closing, closed = self._closing, self._closed
        try:
            if closing is not None and closed is not None:

                async def close() -> None:
                    closing.set()
                    await closed.wait()

                self._loop.call(close)
        finally:
            self._loop.close()

    def _task_name(self, pick: int) -> str | None:
        names = self.scheduler.state.task_names() if self.simulation.up else []
        return names[pick % len(names)] if names else None

    def _command(self, command: str, pick: int) -> None:
        async def run() -> None:
            name = self._task_name(pick)
            if name is not None:
                await getattr(self.scheduler, command)(name)

        self.call(run)

    # -- rules -------------------------------------------------------------------------

    @rule(delta=st.one_of(_MINUTES, _HOURS))
    def advance(self, delta: timedelta) -> None:
        """Let simulated time pass."""
        self.call(self.simulation.advance, delta)

    @rule(down_for=st.one_of(st.just(timedelta(0)), _MINUTES, _HOURS))
    def crash_and_restart(self, down_for: timedelta) -> None:
        """kill -9, stay down a while, start again on the same log."""

        async def crash() -> None:
            await self.simulation.crash()
            await self.simulation.advance(down_for)
            await self.simulation.restart()

        self.call(crash)

    @rule()
    def restart(self) -> None:
        """A graceful restart (a deploy)."""
        self.call(self.simulation.restart)

    @rule(delta=_JUMPS)
    def jump_clock(self, delta: timedelta) -> None:
        """Step the wall clock forward or back (NTP, suspend/resume)."""
        self.call(self.simulation.jump, delta)

    @precondition(lambda self: self.simulation.up and bool(self.scheduler.state.task_names()))
    @rule(pick=st.integers(0, 63))
    def pause(self, pick: int) -> None:
        self._command("pause", pick)

    @precondition(lambda self: self.simulation.up and bool(self.scheduler.state.task_names()))
    @rule(pick=st.integers(0, 63))
    def resume(self, pick: int) -> None:
        self._command("resume", pick)

    @precondition(lambda self: self.simulation.up and bool(self.scheduler.state.task_names()))
    @rule(pick=st.integers(0, 63))
    def run_now(self, pick: int) -> None:
        self._command("run_now", pick)

    @precondition(lambda self: self.simulation.up and bool(self.scheduler.state.task_names()))
    @rule(pick=st.integers(0, 63))
    def remove(self, pick: int) -> None:
        """Remove a task (the next restart declares it again, as the application would)."""
        self._command("remove", pick)

    # -- invariants --------------------------------------------------------------------

    @invariant()
    def the_log_keeps_its_promises(self) -> None:
        """No occurrence ran twice, nothing due was lost, live state == replay(log)."""

        async def check() -> None:
            await self.simulation.settle()
            timeline = self.simulation.timeline()
            if self.check_exactly_once:
                assert_exactly_once(timeline)
            if self.check_nothing_lost:
                assert_nothing_lost(timeline, until=self.simulation.now())
            if self.check_replay:
                state = self.scheduler.state if self.simulation.up else None
                assert_replay_consistent(timeline, state=state)

        self._loop.call(check)
