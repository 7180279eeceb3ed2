"""The writer lock of the local log backends: it follows the log's identity, not its name.

A writer takes an exclusive ``flock`` on the log file itself -- on its device
and inode -- so every name of the file shares one lock: the path as given,
a relative or ``..`` spelling, a symlink, a hard link, ``/proc/self/fd/N``.
Two names can never mean two writers.

Beside the log (its real path, symlinks resolved), the sidecar ``<log>.lock``
records who holds the lock -- pid, host, and the identity of the file it
locked -- for the `LogLocked` a second writer gets. The writer locks the
sidecar too, so an older chronolog, which locks only the sidecar, is kept
out as well. A second writer that reaches the file by another hard link
finds no record beside its own name: it names the holder from the kernel's
lock table (``/proc/locks``) instead.

Locks go with their file descriptors: a crashed writer holds nothing,
whatever the sidecar still says. `FileLog` and `SQLiteLog` both use this.
"""

from __future__ import annotations

import errno
import fcntl
import os
import socket
from pathlib import Path
from typing import Final, NamedTuple

import msgspec

from .._errors import LogLocked
from ._os import os_error

__all__ = [
    "WriterLock",
    "check_single_name",
    "holder_of",
    "lock_path_of",
    "lock_replacement",
    "real_path_of",
    "release_lock",
    "sidecar_of",
    "take_lock",
    "take_lock_or_close",
]

_LOCK_FILE_MODE: Final = 0o600
#: More than any holder record; a lock file is never longer than a line.
_HOLDER_BYTES: Final = 4096
_PROC_LOCKS: Final = Path("/proc/locks")


class _Holder(msgspec.Struct):
    """What a writer records in the lock file, for the error a second writer gets."""

    pid: int
    host: str = ""
    dev: int = -1
    ino: int = -1


_holder_decoder: Final = msgspec.json.Decoder(_Holder)


class WriterLock(NamedTuple):
    """What a writer holds: the lock on the log file, and the sidecar that names it."""

    sidecar_fd: int
    sidecar: Path


def real_path_of(log_path: Path) -> Path:
    """Where the log named ``log_path`` really is: absolute, symlinks resolved.

    Sidecar files, compaction and upgrades use it, so that whatever name a
    log is opened by, they find and replace the same file (renaming over a
    symlink would replace the link, not the log).
    """
    return Path(os.path.realpath(log_path))


def sidecar_of(log_path: Path, suffix: str) -> Path:
    """The sidecar file ``<log><suffix>`` beside the log file itself.

    Spelled as ``log_path`` is when the file is there under that name (so a
    message shows ``jobs.jsonl.lock`` for ``jobs.jsonl``); by its real path
    when ``log_path`` is a symlink (or ``/proc/self/fd/N``) to a file elsewhere.
    """
    real = real_path_of(log_path)
    if real.name == log_path.name and real.parent == real_path_of(log_path.parent):
        return log_path.with_name(log_path.name + suffix)
    return real.with_name(real.name + suffix)


def lock_path_of(log_path: Path) -> Path:
    """The sidecar file that names a writer of ``log_path``: ``<log>.lock``."""
    return sidecar_of(log_path, ".lock")


