"""Control without a scheduler: the records a command appends to a log nobody runs.

When no scheduler holds a log, ``chronolog pause`` (and the other control
commands) open the log as its only writer, replay it, check the command
against that state, and append exactly the records the command stands for
-- the same records a running `Scheduler` would have appended for it. No
task actor starts, so nothing due is run by accident.

The builders here are pure: a `State`, the command's arguments and the
time in, a list of events out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from ._errors import ConfigError, DuplicateTask
from ._events import (
    Failed,
    Scheduled,
    SkipReason,
    TaskDefined,
    TaskPaused,
    TaskRemoved,
    TaskResumed,
)
from ._ids import manual_occurrence, validate_task_name
from ._projection import Outcome
from ._scheduler import pending_skips, redefinition_skips
from ._triggers import Every
from .log._paths import log_at as event_log_at

if TYPE_CHECKING:
    from datetime import datetime

    from ._events import Event
    from ._policies import Policy
    from ._projection import State
    from ._triggers import Trigger

__all__ = [
    "define_events",
    "event_log_at",
    "pause_events",
    "remove_events",
    "resume_events",
    "run_now_events",
]


def pause_events(state: State, name: str, note: str, now: datetime) -> list[Event]:
    """Pause ``name``: its pending occurrence is skipped; nothing if already paused."""
    state.status(name)  # UnknownTask, with the closest name
    if state.is_paused(name):
        return []
    return [
        TaskPaused(task=name, at=now, note=note),
        *pending_skips(state, name, SkipReason.PAUSED, now),
    ]


def resume_events(state: State, name: str, note: str, now: datetime) -> list[Event]:
    """Resume ``name``; nothing if it is not paused."""
    state.status(name)
    if not state.is_paused(name):
        return []
    return [TaskResumed(task=name, at=now, note=note)]


def remove_events(state: State, name: str, now: datetime) -> list[Event]:
    """Remove ``name``.

    A run the log shows as running was interrupted when its scheduler
    stopped (nothing runs while no scheduler holds the log): it is recorded
    as failed, without retry, before the task goes.
    """
    state.status(name)
    events: list[Event] = [
        Failed(
            task=name,
            at=now,
            occurrence=run.occurrence,
            attempt=run.attempts,
            error="interrupted",
            error_type="Interrupted",
        )
        for run in state.open_occurrences(name)
        if run.outcome is Outcome.RUNNING
    ]
    events += pending_skips(state, name, SkipReason.REMOVED, now)
    events.append(TaskRemoved(task=name, at=now))
    return events


def run_now_events(state: State, name: str, now: datetime) -> tuple[str, list[Event]]:
    """A manual occurrence of ``name``, due now, for the next scheduler to start."""
    state.status(name)
    occurrence = manual_occurrence(name)
    return occurrence, [Scheduled(task=name, at=now, occurrence=occurrence, due=now)]


def define_events(
    state: State,
    name: str,
    trigger: Trigger,
    target: str,
    policy: Policy,
    now: datetime,
    if_exists: Literal["update", "error", "keep"] = "update",
) -> list[Event]:
    """Define or re-declare ``name``, with the rules of `Scheduler.add`.

    An identical definition gives no record; a changed one a new version
    (its scheduled occurrences skipped as ``redefined``), unless
    ``if_exists`` is ``"keep"`` (nothing) or ``"error"`` (`DuplicateTask`).
    An ``Every`` without an anchor keeps the stored one when its interval
    and bounds are unchanged, else is anchored at ``now`` (whole seconds).
    """
    validate_task_name(name)
    if if_exists not in ("update", "error", "keep"):
        raise ConfigError(f"if_exists must be 'update', 'error' or 'keep', got {if_exists!r}")
    existing = state.definition(name) if name in state else None
    if isinstance(trigger, Every) and trigger.anchor is None:
        kept = existing.trigger if existing is not None else None
        if (
            isinstance(kept, Every)
            and kept.interval == trigger.interval
            and (kept.start, kept.end) == (trigger.start, trigger.end)
        ):
            trigger = kept
        else:
            trigger = trigger.anchored(now.replace(microsecond=0))
    if existing is None:
        return [TaskDefined(task=name, at=now, trigger=trigger, target=target, policy=policy)]
    if (existing.trigger, existing.target, existing.policy) == (trigger, target, policy):
        return []
    if if_exists == "error":
        raise DuplicateTask(
            f"task {name!r} exists with another definition; use --if-exists update to change "
            f"it, or pick another name"
        )
    if if_exists == "keep":
        return []
    return [
        *redefinition_skips(state, name, trigger, now),
        TaskDefined(
            task=name,
            at=now,
            trigger=trigger,
            target=target,
            policy=policy,
            version=existing.version + 1,
        ),
    ]
