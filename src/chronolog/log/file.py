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

This module holds the `FileLog` object: its state while writing and how
readers share the file with it. Each concept of the file lives in a private
module of its own: the bytes (``_file_format``), reading them
(``_file_cursor``), the end of the file and its repair (``_file_tail``),
opening for writing (``_file_open``), snapshots (``_file_snapshot``),
rewrites (``_file_rewrite``) and the system calls (``_file_io``).
"""

from __future__ import annotations

import itertools
import logging
import os
import time
from datetime import timedelta
from typing import TYPE_CHECKING

import trio

from .._errors import LogClosed
from .._events import FORMAT_VERSION
from .._projection import DEFAULT_HISTORY_LIMIT, State, fold_into
from .._strict import fold_strictly
from ._base import FOLLOW_CHECKPOINT_EVERY
from ._file_cursor import Cursor, locate
from ._file_format import encode_batch, encode_sealed, read_layout, seal_records
from ._file_io import line_number, open_for_reading, replace_file, replaced, write_all
from ._file_open import open_for_writing
from ._file_rewrite import compacted, upgraded
from ._file_snapshot import snapshot_file, stored_base, usable_snapshot
from ._file_tail import TornTail, inspect_tail, last_seq_in, report_repair, running_at
from ._local import LocalLog
from ._lock import release_lock, sidecar_of
from ._os import fsync_directory, os_error

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Iterator
    from pathlib import Path

    from .._events import Event
    from ._file_format import Layout
    from ._lock import WriterLock

__all__ = ["FileLog", "TornTail", "encode_sealed", "seal_records"]

logger = logging.getLogger("chronolog.log")


class FileLog(LocalLog):
    """An event log in one JSON Lines file, for one writer process.

    ``async with FileLog(path) as log:`` opens it for writing: it creates the
    file (with its header) if needed, takes the lock, repairs a torn final
    line (with a `LogRepaired` warning), and learns `last_seq`. Reading needs
    no opening: ``FileLog(path).read()`` works from any thread or process,
    also while a scheduler writes the file.

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

    _kind = "FileLog"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        fsync: bool = True,
        poll_interval: timedelta = timedelta(milliseconds=200),
    ) -> None:
        super().__init__(path, poll_interval=poll_interval)
        self._fsync = fsync
        self._fd: int | None = None
        self._lock: WriterLock | None = None
        # While open for writing: where the file really is (symlinks resolved:
        # compaction renames over this one), and the running checksum at the
        # end of the last appended batch.
        self._real_path = self._path
        self._running = 0
        # The layout of a log of format version 1 or 2 opened for writing: it
        # is upgraded before its first write.
        self._legacy: Layout | None = None
        # Size of the file up to the end of the last appended batch: what this
        # object's own readers may read (never a batch still being written).
        self._size = 0
        # Set when a failed write could not be undone; appends then stop.
        self._write_failure: str | None = None
        # How many times a rewrite replaced the file this object writes:
        # odd while the descriptor and size change (followers reopen the file).
        self._generation = 0

    @property
    def snapshot_path(self) -> Path:
        """The sidecar file that holds the log's snapshot: ``<log>.snapshot``,
        beside the log's real path (symlinks resolved)."""
        return sidecar_of(self._path, ".snapshot")

    @property
    def fsync(self) -> bool:
        """Whether each append waits for its batch to reach the disk."""
        return self._fsync

    @property
    def format_version(self) -> int | None:
        """The format version in the file's header (None while it has none yet).

        3: records carry checksums. 1 and 2 (no checksums) are read as they
        are; the first write upgrades them.
        """
        fd = open_for_reading(self._path)
        try:
            layout = read_layout(self._path, fd, self._limit_for(fd))
        finally:
            os.close(fd)
        return layout.version if layout is not None else None

    def torn_tail(self) -> TornTail | None:
        """The bytes after the last whole batch, if the file ends with any; else None.

        Read only: a torn tail is what a crash in the middle of an append
        leaves (the next writer moves it aside when it opens the log), or a
        batch another process is writing right now. `chronolog verify` reports it.
        """
        fd = open_for_reading(self._path)
        try:
            size = os.fstat(fd).st_size
            if size == 0:
                return None
            _, keep = inspect_tail(self._path, fd, size)
            if keep >= size:
                return None
            return TornTail(keep, size - keep, line_number(fd, keep))
        finally:
            os.close(fd)

    @property
    def is_open(self) -> bool:
        return self._fd is not None

    def _stored_last_seq(self) -> int:
        fd = open_for_reading(self._path)
        try:
            return last_seq_in(self._path, fd, os.fstat(fd).st_size)
        finally:
            os.close(fd)

    def _stored_base_seq(self) -> int:
        fd = open_for_reading(self._path)
        try:
            layout = read_layout(self._path, fd, None)
        finally:
            os.close(fd)
        return layout.base_seq if layout is not None else 0

    # -- writing ----------------------------------------------------------

    async def _open_for_writing(self) -> None:
        """Open the file in a worker thread (see ``_file_open``); warn with
        `LogRepaired` when a torn final line was cut off."""
        opened = await trio.to_thread.run_sync(open_for_writing, self._path)
        self._fd, self._lock, self._size = opened.fd, opened.lock, opened.size
        self._last_seq, self._running = opened.last_seq, opened.running
        self._base_seq, self._real_path = opened.base_seq, opened.real_path
        self._legacy = opened.legacy
        if opened.repair is not None:
            try:
                # Aimed at the code that opened the log: past this method and `open`.
                report_repair(self._path, opened.repair, stacklevel=3)
            except BaseException:
                # Warnings may be errors: then the caller never gets the log, so
                # it must not keep holding the lock.
                self._close_files()
                raise

    async def _write(self, records: list[Event]) -> None:
        # The whole write path: one encode, one write + fsync in a worker
        # thread. A group-commit layer or a simulated clock wraps this.
        if self._legacy is not None:
            await trio.to_thread.run_sync(self._upgrade_now)
        data, running = encode_batch(records, self._running)
        self._size = await trio.to_thread.run_sync(self._write_batch, data)
        self._running = running

    def _write_batch(self, data: bytes) -> int:
        """Write one encoded batch and fsync it; return the new file size."""
        fd = self._fd
        assert fd is not None
        start = self._size
        try:
            write_all(fd, data)
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

    # -- rewrites, snapshots (worker thread, write lock held) ------------------

    def _upgrade_if_legacy(self) -> None:
        """Rewrite this log of format version 1 or 2 as version 3 before its first
        write: the same records, each with its checksum, in the same batches
        (checked against every rule at open). A failure (a full disk) leaves
        the log as it was and says so; the next write tries again."""
        if self._legacy is not None:
            self._upgrade_now()

    def _upgrade_now(self) -> None:
        layout, old_fd = self._legacy, self._fd
        assert layout is not None
        assert old_fd is not None
        new_fd, size = upgraded(self._path, self._real_path, old_fd, self._size, layout)
        self._legacy = None
        self._take_file(old_fd, new_fd, size, self._base_seq)
        self._running = running_at(self._path, new_fd, size, read_layout(self._path, new_fd, size))
        logger.info(
            "upgraded log %s from format version %d to %d: its records carry checksums now",
            self._path,
            layout.version,
            FORMAT_VERSION,
        )
        self._fsync_directory_after(f"upgraded log {self._path} to format version 3")

    def _store_snapshot(self, seq: int, document: bytes) -> None:
        """Write the snapshot file, replaced atomically: written beside, fsynced,
        renamed over the old one, and the directory fsynced."""
        self._upgrade_if_legacy()
        fd = self._fd
        assert fd is not None
        try:
            record = self._line_of(
                seq,
                f"cannot save a snapshot at seq {seq} of {self._path}",
                "; fold the log with load_state() and save that state",
            )
            content = snapshot_file(self._real_path.name, fd, seq, record, document)
            replace_file(self.snapshot_path, content)
        except OSError as exc:
            raise os_error(exc, f"could not save a snapshot of log {self._path}") from exc

    def _store_base(self, seq: int, document: bytes) -> None:
        """Rewrite the log as ``document`` (its base) plus the records after ``seq``
        (see ``_file_rewrite``); the snapshot file is removed first."""
        self._upgrade_if_legacy()
        old_fd = self._fd
        assert old_fd is not None
        if seq == self._base_seq:
            return
        record = self._line_of(seq, f"cannot compact {self._path} up to seq {seq}")
        new_fd, size = compacted(
            self._path,
            self._real_path,
            self.snapshot_path,
            old_fd,
            self._size,
            document,
            seq,
            record,
        )
        self._take_file(old_fd, new_fd, size, seq)
        self._fsync_directory_after(f"compacted log {self._path}")

    def _line_of(self, seq: int, what: str, advice: str = "") -> tuple[int, int]:
        """The offsets of the line of the record with ``seq``; ``ValueError`` saying
        ``what`` cannot be done when no such record follows the base."""
        assert self._fd is not None
        found = locate(self._path, self._fd, seq, self._size) if seq > self._base_seq else None
        if found is None:
            raise ValueError(
                f"{what}: no record with that seq is stored after the base at seq "
                f"{self._base_seq} (the last is seq {self._last_seq}){advice}"
            )
        return found

    def _take_file(self, old_fd: int, new_fd: int, size: int, base_seq: int) -> None:
        """Append to the file a rewrite renamed in, whatever happens next.

        The generation is odd while the descriptor and size change, so a
        reader never pairs one file's descriptor with the other's size.
        """
        self._generation += 1
        self._fd, self._size, self._base_seq = new_fd, size, base_seq
        self._generation += 1
        os.close(old_fd)  # and with it, the lock on the old file

    def _fsync_directory_after(self, done: str) -> None:
        """Make the rename of a rewrite durable; ``done`` says what was done."""
        try:
            fsync_directory(self._real_path.parent)
        except OSError as exc:
            raise os_error(
                exc,
                f"{done}, but could not fsync its directory",
                "a crash of the machine now may bring back the log as it was before",
            ) from exc

    # -- reading ----------------------------------------------------------

    def base_state(self, *, history_limit: int = DEFAULT_HISTORY_LIMIT) -> State:
        fd = open_for_reading(self._path)
        try:
            layout = read_layout(self._path, fd, self._limit_for(fd))
            return stored_base(self._path, fd, layout, history_limit)
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
        fd = open_for_reading(self._path)
        try:
            limit = self._limit_for(fd)
            layout = read_layout(self._path, fd, limit)
            if layout is None:
                return State(history_limit=history_limit)

            def start() -> tuple[State, Iterator[Event]]:
                found = usable_snapshot(
                    self._path, self.snapshot_path, fd, layout, history_limit, limit
                )
                if found is None:
                    state = stored_base(self._path, fd, layout, history_limit)
                    cursor = Cursor(self._path, fd)
                else:
                    state, offset = found
                    cursor = Cursor(self._path, fd, offset=offset, previous_seq=state.seq)
                return state, itertools.chain.from_iterable(cursor.batches(state.seq, limit))

            state, records = start()
            if not strict:
                return fold_into(state, records)
            return fold_strictly(state, records, recheck=start, where=str(self._path))
        finally:
            os.close(fd)

    def _read_batches(self, after_seq: int) -> Iterator[list[Event]]:
        # Whole batches of complete lines only: a batch still being written
        # (or torn by a crash) ends the iteration.
        fd = open_for_reading(self._path)
        try:
            yield from Cursor(self._path, fd).batches(after_seq, self._limit_for(fd))
        finally:
            os.close(fd)

    async def follow(self, after_seq: int = 0) -> AsyncGenerator[Event, None]:
        """Yield records as they land; see `EventLog.follow`.

        Appends through this object wake followers at once; appends by another
        process are seen within ``poll_interval``. Reads run in the event loop
        a chunk at a time, with a checkpoint between chunks.
        """
        fd = open_for_reading(self._path)
        generation = self._generation
        try:
            cursor = Cursor(self._path, fd)
            while True:
                appended = self._appended
                finished = self._finished
                writing = self._fd is not None
                if generation != self._generation or (not writing and replaced(self._path, fd)):
                    # Compacted: go on in the new file after the last record yielded.
                    os.close(fd)
                    fd = open_for_reading(self._path)
                    generation = self._generation
                    cursor = Cursor(self._path, fd)
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
                await self._wait_for_appends(appended, writing=writing)
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
