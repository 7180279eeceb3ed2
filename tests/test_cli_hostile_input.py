"""Hostile input to every command: a clear error, the documented exit code, nothing lost.

One table, one row per input a user (or a script gone wrong) may give --
huge numbers, negative and endless durations, empty strings, control
characters and very long names and notes, paths with no log behind them,
damaged and foreign logs, ids that are not ids. Each row runs twice, as
text and with ``--json``, and must:

* end with its documented exit code (docs/reference/cli.md), never with a
  traceback;
* say what is wrong in one ``Error: ...`` on stderr -- with ``--json``, also
  as the one-line error document on stdout, ``{"error": {"type", "message",
  "exit_code"}}``;
* leave every log exactly as it was, byte for byte.

``chronolog run`` runs as a real process with a timeout (a row it wrongly
accepted would start a scheduler); everything else runs in process.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import trio
from click.testing import CliRunner

from chronolog import FileLog, SQLiteLog
from chronolog.cli import control as control_module
from chronolog.cli import main

from .cli_logs import scenario_log

if TYPE_CHECKING:
    from collections.abc import Iterator

#: Every row's files live in one directory: the scenario's log, an SQLite log,
#: and a job file when the row gives one.
LOG = "{log}"
SQLITE = "{sqlite}"
TMP = "{tmp}"
JOBS = "{jobs}"

HUGE = "99999999999999"
ENORMOUS = "9" * 5000  # more digits than Python turns into an int by default
LONG_NAME = "n" * 5000
LONG_NOTE = "n" * 100_000


@dataclass(frozen=True)
class Hostile:
    """One hostile input: the command line, and what it must end with."""

    args: tuple[str, ...]
    code: int
    says: tuple[str, ...] = ()
    error_type: str | None = None
    toml: str | None = None
    setup: str | None = None


def case(
    id: str,
    code: int,
    *args: str,
    says: tuple[str, ...] | str = (),
    type: str | None = None,
    toml: str | None = None,
    setup: str | None = None,
) -> Any:
    """A row: its id, the exit code it must end with, its command line; ``says``: phrases
    of the message; ``type``: the ``type`` of the ``--json`` error document."""
    phrases = (says,) if isinstance(says, str) else says
    return pytest.param(Hostile(args, code, phrases, type, toml, setup), id=id)


def add(*options: str, name: str = "y") -> tuple[str, ...]:
    """``chronolog add LOG NAME OPTIONS``."""
    return ("add", LOG, name, *options)


def daily(*options: str) -> tuple[str, ...]:
    """``chronolog add LOG y --every 1d --command true OPTIONS``."""
    return add("--every", "1d", "--command", "true", *options)


def job(body: str, *, log: str = 'log = "new.jsonl"\n') -> str:
    return f'{log}[[jobs]]\nname = "x"\n{body}\n'


EVERY = 'every = "1d"\ncommand = "true"\n'
AT_A_TIME = ("--at", "2026-03-29T01:00Z")
#: Every command that reads a log, with what follows its LOG argument.
READERS = [
    ("status", ()),
    ("history", ("backup",)),
    ("tail", ()),
    ("replay", ()),
    ("verify", ()),
    ("why", ("backup", *AT_A_TIME)),
    ("timeline", ("--out", f"{TMP}/page.html")),
]

# fmt: off
CASES = [
    # -- durations and numbers past what chronolog accepts ---------------------------
    case("compact-keep-huge", 2, "compact", LOG, "--keep", f"{HUGE}d",
         says=("--keep", "36500d"), type="UsageError"),
    case("compact-keep-enormous", 2, "compact", LOG, "--keep", f"{ENORMOUS}d", says="--keep"),
    case("compact-keep-too-long", 2, "compact", LOG, "--keep", "999999d", says="36500d"),
    case("compact-keep-negative", 2, "compact", LOG, "--keep", "-5d", says="--keep"),
    case("compact-keep-empty", 2, "compact", LOG, "--keep", "", says="--keep"),
    case("add-every-huge", 2, *add("--every", f"{HUGE}d", "--command", "true"),
         says=("--every", "36500d"), type="ConfigError"),
    case("add-every-enormous", 2, *add("--every", f"{ENORMOUS}s", "--command", "true"),
         says=("--every", "36500d")),
    case("add-every-too-long", 2, *add("--every", "999999999d", "--command", "true"),
         says=("--every", "36500d")),
    case("add-every-negative", 2, *add("--every", "-5s", "--command", "true"), says="--every"),
    case("add-timeout-huge", 2, *daily("--timeout", f"{HUGE}d"), says=("--timeout", "36500d")),
    case("add-jitter-huge", 2, *daily("--jitter", f"{HUGE}d"), says=("--jitter", "36500d")),
    case("add-misfire-grace-huge", 2, *daily("--misfire-grace", f"{HUGE}d"),
         says=("--misfire-grace", "36500d")),
    case("add-poll-huge", 2, *add("--watch", "inbox.csv", "--poll", f"{HUGE}d", "--command", "x"),
         says=("--poll", "36500d")),
    case("add-backoff-huge", 2, *daily("--retry-max-backoff", f"{HUGE}d"),
         says=("--retry-max-backoff", "36500d")),
    case("add-retry-huge", 2, *daily("--retry", HUGE * 2), says=("--retry", "1000000000")),
    case("add-max-runs-huge", 2, *daily("--max-runs", HUGE * 2),
         says=("--max-runs", "1000000000")),
    case("add-max-runs-negative", 2, *daily("--max-runs", "-5"), says="--max-runs"),
    case("add-catch-up-limit-huge", 2, *daily("--catch-up-limit", HUGE * 2),
         says=("--catch-up-limit", "1000000000")),
    case("add-retry-factor-nan", 2, *daily("--retry-factor", "nan"), says="--retry-factor"),
    case("add-retry-factor-inf", 2, *daily("--retry-factor", "inf"), says="--retry-factor"),
    case("add-retry-factor-huge", 2, *daily("--retry-factor", "1e308"),
         says=("--retry-factor", "1000000000")),
    case("add-at-year-99999", 2, *add("--at", "99999-01-01T00:00Z", "--command", "true"),
         says="--at"),
    case("add-start-past-year-9999", 2,
         *add("--cron", "0 2 * * *", "--start", "9999-12-31T23:59:59-05:00", "--command", "x"),
         says="--start"),
    # -- empty strings, control characters, long names and notes ---------------------
    case("add-no-name", 2, *add("--every", "1d", "--command", "true", name=""), says="empty"),
    case("add-long-name", 2, *add("--every", "1d", "--command", "true", name=LONG_NAME),
         says="characters long"),
    case("add-control-name", 2, *add("--every", "1d", "--command", "true", name="a\x01b"),
         says="control characters"),
    case("add-empty-command", 2, *add("--every", "1d", "--command", ""), says="empty"),
    case("add-empty-tz", 2, *add("--cron", "0 2 * * *", "--tz", "", "--command", "true"),
         says=("--tz", "empty")),
    case("add-empty-cron", 2, *add("--cron", "", "--command", "true"), says="--cron"),
    case("add-empty-watch", 2, *add("--watch", "", "--command", "true"),
         says=("--watch", "empty")),
    case("add-empty-every", 2, *add("--every", "", "--command", "true"), says="--every"),
    case("add-empty-call", 2, *add("--every", "1d", "--call", ""), says="--call"),
    case("add-env-without-value", 2, *daily("--env", "A"), says="KEY=VALUE"),
    case("add-env-without-key", 2, *daily("--env", "=x"), says="KEY=VALUE"),
    case("add-empty-cwd", 2, *daily("--cwd", ""), says=("--cwd", "empty")),
    case("add-no-trigger", 2, *add("--command", "true"), says="no trigger"),
    case("add-duplicate", 2, "add", LOG, "backup", "--every", "1d", "--command", "true",
         "--if-exists", "error", says="backup", type="DuplicateTask"),
    case("pause-long-note", 2, "pause", LOG, "backup", "--note", LONG_NOTE,
         says=("--note", "1000")),
    case("resume-control-note", 2, "resume", LOG, "backup", "--note", "a\x1b[31mb",
         says=("--note", "control characters")),
    case("pause-empty-task", 2, "pause", LOG, "", says="task"),
    case("pause-unknown", 2, "pause", LOG, "nosuch", says="no task named 'nosuch'",
         type="UnknownTask"),
    case("remove-empty-task", 2, "remove", LOG, "", says="task"),
    case("cancel-unknown", 2, "cancel", LOG, "nosuch", type="UnknownTask"),
    case("run-now-no-scheduler", 1, "run-now", LOG, "backup", says="start the scheduler",
         type="NotRunning"),
    case("reload-no-scheduler", 1, "reload", LOG, says="nothing to reload", type="NotRunning"),
    # -- paths with no log behind them, logs that stand in the way -------------------
    *(
        case(f"{command}-missing", 2, command, f"{TMP}/nope.jsonl", *rest, says="does not exist")
        for command, rest in [
            *READERS,
            ("compact", ("--keep", "1d")),
            ("pause", ("backup",)),
            ("add", ("y", "--every", "1d", "--command", "true")),
        ]
    ),
    *(
        case(f"{command}-directory", 2, command, TMP, *rest, says="is a directory")
        for command, rest in [*READERS, ("compact", ("--keep", "1d")), ("resume", ("backup",))]
    ),
    *(
        case(f"{command}-not-a-log", 3, command, f"{TMP}/notes.txt", *rest,
             says="is not a chronolog log", type="LogCorrupted", setup="notes")
        for command, rest in [*READERS, ("compact", ("--keep", "1d")), ("pause", ("x",))]
    ),
    case("status-newer-format", 3, "status", f"{TMP}/future.jsonl",
         says=("format version 9", "versions 1 to 3"), setup="future"),
    case("status-newer-sqlite", 3, "status", f"{TMP}/future.sqlite",
         says=("format version 9", "versions 1 to 3"), setup="future"),
    case("pause-newer-format", 3, "pause", f"{TMP}/future.jsonl", "x",
         says=("format version 9", "versions 1 to 3"), setup="future"),
    case("pause-lock-file-cannot-open", 1, "pause", LOG, "backup",
         says=("lock file", "jobs.jsonl.lock"), type="IsADirectoryError",
         setup="lock-is-a-directory"),
    case("pause-locked", 3, "pause", LOG, "backup", says="is locked by process",
         type="LogLocked", setup="locked"),
    case("compact-locked", 3, "compact", LOG, "--keep", "1d", says="is locked by process",
         type="LogLocked", setup="locked"),
    case("pause-job-file-without-log", 2, "pause", JOBS, "backup", says="names no log",
         toml='[[jobs]]\nname = "x"\nmanual = true\ncommand = "true"\n'),
    # -- times, counts and ids -------------------------------------------------------
    case("history-since-year-99999", 2, "history", LOG, "backup", "--since",
         "99999-01-01T00:00Z", says="--since"),
    case("replay-at-past-year-9999", 2, "replay", LOG, "--at", "9999-12-31T23:59:59-05:00",
         says=("--at", "years 1-9999")),
    case("timeline-since-past-year-9999", 2, "timeline", LOG, "--out", f"{TMP}/page.html",
         "--since", "9999-12-31T23:59:59-05:00", says="--since"),
    case("replay-seq-enormous", 2, "replay", LOG, "--seq", ENORMOUS, says="--seq"),
    case("tail-poll-huge", 2, "tail", LOG, "--poll", "1e308", says="--poll"),
    case("tail-poll-nan", 2, "tail", LOG, "--poll", "nan", says="--poll"),
    case("history-limit-negative", 2, "history", LOG, "backup", "--limit", "-1",
         says="--limit"),
    case("why-garbage-id", 2, "why", LOG, "backup@garbage",
         says=("backup@garbage", "backup@2026-03-29T01:00:00Z")),
    case("why-empty-time", 2, "why", LOG, "backup@", says="backup@2026-03-29T01:00:00Z"),
    case("why-id-without-offset", 2, "why", LOG, "backup@2026-03-29T01:00", says="UTC offset"),
    case("why-empty-hash", 2, "why", LOG, "backup#", says="backup@2026-03-29T01:00:00Z"),
    case("why-empty", 2, "why", LOG, "", says="backup@2026-03-29T01:00:00Z"),
    case("why-task-without-at", 2, "why", LOG, "backup", says="--at"),
    case("why-unknown-task", 2, "why", LOG, "nosuch@2026-03-29T01:00Z", type="UnknownTask"),
    case("timeline-over-its-log", 2, "timeline", LOG, "--out", LOG,
         says=("--out", "the log itself")),
    case("timeline-out-missing-directory", 2, "timeline", LOG, "--out",
         f"{TMP}/nowhere/page.html", says=("--out", "does not exist")),
    case("timeline-out-empty", 2, "timeline", LOG, "--out", "", says="--out"),
    case("next-count-too-many", 2, "next", "0 2 * * *", "--count", "100000001",
         says=("--count", "100000")),
    case("next-count-enormous", 2, "next", "0 2 * * *", "--count", ENORMOUS, says="--count"),
    case("next-count-zero", 2, "next", "0 2 * * *", "--count", "0", says="--count"),
    case("next-empty-expression", 2, "next", "", says="empty", type="InvalidTrigger"),
    case("next-empty-zone", 2, "next", "0 2 * * *", "--tz", "", says="time zone"),
    case("next-after-garbage", 2, "next", "0 2 * * *", "--after", "garbage", says="--after"),
    case("next-after-year-99999", 2, "next", "0 2 * * *", "--after", "99999-01-01T00:00Z",
         says="--after"),
    case("demo-no-seconds", 2, "demo", "--seconds", "0", says="--seconds"),
    case("demo-seconds-huge", 2, "demo", "--seconds", HUGE, says="--seconds"),
    case("demo-dir-is-a-file", 2, "demo", "--dir", LOG, says="--dir"),
    case("unknown-command", 2, "nosuch", says="No such command", type="UsageError"),
    case("status-no-log", 2, "status", says="LOG", type="UsageError"),
    # -- job files: `run --check` refuses exactly what `run` refuses -------------------
    case("check-every-huge", 2, "run", JOBS, "--check", says=("jobs[0].every", "36500d"),
         toml=job(f'every = "{HUGE}d"\ncommand = "true"'), type="ConfigError"),
    case("check-grace-huge", 2, "run", JOBS, "--check", says=("shutdown_grace", "36500d"),
         toml=f'log = "new.jsonl"\nshutdown_grace = "{HUGE}d"\n'),
    case("check-jobs-int", 2, "run", JOBS, "--check", says=("jobs:", "[[jobs]]"),
         toml='log = "new.jsonl"\njobs = 5\n'),
    case("check-jobs-string", 2, "run", JOBS, "--check", says=("jobs:", "[[jobs]]"),
         toml='log = "new.jsonl"\njobs = "x"\n'),
    case("check-jobs-of-ints", 2, "run", JOBS, "--check", says=("jobs[0]:", "a table"),
         toml='log = "new.jsonl"\njobs = [5]\n'),
    case("check-defaults-int", 2, "run", JOBS, "--check", says=("defaults:", "a table"),
         toml='log = "new.jsonl"\ndefaults = 5\n'),
    case("check-retry-int", 2, "run", JOBS, "--check", says=("jobs[0].retry", "a table"),
         toml=job(EVERY + "retry = 5")),
    case("check-max-concurrent-huge", 2, "run", JOBS, "--check",
         says=("max_concurrent", "1000000000"),
         toml=f'log = "new.jsonl"\nmax_concurrent = {HUGE * 2}\n'),
    case("check-max-runs-huge", 2, "run", JOBS, "--check",
         says=("jobs[0].max_runs", "1000000000"), toml=job(EVERY + f"max_runs = {HUGE * 2}")),
    case("check-factor-nan", 2, "run", JOBS, "--check", says=("jobs[0].retry.factor", "finite"),
         toml=job(EVERY + "retry = { factor = nan }")),
    case("check-command-nul", 2, "run", JOBS, "--check", says=("jobs[0].command", "NUL"),
         toml=job('every = "1d"\ncommand = "a\\u0000b"')),
    case("check-argv-nul", 2, "run", JOBS, "--check", says=("jobs[0].command", "NUL"),
         toml=job('every = "1d"\ncommand = ["true", "a\\u0000b"]')),
    case("check-env-nul", 2, "run", JOBS, "--check", says=("jobs[0].env", "NUL"),
         toml=job(EVERY + 'env = { A = "a\\u0000b" }')),
    case("check-env-key-with-equals", 2, "run", JOBS, "--check", says=("jobs[0].env", "'='"),
         toml=job(EVERY + 'env = { "A=B" = "x" }')),
    case("check-empty-tz", 2, "run", JOBS, "--check", says=("jobs[0].tz", "empty"),
         toml=job('cron = "0 2 * * *"\ntz = ""\ncommand = "true"')),
    case("check-nul-name", 2, "run", JOBS, "--check", says=("jobs[0].name", "NUL"),
         toml='log = "new.jsonl"\n[[jobs]]\nname = "a\\u0000b"\n' + EVERY),
    case("check-no-log", 2, "run", JOBS, "--check", says="names no log",
         toml=job(EVERY, log="")),
    case("check-log-in-missing-directory", 2, "run", JOBS, "--check",
         says=("directory", "does not exist"), toml=job(EVERY, log='log = "nowhere/j.jsonl"\n')),
    case("check-log-is-a-directory", 2, "run", JOBS, "--check", says="is a directory",
         toml=job(EVERY, log='log = "."\n')),
    case("check-log-option-is-a-directory", 2, "run", JOBS, "--check", "--log", TMP,
         says="is a directory", toml=job(EVERY)),
    case("check-socket-path-too-long", 2, "run", JOBS, "--check",
         says=("control socket", "107"), toml=job(EVERY, log=f'log = "{"d" * 120}.jsonl"\n')),
    case("check-file-where-the-socket-goes", 2, "run", JOBS, "--check",
         says="is not a socket", toml=job(EVERY), setup="file-where-the-socket-goes"),
]
# fmt: on


@pytest.fixture
def place(tmp_path: Path) -> Path:
    """The directory of a row: the scenario's log as a file and as an SQLite log."""
    log = scenario_log(tmp_path)
    records = [r for r in FileLog(log).read()][:40]

    async def write() -> None:
        import msgspec

        async with SQLiteLog(tmp_path / "jobs.sqlite") as sqlite:
            await sqlite.append([msgspec.structs.replace(r, seq=0) for r in records])

    trio.run(write)
    return tmp_path


