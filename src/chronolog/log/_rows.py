"""A page of stored rows, checked: one reading rule for the database backends.

`SQLiteLog` and `PostgresLog` store one row per record -- its seq, its JSON
bytes and its running checksum -- and read them a page at a time. What a
page must satisfy is the same for both, and lives here once:

* **Contiguous seqs.** The rows continue ``after_seq`` with no gap, and a
  page shorter than asked ends at the last seq read with it; else the first
  missing seq is damage (a damaged database can hide rows from a range query
  without an error).
* **Each row decodes** to a record that carries its row's seq.
* **The checksum chain holds** (where the log keeps checksums): each row's
  checksum continues the previous one over its bytes, so a changed value or
  a changed row before it is found.

The records before the first damage are returned with it: a reader hands
them out and reports the damage on its next read, so everything intact is
seen first (`checked_page` raises it at once when nothing intact precedes it).
"""

from __future__ import annotations

from operator import attrgetter
from typing import TYPE_CHECKING

import msgspec

from .._events import decode_event, decode_lines
from ._checksum import chain_of_rows, check_rows

if TYPE_CHECKING:
    from collections.abc import Callable

    from .._errors import LogCorrupted
    from .._events import Event

__all__ = ["Row", "checked_page", "decode_rows"]

#: A stored row: seq, the record's JSON bytes, and its checksum (None: the
#: log keeps none).
Row = tuple[int, bytes, int | None]

_seq_of = attrgetter("seq")


def checked_page(
    rows: list[Row],
    *,
    after_seq: int,
    last: int,
    page_rows: int,
    previous: int,
    checksums: bool,
    damaged: Callable[[int, str], LogCorrupted],
) -> tuple[list[Event], LogCorrupted | None]:
    """The records of a page of ``rows`` read after ``after_seq`` (``last`` being
    the last seq when it was read, ``page_rows`` how many were asked for),
    up to the first damage; and that damage, or None. Raises the damage when
    no intact record comes before it."""
    missing = None
    for index, row in enumerate(rows):
        if row[0] != after_seq + 1 + index:
            missing = after_seq + 1 + index
            rows = rows[:index]
            break
    else:
        reached = rows[-1][0] if rows else after_seq
        if len(rows) < page_rows and reached < last:
            missing = reached + 1
    records, damage = decode_rows(rows, previous, checksums=checksums, damaged=damaged)
    if damage is None and missing is not None:
        damage = damaged(missing, f"is missing (the last record has seq {last})")
    if damage is not None and not records:
        raise damage
    return records, damage


def decode_rows(
    rows: list[Row],
    previous: int,
    *,
    checksums: bool,
    damaged: Callable[[int, str], LogCorrupted],
) -> tuple[list[Event], LogCorrupted | None]:
    """The records of ``rows`` (whose chain goes on from ``previous``) up to the
    first bad one; and what is wrong with that one, or None."""
    if not rows:
        return [], None
    # Fast path: the whole page in one decode call, and one checksum pass.
    joined = b"\n".join([row[1] for row in rows])
    try:
        records = decode_lines(joined)
    except msgspec.DecodeError:
        return _decode_each(rows, previous, checksums, damaged)
    if len(records) != len(rows) or list(map(_seq_of, records)) != [row[0] for row in rows]:
        return _decode_each(rows, previous, checksums, damaged)
    if checksums and not check_rows(joined, rows[-1][2], previous):
        return _decode_each(rows, previous, checksums, damaged)
    return records, None


def _decode_each(
    rows: list[Row],
    previous: int,
    checksums: bool,
    damaged: Callable[[int, str], LogCorrupted],
) -> tuple[list[Event], LogCorrupted | None]:
    """Row by row: the records before the first bad one, and what is wrong with it."""
    records: list[Event] = []
    for seq, text, crc in rows:
        try:
            record = decode_event(text)
        except msgspec.DecodeError as exc:
            damage = damaged(seq, f"is not a valid record: {exc}")
            damage.__cause__ = exc
            return records, damage
        if record.seq != seq:
            return records, damaged(seq, f"holds a record with seq {record.seq}")
        if checksums:
            computed = chain_of_rows(text, previous)
            if crc != computed:
                shown = "none" if crc is None else f"{crc:08x}"
                return records, damaged(
                    seq,
                    f"does not match its checksum (it carries {shown}; its record and those "
                    f"before it give {computed:08x}): it was changed after it was written, "
                    f"or a record before it was",
                )
            previous = computed
        records.append(record)
    return records, None
