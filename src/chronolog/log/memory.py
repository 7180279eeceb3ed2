"""`MemoryLog`: the event log as a Python list, for tests and simulations."""

from __future__ import annotations

import bisect
from operator import attrgetter
from typing import TYPE_CHECKING

import trio

from .._events import EventBase
from ._base import FOLLOW_CHECKPOINT_EVERY, SequencedLog

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Iterable, Iterator

    from .._events import Event

__all__ = ["MemoryLog"]

_seq_of = attrgetter("seq")


class MemoryLog(SequencedLog):
    """An event log held in memory: same contract as every backend, no durability.

    ``MemoryLog(records)`` starts from existing records (for instance read from
    another log), whose seqs must be positive and strictly increasing; new
    appends continue after the last one. It needs no opening (``async with``
    works and does nothing but close it at the end), and its records stay
    readable after it is closed.
    """

    def __init__(self, records: Iterable[Event] = ()) -> None:
        super().__init__()
        self._records: list[Event] = []
        previous = 0
        for index, record in enumerate(records):
            if not isinstance(record, EventBase):
                raise TypeError(
                    f"MemoryLog takes chronolog records; record {index} is "
                    f"{type(record).__name__} {record!r}"
                )
            if record.seq <= previous:
                raise ValueError(
                    f"MemoryLog records must have strictly increasing positive seqs; "
                    f"record {index} has seq {record.seq} after seq {previous}"
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

    async def _write(self, records: list[Event]) -> None:
        # No checkpoint here: the lock around this call already was one, and
        # a checkpoint after the extend could cancel an append that happened.
        self._records.extend(records)
