"""Checkers that fail with an explanation: which occurrence, which seqs, what happened.

Each ``assert_*`` reads a log -- an ``EventLog``, a :class:`Timeline`, a
:class:`Simulation` or a plain sequence of records -- and raises
``AssertionError`` when the promise it checks is broken, with a message that
names every problem and shows the records involved. They build on
:func:`chronolog.check_invariants` (the strict rules of a log) and add what
needs the tasks' triggers: a due time run under two ids, a run at an
instant the trigger never produces (a DST double fire), a due time that
nobody ran or skipped.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Final

import msgspec

from .._errors import ConfigError, UnknownTask
from .._events import (
    EventBase,
    TaskDefined,
    TaskPaused,
    TaskRemoved,
    TaskResumed,
    decode_lines,
    encode_lines,
)
from .._explain import explain
from .._ids import time_occurrence
from .._invariants import Rule, check_invariants
from .._projection import State, replay
from .._scheduler import Scheduler
from .._targets import MISSING_TARGET_NOTES
from .._triggers import At, Cron, Every
from .._views import Outcome
from .._words import describe_record, describe_trigger, instant_text, local_hint
from .._zones import load_zone
from ..log import EventLog
from .simulate import Simulation
from .timeline import Timeline

if TYPE_CHECKING:
    from collections.abc import Iterable

    from .._events import Event
    from .._triggers import Trigger
    from .timeline import FireBy, Occurrence

    LogLike = EventLog | Timeline | Simulation | Iterable[Event]

__all__ = [
    "assert_exactly_once",
    "assert_fires",
    "assert_nothing_lost",
    "assert_replay_consistent",
]

#: The rules whose breach means an occurrence ran (or settled) more than once.
_DUPLICATION_RULES: Final = frozenset(
    {
        Rule.STARTED_TWICE,
        Rule.STARTED_AFTER_SETTLED,
        Rule.STARTED_WHILE_RUNNING,
        Rule.SKIPPED_AFTER_SETTLED,
    }
)
#: assert_nothing_lost refuses to enumerate more due times than this.
_MAX_EXPECTED: Final = 2_000_000
#: Due times walked per interval before the total is estimated.
_PROBE: Final = 1000
#: How many problems a message lists before it only counts the rest.
_MAX_LISTED: Final = 10
_MICROSECOND: Final = timedelta(microseconds=1)
_TIME_TRIGGERS: Final = (Cron, Every, At)


def _timeline(log: object, what: str) -> Timeline:
    if isinstance(log, Timeline):
        return log
    if isinstance(log, Simulation):
        return log.timeline()
    if isinstance(log, EventLog):
        return Timeline(log.read())
    if isinstance(log, str | bytes) or not hasattr(log, "__iter__"):
        raise ConfigError(
            f"{what}() reads an EventLog, a Timeline, a Simulation or a sequence of records, "
            f"got {type(log).__name__} {log!r}"
        )
    records = list(log)
    for index, record in enumerate(records):
        if not isinstance(record, EventBase):
            raise ConfigError(
                f"{what}() reads chronolog records; item {index} is "
                f"{type(record).__name__} {record!r}"
            )
    return Timeline(records)


def _base(log: object) -> State | None:
    """The base a compacted log's records fold onto (None for anything else)."""
    if isinstance(log, EventLog) and log.base_seq:
        return log.base_state()
    return None


def _fail(headline: str, problems: list[str], total: int | None = None) -> None:
    listed = problems[:_MAX_LISTED]
    more = (len(problems) if total is None else total) - len(listed)
    tail = f"\n\n… and {more} more" if more > 0 else ""
    raise AssertionError(f"{headline}\n\n" + "\n\n".join(listed) + tail)


