"""A damaged log is never run on, compacted or appended to (issue 14, items 1 and 2).

Each case starts from the command-line tests' scenario: a log a real
scheduler wrote over two and a half simulated days. It is damaged as the
issue's reports did it -- the ``Started`` line of a run that completed
deleted (``sed '/"seq":N,/d'``), ``"attempt":1`` changed to ``2`` on a
``Completed`` -- in a log of the current format (records with checksums)
and in one of format version 1 (without). Then:

* ``open_scheduler`` refuses it, naming the line or the rule and the seq,
  and pointing to the recovery how-to;
* the control commands, which append directly when no scheduler runs,
  refuse it with exit code 3 and change nothing;
* ``chronolog compact`` refuses it with exit code 3 and leaves it byte for
  byte as it was;
* ``chronolog verify`` fails it.

A log whose checksums hold but whose records break a rule (what a writer
with a bug leaves) is refused the same way, by rule and seq.
"""

# The tests prepare and inspect small files with plain blocking calls.

from __future__ import annotations

import json
from datetime import timedelta
from typing import TYPE_CHECKING

import msgspec
import pytest
import trio
from click.testing import CliRunner

from chronolog import (
    Completed,
    FileLog,
    LogCorrupted,
    Scheduled,
    Skipped,
    SkipReason,
    SQLiteLog,
    Started,
    TaskDefined,
    TaskPaused,
    open_scheduler,
)
from chronolog._compaction import compact_log
from chronolog._events import encode_header, encode_lines
from chronolog._triggers import Manual
from chronolog.cli import main
from chronolog.log.file import encode_sealed
from chronolog.testing import SimulatedClock

from .cli_logs import CRASH, scenario_bytes

if TYPE_CHECKING:
    from pathlib import Path

    from chronolog import Event

GUIDE = "docs/how-to/recover-a-damaged-log.md"


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> list[Event]:
    path = tmp_path_factory.mktemp("scenario") / "jobs.jsonl"
    path.write_bytes(scenario_bytes())
    return list(FileLog(path).read())


def completed_run(records: list[Event]) -> tuple[Started, Completed]:
    """The ``Started`` and ``Completed`` of a run of the scenario that completed."""
    started = {
        (r.occurrence, r.attempt): r for r in records if isinstance(r, Started) and r.attempt == 1
    }
    for record in records:
        if isinstance(record, Completed) and (record.occurrence, 1) in started:
            return started[record.occurrence, 1], record
    raise AssertionError("the scenario has a completed run")


def write(path: Path, records: list[Event], *, version: int) -> Path:
    if version == 3:
        path.write_bytes(encode_sealed(records))
    else:
        path.write_bytes(encode_header() + encode_lines(records))
    return path


def delete_started(path: Path, records: list[Event]) -> str:
    """``sed '/"seq":N,/d'`` on the ``Started`` of a completed run; what is refused."""
    started, _ = completed_run(records)
    lines = path.read_bytes().splitlines(keepends=True)
    marker = b'"seq":%d,' % started.seq
    path.write_bytes(b"".join(line for line in lines if marker not in line))
    return f"the record with seq {started.seq} is missing"


def edit_attempt(path: Path, records: list[Event]) -> str:
    """``"attempt":1`` -> ``2`` on the ``Completed`` of a completed run."""
    _, completed = completed_run(records)
    lines = path.read_bytes().splitlines(keepends=True)
    marker = b'"seq":%d,' % completed.seq
    index = next(i for i, line in enumerate(lines) if marker in line)
    lines[index] = lines[index].replace(b'"attempt":1', b'"attempt":2')
    path.write_bytes(b"".join(lines))
    return f"line {index + 1} does not match its checksum"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def open_a_scheduler(path: Path) -> None:
    """Open a scheduler on ``path`` an hour after the crash, and stop it."""
    sim = SimulatedClock(CRASH + timedelta(hours=1))

    async def main() -> None:
        async with open_scheduler(path, clock=sim):
            pass

    trio.run(main, clock=sim.trio_clock)


# -- damaged bytes -------------------------------------------------------------------


@pytest.mark.parametrize("damage", [delete_started, edit_attempt])
@pytest.mark.parametrize("version", [3, 1])
def test_a_damaged_log_is_refused_by_every_writer(
    tmp_path: Path, records: list[Event], damage: object, version: int
) -> None:
    path = write(tmp_path / "jobs.jsonl", records, version=version)
    expected = damage(path, records)  # type: ignore[operator]
    _, completed = completed_run(records)
    if version == 1 and damage is edit_attempt:
        # No checksum to find it: the rules do, before anything is written.
        expected = (
            f"breaks the rule finished-without-start at seq {completed.seq}: Completed for "
            f"attempt 2"
        )
    before = path.read_bytes()

    with pytest.raises(LogCorrupted, match=expected) as caught:
        open_a_scheduler(path)
    assert GUIDE in str(caught.value)
    assert path.read_bytes() == before

    code, out, err = run("pause", str(path), "backup", "--note", "disk full")
    assert (code, out) == (3, ""), err
    assert expected.split(":")[0] in err
    assert path.read_bytes() == before

    code, out, err = run("compact", str(path), "--keep", "1d")
    assert (code, out) == (3, ""), err
    assert path.read_bytes() == before

    code, out, err = run("verify", str(path))
    assert code == (1 if version == 1 and damage is edit_attempt else 3), (out, err)
    assert path.read_bytes() == before


