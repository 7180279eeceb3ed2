"""Control commands as a user drives them: with no scheduler, through a socket, and every error.

Without a scheduler a command writes to the log itself; with one it asks
through ``<log>.sock``. A fake scheduler -- the real socket server with a
stand-in handler, in a thread -- shows how answers and refusals come out.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
import trio
from click.testing import CliRunner

from chronolog import (
    Every,
    FileLog,
    Manual,
    Scheduled,
    Skipped,
    SQLiteLog,
    Started,
    TaskDefined,
    TaskPaused,
    TaskRemoved,
    TaskResumed,
    check_invariants,
    replay,
)
from chronolog._control import ControlError, serve_control, socket_path
from chronolog._events import encode_header, encode_lines
from chronolog.cli import control as control_module
from chronolog.cli import main

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from chronolog import Event

START = datetime(2026, 3, 27, 12, 0, tzinfo=UTC)


def write_log(path: Path, records: list[Event]) -> Path:
    path.write_bytes(encode_header() + encode_lines(records))
    return path


def records(path: Path) -> list[Event]:
    return list(FileLog(path).read())


@pytest.fixture
def log(tmp_path: Path) -> Path:
    """A log a stopped scheduler left: an hourly report (one run pending) and a manual job."""
    return write_log(
        tmp_path / "jobs.jsonl",
        [
            TaskDefined(
                seq=1,
                task="report",
                at=START,
                trigger=Every(timedelta(hours=1), anchor=START),
                target='command:{"shell":"echo report"}',
            ),
            TaskDefined(seq=2, task="by-hand", at=START, trigger=Manual(), target="builtins:list"),
            Scheduled(
                seq=3,
                task="report",
                at=START,
                occurrence="report@2026-03-27T13:00:00Z",
                due=START + timedelta(hours=1),
            ),
        ],
    )


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def run_json(*args: str) -> dict[str, Any]:
    code, out, err = run(args[0], "--json", *args[1:])
    assert code == 0, err
    document: dict[str, Any] = json.loads(out)
    return document


def assert_error(code: int, out: str, err: str, expected_code: int, message: str) -> None:
    assert (code, out) == (expected_code, "")
    assert err == f"Error: {message}\n"


# -- no scheduler: the command writes to the log ------------------------------------------


def test_pause_and_resume_write_to_the_log(log: Path) -> None:
    code, out, err = run("pause", str(log), "report", "--note", "disk full")
    assert (code, err) == (0, "")
    assert out == "report paused (no scheduler is running: recorded in the log)\n"
    # The pending run stays scheduled: a resume before its due time costs nothing.
    paused = records(log)[-1]
    assert isinstance(paused, TaskPaused)
    assert paused.note == "disk full"
    again = run_json("pause", str(log), "report")
    assert again == {
        "command": "pause",
        "task": "report",
        "paused": True,
        "changed": False,
        "via": "log",
        "log": str(log),
    }
    assert run("resume", str(log), "report")[1].startswith("report resumed")
    # Resumed long after 13:00 on the day of the log: that due time came while
    # paused (skipped now), and the next one is planned from the resume on.
    skipped, resumed, planned = records(log)[-3:]
    assert isinstance(resumed, TaskResumed)
    assert isinstance(skipped, Skipped)
    assert (skipped.occurrence, skipped.reason) == ("report@2026-03-27T13:00:00Z", "paused")
    assert isinstance(planned, Scheduled)
    assert planned.at <= planned.due <= planned.at + timedelta(hours=1)
    assert run_json("resume", str(log), "report")["changed"] is False
    assert run("resume", str(log), "report")[1].startswith("report was not paused")
    assert check_invariants(records(log)) == []


def test_an_sqlite_log_is_controlled_the_same_way(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite"

    async def create() -> None:
        async with SQLiteLog(path) as sqlite:
            await sqlite.append([TaskDefined(task="t", at=START, trigger=Manual(), target="m:f")])

    trio.run(create)
    assert run_json("pause", str(path), "t")["changed"] is True
    assert isinstance(list(SQLiteLog(path).read())[-1], TaskPaused)


def test_an_unknown_task_is_named_with_the_closest_one(log: Path) -> None:
    before = log.read_bytes()
    for command in ("pause", "resume", "run-now", "cancel", "remove"):
        assert_error(
            *run(command, str(log), "reprot"),
            2,
            "no task named 'reprot'; did you mean 'report'? (tasks: by-hand, report)",
        )
    assert log.read_bytes() == before


def test_run_now_records_a_manual_run_for_the_next_scheduler(log: Path) -> None:
    result = run_json("run-now", str(log), "by-hand")
    assert result["started"] is False
    assert result["occurrence"].startswith("by-hand!")
    last = records(log)[-1]
    assert isinstance(last, Scheduled)
    assert last.occurrence == result["occurrence"]
    code, out, _ = run("run-now", str(log), "by-hand")
    assert code == 0
    assert out.startswith("by-hand will run when a scheduler next starts on the log: by-hand!")


def test_run_now_of_a_timed_task_needs_a_running_scheduler(log: Path) -> None:
    assert_error(
        *run("run-now", str(log), "report"),
        1,
        "no scheduler is running on this log, and a run of 'report' can be recorded for later "
        "only for a manual task that is not paused; start the scheduler (chronolog run) and "
        "ask again",
    )


def test_cancel_without_a_scheduler_has_nothing_to_cancel(log: Path) -> None:
    before = log.read_bytes()
    code, out, _ = run("cancel", str(log), "report")
    assert code == 0
    assert out == "nothing to cancel: no scheduler is running, so no run of report is running\n"
    assert run_json("cancel", str(log), "report")["cancelled"] == 0
    assert log.read_bytes() == before


def test_remove_writes_the_removal(log: Path) -> None:
    assert run("remove", str(log), "report", "--note", "replaced by report-v2")[1] == (
        "report removed (no scheduler is running: recorded in the log)\n"
    )
    removal = records(log)[-1]
    assert isinstance(removal, TaskRemoved)
    assert removal.note == "replaced by report-v2"
    assert replay(records(log)).task_names() == ["by-hand"]
    assert check_invariants(records(log)) == []


def test_reload_needs_a_running_scheduler(log: Path) -> None:
    assert_error(
        *run("reload", str(log)),
        1,
        "no scheduler is running on this log, so there is nothing to reload; `chronolog run` "
        "reads the job file when it starts",
    )


def test_a_command_that_changes_nothing_says_nothing_was_written(log: Path) -> None:
    run("pause", str(log), "report")
    before = log.read_bytes()
    code, out, _ = run("pause", str(log), "report")
    assert (code, out) == (
        0,
        "report was already paused (no scheduler is running; nothing was written to the log)\n",
    )
    code, out, _ = run("resume", str(log), "by-hand")
    assert out == (
        "by-hand was not paused (no scheduler is running; nothing was written to the log)\n"
    )
    assert log.read_bytes() == before


def test_errors_with_json_are_a_document_on_stdout(log: Path) -> None:
    before = log.read_bytes()
    code, out, err = run("pause", str(log), "nosuch", "--json")
    assert code == 2
    assert json.loads(out) == {
        "error": {
            "type": "UnknownTask",
            "message": "no task named 'nosuch' (tasks: by-hand, report)",
            "exit_code": 2,
        }
    }
    assert err == "Error: no task named 'nosuch' (tasks: by-hand, report)\n"
    code, out, _ = run("reload", str(log), "--json")
    assert code == 1
    assert json.loads(out)["error"]["type"] == "NotRunning"
    assert log.read_bytes() == before


def test_a_torn_tail_repaired_on_open_is_said_once(log: Path) -> None:
    with log.open("ab") as file:
        file.write(b'{"type":"Scheduled","seq":4,"task":"rep')  # a crash mid-append
    code, out, err = run("pause", str(log), "report")
    assert (code, out) == (0, "report paused (no scheduler is running: recorded in the log)\n")
    assert err.count("torn batch") == 1, err
    assert err.startswith(f"Warning: {log} ended with a torn batch (")
    assert len(err.splitlines()) == 1, err
    assert "LogRepaired" not in err
    assert check_invariants(records(log)) == []


# -- add -------------------------------------------------------------------------------


def test_add_creates_keeps_and_changes_a_task(
    log: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "work").mkdir()
    args = ["add", str(log), "backup", "--cron", "0 3 * * *", "--tz", "Europe/Paris"]
    created = run_json(*args, "--cwd", "work", "--env", "A=1", "--", "echo", "--full")
    assert created == {
        "command": "add",
        "task": "backup",
        "change": "created",
        "version": 1,
        "trigger": "cron '0 3 * * *' in Europe/Paris",
        "target": 'added:command:{"argv":["echo","--full"],"cwd":"'
        + str(tmp_path / "work")
        + '","env":{"A":"1"}}',
        "via": "log",
        "log": str(log),
    }
    same = run_json(*args, "--cwd", "work", "--env", "A=1", "--", "echo", "--full")
    assert (same["change"], same["version"]) == ("unchanged", 1)
    code, out, _ = run(*args, "--retry", "3", "--timeout", "1h", "--command", "echo again")
    assert code == 0
    assert out == (
        "backup changed (version 2): cron '0 3 * * *' in Europe/Paris "
        "(no scheduler is running: recorded in the log)\n"
    )
    definition = replay(records(log)).definition("backup")
    assert definition.policy.retry.max_attempts == 3
    assert definition.policy.timeout == timedelta(hours=1)
    assert definition.target == (
        'added:command:{"cwd":"' + str(tmp_path) + '","shell":"echo again"}'
    )
    kept = run_json(*args, "--command", "echo other", "--if-exists", "keep")
    assert (kept["change"], kept["target"]) == ("unchanged", definition.target)
    before = log.read_bytes()
    code, out, _ = run(*args, "--command", "echo other", "--if-exists", "keep")
    assert (code, out) == (
        0,
        "backup unchanged (version 2): cron '0 3 * * *' in Europe/Paris "
        "(no scheduler is running; nothing was written to the log)\n",
    )
    assert log.read_bytes() == before
    assert_error(
        *run(*args, "--command", "echo other", "--if-exists", "error"),
        2,
        "task 'backup' exists with another definition; to change it use if_exists='update' "
        "(--if-exists update on the command line), "
        "or pick another name",
    )
    assert check_invariants(records(log)) == []


def test_add_every_kind_of_trigger(log: Path, tmp_path: Path) -> None:
    watched = tmp_path / "inbox.csv"
    cases = [
        (["--every", "15m", "--call", "builtins:list"], "every 15 min from "),
        (
            ["--at", "2026-05-01T09:00+02:00", "--remove-after-run", "--command", "echo"],
            "once at ",
        ),
        (
            ["--watch", str(watched), "--poll", "1s", "--command", "echo"],
            f"when {watched} changes",
        ),
        (["--manual", "--paused", "--command", "echo"], "manual (runs only when asked)"),
    ]
    for index, (options, trigger) in enumerate(cases):
        result = run_json("add", str(log), f"t{index}", *options)
        assert result["trigger"].startswith(trigger)
    state = replay(records(log))
    assert state.status("t3").paused
    assert state.definition("t1").policy.remove_after_run


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            ["--command", "echo"],
            "cannot add 'x': no trigger; give exactly one of --cron, --every, --at, --watch or "
            "--manual",
        ),
        (
            ["--every", "5mins", "--command", "echo"],
            "cannot add 'x': --every: '5mins' is not a duration; write a number and a unit, "
            "e.g. '90s', '5m', '1h30m', '2d' (units: ms, s, m, h, d)",
        ),
        (
            ["--cron", "61 * * * *", "--command", "echo"],
            "cannot add 'x': --cron: cron minute field '61' is out of range 0-59 in '61 * * * *'",
        ),
        (
            ["--every", "1m"],
            "cannot add 'x': no target; give --command or ARGV (a shell command or a list of "
            "arguments) or --call (an import path such as 'mypackage.jobs:backup')",
        ),
        (
            ["--every", "1m", "--call", "no_such_module_xyz:run"],
            # Imported by whoever writes the task; it knows keys, not options.
            "cannot add 'x': call: cannot import module 'no_such_module_xyz' of target "
            "'no_such_module_xyz:run': No module named 'no_such_module_xyz'",
        ),
        (
            ["--every", "1m", "--tz", "UTC", "--command", "echo"],
            "cannot add 'x': --tz: applies only to cron jobs (at, start and end take a UTC offset "
            "instead), and this job uses --every",
        ),
        (
            ["--at", "2026-05-01T09:00", "--command", "echo"],
            "cannot add 'x': --at: 2026-05-01T09:00:00 has no UTC offset, and chronolog never "
            "guesses one; write e.g. 2026-05-01T09:00:00+02:00 or 2026-05-01T07:00:00Z",
        ),
        (
            ["--every", "1m", "--retry", "0", "--command", "echo"],
            "cannot add 'x': --retry: Retry.max_attempts must be at least 1 (1 means no retry), "
            "got 0",
        ),
        (
            ["--every", "1m", "--command", "echo", "--", "echo"],
            "give the command either as --command TEXT or after --, not both",
        ),
        (
            ["--every", "1m", "--env", "NOVALUE", "--command", "echo"],
            "--env 'NOVALUE' is not KEY=VALUE",
        ),
    ],
)
def test_add_names_the_option_at_fault(log: Path, options: list[str], message: str) -> None:
    before = log.read_bytes()
    assert_error(*run("add", str(log), "x", *options), 2, message)
    assert log.read_bytes() == before


def test_a_call_target_is_looked_for_beside_the_job_file(log: Path, tmp_path: Path) -> None:
    (tmp_path / "beside_the_job_file_xyz.py").write_text("def job():\n    return 1\n")
    job_file = tmp_path / "jobs.toml"
    job_file.write_text('log = "jobs.jsonl"\n')
    result = run_json(
        "add", str(job_file), "py", "--every", "1h", "--call", "beside_the_job_file_xyz:job"
    )
    assert result["target"] == "added:beside_the_job_file_xyz:job"


def test_a_bad_task_name(log: Path) -> None:
    assert_error(
        *run("add", str(log), " x", "--every", "1m", "--command", "echo"),
        2,
        "cannot add ' x': --name: task name ' x' is empty or has leading/trailing spaces; use "
        "e.g. 'backup'",
    )


# -- which log, and logs that stand in the way -------------------------------------------


def test_a_job_file_names_its_log(log: Path, tmp_path: Path) -> None:
    job_file = tmp_path / "jobs.toml"
    job_file.write_text('log = "jobs.jsonl"\n[[jobs]]\nname = "broken"\n')  # only `log` is read
    assert run_json("pause", str(job_file), "report")["log"] == str(log)
    job_file.write_text("[[jobs]]\n")
    assert_error(
        *run("pause", str(job_file), "report"),
        2,
        f"job file {job_file} names no log (its `log` key); give the log's path instead",
    )


def test_a_log_that_is_not_there(tmp_path: Path) -> None:
    missing = tmp_path / "missing.jsonl"
    assert_error(
        *run("pause", str(missing), "x"),
        2,
        f"log {missing} does not exist; check the path (`chronolog run` creates the log when it "
        "first starts)",
    )
    assert not missing.exists()
    assert_error(*run("pause", str(tmp_path), "x"), 2, f"{tmp_path} is a directory, not a log")


def test_a_file_that_is_no_log_is_left_alone(tmp_path: Path) -> None:
    other = tmp_path / "notes.txt"
    other.write_text("shopping list\n")
    code, out, err = run("pause", str(other), "x")
    assert (code, out) == (3, "")
    assert err.startswith("Error: ")
    assert "not a chronolog log" in err
    assert other.read_text() == "shopping list\n"


def test_a_log_damaged_in_the_middle_is_left_alone(log: Path) -> None:
    lines = log.read_bytes().splitlines(keepends=True)
    lines[2] = b'{"type": "Nonsense"}\n'
    log.write_bytes(b"".join(lines))
    code, out, err = run("pause", str(log), "report")
    assert (code, out) == (3, "")
    assert err.startswith(f"Error: {log} line 3 ")
    assert log.read_bytes() == b"".join(lines)


@contextlib.contextmanager
def locked(log: Path) -> Iterator[None]:
    """Hold the log's writer lock, as a process that is not `chronolog run` would."""
    fd = os.open(FileLog(log).lock_path, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, b'{"pid": 4242, "host": "elsewhere"}\n')
        yield
    finally:
        os.close(fd)


