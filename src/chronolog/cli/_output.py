"""How the commands show things: to people (rich text) and to scripts (JSON).

One place decides how a time, a duration, a trigger, an event, a task or a
run looks, so every command says the same thing the same way, and the JSON
field names documented in docs/reference/cli.md are spelled once.

Times are UTC everywhere: ``2026-03-29 01:00:00Z`` for people,
``2026-03-29T01:00:00Z`` in JSON (the log's own spelling). Durations in JSON
are seconds (``*_seconds`` fields), except inside raw events, which keep the
log's encoding.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

import msgspec
from rich.console import Console, RenderableType

from .._events import (
    Completed,
    Event,
    Failed,
    Scheduled,
    Skipped,
    Started,
    TaskDefined,
    TaskPaused,
    TaskRemoved,
    TaskResumed,
    event_to_builtins,
)
from .._policies import Policy
from .._triggers import At, Cron, Every, FileWatch, Manual

# The spellings people read are the core's (one each, shared with the testing
# harness and the scheduler's log lines); re-exported here for the commands.
from .._words import date_text as date_text
from .._words import duration_text as duration_text

if TYPE_CHECKING:
    from .._projection import Run, TaskStatus
    from .._triggers import Trigger

__all__ = [
    "OUTCOME_STYLES",
    "date_text",
    "describe_event",
    "describe_policy",
    "describe_trigger",
    "duration_text",
    "event_json",
    "iso",
    "plain_text",
    "print_json",
    "result_text",
    "run_json",
    "seconds",
    "shorten",
    "show",
    "stdout_console",
    "task_json",
    "when_text",
]

#: Colours of outcomes and task states in tables (terminals only).
OUTCOME_STYLES: Final = {
    "completed": "green",
    "failed": "red",
    "skipped": "yellow",
    "running": "cyan",
    "retry_pending": "magenta",
    "scheduled": "blue",
    "paused": "yellow",
    "finished": "green",
    "idle": "dim",
}

_DEFAULT_POLICY: Final = Policy()
_RESULT_WIDTH: Final = 60


def stdout_console() -> Console:
    """A rich console on stdout: colours on a terminal; plain, unwrapped text in a pipe.

    In a pipe a table must not be cut to 80 columns, so the width is
    unbounded there (a table is as wide as its widest row). Markup is off:
    task names and paths are printed as they are, brackets and all.
    """
    terminal = sys.stdout.isatty()
    return Console(
        file=sys.stdout, highlight=False, markup=False, width=None if terminal else 100_000
    )


def plain_text(renderable: RenderableType) -> str:
    """``renderable`` as plain text: no colours, no padding at line ends."""
    console = Console(width=100_000, color_system=None, highlight=False, markup=False)
    with console.capture() as captured:
        console.print(renderable)
    return "\n".join(line.rstrip() for line in captured.get().splitlines())


def show(renderable: RenderableType) -> None:
    """Print a table or text on stdout: styled on a terminal, `plain_text` in a pipe."""
    console = stdout_console()
    if console.is_terminal:
        console.print(renderable)
    else:
        sys.stdout.write(plain_text(renderable) + "\n")


def print_json(document: Any) -> None:
    """Write ``document`` as one indented JSON document on stdout."""
    sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")


def iso(when: datetime | None) -> str | None:
    """A time for JSON: ISO 8601 in UTC with ``Z``, as the log writes it."""
    if when is None:
        return None
    text = when.astimezone(UTC).replace(tzinfo=None).isoformat()
    return text + "Z"


def when_text(when: datetime | None) -> str:
    """A time for people: ``2026-03-29 01:00:00Z`` (milliseconds when it has them)."""
    if when is None:
        return "-"
    utc = when.astimezone(UTC)
    text = f"{date_text(utc)} {utc:%H:%M:%S}"
    if utc.microsecond:
        text += f".{utc.microsecond // 1000:03d}"
    return text + "Z"


def seconds(delta: timedelta | None) -> float | None:
    """A duration for JSON, in seconds."""
    return None if delta is None else delta.total_seconds()


def shorten(text: str, width: int = _RESULT_WIDTH) -> str:
    """``text`` on one line, cut to ``width`` characters with an ellipsis."""
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def result_text(result: Any, *, width: int = _RESULT_WIDTH) -> str:
    """A run's result as compact JSON, cut to ``width`` characters."""
    return shorten(msgspec.json.encode(result).decode(), width)


