"""Commands as events: the one place that says what add, pause, resume, remove
and run-now record.

Each builder is pure: a `State`, the command's arguments and the time in, the
list of events to append out (empty when the command changes nothing). The
live `Scheduler` appends exactly these through its writer; the command line
appends them to a log no scheduler holds. So a command means the same
whether a scheduler runs or not, and a test of a rule needs no event loop.

The rules (see ``docs/how-to/choose-policies.md``):

* **add** is idempotent: an identical definition records nothing. A changed
  one records a new ``TaskDefined`` version and keeps every scheduled
  occurrence whose due time the new trigger still produces (a changed
  timeout, target or retry keeps tonight's run); only the others are
  ``Skipped(redefined)``. An ``Every`` without an anchor keeps the stored
  grid while its interval and bounds are unchanged.
* **pause** records ``TaskPaused``: the pending occurrence stays scheduled.
  If its due time comes while the task is still paused, the task's actor
  skips it (``paused``), once; a resume before then costs nothing. Due times
  that already passed unrun and unscheduled (the actor was held up: a full
  disk, a target it could not import) are recorded first as one
  ``Skipped(missed)`` range, as the paused period is never caught up.
* **resume** counts due times from the resume on (the paused period is not
  caught up); occurrences whose due time passed while the task was paused
  are ``Skipped(paused)`` then, if nothing skipped them yet.
* a **note** (of a pause, a resume or a removal) is one line of at most
  `MAX_NOTE_CHARACTERS` printable characters: every record keeps it and
  ``status`` shows it, whoever gave it (the API, a control command, an agent).
* **add** and **resume** also record the task's next occurrence, in the same
  write, so the status they return already shows ``next_run``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Final, Literal

import msgspec

from ._errors import ConfigError, DuplicateTask
from ._events import (
    Failed,
    Scheduled,
    Skipped,
    SkipReason,
    TaskDefined,
    TaskPaused,
    TaskRemoved,
    TaskResumed,
)
from ._ids import manual_occurrence, time_occurrence, validate_task_name
from ._triggers import Cron, Every
from ._views import Outcome

if TYPE_CHECKING:
    from datetime import datetime

    from ._events import Event
    from ._policies import Policy
    from ._projection import State
    from ._triggers import Trigger

__all__ = [
    "IfExists",
    "cancel_events",
    "define_events",
    "pause_events",
    "pending_skips",
    "redefinition_skips",
    "remove_events",
    "resume_events",
    "run_now_events",
]

IfExists = Literal["update", "error", "keep"]


def define_events(
    state: State,
    name: str,
    trigger: Trigger,
    target: str,
    policy: Policy,
    now: datetime,
    if_exists: IfExists = "update",
) -> list[Event]:
    """Define or re-declare task ``name`` (see the module docstring for the rules).

    Raises `DuplicateTask` for a changed definition under
    ``if_exists="error"``; ``"keep"`` records nothing for an existing task.
    """
    validate_task_name(name)
    trigger = trigger.for_task(name)  # hashed cron fields (H) take the task name
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
            trigger = kept  # never reset an anchor by re-declaring
        else:
            # Whole seconds: due times and occurrence ids read better.
            trigger = trigger.anchored(now.replace(microsecond=0))
    if existing is None:
        defined = TaskDefined(task=name, at=now, trigger=trigger, target=target, policy=policy)
        return _planned(state, name, [defined], now)
    if (existing.trigger, existing.target, existing.policy) == (trigger, target, policy):
        return []
    if if_exists == "error":
        raise DuplicateTask(
            f"task {name!r} exists with another definition; to change it use "
            f"if_exists='update' (--if-exists update on the command line), or pick another name"
        )
    if if_exists == "keep":
        return []
    events: list[Event] = redefinition_skips(state, name, trigger, now)
    events.append(
        TaskDefined(
            task=name,
            at=now,
            trigger=trigger,
            target=target,
            policy=policy,
            version=existing.version + 1,
        )
    )
    return _planned(state, name, events, now)


def redefinition_skips(state: State, name: str, trigger: Trigger, now: datetime) -> list[Event]:
    """``Skipped(redefined)`` for the scheduled occurrences ``trigger`` does not produce.

    Every other scheduled occurrence is kept, however far ahead: the actor
    plans the new trigger's earlier due times before it. Manual and
    file-change occurrences belong to no trigger and are always kept.
    """
    prefix = name + "@"
    return [
        Skipped(task=name, at=now, occurrence=run.occurrence, reason=SkipReason.REDEFINED)
        for run in state.open_occurrences(name)
        if run.outcome is Outcome.SCHEDULED
        and run.due is not None
        and run.occurrence.startswith(prefix)
        and not trigger.fires_at(run.due)
    ]


#: The longest note a pause or resume may carry (status shows it, every record keeps it).
MAX_NOTE_CHARACTERS: Final = 1000


def check_note(note: str) -> None:
    """`ConfigError` unless ``note`` is one line of at most `MAX_NOTE_CHARACTERS`
    printable characters."""
    if len(note) > MAX_NOTE_CHARACTERS:
        raise ConfigError(
            f"the note is {len(note)} characters long; a note holds at most "
            f"{MAX_NOTE_CHARACTERS}: say why in a sentence, and keep the details elsewhere"
        )
    if not note.isprintable():
        raise ConfigError(
            f"the note {note[:60]!r} contains control characters (a line break, an "
            f"escape, a NUL); write it on one line of printable text"
        )


def pause_events(state: State, name: str, note: str, now: datetime) -> list[Event]:
    """Pause ``name`` (nothing if it is paused already). Its pending occurrence stays."""
    check_note(note)
    state.status(name)  # UnknownTask, with the closest name
    if state.is_paused(name):
        return []
    return [*_passed_unrun(state, name, now), TaskPaused(task=name, at=now, note=note)]


#: Due times at the very instant of a pause count as passed (the pause comes after them).
_JUST_AFTER: Final = timedelta(microseconds=1)
#: At most this many due times a pause records as passed unrun: a cron
#: trigger's are counted one by one (~7 us each), and a command must answer
#: at once. Beyond it the due times stay unrecorded, as before this rule.
_PASSED_UNRUN_LIMIT: Final = 100_000


def _passed_unrun(state: State, name: str, now: datetime) -> list[Event]:
    """Due times up to ``now`` that nothing scheduled, ran or skipped, as
    ``Skipped(missed)`` ranges: they came while the task was not paused and
    could not run (its actor was held up: a full disk, a target it could
    not import). A pause after them must not leave them unaccounted, as the
    paused period that follows is never caught up. Normally there are none:
    an actor schedules each due time before it comes.
    """
    definition = state.definition(name)
    trigger = definition.trigger
    if not isinstance(trigger, Cron | Every):
        return []
    cursor = state.origin(name)
    watermark = state.watermark(name)
    if watermark is not None and watermark > cursor:
        cursor = watermark
    prefix = name + "@"
    for run in state.open_occurrences(name):
        # Open under this definition only: one an earlier definition scheduled
        # (its actor skips it as redefined) says nothing of this trigger's times.
        if (
            run.due is not None
            and run.due > cursor
            and run.occurrence.startswith(prefix)
            and trigger.fires_at(run.due)
        ):
            cursor = run.due
    # Skipped ahead of their time (a pause, a redefinition): settled, and
    # left out of the ranges, which end before each of them.
    ahead = sorted(when for when in state.skipped_ahead(name) if when > cursor)
    events: list[Event] = []
    budget = _PASSED_UNRUN_LIMIT
    first = trigger.next_after(cursor)
    while first is not None and first <= now and budget > 0:
        if first in ahead:
            first = trigger.next_after(first)
            continue
        bound = now + _JUST_AFTER
        for when in ahead:
            if first < when < bound:
                bound = when
                break
        last = trigger.previous_before(bound)
        if last is None or last < first:
            break
        count, counted_last = trigger.count_fires(first, last, limit=budget)
        if count <= 0 or counted_last is None:
            break
        budget -= count
        events.append(
            Skipped(
                task=name,
                at=now,
                occurrence=time_occurrence(name, first),
                reason=SkipReason.MISSED,
                due=first,
                last_due=counted_last if count > 1 else None,
                count=count,
            )
        )
        first = trigger.next_after(counted_last)
    return events


def resume_events(state: State, name: str, note: str, now: datetime) -> list[Event]:
    """Resume ``name`` (nothing if it is not paused), and plan its next occurrence.

    Due times that passed while it was paused and that nothing has settled
    yet (no scheduler was running to skip them) are skipped as ``paused``
    first, while the task is still paused.
    """
    check_note(note)
    state.status(name)
    if not state.is_paused(name):
        return []
    prefix = name + "@"
    skips: list[Event] = [
        Skipped(task=name, at=now, occurrence=run.occurrence, reason=SkipReason.PAUSED)
        for run in state.open_occurrences(name)
        if run.outcome is Outcome.SCHEDULED
        and run.due is not None
        and run.due < now
        and run.occurrence.startswith(prefix)
    ]
    resumed = TaskResumed(task=name, at=now, note=note)
    # Counting from the resume, only an At can still be due before it: its
    # instant came while the task was paused.
    planned = _preview(state, name, [*skips, resumed]).next_occurrence(name)
    if planned is not None and not planned.scheduled and planned.due < now:
        skips.append(
            Skipped(
                task=name,
                at=now,
                occurrence=planned.occurrence,
                reason=SkipReason.PAUSED,
                due=planned.due,
            )
        )
    return _planned(state, name, [*skips, resumed], now)


def remove_events(state: State, name: str, now: datetime, note: str = "") -> list[Event]:
    """Remove ``name``: its pending occurrences are skipped, then it goes.

    A run the state still shows as running has no process behind it any
    more (a scheduler cancels its runs before it removes their task, and
    nothing runs while no scheduler holds the log): it is recorded as
    interrupted, without retry.
    """
    check_note(note)
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
    events.append(TaskRemoved(task=name, at=now, note=note))
    return events


def cancel_events(state: State, name: str, now: datetime) -> list[Event]:
    """Cancel ``name``'s running runs by recording their end: ``Failed`` with error
    "cancelled", not retried -- what a scheduler records when ``cancel`` stops them.

    For a log several schedulers share (no control socket reaches the node
    that runs them): the node follows the log, sees its run settled, and
    stops it.
    """
    state.status(name)
    return [
        Failed(
            task=name,
            at=now,
            occurrence=run.occurrence,
            attempt=run.attempts,
            error="cancelled",
            error_type="Cancelled",
        )
        for run in state.open_occurrences(name)
        if run.outcome is Outcome.RUNNING
    ]


def pending_skips(state: State, name: str, reason: SkipReason, now: datetime) -> list[Event]:
    """``Skipped(reason)`` for each of the task's occurrences that is scheduled
    or waiting for a retry (not running)."""
    return [
        Skipped(task=name, at=now, occurrence=run.occurrence, reason=reason)
        for run in state.open_occurrences(name)
        if run.outcome is Outcome.SCHEDULED or run.outcome is Outcome.RETRY_PENDING
    ]


def run_now_events(state: State, name: str, now: datetime) -> tuple[str, list[Event]]:
    """A manual occurrence of ``name``, due now: its id and its ``Scheduled`` record.

    Manual ids are unique, so a manual run is never de-duplicated; it runs
    also when the task is paused or finished.
    """
    state.status(name)
    occurrence = manual_occurrence(name)
    return occurrence, [Scheduled(task=name, at=now, occurrence=occurrence, due=now)]


def _preview(state: State, name: str, events: list[Event]) -> State:
    """What ``state`` knows of task ``name`` once ``events`` are appended (seqs as the
    log would give them)."""
    preview = state.isolate(name)
    seq = state.seq
    for event in events:
        seq += 1
        preview.fold(msgspec.structs.replace(event, seq=seq))
    return preview


def _planned(state: State, name: str, events: list[Event], now: datetime) -> list[Event]:
    """``events``, then a ``Scheduled`` for the task's next occurrence if it has no
    record yet. Nothing is planned for a paused task."""
    preview = _preview(state, name, events)
    if name not in preview or preview.is_paused(name):
        return events
    planned = preview.next_occurrence(name)
    if planned is None or planned.scheduled:
        return events
    return [
        *events,
        Scheduled(task=name, at=now, occurrence=planned.occurrence, due=planned.due),
    ]
