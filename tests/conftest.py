"""Fixtures shared by the example tests: a real PostgreSQL server for the PostgresLog tests.

``postgres_server`` (session-scoped) is a throw-away cluster started for the
test session (see ``tests/postgres_server.py``), or the server named by
``CHRONOLOG_TEST_POSTGRES_DSN`` (a DSN whose user may create databases).
``postgres_dsn`` is a fresh, empty database on it for one test.

When PostgreSQL cannot be started, the tests that need it are skipped with
the reason -- except in CI (``CI`` set, or ``HYPOTHESIS_PROFILE=ci``), where
they fail: the PostgreSQL tests are never skipped silently there.
"""

from __future__ import annotations

import contextlib
import itertools
import os
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit, urlunsplit

import pytest

from .postgres_server import Cluster, ClusterUnavailable, start_cluster

if TYPE_CHECKING:
    from collections.abc import Iterator

_names = itertools.count(1)


class Server(Protocol):
    def create_database(self, name: str | None = None) -> str: ...
    def drop_database(self, name: str) -> None: ...
    def terminate_backends(self, database: str) -> int: ...


class ExternalServer:
    """A server the environment names (``CHRONOLOG_TEST_POSTGRES_DSN``)."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn

    def _admin(self, statement: str) -> None:
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as connection:
            connection.execute(statement.encode())

    def create_database(self, name: str | None = None) -> str:
        name = name or f"chronolog_t{os.getpid()}_{next(_names)}"
        self._admin(f'CREATE DATABASE "{name}"')
        parts = urlsplit(self.dsn)
        return urlunsplit(parts._replace(path=f"/{name}"))

    def drop_database(self, name: str) -> None:
        with contextlib.suppress(Exception):
            self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def terminate_backends(self, database: str) -> int:
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as connection:
            rows = connection.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (database,),
            ).fetchall()
        return len(rows)


def in_ci() -> bool:
    return bool(os.environ.get("CI")) or os.environ.get("HYPOTHESIS_PROFILE") == "ci"


def unavailable(reason: str) -> None:
    """Skip (locally) or fail (in CI) a test that needs PostgreSQL."""
    message = f"PostgreSQL is not available: {reason}"
    if in_ci():
        pytest.fail(message + " (in CI the PostgreSQL tests must run)", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Server]:
    external = os.environ.get("CHRONOLOG_TEST_POSTGRES_DSN")
    if external:
        yield ExternalServer(external)
        return
    try:
        import psycopg  # noqa: F401
    except ImportError:
        unavailable("psycopg is not installed (pip install -e '.[test]')")
    try:
        cluster = start_cluster()
    except (ClusterUnavailable, OSError) as exc:
        unavailable(str(exc))
        raise  # unreachable: unavailable() skips or fails
    try:
        yield cluster
    finally:
        cluster.stop("immediate", remove=True)


@pytest.fixture
def postgres_cluster(postgres_server: Server) -> Cluster:
    """The session's own cluster, for tests that stop or restart the server."""
    if not isinstance(postgres_server, Cluster):
        unavailable("this test restarts the server: it needs the cluster the tests start")
    assert isinstance(postgres_server, Cluster)
    return postgres_server


@pytest.fixture
def postgres_dsn(postgres_server: Server) -> Iterator[str]:
    """A fresh, empty database for one test: its DSN."""
    dsn = postgres_server.create_database()
    name = urlsplit(dsn).path.lstrip("/")
    try:
        yield dsn
    finally:
        postgres_server.drop_database(name)
