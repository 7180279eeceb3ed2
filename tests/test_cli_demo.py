"""`chronolog demo` and `chronolog status`, as a user drives them."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from click.testing import CliRunner

from chronolog import FileLog, Skipped, SkipReason, check_invariants, replay
from chronolog.cli import main

if TYPE_CHECKING:
    from pathlib import Path


def run_demo(directory: Path, seconds: int = 20) -> str:
    result = CliRunner().invoke(
        main, ["demo", "--seconds", str(seconds), "--dir", str(directory), "--simulated"]
    )
    assert result.exit_code == 0, result.output
    return result.output


def test_the_demo_shows_every_policy_and_leaves_a_sound_log(tmp_path: Path) -> None:
    output = run_demo(tmp_path)
    assert "Replay the log any time:  chronolog status" in output
    records = list(FileLog(tmp_path / "jobs.jsonl").read())
    assert check_invariants(records) == []
    state = replay(records)
    assert state.task_names() == ["cron-every-5s", "flaky", "heartbeat", "slow", "watch"]
    assert state.status("heartbeat").run_count >= 9
    flaky = state.status("flaky")
    assert flaky.error_count >= 2 * flaky.run_count - 2  # two failures, then a retry succeeds
    assert any(run.attempts == 3 and run.outcome == "completed" for run in state.history("flaky"))
    overlaps = [r for r in records if isinstance(r, Skipped) and r.reason is SkipReason.OVERLAP]
    assert overlaps
    assert state.status("watch").run_count >= 1


def test_a_second_demo_run_carries_on_the_same_log(tmp_path: Path) -> None:
    run_demo(tmp_path, seconds=5)
    first = list(FileLog(tmp_path / "jobs.jsonl").read())
    run_demo(tmp_path, seconds=5)
    both = list(FileLog(tmp_path / "jobs.jsonl").read())
    assert both[: len(first)] == first
    assert check_invariants(both) == []
    assert sum(type(r).__name__ == "TaskDefined" for r in both) == 5  # re-declared, not redefined


def test_status_prints_a_table_and_json(tmp_path: Path) -> None:
    run_demo(tmp_path, seconds=5)
    log = str(tmp_path / "jobs.jsonl")
    table = CliRunner().invoke(main, ["status", log])
    assert table.exit_code == 0
    assert table.output.splitlines()[0].split()[:3] == ["task", "state", "next"]
    assert "heartbeat" in table.output
    document = json.loads(CliRunner().invoke(main, ["status", log, "--json"]).output)
    assert [task["task"] for task in document["tasks"]] == state_names(log)
    assert document["seq"] == len(list(FileLog(log).read()))


def test_status_of_a_missing_or_foreign_file_is_one_clear_line(tmp_path: Path) -> None:
    missing = CliRunner().invoke(main, ["status", str(tmp_path / "nope.jsonl")])
    assert missing.exit_code == 2  # usage: a path with no log behind it
    assert "does not exist" in missing.output
    foreign = tmp_path / "notes.txt"
    foreign.write_text("hello\n")
    result = CliRunner().invoke(main, ["status", str(foreign)])
    assert result.exit_code == 3  # the log itself stands in the way
    assert "is not a chronolog log" in result.output
    assert "Traceback" not in result.output


def state_names(log: str) -> list[str]:
    return replay(FileLog(log).read()).task_names()
