"""``chronolog history LOG TASK``: the runs of one task, newest first (by due time).

Unlike ``Scheduler.history``, which shows the window of recent runs a
scheduler keeps, this reads the whole log: ``--since`` reaches back as far
as the log does, and a removed task still has its history. A compacted log
reaches back to its base snapshot, and the base adds the recent runs it
keeps of each task.
"""

from __future__ import annotations

import heapq
from typing import TYPE_CHECKING

import click
from rich import box
from rich.table import Table
from rich.text import Text

from .._errors import UnknownTask, closest_match
from .._events import TaskDefined
from .._occurrences import OccurrenceTracker
from .._projection import Outcome
from ._common import instant_option, json_option, log_argument, translate_errors
from ._output import (
    OUTCOME_STYLES,
    duration_text,
    instant_text,
    print_json,
    result_text,
    run_json,
    shorten,
    show,
)
from ._progress import progress_over
from ._reading import known_records, open_log

if TYPE_CHECKING:
    from collections.abc import Iterable
    from datetime import datetime
    from pathlib import Path

    from .._events import Event
    from .._occurrences import RecordedOccurrence
    from .._projection import Run

__all__ = ["history_command", "task_history"]

DEFAULT_LIMIT = 20


def _moment(entry: RecordedOccurrence) -> datetime:
    """When a run belongs on the calendar: its due time, else its first record."""
    due = entry.due
    return due if due is not None else entry.records[0].at


def task_history(
    records: Iterable[Event],
    task: str,
    *,
    limit: int | None = DEFAULT_LIMIT,
    since: datetime | None = None,
    until: datetime | None = None,
    outcomes: frozenset[Outcome] = frozenset(),
) -> list[Run]:
    """Runs of ``task`` in ``records``, newest first (by due time).

    ``since``/``until`` keep runs due (or, without a due time, first
    recorded) in that interval; ``outcomes`` keeps those outcomes only;
    ``limit`` keeps the newest so many (None: all). Raises `UnknownTask`
    when no record defines ``task``.
    """
    names: set[str] = set()
    tracker = OccurrenceTracker()
    # The newest runs so far, as a min-heap of (due time, seq, run): a bounded
    # window however long the log.
    newest: list[tuple[datetime, int, Run]] = []

    def keep(entry: RecordedOccurrence) -> None:
        moment = _moment(entry)
        run = entry.run()
        # A range of missed due times belongs to every moment it spans.
        reaches = run.last_due if run.last_due is not None else moment
        if (since is not None and reaches < since) or (until is not None and moment > until):
            return
        if outcomes and run.outcome not in outcomes:
            return
        item = (moment, run.seq, run)
        if limit is None or len(newest) < limit:
            heapq.heappush(newest, item)
        elif item[:2] > newest[0][:2]:
            heapq.heapreplace(newest, item)

    for record in records:
        if record.task != task:
            if type(record) is TaskDefined:
                names.add(record.task)
            continue
        names.add(task)
        settled = tracker.feed(record)
        if settled is not None:
            keep(settled)
    if task not in names:
        hint = closest_match(task, sorted(names))
        suggestion = f"; did you mean {hint!r}?" if hint else ""
        known = ", ".join(sorted(names)[:10]) or "none"
        raise UnknownTask(f"no task named {task!r} in this log{suggestion} (tasks: {known})")
    for entry in tracker.still_open():
        keep(entry)
    newest.sort(key=lambda item: item[:2], reverse=True)
    return [run for _, _, run in newest]


def _detail(run: Run) -> Text:
    if run.error is not None:
        text = Text(shorten(run.error), style="red")
        if run.retry_at is not None:
            text.append(f" (retry at {instant_text(run.retry_at)})")
        return text
    if run.last_due is not None and run.skip_reason is not None:
        runs = f"{run.count:,} run{'' if run.count == 1 else 's'}"
        how = "missed" if run.skip_reason == "missed" else f"skipped ({run.skip_reason})"
        return Text(
            f"{runs} {how} from {instant_text(run.due)} to {instant_text(run.last_due)}",
            style="yellow",
        )
    if run.skip_reason is not None:
        return Text(str(run.skip_reason), style="yellow")
    if run.outcome is Outcome.COMPLETED:
        return Text(result_text(run.result))
    return Text("")


def _table(task: str, runs: list[Run]) -> Table:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="bold")
    for header in ("occurrence", "due", "outcome", "attempts", "started", "took", "detail"):
        table.add_column(header, justify="right" if header == "attempts" else "left")
    for run in runs:
        table.add_row(
            Text(run.occurrence[len(task) :]),
            instant_text(run.due),
            Text(str(run.outcome), style=OUTCOME_STYLES.get(str(run.outcome), "")),
            str(run.attempts),
            instant_text(run.started),
            duration_text(run.duration),
            _detail(run),
        )
    return table


@click.command("history")
@log_argument
@click.argument("task")
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=DEFAULT_LIMIT,
    show_default=True,
    help="Show the newest N runs; 0 shows every run.",
)
@instant_option("--since", "Only runs due at or after this time (ISO 8601 with an offset or Z).")
@instant_option("--until", "Only runs due at or before this time (ISO 8601 with an offset or Z).")
@click.option(
    "--outcome",
    "outcomes",
    multiple=True,
    type=click.Choice([outcome.value for outcome in Outcome]),
    help="Only runs with this outcome (repeat the option for several).",
)
@json_option
@translate_errors
def history_command(
    log: Path,
    task: str,
    limit: int,
    since: datetime | None,
    until: datetime | None,
    outcomes: tuple[str, ...],
    as_json: bool,
) -> None:
    """Show the runs of TASK in LOG, newest first: when each was due, how it ended."""
    event_log = open_log(log)
    base = event_log.base_state()
    with progress_over(
        known_records(event_log, base),
        total=event_log.last_seq,
        description="reading",
        as_json=as_json,
    ) as records:
        runs = task_history(
            records,
            task,
            limit=limit or None,
            since=since,
            until=until,
            outcomes=frozenset(Outcome(outcome) for outcome in outcomes),
        )
    if as_json:
        print_json({"task": task, "runs": [run_json(run) for run in runs]})
        return
    show(_table(task, runs) if runs else f"{task}: no runs match")
    if base.seq:
        show(
            f"({log} was compacted at seq {base.seq}: of the runs before then, only the "
            f"recent ones its base snapshot keeps are shown)"
        )
