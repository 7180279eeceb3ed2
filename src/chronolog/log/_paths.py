"""Which backend a path or a URL names: the one rule every entry point follows.

`open_scheduler`, the control commands and the read-only commands all turn a
log's name into a log here, so a ``jobs.sqlite`` is a `SQLiteLog` everywhere
and a ``postgresql://...`` URL a `PostgresLog` everywhere, never, through
one forgotten door, read as a JSON Lines file.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from .._errors import ConfigError
from ._postgres_names import is_dsn
from .file import FileLog
from .sqlite import SQLITE_SUFFIXES, SQLiteLog

if TYPE_CHECKING:
    import os

    from .postgres import PostgresLog

__all__ = ["is_dsn", "log_at", "postgres_log_class"]

_DEFAULT_POLL: timedelta = timedelta(milliseconds=200)


def log_at(
    path: str | os.PathLike[str], *, poll_interval: timedelta = _DEFAULT_POLL
) -> FileLog | SQLiteLog | PostgresLog:
    """The log at ``path``, not opened: a `PostgresLog` for a ``postgresql://``
    (or ``postgres://``) URL, a `SQLiteLog` for a name ending in one of
    `SQLITE_SUFFIXES` (any case), else a `FileLog` (JSON Lines).

    ``poll_interval`` is how often `follow` looks for records another process
    appended (a `PostgresLog` is also woken by a notification of each append).
    """
    if is_dsn(path):
        assert isinstance(path, str)
        return postgres_log_class()(path, poll_interval=poll_interval)
    log_path = Path(path)
    if log_path.suffix.lower() in SQLITE_SUFFIXES:
        return SQLiteLog(log_path, poll_interval=poll_interval)
    return FileLog(log_path, poll_interval=poll_interval)


def postgres_log_class() -> type[PostgresLog]:
    """`PostgresLog`, imported on first use; `ConfigError` saying how to install psycopg."""
    try:
        from .postgres import PostgresLog
    except ImportError as exc:
        if exc.name is None or not exc.name.startswith("psycopg"):
            raise
        raise ConfigError(
            "a postgresql:// log needs psycopg 3, which is not installed: "
            "pip install 'chronolog[postgres]'"
        ) from exc
    return PostgresLog
