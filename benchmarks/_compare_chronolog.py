"""compare.py's workloads on chronolog, through its public API only.

Run by ``compare.py --worker`` in a fresh interpreter of the project's
environment; each function returns the figures of one measurement. The log
is a ``FileLog`` (JSON Lines, fsync per write: durable), a ``SQLiteLog``
(WAL, durable) or a ``MemoryLog`` (not durable), in a directory of the
worker's own. Every measurement runs on the system clock, like APScheduler's,
except ``restart``, which simulates its outage (``chronolog.testing``).
"""

from __future__ import annotations

import shutil
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import msgspec
import trio
import trio.testing

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
from chronolog import (
    At,
    ChronologError,
    Completed,
    Cron,
    EventLog,
    Every,
    FileLog,
    MemoryLog,
    Scheduled,
    Skipped,
    SQLiteLog,
    Started,
    TaskDefined,
    current_run,
    occurrence_id,
    open_scheduler,
)
from chronolog.testing import SimulatedClock, assert_exactly_once

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from chronolog import Event, Scheduler

IDLE = timedelta(seconds=IDLE_SECONDS)
SECOND = timedelta(seconds=1)
#: The longest a burst or a lateness run may take before the worker gives up.
TIME_LIMIT_S = 600


def make_log(kind: str, directory: Path) -> EventLog:
    if kind == "file":
        return FileLog(directory / "log.jsonl")
    if kind == "sqlite":
        return SQLiteLog(directory / "log.sqlite")
    if kind == "memory":
        return MemoryLog()
    raise ValueError(f"no chronolog log of kind {kind!r}: file, sqlite or memory")


async def noop() -> None:
    pass


def _now() -> datetime:
    return datetime.now(UTC)


async def _add_idle(sched: Scheduler, names: range, prefix: str) -> None:
    for n in names:
        await sched.add(f"{prefix}-{n}", Every(IDLE, anchor=_now() + IDLE), noop)


def add(kind: str, directory: Path, params: dict[str, Any]) -> dict[str, Any]:
    """``add`` of ``tasks`` idle tasks, one after another (each awaited); then as
    many more in one ``Scheduler.batch()`` (the fast path: one write), timed
    until the batch is durable and every new task's actor has planned."""
    count = params["tasks"]

    async def main() -> dict[str, Any]:
        async with open_scheduler(make_log(kind, directory)) as sched:
            started = time.perf_counter()
            await _add_idle(sched, range(count), "task")
            elapsed = time.perf_counter() - started
            started = time.perf_counter()
            async with sched.batch() as batch:
                for n in range(count):
                    batch.add(f"fast-{n}", Every(IDLE, anchor=_now() + IDLE), noop)
            await trio.testing.wait_all_tasks_blocked()
            fast = time.perf_counter() - started
        return {
            "tasks": count,
            "add_per_s": round(count / elapsed, 1),
            "add_s": round(elapsed, 3),
            "fast_add_per_s": round(count / fast, 1),
            "fast_add_s": round(fast, 3),
        }

    result: dict[str, Any] = trio.run(main)
    return result


def dispatch(kind: str, directory: Path, params: dict[str, Any]) -> dict[str, Any]:
    """``runs`` one-off no-op tasks (``At``), all due at one instant."""
    runs = params["runs"]
    starts: list[float] = []
    all_ran = trio.Event()

    async def work() -> None:
        starts.append(time.time())
        if len(starts) == runs:
            all_ran.set()

    async def main() -> dict[str, Any]:
        async with open_scheduler(make_log(kind, directory)) as sched:
            probe = probe_count(runs)
            started = time.perf_counter()
            await _add_idle(sched, range(probe), "probe")
            rate = probe / (time.perf_counter() - started)
            due = _now() + timedelta(seconds=setup_margin(params, rate))
            for n in range(runs):
                await sched.add(f"run-{n}", At(due), work)
            slack = due.timestamp() - time.time()
            recorded = None
            with trio.move_on_after(max(slack, 0) + TIME_LIMIT_S):
                await all_ran.wait()
                # Every outcome recorded (durably, on a FileLog or SQLiteLog):
                # a run leaves `running` once its Completed is appended. No
                # event says so; polling starts once the last run has begun.
                while sched.statistics().running:  # noqa: ASYNC110
                    await trio.sleep(0.005)
                recorded = time.time()
        return dispatch_result(due.timestamp(), starts, recorded, runs, slack)

    result: dict[str, Any] = trio.run(main)
    return result


