"""Reading a `PostgresLog`: a page of rows per query, checked, in one snapshot.

Every page is read in one read-only ``REPEATABLE READ`` transaction together
with the base, the last seq and the checksum the page goes on from, so what
it checks holds for one state of the database: seqs run on without a gap
from the base, each row holds the record with its seq, and the checksum
chain holds up to the page's last row. Damage after some good records is
raised at the next call, once those records are handed out (as the SQLite
reader does).

A `Reader` is given a connection for each call (from the log's pool, or a
connection of its own): it keeps only what it learned between calls.
"""

from __future__ import annotations

import contextlib
import functools
from typing import TYPE_CHECKING, Any, Final

import psycopg

from .._errors import LogCorrupted
from ._postgres_connection import postgres_error
from ._postgres_schema import check_format
from ._rows import Row, checked_page, decode_rows

if TYPE_CHECKING:
    from collections.abc import Iterator

    from .._events import Event

__all__ = ["PAGE_ROWS", "Reader", "damaged", "meta_int"]

#: Rows fetched (and decoded) per query.
PAGE_ROWS: Final = 2048


def meta_int(connection: psycopg.Connection[Any], key: str) -> int:
    """An integer value of ``chronolog_meta`` (0 if it is not there)."""
    row = connection.execute("SELECT value FROM chronolog_meta WHERE key = %s", (key,)).fetchone()
    return int(row[0]) if row is not None else 0


