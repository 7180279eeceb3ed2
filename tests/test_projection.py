"""Example tests for the projection: views, de-dup questions, bounded memory."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import msgspec
import pytest

from chronolog import UnknownTask
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
    TaskResumed,
    decode_event,
    encode_event,
)
from chronolog._ids import time_occurrence
from chronolog._invariants import check_invariants
from chronolog._policies import Policy
from chronolog._projection import OccurrenceState, Outcome, State, apply, replay
from chronolog._triggers import Manual

if TYPE_CHECKING:
    from collections.abc import Iterator

T0 = datetime(2026, 11, 1, 5, 30, tzinfo=UTC)


def numbered(*events: Event) -> list[Event]:
    return [msgspec.structs.replace(e, seq=n) for n, e in enumerate(events, start=1)]


def defined(task: str = "backup", **policy: object) -> TaskDefined:
    return TaskDefined(
        task=task, at=T0, trigger=Manual(), target="jobs:backup", policy=Policy(**policy)
    )


def one_run(task: str, due: datetime, *, error: str | None = None) -> list[Event]:
    occurrence = time_occurrence(task, due)
    finish: Event = (
        Completed(task=task, at=due, occurrence=occurrence, attempt=1, result={"rows": 3})
        if error is None
        else Failed(task=task, at=due, occurrence=occurrence, attempt=1, error=error)
    )
    return [
        Scheduled(task=task, at=due, occurrence=occurrence, due=due),
        Started(task=task, at=due, occurrence=occurrence, attempt=1, node="n1"),
        finish,
    ]


def test_status_reflects_runs_errors_and_skips() -> None:
    due2 = T0 + timedelta(days=1)
    due3 = T0 + timedelta(days=2)
    skipped = time_occurrence("backup", due3)
    log = numbered(
        defined(),
        *one_run("backup", T0),
        *one_run("backup", due2, error="disk full"),
        Skipped(task="backup", at=due2, occurrence=skipped, reason=SkipReason.MISSED, due=due3),
    )
    status = replay(log).status("backup")
    assert (status.run_count, status.error_count, status.skip_count) == (2, 1, 1)
    assert status.last_error == "disk full"
    assert status.last_result is None
    assert status.last_run == due2
    assert status.running == ()
    assert status.state == "idle"


def test_history_is_newest_first_and_shows_outcomes() -> None:
    log = numbered(defined(), *one_run("backup", T0), *one_run("backup", T0 + timedelta(1)))
    runs = replay(log).history("backup")
    assert [run.due for run in runs] == [T0 + timedelta(1), T0]
    assert all(run.outcome is Outcome.COMPLETED for run in runs)
    assert runs[0].result == {"rows": 3}
    assert runs[0].attempts == 1
    assert replay(log).history("backup", limit=1) == runs[:1]


def test_retries_keep_the_occurrence_open_until_the_last_attempt() -> None:
    occurrence = time_occurrence("backup", T0)
    retry_at = T0 + timedelta(seconds=30)
    log = numbered(
        defined(),
        Scheduled(task="backup", at=T0, occurrence=occurrence, due=T0),
        Started(task="backup", at=T0, occurrence=occurrence, attempt=1),
        Failed(
            task="backup", at=T0, occurrence=occurrence, attempt=1, error="x", retry_at=retry_at
        ),
    )
    state = replay(log)
    assert state.occurrence_state("backup", occurrence) is OccurrenceState.RETRY_PENDING
    assert state.status("backup").next_run == retry_at
    assert not state.may_start("backup", occurrence, 1)
    assert not state.may_start("backup", occurrence, 3)
    assert state.may_start("backup", occurrence, 2)
    state = apply(
        state, Started(seq=5, task="backup", at=retry_at, occurrence=occurrence, attempt=2)
    )
    assert state.occurrence_state("backup", occurrence) is OccurrenceState.RUNNING
    assert state.status("backup").running == (occurrence,)
    state = apply(
        state, Completed(seq=6, task="backup", at=retry_at, occurrence=occurrence, attempt=2)
    )
    assert state.occurrence_state("backup", occurrence, T0) is OccurrenceState.SETTLED
    assert state.history("backup")[0].attempts == 2
    assert state.history("backup")[0].started == T0


def test_settled_time_occurrences_are_never_new_again() -> None:
    state = replay(numbered(defined(), *one_run("backup", T0)))
    earlier = T0 - timedelta(hours=1)
    assert not state.may_schedule("backup", time_occurrence("backup", T0), T0)
    # Anything due at or before the watermark is settled, seen or not.
    assert not state.may_schedule("backup", time_occurrence("backup", earlier), earlier)
    later = T0 + timedelta(hours=1)
    assert state.may_schedule("backup", time_occurrence("backup", later), later)
    # Manual ids are unique by construction: never compared with the watermark.
    assert state.may_schedule("backup", "backup!abc", earlier)


def test_a_settled_occurrence_scheduled_again_is_ignored() -> None:
    log = numbered(defined(), *one_run("backup", T0))
    again = Scheduled(task="backup", at=T0, occurrence=time_occurrence("backup", T0), due=T0)
    state = replay([*log, msgspec.structs.replace(again, seq=len(log) + 1)])
    assert state.open_occurrence_count() == 0


def test_pause_resume_and_removal() -> None:
    log = numbered(defined(), TaskPaused(task="backup", at=T0, note="disk full"))
    state = replay(log)
    assert state.status("backup").paused
    assert state.status("backup").note == "disk full"
    assert state.status("backup").state == "paused"
    state = apply(state, TaskResumed(seq=3, task="backup", at=T0, note="fixed"))
    assert not state.status("backup").paused
    state = apply(state, TaskRemoved(seq=4, task="backup", at=T0))
    assert "backup" not in state
    assert state.tasks() == []


def test_a_task_created_paused_starts_paused() -> None:
    assert replay(numbered(defined(paused=True))).status("backup").paused


def test_a_removed_task_defined_again_keeps_its_watermark() -> None:
    log = numbered(
        defined(),
        *one_run("backup", T0),
        TaskRemoved(task="backup", at=T0),
        defined(),
    )
    state = replay(log)
    assert state.status("backup").run_count == 0
    assert not state.may_schedule("backup", time_occurrence("backup", T0), T0)


def test_unknown_task_names_the_closest_one() -> None:
    state = replay(numbered(defined("backup"), defined("report")))
    with pytest.raises(UnknownTask, match=r"no task named 'bakup'; did you mean 'backup'\?"):
        state.status("bakup")
    with pytest.raises(KeyError):
        state.history("nothing-like-it")


def test_records_for_unknown_tasks_change_nothing_but_seq() -> None:
    state = replay(numbered(defined(), *one_run("ghost", T0)))
    assert state.task_names() == ["backup"]
    assert state.seq == 4


def test_a_conflicting_claim_does_not_change_the_state() -> None:
    occurrence = time_occurrence("backup", T0)
    log = numbered(
        defined(),
        Scheduled(task="backup", at=T0, occurrence=occurrence, due=T0),
        Started(task="backup", at=T0, occurrence=occurrence, attempt=1, node="n1"),
    )
    state = replay(log)
    twin = apply(
        state, Started(seq=4, task="backup", at=T0, occurrence=occurrence, attempt=1, node="n2")
    )
    assert twin.history("backup")[0].node == "n1"
    assert twin.status("backup").run_count == 1


def test_apply_leaves_its_input_alone() -> None:
    state = replay(numbered(defined()))
    before = state.copy()
    after = apply(state, msgspec.structs.replace(one_run("backup", T0)[0], seq=2))
    assert state == before
    assert after != before


def test_history_limit_bounds_the_window() -> None:
    events: list[Event] = [defined()]
    for day in range(30):
        events.extend(one_run("backup", T0 + timedelta(days=day)))
    state = replay(numbered(*events), history_limit=7)
    assert len(state.history("backup")) == 7
    assert state.status("backup").run_count == 30
    with pytest.raises(ValueError, match="history_limit"):
        State(history_limit=0)


def million_runs(task: str) -> Iterator[Event]:
    """1,000,000 runs of one task as a stream (never held in memory at once)."""
    seq = 1
    yield msgspec.structs.replace(defined(task), seq=seq)
    replace = msgspec.structs.replace
    for minute in range(1_000_000):
        due = T0 + timedelta(minutes=minute)
        for event in one_run(task, due):
            seq += 1
            yield replace(event, seq=seq)


def deep_size(state: State) -> int:
    """Approximate bytes held by the de-dup part of a state (tasks, open, window)."""
    seen: set[int] = set()
    stack: list[object] = [state._tasks]
    total = 0
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        if isinstance(obj, dict):
            stack.extend(obj.keys())
            stack.extend(obj.values())
        elif isinstance(obj, (list, tuple, set, frozenset)) or type(obj).__name__ == "deque":
            stack.extend(obj)  # type: ignore[call-overload]
        elif hasattr(obj, "__dict__"):
            stack.extend(vars(obj).values())
        elif hasattr(obj, "__slots__"):
            stack.extend(getattr(obj, name) for name in obj.__slots__ if hasattr(obj, name))
    return total


def test_dedup_state_stays_small_over_a_million_runs() -> None:
    state = replay(million_runs("backup"), history_limit=50)
    status = state.status("backup")
    assert status.run_count == 1_000_000
    assert state.open_occurrence_count() == 0
    assert len(state.history("backup")) == 50
    # The same task after 100 runs holds about as much as after a million.
    small = replay(
        (e for e, _ in zip(million_runs("backup"), range(301), strict=False)), history_limit=50
    )
    assert small.status("backup").run_count == 100
    assert deep_size(state) < 2 * deep_size(small) + 4096


def test_an_occurrence_skipped_before_its_due_time_leaves_earlier_ones_free() -> None:
    """Redefining at 12:00 skips the old 13:00 occurrence; the new 12:30 may still run."""
    noon = datetime(2026, 3, 27, 12, 0, tzinfo=UTC)
    old = time_occurrence("job", noon + timedelta(hours=1))
    log = numbered(
        defined("job"),
        Scheduled(task="job", at=noon, occurrence=old, due=noon + timedelta(hours=1)),
        Skipped(task="job", at=noon, occurrence=old, reason=SkipReason.REDEFINED),
    )
    state = replay(log)
    half_past = noon + timedelta(minutes=30)
    assert state.may_schedule("job", time_occurrence("job", half_past), half_past)
    assert not state.may_schedule("job", old, noon + timedelta(hours=1))
    assert state.watermark("job") is None
    assert check_invariants([*log, *numbered_from(4, *one_run("job", half_past))]) == []


def numbered_from(first: int, *events: Event) -> list[Event]:
    return [msgspec.structs.replace(e, seq=n) for n, e in enumerate(events, start=first)]


# -- a range of due times missed in one outage -----------------------------------------


def missed_range(first: datetime, last: datetime, count: int) -> Skipped:
    return Skipped(
        task="backup",
        at=last + timedelta(minutes=1),
        occurrence=time_occurrence("backup", first),
        reason=SkipReason.MISSED,
        due=first,
        last_due=last,
        count=count,
    )


def test_a_range_settles_every_due_time_in_it_and_counts_each_as_a_skip() -> None:
    first, last = T0 + timedelta(minutes=1), T0 + timedelta(minutes=120)
    state = replay(numbered(defined(), missed_range(first, last, 120)))
    for minute in (1, 60, 120):
        due = T0 + timedelta(minutes=minute)
        occurrence = time_occurrence("backup", due)
        assert state.occurrence_state("backup", occurrence, due) is OccurrenceState.SETTLED
    after = T0 + timedelta(minutes=121)
    assert state.may_schedule("backup", time_occurrence("backup", after), after)
    assert state.watermark("backup") == last
    assert state.status("backup").skip_count == 120
    # One history entry: "120 runs missed from 05:31 to 07:30".
    (run,) = state.history("backup")
    assert (run.due, run.last_due, run.count, run.skip_reason) == (
        first,
        last,
        120,
        SkipReason.MISSED,
    )


def test_a_single_skip_is_written_as_before_ranges_existed() -> None:
    single = Skipped(
        task="backup", at=T0, occurrence="backup@x", reason=SkipReason.MISSED, due=T0, seq=3
    )
    assert encode_event(single) == (
        b'{"type":"Skipped","seq":3,"task":"backup","at":"2026-11-01T05:30:00Z",'
        b'"occurrence":"backup@x","reason":"missed","due":"2026-11-01T05:30:00Z"}'
    )
    ranged = msgspec.structs.replace(single, last_due=T0 + timedelta(hours=1), count=61)
    assert encode_event(ranged).endswith(b',"last_due":"2026-11-01T06:30:00Z","count":61}')
    assert decode_event(encode_event(ranged)) == ranged
