"""compare.py's workloads on APScheduler 3.11, through its public API only.

Run by ``compare.py --worker`` with the Python of an environment that has
APScheduler 3 (``make compare`` makes ``.venv-aps3``); this module imports
nothing of chronolog's. Jobs live in the in-memory job store (APScheduler
3's default; nothing is durable), with ``misfire_grace_time=None`` so a late
run is run, never dropped, as chronolog does while it is up (coalescing,
the default, stays on).

Two schedulers:

* ``aps3-memory``: ``AsyncIOScheduler``; jobs are ``async def`` functions,
  which its default executor runs as tasks of the event loop (no threads).
* ``aps3-thread``: ``BackgroundScheduler``, the scheduler most
  APScheduler 3 users run; jobs are plain functions, run by its default
  executor, a pool of 10 threads.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from apscheduler.events import EVENT_JOB_EXECUTED
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.schedulers.background import BackgroundScheduler

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
TIME_LIMIT_S = 600
JOB_DEFAULTS = {"misfire_grace_time": None}


class Jobs:
    """The job bodies of one measurement, as the scheduler kind needs them."""

    def __init__(self, kind: str, runs: int = 0) -> None:
        self.kind = kind
        self.runs = runs
        self.starts: list[float] = []
        self.samples: list[tuple[str, float, float]] = []
        self.all_ran = threading.Event()
        self.recorded: float | None = None
        self.all_recorded = threading.Event()
        self._executed = 0
        self._lock = threading.Lock()

    def scheduler(self) -> AsyncIOScheduler | BackgroundScheduler:
        if self.kind == "memory":
            return AsyncIOScheduler(job_defaults=JOB_DEFAULTS)
        return BackgroundScheduler(job_defaults=JOB_DEFAULTS)

    def _work(self) -> None:
        self.starts.append(time.time())
        if len(self.starts) == self.runs:
            self.all_ran.set()

    def _tick(self, task: str, anchor: float) -> None:
        # APScheduler 3 does not tell a job its scheduled time: every task is
        # due on the grid anchor + k seconds, and runs less than a second late.
        started = time.time()
        self.samples.append((task, anchor + math.floor(started - anchor), started))

    def body(self, name: str) -> Any:
        sync = getattr(self, f"_{name}")
        if self.kind != "memory":
            return sync

        async def run(*args: Any) -> None:
            sync(*args)

        return run

    def on_executed(self, event: object) -> None:
        with self._lock:
            self._executed += 1
            if self._executed == self.runs:
                self.recorded = time.time()
                self.all_recorded.set()


async def noop() -> None:
    pass


def noop_sync() -> None:
    pass


def _idle_noop(kind: str) -> Any:
    return noop if kind == "memory" else noop_sync


def _add_idle(sched: Any, kind: str, names: range, prefix: str) -> None:
    func = _idle_noop(kind)
    for n in names:
        start = datetime.now(UTC) + IDLE
        sched.add_job(func, "interval", days=1, start_date=start, id=f"{prefix}-{n}")


def _run(main: Any, kind: str) -> dict[str, Any]:
    async def wrapped() -> dict[str, Any]:
        jobs = Jobs(kind)
        sched = jobs.scheduler()
        sched.start()
        try:
            result: dict[str, Any] = await main(sched, jobs)
            return result
        finally:
            sched.shutdown(wait=False)
            await asyncio.sleep(0)

    return asyncio.run(wrapped())


def add(kind: str, directory: Path, params: dict[str, Any]) -> dict[str, Any]:
    count = params["tasks"]

    async def main(sched: Any, jobs: Jobs) -> dict[str, Any]:
        started = time.perf_counter()
        _add_idle(sched, kind, range(count), "task")
        elapsed = time.perf_counter() - started
        return {"tasks": count, "add_per_s": round(count / elapsed, 1), "add_s": round(elapsed, 3)}

    return _run(main, kind)


def dispatch(kind: str, directory: Path, params: dict[str, Any]) -> dict[str, Any]:
    runs = params["runs"]

    async def main(sched: Any, jobs: Jobs) -> dict[str, Any]:
        jobs.runs = runs
        sched.add_listener(jobs.on_executed, EVENT_JOB_EXECUTED)
        probe = probe_count(runs)
        started = time.perf_counter()
        _add_idle(sched, kind, range(probe), "probe")
        rate = probe / (time.perf_counter() - started)
        margin = setup_margin(params, rate)
        due = datetime.now(UTC) + timedelta(seconds=margin)
        work = jobs.body("work")
        for n in range(runs):
            sched.add_job(work, "date", run_date=due, id=f"run-{n}")
        slack = due.timestamp() - time.time()
        await asyncio.to_thread(jobs.all_recorded.wait, max(slack, 0) + TIME_LIMIT_S)
        return dispatch_result(due.timestamp(), jobs.starts, jobs.recorded, runs, slack)

    return _run(main, kind)


def lateness(kind: str, directory: Path, params: dict[str, Any]) -> dict[str, Any]:
    count, seconds, burst = params["tasks"], params["seconds"], params["burst"]

    async def main(sched: Any, jobs: Jobs) -> dict[str, Any]:
        base = datetime.now(UTC) + timedelta(seconds=params["lead_s"])
        tick = jobs.body("tick")
        for n in range(count):
            anchor = base + (timedelta(0) if burst else timedelta(seconds=n / count))
            name = f"tick-{n}"
            sched.add_job(
                tick,
                "interval",
                seconds=1,
                start_date=anchor,
                args=[name, anchor.timestamp()],
                id=name,
            )
        window_start = lateness_window(base.timestamp(), time.time(), params["warmup_s"])
        await asyncio.sleep(max(0.0, window_start + seconds + params["drain_s"] - time.time()))
        return lateness_result(
            list(jobs.samples), tasks=count, window_start=window_start, seconds=seconds
        ) | {"burst": burst}

    return _run(main, kind)


def idle_memory(kind: str, directory: Path, params: dict[str, Any]) -> dict[str, Any]:
    count = params["tasks"]
    memory = ResidentMemory()

    async def main(sched: Any, jobs: Jobs) -> dict[str, Any]:
        memory.start()
        started = time.perf_counter()
        _add_idle(sched, kind, range(count), "idle")
        elapsed = time.perf_counter() - started
        await asyncio.sleep(0.5)
        assert len(sched.get_jobs()) == count
        held = memory.held()
        return memory_result(held, count, elapsed)

    return _run(main, kind)


WORKLOADS = {
    "add": add,
    "dispatch": dispatch,
    "lateness_spread": lateness,
    "lateness_burst": lateness,
    "idle_memory_small": idle_memory,
    "idle_memory_large": idle_memory,
}


def run(workload: str, system: str, directory: Path, params: dict[str, Any]) -> dict[str, Any]:
    """One measurement of ``workload`` on ``system`` (``aps3-memory``/``aps3-thread``)."""
    return WORKLOADS[workload](system.removeprefix("aps3-"), directory, params)
