"""The schedule tools an agent calls through ``chronolog mcp``, without the protocol.

Nine tools: ``schedule_add``, ``schedule_update``, ``schedule_remove``,
``schedule_enable``, ``schedule_disable``, ``schedule_list``, and the
read-only ``schedule_history``, ``schedule_why`` and ``schedule_next``. This
module knows their schemas and what they do; ``mcp.py`` puts them on the
Model Context Protocol. Nothing here imports the MCP SDK.

**One source for the schemas.** The arguments of ``schedule_add`` and
``schedule_update`` are a job of the job file: their JSON Schemas are
derived from the class the job file's ``[[jobs]]`` entries are structured
into (`chronolog._job_file_syntax.JOB_ENTRY`), and the arguments are checked by the
same resolution as a job file's, so an invalid argument gets the job file's
message under its own name (``cron: cron minute field '61' is out of
range 0-59 ...``). A key added to the job file appears in the tools by
itself, unless it is one of `LEFT_OUT`.

**Safety.** An agent never gives a command or an import path. It names a
*target* from an allow-list the operator gives -- the ``[targets]`` table of
a job file, ``--allow-call pkg.mod:func``, ``--allow-command NAME=COMMAND``
-- and anything else is refused with a message telling how the operator
can allow it. Keys that would run or read something of the agent's choosing
(``command``, ``call``, ``env``, ``cwd``, ``watch``, hooks) are not in the
schemas and are refused by name. Unless the server runs with
``--all-tasks``, an agent sees and changes only the tasks it added itself.
An agent has at most ``max_tasks`` tasks, none firing more often than every
``min_interval``.

**Source.** Every change is an ordinary record: tasks an agent adds record
the target string ``added-by-mcp:...`` (see ``chronolog._jobs``), so the log
shows who defined (and redefined) them; pauses and resumes carry the note
``mcp: <the agent's note>``. Changes go through the running scheduler's
control socket, or straight to the log when none runs -- the path of
``chronolog pause`` and the other control commands (``control.deliver``).

Why one module of this size: nine tools share one allow-list, one scope
(the agent's own tasks), one set of limits and one way to deliver a change;
each tool is a short method, and splitting them would spread the safety
rules over files where a reviewer could miss one.
"""

from __future__ import annotations

import enum
import itertools
import types
import typing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from zoneinfo import ZoneInfo

import attrs
import click
import trio

from .._config import JOB_ENTRY, TARGET_NAME, CallSpec, NamedTarget, resolve_job
from .._control import ControlError
from .._dst_notes import describe_due
from .._errors import ChronologError, ConfigError, DuplicateTask, closest_match
from .._explain import explain
from .._ids import validate_task_name
from .._job_file_syntax import HOOK_KEYS, TRIGGER_KEYS, duration_spelling
from .._jobs import declared_by, parse_target
from .._policies import CatchUp, Overlap, Policy, Retry
from .._triggers import At, Cron, Every, FileWatch, Manual
from ._output import describe_trigger, iso, run_json
from ._reading import known_records, open_log, read_state
from ._requests import parse_request
from .control import deliver
from .history import task_history
from .next import current_time
from .why import explanation_json

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping, Sequence

    from .._config import JobFile, Target
    from .._events import TaskDefined
    from .._projection import State
    from .._triggers import Trigger

__all__ = [
    "LEFT_OUT",
    "TOOLS",
    "AllowList",
    "ScheduleTools",
    "ToolError",
    "ToolSpec",
    "job_schema",
]

