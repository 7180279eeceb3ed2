"""The operators' pages of the docs, run: hooks, Prometheus metrics, and agents over MCP.

Every fenced block of these pages is checked for what it is:

* ```toml -- a job file: it must load (``load_job_file``) beside the files
  the page gives (a ``# file: NAME`` python block is such a file);
* ```python -- a ``# docs-example`` runs, and prints the ```text block that
  follows it; any other block runs too (the embedding sketches define
  their functions and import what they name);
* ```json -- an MCP client's configuration: every server it names is
  started as the client would start it, and must list chronolog's tools;
* ```yaml -- Prometheus configuration: it must parse, and every metric an
  expression names must be one chronolog exports;
* ```console -- the commands, which need a running scheduler or a network,
  are listed in `NOT_RUN` with the test that covers each.

Then the pages' examples run for real: the chat webhook (``curl``) and the
mail (``smtplib``) hooks of the how-to post to a local HTTP server and a
local SMTP server from a real ``chronolog run``.
"""

from __future__ import annotations

import contextlib
import http.server
import io
import json
import os
import re
import shutil
import socketserver
import sys
import threading
from datetime import UTC, datetime
from email import message_from_bytes
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import trio
import yaml
from mcp import Client, StdioServerParameters

from chronolog import FileLog
from chronolog._config import load_job_file
from chronolog._jobs import startup_events
from chronolog.cli._schedule_tools import TOOLS
from chronolog.metrics import SchedulerCollector

from .test_cli_run import Process, processes, start, wait_until
from .test_docs_logs import fenced_blocks

if TYPE_CHECKING:
    from collections.abc import Iterator

    from .test_docs_examples import Block

__all__ = ["processes"]  # the fixture, imported for these tests

DOCS = Path(__file__).resolve().parent.parent / "docs"
PAGES = (
    "how-to/alert-on-failures.md",
    "how-to/monitor-with-prometheus.md",
    "how-to/let-an-agent-manage-schedules.md",
    "reference/hooks.md",
    "reference/metrics.md",
    "reference/mcp.md",
)
#: Commands the pages show that this module does not run as shown, and why.
_EXTRAS = "the test environment has the extras (make test installs them)"
NOT_RUN = {
    "pip install 'chronolog[metrics]'": _EXTRAS,
    "pip install 'chronolog[mcp]'": _EXTRAS,
    "chronolog run jobs.toml --metrics 127.0.0.1:9464": (
        "it runs until stopped; tests/test_cli_run_observers.py runs and scrapes it"
    ),
    "curl -s http://127.0.0.1:9464/metrics | grep backup": (
        "it needs the scheduler above; tests/test_cli_run_observers.py scrapes one"
    ),
    "CHAT_WEBHOOK_URL=https://chat.example.com/hooks/T0KEN chronolog run jobs.toml": (
        "it runs until stopped; test_the_hooks_of_the_how_to_post_and_mail runs it"
    ),
    "chronolog tail jobs.jsonl": (
        "the page describes its lines; test_the_agent_session_prints_what_the_page_shows "
        "checks the records"
    ),
}
#: Files a page's job files name but the page does not give (a reader has their own).
STUBS = {
    "assistant/__init__.py": "",
    "assistant/calendar.py": "def sync() -> str:\n    return 'synced'\n",
}
FILE_MARK = "# file: "
EXAMPLE_MARK = "# docs-example:"


def blocks(page: str) -> list[Block]:
    return [block for block in fenced_blocks((DOCS / page).read_text()) if block.info]


def given_files(page: str) -> dict[str, str]:
    """The files a page gives (``# file: NAME`` blocks), and the stubs."""
    files = dict(STUBS)
    for block in blocks(page):
        first = block.text.splitlines()[0] if block.text else ""
        if block.info == "python" and first.startswith(FILE_MARK):
            files[first.removeprefix(FILE_MARK).strip()] = block.text
    return files


def write_files(directory: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


@contextlib.contextmanager
def importable(directory: Path) -> Iterator[None]:
    """``directory`` on ``sys.path`` (as ``chronolog run`` puts the job file's), then not."""
    sys.path.insert(0, str(directory))
    before = set(sys.modules)
    try:
        yield
    finally:
        sys.path.remove(str(directory))
        for name in set(sys.modules) - before:
            if name.split(".")[0] in ("alerts", "assistant"):
                del sys.modules[name]


def exported_samples() -> set[str]:
    """Every sample name chronolog's collector can expose."""
    names: set[str] = set()
    for family in SchedulerCollector().describe():
        suffixes = {
            "counter": ("_total",),
            "histogram": ("_bucket", "_sum", "_count"),
            "summary": ("_sum", "_count"),
        }.get(family.type, ("",))
        names.update(family.name + suffix for suffix in suffixes)
    return names


def run_example(code: str, name: str) -> str:
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, name, "exec"), {"__name__": "__main__"})
    return printed.getvalue()


