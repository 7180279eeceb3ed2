"""Timeline: the questions tests ask of a log, and the table it renders."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import msgspec
import pytest

from chronolog import (
    Completed,
    ConfigError,
    Cron,
    Every,
    Failed,
    Manual,
    MemoryLog,
    Outcome,
    Scheduled,
    Skipped,
    SkipReason,
    Started,
    TaskDefined,
    TaskPaused,
    TaskRemoved,
    TaskResumed,
    UnknownTask,
)
from chronolog.testing import Note, Timeline

if TYPE_CHECKING:
    from chronolog import Event

T0 = datetime(2026, 10, 24, 22, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def numbered(*events: Event) -> list[Event]:
    return [msgspec.structs.replace(event, seq=n) for n, event in enumerate(events, start=1)]


def occurrence(task: str, due: datetime) -> str:
    return f"{task}@{due.astimezone(UTC).replace(tzinfo=None).isoformat()}Z"


def sample() -> list[Event]:
    """A nightly job across Berlin's fall-back night, with a retry, a skip and a manual run."""
    first, second, third = T0 + 90 * MINUTE, T0 + 1530 * MINUTE, T0 + 2970 * MINUTE
    return numbered(
        TaskDefined(
            task="nightly",
            at=T0,
            trigger=Cron("30 1 * * *", tz="Europe/Berlin"),
            target="jobs:export",
        ),
        Scheduled(task="nightly", at=T0, occurrence=occurrence("nightly", first), due=first),
        Started(task="nightly", at=first, occurrence=occurrence("nightly", first), attempt=1),
        Failed(
            task="nightly",
            at=first + MINUTE,
            occurrence=occurrence("nightly", first),
            attempt=1,
            error="disk full",
            retry_at=first + 5 * MINUTE,
        ),
        Started(
            task="nightly",
            at=first + 5 * MINUTE,
            occurrence=occurrence("nightly", first),
            attempt=2,
        ),
        Completed(
            task="nightly",
            at=first + 6 * MINUTE,
            occurrence=occurrence("nightly", first),
            attempt=2,
            result={"rows": 3},
        ),
        Scheduled(
            task="nightly",
            at=first + 6 * MINUTE,
            occurrence=occurrence("nightly", second),
            due=second,
        ),
        TaskPaused(task="nightly", at=second - MINUTE, note="maintenance"),
        Skipped(
            task="nightly",
            at=second - MINUTE,
            occurrence=occurrence("nightly", second),
            reason=SkipReason.PAUSED,
        ),
        TaskResumed(task="nightly", at=second + MINUTE),
        Scheduled(
            task="nightly", at=second + MINUTE, occurrence=occurrence("nightly", third), due=third
        ),
        TaskDefined(task="adhoc", at=T0, trigger=Manual(), target="jobs:adhoc"),
        Scheduled(task="adhoc", at=T0 + MINUTE, occurrence="adhoc!1", due=T0 + MINUTE),
        Started(task="adhoc", at=T0 + MINUTE, occurrence="adhoc!1", attempt=1),
        TaskRemoved(task="adhoc", at=T0 + 2 * MINUTE),
    )


def test_occurrences_runs_fire_times_outcomes_and_skips() -> None:
    timeline = Timeline(sample())
    assert timeline.tasks() == ["nightly", "adhoc"]
    first = T0 + 90 * MINUTE
    (run,) = timeline.runs("nightly")
    assert run.occurrence == occurrence("nightly", first)
    assert run.due == first
    assert run.started == first  # when it fired: the first attempt
    assert run.outcome is Outcome.COMPLETED
    assert [(a.number, a.outcome, a.error) for a in run.attempts] == [
        (1, Outcome.FAILED, "disk full"),
        (2, Outcome.COMPLETED, None),
    ]
    assert run.result == {"rows": 3}
    assert run.attempts[0].retry_at == first + 5 * MINUTE
    assert run.seqs == (2, 3, 4, 5, 6)
    assert timeline.fire_times("nightly") == [first]
    assert timeline.fire_times("nightly", by="due") == [first]
    assert timeline.outcomes("nightly") == Counter(
        {Outcome.COMPLETED: 1, Outcome.SKIPPED: 1, Outcome.SCHEDULED: 1}
    )
    (skipped,) = timeline.skipped("nightly", reason="paused")
    assert skipped.skip_reason is SkipReason.PAUSED
    assert timeline.skipped("nightly", reason=SkipReason.MISSED) == []
    (manual,) = timeline.occurrences("adhoc")
    assert (manual.kind, manual.outcome) == ("manual", Outcome.RUNNING)
    assert timeline.occurrence("adhoc!1") == manual