#: Keys of a job that an agent may not give, and why not.
LEFT_OUT: Final = {
    "command": "agents do not give commands",
    "call": "agents do not give import paths",
    "env": "a target's environment is the operator's",
    "cwd": "a target's directory is the operator's",
    "watch": "agents do not choose files to watch",
    "poll": "agents do not choose files to watch",
    **dict.fromkeys(HOOK_KEYS, "hooks are the operator's (they run commands)"),
}
#: Keys that name a trigger or qualify one: an update to another kind of trigger drops them.
_TRIGGER_KEYS: Final = (
    "cron", "tz", "every", "at", "watch", "poll", "manual", "start", "end", "remove_after_run",
)  # fmt: skip
#: What each key means, for the agent reading the schema (the types come from the class).
DESCRIPTIONS: Final = {
    "name": "The task's name: printable text, unique in the log.",
    "cron": "Trigger: a cron expression ('0 9 * * 1-5': 09:00 on weekdays), in tz.",
    "tz": "IANA time zone of cron, e.g. 'Europe/Paris' (default UTC).",
    "every": "Trigger: a fixed interval, e.g. '15m', '1h30m', '2d'.",
    "at": "Trigger: once, at this time (ISO 8601 with a UTC offset).",
    "manual": "Trigger: none (true); the task runs only when asked to.",
    "start": "No run before this time (cron and every tasks; ISO 8601 with offset).",
    "end": "No run after this time (cron and every tasks; ISO 8601 with offset).",
    "remove_after_run": "Remove an 'at' task once it has run.",
    "overlap": "When a run comes due while the previous one still runs.",
    "catch_up": "Due times missed while no scheduler ran: run the latest, all, or none.",
    "catch_up_limit": "With catch_up 'all': at most this many missed runs.",
    "misfire_grace": "A run later than this after its due time is skipped as missed.",
    "retry": "Retries of a failed run.",
    "max_attempts": "Attempts in all (1: no retry).",
    "backoff": "Wait before the first retry.",
    "factor": "Each further wait is this many times the previous one.",
    "max_backoff": "The longest wait between attempts.",
    "timeout": "A run longer than this is cancelled and fails.",
    "jitter": "Delay each run by up to this much (the same delay every replay).",
    "paused": "Create the task paused.",
    "max_runs": "The task is finished after this many runs.",
}
_DURATION_HELP: Final = "a duration: a number and a unit (ms, s, m, h, d), e.g. '90s', '1h30m'"


class ToolError(ChronologError, ValueError):
    """A tool call that is refused or fails; the message is the agent's to read."""


# -- schemas derived from the job file's classes -----------------------------------------------


def _schema_of(kind: Any) -> dict[str, Any]:
    """The JSON Schema of a field typed ``kind`` in the job file's classes."""
    if kind is str:
        return {"type": "string"}
    if kind is bool:
        return {"type": "boolean"}
    if kind is int:
        return {"type": "integer"}
    if kind is float:
        return {"type": "number"}
    if kind is timedelta:
        return {"type": "string", "description": _DURATION_HELP}
    if kind is datetime:
        return {"type": "string", "format": "date-time"}
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return {"type": "string", "enum": [member.value for member in kind]}
    if isinstance(kind, type) and attrs.has(kind):
        return _object_schema(kind)
    origin, arguments = typing.get_origin(kind), typing.get_args(kind)
    if origin is typing.Union or origin is types.UnionType:
        options = [_schema_of(argument) for argument in arguments if argument is not type(None)]
        return options[0] if len(options) == 1 else {"anyOf": options}
    if origin is list:
        return {"type": "array", "items": _schema_of(arguments[0])}
    if origin is dict:
        return {"type": "object", "additionalProperties": _schema_of(arguments[1])}
    raise TypeError(f"no JSON Schema for a job file field typed {kind!r}")


def _object_schema(kind: type[Any], *, leave_out: Sequence[str] = ()) -> dict[str, Any]:
    hints = typing.get_type_hints(kind)
    properties: dict[str, Any] = {}
    required: list[str] = []
    for field in attrs.fields(kind):
        if field.name in leave_out:
            continue
        value = _schema_of(hints[field.name])
        description = DESCRIPTIONS.get(field.name)
        if description is not None:
            value["description"] = (
                f"{description} ({value['description']})"
                if "description" in value
                else description
            )
        properties[field.name] = value
        if field.default is attrs.NOTHING:
            required.append(field.name)
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
    if required:
        schema["required"] = required
    return schema


def job_schema() -> dict[str, Any]:
    """The schema of the job keys an agent may give: a ``[[jobs]]`` entry, less `LEFT_OUT`."""
    return _object_schema(JOB_ENTRY, leave_out=tuple(LEFT_OUT))


# -- the allow-list ----------------------------------------------------------------------------


