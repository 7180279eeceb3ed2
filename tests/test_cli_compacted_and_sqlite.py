"""Every inspection command on a compacted log and on a SQLite log.

The logs are the scenario of `cli_logs` (a real scheduler on simulated
time), copied into a SQLite database as well, and compacted to the last day.
Each command must give on the compacted log what it gives on the whole log
(as far as the base snapshot still knows), agree with ``log.load_state()``,
and say so plainly when a question reaches back past the base.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import msgspec
import pytest
import trio
from click.testing import CliRunner

from chronolog import (
    ConfigError,
    FileLog,
    LogChanged,
    Scheduled,
    SQLiteLog,
    Started,
    TaskDefined,
    TaskRemoved,
    replay,
)
from chronolog._compaction import compact_log
from chronolog._direct import event_log_at
from chronolog._projection import State
from chronolog._scheduler import _as_log
from chronolog.cli import main
from chronolog.cli._output import task_json
from chronolog.cli._reading import open_log
from chronolog.log._known import after_base
from chronolog.log._paths import log_at
from chronolog.testing import assert_exactly_once, assert_nothing_lost, assert_replay_consistent

from .cli_logs import CRASH, START, scenario_log

if TYPE_CHECKING:
    from pathlib import Path

    from chronolog import Event

#: Compacting at the crash and keeping a day folds the first day and three quarters.
KEEP = timedelta(days=1)


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def invoke_json(*args: str) -> Any:
    code, out, err = invoke(*args, "--json")
    assert code == 0, err
    return json.loads(out)


def sqlite_copy(source: Path, path: Path) -> Path:
    """The records of ``source`` in a new SQLite log at ``path``, under the same seqs."""
    records = [msgspec.structs.replace(r, seq=0) for r in FileLog(source).read()]

    async def write() -> None:
        async with SQLiteLog(path) as log:
            await log.append(records)

    trio.run(write)
    return path


def compacted(path: Path) -> Path:
    async def fold() -> None:
        async with log_at(path) as log:
            await compact_log(log, keep=KEEP, now=CRASH)

    trio.run(fold)
    return path


@pytest.fixture(params=["jsonl", "sqlite"])
def logs(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, Path]:
    """(the whole log, the same log compacted), as JSON Lines or SQLite."""
    whole = scenario_log(tmp_path)
    if request.param == "sqlite":
        whole = sqlite_copy(whole, tmp_path / "whole.sqlite")
        folded = sqlite_copy(scenario_log(tmp_path, "source.jsonl"), tmp_path / "jobs.db")
    else:
        folded = scenario_log(tmp_path, "compacted.jsonl")
    return whole, compacted(folded)


def base_seq(path: Path) -> int:
    seq = log_at(path).base_seq
    assert seq > 0
    return seq


def first_kept(path: Path) -> Event:
    log = log_at(path)
    return next(log.read(log.base_seq))


# -- the shared backend rule -------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("jobs.jsonl", FileLog),
        ("jobs.log", FileLog),
        ("jobs.sqlite", SQLiteLog),
        ("jobs.SQLITE3", SQLiteLog),
        ("jobs.db", SQLiteLog),
    ],
)
def test_every_entry_point_picks_the_same_backend(tmp_path: Path, name: str, kind: type) -> None:
    path = tmp_path / name
    path.touch()
    assert type(log_at(path)) is kind
    assert type(_as_log(path)) is kind
    assert type(event_log_at(path)) is kind
    assert type(open_log(path)) is kind


# -- status and replay -------------------------------------------------------------


def test_status_agrees_with_load_state_and_with_the_whole_log(logs: tuple[Path, Path]) -> None:
    whole, folded = logs
    state = log_at(folded).load_state()
    assert state == replay(log_at(whole).read())
    document = invoke_json("status", str(folded))
    assert document["seq"] == state.seq == log_at(whole).last_seq
    assert document["tasks"] == [task_json(status) for status in state.tasks()]
    assert document == invoke_json("status", str(whole))
    code, out, _ = invoke("status", str(folded))
    assert code == 0
    assert sorted(line.split()[0] for line in out.splitlines()[2:]) == state.task_names()


def test_replay_at_a_seq_or_time_after_the_base_equals_the_whole_log(
    logs: tuple[Path, Path],
) -> None:
    whole, folded = logs
    base = base_seq(folded)
    first = first_kept(folded)
    for args in (
        (),
        ("--seq", str(base)),
        ("--seq", str(base + 40)),
        ("--at", first.at.isoformat()),
        ("--at", (CRASH - timedelta(hours=3)).isoformat()),
    ):
        on_folded = invoke_json("replay", str(folded), *args)
        on_whole = invoke_json("replay", str(whole), *args)
        assert on_folded["seq"] == on_whole["seq"]
        assert on_folded["tasks"] == on_whole["tasks"], args
    at_base = invoke_json("replay", str(folded), "--seq", str(base))
    assert (at_base["seq"], at_base["records"], at_base["at"]) == (base, 0, None)
    code, out, _ = invoke("replay", str(folded), "--seq", str(base))
    assert code == 0
    assert out.startswith(f"{folded} after seq {base}, the base snapshot of the compacted log")


def test_replay_before_the_base_says_where_the_log_was_compacted(
    logs: tuple[Path, Path],
) -> None:
    _, folded = logs
    base = base_seq(folded)
    first = first_kept(folded)
    code, out, err = invoke("replay", str(folded), "--seq", str(base - 1))
    assert (code, out) == (2, "")
    assert err.startswith(f"Error: {folded} was compacted at seq {base}: ")
    first_at = first.at.isoformat().replace("+00:00", "Z")
    assert f"give --seq {base} or later, or --at {first_at} or later" in err
    before = first.at - timedelta(seconds=1)
    code, out, err = invoke("replay", str(folded), "--at", before.isoformat())
    assert (code, out) == (2, "")
    assert f"compacted at seq {base}" in err
    assert f"the state at {before.isoformat().replace('+00:00', 'Z')} is gone" in err
    code, _, err = invoke("replay", str(folded), "--at", START.isoformat())
    assert code == 2
    assert f"compacted at seq {base}" in err


def test_replay_at_a_time_when_nothing_after_the_base_was_kept(tmp_path: Path) -> None:
    path = scenario_log(tmp_path)

    async def fold_everything() -> None:
        async with FileLog(path) as log:
            await compact_log(log, keep=timedelta(0), now=CRASH + timedelta(hours=1))

    trio.run(fold_everything)
    base = base_seq(path)
    assert base == FileLog(path).last_seq
    code, _, err = invoke("replay", str(path), "--at", CRASH.isoformat())
    assert code == 2
    assert "keeps no record after that" in err
    assert f"only the state at seq {base}, its end, can be shown" in err
    assert invoke_json("status", str(path))["tasks"] == [
        task_json(status) for status in FileLog(path).load_state().tasks()
    ]


# -- verify ------------------------------------------------------------------------


def test_verify_checks_from_the_base(logs: tuple[Path, Path]) -> None:
    _, folded = logs
    base = base_seq(folded)
    last = log_at(folded).last_seq
    code, out, err = invoke("verify", str(folded))
    assert (code, err) == (0, "")
    assert out == (
        f"{folded}: {last - base} records from its base at seq {base} up to seq {last}, "
        f"every rule holds\n"
    )
    document = invoke_json("verify", str(folded))
    assert document == {
        "ok": True,
        "records": last - base,
        "seq": last,
        "violations": [],
        "torn_tail": None,
        "format_version": log_at(folded).format_version,
    }


def test_verify_finds_a_rule_broken_against_the_base(logs: tuple[Path, Path]) -> None:
    _, folded = logs
    base = log_at(folded).base_state()
    settled = base.history("sync")[-1]  # the oldest run the base keeps: long settled
    assert settled.outcome == "completed"

    async def start_again() -> None:
        async with log_at(folded) as log:
            await log.append(
                [
                    Started(
                        task="sync", at=CRASH, occurrence=settled.occurrence, attempt=1, node="x"
                    )
                ]
            )

    trio.run(start_again)
    code, out, _ = invoke("verify", str(folded))
    assert code == 1
    assert f"'{settled.occurrence}'" in out
    assert "[started-after-settled]" in out


# -- history, tail, timeline ---------------------------------------------------------


def test_history_keeps_the_runs_after_the_base_and_those_the_base_keeps(
    logs: tuple[Path, Path],
) -> None:
    whole, folded = logs
    base = log_at(folded).base_state()
    for task in base.task_names():
        runs = invoke_json("history", str(folded), task, "--limit", "0")["runs"]
        everything = {
            run["occurrence"]: run
            for run in invoke_json("history", str(whole), task, "--limit", "0")["runs"]
        }
        shown = {run["occurrence"]: run for run in runs}
        # Every run that went on after the base is there, exactly as on the whole log.
        after = {name for name, run in everything.items() if run["seq"] > base.seq}
        assert after <= set(shown)
        for name in after:
            assert shown[name] == everything[name], name
        # So are the recent runs the base keeps, and nothing it does not know.
        assert {run.occurrence for run in base.history(task)} <= set(shown)
        assert set(shown) <= set(everything)
    code, out, _ = invoke("history", str(folded), "sync", "--limit", "3")
    assert code == 0
    assert out.rstrip().endswith(
        f"({folded} was compacted at seq {base.seq}: of the runs before then, only the "
        f"recent ones its base snapshot keeps are shown)"
    )


def test_tail_shows_the_records_after_the_base(logs: tuple[Path, Path]) -> None:
    whole, folded = logs
    base = base_seq(folded)
    code, out, _ = invoke("tail", str(folded), "-n", "7", "--json")
    assert code == 0
    assert out == invoke("tail", str(whole), "-n", "7", "--json")[1]
    last = log_at(folded).last_seq
    code, out, err = invoke("tail", str(folded), "-n", str(last))
    assert code == 0
    assert len(out.splitlines()) == last - base
    assert out.split()[0] == str(base + 1)
    assert err == (
        f"({folded} was compacted at seq {base}: the events up to then were folded into its "
        f"base snapshot)\n"
    )


def test_timeline_starts_where_the_records_do(logs: tuple[Path, Path], tmp_path: Path) -> None:
    whole, folded = logs
    first = first_kept(folded)
    document = invoke_json("timeline", str(folded), "--out", str(tmp_path / "t.html"))
    assert document["since"] == first.at.isoformat().replace("+00:00", "Z")
    state = log_at(folded).load_state()
    assert [lane["task"] for lane in document["tasks"]] == state.task_names()
    on_whole = invoke_json(
        "timeline", str(whole), "--out", str(tmp_path / "w.html"), "--since", document["since"]
    )
    assert (document["since"], document["until"]) == (on_whole["since"], on_whole["until"])
    lanes = {lane["task"]: lane["counts"] for lane in on_whole["tasks"]}
    for lane in document["tasks"]:
        assert lane["counts"] == lanes[lane["task"]], lane["task"]
    assert (tmp_path / "t.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


# -- why -------------------------------------------------------------------------------


def test_why_after_the_base_answers_as_on_the_whole_log(logs: tuple[Path, Path]) -> None:
    whole, folded = logs
    base = log_at(folded).base_state()
    kept = [run.occurrence for run in base.history("backup")]
    later = [
        run["occurrence"]
        for run in invoke_json("history", str(whole), "sync", "--limit", "0")["runs"]
        if run["seq"] > base.seq
    ]
    for occurrence in (*kept, later[0], later[-1]):
        on_folded = invoke_json("why", str(folded), occurrence)
        on_whole = invoke_json("why", str(whole), occurrence)
        assert on_folded["verdict"] == on_whole["verdict"], occurrence
        if on_folded["reason"] != on_whole["reason"]:
            # Only the retries of a run the base keeps are told in brief.
            assert on_folded["verdict"] == "ran-after-retry"
            assert f"when the log was compacted at seq {base.seq})" in on_folded["reason"]


def test_why_about_an_occurrence_folded_away_says_it_was_compacted(
    logs: tuple[Path, Path],
) -> None:
    whole, folded = logs
    base = log_at(folded).base_state()
    first_sync = invoke_json("history", str(whole), "sync", "--limit", "0")["runs"][-1]
    assert first_sync["occurrence"] not in {run.occurrence for run in base.history("sync")}
    document = invoke_json("why", str(folded), first_sync["occurrence"])
    assert document["verdict"] == "compacted"
    assert document["reason"].startswith(
        f"it settled before the log was compacted at seq {base.seq}: its records were folded "
    )
    code, out, _ = invoke("why", str(folded), first_sync["occurrence"])
    assert code == 0
    assert f"compacted: It settled before the log was compacted at seq {base.seq}" in out


def test_why_about_a_task_removed_before_the_base(logs: tuple[Path, Path]) -> None:
    whole, folded = logs
    removed = next(r for r in log_at(whole).read() if isinstance(r, TaskRemoved))
    assert removed.task not in log_at(folded).load_state()
    at = (removed.at - timedelta(minutes=20)).isoformat()
    document = invoke_json("why", str(folded), removed.task, "--at", at)
    assert document["verdict"] == "compacted"
    assert (
        f"the log was compacted at seq {base_seq(folded)} and its records begin"
        in (document["reason"])
    )
    code, _, err = invoke("why", str(folded), "no-such-task", "--at", at)
    assert code == 2
    assert f"The log was compacted at seq {base_seq(folded)}" in err


# -- control without a scheduler, and the testing checkers ------------------------------------


def test_pause_without_a_scheduler_sees_the_tasks_of_the_base(logs: tuple[Path, Path]) -> None:
    _, folded = logs
    assert "backup" in log_at(folded).base_state()
    code, out, err = invoke("pause", str(folded), "backup", "--note", "disk full")
    assert (code, err) == (0, "")
    assert out.startswith("backup paused")
    status = log_at(folded).load_state().status("backup")
    assert (status.paused, status.note) == (True, "disk full")
    assert invoke("verify", str(folded))[0] == 0


def test_the_testing_checkers_start_from_the_base(logs: tuple[Path, Path]) -> None:
    _, folded = logs
    log = log_at(folded)
    assert_exactly_once(log)
    assert_replay_consistent(log, state=log.load_state())
    with pytest.raises(ConfigError, match=r"was compacted at seq \d+: those records are folded"):
        assert_nothing_lost(log, until=CRASH)


def test_a_compaction_between_base_and_records_is_caught(tmp_path: Path) -> None:
    path = compacted(scenario_log(tmp_path))
    log = open_log(path)
    # Raised by the reading core (chronolog.log._known); the commands turn it
    # into their error message (translate_errors).
    with pytest.raises(LogChanged, match=r"was compacted while it was being read"):
        list(after_base(log, State()))
    assert list(after_base(log, log.base_state())) == list(log.read())


def test_a_sqlite_log_that_was_never_compacted_reads_like_its_file(tmp_path: Path) -> None:
    source = scenario_log(tmp_path)
    path = sqlite_copy(source, tmp_path / "jobs.sqlite")
    assert invoke_json("status", str(path)) == invoke_json("status", str(source))
    verify = invoke_json("verify", str(path))
    assert verify["ok"]
    assert verify["records"] == FileLog(source).last_seq
    kinds = {type(r) for r in log_at(path).read()}
    assert {TaskDefined, Scheduled, Started} <= kinds
