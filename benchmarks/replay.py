"""Replay speed and memory on large file logs, with and without checksums. Prints JSON.

Measured in one run, so the ratios hold on a noisy shared machine:

* ``decode_per_s``: raw msgspec decoding of every line of a 1,000,000-event
  file log in a bare loop (the file already read into memory);
* ``replay_per_s``: ``replay(FileLog(path).read())`` of that log as format
  version 1 wrote it (no checksums), i.e. reading the file, decoding and
  folding, end to end; ``replay_to_decode``: its ratio to decoding, the
  median over alternating rounds (target: >= 0.5);
* the cost of the log vouching for itself (issue 14), each the median over
  the rounds of the ratio to the same round's replay of the version 1 log:
  ``checksums_cost`` -- the same replay of the log in format version 3, whose
  records carry the checksum chain that reading checks;
  ``strict_open_cost`` -- what opening for writing does now,
  ``load_state()`` (checksums, and the strict fold that refuses a log that
  breaks a rule), against what it did before, ``load_state()`` of the
  version 1 log without strictness. Target for both: at most 0.10.
  ``*_cost_best`` compares the fastest round of each side instead: on a
  shared machine the least disturbed measure of what the work itself costs;
* the garbage collector runs with the thresholds ``chronolog run`` sets
  (``gc_thresholds``), after a full collection before each measured side:
  with the default thresholds, when a full collection falls varies the
  time of one side by up to 2x, which hides the differences measured here;
* ``peak_rss_mib``: peak resident memory of a separate process that replays
  a log of 1,000,000 runs of one task (3,000,000 events), and how much of it
  the replay added over the interpreter with chronolog imported (target:
  under 100 MiB).

Usage: python benchmarks/replay.py [--events N] [--runs N] [--rounds N] [--dir DIR]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from chronolog._events import (
    Completed,
    Event,
    Failed,
    Scheduled,
    Started,
    TaskDefined,
    decode_event,
    encode_header,
    encode_lines,
)
from chronolog._ids import time_occurrence
from chronolog._projection import replay
from chronolog._triggers import Cron
from chronolog.cli.run import SERVICE_GC_THRESHOLDS
from chronolog.log import FileLog
from chronolog.log.file import seal_records

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from chronolog._projection import State

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def runs(tasks: int, count: int) -> Iterator[Event]:
    """A realistic mix: runs of several tasks, a failure with retry now and then."""
    seq = 0
    replace = msgspec.structs.replace

    def numbered(event: Event) -> Event:
        nonlocal seq
        seq += 1
        return replace(event, seq=seq)

    names = [f"task-{n}" for n in range(tasks)]
    for name in names:
        yield numbered(
            TaskDefined(task=name, at=T0, trigger=Cron("* * * * *"), target="jobs:work")
        )
    for n in range(count):
        name = names[n % tasks]
        due = T0 + timedelta(minutes=n // tasks)
        occurrence = time_occurrence(name, due)
        yield numbered(Scheduled(task=name, at=due, occurrence=occurrence, due=due))
        yield numbered(Started(task=name, at=due, occurrence=occurrence, attempt=1, node="n1"))
        if n % 50 == 49:
            retry_at = due + timedelta(seconds=5)
            yield numbered(
                Failed(
                    task=name,
                    at=due,
                    occurrence=occurrence,
                    attempt=1,
                    duration=timedelta(seconds=1),
                    error="connection reset",
                    error_type="OSError",
                    retry_at=retry_at,
                )
            )
            yield numbered(
                Started(task=name, at=retry_at, occurrence=occurrence, attempt=2, node="n1")
            )
            attempt = 2
        else:
            attempt = 1
        yield numbered(
            Completed(
                task=name,
                at=due,
                occurrence=occurrence,
                attempt=attempt,
                duration=timedelta(milliseconds=250),
                result={"rows": n % 1000},
            )
        )


def write_log(path: Path, events: Iterator[Event], limit: int, *, checksums: bool = False) -> int:
    """Write a FileLog-format file directly; returns events written.

    Format version 1 (header + JSON Lines) by default; with ``checksums``,
    version 3: each record a batch of its own, with its checksum.
    """
    written = 0
    running = 0

    def encode(batch: list[Event]) -> bytes:
        nonlocal running
        if not checksums:
            return encode_lines(batch)
        data, running = seal_records(batch, running)
        return data

    with path.open("wb") as file:
        file.write(encode_header(checksums=checksums))
        batch: list[Event] = []
        for event in events:
            batch.append(event)
            written += 1
            if len(batch) == 10_000:
                file.write(encode(batch))
                batch.clear()
            if written == limit:
                break
        file.write(encode(batch))
    return written


def _timed(action: Callable[[], State]) -> tuple[float, State]:
    gc.collect()
    started = time.perf_counter()
    state = action()
    return time.perf_counter() - started, state


def measure_rates(plain: Path, sealed: Path, rounds: int) -> dict[str, Any]:
    """Decode and replay rates, alternated over ``rounds``; the median ratios.

    Shared machines speed up and slow down by tens of percent from one
    second to the next, so each round measures every side back to back and
    the ratios reported are the medians of the rounds' ratios.
    """
    lines = plain.read_bytes().splitlines()[1:]
    thresholds = gc.get_threshold()
    gc.set_threshold(*SERVICE_GC_THRESHOLDS)
    try:
        return _measure_rates(lines, plain, sealed, rounds)
    finally:
        gc.set_threshold(*thresholds)


def _measure_rates(lines: list[bytes], plain: Path, sealed: Path, rounds: int) -> dict[str, Any]:
    seconds: dict[str, list[float]] = {
        "decode": [],
        "replay": [],
        "replay_checksummed": [],
        "open_before": [],
        "open_strict": [],
    }
    states: dict[str, State] = {}
    sides: dict[str, Callable[[], State]] = {
        "replay": lambda: replay(FileLog(plain).read()),
        "replay_checksummed": lambda: replay(FileLog(sealed).read()),
        "open_before": lambda: FileLog(plain).load_state(strict=False),
        "open_strict": lambda: FileLog(sealed).load_state(),
    }
    for _ in range(rounds):
        gc.collect()
        started = time.perf_counter()
        for line in lines:
            decode_event(line)
        seconds["decode"].append(time.perf_counter() - started)
        for name, action in sides.items():
            elapsed, states[name] = _timed(action)
            seconds[name].append(elapsed)
    assert len({state.seq for state in states.values()}) == 1
    assert states["open_strict"] == states["open_before"] == states["replay"]
    count = states["replay"].seq

    def ratios(over: str, under: str) -> list[float]:
        return [a / b for a, b in zip(seconds[over], seconds[under], strict=True)]

    def cost(over: str, under: str) -> float:
        return round(statistics.median(ratios(over, under)) - 1, 3)

    def best(over: str, under: str) -> float:
        return round(min(seconds[over]) / min(seconds[under]) - 1, 3)

    to_decode = ratios("decode", "replay")
    return {
        "rounds": rounds,
        "gc_thresholds": list(gc.get_threshold()),
        "decode_per_s": round(count / statistics.median(seconds["decode"])),
        "replay_per_s": round(count / statistics.median(seconds["replay"])),
        "replay_to_decode": round(statistics.median(to_decode), 3),
        "replay_to_decode_range": [round(min(to_decode), 3), round(max(to_decode), 3)],
        "replay_checksummed_per_s": round(
            count / statistics.median(seconds["replay_checksummed"])
        ),
        "checksums_cost": cost("replay_checksummed", "replay"),
        "checksums_cost_best": best("replay_checksummed", "replay"),
        "checksums_cost_range": [
            round(min(ratios("replay_checksummed", "replay")) - 1, 3),
            round(max(ratios("replay_checksummed", "replay")) - 1, 3),
        ],
        "open_before_per_s": round(count / statistics.median(seconds["open_before"])),
        "open_strict_per_s": round(count / statistics.median(seconds["open_strict"])),
        "strict_open_cost": cost("open_strict", "open_before"),
        "strict_open_cost_best": best("open_strict", "open_before"),
        "strict_open_cost_range": [
            round(min(ratios("open_strict", "open_before")) - 1, 3),
            round(max(ratios("open_strict", "open_before")) - 1, 3),
        ],
    }


# Peak RSS from /proc (VmHWM): unlike ru_maxrss it starts afresh at exec, so
# the parent's memory at fork time does not leak into the child's figure.
_CHILD = """
import json, sys
from chronolog._projection import replay
from chronolog.log import FileLog

