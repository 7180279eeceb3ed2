"""Which backend a path names: the one rule every entry point that takes a path follows.

`open_scheduler`, the control commands and the read-only commands all turn a
path into a log here, so a ``jobs.sqlite`` is a `SQLiteLog` everywhere and
never, through one forgotten door, read as a JSON Lines file.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from .file import FileLog
from .sqlite import SQLITE_SUFFIXES, SQLiteLog

if TYPE_CHECKING:
    import os

__all__ = ["log_at"]

_DEFAULT_POLL: timedelta = timedelta(milliseconds=200)


def log_at(
    path: str | os.PathLike[str], *, poll_interval: timedelta = _DEFAULT_POLL
) -> FileLog | SQLiteLog:
    """The log at ``path``, not opened: a `SQLiteLog` for a name ending in one of
    `SQLITE_SUFFIXES` (any case), else a `FileLog` (JSON Lines).

    ``poll_interval`` is how often `follow` looks for records another process
    appended.
    """
    log_path = Path(path)
    if log_path.suffix.lower() in SQLITE_SUFFIXES:
        return SQLiteLog(log_path, poll_interval=poll_interval)
    return FileLog(log_path, poll_interval=poll_interval)