@attrs.frozen
class AllowList:
    """The targets an agent may schedule, by name."""

    targets: tuple[NamedTarget, ...] = ()

    @classmethod
    def build(
        cls,
        *,
        job_file: JobFile | None = None,
        calls: Sequence[str] = (),
        commands: Sequence[str] = (),
        base: Path,
    ) -> AllowList:
        """From a job file's ``[targets]`` and the ``--allow-call``/``--allow-command``
        options (a `ConfigError` naming the option for one that is not valid)."""
        named: dict[str, NamedTarget] = {}
        for target in job_file.targets if job_file is not None else ():
            named[target.name] = target
        for path in calls:
            job = resolve_job(
                {"name": path, "manual": True, "call": path},
                base=base,
                source="--allow-call",
                where=_said_as(repr(path)),
            )
            named[path] = NamedTarget(path, job.target, f"calls {path}")
        for item in commands:
            name, sign, command = item.partition("=")
            if not sign or not TARGET_NAME.fullmatch(name) or not command.strip():
                raise ConfigError(
                    f"--allow-command {item!r} is not NAME=COMMAND; write e.g. "
                    f"--allow-command 'report=./report.sh --daily' (NAME: letters, digits, "
                    f"'_', '.', '-')"
                )
            job = resolve_job(
                {"name": name, "manual": True, "command": command, "cwd": str(base)},
                base=base,
                source="--allow-command",
                where=_said_as(name),
            )
            named[name] = NamedTarget(name, job.target, f"runs {command}")
        return cls(tuple(named.values()))

    @property
    def names(self) -> list[str]:
        return [target.name for target in self.targets]

    def get(self, name: str) -> NamedTarget:
        """The target named ``name``, or a `ToolError` telling how an operator allows it."""
        for target in self.targets:
            if target.name == name:
                return target
        allowed = ", ".join(repr(n) for n in self.names) or "none"
        hint = closest_match(name, self.names)
        suggestion = f"; did you mean {hint!r}?" if hint else ""
        raise ToolError(
            f"target: {name!r} is not a target the operator allows{suggestion} (allowed: "
            f"{allowed}). {_HOW_TO_ALLOW}"
        )

    def name_of(self, recorded: str) -> str | None:
        """The allow-list name of a task's recorded target string, if it has one."""
        target = parse_target(recorded)
        return next((named.name for named in self.targets if named.target == target), None)


def _said_as(text: str) -> Callable[[str], str]:
    """What an error message calls any key of a job that an option stands for."""
    return lambda key: text


_HOW_TO_ALLOW: Final = (
    "Agents cannot run commands or code of their own; the operator of this server can allow "
    "a target with a [targets.NAME] table in the job file, or when starting the server with "
    "--allow-command NAME=COMMAND or --allow-call pkg.module:function."
)


def _entry_keys(target: Target) -> dict[str, Any]:
    """The keys of a job entry that name ``target`` (what the control request carries)."""
    if isinstance(target, CallSpec):
        return {"call": target.path}
    keys: dict[str, Any] = {
        "command": target.shell if target.shell is not None else list(target.argv or ())
    }
    if target.cwd is not None:
        keys["cwd"] = target.cwd
    if target.env:
        keys["env"] = dict(target.env)
    return keys


def _entry_of(definition: TaskDefined) -> dict[str, Any]:
    """A job entry that declares ``definition``'s trigger and policy again (for updates)."""
    trigger: Trigger = definition.trigger
    entry: dict[str, Any] = {"name": definition.task}
    if isinstance(trigger, Cron):
        entry |= {"cron": trigger.expr, "tz": trigger.tz}
    elif isinstance(trigger, Every):
        entry["every"] = duration_spelling(trigger.interval)
    elif isinstance(trigger, At):
        entry["at"] = trigger.when.isoformat()
    elif isinstance(trigger, FileWatch):
        entry |= {"watch": trigger.path, "poll": duration_spelling(trigger.poll)}
    elif isinstance(trigger, Manual):
        entry["manual"] = True
    if isinstance(trigger, Cron | Every):
        for bound in ("start", "end"):
            value = getattr(trigger, bound)
            if value is not None:
                entry[bound] = value.isoformat()
    policy = definition.policy
    for name in policy.__struct_fields__:
        value = getattr(policy, name)
        if value == getattr(Policy(), name):
            continue
        if isinstance(value, Retry):
            value = {
                field: _plain(getattr(value, field))
                for field in value.__struct_fields__
                if getattr(value, field) != getattr(Retry(), field)
            }
        entry[name] = _plain(value)
    return entry


def _plain(value: Any) -> Any:
    if isinstance(value, timedelta):
        return duration_spelling(value)
    if isinstance(value, Overlap | CatchUp):
        return value.value
    return value


# -- the tools -----------------------------------------------------------------------------------


@attrs.frozen
class ToolSpec:
    """A tool as the protocol lists it."""

    name: str
    description: str
    input_schema: dict[str, Any]
    read_only: bool
    destructive: bool = False


_NAME: Final = {"type": "string", "description": "The task's name."}
_NOTE: Final = {"type": "string", "maxLength": 500, "description": "Why (shown in status)."}
_COUNT_LIMIT: Final = 100
_HISTORY_LIMIT: Final = 200
_NOTE_LIMIT: Final = 500


