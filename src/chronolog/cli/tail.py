"""``chronolog tail LOG [-f]``: the last events of a log, and new ones as they land.

``-f`` follows a log that another process is writing: `FileLog.follow`
and `SQLiteLog.follow` poll it (every ``--poll`` seconds) without taking
its lock. Ctrl-C
ends it; that is how a follow is meant to end, so the exit code is 0.

With ``--json`` each event is printed as one JSON object on its own line
(JSON Lines), the record exactly as the log stores it: a stream that may
never end cannot be one document, and every line can be read as soon as it
arrives (``jq`` reads such a stream as it is).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
from datetime import timedelta
from typing import TYPE_CHECKING, Final

import click
import trio
from rich.text import Text

from .._events import Completed, Failed, Skipped, Started
from ._common import BadUsage, json_option, log_argument, translate_errors
from ._output import describe_event, event_json, instant_text, stdout_console
from ._reading import open_log, prefix

if TYPE_CHECKING:
    from collections.abc import Callable, Collection
    from pathlib import Path

    from .._events import Event
    from ..log import EventLog

__all__ = ["event_line", "follow_log", "tail_command"]

DEFAULT_LINES: Final = 10
DEFAULT_POLL_SECONDS: Final = 0.25

_STYLES: Final[dict[type, str]] = {
    Started: "cyan",
    Completed: "green",
    Failed: "red",
    Skipped: "yellow",
}


def event_line(record: Event) -> Text:
    """One record as a line for people: seq, time, task, what happened."""
    line = Text(f"{record.seq:>8}  {instant_text(record.at)}  ")
    line.append(f"{record.task:<12}", style="bold")
    line.append("  ")
    line.append(describe_event(record), style=_STYLES.get(type(record), ""))
    return line


def _last_records(log: EventLog, count: int, tasks: Collection[str], last_seq: int) -> list[Event]:
    """The last ``count`` records up to ``last_seq`` (of ``tasks``, if given), oldest first.

    Only records after the base of a compacted log: the base keeps state, not events.
    """
    if count == 0:
        return []
    if not tasks:
        # Seqs of a file or SQLite log are contiguous: the read goes straight there.
        start = max(last_seq - count, 0)
        return list(prefix(log.read(after_seq=start), seq=last_seq))[-count:]
    last: list[Event] = []
    for record in prefix(log.read(), seq=last_seq):
        if record.task in tasks:
            last.append(record)
            if len(last) > 2 * count:
                del last[:-count]
    return last[-count:]


async def follow_log(
    log: EventLog, after_seq: int, tasks: Collection[str], emit: Callable[[Event], None]
) -> None:
    """Call ``emit`` for every record after ``after_seq`` as it lands, until cancelled."""
    async with contextlib.aclosing(log.follow(after_seq)) as records:
        async for record in records:
            if not tasks or record.task in tasks:
                emit(record)


#: How often ``-f`` may look for new events: from 10 ms to an hour.
_MIN_POLL_SECONDS: Final = 0.01
_MAX_POLL_SECONDS: Final = 3600.0
_POLL_RANGE: Final = f"{_MIN_POLL_SECONDS} to {_MAX_POLL_SECONDS:.0f}"


def _poll_seconds(context: click.Context, parameter: click.Parameter, value: float) -> float:
    if not _MIN_POLL_SECONDS <= value <= _MAX_POLL_SECONDS:  # also refuses nan
        raise BadUsage(f"--poll {value!r} is not from {_POLL_RANGE} seconds; give e.g. 0.25")
    return value


@click.command("tail")
@log_argument
@click.option(
    "-n",
    "--lines",
    "count",
    type=click.IntRange(min=0),
    default=DEFAULT_LINES,
    show_default=True,
    help="How many of the last events to show first.",
)
@click.option("-f", "--follow", is_flag=True, help="Keep going: show events as they land.")
@click.option(
    "--task",
    "tasks",
    multiple=True,
    help="Only events of this task (repeat the option for several).",
)
@click.option(
    "--poll",
    type=float,
    callback=_poll_seconds,
    default=DEFAULT_POLL_SECONDS,
    show_default=True,
    help=f"With -f: how often to look for new events, in seconds ({_POLL_RANGE}).",
)
@json_option
@translate_errors
def tail_command(
    log: Path, count: int, follow: bool, tasks: tuple[str, ...], poll: float, as_json: bool
) -> None:
    """Show the last events of LOG; with -f, keep showing events as they land.

    With --json, each event is one JSON object on its own line (JSON Lines).
    """
    event_log = open_log(log, poll_interval=timedelta(seconds=poll))
    console = stdout_console()

    def emit(record: Event) -> None:
        if as_json:
            sys.stdout.write(json.dumps(event_json(record), ensure_ascii=False) + "\n")
        else:
            console.print(event_line(record))
        sys.stdout.flush()

    try:
        last_seq = event_log.last_seq
        shown = _last_records(event_log, count, set(tasks), last_seq)
        if len(shown) < count and not as_json:
            base_seq = event_log.base_seq
            if base_seq:
                click.echo(
                    f"({log} was compacted at seq {base_seq}: the events up to then were "
                    f"folded into its base snapshot)",
                    err=True,
                )
        for record in shown:
            emit(record)
        if follow:
            trio.run(follow_log, event_log, last_seq, set(tasks), emit)
    except KeyboardInterrupt:
        return
    except BrokenPipeError:
        # The reader went away (``tail -f LOG | head``): stop quietly, and keep
        # Python from failing again when it flushes stdout at exit.
        _discard_stdout()


def _discard_stdout() -> None:
    with contextlib.suppress(OSError, ValueError, io.UnsupportedOperation):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
