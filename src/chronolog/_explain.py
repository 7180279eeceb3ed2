"""Explaining an occurrence: what became of it, and which rule decided it.

`explain` answers for one occurrence -- given its id, or a task and a time --
with three parts: the occurrence's own records (its chain of events), the
task's records around it that matter (definitions, pauses, removal), and a
*verdict*: one stable code (`Verdict`) and a sentence that names the rule --
the overlap policy, a pause, a redefinition, catch-up after downtime, the
retry policy, or simply "not due yet".

The records are read twice at most: once to find the task and the
occurrence, once to gather the evidence. Memory stays small whatever the
log's length. A compacted log is read as the records its base snapshot
keeps, then the records after the base; an occurrence whose records were
folded away gets the verdict ``compacted``, naming the seq where the log
was compacted.

``chronolog why`` shows it; the testing harness's failure messages use it.
Why one module of this size: the verdict rules share the evidence of one
reading (`_Case`), and each is a few lines of reasons worded for people.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Final

import attrs

from ._dst_notes import describe_due
from ._errors import InvalidOccurrenceId, UnknownTask, closest_match
from ._events import (
    Completed,
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
from ._ids import canonical_occurrence, time_occurrence
from ._occurrences import due_in_id
from ._policies import CatchUp, Overlap
from ._projection import OccurrenceState, State
from ._triggers import At, Cron, Every
from ._words import describe_trigger, duration_text, instant_text, range_text
from .log import EventLog
from .log._known import known_records

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from ._events import Event
    from ._triggers import Trigger

__all__ = ["Explanation", "Verdict", "explain", "explain_from"]

_LIFECYCLE = (TaskDefined, TaskRemoved, TaskPaused, TaskResumed)
_OCCURRENCE_RECORDS = (Scheduled, Started, Completed, Failed, Skipped)
_SEPARATORS: Final = "@#!"
_JUST_BEFORE: Final = timedelta(microseconds=1)
_JUST_AFTER: Final = timedelta(microseconds=1)


class Verdict(enum.StrEnum):
    """What became of an occurrence: the ``verdict`` field of ``why --json``."""

    RAN = "ran"
    RAN_AFTER_RETRY = "ran-after-retry"
    FAILED = "failed"
    RETRY_PENDING = "retry-pending"
    RUNNING = "running"
    NOT_YET_DUE = "not-yet-due"
    OVERDUE = "overdue"
    SKIPPED_OVERLAP = "skipped-overlap"
    SKIPPED_PAUSED = "skipped-paused"
    SKIPPED_REDEFINED = "skipped-redefined"
    SKIPPED_REMOVED = "skipped-removed"
    SKIPPED_CANCELLED = "skipped-cancelled"
    MISSED = "missed"
    PAUSED = "paused"
    NOT_DEFINED = "not-defined"
    NOT_A_FIRE_TIME = "not-a-fire-time"
    NO_RECORD = "no-record"
    COMPACTED = "compacted"


@attrs.frozen
class Explanation:
    """The answer to ``why``: the evidence, a verdict, and the sentence saying why."""

    task: str
    occurrence: str
    due: datetime | None
    verdict: Verdict
    reason: str
    records: tuple[Event, ...]
    """The occurrence's own records, in log order."""
    context: tuple[Event, ...]
    """The task's definitions, pauses, resumes and removals that bear on it."""
    trigger: str | None
    """The trigger in force, described (None when the task did not exist)."""
    zone: str | None
    """The time zone of the task's cron trigger, when it is not UTC."""
    dst_note: str | None
    """What a daylight-saving change did to this due time, when it did something."""
    log_end: Event | None
    """The last record of the log (None for an empty log)."""


# -- pass 1: which task, which occurrence ---------------------------------------


@attrs.define
class _Survey:
    """What the first pass learns: task names, lifecycles, recorded due times."""

    names: set[str] = attrs.field(factory=set)
    lifecycle: list[Event] = attrs.field(factory=list)
    #: Recorded occurrences of the task asked about: (due, occurrence id).
    before: tuple[datetime, str] | None = None
    after: tuple[datetime, str] | None = None