def _tool_specs(allow: AllowList) -> list[ToolSpec]:
    job = job_schema()
    target: dict[str, Any] = {
        "type": "string",
        "description": "What the task runs: the name of a target the operator allows"
        + (
            ": "
            + "; ".join(
                f"{t.name} ({t.description})" if t.description else t.name for t in allow.targets
            )
            if allow.targets
            else " (none is allowed yet: ask the operator)"
        ),
    }
    if allow.targets:
        target["enum"] = allow.names
    add = {**job, "properties": {**job["properties"], "target": target}}
    add["required"] = [*job.get("required", []), "target"]
    update = {**add, "required": ["name"]}
    simple = {
        "type": "object",
        "properties": {"name": _NAME},
        "required": ["name"],
        "additionalProperties": False,
    }
    with_note = {**simple, "properties": {"name": _NAME, "note": _NOTE}}
    return [
        ToolSpec(
            "schedule_add",
            "Add a scheduled task: one trigger (cron, every, at or manual) and a target the "
            "operator allows, with the same keys and rules as a job of chronolog's job file. "
            "An identical task already there is left as it is.",
            add,
            read_only=False,
        ),
        ToolSpec(
            "schedule_update",
            "Change a task: the keys given replace its own, the others stay (the target "
            "too); giving another kind of trigger (every instead of cron, say) replaces the "
            "whole trigger. Its next run is kept when the new trigger still fires then.",
            update,
            read_only=False,
        ),
        ToolSpec(
            "schedule_remove",
            "Remove a task: its running run is cancelled, its pending run skipped.",
            with_note,
            read_only=False,
            destructive=True,
        ),
        ToolSpec(
            "schedule_enable",
            "Resume a paused task from now on (the paused time is not caught up).",
            with_note,
            read_only=False,
        ),
        ToolSpec(
            "schedule_disable",
            "Pause a task: nothing runs until it is enabled again.",
            with_note,
            read_only=False,
        ),
        ToolSpec(
            "schedule_list",
            "List the tasks: trigger, target, state, next and last run, counts.",
            {"type": "object", "properties": {}, "additionalProperties": False},
            read_only=True,
        ),
        ToolSpec(
            "schedule_history",
            "The runs of a task, newest first: when each was due, how it ended.",
            {
                "type": "object",
                "properties": {
                    "name": _NAME,
                    "limit": {"type": "integer", "minimum": 1, "maximum": _HISTORY_LIMIT},
                },
                "required": ["name"],
                "additionalProperties": False,
            },
            read_only=True,
        ),
        ToolSpec(
            "schedule_why",
            "Explain what happened to one occurrence of a task and which rule decided it: "
            "give an occurrence id (from schedule_history), or a task name and a time.",
            {
                "type": "object",
                "properties": {
                    "occurrence": {
                        "type": "string",
                        "description": "e.g. report@2026-05-01T07:00:00Z",
                    },
                    "name": _NAME,
                    "at": {"type": "string", "format": "date-time"},
                },
                "additionalProperties": False,
            },
            read_only=True,
        ),
        ToolSpec(
            "schedule_next",
            "Preview the next fire times of a task, or of a cron expression in a time zone, "
            "with a note where daylight-saving time moves, merges or repeats a fire.",
            {
                "type": "object",
                "properties": {
                    "name": _NAME,
                    "cron": job["properties"]["cron"],
                    "tz": job["properties"]["tz"],
                    "count": {"type": "integer", "minimum": 1, "maximum": _COUNT_LIMIT},
                    "after": {"type": "string", "format": "date-time"},
                },
                "additionalProperties": False,
            },
            read_only=True,
        ),
    ]


#: The tool names, in the order they are listed.
TOOLS: Final = tuple(spec.name for spec in _tool_specs(AllowList()))


