"""``chronolog demo``: a small scheduler on a file log you can look at.

It runs a handful of tasks for a few seconds -- cron, a fixed interval, a
flaky task with retries, a slow task whose overlapping runs are skipped, and
a file watch -- shows a live status table, then a short history and the
command that replays the log. Run it again: the log carries on where it
stopped, which is the point of a scheduler whose log is the truth.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import shlex
import shutil
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import click
import trio

from .._clock import Clock, SystemClock, wall_clock_now
from .._policies import Overlap, Retry
from .._scheduler import open_scheduler
from .._triggers import Cron, Every, FileWatch
from ._common import BadUsage, json_option, translate_errors
from ._output import instant_text, print_json, run_json, task_json
from .status import format_status_table

if TYPE_CHECKING:
    from .._projection import Run
    from .._scheduler import Scheduler

__all__ = ["command_name", "demo_command"]

#: The longest demo (``--seconds``): an hour.
MAX_SECONDS: Final = 3600
#: How many of the latest runs the demo shows at the end.
RECENT_RUNS: Final = 12

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


def command_name() -> str:
    """How to run ``chronolog`` again, as this process was started.

    ``chronolog`` when that name on PATH is this very program; else the path
    it was started by (``.venv/bin/chronolog``); for ``python -m chronolog``
    (or an embedding that is no script of ours), this interpreter with ``-m``.
    """
    started_as = sys.argv[0] if sys.argv else ""
    if Path(started_as).name == "chronolog":
        found = shutil.which("chronolog")
        with contextlib.suppress(OSError):
            if found is not None and os.path.samefile(found, started_as):
                return "chronolog"
        return shlex.quote(started_as)
    python = shutil.which("python")
    with contextlib.suppress(OSError):
        if python is not None and os.path.samefile(python, sys.executable):
            return "python -m chronolog"
    return f"{shlex.quote(sys.executable)} -m chronolog"


def _seconds(context: click.Context, parameter: click.Parameter, value: int) -> int:
    if not 1 <= value <= MAX_SECONDS:
        raise BadUsage(f"--seconds {value} is not from 1 to {MAX_SECONDS} (an hour); give e.g. 20")
    return value


@click.command("demo")
@click.option(
    "--seconds",
    type=int,
    callback=_seconds,
    default=20,
    show_default=True,
    help=f"How long the demo scheduler runs (1 to {MAX_SECONDS}).",
)
@click.option(
    "--dir",
    "directory",
    type=click.Path(path_type=Path),
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
@json_option
@translate_errors
def demo_command(seconds: int, directory: Path, simulated: bool, as_json: bool) -> None:
    """Run a demo scheduler on a file log, with a live status table.

    With --json nothing is shown while it runs; at the end one document holds
    the log's path, every task's status and the latest runs.
    """
    if directory.exists() and not directory.is_dir():
        raise BadUsage(
            f"--dir {directory} is a file; give a directory for the demo's log (it is made "
            f"when missing), e.g. demo-log"
        )
    directory.mkdir(parents=True, exist_ok=True)
    log_path = directory / "jobs.jsonl"
    watched = directory / "watched.txt"
    replay = f"{command_name()} status {shlex.quote(str(log_path))}"
    if not as_json:
        click.echo(
            f"chronolog demo: {seconds} s on {log_path} "
            "(the log is the truth: run the demo again and it carries on)"
        )
    show = not as_json
    if simulated:
        from ..testing import SimulatedClock

        clock = SimulatedClock(wall_clock_now())
        summary = trio.run(_demo, log_path, watched, seconds, clock, show, clock=clock.trio_clock)
    else:
        summary = trio.run(_demo, log_path, watched, seconds, SystemClock(), show)
    if as_json:
        print_json({"log": str(log_path), "seconds": seconds, **summary, "replay": replay})
        return
    click.echo(f"\nReplay the log any time:  {replay}")


def _happened(run: Run) -> datetime | None:
    """When a run last did something: settled, else started (None: not yet)."""
    return run.finished or run.started


def _recent_runs(sched: Scheduler) -> list[Run]:
    """The latest runs of every task that started or settled, in the order they did."""
    runs = [
        run
        for status in sched.tasks()
        for run in sched.history(status.name, limit=RECENT_RUNS)
        if _happened(run) is not None
    ]
    runs.sort(key=lambda run: (_happened(run), run.seq))
    return runs[-RECENT_RUNS:]


async def _demo(
    log_path: Path, watched: Path, seconds: int, clock: Clock, show: bool
) -> dict[str, Any]:
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
        interactive = show and sys.stdout.isatty()
        for second in range(seconds):
            if second % 4 == 1:
                text = f"content written at second {second}\n" * (second + 1)
                await trio.Path(watched).write_text(text)
            await trio.sleep(1)
            if interactive:
                click.clear()
                click.echo(f"chronolog demo — {second + 1}/{seconds} s — log {log_path}\n")
                click.echo(format_status_table(sched.state))
        recent = _recent_runs(sched)
        if not show:
            return {
                "tasks": [task_json(status) for status in sched.tasks()],
                "recent_runs": [run_json(run) for run in recent],
            }
        if not interactive:
            click.echo(format_status_table(sched.state))
        click.echo("\nRecent runs (the latest last):")
        for run in recent:
            outcome = run.outcome.value
            detail = run.error or (run.skip_reason.value if run.skip_reason else "")
            after_name = run.occurrence[len(run.task) :][:28]
            click.echo(
                f"  {instant_text(_happened(run)):24}  {run.task:14} {after_name:28} "
                f"{outcome:13} attempts={run.attempts} {detail}".rstrip()
            )
        return {}
