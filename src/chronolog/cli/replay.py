"""``chronolog replay LOG --at TIME | --seq N``: the whole state as it was then.

The state is what the scheduler held at that moment: every task with its
status, and every occurrence that was open (scheduled, running, waiting to
retry). It is the fold of the log's prefix -- the records up to seq N, or
those recorded up to TIME -- so it equals ``replay`` of a log cut there. A
compacted log's records fold onto its base snapshot; a moment before the
base is an error that says where the log was compacted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click
from rich import box
from rich.table import Table
from rich.text import Text

from ._common import (
    BadUsage,
    instant_option,
    json_option,
    log_argument,
    translate_errors,
)
from ._output import (
    OUTCOME_STYLES,
    instant_text,
    iso,
    print_json,
    run_json,
    show,
    task_json,
)
from ._reading import Tally, open_log, read_state
from .status import status_table

if TYPE_CHECKING:
    from datetime import datetime
    from pathlib import Path

    from .._projection import State

__all__ = ["replay_command", "state_json"]


def state_json(state: State, tally: Tally, log_last_seq: int) -> dict[str, Any]:
    """``replay --json``: the state after the last record folded."""
    return {
        "seq": state.seq,
        "at": iso(tally.last.at) if tally.last is not None else None,
        "records": tally.count,
        "log_last_seq": log_last_seq,
        "tasks": [
            {
                **task_json(status),
                "open": [run_json(run) for run in state.open_occurrences(status.name)],
            }
            for status in state.tasks()
        ],
    }


def _open_table(state: State) -> Table | None:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="bold")
    for header in ("occurrence", "due", "outcome", "attempts", "retry at"):
        table.add_column(header)
    for name in state.task_names():
        for run in state.open_occurrences(name):
            table.add_row(
                Text(run.occurrence),
                instant_text(run.due),
                Text(str(run.outcome), style=OUTCOME_STYLES.get(str(run.outcome), "")),
                str(run.attempts),
                instant_text(run.retry_at),
            )
    return table if table.row_count else None


@click.command("replay")
@log_argument
@instant_option("--at", "The state as it was at this time (ISO 8601 with an offset or Z).")
@click.option(
    "--seq",
    type=click.IntRange(min=0),
    help="The state right after the record with this seq (0: before the first).",
)
@json_option
@translate_errors
def replay_command(log: Path, at: datetime | None, seq: int | None, as_json: bool) -> None:
    """Show the whole state of LOG at a moment: every task and every open occurrence.

    Without --at or --seq: the state at the end of the log.
    """
    if at is not None and seq is not None:
        raise BadUsage("give --at or --seq, not both")
    last_seq = open_log(log).last_seq
    if seq is not None and seq > last_seq:
        raise BadUsage(f"--seq {seq} is past the end of {log}, whose last seq is {last_seq}")
    tally = Tally()
    state = read_state(log, as_json=as_json, seq=seq, at=at, tally=tally)
    if as_json:
        print_json(state_json(state, tally, last_seq))
        return
    if tally.last is None and state.seq == 0:
        moment = f" at {instant_text(at)}" if at is not None else ""
        show(f"{log}{moment}: no records yet, no tasks (the log goes on to seq {last_seq})")
        return
    recorded = (
        f"recorded {instant_text(tally.last.at)}"
        if tally.last is not None
        else "the base snapshot of the compacted log"
    )
    show(f"{log} after seq {state.seq}, {recorded} (the log goes on to seq {last_seq}):")
    show(status_table(state) if state.task_names() else "no tasks")
    open_runs = _open_table(state)
    if open_runs is not None:
        show("\nOpen occurrences:")
        show(open_runs)
