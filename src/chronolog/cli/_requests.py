"""Control requests and their results, applied to a running scheduler or to a log.

One request shape serves both ways a control command can take: the control
socket carries it to a running ``chronolog run`` (`apply_live`), and when no
scheduler holds the log the command applies it itself (`apply_direct`).
Both return the same result fields, so ``--json`` output does not depend on
whether a scheduler was running (except ``via``, added by the command).

Results, by command (every one also has ``command`` and ``task``):

* ``pause`` / ``resume``: ``paused`` (the state after), ``changed``;
* ``run-now``: ``occurrence``, ``started`` (False when recorded for later);
* ``cancel``: ``cancelled`` (how many runs);
* ``remove``: ``removed`` (True);
* ``add``: ``change`` (``created``/``changed``/``unchanged``), ``version``,
  ``trigger``, ``target``;
* ``reload`` (no ``task``): ``created``, ``changed``, ``unchanged``,
  ``removed``, ``kept`` (task names), ``restart_needed`` (settings that
  take effect at the next start).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import attrs
import trio

from .._command_rules import (
    cancel_events,
    define_events,
    pause_events,
    remove_events,
    resume_events,
    run_now_events,
)
from .._config import resolve_job
from .._control import ControlError
from .._events import TaskDefined
from .._jobs import declare, target_text
from .._projection import fold_into
from .._triggers import Manual
from ._output import describe_trigger

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from datetime import datetime

    from .._command_rules import IfExists
    from .._config import Job
    from .._events import Event
    from .._jobs import Source
    from .._projection import State
    from .._scheduler import Scheduler
    from ..log import EventLog
    from ..log.postgres import PostgresLog

__all__ = [
    "COMMANDS",
    "Request",
    "apply_direct",
    "apply_live",
    "apply_shared",
    "decide",
    "parse_request",
]

COMMANDS: Final = ("pause", "resume", "run-now", "cancel", "remove", "add", "reload")
_IF_EXISTS: Final = ("update", "error", "keep")
#: Who sends an ``add``: its task's target string says so (see ``_jobs``).
_SOURCES: Final = ("add", "mcp")


@attrs.frozen
class Request:
    """A control request, checked."""

    command: str
    task: str = ""
    note: str = ""
    job: dict[str, Any] = attrs.field(factory=dict)
    if_exists: IfExists = "update"
    source: Source = "add"

    def as_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {"command": self.command}
        if self.command == "add":
            document |= {"job": self.job, "if_exists": self.if_exists}
            if self.source != "add":
                document["source"] = self.source
        elif self.command != "reload":
            document["task"] = self.task
        if self.command in ("pause", "resume", "remove"):
            document["note"] = self.note
        return document


def parse_request(message: dict[str, Any]) -> Request:
    """A `Request` from a decoded message; `ControlError` ("BadRequest") saying what is wrong."""
    command = message.get("command")
    if command not in COMMANDS:
        raise ControlError(
            f"unknown command {command!r}; expected one of {', '.join(COMMANDS)}", "BadRequest"
        )
    fields: dict[str, Any] = {"command": command}
    for key, kind in (
        ("task", str),
        ("note", str),
        ("job", dict),
        ("if_exists", str),
        ("source", str),
    ):
        if key in message:
            if not isinstance(message[key], kind):
                raise ControlError(f"{key} must be a {kind.__name__}", "BadRequest")
            fields[key] = message[key]
    if command == "add":
        if not fields.get("job"):
            raise ControlError("add needs a job", "BadRequest")
        name = fields["job"].get("name")
        fields["task"] = name if isinstance(name, str) else ""
    elif command != "reload" and not fields.get("task"):
        raise ControlError(f"{command} needs a task", "BadRequest")
    if fields.get("if_exists", "update") not in _IF_EXISTS:
        raise ControlError(f"if_exists must be one of {', '.join(_IF_EXISTS)}", "BadRequest")
    if fields.get("source", "add") not in _SOURCES:
        raise ControlError(f"source must be one of {', '.join(_SOURCES)}", "BadRequest")
    return Request(**fields)


def _job(request: Request) -> Job:
    # Paths in the request are absolute (the command line resolved them).
    return resolve_job(request.job, base=Path.cwd(), source=f"cannot add {request.task!r}")


def _add_result(definition: TaskDefined, change: str) -> dict[str, Any]:
    return {
        "command": "add",
        "task": definition.task,
        "change": change,
        "version": definition.version,
        "trigger": describe_trigger(definition.trigger),
        "target": definition.target,
    }


async def apply_live(
    scheduler: Scheduler,
    request: Request,
    *,
    result_max_bytes: int,
    reload: Callable[[], Awaitable[dict[str, Any]]],
) -> dict[str, Any]:
    """Carry out ``request`` on a running scheduler."""
    name = request.task
    base: dict[str, Any] = {"command": request.command, "task": name}
    if request.command == "reload":
        return {"command": "reload", **await reload()}
    if request.command == "add":
        job = _job(request)
        declared = await declare(
            scheduler,
            job,
            added=True,
            result_max_bytes=result_max_bytes,
            if_exists=request.if_exists,
            source=request.source,
        )
        return _add_result(scheduler.state.definition(job.name), declared.change)
    was_paused = scheduler.status(name).paused  # UnknownTask, with the closest name
    if request.command == "pause":
        await scheduler.pause(name, note=request.note)
        return base | {"paused": True, "changed": not was_paused}
    if request.command == "resume":
        await scheduler.resume(name, note=request.note)
        return base | {"paused": False, "changed": was_paused}
    if request.command == "run-now":
        occurrence = await scheduler.run_now(name)
        return base | {"occurrence": occurrence, "started": True}
    if request.command == "cancel":
        return base | {"cancelled": await scheduler.cancel(name)}
    assert request.command == "remove"
    await scheduler.remove(name, note=request.note)
    return base | {"removed": True}


async def apply_direct(log: EventLog, request: Request, now: datetime) -> dict[str, Any]:
    """Carry out ``request`` on ``log``, which this process holds open as its only writer."""
    state = await trio.to_thread.run_sync(log.load_state)
    events, result = decide(state, request, now)
    await log.append(events)
    return result


async def apply_shared(log: PostgresLog, request: Request, now: datetime) -> dict[str, Any]:
    """Carry out ``request`` on a log several schedulers share (it is open here).

    Decided in a turn (`PostgresLog.appending`): on the state with every
    record, while no node appends, so the command sees the log as it is.
    Every node follows the log: a pause, a removal or a cancel reaches the
    nodes that act on it, a manual run is started by whichever claims it.
    """
    state = await trio.to_thread.run_sync(log.load_state)
    nodes = await trio.to_thread.run_sync(log.nodes)
    running = any(holder.alive for holder in nodes)
    async with log.appending(state.seq) as turn:
        state = fold_into(state, turn.records)
        events, result = decide(state, request, now, nodes_running=running)
        await turn.append(events)
    return result


def decide(
    state: State, request: Request, now: datetime, *, nodes_running: bool = False
) -> tuple[list[Event], dict[str, Any]]:
    """What ``request`` appends to a log with ``state`` that no scheduler holds open
    as its only writer, and the command's result.

    ``nodes_running``: schedulers of a shared log are running (they follow
    it): a manual run is started by one of them, a cancel is recorded.
    """
    name = request.task
    base: dict[str, Any] = {"command": request.command, "task": name}
    if request.command == "reload":
        raise ControlError(
            "no scheduler is running on this log, so there is nothing to reload; "
            "`chronolog run` reads the job file when it starts"
            + ("; on a shared log, send SIGHUP to each `chronolog run`" if nodes_running else ""),
            "NotRunning",
        )
    if request.command == "add":
        job = _job(request)
        target = target_text(job.target, added=True, source=request.source)
        existed = name in state
        events = define_events(
            state, name, job.trigger, target, job.policy, now, request.if_exists
        )
        change = "changed" if events and existed else "created" if events else "unchanged"
        defined = [event for event in events if isinstance(event, TaskDefined)]
        return events, _add_result(defined[0] if defined else state.definition(name), change)
    if request.command == "pause":
        events = pause_events(state, name, request.note, now)
        return events, base | {"paused": True, "changed": bool(events)}
    if request.command == "resume":
        events = resume_events(state, name, request.note, now)
        return events, base | {"paused": False, "changed": bool(events)}
    if request.command == "run-now":
        status = state.status(name)
        if not nodes_running and (not isinstance(status.trigger, Manual) or status.paused):
            raise ControlError(
                f"no scheduler is running on this log, and a run of {name!r} can be recorded "
                f"for later only for a manual task that is not paused; start the scheduler "
                f"(chronolog run) and ask again",
                "NotRunning",
            )
        occurrence, events = run_now_events(state, name, now)
        return events, base | {"occurrence": occurrence, "started": False}
    if request.command == "cancel":
        events = cancel_events(state, name, now) if nodes_running else []
        if not nodes_running:
            state.status(name)
        return events, base | {"cancelled": len(events)}
    assert request.command == "remove"
    return remove_events(state, name, now, request.note), base | {"removed": True}
