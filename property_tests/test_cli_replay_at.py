"""``replay --seq N`` and ``replay --at TIME`` hide no state: each equals the replay
of the log cut at that point.

A real scheduler runs random tasks on simulated time, with pauses and
crashes; its log goes to a file. Then, through the command line, the state
at every seq of the log is compared with the state at the end of a copy of
the log cut right after that seq -- and the state at every recorded time
with a copy cut after the last record stamped at or before it.
"""

from __future__ import annotations

import functools
import json
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import trio
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from chronolog import Cron, Event, Every, MemoryLog, Overlap, Retry, open_scheduler
from chronolog._events import encode_header, encode_lines
from chronolog.cli import main
from chronolog.testing import SimulatedClock

#: Berlin springs forward an hour and a half later.
START = datetime(2026, 3, 28, 23, 30, tzinfo=UTC)


async def job(sim: SimulatedClock, takes: timedelta, fails: bool) -> str:
    await sim.sleep_until(sim.now() + takes)
    if fails:
        raise RuntimeError("boom")
    return "ok"


TASKS = {
    "tick": (Every(timedelta(minutes=10)), timedelta(seconds=5), False, {}),
    "slow": (
        Every(timedelta(minutes=15)),
        timedelta(minutes=20),
        False,
        {"overlap": Overlap.SKIP},
    ),
    "flaky": (
        Every(timedelta(minutes=20)),
        timedelta(seconds=30),
        True,
        {"retry": Retry(max_attempts=2, backoff=timedelta(minutes=2))},
    ),
    "berlin": (Cron("*/30 * * * *", tz="Europe/Berlin"), timedelta(minutes=1), False, {}),
}


def record(tasks: list[str], lives: list[tuple[int, int]], pause: int | None) -> list[Event]:
    """Run the scheduler through ``lives`` of (minutes up, minutes down); the records."""
    sim = SimulatedClock(START)

    async def life(records: list[Event], minutes: int, first: bool) -> list[Event]:
        log = MemoryLog(records)
        survived: list[Event] = []
        with trio.CancelScope() as process:
            async with open_scheduler(log, clock=sim, node="n") as sched:
                for name in tasks:
                    trigger, takes, fails, options = TASKS[name]
                    target = functools.partial(job, sim, takes, fails)
                    await sched.add(name, trigger, target, **options)
                if first and pause is not None and pause < minutes:
                    await sim.advance(timedelta(minutes=pause, seconds=7))
                    await sched.pause(tasks[0], note="by the test")
                    minutes -= pause
                await sim.advance(timedelta(minutes=minutes))
                survived = list(log.read())  # what a kill -9 would leave
                process.cancel()
        return survived

    async def main() -> list[Event]:
        records: list[Event] = []
        for index, (up, down) in enumerate(lives):
            records = await life(records, up, index == 0)
            await sim.advance(timedelta(minutes=down))
        return records

    return trio.run(main, clock=sim.trio_clock)


def write(path: Path, records: list[Event]) -> Path:
    path.write_bytes(encode_header() + encode_lines(records))
    return path


def state(path: Path, *args: str) -> dict[str, Any]:
    result = CliRunner().invoke(main, ["replay", str(path), *args, "--json"])
    assert result.exit_code == 0, result.output
    document: dict[str, Any] = json.loads(result.stdout)
    del document["log_last_seq"]  # the one field that tells the two files apart
    return document


@settings(max_examples=15, deadline=None)
@given(
    tasks=st.lists(st.sampled_from(sorted(TASKS)), min_size=1, max_size=3, unique=True),
    lives=st.lists(st.tuples(st.integers(5, 70), st.integers(0, 60)), min_size=1, max_size=3),
    pause=st.none() | st.integers(0, 60),
)
def test_replay_at_every_seq_and_time_equals_replay_of_the_cut_log(
    tasks: list[str], lives: list[tuple[int, int]], pause: int | None
) -> None:
    records = record(tasks, lives, pause)
    with tempfile.TemporaryDirectory() as directory:
        full = write(Path(directory) / "full.jsonl", records)
        cut = Path(directory) / "cut.jsonl"
        for seq in range(len(records) + 1):
            assert state(full, "--seq", str(seq)) == state(write(cut, records[:seq])), seq
        times = sorted({r.at for r in records} | {START - timedelta(seconds=1)})
        for moment in times:
            # The log as it was at ``moment``: its longest prefix recorded by then.
            count = 0
            while count < len(records) and records[count].at <= moment:
                count += 1
            at = moment.isoformat()
            assert state(full, "--at", at) == state(write(cut, records[:count])), at
