"""Run context: a job knows which occurrence and attempt it runs, to key its effects."""

from __future__ import annotations

import sys
import threading
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest
import trio

from chronolog import (
    At,
    Every,
    MemoryLog,
    Retry,
    RunContext,
    current_run,
    occurrence_id,
    open_scheduler,
)
from chronolog._commands import CommandSpec, run_command
from chronolog._run_context import enter_run, leave_run
from chronolog.testing import SimulatedClock

if TYPE_CHECKING:
    from trio.testing import MockClock

START = datetime(2026, 3, 27, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def test_outside_a_job_current_run_says_where_it_works() -> None:
    with pytest.raises(RuntimeError, match="outside a job"):
        current_run()


async def test_an_async_job_sees_its_occurrence_and_attempt_across_retries(
    autojump_clock: MockClock,
) -> None:
    sim = SimulatedClock(START, mock_clock=autojump_clock)
    seen: list[RunContext] = []

    async def job() -> None:
        seen.append(current_run())
        if len(seen) < 3:
            raise RuntimeError("not yet")

    async with open_scheduler(MemoryLog(), clock=sim, node="web-1") as sched:
        await sched.add("upload", At(START + MINUTE), job, retry=Retry(max_attempts=3))
        await sim.advance(10 * MINUTE)
    occurrence = occurrence_id("upload", START + MINUTE)
    assert [(c.task, c.occurrence, c.attempt, c.due, c.node) for c in seen] == [
        ("upload", occurrence, attempt, START + MINUTE, "web-1") for attempt in (1, 2, 3)
    ]
    assert seen[0].environment() == {
        "CHRONOLOG_TASK": "upload",
        "CHRONOLOG_OCCURRENCE": occurrence,
        "CHRONOLOG_ATTEMPT": "1",
        "CHRONOLOG_DUE": "2026-03-27T12:01:00Z",
    }


async def test_a_sync_job_and_the_tasks_a_job_starts_see_it_too(
    autojump_clock: MockClock,
) -> None:
    sim = SimulatedClock(START, mock_clock=autojump_clock)
    seen: list[tuple[str, str]] = []

    def sync_job() -> None:
        seen.append((threading.current_thread().name, current_run().task))

    async def parent_job() -> None:
        async def child() -> None:
            seen.append(("child", current_run().task))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(child)

    async with open_scheduler(MemoryLog(), clock=sim) as sched:
        await sched.add("sync", Every(MINUTE), sync_job, max_runs=1)
        await sched.add("parent", Every(MINUTE), parent_job, max_runs=1)
        manual = await sched.run_now("parent")
        await sim.advance(2 * MINUTE)
    assert sorted(task for _, task in seen) == ["parent", "parent", "sync"]
    assert any(name != threading.main_thread().name for name, task in seen if task == "sync")
    assert manual.startswith("parent!")


async def test_a_command_gets_the_context_in_its_environment() -> None:
    context = RunContext(
        task="export",
        occurrence="export@2026-03-29T01:00:00Z",
        attempt=2,
        due=datetime(2026, 3, 29, 1, 0, tzinfo=UTC),
        node="web-1",
    )
    script = (
        "import os; print(os.environ['CHRONOLOG_OCCURRENCE'], os.environ['CHRONOLOG_ATTEMPT'])"
    )
    token = enter_run(context)
    try:
        result = await run_command(CommandSpec(argv=(sys.executable, "-c", script)))
    finally:
        leave_run(token)
    assert result["stdout"] == "export@2026-03-29T01:00:00Z 2\n"
