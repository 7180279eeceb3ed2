"""Control commands: pause, resume, run-now, cancel, remove, add and reload.

Each works whether or not a scheduler is running. When ``chronolog run``
holds the log, the command goes through its control socket (``<log>.sock``)
and the scheduler applies it. When nobody holds the log, the command opens
it as its only writer, checks itself against the replayed state, and
appends the records the command stands for (see ``_direct``). A log that is
locked by a process that does not answer on the socket is left alone
(exit 3): nothing writes to a log another writer holds.

``LOG`` may also be a job file (a path ending in ``.toml``): its ``log``
setting names the log.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import click
import trio

from .._clock import SystemClock
from .._command_rules import MAX_NOTE_CHARACTERS, check_note
from .._config import log_setting, resolve_job
from .._control import ControlError, request, socket_path
from .._direct import event_log_at
from .._errors import ConfigError, DuplicateTask, LogLocked
from .._policies import CatchUp, Overlap
from ..log._paths import postgres_log_class
from ._common import BadUsage, CommandError, json_option, translate_errors
from ._log_names import DatabaseURL, LogName, as_log_name
from ._output import print_json
from ._requests import Request, apply_direct, apply_shared, parse_request

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "add_command",
    "cancel_command",
    "deliver",
    "pause_command",
    "reload_command",
    "remove_command",
    "resume_command",
    "run_now_command",
]

#: How long a command waits for a scheduler that holds the log but has no
#: socket yet (it is starting) or no more (it is stopping).
LOCKED_WAIT_SECONDS: Final = 3.0
_POLL_SECONDS: Final = 0.1

#: Errors of the scheduler that are the user's to fix (exit 2).
_USAGE_KINDS: Final = frozenset(
    {"UnknownTask", "ConfigError", "InvalidTrigger", "DuplicateTask", "BadRequest"}
)


def _log_path(target: LogName) -> LogName:
    """The log that ``target`` names: the path or URL itself, or a job file's ``log``."""
    if isinstance(target, DatabaseURL):
        return target
    if target.suffix.lower() == ".toml":
        log = log_setting(target)
        if log is None:
            raise BadUsage(
                f"job file {target} names no log (its `log` key); give the log's path instead"
            )
        if isinstance(log, str):
            return DatabaseURL(log)
        target = log
    if not target.exists():
        raise BadUsage(
            f"log {target} does not exist; check the path (`chronolog run` creates the log "
            f"when it first starts)"
        )
    if target.is_dir():
        raise BadUsage(f"{target} is a directory, not a log")
    return target


async def deliver(log_path: LogName, control: Request) -> dict[str, Any]:
    """Carry out ``control`` on ``log_path``: through its scheduler if one runs, else directly.

    The result gets ``via``: ``"scheduler"`` or ``"log"`` -- or ``"shared log"`` for
    a ``postgresql://`` log, which has no control socket: the command is
    recorded in the log, and every scheduler on it follows the log.
    """
    if isinstance(log_path, DatabaseURL):
        shared = postgres_log_class()(log_path.dsn)
        async with shared:
            result = await apply_shared(shared, control, SystemClock().now())
        return {**result, "via": "shared log"}
    sock = socket_path(log_path)
    deadline = trio.current_time() + LOCKED_WAIT_SECONDS
    while True:
        try:
            return {**await request(sock, control.as_json()), "via": "scheduler"}
        except (FileNotFoundError, ConnectionRefusedError):
            pass  # nobody serves it: no scheduler, or a stale socket
        log = event_log_at(log_path)
        try:
            await log.open()
        except LogLocked as exc:
            if trio.current_time() < deadline:
                await trio.sleep(_POLL_SECONDS)  # starting or stopping: ask again
                continue
            raise LogLocked(
                f"{exc}; its control socket {sock} "
                + ("does not answer" if sock.exists() else "does not exist")
                + ", so it is not a `chronolog run` that can be controlled from here "
                "(or it is starting or stopping: try again)"
            ) from exc
        try:
            return {**await apply_direct(log, control, SystemClock().now()), "via": "log"}
        finally:
            await log.aclose()


