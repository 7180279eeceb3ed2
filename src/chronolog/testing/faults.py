"""Faults on demand: crashes, restarts, clock jumps, and targets that misbehave.

Faults are plain values. Hand them to :func:`~chronolog.testing.simulate`
(``faults=[...]``) or to ``Simulation.inject``, and the simulation applies
each one at its instant -- after everything due at that instant has
happened, so ``Crash(at=t)`` with a run due at ``t`` interrupts that run.

A **crash** is ``kill -9``: the scheduler is abandoned where it stands.
Nothing it would still write reaches the log -- no ``Failed`` for the runs it
was running, no shutdown -- and its running targets are cancelled at once.
What the log holds at that instant is all the next scheduler finds.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import attrs
import trio

from .._errors import ConfigError
from .._events import EventBase

if TYPE_CHECKING:
    from collections.abc import Callable

    from .._events import Event

__all__ = ["ClockJump", "Crash", "Fault", "FlakyTarget", "HangingTarget", "Restart"]


def _aware(value: object, what: str) -> datetime:
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise ConfigError(
            f"{what} must be an aware datetime such as datetime(2026, 7, 1, 2, 10, "
            f"tzinfo=ZoneInfo('Europe/Berlin')), got {value!r}"
        )
    return value.astimezone(UTC)


def _duration(value: object, what: str, *, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if not isinstance(value, timedelta) or value < timedelta(0):
        raise ConfigError(f"{what} must be a timedelta of zero or more, got {value!r}")


@attrs.frozen
class Crash:
    """Kill the scheduler (as by ``kill -9``) at an instant, or right after a record lands.

    Give exactly one of:

    * ``at``: the simulated instant of the crash (aware; any zone);
    * ``after``: an event class (``chronolog.Started``, ...) or a predicate
      over records. The crash happens right after the ``nth`` matching record
      is durable -- after the append holding it, so records written in the
      same batch survive too. ``task`` narrows an event class to one task.

    ``restart_after`` is how long the scheduler stays down before it starts
    again on the same log (``timedelta(0)``: at once); ``None`` leaves it
    down until ``Simulation.restart()``.
    """

    at: datetime | None = None
    after: type[Event] | Callable[[Event], bool] | None = None
    task: str | None = None
    nth: int = 1
    restart_after: timedelta | None = timedelta(0)

    def __attrs_post_init__(self) -> None:
        if (self.at is None) == (self.after is None):
            raise ConfigError(
                "Crash needs exactly one of at= (an instant) or after= (an event class such "
                "as chronolog.Started, or a predicate over records)"
            )
        if self.at is not None:
            object.__setattr__(self, "at", _aware(self.at, "Crash(at=...)"))
        after = self.after
        if after is not None:
            is_event_class = isinstance(after, type) and issubclass(after, EventBase)
            if not is_event_class and (isinstance(after, type) or not callable(after)):
                raise ConfigError(
                    f"Crash(after=...) takes an event class such as chronolog.Started or a "
                    f"function record -> bool, got {after!r}"
                )
        if self.task is not None and (after is None or not isinstance(after, type)):
            raise ConfigError("Crash(task=...) narrows after= an event class; use it with one")
        if not isinstance(self.nth, int) or self.nth < 1:
            raise ConfigError(f"Crash(nth=...) counts matching records from 1, got {self.nth!r}")
        _duration(self.restart_after, "Crash(restart_after=...)", allow_none=True)

    def matches(self, record: Event) -> bool:
        """Whether ``record`` is one this crash waits for (``after`` crashes only)."""
        after = self.after
        if after is None:
            return False
        if isinstance(after, type):
            return isinstance(record, after) and (self.task is None or record.task == self.task)
        return bool(after(record))

    def describe(self) -> str:
        """What the crash waits for, in a few words (for the timeline's notes)."""
        if self.at is not None:
            return f"at {self.at.isoformat()}"
        what = after.__name__ if isinstance(after := self.after, type) else "a matching record"
        task = f" of task {self.task!r}" if self.task is not None else ""
        nth = f" #{self.nth}" if self.nth != 1 else ""
        return f"right after {what}{nth}{task}"


@attrs.frozen
class Restart:
    """Stop the scheduler gracefully at ``at`` (a deploy), and start it again ``down_for`` later.

    A graceful stop gives running runs the scheduler's ``shutdown_grace`` and
    keeps pending occurrences scheduled, so a restart before their due time
    runs them on time.
    """

    at: datetime
    down_for: timedelta = timedelta(0)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "at", _aware(self.at, "Restart(at=...)"))
        _duration(self.down_for, "Restart(down_for=...)")


@attrs.frozen
class ClockJump:
    """Step the wall clock by ``by`` at ``at``, as NTP or a suspend does; negative steps back."""

    at: datetime
    by: timedelta

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "at", _aware(self.at, "ClockJump(at=...)"))
        if not isinstance(self.by, timedelta) or not self.by:
            raise ConfigError(
                f"ClockJump(by=...) must be a non-zero timedelta (negative steps back), "
                f"got {self.by!r}"
            )


Fault = Crash | Restart | ClockJump


class FlakyTarget:
    """A task target that fails its first ``failures`` calls, then succeeds.

    Each failure raises ``error`` (by default a ``RuntimeError`` saying which
    failure it is); later calls return ``result``. ``calls`` counts calls.
    Use it with a ``Retry`` policy to watch retries happen, or without one to
    see occurrences fail for good.
    """

    def __init__(
        self, failures: int, *, error: Exception | None = None, result: Any = None
    ) -> None:
        if not isinstance(failures, int) or failures < 0:
            raise ConfigError(f"FlakyTarget(failures=...) must be 0 or more, got {failures!r}")
        self.failures = failures
        self.error = error
        self.result = result
        self.calls = 0
        # No import path: after a restart the task must be declared again with
        # this very object, never rebuilt by importing the class.
        self.__qualname__ = f"FlakyTarget<failures={failures}>"

    def __repr__(self) -> str:
        return f"<FlakyTarget failures={self.failures} calls={self.calls}>"

    async def __call__(self) -> Any:
        await trio.lowlevel.checkpoint()
        self.calls += 1
        if self.calls <= self.failures:
            if self.error is not None:
                raise self.error
            raise RuntimeError(f"simulated failure {self.calls} of {self.failures}")
        return self.result


class HangingTarget:
    """A task target that hangs: for ``duration`` of simulated time, or until cancelled.

    ``calls`` counts calls, ``cancelled`` how many were cancelled (a timeout,
    ``cancel``, ``REPLACE``, a shutdown or a crash), ``finished`` how many
    ran to their end and returned ``result``.
    """

    def __init__(self, duration: timedelta | None = None, *, result: Any = None) -> None:
        _duration(duration, "HangingTarget(duration=...)", allow_none=True)
        self.duration = duration
        self.result = result
        self.calls = 0
        self.cancelled = 0
        self.finished = 0
        self.__qualname__ = (
            "HangingTarget<forever>" if duration is None else f"HangingTarget<{duration}>"
        )

    def __repr__(self) -> str:
        return (
            f"<HangingTarget duration={self.duration} calls={self.calls} "
            f"cancelled={self.cancelled} finished={self.finished}>"
        )

    async def __call__(self) -> Any:
        self.calls += 1
        try:
            if self.duration is None:
                await trio.sleep_forever()
            await trio.sleep(self.duration.total_seconds())
        except trio.Cancelled:
            self.cancelled += 1
            raise
        self.finished += 1
        return self.result
