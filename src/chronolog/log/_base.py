"""The interface every event log backend implements, and what local backends share.

An event log is an append-only, totally ordered sequence of *records*: events
whose ``seq`` the log assigned when it appended them. Everything else in
chronolog -- the task registry, de-duplication, run history -- is a fold of
it, so a backend's whole job is to keep records in order, keep them once
``append`` has returned, and give them back exactly as they were stored.
"""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Self

import msgspec
import trio

from .._errors import LogClosed
from .._events import EventBase

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Iterator, Sequence
    from types import TracebackType

    from .._events import Event

__all__ = ["EventLog"]

#: A follower gives other tasks a turn after this many records without waiting.
FOLLOW_CHECKPOINT_EVERY = 1024


class EventLog(abc.ABC):
    """An append-only log of records, each with a strictly increasing ``seq``.

    ``async with log:`` opens it for writing and closes it on exit. Records
    stay readable with `read` after the log is closed; only `append` stops.
    """

    @property
    @abc.abstractmethod
    def last_seq(self) -> int:
        """The ``seq`` of the last record, or 0 when the log is empty."""

    @property
    @abc.abstractmethod
    def closed(self) -> bool:
        """True once `aclose` has been called: nothing more can be appended."""

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
        strictly increase but need not be contiguous, so the last seq of the
        batch is ``records[-1].seq``. The batch is durable when this returns
        (as far as the backend's durability setting promises). An empty batch
        returns ``[]`` and touches nothing. Raises `LogClosed` after
        `aclose`.
        """

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
            first = self._last_seq + 1
            records = [
                msgspec.structs.replace(event, seq=first + offset)
                for offset, event in enumerate(batch)
            ]
            await self._write(records)
            # No checkpoint between the write and these lines: a record that
            # was written is always counted, even if the caller is cancelled.
            self._last_seq = records[-1].seq
            self._wake_followers()
        return records

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
