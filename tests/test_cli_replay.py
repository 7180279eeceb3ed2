"""``chronolog replay``: the whole state at a seq or at a time."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
from click.testing import CliRunner

from chronolog import FileLog, replay
from chronolog.cli import main
from chronolog.cli._output import iso, run_json, task_json

from .cli_logs import DOWN, UP, scenario_log

if TYPE_CHECKING:
    from pathlib import Path

    from chronolog import Event


@pytest.fixture
def log(tmp_path: Path) -> Path:
    return scenario_log(tmp_path)


def replay_json(log: Path, *args: str) -> dict[str, Any]:
    result = CliRunner().invoke(main, ["replay", str(log), *args, "--json"])
    assert result.exit_code == 0, result.output
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def expected(records: list[Event]) -> list[dict[str, Any]]:
    state = replay(records)
    return [
        {**task_json(status), "open": [run_json(run) for run in state.open_occurrences(name)]}
        for name in state.task_names()
        for status in [state.status(name)]
    ]


def test_at_a_seq_the_state_is_the_fold_of_the_prefix(log: Path) -> None:
    records = list(FileLog(log).read())
    for seq in (0, 1, 7, 300, len(records) - 1, len(records)):
        document = replay_json(log, "--seq", str(seq))
        assert document["seq"] == seq
        assert document["records"] == seq
        assert document["log_last_seq"] == len(records)
        assert document["at"] == (iso(records[seq - 1].at) if seq else None)
        assert document["tasks"] == expected(records[:seq])


def test_at_a_time_the_state_holds_what_was_recorded_by_then(log: Path) -> None:
    records = list(FileLog(log).read())
    # While the scheduler was down nothing was recorded: any time then shows
    # the state it left behind, with its pending retry still waiting (and the
    # next occurrence, planned with the claim of the one that failed).
    down = [r for r in records if r.at <= DOWN + timedelta(minutes=1)]
    document = replay_json(log, "--at", (UP - timedelta(hours=1)).isoformat())
    assert document["seq"] == down[-1].seq
    assert document["tasks"] == expected(down)
    flaky = next(task for task in document["tasks"] if task["task"] == "flaky")
    assert {run["outcome"] for run in flaky["open"]} == {"retry_pending", "scheduled"}
    before_anything = replay_json(log, "--at", "2020-01-01T00:00Z")
    assert (before_anything["seq"], before_anything["tasks"]) == (0, [])


def test_without_a_moment_it_is_the_end_of_the_log(log: Path) -> None:
    records = list(FileLog(log).read())
    assert replay_json(log)["tasks"] == expected(records)


def test_the_text_shows_the_tasks_and_the_open_occurrences(log: Path) -> None:
    result = CliRunner().invoke(main, ["replay", str(log), "--at", "2026-03-30T06:02Z"])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"{log} after seq ")
    assert "recorded 2026-03-30 06:01:40Z" in lines[0]
    assert "Open occurrences:" in lines
    running = [line for line in lines if line.startswith("report@2026-03-30T06:00:00Z")]
    assert running
    assert running[0].split()[3] == "running"


def test_empty_and_bad_requests(log: Path) -> None:
    early = CliRunner().invoke(main, ["replay", str(log), "--seq", "0"])
    assert early.exit_code == 0
    assert "no records yet, no tasks" in early.stdout
    both = CliRunner().invoke(
        main, ["replay", str(log), "--seq", "3", "--at", "2026-03-28T00:00Z"]
    )
    assert (both.exit_code, both.stderr) == (2, "Error: give --at or --seq, not both\n")
    past = CliRunner().invoke(main, ["replay", str(log), "--seq", "99999"])
    assert past.exit_code == 2
    assert "past the end of" in past.stderr
    assert "whose last seq is" in past.stderr
    naive = CliRunner().invoke(main, ["replay", str(log), "--at", "2026-03-28T00:00"])
    assert naive.exit_code == 2
    assert naive.stderr == (
        "Error: --at '2026-03-28T00:00' has no UTC offset, and chronolog never guesses one; "
        "add an offset or Z, e.g. '2026-03-28T00:00Z' or '2026-03-28T00:00+02:00'\n"
    )
    nonsense = CliRunner().invoke(main, ["replay", str(log), "--at", "last sunday"])
    assert nonsense.exit_code == 2
    assert "is not an ISO 8601 time" in nonsense.stderr
    negative = CliRunner().invoke(main, ["replay", str(log), "--seq", "-1"])
    assert negative.exit_code == 2