def describe_trigger(trigger: Trigger) -> str:
    """``cron '30 2 * * *' in Europe/Berlin``, ``every 5 min``, ``at 2026-...Z``, ..."""
    if isinstance(trigger, Cron):
        text = f"cron {trigger.expr!r} in {trigger.tz}"
        if trigger.key is not None:
            # What H picked for this task: the expression as it fires.
            text += f" (H for {trigger.key!r}: {trigger.resolved_expr!r})"
        bounds = (trigger.start, trigger.end)
    elif isinstance(trigger, Every):
        text = f"every {duration_text(trigger.interval)}"
        if trigger.anchor is not None:
            text += f" from {when_text(trigger.anchor)}"
        bounds = (trigger.start, trigger.end)
    elif isinstance(trigger, At):
        return f"once at {when_text(trigger.when)}"
    elif isinstance(trigger, FileWatch):
        return f"when {trigger.path} changes (checked every {duration_text(trigger.poll)})"
    else:
        assert isinstance(trigger, Manual)
        return "manual (runs only when asked)"
    start, end = bounds
    if start is not None:
        text += f", not before {when_text(start)}"
    if end is not None:
        text += f", not after {when_text(end)}"
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
    if isinstance(record, TaskRemoved):
        return "removed"
    if isinstance(record, TaskPaused | TaskResumed):
        verb = "paused" if isinstance(record, TaskPaused) else "resumed"
        return f"{verb}: {record.note}" if record.note else verb
    if isinstance(record, Scheduled):
        change = " (file changed)" if record.content_hash is not None else ""
        return f"scheduled {record.occurrence} due {when_text(record.due)}{change}"
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
            f"; retry at {when_text(record.retry_at)}"
            if record.retry_at is not None
            else "; no retry"
        )
        return f"failed {record.occurrence} {_attempt_end(record)}: {kind}{record.error}{retry}"
    assert isinstance(record, Skipped)
    due = f" (due {when_text(record.due)})" if record.due is not None else ""
    return f"skipped {record.occurrence}{due}: {record.reason}"


def event_json(record: Event) -> dict[str, Any]:
    """A record as JSON: exactly the fields the log stores (``type``, ``seq``, ...)."""
    return event_to_builtins(record)


def task_json(status: TaskStatus) -> dict[str, Any]:
    """A task's status for ``status --json`` and ``replay --json``."""
    return {
        "task": status.name,
        "state": status.state,
        "paused": status.paused,
        "finished": status.finished,
        "note": status.note,
        "trigger": describe_trigger(status.trigger),
        "target": status.target,
        "version": status.version,
        "next_run": iso(status.next_run),
        "last_run": iso(status.last_run),
        "last_result": status.last_result,
        "last_error": status.last_error,
        "last_duration_seconds": seconds(status.last_duration),
        "runs": status.run_count,
        "errors": status.error_count,
        "skips": status.skip_count,
        "running": list(status.running),
    }


def run_json(run: Run) -> dict[str, Any]:
    """One run of a task for ``history --json`` (the fields of `chronolog.Run`)."""
    return {
        "task": run.task,
        "occurrence": run.occurrence,
        "due": iso(run.due),
        "outcome": str(run.outcome),
        "attempts": run.attempts,
        "started": iso(run.started),
        "finished": iso(run.finished),
        "duration_seconds": seconds(run.duration),
        "error": run.error,
        "result": run.result,
        "skip_reason": None if run.skip_reason is None else str(run.skip_reason),
        "retry_at": iso(run.retry_at),
        "node": run.node,
        "seq": run.seq,
    }