def _records_text(timeline: Timeline, seqs: Iterable[int], *, indent: str = "    ") -> str:
    wanted = set(seqs)
    lines = [indent + describe_record(r) for r in timeline._records_with(wanted)]
    if wanted:
        low, high = min(wanted), max(wanted)
        lines.extend(
            f"{indent}harness, after seq {note.after_seq}: {note.kind} at {instant_text(note.at)} "
            f"({note.text})"
            for note in timeline.notes
            if low <= note.after_seq < high
        )
    return "\n".join(lines)


def _definitions(timeline: Timeline) -> dict[int, TaskDefined]:
    """The definition in force at each record's seq, for records about occurrences."""
    current: dict[str, TaskDefined] = {}
    in_force: dict[int, TaskDefined] = {}
    for record in timeline.records:
        if isinstance(record, TaskDefined):
            current[record.task] = record
        elif isinstance(record, TaskRemoved):
            current.pop(record.task, None)
        elif record.task in current:
            in_force[record.seq] = current[record.task]
    return in_force


# -- exactly once ---------------------------------------------------------------


def assert_exactly_once(log: LogLike) -> None:
    """No occurrence ran twice, and no due time ran twice under two names.

    Fails when the log shows an attempt started twice, a start after the
    occurrence settled, a start while the occurrence was running, an
    occurrence settled twice; or, using the triggers the log records, one
    due time run as two occurrences, or a run at an instant its trigger does
    not produce (such as the second 01:30 of a fall-back night, for a
    fixed-time cron: a DST double fire).
    """
    timeline = _timeline(log, "assert_exactly_once")
    problems: list[str] = []
    by_occurrence: dict[str, list[str]] = defaultdict(list)
    order: list[str] = []
    for violation in check_invariants(timeline.records, start=_base(log)):
        if violation.rule not in _DUPLICATION_RULES or violation.occurrence is None:
            continue
        if violation.occurrence not in by_occurrence:
            order.append(violation.occurrence)
        by_occurrence[violation.occurrence].append(str(violation))
    for occurrence_id in order:
        occurrence = timeline.occurrence(occurrence_id)
        problems.append(
            f"occurrence {occurrence_id!r} of task {occurrence.task!r} ran more than once:\n"
            + "\n".join(f"  {line}" for line in by_occurrence[occurrence_id])
            + "\n  its records:\n"
            + _records_text(timeline, occurrence.seqs)
        )
    problems.extend(_trigger_duplicates(timeline))
    if problems:
        _fail(f"exactly-once is broken: {len(problems)} problem(s)", problems)


def _trigger_duplicates(timeline: Timeline) -> list[str]:
    in_force = _definitions(timeline)
    problems: list[str] = []
    ran: dict[tuple[str, datetime], list[Occurrence]] = defaultdict(list)
    for occurrence in timeline.occurrences():
        if occurrence.kind == "time" and occurrence.attempts and occurrence.due is not None:
            ran[(occurrence.task, occurrence.due)].append(occurrence)
    for (task, due_time), runs in ran.items():
        if len(runs) > 1:
            names = ", ".join(
                f"{run.occurrence!r} (first started at seq {run.attempts[0].started_seq})"
                for run in runs
            )
            problems.append(
                f"due time {instant_text(due_time)} of task {task!r} ran {len(runs)} times, "
                f"as {names}\n"
                + _records_text(timeline, [seq for run in runs for seq in run.seqs])
            )
    walls: dict[tuple[str, str, datetime], list[Occurrence]] = defaultdict(list)
    unproduced: list[tuple[Occurrence, Cron | Every | At, datetime]] = []
    for runs in ran.values():
        for run in runs:
            definition = in_force.get(run.attempts[0].started_seq)
            due = run.due
            if due is None or definition is None:
                continue
            trigger = definition.trigger
            if not isinstance(trigger, _TIME_TRIGGERS):
                continue
            if isinstance(trigger, Cron):
                wall = due.astimezone(load_zone(trigger.tz)).replace(tzinfo=None)
                walls[(run.task, trigger.tz, wall)].append(run)
            if not trigger.fires_at(due):
                unproduced.append((run, trigger, due))
    for index, (run, trigger, due) in enumerate(unproduced):
        local = local_hint(due, trigger)
        twins: list[Occurrence] = []
        if isinstance(trigger, Cron):
            wall = due.astimezone(load_zone(trigger.tz)).replace(tzinfo=None)
            twins = [other for other in walls[(run.task, trigger.tz, wall)] if other is not run]
        if twins:
            twin = twins[0]
            problems.append(
                f"DST double fire: task {run.task!r} ran at {instant_text(due)}{local} and at "
                f"{instant_text(twin.due)}{local_hint(twin.due, trigger)} -- the same local wall "
                f"time twice. A fixed-time {describe_trigger(trigger)} fires a repeated wall "
                f"time once, at its first "
                f"occurrence; {run.occurrence!r} should never have run\n"
                + _records_text(timeline, sorted({*run.seqs, *twin.seqs}))
            )
            continue
        # Searching back for the previous fire costs tens of next_after calls:
        # only for the problems the message lists.
        before = trigger.previous_before(due) if index < _MAX_LISTED else None
        after = trigger.next_after(due)
        problems.append(
            f"occurrence {run.occurrence!r} of task {run.task!r} ran for due time "
            f"{instant_text(due)}{local}, "
            f"which {describe_trigger(trigger)} never produces (its fire times around it: "
            f"{instant_text(before)} and {instant_text(after)})\n"
            + _records_text(timeline, run.seqs)
        )
    return problems


