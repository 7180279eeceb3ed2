"""Views of the projection: how a task and its occurrences stand, as immutable values.

The fold (`chronolog._projection`) keeps each occurrence as the records
themselves, in a tuple (`OccurrenceRecords`, `SettledRecords`); the views
here are derived from those records when asked for: `Run` (one occurrence
and what became of it), `TaskStatus` (where a task stands), and the brief
forms the scheduler's actors ask for on every step (`OpenEntry`,
`Planned`). One derivation, used by the live scheduler, replay, the command
line and the testing harness alike.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any, Final, Literal, NamedTuple

import attrs

from ._events import Completed, Event, Failed, Scheduled, Skipped, SkipReason, Started

if TYPE_CHECKING:
    from datetime import datetime, timedelta

    from ._policies import Policy
    from ._triggers import Trigger

__all__ = [
    "OPEN_STATES",
    "OccurrenceRecords",
    "OccurrenceState",
    "OpenEntry",
    "Outcome",
    "Planned",
    "Run",
    "SettledRecords",
    "TaskState",
    "TaskStatus",
    "brief",
    "open_outcome",
    "run_view",
]

TaskState = Literal["running", "finished", "paused", "scheduled", "idle"]


class OccurrenceState(enum.Enum):
    """Where an occurrence stands, as far as de-duplication is concerned."""

    NEW = "new"
    """Never seen (or not yet due when the log was written): may be scheduled."""
    SCHEDULED = "scheduled"
    """Committed to, not started: attempt 1 may start."""
    RUNNING = "running"
    """An attempt is running: nothing may start."""
    RETRY_PENDING = "retry_pending"
    """An attempt failed and another is planned: only the next attempt may start."""
    SETTLED = "settled"
    """Completed, skipped, or failed for good: never starts again."""


class Outcome(enum.StrEnum):
    """How a run of an occurrence stands or ended."""

    SCHEDULED = "scheduled"
    RUNNING = "running"
    RETRY_PENDING = "retry_pending"
    COMPLETED = "completed"
    FAILED = "failed"
    SKIPPED = "skipped"


#: The open outcomes, as de-duplication sees them.
OPEN_STATES: Final = {
    Outcome.SCHEDULED: OccurrenceState.SCHEDULED,
    Outcome.RUNNING: OccurrenceState.RUNNING,
    Outcome.RETRY_PENDING: OccurrenceState.RETRY_PENDING,
}


@attrs.frozen
class Run:
    """One occurrence of a task and what became of it (a view; never changes)."""

    task: str
    occurrence: str
    due: datetime | None
    outcome: Outcome
    attempts: int
    started: datetime | None
    """When the first attempt started."""
    finished: datetime | None
    """When it settled (completed, skipped or failed for good)."""
    duration: timedelta | None
    """How long the last attempt ran."""
    error: str | None
    result: Any
    skip_reason: SkipReason | None
    retry_at: datetime | None
    node: str | None
    seq: int
    """The seq of the record that last changed this run."""
    last_due: datetime | None = None
    """For due times missed in one outage and skipped by one record: the last
    of them (``due`` is the first). None for a single occurrence."""
    count: int = 1
    """How many due times this entry stands for: 1, or the size of a range
    of missed ones ("7,200 runs missed from 01:00:00 to 02:59:59")."""


@attrs.frozen
class TaskStatus:
    """Where a task stands (a view; never changes)."""

    name: str
    trigger: Trigger
    target: str
    policy: Policy
    version: int
    paused: bool
    note: str
    """Why it was paused or resumed, as given."""
    next_run: datetime | None
    """The earliest due time or retry time of an open occurrence that is not running."""
    last_run: datetime | None
    """When the most recent attempt started."""
    last_result: Any
    last_error: str | None
    """The error of the last finished attempt, ``None`` when it completed."""
    last_duration: timedelta | None
    run_count: int
    """Runs started: occurrences whose first attempt started (retries do not count)."""
    error_count: int
    """Attempts that failed."""
    skip_count: int
    """Occurrences skipped: due times, so a range of missed ones counts each."""
    running: tuple[str, ...]
    """Occurrence ids running now (empty when idle)."""
    problem: str | None = None
    """What keeps the task from firing right now that the log does not record,
    such as a watched file that is missing. Only a live scheduler knows it
    (`Scheduler.status`); a status replayed from a log has ``None``."""
    finished: bool = False
    """Its trigger has no due time left (a one-off that was settled, past its
    ``end``, or ``max_runs`` reached) and nothing is open: it will not run
    again by itself. ``run_now`` still runs it."""

    @property
    def state(self) -> TaskState:
        """One word for tables: ``running``, ``finished``, ``paused``, ``scheduled`` or ``idle``.

        ``idle`` is a task that waits for something other than a time: a
        manual task, a file watch, or a run of its own to end.
        """
        if self.running:
            return "running"
        if self.finished:
            return "finished"
        if self.paused:
            return "paused"
        return "scheduled" if self.next_run is not None else "idle"


# How the fold remembers an occurrence: not a mutable object but the records
# themselves, in a tuple. Creating a tuple is far cheaper than creating and
# updating an object per occurrence, tuples of frozen records are immutable
# (so copies of a state can share them), and views are derived only when
# asked for.
#
#   open entry:    (scheduled, first_start, last)
#   history item:  (occurrence id, open entry or None, final)
#
# ``scheduled`` is the Scheduled record (None if the occurrence was started or
# skipped without one), ``first_start`` the Started of attempt 1 (None until
# then), ``last`` the latest record that changed it while open (Scheduled,
# Started, or Failed with a retry planned) and ``final`` the record that
# settled it (Completed, Failed without retry, or Skipped).
#: An open occurrence's records: (Scheduled or None, attempt 1's Started or
#: None, the latest record that changed it).
OccurrenceRecords = tuple[Scheduled | None, Started | None, Event]
#: A settled occurrence: (its id, its records while open or None, the record
#: that settled it).
SettledRecords = tuple[str, OccurrenceRecords | None, Event]


def open_outcome(last: Event) -> Outcome:
    kind = type(last)
    if kind is Started:
        return Outcome.RUNNING
    if kind is Failed:
        return Outcome.RETRY_PENDING
    return Outcome.SCHEDULED


def run_view(
    task: str, occurrence: str, entry: OccurrenceRecords | None, final: Event | None
) -> Run:
    scheduled, first_start, last = entry if entry is not None else (None, None, None)
    # The record of the latest attempt: the final one when an attempt ended
    # the run, else the last open record when it concerns an attempt.
    attempt_record: Started | Completed | Failed | None = None
    if isinstance(final, Completed | Failed):
        attempt_record = final
    elif isinstance(last, Started | Failed):
        attempt_record = last
    if final is not None:
        outcome = _FINAL_OUTCOMES[type(final)]
    else:
        assert last is not None  # an open entry always has a last record
        outcome = open_outcome(last)
    due = scheduled.due if scheduled is not None else None
    if due is None and isinstance(final, Skipped):
        due = final.due
    latest = final if final is not None else last
    return Run(
        task=task,
        occurrence=occurrence,
        due=due,
        outcome=outcome,
        attempts=attempt_record.attempt if attempt_record is not None else 0,
        started=first_start.at if first_start is not None else None,
        finished=final.at if final is not None else None,
        duration=attempt_record.duration
        if isinstance(attempt_record, Completed | Failed)
        else None,
        error=attempt_record.error if isinstance(attempt_record, Failed) else None,
        result=final.result if isinstance(final, Completed) else None,
        skip_reason=final.reason if isinstance(final, Skipped) else None,
        retry_at=last.retry_at if final is None and isinstance(last, Failed) else None,
        node=first_start.node if first_start is not None else None,
        seq=latest.seq if latest is not None else 0,
        last_due=final.last_due if isinstance(final, Skipped) else None,
        count=final.count if isinstance(final, Skipped) and final.last_due is not None else 1,
    )


class OpenEntry(NamedTuple):
    """An open occurrence in brief: what the scheduler's actors ask about on
    every step (cheaper to build than a full `Run` view)."""

    occurrence: str
    outcome: Outcome
    """``SCHEDULED``, ``RUNNING`` or ``RETRY_PENDING``."""
    due: datetime | None
    attempt: int
    """The latest attempt started (0 while only scheduled)."""
    retry_at: datetime | None
    planned_at: datetime | None
    """When its ``Scheduled`` record was written (None without one)."""
    planned_seq: int
    """The seq of its ``Scheduled`` record (0 without one)."""


def brief(occurrence: str, entry: OccurrenceRecords) -> OpenEntry:
    scheduled, _, last = entry
    if scheduled is None:
        due = planned_at = None
        planned_seq = 0
    else:
        due, planned_at, planned_seq = scheduled.due, scheduled.at, scheduled.seq
    if type(last) is Started:
        return OpenEntry(
            occurrence, Outcome.RUNNING, due, last.attempt, None, planned_at, planned_seq
        )
    if type(last) is Failed:
        return OpenEntry(
            occurrence,
            Outcome.RETRY_PENDING,
            due,
            last.attempt,
            last.retry_at,
            planned_at,
            planned_seq,
        )
    return OpenEntry(occurrence, Outcome.SCHEDULED, due, 0, None, planned_at, planned_seq)


class Planned(NamedTuple):
    """The next occurrence a task's trigger has to fire (see `State.next_occurrence`)."""

    occurrence: str
    due: datetime
    scheduled: bool
    """True when its ``Scheduled`` record is in the log already."""
    planned_at: datetime | None
    """When that ``Scheduled`` record was written (None when it has none yet)."""


_FINAL_OUTCOMES: Final[dict[type, Outcome]] = {
    Completed: Outcome.COMPLETED,
    Failed: Outcome.FAILED,
    Skipped: Outcome.SKIPPED,
}