def peak_kib():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")

before = peak_kib()
state = replay(FileLog(sys.argv[1]).read())
after = peak_kib()
status = state.status("task-0")
print(json.dumps({"before_kib": before, "after_kib": after, "runs": status.run_count}))
"""


def measure_memory(path: Path) -> dict[str, float]:
    child = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path)], capture_output=True, text=True, check=True
    )
    report = json.loads(child.stdout)
    return {
        "runs": report["runs"],
        "peak_rss_mib": round(report["after_kib"] / 1024, 1),
        "replay_added_mib": round((report["after_kib"] - report["before_kib"]) / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--dir", type=Path, default=None)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=options.dir) as directory:
        mixed = Path(directory) / "mixed.jsonl"
        events = write_log(mixed, runs(tasks=20, count=options.events), options.events)
        sealed = Path(directory) / "sealed.jsonl"
        write_log(sealed, runs(tasks=20, count=options.events), options.events, checksums=True)
        rates = measure_rates(mixed, sealed, options.rounds)
        mixed.unlink()
        sealed.unlink()
        single = Path(directory) / "single.jsonl"
        single_events = write_log(single, runs(tasks=1, count=options.runs), 10**12)
        memory = measure_memory(single)
        size_mib = single.stat().st_size / 2**20
    print(
        json.dumps(
            {
                "benchmark": "replay",
                "python": sys.version.split()[0],
                "cpus": os.cpu_count(),
                "events": events,
                **rates,
                "target_replay_to_decode": 0.5,
                "target_cost": 0.1,
                "single_task_events": single_events,
                "single_task_file_mib": round(size_mib, 1),
                **memory,
                "target_peak_rss_mib": 100,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
