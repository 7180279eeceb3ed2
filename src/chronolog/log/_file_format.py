"""The bytes of a `FileLog`: header, base, batches of sealed lines.

A log file is::

    {"format":"chronolog","version":3,...}\\n     the header (names a base, if any)
    <the base snapshot of a compacted log>\\n       only in a compacted log
     <record>,"crc":"xxxxxxxx"}\\n                 a batch: every line but its last
    <record>,"crc":"xxxxxxxx"}\\n                   starts with a space

Every record line carries the checksum chain (see `chronolog.log._checksum`).
The leading space is the batch framing: JSON allows leading whitespace, so
every line still decodes as a record, yet a reader can tell a whole batch
from one whose last line a crash never wrote -- which keeps appends atomic.
Versions 1 and 2 have the same framing without checksums.

Damage is reported by `corruption`, naming the 1-based line: the lines
before it are intact, and the message says what to do.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Final, NamedTuple

import msgspec

from .._errors import LogCorrupted
from .._events import (
    CHECKSUM_VERSION,
    COMPACTED_LOG_VERSION,
    FORMAT_NAME,
    FORMAT_VERSION,
    FULL_LOG_VERSION,
    Header,
    decode_header,
    encode_header,
    encode_record_into,
)
from .._strict import RECOVERY_GUIDE
from ._checksum import line_crc, seal
from ._file_io import PROBE_BYTES

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

    from .._events import Event

__all__ = [
    "CONTINUED",
    "HEADER",
    "HEADERS",
    "Layout",
    "check_header",
    "corruption",
    "encode_batch",
    "encode_sealed",
    "layout_after",
    "not_a_log",
    "read_layout",
    "seal_records",
]

#: The header a log file gets when it is created: the current version.
HEADER: Final = encode_header(checksums=True)
#: Every header a log file can start with before a base: a crash that cut
#: one short left a torn tail at offset 0.
HEADERS: Final = (HEADER, encode_header())
#: A line that starts with this byte (a space) belongs to a batch that goes on
#: at the next line: see `encode_batch`.
CONTINUED: Final = ord(" ")


class Layout(NamedTuple):
    """Where the parts of a log file are, from its header."""

    records_start: int
    """Offset of the first record line (just past the header, and the base)."""
    version: int
    base_seq: int = 0
    """The seq the base snapshot of a compacted log folds up to; 0 without one."""
    base_start: int = 0
    """Offset of the base snapshot line (0 without one)."""
    base_sha256: str = ""
    chain: int = 0
    """The running checksum the first record goes on from (version 3)."""

    @property
    def checksums(self) -> bool:
        return self.version >= CHECKSUM_VERSION


def read_layout(path: Path, fd: int, limit: int | None) -> Layout | None:
    """The layout of a valid log file; None while its header is incomplete."""
    size = PROBE_BYTES if limit is None else min(PROBE_BYTES, limit)
    head = os.pread(fd, size, 0)
    newline = head.find(b"\n")
    if newline < 0:
        if HEADER.startswith(head):
            return None  # empty, or a header still being written
        raise LogCorrupted(not_a_log(path, head))
    return layout_after(path, fd, check_header(path, head[:newline]), newline + 1)


def check_header(path: Path, line: bytes) -> Header:
    """The header on the first ``line`` of a file; `LogCorrupted` if it is none this
    chronolog reads."""
    try:
        header = decode_header(line)
    except msgspec.DecodeError as exc:
        raise LogCorrupted(not_a_log(path, line)) from exc
    if header.format != FORMAT_NAME or header.version < 1:
        raise LogCorrupted(not_a_log(path, line))
    if header.version > FORMAT_VERSION:
        raise LogCorrupted(
            f"{path} was written by format version {header.version}; this chronolog reads "
            f"versions 1 to {FORMAT_VERSION} -- upgrade chronolog to read it"
        )
    # A header of a version this chronolog writes has no other keys. A line
    # that has some is damage: bytes cut across the header and the first
    # records can leave one line that still decodes as a header, and the
    # records merged into it would be lost without a word.
    extra = sorted(set(msgspec.json.decode(line)) - _HEADER_KEYS)
    if extra:
        raise LogCorrupted(
            f"{path} line 1 is a header with keys no header of version {header.version} "
            f"has ({', '.join(extra[:5])}): the log's first lines are damaged, records "
            f"merged into its header; restore the log from a backup (see {RECOVERY_GUIDE})"
        )
    return header


_HEADER_KEYS: Final = frozenset(Header.__struct_fields__)


def layout_after(path: Path, fd: int, header: Header, header_end: int) -> Layout:
    """The layout a valid ``header`` line (ending at ``header_end``) announces."""
    chain = 0
    if header.checksums and header.chain:
        try:
            chain = int(header.chain, 16)
        except ValueError:
            chain = -1
        if len(header.chain) != 8 or chain < 0:
            raise corruption(
                path,
                1,
                f"(the header) names the checksum {header.chain!r} the records go on from, "
                f"which is not 8 hex digits",
            )
    names_a_base = bool(header.base_seq or header.base_bytes or header.base_sha256)
    if header.version == FULL_LOG_VERSION and names_a_base:
        raise corruption(path, 1, "(the header) names a base snapshot, but is of version 1")
    if header.version != COMPACTED_LOG_VERSION and not names_a_base:
        found = Layout(header_end, header.version, chain=chain)
    else:
        end = header_end + header.base_bytes
        if header.base_seq < 1 or header.base_bytes < 2 or os.pread(fd, 1, end - 1) != b"\n":
            raise corruption(
                path,
                2,
                f"is not the base snapshot that the header announces ({header.base_bytes} "
                f"bytes that fold the records up to seq {header.base_seq}; a compacted log is "
                f"written whole, so the file was cut or changed since)",
            )
        found = Layout(end, header.version, header.base_seq, header_end, header.base_sha256, chain)
    if not found.checksums:
        _check_unsealed(path, fd, found)
    return found


def _check_unsealed(path: Path, fd: int, found: Layout) -> None:
    """Refuse a log whose header says "no checksums" when its first record has one:
    the header was changed (a version 3 log read as version 1 would go unchecked)."""
    head = os.pread(fd, PROBE_BYTES, found.records_start)
    newline = head.find(b"\n")
    if newline >= 0 and line_crc(head[: newline + 1]) is not None:
        number = 3 if found.base_seq else 2
        raise corruption(
            path,
            number,
            f"carries a checksum, but the header says format version {found.version}, whose "
            f"records have none: the header was changed",
        )


def not_a_log(path: Path, first_line: bytes) -> str:
    """The message for a file whose ``first_line`` is no chronolog header."""
    shown = first_line[:80].decode("utf-8", "replace")
    more = "..." if len(first_line) > 80 else ""
    return (
        f"{path} is not a chronolog log (first line {shown!r}{more}; a log starts with "
        f"{HEADER.rstrip().decode()}); check the path"
    )


def corruption(path: Path, line_number: int, problem: str) -> LogCorrupted:
    """The error for damage at 1-based line ``line_number``: ``problem`` says what."""
    return LogCorrupted(
        f"{path} line {line_number} {problem}. The log is damaged there; lines 1 to "
        f"{line_number - 1} are intact: restore the log from a backup, or keep those lines "
        f"and move the rest aside (see {RECOVERY_GUIDE})"
    )


def encode_batch(records: list[Event], running: int) -> tuple[bytes, int]:
    """A batch as lines, each sealed with its checksum; and the running checksum after it.

    Every line but the last starts with a space (`CONTINUED`), the batch
    framing; the checksum covers the space too.
    """
    buffer = bytearray()
    last = len(records) - 1
    for index, record in enumerate(records):
        start = len(buffer)
        if index < last:
            buffer += b" "
        encode_record_into(record, buffer)
        del buffer[-1]  # the closing brace: the checksum is the object's last field
        tail, running = seal(bytes(buffer[start:]), running)
        buffer += tail
    return bytes(buffer), running


def encode_sealed(records: list[Event]) -> bytes:
    """A version 3 log file's content holding ``records``, each a batch of its own.

    For tools and tests that write a log without a writer (the benchmarks):
    the header, then the records with their checksum chain.
    """
    data, _ = seal_records(records, 0)
    return HEADER + data


def seal_records(records: Iterable[Event], running: int) -> tuple[bytes, int]:
    """``records`` as version 3 lines, each a batch of its own, going on from the
    running checksum ``running``; and the running checksum after them. Write
    `encode_sealed`'s header first, then these, chunk after chunk."""
    buffer = bytearray()
    for record in records:
        start = len(buffer)
        encode_record_into(record, buffer)
        del buffer[-1]
        tail, running = seal(bytes(buffer[start:]), running)
        buffer += tail
    return bytes(buffer), running