def _carry_out(target: LogName, control: Request) -> dict[str, Any]:
    log_path = _log_path(target)
    # Written directly, a --call target is imported here: as `chronolog run`
    # does, look beside the job file (or the log) too.
    beside = target if isinstance(target, Path) and target.suffix.lower() == ".toml" else log_path
    if isinstance(beside, Path):
        directory = os.fspath(beside.resolve().parent)
        if directory not in sys.path:
            sys.path.append(directory)
    try:
        result = trio.run(deliver, log_path, control)
    except DuplicateTask as exc:
        raise BadUsage(str(exc)) from exc
    except ControlError as exc:
        error = BadUsage if exc.kind in _USAGE_KINDS else CommandError
        raise error(" ".join(str(exc).split())) from exc
    return {**result, "log": str(log_path)}


def _wrote(result: dict[str, Any]) -> bool:
    """Whether a command carried out on the log itself appended anything."""
    if result["command"] == "cancel":
        return False
    return result.get("changed", True) is not False and result.get("change") != "unchanged"


def _report(result: dict[str, Any], as_json: bool, sentence: str) -> None:
    if as_json:
        print_json(result)
        return
    if result["via"] == "shared log":
        if result.get("cancelled", 1) and _wrote(result | {"command": "recorded"}):
            sentence += " (recorded in the shared log: every scheduler on it follows it)"
    elif result["via"] == "log" and result["command"] != "cancel":
        if _wrote(result):
            sentence += " (no scheduler is running: recorded in the log)"
        else:
            sentence += " (no scheduler is running; nothing was written to the log)"
    click.echo(sentence)


def _task_command(name: str, help_text: str) -> Callable[[Callable[..., None]], click.Command]:
    def decorate(function: Callable[..., None]) -> click.Command:
        function.__doc__ = help_text
        wrapped = translate_errors(function)
        wrapped = json_option(wrapped)
        wrapped = click.argument("task")(wrapped)
        wrapped = click.argument(
            "log", metavar="LOG", type=click.Path(readable=False), callback=as_log_name
        )(wrapped)
        return click.command(name)(wrapped)

    return decorate


def _check_note(context: click.Context, parameter: click.Parameter, note: str) -> str:
    # The command rules check it again; here it is a usage error, before any log is read.
    try:
        check_note(note)
    except ConfigError as exc:
        raise BadUsage(f"--note: {exc}") from None
    return note


_note_option = click.option(
    "--note",
    default="",
    callback=_check_note,
    help=f"Why (shown by `chronolog status`; at most {MAX_NOTE_CHARACTERS} characters).",
)


@_note_option
@_task_command("pause", "Pause TASK: its pending run is skipped; nothing runs until resumed.")
def pause_command(log: LogName, task: str, as_json: bool, note: str) -> None:
    result = _carry_out(log, Request("pause", task, note=note))
    done = "paused" if result["changed"] else "was already paused"
    _report(result, as_json, f"{task} {done}")


@_note_option
@_task_command("resume", "Resume TASK from now on (the paused time is not caught up).")
def resume_command(log: LogName, task: str, as_json: bool, note: str) -> None:
    result = _carry_out(log, Request("resume", task, note=note))
    done = "resumed" if result["changed"] else "was not paused"
    _report(result, as_json, f"{task} {done}")


@_task_command("run-now", "Run TASK once now, also when it is paused.")
def run_now_command(log: LogName, task: str, as_json: bool) -> None:
    result = _carry_out(log, Request("run-now", task))
    if result["started"]:
        sentence = f"{task} started: {result['occurrence']}"
    elif result["via"] == "shared log":
        sentence = f"{task} will run on the first scheduler to claim it: {result['occurrence']}"
    else:
        sentence = (
            f"{task} will run when a scheduler next starts on the log: {result['occurrence']}"
        )
    _report(result, as_json, sentence)


