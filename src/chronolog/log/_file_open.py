"""Opening a `FileLog` for writing, in a worker thread: what the writer starts from.

`open_for_writing` creates the file (private to its owner, with its header)
or opens it, takes the writer lock on the file itself, checks the header,
checks a log of an older format against every rule, cuts off a torn tail
(see ``_file_tail``), and learns the last seq, the running checksum and the
base there. Nothing is written to a file that is not a chronolog log, and
on any failure the file and the lock are released.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Final, NamedTuple

from .._errors import LogLocked
from ._file_format import HEADER, read_layout
from ._file_io import real_path, replaced, write_all
from ._file_rewrite import check_before_upgrade
from ._file_tail import Repair, cut_torn_tail, inspect_tail, last_seq_in, running_at
from ._lock import WriterLock, release_lock, take_lock_or_close
from ._os import LOG_FILE_MODE, check_directory_of, fsync_directory, os_error

if TYPE_CHECKING:
    from pathlib import Path

    from ._file_format import Layout

__all__ = ["Opened", "open_for_writing"]

#: How often opening tries again when a compaction replaced the file under it.
_REOPEN_ATTEMPTS: Final = 5


class Opened(NamedTuple):
    """What opening for writing found out."""

    fd: int
    lock: WriterLock
    size: int
    last_seq: int
    running: int
    base_seq: int
    real_path: Path
    repair: Repair | None
    legacy: Layout | None
    """The layout of a log of an older format, to upgrade before the first write."""


def open_for_writing(path: Path) -> Opened:
    """Open (or create) the log file ``path`` for writing, locked; see the module."""
    check_directory_of(path)
    fd, lock, created = _open_and_lock(path)
    try:
        real = real_path(path, fd)
        try:
            size, repair, layout = _prepare(path, fd, created, real)
            last_seq = last_seq_in(path, fd, size)
            running = running_at(path, fd, size, layout)
        except OSError as exc:
            raise os_error(exc, f"cannot open log {path} for writing") from exc
    except BaseException:
        os.close(fd)
        release_lock(lock)
        raise
    base_seq = layout.base_seq if layout is not None else 0
    legacy = layout if layout is not None and not layout.checksums else None
    return Opened(fd, lock, size, last_seq, running, base_seq, real, repair, legacy)


def _open_and_lock(path: Path) -> tuple[int, WriterLock, bool]:
    """Open (or create) the log file and lock it: the lock is on the file itself.

    A compaction in another process may rename a new file over the name
    between the open and the lock: then the lock is on a file that is no
    longer the log, and this opens it again.
    """
    for _ in range(_REOPEN_ATTEMPTS):
        fd, created = _open_log_file(path)
        lock = take_lock_or_close(fd, path, "FileLog")
        if not replaced(path, fd):
            return fd, lock, created
        os.close(fd)
        release_lock(lock)
    raise LogLocked(
        f"{path} was replaced {_REOPEN_ATTEMPTS} times while it was being opened: "
        f"another process is rewriting it; stop that process or try again"
    )


def _open_log_file(path: Path) -> tuple[int, bool]:
    """A descriptor of the log file for appending, and whether this created it."""
    flags = os.O_RDWR | os.O_APPEND | os.O_CLOEXEC
    try:
        try:
            return os.open(path, flags | os.O_CREAT | os.O_EXCL, LOG_FILE_MODE), True
        except FileExistsError:
            return os.open(path, flags), False
    except OSError as exc:
        raise os_error(exc, f"cannot open log {path} for writing") from exc


def _prepare(
    path: Path, fd: int, created: bool, real: Path
) -> tuple[int, Repair | None, Layout | None]:
    """Check the header, check (then cut) a torn tail, write the header if the
    file is empty. A log of an older format is checked against every rule
    before anything is changed."""
    size = os.fstat(fd).st_size
    repair = None
    layout: Layout | None = None
    if size > 0:
        layout, keep = inspect_tail(path, fd, size)
        if layout is not None and not layout.checksums:
            check_before_upgrade(path, fd, layout, keep)
        if keep < size:
            repair = cut_torn_tail(fd, keep, size, real)
            size = keep
    if size == 0:
        write_all(fd, HEADER)
        os.fsync(fd)
        size = len(HEADER)
        layout = read_layout(path, fd, size)
    if created:
        fsync_directory(real.parent)
    return size, repair, layout
