"""Result hooks: how a job file gives them, which records fire them, and how they run.

The rule and the observer run on simulated time with call hooks (a call
runs in the scheduler's process, its thread holding the simulated clock
still). Command hooks start real processes, so they run on Trio's real
clock; none waits longer than a hook's timeout, which the tests keep to a
fraction of a second.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import trio
import trio.lowlevel
import trio.testing

import chronolog
from chronolog import (
    Completed,
    ConfigError,
    Every,
    Failed,
    Manual,
    MemoryLog,
    Retry,
    Scheduled,
    Started,
    open_scheduler,
)
from chronolog import _hooks as hooks_module
from chronolog._commands import CommandSpec
from chronolog._config import CallSpec, Hook, Hooks, parse_job_file
from chronolog._hooks import hooks_to_run, run_hook, run_hooks
from chronolog.testing import SimulatedClock

if TYPE_CHECKING:
    from trio.testing import MockClock

START = datetime(2026, 3, 27, 12, 0, tzinfo=UTC)
FAILED = Failed(
    task="backup",
    at=START,
    seq=7,
    occurrence="backup@2026-03-27T12:00:00Z",
    attempt=2,
    duration=timedelta(seconds=3),
    error="disk full",
)
COMPLETED = Completed(
    task="backup", at=START, seq=8, occurrence="backup@2026-03-27T12:00:00Z", attempt=1
)


# -- the job file ---------------------------------------------------------------------


def test_hooks_of_a_job_and_of_the_defaults(tmp_path: Path) -> None:
    job_file = parse_job_file(
        """
        [defaults]
        on_failure = { command = "notify.sh", timeout = "5s" }
        on_finish = { call = "json:dumps" }

        [[jobs]]
        name = "backup"
        every = "1h"
        call = "json:dumps"
        on_failure = { command = ["mail", "-s", "backup failed", "ops@example.com"] }

        [[jobs]]
        name = "report"
        every = "1h"
        call = "json:dumps"
        on_success = { call = "json:loads" }
        """.replace("mail", sys.executable),
        path=tmp_path / "jobs.toml",
    )
    backup = job_file.hooks_for("backup")
    assert backup.on_failure == Hook(
        CommandSpec(
            argv=(sys.executable, "-s", "backup failed", "ops@example.com"), cwd=str(tmp_path)
        )
    )
    assert backup.on_finish == Hook(CallSpec("json:dumps"))
    assert backup.on_success is None
    report = job_file.hooks_for("report")
    assert report.on_failure == Hook(
        CommandSpec(shell="notify.sh", cwd=str(tmp_path)), timedelta(seconds=5)
    )
    assert report.on_success == Hook(CallSpec("json:loads"))
    # A task the file does not declare (added with `chronolog add`) gets the defaults.
    assert job_file.hooks_for("added-later") == job_file.default_hooks


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            'on_failure = "notify.sh"',
            "jobs[0].on_failure (job 'a'): expected a table such as "
            '{ command = "notify.sh" }, got a string',
        ),
        (
            'on_failure = { command = "x", timout = "1s" }',
            "jobs[0].on_failure.timout (job 'a'): unknown key; did you mean 'timeout'?",
        ),
        ("on_success = {}", "jobs[0].on_success (job 'a'): no target; give command"),
        (
            'on_finish = { call = "no_such_module_xyz:f" }',
            "jobs[0].on_finish.call (job 'a'): cannot import module 'no_such_module_xyz'",
        ),
        (
            'on_failure = { command = "x", call = "json:dumps" }',
            "jobs[0].on_failure.call (job 'a'): a job has one target",
        ),
        (
            'on_failure = { command = "x", timeout = "soon" }',
            "jobs[0].on_failure.timeout (job 'a'): 'soon' is not a duration",
        ),
    ],
)
def test_a_hook_with_a_problem_is_named_by_its_path(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_job_file(f'[[jobs]]\nname = "a"\nmanual = true\ncall = "json:dumps"\n{text}\n')
    assert message in str(raised.value)


def test_a_hook_of_the_defaults_is_named_by_its_path() -> None:
    with pytest.raises(ConfigError, match=r"defaults\.on_failure\.command: program"):
        parse_job_file('[defaults]\non_failure = { command = ["no-such-program-xyz"] }\n')


# -- which records fire which hooks -------------------------------------------------------


HOOKS = Hooks(
    on_failure=Hook(CallSpec("m:failure")),
    on_success=Hook(CallSpec("m:success")),
    on_finish=Hook(CallSpec("m:finish")),
)


def test_a_completed_run_fires_success_and_finish() -> None:
    assert [key for key, _ in hooks_to_run(COMPLETED, HOOKS)] == ["on_success", "on_finish"]


def test_a_failure_that_settles_the_run_fires_failure_and_finish() -> None:
    assert [key for key, _ in hooks_to_run(FAILED, HOOKS)] == ["on_failure", "on_finish"]


def test_an_attempt_that_will_be_retried_fires_nothing() -> None:
    retried = Failed(
        task="backup",
        at=START,
        occurrence="backup@2026-03-27T12:00:00Z",
        attempt=1,
        retry_at=START + timedelta(minutes=1),
    )
    assert hooks_to_run(retried, HOOKS) == []


def test_other_records_fire_nothing_and_unset_hooks_are_left_out() -> None:
    scheduled = Scheduled(task="backup", at=START, occurrence="x", due=START)
    started = Started(task="backup", at=START, occurrence="x", attempt=1)
    assert hooks_to_run(scheduled, HOOKS) == hooks_to_run(started, HOOKS) == []
    only_failure = Hooks(on_failure=HOOKS.on_failure)
    assert hooks_to_run(COMPLETED, only_failure) == []


# -- the observer, on a scheduler, on simulated time ---------------------------------------

seen: list[tuple[str, dict[str, Any], chronolog.RunContext]] = []


def record_failure(record: dict[str, Any]) -> None:
    seen.append(("failure", record, chronolog.current_run()))


async def record_finish(record: dict[str, Any]) -> None:
    await trio.lowlevel.checkpoint()
    seen.append(("finish", record, chronolog.current_run()))


def broken_hook(record: dict[str, Any]) -> None:
    raise RuntimeError("the chat server is down")


def flaky(runs: list[int]) -> Any:
    def target() -> None:
        runs.append(1)
        raise ValueError(f"attempt {len(runs)} failed")

    return target


async def test_hooks_run_after_the_record_is_in_the_log_and_change_nothing(
    autojump_clock: MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    seen.clear()
    sim = SimulatedClock(START, mock_clock=autojump_clock)
    log = MemoryLog()
    hooks = Hooks(
        on_failure=Hook(CallSpec(f"{__name__}:record_failure")),
        on_finish=Hook(CallSpec(f"{__name__}:record_finish")),
        on_success=Hook(CallSpec(f"{__name__}:broken_hook")),
    )
    runs: list[int] = []
    async with trio.open_nursery() as nursery:
        async with open_scheduler(log, clock=sim) as sched:
            nursery.start_soon(lambda: run_hooks(sched.events(), lambda task: hooks, clock=sim))
            await sched.add(
                "backup",
                Every(timedelta(minutes=10)),
                flaky(runs),
                retry=Retry(max_attempts=2, backoff=timedelta(seconds=30)),
            )
            await sched.add("tick", Manual(), lambda: "ok")
            await sched.run_now("tick")
            await sim.sleep_until(START + timedelta(minutes=11))
        await log.aclose()  # the observer reads to the end of the log, and its hooks end
    # The first occurrence failed twice: its hooks fired once each (they run side by
    # side), for the final failure.
    failures = {kind: (record, run) for kind, record, run in seen if record["task"] == "backup"}
    assert sorted(failures) == ["failure", "finish"]
    assert failures["failure"][0] == failures["finish"][0]
    record, context = failures["failure"]
    assert record["type"] == "Failed"
    assert record["attempt"] == 2
    assert record["error"] == "attempt 2 failed"
    assert "retry_at" not in record
    # The record the hook got is the one in the log, at its seq.
    stored = [r for r in log.read() if isinstance(r, Failed) and r.seq == record["seq"]]
    assert [r.error for r in stored] == ["attempt 2 failed"]
    assert (context.task, context.occurrence, context.attempt) == (
        "backup",
        "backup@2026-03-27T12:10:00Z",
        2,
    )
    assert context.due == datetime(2026, 3, 27, 12, 10, tzinfo=UTC)
    # The manual run completed: on_finish ran, and the broken on_success was logged.
    assert [kind for kind, record, _ in seen if record["task"] == "tick"] == ["finish"]
    assert "on_success hook of task 'tick'" in caplog.text
    assert "the chat server is down" in caplog.text
    assert all(r.levelno == logging.WARNING for r in caplog.records if "hook" in r.message)
    # Nothing the hooks did is in the log: its runs are what they were.
    assert [type(r).__name__ for r in log.read() if r.task == "tick"][-1] == "Completed"


async def test_at_most_so_many_hooks_run_at_once() -> None:
    running = 0
    most = 0
    release = trio.Event()

    async def slow(_: dict[str, Any]) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await release.wait()
        running -= 1

    async def records() -> Any:
        for seq in range(1, 21):
            yield Completed(task="t", at=START, seq=seq, occurrence=f"t!{seq}", attempt=1)

    async def release_when_all_wait() -> None:
        await trio.testing.wait_all_tasks_blocked()
        assert running == 3  # and the observer waits for a slot
        release.set()

    globals()["_slow_hook"] = slow
    hooks = Hooks(on_success=Hook(CallSpec(f"{__name__}:_slow_hook")))
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(release_when_all_wait)
            await run_hooks(
                records(), lambda task: hooks, clock=chronolog.SystemClock(), max_concurrent=3
            )
    assert (most, running) == (3, 0)


# -- command hooks: real processes, on the real clock ----------------------------------------


def _hook(command: str | list[str], tmp_path: Path, timeout: float = 10.0) -> Hook:
    spec = (
        CommandSpec(shell=command, cwd=str(tmp_path))
        if isinstance(command, str)
        else CommandSpec(argv=tuple(command), cwd=str(tmp_path))
    )
    return Hook(spec, timedelta(seconds=timeout))


async def test_a_command_hook_reads_the_record_on_stdin_and_the_run_in_its_environment(
    tmp_path: Path,
) -> None:
    script = (
        "import json, os, sys; record = json.load(sys.stdin); "
        "keys = ['CHRONOLOG_TASK', 'CHRONOLOG_OCCURRENCE', 'CHRONOLOG_ATTEMPT', "
        "'CHRONOLOG_DUE', 'CHRONOLOG_HOOK', 'CHRONOLOG_OUTCOME']; "
        "json.dump({'record': record, 'env': {k: os.environ[k] for k in keys}}, "
        "open('seen.json', 'w'))"
    )
    hook = _hook([sys.executable, "-c", script], tmp_path)
    with trio.fail_after(30):
        ok = await run_hook("on_failure", hook, FAILED, due=START, clock=chronolog.SystemClock())
    assert ok
    seen_by_hook = json.loads((tmp_path / "seen.json").read_text())
    assert seen_by_hook["record"] == chronolog._events.event_to_builtins(FAILED)
    assert seen_by_hook["env"] == {
        "CHRONOLOG_TASK": "backup",
        "CHRONOLOG_OCCURRENCE": "backup@2026-03-27T12:00:00Z",
        "CHRONOLOG_ATTEMPT": "2",
        "CHRONOLOG_DUE": "2026-03-27T12:00:00Z",
        "CHRONOLOG_HOOK": "on_failure",
        "CHRONOLOG_OUTCOME": "failed",
    }


async def test_a_failing_command_hook_is_logged_with_the_tail_of_its_output(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    hook = _hook("echo 'curl: (7) could not connect' >&2; exit 7", tmp_path)
    with trio.fail_after(30):
        ok = await run_hook("on_failure", hook, FAILED, due=None, clock=chronolog.SystemClock())
    assert not ok
    assert "on_failure hook of task 'backup'" in caplog.text
    assert "exited with status 7; output: curl: (7) could not connect" in caplog.text


async def test_a_hook_that_cannot_start_is_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    hook = _hook([str(tmp_path / "gone.sh")], tmp_path)
    with trio.fail_after(30):
        ok = await run_hook("on_finish", hook, COMPLETED, due=None, clock=chronolog.SystemClock())
    assert not ok
    assert "cannot start" in caplog.text


async def test_a_hook_that_hangs_is_stopped_at_its_timeout_with_its_children(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hooks_module, "_KILL_AFTER_SECONDS", 0.05)
    # It ignores SIGTERM and leaves a child behind: the group gets SIGKILL.
    hook = _hook("trap '' TERM; sleep 30 & echo $! > child.pid; wait", tmp_path, timeout=0.2)
    began = trio.current_time()
    with trio.fail_after(30):
        ok = await run_hook("on_failure", hook, FAILED, due=None, clock=chronolog.SystemClock())
    assert not ok
    assert trio.current_time() - began < 5
    assert "did not end within its timeout of 0.2 s" in caplog.text
    child = int((tmp_path / "child.pid").read_text())
    with trio.fail_after(5):
        # No event says when a process is gone: poll for it (bounded).
        while _alive(child):  # noqa: ASYNC110
            await trio.sleep(0.01)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/stat")
    return not (status.exists() and status.read_text().split()[2] == "Z")


async def test_a_hook_that_floods_its_output_costs_bounded_memory(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    flood = "head -c 50000000 /dev/zero | tr '\\0' x; echo; echo the-end; exit 1"
    hook = _hook(flood, tmp_path)
    with trio.fail_after(60):
        ok = await run_hook("on_failure", hook, FAILED, due=None, clock=chronolog.SystemClock())
    assert not ok
    message = next(r.message for r in caplog.records if "exited with status 1" in r.message)
    assert message.endswith("the-end")
    assert len(message) < hooks_module.OUTPUT_TAIL_BYTES + 500


async def test_hooks_still_running_when_the_log_closes_get_the_drain_time(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def forever(_: dict[str, Any]) -> None:
        await trio.sleep_forever()

    async def records() -> Any:
        yield COMPLETED

    globals()["_forever_hook"] = forever
    hooks = Hooks(on_success=Hook(CallSpec(f"{__name__}:_forever_hook")))
    with trio.fail_after(10):
        await run_hooks(
            records(),
            lambda task: hooks,
            clock=chronolog.SystemClock(),
            drain=lambda: timedelta(milliseconds=20),
        )
    assert "1 hook(s) still running when the log closed did not end within 0.02 s" in caplog.text
