"""``chronolog compact LOG --keep DURATION``: fold old records into the base, atomically."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import msgspec
import pytest
import trio
from click.testing import CliRunner

from chronolog import Completed, Every, FileLog, Scheduled, SQLiteLog, Started, TaskDefined
from chronolog._events import encode_header, encode_lines
from chronolog._projection import replay
from chronolog.cli import main
from chronolog.cli._common import BadUsage
from chronolog.cli.compact import parse_duration
from chronolog.log._lock import release_lock, take_lock
from chronolog.log.file import encode_sealed

if TYPE_CHECKING:
    from pathlib import Path

    from chronolog import Event

HOUR = timedelta(hours=1)


def recent_runs(hours: int) -> list[Event]:
    """Hourly runs over the last ``hours`` hours of the real clock (the command's now)."""
    start = datetime.now(UTC).replace(microsecond=0) - hours * HOUR
    events: list[Event] = [
        TaskDefined(task="sync", at=start, trigger=Every(HOUR, anchor=start), target="jobs:s")
    ]
    for n in range(1, hours + 1):
        due = start + n * HOUR - timedelta(minutes=30)
        occurrence = f"sync@{due.isoformat()}"
        events += [
            Scheduled(task="sync", at=due, occurrence=occurrence, due=due),
            Started(task="sync", at=due, occurrence=occurrence, attempt=1),
            Completed(task="sync", at=due, occurrence=occurrence, attempt=1, result=n),
        ]
    return [msgspec.structs.replace(e, seq=n) for n, e in enumerate(events, start=1)]


def write(path: Path, records: list[Event]) -> Path:
    """A log of the current format (records with checksums) holding ``records``."""
    path.write_bytes(encode_sealed(records))
    return path


def write_version_1(path: Path, records: list[Event]) -> Path:
    """A log as format version 1 wrote it: no checksums."""
    path.write_bytes(encode_header() + encode_lines(records))
    return path


def compact(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["compact", *args])
    return result.exit_code, result.stdout, result.stderr


def test_old_records_are_folded_and_recent_ones_kept(tmp_path: Path) -> None:
    records = recent_runs(48)
    log = write(tmp_path / "jobs.jsonl", records)
    code, out, _ = compact(str(log), "--keep", "12h")
    assert code == 0
    kept = 12 * 3
    folded = len(records) - kept
    assert out.startswith(
        f"{log}: folded {folded} records (up to seq {folded}) into its base snapshot; "
        f"kept the {kept} records from "
    )
    assert "KiB -> " in out
    assert list(FileLog(log).read()) == records[folded:]
    assert FileLog(log).load_state() == replay(records)


def test_json_says_what_happened(tmp_path: Path) -> None:
    records = recent_runs(10)
    log = write(tmp_path / "jobs.jsonl", records)
    before = log.stat().st_size
    code, out, _ = compact(str(log), "--keep", "5h", "--json")
    assert code == 0
    document = json.loads(out)
    cut_before = document.pop("cut_before")
    assert document == {
        "log": str(log),
        "compacted": True,
        "base_seq": len(records) - 15,
        "folded": len(records) - 15,
        "kept": 15,
        "bytes_before": before,
        "bytes_after": log.stat().st_size,
    }
    assert cut_before.endswith("Z")


def test_nothing_old_enough_is_said_so(tmp_path: Path) -> None:
    log = write(tmp_path / "jobs.jsonl", recent_runs(5))
    before = log.read_bytes()
    code, out, _ = compact(str(log), "--keep", "30d")
    assert code == 0
    assert out.startswith(f"{log}: nothing to compact: no record after the start was recorded")
    assert log.read_bytes() == before
    assert compact(str(log), "--keep", "0")[0] == 0
    code, out, _ = compact(str(log), "--keep", "0")
    assert "no record after the base at seq 16" in out


def test_a_sqlite_log(tmp_path: Path) -> None:
    records = recent_runs(6)
    log = tmp_path / "jobs.sqlite"

    async def fill() -> None:
        async with SQLiteLog(log) as sqlite:
            await sqlite.append([msgspec.structs.replace(r, seq=0) for r in records])

    trio.run(fill)
    code, out, _ = compact(str(log), "--keep", "2h")
    assert code == 0, out
    assert SQLiteLog(log).base_seq == len(records) - 6
    assert SQLiteLog(log).load_state() == replay(records)


def test_a_log_a_scheduler_holds_is_refused(tmp_path: Path) -> None:
    log = write(tmp_path / "jobs.jsonl", recent_runs(3))
    before = log.read_bytes()
    fd = os.open(log, os.O_RDWR)
    lock = take_lock(fd, log, "FileLog")
    try:
        code, _, err = compact(str(log), "--keep", "0")
    finally:
        release_lock(lock)
        os.close(fd)
    assert code == 3
    assert "is locked by process" in err
    assert "stop that scheduler or use another log" in err
    assert log.read_bytes() == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--keep", "30x"], "--keep '30x' is not a duration; write a number and a unit"),
        (["--keep", "d"], "is not a duration"),
        (["--keep", "-3d"], "is not a duration"),
        ([], "Missing option '--keep'"),
    ],
)
def test_a_bad_keep_is_a_usage_error(tmp_path: Path, args: list[str], message: str) -> None:
    log = write(tmp_path / "jobs.jsonl", recent_runs(1))
    code, _, err = compact(str(log), *args)
    assert code == 2
    assert message in err


def test_no_log_is_a_usage_error(tmp_path: Path) -> None:
    code, _, err = compact(str(tmp_path / "missing.jsonl"), "--keep", "1d")
    assert code == 2
    assert "does not exist; check the path" in err
    assert not (tmp_path / "missing.jsonl").exists()  # not created by opening it
    code, _, err = compact(str(tmp_path), "--keep", "1d")
    assert code == 2
    assert "is a directory, not a log" in err


def test_a_file_that_is_no_log_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello\n")
    code, _, err = compact(str(path), "--keep", "1d")
    assert code == 3
    assert "is not a chronolog log" in err


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30d", timedelta(days=30)),
        ("12h", timedelta(hours=12)),
        ("1w2d", timedelta(days=9)),
        ("90m", timedelta(minutes=90)),
        ("45s", timedelta(seconds=45)),
        ("0", timedelta(0)),
        (" 2D ", timedelta(days=2)),
    ],
)
def test_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text, "--keep") == expected


def test_a_duration_without_unit_is_refused() -> None:
    with pytest.raises(BadUsage, match="units: w, d, h, m, s"):
        parse_duration("30", "--keep")


def test_a_torn_tail_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    log = write(tmp_path / "jobs.jsonl", recent_runs(48))
    torn = log.read_bytes()[:-30]
    log.write_bytes(torn)
    code, out, err = compact(str(log), "--keep", "1h")
    assert (code, out) == (3, "")
    assert "ends with a torn batch" in err
    assert "so it is not compacted and was not changed" in err
    assert log.read_bytes() == torn
    assert sorted(p.name for p in tmp_path.iterdir()) == ["jobs.jsonl"]


def test_a_version_1_log_with_nothing_to_compact_is_left_as_it_was(tmp_path: Path) -> None:
    """Opening to write upgrades a log only before it writes: nothing to fold, no write."""
    log = write_version_1(tmp_path / "jobs.jsonl", recent_runs(5))
    before = log.read_bytes()
    code, out, _ = compact(str(log), "--keep", "30d")
    assert code == 0
    assert "nothing to compact" in out
    assert log.read_bytes() == before
    assert compact(str(log), "--keep", "0")[0] == 0
    assert log.read_bytes().startswith(b'{"format":"chronolog","version":3,')