def _survey(records: Iterable[Event], task: str | None, at: datetime | None) -> _Survey:
    survey = _Survey()
    for record in records:
        kind = type(record)
        if kind is TaskDefined:
            survey.names.add(record.task)
        if isinstance(record, _LIFECYCLE):
            survey.lifecycle.append(record)
        elif at is not None and record.task == task:
            due = _recorded_due(record)
            if due is None:
                continue
            occurrence = record.occurrence
            if due <= at and (survey.before is None or due > survey.before[0]):
                survey.before = (due, occurrence)
            elif due > at and (survey.after is None or due < survey.after[0]):
                survey.after = (due, occurrence)
    return survey


def _recorded_due(record: Event) -> datetime | None:
    if isinstance(record, Scheduled):
        return record.due
    if isinstance(record, Skipped):
        return record.due if record.due is not None else due_in_id(record.task, record.occurrence)
    return None


def _task_of(occurrence: str, names: set[str]) -> str | None:
    """The longest task name that ``occurrence`` starts with, followed by @, # or !."""
    owners = [
        name
        for name in names
        if occurrence.startswith(name)
        and len(occurrence) > len(name)
        and occurrence[len(name)] in _SEPARATORS
    ]
    return max(owners, key=len) if owners else None


def _definition_at(lifecycle: list[Event], task: str, when: datetime) -> TaskDefined | None:
    """The definition of ``task`` in force at ``when`` (None if it did not exist then)."""
    definition: TaskDefined | None = None
    for record in lifecycle:
        if record.task != task or record.at > when:
            continue
        if isinstance(record, TaskDefined):
            definition = record
        elif isinstance(record, TaskRemoved):
            definition = None
    return definition


def _is_time_trigger(trigger: Trigger) -> bool:
    return isinstance(trigger, Cron | Every | At)


def _fire_at_or_before(trigger: Trigger, when: datetime, floor: datetime) -> datetime | None:
    """The last fire of ``trigger`` in ``(floor, when]``, or None."""
    fire = trigger.previous_before(when + _JUST_AFTER)
    return fire if fire is not None and fire > floor else None


def _locate(survey: _Survey, task: str, at: datetime) -> tuple[str, datetime]:
    """The occurrence of ``task`` due at ``at``, or the last one due before it."""
    definition = _definition_at(survey.lifecycle, task, at)
    if definition is None:
        # The task did not exist at ``at`` (not yet, or removed): that is the answer.
        return time_occurrence(task, at), at
    candidates: list[tuple[datetime, str]] = []
    if survey.before is not None:
        candidates.append(survey.before)
    if _is_time_trigger(definition.trigger):
        floor = definition.at
        if survey.before is not None and survey.before[0] > floor:
            floor = survey.before[0]
        fire = _fire_at_or_before(definition.trigger, at, floor)
        if fire is not None:
            candidates.append((fire, time_occurrence(task, fire)))
    if candidates:
        due, occurrence = max(candidates)
        return occurrence, due
    # Nothing was due yet at ``at``: explain the first occurrence after it.
    later: list[tuple[datetime, str]] = []
    if survey.after is not None:
        later.append(survey.after)
    if _is_time_trigger(definition.trigger):
        fire = definition.trigger.next_after(at)
        if fire is not None:
            later.append((fire, time_occurrence(task, fire)))
    if later:
        due, occurrence = min(later)
        return occurrence, due
    raise InvalidOccurrenceId(
        f"task {task!r} has no occurrence due at or before {instant_text(at)}, and none "
        f"after it: its trigger is not time-based; ask about an occurrence id instead "
        f"(see: chronolog history LOG {task})"
    )


def _first_definition(lifecycle: list[Event], task: str) -> TaskDefined | None:
    return next((r for r in lifecycle if isinstance(r, TaskDefined) and r.task == task), None)


# -- pass 2: the evidence --------------------------------------------------------


@attrs.define
class _Evidence:
    chain: list[Event] = attrs.field(factory=list)
    #: Runs of the same task under way when the occurrence was skipped.
    running_at_skip: list[Started] = attrs.field(factory=list)
    #: Occurrences the same catch-up scheduled (to run) when it skipped this one.
    caught_up: list[Scheduled] = attrs.field(factory=list)
    #: The last record at or before the due time, and the first one after it.
    before_due: Event | None = None
    after_due: Event | None = None
    log_end: Event | None = None
    #: The seq where the log was compacted (0 if never), and its first record after that.
    base_seq: int = 0
    first_kept: Event | None = None


