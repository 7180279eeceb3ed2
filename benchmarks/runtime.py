"""Runtime throughput: adding tasks, dispatching due runs, group commit. Prints JSON.

Due times come from a simulated clock, so the figures measure chronolog's
own work (planning, claiming, writing, folding), not waiting for the wall
clock; the FileLog cases fsync for real. Cases:

* ``add_tasks_per_s``: ``add`` of N tasks (each a TaskDefined + an actor).
* ``durable_runs_per_s``: N one-off tasks all due at one instant, run to
  completion (Scheduled, Started, Completed each), on FileLog and MemoryLog;
  ``records_per_write`` shows group commit at work.
* ``idle_task_kib``: memory per idle task (tracemalloc), all actors asleep.

Usage: python benchmarks/runtime.py [--tasks N] [--runs N]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import trio

from chronolog import At, Cron, FileLog, MemoryLog, open_scheduler
from chronolog.testing import SimulatedClock

START = datetime(2026, 1, 1, tzinfo=UTC)


async def noop() -> None:
    pass


async def _add_tasks(count: int, sim: SimulatedClock) -> dict[str, Any]:
    async with open_scheduler(MemoryLog(), clock=sim) as sched:
        started = time.perf_counter()
        for n in range(count):
            await sched.add(f"task-{n}", Cron("0 3 * * *"), noop)
        elapsed = time.perf_counter() - started
    return {"tasks": count, "add_tasks_per_s": round(count / elapsed)}


async def _dispatch(
    count: int, sim: SimulatedClock, log_kind: str, directory: Path
) -> dict[str, Any]:
    log = FileLog(directory / f"dispatch-{count}.jsonl") if log_kind == "file" else MemoryLog()
    due = sim.now() + timedelta(minutes=1)
    finished = 0

    async def work() -> None:
        nonlocal finished
        finished += 1

    async with open_scheduler(log, clock=sim) as sched:
        for n in range(count):
            await sched.add(f"run-{n}", At(due), work)
        records_before = sched.state.seq
        writes_before = sched.statistics().batches
        started = time.perf_counter()
        await sim.sleep_until(due)
        while finished < count or any(actor.runs for actor in sched._actors.values()):
            await sim.advance(timedelta(milliseconds=100))
        elapsed = time.perf_counter() - started
        stats = sched.statistics()
    writes = stats.batches - writes_before
    return {
        "log": log_kind,
        "runs": count,
        "durable_runs_per_s": round(count / elapsed),
        "writes": writes,
        "records_per_write": round((stats.log_seq - records_before) / max(writes, 1), 1),
    }


async def _idle_memory(count: int, sim: SimulatedClock) -> dict[str, Any]:
    tracemalloc.start()
    async with open_scheduler(MemoryLog(), clock=sim) as sched:
        for n in range(count):
            await sched.add(f"idle-{n}", Cron("0 3 1 1 *"), noop)
        await trio.testing.wait_all_tasks_blocked()
        current, _ = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return {"idle_tasks": count, "idle_task_kib": round(current / count / 1024, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5_000)
    options = parser.parse_args()
    results: dict[str, Any] = {"benchmark": "runtime", "python": sys.version.split()[0]}
    results["cpus"] = os.cpu_count()
    with tempfile.TemporaryDirectory() as directory:
        for name, job in (
            ("add", lambda sim: _add_tasks(options.tasks, sim)),
            ("dispatch_file", lambda sim: _dispatch(options.runs, sim, "file", Path(directory))),
            (
                "dispatch_memory",
                lambda sim: _dispatch(options.runs, sim, "memory", Path(directory)),
            ),
            ("idle", lambda sim: _idle_memory(min(options.tasks, 2_000), sim)),
        ):
            sim = SimulatedClock(START)
            results[name] = trio.run(job, sim, clock=sim.trio_clock)
    results["targets"] = {
        "durable_runs_per_s_file": 3000,
        "idle_task_kib": 8,
    }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
