"""``chronolog run``: the job file checked, the service's commands and signals, and real runs.

Three layers: `CliRunner` for what happens before anything starts (a job
file or a log that stands in the way); the running service driven in
process on simulated time; and a few real ``python -m chronolog run``
processes, driven through the control socket and stopped with signals.
The real ones run on real time, so they are short and wait for conditions
(polling, with a timeout) rather than for fixed times.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
import trio
from click.testing import CliRunner

from chronolog import (
    Completed,
    ConfigError,
    Failed,
    FileLog,
    Manual,
    MemoryLog,
    Started,
    TaskDefined,
    TaskPaused,
    TaskRemoved,
    TaskResumed,
    UnknownTask,
    check_invariants,
    open_scheduler,
)
from chronolog._config import load_job_file
from chronolog._control import ControlError, socket_path
from chronolog._events import encode_header, encode_lines
from chronolog._jobs import reconcile
from chronolog.cli import main
from chronolog.cli.run import Service, serve
from chronolog.testing import SimulatedClock

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterator
    from pathlib import Path

    from trio.testing import MockClock

    from chronolog import Event

START = datetime(2026, 3, 27, 12, 0, tzinfo=UTC)


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


ONE_JOB = 'log = "jobs.jsonl"\n[[jobs]]\nname = "a"\nevery = "1s"\ncommand = "true"\n'


def job_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "jobs.toml"
    path.write_text(text)
    return path


# -- before anything starts ---------------------------------------------------------


def test_check_shows_the_jobs_and_starts_nothing(tmp_path: Path) -> None:
    path = job_file(
        tmp_path,
        'log = "jobs.jsonl"\n[[jobs]]\nname = "tick"\nevery = "5m"\ncommand = "echo tick"\n'
        '[[jobs]]\nname = "backup"\ncron = "0 3 * * *"\ntz = "Europe/Paris"\ncall = "json:dumps"'
        '\ntimeout = "1h"\n',
    )
    code, out, err = run("run", str(path), "--check")
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        f"{path} is valid: 2 jobs, log {tmp_path / 'jobs.jsonl'}",
        "  tick: every 5 min; runs echo tick",
        "  backup: cron '0 3 * * *' in Europe/Paris; runs json:dumps",
        "    timeout=1 h",
    ]
    code, out, _ = run("run", str(path), "--check", "--json", "--log", "other.jsonl")
    document = json.loads(out)
    assert document["log"] == "other.jsonl"
    assert document["shutdown_grace_seconds"] == 30.0
    assert document["jobs"][0] == {
        "task": "tick",
        "trigger": "every 5 min",
        "target": 'command:{"cwd":"' + str(tmp_path) + '","shell":"echo tick"}',
        "policy": "default policy",
        "note": None,
    }
    assert not (tmp_path / "jobs.jsonl").exists()


def test_check_says_what_happens_to_a_one_off_whose_time_has_passed(tmp_path: Path) -> None:
    path = job_file(
        tmp_path,
        'log = "jobs.jsonl"\n'
        '[[jobs]]\nname = "late"\nat = 2020-01-01T00:00:00Z\ncommand = "true"\n'
        '[[jobs]]\nname = "never"\nat = 2020-01-01T00:00:00Z\ncommand = "true"\n'
        'catch_up = "none"\n'
        '[[jobs]]\nname = "too-late"\nat = 2020-01-01T00:00:00Z\ncommand = "true"\n'
        'misfire_grace = "1h"\n'
        '[[jobs]]\nname = "ahead"\nat = 2999-01-01T00:00:00Z\ncommand = "true"\n',
    )
    code, out, err = run("run", str(path), "--check")
    assert (code, err) == (0, "")
    known = "if the log already knows this one-off, what it recorded stands"
    passed = "    2020-01-01 00:00:00Z has passed: a scheduler started now"
    assert out.splitlines()[1:] == [
        "  late: once at 2020-01-01 00:00:00Z; runs true",
        f"{passed} runs it once, at start (catch_up = latest); {known}",
        "  never: once at 2020-01-01 00:00:00Z; runs true",
        "    catch_up=none",
        f"{passed} skips it as missed (catch_up = none); {known}",
        "  too-late: once at 2020-01-01 00:00:00Z; runs true",
        "    misfire_grace=1 h",
        f"{passed} skips it as missed: it is more than misfire_grace = 1 h late; {known}",
        "  ahead: once at 2999-01-01 00:00:00Z; runs true",
    ]
    document = json.loads(run("run", str(path), "--check", "--json")[1])
    notes = [job["note"] for job in document["jobs"]]
    assert notes[0] is not None
    assert "runs it once, at start" in notes[0]
    assert notes[3] is None
    assert not (tmp_path / "jobs.jsonl").exists()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('log = "x.jsonl"\n[[jobs]\n', "is not valid TOML: line 2, column 7: "),
        (
            '[[jobs]]\nname = "a"\nmanual = true\ncall = "json:dumps"\nretries = 3\n',
            ": jobs[0].retries (job 'a'): unknown key; did you mean 'retry'?",
        ),
        (
            '[[jobs]]\nevery = "1m"\ncommand = "x"\n',
            ": jobs[0].name: missing (this key is required)",
        ),
        (
            '[[jobs]]\nname = "a"\ncron = "0 25 * * *"\ncommand = "x"\n',
            ": jobs[0].cron (job 'a'): cron hour field '25' is out of range 0-23 in '0 25 * * *'",
        ),
        (
            '[[jobs]]\nname = "a"\nevery = "1m"\ncall = "no_such_module_xyz:job"\n',
            ": jobs[0].call (job 'a'): cannot import module 'no_such_module_xyz'",
        ),
    ],
)
def test_a_job_file_with_a_problem_starts_nothing(tmp_path: Path, text: str, message: str) -> None:
    path = job_file(tmp_path, text)
    code, out, err = run("run", str(path), "--log", str(tmp_path / "jobs.jsonl"))
    assert (code, out) == (2, "")
    assert err.startswith(f"Error: {path}")
    assert message in err
    assert "Traceback" not in err
    assert list(tmp_path.iterdir()) == [path]


def test_several_problems_are_listed_one_per_line(tmp_path: Path) -> None:
    path = job_file(tmp_path, '[[jobs]]\nname = "a"\nevery = "1m"\n[[jobs]]\nname = "b"\n')
    code, _, err = run("run", str(path), "--check")
    assert code == 2
    assert err.splitlines() == [
        f"Error: {path}: 3 problems:",
        "  jobs[0] (job 'a'): no target; give command (a shell command or a list of arguments) "
        "or call (an import path such as 'mypackage.jobs:backup')",
        "  jobs[1] (job 'b'): no trigger; give exactly one of cron, every, at, watch or "
        "manual = true",
        "  jobs[1] (job 'b'): no target; give command (a shell command or a list of arguments) "
        "or call (an import path such as 'mypackage.jobs:backup')",
    ]


def test_a_missing_job_file_and_a_missing_log_setting(tmp_path: Path) -> None:
    code, _, err = run("run", str(tmp_path / "none.toml"))
    assert code == 2
    assert "does not exist" in err
    path = job_file(tmp_path, "")
    code, _, err = run("run", str(path))
    assert code == 2
    assert err == (
        f'Error: {path} names no log and --log is not given; add e.g. log = "jobs.jsonl" to the '
        "job file\n"
    )


def test_a_log_in_a_missing_directory(tmp_path: Path) -> None:
    path = job_file(tmp_path, 'log = "nowhere/jobs.jsonl"\n')
    code, _, err = run("run", str(path))
    assert code == 2
    assert err.startswith("Error: ")
    assert f"cannot open log {tmp_path}/nowhere/jobs.jsonl: directory " in err
    assert err.endswith(" does not exist; create it first\n")


def test_a_file_that_is_not_a_log(tmp_path: Path) -> None:
    (tmp_path / "notes.jsonl").write_text("dear diary\n")
    path = job_file(tmp_path, 'log = "notes.jsonl"\n')
    code, _, err = run("run", str(path))
    assert code == 3
    assert "not a chronolog log" in err
    assert (tmp_path / "notes.jsonl").read_text() == "dear diary\n"


def test_a_log_locked_by_another_writer(tmp_path: Path) -> None:
    log = tmp_path / "jobs.jsonl"
    log.write_bytes(encode_header())
    path = job_file(tmp_path, 'log = "jobs.jsonl"\n')
    fd = os.open(FileLog(log).lock_path, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, b'{"pid": 4242, "host": "elsewhere"}\n')
        code, _, err = run("run", str(path))
    finally:
        os.close(fd)
    assert code == 3
    assert err.startswith(f"Error: {log} is locked by process 4242 on host elsewhere;")


def test_a_log_too_deep_for_a_control_socket(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * (100 - len(str(tmp_path))))
    deep.mkdir()
    path = job_file(deep, 'log = "jobs.jsonl"\n')
    code, _, err = run("run", str(path))
    assert code == 2
    assert err.startswith(f"Error: the control socket path {deep}/jobs.jsonl.sock is ")
    assert "put the log in a directory with a shorter path" in err
    assert sorted(p.name for p in deep.iterdir()) == ["jobs.toml"]


def test_a_file_where_the_socket_goes(tmp_path: Path) -> None:
    path = job_file(tmp_path, 'log = "jobs.jsonl"\n')
    (tmp_path / "jobs.jsonl.sock").write_text("mine")
    code, _, err = run("run", str(path))
    assert code == 2
    assert err == (
        f"Error: {tmp_path}/jobs.jsonl.sock exists and is not a socket; chronolog puts the "
        "control socket of the log there: move that file away\n"
    )
    assert (tmp_path / "jobs.jsonl.sock").read_text() == "mine"


# -- the service, in process, on simulated time ----------------------------------------------


@pytest.fixture
def sim(autojump_clock: MockClock) -> SimulatedClock:
    return SimulatedClock(START, mock_clock=autojump_clock)


class Sleepy:
    """A target that takes an hour of simulated time."""

    def __init__(self, sim: SimulatedClock) -> None:
        self.sim = sim

    async def __call__(self) -> str:
        await self.sim.sleep_until(self.sim.now() + timedelta(hours=1))
        return "done"


JOBS = """
[[jobs]]
name = "tick"
every = "10m"
call = "builtins:list"