@_task_command("cancel", "Cancel TASK's running runs (they end failed, error 'cancelled').")
def cancel_command(log: LogName, task: str, as_json: bool) -> None:
    result = _carry_out(log, Request("cancel", task))
    count = result["cancelled"]
    if result["via"] == "shared log" and count == 0:
        sentence = f"nothing to cancel: no run of {task} is running"
    elif result["via"] == "log":
        sentence = f"nothing to cancel: no scheduler is running, so no run of {task} is running"
    else:
        sentence = f"cancelled {count} run{'' if count == 1 else 's'} of {task}"
    _report(result, as_json, sentence)


@_note_option
@_task_command("remove", "Remove TASK: its running runs are cancelled, its pending run skipped.")
def remove_command(log: LogName, task: str, as_json: bool, note: str) -> None:
    result = _carry_out(log, Request("remove", task, note=note))
    _report(result, as_json, f"{task} removed")


@click.command("reload")
@click.argument("log", metavar="LOG", type=click.Path(readable=False), callback=as_log_name)
@json_option
@translate_errors
def reload_command(log: LogName, as_json: bool) -> None:
    """Make the scheduler running on LOG read its job file again (like SIGHUP).

    Jobs are declared again (unchanged ones append nothing), jobs the file no
    longer has are removed; tasks added with `chronolog add` stay. A job file
    with a problem changes nothing (exit 2).
    """
    result = _carry_out(log, Request("reload"))
    if as_json:
        print_json(result)
        return
    parts = [
        f"{len(result[key])} {key}"
        for key in ("created", "changed", "unchanged", "removed")
        if result[key]
    ]
    click.echo(f"reloaded {result['job_file']}: {', '.join(parts) or 'no jobs'}")
    for name in result["restart_needed"]:
        click.echo(f"  {name} changed: it takes effect when the scheduler restarts")


# -- add ---------------------------------------------------------------------

#: Option names of `chronolog add` for keys of a job entry, where they differ.
_OPTION_NAMES: Final = {
    "retry": "--retry",
    "retry.max_attempts": "--retry",
    "retry.backoff": "--retry-backoff",
    "retry.factor": "--retry-factor",
    "retry.max_backoff": "--retry-max-backoff",
    "command": "--command or ARGV",
    "manual = true": "--manual",
}


def _option_name(key: str) -> str:
    if not key:
        return "the task"
    return _OPTION_NAMES.get(key, "--" + key.replace("_", "-"))


def _parse_env(values: tuple[str, ...]) -> dict[str, str] | None:
    if not values:
        return None
    env: dict[str, str] = {}
    for item in values:
        key, sign, value = item.partition("=")
        if not sign or not key:
            raise BadUsage(f"--env {item!r} is not KEY=VALUE")
        env[key] = value
    return env


def _job_entry(name: str, options: dict[str, Any], argv: tuple[str, ...]) -> dict[str, Any]:
    """A job-file entry from the options of ``add``; paths made absolute."""
    entry: dict[str, Any] = {"name": name}
    for key in (
        "cron",
        "tz",
        "every",
        "at",
        "watch",
        "poll",
        "start",
        "end",
        "call",
        "cwd",
        "overlap",
        "catch_up",
        "catch_up_limit",
        "misfire_grace",
        "timeout",
        "jitter",
        "max_runs",
    ):
        if options[key] is not None:
            entry[key] = options[key]
    for flag in ("manual", "paused", "remove_after_run"):
        if options[flag]:
            entry[flag] = True
    if options["command"] is not None and argv:
        raise BadUsage("give the command either as --command TEXT or after --, not both")
    if options["command"] is not None:
        entry["command"] = options["command"]
    elif argv:
        entry["command"] = list(argv)
    env = _parse_env(options["env"])
    if env is not None:
        entry["env"] = env
    retry = {
        field: options[option]
        for field, option in (
            ("max_attempts", "retry"),
            ("backoff", "retry_backoff"),
            ("factor", "retry_factor"),
            ("max_backoff", "retry_max_backoff"),
        )
        if options[option] is not None
    }
    if retry:
        entry["retry"] = retry
    # The scheduler may run in another directory: send absolute paths.
    base = Path.cwd()
    for key in ("watch", "cwd"):
        if key in entry and entry[key].strip():  # an empty one is refused as it is
            entry[key] = os.fspath(base / entry[key])
    if "command" in entry and "cwd" not in entry:
        entry["cwd"] = os.fspath(base)
    return entry