# -- nothing lost ---------------------------------------------------------------


def assert_nothing_lost(log: LogLike, *, until: datetime, task: str | None = None) -> None:
    """Every due time up to ``until`` ran or was skipped with a reason.

    For each task with a time trigger (``Cron``, ``Every``, ``At``), every
    fire time of the trigger in force -- after the task's definition, or at
    or after its last resume, while it existed and was not paused; for an
    ``At``, its instant even when that was past at the definition -- up to
    ``until`` must have an occurrence in the log that started, or was skipped
    (missed, overlap, paused, ...) -- by its own record or inside a range of
    due times missed in one outage. A due time is not lost yet while it is still scheduled, or
    while an earlier occurrence of its task is still running or waiting for
    its retry (the task is busy, and catch-up settles it later). A pause
    chronolog made because a target could not be imported does not excuse
    the due times after it: those runs are lost.
    """
    limit = _aware(until, "assert_nothing_lost(until=...)")
    if isinstance(log, EventLog) and log.base_seq:
        raise ConfigError(
            f"assert_nothing_lost() checks due times against the records that settled them, "
            f"but {log!r} was compacted at seq {log.base_seq}: those records are folded into "
            f"its base snapshot. Check the log before compacting it"
        )
    timeline = _timeline(log, "assert_nothing_lost")
    if task is not None and task not in timeline.tasks():
        timeline.occurrences(task)  # raises UnknownTask with a hint
    accounted: set[str] = set()
    pending: set[str] = set()
    busy_since: dict[str, datetime] = {}
    # Due times missed in one outage are one record: (first, last) per task.
    ranges: dict[str, list[tuple[datetime, datetime]]] = defaultdict(list)
    for seen in timeline.occurrences(task):
        if seen.attempts or seen.outcome is Outcome.SKIPPED:
            accounted.add(seen.occurrence)
        if seen.last_due is not None and seen.due is not None:
            ranges[seen.task].append((seen.due, seen.last_due))
        if seen.outcome is Outcome.SCHEDULED:
            pending.add(seen.occurrence)
        if seen.outcome in (Outcome.RUNNING, Outcome.RETRY_PENDING) and seen.due is not None:
            earliest = busy_since.get(seen.task)
            if earliest is None or seen.due < earliest:
                busy_since[seen.task] = seen.due
    lost: list[tuple[str, datetime, Trigger]] = []
    expected = 0
    for name, trigger, begin, end in _active_intervals(timeline, task, limit):
        due = trigger.next_after(begin)
        counted = 0
        while due is not None and (due < end or (end == limit and due <= limit)):
            expected += 1
            counted += 1
            if counted == _PROBE and due > begin:
                # Extrapolate from the first due times rather than walk them all.
                estimate = expected + counted * ((end - due) / (due - begin))
                if estimate > _MAX_EXPECTED:
                    raise ConfigError(
                        f"assert_nothing_lost() would check about {estimate:,.0f} due times "
                        f"of task {name!r} up to {instant_text(limit)}, more than "
                        f"{_MAX_EXPECTED:,}; pass an earlier until= or check fewer tasks"
                    )
            occurrence_id = time_occurrence(name, due)
            busy_from = busy_since.get(name)
            if (
                occurrence_id not in accounted
                and occurrence_id not in pending
                and (busy_from is None or due < busy_from)
                and not any(first <= due <= last for first, last in ranges.get(name, ()))
            ):
                lost.append((name, due, trigger))
            due = trigger.next_after(due)
    if lost:
        problems = [
            _explain_lost(timeline, name, due, trigger)
            for name, due, trigger in lost[:_MAX_LISTED]
        ]
        tasks = sorted({name for name, _, _ in lost})
        _fail(
            f"{len(lost)} due time(s) of task(s) {', '.join(map(repr, tasks))} up to "
            f"{instant_text(limit)} were lost: never started, never skipped",
            problems,
            total=len(lost),
        )


