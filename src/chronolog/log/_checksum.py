"""The checksum chain that lets a log vouch for every byte of its records.

From format version 3 on, each record carries a CRC-32 of the log *up to and
including itself*: the chain. It is cheap to check in bulk -- one ``crc32``
call over a whole chunk of records, compared with the value the last record
of the chunk carries -- and any change to a record, or to the order, number
or checksum of the records before it, breaks every later link. Only where a
chunk fails is it checked record by record, to name the first bad one.

`FileLog` line *k* (see docs/reference/logs.md):

    <body_k>,"crc":"<C_k as 8 hex digits>"}\\n

``body_k`` is the record's compact JSON without its closing brace (with the
leading space of the batch framing, if any): the checksum is a last field of
the same JSON object, so every line is still one JSON record. With ``R`` the
running CRC-32 of every record byte before line *k* (0 before the first
record of a log; a compacted log's header names the value the records after
its base continue from)::

    C_k = crc32(body_k, R)          # what line k carries
    R'  = crc32(tail_k, C_k)        # the running value after the whole line

so ``C_k`` is the CRC-32 of every record byte up to ``body_k`` included.

`SQLiteLog` row *k* keeps ``C_k = crc32(record_k + "\\n", C_(k-1))`` in its
``crc`` column (``C_0``: 0, or the value a compaction left in
``chronolog_meta``).

CRC-32 finds accidents and hand edits -- a flipped bit, an edited value, a
deleted, repeated or moved line -- not forgeries: whoever can write the file
can recompute the chain.
"""

from __future__ import annotations

import re
import zlib
from typing import Final

__all__ = [
    "CHECKSUM_FIELD",
    "TAIL_BYTES",
    "chain_of_rows",
    "check_lines",
    "check_rows",
    "line_crc",
    "running_after",
    "seal",
    "unsealed",
]

#: What starts the checksum field of a FileLog line.
CHECKSUM_FIELD: Final = b',"crc":"'
#: ``,"crc":"xxxxxxxx"}`` and the newline: the fixed-size end of every line.
TAIL_BYTES: Final = len(CHECKSUM_FIELD) + 8 + 3
_TAIL: Final = re.compile(rb',"crc":"([0-9a-f]{8})"}\n\Z')
_HEX_DIGITS: Final = frozenset(b"0123456789abcdef")


def seal(body: bytes, running: int) -> tuple[bytes, int]:
    """The checksum tail (newline included) that ends the line ``body`` starts,
    and the running CRC after that line."""
    crc = zlib.crc32(body, running)
    tail = b'%s%08x"}\n' % (CHECKSUM_FIELD, crc)
    return tail, zlib.crc32(tail, crc)


def line_crc(line: bytes | memoryview) -> int | None:
    """The checksum a whole line (newline included) carries; None if it has none."""
    if len(line) < TAIL_BYTES:
        return None
    match = _TAIL.search(bytes(line[-TAIL_BYTES:]))
    return int(match[1], 16) if match is not None else None


def running_after(line: bytes | memoryview) -> int | None:
    """The running CRC after a whole line, read off its own checksum; None without one."""
    crc = line_crc(line)
    if crc is None:
        return None
    return zlib.crc32(line[-TAIL_BYTES:], crc)


def unsealed(line: bytes) -> bytes:
    """A line without its checksum field: the record as plain JSON (no newline).

    For a line that has none, the line itself without its newline.
    """
    if line_crc(line) is None:
        return line.rstrip(b"\n")
    return line[:-TAIL_BYTES] + b"}"


def check_lines(data: bytes | memoryview, end: int, running: int) -> int | None:
    """Check the chain over the whole lines ``data[:end]`` in one pass.

    Returns the running CRC after them, or None when the chain breaks
    somewhere in them (or their last line carries no checksum): then check
    them one by one to find where. Costs one ``crc32`` call, whatever the
    number of lines.
    """
    if end == 0:
        return running
    tail_start = end - TAIL_BYTES
    if tail_start < 0:
        return None
    view = memoryview(data)
    tail = bytes(view[tail_start:end])
    digits = tail[len(CHECKSUM_FIELD) : len(CHECKSUM_FIELD) + 8]
    if (
        not tail.startswith(CHECKSUM_FIELD)
        or not tail.endswith(b'"}\n')
        or not _HEX_DIGITS.issuperset(digits)
    ):
        return None
    crc = zlib.crc32(view[:tail_start], running)
    if crc != int(digits, 16):
        return None
    return zlib.crc32(tail, crc)


def check_rows(texts: bytes, crc_of_last: object, previous: int) -> bool:
    """Whether SQLite rows whose records joined by newlines are ``texts`` continue
    the chain from ``previous`` up to the last row's stored checksum."""
    expected = zlib.crc32(b"\n", zlib.crc32(texts, previous))
    return crc_of_last == expected


def chain_of_rows(record: bytes, previous: int) -> int:
    """The checksum of an SQLite row holding ``record``, after a row with ``previous``."""
    return zlib.crc32(record + b"\n", previous)
