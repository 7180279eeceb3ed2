"""LogWriter under random interleavings: group commit never reorders, splits or loses.

Several submitters, each owning one task, append its life (definition,
schedules, claims, retries, outcomes) in random pieces at random simulated
instants, while the log takes a random simulated time per write and fails
some writes outright. Whatever the interleaving:

* the log is exactly the successful submissions, each contiguous, in the
  order they were accepted (an earlier call is written earlier);
* every submitter gets back its own records, and failed ones get the error;
* the live state equals the replay of the log;
* a write holds more than ``max_batch_records`` only for a single submission.

A second property races claims: several submitters start the same
occurrences, and exactly one -- the first accepted -- wins each.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import msgspec
import trio
import trio.testing
from hypothesis import event, given
from hypothesis import strategies as st

from chronolog import occurrence_id
from chronolog._errors import ClaimConflict
from chronolog._events import (
    Completed,
    Event,
    Failed,
    Scheduled,
    Skipped,
    SkipReason,
    Started,
    TaskDefined,
    TaskPaused,
)
from chronolog._projection import State, replay
from chronolog._triggers import Manual
from chronolog._writer import LogWriter
from chronolog.log import EventLog, MemoryLog

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Iterator, Sequence

T0 = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)


class StillClock:
    """A clock for the writer whose time is the run's simulated time; nothing to hold."""

    def now(self) -> datetime:
        return T0 + timedelta(seconds=trio.current_time())

    async def sleep_until(self, when: datetime) -> None:
        await trio.sleep_until((when - T0).total_seconds())

    def hold_still(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()


class ScriptedLog(EventLog):
    """A MemoryLog whose appends take scripted (simulated) time and fail when told."""

    def __init__(
        self,
        records: Sequence[Event] = (),
        *,
        write_seconds: Sequence[int] = (0,),
        failing_calls: frozenset[int] = frozenset(),
    ) -> None:
        self.inner = MemoryLog(records)
        self.write_seconds = write_seconds
        self.failing_calls = failing_calls
        self.calls: list[list[Event]] = []

    @property
    def last_seq(self) -> int:
        return self.inner.last_seq

    @property
    def closed(self) -> bool:
        return self.inner.closed

    async def append(self, events: Sequence[Event]) -> list[Event]:
        call = len(self.calls)
        self.calls.append(list(events))
        await trio.sleep(self.write_seconds[call % len(self.write_seconds)])
        if call in self.failing_calls:
            raise OSError(errno.ENOSPC, "No space left on device")
        return await self.inner.append(events)

    def read(self, after_seq: int = 0) -> Iterator[Event]:
        return self.inner.read(after_seq)

    def follow(self, after_seq: int = 0) -> AsyncGenerator[Event, None]:
        return self.inner.follow(after_seq)

    async def aclose(self) -> None:
        await self.inner.aclose()


@dataclass
class Submission:
    submitter: int
    called_at: float
    events: list[Event]
    result: list[Event] | Exception


def unnumbered(records: Sequence[Event]) -> list[Event]:
    return [msgspec.structs.replace(record, seq=0) for record in records]


# -- strategies -----------------------------------------------------------------


@st.composite
def task_lives(draw: st.DrawFn, task: str) -> list[Event]:
    """A valid life of ``task``: defined, then runs that retry, complete, fail or skip."""
    at = T0
    events: list[Event] = [TaskDefined(task=task, at=at, trigger=Manual(), target="jobs:run")]
    for n in range(draw(st.integers(1, 3))):
        due = T0 + timedelta(hours=n)
        occurrence = occurrence_id(task, due)
        events.append(Scheduled(task=task, at=at, occurrence=occurrence, due=due))
        if draw(st.booleans()):
            events.append(TaskPaused(task=task, at=at, note=f"note {n}"))
        if draw(st.integers(0, 4)) == 0:
            events.append(
                Skipped(task=task, at=at, occurrence=occurrence, reason=SkipReason.OVERLAP)
            )
            continue
        attempts = draw(st.integers(1, 3))
        for attempt in range(1, attempts + 1):
            events.append(Started(task=task, at=at, occurrence=occurrence, attempt=attempt))
            if attempt < attempts:
                retry_at = due + timedelta(minutes=attempt)
                events.append(
                    Failed(
                        task=task,
                        at=at,
                        occurrence=occurrence,
                        attempt=attempt,
                        error="boom",
                        retry_at=retry_at,
                    )
                )
            elif draw(st.booleans()):
                events.append(Completed(task=task, at=at, occurrence=occurrence, attempt=attempt))
            else:
                events.append(
                    Failed(task=task, at=at, occurrence=occurrence, attempt=attempt, error="x")
                )
    return events


@st.composite
def pieces(draw: st.DrawFn, events: list[Event]) -> list[list[Event]]:
    """``events`` cut into non-empty consecutive pieces."""
    cuts = sorted(draw(st.sets(st.integers(1, len(events) - 1))) if len(events) > 1 else [])
    bounds = [0, *cuts, len(events)]
    return [events[start:end] for start, end in itertools.pairwise(bounds)]


@st.composite
def submitter_plans(draw: st.DrawFn, index: int) -> list[tuple[int, list[Event]]]:
    """(seconds to wait, events to submit) pairs for submitter ``index``."""
    parts = draw(pieces(draw(task_lives(f"job{index}"))))
    delays = draw(
        st.lists(st.sampled_from((0, 0, 1, 2)), min_size=len(parts), max_size=len(parts))
    )
    return list(zip(delays, parts, strict=True))


# -- property 1: interleavings ---------------------------------------------------


@given(
    plans=st.integers(2, 4).flatmap(
        lambda count: st.tuples(*(submitter_plans(index) for index in range(count)))
    ),
    write_seconds=st.lists(st.integers(0, 3), min_size=1, max_size=6),
    failing_calls=st.frozensets(st.integers(0, 20), max_size=2),
    max_queued=st.integers(1, 4),
    max_batch_records=st.one_of(st.integers(1, 6), st.just(4096)),
)
def test_interleaved_submissions_are_written_whole_and_in_order(
    plans: tuple[list[tuple[int, list[Event]]], ...],
    write_seconds: list[int],
    failing_calls: frozenset[int],
    max_queued: int,
    max_batch_records: int,
) -> None:
    log = ScriptedLog(write_seconds=write_seconds, failing_calls=failing_calls)
    state = State()
    writer = LogWriter(
        log,
        state,
        clock=StillClock(),
        max_queued=max_queued,
        max_batch_records=max_batch_records,
    )
    submissions: list[Submission] = []

    async def submitter(index: int, plan: list[tuple[int, list[Event]]]) -> None:
        for delay, events in plan:
            await trio.sleep(delay)
            called_at = trio.current_time()
            result: list[Event] | Exception
            try:
                result = await writer.append(events)
            except OSError as error:
                result = error
            submissions.append(Submission(index, called_at, events, result))
            if isinstance(result, Exception):
                return  # Its later pieces would build on this one.

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(writer.run)
            async with trio.open_nursery() as submitters:
                for index, plan in enumerate(plans):
                    submitters.start_soon(submitter, index, plan)
            writer.close()

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))

    records = list(log.read())
    written = sorted(
        (s for s in submissions if isinstance(s.result, list)),
        key=lambda s: s.result[0].seq,  # type: ignore[index]
    )
    # The log is exactly the successful submissions, each whole and contiguous,
    # and each submitter got back its own records.
    assert unnumbered(records) == [event for s in written for event in s.events]
    position = 0
    for s in written:
        assert s.result == records[position : position + len(s.events)]
        position += len(s.events)
    # Accepted earlier, written earlier.
    for earlier, later in itertools.pairwise(written):
        assert earlier.called_at <= later.called_at
    # Failures are the log's own error, and nothing of them was written.
    for s in submissions:
        if isinstance(s.result, Exception):
            assert isinstance(s.result, OSError)
            assert s.result.errno == errno.ENOSPC
    # The live state is the fold of the log.
    assert state == replay(records)
    # Writes are bounded, except for a single submission larger than the bound.
    sizes = {len(s.events) for s in submissions}
    for call in log.calls:
        assert len(call) <= max_batch_records or len(call) in sizes
    stats = writer.statistics()
    event(f"writes < submissions: {stats.batches < stats.submissions}")
    event(f"a write failed: {any(isinstance(s.result, Exception) for s in submissions)}")
    assert stats.submissions == len(submissions)
    assert stats.batches == len(log.calls)
    assert stats.records == len(records)
    assert stats.largest_batch == max(
        (len(call) for index, call in enumerate(log.calls) if index not in failing_calls),
        default=0,
    )
    assert stats.queued == 0


