"""``chronolog verify``: exit 0 on a sound log, 1 and one line per violation (or a
torn tail) otherwise, 3 on damage."""

# The tests prepare and inspect small files with plain blocking calls.

from __future__ import annotations

import functools
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import msgspec
import trio
from click.testing import CliRunner

from chronolog import Completed, Cron, FileLog, Scheduled, Started, TaskDefined
from chronolog._events import encode_header, encode_lines
from chronolog.cli import main
from chronolog.log.file import encode_sealed

from .cli_logs import scenario_log

if TYPE_CHECKING:
    from pathlib import Path

    from chronolog import Event

T = datetime(2026, 3, 29, 1, 0, tzinfo=UTC)


def write(path: Path, events: list[Event], *, version: int = 3) -> Path:
    """A log holding ``events`` (numbered), as format version 3 or 1 writes it."""
    numbered = [msgspec.structs.replace(e, seq=n) for n, e in enumerate(events, start=1)]
    if version == 3:
        path.write_bytes(encode_sealed(numbered))
    else:
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
    assert document == {
        "ok": True,
        "records": count,
        "seq": count,
        "violations": [],
        "torn_tail": None,
        "format_version": 1,  # the scenario's log is written as a crash left it, in version 1
    }


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


def sound(path: Path) -> Path:
    occurrence = "backup@2026-03-29T01:00:00Z"
    return write(
        path,
        [
            TaskDefined(task="backup", at=T, trigger=Cron("0 1 * * *"), target="jobs:backup"),
            Scheduled(task="backup", at=T, occurrence=occurrence, due=T),
            Started(task="backup", at=T, occurrence=occurrence, attempt=1, node="a"),
            Completed(task="backup", at=T, occurrence=occurrence, attempt=1),
        ],
    )


def test_a_torn_tail_is_reported_and_fails(tmp_path: Path) -> None:
    """Issue 14: ``head -c -30 log > t; chronolog verify t`` said every rule holds."""
    log = sound(tmp_path / "jobs.jsonl")
    data = log.read_bytes()
    torn = tmp_path / "t.jsonl"
    torn.write_bytes(data[:-30])
    offset = data.rindex(b"\n", 0, len(data) - 1) + 1
    length = len(data) - 30 - offset
    result = CliRunner().invoke(main, ["verify", str(torn)])
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        f"{torn}: 3 records up to seq 3, every rule holds",
        f"torn tail: the log ends with {length} bytes that are not a whole batch (from byte "
        f"{offset}, line 5): what a crash in the middle of an append leaves, or a cut; the next "
        f"scheduler to open the log moves them aside (see docs/how-to/recover-a-damaged-log.md)",
    ]
    result = CliRunner().invoke(main, ["verify", str(torn), "--json"])
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert document["ok"] is False
    assert document["torn_tail"] == {"offset": offset, "bytes": length, "line": 5}
    assert torn.read_bytes() == data[:-30]  # verify reads only


async def test_a_batch_being_written_is_not_a_torn_tail(tmp_path: Path) -> None:
    log = sound(tmp_path / "jobs.jsonl")
    async with FileLog(log):  # a writer holds the log ...
        with log.open("ab") as file:
            file.write(b' {"type":"Sched')  # ... and is in the middle of a batch
        result = await trio.to_thread.run_sync(
            functools.partial(CliRunner().invoke, main, ["verify", str(log), "--json"])
        )
        assert result.exit_code == 0
        assert json.loads(result.stdout)["torn_tail"] is None


def test_a_log_without_checksums_says_so(tmp_path: Path) -> None:
    occurrence = "backup@2026-03-29T01:00:00Z"
    log = write(
        tmp_path / "old.jsonl",
        [
            TaskDefined(task="backup", at=T, trigger=Cron("0 1 * * *"), target="jobs:backup"),
            Scheduled(task="backup", at=T, occurrence=occurrence, due=T),
        ],
        version=1,
    )
    result = CliRunner().invoke(main, ["verify", str(log)])
    assert result.exit_code == 0
    assert result.stdout == f"{log}: 2 records up to seq 2, every rule holds\n"
    assert result.stderr == (
        f"{log}: format version 1: its records carry no checksums, so an edited value cannot "
        f"be told from the original; the next write upgrades the log\n"
    )
    document = json.loads(CliRunner().invoke(main, ["verify", str(log), "--json"]).stdout)
    assert document["format_version"] == 1


def test_damage_is_exit_code_3_in_text_and_json(tmp_path: Path) -> None:
    log = sound(tmp_path / "jobs.jsonl")
    lines = log.read_bytes().splitlines(keepends=True)
    lines[3] = lines[3].replace(b'"node":"a"', b'"node":"b"')
    log.write_bytes(b"".join(lines))
    result = CliRunner().invoke(main, ["verify", str(log)])
    assert result.exit_code == 3
    assert "line 4 does not match its checksum" in result.stderr
    result = CliRunner().invoke(main, ["verify", str(log), "--json"])
    assert result.exit_code == 3
    document = json.loads(result.stdout)
    assert (document["ok"], document["records"], document["seq"]) == (False, 2, 2)
    error = document["error"]
    assert (error["type"], error["exit_code"]) == ("LogCorrupted", 3)
    assert "line 4 does not match its checksum" in error["message"]


def test_a_hand_edited_range_of_missed_due_times_is_flagged(tmp_path: Path) -> None:
    """A range whose count is 0, or whose last due time comes before its first."""
    from datetime import timedelta

    from chronolog import Skipped, SkipReason

    later = T + timedelta(days=5)

    def missed(first_day: int, last_day: int, count: int) -> Skipped:
        first = T + timedelta(days=first_day)
        return Skipped(
            task="backup",
            at=later,
            occurrence=f"backup@{first:%Y-%m-%dT%H:%M:%SZ}",
            reason=SkipReason.MISSED,
            due=first,
            last_due=T + timedelta(days=last_day),
            count=count,
        )

    log = write(
        tmp_path / "edited.jsonl",
        [
            TaskDefined(task="backup", at=T, trigger=Cron("0 1 * * *"), target="jobs:backup"),
            missed(1, 2, 0),
            missed(4, 3, 2),
        ],
    )
    result = CliRunner().invoke(main, ["verify", str(log)])
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "seq 2: range skip of 'backup@2026-03-30T01:00:00Z' (missed) has count 0; a range "
        "stands for at least 2 due times (a single one is a plain skip, without last_due) "
        "[bad-range]",
        "seq 3: range skip of 'backup@2026-04-02T01:00:00Z' (missed) has last_due "
        "2026-04-01T01:00:00+00:00, not after its due time 2026-04-02T01:00:00+00:00 "
        "[bad-range]",
    ]