def _aware(when: object, what: str) -> datetime:
    if not isinstance(when, datetime) or when.utcoffset() is None:
        raise ConfigError(f"{what} needs an aware datetime, got {when!r}")
    return when.astimezone(UTC)


def _active_intervals(
    timeline: Timeline, only: str | None, limit: datetime
) -> list[tuple[str, Cron | Every | At, datetime, datetime]]:
    """(task, trigger, from, to): when each task's trigger in force was expected to fire.

    Due times count strictly after ``from`` and strictly before ``to``
    (inclusive of ``limit`` when ``to`` is the limit). An interval starts at
    the definition or resume -- or, if the task already reached a later due
    time (the wall clock was stepped back), after that: a scheduler never
    goes back to due times below one it has reached.
    """
    intervals: list[tuple[str, Cron | Every | At, datetime, datetime]] = []
    open_since: dict[str, tuple[TaskDefined, datetime]] = {}
    definitions: dict[str, TaskDefined] = {}
    paused: dict[str, bool] = {}
    reached: dict[str, datetime] = {}

    def opening(name: str, at: datetime) -> datetime:
        latest = reached.get(name)
        return at if latest is None or latest < at else latest

    def close(name: str, at: datetime) -> None:
        opened = open_since.pop(name, None)
        if opened is not None:
            definition, begin = opened
            if isinstance(definition.trigger, _TIME_TRIGGERS) and begin < limit:
                intervals.append((name, definition.trigger, begin, min(at, limit)))

    for record in timeline.records:
        name = record.task
        if only is not None and name != only:
            continue
        if isinstance(record, TaskDefined):
            close(name, record.at)
            if name not in definitions:
                paused[name] = record.policy.paused
            definitions[name] = record
            if not paused[name]:
                begin = record.at
                if isinstance(record.trigger, At) and record.trigger.when <= begin:
                    # A one-off defined after its instant is still due: catch-up
                    # decides whether it runs, and it must say so in the log.
                    begin = record.trigger.when - _MICROSECOND
                open_since[name] = (record, opening(name, begin))
        elif isinstance(record, TaskPaused):
            paused[name] = True
            if not record.note.startswith(MISSING_TARGET_NOTES):
                close(name, record.at)
        elif isinstance(record, TaskResumed):
            paused[name] = False
            if name in definitions and name not in open_since:
                # A due time at the very instant of the resume is to run.
                begin = record.at - _MICROSECOND
                open_since[name] = (definitions[name], opening(name, begin))
        elif isinstance(record, TaskRemoved):
            close(name, record.at)
            definitions.pop(name, None)
            paused.pop(name, None)
        else:
            seen = timeline.occurrence(record.occurrence)
            if seen.kind == "time" and seen.due is not None:
                reached[name] = opening(name, seen.due)
    for name in list(open_since):
        close(name, limit)
    return intervals


