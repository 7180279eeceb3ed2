"""`SQLiteLog`: the event log in one SQLite database, in WAL mode.

Layout: the table ``chronolog_records`` holds one row per record -- ``seq``
(the primary key), ``record`` (the record as the same compact JSON that is
one line of a `FileLog`, without its checksum field), ``crc`` (the checksum
chain, see `chronolog.log._checksum`), and for ``Started`` rows
``claim_occurrence`` and ``claim_attempt``, under a unique index: the
database itself refuses a second claim of an attempt, whichever connection
writes it. ``chronolog_meta`` names the format, its record version and the
table layout version; opening checks them before anything is written.
``chronolog_snapshots``, created by the first snapshot, holds the newest
snapshot and the base of a compacted log (see ``_sqlite_schema``).

A writer takes an exclusive ``flock`` on the database file itself (see
``_lock``: every name of the file shares it) and appends each batch as one
transaction from a worker thread. SQLite keeps its write-ahead log beside
the *name* a database is opened by, so a database with a second name (a
hard link) is refused: two names would be two logs. Readers need neither
the lock nor Trio: they open their own read-only connection (see
``_sqlite_reader``), and WAL mode lets them read while a writer in another
process commits. A database of record version 1 or 2 (schema 1, no
checksums) is read as it is, and upgraded when opened for writing.

Errors: content that is not a chronolog log, or a damaged database, raises
`LogCorrupted`; problems of the environment (missing directory, permissions,
a full disk) raise ``OSError`` of the usual subclass with a message naming
the log and the original error as ``__cause__`` (see ``_sqlite_connection``).
"""

from __future__ import annotations

import errno
import hashlib
import itertools
import logging
import os
import sqlite3
from datetime import timedelta
from typing import TYPE_CHECKING, Literal

import trio

from .._errors import ClaimConflict, LogLocked
from .._events import FORMAT_VERSION, Started, encode_event
from .._invariants import Checker
from .._projection import DEFAULT_HISTORY_LIMIT, State, fold_into
from .._strict import fold_strictly, refusal
from ._base import newest_stored_state, stored_base
from ._checksum import chain_of_rows
from ._local import LocalLog
from ._lock import WriterLock, real_path_of, release_lock, take_lock_or_close
from ._os import LOG_FILE_MODE, check_directory_of, fsync_directory, os_error
from ._sqlite_connection import (
    SQLITE_SUFFIXES,
    check_one_name,
    connect_writer,
    sqlite_error,
    transaction,
    wait_for_locks,
)
from ._sqlite_reader import PAGE_ROWS, Reader
from ._sqlite_schema import (
    INSERT,
    SNAPSHOT_TABLE,
    Format,
    base_seq_of,
    check_format,
    create_tables,
    last_chain,
    upgrade,
)

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Iterator

    from .._events import Event

__all__ = ["SQLITE_SUFFIXES", "SQLiteLog"]

Synchronous = Literal["full", "normal"]

logger = logging.getLogger("chronolog.log")


