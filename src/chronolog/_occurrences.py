"""Occurrences as the log recorded them: every record of one occurrence, read together.

The projection (`State`) keeps what a scheduler needs: the open occurrences
and a bounded window of recent runs per task. Looking back -- ``history``
over a month, ``why``, a timeline, a test's assertion -- needs each
occurrence whole: when it was planned, every attempt, how it ended. This is
that one view, used by the command line and by `chronolog.testing` alike.

It shows records as written and never refuses one, since its readers debug
logs: on a log that keeps every rule (`check_invariants` finds nothing),
`RecordedOccurrence.run` equals the projection's `Run` of the same
occurrence; on one that breaks a rule, `Occurrence.attempts` shows every
``Started`` (attempt 1 twice, say), which is what someone debugging it
needs to see.

Where an occurrence stands is read from its last record, not counting a
``Scheduled`` (planning again is harmless, and says nothing about runs):
``Started`` is running, ``Failed`` with a ``retry_at`` waits for a retry,
``Completed``, ``Failed`` and ``Skipped`` settle it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, Literal

import attrs

from ._events import Completed, Failed, Scheduled, Skipped, SkipReason, Started
from ._views import Outcome, Run

if TYPE_CHECKING:
    from collections.abc import Iterable

    from ._events import Event

__all__ = [
    "Attempt",
    "Occurrence",
    "OccurrenceTracker",
    "RecordedOccurrence",
    "due_in_id",
    "group_by_occurrence",
]

#: The record types that belong to an occurrence.
OCCURRENCE_RECORDS: Final = (Scheduled, Started, Completed, Failed, Skipped)
_SETTLED: Final = frozenset({Outcome.COMPLETED, Outcome.FAILED, Outcome.SKIPPED})
_KINDS: Final[dict[str, Literal["time", "manual", "file"]]] = {
    "@": "time",
    "!": "manual",
    "#": "file",
}


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


@attrs.frozen
class Attempt:
    """One attempt of an occurrence: its ``Started`` record and how it ended."""

    number: int
    started: datetime
    started_seq: int
    node: str
    outcome: Outcome
    """``RUNNING`` (no end recorded), ``COMPLETED`` or ``FAILED``."""
    finished: datetime | None = None
    finished_seq: int | None = None
    duration: timedelta | None = None
    error: str | None = None
    error_type: str | None = None
    retry_at: datetime | None = None
    """When the next attempt was planned, if the attempt failed with a retry."""
    result: Any = None


@attrs.frozen
class Occurrence:
    """Everything the log says about one occurrence of a task."""

    task: str
    occurrence: str
    """The occurrence id, e.g. ``nightly@2026-03-29T01:00:00Z``."""
    kind: Literal["time", "manual", "file"]
    """``"time"`` (Cron, Every, At), ``"manual"`` (run_now) or ``"file"`` (a file change)."""
    due: datetime | None
    """When it was due: from its ``Scheduled``, its ``Skipped``, or its id."""
    outcome: Outcome
    """Where it stands after the last record about it."""
    attempts: tuple[Attempt, ...]
    """Every ``Started`` in log order -- a broken log may show attempt 1 twice."""
    skip_reason: SkipReason | None
    scheduled: datetime | None
    """When its ``Scheduled`` record was written (ahead of ``due`` as a rule)."""
    finished: datetime | None
    """When it settled: completed, failed for good, or skipped."""
    seqs: tuple[int, ...]
    """The seqs of every record about it, in log order."""
    last_due: datetime | None = None
    """When its ``Skipped`` stands for a range of missed due times: the last
    of them (``due`` is the first). None for a single occurrence."""
    count: int = 1
    """How many due times it stands for: 1, or the size of its range."""

    def covers(self, due: datetime) -> bool:
        """Whether ``due`` is its due time, or lies in its range of missed ones."""
        if self.due is None:
            return False
        if self.last_due is None:
            return due == self.due
        return self.due <= due <= self.last_due

    @property
    def started(self) -> datetime | None:
        """When the first attempt started: the instant it fired."""
        return self.attempts[0].started if self.attempts else None

    @property
    def error(self) -> str | None:
        """The error of the last attempt, if it failed."""
        return self.attempts[-1].error if self.attempts else None

    @property
    def result(self) -> Any:
        """What the last attempt returned, if it completed."""
        return self.attempts[-1].result if self.attempts else None


def _standing(record: Event | None, started: bool) -> Outcome:
    """Where an occurrence stands after ``record``, its last record that is no ``Scheduled``."""
    if record is None:
        return Outcome.RUNNING if started else Outcome.SCHEDULED
    kind = type(record)
    if kind is Started:
        return Outcome.RUNNING
    if kind is Completed:
        return Outcome.COMPLETED
    if kind is Failed:
        assert isinstance(record, Failed)
        return Outcome.RETRY_PENDING if record.retry_at is not None else Outcome.FAILED
    return Outcome.SKIPPED


def _settles(record: Event) -> bool:
    kind = type(record)
    if kind is Failed:
        assert isinstance(record, Failed)
        return record.retry_at is None
    return kind is Completed or kind is Skipped


class RecordedOccurrence:
    """The records of one occurrence, in log order, and what they say."""

    __slots__ = ("occurrence", "records", "task")

    def __init__(self, task: str, occurrence: str) -> None:
        self.task = task
        self.occurrence = occurrence
        self.records: list[Event] = []

    def __repr__(self) -> str:
        return f"<RecordedOccurrence {self.occurrence!r}: {len(self.records)} records>"

    @property
    def last(self) -> Event:
        return self.records[-1]

    @property
    def settled(self) -> bool:
        """Whether its last record settles it (completed, failed for good, skipped)."""
        return bool(self.records) and _settles(self.records[-1])

    def _scheduled(self) -> Scheduled | None:
        return next((r for r in self.records if isinstance(r, Scheduled)), None)

    def _skipped(self) -> Skipped | None:
        return next((r for r in reversed(self.records) if isinstance(r, Skipped)), None)

    def _standing_record(self) -> Event | None:
        return next((r for r in reversed(self.records) if type(r) is not Scheduled), None)

    @property
    def due(self) -> datetime | None:
        """When it was due: from its ``Scheduled``, its ``Skipped``, or its id."""
        scheduled = self._scheduled()
        if scheduled is not None:
            return scheduled.due
        skipped = self._skipped()
        if skipped is not None and skipped.due is not None:
            return skipped.due
        return due_in_id(self.task, self.occurrence)

    def attempts(self) -> list[Attempt]:
        """Every attempt, in order; the last one ``RUNNING`` when no end was recorded.

        An end (``Completed``/``Failed``) belongs to the latest open attempt
        with its number.
        """
        pairs: list[list[Any]] = []
        for record in self.records:
            kind = type(record)
            if kind is Started:
                pairs.append([record, None])
            elif kind is Completed or kind is Failed:
                assert isinstance(record, Completed | Failed)
                for pair in reversed(pairs):
                    if pair[0].attempt == record.attempt and pair[1] is None:
                        pair[1] = record
                        break
        return [_attempt(started, ended) for started, ended in pairs]

    def view(self) -> Occurrence:
        """This occurrence as an `Occurrence`: every attempt, where it stands."""
        attempts = self.attempts()
        standing = self._standing_record()
        outcome = _standing(standing, bool(attempts))
        skipped = self._skipped()
        scheduled = self._scheduled()
        mark = self.occurrence[len(self.task) : len(self.task) + 1]
        return Occurrence(
            task=self.task,
            occurrence=self.occurrence,
            kind=_KINDS.get(mark, "time"),
            due=self.due,
            outcome=outcome,
            attempts=tuple(attempts),
            skip_reason=skipped.reason if outcome is Outcome.SKIPPED and skipped else None,
            scheduled=scheduled.at if scheduled is not None else None,
            finished=standing.at if outcome in _SETTLED and standing is not None else None,
            seqs=tuple(record.seq for record in self.records),
            **_range_fields(skipped if outcome is Outcome.SKIPPED else None),
        )

    def run(self) -> Run:
        """This occurrence as a `chronolog.Run`, as ``State.history`` shows it."""
        scheduled = self._scheduled()
        starts = [r for r in self.records if isinstance(r, Started)]
        first_start = next((r for r in starts if r.attempt == 1), starts[0] if starts else None)
        standing = self._standing_record()
        outcome = _standing(standing, bool(starts))
        final = standing if outcome in _SETTLED else None
        attempt_record = next(
            (r for r in reversed(self.records) if isinstance(r, Started | Completed | Failed)),
            None,
        )
        due = scheduled.due if scheduled is not None else None
        if due is None and isinstance(final, Skipped):
            due = final.due
        ended = attempt_record if isinstance(attempt_record, Completed | Failed) else None
        last = self.last
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
            retry_at=standing.retry_at
            if outcome is Outcome.RETRY_PENDING and isinstance(standing, Failed)
            else None,
            node=first_start.node if first_start is not None else None,
            seq=last.seq,
            **_range_fields(final if isinstance(final, Skipped) else None),
        )


def _range_fields(skipped: Skipped | None) -> dict[str, Any]:
    """``last_due`` and ``count`` of a view, from the ``Skipped`` that settled it."""
    if skipped is None or skipped.last_due is None:
        return {}
    return {"last_due": skipped.last_due, "count": skipped.count}


def _attempt(start: Started, end: Completed | Failed | None) -> Attempt:
    if end is None:
        return Attempt(start.attempt, start.at, start.seq, start.node, Outcome.RUNNING)
    failed = end if type(end) is Failed else None
    return Attempt(
        start.attempt,
        start.at,
        start.seq,
        start.node,
        Outcome.FAILED if failed is not None else Outcome.COMPLETED,
        finished=end.at,
        finished_seq=end.seq,
        duration=end.duration,
        error=failed.error if failed is not None else None,
        error_type=(failed.error_type or None) if failed is not None else None,
        retry_at=failed.retry_at if failed is not None else None,
        result=end.result if isinstance(end, Completed) else None,
    )


def group_by_occurrence(records: Iterable[Event]) -> dict[str, RecordedOccurrence]:
    """Every occurrence the records mention, in the order they first appear."""
    groups: dict[str, RecordedOccurrence] = {}
    for record in records:
        if not isinstance(record, OCCURRENCE_RECORDS):
            continue
        group = groups.get(record.occurrence)
        if group is None:
            group = groups[record.occurrence] = RecordedOccurrence(record.task, record.occurrence)
        group.records.append(record)
    return groups


class OccurrenceTracker:
    """Groups records by occurrence while a log is read; hands each back as it settles.

    Memory stays O(open occurrences) however long the log: a settled
    occurrence is let go of as soon as it is handed back.
    """

    def __init__(self) -> None:
        self._open: dict[str, RecordedOccurrence] = {}

    def feed(self, record: Event) -> RecordedOccurrence | None:
        """Take one record; return its occurrence if this record settled it.

        Records that concern no occurrence (definitions, pauses, removals)
        are ignored: callers that need them look at them first.
        """
        if not isinstance(record, OCCURRENCE_RECORDS):
            return None
        occurrence = record.occurrence
        entry = self._open.get(occurrence)
        if entry is None:
            entry = self._open[occurrence] = RecordedOccurrence(record.task, occurrence)
        entry.records.append(record)
        if _settles(record):
            del self._open[occurrence]
            return entry
        return None

    def still_open(self) -> list[RecordedOccurrence]:
        """Occurrences not settled when the records ran out, oldest change first."""
        return sorted(self._open.values(), key=lambda entry: entry.last.seq)