def create_log(directory: Path) -> None:
    """The log as ``chronolog run jobs.toml`` leaves it after its first start."""
    job_file = load_job_file(directory / "jobs.toml")

    async def create() -> None:
        async with FileLog(directory / "jobs.jsonl") as log:
            state = log.load_state()
            await log.append(startup_events(state, job_file, datetime.now(UTC)))

    trio.run(create)


def test_the_pages_are_in_the_site_and_the_readme() -> None:
    nav = (DOCS.parent / "mkdocs.yml").read_text()
    readme = (DOCS.parent / "README.md").read_text()
    for page in PAGES:
        assert page in nav, page
        assert f"docs/{page}" in readme, page


@pytest.mark.parametrize("page", PAGES)
def test_every_block_of_the_page_is_checked(
    page: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    files = given_files(page)
    write_files(tmp_path, files)
    page_blocks = blocks(page)
    checked = 0
    with importable(tmp_path):
        for index, block in enumerate(page_blocks):
            where = f"{page}:{block.line}"
            if block.info == "toml":
                (tmp_path / "jobs.toml").write_text(block.text)
                load_job_file(tmp_path / "jobs.toml")
            elif block.info == "python":
                first = block.text.splitlines()[0]
                if first.startswith(FILE_MARK):
                    compile(block.text, where, "exec")
                elif first.startswith(EXAMPLE_MARK):
                    continue  # run by the tests below, which know what each needs
                else:
                    assert run_example(block.text, where) == "", where
            elif block.info == "text":
                previous = page_blocks[index - 1]
                assert previous.text.startswith(EXAMPLE_MARK), f"{where}: output of what?"
            elif block.info == "json":
                check_client_configuration(json.loads(block.text), tmp_path)
            elif block.info == "yaml":
                check_prometheus_configuration(yaml.safe_load(block.text), where)
            elif block.info == "console":
                for line in block.text.splitlines():
                    if line.startswith("$ "):
                        assert line[2:] in NOT_RUN, f"{where}: {line[2:]!r} is not run"
            else:
                raise AssertionError(f"{where}: a block of {block.info!r} that no test checks")
            checked += 1
    assert checked


def check_prometheus_configuration(document: dict[str, Any], where: str) -> None:
    samples = exported_samples()
    if "scrape_configs" in document:
        (job,) = document["scrape_configs"]
        assert job["static_configs"][0]["targets"] == ["127.0.0.1:9464"]
        return
    rules = [rule for group in document["groups"] for rule in group["rules"]]
    assert rules, where
    for rule in rules:
        assert rule["alert"], where
        assert rule["expr"], where
        for name in re.findall(r"chronolog_\w+", rule["expr"]):
            assert name in samples, f"{where}: {rule['alert']} names {name}, not exported"
    # The two alerts the how-to promises.
    expressions = " ".join(rule["expr"] for rule in rules)
    assert "> 25 * 3600" in expressions
    assert "histogram_quantile(0.99" in expressions


def check_client_configuration(document: dict[str, Any], directory: Path) -> None:
    """Start every server of an ``mcpServers`` configuration as a client does; list its tools."""
    servers = document["mcpServers"]
    assert servers
    for server in servers.values():
        command = server["command"]
        assert command == "chronolog"
        # The page's paths are a server's; here the page's job file is in ``directory``.
        args = [arg.replace("/srv/jobs/", f"{directory}/") for arg in server["args"]]
        assert args[-1] == f"{directory}/jobs.toml"
        create_log(directory)
        # The `chronolog` of this environment, as a client with it on its PATH finds it.
        parameters = StdioServerParameters(
            command=str(Path(sys.executable).parent / command),
            args=args,
            cwd=str(directory),
            env=dict(os.environ),
        )
        assert tuple(trio.run(_tool_names, parameters)) == TOOLS


async def _tool_names(parameters: StdioServerParameters) -> list[str]:
    with trio.fail_after(60):
        async with Client(parameters) as client:
            return [tool.name for tool in (await client.list_tools()).tools]


def example(page: str, name: str) -> tuple[str, str | None]:
    page_blocks = blocks(page)
    for index, block in enumerate(page_blocks):
        if block.info == "python" and block.text.startswith(f"{EXAMPLE_MARK} {name}\n"):
            following = page_blocks[index + 1] if index + 1 < len(page_blocks) else None
            output = following.text if following is not None and following.info == "text" else None
            return block.text, output
    raise AssertionError(f"{page} has no example {name!r}")


def test_the_metrics_example_prints_what_the_page_shows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, output = example("reference/metrics.md", "embedded-metrics")
    assert run_example(code, "reference/metrics.md") == output


def test_the_agent_session_prints_what_the_page_shows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    page = "how-to/let-an-agent-manage-schedules.md"
    monkeypatch.chdir(tmp_path)
    write_files(tmp_path, given_files(page))
    (job_text,) = [block.text for block in blocks(page) if block.info == "toml"]
    (tmp_path / "jobs.toml").write_text(job_text)
    with importable(tmp_path):
        create_log(tmp_path)
    code, output = example(page, "an-agent-session")
    assert run_example(code, page) == output
    records = list(FileLog(tmp_path / "jobs.jsonl").read())
    added = [r for r in records if getattr(r, "target", "").startswith("added-by-mcp:command:")]
    assert [r.task for r in added] == ["standup-reminder"]
    assert records[-1].note == "mcp: on holiday"


# -- the hooks of the how-to, for real -------------------------------------------------------


class _Posts(http.server.BaseHTTPRequestHandler):
    received: list[tuple[str, bytes]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((self.path, body))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: Any) -> None:
        pass


class _Smtp(socketserver.StreamRequestHandler):
    """Just enough SMTP to take one message."""

    received: list[bytes]

    def handle(self) -> None:
        self.wfile.write(b"220 test ESMTP\r\n")
        while line := self.rfile.readline():
            verb = line.split(b" ", 1)[0].strip().upper()
            if verb == b"DATA":
                self.wfile.write(b"354 go on\r\n")
                data = bytearray()
                while (row := self.rfile.readline()) not in (b".\r\n", b""):
                    data += row
                self.received.append(bytes(data))
                self.wfile.write(b"250 queued\r\n")
            elif verb == b"QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"250 ok\r\n")


@contextlib.contextmanager
def serving(server: socketserver.BaseServer) -> Iterator[int]:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]  # type: ignore[misc]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.mark.skipif(shutil.which("curl") is None, reason="the page's first hook runs curl")
def test_the_hooks_of_the_how_to_post_and_mail(
    tmp_path: Path, processes: list[Process], monkeypatch: pytest.MonkeyPatch
) -> None:
    page = "how-to/alert-on-failures.md"
    write_files(tmp_path, given_files(page))
    for script in ("backup.sh", "report.sh"):
        path = tmp_path / script
        path.write_text(f"#!/bin/sh\necho '{script}: disk full' >&2\nexit 3\n")
        path.chmod(0o755)
    posts: list[tuple[str, bytes]] = []
    mails: list[bytes] = []
    handler = type("Posts", (_Posts,), {"received": posts})
    smtp = type("Smtp", (_Smtp,), {"received": mails})
    curl_job_file, calls_job_file, _ = [b.text for b in blocks(page) if b.info == "toml"]
    with (
        serving(http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)) as web_port,
        serving(socketserver.ThreadingTCPServer(("127.0.0.1", 0), smtp)) as smtp_port,
    ):
        monkeypatch.setenv("CHAT_WEBHOOK_URL", f"http://127.0.0.1:{web_port}/hooks/T0KEN")
        monkeypatch.setenv("SMTP_HOST", "127.0.0.1")
        monkeypatch.setenv("SMTP_PORT", str(smtp_port))

        # The curl hook posts the record itself.
        (tmp_path / "jobs.toml").write_text(curl_job_file)
        scheduler = start(processes, tmp_path)
        occurrence = scheduler.control("run-now", "backup")["occurrence"]
        wait_until(lambda: posts, "the webhook to get the record")
        scheduler.signal(15)
        assert scheduler.wait_exit() == 0
        path, body = posts.pop()
        assert path == "/hooks/T0KEN"
        record = json.loads(body)
        assert (record["type"], record["occurrence"]) == ("Failed", occurrence)
        assert "backup.sh: disk full" in record["error"]

        # The call hooks: the report's failure goes to the chat, the backup's is mailed.
        (tmp_path / "jobs.toml").write_text(calls_job_file)
        scheduler = start(processes, tmp_path)
        report = scheduler.control("run-now", "report")["occurrence"]
        backup = scheduler.control("run-now", "backup")["occurrence"]
        wait_until(lambda: posts and mails, "the chat message and the mail")
        scheduler.signal(15)
        assert scheduler.wait_exit() == 0
    ((path, body),) = posts
    text = json.loads(body)["text"]
    assert text.startswith("report failed after 1 attempt(s): command ./report.sh exited with")
    (mail,) = mails
    message = message_from_bytes(mail)
    assert message["Subject"].startswith("[chronolog] backup failed: command ./backup.sh exited")
    assert message["To"] == "ops@localhost"
    body_text = message.get_payload()
    assert f"occurrence {backup}, attempt 1" in body_text
    assert report != backup
    assert "hook of task" not in scheduler.stderr  # no hook failed
