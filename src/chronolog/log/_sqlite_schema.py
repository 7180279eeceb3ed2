"""The tables of a `SQLiteLog` database, and the values it keeps beside its records.

``chronolog_records`` holds one row per record -- ``seq`` (the primary
key), ``record`` (the record as the same compact JSON that is one line of a
`FileLog`, without its checksum field), ``crc`` (the checksum chain, see
`chronolog.log._checksum`), and for ``Started`` rows ``claim_occurrence``
and ``claim_attempt``, under a unique index: the database itself refuses a
second claim of an attempt, whichever connection writes it.
``chronolog_meta`` names the format, its record version and the table
layout version (`check_format` reads them before anything is written), and
after a compaction the base seq and the checksum the records after it go on
from. ``chronolog_snapshots``, created by the first snapshot, holds the
newest snapshot and the base of a compacted log.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, NamedTuple

from .._errors import LogCorrupted
from .._events import CHECKSUM_VERSION, FORMAT_NAME, FORMAT_VERSION
from .._strict import RECOVERY_GUIDE
from ._checksum import chain_of_rows
from ._sqlite_connection import transaction

if TYPE_CHECKING:
    import sqlite3
    from pathlib import Path

__all__ = [
    "INSERT",
    "SNAPSHOT_TABLE",
    "Format",
    "base_seq_of",
    "chain_of",
    "check_format",
    "create_tables",
    "has_snapshots",
    "last_chain",
    "upgrade",
]

#: The layout of the tables below; the records inside follow ``FORMAT_VERSION``.
#: 1: no checksums (record versions 1 and 2); 2: the ``crc`` column.
SCHEMA_VERSION: Final = 2

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
SNAPSHOT_TABLE: Final = (
    "CREATE TABLE IF NOT EXISTS chronolog_snapshots ("
    " seq INTEGER PRIMARY KEY,"
    " record_sha256 TEXT NOT NULL,"
    " state BLOB NOT NULL)"
)
INSERT: Final = (
    "INSERT INTO chronolog_records (seq, record, claim_occurrence, claim_attempt, crc) "
    "VALUES (?, ?, ?, ?, ?)"
)
#: Rows an upgrade gives their checksums in one statement.
_UPGRADE_ROWS: Final = 4096


class Format(NamedTuple):
    """The record version and table schema of a chronolog database."""

    version: int
    schema: int

    @property
    def checksums(self) -> bool:
        return self.schema >= 2


def check_format(connection: sqlite3.Connection, path: Path) -> Format | None:
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
    return Format(version, schema)


def create_tables(connection: sqlite3.Connection) -> None:
    """Make an empty database a log of the current format, in one transaction."""
    with transaction(connection):
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


def base_seq_of(connection: sqlite3.Connection) -> int:
    """The base seq a compaction left in ``chronolog_meta`` (0 if none)."""
    row = connection.execute("SELECT value FROM chronolog_meta WHERE key = 'base_seq'").fetchone()
    return int(row[0]) if row is not None else 0


def chain_of(connection: sqlite3.Connection) -> int:
    """The checksum the first record after the base goes on from (0 if none was left)."""
    row = connection.execute("SELECT value FROM chronolog_meta WHERE key = 'chain'").fetchone()
    return int(row[0]) if row is not None else 0


def last_chain(connection: sqlite3.Connection, last_seq: int) -> int:
    """The checksum of the row at ``last_seq``, or the base's if it is the base."""
    row = connection.execute(
        "SELECT crc FROM chronolog_records WHERE seq = ?", (last_seq,)
    ).fetchone()
    return int(row[0]) if row is not None and row[0] is not None else chain_of(connection)


def has_snapshots(connection: sqlite3.Connection) -> bool:
    """Whether the first snapshot has created ``chronolog_snapshots``."""
    row = connection.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'chronolog_snapshots'"
    ).fetchone()
    return row is not None


def upgrade(connection: sqlite3.Connection) -> None:
    """Give every row of a version 1 or 2 database its checksum, in one transaction:
    the database then is version 3 (schema 2). Nothing changes if it fails."""
    with transaction(connection):
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
