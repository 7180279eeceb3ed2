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
snapshot and the base of a compacted log.

A writer takes an exclusive ``flock`` on the database file itself (see
``_lock``: every name of the file shares it) and appends each batch as one
transaction from a worker thread. SQLite keeps its write-ahead log beside
the *name* a database is opened by, so a database with a second name (a
hard link) is refused: two names would be two logs. Readers need neither
the lock nor Trio: they open their own read-only connection, and WAL mode
lets them read while a writer in another process commits. A database of
record version 1 or 2 (schema 1, no checksums) is read as it is, and
upgraded when opened for writing.

Errors: content that is not a chronolog log, or a damaged database, raises
`LogCorrupted`; problems of the environment (missing directory, permissions,
a full disk) raise ``OSError`` of the usual subclass with a message naming
the log and the original error as ``__cause__``.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import itertools
import logging
import os
import sqlite3
import stat
from datetime import timedelta
from operator import attrgetter
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal, NamedTuple, Self

import msgspec
import trio

from .._errors import ClaimConflict, LogClosed, LogCorrupted, LogLocked
from .._events import (
    CHECKSUM_VERSION,
    FORMAT_NAME,
    FORMAT_VERSION,
    Started,
    decode_event,
    decode_lines,
    encode_event,
    encode_header,
)
from .._invariants import Checker
from .._projection import DEFAULT_HISTORY_LIMIT, State, fold_into
from .._snapshot import encode_state
from .._strict import RECOVERY_GUIDE, fold_strictly, refusal
from ._base import (
    SequencedLog,
    base_from_snapshot,
    check_snapshot_point,
    ignore_snapshot,
    state_from_snapshot,
)
from ._checksum import chain_of_rows, check_rows
from ._lock import (
    WriterLock,
    holder_of,
    lock_path_of,
    real_path_of,
    release_lock,
    take_lock,
)
from ._os import check_directory_of, fsync_directory, os_error

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Iterator

    from .._events import Event

__all__ = ["SQLITE_SUFFIXES", "SQLiteLog"]

#: File name suffixes that `open_scheduler` reads as "an SQLite log".
SQLITE_SUFFIXES: Final = (".sqlite", ".sqlite3", ".db")
#: The layout of the tables below; the records inside follow ``FORMAT_VERSION``.
#: 1: no checksums (record versions 1 and 2); 2: the ``crc`` column.
SCHEMA_VERSION: Final = 2

Synchronous = Literal["full", "normal"]

#: Rows fetched (and decoded) per query: big enough to decode fast, small
#: enough that a reader never holds a snapshot for long.
_PAGE_ROWS = 1024
#: How long a connection waits for a lock another connection holds briefly
#: (a checkpoint, the creation of the tables) before giving up.
_BUSY_TIMEOUT_MS = 5000
_LOG_FILE_MODE: Final = 0o600
#: How every `FileLog` header begins, whatever its version.
_FILE_LOG_HEADER: Final = encode_header()[: encode_header().index(b',"version"')]

_SCHEMA: Final = (
    "CREATE TABLE chronolog_meta (key TEXT PRIMARY KEY NOT NULL, value NOT NULL)",
    "CREATE TABLE chronolog_records ("
    " seq INTEGER PRIMARY KEY,"
    " record TEXT NOT NULL,"
    " claim_occurrence TEXT,"
    " claim_attempt INTEGER,"
    " crc INTEGER)",
    "CREATE UNIQUE INDEX chronolog_claims"
    " ON chronolog_records (claim_occurrence, claim_attempt)"
    " WHERE claim_occurrence IS NOT NULL",
)
#: Snapshots, created by the first one saved: the base of a compacted log
#: (the row at the ``base_seq`` of ``chronolog_meta``) and the newest snapshot.
#: ``record_sha256`` is the checksum of the record at ``seq`` as stored, so a
#: snapshot is only applied to the records it was taken from.
_SNAPSHOT_TABLE: Final = (
    "CREATE TABLE IF NOT EXISTS chronolog_snapshots ("
    " seq INTEGER PRIMARY KEY,"
    " record_sha256 TEXT NOT NULL,"
    " state BLOB NOT NULL)"
)
_INSERT: Final = (
    "INSERT INTO chronolog_records (seq, record, claim_occurrence, claim_attempt, crc) "
    "VALUES (?, ?, ?, ?, ?)"
)
#: Rows an upgrade gives their checksums in one statement.
_UPGRADE_ROWS: Final = 4096

_seq_of = attrgetter("seq")

logger = logging.getLogger("chronolog.log")


