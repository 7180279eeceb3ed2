"""The read-only commands on a PostgreSQL log: the same answers as on the same records in a file.

The scenario log of the command-line tests (``cli_logs``) is copied record
for record into a PostgreSQL database; every read-only command then gives,
on the database, what it gives on the file -- only the log's name differs.
Errors of the database (a wrong password, no such database, no log in it)
are one line with the documented exit code, also as ``--json``, and never
show the password.
"""

# Blocking calls (the command runner, psycopg) in tests are fine here.

from __future__ import annotations

import html
import json
import os
import selectors
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import msgspec
import psycopg
import pytest
import trio
from click.testing import CliRunner

from chronolog import FileLog, Scheduled
from chronolog.cli import main
from chronolog.log.postgres import PostgresLog

from .cli_logs import START, scenario_log
from .postgres_server import TCP_ROLE

if TYPE_CHECKING:
    from pathlib import Path

    from .conftest import Server


@pytest.fixture
def copied(tmp_path: Path, postgres_dsn: str) -> tuple[Path, str]:
    """The scenario log as a file, and the same records in a database (its DSN)."""
    path = scenario_log(tmp_path)
    records = [msgspec.structs.replace(record, seq=0) for record in FileLog(path).read()]

    async def copy() -> None:
        async with PostgresLog(postgres_dsn) as log:
            stored = await log.append(records)
        assert [record.seq for record in stored] == list(range(1, len(records) + 1))

    trio.run(copy)
    return path, postgres_dsn


def run(*arguments: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(arguments))
    return result.exit_code, result.output


COMMANDS = [
    ("status",),
    ("status", "--json"),
    ("history", "{log}", "backup"),
    ("history", "{log}", "flaky", "--json"),
    ("why", "{log}", "backup@2026-03-28T01:30:00Z"),
    ("why", "{log}", "flaky@2026-03-30T06:00:00Z", "--json"),
    ("verify",),
    ("verify", "--json"),
    ("replay", "{log}", "--at", "2026-03-30T06:02Z"),
    ("replay", "{log}", "--seq", "40", "--json"),
    ("tail", "{log}", "-n", "7"),
    ("tail", "{log}", "--task", "backup", "--json"),
]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_a_read_only_command_answers_as_on_the_file(
    copied: tuple[Path, str], command: tuple[str, ...]
) -> None:
    path, dsn = copied
    name, *rest = command
    if not rest or rest[0] != "{log}":
        rest = ["{log}", *rest]
    on_file = run(name, *[str(path) if part == "{log}" else part for part in rest])
    on_database = run(name, *[dsn if part == "{log}" else part for part in rest])
    assert on_file[0] == 0
    shown = str(PostgresLog(dsn).shown)
    expected = on_file[1].replace(str(path), shown)
    if name == "verify":
        # The scenario file is of format version 1 (no checksums), which verify
        # mentions; a PostgreSQL log always has them (version 3).
        expected = "".join(
            line for line in expected.splitlines(keepends=True) if "format version 1" not in line
        )
        expected = expected.replace('"format_version": 1', '"format_version": 3')
    assert on_database == (on_file[0], expected)


def test_the_timeline_of_a_database(copied: tuple[Path, str], tmp_path: Path) -> None:
    path, dsn = copied
    (tmp_path / "pages").mkdir()
    page_of_file, page_of_database = tmp_path / "pages/file.html", tmp_path / "pages/db.html"
    assert run("timeline", str(path), "--out", str(page_of_file))[0] == 0
    code, output = run("timeline", dsn, "--out", str(page_of_database))
    assert code == 0, output
    # The page names its log: the file's name, or the URL without its password.
    shown = html.escape(PostgresLog(dsn).shown)
    assert page_of_database.read_text() == page_of_file.read_text().replace(path.name, shown)
    # Writing over an existing page is fine: a URL is no file the page could be.
    assert run("timeline", dsn, "--out", str(page_of_database))[0] == 0


def test_tail_follows_what_a_scheduler_appends(copied: tuple[Path, str]) -> None:
    _, dsn = copied
    environment = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "chronolog", "tail", dsn, "-f", "-n", "0", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=environment,
    )
    try:
        time.sleep(1.5)  # it has read the log and listens
        due = START.replace(year=2027)
        event = Scheduled(
            task="backup", at=due, occurrence=f"backup@{due:%Y-%m-%dT%H:%M:%SZ}", due=due
        )

        async def append() -> int:
            async with PostgresLog(dsn) as log:
                return (await log.append([event]))[0].seq

        seq = trio.run(append)
        assert process.stdout is not None
        selector = selectors.DefaultSelector()
        selector.register(process.stdout, selectors.EVENT_READ)
        assert selector.select(timeout=10), "tail -f printed nothing within 10 s"
        line = json.loads(process.stdout.readline())
        assert (line["seq"], line["type"], line["task"]) == (seq, "Scheduled", "backup")
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=10)
        assert process.stdout is not None
        assert process.stderr is not None
        process.stdout.close()
        process.stderr.close()


def _tcp(dsn: str, server: Server, password: str | None = None) -> str:
    """``dsn``'s database over TCP as the password role (with ``password``)."""
    from .postgres_server import TCP_PASSWORD, Cluster

    if not isinstance(server, Cluster):
        pytest.skip("needs the cluster the tests start (a known password role)")
    database = urlsplit(dsn).path.lstrip("/")
    return server.tcp_dsn(database, password=password or TCP_PASSWORD)


def test_a_wrong_password_is_one_line_and_never_shown(
    copied: tuple[Path, str], postgres_server: Server
) -> None:
    _, dsn = copied
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute(f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {TCP_ROLE}")
    good = _tcp(dsn, postgres_server)
    assert run("status", good)[0] == 0
    wrong = _tcp(dsn, postgres_server, password="not-the-password")
    code, output = run("status", wrong)
    assert code == 1
    assert output.startswith("Error: cannot read log postgresql://chronolog_app@127.0.0.1")
    assert "password authentication failed" in output
    assert "check the user and password" in output
    assert "not-the-password" not in output
    code, output = run("verify", wrong, "--json")
    document = json.loads(output.splitlines()[0])
    assert document["error"]["type"] == "PermissionError"
    assert document["error"]["exit_code"] == 1
    assert "not-the-password" not in output


def test_no_database_no_log_no_server(postgres_dsn: str, postgres_server: Server) -> None:
    database = urlsplit(postgres_dsn).path.lstrip("/")
    missing = postgres_dsn.replace(f"/{database}?", "/no_such_database?")
    code, output = run("status", missing)
    assert code == 2
    assert 'database "no_such_database" does not exist' in output
    # A database without chronolog's tables holds no log.
    code, output = run("history", postgres_dsn, "backup", "--json")
    assert code == 2
    document = json.loads(output.splitlines()[0])
    assert "holds no chronolog log" in document["error"]["message"]
    # No server at all.
    code, output = run("verify", "postgresql://someone:pw@127.0.0.1:1/jobs")
    assert code == 1
    assert "Connection refused" in output
    assert ":pw@" not in output
    # A URL libpq cannot read is a usage error.
    code, output = run("status", "postgresql://a@b/e?no_such_option=1")
    assert code == 2
    assert "is not a valid PostgreSQL URL" in output
