"""`PostgresLog`: one event log in a PostgreSQL database, shared by many schedulers.

Several scheduler processes -- on one machine or many -- append to one log.
PostgreSQL is the coordinator; chronolog adds no consensus of its own:

* **One global order.** Every append is one transaction that first takes a
  transaction-scoped advisory lock (`APPEND_LOCK`), then reads the last seq
  and checksum, and numbers its records after them. Appends are therefore
  serialised: the next one can read the last seq only once the previous one
  has committed and its rows are visible. So seqs are contiguous *and in
  commit order*: a reader that has seen seq ``n`` has seen every seq below
  it, and one that reads ``seq > last`` never misses a row that commits
  later with a smaller seq (what a sequence would allow).
* **Claims and settlements** are unique indexes (see ``_postgres_schema``):
  a second ``Started`` of an attempt, a second outcome of an attempt, a
  second final settlement of an occurrence is refused by the database, with
  `ClaimConflict`, whichever node writes it; nothing of that batch is kept.
* **Turns.** A scheduler does not only append: it decides what to append
  from what the log says. `PostgresLog.appending` opens a *turn*: the append
  lock is taken, the records other writers appended since the caller's
  position are read, and the caller folds them, checks its batch against
  the result, and appends -- all before the lock is released. (The
  scheduler's writer does this for every batch; see ``_shared_writer``.)
* **Unknown outcomes.** If the connection breaks while ``COMMIT`` is on its
  way, the append's outcome is unknown. It is never guessed: the log
  reconnects (backing off), takes the append lock -- so the old transaction
  is over, committed or rolled back -- and reads the row at the batch's
  first seq back: its ``batch`` column says whether the append landed.
* **Notifications.** Every append notifies the channel `NOTIFY_CHANNEL` with
  its last seq; followers ``LISTEN`` and read by seq to catch up (and look
  again every ``poll_interval`` in case a notification was missed).
* **Leases** of scheduler processes live in ``chronolog_nodes`` (see
  `PostgresLog.renew_lease`); what they mean is the runtime's business
  (``chronolog._leases``).

Threads: psycopg's asynchronous API runs on asyncio only, so every call
runs psycopg's synchronous API in a worker thread (``trio.to_thread``), as
`SQLiteLog` does with ``sqlite3``; waiting for a notification is the one
exception, done in Trio itself on the connection's socket.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Self

import attrs
import psycopg
import psycopg.errors
import trio

from .._errors import ConfigError, LogClosed
from .._projection import DEFAULT_HISTORY_LIMIT, State, fold_into
from .._snapshot import encode_state
from .._strict import fold_strictly
from ._base import (
    EventLog,
    check_snapshot_point,
    check_unappended,
    newest_stored_state,
    stored_base,
)
from ._postgres_connection import (
    MAX_BACKOFF_SECONDS,
    Pool,
    connect,
    describe_dsn,
    parse_dsn,
    postgres_error,
)
from ._postgres_notify import Notifications
from ._postgres_reader import PAGE_ROWS, Reader, meta_int
from ._postgres_schema import (
    APPEND_LOCK,
    check_format,
    migrate,
    needs_tables,
    schema_lock,
)
from ._postgres_turn import Turn, roll_back

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator, Sequence

    from .._events import Event

__all__ = ["LeaseHolder", "Notifications", "PostgresLog", "Turn"]

logger = logging.getLogger("chronolog.log")


@attrs.frozen
class LeaseHolder:
    """A node's lease as the database holds it (see `PostgresLog.nodes`)."""

    node: str
    instance: str
    started_at: datetime
    renewed_at: datetime
    expires_at: datetime
    """In the database's time, as every lease is."""
    alive: bool


