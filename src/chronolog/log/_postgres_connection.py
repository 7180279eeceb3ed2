"""Connections to a `PostgresLog` database: DSNs, a small pool, and what errors mean.

Every call into psycopg runs in a worker thread (``trio.to_thread``), with
psycopg's synchronous API; see ``docs/reference/postgres.md`` for why. The
pool here is used from those threads: it hands out at most ``max_size``
connections, keeps idle ones for the next call, checks one that sat idle
for a while before handing it out, and drops one that broke.

Reconnecting backs off: after a failed connection attempt, further attempts
within the back-off window fail at once with the same message (the window
doubles up to `MAX_BACKOFF_SECONDS` and resets at the first success), so a
scheduler whose database is down does not hammer it, and every caller --
the log writer, the follower, the lease -- learns at once that it is down.

`postgres_error` is the backend boundary of the style guide: a psycopg
error becomes an ``OSError`` of the matching kind (the database cannot be
reached, a password is wrong, a disk is full), `LogCorrupted` (the
database holds something that is not a sound log), or `ClaimConflict`,
naming the log by its DSN without the password, with the original as
``__cause__``.
"""

from __future__ import annotations

import contextlib
import errno
import threading
import time
from typing import TYPE_CHECKING, Any, Final

import psycopg
import psycopg.conninfo
import psycopg.errors
from psycopg import pq

from .._errors import ConfigError, LogClosed, LogCorrupted
from ._postgres_names import POSTGRES_SCHEMES, describe_dsn, is_dsn

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = [
    "MAX_BACKOFF_SECONDS",
    "POSTGRES_SCHEMES",
    "Pool",
    "connect",
    "describe_dsn",
    "is_dsn",
    "postgres_error",
]

#: Session settings of every connection chronolog makes. A writer holds the
#: log's append lock inside a transaction while it folds and checks a batch:
#: if the process stops there (frozen, or its event loop stalled), the server
#: ends the session after ``idle_in_transaction_session_timeout`` and the
#: lock is free again.
_SESSION: Final = (
    "SET idle_in_transaction_session_timeout = '15s'",
    "SET lock_timeout = '30s'",
    "SET statement_timeout = '60s'",
)
#: Connection options chronolog adds unless the DSN sets them.
_DEFAULTS: Final = {
    "connect_timeout": "10",
    "keepalives": "1",
    "keepalives_idle": "10",
    "keepalives_interval": "5",
    "keepalives_count": "3",
}
MIN_BACKOFF_SECONDS: Final = 0.1
MAX_BACKOFF_SECONDS: Final = 5.0
#: An idle connection older than this is checked with a round trip before use.
_CHECK_AFTER_SECONDS: Final = 5.0


def parse_dsn(dsn: str) -> dict[str, Any]:
    """The connection parameters of ``dsn``; `ConfigError` if libpq cannot read it."""
    if not is_dsn(dsn):
        raise ConfigError(
            f"a PostgreSQL log is named by a URL starting with postgresql://, got {dsn!r}"
        )
    try:
        return psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.Error as exc:
        shown = describe_dsn(dsn)
        raise ConfigError(f"{shown} is not a valid PostgreSQL URL: {exc}") from exc


def connect(dsn: str, *, application_name: str, what: str) -> psycopg.Connection[Any]:
    """A new connection in autocommit mode (transactions are explicit), with
    chronolog's session settings; an ``OSError`` saying why if there is none."""
    params = parse_dsn(dsn)
    options = {key: value for key, value in _DEFAULTS.items() if key not in params}
    if str(params.get("host", "")).startswith("/"):
        options = {key: value for key, value in options.items() if not key.startswith("keep")}
    try:
        connection = psycopg.connect(
            dsn,
            autocommit=True,
            application_name=application_name[:63],
            **options,  # type: ignore[arg-type]
        )
    except psycopg.Error as exc:
        raise postgres_error(exc, dsn, what, connecting=True) from exc
    try:
        for statement in _SESSION:
            connection.execute(statement)
    except psycopg.Error as exc:
        connection.close()
        raise postgres_error(exc, dsn, what) from exc
    return connection


