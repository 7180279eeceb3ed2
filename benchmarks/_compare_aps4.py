"""compare.py's workloads on APScheduler 4.0a6, through its public API only.

Run by ``compare.py --worker`` with the Python of an environment that has
APScheduler 4.0.0a6, Trio and SQLAlchemy (``make compare`` makes
``.venv-aps4``); this module imports nothing of chronolog's. The
``AsyncScheduler`` runs under Trio (through AnyIO), as chronolog does, with
its default event broker (local) and executor (``async``: ``async def`` jobs
run as tasks of the scheduler):

* ``aps4-memory``: ``MemoryDataStore`` (nothing durable);
* ``aps4-sqlite``: ``SQLAlchemyDataStore`` on an SQLite file (SQLite's
  defaults: a rollback journal, ``synchronous=FULL``: durable). This data
  store refuses to run on anything but asyncio, so this system runs on
  asyncio (AnyIO's asyncio backend).

One setting differs from the defaults: tasks may run any number of jobs at
once (``TaskDefaults(max_running_jobs=None)``). In APScheduler 4 a *task* is
a function and a *schedule* says when it runs; every schedule here shares
one function, and the default of one running job per task would run the
whole benchmark one job at a time -- not what a chronolog task (one
schedule) is held to. ``misfire_grace_time`` stays ``None`` (late runs run).
Job bodies are module-level functions: APScheduler 4 names a task by its
function's import path.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import anyio
from apscheduler import AsyncScheduler, JobReleased, TaskDefaults, current_job
from apscheduler.datastores.memory import MemoryDataStore
from apscheduler.datastores.sqlalchemy import SQLAlchemyDataStore
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from _compare_common import (
    IDLE_SECONDS,
    ResidentMemory,
    dispatch_result,
    lateness_result,
    lateness_window,
    memory_result,
    probe_count,
    setup_margin,
)

if TYPE_CHECKING:
    from pathlib import Path

IDLE = timedelta(seconds=IDLE_SECONDS)
#: SQLAlchemy's SQLite driver: "aiosqlite", an async engine (what the data
#: store prefers), or "pysqlite", the standard library's sqlite3, whose
#: statements the data store runs in worker threads. pysqlite was a little
#: faster on small runs, but a burst of 1,000 runs failed with "database is
#: locked" (concurrent transactions from several threads outwait SQLite's
#: 5 s busy timeout), so aiosqlite it is.
SQLITE_DRIVER = os.environ.get("COMPARE_APS4_SQLITE_DRIVER", "aiosqlite")
TIME_LIMIT_S = 600


class Measure:
    """What the job bodies record (they must be module-level functions)."""

    runs = 0
    starts: list[float] = []  # noqa: RUF012 (one measurement per process)
    samples: list[tuple[str, float, float]] = []  # noqa: RUF012
    released = 0
    recorded: float | None = None
    all_recorded: anyio.Event | None = None


async def noop() -> None:
    pass


async def work() -> None:
    Measure.starts.append(time.time())


async def tick() -> None:
    started = time.time()
    job = current_job.get()
    Measure.samples.append((str(job.schedule_id), job.scheduled_fire_time.timestamp(), started))


def on_released(event: JobReleased) -> None:
    Measure.released += 1
    if Measure.released == Measure.runs and Measure.all_recorded is not None:
        Measure.recorded = time.time()
        Measure.all_recorded.set()


def _store(kind: str, directory: Path) -> Any:
    if kind == "memory":
        return MemoryDataStore()
    if kind == "sqlite":
        return SQLAlchemyDataStore(f"sqlite+{SQLITE_DRIVER}:///{directory / 'aps4.sqlite'}")
    raise ValueError(f"no APScheduler 4 data store of kind {kind!r}: memory or sqlite")


async def _add_idle(sched: AsyncScheduler, names: range, prefix: str) -> None:
    for n in names:
        trigger = IntervalTrigger(days=1, start_time=datetime.now(UTC) + IDLE)
        await sched.add_schedule(noop, trigger, id=f"{prefix}-{n}")


def _run(main: Any, kind: str, directory: Path) -> dict[str, Any]:
    async def wrapped() -> dict[str, Any]:
        defaults = TaskDefaults(max_running_jobs=None)
        async with AsyncScheduler(_store(kind, directory), task_defaults=defaults) as sched:
            await sched.start_in_background()
            result: dict[str, Any] = await main(sched)
            await sched.stop()
        return result

    # The SQLAlchemy data store refuses to run on anything but asyncio.
    backend = "asyncio" if kind == "sqlite" else "trio"
    result: dict[str, Any] = anyio.run(wrapped, backend=backend)
    return result


def add(kind: str, directory: Path, params: dict[str, Any]) -> dict[str, Any]:
    count = params["tasks"]

    async def main(sched: AsyncScheduler) -> dict[str, Any]:
        started = time.perf_counter()
        await _add_idle(sched, range(count), "task")
        elapsed = time.perf_counter() - started
        return {"tasks": count, "add_per_s": round(count / elapsed, 1), "add_s": round(elapsed, 3)}

    return _run(main, kind, directory)


def dispatch(kind: str, directory: Path, params: dict[str, Any]) -> dict[str, Any]:
    runs = params["runs"]

    async def main(sched: AsyncScheduler) -> dict[str, Any]:
        Measure.runs, Measure.all_recorded = runs, anyio.Event()
        sched.subscribe(on_released, {JobReleased})
        probe = probe_count(runs)
        started = time.perf_counter()
        await _add_idle(sched, range(probe), "probe")
        rate = probe / (time.perf_counter() - started)
        margin = setup_margin(params, rate)
        due = datetime.now(UTC) + timedelta(seconds=margin)
        for n in range(runs):
            await sched.add_schedule(work, DateTrigger(due), id=f"run-{n}")
        slack = due.timestamp() - time.time()
        with anyio.move_on_after(max(slack, 0) + TIME_LIMIT_S):
            await Measure.all_recorded.wait()
        return dispatch_result(due.timestamp(), Measure.starts, Measure.recorded, runs, slack)

    return _run(main, kind, directory)


def lateness(kind: str, directory: Path, params: dict[str, Any]) -> dict[str, Any]:
    count, seconds, burst = params["tasks"], params["seconds"], params["burst"]

    async def main(sched: AsyncScheduler) -> dict[str, Any]:
        base = datetime.now(UTC) + timedelta(seconds=params["lead_s"])
        for n in range(count):
            anchor = base + (timedelta(0) if burst else timedelta(seconds=n / count))
            trigger = IntervalTrigger(seconds=1, start_time=anchor)
            await sched.add_schedule(tick, trigger, id=f"tick-{n}")
        window_start = lateness_window(base.timestamp(), time.time(), params["warmup_s"])
        await anyio.sleep(max(0.0, window_start + seconds + params["drain_s"] - time.time()))
        return lateness_result(
            list(Measure.samples), tasks=count, window_start=window_start, seconds=seconds
        ) | {"burst": burst}

    return _run(main, kind, directory)


def idle_memory(kind: str, directory: Path, params: dict[str, Any]) -> dict[str, Any]:
    count = params["tasks"]
    memory = ResidentMemory()

    async def main(sched: AsyncScheduler) -> dict[str, Any]:
        memory.start()
        started = time.perf_counter()
        await _add_idle(sched, range(count), "idle")
        elapsed = time.perf_counter() - started
        await anyio.sleep(0.5)
        held = memory.held()
        return memory_result(held, count, elapsed)

    return _run(main, kind, directory)


WORKLOADS = {
    "add": add,
    "dispatch": dispatch,
    "lateness_spread": lateness,
    "lateness_burst": lateness,
    "idle_memory_small": idle_memory,
    "idle_memory_large": idle_memory,
}


def run(workload: str, system: str, directory: Path, params: dict[str, Any]) -> dict[str, Any]:
    """One measurement of ``workload`` on ``system`` (``aps4-memory``/``aps4-sqlite``),
    its files in ``directory``."""
    return WORKLOADS[workload](system.removeprefix("aps4-"), directory, params)
