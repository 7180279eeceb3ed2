"""The tables of a `PostgresLog` database, their versions, and how they are migrated.

Tables (all named ``chronolog_*``, so a log can live in an application's own
database, beside its tables):

``chronolog_records``
    one row per record: ``seq`` (the primary key), ``record`` (the record's
    compact JSON, the bytes of one `FileLog` line without its checksum
    field), ``crc`` (the checksum chain, as in `SQLiteLog`), ``batch`` (the
    append that wrote it: read back when a commit's outcome is unknown), and
    the uniqueness keys: ``claim_*`` for ``Started`` (one claim per attempt),
    ``settle_*`` for ``Completed`` and ``Failed`` (one outcome per attempt)
    and ``final_occurrence`` for the record that settles an occurrence for
    good (``Completed``, ``Failed`` without a retry, ``Skipped``): one per
    occurrence. Each has a unique index, so the database itself refuses a
    second claim or settlement, whichever node writes it.
``chronolog_meta``
    key/value text: the format name, the record format version, the schema
    version, and after a compaction the base seq and the checksum the records
    after it go on from.
``chronolog_snapshots``
    the base of a compacted log and the newest snapshot, as in `SQLiteLog`.
``chronolog_nodes``
    one row per scheduler process (node) with its lease: who it is and until
    when (database time) it counts as alive.

Versions: ``schema`` counts changes of this layout. Each step in `_STEPS`
takes a database from one schema version to the next, in one transaction,
under the schema lock (an advisory lock), so that several nodes starting at
once create the tables once. A database with a schema newer than this code
knows is refused, with what to do.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from .._errors import LogCorrupted
from .._events import CHECKSUM_VERSION, FORMAT_NAME, FORMAT_VERSION
from .._strict import RECOVERY_GUIDE

if TYPE_CHECKING:
    from collections.abc import Iterator

    import psycopg

__all__ = [
    "APPEND_LOCK",
    "NOTIFY_CHANNEL",
    "SCHEMA_VERSION",
    "Format",
    "check_format",
    "migrate",
    "needs_tables",
    "schema_lock",
]

#: The layout of the tables; the records inside follow ``FORMAT_VERSION``.
#: 1: records, meta, snapshots and the claim index; 2: one settlement per
#: attempt and per occurrence, and the nodes' leases.
SCHEMA_VERSION: Final = 2
#: The advisory locks (two int4 keys; the first spells "chlg"). Advisory
#: locks belong to one database, so two logs in two databases never wait
#: for each other.
_LOCK_SPACE: Final = 0x63686C67
APPEND_LOCK: Final = (_LOCK_SPACE, 1)
SCHEMA_LOCK: Final = (_LOCK_SPACE, 2)
#: The channel every append notifies, with its last seq as the payload.
NOTIFY_CHANNEL: Final = "chronolog_records"

_STEPS: Final[dict[int, tuple[str, ...]]] = {
    1: (
        "CREATE TABLE chronolog_meta (key text PRIMARY KEY, value text NOT NULL)",
        "CREATE TABLE chronolog_records ("
        " seq bigint PRIMARY KEY,"
        " record bytea NOT NULL,"
        " crc bigint NOT NULL,"
        " batch uuid NOT NULL,"
        " claim_occurrence text,"
        " claim_attempt integer)",
        "CREATE UNIQUE INDEX chronolog_claims ON chronolog_records"
        " (claim_occurrence, claim_attempt) WHERE claim_occurrence IS NOT NULL",
        "CREATE TABLE chronolog_snapshots ("
        " seq bigint PRIMARY KEY,"
        " record_sha256 text NOT NULL,"
        " state bytea NOT NULL)",
        f"INSERT INTO chronolog_meta (key, value) VALUES ('format', '{FORMAT_NAME}'),"
        f" ('version', '{CHECKSUM_VERSION}'), ('schema', '1')",
    ),
    2: (
        "ALTER TABLE chronolog_records ADD COLUMN settle_occurrence text,"
        " ADD COLUMN settle_attempt integer, ADD COLUMN final_occurrence text",
        "CREATE UNIQUE INDEX chronolog_settlements ON chronolog_records"
        " (settle_occurrence, settle_attempt) WHERE settle_occurrence IS NOT NULL",
        "CREATE UNIQUE INDEX chronolog_final ON chronolog_records"
        " (final_occurrence) WHERE final_occurrence IS NOT NULL",
        "CREATE TABLE chronolog_nodes ("
        " node text PRIMARY KEY,"
        " instance text NOT NULL,"
        " started_at timestamptz NOT NULL,"
        " renewed_at timestamptz NOT NULL,"
        " expires_at timestamptz NOT NULL)",
        "UPDATE chronolog_meta SET value = '2' WHERE key = 'schema'",
    ),
}
assert max(_STEPS) == SCHEMA_VERSION


class Format(NamedTuple):
    """The record version and table schema of a chronolog database."""

    version: int
    schema: int


def check_format(connection: psycopg.Connection[Any], shown: str) -> Format | None:
    """The format of the log in the database, if this version reads it; None if
    the database holds no chronolog tables yet; `LogCorrupted` otherwise."""
    meta_table, records_table = connection.execute(
        "SELECT to_regclass('chronolog_meta'), to_regclass('chronolog_records')"
    ).fetchone() or (None, None)
    if meta_table is None and records_table is None:
        return None
    if meta_table is None or records_table is None:
        missing = "chronolog_meta" if meta_table is None else "chronolog_records"
        raise LogCorrupted(
            f"{shown} has some of chronolog's tables but not {missing}: the log is damaged "
            f"(or was partly dropped); restore the database from a backup"
        )
    meta = dict(connection.execute("SELECT key, value FROM chronolog_meta").fetchall())
    try:
        version, schema = int(meta["version"]), int(meta["schema"])
    except (KeyError, ValueError):
        version = schema = 0
    if meta.get("format") != FORMAT_NAME or version < 1 or schema < 1:
        raise LogCorrupted(
            f"{shown} is not a chronolog log (its chronolog_meta table holds {meta!r}; a log "
            f"holds format {FORMAT_NAME!r}, a version and a schema); check the DSN"
        )
    if version > FORMAT_VERSION:
        raise LogCorrupted(
            f"{shown} was written by format version {version}; this chronolog reads versions "
            f"1 to {FORMAT_VERSION} -- upgrade chronolog to read it"
        )
    if schema > SCHEMA_VERSION:
        raise LogCorrupted(
            f"{shown} uses PostgreSQL log schema {schema}; this chronolog knows schemas 1 to "
            f"{SCHEMA_VERSION} -- upgrade chronolog (on every node) to use it"
        )
    if version != CHECKSUM_VERSION:
        raise LogCorrupted(
            f"{shown} says record format version {version}, but a PostgreSQL log is always "
            f"written as version {CHECKSUM_VERSION}: chronolog_meta was changed; restore the "
            f"database from a backup ({RECOVERY_GUIDE})"
        )
    return Format(version, schema)


def needs_tables(form: Format | None, shown: str) -> bool:
    """For a writer: True when the database has no tables yet (they are created);
    `LogCorrupted` when its schema is older than this code writes."""
    if form is None:
        return True
    if form.schema < SCHEMA_VERSION:
        raise LogCorrupted(
            f"{shown} uses PostgreSQL log schema {form.schema}, older than schema "
            f"{SCHEMA_VERSION} that this chronolog writes; run `chronolog db upgrade` on it "
            f"(once every node runs this version), then start the scheduler again"
        )
    return False


@contextlib.contextmanager
def schema_lock(connection: psycopg.Connection[Any]) -> Iterator[None]:
    """Hold the schema lock (a session lock; `migrate` takes it again inside, which
    PostgreSQL counts) for the block: nobody migrates meanwhile."""
    connection.execute("SELECT pg_advisory_lock(%s, %s)", SCHEMA_LOCK)
    try:
        yield
    finally:
        if not connection.closed and not connection.broken:
            connection.execute("SELECT pg_advisory_unlock(%s, %s)", SCHEMA_LOCK)


def migrate(connection: psycopg.Connection[Any], shown: str) -> tuple[int, int]:
    """Bring the database to `SCHEMA_VERSION`, step by step; (schema before, after).

    Each step is one transaction, under the schema lock, so concurrent callers
    (nodes starting at once) apply it once; a failed step leaves the database
    at the version before it. 0 before means the tables did not exist.

    The lock is a session lock taken *before* each transaction begins: a
    transaction that began before another one created the tables may still
    believe, from its catalog cache, that they do not exist.
    """
    before: int | None = None
    while True:
        connection.execute("SELECT pg_advisory_lock(%s, %s)", SCHEMA_LOCK)
        try:
            connection.execute("BEGIN")
            try:
                form = check_format(connection, shown)
                current = form.schema if form is not None else 0
                if before is None:
                    before = current
                if current < SCHEMA_VERSION:
                    for statement in _STEPS[current + 1]:
                        connection.execute(statement.encode())
                connection.execute("COMMIT")
            except BaseException:
                if not connection.closed and not connection.broken:
                    connection.execute("ROLLBACK")
                raise
        finally:
            if not connection.closed and not connection.broken:
                connection.execute("SELECT pg_advisory_unlock(%s, %s)", SCHEMA_LOCK)
        if current >= SCHEMA_VERSION:
            return before, current
