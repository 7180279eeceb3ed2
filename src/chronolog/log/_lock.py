"""The writer lock of the local log backends: an exclusive ``flock`` on a sidecar file.

A writer locks ``<log>.lock`` and writes its pid and host into it, so that a
second writer gets a `LogLocked` that names the holder. The lock goes with
the file descriptor: a crashed writer holds nothing, whatever the file still
says. `FileLog` and `SQLiteLog` both use it.
"""

from __future__ import annotations

import fcntl
import os
import socket
from typing import TYPE_CHECKING, Final

import msgspec

from .._errors import LogLocked
from ._os import os_error

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["lock_path_of", "release_lock", "take_lock"]

_LOCK_FILE_MODE: Final = 0o600
#: More than any holder record; a lock file is never longer than a line.
_HOLDER_BYTES: Final = 4096


class _Holder(msgspec.Struct):
    """What a writer records in the lock file, for the error a second writer gets."""

    pid: int
    host: str = ""


_holder_decoder: Final = msgspec.json.Decoder(_Holder)


def lock_path_of(log_path: Path) -> Path:
    """The sidecar file a writer of ``log_path`` locks: ``<log>.lock``."""
    return log_path.with_name(log_path.name + ".lock")


def take_lock(log_path: Path, kind: str) -> int:
    """Lock ``log_path`` for writing; return the descriptor that holds the lock.

    ``kind`` (``"FileLog"``, ``"SQLiteLog"``) names the backend in the
    message a second writer in this same process gets. Raises `LogLocked`
    naming the holder, or ``OSError`` naming the lock file.
    """
    lock_path = lock_path_of(log_path)
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, _LOCK_FILE_MODE)
    except OSError as exc:
        raise os_error(exc, f"cannot open lock file {lock_path} of log {log_path}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        holder = _describe_holder(os.pread(fd, _HOLDER_BYTES, 0), kind)
        os.close(fd)
        raise LogLocked(
            f"{log_path} is locked by {holder}; stop that scheduler or use another "
            f"log (lock file {lock_path})"
        ) from exc
    except OSError as exc:
        os.close(fd)
        raise os_error(exc, f"cannot lock log {log_path} ({lock_path})") from exc
    try:
        os.ftruncate(fd, 0)
        me = _Holder(pid=os.getpid(), host=socket.gethostname())
        os.pwrite(fd, msgspec.json.encode(me) + b"\n", 0)
    except OSError as exc:
        os.close(fd)
        raise os_error(exc, f"cannot write lock file {lock_path}") from exc
    return fd


def release_lock(fd: int) -> None:
    """Empty the lock file, so it names no one, and unlock it by closing it.

    The file itself stays: deleting it would race with a writer that has just
    opened it, and two writers could then lock two different files.
    """
    try:
        os.ftruncate(fd, 0)
    except OSError:
        pass  # it only names us; the lock itself goes with the descriptor
    finally:
        os.close(fd)


def _describe_holder(lock_content: bytes, kind: str) -> str:
    try:
        holder = _holder_decoder.decode(lock_content.strip())
    except msgspec.DecodeError:
        return "another process (it has not written its pid into the lock file yet)"
    where = f"process {holder.pid} on host {holder.host or '?'}"
    if holder.pid == os.getpid() and holder.host == socket.gethostname():
        where += f" (this process: another {kind} is open on the same file; share that one)"
    return where
