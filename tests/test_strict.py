"""Strict folding (``chronolog._strict``): the state a writer starts from.

Every rule the invariant checker names is refused by a strict
``load_state`` with that rule and seq; a record the projection sets aside
although it breaks no rule (the sign misled) is folded as before; and a
sound log folds to what `replay` gives.
"""

from __future__ import annotations

from datetime import timedelta

import msgspec
import pytest
import trio

from chronolog import LogCorrupted, MemoryLog, check_invariants, replay
from chronolog._events import (
    Completed,
    Event,
    Scheduled,
    Skipped,
    SkipReason,
    Started,
    TaskDefined,
    TaskPaused,
    TaskRemoved,
)
from chronolog._ids import time_occurrence
from chronolog._triggers import Every

from .test_invariants import OCC, T0, completed, defined, failed, numbered, scheduled, started

HOUR = timedelta(hours=1)

BROKEN = {
    "started-twice": [defined(), scheduled(), started(), started()],
    "started-after-settled": [defined(), scheduled(), started(), completed(), started()],
    "started-after-failed": [defined(), scheduled(), started(), failed(), started(2)],
    "wrong-attempt": [defined(), scheduled(), started(), failed(retry=True), started(3)],
    "started-while-running": [defined(), scheduled(), started(1), started(2)],
    "not-scheduled": [defined(), started()],
    "finished-without-start": [defined(), scheduled(), completed()],
    "finished-twice": [defined(), scheduled(), started(), completed(), completed()],
    "skipped-while-running": [
        defined(),
        scheduled(),
        started(),
        Skipped(task="backup", at=T0, occurrence=OCC, reason=SkipReason.OVERLAP),
    ],
    "skipped-after-completed": [
        defined(),
        scheduled(),
        started(),
        completed(),
        Skipped(task="backup", at=T0, occurrence=OCC, reason=SkipReason.MISSED),
    ],
    "skipped-twice": [
        defined(),
        scheduled(),
        Skipped(task="backup", at=T0, occurrence=OCC, reason=SkipReason.OVERLAP),
        TaskPaused(task="backup", at=T0),
        Skipped(task="backup", at=T0, occurrence=OCC, reason=SkipReason.PAUSED),
    ],
    "started-while-paused": [defined(), TaskPaused(task="backup", at=T0), scheduled(), started()],
    "unknown-task": [scheduled()],
    "unknown-task-completed": [defined(), msgspec.structs.replace(completed(), task="other")],
    "removed-task": [defined(), TaskRemoved(task="backup", at=T0), scheduled()],
    "removed-task-started": [defined(), TaskRemoved(task="backup", at=T0), started()],
    "version-order": [defined(version=2), defined(version=2)],
    "paused-unknown": [defined(), TaskPaused(task="other", at=T0)],
    "bad-range-count": [
        defined(),
        Skipped(
            task="backup",
            at=T0 + 3 * HOUR,
            occurrence=OCC,
            reason=SkipReason.MISSED,
            due=T0,
            last_due=T0 + 2 * HOUR,
            count=0,
        ),
    ],
    "bad-range-backwards": [
        defined(),
        Skipped(
            task="backup",
            at=T0 + 3 * HOUR,
            occurrence=OCC,
            reason=SkipReason.MISSED,
            due=T0,
            last_due=T0 - HOUR,
            count=3,
        ),
    ],
}


@pytest.mark.parametrize("events", BROKEN.values(), ids=BROKEN.keys())
def test_every_broken_rule_is_refused_with_its_rule_and_seq(events: list[Event]) -> None:
    records = numbered(*events)
    (first, *_) = check_invariants(records)
    with pytest.raises(LogCorrupted) as caught:
        MemoryLog(records).load_state()
    message = str(caught.value)
    assert f"breaks the rule {first.rule} at seq {first.seq}: {first.message}." in message
    assert "No scheduler runs on a log that breaks its rules" in message
    assert "docs/how-to/recover-a-damaged-log.md" in message
    assert MemoryLog(records).load_state(strict=False) == replay(records)


def test_a_sound_log_folds_as_replay_does() -> None:
    records = numbered(
        defined(), scheduled(), started(1), failed(1, retry=True), started(2), completed(2)
    )
    assert MemoryLog(records).load_state() == replay(records)


def test_a_record_the_projection_sets_aside_without_breaking_a_rule_is_folded() -> None:
    """A skip, written late, of a due time the projection counts as settled because a
    later one settled: the strict fold's sign misleads, the checker finds nothing."""
    name = "hourly"
    first, second = T0 + HOUR, T0 + 2 * HOUR
    records = numbered(
        TaskDefined(task=name, at=T0, trigger=Every(HOUR, anchor=T0), target="jobs:h"),
        Scheduled(task=name, at=T0, occurrence=time_occurrence(name, second), due=second),
        Started(task=name, at=second, occurrence=time_occurrence(name, second), attempt=1),
        Completed(task=name, at=second, occurrence=time_occurrence(name, second), attempt=1),
        Skipped(
            task=name,
            at=second,
            occurrence=time_occurrence(name, first),
            reason=SkipReason.MISSED,
            due=first,
        ),
        Scheduled(
            task=name,
            at=second,
            occurrence=time_occurrence(name, second + HOUR),
            due=second + HOUR,
        ),
        Started(
            task="hourly", at=second, occurrence=time_occurrence(name, second + HOUR), attempt=1
        ),
    )
    assert check_invariants(records) == []
    assert MemoryLog(records).load_state() == replay(records)


def test_the_first_broken_rule_is_named_after_a_misleading_sign() -> None:
    name = "hourly"
    first, second = T0 + HOUR, T0 + 2 * HOUR
    occurrence = time_occurrence(name, second)
    records = numbered(
        TaskDefined(task=name, at=T0, trigger=Every(HOUR, anchor=T0), target="jobs:h"),
        Scheduled(task=name, at=T0, occurrence=occurrence, due=second),
        Started(task=name, at=second, occurrence=occurrence, attempt=1),
        Completed(task=name, at=second, occurrence=occurrence, attempt=1),
        Skipped(
            task=name,
            at=second,
            occurrence=time_occurrence(name, first),
            reason=SkipReason.MISSED,
            due=first,
        ),
        Completed(task=name, at=second, occurrence=occurrence, attempt=1),
    )
    with pytest.raises(LogCorrupted, match="breaks the rule finished-without-start at seq 6"):
        MemoryLog(records).load_state()


def test_a_snapshot_is_where_the_strict_fold_starts() -> None:
    """The records a snapshot folds were checked when it was saved; those after it
    are checked against it."""
    records = numbered(defined(), scheduled(), started(), completed(), completed())

    async def check() -> None:
        log = MemoryLog(records[:4])
        await log.save_snapshot(replay(records[:4]))
        await log.append([msgspec.structs.replace(records[4], seq=0)])
        with pytest.raises(LogCorrupted, match="finished-without-start at seq 5"):
            log.load_state()

    trio.run(check)
