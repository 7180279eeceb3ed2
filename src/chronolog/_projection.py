"""The projection: what the log says the world looks like, as a pure fold.

``replay(records)`` folds a log into a :class:`State`; ``apply(state, record)``
is one step of that fold. The live scheduler holds a ``State`` built by the
very same step, so "live state == replay(log)" holds by construction.

Purity here means: deterministic, no I/O, no clock reads. For speed the fold
updates a state object that it owns in place (replay creates its own) and
hands out immutable views (:class:`TaskStatus`, :class:`Run`). The public
``apply`` copies first, so it never changes the state passed in.

De-duplication memory is O(tasks + open occurrences), not O(history): per task
the projection keeps a *watermark* (the latest due time of a settled
time-based occurrence) and the occurrences that are still open (scheduled,
running or waiting for a retry). A time-based occurrence at or below the
watermark that is not open is settled, whatever its id. Manual and
file-change occurrence ids are unique by construction, so once settled they
can be forgotten. Run history is a bounded window of recent runs per task.
"""

from __future__ import annotations

import enum
from collections import deque
from typing import TYPE_CHECKING, Any, Final

import attrs

from ._errors import UnknownTask, closest_match
from ._events import (
    Completed,
    Event,
    Failed,
    Scheduled,
    Skipped,
    SkipReason,
    Started,
    TaskDefined,
    TaskPaused,
    TaskRemoved,
    TaskResumed,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from datetime import datetime, timedelta

    from ._policies import Policy
    from ._triggers import Trigger

__all__ = [
    "DEFAULT_HISTORY_LIMIT",
    "OccurrenceState",
    "Outcome",
    "Run",
    "State",
    "TaskStatus",
    "apply",
    "replay",
]

DEFAULT_HISTORY_LIMIT: Final = 100

_TIME_SEPARATOR: Final = "@"


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


# Enum member lookups cost ~100 ns each on Python 3.11; the fold uses these
# module-level aliases on its hot path instead.
_SCHEDULED: Final = Outcome.SCHEDULED
_RUNNING: Final = Outcome.RUNNING
_RETRY_PENDING: Final = Outcome.RETRY_PENDING
_COMPLETED: Final = Outcome.COMPLETED
_FAILED: Final = Outcome.FAILED
_SKIPPED: Final = Outcome.SKIPPED

_OPEN_STATES: Final = {
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
    """Attempts started."""
    error_count: int
    """Attempts that failed."""
    skip_count: int
    """Occurrences skipped."""
    running: tuple[str, ...]
    """Occurrence ids running now (empty when idle)."""

    @property
    def state(self) -> str:
        """One word for tables: ``paused``, ``running``, ``scheduled`` or ``idle``."""
        if self.running:
            return "running"
        if self.paused:
            return "paused"
        return "scheduled" if self.next_run is not None else "idle"


class _Occurrence:
    """Mutable bookkeeping for one occurrence while it is open.

    When it settles it moves into the task's history window and is never
    changed again, so copies of a state may share settled ones. Fields that
    most occurrences never set live on the class, so creating one in the hot
    path of replay sets three attributes, not thirteen.
    """

    FIELDS: Final = (
        "occurrence",
        "due",
        "seq",
        "outcome",
        "attempt",
        "started",
        "finished",
        "duration",
        "error",
        "result",
        "skip_reason",
        "retry_at",
        "node",
    )

    outcome: Outcome = Outcome.SCHEDULED
    attempt: int = 0
    started: datetime | None = None
    finished: datetime | None = None
    duration: timedelta | None = None
    error: str | None = None
    result: Any = None
    skip_reason: SkipReason | None = None
    retry_at: datetime | None = None
    node: str | None = None

    def __init__(self, occurrence: str, due: datetime | None, seq: int) -> None:
        self.occurrence = occurrence
        self.due = due
        self.seq = seq

    def _key(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self.FIELDS)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, _Occurrence):
            return NotImplemented
        return self._key() == other._key()

    __hash__ = None  # type: ignore[assignment]

    def copy(self) -> _Occurrence:
        twin = _Occurrence.__new__(_Occurrence)
        twin.__dict__.update(self.__dict__)
        return twin

    def view(self, task: str) -> Run:
        return Run(
            task=task,
            occurrence=self.occurrence,
            due=self.due,
            outcome=self.outcome,
            attempts=self.attempt,
            started=self.started,
            finished=self.finished,
            duration=self.duration,
            error=self.error,
            result=self.result,
            skip_reason=self.skip_reason,
            retry_at=self.retry_at,
            node=self.node,
            seq=self.seq,
        )


class _Task:
    """Mutable bookkeeping for one task (owned by exactly one State)."""

    __slots__ = (
        "definition",
        "error_count",
        "history",
        "last_change",
        "last_content_hash",
        "last_duration",
        "last_error",
        "last_result",
        "last_run",
        "note",
        "open",
        "paused",
        "run_count",
        "skip_count",
        "time_prefix",
        "watermark",
    )

    def __init__(self, definition: TaskDefined, history_limit: int) -> None:
        self.definition = definition
        # Time-based occurrence ids start with this (see _ids.py).
        self.time_prefix = definition.task + _TIME_SEPARATOR
        self.paused = definition.policy.paused
        self.note = ""
        self.watermark: datetime | None = None
        self.open: dict[str, _Occurrence] = {}
        self.history: deque[_Occurrence] = deque(maxlen=history_limit)
        self.run_count = 0
        self.error_count = 0
        self.skip_count = 0
        self.last_run: datetime | None = None
        self.last_result: Any = None
        self.last_error: str | None = None
        self.last_duration: timedelta | None = None
        self.last_change: str | None = None
        self.last_content_hash: str | None = None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, _Task):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in self.__slots__)

    __hash__ = None  # type: ignore[assignment]

    def copy(self) -> _Task:
        twin = _Task.__new__(_Task)
        for name in self.__slots__:
            setattr(twin, name, getattr(self, name))
        twin.open = {key: value.copy() for key, value in self.open.items()}
        twin.history = deque(self.history, maxlen=self.history.maxlen)
        return twin

    def settle(self, occurrence: _Occurrence, outcome: Outcome, at: datetime, seq: int) -> None:
        occurrence.outcome = outcome
        occurrence.finished = at
        occurrence.seq = seq
        occurrence_id = occurrence.occurrence
        self.open.pop(occurrence_id, None)
        self.history.append(occurrence)
        due = occurrence.due
        if due is not None and occurrence_id.startswith(self.time_prefix):
            watermark = self.watermark
            if watermark is None or due > watermark:
                self.watermark = due

    def is_settled(self, occurrence: str, due: datetime | None) -> bool:
        """Not open, and at or below the watermark (time-based ids only)."""
        if occurrence in self.open or due is None:
            return False
        watermark = self.watermark
        return (
            watermark is not None and due <= watermark and occurrence.startswith(self.time_prefix)
        )


