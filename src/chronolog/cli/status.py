"""``chronolog status LOG``: what a log says about every task, now.

Reads any log, also while a scheduler writes it: the file is replayed into
the same State the scheduler holds.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import msgspec

from .._errors import ChronologError
from .._projection import replay
from ..log import FileLog

if TYPE_CHECKING:
    from datetime import datetime, timedelta

    from .._projection import State, TaskStatus

__all__ = ["format_status_table", "status_command"]


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") + "Z" if value is not None else "-"


def _last(status: TaskStatus) -> str:
    if status.last_error is not None:
        text = f"error: {status.last_error}"
    elif status.last_result is not None:
        text = msgspec.json.encode(status.last_result).decode()
    else:
        text = "-"
    return text if len(text) <= 40 else text[:39] + "…"


def _duration(value: timedelta | None) -> str:
    return f"{value.total_seconds():.1f}s" if value is not None else "-"


def format_status_table(state: State) -> str:
    """The state of every task as a plain-text table."""
    headers = ("task", "state", "next run", "last run", "took", "last result", "runs/err/skip")
    rows = [
        (
            status.name,
            status.state,
            _when(status.next_run),
            _when(status.last_run),
            _duration(status.last_duration),
            _last(status),
            f"{status.run_count}/{status.error_count}/{status.skip_count}",
        )
        for status in state.tasks()
    ]
    if not rows:
        return "no tasks"
    widths = [max(len(row[i]) for row in (headers, *rows)) for i in range(len(headers))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in (headers, *rows)
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(line.rstrip() for line in lines)


def _status_json(state: State) -> list[dict[str, Any]]:
    return [
        {
            "task": status.name,
            "state": status.state,
            "paused": status.paused,
            "note": status.note,
            "next_run": status.next_run.isoformat() if status.next_run else None,
            "last_run": status.last_run.isoformat() if status.last_run else None,
            "last_result": status.last_result,
            "last_error": status.last_error,
            "runs": status.run_count,
            "errors": status.error_count,
            "skips": status.skip_count,
            "running": list(status.running),
        }
        for status in state.tasks()
    ]


@click.command("status")
@click.argument("log", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
def status_command(log: Path, as_json: bool) -> None:
    """Show every task of LOG: state, next and last run, counts."""
    try:
        state = replay(FileLog(log).read())
    except (ChronologError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps({"seq": state.seq, "tasks": _status_json(state)}, indent=2))
    else:
        click.echo(format_status_table(state))