[[jobs]]
name = "by-hand"
manual = true
call = "builtins:dict"
"""


@contextlib.asynccontextmanager
async def service(tmp_path: Path, sim: SimulatedClock, text: str = JOBS) -> AsyncIterator[Service]:
    path = job_file(tmp_path, text)
    loaded = load_job_file(path)
    log = MemoryLog()
    async with open_scheduler(log, clock=sim) as sched:
        await reconcile(sched, loaded, result_max_bytes=loaded.result_max_bytes)
        yield Service(sched, loaded, job_file_path=path)
    assert check_invariants(log.read()) == []


async def test_the_service_answers_every_control_command(
    tmp_path: Path, sim: SimulatedClock, autojump_clock: MockClock
) -> None:
    async with service(tmp_path, sim) as running:
        handle = running.handle
        assert await handle({"command": "pause", "task": "tick", "note": "n"}) == {
            "command": "pause",
            "task": "tick",
            "paused": True,
            "changed": True,
        }
        assert (await handle({"command": "pause", "task": "tick"}))["changed"] is False
        assert (await handle({"command": "resume", "task": "tick"}))["changed"] is True
        started = await handle({"command": "run-now", "task": "by-hand"})
        assert started["started"] is True
        assert started["occurrence"].startswith("by-hand!")
        # Resumed at 12:00, its due time at that very instant runs (as the
        # first due time at or after a resume does): cancel answers for it.
        running_now = len(running.scheduler.status("tick").running)
        assert await handle({"command": "cancel", "task": "tick"}) == {
            "command": "cancel",
            "task": "tick",
            "cancelled": running_now,
        }
        added = await handle(
            {"command": "add", "job": {"name": "extra", "every": "1h", "call": "builtins:set"}}
        )
        assert added["change"] == "created"
        assert added["target"] == "added:builtins:set"
        assert added["trigger"] == "every 1 h from 2026-03-27 12:00:00Z"
        assert await handle({"command": "remove", "task": "extra"}) == {
            "command": "remove",
            "task": "extra",
            "removed": True,
        }
        await sim.advance(timedelta(minutes=25))
        # Resumed at 12:00, it runs on its grid (whether or not the pause skipped 12:10).
        assert running.scheduler.status("tick").last_run == START + timedelta(minutes=20)
        assert running.scheduler.status("by-hand").last_result == {}


@pytest.mark.parametrize(
    ("message", "error", "text"),
    [
        ({"command": "pause", "task": "tik"}, UnknownTask, "did you mean 'tick'?"),
        ({"command": "jump"}, ControlError, "unknown command 'jump'; expected one of"),
        ({"command": "pause"}, ControlError, "pause needs a task"),
        ({"command": "pause", "task": 3}, ControlError, "task must be a str"),
        ({"command": "add"}, ControlError, "add needs a job"),
        (
            {"command": "add", "job": {"name": "x", "every": "1h"}},
            ConfigError,
            "cannot add 'x': no target",
        ),
        (
            {
                "command": "add",
                "job": {"name": "x", "manual": True, "call": "json:dumps"},
                "if_exists": "sometimes",
            },
            ControlError,
            "if_exists must be one of update, error, keep",
        ),
    ],
)
async def test_the_service_refuses_what_it_cannot_do(
    tmp_path: Path,
    sim: SimulatedClock,
    autojump_clock: MockClock,
    message: dict[str, Any],
    error: type[Exception],
    text: str,
) -> None:
    async with service(tmp_path, sim) as running:
        with pytest.raises(error, match=text.replace("?", r"\?")):
            await running.handle(message)


async def test_nothing_is_applied_while_shutting_down(
    tmp_path: Path, sim: SimulatedClock, autojump_clock: MockClock
) -> None:
    async with service(tmp_path, sim) as running:
        running.stop_requested.set()
        with pytest.raises(ControlError) as raised:
            await running.handle({"command": "pause", "task": "tick"})
        assert raised.value.kind == "ShuttingDown"
        assert not running.scheduler.status("tick").paused


async def test_reload_declares_again_and_a_bad_file_changes_nothing(
    tmp_path: Path, sim: SimulatedClock, autojump_clock: MockClock
) -> None:
    async with service(tmp_path, sim) as running:
        await running.handle(
            {"command": "add", "job": {"name": "extra", "manual": True, "call": "builtins:set"}}
        )
        path = running.job_file_path
        path.write_text(
            'shutdown_grace = "5s"\n[[jobs]]\nname = "tick"\nevery = "20m"\n'
            'call = "builtins:list"\n[[jobs]]\nname = "new"\nmanual = true\n'
            'call = "builtins:dict"\n'
        )
        assert await running.handle({"command": "reload"}) == {
            "command": "reload",
            "job_file": str(path),
            "created": ["new"],
            "changed": ["tick"],
            "unchanged": [],
            "removed": ["by-hand"],
            "kept": ["extra"],
            "restart_needed": ["shutdown_grace"],
        }
        assert running.job_file.shutdown_grace == timedelta(seconds=30)  # as started
        path.write_text('[[jobs]]\nname = "tick"\ncron = "99 * * * *"\ncall = "builtins:list"\n')
        with pytest.raises(ConfigError, match=r"jobs\[0\].cron \(job 'tick'\): cron minute field"):
            await running.reload()
        assert running.scheduler.state.task_names() == ["extra", "new", "tick"]
        assert running.scheduler.state.definition("tick").version == 2


async def test_signals_reload_stop_and_then_cancel(
    tmp_path: Path, sim: SimulatedClock, autojump_clock: MockClock
) -> None:
    async with service(tmp_path, sim) as running:
        path = running.job_file_path
        path.write_text(JOBS.replace('"10m"', '"15m"'))
        await running.on_signal(signal.SIGHUP)
        assert running.scheduler.state.definition("tick").version == 2
        path.write_text("not toml at all = = =")
        await running.on_signal(signal.SIGHUP)  # logged; nothing changes
        assert running.scheduler.state.definition("tick").version == 2
        await running.scheduler.add("slow", Manual(), Sleepy(sim))
        await running.scheduler.run_now("slow")
        await running.on_signal(signal.SIGTERM)
        assert running.stop_requested.is_set()
        assert running.scheduler.status("slow").running
        await running.on_signal(signal.SIGTERM)
        await trio.testing.wait_all_tasks_blocked()
        assert running.scheduler.status("slow").last_error == "cancelled"


def test_a_stop_signal_during_start_up_ends_the_command_before_any_job_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The start-up is stuck (a slow replay, stood in for by a held thread): a
    SIGTERM ends it at once, and the log is left as it was."""
    path = job_file(tmp_path, ONE_JOB)
    job = load_job_file(path)
    log_path = tmp_path / "jobs.jsonl"
    entered = threading.Event()
    release = threading.Event()
    real_load_state = FileLog.load_state

    def stuck(self: FileLog, *args: Any, **kwargs: Any) -> Any:
        entered.set()
        release.wait(PATIENCE)
        return real_load_state(self, *args, **kwargs)

    monkeypatch.setattr(FileLog, "load_state", stuck)

    async def main() -> None:
        with trio.fail_after(PATIENCE):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(
                    functools.partial(serve, job, job_file_path=path, log_path=log_path)
                )
                await trio.to_thread.run_sync(entered.wait, PATIENCE)
                signal.raise_signal(signal.SIGTERM)

    try:
        trio.run(main)
    finally:
        release.set()
    assert list(FileLog(log_path).read()) == []  # nothing appended: no job ran