def _explain_lost(timeline: Timeline, task: str, due: datetime, trigger: Trigger) -> str:
    """What `chronolog.explain` says about the lost due time, with the harness's notes."""
    lines = [f"task {task!r}, due {instant_text(due)}{local_hint(due, trigger)}: no occurrence "
             f"{time_occurrence(task, due)!r} started or was skipped"]  # fmt: skip
    explanation = explain(timeline.records, task, at=due)
    lines.append(f"  {explanation.verdict}: {explanation.reason}")
    records = [r for r in timeline.records if r.task == task]
    before = [r for r in records if r.at < due]
    after = [r for r in records if r.at >= due]
    if before:
        lines.append(f"  last record of the task before it: {describe_record(before[-1])}")
    if after:
        lines.append(f"  first record of the task from then on: {describe_record(after[0])}")
    else:
        lines.append("  the task has no record after it (was the scheduler still up?)")
    low = before[-1].at if before else due
    high = after[0].at if after else None
    for note in timeline.notes:
        if note.at >= low and (high is None or note.at <= high):
            lines.append(f"  harness: {note.kind} at {instant_text(note.at)} ({note.text})")
    return "\n".join(lines)


# -- replay consistent ---------------------------------------------------------------


def assert_replay_consistent(log: LogLike, *, state: State | Scheduler | None = None) -> None:
    """A restart from this log would see what the live scheduler saw.

    Checks that the log keeps every rule of :func:`chronolog.check_invariants`
    (all of them, not only the duplication ones), that every record survives
    the log's JSON encoding unchanged (a FileLog would replay it as written),
    and -- when ``state`` is given (a ``State`` or a running ``Scheduler``) --
    that ``replay(log)`` equals that live state.
    """
    timeline = _timeline(log, "assert_replay_consistent")
    records = list(timeline.records)
    base = _base(log)
    problems: list[str] = []
    for violation in check_invariants(records, start=base):
        related = (violation.seq, *violation.related)
        problems.append(
            f"{violation}\n  the records involved:\n" + _records_text(timeline, related)
        )
    problems.extend(_codec_problems(records))
    if state is not None:
        live = state.state if isinstance(state, Scheduler) else state
        if not isinstance(live, State):
            raise ConfigError(
                f"assert_replay_consistent(state=...) takes a State or a Scheduler, got {state!r}"
            )
        replayed = replay(records, start=base)
        problems.extend(_state_differences(replayed, live))
    if problems:
        _fail(f"the log does not replay consistently: {len(problems)} problem(s)", problems)


def _codec_problems(records: list[Event]) -> list[str]:
    try:
        read_back = decode_lines(encode_lines(records))
    except (msgspec.EncodeError, msgspec.DecodeError, TypeError, ValueError) as error:
        return [f"the records cannot be written as JSON Lines and read back: {error}"]
    for written, back in zip(records, read_back, strict=True):
        if written != back:
            return [
                f"seq {written.seq} changes when written to a log and read back:\n"
                f"    written:   {written!r}\n    read back: {back!r}"
            ]
    return []


