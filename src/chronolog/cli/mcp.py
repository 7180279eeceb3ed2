"""``chronolog mcp LOG``: the schedule tools for agents, as an MCP server over stdio.

An MCP client (an assistant, an IDE) starts ``chronolog mcp`` as a
subprocess and speaks the Model Context Protocol on its stdin and stdout;
the tools are those of ``_schedule_tools`` (their schemas, the allow-list,
who may change what). This module only puts them on the protocol, with the
official SDK's low-level ``Server`` -- the tools bring their own JSON
Schemas, derived from the job file, and check their arguments themselves --
run by Trio (the SDK runs on anyio, which runs on Trio).

The SDK is an optional extra: ``pip install 'chronolog[mcp]'``. Without it
the rest of chronolog works, and this command says how to install it.

stdout belongs to the protocol: everything this command logs goes to
stderr, one line per tool call an agent makes (what it asked, what came of
it), so the operator sees what agents do.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import click
import trio

from .._config import load_job_file, log_setting
from .._errors import ConfigError
from .._job_file_syntax import parse_duration
from ._common import BadUsage, translate_errors
from ._schedule_tools import AllowList, ScheduleTools, ToolError

if TYPE_CHECKING:
    from mcp.server.context import ServerRequestContext
    from mcp.server.lowlevel import Server
    from mcp.types import CallToolResult

    from .._config import JobFile

__all__ = ["build_server", "mcp_command", "serve_stdio"]

logger = logging.getLogger("chronolog.mcp")

INSTALL: Final = "pip install 'chronolog[mcp]'"
INSTRUCTIONS: Final = (
    "These tools manage the scheduled tasks of a chronolog scheduler. A task has one "
    "trigger (cron with tz, every, at, or manual) and runs one of the targets the operator "
    "allows (schedule_list shows them). Changes are recorded in the scheduler's log; "
    "schedule_history and schedule_why say what happened to past runs, schedule_next when "
    "the next ones are due."
)
#: At most this much of an agent's arguments is quoted in a log line.
_LOGGED_CHARS: Final = 300


def _require_sdk() -> None:
    try:
        import mcp.server.lowlevel  # noqa: F401
    except ImportError:
        raise BadUsage(
            f"chronolog mcp needs the MCP Python SDK, which is not installed: {INSTALL}"
        ) from None


def build_server(tools: ScheduleTools) -> Server[Any]:
    """An MCP server (the SDK's low-level ``Server``) offering ``tools``."""
    import mcp.types as types
    from mcp.server.lowlevel import Server

    async def list_tools(
        context: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(
            tools=[
                types.Tool(
                    name=spec.name,
                    description=spec.description,
                    input_schema=spec.input_schema,
                    annotations=types.ToolAnnotations(
                        read_only_hint=spec.read_only,
                        destructive_hint=spec.destructive,
                        open_world_hint=False,
                    ),
                )
                for spec in tools.specs()
            ]
        )

    async def call_tool(
        context: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        asked = _quoted(params.arguments)
        try:
            result = await tools.call(params.name, params.arguments)
        except ToolError as exc:
            logger.info("%s %s refused: %s", params.name, asked, exc)
            return _text_result(str(exc), is_error=True)
        except Exception:
            logger.exception("%s %s failed", params.name, asked)
            return _text_result(
                f"{params.name}: chronolog could not carry out the call (its log on the "
                f"server's stderr says why); nothing was changed unless the log says so",
                is_error=True,
            )
        logger.info("%s %s: %s", params.name, asked, _quoted(result))
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=json.dumps(result, ensure_ascii=False))],
            structured_content=result,
        )

    try:
        own_version = version("chronolog")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        own_version = ""
    return Server(
        "chronolog",
        version=own_version,
        title="chronolog schedules",
        instructions=INSTRUCTIONS,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )


def _text_result(text: str, *, is_error: bool) -> CallToolResult:
    import mcp.types as types

    return types.CallToolResult(
        content=[types.TextContent(type="text", text=text)], is_error=is_error
    )


def _quoted(value: object) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= _LOGGED_CHARS else text[:_LOGGED_CHARS] + "..."