# -- real processes ----------------------------------------------------------------------

#: How long a real process may take to do something before the test gives up.
PATIENCE = 30.0


def wait_until(condition: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + PATIENCE
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.02)


class Process:
    """A ``python -m chronolog run`` in a temporary directory, its stderr in a file."""

    def __init__(self, directory: Path, *args: str) -> None:
        self.directory = directory
        self.log = directory / "jobs.jsonl"
        name = time.monotonic_ns()
        self.stdout_path = directory / f"stdout-{name}.txt"
        self.stderr_path = directory / f"stderr-{name}.txt"
        with self.stdout_path.open("w") as stdout, self.stderr_path.open("w") as stderr:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", "chronolog", "run", "jobs.toml", *args],
                cwd=directory,
                stdout=stdout,
                stderr=stderr,
            )

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def records(self) -> list[Event]:
        return list(FileLog(self.log).read()) if self.log.exists() else []

    def status(self, task: str) -> dict[str, Any]:
        code, out, err = run("status", str(self.log), "--json")
        assert code == 0, err
        tasks: dict[str, dict[str, Any]] = {t["task"]: t for t in json.loads(out)["tasks"]}
        return tasks.get(task, {})

    def control(self, *args: str) -> dict[str, Any]:
        code, out, err = run(args[0], "--json", str(self.log), *args[1:])
        assert code == 0, err
        result: dict[str, Any] = json.loads(out)
        assert result["via"] == "scheduler"
        return result

    def wait_ready(self) -> None:
        wait_until(
            lambda: "control socket" in self.stderr or self.popen.poll() is not None,
            "the scheduler to start",
        )
        assert self.popen.poll() is None, self.stderr

    def signal(self, number: int) -> None:
        self.popen.send_signal(number)

    def wait_exit(self) -> int:
        try:
            return self.popen.wait(PATIENCE)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            raise AssertionError(f"the scheduler did not stop:\n{self.stderr}") from None


