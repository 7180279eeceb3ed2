"""Connections to a `SQLiteLog` database, and what SQLite's errors mean for the log.

Writer and readers connect by the database's real path (symlinks resolved):
SQLite keeps its write-ahead log beside the name it is given, so they must
agree on it, and a database with a second name (a hard link) is refused to
a writer -- two names would be two logs. Every connection waits a while for
a lock another connection holds briefly (a checkpoint, the creation of the
tables) before giving up with `LogLocked`.

`sqlite_error` is the backend boundary of the style guide: an ``sqlite3``
error becomes `LogCorrupted`, `LogLocked` or an ``OSError`` of the matching
kind, naming the log, with the original as ``__cause__``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
from typing import TYPE_CHECKING, Final

from .._errors import LogCorrupted, LogLocked
from .._events import encode_header
from ._lock import real_path_of
from ._os import check_not_a_directory, os_error, read_error

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

__all__ = [
    "SQLITE_SUFFIXES",
    "check_one_name",
    "check_readable",
    "connect_reader",
    "connect_writer",
    "sqlite_error",
    "transaction",
]

#: File name suffixes that `open_scheduler` reads as "an SQLite log".
SQLITE_SUFFIXES: Final = (".sqlite", ".sqlite3", ".db")
#: How long a connection waits for a lock another connection holds briefly
#: (a checkpoint, the creation of the tables) before giving up.
_BUSY_TIMEOUT_MS = 5000
#: How every `FileLog` header begins, whatever its version.
_FILE_LOG_HEADER: Final = encode_header()[: encode_header().index(b',"version"')]


def connect_writer(real: Path, path: Path) -> sqlite3.Connection:
    """The writer's connection to the database at ``real`` (the real path of the
    log ``path``), in autocommit mode: transactions are explicit."""
    try:
        return sqlite3.connect(real, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as exc:
        raise sqlite_error(exc, path, f"cannot open log {path} for writing") from exc


def connect_reader(path: Path) -> sqlite3.Connection:
    """A read-only connection to the log ``path``, for one thread at a time."""
    check_readable(path)
    try:
        connection = sqlite3.connect(
            f"{real_path_of(path).as_uri()}?mode=ro",
            uri=True,
            isolation_level=None,
            check_same_thread=False,
        )
        wait_for_locks(connection)
    except sqlite3.Error as exc:
        raise sqlite_error(exc, path, f"cannot read log {path}") from exc
    return connection


def wait_for_locks(connection: sqlite3.Connection) -> None:
    """Make ``connection`` wait for a lock held briefly by another, not fail at once."""
    connection.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")


@contextlib.contextmanager
def transaction(connection: sqlite3.Connection) -> Iterator[None]:
    """One write transaction (``BEGIN IMMEDIATE``), rolled back whole if anything fails.

    IMMEDIATE takes the database's write lock up front, so the transaction
    cannot fail half-way for want of it. In WAL mode a rollback only drops
    this connection's uncommitted pages: no disk I/O that could fail.
    """
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield
        connection.execute("COMMIT")
    except BaseException:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise


def check_readable(path: Path) -> None:
    """Raise a plain ``OSError`` if ``path`` is missing, unreadable or a directory.

    (A database with several names is read: the writer of a log reads it
    too, and a hard link someone makes must not stop it. A reader through
    another name than the writer's sees only what was checkpointed.)

    Without opening the file: closing a descriptor of a database drops every
    POSIX lock this process holds on it, those of its SQLite connections too.
    """
    try:
        status = os.stat(path)
    except OSError as exc:
        raise read_error(exc, path) from exc
    check_not_a_directory(status.st_mode, path)
    if not os.access(path, os.R_OK):
        raise os_error(
            PermissionError(errno.EACCES, "Permission denied"), f"cannot read log {path}"
        )


def check_one_name(path: Path, links: int) -> None:
    """Refuse a database with more than one name: SQLite keeps its write-ahead log
    beside the name it opened, so each name would be a log of its own."""
    if links > 1:
        raise OSError(
            errno.EMLINK,
            f"cannot use log {path}: the database file has {links} names (hard links), and "
            f"SQLite keeps the records not yet checkpointed beside the name it is opened by "
            f"({path.name}-wal), so each name would show, and write, a log of its own. Remove "
            f"the other names (find them with `find / -xdev -samefile {path}`), or copy the "
            f'database with `sqlite3 {path} ".backup COPY"` instead of linking it',
        )


def sqlite_error(exc: sqlite3.Error, path: Path, what: str, hint: str = "") -> Exception:
    """A chronolog error or an ``OSError`` for what SQLite reported, naming the log."""
    name = getattr(exc, "sqlite_errorname", "")
    detail = str(exc)
    if name == "SQLITE_NOTADB":
        if _starts_like_a_file_log(path):
            return LogCorrupted(
                f"{path} is a chronolog JSON Lines log, not an SQLite one: open it with "
                f"FileLog, or give it a name that does not end in {', '.join(SQLITE_SUFFIXES)}"
            )
        return LogCorrupted(
            f"{path} is not a chronolog log (not an SQLite database: {detail}); check the path"
        )
    if name.startswith("SQLITE_CORRUPT"):
        return LogCorrupted(
            f"{path} is damaged (SQLite: {detail}); restore the log from a backup, or try "
            f"`sqlite3 {path} .recover`"
        )
    if name.startswith("SQLITE_BUSY") or name.startswith("SQLITE_LOCKED"):
        return LogLocked(
            f"{what}: another connection kept the database locked for more than "
            f"{_BUSY_TIMEOUT_MS / 1000:g} s ({detail}); find the process holding it"
        )
    if name == "SQLITE_FULL":
        code, advice = errno.ENOSPC, "free some disk space"
    elif name.startswith(("SQLITE_READONLY", "SQLITE_PERM", "SQLITE_CANTOPEN")):
        code, advice = errno.EACCES, f"check the permissions of {path} and of its directory"
    else:
        code, advice = errno.EIO, ""
    parts = [part for part in (hint, advice) if part]
    message = f"{what}: {detail}" + "".join(f"; {part}" for part in parts)
    return OSError(code, message)


def _starts_like_a_file_log(path: Path) -> bool:
    """Whether ``path`` begins with the header line of a `FileLog`."""
    try:
        with path.open("rb") as file:
            return file.read(len(_FILE_LOG_HEADER)) == _FILE_LOG_HEADER
    except OSError:
        return False
