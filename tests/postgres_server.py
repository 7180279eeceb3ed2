"""A throw-away PostgreSQL cluster for the tests and the cluster benchmark.

`start_cluster` finds PostgreSQL's server programs (on ``PATH``, else under
``/usr/lib/postgresql/<version>/bin`` where Debian puts them), creates a
cluster in a fresh temporary directory and starts it: unix socket in that
directory, TCP on a free loopback port. PostgreSQL refuses to run as root,
and the tests run as root in CI: then the cluster belongs to an unprivileged
system user (``chronolog-pg``, created if missing, else ``nobody``) and its
programs run through ``runuser``.

Connections over the unix socket are trusted (user ``chronolog``, the
superuser); TCP connections need a password (``scram-sha-256``), so a test
can give a wrong one. ``scripts/ensure-postgres`` installs the server
programs from the distribution's packages when they are missing (``.ci/run``
and ``make test`` call it).

Usage::

    cluster = start_cluster()
    dsn = cluster.create_database()
    ...
    cluster.stop()
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Final
from urllib.parse import quote

__all__ = ["Cluster", "ClusterUnavailable", "find_server_programs", "start_cluster"]

#: The cluster's superuser, and the password of its TCP role.
SUPERUSER: Final = "chronolog"
TCP_ROLE: Final = "chronolog_app"
TCP_PASSWORD: Final = "s3cret-for-tests"
_UNPRIVILEGED: Final = "chronolog-pg"
_names = itertools.count(1)


class ClusterUnavailable(RuntimeError):
    """PostgreSQL cannot be started here; the message says why and what to do."""


def find_server_programs() -> Path | None:
    """The directory holding ``initdb`` and ``pg_ctl``, or None."""
    on_path = shutil.which("pg_ctl")
    if on_path is not None and shutil.which("initdb") is not None:
        return Path(on_path).resolve().parent
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
        key=lambda path: int(path.parent.parent.name) if path.parent.parent.name.isdigit() else 0,
    )
    return versions[-1].parent if versions else None


def _owner() -> str | None:
    """The user to run the server as: None for the current one, unless it is root."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(_UNPRIVILEGED)
        return _UNPRIVILEGED
    except KeyError:
        pass
    useradd = shutil.which("useradd")
    if useradd is not None:
        done = subprocess.run(
            [
                useradd,
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                _UNPRIVILEGED,
            ],
            capture_output=True,
            check=False,
        )
        if done.returncode == 0:
            return _UNPRIVILEGED
    return "nobody"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Cluster:
    """A running throw-away cluster: its directory, socket and port."""

    def __init__(self, programs: Path, directory: Path, owner: str | None, *, fsync: bool) -> None:
        self.programs = programs
        self.directory = directory
        self.owner = owner
        self.port = _free_port()
        self.fsync = fsync
        self.data = directory / "data"

    # -- running the server's programs -----------------------------------------

    def _run(self, *command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        argv = [str(self.programs / command[0]), *command[1:]]
        if self.owner is not None:
            argv = ["runuser", "-u", self.owner, "--", *argv]
        done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=120)
        if check and done.returncode != 0:
            log = self.directory / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            what = " ".join(command[:2])
            raise ClusterUnavailable(
                f"{what} failed ({done.returncode}): {done.stderr.strip()}\n{tail}"
            )
        return done

    def init(self) -> None:
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            SUPERUSER,
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C",
        )

    def start(self) -> None:
        """Start the server (again) and wait until it accepts connections."""
        options = [
            f"-k {self.directory}",
            "-c listen_addresses=127.0.0.1",
            f"-p {self.port}",
            "-c max_connections=200",
            f"-c fsync={'on' if self.fsync else 'off'}",
            "-c shared_buffers=64MB",
            "-c log_min_messages=warning",
        ]
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.directory / "server.log"),
            "-o",
            " ".join(options),
            "-w",
            "-t",
            "60",
            "start",
        )

    def stop(self, mode: str = "fast", *, remove: bool = False) -> None:
        """Stop the server (``fast``, or ``immediate`` as a crash would); ``remove``
        also deletes its directory."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop", check=False)
        if remove:
            shutil.rmtree(self.directory, ignore_errors=True)

    def restart(self, mode: str = "fast", *, down_seconds: float = 0.0) -> None:
        self.stop(mode)
        time.sleep(down_seconds)
        self.start()

    # -- connecting -------------------------------------------------------------

    def socket_dsn(self, database: str = "postgres") -> str:
        """A DSN over the unix socket, as the superuser (trusted)."""
        return (
            f"postgresql://{SUPERUSER}@/{database}?host={quote(str(self.directory), safe='')}"
            f"&port={self.port}"
        )

    def tcp_dsn(self, database: str, *, password: str = TCP_PASSWORD) -> str:
        """A DSN over TCP as the password role."""
        return (
            f"postgresql://{TCP_ROLE}:{quote(password, safe='')}@127.0.0.1:{self.port}/{database}"
        )

    def admin(self, statement: str) -> None:
        """Run one statement as the superuser, in autocommit."""
        import psycopg

        with psycopg.connect(self.socket_dsn(), autocommit=True) as connection:
            connection.execute(statement.encode())

    def create_database(self, name: str | None = None) -> str:
        """A new empty database, owned by the password role; its socket DSN."""
        name = name or f"t{os.getpid()}_{next(_names)}"
        self.admin(f'CREATE DATABASE "{name}" OWNER {TCP_ROLE}')
        return self.socket_dsn(name)

    def drop_database(self, name: str) -> None:
        with contextlib.suppress(Exception):
            self.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def terminate_backends(self, database: str) -> int:
        """End every connection to ``database`` but this one (``pg_terminate_backend``)."""
        import psycopg

        with psycopg.connect(self.socket_dsn(), autocommit=True) as connection:
            rows = connection.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (database,),
            ).fetchall()
        return len(rows)


def start_cluster(*, fsync: bool = False) -> Cluster:
    """Create and start a throw-away cluster; `ClusterUnavailable` if that cannot be done.

    ``fsync=False`` (tests) keeps commits durable across a crash of the
    server, not of the machine, and is much faster; the benchmark passes True.
    """
    programs = find_server_programs()
    if programs is None:
        raise ClusterUnavailable(
            "PostgreSQL's server programs (initdb, pg_ctl) are not installed; run "
            "scripts/ensure-postgres (apt-get install postgresql), or point "
            "CHRONOLOG_TEST_POSTGRES_DSN at a server"
        )
    owner = _owner()
    if owner is not None and shutil.which("runuser") is None:
        raise ClusterUnavailable("running as root without `runuser`: cannot start PostgreSQL")
    directory = Path(tempfile.mkdtemp(prefix="chronolog-pg-"))
    if owner is not None:
        entry = pwd.getpwnam(owner)
        os.chown(directory, entry.pw_uid, entry.pw_gid)
    directory.chmod(0o755)
    cluster = Cluster(programs, directory, owner, fsync=fsync)
    try:
        cluster.init()
        cluster.start()
        cluster.admin(f"CREATE ROLE {TCP_ROLE} LOGIN PASSWORD '{TCP_PASSWORD}' CREATEDB")
    except BaseException:
        cluster.stop("immediate", remove=True)
        raise
    return cluster
