"""What the local backends share about the operating system.

`FileLog`, `SQLiteLog` and the writer lock report a failed system call the
same way (an ``OSError`` of the same kind, naming the log), refuse a log
whose directory is missing the same way, and make a new directory entry
durable the same way; and a reader that cannot read a log is told the same
way by both.
"""

from __future__ import annotations

import errno
import os
import stat
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from pathlib import Path

__all__ = [
    "LOG_FILE_MODE",
    "check_directory_of",
    "check_not_a_directory",
    "fsync_directory",
    "os_error",
    "read_error",
]

#: Logs, and the files a writer creates beside them, are the owner's alone.
LOG_FILE_MODE: Final = 0o600


def os_error(exc: OSError, what: str, hint: str = "") -> OSError:
    """An ``OSError`` of the same kind as ``exc``, with a message that names the log."""
    reason = exc.strerror or str(exc)
    if exc.filename is not None and str(exc.filename) not in what:
        reason += f" ({exc.filename})"
    if not hint and isinstance(exc, PermissionError):
        hint = (
            "check the permissions of the log and of its directory: a scheduler reads and "
            "writes the log and creates files beside it, a reader needs to read it"
        )
    message = f"{what}: {reason}" + (f"; {hint}" if hint else "")
    return OSError(exc.errno, message) if exc.errno is not None else OSError(message)


def fsync_directory(directory: Path) -> None:
    """Flush ``directory`` itself, so that a file created or renamed in it survives a crash."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def check_directory_of(log_path: Path) -> None:
    """Raise the error for opening ``log_path`` to write when its directory is not there."""
    directory = log_path.parent
    try:
        directory_exists = directory.is_dir()
    except OSError as exc:  # a directory on the path that may not be searched
        raise os_error(exc, f"cannot open log {log_path} for writing") from exc
    if not directory_exists:
        raise FileNotFoundError(
            errno.ENOENT,
            f"cannot open log {log_path}: directory {directory} does not exist; create it first",
        )


def read_error(exc: OSError, log_path: Path) -> OSError:
    """The error for a log that cannot be read: missing (with what to check), or refused."""
    if isinstance(exc, FileNotFoundError):
        return os_error(
            exc,
            f"log {log_path} does not exist",
            "check the path (a scheduler creates the file when it first opens it)",
        )
    return os_error(exc, f"cannot read log {log_path}")


def check_not_a_directory(mode: int, log_path: Path) -> None:
    """Refuse to read ``log_path`` whose file mode ``mode`` says it is a directory."""
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, f"cannot read log {log_path}: it is a directory")
