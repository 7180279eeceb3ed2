"""Every chronolog must read what format version 1 wrote: committed fixture logs.

``tests/fixtures/format-v1/`` holds a file log and an SQLite log written by
the chronolog of format version 1 (see ``make_fixture.py`` there) and
``expected.json``: what they replay to. Later versions open them, replay
them to that same summary, append to them, and upgrade them -- a compaction
turns a version 1 log into a version 2 one.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import pytest

from chronolog import FileLog, SQLiteLog, check_invariants, replay
from chronolog._events import Scheduled, TaskPaused, TaskResumed

if TYPE_CHECKING:
    from chronolog import Event, State

FIXTURES = Path(__file__).parent / "fixtures" / "format-v1"
#: How many of the newest runs per task the summary pins.
HISTORY = 20


def summary(state: State, records: list[Event]) -> dict[str, Any]:
    """What a log replays to, as plain JSON: tasks, open runs, recent history."""
    document = {
        "seq": state.seq,
        "records": len(records),
        "event_types": dict(sorted(Counter(type(r).__name__ for r in records).items())),
        "tasks": [msgspec.to_builtins(status) for status in state.tasks()],
        "watermarks": {
            name: msgspec.to_builtins(state.watermark(name)) for name in state.task_names()
        },
        "history": {
            name: msgspec.to_builtins(state.history(name, limit=HISTORY))
            for name in state.task_names()
        },
    }
    result: dict[str, Any] = json.loads(msgspec.json.encode(document))
    return result


@pytest.fixture(scope="module")
def expected() -> dict[str, Any]:
    result: dict[str, Any] = json.loads((FIXTURES / "expected.json").read_text())
    return result


@pytest.fixture
def file_log(tmp_path: Path) -> Path:
    return Path(shutil.copy(FIXTURES / "jobs.jsonl", tmp_path / "jobs.jsonl"))


@pytest.fixture
def sqlite_log(tmp_path: Path) -> Path:
    return Path(shutil.copy(FIXTURES / "jobs.sqlite", tmp_path / "jobs.sqlite"))


def test_the_fixtures_are_version_1_and_hold_every_event_type(sqlite_log: Path) -> None:
    assert (FIXTURES / "jobs.jsonl").read_bytes().startswith(b'{"format":"chronolog","version":1}')
    # A copy: even reading a WAL database writes files beside it.
    assert _version(sqlite_log) == 1
    records = list(FileLog(FIXTURES / "jobs.jsonl").read())
    assert len(Counter(type(record).__name__ for record in records)) == 9
    assert any(isinstance(r, Scheduled) and r.content_hash for r in records)
    assert b"\n {" in (FIXTURES / "jobs.jsonl").read_bytes()  # batches of several lines


def test_the_file_log_replays_to_the_known_state(file_log: Path, expected: dict[str, Any]) -> None:
    log = FileLog(file_log)
    records = list(log.read())
    assert summary(log.load_state(), records) == expected
    assert check_invariants(records) == []
    assert file_log.read_bytes() == (FIXTURES / "jobs.jsonl").read_bytes()  # read only


def test_the_sqlite_log_replays_to_the_known_state(
    sqlite_log: Path, expected: dict[str, Any]
) -> None:
    log = SQLiteLog(sqlite_log)
    records = list(log.read())
    assert summary(log.load_state(), records) == expected
    assert records == list(FileLog(FIXTURES / "jobs.jsonl").read())


@pytest.mark.parametrize("kind", ["file", "sqlite"])
async def test_a_version_1_log_is_upgraded_by_compaction(
    file_log: Path, sqlite_log: Path, kind: str
) -> None:
    path = file_log if kind == "file" else sqlite_log

    def make() -> FileLog | SQLiteLog:
        return FileLog(path) if kind == "file" else SQLiteLog(path)

    records = list(make().read())
    async with make() as log:
        at = records[-1].at
        more = await log.append(
            [TaskPaused(task="sync", at=at, note="upgrade"), TaskResumed(task="sync", at=at)]
        )
        assert _version(path) == 1  # appending keeps the version
        await log.save_snapshot(replay(records + more))
        assert _version(path) == 1  # so does a snapshot
        await log.compact(replay(records[:500]))
        assert _version(path) == 2
    whole = replay(records + more)
    assert make().load_state() == whole
    assert make().base_state() == replay(records[:500])
    assert list(make().read()) == records[500:] + more
    assert check_invariants(make().read(), start=make().base_state()) == []


def _version(path: Path) -> int:
    if path.suffix == ".jsonl":
        header = json.loads(path.read_bytes().split(b"\n", 1)[0])
        return int(header["version"])
    with sqlite3.connect(path) as connection:
        (version,) = connection.execute(
            "SELECT value FROM chronolog_meta WHERE key = 'version'"
        ).fetchone()
    return int(version)
