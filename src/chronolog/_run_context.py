"""Run context: which occurrence a job is running, for exactly-once effects.

chronolog starts an occurrence at most once per attempt, but a job's effects
(a row inserted, a mail sent) happen outside the log. A job that keys its
effects by the occurrence id -- an upsert on it, an idempotency key for an
API -- makes them exactly-once too: a retry, or a restart after a crash in
the middle of the job, repeats the same key.

A callable reads the context with `current_run`; a command gets it in its
environment (``CHRONOLOG_TASK``, ``CHRONOLOG_OCCURRENCE``,
``CHRONOLOG_ATTEMPT``, ``CHRONOLOG_DUE``).
"""

from __future__ import annotations

import contextvars
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

import attrs

if TYPE_CHECKING:
    from ._processes import ProcessKeeper

__all__ = ["RunContext", "current_run", "enter_run", "leave_run", "run_context_or_none"]


@attrs.frozen
class RunContext:
    """The occurrence a job is running: what `chronolog.current_run` returns."""

    task: str
    occurrence: str
    """The occurrence id (``task@due``, ``task!random``, ``task#hash``): stable across
    retries and restarts, the key for effects that must happen once."""
    attempt: int
    """1 for the first attempt, 2 for the first retry, ..."""
    due: datetime | None
    """When the occurrence was due (aware, UTC)."""
    node: str
    """The scheduler's node name (``{hostname}:{pid}`` by default)."""
    _keeper: ProcessKeeper | None = attrs.field(default=None, repr=False, eq=False, alias="keeper")
    """Where the scheduler keeps track of the processes a command starts."""

    @property
    def keeper(self) -> ProcessKeeper | None:
        return self._keeper

    def environment(self) -> dict[str, str]:
        """The context as the environment variables a command gets."""
        return {
            "CHRONOLOG_TASK": self.task,
            "CHRONOLOG_OCCURRENCE": self.occurrence,
            "CHRONOLOG_ATTEMPT": str(self.attempt),
            "CHRONOLOG_DUE": "" if self.due is None else _iso(self.due),
        }


_CURRENT: Final[contextvars.ContextVar[RunContext]] = contextvars.ContextVar("chronolog_run")


def current_run() -> RunContext:
    """The occurrence the calling job is running (also in a sync job's thread).

    Raises ``RuntimeError`` when called outside a job run by a scheduler.
    """
    try:
        return _CURRENT.get()
    except LookupError:
        raise RuntimeError(
            "chronolog.current_run() was called outside a job: it answers only inside a "
            "target that a scheduler is running (and in the tasks and threads it starts)"
        ) from None


def run_context_or_none() -> RunContext | None:
    """`current_run`, or None outside a job."""
    return _CURRENT.get(None)


def enter_run(context: RunContext) -> contextvars.Token[RunContext]:
    """Make ``context`` the current run (the scheduler does, around each attempt)."""
    return _CURRENT.set(context)


def leave_run(token: contextvars.Token[RunContext]) -> None:
    _CURRENT.reset(token)


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")