def _lock_path(log: Path) -> Path:
    return FileLog(log).lock_path


@contextlib.contextmanager
def prepared(row: Hostile, place: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The row's setup, for as long as its command runs."""
    log = place / "jobs.jsonl"
    if row.toml is not None:
        (place / "jobs.toml").write_text(row.toml)
    if row.setup == "notes":
        (place / "notes.txt").write_text("shopping: milk, eggs\n")
    elif row.setup == "future":
        (place / "future.jsonl").write_text('{"format":"chronolog","version":9}\n')
        shutil.copy(place / "jobs.sqlite", place / "future.sqlite")
        import sqlite3

        with contextlib.closing(sqlite3.connect(place / "future.sqlite")) as database:
            database.execute("UPDATE chronolog_meta SET value = 9 WHERE key = 'version'")
            database.commit()
    elif row.setup == "lock-is-a-directory":
        _lock_path(log).mkdir()
    elif row.setup == "file-where-the-socket-goes":
        (place / "new.jsonl.sock").write_text("mine")
    if row.setup != "locked":
        yield
        return
    monkeypatch.setattr(control_module, "LOCKED_WAIT_SECONDS", 0.05)
    fd = os.open(_lock_path(log), os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, b'{"pid": 4242, "host": "elsewhere"}\n')
        log_fd = os.open(log, os.O_RDONLY)
        try:
            fcntl.flock(log_fd, fcntl.LOCK_EX)  # a writer locks the log file itself too
            yield
        finally:
            os.close(log_fd)
    finally:
        os.close(fd)


def _logs(place: Path) -> dict[str, bytes]:
    """Every log of the row's directory, and its bytes (sidecars left out)."""
    return {
        path.name: path.read_bytes()
        for path in sorted(place.iterdir())
        if path.is_file() and path.suffix in (".jsonl", ".sqlite", ".txt")
    }


def _arguments(row: Hostile, place: Path, *, as_json: bool) -> list[str]:
    def fill(argument: str) -> str:
        return (
            argument.replace(LOG, str(place / "jobs.jsonl"))
            .replace(SQLITE, str(place / "jobs.sqlite"))
            .replace(JOBS, str(place / "jobs.toml"))
            .replace(TMP, str(place))
        )

    arguments = [fill(argument) for argument in row.args]
    if as_json:
        arguments.append("--json")
    return arguments


def _invoke(arguments: list[str], place: Path) -> tuple[int, str, str]:
    if arguments[0] == "run" and "--check" not in arguments:
        # A real process: a file `run` wrongly accepted would start a scheduler.
        done = subprocess.run(
            [sys.executable, "-m", "chronolog", *arguments],
            cwd=place,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        return done.returncode, done.stdout, done.stderr
    result = CliRunner().invoke(main, arguments)
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"{type(result.exception).__name__}: {result.exception}"
    )
    return result.exit_code, result.stdout, result.stderr


def _check(row: Hostile, code: int, out: str, err: str, *, as_json: bool) -> None:
    assert code == row.code, err
    assert "Traceback" not in out + err, err
    assert "Error: " in err, err
    for phrase in row.says:
        assert phrase in err, (phrase, err)
    if not as_json:
        assert out == ""
        return
    assert out.endswith("\n")
    assert out.count("\n") == 1, out  # one line: for JSON Lines commands too
    document = json.loads(out)
    error = document["error"]
    assert error["exit_code"] == row.code
    assert f"Error: {error['message']}" in err
    assert error["type"]
    if row.error_type is not None:
        assert error["type"] == row.error_type


@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
@pytest.mark.parametrize("row", CASES)
def test_hostile_input(
    row: Hostile, as_json: bool, place: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(place)
    with prepared(row, place, monkeypatch):
        before = _logs(place)
        code, out, err = _invoke(_arguments(row, place, as_json=as_json), place)
        after = _logs(place)
    _check(row, code, out, err, as_json=as_json)
    assert after == before
    assert not (place / "new.jsonl").exists()


RUN_ROWS = [row for row in CASES if row.values[0].args[:1] == ("run",)]


@pytest.mark.parametrize("row", RUN_ROWS)
def test_run_refuses_what_run_check_refuses(
    row: Hostile, place: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same file, the same refusal: ``--check`` shares every check ``run`` makes."""
    monkeypatch.chdir(place)
    with prepared(row, place, monkeypatch):
        arguments = _arguments(row, place, as_json=False)
        checked = _invoke(arguments, place)
        ran = _invoke([a for a in arguments if a != "--check"], place)
    assert ran == checked
    assert not (place / "new.jsonl").exists()


# -- files the command may not read or write: exit code 1 ------------------------------------

NOBODY = 65534


@pytest.fixture
def open_place() -> Iterator[Path]:
    """A directory another user can reach (pytest's own are private to their owner)."""
    directory = Path(tempfile.mkdtemp(prefix="chronolog-hostile-"))
    directory.chmod(0o755)
    yield directory
    for path in [directory, *directory.rglob("*")]:
        if path.is_dir() and not path.is_symlink():
            path.chmod(0o755)
    shutil.rmtree(directory)


def as_nobody(*arguments: str, cwd: Path) -> tuple[int, str, str]:
    """``chronolog ARGUMENTS`` in a forked child that file modes apply to.

    Under root (which ignores file modes) the child first drops to uid and
    gid 65534 ("nobody"); under any other user the modes set here deny the
    owner too. The child runs the command line in process and reports its
    exit code and output through a pipe.
    """
    reading, writing = os.pipe()
    with warnings.catch_warnings():
        # Python 3.12+ warns about forking a process with threads; the child
        # only runs the command.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        os.close(reading)
        try:
            os.chdir(cwd)
            if os.geteuid() == 0:
                os.setgroups([])
                os.setgid(NOBODY)
                os.setuid(NOBODY)
            result = CliRunner().invoke(main, list(arguments))
            report = {"code": result.exit_code, "out": result.stdout, "err": result.stderr}
            if result.exception is not None and not isinstance(result.exception, SystemExit):
                report["err"] += f"Traceback: {result.exception!r}"
        except BaseException as exc:
            report = {"setup": f"{type(exc).__name__}: {exc}"}
        os.write(writing, json.dumps(report).encode())
        os._exit(0)
    os.close(writing)
    with os.fdopen(reading, "rb") as pipe:
        output = pipe.read()
    os.waitpid(pid, 0)
    report = json.loads(output)
    if "setup" in report:
        pytest.skip(f"cannot run as another user here: {report['setup']}")
    return report["code"], report["out"], report["err"]


@pytest.mark.parametrize(
    "command",
    [
        pytest.param(("status", "{log}"), id="status"),
        pytest.param(("verify", "{log}", "--json"), id="verify-json"),
        pytest.param(("history", "{log}", "backup"), id="history"),
        pytest.param(("pause", "{log}", "backup"), id="pause"),
        pytest.param(("compact", "{log}", "--keep", "1d"), id="compact"),
    ],
)
def test_a_log_that_may_not_be_read(command: tuple[str, ...], open_place: Path) -> None:
    log = scenario_log(open_place)
    log.chmod(0o600)  # its owner's, and nobody else's
    before = log.read_bytes()
    arguments = [argument.replace("{log}", str(log)) for argument in command]
    code, out, err = as_nobody(*arguments, cwd=open_place)
    assert code == 1, err
    assert "Traceback" not in err
    assert "permission" in err.lower(), err
    if "--json" in arguments:
        document = json.loads(out)
        assert document["error"]["exit_code"] == 1
        assert document["error"]["type"] == "PermissionError"
    assert log.read_bytes() == before


def test_a_lock_file_that_may_not_be_opened(open_place: Path) -> None:
    log = scenario_log(open_place)
    log.chmod(0o666)
    lock = _lock_path(log)
    lock.write_text("")
    lock.chmod(0o600)  # the writer's lock file, but not this user's
    before = log.read_bytes()
    code, out, err = as_nobody("pause", str(log), "backup", "--json", cwd=open_place)
    assert code == 1, err
    assert "lock file" in err
    assert json.loads(out)["error"]["exit_code"] == 1
    assert log.read_bytes() == before