@pytest.fixture
def processes() -> Iterator[list[Process]]:
    started: list[Process] = []
    yield started
    for process in started:  # a failed test leaves no scheduler behind
        if process.popen.poll() is None:
            process.popen.kill()
            process.popen.wait()


def start(processes: list[Process], directory: Path, *args: str) -> Process:
    process = Process(directory, *args)
    processes.append(process)
    process.wait_ready()
    return process


def started(records: list[Event], task: str) -> list[Started]:
    return [r for r in records if isinstance(r, Started) and r.task == task]


def test_a_real_scheduler_runs_is_controlled_stops_and_carries_on(
    tmp_path: Path, processes: list[Process]
) -> None:
    (tmp_path / "helpers_for_chronolog_test.py").write_text(
        "def work():\n    return {'worked': True}\n"
    )
    job_file(
        tmp_path,
        """
log = "jobs.jsonl"
shutdown_grace = "10s"

[[jobs]]
name = "tick"
every = "300ms"
command = "echo tick"

[[jobs]]
name = "by-hand"
manual = true
command = ["echo", "by", "hand"]

[[jobs]]
name = "python"
manual = true
call = "helpers_for_chronolog_test:work"
""",
    )
    first = start(processes, tmp_path)
    sock = socket_path(first.log)
    assert stat.S_IMODE(sock.lstat().st_mode) == 0o600
    wait_until(lambda: first.status("tick").get("runs", 0) >= 2, "two ticks")
    assert first.status("tick")["last_result"]["stdout"] == "tick\n"

    # A second scheduler on the same log is refused.
    code, _, err = run("run", str(tmp_path / "jobs.toml"))
    assert code == 3
    assert f"is locked by process {first.popen.pid}" in err

    assert first.control("pause", "tick", "--note", "testing")["changed"] is True
    assert first.status("tick")["state"] == "paused"
    ran = first.control("run-now", "by-hand")
    assert ran["started"] is True
    wait_until(lambda: first.status("by-hand").get("runs") == 1, "the manual run")
    wait_until(lambda: first.status("by-hand")["last_result"], "its result")
    assert first.status("by-hand")["last_result"]["stdout"] == "by hand\n"
    first.control("run-now", "python")
    wait_until(lambda: first.status("python").get("last_result"), "the Python job")
    assert first.status("python")["last_result"] == {"worked": True}
    paused_runs = first.status("tick")["runs"]
    first.control("resume", "tick")
    wait_until(lambda: first.status("tick")["runs"] > paused_runs, "a tick after resuming")

    first.signal(signal.SIGTERM)
    assert first.wait_exit() == 0
    assert "SIGTERM: stopping" in first.stderr
    assert "stopped;" in first.stderr
    assert not sock.exists()
    records = first.records()
    paused_at = next(r.seq for r in records if isinstance(r, TaskPaused))
    resumed_at = next(r.seq for r in records if isinstance(r, TaskResumed))
    assert not [r for r in started(records, "tick") if paused_at < r.seq < resumed_at]

    # Without a scheduler, commands write to the log; the next start carries on.
    code, out, _ = run("pause", str(first.log), "tick")
    assert (code, out) == (0, "tick paused (no scheduler is running: recorded in the log)\n")
    run("resume", str(first.log), "tick")
    before = len(started(first.records(), "tick"))
    second = start(processes, tmp_path)
    wait_until(lambda: len(started(second.records(), "tick")) >= before + 2, "ticks again")
    second.signal(signal.SIGINT)
    assert second.wait_exit() == 0
    assert "SIGINT: stopping" in second.stderr

    records = second.records()
    assert check_invariants(records) == []
    occurrences = [(r.occurrence, r.attempt) for r in records if isinstance(r, Started)]
    assert len(occurrences) == len(set(occurrences))  # exactly once
    assert sum(isinstance(r, TaskDefined) for r in records) == 3  # declared again, not redefined
    code, out, _ = run("verify", str(second.log))
    assert code == 0, out


