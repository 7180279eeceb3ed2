"""``chronolog history``: every run of one task, from the whole log."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner

from chronolog import FileLog, replay
from chronolog.cli import main
from chronolog.cli._output import run_json
from chronolog.cli.history import task_history

from .cli_logs import scenario_log

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture
def log(tmp_path: Path) -> Path:
    return scenario_log(tmp_path)


def history(log: Path, *args: str) -> list[dict[str, object]]:
    result = CliRunner().invoke(main, ["history", str(log), *args, "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    runs: list[dict[str, object]] = document["runs"]
    return runs


def test_runs_are_newest_first_with_their_outcomes(log: Path) -> None:
    runs = history(log, "backup")
    assert [run["due"] for run in runs] == [
        "2026-03-31T00:30:00Z",  # scheduled, not yet due when the log ends
        "2026-03-30T00:30:00Z",
        "2026-03-29T01:00:00Z",  # 02:30 Berlin did not exist: moved to 03:00 CEST
        "2026-03-28T01:30:00Z",
        "2026-03-27T13:00:00Z",  # the manual run
    ]
    assert [run["outcome"] for run in runs] == [
        "scheduled",
        "completed",
        "completed",
        "completed",
        "completed",
    ]
    assert runs[3]["attempts"] == 2
    assert str(runs[4]["occurrence"]).startswith("backup!")
    assert set(runs[0]) == {
        "task",
        "occurrence",
        "due",
        "outcome",
        "attempts",
        "started",
        "finished",
        "duration_seconds",
        "error",
        "result",
        "skip_reason",
        "retry_at",
        "node",
        "seq",
        "last_due",
        "count",
    }


def test_the_same_runs_as_the_projection_on_a_sound_log(log: Path) -> None:
    records = list(FileLog(log).read())
    state = replay(records, history_limit=10_000)
    for name in state.task_names():
        ours = task_history(records, name, limit=None)
        theirs = state.history(name)
        assert sorted(map(_key, ours)) == sorted(map(_key, theirs)), name


def _key(run: object) -> str:
    return json.dumps(run_json(run), sort_keys=True)  # type: ignore[arg-type]


def test_limit_since_until_and_outcome_filter(log: Path) -> None:
    assert len(history(log, "sync")) == 20
    assert len(history(log, "sync", "--limit", "3")) == 3
    every = history(log, "sync", "--limit", "0")
    assert len(every) == len(task_history(FileLog(log).read(), "sync", limit=None))
    window = history(
        log, "sync", "--since", "2026-03-29T18:00Z", "--until", "2026-03-29T19:00+00:00"
    )
    assert [run["due"] for run in window] == [
        f"2026-03-29T{hour}:{minute}:00Z"
        for hour, minute in [("19", "00"), ("18", "45"), ("18", "30"), ("18", "15"), ("18", "00")]
    ]
    missed = history(log, "sync", "--outcome", "skipped", "--limit", "0")
    assert {run["skip_reason"] for run in missed} == {"missed", "paused"}
    failed_or_running = history(log, "report", "--outcome", "failed", "--outcome", "running")
    assert sorted(str(run["outcome"]) for run in failed_or_running) == ["failed", "running"]
    failed = next(run for run in failed_or_running if run["outcome"] == "failed")
    assert failed["error"] == "shutdown"


def test_a_removed_task_keeps_its_history(log: Path) -> None:
    runs = history(log, "old-task", "--limit", "0")
    assert runs[0]["skip_reason"] == "removed"
    assert {run["outcome"] for run in runs[1:]} == {"completed"}


def test_the_table_lists_occurrences_after_the_task_name(log: Path) -> None:
    result = CliRunner().invoke(main, ["history", str(log), "backup"])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        "occurrence",
        "due",
        "outcome",
        "attempts",
        "started",
        "took",
        "detail",
    ]
    assert lines[2].split()[0] == "@2026-03-31T00:30:00Z"
    assert '"backup call 3"' in lines[5]


def test_no_matching_runs_is_said_plainly(log: Path) -> None:
    result = CliRunner().invoke(main, ["history", str(log), "backup", "--outcome", "failed"])
    assert (result.exit_code, result.stdout) == (0, "backup: no runs match\n")


def test_an_unknown_task_names_the_closest(log: Path) -> None:
    result = CliRunner().invoke(main, ["history", str(log), "bakup"])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "Error: no task named 'bakup' in this log; did you mean 'backup'? "
        "(tasks: backup, flaky, old-task, reindex, report, sync)"
    )


def test_due_times_missed_in_one_outage_are_one_entry(log: Path) -> None:
    """sync was down from 12:01:30 to 18:01 on 29 March: 23 due times, one record,
    one line -- found by --since/--until anywhere inside it."""
    (entry,) = history(log, "sync", "--since", "2026-03-29T15:00Z", "--until", "2026-03-29T15:10Z")
    assert entry["occurrence"] == "sync@2026-03-29T12:15:00Z"
    assert (entry["due"], entry["last_due"], entry["count"]) == (
        "2026-03-29T12:15:00Z",
        "2026-03-29T17:45:00Z",
        23,
    )
    assert (entry["outcome"], entry["skip_reason"]) == ("skipped", "missed")
    result = CliRunner().invoke(
        main,
        [
            "history",
            str(log),
            "sync",
            "--since",
            "2026-03-29T15:00Z",
            "--until",
            "2026-03-29T15:10Z",
        ],
        terminal_width=200,
    )
    assert "23 runs missed from 2026-03-29 12:15:00Z to 2026-03-29 17:45:00Z" in result.stdout