def _gather(
    records: Iterable[Event], task: str, occurrence: str, due: datetime | None, base_seq: int
) -> _Evidence:
    evidence = _Evidence(base_seq=base_seq)
    running: dict[str, Started] = {}
    catch_up_at: datetime | None = None
    last: Event | None = None
    for record in records:
        last = record
        if evidence.first_kept is None and record.seq > base_seq:
            evidence.first_kept = record
        if due is not None:
            if record.at <= due:
                evidence.before_due = record
            elif evidence.after_due is None:
                evidence.after_due = record
        if record.task != task or not isinstance(record, _OCCURRENCE_RECORDS):
            continue
        if record.occurrence == occurrence or _range_holds(record, due):
            evidence.chain.append(record)
            if isinstance(record, Skipped):
                if record.reason is SkipReason.OVERLAP:
                    evidence.running_at_skip = list(running.values())
                elif record.reason is SkipReason.MISSED:
                    catch_up_at = record.at
        elif catch_up_at is not None:
            # A catch-up writes its skips and the Scheduled of what it runs
            # in one batch, all stamped with the same time.
            if record.at != catch_up_at:
                catch_up_at = None
            elif isinstance(record, Scheduled) and record.due <= record.at:
                evidence.caught_up.append(record)
        if isinstance(record, Started):
            running[record.occurrence] = record
        elif isinstance(record, Completed | Failed):
            running.pop(record.occurrence, None)
    evidence.log_end = last
    return evidence


def _range_holds(record: Event, due: datetime | None) -> bool:
    """Whether ``record`` is a ``Skipped`` range of missed due times holding ``due``
    (after its first: that one is named by the record's own id)."""
    return (
        type(record) is Skipped
        and record.last_due is not None
        and due is not None
        and record.due is not None
        and record.due < due <= record.last_due
    )


# -- the verdict -----------------------------------------------------------------


@attrs.frozen
class _Case:
    """Everything the rules look at."""

    task: str
    occurrence: str
    due: datetime | None
    evidence: _Evidence
    lifecycle: list[Event]
    """The task's lifecycle records, in log order."""
    base: State
    """The base snapshot of a compacted log (an empty State otherwise)."""

    def definition_before(self, seq: int) -> TaskDefined | None:
        """The definition in force just before record ``seq``."""
        definition: TaskDefined | None = None
        for record in self.lifecycle:
            if record.seq >= seq:
                break
            if isinstance(record, TaskDefined):
                definition = record
            elif isinstance(record, TaskRemoved):
                definition = None
        return definition

    def lifecycle_after(self, seq: int, kind: type) -> Event | None:
        return next((r for r in self.lifecycle if r.seq > seq and isinstance(r, kind)), None)

    def lifecycle_before(self, seq: int, kind: type) -> Event | None:
        found = None
        for record in self.lifecycle:
            if record.seq > seq:
                break
            if isinstance(record, kind):
                found = record
        return found

    @property
    def log_end(self) -> Event | None:
        return self.evidence.log_end

    def end_text(self) -> str:
        end = self.log_end
        return "the log is empty" if end is None else f"seq {end.seq} at {instant_text(end.at)}"


def _late(due: datetime | None, when: datetime) -> str:
    if due is None or when - due < timedelta(seconds=1):
        return ""
    return f" ({duration_text(when - due)} after it was due)"


def _completed(case: _Case, record: Completed) -> tuple[Verdict, str]:
    chain = case.evidence.chain
    starts = [r for r in chain if isinstance(r, Started)]
    failures = [r for r in chain if isinstance(r, Failed)]
    first = starts[0] if starts else None
    began = f"started at {instant_text(first.at)}{_late(case.due, first.at)} and " if first else ""
    done = f"completed at {instant_text(record.at)} after {duration_text(record.duration)}"
    # A base snapshot keeps an occurrence's first start and latest record only:
    # the failures of the attempts between were compacted away.
    folded = [n for n in range(1, record.attempt) if n not in {f.attempt for f in failures}]
    if not (chain[0].seq <= case.base.seq and folded):
        folded = []
    if not failures and not folded:
        return Verdict.RAN, f"attempt {record.attempt} {began}{done}."
    tried = [
        f"attempt {f.attempt} failed ({_error(f)}), retried at {instant_text(f.retry_at)}"
        for f in failures
    ]
    if folded:
        tried.insert(
            0,
            f"attempt {', '.join(map(str, folded))} failed and was retried (the records were "
            f"folded into the base snapshot when the log was compacted at seq {case.base.seq})",
        )
    return Verdict.RAN_AFTER_RETRY, f"{'; '.join(tried)}; attempt {record.attempt} {done}."


