"""``chronolog why``: what happened to one occurrence, and which rule decided it.

``why LOG OCCURRENCE`` takes an occurrence id (``backup@2026-03-29T01:00:00Z``,
as ``history`` and ``tail`` show them); ``why LOG TASK --at TIME`` takes the
occurrence of TASK that was due at TIME, or the last one due before it -- the
question "why did the backup not run last Sunday?".

The answer is `chronolog.explain`'s (the engine is the core's: the testing
harness explains a lost due time with it too); this module reads the log with
a progress bar and shows the answer to people or, with ``--json``, to scripts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import click
from rich.text import Text

from .._explain import Explanation, explain_from
from ._common import instant_option, json_option, log_argument, translate_errors
from ._output import (
    date_text,
    describe_event,
    event_json,
    instant_text,
    iso,
    print_json,
    stdout_console,
)
from ._progress import progress_over
from ._reading import known_records, open_log

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from datetime import datetime
    from pathlib import Path

    from .._events import Event
    from ..log import EventLog


__all__ = ["explanation_json", "why_command"]


def explanation_json(explanation: Explanation) -> dict[str, Any]:
    """``why --json``: the occurrence, its verdict, and its records."""
    end = explanation.log_end
    local = _local(explanation)
    return {
        "task": explanation.task,
        "occurrence": explanation.occurrence,
        "due": iso(explanation.due),
        "due_local": None if local is None else local.isoformat(),
        "zone": explanation.zone,
        "verdict": str(explanation.verdict),
        "reason": explanation.reason,
        "trigger": explanation.trigger,
        "dst_note": explanation.dst_note,
        "records": [event_json(record) for record in explanation.records],
        "context": [event_json(record) for record in explanation.context],
        "log_end": None if end is None else {"seq": end.seq, "at": iso(end.at)},
    }


def _local(explanation: Explanation) -> datetime | None:
    """The due time on the wall clock of the task's zone (None in UTC)."""
    if explanation.due is None or explanation.zone is None:
        return None
    return explanation.due.astimezone(ZoneInfo(explanation.zone))


def _show(explanation: Explanation) -> None:
    console = stdout_console()
    due = f"  due {instant_text(explanation.due)}" if explanation.due is not None else ""
    local = _local(explanation)
    if local is not None:
        due += f" ({date_text(local)} {local:%H:%M:%S} {local.tzname()} in {explanation.zone})"
    console.print(Text(f"{explanation.occurrence}{due}", style="bold"))
    if explanation.trigger is not None:
        console.print(f"trigger: {explanation.trigger}")
    if explanation.dst_note is not None:
        console.print(f"daylight saving: {explanation.dst_note}")
    own = {record.seq for record in explanation.records}
    merged = sorted((*explanation.records, *explanation.context), key=lambda r: r.seq)
    if merged:
        console.print()
    for record in merged:
        line = Text(f"  seq {record.seq:<8} {instant_text(record.at)}  ")
        line.append(describe_event(record), style="" if record.seq in own else "dim")
        console.print(line)
    console.print()
    verdict = Text(f"{explanation.verdict}: ", style="bold")
    verdict.append(explanation.reason[0].upper() + explanation.reason[1:])
    console.print(verdict)


@click.command("why")
@log_argument
@click.argument("target", metavar="OCCURRENCE|TASK")
@instant_option(
    "--at",
    "With a TASK: the occurrence due at this time, or the last one due before it "
    "(ISO 8601 with an offset or Z).",
)
@json_option
@translate_errors
def why_command(log: Path, target: str, at: datetime | None, as_json: bool) -> None:
    """Explain what happened to an occurrence and which rule decided it.

    OCCURRENCE is an id such as backup@2026-03-29T01:00:00Z (history and tail
    show them); or give a TASK and --at TIME for the occurrence due then.
    """
    explanation = _explain(open_log(log), target, at=at, as_json=as_json)
    if as_json:
        print_json(explanation_json(explanation))
    else:
        _show(explanation)


def _explain(log: EventLog, target: str, *, at: datetime | None, as_json: bool) -> Explanation:
    """`chronolog.explain` on ``log``, showing how far each reading has come."""
    base = log.base_state()
    total = log.last_seq

    def read(phase: str) -> Iterable[Event]:
        return _with_progress(known_records(log, base), total, phase, as_json=as_json)

    return explain_from(read, base, target, at=at)


def _with_progress(
    records: Iterable[Event], total: int, phase: str, *, as_json: bool
) -> Iterator[Event]:
    with progress_over(records, total=total, description=phase, as_json=as_json) as shown:
        yield from shown
