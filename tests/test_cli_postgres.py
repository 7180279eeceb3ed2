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
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import msgspec
import psycopg
import pytest
import trio
from click.testing import CliRunner

from chronolog import Failed, FileLog, Manual, Scheduled, Started, TaskDefined
from chronolog._errors import LogCorrupted
from chronolog.cli import main
from chronolog.log import _postgres_schema
from chronolog.log._postgres_names import describe_dsn
from chronolog.log._postgres_schema import SCHEMA_VERSION
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


# -- chronolog db ------------------------------------------------------------------


def test_db_init_creates_the_tables_once(postgres_dsn: str) -> None:
    code, output = run("db", "init", postgres_dsn)
    assert (code, output.strip()) == (
        0,
        f"{_shown(postgres_dsn)}: created chronolog's tables (schema {SCHEMA_VERSION})",
    )
    code, output = run("db", "init", postgres_dsn, "--json")
    assert code == 0
    assert json.loads(output)["schema_before"] == SCHEMA_VERSION
    assert run("status", postgres_dsn)[0] == 0


def test_db_upgrade_migrates_an_older_schema(postgres_dsn: str) -> None:
    with psycopg.connect(postgres_dsn, autocommit=True) as connection:
        for statement in _postgres_schema._STEPS[1]:
            connection.execute(statement.encode())

    async def refused() -> None:
        with pytest.raises(LogCorrupted, match="run `chronolog db upgrade`"):
            async with PostgresLog(postgres_dsn):
                pass  # pragma: no cover

    trio.run(refused)
    code, output = run("db", "upgrade", postgres_dsn)
    assert code == 0
    assert output.strip().endswith(f"upgraded from schema 1 to {SCHEMA_VERSION}")
    code, output = run("db", "upgrade", postgres_dsn)
    assert "nothing to do" in output


def test_db_refuses_a_newer_schema_and_a_file(postgres_dsn: str, tmp_path: Path) -> None:
    assert run("db", "init", postgres_dsn)[0] == 0
    with psycopg.connect(postgres_dsn, autocommit=True) as connection:
        connection.execute("UPDATE chronolog_meta SET value = '99' WHERE key = 'schema'")
    code, output = run("db", "upgrade", postgres_dsn)
    assert code == 3
    assert "upgrade chronolog (on every node)" in output
    code, output = run("db", "init", str(tmp_path / "jobs.jsonl"))
    assert code == 2
    assert "is not a PostgreSQL URL" in output


def test_db_nodes_lists_the_leases(postgres_dsn: str) -> None:
    assert run("db", "nodes", postgres_dsn)[1].strip().endswith("no scheduler holds a lease")

    async def hold() -> None:
        async with PostgresLog(postgres_dsn) as log:
            assert await log.renew_lease("web-1", "instance", timedelta(seconds=30))

    trio.run(hold)
    code, output = run("db", "nodes", postgres_dsn, "--json")
    assert code == 0
    [node] = json.loads(output)["nodes"]
    assert (node["node"], node["alive"]) == ("web-1", True)
    assert run("db", "nodes", postgres_dsn)[1].startswith("web-1: alive (lease until ")


# -- control commands on a shared log ------------------------------------------------


def test_control_commands_are_recorded_in_the_shared_log(
    copied: tuple[Path, str],
) -> None:
    _, dsn = copied
    code, output = run("pause", dsn, "backup", "--note", "disk full")
    assert code == 0
    assert output.strip() == (
        "backup paused (recorded in the shared log: every scheduler on it follows it)"
    )
    code, output = run("pause", dsn, "backup", "--json")
    document = json.loads(output)
    assert (document["changed"], document["via"]) == (False, "shared log")
    assert run("resume", dsn, "backup")[0] == 0
    code, output = run("cancel", dsn, "backup")
    assert (code, output.strip()) == (0, "nothing to cancel: no run of backup is running")
    code, output = run("remove", dsn, "flaky")
    assert code == 0
    code, output = run("status", dsn, "--json")
    assert "flaky" not in {task["task"] for task in json.loads(output)["tasks"]}
    assert run("verify", dsn)[0] == 0
    # No node runs: a manual run is recorded only for a manual task.
    code, output = run("run-now", dsn, "backup")
    assert code == 1
    assert "no scheduler is running on this log" in output


def test_a_cancel_settles_a_run_of_a_node(postgres_dsn: str) -> None:
    """A node runs it; the cancel records its end, the node follows and stops it."""
    now = datetime.now(UTC)

    async def setup() -> None:
        async with PostgresLog(postgres_dsn) as log:
            await log.append(
                [
                    TaskDefined(task="long", at=now, trigger=Manual(), target="x:y"),
                    Scheduled(task="long", at=now, occurrence="long!1", due=now),
                    Started(task="long", at=now, occurrence="long!1", attempt=1, node="web-1"),
                ]
            )
            assert await log.renew_lease("web-1", "instance", timedelta(seconds=30))

    trio.run(setup)
    code, output = run("cancel", postgres_dsn, "long", "--json")
    assert code == 0
    assert json.loads(output)["cancelled"] == 1
    [failed] = [r for r in PostgresLog(postgres_dsn).read() if isinstance(r, Failed)]
    assert (failed.occurrence, failed.error, failed.retry_at) == ("long!1", "cancelled", None)


def _shown(dsn: str) -> str:
    return describe_dsn(dsn)


def test_run_check_takes_a_postgresql_log_and_never_shows_its_password(tmp_path: Path) -> None:
    (tmp_path / "jobs.toml").write_text(
        'log = "postgresql://app:s3cret@db.internal:5432/jobs"\nlease = "5s"\n\n'
        '[[jobs]]\nname = "tick"\nevery = "1m"\ncommand = "true"\n'
    )
    code, output = run("run", str(tmp_path / "jobs.toml"), "--check")
    assert code == 0, output
    assert "log postgresql://app@db.internal:5432/jobs" in output
    assert "s3cret" not in output