@click.command("add", context_settings={"show_default": True})
@click.argument("log", metavar="LOG", type=click.Path(readable=False), callback=as_log_name)
@click.argument("name")
@click.argument("argv", nargs=-1, metavar="[-- ARGV...]")
@click.option("--cron", metavar="EXPR", help="Trigger: a cron expression.")
@click.option("--tz", metavar="ZONE", help="Time zone of --cron (default UTC).")
@click.option("--every", metavar="DURATION", help="Trigger: a fixed interval, e.g. 5m.")
@click.option("--at", metavar="TIME", help="Trigger: once, at an ISO 8601 time with offset.")
@click.option("--watch", metavar="PATH", help="Trigger: when the file's content changes.")
@click.option("--poll", metavar="DURATION", help="How often --watch looks (default 2s).")
@click.option("--manual", is_flag=True, help="Trigger: none; runs only with run-now.")
@click.option("--start", metavar="TIME", help="No runs before this time (--cron, --every).")
@click.option("--end", metavar="TIME", help="No runs after this time (--cron, --every).")
@click.option("--command", metavar="TEXT", help="Target: a shell command (or ARGV after --).")
@click.option("--call", metavar="PKG.MOD:FUNC", help="Target: a Python callable.")
@click.option("--env", multiple=True, metavar="KEY=VALUE", help="Environment of the command.")
@click.option("--cwd", metavar="DIR", help="Working directory of the command (default: here).")
@click.option("--overlap", type=click.Choice([o.value for o in Overlap]), default=None)
@click.option("--catch-up", type=click.Choice([c.value for c in CatchUp]), default=None)
@click.option("--catch-up-limit", type=int)
@click.option("--misfire-grace", metavar="DURATION")
@click.option("--retry", type=int, metavar="MAX_ATTEMPTS")
@click.option("--retry-backoff", metavar="DURATION")
@click.option("--retry-factor", type=float)
@click.option("--retry-max-backoff", metavar="DURATION")
@click.option("--timeout", metavar="DURATION")
@click.option("--jitter", metavar="DURATION")
@click.option("--paused", is_flag=True, help="Create the task paused.")
@click.option("--max-runs", type=int)
@click.option("--remove-after-run", is_flag=True, help="Remove an --at task after its run.")
@click.option(
    "--if-exists",
    type=click.Choice(["update", "error", "keep"]),
    default="update",
    help="When NAME exists with another definition.",
)
@json_option
@translate_errors
def add_command(
    log: LogName, name: str, argv: tuple[str, ...], if_exists: str, as_json: bool, **options: Any
) -> None:
    """Add task NAME to LOG, or change it: one trigger and one target, as in a job file.

    \b
    chronolog add jobs.jsonl backup --cron '0 3 * * *' --tz Europe/Paris -- backup.sh --full
    chronolog add jobs.jsonl report --every 15m --call mypackage.reports:build

    Tasks added this way are kept when `chronolog run` restarts or reloads
    its job file (the job file removes only the tasks it declared itself).
    """
    entry = _job_entry(name, options, argv)
    # Check here, with option names in the messages; whoever writes the task
    # checks again, and imports a --call target where it will run.
    try:
        resolve_job(
            entry,
            base=Path.cwd(),
            source=f"cannot add {name!r}",
            where=_option_name,
            term=_option_name,
            check_imports=False,
        )
    except ConfigError as exc:
        raise BadUsage(str(exc)) from exc
    result = _carry_out(
        log, parse_request({"command": "add", "job": entry, "if_exists": if_exists})
    )
    words = {"created": "added", "changed": "changed", "unchanged": "unchanged"}
    _report(
        result,
        as_json,
        f"{name} {words[result['change']]} (version {result['version']}): {result['trigger']}",
    )