def _error(record: Failed) -> str:
    kind = (
        f"{record.error_type}: "
        if record.error_type
        and record.error_type
        not in (
            "Interrupted",
            "Cancelled",
        )
        else ""
    )
    return f"{kind}{record.error}"


_FAILURE_CAUSES: Final = {
    "interrupted": "the scheduler stopped while it ran (a crash or a kill); the next start "
    "recorded it as interrupted",
    "shutdown": "the scheduler shut down while it ran, and the run did not finish within "
    "the shutdown grace",
    "cancelled": "a cancel command stopped it (a cancelled run is not retried)",
    "replaced": "a newer occurrence replaced it (overlap policy replace; not retried)",
    "removed": "the task was removed while it ran",
    "node lost": "the node running it stopped renewing its lease",
}


def _failed(case: _Case, record: Failed) -> tuple[Verdict, str]:
    definition = case.definition_before(record.seq)
    cause = _FAILURE_CAUSES.get(record.error)
    if cause is None:
        if record.error.startswith("timed out"):
            cause = f"it {record.error} (the task's timeout)"
        else:
            cause = f"it raised {_error(record)}"
    attempts = ""
    if definition is not None and record.error not in ("cancelled", "replaced", "removed"):
        limit = definition.policy.retry.max_attempts
        attempts = (
            f"; no attempt was left (retry policy: max_attempts={limit})"
            if limit > 1
            else "; the task does not retry (retry policy: max_attempts=1)"
        )
    return (
        Verdict.FAILED,
        f"attempt {record.attempt} ended at {instant_text(record.at)} "
        f"after {duration_text(record.duration)}: {cause}{attempts}.",
    )


def _skipped(case: _Case, record: Skipped) -> tuple[Verdict, str]:
    if record.reason is SkipReason.OVERLAP:
        return _skipped_overlap(case, record)
    if record.reason is SkipReason.PAUSED:
        paused = case.lifecycle_before(record.seq, TaskPaused)
        resumed = case.lifecycle_after(record.seq, TaskResumed)
        note = (
            f" (note: {paused.note!r})" if isinstance(paused, TaskPaused) and paused.note else ""
        )
        when = f" at {instant_text(paused.at)}" if paused is not None else ""
        after = (
            f"It was resumed at {instant_text(resumed.at)}; a resume schedules from then on and "
            f"does not catch up the paused time."
            if resumed is not None
            else "It is still paused at the end of the log."
        )
        return (
            Verdict.SKIPPED_PAUSED,
            f"the task was paused{when}{note} and still paused when this came due, so it "
            f"was skipped at {instant_text(record.at)}, once (a resume before its due time "
            f"would have kept it). {after}",
        )
    if record.reason is SkipReason.REDEFINED:
        new = case.lifecycle_after(record.seq, TaskDefined)
        if not (isinstance(new, TaskDefined) and new.at == record.at):
            new = case.definition_before(record.seq)
        old = case.definition_before(new.seq) if new is not None else None
        change = ""
        if isinstance(new, TaskDefined):
            version = f"version {new.version}: {describe_trigger(new.trigger)}"
            change = f" at {instant_text(new.at)} ({version}"
            if old is not None and old.trigger != new.trigger:
                change += f", was {describe_trigger(old.trigger)}"
            change += ")"
        return (
            Verdict.SKIPPED_REDEFINED,
            f"the task was redefined{change}, and the new definition does not produce "
            f"this due time.",
        )
    if record.reason is SkipReason.REMOVED:
        removed = case.lifecycle_after(record.seq - 1, TaskRemoved)
        when = f" at {instant_text(removed.at)}" if removed is not None else ""
        why = (
            f" (note: {removed.note!r})"
            if isinstance(removed, TaskRemoved) and removed.note
            else ""
        )
        return (
            Verdict.SKIPPED_REMOVED,
            f"the task was removed{when}{why} while this was pending.",
        )
    if record.reason is SkipReason.CANCELLED:
        return (
            Verdict.SKIPPED_CANCELLED,
            f"its retry was waiting when it was cancelled at {instant_text(record.at)} "
            f"(cancel(), remove() or the REPLACE overlap policy), so no further attempt ran.",
        )
    return _missed(case, record)