def lateness(kind: str, directory: Path, params: dict[str, Any]) -> dict[str, Any]:
    """``tasks`` tasks each due every second, for ``seconds`` after a warm-up.

    ``burst``: every task due at the same instant of the second; otherwise
    their phases are spread evenly over the second.
    """
    count, seconds, burst = params["tasks"], params["seconds"], params["burst"]
    samples: list[tuple[str, float, float]] = []

    async def tick() -> None:
        started = time.time()
        run = current_run()
        assert run.due is not None
        samples.append((run.task, run.due.timestamp(), started))

    async def main() -> dict[str, Any]:
        async with open_scheduler(make_log(kind, directory)) as sched:
            base = _now() + timedelta(seconds=params["lead_s"])
            for n in range(count):
                phase = timedelta(0) if burst else SECOND * n / count
                await sched.add(f"tick-{n}", Every(SECOND, anchor=base + phase), tick)
            window_start = lateness_window(base.timestamp(), time.time(), params["warmup_s"])
            await trio.sleep(max(0.0, window_start + seconds + params["drain_s"] - time.time()))
        return lateness_result(
            samples, tasks=count, window_start=window_start, seconds=seconds
        ) | {"burst": burst}

    result: dict[str, Any] = trio.run(main)
    return result


def idle_memory(kind: str, directory: Path, params: dict[str, Any]) -> dict[str, Any]:
    """Memory held per idle task once ``tasks`` tasks are added and asleep.

    The tasks are added by 100 concurrent callers (the figure is what stays
    allocated, not how it was added; sequential adds to a ``FileLog`` would
    take minutes at 100,000 tasks).
    """
    count = params["tasks"]
    memory = ResidentMemory()

    async def adder(sched: Scheduler, first: int) -> None:
        await _add_idle(sched, range(first, count, 100), "idle")

    async def main() -> dict[str, Any]:
        async with open_scheduler(make_log(kind, directory)) as sched:
            memory.start()
            started = time.perf_counter()
            async with trio.open_nursery() as nursery:
                for first in range(min(100, count)):
                    nursery.start_soon(adder, sched, first)
            elapsed = time.perf_counter() - started
            await trio.sleep(0.5)
            assert sched.statistics().tasks == count
            held = memory.held()
        return memory_result(held, count, elapsed)

    result: dict[str, Any] = trio.run(main)
    return result


# -- replay: a log of a million events, opened with and without a snapshot -----

HISTORY_START = datetime(2026, 1, 1, tzinfo=UTC)
#: Records per append when the log is built: what group commit writes in a
#: busy moment. (Very large batches read back slower: compare.py's docs.)
HISTORY_BATCH = 100


