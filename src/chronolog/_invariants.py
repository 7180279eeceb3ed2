"""The invariant checker: read a log, report every rule it breaks.

This is deliberately a second, independent fold rather than a reuse of the
projection: the projection is tolerant (it must fold any log), the checker is
strict (it must explain every oddity), and two implementations that agree are
better evidence than one that agrees with itself.

Memory stays bounded on huge logs: per task the checker keeps the open
occurrences, a watermark of settled due times, and a window of recently
settled occurrences (for exact "settled at seq N" messages). A duplicate of a
manual or file-change run older than that window is not detected.
"""

from __future__ import annotations

import enum
from collections import OrderedDict
from datetime import datetime
from typing import TYPE_CHECKING, Final

import attrs

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
from ._triggers import Every

if TYPE_CHECKING:
    from collections.abc import Iterable

    from ._projection import State
    from ._triggers import Trigger

__all__ = ["Checker", "Rule", "Violation", "check_invariants"]

#: How many settled occurrences per task the checker remembers exactly.
SETTLED_WINDOW: Final = 10_000
#: How many ranges of missed due times per task the checker remembers exactly.
RANGE_WINDOW: Final = 100
#: A range's count is checked against its trigger when stepping through this
#: many fires at most would do (an ``Every`` is counted arithmetically, always).
_COUNT_CHECK_LIMIT: Final = 100_000
#: How a settled outcome reads after "after it".
_PAST: Final = {"completed": "completed", "failed": "failed", "skipped": "was skipped"}


class Rule(enum.StrEnum):
    """The rules a log must keep; each violation names one."""

    SEQ_ORDER = "seq-order"
    UNKNOWN_TASK = "unknown-task"
    REMOVED_TASK = "removed-task"
    VERSION_ORDER = "version-order"
    NOT_SCHEDULED = "not-scheduled"
    STARTED_TWICE = "started-twice"
    STARTED_AFTER_SETTLED = "started-after-settled"
    STARTED_WHILE_RUNNING = "started-while-running"
    STARTED_WHILE_PAUSED = "started-while-paused"
    WRONG_ATTEMPT = "wrong-attempt"
    FINISHED_WITHOUT_START = "finished-without-start"
    SKIPPED_WHILE_RUNNING = "skipped-while-running"
    SKIPPED_AFTER_SETTLED = "skipped-after-settled"
    """An occurrence settled twice: a ``Skipped`` after it completed, failed for
    good or was skipped already. An occurrence is settled once."""
    BAD_RANGE = "bad-range"
    """A ``Skipped`` range of missed due times that cannot be: a ``count``
    below 2, a ``last_due`` not after its ``due`` (or no ``due``), a
    ``last_due`` after the record was written, or more due times than the
    trigger produces in it."""


@attrs.frozen
class Violation:
    """One broken rule: where (``seq``), what (``rule``), and a sentence saying so."""

    seq: int
    rule: Rule
    task: str
    occurrence: str | None
    message: str
    related: tuple[int, ...] = ()
    """Seqs of earlier records that the violation contradicts."""

    def __str__(self) -> str:
        return f"seq {self.seq}: {self.message} [{self.rule}]"


class _Open:
    __slots__ = ("attempt", "due", "running", "started_seqs")

    def __init__(self, due: datetime | None) -> None:
        self.due = due
        self.attempt = 0
        self.running = False
        self.started_seqs: dict[int, int] = {}