@attrs.define
class ScheduleTools:
    """The tools, acting on the log at ``log_path`` (through its scheduler if one runs)."""

    log_path: Path
    allow: AllowList
    all_tasks: bool = False
    """Whether the agent may see and change every task, not only those it added."""
    max_tasks: int = 100
    """How many tasks an agent may have at once."""
    min_interval: timedelta = timedelta(minutes=1)
    """The shortest time between two runs of a task an agent adds."""
    _changes: trio.Lock = attrs.field(factory=trio.Lock, init=False)

    def specs(self) -> list[ToolSpec]:
        return _tool_specs(self.allow)

    async def call(self, name: str, arguments: Mapping[str, Any] | None) -> dict[str, Any]:
        """Run tool ``name``; its result, or a `ToolError` whose message says what is wrong."""
        handlers: dict[str, Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]] = {
            "schedule_add": self._add,
            "schedule_update": self._update,
            "schedule_remove": self._remove,
            "schedule_enable": self._enable,
            "schedule_disable": self._disable,
            "schedule_list": self._list,
            "schedule_history": self._history,
            "schedule_why": self._why,
            "schedule_next": self._next,
        }
        handler = handlers.get(name)
        if handler is None:
            hint = closest_match(name, list(handlers))
            raise ToolError(
                f"no tool named {name!r}" + (f"; did you mean {hint!r}?" if hint else "")
            )
        if arguments is not None and not isinstance(arguments, dict):
            raise ToolError(f"{name}: the arguments must be an object")
        _check_sizes(name, arguments)
        try:
            return await handler(dict(arguments or {}))
        except ToolError as exc:
            if str(exc).startswith(f"{name}: "):
                raise
            raise ToolError(f"{name}: {exc}") from exc
        except ControlError as exc:
            raise ToolError(f"{name}: {' '.join(str(exc).split())}") from exc
        except (ChronologError, OSError, click.ClickException) as exc:
            message = exc.format_message() if isinstance(exc, click.ClickException) else str(exc)
            raise ToolError(f"{name}: {message}") from exc

    # -- reading -------------------------------------------------------------------------

    async def _state(self) -> State:
        return await trio.to_thread.run_sync(
            lambda: read_state(self.log_path, as_json=True), abandon_on_cancel=True
        )

    def _mine(self, state: State, name: str, tool: str) -> TaskDefined:
        """Task ``name``'s definition, if the agent may act on it; `ToolError` if not."""
        validate_task_name(name)
        state.status(name)  # UnknownTask, with the closest name
        definition = state.definition(name)
        if not self.all_tasks and declared_by(definition.target) != "mcp":
            raise ToolError(
                f"{tool}: task {name!r} was not added by an agent, and this server lets "
                f"agents act only on the tasks they added (the operator can start it with "
                f"--all-tasks to allow more)"
            )
        return definition

    def _visible(self, state: State) -> list[str]:
        return [
            name
            for name in state.task_names()
            if self.all_tasks or declared_by(state.definition(name).target) == "mcp"
        ]

    # -- changing ------------------------------------------------------------------------

    def _checked_entry(
        self, tool: str, arguments: dict[str, Any]
    ) -> tuple[dict[str, Any], str | None]:
        """The job keys of ``arguments`` (checked against the schema) and the target's name."""
        schema_keys = set(job_schema()["properties"])
        entry: dict[str, Any] = {}
        target: str | None = None
        for key, value in arguments.items():
            if key == "target":
                if not isinstance(value, str):
                    raise ToolError(
                        f"{tool}: target: expected the name of a target, got {value!r}"
                    )
                target = value
            elif key in LEFT_OUT:
                raise ToolError(f"{tool}: {key}: {LEFT_OUT[key]}. {_HOW_TO_ALLOW}")
            elif key not in schema_keys:
                hint = closest_match(key, [*schema_keys, "target"])
                raise ToolError(
                    f"{tool}: {key}: unknown key" + (f"; did you mean {hint!r}?" if hint else "")
                )
            else:
                _check_no_null(tool, value, key)
                entry[key] = value
        return entry, target

    def _resolve(self, tool: str, entry: dict[str, Any]) -> None:
        """Check ``entry`` as the job file checks a job; a `ToolError` naming the key."""
        try:
            job = resolve_job(entry, base=Path.cwd(), source=tool, check_imports=False)
        except ConfigError as exc:
            raise ToolError(str(exc)) from exc
        self._check_interval(tool, job.trigger)

    def _check_interval(self, tool: str, trigger: Trigger) -> None:
        shortest = _shortest_gap(trigger, current_time())
        if shortest is not None and shortest < self.min_interval:
            key = "every" if isinstance(trigger, Every) else "cron"
            raise ToolError(
                f"{tool}: {key}: runs {duration_spelling(shortest)} apart, and agents may "
                f"schedule runs at most every {duration_spelling(self.min_interval)} (the "
                f"operator sets this with --min-interval)"
            )

    async def _define(self, tool: str, entry: dict[str, Any], if_exists: str) -> dict[str, Any]:
        request = parse_request(
            {"command": "add", "job": entry, "if_exists": if_exists, "source": "mcp"}
        )
        result = await deliver(self.log_path, request)
        state = await self._state()
        status = state.status(entry["name"])
        return {
            "task": result["task"],
            "change": result["change"],
            "version": result["version"],
            "trigger": result["trigger"],
            "target": self.allow.name_of(status.target),
            "next_run": iso(status.next_run),
            "paused": status.paused,
            "via": result["via"],
        }

    async def _add(self, arguments: dict[str, Any]) -> dict[str, Any]:
        tool = "schedule_add"
        entry, target_name = self._checked_entry(tool, arguments)
        if "name" not in entry:
            raise ToolError(f"{tool}: name: missing (this key is required)")
        if target_name is None:
            raise ToolError(
                f"{tool}: target: missing; name one of the targets the operator allows "
                f"({', '.join(self.allow.names) or 'none is allowed yet'})"
            )
        target = self.allow.get(target_name)
        entry |= _entry_keys(target.target)
        self._resolve(tool, entry)
        async with self._changes:
            state = await self._state()
            name = entry["name"]
            if name in state:
                self._mine(state, name, tool)
            elif len(self._visible_added(state)) >= self.max_tasks:
                raise ToolError(
                    f"{tool}: agents have {self.max_tasks} tasks already, the most this server "
                    f"allows (the operator sets it with --max-tasks); remove one first"
                )
            try:
                return await self._define(tool, entry, "error")
            except (ControlError, DuplicateTask) as exc:
                # Said by the scheduler (a ControlError), or by the log's rules directly.
                if isinstance(exc, DuplicateTask) or exc.kind == "DuplicateTask":
                    raise ToolError(
                        f"{tool}: task {name!r} exists with another definition; change it with "
                        f"schedule_update, or pick another name"
                    ) from exc
                raise

    def _visible_added(self, state: State) -> list[str]:
        return [n for n in state.task_names() if declared_by(state.definition(n).target) == "mcp"]

    async def _update(self, arguments: dict[str, Any]) -> dict[str, Any]:
        tool = "schedule_update"
        given, target_name = self._checked_entry(tool, arguments)
        name = given.get("name")
        if not isinstance(name, str):
            raise ToolError(f"{tool}: name: missing (this key is required)")
        async with self._changes:
            state = await self._state()
            definition = self._mine(state, name, tool)
            entry = _entry_of(definition)
            kinds = {key for key in TRIGGER_KEYS if key in given}
            if kinds and kinds != {key for key in TRIGGER_KEYS if key in entry}:
                # Another kind of trigger: the old one goes whole (its tz, bounds...).
                for key in _TRIGGER_KEYS:
                    entry.pop(key, None)
            entry |= given
            if target_name is not None:
                entry |= _entry_keys(self.allow.get(target_name).target)
            else:
                recorded = parse_target(definition.target)
                if recorded is None:
                    raise ToolError(
                        f"{tool}: task {name!r} runs {definition.target!r}, which is no target "
                        f"of a job; give a target"
                    )
                entry |= _entry_keys(recorded)
            self._resolve(tool, entry)
            return await self._define(tool, entry, "update")

    async def _remove(self, arguments: dict[str, Any]) -> dict[str, Any]:
        name = _text(arguments, "name", "schedule_remove", allowed=("name", "note"))
        note = _agent_note("schedule_remove", arguments)
        async with self._changes:
            self._mine(await self._state(), name, "schedule_remove")
            request = parse_request({"command": "remove", "task": name, "note": note})
            result = await deliver(self.log_path, request)
        return {"task": name, "removed": True, "via": result["via"]}

    async def _pause_or_resume(
        self, command: str, tool: str, arguments: dict[str, Any]
    ) -> dict[str, Any]:
        name = _text(arguments, "name", tool, allowed=("name", "note"))
        note = _agent_note(tool, arguments)
        async with self._changes:
            self._mine(await self._state(), name, tool)
            request = parse_request({"command": command, "task": name, "note": note})
            result = await deliver(self.log_path, request)
        return {
            "task": name,
            "paused": result["paused"],
            "changed": result["changed"],
            "via": result["via"],
        }

    async def _enable(self, arguments: dict[str, Any]) -> dict[str, Any]:
        return await self._pause_or_resume("resume", "schedule_enable", arguments)

    async def _disable(self, arguments: dict[str, Any]) -> dict[str, Any]:
        return await self._pause_or_resume("pause", "schedule_disable", arguments)

    # -- questions -----------------------------------------------------------------------

    async def _list(self, arguments: dict[str, Any]) -> dict[str, Any]:
        if arguments:
            raise ToolError(f"schedule_list: {next(iter(arguments))}: unknown key (it takes none)")
        state = await self._state()
        visible = self._visible(state)
        tasks = []
        for name in visible:
            status = state.status(name)
            allowed = self.allow.name_of(status.target)
            tasks.append(
                {
                    "task": name,
                    "state": status.state,
                    "paused": status.paused,
                    "note": status.note,
                    "trigger": describe_trigger(status.trigger),
                    "target": allowed
                    if allowed is not None or not self.all_tasks
                    else status.target,
                    "added_by_agent": declared_by(status.target) == "mcp",
                    "next_run": iso(status.next_run),
                    "last_run": iso(status.last_run),
                    "last_error": status.last_error,
                    "runs": status.run_count,
                    "errors": status.error_count,
                    "skips": status.skip_count,
                }
            )
        return {
            "tasks": tasks,
            "other_tasks": len(state.task_names()) - len(visible),
            "targets": [
                {"name": t.name, "description": t.description} for t in self.allow.targets
            ],
        }

    async def _history(self, arguments: dict[str, Any]) -> dict[str, Any]:
        tool = "schedule_history"
        name = _text(arguments, "name", tool, allowed=("name", "limit"))
        limit = arguments.get("limit", 20)
        if (
            not isinstance(limit, int)
            or isinstance(limit, bool)
            or not 1 <= limit <= _HISTORY_LIMIT
        ):
            raise ToolError(
                f"{tool}: limit: expected an integer from 1 to {_HISTORY_LIMIT}, got {limit!r}"
            )
        self._mine(await self._state(), name, tool)

        def read() -> list[dict[str, Any]]:
            log = open_log(self.log_path)
            runs = task_history(known_records(log, log.base_state()), name, limit=limit)
            return [run_json(run) for run in runs]

        runs = await trio.to_thread.run_sync(read, abandon_on_cancel=True)
        return {"task": name, "runs": runs}

    async def _why(self, arguments: dict[str, Any]) -> dict[str, Any]:
        tool = "schedule_why"
        for key in arguments:
            if key not in ("occurrence", "name", "at"):
                raise ToolError(f"{tool}: {key}: unknown key (give occurrence, or name and at)")
        occurrence, name, at_text = (arguments.get(k) for k in ("occurrence", "name", "at"))
        state = await self._state()
        at: datetime | None = None
        if occurrence is not None:
            if not isinstance(occurrence, str) or name is not None or at_text is not None:
                raise ToolError(f"{tool}: give an occurrence id alone, or a name and at")
            owner = _owner(state, occurrence)
            if owner is None:
                raise ToolError(
                    f"{tool}: occurrence: {occurrence!r} is no occurrence of a task in this log "
                    f"(ids look like 'report@2026-05-01T07:00:00Z'; schedule_history shows them)"
                )
            self._mine(state, owner, tool)
            target = occurrence
        else:
            if not isinstance(name, str) or not isinstance(at_text, str):
                raise ToolError(f"{tool}: give an occurrence id, or a name and at (a time)")
            self._mine(state, name, tool)
            at = _instant(tool, "at", at_text)
            target = name

        def read() -> dict[str, Any]:
            return explanation_json(explain(open_log(self.log_path), target, at=at))

        return self._redacted(await trio.to_thread.run_sync(read, abandon_on_cancel=True))

    def _redacted(self, explanation: dict[str, Any]) -> dict[str, Any]:
        """``explanation`` with each definition's target shown by its allow-list name.

        A target's record holds its command, directory and environment (which may
        carry secrets): the operator's, not the agent's to read. With
        ``--all-tasks`` the operator lets agents see them.
        """
        if self.all_tasks:
            return explanation
        for key in ("records", "context"):
            for record in explanation[key]:
                if record.get("type") == "TaskDefined":
                    record["target"] = self.allow.name_of(record["target"]) or "(not shown)"
        return explanation

    async def _next(self, arguments: dict[str, Any]) -> dict[str, Any]:
        tool = "schedule_next"
        for key in arguments:
            if key not in ("name", "cron", "tz", "count", "after"):
                raise ToolError(f"{tool}: {key}: unknown key")
        count = arguments.get("count", 10)
        if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= _COUNT_LIMIT:
            raise ToolError(
                f"{tool}: count: expected an integer from 1 to {_COUNT_LIMIT}, got {count!r}"
            )
        after = current_time()
        if "after" in arguments:
            after = _instant(tool, "after", arguments["after"])
        name = arguments.get("name")
        trigger: Trigger
        if name is not None:
            if "cron" in arguments or "tz" in arguments:
                raise ToolError(
                    f"{tool}: give a task's name, or a cron expression and tz, not both"
                )
            if not isinstance(name, str):
                raise ToolError(f"{tool}: name: expected a string, got {name!r}")
            trigger = self._mine(await self._state(), name, tool).trigger
        else:
            if "cron" not in arguments:
                raise ToolError(f"{tool}: give a task's name, or a cron expression (and tz)")
            # Checked as a job's trigger is, with its messages (the target is a stand-in).
            entry = {"name": "preview", "cron": arguments["cron"], "call": "preview:preview"}
            if "tz" in arguments:
                entry["tz"] = arguments["tz"]
            try:
                job = resolve_job(entry, base=Path.cwd(), source=tool, check_imports=False)
            except ConfigError as exc:
                raise ToolError(str(exc)) from exc
            trigger = job.trigger
        return {"trigger": describe_trigger(trigger), "fires": _fires(trigger, after, count)}


