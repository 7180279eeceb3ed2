"""Replay speed and memory on large file logs. Prints one JSON document.

Measured in one run, so the ratios hold on a noisy shared machine:

* ``decode_per_s``: raw msgspec decoding of every line of a 1,000,000-event
  file log in a bare loop (the file already read into memory);
* ``replay_per_s``: ``replay(FileLog(path).read())``, i.e. reading the file,
  decoding and folding, end to end;
* ``replay_to_decode``: their ratio, the median over alternating rounds
  (target: >= 0.5);
* ``peak_rss_mib``: peak resident memory of a separate process that replays
  a log of 1,000,000 runs of one task (3,000,000 events), and how much of it
  the replay added over the interpreter with chronolog imported (target:
  under 100 MiB).

Usage: python benchmarks/replay.py [--events N] [--runs N] [--rounds N] [--dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

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
from chronolog.log import FileLog

if TYPE_CHECKING:
    from collections.abc import Iterator

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


def write_log(path: Path, events: Iterator[Event], limit: int) -> int:
    """Write a FileLog-format file directly (header + JSON Lines); returns events written."""
    written = 0
    with path.open("wb") as file:
        file.write(encode_header())
        batch: list[Event] = []
        for event in events:
            batch.append(event)
            written += 1
            if len(batch) == 10_000:
                file.write(encode_lines(batch))
                batch.clear()
            if written == limit:
                break
        file.write(encode_lines(batch))
    return written


def measure_rates(path: Path, rounds: int) -> dict[str, float]:
    """Decode and replay rates, alternated over ``rounds``; the median ratio.

    Shared machines speed up and slow down by tens of percent from one
    second to the next, so each round measures both sides back to back and
    the ratio reported is the median of the rounds' ratios.
    """
    lines = path.read_bytes().splitlines()[1:]
    decode_seconds: list[float] = []
    replay_seconds: list[float] = []
    count = 0
    for _ in range(rounds):
        started = time.perf_counter()
        for line in lines:
            decode_event(line)
        decode_seconds.append(time.perf_counter() - started)

        started = time.perf_counter()
        state = replay(FileLog(path).read())
        replay_seconds.append(time.perf_counter() - started)
        count = state.seq
    ratios = [d / r for d, r in zip(decode_seconds, replay_seconds, strict=True)]
    return {
        "rounds": rounds,
        "decode_per_s": round(count / statistics.median(decode_seconds)),
        "replay_per_s": round(count / statistics.median(replay_seconds)),
        "replay_to_decode": round(statistics.median(ratios), 3),
        "replay_to_decode_range": [round(min(ratios), 3), round(max(ratios), 3)],
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
        rates = measure_rates(mixed, options.rounds)
        mixed.unlink()
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
