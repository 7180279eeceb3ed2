"""``chronolog mcp``: the schedule tools driven with the MCP SDK's own client.

In process (the SDK connects its client to the server object), and as a
real ``python -m chronolog mcp`` subprocess speaking MCP on stdio -- also
beside a real ``chronolog run``, whose control socket then carries the
changes. The real processes run on real time: the tests wait for
conditions, each with a timeout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
import trio
from mcp import Client, StdioServerParameters

from chronolog import Completed, FileLog, TaskDefined, check_invariants
from chronolog._commands import CommandSpec
from chronolog._config import CallSpec, NamedTarget
from chronolog._jobs import declared_by
from chronolog.cli._schedule_tools import TOOLS, AllowList, ScheduleTools
from chronolog.cli.mcp import build_server

from .test_cli_run import Process, job_file, processes, start, wait_until

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["processes"]  # the fixture, imported for these tests

#: How long a test gives a real process to answer before it fails.
PATIENCE = 60


@pytest.fixture
async def log_path(tmp_path: Path) -> Path:
    path = tmp_path / "jobs.jsonl"
    async with FileLog(path):
        pass
    return path


def result_of(answer: Any) -> dict[str, Any]:
    assert not answer.is_error, answer.content[0].text
    document: dict[str, Any] = json.loads(answer.content[0].text)
    assert answer.structured_content == document
    return document


async def test_the_sdk_client_in_process_lists_the_tools_and_calls_them(
    log_path: Path, tmp_path: Path
) -> None:
    tools = ScheduleTools(
        log_path,
        AllowList((NamedTarget("dump", CallSpec("json:dumps"), "dumps JSON"),)),
    )
    with trio.fail_after(PATIENCE):
        async with Client(build_server(tools)) as client:
            listed = await client.list_tools()
            assert tuple(tool.name for tool in listed.tools) == TOOLS
            schemas = {tool.name: tool.input_schema for tool in listed.tools}
            assert schemas == {spec.name: spec.input_schema for spec in tools.specs()}
            annotations = {tool.name: tool.annotations for tool in listed.tools}
            assert annotations["schedule_list"].read_only_hint is True
            assert annotations["schedule_remove"].destructive_hint is True
            added = result_of(
                await client.call_tool(
                    "schedule_add", {"name": "tidy", "every": "1h", "target": "dump"}
                )
            )
            assert (added["task"], added["change"], added["target"]) == ("tidy", "created", "dump")
            refused = await client.call_tool(
                "schedule_add", {"name": "evil", "every": "1h", "command": "rm -rf /"}
            )
            assert refused.is_error
            assert refused.content[0].text.startswith("schedule_add: command: ")
            missing = await client.call_tool("schedule_nope", {})
            assert missing.is_error
            assert "no tool named 'schedule_nope'" in missing.content[0].text
    definitions = [r for r in FileLog(log_path).read() if isinstance(r, TaskDefined)]
    assert [(d.task, declared_by(d.target)) for d in definitions] == [("tidy", "mcp")]


async def test_a_failure_inside_a_tool_is_an_error_result_not_a_crash(
    log_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    tools = ScheduleTools(log_path, AllowList())

    async def broken(self: ScheduleTools, name: str, arguments: Any) -> dict[str, Any]:
        raise RuntimeError("a bug")

    monkeypatch.setattr(ScheduleTools, "call", broken)
    with trio.fail_after(PATIENCE):
        async with Client(build_server(tools)) as client:
            answer = await client.call_tool("schedule_list", {})
            assert answer.is_error
            assert "could not carry out the call" in answer.content[0].text
            assert "a bug" not in answer.content[0].text
            assert (await client.list_tools()).tools  # the server goes on
    assert "a bug" in caplog.text


def stdio(tmp_path: Path, *args: str) -> Client:
    return Client(
        StdioServerParameters(
            command=sys.executable,
            args=["-m", "chronolog", "mcp", *args],
            cwd=str(tmp_path),
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    )


TARGETS = """
[targets.note]
command = "echo $CHRONOLOG_OCCURRENCE >> notes.txt"
description = "appends the occurrence to notes.txt"
"""


async def test_a_real_stdio_server_writes_to_the_log_when_no_scheduler_runs(
    log_path: Path, tmp_path: Path
) -> None:
    job_file(tmp_path, 'log = "jobs.jsonl"\n' + TARGETS)
    with trio.fail_after(PATIENCE):
        async with stdio(tmp_path, "jobs.toml", "--min-interval", "1h") as client:
            listed = await client.list_tools()
            add = next(tool for tool in listed.tools if tool.name == "schedule_add")
            assert add.input_schema["properties"]["target"]["enum"] == ["note"]
            added = result_of(
                await client.call_tool(
                    "schedule_add",
                    {
                        "name": "standup",
                        "cron": "0 9 * * 1-5",
                        "tz": "Europe/Paris",
                        "target": "note",
                    },
                )
            )
            assert added["via"] == "log"
            too_often = await client.call_tool(
                "schedule_add", {"name": "spam", "every": "1m", "target": "note"}
            )
            assert too_often.is_error
            assert "at most every 1h" in too_often.content[0].text
            disabled = result_of(
                await client.call_tool("schedule_disable", {"name": "standup", "note": "holiday"})
            )
            assert disabled["changed"] is True
            listed_tasks = result_of(await client.call_tool("schedule_list", {}))
            assert [t["note"] for t in listed_tasks["tasks"]] == ["mcp: holiday"]
    records = list(FileLog(log_path).read())
    assert check_invariants(records) == []


def test_without_the_sdk_the_command_says_how_to_install_it_and_the_rest_works(
    tmp_path: Path,
) -> None:
    (tmp_path / "jobs.jsonl").write_text("")
    script = (
        "import sys\n"
        "for name in ('mcp', 'mcp_types', 'prometheus_client'):\n"
        "    sys.modules[name] = None  # as if not installed\n"
        "import chronolog, chronolog.testing\n"
        "from chronolog.cli import main\n"
        "sys.argv = ['chronolog', *sys.argv[1:]]\n"
        "main()\n"
    )

    def chronolog(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", script, *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=PATIENCE,
            check=False,
        )

    done = chronolog("mcp", "jobs.jsonl")
    assert done.returncode == 2
    assert "chronolog mcp needs the MCP Python SDK, which is not installed: " in done.stderr
    assert "pip install 'chronolog[mcp]'" in done.stderr
    job_file(
        tmp_path, 'log = "jobs.jsonl"\n[[jobs]]\nname = "a"\nmanual = true\ncall = "json:dumps"\n'
    )
    done = chronolog("run", "jobs.toml", "--metrics", "127.0.0.1:0")
    assert done.returncode == 2
    assert "pip install 'chronolog[metrics]'" in done.stderr
    done = chronolog("next", "0 9 * * *", "--count", "1", "--after", "2026-01-01T00:00:00Z")
    assert (done.returncode, done.stdout.splitlines()[-1].strip()) == (
        0,
        "Thu 2026-01-01 09:00:00 UTC (+00:00)  =  2026-01-01 09:00:00Z",
    )


def test_an_agent_schedules_through_a_running_scheduler_and_its_task_survives_restarts(
    tmp_path: Path, processes: list[Process]
) -> None:
    job_file(
        tmp_path,
        'log = "jobs.jsonl"\n[[jobs]]\nname = "own"\nmanual = true\ncall = "json:dumps"\n'
        + TARGETS,
    )
    scheduler = start(processes, tmp_path)
    soon = (datetime.now(UTC) + timedelta(seconds=1)).replace(microsecond=0)

    async def agent(calls: list[tuple[str, dict[str, Any]]]) -> list[Any]:
        answers = []
        with trio.fail_after(PATIENCE):
            async with stdio(tmp_path, "jobs.toml") as client:
                for tool, arguments in calls:
                    answers.append(await client.call_tool(tool, arguments))
        return answers

    added, refused = trio.run(
        agent,
        [
            ("schedule_add", {"name": "ping", "at": soon.isoformat(), "target": "note"}),
            ("schedule_remove", {"name": "own"}),
        ],
    )
    assert result_of(added)["via"] == "scheduler"
    assert refused.is_error
    assert "task 'own' was not added by an agent" in refused.content[0].text
    wait_until(lambda: (tmp_path / "notes.txt").exists(), "the agent's task to run")
    assert (tmp_path / "notes.txt").read_text() == f"ping@{soon:%Y-%m-%dT%H:%M:%S}Z\n"
    wait_until(
        lambda: any(isinstance(r, Completed) and r.task == "ping" for r in scheduler.records()),
        "its record",
    )
    (history,) = trio.run(agent, [("schedule_history", {"name": "ping"})])
    assert [run["outcome"] for run in result_of(history)["runs"]] == ["completed"]
    scheduler.signal(15)
    assert scheduler.wait_exit() == 0

    # The job file does not own the agent's task: a restart keeps it as it is.
    again = start(processes, tmp_path)
    (listed,) = trio.run(agent, [("schedule_list", {})])
    assert [task["task"] for task in result_of(listed)["tasks"]] == ["ping"]
    again.signal(15)
    assert again.wait_exit() == 0
    definitions = [r for r in again.records() if isinstance(r, TaskDefined) and r.task == "ping"]
    assert len(definitions) == 1  # bound again at the restart, not redefined
    assert definitions[0].target == (
        "added-by-mcp:command:"
        + CommandSpec(shell="echo $CHRONOLOG_OCCURRENCE >> notes.txt", cwd=str(tmp_path)).to_json()
    )
    assert check_invariants(again.records()) == []
