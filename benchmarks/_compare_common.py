"""What every system's worker in compare.py shares: standard library only.

The APScheduler workers run in virtual environments of their own, which
have neither chronolog nor trio (APScheduler 4's has trio), so nothing here
may import them. Times are wall-clock epochs (``time.time()``): every
system schedules by the wall clock, and a run's lateness is the wall time
its body began minus the due time it was given.
"""

from __future__ import annotations

import gc
import math
import os
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

#: How long the first fire of an idle task lies ahead (and its interval):
#: long enough that nothing fires while a workload runs.
IDLE_SECONDS = 86_400.0


def percentile(ordered: list[float], fraction: float) -> float:
    """The ``fraction`` quantile of sorted values (nearest rank)."""
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))
    return ordered[index]


def setup_margin(params: dict[str, Any], probe_rate: float) -> float:
    """Seconds to leave between now and a burst's due time so that adding
    ``params["runs"]`` tasks at ``probe_rate`` per second is over well
    before it: ``lead_s`` plus ``margin_factor`` times the time it takes."""
    factor = params.get("margin_factor", 2.0)
    return params["lead_s"] + factor * params["runs"] / max(probe_rate, 1.0)


def timed_probe(add_one: Callable[[int], object], count: int) -> float:
    """Call ``add_one(n)`` ``count`` times; how many per second it managed."""
    started = time.perf_counter()
    for n in range(count):
        add_one(n)
    return count / max(time.perf_counter() - started, 1e-9)


def probe_count(tasks: int) -> int:
    """How many idle tasks a worker adds to learn this system's add rate."""
    return max(10, min(100, tasks // 50))


def dispatch_result(
    due: float, starts: list[float], recorded: float | None, runs: int, slack: float
) -> dict[str, Any]:
    """The figures of a burst of ``runs`` due at ``due``.

    ``starts``: when each body began, in order. ``recorded``: when the last
    outcome was recorded by the system (None when it does not say).
    ``slack``: seconds between the end of the set-up and the due time (a
    negative slack means the burst began before every task was added, and
    the measure is void).
    """
    result: dict[str, Any] = {
        "runs": runs,
        "ran": len(starts),
        "setup_slack_s": round(slack, 3),
    }
    if slack < 0.05:
        result["error"] = f"set-up overran the due time by {-slack:.3f} s"
        return result
    if len(starts) < runs:
        result["error"] = f"only {len(starts)} of {runs} runs ran before the time limit"
        return result
    last = max(starts) - due
    result.update(
        {
            "runs_per_s": round(runs / max(last, 1e-6), 1),
            "first_run_s": round(min(starts) - due, 4),
            "last_run_s": round(last, 4),
        }
    )
    if recorded is not None:
        result["all_recorded_s"] = round(recorded - due, 4)
    return result


def lateness_result(
    samples: Iterable[tuple[str, float, float]],
    *,
    tasks: int,
    window_start: float,
    seconds: int,
) -> dict[str, Any]:
    """Lateness of the runs due in ``[window_start, window_start + seconds)``.

    ``samples``: (task, due, started) for every run that began. Each task is
    due once a second, so each has ``seconds`` due times in the window; a due
    time with no run is missed, one with two runs is a duplicate.
    """
    window_end = window_start + seconds
    lateness: list[float] = []
    seen: set[tuple[str, float]] = set()
    duplicates = 0
    for task, due, started in samples:
        if not window_start - 1e-6 <= due < window_end - 1e-6:
            continue
        key = (task, round(due, 3))
        if key in seen:
            duplicates += 1
            continue
        seen.add(key)
        lateness.append(max(started - due, 0.0) * 1000)
    lateness.sort()
    return {
        "tasks": tasks,
        "seconds": seconds,
        "runs": len(lateness),
        "missed": tasks * seconds - len(lateness),
        "duplicates": duplicates,
        "p50_ms": round(percentile(lateness, 0.5), 2),
        "p99_ms": round(percentile(lateness, 0.99), 2),
        "max_ms": round(lateness[-1], 2) if lateness else float("nan"),
    }


class ResidentMemory:
    """Resident memory (RSS) this process gained from :meth:`start` on.

    Every system is measured the same way: the baseline is read once the
    scheduler runs, after a full collection; the figure is read after the
    tasks are added, everything is idle and a full collection ran. RSS is
    what the operating system gives the process: every object, buffer and
    C extension's allocation, and the allocator's fragmentation (pages kept
    for objects freed since). (tracemalloc, which counts only live Python
    allocations, triples the time it takes to add 100,000 tasks.)
    """

    def __init__(self) -> None:
        self.baseline = 0

    def start(self) -> None:
        gc.collect()
        self.baseline = resident_bytes()

    def held(self) -> int:
        gc.collect()
        return resident_bytes() - self.baseline


def resident_bytes() -> int:
    """This process's resident memory now (Linux: /proc/self/statm)."""
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[1])
    except OSError as error:
        raise RuntimeError(f"resident memory is read from /proc/self/statm: {error}") from error
    return pages * os.sysconf("SC_PAGE_SIZE")


def memory_result(held: int, tasks: int, add_seconds: float) -> dict[str, Any]:
    return {
        "tasks": tasks,
        "kib_per_task": round(held / tasks / 1024, 3),
        "held_mib": round(held / 2**20, 1),
        "add_s": round(add_seconds, 2),
    }


def lateness_window(base: float, added: float, warmup: float) -> float:
    """The first whole second of the grid ``base + k`` at least ``warmup``
    seconds after every task was added (``added``)."""
    return base + max(0, math.ceil(added + warmup - base))
