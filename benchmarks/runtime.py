"""Runtime: adding tasks, dispatching due runs, lateness, group commit. Prints JSON.

Every case runs in a fresh interpreter, so each reports its own peak RSS and
no case inherits another's heap (or garbage collector state). Cases:

* ``add``: ``add`` of N tasks (each a TaskDefined + an actor), tasks/s.
* ``dispatch_file`` / ``dispatch_memory``: N one-off tasks all due at one
  instant, run to completion (a Started and a Completed each; their
  Scheduled was written by ``add``), durable runs/s. Due times come from a simulated
  clock, so this measures chronolog's own work (planning, claiming, writing,
  folding), not waiting; the FileLog case fsyncs for real. The median of
  ``--repeat`` runs is reported, with every run's figure beside it.
* ``dispatch_file_gc_tuned``: the FileLog burst again with the cycle
  collector's thresholds raised as docs/how-to/run-at-high-rates.md suggests,
  to show what the collector costs.
* ``idle``: memory per idle task (tracemalloc), every actor asleep.
* ``lateness``: M tasks each firing every second, their phases spread over
  the second (M runs/s in all), on the *system* clock and a FileLog for
  ``--seconds``: how late each run's target starts after its due time
  (p50/p99/max), and how many runs were missed.
* ``lateness_gc_tuned``: the same with the cycle collector's thresholds
  raised (what ``chronolog run`` does for its own process).
* ``appends_1`` / ``appends_10`` / ``appends_100``: that many concurrent
  actors each appending one-event batches through the scheduler's LogWriter
  to a FileLog: durable appends/s and events per write (group commit at work).

Usage: python benchmarks/runtime.py [--tasks N] [--runs N] [--repeat N]
       [--lateness-tasks M] [--seconds S] [--case NAME]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import trio

from chronolog import At, Cron, EventLog, Every, FileLog, MemoryLog, open_scheduler
from chronolog._clock import SystemClock
from chronolog._events import TaskPaused
from chronolog._projection import State
from chronolog._writer import LogWriter
from chronolog.testing import SimulatedClock

START = datetime(2026, 1, 1, tzinfo=UTC)
#: The thresholds docs/how-to/run-at-high-rates.md suggests for busy schedulers
#: (and `chronolog run` sets for its own process: SERVICE_GC_THRESHOLDS).
TUNED_GC_THRESHOLDS = (50_000, 20, 100)


async def noop() -> None:
    pass


def _simulated(job: Any) -> dict[str, Any]:
    sim = SimulatedClock(START)
    result: dict[str, Any] = trio.run(job, sim, clock=sim.trio_clock)
    return result


def case_add(options: argparse.Namespace) -> dict[str, Any]:
    async def job(sim: SimulatedClock) -> dict[str, Any]:
        async with open_scheduler(MemoryLog(), clock=sim) as sched:
            started = time.perf_counter()
            for n in range(options.tasks):
                await sched.add(f"task-{n}", Cron("0 3 * * *"), noop)
            elapsed = time.perf_counter() - started
        return {"tasks": options.tasks, "add_tasks_per_s": round(options.tasks / elapsed)}

    return _simulated(job)


async def dispatch_burst(log: EventLog, count: int, sim: SimulatedClock) -> dict[str, Any]:
    """``count`` one-off tasks all due at one instant on ``log``, run to completion.

    Durable runs per second of real time, and how many records shared each
    write (group commit). Also used by benchmarks/durability.py.
    """
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
        # Done when every run has ended and its outcome is recorded.
        while finished < count or sched.state.seq - records_before < 2 * count:
            await sim.advance(timedelta(milliseconds=100))
        elapsed = time.perf_counter() - started
        stats = sched.statistics()
    writes = stats.batches - writes_before
    return {
        "runs": count,
        "durable_runs_per_s": round(count / elapsed),
        "writes": writes,
        "records_per_write": round((stats.log_seq - records_before) / max(writes, 1), 1),
    }


def _dispatch(options: argparse.Namespace, log_kind: str) -> dict[str, Any]:
    async def job(sim: SimulatedClock) -> dict[str, Any]:
        directory = Path(tempfile.mkdtemp())
        log = FileLog(directory / "dispatch.jsonl") if log_kind == "file" else MemoryLog()
        return await dispatch_burst(log, options.runs, sim)

    return _simulated(job)


def case_dispatch_file(options: argparse.Namespace) -> dict[str, Any]:
    return _dispatch(options, "file")


def case_dispatch_memory(options: argparse.Namespace) -> dict[str, Any]:
    return _dispatch(options, "memory")


def case_dispatch_file_gc_tuned(options: argparse.Namespace) -> dict[str, Any]:
    gc.set_threshold(*TUNED_GC_THRESHOLDS)
    return {"gc_thresholds": list(TUNED_GC_THRESHOLDS), **_dispatch(options, "file")}


def case_idle(options: argparse.Namespace) -> dict[str, Any]:
    count = min(options.tasks, 2_000)

    async def job(sim: SimulatedClock) -> dict[str, Any]:
        tracemalloc.start()
        async with open_scheduler(MemoryLog(), clock=sim) as sched:
            for n in range(count):
                await sched.add(f"idle-{n}", Cron("0 3 1 1 *"), noop)
            await trio.testing.wait_all_tasks_blocked()
            current, _ = tracemalloc.get_traced_memory()
            tracemalloc.stop()
        return {"idle_tasks": count, "idle_task_kib": round(current / count / 1024, 2)}

    return _simulated(job)


def case_lateness(options: argparse.Namespace) -> dict[str, Any]:
    count, seconds = options.lateness_tasks, options.seconds
    period = timedelta(seconds=1)

    async def job() -> dict[str, Any]:
        directory = Path(tempfile.mkdtemp())
        clock = SystemClock()
        base = clock.now().replace(microsecond=0) + timedelta(seconds=2)
        # Measure from the first whole second after every task is added.
        window_start = base + timedelta(seconds=2)
        window_end = window_start + timedelta(seconds=seconds)
        lateness: list[float] = []
        runs_per_task = [0] * count

        def target(n: int, anchor: datetime) -> Any:
            async def run() -> None:
                now = datetime.now(UTC)
                due = anchor + period * ((now - anchor) // period)
                if window_start <= due < window_end:
                    lateness.append((now - due).total_seconds())
                    runs_per_task[n] += 1

            return run

        async with open_scheduler(directory / "lateness.jsonl", clock=clock) as sched:
            for n in range(count):
                anchor = base + timedelta(microseconds=n * 1_000_000 // count)
                await sched.add(f"tick-{n}", Every(period, anchor=anchor), target(n, anchor))
            await clock.sleep_until(window_end + timedelta(milliseconds=500))
            stats = sched.statistics()
        lateness.sort()

        def percentile(p: float) -> float:
            return round(lateness[min(int(p * len(lateness)), len(lateness) - 1)] * 1000, 2)

        return {
            "tasks": count,
            "runs_per_s": count,
            "seconds": seconds,
            "runs": len(lateness),
            "missed_runs": count * seconds - sum(runs_per_task),
            "lateness_ms": {"p50": percentile(0.5), "p99": percentile(0.99), "max": percentile(1)},
            "records_per_write": round(stats.log_seq / max(stats.batches, 1), 1),
        }

    result: dict[str, Any] = trio.run(job)
    return result


def case_lateness_gc_tuned(options: argparse.Namespace) -> dict[str, Any]:
    """Lateness with the thresholds `chronolog run` sets for its own process."""
    gc.set_threshold(*TUNED_GC_THRESHOLDS)
    return {"gc_thresholds": list(TUNED_GC_THRESHOLDS), **case_lateness(options)}


def _appends(actors: int, appends: int) -> dict[str, Any]:
    per_actor = max(appends // actors, 1)

    async def job() -> dict[str, Any]:
        clock = SystemClock()
        path = Path(tempfile.mkdtemp()) / "appends.jsonl"
        async with FileLog(path) as log:
            writer = LogWriter(log, State(), clock=clock)
            async with trio.open_nursery() as nursery:
                await nursery.start(writer.run)
                started = time.perf_counter()
                async with trio.open_nursery() as actors_nursery:
                    for n in range(actors):
                        actors_nursery.start_soon(_append_loop, writer, f"actor-{n}", per_actor)
                elapsed = time.perf_counter() - started
                writer.close()
            stats = writer.statistics()
        total = per_actor * actors
        return {
            "actors": actors,
            "appends": total,
            "durable_appends_per_s": round(total / elapsed),
            "events_per_write": round(stats.records / max(stats.batches, 1), 1),
        }

    result: dict[str, Any] = trio.run(job)
    return result


async def _append_loop(writer: LogWriter, task: str, count: int) -> None:
    # The fold is total: a record for a task nobody defined changes only the
    # state's seq, so the loop needs no set-up. One event per append.
    for _ in range(count):
        await writer.append([TaskPaused(task=task, at=START)])


def case_appends_1(options: argparse.Namespace) -> dict[str, Any]:
    return _appends(1, options.appends)


def case_appends_10(options: argparse.Namespace) -> dict[str, Any]:
    return _appends(10, options.appends)


def case_appends_100(options: argparse.Namespace) -> dict[str, Any]:
    return _appends(100, options.appends)


CASES = {
    "add": case_add,
    "dispatch_file": case_dispatch_file,
    "dispatch_memory": case_dispatch_memory,
    "dispatch_file_gc_tuned": case_dispatch_file_gc_tuned,
    "idle": case_idle,
    "lateness": case_lateness,
    "lateness_gc_tuned": case_lateness_gc_tuned,
    "appends_1": case_appends_1,
    "appends_10": case_appends_10,
    "appends_100": case_appends_100,
}
#: Cases whose figure is noisy enough to report as a median of repeats.
REPEATED = {"dispatch_file", "dispatch_memory", "dispatch_file_gc_tuned"}


def _run_case(name: str, argv: list[str]) -> dict[str, Any]:
    """Run one case in a fresh interpreter; its JSON result."""
    output = subprocess.run(
        [sys.executable, __file__, *argv, "--case", name],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, Any] = json.loads(output)
    return result


def _median_of(runs: list[dict[str, Any]], key: str) -> dict[str, Any]:
    ordered = sorted(runs, key=lambda run: run[key])
    median = dict(ordered[len(ordered) // 2])
    median[f"{key}_all"] = [run[key] for run in runs]
    median["peak_rss_mib"] = max(run["peak_rss_mib"] for run in runs)
    return median


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--lateness-tasks", type=int, default=1_000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--appends", type=int, default=3_000)
    parser.add_argument("--case", choices=sorted(CASES))
    options = parser.parse_args()
    if options.case is not None:
        result = CASES[options.case](options)
        result["peak_rss_mib"] = round(
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
        )
        print(json.dumps(result))
        return
    argv = sys.argv[1:]
    results: dict[str, Any] = {
        "benchmark": "runtime",
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
    }
    for name in CASES:
        if name in REPEATED:
            runs = [_run_case(name, argv) for _ in range(options.repeat)]
            results[name] = _median_of(runs, "durable_runs_per_s")
        else:
            results[name] = _run_case(name, argv)
    file_rate = results["dispatch_file"]["durable_runs_per_s"]
    results["ratios"] = {
        "file_vs_memory_dispatch": round(
            file_rate / results["dispatch_memory"]["durable_runs_per_s"], 2
        ),
        "gc_tuned_vs_default_file_dispatch": round(
            results["dispatch_file_gc_tuned"]["durable_runs_per_s"] / file_rate, 2
        ),
        "events_per_write_100_vs_1_actor": round(
            results["appends_100"]["events_per_write"] / results["appends_1"]["events_per_write"],
            1,
        ),
    }
    results["targets"] = {
        "durable_runs_per_s_file": 3000,
        "idle_task_kib": 8,
        "lateness_p99_ms": 20,
        "missed_runs": 0,
    }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
