"""A turn: one transaction that holds a `PostgresLog`'s append lock.

Every append is a turn; a scheduler's writer also reads in it what other
writers appended since its position, decides, then appends
(`PostgresLog.appending`). Inside, in one transaction:

1. ``pg_advisory_xact_lock`` (`APPEND_LOCK`) -- in a statement of its own,
   so that under ``READ COMMITTED`` every later statement sees each append
   that held the lock before;
2. the head: the last seq and its checksum (or the base's, after a
   compaction);
3. for a writer's turn, the records after its position, checked;
4. the rows, numbered from the head, with their checksum chain and the
   batch's id; ``pg_notify`` with the last seq (delivered at commit);
5. ``COMMIT``, which releases the lock.

A unique index that refuses a row (a claim, a settlement) rolls the whole
turn back: `ClaimConflict`, nothing kept. A connection that breaks before
``COMMIT`` rolls it back too. One that breaks *during* ``COMMIT`` leaves the
outcome unknown: `Turn._landed` takes the append lock on a new connection,
which waits until the old transaction is over, whichever way, and reads the
row at the batch's first seq back.

The blocking methods run in a worker thread; the Trio side is
`PostgresLog.appending` and `Turn.append`.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from typing import TYPE_CHECKING, Any, Final

import msgspec
import psycopg
import psycopg.errors
import trio

from .._errors import ClaimConflict, LogCorrupted
from .._events import Completed, Failed, Skipped, Started, encode_event
from ._base import check_unappended
from ._checksum import chain_of_rows
from ._postgres_connection import MAX_BACKOFF_SECONDS, connect, postgres_error
from ._postgres_reader import Reader, meta_int
from ._postgres_schema import APPEND_LOCK, NOTIFY_CHANNEL

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .._events import Event
    from ._postgres_connection import Pool
    from .postgres import PostgresLog

__all__ = ["RESOLVE_SECONDS", "Turn", "roll_back"]

logger = logging.getLogger("chronolog.log")

_INSERT: Final = (
    "INSERT INTO chronolog_records (seq, record, crc, batch, claim_occurrence, claim_attempt,"
    " settle_occurrence, settle_attempt, final_occurrence)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
)
#: How long an append whose commit's outcome is unknown tries to learn it.
RESOLVE_SECONDS: Final = 60.0


class Turn:
    """One transaction holding a log's append lock (see `PostgresLog.appending`).

    Its blocking methods run in a worker thread; ``records``, ``last_seq``
    and ``stored`` are read in Trio once they are set.
    """

    def __init__(self, log: PostgresLog, pool: Pool) -> None:
        self._log = log
        self._pool = pool
        self._what = f"could not append to log {log.shown}"
        self._connection: psycopg.Connection[Any] | None = None
        self._context: contextlib.AbstractContextManager[psycopg.Connection[Any]] | None = None
        #: Records other writers appended since the position the turn was opened at.
        self.records: list[Event] = []
        #: The log's last seq when the turn began, and the checksum of that record.
        self.last_seq = 0
        self._chain = 0
        #: The records this turn appended (once `append` returned).
        self.stored: list[Event] = []
        self._used = False

    # -- in a worker thread -------------------------------------------------

    def begin(self, after_seq: int | None) -> None:
        """Take a connection and the append lock; read the head and what follows
        ``after_seq``. A connection that turns out broken at once (the server
        restarted since it was last used) is replaced, once."""
        for attempt in (1, 2):
            context = self._pool.connection(self._what)
            connection = context.__enter__()
            try:
                self._begin_on(connection, after_seq)
            except psycopg.OperationalError as exc:
                roll_back(connection)
                context.__exit__(None, None, None)
                if attempt == 1 and (connection.broken or connection.closed):
                    continue
                raise postgres_error(
                    exc, self._log.dsn, self._what, "nothing was written"
                ) from exc
            except BaseException as exc:
                roll_back(connection)
                context.__exit__(None, None, None)
                if isinstance(exc, psycopg.Error):
                    raise postgres_error(exc, self._log.dsn, self._what) from exc
                raise
            self._connection, self._context = connection, context
            return
        raise AssertionError("unreachable: the second attempt returns or raises")

    def _begin_on(self, connection: psycopg.Connection[Any], after_seq: int | None) -> None:
        connection.execute("BEGIN ISOLATION LEVEL READ COMMITTED")
        # Its own statement: under READ COMMITTED each statement sees what was
        # committed when it began, so the reads below see every append that
        # held the lock before this one.
        connection.execute("SELECT pg_advisory_xact_lock(%s, %s)", APPEND_LOCK)
        head = connection.execute(
            "SELECT seq, crc FROM chronolog_records ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        base_seq = meta_int(connection, "base_seq")
        if head is None or int(head[0]) <= base_seq:
            self.last_seq, self._chain = base_seq, meta_int(connection, "chain")
        else:
            self.last_seq, self._chain = int(head[0]), int(head[1])
        if after_seq is None or after_seq >= self.last_seq:
            return
        if after_seq < base_seq:
            raise LogCorrupted(
                f"{self._log.shown} was compacted up to seq {base_seq}, past this writer's "
                f"position (seq {after_seq}): it cannot catch up record by record; restart it"
            )
        reader = Reader(self._log.dsn, self._log.shown)
        position = after_seq
        while position < self.last_seq:
            found, previous = reader.rows(connection, position, self.last_seq, base_seq)
            if not found:
                break
            self.records += reader.checked(found, position, previous)
            position = found[-1][0]

    async def append(self, events: Sequence[Event]) -> list[Event]:
        """Append ``events`` in this turn and commit: the stored records.

        Raises `ClaimConflict` or ``OSError`` as `PostgresLog.append` does; the
        turn is over either way (leave its block). The write is not
        interrupted by a cancellation: the outcome is always known.
        """
        batch = check_unappended(events)
        if not batch:
            await trio.lowlevel.checkpoint()
            return []
        with trio.CancelScope(shield=True):
            records = await trio.to_thread.run_sync(self.store, batch)
        return records

    def end(self) -> None:
        """Roll back if nothing was committed; give the connection back."""
        connection, context = self._connection, self._context
        self._connection = self._context = None
        if connection is None or context is None:
            return
        if not self.stored:
            roll_back(connection)
        context.__exit__(None, None, None)

    def store(self, events: list[Event]) -> list[Event]:
        """Insert ``events`` after the head, notify, commit (worker thread)."""
        connection = self._connection
        assert connection is not None, "the turn has no connection"
        if self._used:
            raise RuntimeError("a turn appends once")
        self._used = True
        first = self.last_seq + 1
        batch = uuid.uuid4()
        records, rows = _rows(events, first, self._chain, batch)
        try:
            with connection.cursor() as cursor:
                cursor.executemany(_INSERT, rows)
            connection.execute("SELECT pg_notify(%s, %s)", (NOTIFY_CHANNEL, str(records[-1].seq)))
            fault = self._log.fault
            if fault is not None:
                fault("before-commit", connection)
        except psycopg.errors.UniqueViolation as exc:
            roll_back(connection)
            raise self._refused(records, exc) from exc
        except psycopg.Error as exc:
            roll_back(connection)
            raise postgres_error(
                exc, self._log.dsn, self._what, "nothing of this batch was kept"
            ) from exc
        try:
            connection.execute("COMMIT")
            fault = self._log.fault
            if fault is not None:
                fault("after-commit", connection)
        except psycopg.Error as exc:
            if not _outcome_unknown(exc, connection):
                raise postgres_error(
                    exc, self._log.dsn, self._what, "nothing of this batch was kept"
                ) from exc
            if not self._landed(first, batch, exc):
                raise postgres_error(
                    exc,
                    self._log.dsn,
                    self._what,
                    "the connection broke during COMMIT, and reading back showed that nothing "
                    "of this batch was kept",
                ) from exc
            logger.warning(
                "appending to %s: the connection broke during COMMIT (%s); reading back showed "
                "that the batch landed (seqs %d to %d)",
                self._log.shown,
                " ".join(str(exc).split()),
                first,
                records[-1].seq,
            )
        self.stored = records
        return records

    def _landed(self, first: int, batch: uuid.UUID, cause: psycopg.Error) -> bool:
        """Whether the batch that was committing when the connection broke landed.

        Takes the append lock in a new connection -- so the old transaction is
        over, whichever way -- then reads the row at ``first``. Backs off
        while the database cannot be reached, up to `RESOLVE_SECONDS`.
        """
        deadline = time.monotonic() + RESOLVE_SECONDS
        delay = 0.1
        while True:
            try:
                connection = connect(
                    self._log.dsn,
                    application_name="chronolog (reading an append back)",
                    what=self._what,
                )
                try:
                    connection.execute("BEGIN")
                    connection.execute("SELECT pg_advisory_xact_lock(%s, %s)", APPEND_LOCK)
                    row = connection.execute(
                        "SELECT batch FROM chronolog_records WHERE seq = %s", (first,)
                    ).fetchone()
                    connection.execute("ROLLBACK")
                finally:
                    connection.close()
                return row is not None and row[0] == batch
            except (OSError, psycopg.Error) as exc:
                if time.monotonic() + delay > deadline:
                    raise OSError(
                        f"{self._what}: the connection broke during COMMIT ({cause}) and the "
                        f"database could not be reached for {RESOLVE_SECONDS:g} s to learn "
                        f"whether the batch landed ({exc}); the scheduler will find out when "
                        f"it reads the log again"
                    ) from exc
                time.sleep(delay)
                delay = min(delay * 2, MAX_BACKOFF_SECONDS)

    def _refused(self, records: list[Event], exc: psycopg.errors.UniqueViolation) -> Exception:
        """The error for a batch that broke a unique key: a claim, a settlement, a seq."""
        constraint = exc.diag.constraint_name or ""
        shown = self._log.shown
        if constraint == "chronolog_records_pkey":
            return LogCorrupted(
                f"seq {records[0].seq} of {shown} is already taken: something appended to the "
                f"log without taking its append lock. Nothing of this batch was written"
            )
        size = len(records)
        if constraint == "chronolog_claims":
            claims = [record for record in records if isinstance(record, Started)]
            keys = [(claim.occurrence, claim.attempt) for claim in claims]
            for claim, key in zip(claims, keys, strict=True):
                seq = self._holder(key)
                if seq is None and keys.count(key) < 2:
                    continue
                holder = (
                    f"the Started at seq {seq} holds it"
                    if seq is not None
                    else "this batch claims it twice"
                )
                return ClaimConflict(
                    f"attempt {key[1]} of occurrence {key[0]!r} of task {claim.task!r} is "
                    f"already claimed in {shown}: {holder}. Nothing of this batch of {size} "
                    f"events was written; do not run it"
                )
        if constraint in ("chronolog_settlements", "chronolog_final"):
            what = "attempt" if constraint == "chronolog_settlements" else "occurrence"
            return ClaimConflict(
                f"{shown} refused a second outcome of an {what} (unique index {constraint}): "
                f"it has settled already. Nothing of this batch of {size} events was written"
            )
        return ClaimConflict(
            f"{shown} refused a batch of {size} events: {' '.join(str(exc).split())}. Nothing "
            f"of it was written; do not run its runs"
        )

    def _holder(self, key: tuple[str, int]) -> int | None:
        """The seq of the ``Started`` that holds the claim ``key``, if it can be read."""
        try:
            with self._pool.connection(self._what) as connection:
                row = connection.execute(
                    "SELECT seq FROM chronolog_records WHERE claim_occurrence = %s "
                    "AND claim_attempt = %s",
                    key,
                ).fetchone()
        except (OSError, psycopg.Error):
            return None
        return None if row is None else int(row[0])


def _rows(
    events: list[Event], first: int, chain: int, batch: uuid.UUID
) -> tuple[list[Event], list[tuple[Any, ...]]]:
    """The records ``events`` become from seq ``first``, and their rows."""
    records: list[Event] = []
    rows: list[tuple[Any, ...]] = []
    for offset, event in enumerate(events):
        record = _with_seq(event, first + offset)
        encoded = encode_event(record)
        chain = chain_of_rows(encoded, chain)
        claim: tuple[str | None, int | None] = (None, None)
        settle: tuple[str | None, int | None] = (None, None)
        final = None
        if isinstance(record, Started):
            claim = (record.occurrence, record.attempt)
        elif isinstance(record, Completed | Failed):
            settle = (record.occurrence, record.attempt)
            if isinstance(record, Completed) or record.retry_at is None:
                final = record.occurrence
        elif isinstance(record, Skipped):
            final = record.occurrence
        records.append(record)
        rows.append((record.seq, encoded, chain, batch, *claim, *settle, final))
    return records, rows


def _with_seq(event: Event, seq: int) -> Event:
    return msgspec.structs.replace(event, seq=seq)


def _outcome_unknown(exc: psycopg.Error, connection: psycopg.Connection[Any]) -> bool:
    """Whether a COMMIT that raised ``exc`` may have happened: the connection broke."""
    return isinstance(exc, psycopg.OperationalError) or connection.broken or connection.closed


def roll_back(connection: psycopg.Connection[Any]) -> None:
    """Roll back whatever the connection has open; nothing if it broke."""
    if connection.closed or connection.broken:
        return
    with contextlib.suppress(psycopg.Error):
        connection.execute("ROLLBACK")
