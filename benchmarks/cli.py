"""The inspection commands on a large log. Prints one JSON document.

A 1,000,000-event `FileLog` is written directly with the codec (a scheduler
would take far longer to produce it): 20 tasks, runs every minute, a failure
with a retry now and then, overlap skips, and a pause with its skip. Then,
each as the user runs it -- a fresh ``python -m chronolog`` process, so
interpreter start-up and imports count:

* ``verify`` (target: under 5 s),
* ``status`` (target: under 5 s),
* ``replay --seq`` and ``replay --at`` in the middle of the log.

The best of ``--rounds`` runs is reported (a shared machine only ever makes
a run slower). To say where the time goes, the same work is also measured in
this process, step by step: reading and decoding the file, folding it
(``replay``), checking it (``check_invariants``).

Usage: python benchmarks/cli.py [--events N] [--rounds N] [--dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from chronolog import (
    Completed,
    Cron,
    Every,
    Failed,
    FileLog,
    Scheduled,
    Skipped,
    SkipReason,
    Started,
    TaskDefined,
    TaskPaused,
    TaskResumed,
    check_invariants,
    replay,
)
from chronolog._events import encode_header, encode_lines
from chronolog._ids import time_occurrence

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from chronolog import Event

T0 = datetime(2026, 1, 1, tzinfo=UTC)
TASKS = 20
TARGET_SECONDS = 5.0


def events() -> Iterator[Event]:
    """An endless, rule-abiding mix of what schedulers record (seq 0: unnumbered)."""
    names = [f"task-{n:02d}" for n in range(TASKS)]
    for index, name in enumerate(names):
        trigger = (
            Cron("* * * * *", tz="Europe/Berlin") if index % 2 else Every(timedelta(minutes=1))
        )
        yield TaskDefined(task=name, at=T0, trigger=trigger, target=f"jobs:{name}")
    minute = 0
    while True:
        due = T0 + timedelta(minutes=minute)
        for index, name in enumerate(names):
            occurrence = time_occurrence(name, due)
            yield Scheduled(
                task=name, at=due - timedelta(minutes=1), occurrence=occurrence, due=due
            )
            turn = (minute + index) % 97
            if turn == 13:
                yield Skipped(task=name, at=due, occurrence=occurrence, reason=SkipReason.OVERLAP)
                continue
            if turn == 50:
                yield TaskPaused(task=name, at=due, note="benchmark")
                yield Skipped(task=name, at=due, occurrence=occurrence, reason=SkipReason.PAUSED)
                yield TaskResumed(task=name, at=due, note="benchmark")
                continue
            yield Started(task=name, at=due, occurrence=occurrence, attempt=1, node="bench")
            attempt = 1
            if turn == 71:
                retry_at = due + timedelta(seconds=5)
                yield Failed(
                    task=name,
                    at=due + timedelta(seconds=1),
                    occurrence=occurrence,
                    attempt=1,
                    duration=timedelta(seconds=1),
                    error="connection reset",
                    error_type="OSError",
                    retry_at=retry_at,
                )
                yield Started(task=name, at=retry_at, occurrence=occurrence, attempt=2)
                attempt = 2
            yield Completed(
                task=name,
                at=due + timedelta(seconds=2),
                occurrence=occurrence,
                attempt=attempt,
                duration=timedelta(milliseconds=1500),
                result={"rows": minute % 1000},
            )
        minute += 1


def write_log(path: Path, count: int) -> list[datetime]:
    """Write ``count`` events as a FileLog file; return the time of every 1000th record."""
    replace = msgspec.structs.replace
    marks: list[datetime] = []
    with path.open("wb") as file:
        file.write(encode_header())
        batch: list[Event] = []
        for seq, event in enumerate(events(), start=1):
            batch.append(replace(event, seq=seq))
            if seq % 1000 == 0:
                marks.append(event.at)
            if len(batch) == 10_000 or seq == count:
                file.write(encode_lines(batch))
                batch.clear()
            if seq == count:
                break
    return marks


def best_of(rounds: int, run: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return round(best, 3)


def command(*args: str) -> Callable[[], object]:
    def run() -> object:
        result = subprocess.run(
            [sys.executable, "-m", "chronolog", *args],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"chronolog {' '.join(args)} failed: {result.stderr.strip()}")
        return result

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=None)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=options.dir) as directory:
        log = Path(directory) / "big.jsonl"
        started = time.perf_counter()
        marks = write_log(log, options.events)
        write_seconds = time.perf_counter() - started
        middle_seq = options.events // 2
        middle_at = marks[len(marks) // 2].isoformat()
        path = str(log)
        rounds = options.rounds
        cli = {
            "verify_s": best_of(rounds, command("verify", path, "--json")),
            "status_s": best_of(rounds, command("status", path, "--json")),
            "replay_seq_middle_s": best_of(
                rounds, command("replay", path, "--seq", str(middle_seq), "--json")
            ),
            "replay_at_middle_s": best_of(
                rounds, command("replay", path, "--at", middle_at, "--json")
            ),
            "startup_s": best_of(rounds, command("--help")),
        }
        steps = {
            "read_decode_s": best_of(rounds, lambda: sum(1 for _ in FileLog(log).read())),
            "replay_s": best_of(rounds, lambda: replay(FileLog(log).read())),
            "check_invariants_s": best_of(rounds, lambda: check_invariants(FileLog(log).read())),
        }
        size_mib = log.stat().st_size / 2**20
    print(
        json.dumps(
            {
                "benchmark": "cli",
                "python": sys.version.split()[0],
                "cpus": os.cpu_count(),
                "events": options.events,
                "file_mib": round(size_mib, 1),
                "write_log_s": round(write_seconds, 1),
                **cli,
                "target_s": TARGET_SECONDS,
                "verify_met": cli["verify_s"] < TARGET_SECONDS,
                "status_met": cli["status_s"] < TARGET_SECONDS,
                "in_process": steps,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
