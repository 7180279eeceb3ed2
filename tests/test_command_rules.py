"""The command rules: what add, pause, resume, remove and run-now record.

Pure functions of a State, so these tests need no event loop: each folds a
short history, asks a rule for its events, and checks them record by
record, at exact instants.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import msgspec
import pytest

from chronolog import (
    At,
    Completed,
    ConfigError,
    Cron,
    DuplicateTask,
    Every,
    Manual,
    Policy,
    Retry,
    Scheduled,
    Skipped,
    SkipReason,
    Started,
    TaskDefined,
    TaskPaused,
    TaskRemoved,
    TaskResumed,
    UnknownTask,
    check_invariants,
    occurrence_id,
    replay,
)
from chronolog._command_rules import (
    define_events,
    pause_events,
    redefinition_skips,
    remove_events,
    resume_events,
    run_now_events,
)

if TYPE_CHECKING:
    from chronolog import Event, State, Trigger

T0 = datetime(2026, 3, 27, 12, 0, tzinfo=UTC)
BERLIN_0230 = Cron("30 2 * * *", tz="Europe/Berlin")
#: 02:30 CET on 2026-03-28 is 01:30Z.
TONIGHT = datetime(2026, 3, 28, 1, 30, tzinfo=UTC)


class History:
    """Records folded as a log would hold them: seqs assigned in order."""

    def __init__(self) -> None:
        self.records: list[Event] = []

    def append(self, events: list[Event]) -> list[Event]:
        for event in events:
            self.records.append(msgspec.structs.replace(event, seq=len(self.records) + 1))
        return events

    @property
    def state(self) -> State:
        return replay(self.records)

    def define(
        self, name: str, trigger: Trigger, at: datetime, target: str = "app:job", **policy: object
    ) -> list[Event]:
        return self.append(
            define_events(self.state, name, trigger, target, Policy(**policy), at)  # type: ignore[arg-type]
        )


def kinds(events: list[Event]) -> list[str]:
    return [type(event).__name__ for event in events]


def test_a_new_task_is_defined_with_its_first_occurrence_planned() -> None:
    history = History()
    events = history.define("backup", BERLIN_0230, T0)
    assert kinds(events) == ["TaskDefined", "Scheduled"]
    scheduled = events[1]
    assert isinstance(scheduled, Scheduled)
    assert (scheduled.occurrence, scheduled.due, scheduled.at) == (
        occurrence_id("backup", TONIGHT),
        TONIGHT,
        T0,
    )
    assert history.state.status("backup").next_run == TONIGHT


def test_a_task_defined_paused_plans_nothing() -> None:
    history = History()
    assert kinds(history.define("backup", BERLIN_0230, T0, paused=True)) == ["TaskDefined"]
    status = history.state.status("backup")
    assert (status.paused, status.next_run, status.state) == (True, None, "paused")


def test_a_one_off_already_past_is_planned_not_dropped() -> None:
    """Catch-up decides what becomes of it; the rule only refuses to lose it."""
    history = History()
    past = T0 - timedelta(seconds=1)
    events = history.define("once", At(past), T0)
    assert kinds(events) == ["TaskDefined", "Scheduled"]
    assert events[1] == Scheduled(
        task="once", at=T0, occurrence=occurrence_id("once", past), due=past
    )
    assert history.state.status("once").state == "scheduled"


def test_an_identical_definition_records_nothing() -> None:
    history = History()
    history.define("backup", BERLIN_0230, T0)
    assert define_events(history.state, "backup", BERLIN_0230, "app:job", Policy(), T0) == []


@pytest.mark.parametrize(
    ("change", "value"),
    [
        ("timeout", timedelta(minutes=5)),
        ("target", "__main__:job"),
        ("retry", None),
        ("jitter", timedelta(seconds=30)),
    ],
)
def test_a_redefinition_that_keeps_the_trigger_keeps_the_pending_occurrence(
    change: str, value: object
) -> None:
    history = History()
    history.define("backup", BERLIN_0230, T0)
    policy = Policy()
    target = "app:job"
    if change == "target":
        target = str(value)
    elif change == "retry":
        policy = Policy(retry=Retry(max_attempts=3))
    else:
        policy = Policy(**{change: value})  # type: ignore[arg-type]
    later = T0 + timedelta(hours=13)  # 01:00Z, half an hour before the run
    events = define_events(history.state, "backup", BERLIN_0230, target, policy, later)
    assert kinds(events) == ["TaskDefined"]
    history.append(events)
    state = history.state
    assert state.status("backup").version == 2
    assert state.status("backup").next_run == TONIGHT
    assert state.next_occurrence("backup") == (
        occurrence_id("backup", TONIGHT),
        TONIGHT,
        True,
        T0,
    )


def test_a_new_trigger_keeps_the_due_times_it_produces_and_plans_its_earlier_ones() -> None:
    history = History()
    history.define("sync", BERLIN_0230, T0)
    hourly = Cron("30 * * * *", tz="Europe/Berlin")
    events = history.append(
        define_events(history.state, "sync", hourly, "app:job", Policy(), T0 + timedelta(hours=1))
    )
    # 02:30 CET tonight is also an hourly due time: kept. 13:30 CET (12:30Z) comes first.
    assert kinds(events) == ["TaskDefined", "Scheduled"]
    first = datetime(2026, 3, 27, 13, 30, tzinfo=UTC)
    assert isinstance(events[1], Scheduled)
    assert events[1].due == first
    open_ids = [run.occurrence for run in history.state.open_occurrences("sync")]
    assert open_ids == [occurrence_id("sync", TONIGHT), occurrence_id("sync", first)]


def test_a_new_trigger_skips_only_the_due_times_it_does_not_produce() -> None:
    history = History()
    history.define("backup", BERLIN_0230, T0)
    later = T0 + timedelta(hours=1)
    events = define_events(
        history.state, "backup", Cron("45 2 * * *", tz="Europe/Berlin"), "app:job", Policy(), later
    )
    assert kinds(events) == ["Skipped", "TaskDefined", "Scheduled"]
    skipped = events[0]
    assert isinstance(skipped, Skipped)
    assert (skipped.occurrence, skipped.reason, skipped.at) == (
        occurrence_id("backup", TONIGHT),
        SkipReason.REDEFINED,
        later,
    )
    assert redefinition_skips(history.state, "backup", BERLIN_0230, later) == []


def test_duplicate_definitions_under_error_and_keep() -> None:
    history = History()
    history.define("backup", BERLIN_0230, T0)
    other = Cron("0 4 * * *")
    with pytest.raises(DuplicateTask, match="if_exists='update'"):
        define_events(history.state, "backup", other, "app:job", Policy(), T0, "error")
    assert define_events(history.state, "backup", other, "app:job", Policy(), T0, "keep") == []


def test_an_every_keeps_its_anchor_when_declared_again_later() -> None:
    history = History()
    history.define("tick", Every(timedelta(minutes=10)), T0 + timedelta(microseconds=123))
    anchored = history.state.definition("tick").trigger
    assert isinstance(anchored, Every)
    assert anchored.anchor == T0
    later = T0 + timedelta(hours=5, minutes=3)
    assert (
        define_events(
            history.state, "tick", Every(timedelta(minutes=10)), "app:job", Policy(), later
        )
        == []
    )


def test_pause_keeps_the_pending_occurrence_scheduled() -> None:
    history = History()
    history.define("backup", BERLIN_0230, T0)
    events = history.append(pause_events(history.state, "backup", "disk full", T0))
    assert events == [TaskPaused(task="backup", at=T0, note="disk full")]
    status = history.state.status("backup")
    assert (status.paused, status.next_run) == (True, TONIGHT)
    assert pause_events(history.state, "backup", "again", T0) == []


def test_a_short_pause_costs_nothing() -> None:
    """Paused at 13:00 and resumed at 13:05: tonight's 02:30 stays planned."""
    history = History()
    history.define("backup", BERLIN_0230, T0)
    history.append(pause_events(history.state, "backup", "", T0 + timedelta(hours=1)))
    resumed = T0 + timedelta(hours=1, minutes=5)
    events = history.append(resume_events(history.state, "backup", "", resumed))
    assert events == [TaskResumed(task="backup", at=resumed)]
    assert history.state.status("backup").next_run == TONIGHT
    assert check_invariants(history.records) == []


