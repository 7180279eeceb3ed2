"""``chronolog tail``: the last events, and with ``-f`` the events as they land."""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest
import trio
from click.testing import CliRunner

from chronolog import Event, FileLog, Scheduled
from chronolog._events import event_to_builtins
from chronolog.cli import main
from chronolog.cli.tail import follow_log

from .cli_logs import START, scenario_log

if TYPE_CHECKING:
    from pathlib import Path

    from trio.testing import MockClock


@pytest.fixture
def log(tmp_path: Path) -> Path:
    return scenario_log(tmp_path)


def scheduled(task: str, minutes: int) -> Scheduled:
    due = START + timedelta(days=5, minutes=minutes)
    return Scheduled(task=task, at=due, occurrence=f"{task}@{due:%Y-%m-%dT%H:%M:%S}Z", due=due)


def test_the_last_events_one_per_line(log: Path) -> None:
    records = list(FileLog(log).read())
    result = CliRunner().invoke(main, ["tail", str(log), "-n", "3"])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert [int(line.split()[0]) for line in lines] == [r.seq for r in records[-3:]]
    last = records[-1]
    assert lines[-1].split()[3] == last.task
    assert "failed flaky@2026-03-30T06:00:00Z attempt 3" in lines[-1]


def test_json_lines_are_the_records_as_stored(log: Path) -> None:
    records = list(FileLog(log).read())
    result = CliRunner().invoke(main, ["tail", str(log), "--json"])
    assert result.exit_code == 0
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines == [event_to_builtins(record) for record in records[-10:]]


def test_only_the_events_of_a_task(log: Path) -> None:
    backup = [r for r in FileLog(log).read() if r.task == "backup"]
    result = CliRunner().invoke(main, ["tail", str(log), "--task", "backup", "-n", "4", "--json"])
    assert [json.loads(line)["seq"] for line in result.stdout.splitlines()] == [
        r.seq for r in backup[-4:]
    ]
    nothing = CliRunner().invoke(main, ["tail", str(log), "-n", "0"])
    assert (nothing.exit_code, nothing.stdout) == (0, "")


async def test_follow_sees_what_another_writer_appends(
    tmp_path: Path, autojump_clock: MockClock
) -> None:
    path = scenario_log(tmp_path)
    seen: list[Event] = []
    async with FileLog(path) as writer:
        start = writer.last_seq
        # A reader of its own, as another process would have: it polls the file.
        reader = FileLog(path, poll_interval=timedelta(milliseconds=50))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(follow_log, reader, start, {"sync"}, seen.append)
            await writer.append([scheduled("sync", 1), scheduled("report", 1)])
            await trio.sleep(1)
            await writer.append([scheduled("sync", 2)])
            await trio.sleep(1)
            nursery.cancel_scope.cancel()
    assert [(r.seq, r.task) for r in seen] == [(start + 1, "sync"), (start + 3, "sync")]


def _read_lines(process: subprocess.Popen[bytes], count: int, limit: float) -> list[str]:
    """Read ``count`` lines from the process's stdout, waiting at most ``limit`` seconds."""
    assert process.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    buffer = b""
    deadline = time.monotonic() + limit
    while buffer.count(b"\n") < count:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not selector.select(remaining):
            break
        chunk = os.read(process.stdout.fileno(), 65536)
        if not chunk:
            break
        buffer += chunk
    return buffer.decode().splitlines()


def _append(path: Path, events: list[Event]) -> int:
    """Append ``events`` as a writer process would; return the seq before them."""

    async def append() -> int:
        async with FileLog(path) as writer:  # the follower holds no lock: we may write
            last = writer.last_seq
            await writer.append(events)
            return last

    return trio.run(append)


def test_tail_f_in_its_own_process_follows_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    path = scenario_log(tmp_path)
    command = [sys.executable, "-m", "chronolog", "tail", "-f", str(path), "-n", "1", "--json"]
    with subprocess.Popen(
        [*command, "--poll", "0.02"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as process:
        try:
            first = _read_lines(process, 1, 30.0)
            last = _append(path, [scheduled("sync", 1), scheduled("backup", 2)])
            assert [json.loads(line)["seq"] for line in first] == [last]
            more = _read_lines(process, 2, 30.0)
            assert [json.loads(line)["seq"] for line in more] == [last + 1, last + 2]
            process.send_signal(signal.SIGINT)
            assert process.wait(30) == 0
            assert process.stderr is not None
            assert process.stderr.read() == b""
        finally:
            if process.poll() is None:
                process.kill()
