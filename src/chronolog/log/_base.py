"""The interface every event log backend implements, and what local backends share.

An event log is an append-only, totally ordered sequence of *records*: events
whose ``seq`` the log assigned when it appended them. Everything else in
chronolog -- the task registry, de-duplication, run history -- is a fold of
it, so a backend's whole job is to keep records in order, keep them once
``append`` has returned, and give them back exactly as they were stored.
"""

from __future__ import annotations

import abc
import hashlib
import logging
import warnings
from typing import TYPE_CHECKING, Any, ClassVar, Self

import msgspec
import trio

from .._errors import LogClosed, LogCorrupted, SnapshotIgnored
from .._events import EventBase
from .._projection import DEFAULT_HISTORY_LIMIT, State, fold_into
from .._snapshot import SnapshotInvalid, decode_state, snapshot_info
from .._strict import fold_strictly

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Iterator, Sequence
    from types import TracebackType

    from .._events import Event

__all__ = ["EventLog"]

logger = logging.getLogger("chronolog.log")

#: A follower gives other tasks a turn after this many records without waiting.
FOLLOW_CHECKPOINT_EVERY = 1024


class EventLog(abc.ABC):
    """An append-only log of records, each with a strictly increasing ``seq``.

    ``async with log:`` opens it for writing and closes it on exit. Records
    stay readable with `read` after the log is closed; only `append` stops.
    """

    enforces_claims: ClassVar[bool] = False
    """Whether the log itself refuses a second ``Started`` for an (occurrence,
    attempt) with `ClaimConflict`, storing nothing of that batch (SQLite,
    PostgreSQL). Where it is False the log stores what it is given, and the
    scheduler's `LogWriter` enforces claims from the projection."""

    shared: ClassVar[bool] = False
    """Whether several processes append to this log at once (`PostgresLog`): a
    scheduler on it then follows what the others append, and decides each
    batch on the whole log (see ``chronolog._shared_writer``)."""

    @property
    @abc.abstractmethod
    def last_seq(self) -> int:
        """The ``seq`` of the last record, or 0 when the log is empty."""

    @property
    @abc.abstractmethod
    def closed(self) -> bool:
        """True once `aclose` has been called: nothing more can be appended."""

    @property
    def base_seq(self) -> int:
        """The seq up to which a compaction folded the records into the log's base
        snapshot (0 for a log that holds every record since the first).

        `read` yields records after it; `base_state` is what they fold onto.
        """
        return 0

    # -- snapshots -----------------------------------------------------------

    def base_state(self, *, history_limit: int = DEFAULT_HISTORY_LIMIT) -> State:
        """The State the stored records fold onto: the base snapshot of a
        compacted log, an empty State otherwise.

        ``base_state()`` then every record of ``read()`` replays the log from
        its beginning, as far as it still exists -- what a checker or a
        "state at time t" view needs. Synchronous, like `read`.
        """
        return State(history_limit=history_limit)

    def load_state(
        self, *, history_limit: int = DEFAULT_HISTORY_LIMIT, strict: bool = True
    ) -> State:
        """What the log says now: its newest snapshot plus the records after it.

        Equal to replaying every record (onto `base_state`), only faster. A
        snapshot that is damaged or belongs to another log is ignored with a
        `SnapshotIgnored` warning, and the log is replayed from its base
        instead: never a wrong state. Synchronous, like `read` (run it in a
        worker thread from Trio code).

        ``strict`` (the default: this is the state a writer acts on) refuses a
        log whose records after the snapshot break a rule of the log -- a
        ``Completed`` with no running attempt, an occurrence settled twice,
        ... -- with `LogCorrupted` naming the rule and the seq (the rules of
        `chronolog.check_invariants`). ``strict=False`` folds whatever is
        there, as `chronolog.replay` does.
        """

        def start() -> tuple[State, Iterator[Event]]:
            return self.base_state(history_limit=history_limit), self.read(self.base_seq)

        state, records = start()
        if not strict:
            return fold_into(state, records)
        return fold_strictly(state, records, recheck=start, where=repr(self))

    async def save_snapshot(self, state: State, seq: int | None = None) -> None:
        """Keep ``state`` -- the fold of this log's records up to ``seq`` -- so
        that `load_state` can start from it instead of from the base.

        ``seq`` defaults to ``state.seq``; given, it must be equal (a check
        against saving a state of another position). It must be the seq of
        a stored record after `base_seq`. The snapshot saved last replaces
        earlier ones. Raises `LogClosed` on a closed log. A backend that
        keeps no snapshots (this default) accepts the call and keeps
        nothing: snapshots only ever make opening faster.
        """
        check_snapshot_point(self, state, seq)
        await trio.lowlevel.checkpoint()

    async def compact(self, state: State) -> None:
        """Make ``state`` the log's base and drop the records it folds, atomically.

        ``state`` must be the fold of this log's records up to ``state.seq``
        (`chronolog.Scheduler.compact` and ``chronolog compact`` compute it).
        Afterwards `base_seq` is ``state.seq``, `read` starts after it, and
        seqs go on as before. The log must be open for writing. This default
        raises ``NotImplementedError``: the backend cannot compact.
        """
        await trio.lowlevel.checkpoint()
        raise NotImplementedError(f"{self!r} cannot be compacted")

    async def open(self) -> Self:
        """Make the log ready for `append` and return it.

        Backends that need no setup inherit this no-op; `FileLog` takes its
        lock and repairs a torn tail here.
        """
        await trio.lowlevel.checkpoint()
        return self

    @abc.abstractmethod
    async def append(self, events: Sequence[Event]) -> list[Event]:
        """Append ``events`` as one atomic batch and return the stored records.

        Each event must have ``seq == 0`` (``ValueError`` otherwise); each
        record returned is the event with the ``seq`` the log gave it. Seqs
        are contiguous: each is one more than the seq before it, on every
        backend (a reader that finds one missing raises `LogCorrupted`). The
        batch is durable when this returns (as far as the backend's
        durability setting promises). An empty batch returns ``[]`` and
        touches nothing. Raises `LogClosed` after `aclose`.
        """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # A subclass that changes `append` (to watch or alter what is
        # written) must see every append: an inherited `append_nowait` would
        # go round it, so it falls back to never appending without waiting.
        if "append" in cls.__dict__ and "append_nowait" not in cls.__dict__:
            cls.append_nowait = EventLog.append_nowait  # type: ignore[method-assign]

    def append_nowait(self, events: Sequence[Event]) -> list[Event]:
        """`append` without waiting and without a checkpoint, where the backend can.

        Raises ``trio.WouldBlock``, with nothing appended, when the append
        would have to wait (for I/O, or for another append in flight);
        otherwise it does what `append` does, errors included. This default
        always raises ``trio.WouldBlock``: backends that write to disk or to a
        server cannot append without waiting. `MemoryLog` can, and a
        scheduler's writer then spares two task switches per append. A
        subclass that overrides `append` and not this method gets this
        default, so that its `append` sees every record.
        """
        raise trio.WouldBlock

    @abc.abstractmethod
    def read(self, after_seq: int = 0) -> Iterator[Event]:
        """Yield the stored records with ``seq > after_seq``, in order.

        A plain synchronous iterator, for replay and offline tools; it works
        while a writer appends and never yields a record half-written.
        """

    @abc.abstractmethod
    def follow(self, after_seq: int = 0) -> AsyncGenerator[Event, None]:
        """Yield records with ``seq > after_seq`` as they land: existing ones first.

        Runs until the log is closed (after yielding every record appended
        before the close) or the caller cancels. Use it with
        ``contextlib.aclosing`` when leaving the loop early.
        """

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Stop appending: wait for an append in flight, then release resources.

        Idempotent, and completes even inside a cancelled scope.
        """

    async def __aenter__(self) -> Self:
        return await self.open()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()


def check_snapshot_point(log: EventLog, state: State, seq: int | None) -> int:
    """The seq a snapshot of ``state`` would be saved at, or the error saying why not."""
    if not isinstance(state, State):
        raise TypeError(
            f"save_snapshot() takes a chronolog State (from replay() or load_state()), "
            f"got {type(state).__name__}"
        )
    if seq is not None and seq != state.seq:
        raise ValueError(
            f"save_snapshot() was given seq {seq}, but the state has folded the records up "
            f"to seq {state.seq}; pass the state's own seq (or none)"
        )
    if log.closed:
        raise LogClosed(f"{log!r} is closed: no snapshot is saved after the log is closed")
    return state.seq


def state_from_snapshot(data: bytes, *, history_limit: int, where: str) -> State | None:
    """The State in snapshot ``data``, or None (with a warning) when it cannot be used.

    A snapshot whose history window is shorter than ``history_limit`` is
    passed over without a warning: it is sound, only not for this limit.
    """
    try:
        if snapshot_info(data).history_limit < history_limit:
            return None
        return decode_state(data, history_limit=history_limit)
    except SnapshotInvalid as exc:
        ignore_snapshot(where, str(exc))
        return None


def ignore_snapshot(where: str, reason: str) -> None:
    """Warn that a snapshot is not used, and why: the log is replayed without it."""
    message = (
        f"ignored the snapshot {where}: {reason}. The log is replayed from its base "
        f"instead (slower, never wrong); the next snapshot saved replaces it"
    )
    logger.warning("%s", message)
    warnings.warn(message, SnapshotIgnored, stacklevel=4)


def base_from_snapshot(data: bytes, *, history_limit: int, where: str) -> State:
    """The base State of a compacted log; `LogCorrupted` if it cannot be read.

    Unlike a snapshot, a base cannot be ignored -- the records it folds are
    gone. A base that keeps fewer runs per task than ``history_limit`` gives
    a shorter window of old runs; nothing else depends on it.
    """
    try:
        return decode_state(data, history_limit=history_limit, whole_history=False)
    except SnapshotInvalid as exc:
        raise LogCorrupted(
            f"{where}: the base snapshot of this compacted log cannot be read ({exc}); "
            f"restore the log from a backup"
        ) from exc


#: A database log's newest snapshot as read with its record: the seq it was
#: taken after, the SHA-256 that record had, the document, and the record's
#: bytes now (None: that record is gone).
StoredSnapshot = tuple[int, str, bytes, bytes | None]


def newest_stored_state(
    base_seq: int,
    base: bytes | None,
    newest: StoredSnapshot | None,
    *,
    history_limit: int,
    shown: str,
) -> State:
    """Where a database log's replay starts: its newest snapshot if that is still
    usable (taken after the very record the log holds at its seq), else its base."""
    if newest is not None:
        seq, expected, document, record = newest
        where = f"at seq {seq} in {shown}"
        if record is None or hashlib.sha256(record).hexdigest() != expected:
            ignore_snapshot(
                where,
                f"the record at seq {seq} is not the one it was taken after: the records "
                f"were changed since",
            )
        else:
            state = state_from_snapshot(document, history_limit=history_limit, where=where)
            if state is not None:
                return state
    return stored_base(base_seq, base, history_limit=history_limit, shown=shown)


def stored_base(base_seq: int, base: bytes | None, *, history_limit: int, shown: str) -> State:
    """A database log's base: empty when it was never compacted; `LogCorrupted`
    when it was and the base snapshot is gone or unreadable."""
    if base_seq == 0:
        return State(history_limit=history_limit)
    if base is None:
        raise LogCorrupted(
            f"{shown} was compacted up to seq {base_seq}, but its base snapshot is missing "
            f"from chronolog_snapshots: the log is damaged; restore it from a backup"
        )
    return base_from_snapshot(base, history_limit=history_limit, where=shown)


def check_unappended(events: Sequence[Event]) -> list[Event]:
    """``events`` as a list, or ``TypeError``/``ValueError`` if one cannot be appended."""
    batch = list(events)
    for index, event in enumerate(batch):
        if not isinstance(event, EventBase):
            raise TypeError(
                f"append() takes chronolog events; item {index} of the batch is "
                f"{type(event).__name__} {event!r}"
            )
        if event.seq != 0:
            raise ValueError(
                f"append() takes events that are not in a log yet (seq 0); item {index} "
                f"of the batch, {type(event).__name__} for task {event.task!r}, already "
                f"has seq {event.seq}. The log assigns seq: pass "
                f"msgspec.structs.replace(event, seq=0) to append it again."
            )

    return batch


class SequencedLog(EventLog):
    """What logs that number their own records (memory, file) share.

    Appends are serialised by one `trio.Lock`, so concurrent tasks never
    interleave their batches, and each batch reaches the backend through a
    single call to `_write` -- the one method a group-commit layer or a
    simulated clock needs to wrap. Followers wait on a `trio.Event` that
    every append (and the close) replaces.
    """

    def __init__(self) -> None:
        self._last_seq = 0
        self._closed = False
        # Set once the close has waited out any append in flight: from then
        # on no record can land through this object, so followers may stop.
        self._finished = False
        self._write_lock = trio.Lock()
        self._appended = trio.Event()

    @property
    def last_seq(self) -> int:
        return self._last_seq

    @property
    def closed(self) -> bool:
        return self._closed

    async def append(self, events: Sequence[Event]) -> list[Event]:
        batch = check_unappended(events)
        self._check_writable()
        if not batch:
            await trio.lowlevel.checkpoint()
            return []
        async with self._write_lock:
            # The log may have been closed while this task waited for the lock.
            self._check_writable()
            records = self._numbered(batch)
            await self._write(records)
            # No checkpoint between the write and these lines: a record that
            # was written is always counted, even if the caller is cancelled.
            self._stored(records)
        return records

    def _numbered(self, batch: list[Event]) -> list[Event]:
        """The records ``batch`` becomes: its events with the seqs that follow the log's."""
        first = self._last_seq + 1
        replace = msgspec.structs.replace
        return [replace(event, seq=first + offset) for offset, event in enumerate(batch)]

    def _stored(self, records: list[Event]) -> None:
        """Count ``records`` as written, and wake the followers."""
        self._last_seq = records[-1].seq
        self._wake_followers()

    async def aclose(self) -> None:
        if self._closed:
            await trio.lowlevel.checkpoint()
            return
        self._closed = True
        self._wake_followers()
        try:
            with trio.CancelScope(shield=True):
                async with self._write_lock:
                    await self._release()
        finally:
            self._finished = True
            self._wake_followers()

    @abc.abstractmethod
    async def _write(self, records: list[Event]) -> None:
        """Store ``records`` (already numbered) as one atomic, durable batch."""

    async def _release(self) -> None:
        """Free what the backend holds; called once, with no append in flight."""
        await trio.lowlevel.checkpoint()

    def _check_writable(self) -> None:
        if self._closed:
            raise LogClosed(f"{self!r} is closed: nothing is appended after the log is closed")

    def _wake_followers(self) -> None:
        self._appended.set()
        self._appended = trio.Event()