def test_a_resume_after_the_due_time_skips_it_as_paused_and_plans_from_the_resume() -> None:
    """No scheduler ran to skip it when it came (paused and resumed from the command line)."""
    history = History()
    history.define("backup", BERLIN_0230, T0)
    history.append(pause_events(history.state, "backup", "", T0 + timedelta(hours=1)))
    resumed = TONIGHT + timedelta(hours=3)
    events = history.append(resume_events(history.state, "backup", "", resumed))
    # Skipped while still paused, then resumed, then the next run planned.
    assert kinds(events) == ["Skipped", "TaskResumed", "Scheduled"]
    assert isinstance(events[0], Skipped)
    assert (events[0].occurrence, events[0].reason) == (
        occurrence_id("backup", TONIGHT),
        SkipReason.PAUSED,
    )
    assert isinstance(events[2], Scheduled)
    # The paused period is not caught up. The next night is the spring-forward
    # one: 02:30 does not exist, it runs at 03:00 CEST.
    assert events[2].due == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    assert check_invariants(history.records) == []


def test_a_due_time_at_the_very_instant_of_the_resume_runs() -> None:
    history = History()
    history.define("tick", Every(timedelta(minutes=10), anchor=T0), T0, paused=True)
    resumed = T0 + timedelta(minutes=30)
    events = resume_events(history.state, "tick", "", resumed)
    assert kinds(events) == ["TaskResumed", "Scheduled"]
    assert isinstance(events[1], Scheduled)
    assert events[1].due == resumed