class _TaskRules:
    __slots__ = (
        "ahead",
        "defined_seq",
        "open",
        "paused",
        "ranges",
        "settled",
        "time_prefix",
        "trigger",
        "version",
        "watermark",
    )

    def __init__(self, name: str, version: int, defined_seq: int) -> None:
        self.time_prefix = name + "@"
        self.version = version
        self.defined_seq = defined_seq
        self.paused = False
        self.watermark: datetime | None = None
        # Skipped before they were due: settled, but they leave the watermark
        # alone (a redefined trigger may still run earlier due times).
        self.ahead: dict[str, datetime] = {}
        self.open: dict[str, _Open] = {}
        self.settled: OrderedDict[str, tuple[str, int]] = OrderedDict()
        # Recent ranges of missed due times: (first due, last due, seq), for
        # exact messages about a start inside one.
        self.ranges: list[tuple[datetime, datetime, int]] = []
        self.trigger: Trigger | None = None

    def range_holding(self, due: datetime | None) -> tuple[datetime, datetime, int] | None:
        """The remembered range of skipped due times that ``due`` lies in, if any."""
        if due is None:
            return None
        for first, last, seq in reversed(self.ranges):
            if first <= due <= last:
                return first, last, seq
        return None

    def due_of(self, occurrence: str) -> datetime | None:
        """The due time written into a time-based id, or None."""
        if not occurrence.startswith(self.time_prefix):
            return None
        try:
            return datetime.fromisoformat(occurrence[len(self.time_prefix) :])
        except ValueError:
            return None

    def settle(
        self,
        occurrence: str,
        entry: _Open | None,
        outcome: str,
        seq: int,
        *,
        early: bool = False,
    ) -> None:
        """Record ``occurrence`` as settled; ``early`` when skipped before its due time."""
        self.open.pop(occurrence, None)
        self.settled[occurrence] = (outcome, seq)
        if len(self.settled) > SETTLED_WINDOW:
            self.settled.popitem(last=False)
        due = entry.due if entry is not None else self.due_of(occurrence)
        if due is None or not occurrence.startswith(self.time_prefix):
            return
        if early:
            self.ahead[occurrence] = due
        elif self.watermark is None or due > self.watermark:
            self.watermark = due
            if self.ahead:
                self.ahead = {key: when for key, when in self.ahead.items() if when > due}

    def is_settled(self, occurrence: str, due: datetime | None = None) -> bool:
        """Settled within the window, or a time-based id due at or below the watermark.

        ``due`` is the record's due time, when it has one: the projection
        judges by it too, and it spares parsing the id.
        """
        if occurrence in self.settled or occurrence in self.ahead:
            return True
        if self.watermark is None or not occurrence.startswith(self.time_prefix):
            return False
        if due is None:
            due = self.due_of(occurrence)
        return due is not None and due <= self.watermark


