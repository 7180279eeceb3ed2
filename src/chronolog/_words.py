"""Words for people: how instants, durations, triggers, policies and records read.

One spelling of each, whoever shows it -- the command line, the testing
harness's assertion messages, a timeline, the MCP tools -- so a reader who
learns ``every 10 min`` or ``4 min 10 s`` in one place meets the same words
everywhere. Input is another matter: the job file and the command line
read durations as ``10m`` or ``4m10s`` (`chronolog._config`).

* Instants are UTC with a ``Z`` (``2026-03-29 01:00:00Z``), or local with
  offset and abbreviation when a zone is given (``2026-03-29 03:00:00+02:00
  CEST``); a fraction of a second shows as milliseconds, or microseconds
  when it has them.
* Durations are the two largest units that matter: ``250 ms``, ``12.5 s``,
  ``4 min 10 s``, ``2 h``, ``3 d 4 h``.
* A record reads as a short sentence without its seq, time or task
  (`describe_event`); `describe_record` adds those.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any, Final

import msgspec

from ._events import (
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
from ._policies import Policy
from ._triggers import At, Cron, Every, FileWatch, Manual
from ._zones import load_zone

if TYPE_CHECKING:
    from ._events import Event
    from ._triggers import Trigger

__all__ = [
    "date_text",
    "describe_event",
    "describe_policy",
    "describe_record",
    "describe_trigger",
    "duration_text",
    "instant_text",
    "local_hint",
    "result_text",
    "shorten",
]

_DEFAULT_POLICY: Final = Policy()
#: How wide a result or a detail may be before it is cut.
SHORT_WIDTH: Final = 60


def date_text(moment: datetime) -> str:
    """``2026-03-29``: a date with a four-digit year (``%Y`` writes the year 1 as ``1``)."""
    return f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"


def instant_text(when: datetime | None, tz: tzinfo | None = None) -> str:
    """``2026-03-29 01:00:00Z``, or local with offset and abbreviation when ``tz`` is given.

    ``-`` for None. A fraction of a second shows as milliseconds
    (``01:00:00.250Z``), or as microseconds when it is no whole number of
    them.
    """
    if when is None:
        return "-"
    if tz is None:
        when = when.astimezone(UTC)
        suffix = "Z"
    else:
        when = when.astimezone(tz)
        offset = when.strftime("%z")
        suffix = f"{offset[:3]}:{offset[3:]} {when.tzname()}"
    text = f"{date_text(when)} {when:%H:%M:%S}"
    micro = when.microsecond
    if micro:
        text += f".{micro // 1000:03d}" if micro % 1000 == 0 else f".{micro:06d}"
    return text + suffix


def local_hint(when: datetime | None, trigger: Trigger | None) -> str:
    """`` (2026-03-29 03:00:00+02:00 CEST in Europe/Berlin)`` for a Cron trigger outside
    UTC, else ''."""
    if when is None or not isinstance(trigger, Cron) or trigger.tz == "UTC":
        return ""
    return f" ({instant_text(when, load_zone(trigger.tz))} in {trigger.tz})"


def duration_text(delta: timedelta | None) -> str:
    """A duration for people: ``250 ms``, ``12.5 s``, ``11 s``, ``4 min 10 s``, ``3 d 4 h``."""
    if delta is None:
        return "-"
    total = delta.total_seconds()
    sign = "-" if total < 0 else ""
    total = abs(total)
    if total < 1:
        return f"{sign}{round(total * 1000)} ms"
    if total < 60:
        # Three significant digits under 10 s, tenths above; no trailing zeros,
        # so an interval of 11 s reads "11 s" beside "2 s", never "11.0 s".
        text = f"{total:.3g}" if total < 10 else f"{total:.1f}"
        if "." in text:
            text = text.rstrip("0").removesuffix(".")
        return f"{sign}{text} s"
    whole = int(total)
    days, rest = divmod(whole, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{sign}{days} d {hours} h" if hours else f"{sign}{days} d"
    if hours:
        return f"{sign}{hours} h {minutes} min" if minutes else f"{sign}{hours} h"
    return f"{sign}{minutes} min {secs} s" if secs else f"{sign}{minutes} min"


def shorten(text: str, width: int = SHORT_WIDTH) -> str:
    """``text`` on one line, cut to ``width`` characters with an ellipsis."""
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def result_text(result: Any, *, width: int = SHORT_WIDTH) -> str:
    """A run's result as compact JSON, cut to ``width`` characters."""
    return shorten(msgspec.json.encode(result).decode(), width)


