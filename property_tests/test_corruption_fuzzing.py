"""Hostile bytes: one byte flipped, bytes inserted or bytes deleted anywhere in a FileLog.

A reader -- a plain ``read()``, or the scheduler's way: ``open()`` (which
repairs a torn tail) then ``read()`` -- must then either stop at a torn tail
or raise `LogCorrupted` naming the line; never raise anything else, never
hand out records out of order, never lose a record the damage did not
touch, and never drop records without a warning or an error saying so.

Since records carry a checksum chain (format version 3) and seqs are
contiguous, damage that leaves valid JSON -- ``"backup"`` becoming
``"bbckup"``, a digit changed, whole lines deleted -- is found too: no
record on a line the damage touched is ever handed out, and records go
missing only behind an error, a repair, or a cut at the very end of a batch
(which is indistinguishable from a crash before the later appends, and
leaves a sound, shorter log).
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
import tempfile
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, NamedTuple

import msgspec
import pytest
import trio
from hypothesis import event, given, note
from hypothesis import strategies as st

from chronolog import (
    Event,
    FileLog,
    LogCorrupted,
    LogRepaired,
    Manual,
    Scheduled,
    SQLiteLog,
    Started,
    TaskDefined,
)

from .log_model import valid_logs

Kind = Literal["flip", "insert", "delete"]

#: What a LogCorrupted message must point at: a line, or the header's content.
NAMES_THE_PLACE = re.compile(r"line \d+|is not a chronolog log|format version")


class Damage(NamedTuple):
    kind: Kind
    at: int
    flip: int = 0
    inserted: bytes = b""
    deleted: int = 0

    def apply(self, data: bytes) -> bytes:
        if self.kind == "flip":
            return data[: self.at] + bytes([data[self.at] ^ self.flip]) + data[self.at + 1 :]
        if self.kind == "insert":
            return data[: self.at] + self.inserted + data[self.at :]
        return data[: self.at] + data[self.at + self.deleted :]

    def touched(self, start: int, end: int) -> bool:
        """Whether the damage changes the original bytes [start, end) (a line)."""
        if self.kind == "delete":
            return start < self.at + self.deleted and end > self.at
        return start <= self.at < end

    @property
    def end_in_damaged_file(self) -> int:
        """Just past the last damaged byte, in the damaged file (at least one past
        ``at``: a deletion damages the junction it leaves)."""
        if self.kind == "insert":
            return self.at + len(self.inserted)
        return self.at + 1


def positions(size: int) -> st.SearchStrategy[int]:
    """Anywhere in ``size`` bytes, often in the last few hundred: the tail is
    where a torn write meets a repair."""
    return st.integers(0, size - 1) | st.integers(max(0, size - 300), size - 1)


@st.composite
def damages(draw: st.DrawFn, size: int) -> Damage:
    kind: Kind = draw(st.sampled_from(["flip", "insert", "delete"]))
    if kind == "flip":
        return Damage("flip", draw(positions(size)), flip=draw(st.integers(1, 255)))
    if kind == "insert":
        inserted = draw(
            st.sampled_from([b"\n", b" ", b"\n ", b"{", b"}", b'"', b",", b"\x00", b"\xff"])
            | st.binary(min_size=1, max_size=12)
        )
        return Damage("insert", draw(positions(size + 1)), inserted=inserted)
    at = draw(positions(size))
    deleted = draw(st.integers(1, min(64, size - at)) | st.just(size - at))  # or cut the rest
    return Damage("delete", at, deleted=deleted)


def write_log(path: Path, batches: list[list[Event]]) -> list[Event]:
    async def main() -> list[Event]:
        records: list[Event] = []
        async with FileLog(path, fsync=False) as log:
            for batch in batches:
                records += await log.append(batch)
        return records

    return trio.run(main)


def line_spans(data: bytes) -> list[tuple[int, int]]:
    """[start, end) of each line, its newline included; line 0 is the header."""
    spans = []
    start = 0
    while start < len(data):
        end = data.index(b"\n", start) + 1
        spans.append((start, end))
        start = end
    return spans


class Reading(NamedTuple):
    records: list[Event]
    error: LogCorrupted | None
    repaired_at: int | None
    """Where a repair on open cut the file (None: no repair, or not opened)."""


def read_plainly(path: Path) -> Reading:
    records: list[Event] = []
    try:
        records.extend(FileLog(path).read())
    except LogCorrupted as error:
        return Reading(records, error, None)
    return Reading(records, None, None)


def open_then_read(path: Path) -> Reading:
    """What a scheduler does: open (repairing a torn tail), then replay."""

    async def main() -> Reading:
        records: list[Event] = []
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                log = await FileLog(path, fsync=False).open()
            except LogCorrupted as error:
                return Reading([], error, None)
        assert all(w.category is LogRepaired for w in caught), [str(w) for w in caught]
        torn = sorted(path.parent.glob(path.name + ".torn-*"))
        assert len(torn) == len(caught) <= 1
        repaired_at = int(torn[0].name.rsplit("-", 1)[1]) if torn else None
        async with log:
            try:
                records.extend(log.read())
            except LogCorrupted as error:
                return Reading(records, error, repaired_at)
        return Reading(records, None, repaired_at)

    return trio.run(main)


def check(
    reading: Reading,
    *,
    original: list[Event],
    intact: bytes,
    spans: list[tuple[int, int]],
    damage: Damage,
    damaged: bytes,
    how: str,
) -> None:
    records, error, repaired_at = reading
    note(f"{how}: {len(records)} records, error={error}, repaired at {repaired_at}")
    if error is not None:
        assert NAMES_THE_PLACE.search(str(error)), f"{how}: {error}"
    seqs = [record.seq for record in records]
    assert seqs == sorted(set(seqs)), f"{how}: seqs out of order: {seqs}"

    # The record of line i + 1 is original[i]; touched lines are those the
    # damage changed.
    touched = [damage.touched(*spans[i + 1]) for i in range(len(original))]
    first_touched = touched.index(True) if any(touched) else len(original)
    header_touched = damage.touched(*spans[0])
    by_seq = {record.seq: (index, record) for index, record in enumerate(original)}

    # Never a record that is not in the file, and never one off a line the
    # damage touched: the checksum chain finds any change to a line, the seqs
    # any line that went missing.
    for record in records:
        index, expected = by_seq.get(record.seq, (None, None))
        assert index is not None, f"{how}: seq {record.seq} is not in the log"
        assert not touched[index], (
            f"{how}: the line of seq {record.seq} was damaged, yet it was read as a record"
        )
        assert record == expected, f"{how}: seq {record.seq} changed"

    # Every whole batch before the damage comes back (before a repair's cut,
    # if any). The batch the damage is in may go whole: a batch whose end was
    # damaged looks unfinished, as if its write had been cut short.
    if not header_touched and not (how == "open" and error is not None and not records):
        keep_until = spans[first_touched + 1][0] if first_touched < len(original) else None
        if repaired_at is not None and (keep_until is None or repaired_at < keep_until):
            keep_until = repaired_at
        batch_end = [spans[i + 1][1] for i in range(len(original))]
        for i in reversed(range(len(original) - 1)):
            if intact[spans[i + 1][0]] == ord(" "):  # the batch goes on at the next line
                batch_end[i] = batch_end[i + 1]
        must_keep = [
            original[i]
            for i in range(first_touched)
            if keep_until is None or batch_end[i] <= keep_until
        ]
        assert records[: len(must_keep)] == must_keep, f"{how}: lost records before the damage"

    # A repair only cuts damage off: the damage is in the bytes it moved aside.
    if repaired_at is not None:
        assert repaired_at < damage.end_in_damaged_file, (
            f"{how}: repaired at byte {repaired_at}, yet the damage ends at byte "
            f"{damage.end_in_damaged_file}: the repair cut intact batches"
        )

    # Fewer records, and nobody said so: only a log cut at the end of a batch,
    # which is what a crash before the later appends leaves -- or, for a plain
    # reader, a tail that looks like a batch still being written.
    returned = {record.seq for record in records}
    missing = [i for i, record in enumerate(original) if record.seq not in returned]
    if error is None and repaired_at is None and missing:
        if how == "read":
            # A plain reader stops before a batch that is still being written:
            # what follows its last record must look like one.
            rest = damaged[_end_of_lines(damaged, len(records) + 1) :]
            assert all(line.startswith(b" ") for line in rest.split(b"\n")[:-1]), (
                f"{how}: stopped early with complete batches ahead"
            )
        else:
            # (Or nothing at all: what a crash before the header landed leaves,
            # which opening takes for a new log.)
            assert damaged in (b"", intact[: _end_of_lines(intact, len(records) + 1)]), (
                f"{how}: dropped {len(missing)} records silently, and the log is not the "
                f"original cut at the end of a batch"
            )
            event(f"{how}: the log was cut at the end of a batch (a valid, shorter log)")


def _end_of_lines(data: bytes, count: int) -> int:
    """Offset just past the first ``count`` lines of ``data`` (or its end, if it
    has fewer complete lines)."""
    position = 0
    for _ in range(count):
        newline = data.find(b"\n", position)
        if newline < 0:
            return len(data)
        position = newline + 1
    return position


@given(valid_logs(max_steps=20), st.data())
def test_damage_anywhere_is_repaired_or_reported(
    original_log: list[Event], data: st.DataObject
) -> None:
    events = [msgspec.structs.replace(record, seq=0) for record in original_log]
    batches: list[list[Event]] = []
    while events:
        size = data.draw(st.integers(1, min(4, len(events))), label="batch size")
        batches.append(events[:size])
        del events[:size]
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "jobs.jsonl"
        original = write_log(path, batches)
        intact = path.read_bytes()
        damage = data.draw(damages(len(intact)), label="damage")
        damaged = damage.apply(intact)
        path.write_bytes(damaged)
        spans = line_spans(intact)
        event(f"damage: {damage.kind}")
        for how, reader in (("read", read_plainly), ("open", open_then_read)):
            path.write_bytes(damaged)
            for leftover in Path(directory).glob("*.torn-*"):
                leftover.unlink()
            reading = reader(path)
            event(
                f"{how}: "
                + (
                    "error"
                    if reading.error
                    else "repaired"
                    if reading.repaired_at is not None
                    else "clean"
                )
            )
            check(
                reading,
                original=original,
                intact=intact,
                spans=spans,
                damage=damage,
                damaged=damaged,
                how=how,
            )


def test_a_deleted_line_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "jobs.jsonl"
    original_log = [msgspec.structs.replace(r, seq=0) for r in _a_small_valid_log()]
    write_log(path, [[event] for event in original_log])
    lines = path.read_bytes().splitlines(keepends=True)
    del lines[2]  # the record with seq 2, a batch of its own
    path.write_bytes(b"".join(lines))
    with pytest.raises(LogCorrupted, match="line 2"):
        list(FileLog(path).read())


def _a_small_valid_log() -> list[Event]:
    at = datetime(2026, 3, 27, 12, 0, tzinfo=UTC)
    return [
        TaskDefined(task="job", at=at, trigger=Manual(), target="pkg:job"),
        Scheduled(task="job", at=at, occurrence="job!1", due=at),
        Started(task="job", at=at, occurrence="job!1", attempt=1),
    ]


# -- found by the fuzzer -------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "value", "message"),
    [(0, b'"chronolog"', "is not a chronolog log"), (2, b'"job"', "line 3")],
)
def test_a_byte_that_is_not_utf8_is_damage_named_by_its_line(
    tmp_path: Path, line: int, value: bytes, message: str
) -> None:
    """msgspec reports invalid UTF-8 inside a string as ``UnicodeDecodeError``;
    it used to escape the reader instead of being `LogCorrupted`."""
    path = tmp_path / "jobs.jsonl"
    write_log(path, [[msgspec.structs.replace(r, seq=0)] for r in _a_small_valid_log()])
    lines = path.read_bytes().splitlines(keepends=True)
    assert value in lines[line]
    lines[line] = lines[line].replace(value, value[:2] + b"\xe3" + value[3:])
    path.write_bytes(b"".join(lines))
    with pytest.raises(LogCorrupted, match=message) as caught:
        list(FileLog(path).read())
    assert isinstance(caught.value.__cause__, msgspec.DecodeError)


def test_a_sqlite_record_that_is_not_utf8_is_damage(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite"

    async def main() -> None:
        async with SQLiteLog(path) as log:
            await log.append([msgspec.structs.replace(r, seq=0) for r in _a_small_valid_log()])

    trio.run(main)
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as connection:
        (text,) = connection.execute(
            "SELECT record FROM chronolog_records WHERE seq = 2"
        ).fetchone()
        damaged = text.encode().replace(b'"job"', b'"j\xe3b"')
        connection.execute(
            "UPDATE chronolog_records SET record = CAST(? AS BLOB) WHERE seq = 2", (damaged,)
        )
    read: list[Event] = []
    with pytest.raises(LogCorrupted, match="the record with seq 2 is not a valid record"):
        read.extend(SQLiteLog(path).read())
    assert [r.seq for r in read] == [1]