def _state_differences(replayed: State, live: State) -> list[str]:
    if replayed == live:
        return []
    lines: list[str] = []
    if replayed.seq != live.seq:
        lines.append(
            f"the live state has folded up to seq {live.seq}, the log ends at seq "
            f"{replayed.seq} (records the live scheduler saw are not in the log, or the "
            "other way round)"
        )
    live_names, log_names = set(live.task_names()), set(replayed.task_names())
    if live_names != log_names:
        lines.append(f"tasks differ: live {sorted(live_names)}, replayed {sorted(log_names)}")
    for name in sorted(live_names & log_names):
        live_status, log_status = live.status(name), replayed.status(name)
        if live_status != log_status:
            fields = [
                f"{field}: live {getattr(live_status, field)!r}, replayed "
                f"{getattr(log_status, field)!r}"
                for field in live_status.__attrs_attrs__.__dict__
                if getattr(live_status, field) != getattr(log_status, field)
            ]
            lines.append(f"task {name!r}: " + "; ".join(fields))
        live_history = {run.occurrence: run for run in live.history(name)}
        log_history = {run.occurrence: run for run in replayed.history(name)}
        for occurrence in sorted(live_history.keys() ^ log_history.keys()):
            where = "only in the live state" if occurrence in live_history else "only in the log"
            lines.append(f"task {name!r}: occurrence {occurrence!r} is {where}")
    if not lines:
        lines.append("the states differ in de-duplication bookkeeping (watermarks, open sets)")
    return ["live state != replay(log):\n  " + "\n  ".join(lines)]


# -- fires -----------------------------------------------------------------------


def assert_fires(
    timeline: LogLike,
    task: str,
    expected: Iterable[datetime],
    *,
    by: FireBy = "started",
    start: datetime | None = None,
    end: datetime | None = None,
) -> None:
    """``task`` fired at exactly the ``expected`` instants (in ``[start, end)`` if given).

    ``by="started"`` compares when runs started (when the job really ran);
    ``by="due"`` compares the due times of the occurrences that ran. The
    expected instants are aware datetimes in any zone; order does not
    matter, repeats do.
    """
    view = _timeline(timeline, "assert_fires")
    wanted: list[datetime] = []
    for index, when in enumerate(expected):
        wanted.append(_aware(when, f"assert_fires(expected[{index}])"))
    if task not in view.tasks():
        try:
            view.runs(task)
        except UnknownTask as error:
            raise AssertionError(f"task {task!r} never fired: {error}") from None
    actual = view.fire_times(task, start=start, end=end, by=by)
    missing = Counter(wanted) - Counter(actual)
    unexpected = Counter(actual) - Counter(wanted)
    if not missing and not unexpected:
        return
    trigger = _last_trigger(view, task)
    zone = load_zone(trigger.tz) if isinstance(trigger, Cron) and trigger.tz != "UTC" else None
    what = "started" if by == "started" else "ran for due time"
    lines = [
        f"task {task!r} did not fire as expected ({what}): expected {len(wanted)}, "
        f"got {len(actual)}"
    ]
    for label, instants in (
        ("missing (expected, never fired)", missing),
        ("unexpected (fired, not expected)", unexpected),
    ):
        if instants:
            listed = sorted(instants.elements())
            lines.append(f"  {label}: {len(listed)}")
            lines.extend(
                f"    {instant_text(when)}{local_hint(when, trigger)}"
                for when in listed[:_MAX_LISTED]
            )
            if len(listed) > _MAX_LISTED:
                lines.append(f"    … and {len(listed) - _MAX_LISTED} more")
    problems = sorted({*missing, *unexpected})
    marked = [
        seq
        for run in view.runs(task)
        if (run.started if by == "started" else run.due) in unexpected
        for seq in run.seqs
    ]
    lines.append("  the timeline around them:")
    excerpt = view._excerpt(task, problems[:_MAX_LISTED], marked=marked, zone=zone)
    lines.extend(f"    {line}" for line in excerpt.splitlines())
    raise AssertionError("\n".join(lines))


def _last_trigger(timeline: Timeline, task: str) -> Trigger | None:
    trigger: Trigger | None = None
    for record in timeline.records:
        if isinstance(record, TaskDefined) and record.task == task:
            trigger = record.trigger
    return trigger
