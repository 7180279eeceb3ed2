"""``chronolog status LOG``: what a log says about every task, now.

Reads any log, also while a scheduler writes it: the file is replayed into
the same State the scheduler holds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click
from rich import box
from rich.table import Table
from rich.text import Text

from ._common import json_option, log_argument, translate_errors
from ._output import (
    OUTCOME_STYLES,
    duration_text,
    instant_text,
    plain_text,
    print_json,
    result_text,
    shorten,
    show,
    task_json,
)
from ._reading import read_state

if TYPE_CHECKING:
    from pathlib import Path

    from .._projection import State, TaskStatus

__all__ = ["format_status_table", "status_command", "status_table"]


def _last_result(status: TaskStatus) -> Text:
    if status.last_error is not None:
        return Text(shorten(f"error: {status.last_error}", 40), style="red")
    if status.last_run is None:
        return Text("-")
    return Text(result_text(status.last_result, width=40))


def status_table(state: State) -> Table:
    """Every task of ``state`` as a rich table: the ``status`` command's view."""
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="bold")
    for header in ("task", "state", "next run", "last run", "took", "last result"):
        table.add_column(header)
    table.add_column("runs/errors/skips", justify="right")
    for status in state.tasks():
        state_cell = Text(status.state, style=OUTCOME_STYLES.get(status.state, ""))
        if status.note and status.paused:
            # Cut: a long note must not widen the column past the table.
            state_cell.append(f" ({shorten(status.note, 40)})", style="dim")
        table.add_row(
            Text(status.name),
            state_cell,
            instant_text(status.next_run),
            instant_text(status.last_run),
            duration_text(status.last_duration),
            _last_result(status),
            f"{status.run_count}/{status.error_count}/{status.skip_count}",
        )
    return table


def format_status_table(state: State) -> str:
    """The state of every task as plain text (no colours), e.g. for a live view."""
    if not state.task_names():
        return "no tasks"
    return plain_text(status_table(state))


@click.command("status")
@log_argument
@json_option
@translate_errors
def status_command(log: Path, as_json: bool) -> None:
    """Show every task of LOG: state, next and last run, last result, counts."""
    state = read_state(log, as_json=as_json)
    if as_json:
        print_json({"seq": state.seq, "tasks": [task_json(status) for status in state.tasks()]})
        return
    if not state.task_names():
        show(f"no tasks in {log} (seq {state.seq})")
        return
    show(status_table(state))
