"""The projection: what the log says the world looks like, as a pure fold.

``replay(records)`` folds a log into a :class:`State`; ``apply(state, record)``
is one step of that fold. The live scheduler holds a ``State`` built by the
very same step, so "live state == replay(log)" holds by construction.

Purity here means: deterministic, no I/O, no clock reads. For speed the fold
updates a state object that it owns in place (replay creates its own) and
hands out immutable views (:class:`TaskStatus`, :class:`Run`). The public
``apply`` copies first, so it never changes the state passed in.

One module, longer than most: the fold, the memory it keeps and the
questions asked of it (`State`) share the private per-task records
(`_Task`), which stay private to it; the immutable views it hands out live
in `chronolog._views`.

De-duplication memory is O(tasks + open occurrences), not O(history): per task
the projection keeps a *watermark* (the latest due time of a settled
time-based occurrence) and the occurrences that are still open (scheduled,
running or waiting for a retry). A time-based occurrence at or below the
watermark that is not open is settled, whatever its id. Manual and
file-change occurrence ids are unique by construction, so once settled they
can be forgotten. Run history is a bounded window of recent runs per task.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from ._errors import UnknownTask, closest_match
from ._events import (
    Completed,
    Event,
    Failed,
    Scheduled,
    Skipped,
    Started,
    TaskDefined,
    TaskPaused,
    TaskRemoved,
    TaskResumed,
)
from ._ids import time_occurrence
from ._triggers import At, Cron, Every
from ._views import (
    OPEN_STATES,
    OccurrenceRecords,
    OccurrenceState,
    OpenEntry,
    Outcome,
    Planned,
    Run,
    SettledRecords,
    TaskStatus,
    brief,
    open_outcome,
    run_view,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Container, Iterable, Iterator, Mapping, Sequence


__all__ = [
    "DEFAULT_HISTORY_LIMIT",
    "OccurrenceState",
    "OpenEntry",
    "Outcome",
    "Planned",
    "Run",
    "State",
    "TaskStatus",
    "apply",
    "replay",
]

DEFAULT_HISTORY_LIMIT: Final = 100

_TIME_SEPARATOR: Final = "@"
_TIME_TRIGGERS: Final = (Cron, Every, At)
#: A resume counts due times from just before its instant: one due at the very
#: instant of the resume is at or after it, so it runs.
_JUST_BEFORE: Final = timedelta(microseconds=1)


class TaskMemory(NamedTuple):
    """What the fold keeps of one task: the records themselves, and counts.

    Read with `State.memory`, turned back into a State with
    `State.from_memory` (snapshots do both). ``open`` maps each open
    occurrence to its records ``(scheduled, first_start, last)``: the
    ``Scheduled`` record (None if it started or was skipped without one), the
    ``Started`` of attempt 1 (None until then) and the latest record that
    changed it. ``history`` holds the settled window, oldest first, as
    ``(occurrence, its records while open or None, the settling record)``.
    """

    definition: TaskDefined
    origin: datetime
    paused: bool
    note: str
    watermark: datetime | None
    ahead: Mapping[str, datetime]
    """Occurrences skipped before they were due, by id, with their due times."""
    open: Mapping[str, OccurrenceRecords]
    history: Sequence[SettledRecords]
    run_count: int
    error_count: int
    skip_count: int
    last_start: Started | None
    last_finish: Completed | Failed | None
    last_change: str | None
    last_content_hash: str | None


class RetiredMemory(NamedTuple):
    """What the fold keeps of a removed task: what de-duplication needs if the
    name is defined again."""

    task: str
    watermark: datetime | None
    ahead: Mapping[str, datetime]
    last_change: str | None
    last_content_hash: str | None


class StateMemory(NamedTuple):
    """Everything a State knows, as plain values (see `TaskMemory`)."""

    seq: int
    history_limit: int
    tasks: list[TaskMemory]
    retired: list[RetiredMemory]


#: The `_Task.ahead` of every task that has none: never written to.
_NO_AHEAD: Final[dict[str, datetime]] = {}


class _Task:
    """Mutable bookkeeping for one task (owned by exactly one State)."""

    __slots__ = (
        "ahead",
        "definition",
        "error_count",
        "history",
        "history_limit",
        "last_change",
        "last_content_hash",
        "last_finish",
        "last_start",
        "note",
        "open",
        "origin",
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
        # Due times count from here: the definition in force, or the resume.
        self.origin = definition.at
        self.watermark: datetime | None = None
        # Occurrences skipped before they were due (pause, redefinition,
        # removal), by id: they must not raise the watermark -- earlier due
        # times of a new trigger may still run -- yet never run themselves.
        # Dropped once the watermark passes them, so this stays small.
        # Shared and empty until the first skip ahead (`settle` makes its own):
        # most tasks never have one, and an empty dict per task is memory.
        self.ahead: dict[str, datetime] = _NO_AHEAD
        self.open: dict[str, OccurrenceRecords] = {}
        # The settled window, oldest first; made on the first settlement, so
        # a task that never ran (most of a large idle schedule) holds none.
        self.history: list[SettledRecords] | None = None
        self.history_limit = history_limit
        self.run_count = 0
        self.error_count = 0
        self.skip_count = 0
        # The records themselves, not fields copied out of them: the fold
        # sets one attribute per record, and status() reads them out.
        self.last_start: Started | None = None
        self.last_finish: Completed | Failed | None = None
        self.last_change: str | None = None
        self.last_content_hash: str | None = None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, _Task):
            return NotImplemented
        return (self.history or []) == (other.history or []) and all(
            getattr(self, name) == getattr(other, name) for name in _COMPARED_SLOTS
        )

    __hash__ = None  # type: ignore[assignment]

    def copy(self) -> _Task:
        twin = _Task.__new__(_Task)
        for name in self.__slots__:
            setattr(twin, name, getattr(self, name))
        twin.open = dict(self.open)
        twin.ahead = dict(self.ahead) if self.ahead else _NO_AHEAD
        twin.history = None if self.history is None else list(self.history)
        return twin

    def remember(self, settled: SettledRecords) -> None:
        """Add a settled occurrence to the history window, dropping the oldest past the limit."""
        history = self.history
        if history is None:
            history = self.history = []
        history.append(settled)
        if len(history) > self.history_limit:
            del history[0]

    def settle(
        self, occurrence: str, entry: OccurrenceRecords | None, final: Event, due: datetime | None
    ) -> None:
        """Move ``occurrence`` from open to the history window; raise the watermark.

        ``_on_completed`` inlines this for speed; keep the two in step.
        """
        if entry is not None:
            del self.open[occurrence]
        self.remember((occurrence, entry, final))
        if due is not None and occurrence.startswith(self.time_prefix):
            if type(final) is Skipped and final.at < due:
                if self.ahead is _NO_AHEAD:
                    self.ahead = {}
                self.ahead[occurrence] = due
            else:
                self.raise_watermark(due)

    def raise_watermark(self, due: datetime) -> None:
        watermark = self.watermark
        if watermark is None or due > watermark:
            self.watermark = due
            if self.ahead:
                self.ahead = {key: when for key, when in self.ahead.items() if when > due}

    def is_settled(self, occurrence: str, due: datetime | None) -> bool:
        """Not open, and skipped ahead of time or at or below the watermark
        (time-based ids only)."""
        if occurrence in self.open:
            return False
        if occurrence in self.ahead:
            return True
        watermark = self.watermark
        return (
            due is not None
            and watermark is not None
            and due <= watermark
            and occurrence.startswith(self.time_prefix)
        )


#: What makes two task records equal: the window's limit is a setting, not content.
_COMPARED_SLOTS: Final = tuple(
    name for name in _Task.__slots__ if name not in ("history", "history_limit")
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
        self._retired: dict[
            str, tuple[datetime | None, dict[str, datetime], str | None, str | None]
        ] = {}

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

    @property
    def history_limit(self) -> int:
        """How many settled runs the state keeps per task."""
        return self._history_limit

    def memory(self) -> StateMemory:
        """What this state knows, as plain values: for snapshots and the checker.

        The mappings are read-only views of the state's own: use them before
        the state folds another record.
        """
        tasks = [
            TaskMemory(
                definition=task.definition,
                origin=task.origin,
                paused=task.paused,
                note=task.note,
                watermark=task.watermark,
                ahead=MappingProxyType(task.ahead),
                open=MappingProxyType(task.open),
                history=tuple(task.history or ()),
                run_count=task.run_count,
                error_count=task.error_count,
                skip_count=task.skip_count,
                last_start=task.last_start,
                last_finish=task.last_finish,
                last_change=task.last_change,
                last_content_hash=task.last_content_hash,
            )
            for task in self._tasks.values()
        ]
        retired = [
            RetiredMemory(name, watermark, MappingProxyType(ahead), last_change, last_hash)
            for name, (watermark, ahead, last_change, last_hash) in self._retired.items()
        ]
        return StateMemory(self.seq, self._history_limit, tasks, retired)

    @classmethod
    def from_memory(cls, memory: StateMemory, *, history_limit: int | None = None) -> State:
        """The State that `memory` describes (``history_limit`` may cut its window).

        Raises ``ValueError`` when ``memory`` names a task twice.
        """
        limit = memory.history_limit if history_limit is None else history_limit
        state = cls(history_limit=limit)
        state.seq = memory.seq
        for kept in memory.tasks:
            name = kept.definition.task
            if name in state._tasks:
                raise ValueError(f"task {name!r} twice")
            task = _Task(kept.definition, limit)
            task.origin = kept.origin
            task.paused = kept.paused
            task.note = kept.note
            task.watermark = kept.watermark
            task.ahead = dict(kept.ahead) if kept.ahead else _NO_AHEAD
            task.open = dict(kept.open)
            for settled in kept.history[-limit:]:
                task.remember(settled)
            task.run_count = kept.run_count
            task.error_count = kept.error_count
            task.skip_count = kept.skip_count
            task.last_start = kept.last_start
            task.last_finish = kept.last_finish
            task.last_change = kept.last_change
            task.last_content_hash = kept.last_content_hash
            state._tasks[name] = task
        for retired in memory.retired:
            state._retired[retired.task] = (
                retired.watermark,
                dict(retired.ahead),
                retired.last_change,
                retired.last_content_hash,
            )
        return state

    def copy(self) -> State:
        """An independent copy (settled runs are shared: they never change)."""
        twin = State(history_limit=self._history_limit)
        twin.seq = self.seq
        twin._tasks = {name: task.copy() for name, task in self._tasks.items()}
        # The `ahead` dicts of retired tasks are handed to a task defined again
        # under the same name, which adds to them: each copy gets its own.
        twin._retired = {
            name: (watermark, dict(ahead), last_change, last_hash)
            for name, (watermark, ahead, last_change, last_hash) in self._retired.items()
        }
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
        last_start, last_finish = task.last_start, task.last_finish
        running = tuple(
            occurrence for occurrence, entry in task.open.items() if type(entry[2]) is Started
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
            last_run=last_start.at if last_start is not None else None,
            last_result=last_finish.result if isinstance(last_finish, Completed) else None,
            last_error=last_finish.error if isinstance(last_finish, Failed) else None,
            last_duration=last_finish.duration if last_finish is not None else None,
            run_count=task.run_count,
            error_count=task.error_count,
            skip_count=task.skip_count,
            running=running,
            finished=not task.open and self._exhausted(task),
        )

    def tasks(self) -> list[TaskStatus]:
        """The status of every task, sorted by name."""
        return [self.status(name) for name in sorted(self._tasks)]

    def history(self, name: str, *, limit: int | None = None) -> list[Run]:
        """Runs of ``name``, newest first: open ones, then the settled window."""
        task = self._task(name)
        runs = self.open_occurrences(name)
        runs.reverse()
        runs.extend(
            run_view(name, occurrence, entry, final)
            for occurrence, entry, final in reversed(task.history or ())
        )
        return runs if limit is None else runs[: max(limit, 0)]

    def open_occurrences(self, name: str) -> list[Run]:
        """Occurrences of ``name`` that are scheduled, running or waiting to retry."""
        task = self._task(name)
        runs = [run_view(name, occurrence, entry, None) for occurrence, entry in task.open.items()]
        return sorted(runs, key=lambda run: run.seq)

    def open_entries(self, name: str) -> list[OpenEntry]:
        """`open_occurrences` in brief, in no particular order: what a scheduler's
        actors ask on every step (cheaper than full `Run` views)."""
        return [brief(occurrence, entry) for occurrence, entry in self._task(name).open.items()]

    def has_open(self, name: str) -> bool:
        """Whether ``name`` has an occurrence scheduled, running or waiting for a retry."""
        return bool(self._task(name).open)

    def is_open(self, name: str, occurrence: str) -> bool:
        """Whether ``occurrence`` is scheduled, running or waiting for a retry."""
        task = self._tasks.get(name)
        return task is not None and occurrence in task.open

    def is_paused(self, name: str) -> bool:
        """Whether ``name`` is paused (cheaper than ``status(name).paused``)."""
        return self._task(name).paused

    def run_count(self, name: str) -> int:
        """Runs of ``name`` started (cheaper than ``status(name).run_count``)."""
        return self._task(name).run_count

    def watermark(self, name: str) -> datetime | None:
        """The latest due time of a settled time-based occurrence of ``name``."""
        return self._task(name).watermark

    def skipped_ahead(self, name: str) -> list[datetime]:
        """Due times of ``name`` above its watermark that are settled anyway:
        skipped before they were due (pause, redefinition, removal). Few."""
        return list(self._task(name).ahead.values())

    def origin(self, name: str) -> datetime:
        """Due times of ``name``'s trigger strictly after this instant are to come:
        when the definition in force was recorded, or just before the last
        resume (a due time at the very instant of a resume runs; the paused
        period is never caught up)."""
        return self._task(name).origin

    def next_occurrence(
        self,
        name: str,
        *,
        exclude: Container[str] = (),
        next_after: Callable[[datetime], datetime | None] | None = None,
    ) -> Planned | None:
        """The next occurrence of ``name``'s time trigger to fire, or None.

        That is the earliest of: its scheduled occurrences (those the trigger
        in force still produces are kept across a redefinition), and the first
        due time of the trigger that is neither open nor settled, counted
        from the task's cursor -- after its origin (definition or resume) and
        after its watermark, so nothing settled is planned again and a pause
        is not caught up. An ``At`` counts its instant even when it was past
        when the task was defined: a one-off is never dropped unrecorded (the
        catch-up policy decides whether it runs). None for triggers that are
        not time-based, and once ``max_runs`` runs have started (only
        scheduled occurrences remain then).

        ``exclude``: occurrence ids to leave out as if running (being claimed).
        ``next_after``: the trigger's ``next_after``, e.g. a memoised one.
        Pure: this only reads the state.
        """
        task = self._task(name)
        definition = task.definition
        trigger = definition.trigger
        if not isinstance(trigger, _TIME_TRIGGERS):
            return None
        prefix = task.time_prefix
        earliest: Planned | None = None
        # Occurrences scheduled under the definition in force were planned one
        # after another from the cursor: every due time up to the latest of
        # them is open or settled, so the walk below can start after it. Not
        # those planned before the cursor last moved back (a resume counts
        # from just before its instant): a due time at the very instant of
        # the resume would be stepped over. Planned at that instant is taken
        # as planned before it; the walk then costs a step or two more.
        trusted_after = task.origin + _JUST_BEFORE
        trusted_latest: datetime | None = None
        for occurrence, (scheduled, _, last) in task.open.items():
            if scheduled is None or not occurrence.startswith(prefix):
                continue
            planned_due = scheduled.due
            if (
                scheduled.seq > definition.seq
                and scheduled.at > trusted_after
                and (trusted_latest is None or planned_due > trusted_latest)
            ):
                trusted_latest = planned_due
            if (
                type(last) is Scheduled
                and occurrence not in exclude
                and (earliest is None or planned_due < earliest.due)
            ):
                earliest = Planned(occurrence, planned_due, True, scheduled.at)
        max_runs = definition.policy.max_runs
        if max_runs is not None and task.run_count >= max_runs:
            return earliest
        step = trigger.next_after if next_after is None else next_after
        if isinstance(trigger, At):
            due: datetime | None = trigger.when
        else:
            cursor = task.origin
            for bound in (task.watermark, trusted_latest):
                if bound is not None and bound > cursor:
                    cursor = bound
            due = step(cursor)
        # Bounded: every due time stepped over is open or settled ahead of the
        # watermark, and there are few of those.
        while due is not None and (earliest is None or due < earliest.due):
            occurrence = time_occurrence(name, due)
            if occurrence not in task.open and not task.is_settled(occurrence, due):
                return Planned(occurrence, due, False, None)
            due = step(due)
        return earliest

    def _exhausted(self, task: _Task) -> bool:
        """No due time of a time trigger is left for ``task`` (see `TaskStatus.finished`)."""
        if not isinstance(task.definition.trigger, _TIME_TRIGGERS):
            return False
        return self.next_occurrence(task.definition.task) is None

    def isolate(self, *names: str) -> State:
        """A new State holding only what this one knows of the tasks ``names`` (copied).

        Fold into it the records that concern only those tasks and ask it
        questions about them, without copying every other task: commands plan
        with it, the log writer checks a batch with it.
        """
        twin = State(history_limit=self._history_limit)
        twin.seq = self.seq
        for name in names:
            twin.adopt(self, name)
        return twin

    def adopt(self, other: State, name: str) -> None:
        """Take a copy of what ``other`` knows of task ``name`` (see `isolate`)."""
        task = other._tasks.get(name)
        if task is not None:
            self._tasks[name] = task.copy()
        retired = other._retired.get(name)
        if retired is not None:
            watermark, ahead, last_change, last_hash = retired
            self._retired[name] = (watermark, dict(ahead), last_change, last_hash)

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
        entry = task.open.get(occurrence)
        if entry is not None:
            return OPEN_STATES[open_outcome(entry[2])]
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
        entry = None if task is None else task.open.get(occurrence)
        return entry is not None and _claim_is_free(entry[2], attempt)

    def open_due(self, name: str, occurrence: str) -> datetime | None:
        """When open ``occurrence`` is due (None if it is not open, or has no due time)."""
        task = self._tasks.get(name)
        entry = None if task is None else task.open.get(occurrence)
        if entry is None or entry[0] is None:
            return None
        return entry[0].due

    def attempt_started(self, name: str, occurrence: str) -> datetime | None:
        """When the running attempt of ``occurrence`` started (None if none runs)."""
        task = self._tasks.get(name)
        entry = None if task is None else task.open.get(occurrence)
        if entry is None or type(entry[2]) is not Started:
            return None
        return entry[2].at

    def may_settle(self, name: str, occurrence: str, attempt: int) -> bool:
        """True when ``attempt`` of ``occurrence`` is running, so its outcome may be recorded.

        An attempt ends once: a second ``Completed`` or ``Failed`` for it (or
        one for an attempt that never started) settles nothing.
        """
        task = self._tasks.get(name)
        entry = None if task is None else task.open.get(occurrence)
        if entry is None:
            return False
        last = entry[2]
        return type(last) is Started and last.attempt == attempt

    def open_occurrence_count(self) -> int:
        """How many occurrences are open across all tasks (de-dup memory, besides tasks)."""
        return sum(len(task.open) for task in self._tasks.values())

    def running_attempts(self) -> list[Started]:
        """The ``Started`` record of every attempt running now, across all tasks.

        On a log several schedulers share, its ``node`` says which process
        runs it (their leases say whether that process is alive).
        """
        return [
            last
            for task in self._tasks.values()
            for _, _, last in task.open.values()
            if type(last) is Started
        ]

    def _task(self, name: str) -> _Task:
        try:
            return self._tasks[name]
        except KeyError:
            hint = closest_match(name, self._tasks)
            suggestion = f"; did you mean {hint!r}?" if hint else ""
            known = ", ".join(sorted(self._tasks)[:10]) or "none"
            raise UnknownTask(f"no task named {name!r}{suggestion} (tasks: {known})") from None

    # -- the fold ------------------------------------------------------------

    def fold_until_doubtful(self, records: Iterator[Event]) -> Event | None:
        """Fold records in place until one shows the sign of a broken rule, and
        return it (folded); None once ``records`` run out.

        The sign: a record the fold did not take (a ``Completed`` or ``Failed``
        that did not become its task's last outcome, a ``Started`` that did not
        become its last start, a ``Skipped`` that settled nothing), or took on a
        doubtful footing (a start of an occurrence that was not open, a start
        of a scheduled time while the task was paused, a skip of an occurrence
        that settled already, a record for a task that does not exist, a
        version that does not increase). A writer's strict open folds with it
        and asks the invariant checker only then (`chronolog._strict`): one
        dictionary lookup and one identity test per record beyond the fold.
        """
        handlers = _HANDLERS
        tasks = self._tasks
        record = None
        try:
            for record in records:
                kind = type(record)
                if kind is Completed:
                    handlers[kind](self, record)
                    if tasks[record.task].last_finish is not record:
                        break
                elif kind is Scheduled:
                    handlers[kind](self, record)
                    if record.task not in tasks:
                        break
                elif kind is Started:
                    task = tasks[record.task]
                    occurrence = record.occurrence  # type: ignore[union-attr]
                    was_open = occurrence in task.open
                    handlers[kind](self, record)
                    if not was_open or task.last_start is not record:
                        break
                    if (
                        task.paused
                        and record.attempt == 1
                        and occurrence.startswith(task.time_prefix)
                    ):
                        break
                elif kind is Failed:
                    handlers[kind](self, record)
                    if tasks[record.task].last_finish is not record:
                        break
                elif not self._fold_rare_kind(record):
                    break
            else:
                if record is not None:
                    self.seq = record.seq
                return None
        except KeyError:
            # A record of a task that does not exist (a Completed or Failed is
            # folded by then, and changed nothing; a Started is not folded yet).
            assert record is not None
            if type(record) is Started:
                handlers[Started](self, record)
        assert record is not None
        self.seq = record.seq
        return record

    def _fold_rare_kind(self, record: Event) -> bool:
        """Fold a record of the rarer kinds; False if it shows the sign of a broken rule."""
        task = self._tasks.get(record.task)
        handler = _HANDLERS[type(record)]
        if isinstance(record, TaskDefined):
            doubtful = task is not None and record.version <= task.definition.version
            handler(self, record)
            return not doubtful
        if task is None:
            handler(self, record)
            return False
        if not isinstance(record, Skipped):
            handler(self, record)  # TaskRemoved, TaskPaused, TaskResumed
            return True
        occurrence = record.occurrence
        was_open = occurrence in task.open
        handler(self, record)
        history = task.history
        if not history or history[-1][2] is not record:
            return False  # it settled nothing: the occurrence was running, or settled
        if record.last_due is not None and not _range_is_whole(record, history[-1][1]):
            return False  # a range of missed due times that cannot be (hand-edited)
        if was_open:
            return True
        # A skip of an occurrence that was never scheduled (missed while down):
        # it must not have settled before. Rare, so the window may be searched.
        return all(settled[0] != occurrence for settled in history[:-1])

    def fold(self, record: Event) -> None:
        """Fold one record into this state, in place (`apply` is the copying form).

        For a state you own: one from `replay`, `isolate` or `copy`. A live
        scheduler's state is folded by its log writer alone, right after the
        record is written. Records that break a rule change nothing but
        ``seq``: the fold is total, and the invariant checker reports them.
        """
        self.seq = record.seq
        _HANDLERS[type(record)](self, record)

    def _on_defined(self, record: TaskDefined) -> None:
        task = self._tasks.get(record.task)
        if task is None:
            task = self._tasks[record.task] = _Task(record, self._history_limit)
            retired = self._retired.pop(record.task, None)
            if retired is not None:
                task.watermark, task.ahead, task.last_change, task.last_content_hash = retired
        else:
            task.definition = record
            task.origin = record.at

    def _on_removed(self, record: TaskRemoved) -> None:
        task = self._tasks.pop(record.task, None)
        if task is not None:
            self._retired[record.task] = (
                task.watermark,
                task.ahead,
                task.last_change,
                task.last_content_hash,
            )

    def _on_pause_changed(self, record: TaskPaused | TaskResumed) -> None:
        task = self._tasks.get(record.task)
        if task is not None:
            task.paused = type(record) is TaskPaused
            task.note = record.note
            if not task.paused:
                task.origin = record.at - _JUST_BEFORE

    # The handlers below are the hot path of every replay: they look tasks up
    # with try/except (cheaper than .get when the task exists, which is
    # nearly always) and set as few attributes as they can.

    def _on_scheduled(self, record: Scheduled) -> None:
        try:
            task = self._tasks[record.task]
        except KeyError:
            return
        occurrence = record.occurrence
        open_entries = task.open
        if occurrence in open_entries:
            return  # Duplicate Scheduled records are harmless (several nodes).
        watermark = task.watermark
        if (
            watermark is not None
            and record.due <= watermark
            and occurrence.startswith(task.time_prefix)
        ) or (task.ahead and occurrence in task.ahead):
            return  # Already settled.
        open_entries[occurrence] = (record, None, record)
        if record.content_hash is not None:
            task.last_change = occurrence
            task.last_content_hash = record.content_hash

    def _on_started(self, record: Started) -> None:
        try:
            task = self._tasks[record.task]
        except KeyError:
            return
        open_entries = task.open
        occurrence = record.occurrence
        entry = open_entries.get(occurrence)
        if entry is None:
            # Started without Scheduled breaks a rule, but the run did happen:
            # record it so that history shows it and it is never started again.
            open_entries[occurrence] = (None, record, record)
            task.run_count += 1
        elif type(entry[2]) is Scheduled and record.attempt == 1:
            open_entries[occurrence] = (entry[0], record, record)
            task.run_count += 1
        elif _claim_is_free(entry[2], record.attempt):
            open_entries[occurrence] = (entry[0], entry[1], record)  # a retry
        else:
            return  # A conflicting claim: the first claim wins.
        task.last_start = record

    def _on_completed(self, record: Completed) -> None:
        try:
            task = self._tasks[record.task]
        except KeyError:
            return
        occurrence = record.occurrence
        open_entries = task.open
        entry = open_entries.get(occurrence)
        if entry is None:
            return
        last = entry[2]
        if type(last) is not Started or last.attempt != record.attempt:
            return
        task.last_finish = record
        # Task.settle, inlined: Completed is the most frequent record of all.
        del open_entries[occurrence]
        history = task.history
        if history is None:
            history = task.history = []
        history.append((occurrence, entry, record))
        if len(history) > task.history_limit:
            del history[0]
        scheduled = entry[0]
        if scheduled is not None:
            due = scheduled.due
            watermark = task.watermark
            if (watermark is None or due > watermark) and occurrence.startswith(task.time_prefix):
                task.raise_watermark(due)

    def _on_failed(self, record: Failed) -> None:
        try:
            task = self._tasks[record.task]
        except KeyError:
            return
        entry = task.open.get(record.occurrence)
        if entry is None:
            return
        last = entry[2]
        if type(last) is not Started or last.attempt != record.attempt:
            return
        task.error_count += 1
        task.last_finish = record
        if record.retry_at is not None:
            task.open[record.occurrence] = (entry[0], entry[1], record)
        else:
            scheduled = entry[0]
            task.settle(
                record.occurrence, entry, record, scheduled.due if scheduled is not None else None
            )

    def _on_skipped(self, record: Skipped) -> None:
        task = self._tasks.get(record.task)
        if task is None:
            return
        entry = task.open.get(record.occurrence)
        if entry is None:
            # Skipping an occurrence that was never scheduled (missed while down).
            if task.is_settled(record.occurrence, record.due):
                return
            due = record.due
        elif type(entry[2]) is Started:
            return  # A running occurrence cannot be skipped; the checker says so.
        else:
            scheduled = entry[0]
            due = scheduled.due if scheduled is not None else record.due
        last_due = record.last_due
        if last_due is None:
            task.skip_count += 1
            task.settle(record.occurrence, entry, record, due)
            return
        # A range of due times missed in one outage: its first occurrence
        # settles as a single skip would, and the watermark rises to its last
        # due time, which settles every due time in between that is not open
        # (`_Task.is_settled`). skip_count counts due times, not records.
        task.skip_count += max(record.count, 1)
        task.settle(record.occurrence, entry, record, due)
        # A range reaching past the instant it was written (which only a
        # hand-edited log holds) settles its first occurrence alone; the
        # invariant checker reports it.
        if (
            due is not None
            and record.count > 1
            and due < last_due <= record.at
            and record.occurrence.startswith(task.time_prefix)
        ):
            task.raise_watermark(last_due)


def _range_is_whole(record: Skipped, entry: OccurrenceRecords | None) -> bool:
    """Whether a ``Skipped`` range is one the fold settles whole: at least two due
    times, its last after its first and not after the record was written."""
    scheduled = entry[0] if entry is not None else None
    due = scheduled.due if scheduled is not None else record.due
    last_due = record.last_due
    if due is None or last_due is None:
        return False
    return record.count > 1 and due < last_due <= record.at


def _claim_is_free(last: Event, attempt: int) -> bool:
    """May ``attempt`` start, given the last record of its open occurrence?"""
    kind = type(last)
    if kind is Scheduled:
        return attempt == 1
    if kind is Failed:
        return attempt == last.attempt + 1  # type: ignore[union-attr]
    return False


def _next_run(task: _Task) -> datetime | None:
    candidates: list[datetime] = []
    for scheduled, _, last in task.open.values():
        if isinstance(last, Failed) and last.retry_at is not None:
            candidates.append(last.retry_at)
        elif type(last) is Scheduled and scheduled is not None:
            candidates.append(scheduled.due)
    return min(candidates) if candidates else None


_HANDLERS: Final[dict[type, Callable[[State, Any], None]]] = {
    TaskDefined: State._on_defined,
    TaskRemoved: State._on_removed,
    TaskPaused: State._on_pause_changed,
    TaskResumed: State._on_pause_changed,
    Scheduled: State._on_scheduled,
    Started: State._on_started,
    Completed: State._on_completed,
    Failed: State._on_failed,
    Skipped: State._on_skipped,
}


def apply(state: State, record: Event) -> State:
    """One step of the fold: a new State with ``record`` applied (``state`` is untouched)."""
    after = state.copy()
    after.fold(record)
    return after


def replay(
    records: Iterable[Event],
    *,
    start: State | None = None,
    history_limit: int = DEFAULT_HISTORY_LIMIT,
) -> State:
    """Fold records into a State: the same fold the live scheduler uses.

    From nothing, ``records`` is a whole log. From ``start`` -- a snapshot,
    such as `EventLog.base_state()` of a compacted log -- it is the records
    after it; ``start`` itself is left as it was (its copy is folded, and
    ``history_limit`` is its own).
    """
    if start is None:
        return fold_into(State(history_limit=history_limit), records)
    return fold_into(start.copy(), records)


def fold_into(state: State, records: Iterable[Event]) -> State:
    """Fold ``records`` into ``state`` in place and return it (`replay` copies first)."""
    # The same as `state.fold(record)` for each record, with seq set once at
    # the end: replay is the hot path of every restart.
    handlers = _HANDLERS
    record = None
    for record in records:
        handlers[type(record)](state, record)
    if record is not None:
        state.seq = record.seq
    return state
