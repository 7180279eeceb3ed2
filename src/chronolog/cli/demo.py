"""``chronolog demo``: a small scheduler on a file log you can look at.

It runs a handful of tasks for a few seconds -- cron, a fixed interval, a
flaky task with retries, a slow task whose overlapping runs are skipped, and
a file watch -- shows a live status table, then a short history and the
command that replays the log. Run it again: the log carries on where it
stopped, which is the point of a scheduler whose log is the truth.
"""

from __future__ import annotations

import functools
import itertools
import sys
from datetime import timedelta
from pathlib import Path

import click
import trio

from .._clock import Clock, SystemClock, wall_clock_now
from .._policies import Overlap, Retry
from .._scheduler import open_scheduler
from .._triggers import Cron, Every, FileWatch
from .status import format_status_table

__all__ = ["demo_command"]

_flaky_calls = itertools.count(1)


async def heartbeat() -> str:
    """Every 2 seconds: a quick success."""
    return "ok"


async def every_five_seconds() -> str:
    """A cron expression with a seconds field: */5 in the sixth field."""
    return "tick"


async def flaky() -> str:
    """Fails twice, then succeeds: the retry policy makes each occurrence succeed."""
    call = next(_flaky_calls)
    if call % 3:
        raise ConnectionError(f"the service did not answer (call {call})")
    return f"answered on call {call}"


async def slow() -> str:
    """Takes longer than its interval: overlapping occurrences are skipped."""
    await trio.sleep(4.5)
    return "done after 4.5 s"


def ingest(path: str) -> int:
    """Runs when the watched file's content changes; returns its size."""
    return Path(path).stat().st_size


@click.command("demo")
@click.option(
    "--seconds",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    help="How long the demo scheduler runs.",
)
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("demo-log"),
    show_default=True,
    help="Where the log (jobs.jsonl) and the watched file live.",
)
@click.option(
    "--simulated",
    is_flag=True,
    hidden=True,
    help="Run on simulated time (for tests): the same demo, at once.",
)
def demo_command(seconds: int, directory: Path, simulated: bool) -> None:
    """Run a demo scheduler on a file log, with a live status table."""
    directory.mkdir(parents=True, exist_ok=True)
    log_path = directory / "jobs.jsonl"
    watched = directory / "watched.txt"
    click.echo(
        f"chronolog demo: {seconds} s on {log_path} "
        "(the log is the truth: run the demo again and it carries on)"
    )
    if simulated:
        from ..testing import SimulatedClock

        clock = SimulatedClock(wall_clock_now())
        trio.run(_demo, log_path, watched, seconds, clock, clock=clock.trio_clock)
    else:
        trio.run(_demo, log_path, watched, seconds, SystemClock())
    click.echo(f"\nReplay the log any time:  chronolog status {log_path}")


async def _demo(log_path: Path, watched: Path, seconds: int, clock: Clock) -> None:
    await trio.Path(watched).write_text("first content\n")
    async with open_scheduler(log_path, clock=clock, shutdown_grace=timedelta(seconds=2)) as sched:
        await sched.add("heartbeat", Every(timedelta(seconds=2)), heartbeat)
        await sched.add("cron-every-5s", Cron("* * * * * */5"), every_five_seconds)
        await sched.add(
            "flaky",
            Every(timedelta(seconds=6)),
            flaky,
            retry=Retry(max_attempts=3, backoff=timedelta(milliseconds=500)),
        )
        await sched.add("slow", Every(timedelta(seconds=3)), slow, overlap=Overlap.SKIP)
        await sched.add(
            "watch",
            FileWatch(str(watched), poll=timedelta(seconds=1)),
            functools.partial(ingest, str(watched)),
        )
        interactive = sys.stdout.isatty()
        for second in range(seconds):
            if second % 4 == 1:
                text = f"content written at second {second}\n" * (second + 1)
                await trio.Path(watched).write_text(text)
            await trio.sleep(1)
            if interactive:
                click.clear()
                click.echo(f"chronolog demo — {second + 1}/{seconds} s — log {log_path}\n")
                click.echo(format_status_table(sched.state))
        if not interactive:
            click.echo(format_status_table(sched.state))
        click.echo("\nRecent runs:")
        for status in sched.tasks():
            for run in sched.history(status.name, limit=3):
                outcome = run.outcome.value
                detail = run.error or (run.skip_reason.value if run.skip_reason else "")
                click.echo(
                    f"  {status.name:14} {run.occurrence[len(status.name) :][:28]:28} "
                    f"{outcome:13} attempts={run.attempts} {detail}"
                )