def _skipped_overlap(case: _Case, record: Skipped) -> tuple[Verdict, str]:
    definition = case.definition_before(record.seq)
    running = case.evidence.running_at_skip
    if running:
        other = running[-1]
        busy = (
            f"{other.occurrence} (attempt {other.attempt}, started at {instant_text(other.at)}) "
            f"was still running"
        )
    else:
        busy = "an earlier run of the task was still running"
    overlap = definition.policy.overlap if definition is not None else Overlap.SKIP
    rule = {
        Overlap.SKIP: "the overlap policy is skip: an occurrence that comes due while a run is "
        "under way is skipped",
        Overlap.QUEUE: "the overlap policy is queue: one run may wait for the running one, and "
        "further ones are skipped",
    }.get(overlap, f"the overlap policy is {overlap}")
    return (
        Verdict.SKIPPED_OVERLAP,
        f"when it came due, {busy}, and {rule}.",
    )


def _gap_text(case: _Case, until: datetime) -> str:
    """Why nothing happened around the due time, from the records on either side of it."""
    before, after = case.evidence.before_due, case.evidence.after_due
    if case.due is None or before is None:
        return ""
    if before.seq <= case.base.seq:
        return (
            f" The log was compacted at seq {case.base.seq}: the records around that time "
            f"were folded into its base snapshot."
        )
    if after is None:
        return (
            f" No record at all follows {instant_text(before.at)}: no scheduler has written "
            f"to the log since."
        )
    if after.at >= until - timedelta(seconds=1) and after.at - before.at > timedelta(minutes=1):
        return (
            f" The log has no record between {instant_text(before.at)} and "
            f"{instant_text(after.at)}: no scheduler was running then (or its clock jumped)."
        )
    return " The scheduler was running but late: busy, stalled, or its clock jumped."


def _missed(case: _Case, record: Skipped) -> tuple[Verdict, str]:
    definition = case.definition_before(record.seq)
    due = case.due
    late = f"it was due at {instant_text(due)}, but" if due is not None else "but"
    head = f"{late} nothing fired it until {instant_text(record.at)}"
    head += _late(due, record.at) + "."
    head += _gap_text(case, record.at)
    if record.last_due is not None:
        head += (
            f" It was missed in that outage: one of {range_text(record)}, recorded as one "
            f"skip at seq {record.seq} (whose first occurrence is {record.occurrence})."
        )
    if definition is None:
        return Verdict.MISSED, head
    policy = definition.policy
    grace = policy.misfire_grace
    if grace is not None and due is not None and record.at - due > grace:
        rule = (
            f"It was more than misfire_grace={duration_text(grace)} late, so it was skipped "
            f"whatever catch_up says."
        )
    elif policy.catch_up is CatchUp.NONE:
        rule = "The catch-up policy none skips every due time missed while down."
    elif policy.catch_up is CatchUp.LATEST:
        ran = case.evidence.caught_up
        instead = f" ({', '.join(instant_text(s.due) for s in ran)} ran instead)" if ran else ""
        rule = (
            f"The catch-up policy latest runs only the latest of the due times missed "
            f"together{instead} and skips the others."
        )
    else:
        rule = (
            f"The catch-up policy all runs missed due times in order, at most "
            f"catch_up_limit={policy.catch_up_limit} of them; this one was past the limit."
        )
    return Verdict.MISSED, f"{head} {rule}"