def _history(count: int, tasks: int = 20) -> Iterator[Event]:
    """``count`` records: ``tasks`` per-minute tasks and their runs."""
    names = [f"task-{n}" for n in range(tasks)]
    written = 0
    for name in names:
        written += 1
        yield TaskDefined(task=name, at=HISTORY_START, trigger=Cron("* * * * *"), target="j:w")
    n = 0
    while True:
        name = names[n % tasks]
        due = HISTORY_START + timedelta(minutes=n // tasks)
        occurrence = occurrence_id(name, due)
        for event in (
            Scheduled(task=name, at=due, occurrence=occurrence, due=due),
            Started(task=name, at=due, occurrence=occurrence, attempt=1, node="bench"),
            Completed(task=name, at=due, occurrence=occurrence, attempt=1, result=n % 1000),
        ):
            written += 1
            if written > count:
                return
            yield event
        n += 1


def build_history(directory: Path, params: dict[str, Any]) -> dict[str, Any]:
    """Write the replay workload's two logs: ``plain.jsonl`` and a copy of it
    with a snapshot at its end, ``snapshotted.jsonl`` (+ ``.snapshot``)."""
    count = params["events"]
    plain = directory / "plain.jsonl"
    snapshotted = directory / "snapshotted.jsonl"

    async def main() -> None:
        # fsync=False: building is not what is measured (opening is).
        async with FileLog(plain, fsync=False) as log:
            batch: list[Event] = []
            for event in _history(count):
                batch.append(event)
                if len(batch) == HISTORY_BATCH:
                    await log.append(batch)
                    batch = []
            if batch:
                await log.append(batch)
        shutil.copyfile(plain, snapshotted)
        async with FileLog(snapshotted) as log:
            state = await trio.to_thread.run_sync(log.load_state)
            await log.save_snapshot(state)

    started = time.perf_counter()
    trio.run(main)
    return {
        "events": count,
        "build_s": round(time.perf_counter() - started, 1),
        "file_mib": round(plain.stat().st_size / 2**20, 1),
    }


def open_log(path: Path) -> dict[str, Any]:
    """Open a log for writing and load its state, as ``open_scheduler`` does."""

    async def main() -> tuple[float, int]:
        started = time.perf_counter()
        async with FileLog(path) as log:
            state = await trio.to_thread.run_sync(log.load_state)
        return time.perf_counter() - started, state.seq

    elapsed, seq = trio.run(main)
    return {"events": seq, "open_s": round(elapsed, 4), "events_per_s": round(seq / elapsed)}


def decode_log(path: Path) -> dict[str, Any]:
    """The floor under any replay: msgspec decoding each record of the file
    into chronolog's event types, nothing else (lines already in memory)."""
    lines = path.read_bytes().splitlines()[1:]
    decoder = msgspec.json.Decoder(TaskDefined | Scheduled | Started | Completed)
    started = time.perf_counter()
    for line in lines:
        decoder.decode(line)
    elapsed = time.perf_counter() - started
    return {
        "events": len(lines),
        "decode_s": round(elapsed, 4),
        "events_per_s": round(len(lines) / elapsed),
    }


def replay(directory: Path, params: dict[str, Any]) -> dict[str, Any]:
    part = params["part"]
    if part == "decode":
        return decode_log(directory / "plain.jsonl")
    if part == "open":
        return open_log(directory / "plain.jsonl")
    if part == "open_snapshot":
        return open_log(directory / "snapshotted.jsonl")
    raise ValueError(f"no replay part {part!r}")


# -- restart after an outage ---------------------------------------------------

RESTART_START = datetime(2026, 1, 1, tzinfo=UTC)


def restart(kind: str, directory: Path, params: dict[str, Any]) -> dict[str, Any]:
    """``tasks`` per-second tasks run for ``before_s``, stop, stay down for
    ``outage_s``, restart and run ``after_s`` more (simulated time, real
    log I/O). What ran, what was skipped, whether anything ran twice, what
    the restart wrote, and how long (real time) the catch-up held up runs.
    """
    count = params["tasks"]
    log = make_log(kind, directory)
    # A MemoryLog outlives its scheduler in this process; the others reopen.
    reopen = (lambda: log) if kind == "memory" else (lambda: make_log(kind, directory))
    first_runs: dict[str, float] = {}

    async def tick() -> None:
        first_runs.setdefault(current_run().task, time.perf_counter())

    async def serve(clock: SimulatedClock, events: EventLog, seconds: int) -> dict[str, float]:
        started = time.perf_counter()
        async with open_scheduler(events, clock=clock) as sched:
            opened = time.perf_counter()
            first_runs.clear()
            for n in range(count):
                await sched.add(f"tick-{n}", Every(SECOND, anchor=RESTART_START), tick)
            # A task that missed nothing: due one (simulated) second after the
            # start. Simulated time holds still while the loop is busy, so the
            # real seconds until it runs are what the catch-up held it up.
            await sched.add("unrelated", At(clock.now() + SECOND), tick)
            await trio.sleep(seconds)
            seq = sched.statistics().log_seq
        unrelated = first_runs.pop("unrelated", float("nan")) - started
        delays = sorted(first_runs[name] - started for name in first_runs)
        return {
            "open_s": opened - started,
            "first_run_s": delays[0] if delays else float("nan"),
            "last_first_run_s": delays[-1] if delays else float("nan"),
            "unrelated_run_s": unrelated,
            "seq": seq,
        }

    before_clock = SimulatedClock(RESTART_START)
    before = trio.run(serve, before_clock, log, params["before_s"], clock=before_clock.trio_clock)
    down_until = RESTART_START + timedelta(seconds=params["before_s"] + params["outage_s"])
    size_before = _log_size(kind, directory)
    after_clock = SimulatedClock(down_until)
    after = trio.run(serve, after_clock, reopen(), params["after_s"], clock=after_clock.trio_clock)
    records = list(reopen().read())
    written = [record for record in records if record.seq > before["seq"]]
    restarted = down_until
    skipped = Counter(str(record.reason) for record in written if isinstance(record, Skipped))
    completed_after = [record for record in written if isinstance(record, Completed)]
    started_late = [
        record
        for record in written
        if isinstance(record, Started) and occurrence_due(record.occurrence) < restarted
    ]
    try:
        assert_exactly_once(records)
        duplicates = "none"
    except AssertionError as problem:
        duplicates = str(problem).splitlines()[0]
    return {
        "tasks": count,
        "outage_s": params["outage_s"],
        "runs_before": sum(isinstance(record, Completed) for record in records)
        - len(completed_after),
        "runs_after": len(completed_after),
        "catch_up_runs": len(started_late),
        "skipped": dict(skipped),
        "records_written_on_restart": len(written),
        "skip_records_on_restart": sum(isinstance(record, Skipped) for record in written),
        "missed_due_times": sum(
            (record.count if getattr(record, "last_due", None) is not None else 1)
            for record in written
            if isinstance(record, Skipped) and str(record.reason) == "missed"
        ),
        "records_per_task": round(len(written) / count, 1),
        "bytes_written_on_restart": _log_size(kind, directory) - size_before,
        "duplicates": duplicates,
        "reopen_s": round(after["open_s"], 4),
        "first_run_after_restart_s": round(after["first_run_s"], 4),
        "every_task_ran_after_restart_s": round(after["last_first_run_s"], 4),
        "unrelated_run_after_restart_s": round(after["unrelated_run_s"], 4),
    }


def occurrence_due(occurrence: str) -> datetime:
    """The due time in a time occurrence id, ``task@2026-01-01T00:00:05Z``."""
    return datetime.fromisoformat(occurrence.rpartition("@")[2])


def _log_size(kind: str, directory: Path) -> int:
    if kind == "memory":
        return 0
    return sum(
        entry.stat().st_size for entry in directory.iterdir() if entry.name.startswith("log.")
    )


# -- the worker's entry point ---------------------------------------------------

WORKLOADS = {
    "add": add,
    "dispatch": dispatch,
    "lateness_spread": lateness,
    "lateness_burst": lateness,
    "idle_memory_small": idle_memory,
    "idle_memory_large": idle_memory,
    "restart": restart,
}


def run(workload: str, system: str, directory: Path, params: dict[str, Any]) -> dict[str, Any]:
    """One measurement of ``workload`` on ``system`` (``chronolog-KIND``), its
    files in ``directory`` (the built logs, for ``replay``)."""
    try:
        if workload == "replay":
            return replay(directory, params)
        if workload == "replay_build":
            return build_history(directory, params)
        return WORKLOADS[workload](system.removeprefix("chronolog-"), directory, params)
    except ChronologError as error:
        return {"error": f"{type(error).__name__}: {error}"}