def test_the_status_of_a_damaged_log_is_not_shown(tmp_path: Path, records: list[Event]) -> None:
    """Issue 14: the log with the deleted line showed the completed run as scheduled."""
    path = write(tmp_path / "jobs.jsonl", records, version=3)
    for damage in (delete_started, edit_attempt):
        write(path, records, version=3)
        expected = damage(path, records)
        code, out, err = run("status", str(path))
        assert (code, out) == (3, "")
        assert expected in err


def test_verify_json_names_the_damage(tmp_path: Path, records: list[Event]) -> None:
    path = write(tmp_path / "jobs.jsonl", records, version=3)
    expected = delete_started(path, records)
    started, _ = completed_run(records)
    code, out, _ = run("verify", str(path), "--json")
    assert code == 3
    document = json.loads(out)
    assert document["ok"] is False
    assert document["seq"] == started.seq - 1  # read up to the damage
    assert expected in document["error"]["message"]


def test_a_damaged_sqlite_log_is_refused(tmp_path: Path, records: list[Event]) -> None:
    import sqlite3

    path = tmp_path / "jobs.sqlite"

    async def fill() -> None:
        async with SQLiteLog(path) as log:
            await log.append([msgspec.structs.replace(r, seq=0) for r in records])

    trio.run(fill)
    _, completed = completed_run(records)
    with sqlite3.connect(path) as connection:
        connection.execute(
            "UPDATE chronolog_records SET record = replace(record, '\"attempt\":1', "
            "'\"attempt\":2') WHERE seq = ?",
            (completed.seq,),
        )
    connection.close()
    expected = f"the record with seq {completed.seq} does not match its checksum"
    with pytest.raises(LogCorrupted, match=expected):
        open_a_scheduler(path)
    for command in (["pause", str(path), "backup"], ["compact", str(path), "--keep", "1d"]):
        code, _, err = run(*command)
        assert code == 3
        assert expected in err
    assert run("verify", str(path))[0] == 3


# -- sound bytes, broken rules ----------------------------------------------------------


def broken(records: list[Event]) -> tuple[list[Event], int]:
    """The scenario with a ``Completed`` for an attempt that never started, its
    records renumbered and sealed as a writer would: checksums hold."""
    _, completed = completed_run(records)
    changed = [
        msgspec.structs.replace(r, attempt=2) if r.seq == completed.seq else r  # type: ignore[call-arg]
        for r in records
    ]
    return changed, completed.seq


def test_a_log_with_sound_checksums_that_breaks_a_rule_is_refused(
    tmp_path: Path, records: list[Event]
) -> None:
    changed, seq = broken(records)
    path = write(tmp_path / "jobs.jsonl", changed, version=3)
    before = path.read_bytes()
    assert list(FileLog(path).read()) == changed  # every checksum holds
    expected = f"breaks the rule finished-without-start at seq {seq}: Completed for attempt 2"
    with pytest.raises(LogCorrupted, match=expected) as caught:
        open_a_scheduler(path)
    assert "No scheduler runs on a log that breaks its rules" in str(caught.value)
    assert GUIDE in str(caught.value)
    for command in (["pause", str(path), "backup"], ["compact", str(path), "--keep", "1d"]):
        code, out, err = run(*command)
        assert (code, out) == (3, "")
        assert expected in err
    code, out, _ = run("verify", str(path))
    assert code == 1
    assert f"seq {seq}: Completed for attempt 2" in out
    assert path.read_bytes() == before


async def test_compaction_refuses_a_log_that_breaks_a_rule(
    tmp_path: Path, records: list[Event]
) -> None:
    """Also from a scheduler's own log (`Scheduler.compact` uses compact_log)."""
    changed, seq = broken(records)
    path = write(tmp_path / "jobs.jsonl", changed, version=3)
    before = path.read_bytes()
    async with FileLog(path) as log:
        with pytest.raises(LogCorrupted, match=rf"at seq {seq}: .* Compaction folds records"):
            await compact_log(log, keep=timedelta(0), now=CRASH)
    assert path.read_bytes() == before


def test_an_occurrence_settled_twice_is_refused(tmp_path: Path) -> None:
    """Issue 13: ``Skipped overlap``, ``TaskPaused``, ``Skipped paused`` for one occurrence."""
    at = CRASH
    occurrence = "job@2026-03-30T08:00:00Z"
    events: list[Event] = [
        TaskDefined(task="job", at=at, trigger=Manual(), target="jobs:job"),
        Scheduled(task="job", at=at, occurrence=occurrence, due=at),
        Skipped(task="job", at=at, occurrence=occurrence, reason=SkipReason.OVERLAP),
        TaskPaused(task="job", at=at),
        Skipped(task="job", at=at, occurrence=occurrence, reason=SkipReason.PAUSED),
    ]
    numbered = [msgspec.structs.replace(e, seq=n) for n, e in enumerate(events, start=1)]
    path = write(tmp_path / "jobs.jsonl", numbered, version=3)
    with pytest.raises(
        LogCorrupted, match=r"breaks the rule skipped-after-settled at seq 5: .* settled twice"
    ):
        open_a_scheduler(path)
    code, out, _ = run("verify", str(path))
    assert code == 1
    assert out.startswith("seq 5: occurrence 'job@2026-03-30T08:00:00Z' settled twice")


def test_a_sound_log_opens_and_compacts(tmp_path: Path, records: list[Event]) -> None:
    path = write(tmp_path / "jobs.jsonl", records, version=3)
    open_a_scheduler(path)
    code, out, err = run("compact", str(path), "--keep", "1d")
    assert code == 0, err
    assert "folded" in out
    assert run("verify", str(path))[0] == 0
