"""``chronolog why``: the chain of events of one occurrence and the rule that decided it.

Every verdict is reached on a log that a real scheduler wrote (see
``cli_logs.py``), except "overdue", which needs a log cut in a particular
place and is written by hand.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import msgspec
import pytest
from click.testing import CliRunner

from chronolog import Cron, FileLog, Scheduled, Skipped, SkipReason, TaskDefined
from chronolog._events import encode_header, encode_lines
from chronolog.cli import main

from .cli_logs import scenario_log

if TYPE_CHECKING:
    from pathlib import Path

    from chronolog import Event


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return scenario_log(tmp_path_factory.mktemp("why"))


def why(log: Path, *args: str) -> dict[str, Any]:
    result = CliRunner().invoke(main, ["why", str(log), *args, "--json"])
    assert result.exit_code == 0, result.output
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def skipped(log: Path, task: str, reason: SkipReason) -> str:
    """The id of an occurrence of ``task`` skipped for ``reason``."""
    return next(
        record.occurrence
        for record in FileLog(log).read()
        if isinstance(record, Skipped) and record.task == task and record.reason is reason
    )


def test_a_run_on_spring_forward_day_and_what_dst_did_to_it(log: Path) -> None:
    answer = why(log, "backup", "--at", "2026-03-29T03:00+02:00")
    assert answer["occurrence"] == "backup@2026-03-29T01:00:00Z"
    assert answer["verdict"] == "ran"
    assert answer["due_local"] == "2026-03-29T03:00:00+02:00"
    assert answer["zone"] == "Europe/Berlin"
    assert answer["dst_note"] == (
        "moved: 02:30 does not exist on 2026-03-29 (clocks jump 02:00→03:00); "
        "fires at the end of the gap"
    )
    assert [record["type"] for record in answer["records"]] == [
        "Scheduled",
        "Started",
        "Completed",
    ]
    assert [record["type"] for record in answer["context"]] == ["TaskDefined"]
    assert answer["reason"] == (
        "attempt 1 started at 2026-03-29 01:00:00Z and completed at 2026-03-29 01:03:00Z "
        "after 3 min."
    )


@pytest.mark.parametrize(
    "spelling",
    [
        "backup@2026-03-29T01:00:00Z",
        "backup@2026-03-29T01:00Z",
        "backup@2026-03-29T03:00:00+02:00",
        "backup@2026-03-28T21:00-04:00",
        "backup@2026-03-29T01:00:00.000000+00:00",
        "backup@2026-03-29 01:00:00Z",
    ],
)
def test_any_spelling_of_the_due_instant_names_the_same_occurrence(
    log: Path, spelling: str
) -> None:
    answer = why(log, spelling)
    assert answer["occurrence"] == "backup@2026-03-29T01:00:00Z"
    assert answer["verdict"] == "ran"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("backup@garbage", "'garbage' is not a time"),
        ("backup@", "'' is not a time"),
        ("backup@2026-03-29T01:00", "its time has no UTC offset"),
        ("backup#", "is not an occurrence id"),
        ("backup! x", "is not an occurrence id"),
    ],
)
def test_text_that_is_no_occurrence_id_is_a_usage_error(log: Path, text: str, says: str) -> None:
    result = CliRunner().invoke(main, ["why", str(log), text])
    assert (result.exit_code, result.stdout) == (2, "")
    assert says in result.stderr
    assert "e.g. 'backup@2026-03-29T01:00:00Z'" in result.stderr
    assert "chronolog history LOG backup" in result.stderr


def test_a_well_formed_id_the_log_does_not_have_is_no_record(log: Path) -> None:
    answer = why(log, "backup!0123456789abcdef")
    assert answer["verdict"] == "no-record"


def test_a_time_between_due_times_means_the_last_one_due_before_it(log: Path) -> None:
    assert why(log, "backup", "--at", "2026-03-29T09:00Z")["occurrence"] == (
        "backup@2026-03-29T01:00:00Z"
    )


def test_ran_after_a_retry(log: Path) -> None:
    answer = why(log, "backup@2026-03-28T01:30:00Z")
    assert answer["verdict"] == "ran-after-retry"
    assert answer["reason"].startswith(
        "attempt 1 failed (OSError: backup: disk full (call 2)), retried at "
        "2026-03-28 01:38:00Z; attempt 2 completed at 2026-03-28 01:41:00Z"
    )


def test_failed_for_good_names_the_retry_policy(log: Path) -> None:
    answer = why(log, "flaky@2026-03-30T06:00:00Z")
    assert answer["verdict"] == "failed"
    assert answer["reason"].endswith(
        "it raised ConnectionError: the service did not answer; no attempt was left "
        "(retry policy: max_attempts=3)."
    )


def test_failed_because_the_scheduler_shut_down(log: Path) -> None:
    answer = why(log, "report", "--at", "2026-03-29T11:30Z")
    assert answer["verdict"] == "failed"
    assert "the scheduler shut down while it ran" in answer["reason"]


def test_running_at_the_end_of_the_log(log: Path) -> None:
    answer = why(log, "report", "--at", "2026-03-30T06:03Z")
    assert answer["verdict"] == "running"
    assert "records it as interrupted" in answer["reason"]


def test_not_yet_due(log: Path) -> None:
    answer = why(log, "backup", "--at", "2026-03-31T12:00Z")
    assert (answer["occurrence"], answer["verdict"]) == (
        "backup@2026-03-31T00:30:00Z",
        "not-yet-due",
    )
    unrecorded = why(log, "backup@2026-04-02T00:30:00Z")
    assert (unrecorded["verdict"], unrecorded["records"]) == ("not-yet-due", [])


def test_skipped_because_of_overlap_names_the_run_in_the_way(log: Path) -> None:
    occurrence = skipped(log, "report", SkipReason.OVERLAP)
    answer = why(log, occurrence)
    assert answer["verdict"] == "skipped-overlap"
    due = datetime.fromisoformat(answer["due"])
    in_the_way = f"report@{(due - timedelta(hours=1)):%Y-%m-%dT%H:%M:%S}Z"
    assert f"{in_the_way} (attempt 1, started at" in answer["reason"]
    assert answer["reason"].endswith(
        "and the overlap policy is skip: an occurrence that comes due while a run is under "
        "way is skipped."
    )


def test_skipped_because_paused_with_the_note(log: Path) -> None:
    answer = why(log, skipped(log, "sync", SkipReason.PAUSED))
    assert answer["verdict"] == "skipped-paused"
    assert "paused at 2026-03-27 17:05:00Z (note: 'maintenance window')" in answer["reason"]
    assert "resumed at 2026-03-27 19:05:00Z" in answer["reason"]


def test_not_scheduled_while_paused(log: Path) -> None:
    answer = why(log, "sync", "--at", "2026-03-27T18:00Z")
    assert (answer["verdict"], answer["records"]) == ("paused", [])
    assert [record["type"] for record in answer["context"]] == [
        "TaskDefined",
        "TaskPaused",
        "TaskResumed",
    ]


def test_skipped_because_redefined_says_what_changed(log: Path) -> None:
    answer = why(log, "reindex@2026-03-28T04:00:00Z")
    assert answer["verdict"] == "skipped-redefined"
    assert "version 2: cron '0 5 * * *' in UTC, was cron '0 4 * * *' in UTC" in answer["reason"]


def test_skipped_because_removed_and_then_not_defined(log: Path) -> None:
    answer = why(log, skipped(log, "old-task", SkipReason.REMOVED))
    assert answer["verdict"] == "skipped-removed"
    later = why(log, "old-task", "--at", "2026-03-29T06:15Z")
    assert later["verdict"] == "not-defined"
    assert later["reason"] == (
        "the task did not exist at 2026-03-29 06:15:00Z: it had been removed at "
        "2026-03-27 15:10:00Z."
    )
    earlier = why(log, "backup", "--at", "2020-01-01T00:00Z")
    assert earlier["verdict"] == "not-defined"
    assert "first defined at 2026-03-27 12:00:00Z" in earlier["reason"]


def test_missed_while_down_and_dropped_by_catch_up(log: Path) -> None:
    answer = why(log, "sync", "--at", "2026-03-29T17:50Z")
    assert (answer["occurrence"], answer["verdict"]) == ("sync@2026-03-29T17:45:00Z", "missed")
    assert "no scheduler was running then" in answer["reason"]
    assert (
        "The catch-up policy latest runs only the latest of the due times missed together "
        "(2026-03-29 18:00:00Z ran instead)" in answer["reason"]
    )


def test_a_time_the_trigger_never_fires_at(log: Path) -> None:
    answer = why(log, "sync@2026-03-30T06:20:00Z")
    assert answer["verdict"] == "not-a-fire-time"
    assert answer["reason"] == (
        "every 15 min from 2026-03-27 12:00:00Z does not fire at 2026-03-30 06:20:00Z "
        "(last before it 2026-03-30 06:15:00Z, next after it 2026-03-30 06:30:00Z)."
    )


def test_an_unknown_manual_run_has_no_record(log: Path) -> None:
    assert why(log, "backup!0000")["verdict"] == "no-record"


def test_overdue_when_nothing_started_it(tmp_path: Path) -> None:
    t = datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    due = t + timedelta(hours=1)
    events: list[Event] = [
        TaskDefined(task="backup", at=t, trigger=Cron("0 * * * *"), target="jobs:backup"),
        TaskDefined(task="other", at=t, trigger=Cron("0 0 * * *"), target="jobs:other"),
        Scheduled(task="backup", at=t, occurrence="backup@2026-03-29T02:00:00Z", due=due),
        Scheduled(task="other", at=due + timedelta(hours=3), occurrence="other@x", due=due),
    ]
    path = tmp_path / "overdue.jsonl"
    numbered = [msgspec.structs.replace(e, seq=n) for n, e in enumerate(events, start=1)]
    path.write_bytes(encode_header() + encode_lines(numbered))
    answer = why(path, "backup@2026-03-29T02:00:00Z")
    assert answer["verdict"] == "overdue"
    assert (
        "never started by the end of the log (seq 4 at 2026-03-29 05:00:00Z)" in (answer["reason"])
    )


def test_the_text_shows_the_chain_then_the_verdict(log: Path) -> None:
    result = CliRunner().invoke(main, ["why", str(log), "backup@2026-03-28T01:30:00Z"])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0] == (
        "backup@2026-03-28T01:30:00Z  due 2026-03-28 01:30:00Z "
        "(2026-03-28 02:30:00 CET in Europe/Berlin)"
    )
    assert lines[1] == "trigger: cron '30 2 * * *' in Europe/Berlin"
    events = [line.split()[4] for line in lines if line.startswith("  seq ")]
    assert events == ["defined", "scheduled", "started", "failed", "started", "completed"]
    assert lines[-1].startswith("ran-after-retry: Attempt 1 failed")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["bakup", "--at", "2026-03-29T01:00Z"],
            "Error: no task named 'bakup' in this log; did you mean 'backup'? "
            "(tasks: backup, flaky, old-task, reindex, report, sync)",
        ),
        (
            ["sync"],
            "Error: 'sync' is a task; add --at TIME to ask about its occurrence at a time, "
            "or give an occurrence id (see: chronolog history LOG sync)",
        ),
        (["bakup@2026-03-29T01:00:00Z"], "did you mean task 'backup'?"),
        (["backup", "--at", "2026-03-29 01:00"], "has no UTC offset"),
    ],
)
def test_bad_questions_are_one_line_with_exit_code_2(
    log: Path, args: list[str], message: str
) -> None:
    result = CliRunner().invoke(main, ["why", str(log), *args])
    assert result.exit_code == 2
    assert len(result.stderr.splitlines()) == 1
    assert message in result.stderr


def test_an_occurrence_inside_a_range_of_missed_due_times_names_the_range(log: Path) -> None:
    """Down from 12:01:30 to 18:01, sync's missed due times are one record: asking
    about one in the middle finds that record and says which outage it was."""
    answer = why(log, "sync@2026-03-29T15:00:00Z")
    assert answer["verdict"] == "missed"
    range_skip = next(
        record
        for record in FileLog(log).read()
        if isinstance(record, Skipped) and record.task == "sync" and record.last_due is not None
    )
    assert (range_skip.occurrence, range_skip.count) == ("sync@2026-03-29T12:15:00Z", 23)
    assert (
        "It was missed in that outage: one of 23 runs missed from 2026-03-29 12:15:00Z to "
        f"2026-03-29 17:45:00Z, recorded as one skip at seq {range_skip.seq} (whose first "
        "occurrence is sync@2026-03-29T12:15:00Z)." in answer["reason"]
    )
