"""``chronolog status``: every task of a log, also while a scheduler writes it."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import TYPE_CHECKING

import msgspec
import pytest
import trio
from click.testing import CliRunner

from chronolog import (
    At,
    Completed,
    FileLog,
    Manual,
    Scheduled,
    Started,
    TaskDefined,
    TaskPaused,
    replay,
)
from chronolog._events import encode_header, encode_lines
from chronolog.cli import main
from chronolog.cli.status import format_status_table

from .cli_logs import START, scenario_log

if TYPE_CHECKING:
    from pathlib import Path

    from chronolog import Event


@pytest.fixture
def log(tmp_path: Path) -> Path:
    return scenario_log(tmp_path)


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def rows(table: str) -> dict[str, list[str]]:
    """The table's rows by task name, cells split on runs of two spaces or more."""
    lines = table.splitlines()[2:]
    cells = [[cell for cell in line.split("  ") if cell.strip()] for line in lines]
    return {row[0].strip(): [cell.strip() for cell in row[1:]] for row in cells}


def test_the_table_shows_every_task_with_its_state_and_counts(log: Path) -> None:
    code, out, err = invoke("status", str(log))
    assert (code, err) == (0, "")
    header = out.splitlines()[0].split()
    assert header[:4] == ["task", "state", "next", "run"]
    table = rows(out)
    assert sorted(table) == ["backup", "flaky", "reindex", "report", "sync"]
    assert table["report"][0] == "running"  # the crash left its run open
    state = replay(FileLog(log).read())
    for name, cells in table.items():
        status = state.status(name)
        assert cells[-1] == f"{status.run_count}/{status.error_count}/{status.skip_count}"
    assert table["flaky"][-2] == "error: the service did not answer"
    assert not any(line != line.rstrip() for line in out.splitlines())  # no padding in pipes


def test_json_has_the_documented_fields_and_agrees_with_replay(log: Path) -> None:
    code, out, _ = invoke("status", str(log), "--json")
    assert code == 0
    document = json.loads(out)
    state = replay(FileLog(log).read())
    assert document["seq"] == state.seq
    by_name = {task["task"]: task for task in document["tasks"]}
    assert list(by_name) == state.task_names()
    report = by_name["report"]
    assert set(report) == {
        "task",
        "state",
        "paused",
        "finished",
        "note",
        "trigger",
        "target",
        "version",
        "next_run",
        "last_run",
        "last_result",
        "last_error",
        "last_duration_seconds",
        "runs",
        "errors",
        "skips",
        "running",
    }
    status = state.status("report")
    assert report["state"] == "running"
    assert report["running"] == list(status.running)
    assert report["runs"] == status.run_count
    assert report["trigger"] == "every 1 h from 2026-03-27 12:00:00Z"
    assert by_name["backup"]["next_run"] == "2026-03-31T00:30:00Z"
    assert by_name["backup"]["last_duration_seconds"] == 180.0


def test_an_empty_log_has_no_tasks(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    assert invoke("status", str(empty))[:2] == (0, f"no tasks in {empty} (seq 0)\n")
    header_only = tmp_path / "header.jsonl"
    header_only.write_bytes(encode_header())
    code, out, _ = invoke("status", str(header_only), "--json")
    assert (code, json.loads(out)) == (0, {"seq": 0, "tasks": []})


async def test_status_reads_a_log_that_a_scheduler_holds_and_never_writes_it(
    tmp_path: Path,
) -> None:
    path = scenario_log(tmp_path)
    async with FileLog(path) as writer:  # holds the lock, as a running scheduler does
        last = writer.last_seq
        await writer.append(
            [Scheduled(task="sync", at=START, occurrence="sync@2026-04-01T00:00:00Z", due=START)]
        )
        # A batch still being written: its first line landed, its last has not.
        with path.open("ab") as file:
            file.write(b' {"type":"Started","seq":')
        before = path.read_bytes()
        code, out, _ = invoke("status", str(path), "--json")
        assert code == 0
        assert json.loads(out)["seq"] == last + 1
        assert path.read_bytes() == before  # no repair, no write
        assert not list(await trio.Path(tmp_path).glob("*.torn-*"))


def test_format_status_table_is_plain_text_for_the_demo(log: Path) -> None:
    text = format_status_table(replay(FileLog(log).read()))
    assert text.splitlines()[0].split()[:2] == ["task", "state"]
    assert "\x1b[" not in text
    assert "report" in text


def write_records(path: Path, events: list[Event]) -> Path:
    numbered = [msgspec.structs.replace(event, seq=n) for n, event in enumerate(events, 1)]
    path.write_bytes(encode_header() + encode_lines(numbered))
    return path


def test_a_one_off_that_ran_is_finished_not_paused_and_a_long_note_is_cut(tmp_path: Path) -> None:
    due = START + timedelta(minutes=5)
    occurrence = f"once@{due:%Y-%m-%dT%H:%M:%SZ}"
    long_note = "waiting for the storage team to finish moving the archive to the new cluster"
    log = write_records(
        tmp_path / "jobs.jsonl",
        [
            TaskDefined(task="once", at=START, trigger=At(due), target="jobs:once"),
            Scheduled(task="once", at=START, occurrence=occurrence, due=due),
            Started(task="once", at=due, occurrence=occurrence, attempt=1),
            Completed(task="once", at=due, occurrence=occurrence, attempt=1),
            TaskDefined(task="held", at=START, trigger=Manual(), target="jobs:held"),
            TaskPaused(task="held", at=START, note=long_note),
        ],
    )
    code, out, err = invoke("status", str(log))
    assert (code, err) == (0, "")
    table = rows(out)
    assert table["once"][0] == "finished"
    held = table["held"][0]
    assert held.startswith("paused (waiting for the storage team")
    assert len(held) < len(long_note)
    code, out, _ = invoke("status", str(log), "--json")
    tasks = {task["task"]: task for task in json.loads(out)["tasks"]}
    assert (tasks["once"]["state"], tasks["once"]["finished"], tasks["once"]["paused"]) == (
        "finished",
        True,
        False,
    )
    assert tasks["held"]["note"] == long_note  # in full in --json