def test_a_one_off_whose_instant_passed_while_paused_is_skipped_at_the_resume() -> None:
    history = History()
    when = T0 + timedelta(hours=1)
    history.define("once", At(when), T0, paused=True)
    assert history.state.status("once").state == "paused"
    events = history.append(resume_events(history.state, "once", "", when + timedelta(hours=1)))
    assert kinds(events) == ["Skipped", "TaskResumed"]
    assert isinstance(events[0], Skipped)
    assert (events[0].reason, events[0].due) == (SkipReason.PAUSED, when)
    status = history.state.status("once")
    assert (status.state, status.skip_count, status.next_run) == ("finished", 1, None)


def test_run_now_works_on_a_finished_task() -> None:
    history = History()
    when = T0 + timedelta(minutes=1)
    history.define("once", At(when), T0)
    occurrence = occurrence_id("once", when)
    history.append([Started(task="once", at=when, occurrence=occurrence, attempt=1)])
    history.append([Completed(task="once", at=when, occurrence=occurrence, attempt=1)])
    assert history.state.status("once").state == "finished"
    manual, events = run_now_events(history.state, "once", when + timedelta(hours=1))
    assert manual.startswith("once!")
    assert kinds(events) == ["Scheduled"]
    history.append(events)
    status = history.state.status("once")
    # A manual run pending is open, so the task is not finished while it waits.
    assert (status.state, status.finished) == ("scheduled", False)


def test_a_manual_task_is_never_finished() -> None:
    history = History()
    history.define("by-hand", Manual(), T0)
    status = history.state.status("by-hand")
    assert (status.state, status.finished, status.next_run) == ("idle", False, None)


def test_max_runs_reached_is_finished() -> None:
    history = History()
    history.define("twice", Every(timedelta(minutes=1), anchor=T0), T0, max_runs=1)
    occurrence = occurrence_id("twice", T0 + timedelta(minutes=1))
    history.append(
        [Started(task="twice", at=T0 + timedelta(minutes=1), occurrence=occurrence, attempt=1)]
    )
    history.append(
        [Completed(task="twice", at=T0 + timedelta(minutes=1), occurrence=occurrence, attempt=1)]
    )
    assert history.state.status("twice").state == "finished"