class Pool:
    """Up to ``max_size`` connections to one database, used from worker threads."""

    def __init__(self, dsn: str, *, max_size: int, application_name: str) -> None:
        if max_size < 1:
            raise ValueError(f"max_size must be at least 1, got {max_size}")
        self._dsn = dsn
        self._max_size = max_size
        self._application_name = application_name
        self._idle: list[tuple[psycopg.Connection[Any], float]] = []
        self._size = 0
        self._condition = threading.Condition()
        self._closed = False
        # Back-off after failed connection attempts (see the module docstring).
        self._failures = 0
        self._retry_at = 0.0
        self._last_failure: OSError | None = None

    @property
    def max_size(self) -> int:
        return self._max_size

    @contextlib.contextmanager
    def connection(self, what: str) -> Iterator[psycopg.Connection[Any]]:
        """A connection for the duration of the block (blocking: call in a worker
        thread). It goes back to the pool if it is healthy and idle afterwards."""
        connection = self._checkout(what)
        try:
            yield connection
        finally:
            self._give_back(connection)

    def close(self) -> None:
        """Close every idle connection; those in use are closed as they come back."""
        with self._condition:
            self._closed = True
            idle, self._idle = self._idle, []
            self._size -= len(idle)
            self._condition.notify_all()
        for connection, _ in idle:
            connection.close()

    def _checkout(self, what: str) -> psycopg.Connection[Any]:
        with self._condition:
            while True:
                if self._closed:
                    raise LogClosed("the log's connection pool is closed: the log was closed")
                while self._idle:
                    connection, since = self._idle.pop()
                    if self._usable(connection, since):
                        return connection
                    self._size -= 1
                    connection.close()
                if self._size < self._max_size:
                    self._size += 1
                    break
                self._condition.wait(timeout=1.0)
        try:
            return self._connect(what)
        except BaseException:
            with self._condition:
                self._size -= 1
                self._condition.notify()
            raise

    @staticmethod
    def _usable(connection: psycopg.Connection[Any], since: float) -> bool:
        if connection.closed or connection.broken:
            return False
        if time.monotonic() - since < _CHECK_AFTER_SECONDS:
            return True
        try:
            connection.execute("SELECT 1")
        except psycopg.Error:
            return False
        return True

    def _connect(self, what: str) -> psycopg.Connection[Any]:
        now = time.monotonic()
        with self._condition:
            if now < self._retry_at and self._last_failure is not None:
                failure = self._last_failure
                wait = self._retry_at - now
                raise type(failure)(
                    failure.errno,
                    f"{failure.strerror} (the last attempt failed; the next one is made "
                    f"in {wait:.1f} s)",
                )
        try:
            connection = connect(self._dsn, application_name=self._application_name, what=what)
        except OSError as exc:
            with self._condition:
                self._failures += 1
                delay = min(MIN_BACKOFF_SECONDS * 2 ** (self._failures - 1), MAX_BACKOFF_SECONDS)
                self._retry_at = time.monotonic() + delay
                self._last_failure = exc
            raise
        with self._condition:
            self._failures = 0
            self._retry_at = 0.0
            self._last_failure = None
        return connection

    def _give_back(self, connection: psycopg.Connection[Any]) -> None:
        healthy = (
            not connection.closed
            and not connection.broken
            and connection.info.transaction_status == pq.TransactionStatus.IDLE
        )
        with self._condition:
            if healthy and not self._closed:
                self._idle.append((connection, time.monotonic()))
            else:
                self._size -= 1
            self._condition.notify()
        if not healthy or self._closed:
            connection.close()


#: What libpq says when it cannot connect, the kind of error it is, and what to do.
_NO_CONNECTION_HINTS: Final = (
    (("password authentication failed",), errno.EACCES, "check the user and password in the DSN"),
    (("no password supplied",), errno.EACCES, "add the password to the DSN (or to ~/.pgpass)"),
    (('role "', "does not exist"), errno.EACCES, "check the user in the DSN"),
    (("pg_hba.conf",), errno.EACCES, "the server's pg_hba.conf does not let this user in"),
    (
        ('database "', "does not exist"),
        errno.ENOENT,
        "create the database first (createdb), or check the DSN",
    ),
)


def postgres_error(
    exc: psycopg.Error, dsn: str, what: str, hint: str = "", *, connecting: bool = False
) -> Exception:
    """A chronolog error or an ``OSError`` for what psycopg reported, naming the log.

    ``connecting``: the error came from making the connection.
    """
    shown = describe_dsn(dsn)
    detail = " ".join(str(exc).split()) or type(exc).__name__
    parts = [part for part in (hint,) if part]
    if isinstance(exc, psycopg.errors.DiskFull):
        return OSError(errno.ENOSPC, _message(what, detail, [*parts, "free space on the server"]))
    if isinstance(exc, psycopg.errors.InsufficientPrivilege):
        return PermissionError(
            errno.EACCES,
            _message(
                what, detail, [*parts, f"grant the DSN's user access to the tables of {shown}"]
            ),
        )
    if isinstance(exc, psycopg.errors.LockNotAvailable):
        return OSError(
            errno.EBUSY,
            _message(
                what,
                "another process held the log's append lock for longer than lock_timeout",
                parts,
            ),
        )
    if isinstance(exc, psycopg.errors.QueryCanceled):
        return TimeoutError(errno.ETIMEDOUT, _message(what, detail, parts))
    if isinstance(exc, psycopg.errors.UndefinedTable | psycopg.errors.UndefinedColumn):
        return LogCorrupted(
            f"{shown}: {detail}. chronolog's tables are missing or were changed; restore "
            f"the database from a backup, or check the DSN"
        )
    if isinstance(exc, psycopg.OperationalError):
        lowered = detail.lower()
        if connecting or "connection failed" in lowered or "connection to server" in lowered:
            for markers, code, advice in _NO_CONNECTION_HINTS:
                if all(marker in lowered for marker in markers):
                    kind: type[OSError] = (
                        PermissionError if code == errno.EACCES else FileNotFoundError
                    )
                    return kind(code, _message(what, _server_part(detail), [*parts, advice]))
            return ConnectionRefusedError(
                errno.ECONNREFUSED,
                _message(
                    what,
                    _server_part(detail),
                    [*parts, "is the server running, and is the DSN right?"],
                ),
            )
        return ConnectionResetError(
            errno.ECONNRESET,
            _message(what, f"the connection to the database was lost ({detail})", parts),
        )
    return OSError(errno.EIO, _message(what, detail, parts))


def _server_part(detail: str) -> str:
    """The useful end of libpq's connection message: what the server said."""
    return detail.removeprefix("connection failed: ")


def _message(what: str, detail: str, parts: list[str]) -> str:
    return f"{what}: {detail}" + "".join(f"; {part}" for part in parts)
