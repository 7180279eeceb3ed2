"""Occurrences as the log recorded them: every record of one occurrence, together.

The projection (`State`) keeps a bounded window of recent runs per task,
which is what a scheduler needs. Looking back -- ``history`` with ``--since``,
``why`` about last month, a ``timeline`` of a week -- needs every run, so the
commands group the records of each occurrence as they read the log, and let
go of an occurrence once it settles: memory stays O(open occurrences) however
long the log.

The views built here (`chronolog.Run`, `Attempt`) say what the records say.
On a log that keeps every rule (``chronolog verify`` finds nothing) a run
here equals the projection's run of the same occurrence; on a log that
breaks one, this shows every record as written, which is what someone
debugging it wants to see.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import attrs

from .._events import Completed, Failed, Scheduled, Skipped, Started
from .._ids import time_occurrence
from .._projection import Outcome, Run

if TYPE_CHECKING:
    from .._events import Event

__all__ = [
    "Attempt",
    "InvalidOccurrenceId",
    "OccurrenceRecords",
    "OccurrenceTracker",
    "canonical_occurrence",
    "due_in_id",
]

_OCCURRENCE_RECORDS = (Scheduled, Started, Completed, Failed, Skipped)


def due_in_id(task: str, occurrence: str) -> datetime | None:
    """The due time written into a time-based occurrence id (``task@<UTC time>``)."""
    prefix = task + "@"
    if not occurrence.startswith(prefix):
        return None
    try:
        due = datetime.fromisoformat(occurrence[len(prefix) :])
    except ValueError:
        return None
    return due if due.tzinfo is not None else None


class InvalidOccurrenceId(ValueError):
    """Text that is not the id of an occurrence of the task it starts with (says why)."""


def canonical_occurrence(task: str, occurrence: str) -> str:
    """``occurrence`` (an id of ``task``) spelled as the log spells it.

    A time-based id may be written with any ISO 8601 spelling of its due
    instant: ``backup@2026-03-29T01:00Z`` and ``backup@2026-03-29T03:00:00+02:00``
    both are ``backup@2026-03-29T01:00:00Z``. File-change (``#``) and manual
    (``!``) ids are kept as they are. Raises `InvalidOccurrenceId` for
    anything that is no id: a time that does not parse or has no UTC offset,
    nothing after the ``@``, ``#`` or ``!``.
    """
    mark, rest = occurrence[len(task)], occurrence[len(task) + 1 :]
    shape = (
        f"an occurrence id of {task!r} is {task}@ and its due time, an ISO 8601 time with a "
        f"UTC offset or Z (e.g. '{task}@2026-03-29T01:00:00Z'), {task}# and the hash of a file "
        f"change, or {task}! and the token of a manual run; list them with: chronolog "
        f"history LOG {task}"
    )
    if mark != "@":
        if not rest or not rest.isprintable() or any(char.isspace() for char in rest):
            raise InvalidOccurrenceId(f"{occurrence!r} is not an occurrence id: {shape}")
        return occurrence
    try:
        due = datetime.fromisoformat(rest)
    except ValueError:
        raise InvalidOccurrenceId(
            f"{occurrence!r} is not an occurrence id: {rest!r} is not a time; {shape}"
        ) from None
    if due.tzinfo is None or due.utcoffset() is None:
        raise InvalidOccurrenceId(
            f"{occurrence!r} is not an occurrence id: its time has no UTC offset, and "
            f"chronolog never guesses one; {shape}"
        )
    try:
        return time_occurrence(task, due)
    except OverflowError:
        raise InvalidOccurrenceId(
            f"{occurrence!r} is not an occurrence id: its time is outside the years 1-9999 "
            f"in UTC; {shape}"
        ) from None


@attrs.frozen
class Attempt:
    """One attempt of an occurrence: from its ``Started`` to its end (if it ended)."""

    number: int
    started: datetime
    node: str
    outcome: Outcome
    """``COMPLETED``, ``FAILED`` or ``RUNNING`` (no end recorded)."""
    finished: datetime | None
    duration: timedelta | None
    error: str | None
    error_type: str | None
    retry_at: datetime | None
    result: Any


@attrs.define
class OccurrenceRecords:
    """The records of one occurrence, in log order."""

    task: str
    occurrence: str
    records: list[Event] = attrs.field(factory=list)

    @property
    def last(self) -> Event:
        return self.records[-1]

    @property
    def due(self) -> datetime | None:
        """When it was due: from its ``Scheduled``, its ``Skipped``, or its id."""
        for record in self.records:
            if isinstance(record, Scheduled):
                return record.due
            if isinstance(record, Skipped) and record.due is not None:
                return record.due
        return due_in_id(self.task, self.occurrence)

    def attempts(self) -> list[Attempt]:
        """Every attempt, in order; the last one ``RUNNING`` when no end was recorded."""
        attempts: list[Attempt] = []
        start: Started | None = None
        for record in self.records:
            if isinstance(record, Started):
                if start is not None:
                    attempts.append(_attempt(start, None))
                start = record
            elif isinstance(record, Completed | Failed) and start is not None:
                attempts.append(_attempt(start, record))
                start = None
        if start is not None:
            attempts.append(_attempt(start, None))
        return attempts

    def run(self) -> Run:
        """This occurrence as a `chronolog.Run`, like ``State.history`` shows it."""
        scheduled = next((r for r in self.records if isinstance(r, Scheduled)), None)
        first_start = next(
            (r for r in self.records if isinstance(r, Started) and r.attempt == 1),
            next((r for r in self.records if isinstance(r, Started)), None),
        )
        last = self.last
        final = last if _settles(last) else None
        attempt_record = next(
            (r for r in reversed(self.records) if isinstance(r, Started | Completed | Failed)),
            None,
        )
        if final is not None:
            outcome = _FINAL_OUTCOMES[type(final)]
        elif isinstance(last, Started):
            outcome = Outcome.RUNNING
        elif isinstance(last, Failed):
            outcome = Outcome.RETRY_PENDING
        else:
            outcome = Outcome.SCHEDULED
        due = scheduled.due if scheduled is not None else None
        if due is None and isinstance(final, Skipped):
            due = final.due
        ended = attempt_record if isinstance(attempt_record, Completed | Failed) else None
        return Run(
            task=self.task,
            occurrence=self.occurrence,
            due=due,
            outcome=outcome,
            attempts=attempt_record.attempt if attempt_record is not None else 0,
            started=first_start.at if first_start is not None else None,
            finished=final.at if final is not None else None,
            duration=ended.duration if ended is not None else None,
            error=ended.error if isinstance(ended, Failed) else None,
            result=final.result if isinstance(final, Completed) else None,
            skip_reason=final.reason if isinstance(final, Skipped) else None,
            retry_at=last.retry_at if final is None and isinstance(last, Failed) else None,
            node=first_start.node if first_start is not None else None,
            seq=last.seq,
        )


_FINAL_OUTCOMES: dict[type, Outcome] = {
    Completed: Outcome.COMPLETED,
    Failed: Outcome.FAILED,
    Skipped: Outcome.SKIPPED,
}


def _settles(record: Event) -> bool:
    kind = type(record)
    return kind is Completed or kind is Skipped or (kind is Failed and record.retry_at is None)  # type: ignore[union-attr]


def _attempt(start: Started, end: Completed | Failed | None) -> Attempt:
    if end is None:
        return Attempt(
            number=start.attempt,
            started=start.at,
            node=start.node,
            outcome=Outcome.RUNNING,
            finished=None,
            duration=None,
            error=None,
            error_type=None,
            retry_at=None,
            result=None,
        )
    failed = end if isinstance(end, Failed) else None
    return Attempt(
        number=start.attempt,
        started=start.at,
        node=start.node,
        outcome=Outcome.FAILED if failed is not None else Outcome.COMPLETED,
        finished=end.at,
        duration=end.duration,
        error=failed.error if failed is not None else None,
        error_type=(failed.error_type or None) if failed is not None else None,
        retry_at=failed.retry_at if failed is not None else None,
        result=end.result if isinstance(end, Completed) else None,
    )


class OccurrenceTracker:
    """Groups records by occurrence while a log is read; hands each back as it settles."""

    def __init__(self) -> None:
        self._open: dict[str, OccurrenceRecords] = {}

    def feed(self, record: Event) -> OccurrenceRecords | None:
        """Take one record; return its occurrence if this record settled it.

        Records that concern no occurrence (definitions, pauses, removals)
        are ignored: callers that need them look at them first.
        """
        if not isinstance(record, _OCCURRENCE_RECORDS):
            return None
        occurrence = record.occurrence
        entry = self._open.get(occurrence)
        if entry is None:
            entry = self._open[occurrence] = OccurrenceRecords(record.task, occurrence)
        entry.records.append(record)
        if _settles(record):
            del self._open[occurrence]
            return entry
        return None

    def still_open(self) -> list[OccurrenceRecords]:
        """Occurrences not settled when the records ran out, oldest change first."""
        return sorted(self._open.values(), key=lambda entry: entry.last.seq)