class SQLiteLog(LocalLog):
    """An event log in one SQLite database (WAL mode), for one writer process.

    ``async with SQLiteLog(path) as log:`` opens it for writing: it creates
    the database (with its tables) if needed, takes the lock, checks the
    format, and learns `last_seq`. Reading needs no opening:
    ``SQLiteLog(path).read()`` works from any thread or process, also while
    a scheduler writes the database.

    Each append is one transaction. With ``synchronous="full"`` (the
    default) SQLite fsyncs the write-ahead log at every commit, so an append
    returns only once its batch is on disk: a crash of the machine loses no
    appended record. With ``synchronous="normal"`` a commit returns once the
    batch is in the operating system's cache: a crash of the process loses
    nothing, a crash of the machine may lose the last appends (never part of
    one: the database stays a valid prefix); ``aclose`` still flushes to disk
    once.

    ``poll_interval`` is how often `follow` looks for records appended by
    another process; records appended through this object wake followers at
    once.

    Snapshots live in the table ``chronolog_snapshots``; a compaction
    deletes the records it folds into the base, in one transaction.
    """

    _kind = "SQLiteLog"
    enforces_claims = True

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        synchronous: Synchronous = "full",
        poll_interval: timedelta = timedelta(milliseconds=200),
    ) -> None:
        if synchronous not in ("full", "normal"):
            raise ValueError(
                f"synchronous must be 'full' (each append on disk when it returns) or "
                f"'normal' (survives a crash of the process, not of the machine), "
                f"got {synchronous!r}"
            )
        super().__init__(path, poll_interval=poll_interval)
        self._synchronous: Synchronous = synchronous
        # Used from one worker thread at a time: appends are serialised by the
        # write lock, and opening and closing never overlap an append.
        self._connection: sqlite3.Connection | None = None
        # While open for writing: a descriptor of the database file that holds
        # the writer lock (closed only after the connection, see _release), the
        # sidecar that names the writer, and the checksum of the last row.
        self._lock_fd: int | None = None
        self._lock: WriterLock | None = None
        self._chain = 0
        # The version of a log of format version 1 or 2 opened for writing: it
        # is upgraded before its first write.
        self._legacy: int | None = None

    @property
    def is_open(self) -> bool:
        return self._connection is not None

    @property
    def synchronous(self) -> Synchronous:
        """``"full"`` or ``"normal"``: see the class docstring."""
        return self._synchronous

    @property
    def format_version(self) -> int | None:
        """The record format version in ``chronolog_meta`` (None before the
        tables exist). 3: rows carry checksums; 1 and 2 are read as they are,
        and the first write upgrades them."""
        with Reader(self._path) as reader:
            return reader.format_version()

    def _stored_last_seq(self) -> int:
        with Reader(self._path) as reader:
            return reader.last_seq()

    def _stored_base_seq(self) -> int:
        with Reader(self._path) as reader:
            return reader.snapshots()[0]

    # -- writing ----------------------------------------------------------

    async def _open_for_writing(self) -> None:
        connection, lock_fd, lock, last_seq, chain, legacy = await trio.to_thread.run_sync(
            self._open_database
        )
        self._connection, self._lock_fd, self._lock = connection, lock_fd, lock
        self._last_seq, self._chain, self._legacy = last_seq, chain, legacy
        self._base_seq = base_seq_of(connection)

    async def _write(self, records: list[Event]) -> None:
        self._chain = await trio.to_thread.run_sync(self._insert, records)

    def _insert(self, records: list[Event]) -> int:
        """Store ``records`` in one transaction (runs in a worker thread); return
        the checksum of the last row. Nothing of a failed batch stays."""
        connection = self._connection
        assert connection is not None
        if self._legacy is not None:
            self._upgrade_now(connection)
        rows = []
        chain = self._chain
        for record in records:
            encoded = encode_event(record)
            chain = chain_of_rows(encoded, chain)
            started = type(record) is Started
            rows.append(
                (
                    record.seq,
                    encoded.decode(),
                    record.occurrence if started else None,  # type: ignore[union-attr]
                    record.attempt if started else None,  # type: ignore[union-attr]
                    chain,
                )
            )
        try:
            with transaction(connection):
                connection.executemany(INSERT, rows)
        except sqlite3.IntegrityError as exc:
            raise self._refused(connection, records, exc) from exc
        except sqlite3.Error as exc:
            what = f"could not append to log {self._path}"
            raise sqlite_error(exc, self._path, what, "nothing of this batch was kept") from exc
        return chain

    def _refused(
        self, connection: sqlite3.Connection, records: list[Event], exc: sqlite3.IntegrityError
    ) -> Exception:
        """The error for a batch that broke a unique key: a taken claim, or a taken seq."""
        if exc.sqlite_errorname == "SQLITE_CONSTRAINT_PRIMARYKEY":
            return LogLocked(
                f"seq {records[0].seq} of {self._path} is already taken: another process "
                f"appended to the log without holding its lock ({self.lock_path}). Nothing "
                f"of this batch was written; stop the other writer, then reopen the log"
            )
        claimed: dict[tuple[str, int], int] = {}
        for record in records:
            if type(record) is not Started:
                continue
            key = (record.occurrence, record.attempt)
            row = connection.execute(
                "SELECT seq FROM chronolog_records "
                "WHERE claim_occurrence = ? AND claim_attempt = ?",
                key,
            ).fetchone()
            if row is not None:
                holder = f"the Started at seq {row[0]} holds it"
            elif key in claimed:
                holder = f"this batch claims it twice (seqs {claimed[key]} and {record.seq})"
            else:
                claimed[key] = record.seq
                continue
            return ClaimConflict(
                f"attempt {record.attempt} of occurrence {record.occurrence!r} of task "
                f"{record.task!r} is already claimed in {self._path}: {holder}. Nothing of "
                f"this batch of {len(records)} events was written; do not run it"
            )
        return ClaimConflict(
            f"{self._path} refused a batch of {len(records)} events: {exc}. Nothing of it "
            f"was written; do not run its runs"
        )

    async def _release(self) -> None:
        connection, lock_fd, lock = self._connection, self._lock_fd, self._lock
        self._connection = self._lock_fd = self._lock = None
        try:
            if connection is not None:
                await trio.to_thread.run_sync(self._finish, connection)
        finally:
            # After the connection: closing any descriptor of the database file
            # drops this process's POSIX locks on it, SQLite's included.
            _unlock(lock_fd, lock)
        await trio.lowlevel.checkpoint()

    def _finish(self, connection: sqlite3.Connection) -> None:
        """Flush what ``synchronous="normal"`` left in the cache, and close."""
        try:
            if self._synchronous == "normal":
                wal = self._path.with_name(self._path.name + "-wal")
                try:
                    fd = os.open(wal, os.O_RDONLY | os.O_CLOEXEC)
                except FileNotFoundError:
                    pass  # nothing was written since the last checkpoint
                else:
                    try:
                        os.fsync(fd)
                    finally:
                        os.close(fd)
        except OSError as exc:
            raise os_error(exc, f"could not flush log {self._path} on close") from exc
        finally:
            connection.close()

    # -- opening for writing (runs in a worker thread) ---------------------

    def _open_database(
        self,
    ) -> tuple[sqlite3.Connection, int, WriterLock, int, int, int | None]:
        check_directory_of(self._path)
        try:
            is_directory = self._path.is_dir()
        except OSError as exc:  # the directory may exist yet not be searchable
            raise os_error(exc, f"cannot open log {self._path} for writing") from exc
        if is_directory:
            raise IsADirectoryError(
                errno.EISDIR, f"cannot open log {self._path} for writing: it is a directory"
            )
        lock_fd, created = self._create_file()
        lock = take_lock_or_close(lock_fd, self._path, "SQLiteLog")
        try:
            check_one_name(self._path, os.fstat(lock_fd).st_nlink)
            real = real_path_of(self._path)
            connection = connect_writer(real, self._path)
            try:
                try:
                    last_seq, chain, legacy = self._prepare(connection)
                except sqlite3.Error as exc:
                    what = f"cannot open log {self._path} for writing"
                    raise sqlite_error(exc, self._path, what) from exc
                if created:
                    fsync_directory(real.parent)
            except BaseException:
                connection.close()
                raise
        except BaseException:
            _unlock(lock_fd, lock)
            raise
        return connection, lock_fd, lock, last_seq, chain, legacy

    def _create_file(self) -> tuple[int, bool]:
        """Open the database file, creating it private to its owner if needed.

        SQLite would create it too, but readable by everyone; an empty file is
        a valid empty database. Opening it here also checks that it can be
        written, so a permission problem gets a plain message, and gives the
        descriptor that holds the writer lock.
        """
        try:
            try:
                fd = os.open(
                    self._path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, LOG_FILE_MODE
                )
                return fd, True
            except FileExistsError:
                return os.open(self._path, os.O_RDWR | os.O_CLOEXEC), False
        except OSError as exc:
            raise os_error(exc, f"cannot open log {self._path} for writing") from exc

    def _prepare(self, connection: sqlite3.Connection) -> tuple[int, int, int | None]:
        """Check the format (creating the tables in an empty database); return the
        last seq, the checksum of the last row, and the version of a log of an
        older format (None if it is not one): it is upgraded before the first
        write, once it was checked against every rule here."""
        wait_for_locks(connection)
        # The checks read only: a file that is not a chronolog log is never
        # written, not even by switching its journal mode.
        form = check_format(connection, self._path)
        if form is not None and not form.checksums:
            self._check_before_upgrade(form)
        mode = connection.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode != "wal":
            raise OSError(
                errno.EINVAL,
                f"cannot open log {self._path} for writing: SQLite cannot use WAL mode "
                f"there (journal mode {mode!r}); keep SQLite logs on a local file system",
            )
        connection.execute(f"PRAGMA synchronous = {self._synchronous.upper()}")
        if form is None:
            create_tables(connection)
        (last,) = connection.execute("SELECT max(seq) FROM chronolog_records").fetchone()
        last_seq = max(int(last or 0), base_seq_of(connection))
        if form is not None and not form.checksums:
            return last_seq, 0, form.version
        return last_seq, last_chain(connection, last_seq), None

    def _upgrade_now(self, connection: sqlite3.Connection) -> None:
        """Give the rows of this log of format version 1 or 2 their checksums,
        before its first write (worker thread, write lock held)."""
        version = self._legacy
        assert version is not None
        try:
            upgrade(connection)
        except sqlite3.Error as exc:
            what = f"could not upgrade log {self._path} from format version {version} to 3"
            hint = f"the log is unchanged (version {version})"
            raise sqlite_error(exc, self._path, what, hint) from exc
        self._legacy = None
        self._chain = last_chain(connection, self._last_seq)
        logger.info(
            "upgraded log %s from format version %d to %d: its records carry checksums now",
            self._path,
            version,
            FORMAT_VERSION,
        )

    def _check_before_upgrade(self, form: Format) -> None:
        """Read a log of an older format and check every rule: it is about to get
        checksums, which would vouch for what it says."""
        with Reader(self._path) as reader:
            base_seq, base, _ = reader.snapshots()
            checker = Checker()
            if base_seq:
                checker.start_from(self._base_of(base_seq, base, DEFAULT_HISTORY_LIMIT))
            for page in reader.pages(base_seq, reader.last_seq()):
                for record in page:
                    checker.check(record)
                    if checker.violations:
                        violation = checker.violations[0]
                        raise refusal(str(self._path), violation, upgrading=form.version)

    # -- snapshots and compaction (worker thread, write lock held) -------------

    def _store_snapshot(self, seq: int, document: bytes) -> None:
        """Store the snapshot in ``chronolog_snapshots``: one transaction replaces
        the previous one (the base of a compacted log stays)."""
        self._store(seq, document, as_base=False)

    def _store_base(self, seq: int, document: bytes) -> None:
        """Make the snapshot the base and delete the records it folds, in one
        transaction. Then ``VACUUM`` gives the space back to the file system (if
        another connection keeps it from running, the space is reused by later
        appends instead). The claims of the deleted ``Started`` records go with
        them: the scheduler's projection still refuses them, the database no
        longer does."""
        self._store(seq, document, as_base=True)

    def _store(self, seq: int, document: bytes, *, as_base: bool) -> None:
        connection = self._connection
        assert connection is not None
        if self._legacy is not None:
            self._upgrade_now(connection)
        what = f"could not {'compact' if as_base else 'save a snapshot of'} log {self._path}"
        try:
            with transaction(connection):
                if as_base and seq == self._base_seq:
                    return
                row = connection.execute(
                    "SELECT CAST(record AS BLOB), crc FROM chronolog_records WHERE seq = ?", (seq,)
                ).fetchone()
                if row is None:
                    raise ValueError(
                        f"cannot {'compact' if as_base else 'save a snapshot of'} {self._path} "
                        f"at seq {seq}: no record with that seq is stored after the base at seq "
                        f"{self._base_seq} (the last is seq {self._last_seq})"
                    )
                connection.execute(SNAPSHOT_TABLE)
                if as_base:
                    connection.execute("DELETE FROM chronolog_snapshots WHERE seq < ?", (seq,))
                    connection.execute("DELETE FROM chronolog_records WHERE seq <= ?", (seq,))
                    # The records kept go on with the checksum chain of the one at seq.
                    connection.executemany(
                        "INSERT OR REPLACE INTO chronolog_meta (key, value) VALUES (?, ?)",
                        [("base_seq", seq), ("chain", int(row[1] or 0))],
                    )
                else:
                    connection.execute(
                        "DELETE FROM chronolog_snapshots WHERE seq != ?", (self._base_seq,)
                    )
                connection.execute(
                    "INSERT OR REPLACE INTO chronolog_snapshots (seq, record_sha256, state) "
                    "VALUES (?, ?, ?)",
                    (seq, hashlib.sha256(row[0]).hexdigest(), document),
                )
        except sqlite3.Error as exc:
            raise sqlite_error(exc, self._path, what, "the log is unchanged") from exc
        if as_base:
            self._base_seq = seq
            try:
                connection.execute("VACUUM")
            except sqlite3.Error as exc:
                logger.warning(
                    "compacted %s, but VACUUM could not run (%s): the space of the deleted "
                    "records will be reused by later appends",
                    self._path,
                    exc,
                )

    # -- reading ----------------------------------------------------------

    def base_state(self, *, history_limit: int = DEFAULT_HISTORY_LIMIT) -> State:
        with Reader(self._path) as reader:
            base_seq, base, _ = reader.snapshots()
        return self._base_of(base_seq, base, history_limit)

    def load_state(
        self, *, history_limit: int = DEFAULT_HISTORY_LIMIT, strict: bool = True
    ) -> State:
        """The newest snapshot plus the records after it; see `EventLog.load_state`.

        ``strict`` (the default) refuses records that break a rule of the log.
        """
        with Reader(self._path) as reader:
            limit = self._last_seq if self._connection is not None else reader.last_seq()

            def start() -> tuple[State, Iterator[Event]]:
                state = self._newest_state(reader, history_limit)
                return state, itertools.chain.from_iterable(reader.pages(state.seq, limit))

            state, records = start()
            if not strict:
                return fold_into(state, records)
            return fold_strictly(state, records, recheck=start, where=str(self._path))

    def _newest_state(self, reader: Reader, history_limit: int) -> State:
        """The newest usable snapshot, or else the base (or an empty State)."""
        return newest_stored_state(
            *reader.snapshots(), history_limit=history_limit, shown=str(self._path)
        )

    def _base_of(self, base_seq: int, base: bytes | None, history_limit: int) -> State:
        return stored_base(base_seq, base, history_limit=history_limit, shown=str(self._path))

    def _read_batches(self, after_seq: int) -> Iterator[list[Event]]:
        # Up to the last record there was when reading started (through the
        # object that is writing: the last one whose append returned).
        with Reader(self._path) as reader:
            limit = self._last_seq if self._connection is not None else reader.last_seq()
            yield from reader.pages(after_seq, limit)

    async def follow(self, after_seq: int = 0) -> AsyncGenerator[Event, None]:
        """Yield records as they land; see `EventLog.follow`.

        Appends through this object wake followers at once; appends by another
        process are seen within ``poll_interval``. Each page of rows is read
        in a worker thread.
        """
        reader = await trio.to_thread.run_sync(Reader, self._path)
        try:
            while True:
                appended = self._appended
                finished = self._finished
                writing = self._connection is not None
                limit = self._last_seq if writing else None
                page = await trio.to_thread.run_sync(reader.page, after_seq, limit)
                for record in page:
                    yield record
                if page:
                    after_seq = page[-1].seq
                if len(page) == PAGE_ROWS:
                    continue  # more may be there already
                if finished:
                    return
                await self._wait_for_appends(appended, writing=writing)
        finally:
            reader.close()


def _unlock(lock_fd: int | None, lock: WriterLock | None) -> None:
    """Give up the writer lock: the sidecar, then the descriptor that locks the database."""
    try:
        if lock is not None:
            release_lock(lock)
    finally:
        if lock_fd is not None:
            os.close(lock_fd)