def test_a_second_signal_cancels_the_runs_the_first_one_let_finish(
    tmp_path: Path, processes: list[Process]
) -> None:
    job_file(
        tmp_path,
        """
log = "jobs.jsonl"
shutdown_grace = "60s"

[[jobs]]
name = "short"
manual = true
command = "sleep 0.5; echo finished"

[[jobs]]
name = "long"
manual = true
command = "sleep 60"
""",
    )
    process = start(processes, tmp_path)
    process.control("run-now", "long")
    process.control("run-now", "short")
    process.signal(signal.SIGTERM)
    wait_until(
        lambda: any(isinstance(r, Completed) and r.task == "short" for r in process.records()),
        "the short run to finish during the grace period",
    )
    assert process.popen.poll() is None  # the long run still has its grace
    process.signal(signal.SIGTERM)
    assert process.wait_exit() == 0
    assert "SIGTERM again: cancelling the running jobs now" in process.stderr
    (failed,) = [r for r in process.records() if isinstance(r, Failed)]
    assert (failed.task, failed.error) == ("long", "cancelled")
    assert check_invariants(process.records()) == []


def test_reload_by_signal_and_by_command(tmp_path: Path, processes: list[Process]) -> None:
    path = job_file(
        tmp_path,
        'log = "jobs.jsonl"\n[[jobs]]\nname = "a"\nmanual = true\ncommand = "echo a"\n'
        '[[jobs]]\nname = "b"\nmanual = true\ncommand = "echo b"\n',
    )
    process = start(processes, tmp_path, "--json", "--verbose")
    process.control("add", "extra", "--manual", "--command", "echo extra")
    path.write_text(
        'log = "jobs.jsonl"\n[[jobs]]\nname = "a"\nmanual = true\ncommand = "echo A"\n'
        '[[jobs]]\nname = "c"\nmanual = true\ncommand = "echo c"\n'
    )
    process.signal(signal.SIGHUP)
    wait_until(
        lambda: (
            any(isinstance(r, TaskRemoved) and r.task == "b" for r in process.records())
            and any(isinstance(r, TaskDefined) and r.task == "c" for r in process.records())
        ),
        "the reload",
    )
    defined = [(r.task, r.version) for r in process.records() if isinstance(r, TaskDefined)]
    assert defined == [("a", 1), ("b", 1), ("extra", 1), ("a", 2), ("c", 1)]

    path.write_text('log = "jobs.jsonl"\n[[jobs]]\nname = "a"\ncron = "* * *"\ncommand = "x"\n')
    code, out, err = run("reload", str(path))
    assert (code, out) == (2, "")
    assert "jobs[0].cron (job 'a'): " in err
    code, out, err = run("reload", str(path), "--json")
    error = json.loads(out)["error"]
    assert (code, error["type"], error["exit_code"]) == (2, "ConfigError", 2)
    assert "jobs[0].cron (job 'a'): " in error["message"]
    assert f"Error: {error['message']}" in err
    wait_until(
        lambda: "the job file has problems; nothing changed" in process.stderr, "the refusal"
    )

    path.write_text(
        'log = "jobs.jsonl"\n[[jobs]]\nname = "a"\nmanual = true\ncommand = "echo A"\n'
    )
    result = process.control("reload")
    assert (result["removed"], result["unchanged"], result["kept"]) == (["c"], ["a"], ["extra"])
    process.control("run-now", "a")
    wait_until(lambda: process.status("a").get("last_result"), "a run of a")
    process.signal(signal.SIGTERM)
    assert process.wait_exit() == 0
    assert check_invariants(process.records()) == []
    # --json: every record on stdout, one JSON object per line; --verbose: starts logged.
    printed = [json.loads(line) for line in process.stdout_path.read_text().splitlines()]
    assert [record["seq"] for record in printed] == [r.seq for r in process.records()]
    assert " a: started a!" in process.stderr


