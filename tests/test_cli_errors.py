"""Bad input to every inspection command: one line, no traceback, the documented exit code.

Exit codes: 2 for a path with no log behind it (and other usage errors), 3
for a file that is not a chronolog log or is damaged; the corrupted-log
message names the line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner

from chronolog.cli import main

from .cli_logs import scenario_log

if TYPE_CHECKING:
    from pathlib import Path

#: Every read-only command, as (arguments before the log, arguments after it).
COMMANDS = [
    pytest.param(["status"], [], id="status"),
    pytest.param(["history"], ["backup"], id="history"),
    pytest.param(["tail"], [], id="tail"),
    pytest.param(["replay"], ["--seq", "3"], id="replay"),
    pytest.param(["verify"], [], id="verify"),
    pytest.param(["why"], ["backup", "--at", "2026-03-29T01:00Z"], id="why"),
    pytest.param(["timeline"], ["--out", "{tmp}/page.html"], id="timeline"),
]


def run(before: list[str], log: Path, after: list[str], tmp_path: Path) -> tuple[int, str, str]:
    args = [*before, str(log), *(arg.replace("{tmp}", str(tmp_path)) for arg in after)]
    result = CliRunner().invoke(main, args)
    return result.exit_code, result.stdout, result.stderr


def assert_one_line(code: int, out: str, err: str, expected_code: int, *phrases: str) -> None:
    assert code == expected_code, err
    assert out == ""
    assert len(err.splitlines()) == 1, err
    assert err.startswith("Error: ")
    assert "Traceback" not in err
    for phrase in phrases:
        assert phrase in err


@pytest.mark.parametrize(("before", "after"), COMMANDS)
def test_a_log_that_does_not_exist(before: list[str], after: list[str], tmp_path: Path) -> None:
    missing = tmp_path / "nope.jsonl"
    assert_one_line(*run(before, missing, after, tmp_path), 2, f"log {missing} does not exist")


@pytest.mark.parametrize(("before", "after"), COMMANDS)
def test_a_directory_is_not_a_log(before: list[str], after: list[str], tmp_path: Path) -> None:
    assert_one_line(*run(before, tmp_path, after, tmp_path), 2, "is a directory, not a log")


@pytest.mark.parametrize(("before", "after"), COMMANDS)
def test_a_file_that_is_not_a_log(before: list[str], after: list[str], tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("shopping: milk, eggs\n")
    assert_one_line(*run(before, notes, after, tmp_path), 3, "is not a chronolog log")


@pytest.mark.parametrize(("before", "after"), COMMANDS)
def test_a_corrupted_log_names_the_line(
    before: list[str], after: list[str], tmp_path: Path
) -> None:
    log = scenario_log(tmp_path)
    lines = log.read_bytes().splitlines(keepends=True)
    lines[2] = b'{"type":"Started","seq":2,"task":"backup"' + b"\n"  # cut short
    log.write_bytes(b"".join(lines))
    assert_one_line(*run(before, log, after, tmp_path), 3, f"{log} line 3 ", "is not a valid")


def test_a_log_from_a_newer_chronolog(tmp_path: Path) -> None:
    log = tmp_path / "future.jsonl"
    log.write_text('{"format":"chronolog","version":99}\n')
    code, out, err = run(["status"], log, [], tmp_path)
    assert_one_line(code, out, err, 3, "format version 99", "upgrade chronolog")


def test_click_usage_errors_exit_2(tmp_path: Path) -> None:
    log = scenario_log(tmp_path)
    assert CliRunner().invoke(main, ["history", str(log)]).exit_code == 2  # no TASK
    assert CliRunner().invoke(main, ["timeline", str(log)]).exit_code == 2  # no --out
    assert CliRunner().invoke(main, ["status", str(log), "--bogus"]).exit_code == 2
    assert CliRunner().invoke(main, ["history", str(log), "sync", "--outcome", "x"]).exit_code == 2