def test_commands_name_unknown_tasks() -> None:
    history = History()
    history.define("backup", BERLIN_0230, T0)
    with pytest.raises(UnknownTask, match="did you mean 'backup'"):
        pause_events(history.state, "backpu", "", T0)
    with pytest.raises(UnknownTask):
        resume_events(history.state, "nope", "", T0)


def test_a_redefined_task_that_was_removed_never_plans_a_settled_due_time() -> None:
    history = History()
    when = T0 + timedelta(minutes=1)
    history.define("once", At(when), T0)
    occurrence = occurrence_id("once", when)
    history.append([Started(task="once", at=when, occurrence=occurrence, attempt=1)])
    history.append([Completed(task="once", at=when, occurrence=occurrence, attempt=1)])
    history.append(remove_events(history.state, "once", when))
    events = history.define("once", At(when), when + timedelta(hours=1))
    assert kinds(events) == ["TaskDefined"]
    assert history.state.status("once").state == "finished"
    assert isinstance(history.records[0], TaskDefined)


@pytest.mark.parametrize(
    ("note", "says"),
    [
        ("x" * 1001, "1001 characters long; a note holds at most 1000"),
        ("first line\nsecond line", "control characters"),
        ("tab\there", "control characters"),
        ("nul\0", "control characters"),
    ],
)
def test_a_note_is_one_line_of_at_most_1000_printable_characters(note: str, says: str) -> None:
    history = History()
    history.define("backup", BERLIN_0230, T0)
    with pytest.raises(ConfigError, match=says):
        pause_events(history.state, "backup", note, T0)
    history.append(pause_events(history.state, "backup", "", T0))
    with pytest.raises(ConfigError, match=says):
        resume_events(history.state, "backup", note, T0)


def test_a_note_of_exactly_1000_characters_is_kept_whole() -> None:
    history = History()
    history.define("backup", BERLIN_0230, T0)
    (paused,) = history.append(pause_events(history.state, "backup", "é" * 1000, T0))
    assert isinstance(paused, TaskPaused)
    assert paused.note == "é" * 1000


def test_a_removal_keeps_its_note_and_refuses_one_status_cannot_show() -> None:
    history = History()
    history.define("backup", BERLIN_0230, T0)
    with pytest.raises(ConfigError, match="control characters"):
        remove_events(history.state, "backup", T0, "two\nlines")
    events = history.append(remove_events(history.state, "backup", T0, "moved to cron"))
    assert events[-1] == TaskRemoved(task="backup", at=T0, note="moved to cron")
    assert kinds(events) == ["Skipped", "TaskRemoved"]


def test_a_pause_settles_due_times_that_passed_unrun_before_it() -> None:
    """Found by the scheduler machine: a task whose actor was held up (a full
    disk, a target it could not import) is paused at 12:31; its trigger's due
    times after the last one scheduled and up to the pause -- 12:20, 12:30 --
    ran nowhere. The pause records them as one missed range, so they are not
    lost in the paused period that follows (never caught up)."""
    history = History()
    every_10 = Every(timedelta(minutes=10), anchor=T0)
    history.define("sync", every_10, T0)  # Scheduled 12:10
    paused_at = T0 + timedelta(minutes=31)
    events = pause_events(history.state, "sync", "held up", paused_at)
    assert events == [
        Skipped(
            task="sync",
            at=paused_at,
            occurrence=occurrence_id("sync", T0 + timedelta(minutes=20)),
            reason=SkipReason.MISSED,
            due=T0 + timedelta(minutes=20),
            last_due=T0 + timedelta(minutes=30),
            count=2,
        ),
        TaskPaused(task="sync", at=paused_at, note="held up"),
    ]
    history.append(events)
    assert check_invariants(history.records) == []
    # On time, nothing passed unrun: the pause is the pause alone.
    history = History()
    history.define("sync", every_10, T0)
    assert kinds(pause_events(history.state, "sync", "", T0 + timedelta(minutes=9))) == [
        "TaskPaused"
    ]
