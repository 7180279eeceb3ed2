"""``chronolog verify``: exit 0 on a sound log, 1 and one line per violation otherwise."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import msgspec
from click.testing import CliRunner

from chronolog import Completed, Cron, Scheduled, Started, TaskDefined
from chronolog._events import encode_header, encode_lines
from chronolog.cli import main

from .cli_logs import scenario_log

if TYPE_CHECKING:
    from pathlib import Path

    from chronolog import Event

T = datetime(2026, 3, 29, 1, 0, tzinfo=UTC)


def write(path: Path, events: list[Event]) -> Path:
    numbered = [msgspec.structs.replace(e, seq=n) for n, e in enumerate(events, start=1)]
    path.write_bytes(encode_header() + encode_lines(numbered))
    return path


def twice_started(path: Path) -> Path:
    """A log in which one occurrence started twice and one finished without a start."""
    occurrence = "backup@2026-03-29T01:00:00Z"
    return write(
        path,
        [
            TaskDefined(task="backup", at=T, trigger=Cron("0 1 * * *"), target="jobs:backup"),
            Scheduled(task="backup", at=T, occurrence=occurrence, due=T),
            Started(task="backup", at=T, occurrence=occurrence, attempt=1, node="a"),
            Started(task="backup", at=T, occurrence=occurrence, attempt=1, node="b"),
            Completed(task="backup", at=T, occurrence=occurrence, attempt=1),
            Completed(task="report", at=T, occurrence="report@x", attempt=1),
        ],
    )


def test_a_sound_log_passes(tmp_path: Path) -> None:
    log = scenario_log(tmp_path)
    result = CliRunner().invoke(main, ["verify", str(log)])
    assert result.exit_code == 0
    count = len(log.read_bytes().splitlines()) - 1
    assert result.stdout == f"{log}: {count} records up to seq {count}, every rule holds\n"
    document = json.loads(CliRunner().invoke(main, ["verify", str(log), "--json"]).stdout)
    assert document == {"ok": True, "records": count, "seq": count, "violations": []}


def test_each_violation_is_one_line_and_the_exit_code_is_1(tmp_path: Path) -> None:
    log = twice_started(tmp_path / "bad.jsonl")
    result = CliRunner().invoke(main, ["verify", str(log)])
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "seq 4: attempt 1 of 'backup@2026-03-29T01:00:00Z' started twice (first at seq 3, "
        "again at seq 4) [started-twice]",
        "seq 6: Completed for task 'report', which was never defined [unknown-task]",
    ]
    assert result.stderr == f"{log}: 2 violation(s) in 6 records\n"


def test_violations_in_json_and_still_exit_1(tmp_path: Path) -> None:
    log = twice_started(tmp_path / "bad.jsonl")
    result = CliRunner().invoke(main, ["verify", str(log), "--json"])
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert document["ok"] is False
    assert document["records"] == 6
    assert document["violations"][0] == {
        "seq": 4,
        "rule": "started-twice",
        "task": "backup",
        "occurrence": "backup@2026-03-29T01:00:00Z",
        "message": "attempt 1 of 'backup@2026-03-29T01:00:00Z' started twice (first at seq 3, "
        "again at seq 4)",
        "related": [3],
    }
