"""`FileLog`: the embedded default, one JSON Lines file.

Layout: the first line is the header (``{"format":"chronolog","version":3}``),
then one record per line, each line ending with ``\\n`` and carrying the
checksum chain (``,"crc":"..."}``, see `chronolog.log._checksum`). A writer
takes an exclusive ``flock`` on the log file itself (see ``_lock``), appends
each batch with one ``write`` and one ``fsync`` from a worker thread, and on
opening cuts off (and keeps aside) a torn final line left by a crash.
Readers need neither the lock nor Trio: they read complete lines only, so
they can run while a writer in another process appends; they check the seqs
(contiguous) and the checksums of everything they hand out.

A compacted log has its base snapshot on the line after the header, which
names it; the snapshot that speeds up opening lives in the sidecar
``<log>.snapshot``, and names the byte offset of the tail after it (see
docs/reference/snapshots.md). Logs of format versions 1 and 2 (no
checksums) are read as they are, and upgraded when opened for writing.

Errors: damaged content raises `LogCorrupted` (naming the 1-based line);
a log held by another writer raises `LogLocked` (naming its pid and host).
Problems of the environment -- a missing directory, permissions, a full
disk -- raise ``OSError`` of the usual subclass (``FileNotFoundError``,
``PermissionError``, ...), with a message that names the log and the original
error as ``__cause__``.
"""

from __future__ import annotations

import bisect
import contextlib
import errno
import hashlib
import itertools
import logging
import os
import stat
import time
import warnings
import zlib
from datetime import timedelta
from operator import attrgetter
from pathlib import Path
from typing import TYPE_CHECKING, Final, NamedTuple, Self

import msgspec
import trio

from .._errors import LogClosed, LogCorrupted, LogLocked, LogRepaired
from .._events import (
    CHECKSUM_VERSION,
    COMPACTED_LOG_VERSION,
    FORMAT_NAME,
    FORMAT_VERSION,
    FULL_LOG_VERSION,
    Header,
    decode_event,
    decode_header,
    decode_lines,
    encode_header,
    encode_record_into,
)
from .._invariants import Checker
from .._projection import DEFAULT_HISTORY_LIMIT, State, fold_into
from .._snapshot import encode_state
from .._strict import fold_strictly, refusal
from ._base import (
    FOLLOW_CHECKPOINT_EVERY,
    SequencedLog,
    base_from_snapshot,
    check_snapshot_point,
    ignore_snapshot,
    state_from_snapshot,
)
from ._checksum import TAIL_BYTES, check_lines, line_crc, running_after, seal
from ._lock import (
    WriterLock,
    check_single_name,
    holder_of,
    lock_path_of,
    lock_replacement,
    real_path_of,
    release_lock,
    sidecar_of,
    take_lock,
)
from ._os import check_directory_of, fsync_directory, os_error

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Iterable, Iterator

    from .._events import Event

__all__ = ["FileLog", "TornTail", "encode_sealed", "seal_records"]

logger = logging.getLogger("chronolog.log")

#: Readers decode the log this many bytes (a few hundred records) at a time.
#: Measured: 64 KiB chunks decode about 1.5x faster than 1 MiB ones, whose
#: thousands of fresh records at once no longer fit the CPU caches.
CHUNK_BYTES = 1 << 16
#: Small reads near a known position (a line start, the end of the file).
_PROBE_BYTES = 1 << 16
#: The first look back for the start of a line.
_SMALL_PROBE_BYTES = 1 << 12
#: ``read(after_seq)`` bisects the file by byte offset down to a window this
#: small, then scans it; below it a linear scan is as fast as more seeks.
_BISECT_MIN_BYTES = 1 << 18

_HEADER: Final = encode_header(checksums=True)
#: Every header a log file can start with before a base: a crash that cut
#: one short left a torn tail at offset 0.
_HEADERS: Final = (_HEADER, encode_header())
#: A line that starts with this byte (a space) belongs to a batch that goes on
#: at the next line: see `_encode_batch`.
_CONTINUED: Final = ord(" ")
_LOG_FILE_MODE: Final = 0o600

_seq_of = attrgetter("seq")


class _SeqOnly(msgspec.Struct):
    """Just enough of a record to bisect by seq without decoding all of it."""

    seq: int = 0


class _SnapshotHead(msgspec.Struct, frozen=True):
    """The first line of a snapshot file: which log, which record, which checksums.

    The snapshot applies to a log only if the record at ``seq`` is still the
    very line ``[record_start, record_end)`` it was (same SHA-256) and the
    log still begins with the same bytes: a snapshot of another log, or of
    this log before a rewrite, fails one of these two checks -- both cost a
    couple of reads, however long the log. The tail to replay starts at
    ``record_end``.
    """

    format: str
    version: int
    log: str
    seq: int
    record_start: int
    record_end: int
    record_sha256: str
    head_sha256: str
    state_bytes: int
    state_sha256: str


_seq_decoder: Final = msgspec.json.Decoder(_SeqOnly)
_snapshot_head_decoder: Final = msgspec.json.Decoder(_SnapshotHead)
_SNAPSHOT_FILE_FORMAT: Final = "chronolog-log-snapshot"
_SNAPSHOT_FILE_VERSION: Final = 1
#: How much of the start of the log a snapshot's ``head_sha256`` covers.
_HEAD_BYTES: Final = 4096
#: Compaction copies the records it keeps this many bytes at a time.
_COPY_BYTES: Final = 1 << 20
#: How often opening tries again when a compaction replaced the file under it.
_REOPEN_ATTEMPTS: Final = 5
#: Where a log's problems and what to do about them are explained.
RECOVERY_GUIDE: Final = "docs/how-to/recover-a-damaged-log.md"


class _Repair(NamedTuple):
    offset: int
    length: int
    kept_at: Path


class _Opened(NamedTuple):
    """What opening for writing found out (in a worker thread)."""

    fd: int
    lock: WriterLock
    size: int
    last_seq: int
    running: int
    base_seq: int
    real_path: Path
    repair: _Repair | None
    legacy: _Layout | None
    """The layout of a log of an older format, to upgrade before the first write."""


class _Layout(NamedTuple):
    """Where the parts of a log file are, from its header."""

    records_start: int
    """Offset of the first record line (just past the header, and the base)."""
    version: int
    base_seq: int = 0
    """The seq the base snapshot of a compacted log folds up to; 0 without one."""
    base_start: int = 0
    """Offset of the base snapshot line (0 without one)."""
    base_sha256: str = ""
    chain: int = 0
    """The running checksum the first record goes on from (version 3)."""

    @property
    def checksums(self) -> bool:
        return self.version >= CHECKSUM_VERSION


class TornTail(NamedTuple):
    """Bytes after the last whole batch of a log file (see `FileLog.torn_tail`)."""

    offset: int
    """Where the torn bytes start: the end of the last whole batch."""
    length: int
    """How many bytes follow it."""
    line: int
    """The 1-based line number the torn bytes start on."""