def test_a_log_locked_by_a_process_without_a_socket(
    log: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(control_module, "LOCKED_WAIT_SECONDS", 0.05)
    before = log.read_bytes()
    with locked(log):
        code, out, err = run("pause", str(log), "report")
    assert (code, out) == (3, "")
    assert err == (
        f"Error: {log} is locked by process 4242 on host elsewhere; stop that scheduler or use "
        f"another log (lock file {log}.lock); its control socket {log}.sock does not exist, so "
        "it is not a `chronolog run` that can be controlled from here (or it is starting or "
        "stopping: try again)\n"
    )
    assert log.read_bytes() == before


def test_a_stale_socket_does_not_stop_a_command(log: Path) -> None:
    import socket

    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(os.fspath(socket_path(log)))
    stale.close()
    assert run_json("pause", str(log), "report")["via"] == "log"


# -- a scheduler answering on the socket -----------------------------------------------------


@contextlib.contextmanager
def fake_scheduler(
    log: Path, handler: Callable[[dict[str, Any]], Any]
) -> Iterator[list[dict[str, Any]]]:
    """The real socket server in a thread, with ``handler`` standing in for a scheduler."""
    seen: list[dict[str, Any]] = []
    ready = threading.Event()
    stop: list[Callable[[], None]] = []

    async def handle(message: dict[str, Any]) -> dict[str, Any]:
        seen.append(message)
        result: dict[str, Any] = handler(message)
        return result

    async def serve() -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(serve_control, socket_path(log), handle)
            token = trio.lowlevel.current_trio_token()
            stop.append(lambda: token.run_sync_soon(nursery.cancel_scope.cancel))
            ready.set()

    thread = threading.Thread(target=trio.run, args=(serve,))
    thread.start()
    try:
        assert ready.wait(10)
        with locked(log):  # a running scheduler holds the lock
            yield seen
    finally:
        if stop:
            stop[0]()
        thread.join(10)


def test_commands_go_to_a_running_scheduler(log: Path) -> None:
    before = log.read_bytes()

    def answer(message: dict[str, Any]) -> dict[str, Any]:
        return {
            "command": message["command"],
            "task": message.get("task"),
            "paused": True,
            "changed": True,
        }

    with fake_scheduler(log, answer) as seen:
        code, out, err = run("pause", str(log), "report", "--note", "why")
        result = run_json("pause", str(log), "report")
    assert (code, out, err) == (0, "report paused\n", "")
    assert result["via"] == "scheduler"
    assert seen[0] == {"command": "pause", "task": "report", "note": "why"}
    assert log.read_bytes() == before  # the scheduler writes, not the command


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (ControlError("no task named 'x'", "UnknownTask"), 2),
        (ControlError("bad job", "ConfigError"), 2),
        (
            ControlError(
                "the scheduler is shutting down; the command was not applied", "ShuttingDown"
            ),
            1,
        ),
        (ControlError("refused: not yours", "Refused"), 1),
    ],
)
def test_a_refusal_from_the_scheduler(log: Path, error: ControlError, code: int) -> None:
    def refuse(message: dict[str, Any]) -> dict[str, Any]:
        raise error

    with fake_scheduler(log, refuse):
        assert_error(*run("resume", str(log), "x"), code, str(error))


def test_an_added_job_is_sent_with_absolute_paths(
    log: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    def added(message: dict[str, Any]) -> dict[str, Any]:
        return {
            "command": "add",
            "task": "w",
            "change": "created",
            "version": 1,
            "trigger": "t",
            "target": "x",
        }

    with fake_scheduler(log, added) as seen:
        assert run("add", str(log), "w", "--watch", "in.csv", "--command", "wc -l in.csv")[0] == 0
    assert seen == [
        {
            "command": "add",
            "job": {
                "name": "w",
                "watch": str(tmp_path / "in.csv"),
                "command": "wc -l in.csv",
                "cwd": str(tmp_path),
            },
            "if_exists": "update",
        }
    ]
    assert not any(isinstance(r, Started) for r in records(log))
