"""What `FileLog` and `SQLiteLog` share: a log in one local file, one writer process.

A writer opens the log with `LocalLog.open` (or ``async with``), which takes
the writer lock on the file itself (see ``_lock``); reading needs no
opening, from any thread or process, also while a writer in another process
appends. While this object writes, `last_seq` and `base_seq` are known
without I/O; otherwise each call reads them from the file.

A snapshot or a compaction is encoded in a worker thread first, then stored
under the write lock, so it falls between two batches and never holds up
appends for the encoding. Followers are woken at once by appends through
this object, and poll for those of another process.
"""

from __future__ import annotations

import abc
import itertools
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Self

import trio

from .._errors import LogClosed
from .._snapshot import encode_state
from ._base import SequencedLog, check_snapshot_point
from ._lock import holder_of, lock_path_of

if TYPE_CHECKING:
    import os
    from collections.abc import Iterator

    from .._events import Event
    from .._projection import State

__all__ = ["LocalLog"]


class LocalLog(SequencedLog):
    """A log in one local file, written by one process under the writer lock."""

    _kind: ClassVar[str]
    """The backend's name as users write it: in reprs, and in messages that say
    how to open the log."""

    def __init__(self, path: str | os.PathLike[str], *, poll_interval: timedelta) -> None:
        super().__init__()
        if poll_interval <= timedelta(0):
            raise ValueError(f"poll_interval must be a positive duration, got {poll_interval!r}")
        self._path = Path(path)
        self._poll_seconds = poll_interval.total_seconds()
        # While open for writing: the seq a compaction folded into the base.
        self._base_seq = 0

    def __repr__(self) -> str:
        return f"{self._kind}({str(self._path)!r})"

    @property
    def path(self) -> Path:
        """The file that holds the log (for a `SQLiteLog`, the database file)."""
        return self._path

    @property
    def lock_path(self) -> Path:
        """The sidecar file that names the writer: ``<log>.lock``, beside the
        log's real path (symlinks resolved)."""
        return lock_path_of(self._path)

    @property
    @abc.abstractmethod
    def is_open(self) -> bool:
        """Whether this object holds the log open for writing (and its lock)."""

    def writer(self) -> str | None:
        """Who holds this log open for writing, as a phrase (``process 42 on host
        web-1``); None when nobody does. Read only: it takes no lock."""
        return holder_of(self._path)

    @property
    def last_seq(self) -> int:
        """The seq of the last record (0 for an empty log).

        While this object has the log open for writing, this is known without
        I/O; otherwise it is read from the file at each call.
        """
        if self.is_open:
            return self._last_seq
        return self._stored_last_seq()

    @property
    def base_seq(self) -> int:
        """The seq of the last record folded into the base by a compaction (0 if none)."""
        if self.is_open:
            return self._base_seq
        return self._stored_base_seq()

    # -- writing ----------------------------------------------------------

    async def open(self) -> Self:
        """Open the log for writing (see the class docstring) and return it.

        Raises `LogLocked` if another writer holds the file (under any of its
        names), and `LogCorrupted` if the file is not a chronolog log, was
        written by a newer format, or is damaged where a writer goes on from;
        nothing is written to such a file. A log of format version 1 or 2 (no
        checksums) is checked against every rule first (`LogCorrupted` if it
        breaks one), and upgraded to version 3 just before the first write
        (append, snapshot or compaction), so an open that writes nothing
        changes nothing.
        """
        if self._closed:
            raise LogClosed(
                f"{self!r} was closed; create a new {self._kind} to open the file again"
            )
        if self.is_open:
            raise RuntimeError(f"{self!r} is already open for writing")
        await self._open_for_writing()
        return self

    async def __aenter__(self) -> Self:
        # ``log = await FileLog(path).open()`` then ``async with log:`` is fine too.
        if self.is_open:
            await trio.lowlevel.checkpoint()
            return self
        return await self.open()

    def _check_writable(self) -> None:
        super()._check_writable()
        if not self.is_open:
            raise LogClosed(
                f"{self!r} is not open for writing: use `async with {self._kind}(...) as log` "
                f"or `await log.open()` before appending"
            )

    async def save_snapshot(self, state: State, seq: int | None = None) -> None:
        """Keep ``state`` for `load_state`; see `EventLog.save_snapshot`.

        The log must be open for writing: the snapshot belongs to the writer.
        It replaces the previous one atomically.
        """
        point = check_snapshot_point(self, state, seq)
        self._check_writable()
        document = await trio.to_thread.run_sync(encode_state, state.copy())
        async with self._write_lock:
            self._check_writable()
            await trio.to_thread.run_sync(self._store_snapshot, point, document)

    async def compact(self, state: State) -> None:
        """Make ``state`` the base and drop the records it folds; see `EventLog.compact`.

        Atomic: a crash at any moment leaves the old log or the new one.
        Appends wait while it runs.
        """
        self._check_writable()
        document = await trio.to_thread.run_sync(encode_state, state.copy())
        async with self._write_lock:
            self._check_writable()
            await trio.to_thread.run_sync(self._store_base, state.seq, document)

    @abc.abstractmethod
    async def _open_for_writing(self) -> None:
        """Take the lock, check the file and learn where the log ends."""

    @abc.abstractmethod
    def _store_snapshot(self, seq: int, document: bytes) -> None:
        """Store the encoded State of the records up to ``seq`` as the snapshot
        (worker thread, write lock held)."""

    @abc.abstractmethod
    def _store_base(self, seq: int, document: bytes) -> None:
        """Make the encoded State of the records up to ``seq`` the base, dropping
        those records (worker thread, write lock held)."""

    # -- reading ----------------------------------------------------------

    def read(self, after_seq: int = 0) -> Iterator[Event]:
        """Yield the records with ``seq > after_seq``, in order.

        Needs no lock, no opening and no Trio, and never yields a record of a
        batch whose append has not returned. Raises `LogCorrupted` at a
        damaged record, after yielding every record before it.
        """
        # chain() walks each list in C: replay of a large log pays no Python
        # generator step per record.
        return itertools.chain.from_iterable(self._read_batches(after_seq))

    async def _wait_for_appends(self, appended: trio.Event, *, writing: bool) -> None:
        """Wait for ``appended``: set by the next append through this object (or its
        close). While this object is not the writer, another process may be:
        then look again after ``poll_interval`` at the latest."""
        if writing:
            await appended.wait()
        else:
            with trio.move_on_after(self._poll_seconds):
                await appended.wait()

    @abc.abstractmethod
    def _read_batches(self, after_seq: int) -> Iterator[list[Event]]:
        """The records with ``seq > after_seq`` as they are read, a list at a time."""

    @abc.abstractmethod
    def _stored_last_seq(self) -> int:
        """`last_seq`, read from the file."""

    @abc.abstractmethod
    def _stored_base_seq(self) -> int:
        """`base_seq`, read from the file."""
