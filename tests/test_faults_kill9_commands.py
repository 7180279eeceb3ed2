"""kill -9 of a real ``chronolog run`` whose jobs are commands: no orphan, no second copy.

A command job takes a per-occurrence lock, notes its start and its end in a
side file, and sleeps between them. A loop starts ``chronolog run`` on the
same log, waits until a command is under way, and kills the scheduler with
SIGKILL. Each time:

* the command dies with its scheduler (its process is gone within the
  reaper's SIGTERM grace), so nothing runs on unsupervised;
* the next scheduler records the attempt ``interrupted`` with how long it
  ran, and its retry never starts while an earlier attempt of the same
  occurrence still runs (the lock would say so: the side file would show
  ``overlap``);

and at the end every execution in the side file is a ``Started`` record of
the log -- and every ``Started`` without an execution is an attempt that
was interrupted before its command got going (the kill fell between the
durable claim and the command's first line) -- and the log keeps every rule. Both
backends, a few kills each: every kill costs an interpreter start-up.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from chronolog import Failed, FileLog, SQLiteLog, Started, check_invariants

if TYPE_CHECKING:
    from collections.abc import Callable

KILLS = 5
PATIENCE = 30.0
#: How soon a command must be gone once its scheduler is: the reaper sends
#: SIGTERM at once, and the command's 20 s of work are far from over.
DIES_WITHIN = 5.0

WORK = textwrap.dedent(
    """
    import fcntl, os, sqlite3, sys, time

    occurrence = os.environ["CHRONOLOG_OCCURRENCE"]
    attempt = os.environ["CHRONOLOG_ATTEMPT"]
    os.makedirs("locks", exist_ok=True)
    lock = open(os.path.join("locks", occurrence.replace(":", "_")), "w")

    def note(text):
        fd = os.open("executions.txt", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, (text + "\\n").encode())
        finally:
            os.close(fd)

    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        note(f"overlap {occurrence} {attempt}")
        sys.exit(1)
    note(f"start {occurrence} {attempt} {os.getpid()}")
    # The effect, keyed by the occurrence: a retry of it changes nothing.
    with sqlite3.connect("effects.sqlite") as effects:
        effects.execute("CREATE TABLE IF NOT EXISTS effects (occurrence TEXT PRIMARY KEY)")
        effects.execute("INSERT OR IGNORE INTO effects VALUES (?)", (occurrence,))
    note(f"effect {occurrence} {attempt}")
    time.sleep(float(sys.argv[1]))
    note(f"end {occurrence} {attempt}")
    """
)

JOB_FILE = """\
log = "{log}"
shutdown_grace = "0s"

