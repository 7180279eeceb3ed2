"""Reading a `SQLiteLog`: a read-only connection, a page of rows per query, checked.

A reader needs neither the writer lock nor Trio: WAL mode lets it read
while a writer in another process commits. Every page is read in one
SQLite read transaction together with the last seq, so what it checks
holds for one state of the database: seqs run on without a gap from the
base (a damaged database can hide rows from a range query without an
error), each row holds the record with its seq, and the checksum chain
holds up to the page's last row. Damage after some good records is raised
at the next call, once those records are handed out.
"""

from __future__ import annotations

import contextlib
import functools
import sqlite3
from typing import TYPE_CHECKING, Final, Self

from .._errors import LogCorrupted
from ._rows import Row, checked_page
from ._sqlite_connection import connect_reader, sqlite_error
from ._sqlite_schema import base_seq_of, chain_of, check_format, has_snapshots

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from .._events import Event

__all__ = ["PAGE_ROWS", "Reader"]

#: Rows fetched (and decoded) per query: big enough to decode fast, small
#: enough that a reader never holds a read transaction for long.
PAGE_ROWS: Final = 1024


class Reader:
    """A read-only connection to a log, used by one thread at a time."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._connection = connect_reader(path)
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

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def pages(self, after_seq: int, limit: int) -> Iterator[list[Event]]:
        """The records after ``after_seq`` up to seq ``limit``, a page at a time."""
        while after_seq < limit:
            page = self.page(after_seq, limit)
            if not page:
                return  # rows deleted under the reader: do not spin
            yield page
            after_seq = page[-1].seq

    def last_seq(self) -> int:
        with self._reading():
            self._connection.execute("BEGIN")
            try:
                if not self._ready():
                    return 0
                (last,) = self._connection.execute(
                    "SELECT max(seq) FROM chronolog_records"
                ).fetchone()
                base_seq = base_seq_of(self._connection)
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
                base_seq = base_seq_of(self._connection)
                # Records the reader reads from now on come after this base.
                if self._floor is None:
                    self._floor = base_seq
                if not has_snapshots(self._connection):
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
                base_seq = base_seq_of(self._connection)
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
        # Damage after intact records is reported at the next read.
        records, self._damage = checked_page(
            rows,
            after_seq=after_seq,
            last=last,
            page_rows=PAGE_ROWS,
            previous=previous,
            checksums=self._checksums,
            damaged=functools.partial(damaged, self._path),
        )
        return records

    def _rows(
        self, after_seq: int, limit: int | None, base_seq: int
    ) -> tuple[list[Row], int, int]:
        """A page of rows after ``after_seq``, the last seq (at most ``limit``), and
        the checksum the page goes on from (0 without checksums)."""
        connection = self._connection
        last: int = connection.execute("SELECT max(seq) FROM chronolog_records").fetchone()[0] or 0
        if limit is not None:
            last = min(last, limit)
        if not self._checksums:
            rows: list[Row] = connection.execute(
                # As a BLOB: the bytes msgspec decodes, without making a str first.
                "SELECT seq, CAST(record AS BLOB), NULL FROM chronolog_records "
                "WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?",
                (after_seq, last, PAGE_ROWS),
            ).fetchall()
            return rows, last, 0
        if after_seq == base_seq:
            previous = chain_of(connection)
        else:
            row = connection.execute(
                "SELECT crc FROM chronolog_records WHERE seq = ?", (after_seq,)
            ).fetchone()
            if row is None or row[0] is None:
                raise damaged(
                    self._path,
                    after_seq,
                    "is missing" if row is None else "has no checksum",
                )
            previous = int(row[0])
        rows = connection.execute(
            "SELECT seq, CAST(record AS BLOB), crc FROM chronolog_records "
            "WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?",
            (after_seq, last, PAGE_ROWS),
        ).fetchall()
        return rows, last, previous

    def _ready(self) -> bool:
        """Whether the tables exist (checking their format the first time they do)."""
        if not self._checked:
            form = check_format(self._connection, self._path)
            self._checked = form is not None
            self._checksums = form is not None and form.checksums
        return self._checked

    def format_version(self) -> int | None:
        """The record format version; None before the tables exist."""
        with self._reading():
            self._connection.execute("BEGIN")
            try:
                form = check_format(self._connection, self._path)
            finally:
                self._connection.execute("COMMIT")
        return form.version if form is not None else None

    @contextlib.contextmanager
    def _reading(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise sqlite_error(exc, self._path, f"cannot read log {self._path}") from exc


def damaged(path: Path, seq: int, problem: str) -> LogCorrupted:
    return LogCorrupted(
        f"{path}: the record with seq {seq} {problem}. The log is damaged there; the records "
        f"before it are intact: restore the log from a backup, or try "
        f"`sqlite3 {path} .recover`"
    )
