"""Timeline: a log read back as the questions a test asks of it.

"How often did ``nightly`` run in March, at which instants, what became of
each occurrence, what was skipped and why?" A :class:`Timeline` folds the
records once into one :class:`Occurrence` per occurrence id (every attempt
kept, duplicates included, so a broken log shows what really happened) and
answers from that. ``str(timeline)`` is a table, used in the harness's
assertion messages.

Occurrences are the core's one view of them (`chronolog.Occurrence`, read
by `chronolog._occurrences`): every occurrence of every task (removed ones
too), no record refused, because a timeline's job is to show a log, not to
judge it.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, tzinfo
from typing import TYPE_CHECKING, Final, Literal

import attrs

from .._errors import ConfigError, UnknownTask, closest_match
from .._events import (
    SkipReason,
    TaskDefined,
    TaskPaused,
    TaskRemoved,
    TaskResumed,
)
from .._occurrences import Attempt, Occurrence, due_in_id, group_by_occurrence
from .._views import Outcome
from .._words import describe_trigger, instant_text, shorten
from .._zones import load_zone
from ._render import seq_list, table

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from .._events import Event
    from ..log import EventLog

__all__ = ["Attempt", "Note", "Occurrence", "Timeline"]

FireBy = Literal["started", "due"]

_KINDS: Final = {"@": "time", "!": "manual", "#": "file"}


@attrs.frozen
class Note:
    """Something the harness did to the simulated world: a crash, a restart, a clock jump."""

    at: datetime
    """The simulated instant it happened."""
    after_seq: int
    """The seq of the last record in the log when it happened."""
    kind: str
    """``"crash"``, ``"restart"``, ``"stop"`` or ``"clock jump"``."""
    text: str
    """The details, in a sentence."""


@attrs.frozen
class _TaskEvent:
    at: datetime
    seq: int
    task: str
    what: str
    detail: str


def _utc(when: datetime | None, what: str) -> datetime | None:
    if when is None:
        return None
    if not isinstance(when, datetime) or when.utcoffset() is None:
        raise ConfigError(
            f"{what} must be an aware datetime (e.g. datetime(2026, 3, 29, tzinfo=UTC)), "
            f"got {when!r}"
        )
    return when.astimezone(UTC)


def _within(when: datetime | None, start: datetime | None, end: datetime | None) -> bool:
    if when is None:
        return False
    return (start is None or when >= start) and (end is None or when < end)


class Timeline:
    """A log, read back as occurrences and their outcomes.

    Build one from records (``Timeline(log.read())``, :meth:`from_log`), or
    get one from :func:`~chronolog.testing.simulate` or
    ``Simulation.timeline()`` -- those also carry the harness's
    :class:`Note`\\ s (crashes, restarts, clock jumps).

    Windows (``start``/``end``) are half-open, ``[start, end)``, and take
    aware datetimes in any zone; ``None`` leaves that side open.
    """

    def __init__(self, records: Iterable[Event], *, notes: Iterable[Note] = ()) -> None:
        self.records: tuple[Event, ...] = tuple(records)
        """Every record, in log order."""
        self.notes: tuple[Note, ...] = tuple(notes)
        """What the harness did, in the order it did it."""
        self._task_events: list[_TaskEvent] = []
        self._tasks: dict[str, None] = {}
        for record in self.records:
            self._tasks.setdefault(record.task, None)
            if isinstance(record, TaskDefined | TaskPaused | TaskResumed | TaskRemoved):
                self._task_events.append(_describe_task_event(record))
        groups = group_by_occurrence(self.records)
        self._occurrences = [group.view() for group in groups.values()]
        self._by_id = {occurrence.occurrence: occurrence for occurrence in self._occurrences}
        self._by_seq: dict[int, Event] | None = None

    @classmethod
    def from_log(cls, log: EventLog, *, notes: Iterable[Note] = ()) -> Timeline:
        """The timeline of every record in ``log``."""
        return cls(log.read(), notes=notes)

    def __repr__(self) -> str:
        span = ""
        if self.records:
            first = min(record.at for record in self.records)
            last = max(record.at for record in self.records)
            span = f", {instant_text(first)} .. {instant_text(last)}"
        return (
            f"<Timeline: {len(self.records)} records, {len(self._occurrences)} occurrences "
            f"of {len(self._tasks)} tasks{span}>"
        )

    def __str__(self) -> str:
        return self.render()

    # -- questions -------------------------------------------------------------

    def tasks(self) -> list[str]:
        """Every task name the log mentions (removed tasks too), in order of appearance."""
        return list(self._tasks)

    def occurrence(self, occurrence: str) -> Occurrence:
        """The occurrence with this id; ``UnknownTask`` (a ``KeyError``) if the log has none."""
        try:
            return self._by_id[occurrence]
        except KeyError:
            covering = self._range_covering(occurrence)
            if covering is not None:
                return covering
            hint = closest_match(occurrence, self._by_id)
            suggestion = f"; did you mean {hint!r}?" if hint else ""
            raise UnknownTask(
                f"no occurrence {occurrence!r} in this timeline{suggestion}"
            ) from None

    def _range_covering(self, occurrence: str) -> Occurrence | None:
        """The skipped range of missed due times that holds time-based id ``occurrence``."""
        task, mark, _ = occurrence.partition("@")
        due = due_in_id(task, occurrence) if mark else None
        if due is None:
            return None
        for candidate in self._by_id.values():
            if candidate.task == task and candidate.last_due is not None and candidate.covers(due):
                return candidate
        return None

    def occurrences(
        self,
        task: str | None = None,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> list[Occurrence]:
        """Occurrences (of ``task``, or of all tasks) whatever became of them, by due time.

        The window applies to the due time (to the first record's time for
        occurrences without one).
        """
        self._check_task(task)
        start, end = _utc(start, "start"), _utc(end, "end")
        chosen = [
            occurrence
            for occurrence in self._occurrences
            if (task is None or occurrence.task == task)
            and ((start is None and end is None) or _within(self._when(occurrence), start, end))
        ]
        return sorted(chosen, key=lambda o: (self._when(o), o.seqs[0]))

    def runs(
        self,
        task: str,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> list[Occurrence]:
        """Occurrences of ``task`` that started (fired) in ``[start, end)``, in firing order."""
        self._check_task(task)
        start, end = _utc(start, "start"), _utc(end, "end")
        chosen = [
            occurrence
            for occurrence in self._occurrences
            if occurrence.task == task
            and occurrence.started is not None
            and ((start is None and end is None) or _within(occurrence.started, start, end))
        ]
        return sorted(chosen, key=lambda o: (o.started, o.seqs[0]))

    def fire_times(
        self,
        task: str,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        by: FireBy = "started",
    ) -> list[datetime]:
        """When ``task`` fired: the start of each run (``by="started"``), or the due
        times of the occurrences that ran (``by="due"``), sorted, in UTC."""
        if by not in ("started", "due"):
            raise ConfigError(f"by must be 'started' or 'due', got {by!r}")
        if by == "started":
            return [run.started for run in self.runs(task, start=start, end=end) if run.started]
        self._check_task(task)
        start, end = _utc(start, "start"), _utc(end, "end")
        return sorted(
            occurrence.due
            for occurrence in self._occurrences
            if occurrence.task == task
            and occurrence.attempts
            and occurrence.due is not None
            and ((start is None and end is None) or _within(occurrence.due, start, end))
        )

    def outcomes(
        self,
        task: str | None = None,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> Counter[Outcome]:
        """How many occurrences (by due time, in the window) ended each way."""
        return Counter(o.outcome for o in self.occurrences(task, start=start, end=end))

    def skipped(
        self,
        task: str | None = None,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        reason: SkipReason | str | None = None,
    ) -> list[Occurrence]:
        """Skipped occurrences (by due time), optionally only those skipped for ``reason``."""
        if reason is not None:
            try:
                reason = SkipReason(reason)
            except ValueError:
                known = ", ".join(r.value for r in SkipReason)
                raise ConfigError(f"unknown skip reason {reason!r}; use one of {known}") from None
        return [
            occurrence
            for occurrence in self.occurrences(task, start=start, end=end)
            if occurrence.outcome is Outcome.SKIPPED
            and (reason is None or occurrence.skip_reason is reason)
        ]

    # -- rendering -------------------------------------------------------------

    def render(
        self,
        *,
        task: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        tz: str | tzinfo | None = None,
        max_rows: int | None = None,
    ) -> str:
        """The timeline as a text table: one row per occurrence, task change and note.

        Rows are in time order (due time for occurrences). ``tz`` shows
        instants in that zone (an IANA name or a tzinfo) instead of UTC;
        ``max_rows`` keeps the first rows and says how many were left out.
        """
        zone = load_zone(tz) if isinstance(tz, str) else tz
        return self._table(self._rows(task, start, end), zone, max_rows=max_rows)

    def _rows(self, task: str | None, start: datetime | None, end: datetime | None) -> list[_Row]:
        self._check_task(task)
        start, end = _utc(start, "start"), _utc(end, "end")
        window = start is not None or end is not None
        rows: list[_Row] = []
        for occurrence in self._occurrences:
            if task is not None and occurrence.task != task:
                continue
            when = self._when(occurrence)
            if window and not _within(when, start, end):
                continue
            rows.append(_Row(when, occurrence.seqs[0], occurrence=occurrence))
        for event in self._task_events:
            if (task is None or event.task == task) and (
                not window or _within(event.at, start, end)
            ):
                rows.append(_Row(event.at, event.seq, event=event))
        for note in self.notes:
            if not window or _within(note.at, start, end):
                rows.append(_Row(note.at, note.after_seq + 0.5, note=note))
        rows.sort(key=lambda row: (row.when, row.order))
        return rows

    def _table(
        self,
        rows: Sequence[_Row],
        zone: tzinfo | None,
        *,
        max_rows: int | None = None,
        marked: frozenset[int] = frozenset(),
    ) -> str:
        label = "UTC" if zone is None else str(zone)
        shown = rows if max_rows is None else rows[:max_rows]
        body = [row.cells(zone, marked) for row in shown]
        text = table(
            ["", f"due / at ({label})", "task", "what", "started", "attempts", "seqs", "detail"],
            body,
        )
        if len(shown) < len(rows):
            text += f"\n… {len(rows) - len(shown)} more rows"
        if not rows:
            text += "\n(no rows)"
        return text

    def _excerpt(
        self,
        task: str | None,
        around: Iterable[datetime],
        *,
        marked: Iterable[int] = (),
        zone: tzinfo | None = None,
        context: int = 2,
        max_rows: int = 40,
    ) -> str:
        """Rows near the given instants (``context`` rows either side), for messages."""
        rows = self._rows(task, None, None)
        keep: set[int] = set()
        for when in around:
            index = next((i for i, row in enumerate(rows) if row.when >= when), len(rows))
            keep.update(range(max(index - context, 0), min(index + context + 1, len(rows))))
        chosen = [rows[i] for i in sorted(keep)]
        return self._table(chosen, zone, max_rows=max_rows, marked=frozenset(marked))

    def _records_with(self, seqs: Iterable[int]) -> list[Event]:
        """The records with these seqs, in log order (for messages)."""
        if self._by_seq is None:
            self._by_seq = {record.seq: record for record in self.records}
        found = (self._by_seq.get(seq) for seq in sorted(set(seqs)))
        return [record for record in found if record is not None]

    def _when(self, occurrence: Occurrence) -> datetime:
        if occurrence.due is not None:
            return occurrence.due
        first = occurrence.started or occurrence.scheduled or occurrence.finished
        return first if first is not None else datetime.min.replace(tzinfo=UTC)

    def _check_task(self, task: str | None) -> None:
        if task is None or task in self._tasks:
            return
        hint = closest_match(task, self._tasks)
        suggestion = f"; did you mean {hint!r}?" if hint else ""
        known = ", ".join(repr(name) for name in list(self._tasks)[:10]) or "none"
        raise UnknownTask(f"no task named {task!r} in this timeline{suggestion} (tasks: {known})")


class _Row:
    __slots__ = ("event", "note", "occurrence", "order", "when")

    def __init__(
        self,
        when: datetime,
        order: float,
        *,
        occurrence: Occurrence | None = None,
        event: _TaskEvent | None = None,
        note: Note | None = None,
    ) -> None:
        self.when = when
        self.order = order
        self.occurrence = occurrence
        self.event = event
        self.note = note

    def cells(self, zone: tzinfo | None, marked: frozenset[int]) -> list[str]:
        if self.note is not None:
            note = self.note
            return [
                "--",
                instant_text(note.at, zone),
                "(harness)",
                note.kind,
                "",
                "",
                "",
                note.text,
            ]
        if self.event is not None:
            event = self.event
            mark = ">>" if event.seq in marked else ""
            when = instant_text(event.at, zone)
            return [mark, when, event.task, event.what, "", "", str(event.seq), event.detail]
        occurrence = self.occurrence
        assert occurrence is not None
        mark = ">>" if marked.intersection(occurrence.seqs) else ""
        return [
            mark,
            instant_text(occurrence.due, zone)
            if occurrence.due
            else instant_text(self.when, zone),
            occurrence.task,
            occurrence.outcome.value
            + ("" if occurrence.kind == "time" else f" ({occurrence.kind})"),
            instant_text(occurrence.started, zone),
            str(len(occurrence.attempts)),
            seq_list(occurrence.seqs),
            _detail(occurrence),
        ]


def _detail(occurrence: Occurrence) -> str:
    if occurrence.last_due is not None:
        how = "missed" if occurrence.skip_reason is SkipReason.MISSED else "skipped"
        return f"{how}: {occurrence.count:,} due times, to {instant_text(occurrence.last_due)}"
    if occurrence.outcome is Outcome.SKIPPED and occurrence.skip_reason is not None:
        return f"skipped: {occurrence.skip_reason.value}"
    parts: list[str] = []
    numbers = [attempt.number for attempt in occurrence.attempts]
    if len(set(numbers)) != len(numbers):
        parts.append(f"attempts {numbers}")
    for attempt in occurrence.attempts:
        if attempt.error is not None:
            parts.append(f"#{attempt.number} failed: {attempt.error}")
    last = occurrence.attempts[-1] if occurrence.attempts else None
    if (
        last is not None
        and last.retry_at is not None
        and occurrence.outcome is Outcome.RETRY_PENDING
    ):
        parts.append(f"retry at {instant_text(last.retry_at)}")
    return shorten("; ".join(parts))


def _describe_task_event(
    record: TaskDefined | TaskPaused | TaskResumed | TaskRemoved,
) -> _TaskEvent:
    if isinstance(record, TaskDefined):
        return _TaskEvent(
            record.at, record.seq, record.task, f"defined v{record.version}",
            shorten(f"{describe_trigger(record.trigger)} -> {record.target}"),
        )  # fmt: skip
    if isinstance(record, TaskPaused | TaskResumed):
        what = "paused" if isinstance(record, TaskPaused) else "resumed"
        return _TaskEvent(record.at, record.seq, record.task, what, shorten(record.note))
    return _TaskEvent(record.at, record.seq, record.task, "removed", "")
