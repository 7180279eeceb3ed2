"""MemoryLog: the shared contract, plus starting from existing records."""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec
import pytest
import trio

from chronolog import LogClosed
from chronolog.log import MemoryLog

from .log_contract import EventLogContract, MakeLog, sample_events

if TYPE_CHECKING:
    from chronolog._events import Event


class TestMemoryLog(EventLogContract):
    @pytest.fixture
    def make_log(self) -> MakeLog:
        return MemoryLog


def numbered(*seqs: int) -> list[Event]:
    return [
        msgspec.structs.replace(event, seq=seq)
        for event, seq in zip(sample_events(len(seqs)), seqs, strict=True)
    ]


async def test_starts_from_existing_records() -> None:
    records = numbered(1, 2, 3)
    log = MemoryLog(records)
    assert log.last_seq == 3
    assert list(log.read()) == records
    assert list(log.read(after_seq=2)) == records[2:]
    more = await log.append(sample_events(2))
    assert [record.seq for record in more] == [4, 5]
    assert log.records == records + more


@pytest.mark.parametrize("seqs", [(0,), (2,), (1, 1), (2, 1), (3, -1), (1, 2, 5)])
def test_existing_records_must_have_contiguous_seqs_from_1(seqs: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="must have contiguous seqs from 1"):
        MemoryLog(numbered(*seqs))


def test_existing_records_must_be_events() -> None:
    with pytest.raises(TypeError, match="record 0 is str"):
        MemoryLog(["not an event"])  # type: ignore[list-item]


async def test_read_is_a_snapshot() -> None:
    log = MemoryLog()
    await log.append(sample_events(2))
    reader = log.read()
    await log.append(sample_events(1))
    assert len(list(reader)) == 2


def test_repr_says_how_many_records() -> None:
    assert repr(MemoryLog(numbered(1, 2))) == "<MemoryLog with 2 records, last seq 2>"


async def test_append_nowait_numbers_stores_and_wakes_like_append() -> None:
    log = MemoryLog()
    first = log.append_nowait(sample_events(2))
    assert [record.seq for record in first] == [1, 2]
    assert log.append_nowait([]) == []
    assert list(log.read()) == first
    with pytest.raises(ValueError, match="already has seq 1"):
        log.append_nowait(first[:1])
    assert log.last_seq == 2


async def test_append_nowait_would_block_while_the_log_is_held() -> None:
    log = MemoryLog()
    async with log._write_lock:  # an append or a compaction in flight
        with pytest.raises(trio.WouldBlock):
            log.append_nowait(sample_events(1))
    assert log.last_seq == 0
    await log.aclose()
    with pytest.raises(LogClosed):
        log.append_nowait(sample_events(1))