#: The longest text an agent may give in any argument (a cron expression, a name, a note).
MAX_TEXT_CHARS: Final = 1000


#: How deep arguments may nest (a job's deepest key is ``retry.max_attempts``).
MAX_DEPTH: Final = 4


def _check_sizes(tool: str, value: object, path: str = "", depth: int = 0) -> None:
    """Refuse texts longer than `MAX_TEXT_CHARS`, and nesting deeper than `MAX_DEPTH`."""
    if depth > MAX_DEPTH:
        raise ToolError(f"{tool}: {path}: nested deeper than any argument of a job")
    if isinstance(value, str):
        if len(value) > MAX_TEXT_CHARS:
            raise ToolError(
                f"{tool}: {path or 'argument'}: {len(value)} characters long; "
                f"the limit is {MAX_TEXT_CHARS}"
            )
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_sizes(tool, str(key), path, depth + 1)
            _check_sizes(tool, item, f"{path}.{key}" if path else str(key), depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_sizes(tool, item, f"{path}[{index}]", depth + 1)


def _check_no_null(tool: str, value: object, path: str) -> None:
    """The job file has no null (TOML has none): a key is given, or left out."""
    if value is None:
        raise ToolError(f"{tool}: {path}: null is not a value here; leave the key out")
    if isinstance(value, dict):
        for key, item in value.items():
            _check_no_null(tool, item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_no_null(tool, item, f"{path}[{index}]")


def _agent_note(tool: str, arguments: dict[str, Any]) -> str:
    """The note a change by an agent records: ``mcp``, and the agent's note on one line."""
    note = arguments.get("note", "")
    if not isinstance(note, str):
        raise ToolError(f"{tool}: note: expected a string, got {note!r}")
    note = " ".join(note.split())[:_NOTE_LIMIT]
    return f"mcp: {note}" if note else "mcp"


def _text(arguments: dict[str, Any], key: str, tool: str, *, allowed: Sequence[str]) -> str:
    for given in arguments:
        if given not in allowed:
            hint = closest_match(given, list(allowed))
            raise ToolError(
                f"{tool}: {given}: unknown key" + (f"; did you mean {hint!r}?" if hint else "")
            )
    value = arguments.get(key)
    if value is None:
        raise ToolError(f"{tool}: {key}: missing (this key is required)")
    if not isinstance(value, str):
        raise ToolError(f"{tool}: {key}: expected a string, got {value!r}")
    return value


def _instant(tool: str, key: str, text: object) -> datetime:
    example = "write e.g. 2026-05-01T09:00:00+02:00 or 2026-05-01T07:00:00Z"
    if not isinstance(text, str):
        raise ToolError(f"{tool}: {key}: expected a date and time, got {text!r}; {example}")
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ToolError(f"{tool}: {key}: {text!r} is not a date and time; {example}") from None
    if when.tzinfo is None or when.utcoffset() is None:
        raise ToolError(f"{tool}: {key}: {text!r} has no UTC offset; {example}")
    return when


def _owner(state: State, occurrence: str) -> str | None:
    """The task an occurrence id belongs to (the longest task name that prefixes it)."""
    owners = [
        name
        for name in state.task_names()
        if len(occurrence) > len(name)
        and occurrence.startswith(name)
        and occurrence[len(name)] in "@#!"
    ]
    return max(owners, key=len, default=None)


def _shortest_gap(trigger: Trigger, now: datetime, samples: int = 50) -> timedelta | None:
    """The shortest time between two of the next ``samples`` fires of ``trigger``."""
    if isinstance(trigger, Every):
        return trigger.interval
    if not isinstance(trigger, Cron):
        return None
    fires: list[datetime] = []
    when: datetime | None = now
    while when is not None and len(fires) < samples:
        when = trigger.next_after(when)
        if when is not None:
            fires.append(when)
    gaps = [later - earlier for earlier, later in itertools.pairwise(fires)]
    return min(gaps, default=None)


def _fires(trigger: Trigger, after: datetime, count: int) -> list[dict[str, Any]]:
    """The next ``count`` fires of ``trigger`` after ``after``, as ``chronolog next --json``."""
    zone = ZoneInfo(trigger.tz) if isinstance(trigger, Cron) else None
    fires: list[dict[str, Any]] = []
    when: datetime | None = after
    while len(fires) < count:
        assert when is not None
        try:
            when = trigger.next_after(when)
        except (OverflowError, ValueError):
            break
        if when is None:
            break
        utc = when.astimezone(UTC)
        local = utc.astimezone(zone) if zone is not None else utc
        note = None
        if isinstance(trigger, Cron):
            note = describe_due(
                trigger, int((utc - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds())
            )
        fires.append(
            {
                "utc": utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "local": local.isoformat(),
                "note": note,
            }
        )
    return fires
