"""Whatever is appended to a FileLog reads back unchanged, after a reopen and after a crash.

The strategies build arbitrary events of every type -- odd task names,
unicode, quotes, newlines inside strings, arbitrary JSON results, extreme
durations and offsets -- because the file format is only as good as its
worst string.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import msgspec
import trio
from hypothesis import given
from hypothesis import strategies as st

from chronolog._errors import LogRepaired
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
    TaskRemoved,
    TaskResumed,
    decode_event,
    encode_event,
    encode_header,
    encode_lines,
)
from chronolog._policies import CatchUp, Overlap, Policy, Retry
from chronolog._projection import replay
from chronolog._triggers import At, Cron, Manual
from chronolog.log import FileLog, MemoryLog
from chronolog.log._checksum import TAIL_BYTES

from .log_model import valid_logs

ODD_NAMES = (
    "backup",
    "a@b",
    "x#y!z",
    "@#!",
    'say "hi"',
    "it's",
    "back\\slash",
    "new\nline",
    "tab\tand\rcarriage",
    "Zürich ✓",
    "🧹",
    "\u2028\u2029",
    "\x00",
    "{}",
    '{"type":"Started"}',
)

texts = st.one_of(st.sampled_from(ODD_NAMES), st.text(max_size=30))

aware_datetimes = st.datetimes(
    min_value=datetime(1, 1, 2),
    max_value=datetime(9999, 12, 30),
    timezones=st.sampled_from(
        [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=8))]
    ),
)

positive_durations = st.timedeltas(min_value=timedelta(microseconds=1))

json_values: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | texts,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(texts, children, max_size=4),
    max_leaves=12,
)

triggers = st.one_of(
    st.just(Manual()),
    st.builds(At, when=aware_datetimes.map(lambda when: when.astimezone(UTC))),
    st.builds(
        Cron,
        st.sampled_from(["0 3 * * *", "*/15 * * * *", "30 2 * * 0"]),
        tz=st.sampled_from(["UTC", "Europe/Paris", "America/New_York"]),
    ),
)

policies = st.one_of(
    st.just(Policy()),
    st.builds(
        Policy,
        overlap=st.sampled_from(Overlap),
        catch_up=st.sampled_from(CatchUp),
        retry=st.builds(Retry, max_attempts=st.integers(1, 10)),
        timeout=st.none() | positive_durations,
        paused=st.booleans(),
    ),
)


def _common() -> dict[str, st.SearchStrategy[Any]]:
    return {"task": texts, "at": aware_datetimes}


def events_of_every_type() -> st.SearchStrategy[Event]:
    """Arbitrary unappended events (seq 0) of every type in the schema."""
    run = {"occurrence": texts, "attempt": st.integers()}
    return st.one_of(
        st.builds(
            TaskDefined,
            **_common(),
            trigger=triggers,
            target=texts,
            policy=policies,
            version=st.integers(),
        ),
        st.builds(TaskRemoved, **_common()),
        st.builds(TaskPaused, **_common(), note=texts),
        st.builds(TaskResumed, **_common(), note=texts),
        st.builds(
            Scheduled,
            **_common(),
            occurrence=texts,
            due=aware_datetimes,
            content_hash=st.none() | texts,
        ),
        st.builds(Started, **_common(), **run, node=texts),
        st.builds(Completed, **_common(), **run, duration=st.timedeltas(), result=json_values),
        st.builds(
            Failed,
            **_common(),
            **run,
            duration=st.timedeltas(),
            error=texts,
            error_type=texts,
            traceback=texts,
            retry_at=st.none() | aware_datetimes,
        ),
        st.builds(
            Skipped,
            **_common(),
            occurrence=texts,
            reason=st.sampled_from(SkipReason),
            due=st.none() | aware_datetimes,
        ),
    )


batches_of_events = st.lists(st.lists(events_of_every_type(), max_size=6), max_size=8)


def _append_all(path: Path, batches: list[list[Event]]) -> list[Event]:
    async def main() -> list[Event]:
        records: list[Event] = []
        async with FileLog(path, fsync=False) as log:
            for batch in batches:
                records += await log.append(batch)
        return records

    return trio.run(main)


def _reopen_and_read(path: Path) -> tuple[int, list[Event]]:
    async def main() -> tuple[int, list[Event]]:
        async with FileLog(path, fsync=False) as log:
            return log.last_seq, list(log.read())

    return trio.run(main)


@given(events_of_every_type(), st.integers(min_value=0))
def test_encode_then_decode_is_the_identity(event: Event, seq: int) -> None:
    record = msgspec.structs.replace(event, seq=seq)
    encoded = encode_event(record)
    assert b"\n" not in encoded  # one record, one line
    assert decode_event(encoded) == record


@given(batches_of_events)
def test_a_reopened_file_log_reads_back_what_was_appended(batches: list[list[Event]]) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "jobs.jsonl"
        records = _append_all(path, batches)
        assert [msgspec.structs.replace(r, seq=0) for r in records] == [
            event for batch in batches for event in batch
        ]
        last_seq, read_back = _reopen_and_read(path)
        assert read_back == records
        assert last_seq == (records[-1].seq if records else 0)
        assert list(FileLog(path).read()) == records
        assert replay(read_back) == replay(records)


@given(batches_of_events)
def test_memory_and_file_logs_agree(batches: list[list[Event]]) -> None:
    async def in_memory() -> list[Event]:
        log = MemoryLog()
        for batch in batches:
            await log.append(batch)
        return list(log.read())

    with tempfile.TemporaryDirectory() as directory:
        assert trio.run(in_memory) == _append_all(Path(directory) / "jobs.jsonl", batches)


@given(valid_logs(), st.data())
def test_a_valid_log_replays_the_same_from_a_file(log: list[Event], data: st.DataObject) -> None:
    events = [msgspec.structs.replace(record, seq=0) for record in log]
    batches: list[list[Event]] = []
    while events:
        size = data.draw(st.integers(1, len(events)), label="batch size")
        batches.append(events[:size])
        del events[:size]
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "jobs.jsonl"
        records = _append_all(path, batches)
        assert records == log  # a fresh log numbers records 1..n, as the model does
        assert replay(_reopen_and_read(path)[1]) == replay(log)


@given(batches_of_events, st.floats(min_value=0, max_value=1))
def test_a_log_cut_anywhere_reopens_to_a_prefix(
    batches: list[list[Event]], fraction: float
) -> None:
    """A crash can stop a write at any byte: reopening keeps every whole batch.

    Appends are atomic: the records of a batch whose last line was not
    complete are dropped (and kept aside) together with the torn line.
    """
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "jobs.jsonl"
        records = _append_all(path, batches)
        whole = path.read_bytes()
        cut = round(fraction * len(whole))
        os.truncate(path, cut)
        # Where each whole batch ends in the file, and how many records it closes.
        header = len(encode_header(checksums=True))
        boundaries = [(header, 0)]
        for batch in (b for b in batches if b):
            offset, count = boundaries[-1]
            # One line per record, each ending with its checksum field instead of
            # the closing brace, plus the framing space on all but the last.
            size = len(encode_lines(records[count : count + len(batch)])) + len(batch) - 1
            size += len(batch) * (TAIL_BYTES - 2)
            boundaries.append((offset + size, count + len(batch)))
        if cut < header:
            start, kept_records = 0, 0  # a header cut short is a torn tail at 0
        else:
            start, kept_records = max(b for b in boundaries if b[0] <= cut)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            last_seq, read_back = _reopen_and_read(path)
        assert read_back == records[:kept_records]
        assert last_seq == (read_back[-1].seq if read_back else 0)
        torn = cut > start
        assert [w.category for w in caught] == ([LogRepaired] if torn else [])
        kept = sorted(Path(directory).glob("jobs.jsonl.torn-*"))
        if torn:
            (kept_file,) = kept
            assert kept_file.name == f"jobs.jsonl.torn-{start}"
            assert kept_file.read_bytes() == whole[start:cut]
            assert path.read_bytes() == (whole[:start] or encode_header(checksums=True))
        else:
            assert kept == []