async def serve_stdio(server: Server[Any]) -> None:
    """Serve ``server`` on this process's stdin and stdout until the client closes them."""
    from mcp.server.stdio import stdio_server

    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())


def _log_and_job_file(target: Path) -> tuple[Path, JobFile | None]:
    """The log that ``target`` names, and the job file it was named by (if it was one)."""
    job_file = None
    if target.suffix.lower() == ".toml":
        log_setting(target)  # a clear error for a file that is no job file at all
        try:
            job_file = load_job_file(target)
        except ConfigError as exc:
            raise BadUsage(str(exc)) from exc
        if job_file.log is None:
            raise BadUsage(f"job file {target} names no log (its `log` key); give the log's path")
        if isinstance(job_file.log, str):
            raise BadUsage(
                f"job file {target} names a postgresql:// log; `chronolog mcp` serves a log "
                f"file or a SQLite log only"
            )
        target = job_file.log
    if not target.exists():
        raise BadUsage(
            f"log {target} does not exist; check the path (`chronolog run` creates the log "
            f"when it first starts)"
        )
    if target.is_dir():
        raise BadUsage(f"{target} is a directory, not a log")
    return target, job_file


class _UTCFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%dT%H:%M:%SZ")
        self.converter = time.gmtime


@click.command("mcp", context_settings={"show_default": True})
@click.argument("log", metavar="LOG|JOBS.toml", type=click.Path(path_type=Path))
@click.option(
    "--allow-call",
    multiple=True,
    metavar="PKG.MOD:FUNC",
    help="Let agents schedule this Python callable (repeat for several).",
)
@click.option(
    "--allow-command",
    multiple=True,
    metavar="NAME=COMMAND",
    help="Let agents schedule this shell command under NAME (repeat for several).",
)
@click.option(
    "--all-tasks",
    is_flag=True,
    help="Let agents see and change every task, not only those they added.",
)
@click.option(
    "--max-tasks",
    type=click.IntRange(min=1),
    default=100,
    help="The most tasks agents may have at once.",
)
@click.option(
    "--min-interval",
    default="1m",
    metavar="DURATION",
    help="The shortest time between two runs of a task an agent adds.",
)
@translate_errors
def mcp_command(
    log: Path,
    allow_call: tuple[str, ...],
    allow_command: tuple[str, ...],
    all_tasks: bool,
    max_tasks: int,
    min_interval: str,
) -> None:
    """Serve the schedule tools to an agent over MCP on stdin/stdout (needs chronolog[mcp]).

    LOG is the log, or a job file whose `log` it is and whose [targets] table
    lists what agents may run. Agents run nothing else: name more targets
    with --allow-call and --allow-command.

    \b
    chronolog mcp jobs.toml
    chronolog mcp jobs.jsonl --allow-command 'report=./report.sh --daily'
    """
    _require_sdk()
    try:
        interval = parse_duration(min_interval)
    except ValueError as exc:
        raise BadUsage(f"--min-interval: {exc}") from exc
    # As `chronolog run` does: modules beside the job file (or the log) can be called.
    beside = os.fspath(log.resolve().parent)
    if beside not in sys.path:
        sys.path.append(beside)
    log_path, job_file = _log_and_job_file(log)
    try:
        allow = AllowList.build(
            job_file=job_file, calls=allow_call, commands=allow_command, base=Path.cwd()
        )
    except ConfigError as exc:
        raise BadUsage(str(exc)) from exc
    tools = ScheduleTools(
        log_path.resolve(),
        allow,
        all_tasks=all_tasks,
        max_tasks=max_tasks,
        min_interval=interval,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_UTCFormatter())
    package_logger = logging.getLogger("chronolog")
    package_logger.addHandler(handler)
    previous_level = package_logger.level
    package_logger.setLevel(logging.INFO)
    logger.info(
        "serving the schedule tools of %s over stdio; agents may run: %s",
        log_path,
        ", ".join(allow.names) or "nothing yet (no target is allowed)",
    )
    try:
        trio.run(serve_stdio, build_server(tools))
    finally:
        package_logger.removeHandler(handler)
        package_logger.setLevel(previous_level)