class PostgresLog(EventLog):
    """An event log in a PostgreSQL database, for one or many writer processes.

    ``dsn`` is a libpq URL, ``postgresql://user:password@host:5432/database``
    (``postgres://`` too; options as query parameters, such as
    ``?sslmode=require`` or ``?host=/run/postgresql`` for a unix socket).

    ``async with PostgresLog(dsn) as log:`` opens it for writing: it creates
    chronolog's tables in an empty database (``chronolog db init`` does the
    same explicitly), refuses a schema older than this code writes (run
    ``chronolog db upgrade``) or newer than it knows, and opens a pool of at
    most ``pool_size`` connections. Reading needs no opening:
    ``PostgresLog(dsn).read()`` works from any thread or process.

    Unlike the local logs, many processes may hold the same log open for
    writing at once: that is what it is for (see the module docstring for
    how order, claims and commit outcomes are kept). ``poll_interval`` is
    how often a follower looks again when no notification came.

    Errors: a database that cannot be reached, a wrong password, a full disk
    raise ``OSError`` of the usual subclass, naming the log without its
    password, with psycopg's error as ``__cause__``; a database whose
    contents are not a sound log raises `LogCorrupted`.
    """

    enforces_claims = True
    shared: ClassVar[bool] = True

    def __init__(
        self,
        dsn: str,
        *,
        pool_size: int = 4,
        poll_interval: timedelta = timedelta(seconds=1),
        lease: timedelta = timedelta(seconds=10),
        application_name: str = "chronolog",
    ) -> None:
        parse_dsn(dsn)  # ConfigError for a URL libpq cannot read
        if lease < timedelta(seconds=1):
            raise ConfigError(f"lease must be at least 1 s, got {lease}")
        if pool_size < 2:
            raise ValueError(f"pool_size must be at least 2, got {pool_size}")
        if poll_interval <= timedelta(0):
            raise ValueError(f"poll_interval must be a positive duration, got {poll_interval!r}")
        self._dsn = dsn
        self._shown = describe_dsn(dsn)
        self._pool_size = pool_size
        self._poll_seconds = poll_interval.total_seconds()
        self._poll_interval = poll_interval
        self._lease = lease
        self.application_name = application_name
        self._pool: Pool | None = None
        self._closed = False
        self._finished = False
        self._write_lock = trio.Lock()
        self._appended = trio.Event()
        #: The last seq this object knows of (appended through it, or read in a turn).
        self._known_seq = 0
        #: A test's hook into every append, called at "before-commit" and at
        #: "after-commit" with the connection (to break it there).
        self.fault: Callable[[str, psycopg.Connection[Any]], None] | None = None

    def __repr__(self) -> str:
        return f"PostgresLog({self._shown!r})"

    @property
    def dsn(self) -> str:
        """The DSN the log was given (with its password, if it has one)."""
        return self._dsn

    @property
    def shown(self) -> str:
        """The DSN as messages show it: without the password."""
        return self._shown

    @property
    def poll_interval(self) -> timedelta:
        """How often a follower looks again when no notification came."""
        return self._poll_interval

    @property
    def lease(self) -> timedelta:
        """How long a scheduler on this log counts as alive after its last renewal
        (it renews every quarter of it); see ``docs/how-to/run-several-nodes.md``."""
        return self._lease

    @property
    def is_open(self) -> bool:
        """Whether this object holds the log open for writing (a pool of connections)."""
        return self._pool is not None

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def last_seq(self) -> int:
        """The seq of the last record in the database (0 for an empty log).

        Other processes append too, so this is read from the database at each
        call (a blocking query: from Trio code, call it in a worker thread).
        """
        with self._own_connection("read") as connection:
            return Reader(self._dsn, self._shown).last_seq(connection)

    @property
    def base_seq(self) -> int:
        """The seq of the last record folded into the base by a compaction (0 if none)."""
        with self._own_connection("read") as connection:
            return Reader(self._dsn, self._shown).base_seq(connection)

    @property
    def format_version(self) -> int | None:
        """The record format version in ``chronolog_meta`` (None before the tables
        exist): always 3 (records carry checksums)."""
        with self._own_connection("read") as connection:
            try:
                form = check_format(connection, self._shown)
            except psycopg.Error as exc:
                raise postgres_error(exc, self._dsn, f"cannot read log {self._shown}") from exc
        return form.version if form is not None else None

    def schema(self, *, create: bool = False, upgrade: bool = False) -> tuple[int, int]:
        """The schema version of chronolog's tables before and after: created when
        ``create`` and the database has none (before is 0), migrated to the
        newest when ``upgrade`` (``chronolog db init`` and ``db upgrade``).

        A blocking call. A schema newer than this code knows is `LogCorrupted`,
        saying to upgrade chronolog; nothing is changed then.
        """
        with self._own_connection("prepare") as connection:
            try:
                with schema_lock(connection):
                    form = check_format(connection, self._shown)
                    before = 0 if form is None else form.schema
                    if (form is None and create) or (form is not None and upgrade):
                        return migrate(connection, self._shown)
            except psycopg.Error as exc:
                raise postgres_error(exc, self._dsn, f"cannot prepare log {self._shown}") from exc
        return before, before

    def exists(self) -> bool:
        """Whether the database holds chronolog's tables (checking their format).

        A blocking call; raises ``OSError`` when the database cannot be reached.
        """
        with self._own_connection("read") as connection:
            return Reader(self._dsn, self._shown).exists(connection)

    # -- connections ----------------------------------------------------------

    @contextlib.contextmanager
    def _own_connection(self, purpose: str) -> Iterator[psycopg.Connection[Any]]:
        """A connection of its own for one blocking call, closed afterwards."""
        what = f"cannot {purpose} log {self._shown}"
        connection = connect(self._dsn, application_name=self.application_name, what=what)
        try:
            yield connection
        finally:
            connection.close()

    def _check_writable(self) -> None:
        if self._closed:
            raise LogClosed(f"{self!r} is closed: nothing is appended after the log is closed")
        if self._pool is None:
            raise LogClosed(
                f"{self!r} is not open for writing: use `async with PostgresLog(...) as log` "
                f"or `await log.open()` before appending"
            )

    # -- opening and closing ---------------------------------------------------

    async def open(self) -> Self:
        """Open the log for writing (see the class docstring) and return it."""
        if self._closed:
            raise LogClosed(f"{self!r} was closed; create a new PostgresLog to open it again")
        if self._pool is not None:
            raise RuntimeError(f"{self!r} is already open for writing")
        self._known_seq = await trio.to_thread.run_sync(self._prepare)
        self._pool = Pool(
            self._dsn, max_size=self._pool_size, application_name=self.application_name
        )
        return self

    async def __aenter__(self) -> Self:
        if self._pool is not None:
            await trio.lowlevel.checkpoint()
            return self
        return await self.open()

    def _prepare(self) -> int:
        """Create the tables in an empty database, check the format; the last seq."""
        with self._own_connection("open for writing") as connection:
            try:
                # Under the schema lock: nodes starting at once on an empty
                # database wait while one creates the tables, step by step,
                # instead of finding them half made (an older schema).
                with schema_lock(connection):
                    form = check_format(connection, self._shown)
                    if needs_tables(form, self._shown):
                        before, after = migrate(connection, self._shown)
                        if before == 0:
                            logger.info(
                                "created chronolog's tables (schema %d) in %s",
                                after,
                                self._shown,
                            )
            except psycopg.Error as exc:
                what = f"cannot open log {self._shown} for writing"
                raise postgres_error(exc, self._dsn, what) from exc
            return Reader(self._dsn, self._shown).last_seq(connection)

    async def aclose(self) -> None:
        """Stop appending: wait for an append in flight, then close the pool."""
        if self._closed:
            await trio.lowlevel.checkpoint()
            return
        self._closed = True
        self._wake_followers()
        try:
            with trio.CancelScope(shield=True):
                async with self._write_lock:
                    pool, self._pool = self._pool, None
                    if pool is not None:
                        await trio.to_thread.run_sync(pool.close)
        finally:
            self._finished = True
            self._wake_followers()

    def _wake_followers(self) -> None:
        self._appended.set()
        self._appended = trio.Event()

    # -- appending ------------------------------------------------------------

    async def append(self, events: Sequence[Event]) -> list[Event]:
        """Append ``events`` as one transaction; see `EventLog.append`.

        Raises `ClaimConflict` (nothing kept) when the database refuses a
        claim or a settlement, ``OSError`` when the database cannot be written
        (nothing kept: an unknown outcome was resolved first).
        """
        batch = check_unappended(events)
        self._check_writable()
        if not batch:
            await trio.lowlevel.checkpoint()
            return []
        async with self.appending(None) as turn:
            return await turn.append(batch)

    @contextlib.asynccontextmanager
    async def appending(self, after_seq: int | None) -> AsyncIterator[Turn]:
        """A turn: the append lock, and the records appended since ``after_seq``.

        ``turn.records`` are the records after ``after_seq`` (none when it is
        None), read while holding the log's append lock, so nobody appends
        until the turn ends: fold them, decide, and ``await
        turn.append(events)`` (once, or not at all). Leaving the block
        releases the lock. Keep turns short: every writer of the log waits.
        """
        self._check_writable()
        async with self._write_lock:
            self._check_writable()
            pool = self._pool
            assert pool is not None
            turn = Turn(self, pool)
            await trio.to_thread.run_sync(turn.begin, after_seq)
            try:
                yield turn
            finally:
                with trio.CancelScope(shield=True):
                    await trio.to_thread.run_sync(turn.end)
                if turn.stored:
                    self._known_seq = max(self._known_seq, turn.stored[-1].seq)
                    self._wake_followers()

    # -- reading ----------------------------------------------------------------

    def read(self, after_seq: int = 0) -> Iterator[Event]:
        """Yield the records with ``seq > after_seq``, in order, up to the last one
        stored when reading began. Opens a connection of its own, for the
        duration of the iteration; raises `LogCorrupted` at a damaged record,
        after yielding every record before it."""
        with self._own_connection("read") as connection:
            reader = Reader(self._dsn, self._shown)
            limit = reader.last_seq(connection)
            for page in reader.pages(connection, after_seq, limit):
                yield from page

    async def read_after(self, after_seq: int, *, rows: int = PAGE_ROWS) -> list[Event]:
        """The records after ``after_seq``, at most ``rows`` of them (a worker thread,
        a pooled connection while the log is open)."""
        return await trio.to_thread.run_sync(self._read_after, after_seq, rows)

    def _read_after(self, after_seq: int, rows: int) -> list[Event]:
        reader = Reader(self._dsn, self._shown)
        pool = self._pool
        if pool is None:
            with self._own_connection("read") as connection:
                return reader.page(connection, after_seq, None, rows)
        with pool.connection(f"cannot read log {self._shown}") as connection:
            return reader.page(connection, after_seq, None, rows)

    def base_state(self, *, history_limit: int = DEFAULT_HISTORY_LIMIT) -> State:
        with self._own_connection("read") as connection:
            base_seq, base, _ = Reader(self._dsn, self._shown).snapshots(connection)
        return self._base_of(base_seq, base, history_limit)

    def load_state(
        self, *, history_limit: int = DEFAULT_HISTORY_LIMIT, strict: bool = True
    ) -> State:
        """The newest snapshot plus the records after it; see `EventLog.load_state`."""
        with self._own_connection("read") as connection:
            reader = Reader(self._dsn, self._shown)
            limit = reader.last_seq(connection)

            def start() -> tuple[State, Iterator[Event]]:
                state = self._newest_state(reader, connection, history_limit)
                pages = reader.pages(connection, state.seq, limit)
                return state, (record for page in pages for record in page)

            state, records = start()
            if not strict:
                return fold_into(state, records)
            return fold_strictly(state, records, recheck=start, where=self._shown)

    def _newest_state(
        self, reader: Reader, connection: psycopg.Connection[Any], history_limit: int
    ) -> State:
        """The newest usable snapshot, or else the base (or an empty State)."""
        return newest_stored_state(
            *reader.snapshots(connection), history_limit=history_limit, shown=self._shown
        )

    def _base_of(self, base_seq: int, base: bytes | None, history_limit: int) -> State:
        return stored_base(base_seq, base, history_limit=history_limit, shown=self._shown)

    # -- following ---------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def notifications(self) -> AsyncIterator[Notifications]:
        """A connection that listens for appends: see `Notifications`."""
        listener = Notifications(self)
        try:
            yield listener
        finally:
            listener.close()

    async def follow(self, after_seq: int = 0) -> AsyncGenerator[Event, None]:
        """Yield records as they land; see `EventLog.follow`.

        Woken by a notification of each append (and at once by appends
        through this object); looks again every ``poll_interval`` anyway. A
        database that cannot be reached is waited for, backing off, with a
        warning: following goes on once it is back.
        """
        reader = Reader(self._dsn, self._shown)
        connection: psycopg.Connection[Any] | None = None
        backoff = 0.1
        async with self.notifications() as listener:
            try:
                while True:
                    appended = self._appended
                    finished = self._finished
                    try:
                        if connection is None or connection.closed or connection.broken:
                            connection = await trio.to_thread.run_sync(
                                lambda: connect(
                                    self._dsn,
                                    application_name=self.application_name,
                                    what=f"cannot read log {self._shown}",
                                )
                            )
                        page = await trio.to_thread.run_sync(
                            reader.page, connection, after_seq, None
                        )
                    except OSError as exc:
                        if finished:
                            return
                        logger.warning("following %s: %s; trying again", self._shown, exc)
                        await trio.sleep(backoff)
                        backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
                        continue
                    backoff = 0.1
                    for record in page:
                        yield record
                    if page:
                        after_seq = page[-1].seq
                    if len(page) == PAGE_ROWS:
                        continue
                    if finished:
                        return
                    await self._wait_for_news(listener, appended, after_seq)
            finally:
                if connection is not None:
                    connection.close()

    async def _wait_for_news(
        self, listener: Notifications, appended: trio.Event, after_seq: int
    ) -> None:
        """Until an append through this object, a notification past ``after_seq``,
        or ``poll_interval``."""
        async with trio.open_nursery() as nursery:

            async def local() -> None:
                await appended.wait()
                nursery.cancel_scope.cancel()

            nursery.start_soon(local)
            with contextlib.suppress(OSError):
                await listener.wait(after_seq, self._poll_seconds)
            nursery.cancel_scope.cancel()

    # -- snapshots and compaction ----------------------------------------------

    async def save_snapshot(self, state: State, seq: int | None = None) -> None:
        """Keep ``state`` for `load_state`; see `EventLog.save_snapshot`.

        The log must be open for writing. The snapshot saved last (by any
        process) replaces the earlier ones.
        """
        point = check_snapshot_point(self, state, seq)
        self._check_writable()
        document = await trio.to_thread.run_sync(encode_state, state.copy())
        await self._store(point, document, as_base=False)

    async def compact(self, state: State) -> None:
        """Make ``state`` the base and drop the records it folds; see `EventLog.compact`.

        One transaction under the append lock. The claims of the deleted
        ``Started`` records go with them (the schedulers' projections still
        refuse them). A follower that has not read up to ``state.seq`` yet
        can no longer catch up record by record: compact while every node is
        running (they are seconds behind at most), keeping more than that.
        """
        self._check_writable()
        document = await trio.to_thread.run_sync(encode_state, state.copy())
        await self._store(state.seq, document, as_base=True)

    async def _store(self, seq: int, document: bytes, *, as_base: bool) -> None:
        self._check_writable()
        async with self._write_lock:
            self._check_writable()
            pool = self._pool
            assert pool is not None
            await trio.to_thread.run_sync(self._store_now, pool, seq, document, as_base)

    def _store_now(self, pool: Pool, seq: int, document: bytes, as_base: bool) -> None:
        action = "compact" if as_base else "save a snapshot of"
        what = f"could not {action} log {self._shown}"
        with pool.connection(what) as connection:
            try:
                connection.execute("BEGIN ISOLATION LEVEL READ COMMITTED")
                try:
                    connection.execute("SELECT pg_advisory_xact_lock(%s, %s)", APPEND_LOCK)
                    self._store_in(connection, seq, document, as_base=as_base)
                    connection.execute("COMMIT")
                except BaseException:
                    roll_back(connection)
                    raise
            except psycopg.Error as exc:
                raise postgres_error(exc, self._dsn, what, "the log is unchanged") from exc

    def _store_in(
        self, connection: psycopg.Connection[Any], seq: int, document: bytes, *, as_base: bool
    ) -> None:
        base_seq = meta_int(connection, "base_seq")
        if as_base and seq == base_seq:
            return
        row = connection.execute(
            "SELECT record, crc FROM chronolog_records WHERE seq = %s", (seq,)
        ).fetchone()
        if row is None:
            last = Reader._last(connection)
            raise ValueError(
                f"cannot {'compact' if as_base else 'save a snapshot of'} {self._shown} at seq "
                f"{seq}: no record with that seq is stored after the base at seq {base_seq} "
                f"(the last is seq {last})"
            )
        record, crc = bytes(row[0]), int(row[1])
        if as_base:
            connection.execute("DELETE FROM chronolog_snapshots WHERE seq < %s", (seq,))
            connection.execute("DELETE FROM chronolog_records WHERE seq <= %s", (seq,))
            for key, value in (("base_seq", seq), ("chain", crc)):
                connection.execute(
                    "INSERT INTO chronolog_meta (key, value) VALUES (%s, %s) "
                    "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                    (key, str(value)),
                )
        else:
            connection.execute("DELETE FROM chronolog_snapshots WHERE seq <> %s", (base_seq,))
        connection.execute(
            "INSERT INTO chronolog_snapshots (seq, record_sha256, state) VALUES (%s, %s, %s) "
            "ON CONFLICT (seq) DO UPDATE SET record_sha256 = EXCLUDED.record_sha256, "
            "state = EXCLUDED.state",
            (seq, hashlib.sha256(record).hexdigest(), document),
        )

    # -- leases ------------------------------------------------------------------

    async def renew_lease(self, node: str, instance: str, lease: timedelta) -> bool:
        """Hold (or go on holding) the lease of ``node`` until ``lease`` from now, in
        the database's time. False when another process (``instance``) holds a
        lease under the same node name that has not expired."""
        return await trio.to_thread.run_sync(
            self._renew_lease, node, instance, lease, abandon_on_cancel=True
        )

    def _renew_lease(self, node: str, instance: str, lease: timedelta) -> bool:
        with self._pooled(f"cannot renew the lease of node {node!r} in {self._shown}") as conn:
            row = conn.execute(
                "INSERT INTO chronolog_nodes AS n (node, instance, started_at, renewed_at,"
                " expires_at) VALUES (%s, %s, clock_timestamp(), clock_timestamp(),"
                " clock_timestamp() + %s) "
                "ON CONFLICT (node) DO UPDATE SET instance = EXCLUDED.instance,"
                " renewed_at = EXCLUDED.renewed_at, expires_at = EXCLUDED.expires_at,"
                " started_at = CASE WHEN n.instance = EXCLUDED.instance THEN n.started_at"
                " ELSE EXCLUDED.started_at END "
                "WHERE n.instance = EXCLUDED.instance OR n.expires_at < clock_timestamp() "
                "RETURNING instance",
                (node, instance, lease),
            ).fetchone()
        return row is not None

    async def release_lease(self, node: str, instance: str) -> None:
        """Give up the lease of ``node`` (held by ``instance``): a clean stop."""
        await trio.to_thread.run_sync(self._release_lease, node, instance, abandon_on_cancel=True)

    def _release_lease(self, node: str, instance: str) -> None:
        with self._pooled(f"cannot release the lease of node {node!r} in {self._shown}") as conn:
            conn.execute(
                "DELETE FROM chronolog_nodes WHERE node = %s AND instance = %s", (node, instance)
            )

    async def lost_nodes(self, nodes: Sequence[str]) -> set[str]:
        """Which of ``nodes`` hold no lease that is still valid (database time)."""
        if not nodes:
            await trio.lowlevel.checkpoint()
            return set()
        return await trio.to_thread.run_sync(self._lost_nodes, list(nodes), abandon_on_cancel=True)

    def _lost_nodes(self, nodes: list[str]) -> set[str]:
        with self._pooled(f"cannot read the leases in {self._shown}") as conn:
            rows = conn.execute(
                "SELECT name FROM unnest(%s::text[]) AS name WHERE NOT EXISTS ("
                " SELECT 1 FROM chronolog_nodes WHERE node = name"
                " AND expires_at > clock_timestamp())",
                (nodes,),
            ).fetchall()
        return {str(name) for (name,) in rows}

    async def live_nodes(self) -> list[str]:
        """The nodes whose lease is valid now (database time)."""
        return await trio.to_thread.run_sync(self._live_nodes, abandon_on_cancel=True)

    def _live_nodes(self) -> list[str]:
        with self._pooled(f"cannot read the leases in {self._shown}") as conn:
            rows = conn.execute(
                "SELECT node FROM chronolog_nodes WHERE expires_at > clock_timestamp()"
            ).fetchall()
        return [str(name) for (name,) in rows]

    async def forget_nodes(self, nodes: Sequence[str]) -> None:
        """Drop the expired lease rows of ``nodes`` (their runs were settled)."""
        await trio.to_thread.run_sync(self._forget_nodes, list(nodes), abandon_on_cancel=True)

    def _forget_nodes(self, nodes: list[str]) -> None:
        with self._pooled(f"cannot update the leases in {self._shown}") as conn:
            conn.execute(
                "DELETE FROM chronolog_nodes WHERE node = ANY(%s) "
                "AND expires_at < clock_timestamp()",
                (nodes,),
            )

    def nodes(self) -> list[LeaseHolder]:
        """Every node's lease, as the database holds it (blocking)."""
        with self._own_connection("read the leases of") as conn:
            try:
                exists = conn.execute("SELECT to_regclass('chronolog_nodes')").fetchone()
                if exists is None or exists[0] is None:
                    return []
                rows = conn.execute(
                    "SELECT node, instance, started_at, renewed_at, expires_at,"
                    " expires_at > clock_timestamp() FROM chronolog_nodes ORDER BY node"
                ).fetchall()
            except psycopg.Error as exc:
                raise postgres_error(exc, self._dsn, f"cannot read log {self._shown}") from exc
        return [LeaseHolder(*row) for row in rows]

    @contextlib.contextmanager
    def _pooled(self, what: str) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection while the log is open, else one of its own; psycopg's
        errors translated."""
        pool = self._pool
        try:
            if pool is None:
                connection = connect(self._dsn, application_name=self.application_name, what=what)
                try:
                    yield connection
                finally:
                    connection.close()
            else:
                with pool.connection(what) as connection:
                    yield connection
        except psycopg.Error as exc:
            raise postgres_error(exc, self._dsn, what) from exc
