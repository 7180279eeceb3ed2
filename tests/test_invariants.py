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
from chronolog._triggers import Manual

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
