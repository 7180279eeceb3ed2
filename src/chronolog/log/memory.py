"""`MemoryLog`: the event log as a Python list, for tests and simulations."""

from __future__ import annotations

import bisect
from operator import attrgetter
from typing import TYPE_CHECKING

import trio

from .._events import EventBase
from .._projection import DEFAULT_HISTORY_LIMIT, State, fold_into
from .._snapshot import encode_state, snapshot_info
from .._strict import fold_strictly
from ._base import (
    FOLLOW_CHECKPOINT_EVERY,
    SequencedLog,
    base_from_snapshot,
    check_snapshot_point,
    check_unappended,
    state_from_snapshot,
)

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Iterable, Iterator, Sequence

    from .._events import Event

__all__ = ["MemoryLog"]

_seq_of = attrgetter("seq")


class MemoryLog(SequencedLog):
    """An event log held in memory: same contract as every backend, no durability.

    ``MemoryLog(records)`` starts from existing records (for instance read from
    another log), whose seqs must run 1, 2, 3, ... without a gap, as in every
    log; new appends continue after the last one. It needs no opening (``async with``
    works and does nothing but close it at the end), and its records stay
    readable after it is closed.

    Snapshots and the base of a compaction are kept in memory, encoded as
    the same documents the other backends store, so they go through the
    same codec.
    """

    def __init__(self, records: Iterable[Event] = ()) -> None:
        super().__init__()
        self._records: list[Event] = []
        self._snapshot: bytes | None = None
        self._base: bytes | None = None
        self._base_seq = 0
        previous = 0
        for index, record in enumerate(records):
            if not isinstance(record, EventBase):
                raise TypeError(
                    f"MemoryLog takes chronolog records; record {index} is "
                    f"{type(record).__name__} {record!r}"
                )
            if record.seq != previous + 1:
                raise ValueError(
                    f"MemoryLog records must have contiguous seqs from 1, as every log's "
                    f"records do; record {index} has seq {record.seq} after seq {previous} "
                    f"(expected seq {previous + 1})"
                )
            previous = record.seq
            self._records.append(record)
        self._last_seq = previous

    def __repr__(self) -> str:
        return f"<MemoryLog with {len(self._records)} records, last seq {self._last_seq}>"

    @property
    def records(self) -> list[Event]:
        """A copy of every record, in order."""
        return list(self._records)

    def read(self, after_seq: int = 0) -> Iterator[Event]:
        start = bisect.bisect_right(self._records, after_seq, key=_seq_of)
        # A snapshot: records appended while the caller iterates are not included.
        return iter(self._records[start:])

    async def follow(self, after_seq: int = 0) -> AsyncGenerator[Event, None]:
        index = bisect.bisect_right(self._records, after_seq, key=_seq_of)
        while True:
            appended = self._appended
            finished = self._finished
            since_checkpoint = 0
            while index < len(self._records):
                yield self._records[index]
                index += 1
                since_checkpoint += 1
                if since_checkpoint >= FOLLOW_CHECKPOINT_EVERY:
                    since_checkpoint = 0
                    await trio.lowlevel.checkpoint()
            if finished:
                return
            await appended.wait()

    @property
    def base_seq(self) -> int:
        return self._base_seq

    def base_state(self, *, history_limit: int = DEFAULT_HISTORY_LIMIT) -> State:
        if self._base is None:
            return State(history_limit=history_limit)
        return base_from_snapshot(self._base, history_limit=history_limit, where=f"of {self!r}")

    def load_state(
        self, *, history_limit: int = DEFAULT_HISTORY_LIMIT, strict: bool = True
    ) -> State:
        def start() -> tuple[State, Iterator[Event]]:
            snapshot = self._snapshot
            if snapshot is not None:
                state = state_from_snapshot(
                    snapshot, history_limit=history_limit, where=f"of {self!r}"
                )
                if state is not None:
                    return state, self.read(state.seq)
            return self.base_state(history_limit=history_limit), self.read(self._base_seq)

        state, records = start()
        if not strict:
            return fold_into(state, records)
        return fold_strictly(state, records, recheck=start, where=repr(self))

    async def save_snapshot(self, state: State, seq: int | None = None) -> None:
        point = check_snapshot_point(self, state, seq)
        self._check_stored(point, "save a snapshot at")
        data = encode_state(state)
        await trio.lowlevel.checkpoint()
        self._snapshot = data

    async def compact(self, state: State) -> None:
        self._check_writable()
        async with self._write_lock:
            self._check_writable()
            point = state.seq
            if point == self._base_seq:
                return
            self._check_stored(point, "compact up to")
            base = encode_state(state)
            del self._records[: bisect.bisect_right(self._records, point, key=_seq_of)]
            self._base, self._base_seq = base, point
            if self._snapshot is not None and snapshot_info(self._snapshot).seq <= point:
                self._snapshot = None

    def _check_stored(self, seq: int, what: str) -> None:
        index = bisect.bisect_left(self._records, seq, key=_seq_of)
        if index == len(self._records) or self._records[index].seq != seq:
            raise ValueError(
                f"cannot {what} seq {seq} of {self!r}: no record with that seq is stored "
                f"(records after the base at seq {self._base_seq} run up to seq "
                f"{self._last_seq}); fold the log with load_state() and use that state"
            )

    def append_nowait(self, events: Sequence[Event]) -> list[Event]:
        """`append` at once, with no checkpoint; ``trio.WouldBlock`` while
        another append or a compaction holds the log."""
        if self._write_lock.locked():
            raise trio.WouldBlock
        batch = check_unappended(events)
        self._check_writable()
        if not batch:
            return []
        records = self._numbered(batch)
        self._records.extend(records)
        self._stored(records)
        return records

    async def _write(self, records: list[Event]) -> None:
        # No checkpoint here: the lock around this call already was one, and
        # a checkpoint after the extend could cancel an append that happened.
        self._records.extend(records)
