"""Text for people: instants, records and tables, as the harness shows them.

Assertion messages and ``str(timeline)`` are read by someone whose test just
failed, so every instant is shown the same way (UTC with a ``Z``, or local
with its offset and abbreviation) and every record names its seq.
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from typing import TYPE_CHECKING, Final

from .._events import (
    Completed,
    Failed,
    Scheduled,
    Skipped,
    Started,
    TaskDefined,
    TaskPaused,
    TaskRemoved,
    TaskResumed,
)
from .._triggers import At, Cron, Every, FileWatch
from .._zones import load_zone

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from .._events import Event
    from .._triggers import Trigger

__all__ = [
    "describe_record",
    "describe_trigger",
    "instant",
    "local_hint",
    "seq_list",
    "shorten",
    "table",
]

_DETAIL_CHARS: Final = 70


def instant(when: datetime | None, tz: tzinfo | None = None) -> str:
    """``2026-03-29 01:00:00Z``, or local with offset and abbreviation when ``tz`` is given."""
    if when is None:
        return "-"
    if tz is None:
        when = when.astimezone(UTC)
        suffix = "Z"
    else:
        when = when.astimezone(tz)
        offset = when.strftime("%z")
        suffix = f"{offset[:3]}:{offset[3:]} {when.tzname()}"
    text = when.strftime("%Y-%m-%d %H:%M:%S")
    if when.microsecond:
        text += f".{when.microsecond:06d}"
    return text + suffix


def local_hint(when: datetime | None, trigger: Trigger | None) -> str:
    """`` (03:00:00+02:00 CEST in Europe/Berlin)`` for a Cron trigger outside UTC, else ''."""
    if when is None or not isinstance(trigger, Cron) or trigger.tz == "UTC":
        return ""
    local = when.astimezone(load_zone(trigger.tz))
    offset = local.strftime("%z")
    return (
        f" ({local.strftime('%Y-%m-%d %H:%M:%S')}{offset[:3]}:{offset[3:]} "
        f"{local.tzname()} in {trigger.tz})"
    )


def shorten(text: str, limit: int = _DETAIL_CHARS) -> str:
    """``text`` on one line, cut to ``limit`` characters with an ellipsis."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def seq_list(seqs: Sequence[int], limit: int = 6) -> str:
    """``3,7,8`` -- or the first few and a count when there are many."""
    if len(seqs) <= limit:
        return ",".join(map(str, seqs))
    head = ",".join(map(str, seqs[: limit - 1]))
    return f"{head},…{seqs[-1]} ({len(seqs)})"


def describe_trigger(trigger: Trigger) -> str:
    """``cron '0 2 * * *' in Europe/Berlin``, ``every 0:10:00``, ``at 2026-...Z``, ..."""
    if isinstance(trigger, Cron):
        text = f"cron {trigger.expr!r} in {trigger.tz}"
    elif isinstance(trigger, Every):
        text = f"every {trigger.interval}"
        if trigger.anchor is not None:
            text += f" from {instant(trigger.anchor)}"
    elif isinstance(trigger, At):
        return f"at {instant(trigger.when)}"
    elif isinstance(trigger, FileWatch):
        return f"on changes of {trigger.path!r}"
    else:
        return "manual"
    if trigger.start is not None:
        text += f", from {instant(trigger.start)}"
    if trigger.end is not None:
        text += f", until {instant(trigger.end)}"
    return text


def describe_record(record: Event) -> str:
    """One line saying what a record records, seq first."""
    head = f"seq {record.seq}  {type(record).__name__}"
    if isinstance(record, TaskDefined):
        trigger = describe_trigger(record.trigger)
        body = f"task {record.task!r} v{record.version}: {trigger} -> {record.target}"
    elif isinstance(record, TaskPaused | TaskResumed):
        note = f" (note: {record.note!r})" if record.note else ""
        body = f"task {record.task!r}{note}"
    elif isinstance(record, TaskRemoved):
        body = f"task {record.task!r}"
    elif isinstance(record, Scheduled):
        body = f"{record.occurrence}  due {instant(record.due)}"
    elif isinstance(record, Started):
        node = f" on node {record.node!r}" if record.node else ""
        body = f"{record.occurrence}  attempt {record.attempt}{node}"
    elif isinstance(record, Completed):
        body = f"{record.occurrence}  attempt {record.attempt} after {record.duration}"
    elif isinstance(record, Failed):
        retry = f", retry at {instant(record.retry_at)}" if record.retry_at else ", no retry"
        body = f"{record.occurrence}  attempt {record.attempt}: {record.error!r}{retry}"
    else:
        assert isinstance(record, Skipped)
        body = f"{record.occurrence}  reason {record.reason}"
    return f"{head}  {body}  [recorded {instant(record.at)}]"


def table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Left-aligned columns, two spaces apart; trailing spaces trimmed."""
    materialised = [list(headers), *(list(row) for row in rows)]
    widths = [max(len(row[column]) for row in materialised) for column in range(len(headers))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in materialised
    ]
    return "\n".join(lines)