def describe_trigger(trigger: Trigger) -> str:
    """``cron '30 2 * * *' in Europe/Berlin``, ``every 5 min``, ``once at 2026-...Z``, ..."""
    if isinstance(trigger, Cron):
        text = f"cron {trigger.expr!r} in {trigger.tz}"
        if trigger.key is not None:
            # What H picked for this task: the expression as it fires.
            text += f" (H for {trigger.key!r}: {trigger.resolved_expr!r})"
        bounds = (trigger.start, trigger.end)
    elif isinstance(trigger, Every):
        text = f"every {duration_text(trigger.interval)}"
        if trigger.anchor is not None:
            text += f" from {instant_text(trigger.anchor)}"
        bounds = (trigger.start, trigger.end)
    elif isinstance(trigger, At):
        return f"once at {instant_text(trigger.when)}"
    elif isinstance(trigger, FileWatch):
        return f"when {trigger.path} changes (checked every {duration_text(trigger.poll)})"
    else:
        assert isinstance(trigger, Manual)
        return "manual (runs only when asked)"
    start, end = bounds
    if start is not None:
        text += f", not before {instant_text(start)}"
    if end is not None:
        text += f", not after {instant_text(end)}"
    return text


def describe_policy(policy: Policy) -> str:
    """The policy fields that differ from the defaults, or ``default policy``."""
    parts: list[str] = []
    for field in policy.__struct_fields__:
        value = getattr(policy, field)
        if value == getattr(_DEFAULT_POLICY, field):
            continue
        if field == "retry":
            parts.append(
                f"retry max_attempts={value.max_attempts} backoff={duration_text(value.backoff)}"
            )
        elif isinstance(value, timedelta):
            parts.append(f"{field}={duration_text(value)}")
        else:
            parts.append(f"{field}={value}")
    return ", ".join(parts) if parts else "default policy"


def _attempt_end(record: Completed | Failed) -> str:
    return f"attempt {record.attempt} after {duration_text(record.duration)}"


def describe_event(record: Event) -> str:
    """What one record says, in a short sentence without its seq, time or task."""
    if isinstance(record, TaskDefined):
        return (
            f"defined (version {record.version}): {describe_trigger(record.trigger)}, "
            f"target {record.target}, {describe_policy(record.policy)}"
        )
    if isinstance(record, TaskRemoved | TaskPaused | TaskResumed):
        verb = {TaskRemoved: "removed", TaskPaused: "paused", TaskResumed: "resumed"}[type(record)]
        return f"{verb}: {record.note}" if record.note else verb
    if isinstance(record, Scheduled):
        change = " (file changed)" if record.content_hash is not None else ""
        return f"scheduled {record.occurrence} due {instant_text(record.due)}{change}"
    if isinstance(record, Started):
        node = f" on {record.node}" if record.node else ""
        return f"started {record.occurrence} attempt {record.attempt}{node}"
    if isinstance(record, Completed):
        return (
            f"completed {record.occurrence} {_attempt_end(record)}: {result_text(record.result)}"
        )
    if isinstance(record, Failed):
        kind = f"{record.error_type}: " if record.error_type else ""
        retry = (
            f"; retry at {instant_text(record.retry_at)}"
            if record.retry_at is not None
            else "; no retry"
        )
        return f"failed {record.occurrence} {_attempt_end(record)}: {kind}{record.error}{retry}"
    assert isinstance(record, Skipped)
    if record.last_due is not None:
        return f"skipped {record.occurrence} and on: {range_text(record)}"
    due = f" (due {instant_text(record.due)})" if record.due is not None else ""
    return f"skipped {record.occurrence}{due}: {record.reason}"


def range_text(record: Skipped) -> str:
    """What a ``Skipped`` range says: "7,200 runs missed from A to B".

    Its reason is ``missed`` (down or stalled through those due times) as a
    rule; any other reads "7,200 runs skipped (overlap) from A to B".
    """
    runs = f"{record.count:,} run{'' if record.count == 1 else 's'}"
    how = "missed" if record.reason == "missed" else f"skipped ({record.reason})"
    first = instant_text(record.due) if record.due is not None else record.occurrence
    last = instant_text(record.last_due) if record.last_due is not None else "?"
    return f"{runs} {how} from {first} to {last}"


def describe_record(record: Event) -> str:
    """One line for a record in a message: its seq, time and task, then what it says."""
    return (
        f"seq {record.seq} at {instant_text(record.at)}, task {record.task!r}: "
        f"{describe_event(record)}"
    )
