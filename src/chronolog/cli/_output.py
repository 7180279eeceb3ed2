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

from rich.console import Console, RenderableType

from .._events import (
    Event,
    event_to_builtins,
)
from .._policies import Policy

# The words people read are the core's (one spelling each, shared with the
# testing harness and the scheduler's log lines); re-exported for the commands.
from .._words import date_text as date_text
from .._words import describe_event as describe_event
from .._words import describe_policy as describe_policy
from .._words import describe_trigger as describe_trigger
from .._words import duration_text as duration_text
from .._words import instant_text as instant_text
from .._words import result_text as result_text
from .._words import shorten as shorten

if TYPE_CHECKING:
    from .._projection import Run, TaskStatus

__all__ = [
    "OUTCOME_STYLES",
    "date_text",
    "describe_event",
    "describe_policy",
    "describe_trigger",
    "duration_text",
    "event_json",
    "instant_text",
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


def seconds(delta: timedelta | None) -> float | None:
    """A duration for JSON, in seconds."""
    return None if delta is None else delta.total_seconds()


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
    """One run of a task for ``history --json`` (the fields of `chronolog.Run`).

    A range of due times missed in one outage is one entry: ``due`` its
    first, ``last_due`` its last and ``count`` how many (1 and null for a
    single occurrence)."""
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
        "last_due": iso(run.last_due),
        "count": run.count,
    }
