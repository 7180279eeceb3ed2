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
* ``open``: a log of ``--open-events`` events (1,000,000 by default; try
  10,000,000) opened for writing and replayed as ``open_scheduler`` does
  (``open()`` then ``load_state()``), without a snapshot and with one at its
  end, next to a log of 1,000 events with a snapshot; then
  ``compaction_ms``, the time of ``compact_log`` keeping the newest 1% of
  the records, and the open time after it. The target: with a snapshot,
  under 100 ms whatever the history length (median of ``--repeat`` opens).

The machine may be shared, so compare the two logs within one run, not
across runs. Usage: python benchmarks/durability.py [--each N] [--runs N] [--repeat N]
[--open-events N] [--skip-appends]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import trio

from chronolog import (
    Completed,
    Cron,
    EventLog,
    FileLog,
    Scheduled,
    SQLiteLog,
    Started,
    TaskDefined,
    replay,
)
from chronolog._clock import SystemClock
from chronolog._compaction import compact_log
from chronolog._events import encode_header
from chronolog._writer import LogWriter
from chronolog.log.file import seal_records
from chronolog.testing import SimulatedClock
from runtime import dispatch_burst  # benchmarks/ is on sys.path when run as a script

if TYPE_CHECKING:
    from collections.abc import Iterator

    from chronolog import Event

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
    return await dispatch_burst(_make_log(kind, directory / f"dispatch-{count}"), count, sim)


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


def _history(count: int, tasks: int = 20) -> Iterator[Event]:
    """``count`` records of runs of ``tasks`` minutely tasks, numbered from seq 1."""
    seq = 0
    replace = msgspec.structs.replace
    names = [f"task-{n}" for n in range(tasks)]
    for name in names:
        seq += 1
        yield TaskDefined(seq=seq, task=name, at=START, trigger=Cron("* * * * *"), target="j:w")
    n = 0
    while True:
        name = names[n % tasks]
        due = START + timedelta(minutes=n // tasks)
        occurrence = f"{name}@{due.isoformat()}"
        for event in (
            Scheduled(task=name, at=due, occurrence=occurrence, due=due),
            Started(task=name, at=due, occurrence=occurrence, attempt=1, node="n1"),
            Completed(task=name, at=due, occurrence=occurrence, attempt=1, result=n % 1000),
        ):
            seq += 1
            if seq > count:
                return
            yield replace(event, seq=seq)
        n += 1


def _write_history(kind: str, stem: Path, count: int) -> tuple[EventLog, list[Event]]:
    """A log of ``count`` records, written straight to disk (the fast way in)."""
    chunk: list[Event] = []
    last: list[Event] = []
    if kind == "file":
        # The current format: each record with its checksum (and a batch of its own).
        path = stem.with_suffix(".jsonl")
        running = 0
        with path.open("wb") as file:
            file.write(encode_header(checksums=True))
            for record in _history(count):
                chunk.append(record)
                if len(chunk) == 50_000:
                    data, running = seal_records(chunk, running)
                    file.write(data)
                    last, chunk = chunk, []
            data, running = seal_records(chunk, running)
            file.write(data)
        return FileLog(path), (last + chunk)[-1:]

    async def fill(log: SQLiteLog) -> None:
        nonlocal chunk, last
        async with log:
            for record in _history(count):
                chunk.append(msgspec.structs.replace(record, seq=0))
                if len(chunk) == 50_000:
                    last, chunk = await log.append(chunk), []
            if chunk:
                last = await log.append(chunk)

    log = SQLiteLog(stem.with_suffix(".sqlite"), synchronous="normal")
    trio.run(fill, log)
    return SQLiteLog(stem.with_suffix(".sqlite")), last[-1:]


def _reopen(log: EventLog) -> EventLog:
    return FileLog(log.path) if isinstance(log, FileLog) else SQLiteLog(log.path)  # type: ignore[attr-defined]


async def _open_ms(log: EventLog) -> tuple[float, int]:
    """Open for writing and load the state, as open_scheduler does; (ms, state seq)."""
    started = time.perf_counter()
    async with log:
        state = await trio.to_thread.run_sync(log.load_state)
    return (time.perf_counter() - started) * 1000, state.seq


def _median_open_ms(log: EventLog, repeat: int) -> tuple[float, int]:
    samples = [trio.run(_open_ms, _reopen(log)) for _ in range(repeat)]
    return round(statistics.median(ms for ms, _ in samples), 1), samples[-1][1]


async def _save_snapshot(log: EventLog) -> None:
    async with log:
        state = await trio.to_thread.run_sync(log.load_state)
        await log.save_snapshot(state)


async def _compact(log: EventLog, now: datetime) -> tuple[float, int]:
    async with log:
        started = time.perf_counter()
        compaction = await compact_log(log, keep=timedelta(0), now=now)
        return (time.perf_counter() - started) * 1000, compaction.kept


def _opening(kind: str, directory: Path, count: int, repeat: int) -> dict[str, Any]:
    started = time.perf_counter()
    log, last = _write_history(kind, directory / f"history-{kind}", count)
    write_s = time.perf_counter() - started
    without_ms, seq = _median_open_ms(log, max(1, repeat // 2))
    trio.run(_save_snapshot, _reopen(log))
    with_ms, seq_with = _median_open_ms(log, repeat)
    assert seq == seq_with == last[0].seq
    small, _ = _write_history(kind, directory / f"small-{kind}", 1_000)
    trio.run(_save_snapshot, _reopen(small))
    small_ms, _ = _median_open_ms(small, repeat)
    # Keep the newest 1%: everything recorded from that record's time on.
    cut_at = next(record.at for record in _history(count) if record.seq >= count * 0.99)
    compaction_ms, kept = trio.run(_compact, _reopen(log), cut_at)
    after_ms, seq_after = _median_open_ms(log, repeat)
    assert seq_after == seq
    size = log.path.stat().st_size  # type: ignore[attr-defined]
    return {
        "events": count,
        "write_s": round(write_s, 1),
        "open_without_snapshot_ms": without_ms,
        "open_with_snapshot_ms": with_ms,
        "open_small_log_with_snapshot_ms": small_ms,
        "compaction_ms": round(compaction_ms, 1),
        "kept_after_compaction": kept,
        "open_after_compaction_ms": after_ms,
        "bytes_after_compaction": size,
    }


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
    parser.add_argument(
        "--open-events", type=int, default=1_000_000, help="events of the log the open case opens"
    )
    parser.add_argument(
        "--skip-appends", action="store_true", help="only the open and compaction case"
    )
    options = parser.parse_args()
    results: dict[str, Any] = {"benchmark": "durability", "python": sys.version.split()[0]}
    results["cpus"] = os.cpu_count()
    with tempfile.TemporaryDirectory() as name:
        directory = Path(name)
        results["open"] = {
            kind: _opening(kind, directory, options.open_events, options.repeat) for kind in KINDS
        }
        results["open_targets"] = {"open_with_snapshot_ms_under": 100}
        if options.skip_appends:
            print(json.dumps(results, indent=2))
            return
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