class Reader:
    """What reading one log has learned: its format, where it started, damage found."""

    def __init__(self, dsn: str, shown: str) -> None:
        self._dsn = dsn
        self._shown = shown
        self._checked = False
        self._damage: LogCorrupted | None = None
        # The base when this reader first looked: it reads the records after
        # it, and raises if a compaction moves the base past its position.
        self._floor: int | None = None

    @contextlib.contextmanager
    def _snapshot(self, connection: psycopg.Connection[Any]) -> Iterator[bool]:
        """One read-only snapshot of the database; yields whether the tables exist."""
        try:
            connection.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            try:
                if not self._checked:
                    self._checked = check_format(connection, self._shown) is not None
                yield self._checked
            finally:
                if not connection.broken and not connection.closed:
                    connection.execute("COMMIT")
        except psycopg.Error as exc:
            raise postgres_error(exc, self._dsn, f"cannot read log {self._shown}") from exc

    def exists(self, connection: psycopg.Connection[Any]) -> bool:
        """Whether the database holds a chronolog log (checking its format)."""
        with self._snapshot(connection) as ready:
            return ready

    def last_seq(self, connection: psycopg.Connection[Any]) -> int:
        with self._snapshot(connection) as ready:
            if not ready:
                return 0
            return self._last(connection)

    def base_seq(self, connection: psycopg.Connection[Any]) -> int:
        with self._snapshot(connection) as ready:
            return meta_int(connection, "base_seq") if ready else 0

    @staticmethod
    def _last(connection: psycopg.Connection[Any]) -> int:
        row = connection.execute("SELECT max(seq) FROM chronolog_records").fetchone()
        last = int(row[0]) if row is not None and row[0] is not None else 0
        return max(last, meta_int(connection, "base_seq"))

    def snapshots(
        self, connection: psycopg.Connection[Any]
    ) -> tuple[int, bytes | None, tuple[int, str, bytes, bytes | None] | None]:
        """In one snapshot: the base seq, the base snapshot, and the newest snapshot
        after the base as (seq, record checksum, document, the record stored at seq)."""
        with self._snapshot(connection) as ready:
            if not ready:
                return 0, None, None
            base_seq = meta_int(connection, "base_seq")
            if self._floor is None:
                self._floor = base_seq
            base = None
            if base_seq:
                row = connection.execute(
                    "SELECT state FROM chronolog_snapshots WHERE seq = %s", (base_seq,)
                ).fetchone()
                base = bytes(row[0]) if row is not None else None
            newest = connection.execute(
                "SELECT s.seq, s.record_sha256, s.state, r.record "
                "FROM chronolog_snapshots AS s "
                "LEFT JOIN chronolog_records AS r ON r.seq = s.seq "
                "WHERE s.seq > %s ORDER BY s.seq DESC LIMIT 1",
                (base_seq,),
            ).fetchone()
        if newest is None:
            return base_seq, base, None
        seq, checksum, document, record = newest
        return (
            base_seq,
            base,
            (int(seq), str(checksum), bytes(document), None if record is None else bytes(record)),
        )

    def page(
        self,
        connection: psycopg.Connection[Any],
        after_seq: int,
        limit: int | None,
        rows: int = PAGE_ROWS,
    ) -> list[Event]:
        """The records after ``after_seq`` (up to seq ``limit``), ``rows`` at most.

        Seqs are contiguous from the base, and a page is read in one snapshot
        with the last seq, so a record missing from the middle or the end of
        what exists raises `LogCorrupted` instead of going unnoticed.
        """
        if self._damage is not None:
            raise self._damage
        after_seq = max(after_seq, 0)
        with self._snapshot(connection) as ready:
            if not ready:
                return []
            base_seq = meta_int(connection, "base_seq")
            if self._floor is None:
                self._floor = base_seq
            after_seq = max(after_seq, self._floor)
            if after_seq < base_seq:
                raise LogCorrupted(
                    f"{self._shown} was compacted while being read: the records up to seq "
                    f"{base_seq} were folded into its base, and this reader had only read up "
                    f"to seq {after_seq}; read the log again from the start"
                )
            last = self._last(connection)
            if limit is not None:
                last = min(last, limit)
            if last <= after_seq:
                return []
            found, previous = self.rows(connection, after_seq, last, base_seq, rows)
        # Damage after intact records is reported at the next read.
        records, self._damage = checked_page(
            found,
            after_seq=after_seq,
            last=last,
            page_rows=rows,
            previous=previous,
            checksums=True,
            damaged=functools.partial(damaged, self._shown),
        )
        return records

    def rows(
        self,
        connection: psycopg.Connection[Any],
        after_seq: int,
        last: int,
        base_seq: int,
        rows: int = PAGE_ROWS,
    ) -> tuple[list[Row], int]:
        """Up to ``rows`` stored rows after ``after_seq`` (up to seq ``last``), and the
        checksum they go on from; inside the caller's transaction."""
        if after_seq == base_seq:
            previous = meta_int(connection, "chain")
        else:
            row = connection.execute(
                "SELECT crc FROM chronolog_records WHERE seq = %s", (after_seq,)
            ).fetchone()
            if row is None:
                raise damaged(self._shown, after_seq, "is missing")
            previous = int(row[0])
        found: list[Row] = [
            (int(seq), bytes(record), int(crc))
            for seq, record, crc in connection.execute(
                "SELECT seq, record, crc FROM chronolog_records "
                "WHERE seq > %s AND seq <= %s ORDER BY seq LIMIT %s",
                (after_seq, last, rows),
            )
        ]
        return found, previous

    def checked(self, found: list[Row], after_seq: int, previous: int) -> list[Event]:
        """The records of rows read by `rows` (a whole range, for a writer's turn), every
        one checked: `LogCorrupted` at the first damage, and no record of the range."""
        for index, row in enumerate(found):
            if row[0] != after_seq + 1 + index:
                raise damaged(self._shown, after_seq + 1 + index, "is missing")
        records, damage = decode_rows(
            found, previous, checksums=True, damaged=functools.partial(damaged, self._shown)
        )
        if damage is not None:
            raise damage
        return records

    def pages(
        self, connection: psycopg.Connection[Any], after_seq: int, limit: int
    ) -> Iterator[list[Event]]:
        """The records after ``after_seq`` up to seq ``limit``, a page at a time."""
        while after_seq < limit:
            page = self.page(connection, after_seq, limit)
            if not page:
                return
            yield page
            after_seq = page[-1].seq


def damaged(shown: str, seq: int, problem: str) -> LogCorrupted:
    return LogCorrupted(
        f"{shown}: the record with seq {seq} {problem}. The log is damaged there; the records "
        f"before it are intact: restore the database from a backup "
        f"(docs/how-to/recover-a-damaged-log.md)"
    )
