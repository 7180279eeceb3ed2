"""Each rule of the invariant checker, broken once, with the sentence it produces."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from chronolog._events import (
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
)
from chronolog._ids import time_occurrence
from chronolog._invariants import Rule, Violation, check_invariants
from chronolog._triggers import Every, Manual

T0 = datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
OCC = time_occurrence("backup", T0)


def numbered(*events: Event) -> list[Event]:
    return [msgspec.structs.replace(e, seq=n) for n, e in enumerate(events, start=1)]


def defined(version: int = 1) -> TaskDefined:
    return TaskDefined(task="backup", at=T0, trigger=Manual(), target="j:b", version=version)


def scheduled(occurrence: str = OCC) -> Scheduled:
    return Scheduled(task="backup", at=T0, occurrence=occurrence, due=T0)


def started(attempt: int = 1, occurrence: str = OCC) -> Started:
    return Started(task="backup", at=T0, occurrence=occurrence, attempt=attempt, node="n1")


def completed(attempt: int = 1) -> Completed:
    return Completed(task="backup", at=T0, occurrence=OCC, attempt=attempt)


def failed(attempt: int = 1, *, retry: bool = False) -> Failed:
    retry_at = T0 + timedelta(minutes=1) if retry else None
    return Failed(
        task="backup", at=T0, occurrence=OCC, attempt=attempt, error="x", retry_at=retry_at
    )


def only(violations: list[Violation]) -> Violation:
    assert len(violations) == 1, violations
    return violations[0]


def test_a_sound_log_has_no_violations() -> None:
    log = numbered(
        defined(),
        scheduled(),
        started(1),
        failed(1, retry=True),
        started(2),
        completed(2),
        defined(version=2),
    )
    assert check_invariants(log) == []


@pytest.mark.parametrize(
    ("events", "rule", "seq", "words"),
    [
        (
            [defined(), scheduled(), started(), started()],
            Rule.STARTED_TWICE,
            4,
            "attempt 1 of 'backup@2026-03-29T01:00:00Z' started twice (first at seq 3",
        ),
        (
            [defined(), scheduled(), started(), completed(), started()],
            Rule.STARTED_AFTER_SETTLED,
            5,
            "completed at seq 4, yet attempt 1 started again",
        ),
        (
            [defined(), scheduled(), started(), failed(), started(2)],
            Rule.STARTED_AFTER_SETTLED,
            5,
            "failed at seq 4, yet attempt 2 started again",
        ),
        (
            [defined(), scheduled(), started(), failed(retry=True), started(3)],
            Rule.WRONG_ATTEMPT,
            5,
            "attempt 3 of 'backup@2026-03-29T01:00:00Z' started; expected attempt 2",
        ),
        (
            [defined(), scheduled(), started(1), started(2)],
            Rule.STARTED_WHILE_RUNNING,
            4,
            "started while attempt 1 (started at seq 3) was still running",
        ),
        (
            [defined(), started()],
            Rule.NOT_SCHEDULED,
            2,
            "but the occurrence was never scheduled",
        ),
        (
            [defined(), scheduled(), completed()],
            Rule.FINISHED_WITHOUT_START,
            3,
            "Completed for attempt 1 of 'backup@2026-03-29T01:00:00Z'; no such attempt is running",
        ),
        (
            [defined(), scheduled(), started(), completed(), completed()],
            Rule.FINISHED_WITHOUT_START,
            5,
            "the occurrence already completed at seq 4",
        ),
        (
            [
                defined(),
                scheduled(),
                started(),
                Skipped(task="backup", at=T0, occurrence=OCC, reason=SkipReason.OVERLAP),
            ],
            Rule.SKIPPED_WHILE_RUNNING,
            4,
            "skipped (overlap) while attempt 1 (started at seq 3) was running",
        ),
        (
            [
                defined(),
                scheduled(),
                started(),
                completed(),
                Skipped(task="backup", at=T0, occurrence=OCC, reason=SkipReason.MISSED),
            ],
            Rule.SKIPPED_AFTER_SETTLED,
            5,
            "skipped (missed) after it completed at seq 4",
        ),
        (
            [defined(), TaskPaused(task="backup", at=T0), scheduled(), started()],
            Rule.STARTED_WHILE_PAUSED,
            4,
            "started while task 'backup' was paused",
        ),
        (
            [scheduled()],
            Rule.UNKNOWN_TASK,
            1,
            "Scheduled for task 'backup', which was never defined",
        ),
        (
            [defined(), TaskRemoved(task="backup", at=T0), scheduled()],
            Rule.REMOVED_TASK,
            3,
            "Scheduled for task 'backup' after it was removed at seq 2",
        ),
        (
            [defined(version=2), defined(version=2)],
            Rule.VERSION_ORDER,
            2,
            "redefined as version 2, not above version 2 defined at seq 1",
        ),
    ],
)
def test_each_broken_rule_is_named_with_its_seq(
    events: list[Event], rule: Rule, seq: int, words: str
) -> None:
    violation = only(check_invariants(numbered(*events)))
    assert (violation.rule, violation.seq) == (rule, seq)
    assert words in violation.message
    assert str(violation).startswith(f"seq {seq}: ")
    assert str(violation).endswith(f"[{rule}]")


def test_seqs_must_strictly_increase() -> None:
    log = numbered(defined(), scheduled())
    log.append(msgspec.structs.replace(started(), seq=2))
    violation = check_invariants(log)[0]
    assert violation.rule is Rule.SEQ_ORDER
    assert violation.message == "seq 2 follows seq 2; seqs must strictly increase"


def test_a_run_of_a_removed_and_redefined_task_is_not_run_twice() -> None:
    log = numbered(
        defined(),
        scheduled(),
        started(),
        completed(),
        TaskRemoved(task="backup", at=T0),
        defined(),
        scheduled(),
        started(),
    )
    violation = only(check_invariants(log))
    assert violation.rule is Rule.STARTED_AFTER_SETTLED
    assert violation.related == (4,)


def test_a_manual_run_may_repeat_under_a_new_id() -> None:
    manual = [
        Scheduled(task="backup", at=T0, occurrence=f"backup!{token}", due=T0) for token in "ab"
    ]
    log = numbered(
        defined(),
        manual[0],
        started(occurrence="backup!a"),
        manual[1],
        started(occurrence="backup!b"),
    )
    assert check_invariants(log) == []


def test_every_violation_is_reported_not_only_the_first() -> None:
    log = numbered(defined(), started(), started(), completed(), completed())
    rules = [v.rule for v in check_invariants(log)]
    assert rules == [Rule.NOT_SCHEDULED, Rule.STARTED_TWICE, Rule.FINISHED_WITHOUT_START]


def test_an_occurrence_skipped_twice_is_settled_twice() -> None:
    """Issue 13: under load, ``Skipped overlap``, ``TaskPaused``, ``Skipped paused``
    for one occurrence passed the checker, which let a skip follow a skip."""
    log = numbered(
        defined(),
        scheduled(),
        Skipped(task="backup", at=T0, occurrence=OCC, reason=SkipReason.OVERLAP),
        TaskPaused(task="backup", at=T0),
        Skipped(task="backup", at=T0, occurrence=OCC, reason=SkipReason.PAUSED),
    )
    violation = only(check_invariants(log))
    assert (violation.rule, violation.seq, violation.related) == (
        Rule.SKIPPED_AFTER_SETTLED,
        5,
        (3,),
    )
    assert violation.message == (
        "occurrence 'backup@2026-03-29T01:00:00Z' settled twice: skipped (paused) after it "
        "was skipped at seq 3"
    )


# -- ranges of missed due times --------------------------------------------------------


MINUTELY = Every(timedelta(minutes=1), anchor=T0)


def minutely() -> TaskDefined:
    return TaskDefined(task="backup", at=T0, trigger=MINUTELY, target="j:b")


def missed_range(
    first: datetime, last: datetime | None, count: int, *, at: datetime | None = None
) -> Skipped:
    return Skipped(
        task="backup",
        at=at if at is not None else T0 + timedelta(hours=2),
        occurrence=time_occurrence("backup", first),
        reason=SkipReason.MISSED,
        due=first,
        last_due=last,
        count=count,
    )


def test_a_range_settles_every_due_time_in_it() -> None:
    first, last = T0 + timedelta(minutes=1), T0 + timedelta(minutes=100)
    inside = time_occurrence("backup", T0 + timedelta(minutes=50))
    log = numbered(
        minutely(),
        missed_range(first, last, 100),
        Started(task="backup", at=T0 + timedelta(hours=2), occurrence=inside, attempt=1),
    )
    violation = only(check_invariants(log))
    assert violation.rule is Rule.STARTED_AFTER_SETTLED
    assert violation.message == (
        f"occurrence {inside!r} was skipped as missed at seq 2, in the range of due times "
        "from 2026-03-29T01:01:00+00:00 to 2026-03-29T02:40:00+00:00, yet attempt 1 started"
    )
    assert violation.related == (2,)


def test_a_sound_range_breaks_no_rule_and_the_next_due_time_may_run() -> None:
    first, last = T0 + timedelta(minutes=1), T0 + timedelta(minutes=100)
    after = time_occurrence("backup", T0 + timedelta(minutes=101))
    due = T0 + timedelta(minutes=101)
    log = numbered(
        minutely(),
        missed_range(first, last, 100),
        Scheduled(task="backup", at=due, occurrence=after, due=due),
        Started(task="backup", at=due, occurrence=after, attempt=1),
    )
    assert check_invariants(log) == []


@pytest.mark.parametrize(
    ("first_minute", "last_minute", "count", "message"),
    [
        (
            1,
            100,
            0,
            "range skip of 'backup@2026-03-29T01:01:00Z' (missed) has count 0; a range "
            "stands for at least 2 due times (a single one is a plain skip, without last_due)",
        ),
        (
            10,
            5,
            6,
            "range skip of 'backup@2026-03-29T01:10:00Z' (missed) has last_due "
            "2026-03-29T01:05:00+00:00, not after its due time 2026-03-29T01:10:00+00:00",
        ),
        (
            1,
            200,
            200,
            "range skip of 'backup@2026-03-29T01:01:00Z' (missed) has last_due "
            "2026-03-29T04:20:00+00:00, after 2026-03-29T03:00:00+00:00 when it was written: "
            "only due times that passed can be missed",
        ),
        (
            1,
            10,
            11,
            "range skip of 'backup@2026-03-29T01:01:00Z' (missed) counts 11 due times from "
            "2026-03-29T01:01:00+00:00 to 2026-03-29T01:10:00+00:00, but the task's trigger "
            "produces only 10 there",
        ),
    ],
)
def test_a_hand_edited_range_that_cannot_be_is_flagged(
    first_minute: int, last_minute: int, count: int, message: str
) -> None:
    first = T0 + timedelta(minutes=first_minute)
    last = T0 + timedelta(minutes=last_minute)
    violation = only(check_invariants(numbered(minutely(), missed_range(first, last, count))))
    assert violation.rule is Rule.BAD_RANGE
    assert violation.seq == 2
    assert violation.message == message


def test_a_bad_range_settles_only_its_first_occurrence_in_the_checker_and_the_fold() -> None:
    from chronolog import OccurrenceState, replay

    first, last = T0 + timedelta(minutes=1), T0 + timedelta(minutes=10)
    log = numbered(minutely(), missed_range(first, last, 0))
    state = replay(log)
    inside = T0 + timedelta(minutes=5)
    assert state.occurrence_state("backup", time_occurrence("backup", inside), inside) is (
        OccurrenceState.NEW
    )
    assert state.status("backup").skip_count == 1


def test_a_range_that_starts_at_a_settled_due_time_settles_it_twice() -> None:
    ran = T0 + timedelta(minutes=5)
    occurrence = time_occurrence("backup", ran)
    log = numbered(
        minutely(),
        Scheduled(task="backup", at=T0, occurrence=occurrence, due=ran),
        Started(task="backup", at=ran, occurrence=occurrence, attempt=1),
        Completed(task="backup", at=ran, occurrence=occurrence, attempt=1),
        missed_range(T0 + timedelta(minutes=1), T0 + timedelta(minutes=10), 10),
    )
    violation = only(check_invariants(log))
    assert violation.rule is Rule.SKIPPED_AFTER_SETTLED
    assert violation.message == (
        "range skip of 'backup@2026-03-29T01:01:00Z' (missed) starts at a due time that "
        "settled already (due times up to 2026-03-29T01:05:00+00:00 have)"
    )