class FileLog(SequencedLog):
    """An event log in one JSON Lines file, for one writer process.

    ``async with FileLog(path) as log:`` opens it for writing: it creates the
    file (with its header) if needed, takes the lock, repairs a torn final
    line, and learns `last_seq`. Reading needs no opening:
    ``FileLog(path).read()`` works from any thread or process, also while a
    scheduler writes the file.

    With ``fsync=True`` (the default) an append returns only after its batch
    is on disk, so a crash of the machine loses no appended record. With
    ``fsync=False`` an append returns once the batch is in the operating
    system's cache: a crash of the process loses nothing, a crash of the
    machine may lose the last appends (the log stays a valid prefix, with at
    most a torn last line that the next open repairs); ``aclose`` still
    flushes to disk once.

    ``poll_interval`` is how often `follow` looks for records appended by
    another process; records appended through this object wake followers at
    once.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        fsync: bool = True,
        poll_interval: timedelta = timedelta(milliseconds=200),
    ) -> None:
        super().__init__()
        if poll_interval <= timedelta(0):
            raise ValueError(f"poll_interval must be a positive duration, got {poll_interval!r}")
        self._path = Path(path)
        self._fsync = fsync
        self._poll_seconds = poll_interval.total_seconds()
        self._fd: int | None = None
        self._lock: WriterLock | None = None
        # While open for writing: where the file really is (symlinks resolved:
        # compaction renames over this one), and the running checksum at the
        # end of the last appended batch.
        self._real_path = self._path
        self._running = 0
        # The layout of a log of format version 1 or 2 opened for writing: it
        # is upgraded before its first write.
        self._legacy: _Layout | None = None
        # Size of the file up to the end of the last appended batch: what this
        # object's own readers may read (never a batch still being written).
        self._size = 0
        # Set when a failed write could not be undone; appends then stop.
        self._write_failure: str | None = None
        # While open for writing: the base of the file this object writes, and
        # how many times compaction replaced that file (followers reopen it).
        self._base_seq = 0
        self._generation = 0

    def __repr__(self) -> str:
        return f"FileLog({str(self._path)!r})"

    @property
    def path(self) -> Path:
        """The log file."""
        return self._path

    @property
    def lock_path(self) -> Path:
        """The sidecar file that names the writer: ``<log>.lock``, beside the
        log's real path (symlinks resolved)."""
        return lock_path_of(self._path)

    @property
    def snapshot_path(self) -> Path:
        """The sidecar file that holds the log's snapshot: ``<log>.snapshot``,
        beside the log's real path (symlinks resolved)."""
        return sidecar_of(self._path, ".snapshot")

    @property
    def is_open(self) -> bool:
        """Whether this object holds the log open for writing (and its lock)."""
        return self._fd is not None

    @property
    def fsync(self) -> bool:
        """Whether each append waits for its batch to reach the disk."""
        return self._fsync

    @property
    def last_seq(self) -> int:
        """The seq of the last record (0 for an empty log).

        While this object has the log open for writing, this is known without
        I/O; otherwise it is read from the end of the file at each call.
        """
        if self._fd is not None:
            return self._last_seq
        fd = self._open_for_reading()
        try:
            return _last_seq_in(self._path, fd, os.fstat(fd).st_size)
        finally:
            os.close(fd)

    # -- writing ----------------------------------------------------------

    async def open(self) -> Self:
        """Open the log for writing (see the class docstring) and return it.

        Raises `LogLocked` if another writer holds the file (under any of its
        names), `LogCorrupted` if the file is not a chronolog log or its last
        batch is damaged, and warns with `LogRepaired` when it cut off a torn
        final line. A log of format version 1 or 2 (no checksums) is read
        whole and checked against every rule first (`LogCorrupted` if it
        breaks one); it is rewritten as version 3 just before the first write
        (append, snapshot or compaction), so an open that writes nothing
        changes nothing.
        """
        if self._closed:
            raise LogClosed(f"{self!r} was closed; create a new FileLog to open the file again")
        if self._fd is not None:
            raise RuntimeError(f"{self!r} is already open for writing")
        opened = await trio.to_thread.run_sync(self._open_for_writing)
        self._fd, self._lock, self._size = opened.fd, opened.lock, opened.size
        self._last_seq, self._running = opened.last_seq, opened.running
        self._base_seq, self._real_path = opened.base_seq, opened.real_path
        self._legacy = opened.legacy
        if opened.repair is not None:
            try:
                self._report(opened.repair)
            except BaseException:
                # Warnings may be errors: then the caller never gets the log, so
                # it must not keep holding the lock.
                self._close_files()
                raise
        return self

    async def __aenter__(self) -> Self:
        # ``log = await FileLog(path).open()`` then ``async with log:`` is fine too.
        if self._fd is not None:
            await trio.lowlevel.checkpoint()
            return self
        return await self.open()

    async def _write(self, records: list[Event]) -> None:
        # The whole write path: one encode, one write + fsync in a worker
        # thread. A group-commit layer or a simulated clock wraps this.
        if self._legacy is not None:
            await trio.to_thread.run_sync(self._upgrade_now)
        data, running = _encode_batch(records, self._running)
        self._size = await trio.to_thread.run_sync(self._write_batch, data)
        self._running = running

    def _write_batch(self, data: bytes) -> int:
        """Write one encoded batch and fsync it; return the new file size."""
        fd = self._fd
        assert fd is not None
        start = self._size
        try:
            _write_all(fd, data)
            if self._fsync:
                os.fsync(fd)
        except OSError as exc:
            if self._undo_write(fd, start):
                outcome = "nothing of this batch was kept"
            else:
                outcome = (
                    f"part of this batch may remain after byte {start}, so this FileLog "
                    f"accepts no more appends; close it and reopen the log"
                )
            raise os_error(exc, f"could not append to log {self._path}", outcome) from exc
        return start + len(data)

    def _undo_write(self, fd: int, size: int) -> bool:
        """Cut a failed batch off the file; False if that failed too."""
        try:
            os.ftruncate(fd, size)
            if self._fsync:
                os.fsync(fd)
        except OSError as exc:
            self._write_failure = f"a failed append could not be undone ({exc.strerror})"
            return False
        return True

    def _check_writable(self) -> None:
        super()._check_writable()
        if self._fd is None:
            raise LogClosed(
                f"{self!r} is not open for writing: use `async with FileLog(...) as log` "
                f"or `await log.open()` before appending"
            )
        if self._write_failure is not None:
            raise LogClosed(
                f"{self!r} accepts no more appends: {self._write_failure}; "
                f"close it and reopen the log"
            )

    async def _release(self) -> None:
        fd = self._fd
        if fd is not None and not self._fsync and self._write_failure is None:
            try:
                await trio.to_thread.run_sync(os.fsync, fd)
            except OSError as exc:
                self._close_files()
                raise os_error(exc, f"could not flush log {self._path} on close") from exc
        self._close_files()
        await trio.lowlevel.checkpoint()

    def _close_files(self) -> None:
        fd, lock = self._fd, self._lock
        self._fd = self._lock = None
        if fd is not None:
            os.close(fd)  # releases the lock on the log file itself
        if lock is not None:
            release_lock(lock)

    def _report(self, repair: _Repair) -> None:
        # Named as the log was: beside the name given, unless that is a symlink
        # elsewhere (the bytes lie beside the file itself).
        kept_at = self._path.with_name(repair.kept_at.name)
        with contextlib.suppress(OSError):
            if not os.path.samefile(kept_at.parent, repair.kept_at.parent):
                kept_at = repair.kept_at
        message = (
            f"{self._path} ended with a torn batch ({repair.length} bytes after byte "
            f"offset {repair.offset}: a crash interrupted a write before its last record "
            f"was complete, so the append never returned). "
            f"Those bytes were moved to {kept_at}, and the log now ends with "
            f"its last complete record."
        )
        logger.warning("%s", message)
        warnings.warn(message, LogRepaired, stacklevel=3)

    # -- opening for writing (runs in a worker thread) ---------------------

    def _open_for_writing(self) -> _Opened:
        check_directory_of(self._path)
        fd, lock, created = self._open_and_lock()
        try:
            real = _real_path(self._path, fd)
            try:
                size, repair, layout = self._prepare(fd, created, real)
                last_seq = _last_seq_in(self._path, fd, size)
                running = _running_at(self._path, fd, size, layout)
            except OSError as exc:
                raise os_error(exc, f"cannot open log {self._path} for writing") from exc
        except BaseException:
            os.close(fd)
            release_lock(lock)
            raise
        base_seq = layout.base_seq if layout is not None else 0
        legacy = layout if layout is not None and not layout.checksums else None
        return _Opened(fd, lock, size, last_seq, running, base_seq, real, repair, legacy)

    def _open_and_lock(self) -> tuple[int, WriterLock, bool]:
        """Open (or create) the log file and lock it: the lock is on the file itself.

        A compaction in another process may rename a new file over the name
        between the open and the lock: then the lock is on a file that is no
        longer the log, and this opens it again.
        """
        for _ in range(_REOPEN_ATTEMPTS):
            fd, created = self._open_log_file()
            try:
                lock = take_lock(fd, self._path, "FileLog")
            except BaseException:
                os.close(fd)
                raise
            if not _replaced(self._path, fd):
                return fd, lock, created
            os.close(fd)
            release_lock(lock)
        raise LogLocked(
            f"{self._path} was replaced {_REOPEN_ATTEMPTS} times while it was being opened: "
            f"another process is rewriting it; stop that process or try again"
        )

    def _open_log_file(self) -> tuple[int, bool]:
        flags = os.O_RDWR | os.O_APPEND | os.O_CLOEXEC
        try:
            try:
                return os.open(self._path, flags | os.O_CREAT | os.O_EXCL, _LOG_FILE_MODE), True
            except FileExistsError:
                return os.open(self._path, flags), False
        except OSError as exc:
            raise os_error(exc, f"cannot open log {self._path} for writing") from exc

    def _prepare(
        self, fd: int, created: bool, real: Path
    ) -> tuple[int, _Repair | None, _Layout | None]:
        """Check the header, check (then cut) a torn tail, write the header if the
        file is empty. A log of an older format is checked against every rule
        before anything is changed."""
        size = os.fstat(fd).st_size
        repair = None
        layout: _Layout | None = None
        if size > 0:
            layout, keep = _inspect(self._path, fd, size)
            if layout is not None and not layout.checksums:
                _check_before_upgrade(self._path, fd, layout, keep)
            if keep < size:
                repair = self._cut_torn_tail(fd, keep, size, real)
                size = keep
        if size == 0:
            _write_all(fd, _HEADER)
            os.fsync(fd)
            size = len(_HEADER)
            layout = _layout(self._path, fd, size)
        if created:
            fsync_directory(real.parent)
        return size, repair, layout

    def _upgrade_now(self) -> None:
        """Rewrite this log of format version 1 or 2 as version 3, before its first
        write (worker thread, write lock held): the same records, each with its
        checksum, in the same batches. Checked against every rule at open.

        Written beside (``<log>.upgrade``), fsynced, locked, renamed over the
        log, the directory fsynced: a crash leaves the old log or the new one.
        A failure (a full disk) leaves the log as it was and says so; the
        next write tries again.
        """
        layout, old_fd = self._legacy, self._fd
        assert layout is not None
        assert old_fd is not None
        new_fd, size = self._upgrade(old_fd, self._size, layout, self._real_path)
        # As in a compaction: the generation is odd while the file changes.
        self._generation += 1
        self._fd, self._size = new_fd, size
        self._generation += 1
        self._legacy = None
        os.close(old_fd)  # and with it, the lock on the old file
        self._running = _running_at(self._path, new_fd, size, _layout(self._path, new_fd, size))
        logger.info(
            "upgraded log %s from format version %d to %d: its records carry checksums now",
            self._path,
            layout.version,
            FORMAT_VERSION,
        )
        try:
            fsync_directory(self._real_path.parent)
        except OSError as exc:
            raise os_error(
                exc,
                f"upgraded log {self._path} to format version 3, but could not fsync its "
                f"directory",
                "a crash of the machine now may bring back the log as it was before",
            ) from exc

    def _upgrade(self, old_fd: int, size: int, layout: _Layout, real: Path) -> tuple[int, int]:
        """Write the version 3 form of the log beside it and rename it in; return
        the new file's descriptor (locked) and size. The old descriptor stays open."""
        what = f"could not upgrade log {self._path} from format version {layout.version} to 3"
        unchanged = f"the log is unchanged (version {layout.version})"
        check_single_name(old_fd, self._path, "upgrade (rewrite)")
        temporary = real.with_name(real.name + ".upgrade")
        needed = size + (size // 8) + (1 << 20)
        try:
            free = os.statvfs(real.parent)
            if free.f_bavail * free.f_frsize < needed:
                raise OSError(
                    errno.ENOSPC,
                    f"{what}: it needs about {_mib(needed)} free beside it, and the file system "
                    f"has {_mib(free.f_bavail * free.f_frsize)}; {unchanged}. Free some "
                    f"space and try again",
                )
            _remove(temporary)
            new_fd = os.open(
                temporary,
                os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC,
                _LOG_FILE_MODE,
            )
        except OSError as exc:
            if exc.strerror and exc.strerror.startswith(what):
                raise
            raise os_error(exc, what, unchanged) from exc
        try:
            os.fchmod(new_fd, stat.S_IMODE(os.fstat(old_fd).st_mode))
            lock_replacement(new_fd, self._path)
            _write_upgraded(old_fd, new_fd, layout, size)
            os.fsync(new_fd)
            new_size = os.fstat(new_fd).st_size
            _remove(real.with_name(real.name + ".snapshot"))  # its offsets are the old file's
            os.replace(temporary, real)
        except BaseException as exc:
            os.close(new_fd)
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            if isinstance(exc, OSError):
                raise os_error(exc, what, unchanged) from exc
            raise
        return new_fd, new_size

    def _cut_torn_tail(self, fd: int, offset: int, size: int, real: Path) -> _Repair:
        torn = _pread_exact(fd, size - offset, offset)
        kept_at = self._keep_aside(torn, offset, real)
        os.ftruncate(fd, offset)
        os.fsync(fd)
        return _Repair(offset=offset, length=len(torn), kept_at=kept_at)

    def _keep_aside(self, data: bytes, offset: int, real: Path) -> Path:
        """Write ``data`` durably to a new ``<log>.torn-<offset>[.n]`` file."""
        base = f"{real.name}.torn-{offset}"
        for attempt in itertools.count():
            candidate = real.with_name(base if attempt == 0 else f"{base}.{attempt}")
            try:
                fd = os.open(
                    candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, _LOG_FILE_MODE
                )
            except FileExistsError:
                continue
            try:
                _write_all(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            fsync_directory(real.parent)
            return candidate
        raise AssertionError("unreachable")  # pragma: no cover

    # -- snapshots and compaction ---------------------------------------------

    @property
    def base_seq(self) -> int:
        """The seq of the last record folded into the base by a compaction (0 if none)."""
        if self._fd is not None:
            return self._base_seq
        fd = self._open_for_reading()
        try:
            layout = _layout(self._path, fd, None)
        finally:
            os.close(fd)
        return layout.base_seq if layout is not None else 0

    def base_state(self, *, history_limit: int = DEFAULT_HISTORY_LIMIT) -> State:
        fd = self._open_for_reading()
        try:
            layout = _layout(self._path, fd, self._limit_for(fd))
            return _base_state(self._path, fd, layout, history_limit)
        finally:
            os.close(fd)

    def load_state(
        self, *, history_limit: int = DEFAULT_HISTORY_LIMIT, strict: bool = True
    ) -> State:
        """The newest snapshot plus the records after it; see `EventLog.load_state`.

        With a usable snapshot this reads the snapshot file and the lines
        after the snapshot's record -- found by the byte offset the snapshot
        keeps, checked against the record's checksum -- never the whole log.
        ``strict`` (the default) refuses records that break a rule of the log.
        """
        fd = self._open_for_reading()
        try:
            limit = self._limit_for(fd)
            layout = _layout(self._path, fd, limit)
            if layout is None:
                return State(history_limit=history_limit)

            def start() -> tuple[State, Iterator[Event]]:
                found = self._usable_snapshot(fd, layout, history_limit, limit)
                if found is None:
                    state = _base_state(self._path, fd, layout, history_limit)
                    cursor = _Cursor(self._path, fd)
                else:
                    state, offset = found
                    cursor = _Cursor(self._path, fd, offset=offset, previous_seq=state.seq)
                return state, itertools.chain.from_iterable(cursor.batches(state.seq, limit))

            state, records = start()
            if not strict:
                return fold_into(state, records)
            return fold_strictly(state, records, recheck=start, where=str(self._path))
        finally:
            os.close(fd)

    def torn_tail(self) -> TornTail | None:
        """The bytes after the last whole batch, if the file ends with any; else None.

        Read only: a torn tail is what a crash in the middle of an append
        leaves (the next writer moves it aside when it opens the log), or a
        batch another process is writing right now. `chronolog verify` reports it.
        """
        fd = self._open_for_reading()
        try:
            size = os.fstat(fd).st_size
            if size == 0:
                return None
            _, keep = _inspect(self._path, fd, size)
            if keep >= size:
                return None
            return TornTail(keep, size - keep, _line_number(fd, keep))
        finally:
            os.close(fd)

    def writer(self) -> str | None:
        """Who holds this log open for writing, as a phrase (``process 42 on host
        web-1``); None when nobody does. Read only: it takes no lock."""
        return holder_of(self._path)

    @property
    def format_version(self) -> int | None:
        """The format version in the file's header (None while it has none yet).

        3: records carry checksums. 1 and 2 (no checksums) are read as they
        are; the first write upgrades them.
        """
        fd = self._open_for_reading()
        try:
            layout = _layout(self._path, fd, self._limit_for(fd))
        finally:
            os.close(fd)
        return layout.version if layout is not None else None

    async def save_snapshot(self, state: State, seq: int | None = None) -> None:
        """Write ``state`` to the snapshot file; see `EventLog.save_snapshot`.

        The log must be open for writing (the snapshot file belongs to the
        writer). The file is replaced atomically: written beside, fsynced,
        renamed over the old one, and the directory fsynced.
        """
        point = check_snapshot_point(self, state, seq)
        self._check_writable()
        document = await trio.to_thread.run_sync(encode_state, state.copy())
        async with self._write_lock:
            self._check_writable()
            if self._legacy is not None:
                await trio.to_thread.run_sync(self._upgrade_now)
            await trio.to_thread.run_sync(self._write_snapshot, point, document)

    async def compact(self, state: State) -> None:
        """Rewrite the log as ``state`` (its base) plus the records after ``state.seq``.

        See `EventLog.compact`. The new file is written beside the log
        (``<log>.compact``), fsynced, renamed over the log and the directory
        fsynced: a crash at any moment leaves either the old log or the new
        one. Appends wait while the records are copied. The snapshot file is
        removed first (its offsets would no longer match).
        """
        self._check_writable()
        base = await trio.to_thread.run_sync(encode_state, state.copy())
        async with self._write_lock:
            self._check_writable()
            if self._legacy is not None:
                await trio.to_thread.run_sync(self._upgrade_now)
            await trio.to_thread.run_sync(self._rewrite, state.seq, base)

    def _usable_snapshot(
        self, fd: int, layout: _Layout, history_limit: int, limit: int | None
    ) -> tuple[State, int] | None:
        """The snapshot's State and the offset of the tail after it, if it applies here."""
        snapshot_path = self.snapshot_path
        where = f"{snapshot_path} of log {self._path}"
        try:
            content = snapshot_path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            ignore_snapshot(where, f"it cannot be read ({exc.strerror or exc})")
            return None
        newline = content.find(b"\n")
        try:
            head = _snapshot_head_decoder.decode(content[: max(newline, 0)])
        except msgspec.DecodeError:
            ignore_snapshot(where, "it is not a chronolog snapshot file")
            return None
        if head.format != _SNAPSHOT_FILE_FORMAT or head.version != _SNAPSHOT_FILE_VERSION:
            ignore_snapshot(
                where,
                f"it is a {head.format!r} file of version {head.version}, not one this "
                f"chronolog reads",
            )
            return None
        if head.seq <= layout.base_seq:
            return None  # older than the base: nothing to gain
        problem = _snapshot_mismatch(snapshot_path, fd, head, limit)
        document = content[newline + 1 :]
        if problem is None and (
            len(document) != head.state_bytes + 1
            or hashlib.sha256(document[:-1]).hexdigest() != head.state_sha256
        ):
            problem = "it is damaged (its state does not match its checksum)"
        if problem is not None:
            ignore_snapshot(where, problem)
            return None
        state = state_from_snapshot(document[:-1], history_limit=history_limit, where=where)
        if state is None:
            return None
        if state.seq != head.seq:
            ignore_snapshot(where, f"its state is at seq {state.seq}, its header says {head.seq}")
            return None
        return state, head.record_end

    def _write_snapshot(self, seq: int, document: bytes) -> None:
        """Write the snapshot file for the record at ``seq`` (worker thread, write lock held)."""
        fd = self._fd
        assert fd is not None
        try:
            found = _locate(self._path, fd, seq, self._size) if seq > self._base_seq else None
            if found is None:
                raise ValueError(
                    f"cannot save a snapshot at seq {seq} of {self._path}: no record with that "
                    f"seq is stored after the base at seq {self._base_seq} (the last is seq "
                    f"{self._last_seq}); fold the log with load_state() and save that state"
                )
            start, end = found
            head = _SnapshotHead(
                format=_SNAPSHOT_FILE_FORMAT,
                version=_SNAPSHOT_FILE_VERSION,
                log=self._real_path.name,
                seq=seq,
                record_start=start,
                record_end=end,
                record_sha256=hashlib.sha256(_pread_exact(fd, end - start, start)).hexdigest(),
                head_sha256=hashlib.sha256(_pread_exact(fd, min(_HEAD_BYTES, end), 0)).hexdigest(),
                state_bytes=len(document),
                state_sha256=hashlib.sha256(document).hexdigest(),
            )
            content = msgspec.json.encode(head) + b"\n" + document + b"\n"
            _replace_file(self.snapshot_path, content)
        except OSError as exc:
            raise os_error(exc, f"could not save a snapshot of log {self._path}") from exc

    def _rewrite(self, seq: int, base: bytes) -> None:
        """Compact the file up to ``seq`` (worker thread, write lock held)."""
        old_fd = self._fd
        assert old_fd is not None
        if seq == self._base_seq:
            return
        found = _locate(self._path, old_fd, seq, self._size) if seq > self._base_seq else None
        if found is None:
            raise ValueError(
                f"cannot compact {self._path} up to seq {seq}: no record with that seq is stored "
                f"after the base at seq {self._base_seq} (the last is seq {self._last_seq})"
            )
        cut = found[1]
        # The records kept are copied byte for byte: the header says where
        # their checksum chain goes on from.
        chain = running_after(_pread_exact(old_fd, cut - found[0], found[0]))
        if chain is None:
            raise _corruption(self._path, _line_number(old_fd, found[0]), "carries no checksum")
        real = self._real_path
        temporary = real.with_name(real.name + ".compact")
        try:
            check_single_name(old_fd, self._path, "compact")
            _remove(self.snapshot_path)
            _remove(temporary)
            new_fd = os.open(
                temporary,
                os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC,
                _LOG_FILE_MODE,
            )
        except OSError as exc:
            raise os_error(
                exc, f"could not compact log {self._path}", "the log is unchanged"
            ) from exc
        try:
            os.fchmod(new_fd, stat.S_IMODE(os.fstat(old_fd).st_mode))
            lock_replacement(new_fd, self._path)
            line = base + b"\n"
            header = encode_header(checksums=True, base_seq=seq, base=line, chain=chain)
            _write_all(new_fd, header + line)
            position = cut
            while position < self._size:
                chunk = os.pread(old_fd, min(_COPY_BYTES, self._size - position), position)
                if not chunk:
                    raise OSError(errno.EIO, f"{self._path} ended at byte {position} while copied")
                _write_all(new_fd, chunk)
                position += len(chunk)
            os.fsync(new_fd)
            size = os.fstat(new_fd).st_size
            os.replace(temporary, real)
        except BaseException as exc:
            os.close(new_fd)
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            if isinstance(exc, OSError):
                raise os_error(
                    exc, f"could not compact log {self._path}", "the log is unchanged"
                ) from exc
            raise
        # The new file is the log now: append to it, whatever happens next.
        # The generation is odd while the descriptor and size change, so a
        # reader never pairs one file's descriptor with the other's size.
        self._generation += 1
        self._fd, self._size, self._base_seq = new_fd, size, seq
        self._generation += 1
        os.close(old_fd)  # and with it, the lock on the old file
        try:
            fsync_directory(real.parent)
        except OSError as exc:
            raise os_error(
                exc,
                f"compacted log {self._path}, but could not fsync its directory",
                "a crash of the machine now may bring back the log as it was before",
            ) from exc

    # -- reading ----------------------------------------------------------

    def read(self, after_seq: int = 0) -> Iterator[Event]:
        """Yield the records with ``seq > after_seq``, in order.

        Needs no lock, no opening and no Trio. Reads whole batches of complete
        lines only: a batch still being written (or torn by a crash) ends the
        iteration. Raises `LogCorrupted` at a damaged line, after yielding
        every record before it.
        """
        # chain() walks each decoded list in C: replay of a large log pays no
        # Python generator step per record.
        return itertools.chain.from_iterable(self._read_batches(after_seq))

    def _read_batches(self, after_seq: int) -> Iterator[list[Event]]:
        fd = self._open_for_reading()
        try:
            yield from _Cursor(self._path, fd).batches(after_seq, self._limit_for(fd))
        finally:
            os.close(fd)

    async def follow(self, after_seq: int = 0) -> AsyncGenerator[Event, None]:
        """Yield records as they land; see `EventLog.follow`.

        Appends through this object wake followers at once; appends by another
        process are seen within ``poll_interval``. Reads run in the event loop
        a chunk at a time, with a checkpoint between chunks.
        """
        fd = self._open_for_reading()
        generation = self._generation
        try:
            cursor = _Cursor(self._path, fd)
            while True:
                appended = self._appended
                finished = self._finished
                writing = self._fd is not None
                if generation != self._generation or (not writing and _replaced(self._path, fd)):
                    # Compacted: go on in the new file after the last record yielded.
                    os.close(fd)
                    fd = self._open_for_reading()
                    generation = self._generation
                    cursor = _Cursor(self._path, fd)
                elif not writing:
                    cursor.check_not_shrunk()
                since_checkpoint = 0
                for batch in cursor.batches(after_seq, self._limit_for(fd)):
                    for record in batch:
                        yield record
                        since_checkpoint += 1
                        if since_checkpoint >= FOLLOW_CHECKPOINT_EVERY:
                            since_checkpoint = 0
                            await trio.lowlevel.checkpoint()
                    after_seq = batch[-1].seq
                if finished:
                    return
                if writing:
                    await appended.wait()
                else:
                    with trio.move_on_after(self._poll_seconds):
                        await appended.wait()
        finally:
            os.close(fd)

    def _limit_for(self, fd: int) -> int | None:
        """How much of the file open at ``fd`` this object's readers may read.

        Up to the end of the last batch appended when it is the file this
        object appends to (never a batch still being written); all of it
        otherwise -- a reader's log, or a file that a compaction replaced
        (nothing is appended to that one any more).
        """
        while True:
            generation = self._generation
            writing_fd, size = self._fd, self._size
            if generation % 2 == 0 and generation == self._generation:
                break
            time.sleep(0)  # a compaction is swapping the file: a moment
        if writing_fd is None:
            return None
        try:
            same = os.path.samestat(os.fstat(fd), os.fstat(writing_fd))
        except OSError:
            return None  # the replaced file's descriptor is closed already
        return size if same else None

    def _open_for_reading(self) -> int:
        try:
            fd = os.open(self._path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError as exc:
            raise os_error(
                exc,
                f"log {self._path} does not exist",
                "check the path (a scheduler creates the file when it first opens it)",
            ) from exc
        except OSError as exc:
            raise os_error(exc, f"cannot read log {self._path}") from exc
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            os.close(fd)
            raise IsADirectoryError(
                errno.EISDIR, f"cannot read log {self._path}: it is a directory"
            )
        return fd


class _Cursor:
    """Decodes the complete lines of a log file from a byte offset on, and checks them.

    It remembers where it stopped (always at a line start), the last seq it
    saw and the running checksum there, so a follower can call `batches`
    again as the file grows. Every record it hands out has the seq that
    follows the one before it, and -- in a log with checksums -- lies on a
    line that matches its checksum.
    """

    def __init__(self, path: Path, fd: int, *, offset: int = 0, previous_seq: int = 0) -> None:
        self._path = path
        self._fd = fd
        #: Where the next unread line starts; 0 while the header is unread.
        #: A reader that resumes from a snapshot starts at the line after the
        #: snapshot's record, with ``previous_seq`` its seq.
        self.offset = offset
        #: Set when a decode stopped early at damage, to hand out the records
        #: before it first; the next decode raises.
        self.damage_ahead = False
        self._previous_seq = previous_seq
        self._started = False
        self._checksums = False
        #: The running checksum at `offset` (logs with checksums).
        self._running = 0
        self._pending_running = 0

    def _start(self, after_seq: int, limit: int | None) -> bool:
        """Read the header and find where to begin; False while there is no header."""
        layout = _layout(self._path, self._fd, limit)
        if layout is None:
            return False
        self._started = True
        self._checksums = layout.checksums
        if self.offset == 0:
            self.offset = layout.records_start
            self._previous_seq = layout.base_seq
            self._running = layout.chain
            if after_seq > layout.base_seq:
                self._skip_towards(after_seq, limit)
        if self.offset > layout.records_start:
            self._resume(layout)
        return True

    def _resume(self, layout: _Layout) -> None:
        """Learn the seq and the running checksum at `offset`, from the line before it."""
        start = _rfind_newline(self._fd, self.offset - 1) + 1
        line = _pread_exact(self._fd, self.offset - start, start)
        try:
            self._previous_seq = _seq_decoder.decode(line).seq
        except msgspec.DecodeError as exc:
            raise _corruption(
                self._path, _line_number(self._fd, start), f"is not a valid record: {exc}"
            ) from exc
        if layout.checksums:
            running = running_after(line)
            if running is None:
                raise _corruption(
                    self._path,
                    _line_number(self._fd, start),
                    "carries no checksum, but the header says its records all have one",
                )
            self._running = running

    def batches(self, after_seq: int, limit: int | None) -> Iterator[list[Event]]:
        """Yield lists of records with ``seq > after_seq``, from the whole batches
        of complete lines before ``limit`` (or the end of the file)."""
        if not self._started and not self._start(after_seq, limit):
            return
        fd = self._fd
        position = self.offset
        # Bytes from `offset` on that are read but not yet taken: the start of
        # a line longer than a chunk, or the lines of a batch whose last
        # record is still to come.
        pending = b""
        while True:
            size = CHUNK_BYTES if limit is None else min(CHUNK_BYTES, limit - position)
            chunk = os.pread(fd, size, position) if size > 0 else b""
            if not chunk:
                return
            position += len(chunk)
            data = pending + chunk if pending else chunk
            cut = data.rfind(b"\n") + 1
            if cut == 0:
                pending = data
                continue
            lines = data if cut == len(data) else data[:cut]
            records, taken = self._decode(lines)
            pending = data[taken:]
            if records:
                if records[0].seq > after_seq:
                    yield records
                else:
                    rest = records[bisect.bisect_right(records, after_seq, key=_seq_of) :]
                    if rest:
                        yield rest
            if self.damage_ahead:
                self._decode_each(lines[taken:])  # raises LogCorrupted at the damage

    def _decode(self, lines: bytes) -> tuple[list[Event], int]:
        """Decode complete lines; return the records of the whole batches among
        them and how many bytes those take. Fast path: all lines at once."""
        try:
            records = decode_lines(lines)
        except msgspec.DecodeError:
            return self._decode_each(lines)
        decode = self._sealed if self._checksums else self._unsealed
        found = decode(lines, records)
        if found is None:
            return self._decode_each(lines)
        records, taken = found
        # Contiguous seqs, checked in C (two lists compared): this runs for
        # every record of every replay.
        previous = self._previous_seq
        if list(map(_seq_of, records)) != list(range(previous + 1, previous + 1 + len(records))):
            return self._decode_each(lines)
        if self._checksums:
            # Only now, with the records of these lines vouched for: the
            # running checksum after them.
            self._running = self._pending_running
        self.offset += taken
        if records:
            self._previous_seq = records[-1].seq
        return records, taken

    def _unsealed(self, lines: bytes, records: list[Event]) -> tuple[list[Event], int] | None:
        """The records of the whole batches of lines without checksums, and their bytes."""
        # decode_lines skips blank lines and accepts values spanning lines or
        # sharing one; a count mismatch sends those to the exact decoder.
        if len(records) != lines.count(b"\n"):
            return None
        taken = len(lines)
        whole = len(records)
        # The last batch has not ended in these lines: hold it back.
        while whole:
            start = lines.rfind(b"\n", 0, taken - 1) + 1
            if lines[start] != _CONTINUED:
                break
            whole -= 1
            taken = start
        return records[:whole] if whole < len(records) else records, taken

    def _sealed(self, lines: bytes, records: list[Event]) -> tuple[list[Event], int] | None:
        """The records of the whole batches of lines with checksums, and their bytes.

        One crc32 over every whole line: the chain the last one carries holds
        only if every byte before it is as the writer wrote it -- one record
        per line, no blank line -- so, unlike lines without checksums, the
        lines need not be counted: the seq on the last whole line says how
        many records they hold.
        """
        taken = len(lines)
        # The last batch has not ended in these lines: hold it back.
        while taken:
            start = lines.rfind(b"\n", 0, taken - 1) + 1
            if lines[start] != _CONTINUED:
                break
            taken = start
        if taken == 0:
            return [], 0
        running = check_lines(lines, taken, self._running)
        if running is None:
            return None
        try:
            last = _seq_decoder.decode(lines[lines.rfind(b"\n", 0, taken - 1) + 1 : taken]).seq
        except msgspec.DecodeError:
            return None
        whole = last - self._previous_seq
        if not 0 < whole <= len(records) or records[whole - 1].seq != last:
            return None
        self._pending_running = running
        return records[:whole] if whole < len(records) else records, taken

    def _decode_each(self, lines: bytes) -> tuple[list[Event], int]:
        """Decode and check line by line; raise `LogCorrupted` at the first bad line."""
        self.damage_ahead = False
        records: list[Event] = []
        batch: list[Event] = []
        taken = 0  # bytes of the whole batches decoded so far
        position = 0
        previous = self._previous_seq
        running = running_taken = self._running
        for line in lines.split(b"\n")[:-1]:
            problem = None
            cause: Exception | None = None
            try:
                record = decode_event(line)
            except msgspec.DecodeError as exc:
                problem = "is empty" if not line.strip() else f"is not a valid record: {exc}"
                cause = exc
            else:
                problem = _seq_problem(record.seq, previous, self.offset + position, self._fd)
            if problem is None and self._checksums:
                problem, running = _checksum_problem(line, running)
            if problem is not None:
                if records or batch:
                    # Hand out every record before the damage first, also those
                    # of a batch that the damage cut short: this is no write in
                    # flight, and the next call raises.
                    records.extend(batch)
                    taken = position
                    running_taken = running
                    self.damage_ahead = True
                    break
                raise self._corrupted(problem, self.offset + position) from cause
            previous = record.seq
            position += len(line) + 1
            batch.append(record)
            if line[:1] != b" ":
                records.extend(batch)
                batch.clear()
                taken = position
                running_taken = running
        self.offset += taken
        self._running = running_taken
        if records:
            self._previous_seq = records[-1].seq
        return records, taken

    def _corrupted(self, problem: str, offset: int) -> LogCorrupted:
        return _corruption(self._path, _line_number(self._fd, offset), problem)

    def _skip_towards(self, after_seq: int, limit: int | None) -> None:
        """Move `offset` forward, by bisection, to a line start before the first
        record with ``seq > after_seq``; skipped lines are not validated."""
        low = self.offset
        high = limit if limit is not None else os.fstat(self._fd).st_size
        while high - low > _BISECT_MIN_BYTES:
            middle = (low + high) // 2
            start = self._next_line_start(middle, high)
            if start is None:
                high = middle
                continue
            seq = self._probe_seq(start, high)
            if seq is None:
                break  # let the linear scan report the damage
            if seq > after_seq:
                high = start
            elif start > low:
                low = start
            else:
                break
        self.offset = low

    def _next_line_start(self, position: int, end: int) -> int | None:
        data = os.pread(self._fd, min(_PROBE_BYTES, end - position + 1), position - 1)
        newline = data.find(b"\n")
        if newline < 0 or position + newline >= end:
            return None
        return position + newline

    def _probe_seq(self, start: int, end: int) -> int | None:
        data = os.pread(self._fd, min(_PROBE_BYTES, end - start), start)
        newline = data.find(b"\n")
        if newline < 0:
            return None
        try:
            return _seq_decoder.decode(data[:newline]).seq
        except msgspec.DecodeError:
            return None

    def check_not_shrunk(self) -> None:
        size = os.fstat(self._fd).st_size
        if size < self.offset:
            raise LogCorrupted(
                f"{self._path} shrank to {size} bytes while being read up to byte "
                f"{self.offset}: records already read are gone (a writer undid a failed "
                f"append, or the file was replaced); read the log again from the start"
            )


# -- helpers ----------------------------------------------------------------


def _check_header(path: Path, line: bytes) -> Header:
    try:
        header = decode_header(line)
    except msgspec.DecodeError as exc:
        raise LogCorrupted(_not_a_log(path, line)) from exc
    if header.format != FORMAT_NAME or header.version < 1:
        raise LogCorrupted(_not_a_log(path, line))
    if header.version > FORMAT_VERSION:
        raise LogCorrupted(
            f"{path} was written by format version {header.version}; this chronolog reads "
            f"versions 1 to {FORMAT_VERSION} -- upgrade chronolog to read it"
        )
    return header


def _layout_after(path: Path, fd: int, header: Header, header_end: int) -> _Layout:
    """The layout a valid ``header`` line (ending at ``header_end``) announces."""
    chain = 0
    if header.checksums and header.chain:
        try:
            chain = int(header.chain, 16)
        except ValueError:
            chain = -1
        if len(header.chain) != 8 or chain < 0:
            raise _corruption(
                path,
                1,
                f"(the header) names the checksum {header.chain!r} the records go on from, "
                f"which is not 8 hex digits",
            )
    names_a_base = bool(header.base_seq or header.base_bytes or header.base_sha256)
    if header.version == FULL_LOG_VERSION and names_a_base:
        raise _corruption(path, 1, "(the header) names a base snapshot, but is of version 1")
    if header.version != COMPACTED_LOG_VERSION and not names_a_base:
        layout = _Layout(header_end, header.version, chain=chain)
    else:
        end = header_end + header.base_bytes
        if header.base_seq < 1 or header.base_bytes < 2 or os.pread(fd, 1, end - 1) != b"\n":
            raise _corruption(
                path,
                2,
                f"is not the base snapshot that the header announces ({header.base_bytes} "
                f"bytes that fold the records up to seq {header.base_seq}; a compacted log is "
                f"written whole, so the file was cut or changed since)",
            )
        layout = _Layout(
            end, header.version, header.base_seq, header_end, header.base_sha256, chain
        )
    if not layout.checksums:
        _check_unsealed(path, fd, layout)
    return layout


def _check_unsealed(path: Path, fd: int, layout: _Layout) -> None:
    """Refuse a log whose header says "no checksums" when its first record has one:
    the header was changed (a version 3 log read as version 1 would go unchecked)."""
    head = os.pread(fd, _PROBE_BYTES, layout.records_start)
    newline = head.find(b"\n")
    if newline >= 0 and line_crc(head[: newline + 1]) is not None:
        number = 3 if layout.base_seq else 2
        raise _corruption(
            path,
            number,
            f"carries a checksum, but the header says format version {layout.version}, whose "
            f"records have none: the header was changed",
        )


def _not_a_log(path: Path, first_line: bytes) -> str:
    shown = first_line[:80].decode("utf-8", "replace")
    more = "..." if len(first_line) > 80 else ""
    return (
        f"{path} is not a chronolog log (first line {shown!r}{more}; a log starts with "
        f"{_HEADER.rstrip().decode()}); check the path"
    )


def _layout(path: Path, fd: int, limit: int | None) -> _Layout | None:
    """The layout of a valid log file; None while its header is incomplete."""
    size = _PROBE_BYTES if limit is None else min(_PROBE_BYTES, limit)
    head = os.pread(fd, size, 0)
    newline = head.find(b"\n")
    if newline < 0:
        if _HEADER.startswith(head):
            return None  # empty, or a header still being written
        raise LogCorrupted(_not_a_log(path, head))
    return _layout_after(path, fd, _check_header(path, head[:newline]), newline + 1)


def _last_seq_in(path: Path, fd: int, size: int) -> int:
    """The seq of the last complete record before ``size``: the base's seq if
    there is none after the base, 0 if there is neither."""
    layout = _layout(path, fd, size)
    if layout is None:
        return 0
    header_end = layout.records_start
    end = _end_of_last_batch(path, fd, _rfind_newline(fd, size) + 1, header_end)
    if end <= header_end:
        return layout.base_seq
    seq = _last_record(path, fd, end).seq
    if seq <= 0:
        start = _rfind_newline(fd, end - 1) + 1
        raise _corruption(
            path, _line_number(fd, start), f"(the last one) has seq {seq}; seqs start at 1"
        )
    return seq


def _encode_batch(records: list[Event], running: int) -> tuple[bytes, int]:
    """A batch as lines, each sealed with its checksum; and the running checksum after it.

    Every line but the last starts with a space. The space is the file's
    batch framing: JSON allows leading whitespace, so every line still
    decodes as a record (and the records carry no framing field), yet a
    reader can tell a whole batch from one whose last line a crash never
    wrote -- which keeps appends atomic. The checksum covers the space too.
    """
    buffer = bytearray()
    last = len(records) - 1
    for index, record in enumerate(records):
        start = len(buffer)
        if index < last:
            buffer += b" "
        encode_record_into(record, buffer)
        del buffer[-1]  # the closing brace: the checksum is the object's last field
        tail, running = seal(bytes(buffer[start:]), running)
        buffer += tail
    return bytes(buffer), running


def encode_sealed(records: list[Event]) -> bytes:
    """A version 3 log file's content holding ``records``, each a batch of its own.

    For tools and tests that write a log without a writer (the benchmarks):
    the header, then the records with their checksum chain.
    """
    data, _ = seal_records(records, 0)
    return _HEADER + data


def seal_records(records: Iterable[Event], running: int) -> tuple[bytes, int]:
    """``records`` as version 3 lines, each a batch of its own, going on from the
    running checksum ``running``; and the running checksum after them. Write
    `encode_sealed`'s header first, then these, chunk after chunk."""
    buffer = bytearray()
    for record in records:
        start = len(buffer)
        encode_record_into(record, buffer)
        del buffer[-1]
        tail, running = seal(bytes(buffer[start:]), running)
        buffer += tail
    return bytes(buffer), running


def _inspect(path: Path, fd: int, size: int) -> tuple[_Layout | None, int]:
    """The layout of a non-empty log file, and where its last whole batch ends.

    Bytes after that are a torn tail -- a write a crash interrupted -- as
    long as they look like one: a last line without its newline, and before
    it complete lines of a batch whose last line never landed. In a log with
    checksums those complete lines must match theirs (a crash cuts lines
    short, it does not change them); one that does not is damage.
    """
    head = os.pread(fd, _PROBE_BYTES, 0)
    newline = head.find(b"\n")
    if newline < 0:
        if not any(header.startswith(head) for header in _HEADERS):
            raise LogCorrupted(_not_a_log(path, head))
        return None, 0  # a header cut short by a crash: a torn tail at offset 0
    layout = _layout_after(path, fd, _check_header(path, head[:newline]), newline + 1)
    complete = size if os.pread(fd, 1, size - 1) == b"\n" else _rfind_newline(fd, size) + 1
    keep = _end_of_last_batch(path, fd, complete, layout.records_start)
    if layout.checksums and keep < complete:
        running = _running_at(path, fd, keep, layout)
        position = keep
        for line in _pread_exact(fd, complete - keep, keep).split(b"\n")[:-1]:
            whole = line + b"\n"
            crc = line_crc(whole)
            if crc is None or zlib.crc32(whole[:-TAIL_BYTES], running) != crc:
                raise _corruption(
                    path,
                    _line_number(fd, position),
                    "begins with a space, as the lines of a batch still being written do, "
                    "but it does not match its checksum: a crash cuts lines short, it does "
                    "not change them, so this is damage, not a torn write",
                )
            running = zlib.crc32(whole[-TAIL_BYTES:], crc)
            position += len(whole)
    return layout, keep


def _running_at(path: Path, fd: int, offset: int, layout: _Layout | None) -> int:
    """The running checksum at ``offset``, a line start at or after the first record."""
    if layout is None or not layout.checksums:
        return 0
    if offset <= layout.records_start:
        return layout.chain
    start = _rfind_newline(fd, offset - 1) + 1
    line = _pread_exact(fd, offset - start, start)
    running = running_after(line)
    if running is None:
        raise _corruption(
            path,
            _line_number(fd, start),
            "carries no checksum, but the header says its records all have one",
        )
    return running


def _check_before_upgrade(path: Path, fd: int, layout: _Layout, end: int) -> None:
    """Read a log of an older format up to ``end`` and check every rule: it is
    about to be rewritten with checksums, which would vouch for what it says."""
    checker = Checker()
    if layout.base_seq:
        checker.start_from(_base_state(path, fd, layout, DEFAULT_HISTORY_LIMIT))
    cursor = _Cursor(path, fd)
    for batch in cursor.batches(0, end):
        for record in batch:
            checker.check(record)
            if checker.violations:
                raise refusal(str(path), checker.violations[0], upgrading=layout.version)


def _write_upgraded(old_fd: int, new_fd: int, layout: _Layout, size: int) -> None:
    """Write the version 3 form of the old file's content (up to ``size``) to ``new_fd``."""
    if layout.base_seq:
        base = _pread_exact(old_fd, layout.records_start - layout.base_start, layout.base_start)
        header = encode_header(checksums=True, base_seq=layout.base_seq, base=base)
        _write_all(new_fd, header + base)
    else:
        _write_all(new_fd, _HEADER)
    running = 0
    position = layout.records_start
    pending = b""
    while position < size:
        chunk = os.pread(old_fd, min(_COPY_BYTES, size - position), position)
        if not chunk:
            raise OSError(errno.EIO, f"the log ended at byte {position} while it was copied")
        position += len(chunk)
        data = pending + chunk
        cut = data.rfind(b"\n") + 1
        pending = data[cut:]
        buffer = bytearray()
        for line in data[:cut].split(b"\n")[:-1]:
            start = len(buffer)
            if line.startswith(b" "):
                buffer += b" "
            encode_record_into(decode_event(line), buffer)
            del buffer[-1]
            tail, running = seal(bytes(buffer[start:]), running)
            buffer += tail
        _write_all(new_fd, bytes(buffer))


def _base_state(path: Path, fd: int, layout: _Layout | None, history_limit: int) -> State:
    """The State the records of a log file fold onto: its base snapshot, or nothing."""
    if layout is None or layout.base_seq == 0:
        return State(history_limit=history_limit)
    length = layout.records_start - layout.base_start
    line = _pread_exact(fd, length, layout.base_start)
    if hashlib.sha256(line).hexdigest() != layout.base_sha256:
        raise _corruption(
            path,
            2,
            "(the base snapshot of this compacted log) does not match its checksum in the header",
        )
    return base_from_snapshot(line[:-1], history_limit=history_limit, where=str(path))


def _real_path(path: Path, fd: int) -> Path:
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


def _mib(size: int) -> str:
    return f"{size / 2**20:.1f} MiB"


def _last_record(path: Path, fd: int, end: int) -> Event:
    """Decode the complete line that ends at ``end`` (just past its newline)."""
    start = _rfind_newline(fd, end - 1) + 1
    line = _pread_exact(fd, end - 1 - start, start)
    try:
        return decode_event(line)
    except msgspec.DecodeError as exc:
        where = "the last one" if end >= os.fstat(fd).st_size else "near the end"
        raise _corruption(
            path, _line_number(fd, start), f"({where}) is not a valid record: {exc}"
        ) from exc


def _end_of_last_batch(path: Path, fd: int, end: int, header_end: int) -> int:
    """Where the last whole batch among the complete lines before ``end`` ends.

    Walks back over lines that begin with a space: they belong to a batch
    whose last record is missing. Returns ``header_end`` if no whole batch
    remains.
    """
    while end > header_end:
        start = _rfind_newline(fd, end - 1) + 1
        if os.pread(fd, 1, start) != b" ":
            break
        end = start
    return max(end, header_end)


def _seq_problem(seq: int, previous: int, offset: int, fd: int) -> str | None:
    """What is wrong with a record's ``seq`` after one with ``previous``; None if nothing."""
    if seq == previous + 1:
        return None
    if seq <= previous:
        return (
            f"has seq {seq}, but seqs must strictly increase: expected seq {previous + 1} "
            f"after seq {previous}"
        )
    before = _line_number(fd, offset) - 1
    missing = f"seq {previous + 1}" if seq == previous + 2 else f"seqs {previous + 1} to {seq - 1}"
    return (
        f"has seq {seq}, but the record before it (line {before}) has seq {previous}: the "
        f"record{'s' if seq > previous + 2 else ''} with {missing} "
        f"{'are' if seq > previous + 2 else 'is'} missing"
    )


def _checksum_problem(line: bytes, running: int) -> tuple[str | None, int]:
    """Check one line (no newline) against the chain; (problem or None, running after it)."""
    whole = line + b"\n"
    crc = line_crc(whole)
    if crc is None:
        return "carries no checksum, but the header says its records all have one", running
    computed = zlib.crc32(whole[:-TAIL_BYTES], running)
    if computed != crc:
        return (
            f"does not match its checksum (it carries {crc:08x}; its content and the lines "
            f"before it give {computed:08x}): it was changed after it was written, or a line "
            f"before it was removed, added or moved",
            running,
        )
    return None, zlib.crc32(whole[-TAIL_BYTES:], crc)


def _corruption(path: Path, line_number: int, problem: str) -> LogCorrupted:
    return LogCorrupted(
        f"{path} line {line_number} {problem}. The log is damaged there; lines 1 to "
        f"{line_number - 1} are intact: restore the log from a backup, or keep those lines "
        f"and move the rest aside (see {RECOVERY_GUIDE})"
    )


def _line_number(fd: int, offset: int) -> int:
    """The 1-based number of the line that starts at ``offset``."""
    newlines = 0
    position = 0
    while position < offset:
        chunk = os.pread(fd, min(CHUNK_BYTES, offset - position), position)
        if not chunk:
            break
        newlines += chunk.count(b"\n")
        position += len(chunk)
    return newlines + 1


def _rfind_newline(fd: int, end: int) -> int:
    """Offset of the last ``\\n`` before ``end``, or -1."""
    position = end
    # A line is rarely longer than a small probe: look there first.
    probe = _SMALL_PROBE_BYTES
    while position > 0:
        size = min(probe, position)
        position -= size
        newline = os.pread(fd, size, position).rfind(b"\n")
        if newline >= 0:
            return position + newline
        probe = _PROBE_BYTES
    return -1


def _pread_exact(fd: int, size: int, offset: int) -> bytes:
    pieces = []
    while size > 0:
        piece = os.pread(fd, size, offset)
        if not piece:
            break
        pieces.append(piece)
        size -= len(piece)
        offset += len(piece)
    return b"".join(pieces)


def _write_all(fd: int, data: bytes) -> None:
    """``os.write`` until all of ``data`` is written (writes may be short)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written <= 0:
            raise OSError(errno.EIO, "write() wrote nothing")
        view = view[written:]


def _replaced(path: Path, fd: int) -> bool:
    """Whether ``path`` names another file than ``fd`` now (a compaction renamed one in)."""
    try:
        current = os.stat(path)
    except OSError:
        return False
    opened = os.fstat(fd)
    return (current.st_ino, current.st_dev) != (opened.st_ino, opened.st_dev)


def _locate(path: Path, fd: int, seq: int, limit: int) -> tuple[int, int] | None:
    """The offsets ``(start, end)`` of the line of the record with ``seq``, or None.

    Bisects to the neighbourhood by byte offset (as ``read(after_seq)``),
    then reads the seqs of the lines from there: a few reads, however long
    the log.
    """
    cursor = _Cursor(path, fd)
    layout = _layout(path, fd, limit)
    if layout is None:
        return None
    cursor.offset = layout.records_start
    cursor._skip_towards(seq - 1, limit)
    position = cursor.offset
    pending = b""
    while position < limit:
        chunk = os.pread(fd, min(CHUNK_BYTES, limit - position), position)
        if not chunk:
            return None
        data = pending + chunk
        start = position - len(pending)
        position += len(chunk)
        line_start = 0
        while (newline := data.find(b"\n", line_start)) >= 0:
            try:
                found = _seq_decoder.decode(data[line_start:newline]).seq
            except msgspec.DecodeError:
                return None
            if found == seq:
                return start + line_start, start + newline + 1
            if found > seq:
                return None
            line_start = newline + 1
        pending = data[line_start:]
    return None


def _snapshot_mismatch(
    snapshot_path: Path, fd: int, head: _SnapshotHead, limit: int | None
) -> str | None:
    """Why the snapshot with ``head`` does not apply to the log in ``fd``; None if it does."""
    size = limit if limit is not None else os.fstat(fd).st_size
    if head.log + ".snapshot" != snapshot_path.name:
        return f"it was saved for log {head.log!r}"
    if not 0 <= head.record_start < head.record_end <= size:
        return (
            f"its record at seq {head.seq} ends at byte {head.record_end}, past the end of the "
            f"log ({size} bytes): the log was cut or replaced since"
        )
    line = _pread_exact(fd, head.record_end - head.record_start, head.record_start)
    head_bytes = _pread_exact(fd, min(_HEAD_BYTES, head.record_end), 0)
    if (
        hashlib.sha256(line).hexdigest() != head.record_sha256
        or hashlib.sha256(head_bytes).hexdigest() != head.head_sha256
    ):
        return (
            f"its record at seq {head.seq} is not in the log where it was: the snapshot "
            f"belongs to another log, or to this one before it was rewritten"
        )
    return None


def _replace_file(path: Path, content: bytes) -> None:
    """Make ``content`` the file at ``path`` atomically and durably.

    Written beside (``<path>.tmp``), fsynced, renamed over ``path``, and the
    directory fsynced: a crash leaves the old file or the new one.
    """
    temporary = path.with_name(path.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, _LOG_FILE_MODE)
    try:
        try:
            _write_all(fd, content)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    fsync_directory(path.parent)


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
