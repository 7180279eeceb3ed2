"""The system calls of a `FileLog`, and what holds for each.

Reads are positional (``os.pread``) so readers in several threads can share
nothing but a descriptor; writes go through `write_all`, since a write may be
short. Files that replace another -- the snapshot sidecar, a compacted or
upgraded log -- are written beside it, fsynced, renamed over it and the
directory fsynced: a crash leaves the old file or the new one, never a mix.
Everything here calls ``os.<name>`` at call time, so a test can fail any one
call by patching the ``os`` module.
"""

from __future__ import annotations

import contextlib
import errno
import os
from typing import TYPE_CHECKING, Final

from ._lock import real_path_of
from ._os import LOG_FILE_MODE, check_not_a_directory, fsync_directory, read_error

if TYPE_CHECKING:
    from pathlib import Path

__all__ = [
    "PROBE_BYTES",
    "line_number",
    "open_for_reading",
    "pread_exact",
    "real_path",
    "remove",
    "replace_file",
    "replaced",
    "rfind_newline",
    "write_all",
]

#: Small reads near a known position (a line start, the end of the file).
PROBE_BYTES: Final = 1 << 16
#: The first look back for the start of a line: most lines are shorter.
_SMALL_PROBE_BYTES: Final = 1 << 12
#: `line_number` counts newlines this many bytes at a time.
_COUNT_BYTES: Final = 1 << 16


def open_for_reading(path: Path) -> int:
    """A read-only descriptor of the log file ``path``; ``OSError`` naming the log if
    it is missing, unreadable or a directory."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise read_error(exc, path) from exc
    try:
        check_not_a_directory(os.fstat(fd).st_mode, path)
    except IsADirectoryError:
        os.close(fd)
        raise
    return fd


def real_path(path: Path, fd: int) -> Path:
    """Where the log open at ``fd`` is: ``path`` with symlinks resolved.

    Checked against the file itself, so that a name that no longer leads to
    it (``/proc/self/fd/N`` of a deleted file) is refused instead of guessed.
    """
    real = real_path_of(path)
    try:
        same = os.path.samestat(os.stat(real), os.fstat(fd))
    except OSError:
        same = False
    if not same:
        raise FileNotFoundError(
            errno.ENOENT,
            f"cannot open log {path} for writing: it resolves to {real}, which is not the file "
            f"it opened (the file was deleted or renamed); give the log's own path",
        )
    return real


def replaced(path: Path, fd: int) -> bool:
    """Whether ``path`` names another file than ``fd`` now (a compaction renamed one in)."""
    try:
        current = os.stat(path)
    except OSError:
        return False
    opened = os.fstat(fd)
    return (current.st_ino, current.st_dev) != (opened.st_ino, opened.st_dev)


def pread_exact(fd: int, size: int, offset: int) -> bytes:
    """``size`` bytes at ``offset``, or fewer only where the file ends."""
    pieces = []
    while size > 0:
        piece = os.pread(fd, size, offset)
        if not piece:
            break
        pieces.append(piece)
        size -= len(piece)
        offset += len(piece)
    return b"".join(pieces)


def write_all(fd: int, data: bytes) -> None:
    """``os.write`` until all of ``data`` is written (writes may be short)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written <= 0:
            raise OSError(errno.EIO, "write() wrote nothing")
        view = view[written:]


def rfind_newline(fd: int, end: int) -> int:
    """Offset of the last ``\\n`` before ``end``, or -1."""
    position = end
    probe = _SMALL_PROBE_BYTES
    while position > 0:
        size = min(probe, position)
        position -= size
        newline = os.pread(fd, size, position).rfind(b"\n")
        if newline >= 0:
            return position + newline
        probe = PROBE_BYTES
    return -1


def line_number(fd: int, offset: int) -> int:
    """The 1-based number of the line that starts at ``offset``."""
    newlines = 0
    position = 0
    while position < offset:
        chunk = os.pread(fd, min(_COUNT_BYTES, offset - position), position)
        if not chunk:
            break
        newlines += chunk.count(b"\n")
        position += len(chunk)
    return newlines + 1


def replace_file(path: Path, content: bytes) -> None:
    """Make ``content`` the file at ``path`` atomically and durably.

    Written beside (``<path>.tmp``), fsynced, renamed over ``path``, and the
    directory fsynced: a crash leaves the old file or the new one.
    """
    temporary = path.with_name(path.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, LOG_FILE_MODE)
    try:
        try:
            write_all(fd, content)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    fsync_directory(path.parent)


def remove(path: Path) -> None:
    """Delete ``path`` if it exists."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