def _open(case: _Case, last: Event) -> tuple[Verdict, str]:
    end = case.log_end
    end_at = end.at if end is not None else None
    if isinstance(last, Started):
        node = f" on {last.node}" if last.node else ""
        return (
            Verdict.RUNNING,
            f"attempt {last.attempt} started at {instant_text(last.at)}{node} and no end is "
            f"recorded by the end of the log ({case.end_text()}). If its scheduler still runs, "
            f"so does the run; a scheduler that opens this log after a crash records it as "
            f"interrupted and retries it if attempts are left.",
        )
    if isinstance(last, Failed):
        pending = (
            f"attempt {last.attempt + 1} is planned at {instant_text(last.retry_at)}"
            if last.retry_at is not None
            else "another attempt is planned"
        )
        behind = (
            f", but the log ends at {instant_text(end_at)} without it: no scheduler has run it yet"
            if end_at is not None and last.retry_at is not None and last.retry_at < end_at
            else ""
        )
        return (
            Verdict.RETRY_PENDING,
            f"attempt {last.attempt} failed ({_error(last)}); {pending}{behind}.",
        )
    due = case.due
    if due is not None and end_at is not None and due > end_at:
        return (
            Verdict.NOT_YET_DUE,
            f"it is scheduled for {instant_text(due)}, "
            f"after the end of the log ({case.end_text()}).",
        )
    return (
        Verdict.OVERDUE,
        f"it was due at {instant_text(due)} and scheduled, but never started by the end of the "
        f"log ({case.end_text()}).{_gap_text(case, end_at or due or last.at)} A scheduler "
        f"that opens this log applies the catch-up policy to it.",
    )


def _unrecorded(case: _Case) -> tuple[Verdict, str]:
    due = case.due
    if due is None:
        return (
            Verdict.NO_RECORD,
            f"the log has no record of {case.occurrence}; check the id with "
            f"'chronolog history LOG {case.task}'.",
        )
    definition = _definition_at(case.lifecycle, case.task, due)
    if definition is None:
        first = _first_definition(case.lifecycle, case.task)
        removed = case.lifecycle_before(
            max((r.seq for r in case.lifecycle if r.at <= due), default=0), TaskRemoved
        )
        if first is not None and first.at > due:
            return (
                Verdict.NOT_DEFINED,
                f"the task did not exist yet at {instant_text(due)}: it was first defined at "
                f"{instant_text(first.at)}.",
            )
        when = f" at {instant_text(removed.at)}" if removed is not None else ""
        return (
            Verdict.NOT_DEFINED,
            f"the task did not exist at {instant_text(due)}: it had been removed{when}.",
        )
    trigger = definition.trigger
    if not _is_time_trigger(trigger) or trigger.next_after(due - _JUST_BEFORE) != due:
        before = _fire_at_or_before(trigger, due - _JUST_BEFORE, definition.at)
        after = trigger.next_after(due)
        around = ", ".join(
            f"{label} {instant_text(when)}"
            for label, when in (("last before it", before), ("next after it", after))
            if when is not None
        )
        return (
            Verdict.NOT_A_FIRE_TIME,
            f"{describe_trigger(trigger)} does not fire at {instant_text(due)}"
            + (f" ({around})." if around else "."),
        )
    end = case.log_end
    if end is None or due > end.at:
        return (
            Verdict.NOT_YET_DUE,
            f"it was not due yet at the end of the log ({case.end_text()}); nothing is "
            f"recorded before an occurrence is planned.",
        )
    paused = _paused_at(case.lifecycle, case.task, due)
    if paused is not None:
        if isinstance(paused, TaskPaused):
            note = f" (note: {paused.note!r})" if paused.note else ""
            since = f"was paused at {instant_text(paused.at)}{note}"
        else:
            since = f"was defined paused at {instant_text(paused.at)}"
        return (
            Verdict.PAUSED,
            f"nothing was scheduled: the task {since} and still paused when this came due; "
            f"a paused task plans nothing new (only the occurrence pending when it was paused "
            f"is skipped, once), and a resume does not catch up.",
        )
    return (
        Verdict.NO_RECORD,
        f"the log has no record of this occurrence, though the task existed and was not "
        f"paused.{_gap_text(case, end.at)}",
    )