[[jobs]]
name = "work"
every = "1s"
command = [{python}, "work.py", "20"]
retry = {{ max_attempts = 10, backoff = "100ms" }}
"""


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_until(condition: Callable[[], bool], what: str, patience: float = PATIENCE) -> None:
    deadline = time.monotonic() + patience
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.01)


def executions(directory: Path) -> list[list[str]]:
    path = directory / "executions.txt"
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


@pytest.mark.parametrize("log_name", ["jobs.jsonl", "jobs.sqlite"])
def test_commands_die_with_their_scheduler_and_never_run_twice(
    tmp_path: Path, log_name: str
) -> None:
    seed = random.randrange(2**32)
    chance = random.Random(seed)
    print(f"random seed {seed}")  # shown when the test fails
    (tmp_path / "work.py").write_text(WORK)
    (tmp_path / "jobs.toml").write_text(
        JOB_FILE.format(log=log_name, python=f'"{sys.executable}"')
    )
    log = tmp_path / log_name
    for life in range(KILLS + 1):
        seen = len([e for e in executions(tmp_path) if e[0] == "start"])
        with (tmp_path / f"stderr-{life}.txt").open("w") as stderr:
            process = subprocess.Popen(
                [sys.executable, "-m", "chronolog", "run", "jobs.toml"],
                cwd=tmp_path,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
        try:

            def started_or_exited(
                seen: int = seen, process: subprocess.Popen[bytes] = process
            ) -> bool:
                starts = [e for e in executions(tmp_path) if e[0] == "start"]
                return len(starts) > seen or process.poll() is not None

            wait_until(started_or_exited, "a command to start")
            assert process.poll() is None, (tmp_path / f"stderr-{life}.txt").read_text()
            if life == KILLS:
                process.send_signal(signal.SIGTERM)  # the last life stops cleanly
                assert process.wait(PATIENCE) == 0
                break
            time.sleep(chance.uniform(0.0, 1.0))  # early in the command's 20 s
            process.kill()
            process.wait(PATIENCE)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        # The commands of the dead scheduler die with it.
        pids = [int(e[3]) for e in executions(tmp_path) if e[0] == "start"]
        for pid in pids:
            wait_until(lambda pid=pid: not pid_alive(pid), f"command {pid} to die", DIES_WITHIN)

    lines = executions(tmp_path)
    assert [line for line in lines if line[0] == "overlap"] == []
    records = list((FileLog if log_name.endswith(".jsonl") else SQLiteLog)(log).read())
    assert check_invariants(records) == []
    started = {(r.occurrence, str(r.attempt)) for r in records if isinstance(r, Started)}
    ran = [(line[1], line[2]) for line in lines if line[0] == "start"]
    assert len(ran) == len(set(ran))  # no attempt executed twice
    assert set(ran) <= started  # each execution was claimed first
    interrupted = {
        (r.occurrence, str(r.attempt)): r
        for r in records
        if isinstance(r, Failed) and r.error == "interrupted"
    }
    assert interrupted
    # A claim never executed was cut short: by a kill, or by the last, clean stop.
    cut = {
        (r.occurrence, str(r.attempt))
        for r in records
        if isinstance(r, Failed) and r.error in ("interrupted", "shutdown")
    }
    assert started - set(ran) <= cut
    # An attempt whose command ran says how long it ran before its scheduler died.
    for key in set(ran) & set(interrupted):
        assert interrupted[key].duration.total_seconds() > 0, key
    # Effects come only from executions, each occurrence's once whatever its
    # attempts. A kill may land between an execution's start and its effect
    # (or between the effect and its note), so those bound the effects.
    with contextlib.closing(sqlite3.connect(tmp_path / "effects.sqlite")) as effects:
        keys = [row[0] for row in effects.execute("SELECT occurrence FROM effects")]
    noted = {line[1] for line in lines if line[0] == "effect"}
    assert noted <= set(keys) <= {occurrence for occurrence, _ in ran}


def children_of(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to find the reaper")
def test_a_restart_ends_what_a_dead_scheduler_left_before_it_retries(tmp_path: Path) -> None:
    """The scheduler and its reaper both die (a container's kill, say): the command
    runs on, listed in the registry. The next scheduler ends it, then retries."""
    (tmp_path / "work.py").write_text(WORK)
    (tmp_path / "jobs.toml").write_text(
        JOB_FILE.format(log="jobs.jsonl", python=f'"{sys.executable}"')
    )
    first = subprocess.Popen(
        [sys.executable, "-m", "chronolog", "run", "jobs.toml"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: any(e[0] == "start" for e in executions(tmp_path)), "a command")
        (start,) = [e for e in executions(tmp_path) if e[0] == "start"]
        command = int(start[3])
        reapers = [pid for pid in children_of(first.pid) if pid != command]
        assert reapers, "the scheduler started no reaper"
        for reaper in reapers:
            os.kill(reaper, signal.SIGKILL)
        first.kill()
        first.wait(PATIENCE)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    time.sleep(0.5)
    assert pid_alive(command), "nothing was left to end: the test proves nothing"
    assert list((tmp_path / "jobs.jsonl.commands").glob("*.json")), "not listed in the registry"

    second = subprocess.Popen(
        [sys.executable, "-m", "chronolog", "run", "jobs.toml"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(
            lambda: any(e[0] == "start" and e[2] == "2" for e in executions(tmp_path)),
            "the retry to start",
        )
        second.send_signal(signal.SIGTERM)
        assert second.wait(PATIENCE) == 0
    finally:
        if second.poll() is None:
            second.kill()
            second.wait()
    assert not pid_alive(command)
    lines = executions(tmp_path)
    assert [line for line in lines if line[0] == "overlap"] == []
    records = list(FileLog(tmp_path / "jobs.jsonl").read())
    assert check_invariants(records) == []
    (interrupted,) = [r for r in records if isinstance(r, Failed) and r.error == "interrupted"]
    assert interrupted.occurrence == start[1]
    assert interrupted.duration.total_seconds() > 0.4  # it ran until the restart ended it