def take_lock(log_fd: int, log_path: Path, kind: str) -> WriterLock:
    """Lock the log open at ``log_fd`` (named ``log_path``) for writing.

    ``kind`` (``"FileLog"``, ``"SQLiteLog"``) names the backend in the
    message a second writer in this same process gets. Raises `LogLocked`
    naming the holder, or ``OSError`` naming the file. The lock on the log
    is held by ``log_fd``'s open file description: keep it open while
    writing. Call `release_lock` with the result when done.
    """
    try:
        fcntl.flock(log_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        raise LogLocked(_locked_message(log_path, os.fstat(log_fd), kind)) from exc
    except OSError as exc:
        raise os_error(exc, f"cannot lock log {log_path}") from exc
    try:
        return _take_sidecar(log_fd, log_path, kind)
    except BaseException:
        fcntl.flock(log_fd, fcntl.LOCK_UN)
        raise


def take_lock_or_close(log_fd: int, log_path: Path, kind: str) -> WriterLock:
    """`take_lock`, closing ``log_fd`` if that fails: for a descriptor opened only
    to hold the lock, which must not outlive a refusal."""
    try:
        return take_lock(log_fd, log_path, kind)
    except BaseException:
        os.close(log_fd)
        raise


def lock_replacement(fd: int, log_path: Path) -> None:
    """Lock a file about to be renamed over the log (a compaction, an upgrade).

    Nobody else can have it open yet, so this cannot be refused; once it is
    renamed in, its lock keeps out writers who open the log after that.
    """
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        raise os_error(exc, f"cannot lock the new file of log {log_path}") from exc


def _take_sidecar(log_fd: int, log_path: Path, kind: str) -> WriterLock:
    sidecar = lock_path_of(log_path)
    try:
        fd = os.open(sidecar, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, _LOCK_FILE_MODE)
    except OSError as exc:
        raise os_error(exc, f"cannot open lock file {sidecar} of log {log_path}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        # Only a writer that locks the sidecar alone (an older chronolog)
        # gets here: anyone else would have been stopped by the log's lock.
        holder = _describe(_read_holder(fd), kind)
        os.close(fd)
        raise LogLocked(
            f"{log_path} is locked by {holder}; stop that scheduler or use another log "
            f"(lock file {sidecar})"
        ) from exc
    except OSError as exc:
        os.close(fd)
        raise os_error(exc, f"cannot lock log {log_path} ({sidecar})") from exc
    try:
        identity = os.fstat(log_fd)
        me = _Holder(
            pid=os.getpid(), host=socket.gethostname(), dev=identity.st_dev, ino=identity.st_ino
        )
        os.ftruncate(fd, 0)
        os.pwrite(fd, msgspec.json.encode(me) + b"\n", 0)
    except OSError as exc:
        os.close(fd)
        raise os_error(exc, f"cannot write lock file {sidecar}") from exc
    return WriterLock(fd, sidecar)


def release_lock(lock: WriterLock) -> None:
    """Empty the sidecar, so it names no one, and unlock it by closing it.

    The lock on the log itself goes when the writer closes the log's
    descriptor. The sidecar stays: deleting it would race with a writer
    that has just opened it.
    """
    try:
        os.ftruncate(lock.sidecar_fd, 0)
    except OSError:
        pass  # it only names us; the lock itself goes with the descriptor
    finally:
        os.close(lock.sidecar_fd)


def holder_of(log_path: Path) -> str | None:
    """Who holds the log at ``log_path`` open for writing right now, or None.

    Reads only (the sidecar and the kernel's lock table), so it never gets in
    the way of a writer that is opening the log. None where it cannot tell.
    """
    try:
        identity = os.stat(log_path)
    except OSError:
        return None
    pid = _lock_table_pid(identity)
    if pid is None and _PROC_LOCKS.exists():
        return None  # the kernel's table is there, and nobody holds the log
    recorded = _sidecar_holder(log_path)
    if pid is None and (recorded is None or recorded.ino != identity.st_ino):
        return None  # no lock table: the sidecar is all there is to go by
    return _holder_description(log_path, identity, pid, "writer")


def _locked_message(log_path: Path, identity: os.stat_result, kind: str) -> str:
    pid = _lock_table_pid(identity)
    holder = _holder_description(log_path, identity, pid, kind)
    return (
        f"{log_path} is locked by {holder}; stop that scheduler or use another log (the lock "
        f"follows the file, whatever name it is opened by; lock file {lock_path_of(log_path)})"
    )


def _holder_description(
    log_path: Path, identity: os.stat_result, pid: int | None, kind: str
) -> str:
    recorded = _sidecar_holder(log_path)
    if (
        recorded is not None
        and (recorded.dev, recorded.ino) == (identity.st_dev, identity.st_ino)
        and (pid is None or pid == recorded.pid)
    ):
        return _describe(recorded, kind)
    if pid is None:
        return "another process"
    return _describe(_Holder(pid=pid, host=socket.gethostname()), kind)


def _sidecar_holder(log_path: Path) -> _Holder | None:
    try:
        fd = os.open(lock_path_of(log_path), os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        return _read_holder(fd)
    finally:
        os.close(fd)


def _read_holder(fd: int) -> _Holder | None:
    try:
        return _holder_decoder.decode(os.pread(fd, _HOLDER_BYTES, 0).strip())
    except (msgspec.DecodeError, OSError):
        return None


def _describe(holder: _Holder | None, kind: str) -> str:
    if holder is None:
        return "another process (it has not written its pid into the lock file yet)"
    where = f"process {holder.pid} on host {holder.host or '?'}"
    if holder.pid == os.getpid() and holder.host == socket.gethostname():
        where += f" (this process: another {kind} is open on the same file; share that one)"
    return where


def _lock_table_pid(identity: os.stat_result) -> int | None:
    """The pid holding a write ``flock`` on the file with ``identity`` (Linux), or None."""
    wanted = f"{os.major(identity.st_dev):02x}:{os.minor(identity.st_dev):02x}:{identity.st_ino}"
    try:
        table = _PROC_LOCKS.read_text()
    except OSError:
        return None
    for line in table.splitlines():
        # "1: FLOCK  ADVISORY  WRITE 4242 08:01:1234567 0 EOF" ("-> " marks waiters)
        fields = line.split()
        if len(fields) < 6 or "->" in fields or fields[1] != "FLOCK" or fields[3] != "WRITE":
            continue
        if fields[5] == wanted:
            try:
                return int(fields[4])
            except ValueError:
                return None
    return None


def check_single_name(fd: int, log_path: Path, what: str) -> None:
    """Refuse to ``what`` (replace the file) when the log has more than one hard link.

    Renaming a new file over one name would leave the other names on the old
    file: two logs that each believe they are the one.
    """
    links = os.fstat(fd).st_nlink
    if links > 1:
        raise OSError(
            errno.EMLINK,
            f"cannot {what} log {log_path}: the file has {links} names (hard links), and "
            f"{what} replaces the file under one name only, so the others would keep the old "
            f"log. Remove the other names (find them with `find / -xdev -samefile "
            f"{log_path}`), or copy the log instead of linking it",
        )