def _paused_at(
    lifecycle: list[Event], task: str, when: datetime
) -> TaskPaused | TaskDefined | None:
    """The record that left ``task`` paused at ``when`` (a pause, or a definition
    with ``paused=True``), or None when it was not paused then."""
    paused: TaskPaused | TaskDefined | None = None
    exists = False
    for record in lifecycle:
        if record.task != task or record.at > when:
            continue
        if isinstance(record, TaskPaused):
            paused = record
        elif isinstance(record, TaskResumed | TaskRemoved):
            paused = None
            exists = not isinstance(record, TaskRemoved)
        elif isinstance(record, TaskDefined) and not exists:
            # A new task starts paused only if its policy says so; a redefinition
            # of an existing task leaves its pause as it was.
            paused = record if record.policy.paused else None
            exists = True
    return paused


def _compacted(case: _Case) -> tuple[Verdict, str] | None:
    """The verdict for an occurrence without records whose records a compaction
    may have folded away; None when the compaction has nothing to do with it."""
    base_seq = case.base.seq
    if not base_seq:
        return None
    first = case.evidence.first_kept
    compacted = f"the log was compacted at seq {base_seq}"
    if (
        case.task in case.base
        and case.base.occurrence_state(case.task, case.occurrence, case.due)
        is OccurrenceState.SETTLED
    ):
        return (
            Verdict.COMPACTED,
            f"it settled before {compacted}: its records were folded into the base "
            f"snapshot, which keeps that it settled (it never runs again) but no longer how.",
        )
    if case.due is not None and first is not None and case.due >= first.at:
        return None
    begins = (
        f"its records begin at seq {first.seq}, recorded {instant_text(first.at)}"
        if first is not None
        else "no record after that was kept"
    )
    return (
        Verdict.COMPACTED,
        f"{compacted} and {begins}; what happened to this occurrence before then was folded "
        f"into the base snapshot, which keeps no trace of it (recent runs of a task "
        f"are kept: see 'chronolog history LOG {case.task}').",
    )


def _verdict(case: _Case) -> tuple[Verdict, str]:
    chain = case.evidence.chain
    if not chain:
        compacted = _compacted(case)
        if compacted is not None:
            return compacted
        return _unrecorded(case)
    last = chain[-1]
    if isinstance(last, Completed):
        return _completed(case, last)
    if isinstance(last, Failed) and last.retry_at is None:
        return _failed(case, last)
    if isinstance(last, Skipped):
        return _skipped(case, last)
    return _open(case, last)