class State:
    """Everything the log says, folded: tasks, open occurrences, recent runs.

    Build one with :func:`replay`; ask it questions with :meth:`status`,
    :meth:`tasks`, :meth:`history` and the de-duplication questions
    :meth:`occurrence_state`, :meth:`may_schedule` and :meth:`may_start`.
    """

    __slots__ = ("_history_limit", "_retired", "_tasks", "seq")

    def __init__(self, *, history_limit: int = DEFAULT_HISTORY_LIMIT) -> None:
        if history_limit < 1:
            raise ValueError(f"history_limit must be at least 1, got {history_limit}")
        self.seq = 0
        """The seq of the last record folded in (0 for an empty log)."""
        self._history_limit = history_limit
        self._tasks: dict[str, _Task] = {}
        # What de-dup needs of removed tasks (watermark, last file change): a
        # task removed and defined again under the same name gets the same
        # occurrence ids and must not run a settled one twice.
        # O(distinct names), not O(history).
        self._retired: dict[str, tuple[datetime | None, str | None, str | None]] = {}

    # -- equality and copies -------------------------------------------------

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, State):
            return NotImplemented
        return (
            self.seq == other.seq
            and self._tasks == other._tasks
            and self._retired == other._retired
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<State seq={self.seq} tasks={sorted(self._tasks)}>"

    def copy(self) -> State:
        """An independent copy (settled runs are shared: they never change)."""
        twin = State(history_limit=self._history_limit)
        twin.seq = self.seq
        twin._tasks = {name: task.copy() for name, task in self._tasks.items()}
        twin._retired = dict(self._retired)
        return twin

    # -- questions -----------------------------------------------------------

    def task_names(self) -> list[str]:
        """Names of the tasks that exist (defined and not removed), sorted."""
        return sorted(self._tasks)

    def __contains__(self, name: object) -> bool:
        return name in self._tasks

    def definition(self, name: str) -> TaskDefined:
        """The ``TaskDefined`` record currently in force for ``name``."""
        return self._task(name).definition

    def status(self, name: str) -> TaskStatus:
        """Where task ``name`` stands. Raises ``UnknownTask`` for a name not defined."""
        task = self._task(name)
        definition = task.definition
        running = tuple(
            occurrence.occurrence
            for occurrence in task.open.values()
            if occurrence.outcome is Outcome.RUNNING
        )
        return TaskStatus(
            name=name,
            trigger=definition.trigger,
            target=definition.target,
            policy=definition.policy,
            version=definition.version,
            paused=task.paused,
            note=task.note,
            next_run=_next_run(task),
            last_run=task.last_run,
            last_result=task.last_result,
            last_error=task.last_error,
            last_duration=task.last_duration,
            run_count=task.run_count,
            error_count=task.error_count,
            skip_count=task.skip_count,
            running=running,
        )

    def tasks(self) -> list[TaskStatus]:
        """The status of every task, sorted by name."""
        return [self.status(name) for name in sorted(self._tasks)]

    def history(self, name: str, *, limit: int | None = None) -> list[Run]:
        """Runs of ``name``, newest first: open ones, then the settled window."""
        task = self._task(name)
        open_runs = sorted(task.open.values(), key=lambda o: o.seq, reverse=True)
        runs = [o.view(name) for o in open_runs]
        runs.extend(o.view(name) for o in reversed(task.history))
        return runs if limit is None else runs[: max(limit, 0)]

    def open_occurrences(self, name: str) -> list[Run]:
        """Occurrences of ``name`` that are scheduled, running or waiting to retry."""
        task = self._task(name)
        return [o.view(name) for o in sorted(task.open.values(), key=lambda o: o.seq)]

    def watermark(self, name: str) -> datetime | None:
        """The latest due time of a settled time-based occurrence of ``name``."""
        return self._task(name).watermark

    def last_file_change(self, name: str) -> tuple[str | None, str | None]:
        """(occurrence id, content hash) of the last file change recorded for ``name``."""
        task = self._task(name)
        return task.last_change, task.last_content_hash

    def occurrence_state(
        self, name: str, occurrence: str, due: datetime | None = None
    ) -> OccurrenceState:
        """Where ``occurrence`` stands. Pass ``due`` for time-based ids.

        A time-based occurrence that is not open and is due at or before the
        watermark is settled; manual and file-change ids that are not open
        are new (their ids are never reused).
        """
        task = self._task(name)
        open_occurrence = task.open.get(occurrence)
        if open_occurrence is not None:
            return _OPEN_STATES[open_occurrence.outcome]
        if task.is_settled(occurrence, due):
            return OccurrenceState.SETTLED
        return OccurrenceState.NEW

    def may_schedule(self, name: str, occurrence: str, due: datetime | None = None) -> bool:
        """True when ``occurrence`` is new: neither open nor settled."""
        return self.occurrence_state(name, occurrence, due) is OccurrenceState.NEW

    def may_start(self, name: str, occurrence: str, attempt: int) -> bool:
        """True when ``attempt`` of ``occurrence`` may start now (its claim is free).

        An occurrence must be scheduled before it starts. Attempt 1 may
        start when it is scheduled; attempt n > 1 only when attempt n-1
        failed with a retry planned. Nothing starts while a run of the same
        occurrence is running, or once it has settled.
        """
        task = self._tasks.get(name)
        open_occurrence = None if task is None else task.open.get(occurrence)
        return open_occurrence is not None and _claim_is_free(open_occurrence, attempt)

    def open_occurrence_count(self) -> int:
        """How many occurrences are open across all tasks (de-dup memory, besides tasks)."""
        return sum(len(task.open) for task in self._tasks.values())

    def _task(self, name: str) -> _Task:
        try:
            return self._tasks[name]
        except KeyError:
            hint = closest_match(name, self._tasks)
            suggestion = f"; did you mean {hint!r}?" if hint else ""
            known = ", ".join(sorted(self._tasks)[:10]) or "none"
            raise UnknownTask(f"no task named {name!r}{suggestion} (tasks: {known})") from None

    # -- the fold ------------------------------------------------------------

    def _fold(self, record: Event) -> None:
        """Apply one record in place. Unknown or out-of-place records change nothing
        but ``seq``: the fold is total, and the invariant checker reports them."""
        self.seq = record.seq
        _HANDLERS[type(record)](self, record)

    def _on_defined(self, record: TaskDefined) -> None:
        task = self._tasks.get(record.task)
        if task is None:
            task = self._tasks[record.task] = _Task(record, self._history_limit)
            retired = self._retired.pop(record.task, None)
            if retired is not None:
                task.watermark, task.last_change, task.last_content_hash = retired
        else:
            task.definition = record

    def _on_removed(self, record: TaskRemoved) -> None:
        task = self._tasks.pop(record.task, None)
        if task is not None:
            self._retired[record.task] = (
                task.watermark,
                task.last_change,
                task.last_content_hash,
            )

    def _on_paused(self, record: TaskPaused) -> None:
        task = self._tasks.get(record.task)
        if task is not None:
            task.paused = True
            task.note = record.note

    def _on_resumed(self, record: TaskResumed) -> None:
        task = self._tasks.get(record.task)
        if task is not None:
            task.paused = False
            task.note = record.note

    def _on_scheduled(self, record: Scheduled) -> None:
        task = self._tasks.get(record.task)
        if task is None:
            return
        occurrence_id = record.occurrence
        open_occurrences = task.open
        if occurrence_id in open_occurrences:
            return  # Duplicate Scheduled records are harmless (several nodes).
        due = record.due
        watermark = task.watermark
        if (
            watermark is not None
            and due <= watermark
            and occurrence_id.startswith(task.time_prefix)
        ):
            return  # Already settled.
        open_occurrences[occurrence_id] = _Occurrence(occurrence_id, due, record.seq)
        if record.content_hash is not None:
            task.last_change = occurrence_id
            task.last_content_hash = record.content_hash

    def _on_started(self, record: Started) -> None:
        task = self._tasks.get(record.task)
        if task is None:
            return
        occurrence = task.open.get(record.occurrence)
        if occurrence is None:
            # Started without Scheduled breaks a rule, but the run did happen:
            # record it so that history shows it and it is never started again.
            occurrence = _Occurrence(record.occurrence, None, record.seq)
            task.open[record.occurrence] = occurrence
        elif not (
            record.attempt == 1
            if occurrence.outcome is _SCHEDULED
            else _claim_is_free(occurrence, record.attempt)
        ):
            return  # A conflicting claim: the first claim wins.
        occurrence.outcome = _RUNNING
        occurrence.attempt = record.attempt
        occurrence.node = record.node
        occurrence.seq = record.seq
        if occurrence.started is None:
            occurrence.started = record.at
        else:
            occurrence.retry_at = None
        task.run_count += 1
        task.last_run = record.at

    def _on_completed(self, record: Completed) -> None:
        task = self._tasks.get(record.task)
        if task is None:
            return
        occurrence = task.open.get(record.occurrence)
        if (
            occurrence is None
            or occurrence.outcome is not _RUNNING
            or occurrence.attempt != record.attempt
        ):
            return
        occurrence.duration = task.last_duration = record.duration
        occurrence.result = task.last_result = record.result
        if occurrence.error is not None:
            occurrence.error = None
        task.last_error = None
        task.settle(occurrence, _COMPLETED, record.at, record.seq)

    def _on_failed(self, record: Failed) -> None:
        task = self._tasks.get(record.task)
        if task is None:
            return
        occurrence = task.open.get(record.occurrence)
        if (
            occurrence is None
            or occurrence.outcome is not _RUNNING
            or occurrence.attempt != record.attempt
        ):
            return
        occurrence.duration = task.last_duration = record.duration
        occurrence.error = task.last_error = record.error
        task.last_result = None
        task.error_count += 1
        if record.retry_at is not None:
            occurrence.outcome = _RETRY_PENDING
            occurrence.retry_at = record.retry_at
            occurrence.seq = record.seq
        else:
            task.settle(occurrence, _FAILED, record.at, record.seq)

    def _on_skipped(self, record: Skipped) -> None:
        task = self._tasks.get(record.task)
        if task is None:
            return
        occurrence = task.open.get(record.occurrence)
        if occurrence is None:
            # Skipping an occurrence that was never scheduled (missed while down).
            if task.is_settled(record.occurrence, record.due):
                return
            occurrence = _Occurrence(record.occurrence, record.due, record.seq)
        elif occurrence.outcome is _RUNNING:
            return  # A running occurrence cannot be skipped; the checker says so.
        occurrence.skip_reason = record.reason
        task.skip_count += 1
        task.settle(occurrence, _SKIPPED, record.at, record.seq)


def _claim_is_free(occurrence: _Occurrence, attempt: int) -> bool:
    if occurrence.outcome is _SCHEDULED:
        return attempt == 1
    if occurrence.outcome is _RETRY_PENDING:
        return attempt == occurrence.attempt + 1
    return False


def _next_run(task: _Task) -> datetime | None:
    candidates = [
        occurrence.retry_at if occurrence.outcome is Outcome.RETRY_PENDING else occurrence.due
        for occurrence in task.open.values()
        if occurrence.outcome is not Outcome.RUNNING
    ]
    present = [when for when in candidates if when is not None]
    return min(present) if present else None


_HANDLERS: Final[dict[type, Callable[[State, Any], None]]] = {
    TaskDefined: State._on_defined,
    TaskRemoved: State._on_removed,
    TaskPaused: State._on_paused,
    TaskResumed: State._on_resumed,
    Scheduled: State._on_scheduled,
    Started: State._on_started,
    Completed: State._on_completed,
    Failed: State._on_failed,
    Skipped: State._on_skipped,
}


def apply(state: State, record: Event) -> State:
    """One step of the fold: a new State with ``record`` applied (``state`` is untouched)."""
    after = state.copy()
    after._fold(record)
    return after


def replay(records: Iterable[Event], *, history_limit: int = DEFAULT_HISTORY_LIMIT) -> State:
    """Fold a whole log into a fresh State (the same fold the live scheduler uses)."""
    state = State(history_limit=history_limit)
    # The loop body is _fold inlined: replay is the hot path of every restart.
    handlers = _HANDLERS
    record = None
    for record in records:
        handlers[type(record)](state, record)
    if record is not None:
        state.seq = record.seq
    return state
