"""Realistic logs for the command-line tests, recorded by a real scheduler on simulated time.

`record_scenario` runs two and a half simulated days in a few hundred
milliseconds and leaves a `FileLog` in which every rule and every decision
the inspection commands explain happens at least once: runs, retries,
failures, overlap skips, a pause, a removal, a redefinition, a manual run,
spring-forward in Berlin, six hours of downtime caught up by policy, and a
crash that leaves a run open at the end of the log.
"""

from __future__ import annotations

import functools
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import trio

from chronolog import Cron, Every, FileLog, Retry, open_scheduler
from chronolog._events import encode_header, encode_lines
from chronolog.testing import SimulatedClock

if TYPE_CHECKING:
    from chronolog import Event, Scheduler

#: Friday 2026-03-27 12:00 UTC; Berlin springs forward on Sunday 2026-03-29 at 01:00 UTC.
START = datetime(2026, 3, 27, 12, 0, tzinfo=UTC)
#: The scheduler stops here (gracefully), a minute past the due times of
#: 12:00: a stop at the very instant runs are due is a race either may win.
DOWN = START + timedelta(days=2, minutes=1)
#: ... and starts again here, six hours later.
UP = DOWN + timedelta(hours=6)
#: The log ends here: the process crashed while "report" was running.
CRASH = UP + timedelta(hours=12, minutes=10)

_calls: dict[str, int] = {}


async def work(sim: SimulatedClock, name: str, takes: timedelta, fail_on: tuple[int, ...]) -> str:
    """A job: takes ``takes`` of simulated time and fails on the listed calls (1-based)."""
    call = _calls[name] = _calls.get(name, 0) + 1
    await sim.sleep_until(sim.now() + takes)
    if call in fail_on:
        raise OSError(f"{name}: disk full (call {call})")
    return f"{name} call {call}"


async def always_fails(sim: SimulatedClock) -> None:
    """A job whose service never answers."""
    await sim.sleep_until(sim.now() + timedelta(seconds=20))
    raise ConnectionError("the service did not answer")


async def _declare(sched: Scheduler, sim: SimulatedClock) -> None:
    quick = timedelta(seconds=30)
    await sched.add(
        "backup",
        Cron("30 2 * * *", tz="Europe/Berlin"),
        functools.partial(work, sim, "backup", timedelta(minutes=3), (2,)),
        retry=Retry(max_attempts=2, backoff=timedelta(minutes=5)),
    )
    await sched.add(
        "report",
        Every(timedelta(hours=1)),
        functools.partial(work, sim, "report", timedelta(minutes=90), ()),
    )
    await sched.add(
        "sync", Every(timedelta(minutes=15)), functools.partial(work, sim, "sync", quick, ())
    )
    await sched.add(
        "flaky",
        Every(timedelta(hours=6)),
        functools.partial(always_fails, sim),
        retry=Retry(max_attempts=3, backoff=timedelta(minutes=1)),
    )


async def _phase_one(path: Path, sim: SimulatedClock) -> None:
    async with open_scheduler(path, clock=sim, node="node-a") as sched:
        await _declare(sched, sim)
        await sched.add(
            "old-task",
            Every(timedelta(minutes=30)),
            functools.partial(work, sim, "old-task", timedelta(seconds=5), ()),
        )
        reindex = functools.partial(work, sim, "reindex", timedelta(minutes=1), ())
        await sched.add("reindex", Cron("0 4 * * *"), reindex)
        await sim.advance(timedelta(hours=1))
        await sched.run_now("backup")
        await sim.advance(timedelta(hours=2, minutes=10))
        await sched.remove("old-task")
        # Off the quarter hours: a pause at the very instant a run starts
        # trips a race in the scheduler (see the report to the lead).
        await sim.advance(timedelta(hours=1, minutes=55))
        await sched.pause("sync", note="maintenance window")
        await sim.advance(timedelta(hours=2))
        await sched.resume("sync", note="maintenance done")
        await sim.advance(timedelta(hours=2, minutes=55))
        await sched.add("reindex", Cron("0 5 * * *"), reindex)  # was 04:00: redefined
        await sim.advance(DOWN - sim.now())


async def _phase_two(path: Path, sim: SimulatedClock) -> list[Event]:
    """Run again after the downtime; return what was in the log at the crash."""
    async with open_scheduler(path, clock=sim, node="node-b") as sched:
        await _declare(sched, sim)
        await sched.add(
            "reindex",
            Cron("0 5 * * *"),
            functools.partial(work, sim, "reindex", timedelta(minutes=1), ()),
        )
        await sim.advance(CRASH - sim.now())
        return list(FileLog(path).read())


async def _scenario(path: Path, sim: SimulatedClock) -> list[Event]:
    await _phase_one(path, sim)
    await sim.advance(UP - sim.now())  # down: no scheduler writes the log
    return await _phase_two(path, sim)


def record_scenario(path: Path) -> None:
    """Write the scenario's log to ``path`` (a new file)."""
    _calls.clear()
    sim = SimulatedClock(START)
    survived = trio.run(_scenario, path, sim, clock=sim.trio_clock)
    # A crash leaves no shutdown records: keep only what was durable then.
    path.write_bytes(encode_header() + encode_lines(survived))


@functools.cache
def scenario_bytes() -> bytes:
    """The scenario's log file, recorded once per test process (tests copy it)."""
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "jobs.jsonl"
        record_scenario(path)
        return path.read_bytes()


def scenario_log(directory: Path, name: str = "jobs.jsonl") -> Path:
    """A fresh copy of the scenario's log in ``directory``."""
    path = directory / name
    path.write_bytes(scenario_bytes())
    return path