# -- property 2: claim races -------------------------------------------------------

OCCURRENCES = [occurrence_id("job", T0 + timedelta(hours=n)) for n in range(4)]


@given(
    racers=st.lists(
        st.tuples(st.integers(0, len(OCCURRENCES) - 1), st.integers(0, 2), st.booleans()),
        min_size=1,
        max_size=12,
    ),
    write_seconds=st.lists(st.integers(0, 2), min_size=1, max_size=4),
    max_queued=st.integers(1, 4),
    max_batch_records=st.integers(1, 6),
)
def test_claim_races_have_exactly_one_winner_the_first_accepted(
    racers: list[tuple[int, int, bool]],
    write_seconds: list[int],
    max_queued: int,
    max_batch_records: int,
) -> None:
    setup: list[Event] = [TaskDefined(task="job", at=T0, trigger=Manual(), target="jobs:run")]
    setup += [
        Scheduled(task="job", at=T0, occurrence=occurrence, due=T0 + timedelta(hours=n))
        for n, occurrence in enumerate(OCCURRENCES)
    ]
    log = ScriptedLog(
        [msgspec.structs.replace(event, seq=seq) for seq, event in enumerate(setup, start=1)],
        write_seconds=write_seconds,
    )
    state = replay(log.read())
    writer = LogWriter(
        log,
        state,
        clock=StillClock(),
        max_queued=max_queued,
        max_batch_records=max_batch_records,
    )
    submissions: list[tuple[int, Submission]] = []

    async def racer(index: int, which: int, delay: int, with_note: bool) -> None:
        await trio.sleep(delay)
        events: list[Event] = [
            Started(task="job", at=T0, occurrence=OCCURRENCES[which], attempt=1, node=str(index))
        ]
        if with_note:
            events.insert(0, TaskPaused(task="notes", at=T0, note=f"racer {index}"))
        called_at = trio.current_time()
        result: list[Event] | Exception
        try:
            result = await writer.append(events)
        except ClaimConflict as error:
            result = error
        submissions.append((which, Submission(index, called_at, events, result)))

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(writer.run)
            async with trio.open_nursery() as racing:
                for index, (which, delay, with_note) in enumerate(racers):
                    racing.start_soon(racer, index, which, delay, with_note)
            writer.close()

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))

    records = list(log.read())
    starts = [record for record in records if isinstance(record, Started)]
    for which, occurrence in enumerate(OCCURRENCES):
        contenders = [s for w, s in submissions if w == which]
        winners = [s for s in contenders if isinstance(s.result, list)]
        if not contenders:
            assert not any(start.occurrence == occurrence for start in starts)
            continue
        assert len(winners) == 1
        assert winners[0].called_at == min(s.called_at for s in contenders)
        assert [start.node for start in starts if start.occurrence == occurrence] == [
            str(winners[0].submitter)
        ]
    # Losers left nothing behind, not even the other events of their submission.
    notes = [record.note for record in records if isinstance(record, TaskPaused)]
    assert sorted(notes) == sorted(
        event.note
        for _, s in submissions
        if isinstance(s.result, list)
        for event in s.events
        if isinstance(event, TaskPaused)
    )
    losers = [s for _, s in submissions if isinstance(s.result, Exception)]
    event(f"losers: {min(len(losers), 3)}{'+' if len(losers) > 3 else ''}")
    event(f"writes < submissions: {len(log.calls) < len(submissions)}")
    for loser in losers:
        assert "may not start" in str(loser.result)
    assert state == replay(records)