class SQLiteLog(SequencedLog):
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

    enforces_claims = True

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        synchronous: Synchronous = "full",
        poll_interval: timedelta = timedelta(milliseconds=200),
    ) -> None:
        super().__init__()
        if synchronous not in ("full", "normal"):
            raise ValueError(
                f"synchronous must be 'full' (each append on disk when it returns) or "
                f"'normal' (survives a crash of the process, not of the machine), "
                f"got {synchronous!r}"
            )
        if poll_interval <= timedelta(0):
            raise ValueError(f"poll_interval must be a positive duration, got {poll_interval!r}")
        self._path = Path(path)
        self._synchronous: Synchronous = synchronous
        self._poll_seconds = poll_interval.total_seconds()
        # Used from one worker thread at a time: appends are serialised by the
        # write lock, and opening and closing never overlap an append.
        self._connection: sqlite3.Connection | None = None
        # While open for writing: a descriptor of the database file that holds
        # the writer lock (closed only after the connection, see _release), the
        # sidecar that names the writer, and the checksum of the last row.
        self._lock_fd: int | None = None
        self._lock: WriterLock | None = None
        self._base_seq = 0
        self._chain = 0
        # The version of a log of format version 1 or 2 opened for writing: it
        # is upgraded before its first write.
        self._legacy: int | None = None

    def __repr__(self) -> str:
        return f"SQLiteLog({str(self._path)!r})"

    @property
    def path(self) -> Path:
        """The database file."""
        return self._path

    @property
    def lock_path(self) -> Path:
        """The sidecar file that a writer locks: ``<log>.lock``."""
        return lock_path_of(self._path)

    @property
    def is_open(self) -> bool:
        """Whether this object holds the log open for writing (and its lock)."""
        return self._connection is not None

    @property
    def synchronous(self) -> Synchronous:
        """``"full"`` or ``"normal"``: see the class docstring."""
        return self._synchronous

    @property
    def last_seq(self) -> int:
        """The seq of the last record (0 for an empty log).

        While this object has the log open for writing, this is known without
        I/O; otherwise it is read from the database at each call.
        """
        if self._connection is not None:
            return self._last_seq
        reader = _Reader(self._path)
        try:
            return reader.last_seq()
        finally:
            reader.close()

    # -- writing ----------------------------------------------------------

    async def open(self) -> Self:
        """Open the log for writing (see the class docstring) and return it.

        Raises `LogLocked` if another writer holds it, and `LogCorrupted` if
        the file is not a chronolog log or was written by a newer format;
        such a file is left untouched.
        """
        if self._closed:
            raise LogClosed(f"{self!r} was closed; create a new SQLiteLog to open the file again")
        if self._connection is not None:
            raise RuntimeError(f"{self!r} is already open for writing")
        connection, lock_fd, lock, last_seq, chain, legacy = await trio.to_thread.run_sync(
            self._open_for_writing
        )
        self._connection, self._lock_fd, self._lock = connection, lock_fd, lock
        self._last_seq, self._chain, self._legacy = last_seq, chain, legacy
        self._base_seq = _base_seq_of(connection)
        return self

    async def __aenter__(self) -> Self:
        # ``log = await SQLiteLog(path).open()`` then ``async with log:`` is fine too.
        if self._connection is not None:
            await trio.lowlevel.checkpoint()
            return self
        return await self.open()

    async def _write(self, records: list[Event]) -> None:
        self._chain = await trio.to_thread.run_sync(self._insert, records)

    def _insert(self, records: list[Event]) -> int:
        """Store ``records`` in one transaction (runs in a worker thread); return
        the checksum of the last row."""
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
            # IMMEDIATE takes the database's write lock up front, so the
            # transaction cannot fail half-way for want of it.
            connection.execute("BEGIN IMMEDIATE")
            try:
                connection.executemany(_INSERT, rows)
                connection.execute("COMMIT")
            except BaseException:
                # Nothing of a failed batch stays. In WAL mode a rollback only
                # drops this connection's uncommitted pages: no disk I/O to fail.
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                raise
        except sqlite3.IntegrityError as exc:
            raise self._refused(connection, records, exc) from exc
        except sqlite3.Error as exc:
            what = f"could not append to log {self._path}"
            raise _sqlite_error(exc, self._path, what, "nothing of this batch was kept") from exc
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

    def _check_writable(self) -> None:
        super()._check_writable()
        if self._connection is None:
            raise LogClosed(
                f"{self!r} is not open for writing: use `async with SQLiteLog(...) as log` "
                f"or `await log.open()` before appending"
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

    def _open_for_writing(
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
        try:
            lock = take_lock(lock_fd, self._path, "SQLiteLog")
        except BaseException:
            os.close(lock_fd)
            raise
        try:
            _check_one_name(self._path, os.fstat(lock_fd).st_nlink)
            real = real_path_of(self._path)
            what = f"cannot open log {self._path} for writing"
            try:
                connection = sqlite3.connect(real, isolation_level=None, check_same_thread=False)
            except sqlite3.Error as exc:
                raise _sqlite_error(exc, self._path, what) from exc
            try:
                try:
                    last_seq, chain, legacy = self._prepare(connection)
                except sqlite3.Error as exc:
                    raise _sqlite_error(exc, self._path, what) from exc
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
                    self._path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, _LOG_FILE_MODE
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
        connection.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        # The checks read only: a file that is not a chronolog log is never
        # written, not even by switching its journal mode.
        form = _check_format(connection, self._path)
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
            with _transaction(connection):
                for statement in _SCHEMA:
                    connection.execute(statement)
                connection.executemany(
                    "INSERT INTO chronolog_meta (key, value) VALUES (?, ?)",
                    [
                        ("format", FORMAT_NAME),
                        ("version", CHECKSUM_VERSION),
                        ("schema", SCHEMA_VERSION),
                    ],
                )
        (last,) = connection.execute("SELECT max(seq) FROM chronolog_records").fetchone()
        last_seq = max(int(last or 0), _base_seq_of(connection))
        if form is not None and not form.checksums:
            return last_seq, 0, form.version
        return last_seq, _last_chain(connection, last_seq), None

    def _upgrade_now(self, connection: sqlite3.Connection) -> None:
        """Give the rows of this log of format version 1 or 2 their checksums,
        before its first write (worker thread, write lock held)."""
        version = self._legacy
        assert version is not None
        try:
            _upgrade(connection)
        except sqlite3.Error as exc:
            what = f"could not upgrade log {self._path} from format version {version} to 3"
            hint = f"the log is unchanged (version {version})"
            raise _sqlite_error(exc, self._path, what, hint) from exc
        self._legacy = None
        self._chain = _last_chain(connection, self._last_seq)
        logger.info(
            "upgraded log %s from format version %d to %d: its records carry checksums now",
            self._path,
            version,
            FORMAT_VERSION,
        )

    def _check_before_upgrade(self, form: _Format) -> None:
        """Read a log of an older format and check every rule: it is about to get
        checksums, which would vouch for what it says."""
        reader = _Reader(self._path)
        try:
            base_seq, base, _ = reader.snapshots()
            checker = Checker()
            if base_seq:
                checker.start_from(self._base_of(base_seq, base, DEFAULT_HISTORY_LIMIT))
            limit = reader.last_seq()
            after_seq = base_seq
            while after_seq < limit:
                page = reader.page(after_seq, limit)
                if not page:
                    break
                for record in page:
                    checker.check(record)
                    if checker.violations:
                        violation = checker.violations[0]
                        raise refusal(str(self._path), violation, upgrading=form.version)
                after_seq = page[-1].seq
        finally:
            reader.close()

    # -- snapshots and compaction ---------------------------------------------

    @property
    def base_seq(self) -> int:
        """The seq of the last record folded into the base by a compaction (0 if none)."""
        if self._connection is not None:
            return self._base_seq
        reader = _Reader(self._path)
        try:
            return reader.snapshots()[0]
        finally:
            reader.close()

    def base_state(self, *, history_limit: int = DEFAULT_HISTORY_LIMIT) -> State:
        reader = _Reader(self._path)
        try:
            base_seq, base, _ = reader.snapshots()
        finally:
            reader.close()
        return self._base_of(base_seq, base, history_limit)

    def load_state(
        self, *, history_limit: int = DEFAULT_HISTORY_LIMIT, strict: bool = True
    ) -> State:
        """The newest snapshot plus the records after it; see `EventLog.load_state`.

        ``strict`` (the default) refuses records that break a rule of the log.
        """
        reader = _Reader(self._path)
        try:
            limit = self._last_seq if self._connection is not None else reader.last_seq()

            def start() -> tuple[State, Iterator[Event]]:
                state = self._newest_state(reader, history_limit)
                return state, self._pages(reader, state.seq, limit)

            state, records = start()
            if not strict:
                return fold_into(state, records)
            return fold_strictly(state, records, recheck=start, where=str(self._path))
        finally:
            reader.close()

    def _newest_state(self, reader: _Reader, history_limit: int) -> State:
        """The newest usable snapshot, or else the base (or an empty State)."""
        base_seq, base, newest = reader.snapshots()
        state = None
        if newest is not None:
            seq, expected, document, record = newest
            where = f"at seq {seq} in {self._path}"
            if record is None or hashlib.sha256(record).hexdigest() != expected:
                ignore_snapshot(
                    where,
                    f"the record at seq {seq} is not the one it was taken after: the "
                    f"records were changed since",
                )
            else:
                state = state_from_snapshot(document, history_limit=history_limit, where=where)
        if state is None:
            state = self._base_of(base_seq, base, history_limit)
        return state

    @staticmethod
    def _pages(reader: _Reader, after_seq: int, limit: int) -> Iterator[Event]:
        """The records after ``after_seq`` up to ``limit``, a page at a time."""
        while after_seq < limit:
            page = reader.page(after_seq, limit)
            if not page:
                return  # rows deleted under the reader: do not spin
            yield from page
            after_seq = page[-1].seq

    def writer(self) -> str | None:
        """Who holds this log open for writing, as a phrase (``process 42 on host
        web-1``); None when nobody does. Read only: it takes no lock."""
        return holder_of(self._path)

    @property
    def format_version(self) -> int | None:
        """The record format version in ``chronolog_meta`` (None before the
        tables exist). 3: rows carry checksums; 1 and 2 are read as they are,
        and the first write upgrades them."""
        reader = _Reader(self._path)
        try:
            return reader.format_version()
        finally:
            reader.close()

    def _base_of(self, base_seq: int, base: bytes | None, history_limit: int) -> State:
        if base_seq == 0:
            return State(history_limit=history_limit)
        if base is None:
            raise LogCorrupted(
                f"{self._path} was compacted up to seq {base_seq}, but its base snapshot is "
                f"missing from chronolog_snapshots: the log is damaged; restore it from a backup"
            )
        return base_from_snapshot(base, history_limit=history_limit, where=str(self._path))

    async def save_snapshot(self, state: State, seq: int | None = None) -> None:
        """Store ``state`` in ``chronolog_snapshots``; see `EventLog.save_snapshot`.

        The log must be open for writing. One transaction replaces the
        previous snapshot (the base of a compacted log stays).
        """
        point = check_snapshot_point(self, state, seq)
        self._check_writable()
        document = await trio.to_thread.run_sync(encode_state, state.copy())
        async with self._write_lock:
            self._check_writable()
            await trio.to_thread.run_sync(self._store_snapshot, point, document, False)

    async def compact(self, state: State) -> None:
        """Make ``state`` the base and delete the records it folds, in one transaction.

        See `EventLog.compact`. Then ``VACUUM`` gives the space back to the
        file system (if another connection keeps it from running, the space
        is reused by later appends instead). The claims of the deleted
        ``Started`` records go with them: the scheduler's projection still
        refuses them, the database no longer does.
        """
        self._check_writable()
        document = await trio.to_thread.run_sync(encode_state, state.copy())
        async with self._write_lock:
            self._check_writable()
            await trio.to_thread.run_sync(self._store_snapshot, state.seq, document, True)

    def _store_snapshot(self, seq: int, document: bytes, as_base: bool) -> None:
        """Store a snapshot, or a base and drop its records (worker thread, write lock held)."""
        connection = self._connection
        assert connection is not None
        if self._legacy is not None:
            self._upgrade_now(connection)
        what = f"could not {'compact' if as_base else 'save a snapshot of'} log {self._path}"
        try:
            connection.execute("BEGIN IMMEDIATE")
            try:
                if as_base and seq == self._base_seq:
                    connection.execute("COMMIT")
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
                connection.execute(_SNAPSHOT_TABLE)
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
                connection.execute("COMMIT")
            except BaseException:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise _sqlite_error(exc, self._path, what, "the log is unchanged") from exc
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

    def read(self, after_seq: int = 0) -> Iterator[Event]:
        """Yield the records with ``seq > after_seq``, in order.

        Needs no lock, no opening and no Trio; it reads through its own
        read-only connection, a page of rows per query, up to the last
        record there was when it started (through the object that is
        writing: the last one whose append returned). Raises `LogCorrupted`
        at a damaged record, after yielding every record before it.
        """
        return itertools.chain.from_iterable(self._read_pages(after_seq))

    def _read_pages(self, after_seq: int) -> Iterator[list[Event]]:
        reader = _Reader(self._path)
        try:
            limit = self._last_seq if self._connection is not None else reader.last_seq()
            while after_seq < limit:
                page = reader.page(after_seq, limit)
                if not page:
                    return  # rows deleted under the reader: do not spin
                yield page
                after_seq = page[-1].seq
        finally:
            reader.close()

    async def follow(self, after_seq: int = 0) -> AsyncGenerator[Event, None]:
        """Yield records as they land; see `EventLog.follow`.

        Appends through this object wake followers at once; appends by another
        process are seen within ``poll_interval``. Each page of rows is read
        in a worker thread.
        """
        reader = await trio.to_thread.run_sync(_Reader, self._path)
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
                if len(page) == _PAGE_ROWS:
                    continue  # more may be there already
                if finished:
                    return
                if writing:
                    await appended.wait()
                else:
                    with trio.move_on_after(self._poll_seconds):
                        await appended.wait()
        finally:
            reader.close()


class _Reader:
    """A read-only connection to a log, used by one thread at a time."""

    def __init__(self, path: Path) -> None:
        self._path = path
        _check_readable(path)
        try:
            # By its real path: SQLite finds the write-ahead log beside the name
            # it is given, and the writer uses the real path too.
            self._connection = sqlite3.connect(
                f"{real_path_of(path).as_uri()}?mode=ro",
                uri=True,
                isolation_level=None,
                check_same_thread=False,
            )
            self._connection.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        except sqlite3.Error as exc:
            raise _sqlite_error(exc, path, f"cannot read log {path}") from exc
        # Whether the tables exist and were checked; a database that a writer
        # has just created may not have them yet. And whether rows carry checksums.
        self._checked = False
        self._checksums = False
        # Damage found after some good records of a page: raised at the next call.
        self._damage: LogCorrupted | None = None
        # The base when this reader first looked: it reads the records after
        # it, and raises if a compaction moves the base past its position.
        self._floor: int | None = None

    def close(self) -> None:
        self._connection.close()

    def last_seq(self) -> int:
        with self._reading():
            self._connection.execute("BEGIN")
            try:
                if not self._ready():
                    return 0
                (last,) = self._connection.execute(
                    "SELECT max(seq) FROM chronolog_records"
                ).fetchone()
                base_seq = _base_seq_of(self._connection)
            finally:
                self._connection.execute("COMMIT")
        return max(int(last or 0), base_seq)

    def snapshots(self) -> tuple[int, bytes | None, tuple[int, str, bytes, bytes | None] | None]:
        """In one read: the base seq, the base snapshot, and the newest snapshot after
        the base as (seq, record checksum, document, the record stored at seq now)."""
        with self._reading():
            self._connection.execute("BEGIN")
            try:
                if not self._ready():
                    return 0, None, None
                base_seq = _base_seq_of(self._connection)
                # Records the reader reads from now on come after this base.
                if self._floor is None:
                    self._floor = base_seq
                if not _has_snapshots(self._connection):
                    return base_seq, None, None
                base = None
                if base_seq:
                    row = self._connection.execute(
                        "SELECT state FROM chronolog_snapshots WHERE seq = ?", (base_seq,)
                    ).fetchone()
                    base = bytes(row[0]) if row is not None else None
                newest = self._connection.execute(
                    "SELECT s.seq, s.record_sha256, s.state, CAST(r.record AS BLOB) "
                    "FROM chronolog_snapshots AS s "
                    "LEFT JOIN chronolog_records AS r ON r.seq = s.seq "
                    "WHERE s.seq > ? ORDER BY s.seq DESC LIMIT 1",
                    (base_seq,),
                ).fetchone()
            finally:
                self._connection.execute("COMMIT")
        if newest is None:
            return base_seq, base, None
        seq, checksum, document, record = newest
        return base_seq, base, (seq, checksum, bytes(document), record)

    def page(self, after_seq: int, limit: int | None) -> list[Event]:
        """The records after ``after_seq`` (up to seq ``limit``), one page at most.

        Seqs in a SQLiteLog are contiguous from 1, and a page is read in one
        snapshot together with the last seq, so a record missing from the
        middle or the end raises `LogCorrupted` instead of going unnoticed (a
        damaged database can hide rows from a range query without an error).
        """
        if self._damage is not None:
            raise self._damage
        after_seq = max(after_seq, 0)
        with self._reading():
            self._connection.execute("BEGIN")
            try:
                if not self._ready():
                    return []
                base_seq = _base_seq_of(self._connection)
                if self._floor is None:
                    self._floor = base_seq
                after_seq = max(after_seq, self._floor)
                if after_seq < base_seq:
                    raise LogCorrupted(
                        f"{self._path} was compacted while being read: the records up to seq "
                        f"{base_seq} were folded into its base, and this reader had only read "
                        f"up to seq {after_seq}; read the log again from the start"
                    )
                rows, last, previous = self._rows(after_seq, limit, base_seq)
            finally:
                self._connection.execute("COMMIT")
        missing = None
        for index, row in enumerate(rows):
            if row[0] != after_seq + 1 + index:
                missing = after_seq + 1 + index
                rows = rows[:index]
                break
        else:
            reached = rows[-1][0] if rows else after_seq
            if len(rows) < _PAGE_ROWS and reached < last:
                missing = reached + 1
        records = self._decode(rows, previous)
        if missing is None:
            return records
        damage = _damaged(self._path, missing, f"is missing (the last record has seq {last})")
        if not records:
            raise damage
        if self._damage is None:  # else a bad row came earlier, and is reported first
            self._damage = damage
        return records

    def _rows(
        self, after_seq: int, limit: int | None, base_seq: int
    ) -> tuple[list[tuple[int, bytes, int | None]], int, int]:
        """A page of rows after ``after_seq``, the last seq (at most ``limit``), and
        the checksum the page goes on from (0 without checksums)."""
        connection = self._connection
        last: int = connection.execute("SELECT max(seq) FROM chronolog_records").fetchone()[0] or 0
        if limit is not None:
            last = min(last, limit)
        if not self._checksums:
            rows: list[tuple[int, bytes, int | None]] = connection.execute(
                # As a BLOB: the bytes msgspec decodes, without making a str first.
                "SELECT seq, CAST(record AS BLOB), NULL FROM chronolog_records "
                "WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?",
                (after_seq, last, _PAGE_ROWS),
            ).fetchall()
            return rows, last, 0
        if after_seq == base_seq:
            previous = _chain_of(connection)
        else:
            row = connection.execute(
                "SELECT crc FROM chronolog_records WHERE seq = ?", (after_seq,)
            ).fetchone()
            if row is None or row[0] is None:
                raise _damaged(
                    self._path,
                    after_seq,
                    "is missing" if row is None else "has no checksum",
                )
            previous = int(row[0])
        rows = connection.execute(
            "SELECT seq, CAST(record AS BLOB), crc FROM chronolog_records "
            "WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?",
            (after_seq, last, _PAGE_ROWS),
        ).fetchall()
        return rows, last, previous

    def _decode(self, rows: list[tuple[int, bytes, int | None]], previous: int) -> list[Event]:
        if not rows:
            return []
        # Fast path: the whole page in one decode call, and one checksum pass.
        joined = b"\n".join([row[1] for row in rows])
        try:
            records = decode_lines(joined)
        except msgspec.DecodeError:
            return self._decode_each(rows, previous)
        if len(records) != len(rows) or list(map(_seq_of, records)) != [row[0] for row in rows]:
            return self._decode_each(rows, previous)
        if self._checksums and not check_rows(joined, rows[-1][2], previous):
            return self._decode_each(rows, previous)
        return records

    def _decode_each(
        self, rows: list[tuple[int, bytes, int | None]], previous: int
    ) -> list[Event]:
        """Decode and check row by row: the records before the first bad one, then raise."""
        records: list[Event] = []
        for seq, text, crc in rows:
            damage = None
            try:
                record = decode_event(text)
            except msgspec.DecodeError as exc:
                damage = _damaged(self._path, seq, f"is not a valid record: {exc}")
                damage.__cause__ = exc
            else:
                if record.seq != seq:
                    damage = _damaged(self._path, seq, f"holds a record with seq {record.seq}")
                elif self._checksums:
                    computed = chain_of_rows(bytes(text), previous)
                    if crc != computed:
                        shown = "none" if crc is None else f"{crc:08x}"
                        damage = _damaged(
                            self._path,
                            seq,
                            f"does not match its checksum (it carries {shown}; its record and "
                            f"those before it give {computed:08x}): it was changed after it was "
                            f"written, or a record before it was",
                        )
                    previous = computed
            if damage is None:
                records.append(record)
                continue
            if not records:
                raise damage
            self._damage = damage
            break
        return records

    def _ready(self) -> bool:
        """Whether the tables exist (checking their format the first time they do)."""
        if not self._checked:
            form = _check_format(self._connection, self._path)
            self._checked = form is not None
            self._checksums = form is not None and form.checksums
        return self._checked

    def format_version(self) -> int | None:
        """The record format version; None before the tables exist."""
        with self._reading():
            self._connection.execute("BEGIN")
            try:
                form = _check_format(self._connection, self._path)
            finally:
                self._connection.execute("COMMIT")
        return form.version if form is not None else None

    @contextlib.contextmanager
    def _reading(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise _sqlite_error(exc, self._path, f"cannot read log {self._path}") from exc


# -- helpers ----------------------------------------------------------------


class _Format(NamedTuple):
    """The record version and table schema of a chronolog database."""

    version: int
    schema: int

    @property
    def checksums(self) -> bool:
        return self.schema >= 2


def _check_format(connection: sqlite3.Connection, path: Path) -> _Format | None:
    """The format of the chronolog log ``connection`` holds, if this version reads
    it; None if the database is empty (no tables yet); `LogCorrupted` otherwise."""
    tables = {
        name
        for (name,) in connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    }
    if not tables:
        return None
    if "chronolog_meta" not in tables:
        shown = ", ".join(sorted(tables)[:5]) + (", ..." if len(tables) > 5 else "")
        raise LogCorrupted(
            f"{path} is an SQLite database but not a chronolog log (its tables: {shown}); "
            f"check the path"
        )
    meta = dict(connection.execute("SELECT key, value FROM chronolog_meta").fetchall())
    version, schema = meta.get("version"), meta.get("schema")
    if (
        meta.get("format") != FORMAT_NAME
        or not isinstance(version, int)
        or not isinstance(schema, int)
        or version < 1
        or schema < 1
    ):
        raise LogCorrupted(
            f"{path} is not a chronolog log (its chronolog_meta table holds {meta!r}; a log "
            f"holds format {FORMAT_NAME!r}, a version and a schema); check the path"
        )
    if version > FORMAT_VERSION:
        raise LogCorrupted(
            f"{path} was written by format version {version}; this chronolog reads versions "
            f"1 to {FORMAT_VERSION} -- upgrade chronolog to read it"
        )
    if schema > SCHEMA_VERSION:
        raise LogCorrupted(
            f"{path} uses SQLite log schema {schema}; this chronolog knows schema "
            f"{SCHEMA_VERSION} -- upgrade chronolog to read it"
        )
    if "chronolog_records" not in tables:
        raise LogCorrupted(
            f"{path} has chronolog's meta table but no chronolog_records table: the log is "
            f"damaged; restore it from a backup"
        )
    if (schema >= 2) != (version >= CHECKSUM_VERSION):
        raise LogCorrupted(
            f"{path} says format version {version} with table schema {schema}, which do not "
            f"go together (checksums came with version {CHECKSUM_VERSION} and schema 2): "
            f"chronolog_meta was changed; restore the log from a backup ({RECOVERY_GUIDE})"
        )
    return _Format(version, schema)


def _last_chain(connection: sqlite3.Connection, last_seq: int) -> int:
    """The checksum of the row at ``last_seq``, or the base's if it is the base."""
    row = connection.execute(
        "SELECT crc FROM chronolog_records WHERE seq = ?", (last_seq,)
    ).fetchone()
    return int(row[0]) if row is not None and row[0] is not None else _chain_of(connection)


def _chain_of(connection: sqlite3.Connection) -> int:
    """The checksum the first record after the base goes on from (0 if none was left)."""
    row = connection.execute("SELECT value FROM chronolog_meta WHERE key = 'chain'").fetchone()
    return int(row[0]) if row is not None else 0


@contextlib.contextmanager
def _transaction(connection: sqlite3.Connection) -> Iterator[None]:
    """One write transaction (``BEGIN IMMEDIATE``), rolled back whole if anything fails."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield
        connection.execute("COMMIT")
    except BaseException:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise


def _upgrade(connection: sqlite3.Connection) -> None:
    """Give every row of a version 1 or 2 database its checksum, in one transaction:
    the database then is version 3 (schema 2). Nothing changes if it fails."""
    with _transaction(connection):
        connection.execute("ALTER TABLE chronolog_records ADD COLUMN crc INTEGER")
        chain = 0
        after = 0
        while True:
            rows = connection.execute(
                "SELECT seq, CAST(record AS BLOB) FROM chronolog_records WHERE seq > ? "
                "ORDER BY seq LIMIT ?",
                (after, _UPGRADE_ROWS),
            ).fetchall()
            if not rows:
                break
            updates = []
            for seq, record in rows:
                chain = chain_of_rows(bytes(record), chain)
                updates.append((chain, seq))
            connection.executemany("UPDATE chronolog_records SET crc = ? WHERE seq = ?", updates)
            after = rows[-1][0]
        connection.executemany(
            "INSERT OR REPLACE INTO chronolog_meta (key, value) VALUES (?, ?)",
            [("version", CHECKSUM_VERSION), ("schema", SCHEMA_VERSION), ("chain", 0)],
        )


def _check_one_name(path: Path, links: int) -> None:
    """Refuse a database with more than one name: SQLite keeps its write-ahead log
    beside the name it opened, so each name would be a log of its own."""
    if links > 1:
        raise OSError(
            errno.EMLINK,
            f"cannot use log {path}: the database file has {links} names (hard links), and "
            f"SQLite keeps the records not yet checkpointed beside the name it is opened by "
            f"({path.name}-wal), so each name would show, and write, a log of its own. Remove "
            f"the other names (find them with `find / -xdev -samefile {path}`), or copy the "
            f'database with `sqlite3 {path} ".backup COPY"` instead of linking it',
        )


def _unlock(lock_fd: int | None, lock: WriterLock | None) -> None:
    """Give up the writer lock: the sidecar, then the descriptor that locks the database."""
    try:
        if lock is not None:
            release_lock(lock)
    finally:
        if lock_fd is not None:
            os.close(lock_fd)


def _base_seq_of(connection: sqlite3.Connection) -> int:
    """The base seq a compaction left in ``chronolog_meta`` (0 if none)."""
    row = connection.execute("SELECT value FROM chronolog_meta WHERE key = 'base_seq'").fetchone()
    return int(row[0]) if row is not None else 0


def _has_snapshots(connection: sqlite3.Connection) -> bool:
    row = connection.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'chronolog_snapshots'"
    ).fetchone()
    return row is not None


def _check_readable(path: Path) -> None:
    """Raise a plain ``OSError`` if ``path`` is missing, unreadable or a directory.

    (A database with several names is read: the writer of a log reads it
    too, and a hard link someone makes must not stop it. A reader through
    another name than the writer's sees only what was checkpointed.)

    Without opening the file: closing a descriptor of a database drops every
    POSIX lock this process holds on it, those of its SQLite connections too.
    """
    try:
        status = os.stat(path)
    except FileNotFoundError as exc:
        raise os_error(
            exc,
            f"log {path} does not exist",
            "check the path (a scheduler creates the file when it first opens it)",
        ) from exc
    except OSError as exc:
        raise os_error(exc, f"cannot read log {path}") from exc
    if stat.S_ISDIR(status.st_mode):
        raise IsADirectoryError(errno.EISDIR, f"cannot read log {path}: it is a directory")
    if not os.access(path, os.R_OK):
        raise os_error(
            PermissionError(errno.EACCES, "Permission denied"), f"cannot read log {path}"
        )


def _damaged(path: Path, seq: int, problem: str) -> LogCorrupted:
    return LogCorrupted(
        f"{path}: the record with seq {seq} {problem}. The log is damaged there; the records "
        f"before it are intact: restore the log from a backup, or try "
        f"`sqlite3 {path} .recover`"
    )


def _sqlite_error(exc: sqlite3.Error, path: Path, what: str, hint: str = "") -> Exception:
    """A chronolog error or an ``OSError`` for what SQLite reported, naming the log."""
    name = getattr(exc, "sqlite_errorname", "")
    detail = str(exc)
    if name == "SQLITE_NOTADB":
        if _starts_like_a_file_log(path):
            return LogCorrupted(
                f"{path} is a chronolog JSON Lines log, not an SQLite one: open it with "
                f"FileLog, or give it a name that does not end in {', '.join(SQLITE_SUFFIXES)}"
            )
        return LogCorrupted(
            f"{path} is not a chronolog log (not an SQLite database: {detail}); check the path"
        )
    if name.startswith("SQLITE_CORRUPT"):
        return LogCorrupted(
            f"{path} is damaged (SQLite: {detail}); restore the log from a backup, or try "
            f"`sqlite3 {path} .recover`"
        )
    if name.startswith("SQLITE_BUSY") or name.startswith("SQLITE_LOCKED"):
        return LogLocked(
            f"{what}: another connection kept the database locked for more than "
            f"{_BUSY_TIMEOUT_MS / 1000:g} s ({detail}); find the process holding it"
        )
    if name == "SQLITE_FULL":
        code, advice = errno.ENOSPC, "free some disk space"
    elif name.startswith(("SQLITE_READONLY", "SQLITE_PERM", "SQLITE_CANTOPEN")):
        code, advice = errno.EACCES, f"check the permissions of {path} and of its directory"
    else:
        code, advice = errno.EIO, ""
    parts = [part for part in (hint, advice) if part]
    message = f"{what}: {detail}" + "".join(f"; {part}" for part in parts)
    return OSError(code, message)


def _starts_like_a_file_log(path: Path) -> bool:
    """Whether ``path`` begins with the header line of a `FileLog`."""
    try:
        with path.open("rb") as file:
            return file.read(len(_FILE_LOG_HEADER)) == _FILE_LOG_HEADER
    except OSError:
        return False
