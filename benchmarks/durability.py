"""Durable throughput of FileLog and SQLiteLog, measured side by side. Prints JSON.

Both logs are real files in a temporary directory, with their default (full)
durability: every write is fsynced before the append returns. Cases:

* ``appends``: 1, 10 and 100 concurrent submitters, each appending
  single-event batches in a loop (``--each`` times) through one `LogWriter`,
  whose group commit turns whatever is waiting into one ``log.append`` (one
  transaction or one write, and one fsync). ``appends_per_s`` is durable
  appends per second, the median of ``--repeat`` runs (all in
  ``samples``); ``events_per_write`` shows how many appends each fsync
  carried.
* ``dispatch``: a scheduler running N one-off tasks all due at one instant
  (Scheduled, Started, Completed each), the method of
  ``benchmarks/runtime.py``: ``durable_runs_per_s``.
* ``ratio_sqlite_to_file``: each SQLiteLog figure over the FileLog one from
  this same run (the target: SQLiteLog within 2x of FileLog, a ratio >= 0.5).

The machine may be shared, so compare the two logs within one run, not
across runs. Usage: python benchmarks/durability.py [--each N] [--runs N] [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import trio

from chronolog import At, EventLog, FileLog, Scheduled, SQLiteLog, open_scheduler, replay
from chronolog._clock import SystemClock
from chronolog._writer import LogWriter
from chronolog.testing import SimulatedClock

START = datetime(2026, 1, 1, tzinfo=UTC)
CONCURRENCY = (1, 10, 100)
KINDS = ("file", "sqlite")


def _make_log(kind: str, stem: Path) -> EventLog:
    if kind == "file":
        return FileLog(stem.with_suffix(".jsonl"))
    return SQLiteLog(stem.with_suffix(".sqlite"))


async def _appends(
    kind: str, directory: Path, submitters: int, each: int, attempt: int
) -> dict[str, Any]:
    log = _make_log(kind, directory / f"appends-{submitters}-{attempt}")
    async with log:
        writer = LogWriter(log, replay(log.read()), clock=SystemClock())

        async def submit(n: int) -> None:
            for i in range(each):
                event = Scheduled(
                    task=f"bench-{n}", at=START, occurrence=f"bench-{n}@{i}", due=START
                )
                await writer.append([event])

        async with trio.open_nursery() as nursery:
            await nursery.start(writer.run)
            started = time.perf_counter()
            async with trio.open_nursery() as submitting:
                for n in range(submitters):
                    submitting.start_soon(submit, n)
            elapsed = time.perf_counter() - started
            writer.close()
    stats = writer.statistics()
    appends = each * submitters
    return {
        "submitters": submitters,
        "appends": appends,
        "appends_per_s": round(appends / elapsed),
        "writes": stats.batches,
        "events_per_write": round(stats.records / max(stats.batches, 1), 1),
    }


async def _dispatch(kind: str, directory: Path, count: int, sim: SimulatedClock) -> dict[str, Any]:
    log = _make_log(kind, directory / f"dispatch-{count}")
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
        "runs": count,
        "durable_runs_per_s": round(count / elapsed),
        "writes": writes,
        "records_per_write": round((stats.log_seq - records_before) / max(writes, 1), 1),
    }


def _fsync_ms(directory: Path, count: int = 50) -> float:
    """Median time of one small write + fsync here: what every durable write pays."""
    path = directory / "fsync-probe"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    samples = []
    try:
        for _ in range(count):
            started = time.perf_counter()
            os.write(fd, b"x" * 200)
            os.fsync(fd)
            samples.append(time.perf_counter() - started)
    finally:
        os.close(fd)
    return round(sorted(samples)[count // 2] * 1000, 3)


def _median(cases: list[dict[str, Any]]) -> dict[str, Any]:
    ranked = sorted(cases, key=lambda case: case["appends_per_s"])
    median = dict(ranked[len(ranked) // 2])
    median["samples"] = [case["appends_per_s"] for case in cases]
    return median


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--each", type=int, default=500, help="appends per submitter")
    parser.add_argument("--runs", type=int, default=2_000, help="runs per dispatch case")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each append case")
    options = parser.parse_args()
    results: dict[str, Any] = {"benchmark": "durability", "python": sys.version.split()[0]}
    results["cpus"] = os.cpu_count()
    with tempfile.TemporaryDirectory() as name:
        directory = Path(name)
        results["fsync_ms_median"] = _fsync_ms(directory)
        appends: dict[str, list[dict[str, Any]]] = {kind: [] for kind in KINDS}
        for submitters in CONCURRENCY:
            samples: dict[str, list[dict[str, Any]]] = {kind: [] for kind in KINDS}
            for attempt in range(options.repeat):
                # Alternate the order so neither log always runs right after the other.
                for kind in KINDS if attempt % 2 else reversed(KINDS):
                    samples[kind].append(
                        trio.run(_appends, kind, directory, submitters, options.each, attempt)
                    )
            for kind in KINDS:
                appends[kind].append(_median(samples[kind]))
        dispatch: dict[str, dict[str, Any]] = {}
        for kind in KINDS:
            sim = SimulatedClock(START)
            dispatch[kind] = trio.run(
                _dispatch, kind, directory, options.runs, sim, clock=sim.trio_clock
            )
    results["appends"] = appends
    results["dispatch"] = dispatch
    results["ratio_sqlite_to_file"] = {
        **{
            f"appends_per_s_{file_case['submitters']}": round(
                sqlite_case["appends_per_s"] / file_case["appends_per_s"], 2
            )
            for file_case, sqlite_case in zip(appends["file"], appends["sqlite"], strict=True)
        },
        "durable_runs_per_s": round(
            dispatch["sqlite"]["durable_runs_per_s"] / dispatch["file"]["durable_runs_per_s"], 2
        ),
    }
    results["targets"] = {"ratio_sqlite_to_file_at_least": 0.5}
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
