"""`chronolog demo` and `chronolog status`, as a user drives them."""

from __future__ import annotations

import json
import os
import shutil
import sys
from datetime import datetime
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner

from chronolog import FileLog, Skipped, SkipReason, check_invariants, replay
from chronolog.cli import main
from chronolog.cli.demo import command_name

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
    assert f"Replay the log any time:  {command_name()} status {tmp_path}" in output
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


def test_recent_runs_are_in_the_order_they_happened(tmp_path: Path) -> None:
    output = run_demo(tmp_path, seconds=12)
    lines = output.split("Recent runs (the latest last):\n")[1].split("\n\n")[0].splitlines()
    assert len(lines) == 12
    times = [datetime.fromisoformat("T".join(line.split()[:2])) for line in lines]
    assert times == sorted(times)
    assert any(" skipped " in line for line in lines)
    assert not any(" scheduled " in line for line in lines)  # not yet happened


def test_demo_json_is_one_document(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["demo", "--seconds", "8", "--dir", str(tmp_path), "--simulated", "--json"]
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["log"] == str(tmp_path / "jobs.jsonl")
    assert document["seconds"] == 8
    assert [task["task"] for task in document["tasks"]] == state_names(document["log"])
    happened = [
        datetime.fromisoformat(run["finished"] or run["started"])
        for run in document["recent_runs"]
    ]
    assert happened == sorted(happened)
    assert document["replay"] == f"{command_name()} status {tmp_path / 'jobs.jsonl'}"


@pytest.mark.parametrize(
    ("argv0", "on_path", "expected"),
    [
        # Installed and on PATH: the bare name works.
        ("/usr/bin/chronolog", "/usr/bin/chronolog", "chronolog"),
        # Started by its path in a virtual environment not on PATH: that path.
        (".venv/bin/chronolog", None, ".venv/bin/chronolog"),
        # A `chronolog` on PATH that is another program than this one.
        (".venv/bin/chronolog", "/usr/bin/chronolog", ".venv/bin/chronolog"),
    ],
)
def test_the_demo_names_the_command_that_started_it(
    argv0: str, on_path: str | None, expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "argv", [argv0, "demo"])
    monkeypatch.setattr(shutil, "which", lambda name: on_path if name == "chronolog" else None)
    monkeypatch.setattr(os.path, "samefile", lambda a, b: a == b)
    assert command_name() == expected


def test_python_dash_m_is_named_as_such(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["/somewhere/chronolog/__main__.py", "demo"])
    monkeypatch.setattr(shutil, "which", lambda name: sys.executable if name == "python" else None)
    assert command_name() == "python -m chronolog"
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert command_name() == f"{sys.executable} -m chronolog"
