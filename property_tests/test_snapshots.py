"""Snapshots replay exactly: the codec round-trips every reachable State, and the
newest snapshot (or a compaction's base) plus the records after it folds to
the same State as the whole log -- for any valid log, any snapshot point and
every backend."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec
import trio
from hypothesis import given
from hypothesis import strategies as st

from chronolog._invariants import check_invariants
from chronolog._projection import State, replay
from chronolog._snapshot import decode_state, encode_state
from chronolog.log import FileLog, MemoryLog, SQLiteLog

from .log_model import valid_logs

if TYPE_CHECKING:
    from chronolog._events import Event
    from chronolog.log import EventLog

BACKENDS = ("memory", "file", "sqlite")


@given(valid_logs())
def test_every_reachable_state_round_trips(log: list[Event]) -> None:
    state = State()
    assert decode_state(encode_state(state)) == state
    for record in log:
        state.fold(record)
        document = encode_state(state)
        again = decode_state(document)
        assert again == state
        # Same views, not only equal internals.
        assert again.tasks() == state.tasks()
        assert encode_state(again) == document


@given(valid_logs(), st.integers(min_value=1, max_value=5))
def test_a_smaller_history_limit_keeps_what_replay_keeps(log: list[Event], limit: int) -> None:
    document = encode_state(replay(log))
    assert decode_state(document, history_limit=limit) == replay(log, history_limit=limit)


def _unappended(records: list[Event]) -> list[Event]:
    return [msgspec.structs.replace(record, seq=0) for record in records]


def _make(kind: str, directory: Path) -> tuple[EventLog, EventLog | None]:
    """A log, and a second object over the same storage to reopen it (None for memory).

    Without an fsync per append: durability is not what these tests are about.
    """
    if kind == "memory":
        return MemoryLog(), None
    if kind == "file":
        path = directory / "jobs.jsonl"
        return FileLog(path, fsync=False), FileLog(path)
    path = directory / "jobs.sqlite"
    return SQLiteLog(path, synchronous="normal"), SQLiteLog(path)


async def _append_in_batches(log: EventLog, records: list[Event], sizes: list[int]) -> None:
    events = _unappended(records)
    position = 0
    for size in sizes:
        if position >= len(events):
            break
        await log.append(events[position : position + size])
        position += size
    if position < len(events):
        await log.append(events[position:])


@st.composite
def logs_with_a_point(draw: st.DrawFn) -> tuple[list[Event], int, list[int]]:
    """A valid log of at least one record, a snapshot point in it, and batch sizes."""
    log = draw(valid_logs().filter(bool))
    point = draw(st.integers(min_value=1, max_value=len(log)))
    sizes = draw(st.lists(st.integers(min_value=1, max_value=6), max_size=len(log)))
    return log, point, sizes


@given(logs_with_a_point(), st.sampled_from(BACKENDS))
def test_snapshot_plus_tail_replays_to_the_whole_log(
    case: tuple[list[Event], int, list[int]], kind: str
) -> None:
    log, point, sizes = case
    whole = replay(log)

    async def main(directory: Path) -> None:
        event_log, reopened = _make(kind, directory)
        async with event_log:
            await _append_in_batches(event_log, log, sizes)
            await event_log.save_snapshot(replay(log[:point]))
            assert event_log.load_state() == whole
        if reopened is not None:
            assert reopened.load_state() == whole

    with tempfile.TemporaryDirectory() as directory:
        trio.run(main, Path(directory))


@given(logs_with_a_point(), st.sampled_from(BACKENDS), st.booleans())
def test_a_compacted_log_replays_to_the_whole_log(
    case: tuple[list[Event], int, list[int]], kind: str, with_snapshot: bool
) -> None:
    log, point, sizes = case
    whole = replay(log)
    base = replay(log[:point])

    async def main(directory: Path) -> None:
        event_log, reopened = _make(kind, directory)
        async with event_log:
            await _append_in_batches(event_log, log, sizes)
            if with_snapshot:
                await event_log.save_snapshot(whole)
            await event_log.compact(base)
            assert event_log.base_seq == point
            assert event_log.last_seq == len(log)
            assert list(event_log.read()) == log[point:]
            assert event_log.load_state() == whole
        for view in (event_log, reopened):
            if view is None:
                continue
            assert view.base_state() == base
            assert view.load_state() == whole
            assert check_invariants(view.read(), start=view.base_state()) == []

    with tempfile.TemporaryDirectory() as directory:
        trio.run(main, Path(directory))


@given(logs_with_a_point())
def test_the_checker_starts_from_any_point(case: tuple[list[Event], int, list[int]]) -> None:
    log, point, _ = case
    assert check_invariants(log[point:], start=replay(log[:point])) == []