def test_windows_are_half_open_and_take_any_zone() -> None:
    timeline = Timeline(sample())
    first = T0 + 90 * MINUTE
    assert timeline.runs("nightly", start=first, end=first + MINUTE) != []
    assert timeline.runs("nightly", start=first + timedelta(seconds=1)) == []
    assert timeline.runs("nightly", end=first) == []
    berlin = first.astimezone(Cron("@daily", tz="Europe/Berlin").next_after(T0).tzinfo)
    assert timeline.fire_times("nightly", start=berlin) == [first]
    assert len(timeline.occurrences(end=first + MINUTE)) == 2  # adhoc (T0+1m) and the first


def test_questions_about_unknown_things_fail_with_a_hint() -> None:
    timeline = Timeline(sample())
    with pytest.raises(UnknownTask, match="did you mean 'nightly'"):
        timeline.runs("nigthly")
    with pytest.raises(UnknownTask, match="no occurrence"):
        timeline.occurrence("nightly@2030-01-01T00:00:00Z")
    with pytest.raises(ConfigError, match="aware"):
        timeline.runs("nightly", start=datetime(2026, 1, 1))
    with pytest.raises(ConfigError, match="'started' or 'due'"):
        timeline.fire_times("nightly", by="when")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="unknown skip reason"):
        timeline.skipped(reason="bored")


def test_a_broken_log_is_shown_as_it_is() -> None:
    due = T0 + MINUTE
    records = numbered(
        TaskDefined(task="t", at=T0, trigger=Every(MINUTE, anchor=T0), target="jobs:t"),
        Scheduled(task="t", at=T0, occurrence=occurrence("t", due), due=due),
        Started(task="t", at=due, occurrence=occurrence("t", due), attempt=1),
        Completed(task="t", at=due, occurrence=occurrence("t", due), attempt=1),
        Started(task="t", at=due + MINUTE, occurrence=occurrence("t", due), attempt=1),
    )
    (run,) = Timeline(records).runs("t")
    assert [a.number for a in run.attempts] == [1, 1]
    assert run.outcome is Outcome.RUNNING
    assert "attempts [1, 1]" in str(Timeline(records))


def test_render_is_a_table_with_notes_and_local_times() -> None:
    first = T0 + 90 * MINUTE
    notes = [Note(first + 2 * MINUTE, 3, "crash", "the scheduler was killed")]
    timeline = Timeline(sample(), notes=notes)
    text = timeline.render(task="nightly", tz="Europe/Berlin")
    lines = text.splitlines()
    assert lines[0].split() == [
        "due",
        "/",
        "at",
        "(Europe/Berlin)",
        "task",
        "what",
        "started",
        "attempts",
        "seqs",
        "detail",
    ]
    assert "2026-10-25 01:30:00+02:00 CEST" in text  # the first 01:30, summer time
    assert "#1 failed: disk full" in text
    assert "skipped: paused" in text
    crash = next(line for line in lines if "(harness)" in line)
    assert crash.startswith("--")
    assert "crash" in crash
    # The note sorts after the records it followed (seq 3) at its instant.
    assert lines.index(crash) == 3
    assert "adhoc" not in text
    assert str(timeline) == timeline.render()
    assert "… 8 more rows" in timeline.render(max_rows=2)  # 4 occurrences, 5 changes, 1 note
    assert "(no rows)" in Timeline([]).render()
    assert repr(timeline) == (
        "<Timeline: 15 records, 4 occurrences of 2 tasks, "
        "2026-10-24 22:00:00Z .. 2026-10-25 23:31:00Z>"
    )


def test_from_log_reads_every_record() -> None:
    log = MemoryLog(sample())
    assert Timeline.from_log(log).records == tuple(sample())