class Checker:
    """The checker itself, one record at a time (`check_invariants` drives it).

    Its ``violations`` grow as `check` meets broken rules; `start_from`
    begins it where a base or a snapshot stands.
    """

    def __init__(self) -> None:
        self.violations: list[Violation] = []
        self.tasks: dict[str, _TaskRules] = {}
        # Removed tasks keep their settled window and watermark: a task defined
        # again under the same name gets the same occurrence ids.
        self.removed: dict[str, tuple[int, _TaskRules]] = {}
        self.last_seq = 0

    def report(
        self,
        record: Event,
        rule: Rule,
        message: str,
        occurrence: str | None = None,
        related: tuple[int, ...] = (),
    ) -> None:
        self.violations.append(
            Violation(
                seq=record.seq,
                rule=rule,
                task=record.task,
                occurrence=occurrence,
                message=message,
                related=related,
            )
        )

    def check(self, record: Event) -> None:
        if record.seq <= self.last_seq:
            self.report(
                record,
                Rule.SEQ_ORDER,
                f"seq {record.seq} follows seq {self.last_seq}; seqs must strictly increase",
                related=(self.last_seq,),
            )
        else:
            self.last_seq = record.seq
        if type(record) is TaskDefined:
            self.on_defined(record)
            return
        task = self.tasks.get(record.task)
        if task is None:
            kind = type(record).__name__
            removed = self.removed.get(record.task)
            if removed is not None:
                removed_at = removed[0]
                when = f"at seq {removed_at}" if removed_at else "before the log's base"
                self.report(
                    record,
                    Rule.REMOVED_TASK,
                    f"{kind} for task {record.task!r} after it was removed {when}",
                    related=(removed_at,) if removed_at else (),
                )
            else:
                self.report(
                    record,
                    Rule.UNKNOWN_TASK,
                    f"{kind} for task {record.task!r}, which was never defined",
                )
            return
        # Dispatch on the exact type (events are final classes, so this is
        # exact): one comparison per kind, where an isinstance chain would
        # walk each class's MRO for every record of a large log.
        if type(record) is Scheduled:
            self.on_scheduled(task, record)
        elif type(record) is Started:
            self.on_started(task, record)
        elif type(record) is Completed or type(record) is Failed:
            self.on_finished(task, record)
        elif type(record) is Skipped:
            self.on_skipped(task, record)
        elif type(record) is TaskRemoved:
            del self.tasks[record.task]
            task.open.clear()
            self.removed[record.task] = (record.seq, task)
        elif type(record) is TaskPaused:
            task.paused = True
        elif type(record) is TaskResumed:
            task.paused = False

    def on_defined(self, record: TaskDefined) -> None:
        task = self.tasks.get(record.task)
        if task is None:
            removed = self.removed.pop(record.task, None)
            if removed is None:
                task = _TaskRules(record.task, record.version, record.seq)
            else:
                task = removed[1]
                task.version, task.defined_seq = record.version, record.seq
            task.paused = record.policy.paused
            task.trigger = record.trigger
            self.tasks[record.task] = task
            return
        if record.version <= task.version:
            self.report(
                record,
                Rule.VERSION_ORDER,
                f"task {record.task!r} redefined as version {record.version}, "
                f"not above version {task.version} defined at seq {task.defined_seq}",
                related=(task.defined_seq,),
            )
        task.version = max(task.version, record.version)
        task.defined_seq = record.seq
        task.trigger = record.trigger

    def on_scheduled(self, task: _TaskRules, record: Scheduled) -> None:
        # Duplicate Scheduled records are harmless (several nodes may write one).
        if record.occurrence in task.open or task.is_settled(record.occurrence, record.due):
            return
        task.open[record.occurrence] = _Open(record.due)

    def on_started(self, task: _TaskRules, record: Started) -> None:
        occurrence, attempt = record.occurrence, record.attempt
        entry = task.open.get(occurrence)
        if entry is None:
            settled = task.settled.get(occurrence)
            inside = None if settled is not None else task.range_holding(task.due_of(occurrence))
            if inside is not None:
                range_first, range_last, range_seq = inside
                self.report(
                    record,
                    Rule.STARTED_AFTER_SETTLED,
                    f"occurrence {occurrence!r} was skipped as missed at seq {range_seq}, in "
                    f"the range of due times from {range_first.isoformat()} to "
                    f"{range_last.isoformat()}, yet attempt {attempt} started",
                    occurrence,
                    (range_seq,),
                )
            elif settled is not None:
                outcome, at_seq = settled
                self.report(
                    record,
                    Rule.STARTED_AFTER_SETTLED,
                    f"occurrence {occurrence!r} {outcome} at seq {at_seq}, "
                    f"yet attempt {attempt} started again",
                    occurrence,
                    (at_seq,),
                )
            else:
                older = (
                    " and is due before an occurrence that already settled "
                    "(it may have settled long ago)"
                    if task.is_settled(occurrence)
                    else ""
                )
                self.report(
                    record,
                    Rule.NOT_SCHEDULED,
                    f"attempt {attempt} of {occurrence!r} started, "
                    f"but the occurrence was never scheduled{older}",
                    occurrence,
                )
            entry = _Open(task.due_of(occurrence))
            task.open[occurrence] = entry
        elif attempt in entry.started_seqs:
            first = entry.started_seqs[attempt]
            self.report(
                record,
                Rule.STARTED_TWICE,
                f"attempt {attempt} of {occurrence!r} started twice "
                f"(first at seq {first}, again at seq {record.seq})",
                occurrence,
                (first,),
            )
        elif entry.running:
            running_seq = entry.started_seqs[entry.attempt]
            self.report(
                record,
                Rule.STARTED_WHILE_RUNNING,
                f"attempt {attempt} of {occurrence!r} started while attempt "
                f"{entry.attempt} (started at seq {running_seq}) was still running",
                occurrence,
                (running_seq,),
            )
        elif attempt != entry.attempt + 1:
            self.report(
                record,
                Rule.WRONG_ATTEMPT,
                f"attempt {attempt} of {occurrence!r} started; "
                f"expected attempt {entry.attempt + 1}",
                occurrence,
            )
        if task.paused and occurrence.startswith(task.time_prefix) and entry.attempt == 0:
            self.report(
                record,
                Rule.STARTED_WHILE_PAUSED,
                f"scheduled occurrence {occurrence!r} started while task {record.task!r} "
                "was paused",
                occurrence,
            )
        entry.started_seqs.setdefault(attempt, record.seq)
        entry.attempt = max(entry.attempt, attempt)
        entry.running = True

    def on_finished(self, task: _TaskRules, record: Completed | Failed) -> None:
        occurrence, attempt = record.occurrence, record.attempt
        kind = type(record).__name__
        entry = task.open.get(occurrence)
        if entry is None or not entry.running or entry.attempt != attempt:
            settled = task.settled.get(occurrence)
            detail = (
                f"; the occurrence already {settled[0]} at seq {settled[1]}"
                if settled is not None
                else "; no such attempt is running"
            )
            self.report(
                record,
                Rule.FINISHED_WITHOUT_START,
                f"{kind} for attempt {attempt} of {occurrence!r}{detail}",
                occurrence,
                (settled[1],) if settled is not None else (),
            )
            return
        entry.running = False
        if isinstance(record, Failed) and record.retry_at is not None:
            return  # Open until the next attempt.
        task.settle(
            occurrence, entry, "completed" if kind == "Completed" else "failed", record.seq
        )

    def on_skipped(self, task: _TaskRules, record: Skipped) -> None:
        occurrence = record.occurrence
        entry = task.open.get(occurrence)
        if entry is not None and entry.running:
            running_seq = entry.started_seqs[entry.attempt]
            self.report(
                record,
                Rule.SKIPPED_WHILE_RUNNING,
                f"occurrence {occurrence!r} skipped ({record.reason}) while attempt "
                f"{entry.attempt} (started at seq {running_seq}) was running",
                occurrence,
                (running_seq,),
            )
            return
        if entry is None:
            settled = task.settled.get(occurrence)
            if settled is not None:
                # A skip settles an occurrence as surely as a run does: a second
                # settlement of any kind (two skips included) means two parts of
                # the scheduler decided its fate, and one of them was wrong.
                self.report(
                    record,
                    Rule.SKIPPED_AFTER_SETTLED,
                    f"occurrence {occurrence!r} settled twice: skipped ({record.reason}) "
                    f"after it {_PAST[settled[0]]} at seq {settled[1]}",
                    occurrence,
                    (settled[1],),
                )
                return
            if record.last_due is not None and task.is_settled(occurrence, record.due):
                # A range must start past what settled: its due times would be
                # covered twice (the projection's fold sets it aside).
                self.report(
                    record,
                    Rule.SKIPPED_AFTER_SETTLED,
                    f"range skip of {occurrence!r} ({record.reason}) starts at a due time "
                    f"that settled already (due times up to "
                    f"{task.watermark.isoformat() if task.watermark else '?'} have)",
                    occurrence,
                )
                return
            entry = _Open(record.due)
        due = entry.due if entry.due is not None else task.due_of(occurrence)
        if record.last_due is not None and not self._range_holds(task, record, due):
            # Settles its first occurrence alone, as the projection's fold does.
            task.settle(
                occurrence, entry, "skipped", record.seq, early=record.at < (due or record.at)
            )
            return
        early = due is not None and record.at < due
        task.settle(occurrence, entry, "skipped", record.seq, early=early)
        if record.last_due is not None and due is not None:
            # Every due time of the range is settled: the watermark rises to its last.
            last_due = record.last_due
            if task.watermark is None or last_due > task.watermark:
                task.watermark = last_due
                if task.ahead:
                    task.ahead = {k: when for k, when in task.ahead.items() if when > last_due}
            task.ranges.append((due, last_due, record.seq))
            if len(task.ranges) > RANGE_WINDOW:
                del task.ranges[0]

    def _range_holds(self, task: _TaskRules, record: Skipped, due: datetime | None) -> bool:
        """Whether a ``Skipped`` range is one that can be; reports it when not."""
        last_due = record.last_due
        assert last_due is not None
        occurrence = record.occurrence
        where = f"range skip of {occurrence!r} ({record.reason})"
        problem = None
        if due is None:
            problem = f"{where} has last_due {last_due.isoformat()} but no due time to start from"
        elif record.count < 2:
            problem = (
                f"{where} has count {record.count}; a range stands for at least 2 due times "
                "(a single one is a plain skip, without last_due)"
            )
        elif last_due <= due:
            problem = (
                f"{where} has last_due {last_due.isoformat()}, not after its due time "
                f"{due.isoformat()}"
            )
        elif last_due > record.at:
            problem = (
                f"{where} has last_due {last_due.isoformat()}, after {record.at.isoformat()} "
                "when it was written: only due times that passed can be missed"
            )
        else:
            problem = self._count_problem(task, record, due, last_due, where)
        if problem is None:
            return True
        self.report(record, Rule.BAD_RANGE, problem, occurrence)
        return False

    @staticmethod
    def _count_problem(
        task: _TaskRules, record: Skipped, due: datetime, last_due: datetime, where: str
    ) -> str | None:
        """A sentence if the range counts more due times than its trigger produces."""
        trigger = task.trigger
        if trigger is None:
            return None
        if not isinstance(trigger, Every) and record.count > _COUNT_CHECK_LIMIT:
            return None  # stepping through that many cron fires is the scheduler's cost
        produced, _ = trigger.count_fires(due, last_due, limit=record.count + 1)
        # The first occurrence may predate the trigger in force (planned under
        # an earlier definition): it counts once whatever the trigger says.
        if not trigger.fires_at(due):
            produced += 1
        if record.count <= produced:
            return None
        return (
            f"{where} counts {record.count} due times from {due.isoformat()} to "
            f"{last_due.isoformat()}, but the task's trigger produces only {produced} there"
        )

    def start_from(self, state: State) -> None:
        """Begin where ``state`` stands: the base of a compacted log, whose earlier
        records are gone. What the checker keeps is read off the projection's
        fold -- the one place the two meet."""
        memory = state.memory()
        self.last_seq = memory.seq
        for task in memory.tasks:
            name = task.definition.task
            rules = _TaskRules(name, task.definition.version, task.definition.seq)
            rules.paused = task.paused
            rules.watermark = task.watermark
            rules.ahead = dict(task.ahead)
            for occurrence, (scheduled, first_start, last) in task.open.items():
                entry = _Open(scheduled.due if scheduled is not None else rules.due_of(occurrence))
                for start in (first_start, last):
                    if isinstance(start, Started):
                        entry.started_seqs.setdefault(start.attempt, start.seq)
                if isinstance(last, Started | Failed):
                    entry.attempt = last.attempt
                entry.running = isinstance(last, Started)
                rules.open[occurrence] = entry
            for occurrence, _, final in task.history:
                outcome = {Completed: "completed", Failed: "failed"}.get(type(final), "skipped")
                rules.settled[occurrence] = (outcome, final.seq)
            self.tasks[name] = rules
        for retired in memory.retired:
            rules = _TaskRules(retired.task, 0, 0)
            rules.watermark = retired.watermark
            rules.ahead = dict(retired.ahead)
            self.removed[retired.task] = (0, rules)


def check_invariants(records: Iterable[Event], *, start: State | None = None) -> list[Violation]:
    """Every rule ``records`` break, in log order; an empty list means the log is sound.

    ``start`` is the State the records fold onto, when they do not begin
    with the log's first record: the base of a compacted log
    (``log.base_state()``), or a snapshot. Without it the records must be the
    whole log.

    Pure: reads the records once, keeps bounded memory, touches nothing else.
    """
    checker = Checker()
    if start is not None:
        checker.start_from(start)
    for record in records:
        checker.check(record)
    return checker.violations