def test_every_name_of_the_log_reaches_the_running_scheduler(
    tmp_path: Path, processes: list[Process]
) -> None:
    """A control command through a symlink to the log finds the scheduler's socket
    (beside the log file itself), instead of waiting and finding the log locked."""
    real = tmp_path / "real"
    real.mkdir()
    job_file(
        real,
        'log = "jobs.jsonl"\n[[jobs]]\nname = "a"\nmanual = true\ncommand = "echo a"\n',
    )
    process = start(processes, real)
    (tmp_path / "elsewhere").mkdir()
    link = tmp_path / "elsewhere" / "link.jsonl"
    link.symlink_to(real / "jobs.jsonl")
    assert socket_path(link) == real / "jobs.jsonl.sock"
    for name in (link, real / "." / "jobs.jsonl", real / ".." / "real" / "jobs.jsonl"):
        started = time.monotonic()
        code, out, err = run("pause", str(name), "a", "--json")
        assert code == 0, err
        assert json.loads(out)["via"] == "scheduler"
        assert time.monotonic() - started < 2.0  # answered, not refused after a wait
        run("resume", str(name), "a")
    assert not (tmp_path / "elsewhere" / "link.jsonl.sock").exists()
    process.signal(signal.SIGTERM)
    assert process.wait_exit() == 0