def _dst_note(trigger: Trigger | None, due: datetime | None) -> str | None:
    if not isinstance(trigger, Cron) or due is None or trigger.tz == "UTC":
        return None
    fire = int((due - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds())
    return describe_due(trigger, fire)


def explain(
    log: EventLog | Iterable[Event],
    target: str,
    *,
    at: datetime | None = None,
) -> Explanation:
    """What became of one occurrence, and which rule decided it.

    ``target`` is an occurrence id (``backup@2026-03-29T01:00:00Z``; any ISO
    8601 spelling of its due time), or a task name with ``at``: the
    occurrence of that task due at ``at``, or the last one due before it --
    "why did the backup not run last Sunday?". ``log`` is an `EventLog` (a
    compacted one is read as its base's records, then the records after
    it) or the records themselves.

    Raises `UnknownTask` for a task or occurrence the log never knew, and
    `InvalidOccurrenceId` for text that is no occurrence id.
    """
    if isinstance(log, EventLog):
        event_log = log
        base = event_log.base_state()
        return explain_from(lambda _: known_records(event_log, base), base, target, at=at)
    records = list(log)
    return explain_from(lambda _: records, State(), target, at=at)


def explain_from(
    read: Callable[[str], Iterable[Event]],
    base: State,
    target: str,
    *,
    at: datetime | None = None,
) -> Explanation:
    """`explain` over the records ``read(phase)`` gives (twice: ``"surveying"``, then
    ``"gathering"``), with ``base`` the state a compaction folded them from."""
    survey = _survey(read("surveying"), target if at is not None else None, at)
    # Tasks removed before the base: their occurrences were compacted away.
    survey.names.update(retired.task for retired in base.memory().retired)
    if at is not None:
        task = target
        if task not in survey.names:
            raise _unknown_task(task, survey.names, base.seq)
        occurrence, located = _locate(survey, task, at)
        due: datetime | None = located
    else:
        owner = _task_of(target, survey.names)
        occurrence = target
        if owner is not None:
            try:
                occurrence = canonical_occurrence(owner, target)
            except InvalidOccurrenceId as exc:
                if target not in survey.names:
                    raise InvalidOccurrenceId(str(exc)) from None
                owner = None  # a task whose name looks like an occurrence of another
        if owner is None:
            if target in survey.names:
                raise InvalidOccurrenceId(
                    f"{target!r} is a task; add --at TIME to ask about its occurrence at a "
                    f"time, or give an occurrence id (see: chronolog history LOG {target})"
                )
            raise _unknown_occurrence(target, survey.names, base.seq)
        task = owner
        due = due_in_id(task, occurrence)
    evidence = _gather(read("gathering"), task, occurrence, due, base.seq)
    if due is None:
        due = next((d for d in map(_recorded_due, evidence.chain) if d is not None), None)
    lifecycle = [r for r in survey.lifecycle if r.task == task]
    case = _Case(task, occurrence, due, evidence, lifecycle, base)
    verdict, reason = _verdict(case)
    moment = due if due is not None else (evidence.chain[0].at if evidence.chain else None)
    definition = _definition_at(lifecycle, task, moment) if moment is not None else None
    if definition is None and evidence.chain:
        definition = case.definition_before(evidence.chain[0].seq)
    trigger = definition.trigger if definition is not None else None
    return Explanation(
        task=task,
        occurrence=occurrence,
        due=due,
        verdict=verdict,
        reason=reason,
        records=tuple(evidence.chain),
        context=tuple(_context(lifecycle, evidence.chain, due)),
        trigger=describe_trigger(trigger) if trigger is not None else None,
        zone=trigger.tz if isinstance(trigger, Cron) and trigger.tz != "UTC" else None,
        dst_note=_dst_note(trigger, due),
        log_end=evidence.log_end,
    )


def _context(lifecycle: list[Event], chain: list[Event], due: datetime | None) -> list[Event]:
    """The task's lifecycle records that bear on the occurrence.

    The definition in force when it began and the last pause or resume
    before it, then every definition, pause, resume or removal until it
    settled, and the first one after.
    """
    start_seq = chain[0].seq if chain else None
    if start_seq is None and due is not None:
        start_seq = max((r.seq for r in lifecycle if r.at <= due), default=None)
        if start_seq is not None:
            start_seq += 1
    if start_seq is None:
        return lifecycle[:1]
    end_seq = chain[-1].seq if chain else start_seq
    earlier = [r for r in lifecycle if r.seq < start_seq]
    definition = next((r for r in reversed(earlier) if isinstance(r, TaskDefined)), None)
    pause = next((r for r in reversed(earlier) if isinstance(r, TaskPaused | TaskResumed)), None)
    kept: list[Event] = [r for r in (definition, pause) if r is not None]
    kept.sort(key=lambda r: r.seq)
    later = [r for r in lifecycle if r.seq >= start_seq]
    kept += [r for r in later if r.seq <= end_seq]
    following = next((r for r in later if r.seq > end_seq), None)
    if following is not None:
        kept.append(following)
    return kept


def _compacted_note(base_seq: int) -> str:
    if not base_seq:
        return ""
    return (
        f" The log was compacted at seq {base_seq}: a task removed before then is no "
        f"longer known by name."
    )


def _unknown_task(task: str, names: set[str], base_seq: int) -> UnknownTask:
    hint = closest_match(task, sorted(names))
    suggestion = f"; did you mean {hint!r}?" if hint else ""
    known = ", ".join(sorted(names)[:10]) or "none"
    return UnknownTask(
        f"no task named {task!r} in this log{suggestion} (tasks: {known})"
        + _compacted_note(base_seq)
    )


def _unknown_occurrence(occurrence: str, names: set[str], base_seq: int) -> UnknownTask:
    head = occurrence.split("@")[0].split("#")[0].split("!")[0]
    hint = closest_match(head, sorted(names))
    suggestion = f"; did you mean task {hint!r}?" if hint else ""
    return UnknownTask(
        f"{occurrence!r} is no occurrence of a task in this log{suggestion}"
        f"{_compacted_note(base_seq)} Occurrence ids "
        f"look like 'backup@2026-03-29T01:00:00Z' (list them with: chronolog history LOG TASK); "
        f"or ask about a task at a time: chronolog why LOG TASK --at TIME"
    )