def test_a_torn_tail_repaired_at_start_is_said_once(
    tmp_path: Path, processes: list[Process]
) -> None:
    job_file(tmp_path, 'log = "jobs.jsonl"\n[[jobs]]\nname = "a"\nmanual = true\ncommand = "x"\n')
    records = [TaskDefined(seq=1, task="a", at=START, trigger=Manual(), target="x")]
    log = tmp_path / "jobs.jsonl"
    log.write_bytes(encode_header() + encode_lines(records) + b'{"type":"Sched')
    process = start(processes, tmp_path)
    process.signal(signal.SIGTERM)
    assert process.wait_exit() == 0
    stderr = process.stderr
    assert stderr.count("ended with a torn batch") == 1, stderr
    assert "LogRepaired" not in stderr
    assert "warnings.warn" not in stderr


@pytest.mark.parametrize("delay", [0.0, 0.05, 0.2, 0.5])
def test_a_real_run_answers_sigterm_from_its_first_moment(
    tmp_path: Path, processes: list[Process], delay: float
) -> None:
    job_file(
        tmp_path, 'log = "jobs.jsonl"\n[[jobs]]\nname = "a"\nevery = "1s"\ncommand = "true"\n'
    )
    process = Process(tmp_path)
    processes.append(process)
    time.sleep(delay)
    process.signal(signal.SIGTERM)
    code = process.wait_exit()
    # Before Python has set its handlers up, SIGTERM's default action ends it.
    assert code in (0, -signal.SIGTERM), process.stderr
    assert "Traceback" not in process.stderr
    assert check_invariants(process.records()) == []
