"""The end of a `FileLog`: its last whole batch, and the torn bytes a crash leaves.

An append writes its batch with one ``write``; a crash of the machine in
the middle of it leaves a *torn tail*: a last line without its newline, and
before it complete lines of a batch whose last line never landed (they
begin with a space, see ``_file_format``). Readers stop before a torn tail;
a writer that opens the log moves it aside to ``<log>.torn-<offset>`` (kept,
fsynced, never deleted) and cuts the log back to its last whole batch, with
a `LogRepaired` warning. Complete lines in a torn tail must still match
their checksums -- a crash cuts lines short, it does not change them -- so
anything else is damage, never cut off silently.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import warnings
from typing import TYPE_CHECKING, NamedTuple

import msgspec

from .._errors import LogCorrupted, LogRepaired
from .._events import decode_event
from ._checksum import running_after
from ._file_cursor import checksum_problem
from ._file_format import (
    HEADERS,
    Layout,
    check_header,
    corruption,
    layout_after,
    not_a_log,
    read_layout,
)
from ._file_io import (
    PROBE_BYTES,
    line_number,
    pread_exact,
    rfind_newline,
    write_all,
)
from ._os import LOG_FILE_MODE, fsync_directory

if TYPE_CHECKING:
    from pathlib import Path

    from .._events import Event

__all__ = [
    "Repair",
    "TornTail",
    "cut_torn_tail",
    "end_of_last_batch",
    "inspect_tail",
    "last_seq_in",
    "report_repair",
    "running_at",
]

logger = logging.getLogger("chronolog.log")


class TornTail(NamedTuple):
    """Bytes after the last whole batch of a log file (see `FileLog.torn_tail`)."""

    offset: int
    """Where the torn bytes start: the end of the last whole batch."""
    length: int
    """How many bytes follow it."""
    line: int
    """The 1-based line number the torn bytes start on."""


class Repair(NamedTuple):
    """What opening for writing cut off: a torn tail, and where its bytes were kept."""

    offset: int
    length: int
    kept_at: Path


def last_seq_in(path: Path, fd: int, size: int) -> int:
    """The seq of the last complete record before ``size``: the base's seq if
    there is none after the base, 0 if there is neither."""
    layout = read_layout(path, fd, size)
    if layout is None:
        return 0
    header_end = layout.records_start
    end = end_of_last_batch(path, fd, rfind_newline(fd, size) + 1, header_end)
    if end <= header_end:
        return layout.base_seq
    seq = last_record(path, fd, end).seq
    if seq <= 0:
        start = rfind_newline(fd, end - 1) + 1
        raise corruption(
            path, line_number(fd, start), f"(the last one) has seq {seq}; seqs start at 1"
        )
    return seq


def end_of_last_batch(path: Path, fd: int, end: int, header_end: int) -> int:
    """Where the last whole batch among the complete lines before ``end`` ends.

    Walks back over lines that begin with a space: they belong to a batch
    whose last record is missing. Returns ``header_end`` if no whole batch
    remains.
    """
    while end > header_end:
        start = rfind_newline(fd, end - 1) + 1
        if os.pread(fd, 1, start) != b" ":
            break
        end = start
    return max(end, header_end)


def last_record(path: Path, fd: int, end: int) -> Event:
    """Decode the complete line that ends at ``end`` (just past its newline)."""
    start = rfind_newline(fd, end - 1) + 1
    line = pread_exact(fd, end - 1 - start, start)
    try:
        return decode_event(line)
    except msgspec.DecodeError as exc:
        where = "the last one" if end >= os.fstat(fd).st_size else "near the end"
        raise corruption(
            path, line_number(fd, start), f"({where}) is not a valid record: {exc}"
        ) from exc


def running_at(path: Path, fd: int, offset: int, layout: Layout | None) -> int:
    """The running checksum at ``offset``, a line start at or after the first record."""
    if layout is None or not layout.checksums:
        return 0
    if offset <= layout.records_start:
        return layout.chain
    start = rfind_newline(fd, offset - 1) + 1
    line = pread_exact(fd, offset - start, start)
    running = running_after(line)
    if running is None:
        raise corruption(
            path,
            line_number(fd, start),
            "carries no checksum, but the header says its records all have one",
        )
    return running


def inspect_tail(path: Path, fd: int, size: int) -> tuple[Layout | None, int]:
    """The layout of a non-empty log file, and where its last whole batch ends.

    Bytes after that are a torn tail -- a write a crash interrupted -- as
    long as they look like one: a last line without its newline, and before
    it complete lines of a batch whose last line never landed. In a log with
    checksums those complete lines must match theirs (a crash cuts lines
    short, it does not change them); one that does not is damage.
    """
    head = os.pread(fd, PROBE_BYTES, 0)
    newline = head.find(b"\n")
    if newline < 0:
        if not any(header.startswith(head) for header in HEADERS):
            raise LogCorrupted(not_a_log(path, head))
        return None, 0  # a header cut short by a crash: a torn tail at offset 0
    layout = layout_after(path, fd, check_header(path, head[:newline]), newline + 1)
    complete = size if os.pread(fd, 1, size - 1) == b"\n" else rfind_newline(fd, size) + 1
    keep = end_of_last_batch(path, fd, complete, layout.records_start)
    if layout.checksums and keep < complete:
        running = running_at(path, fd, keep, layout)
        position = keep
        for line in pread_exact(fd, complete - keep, keep).split(b"\n")[:-1]:
            problem, running = checksum_problem(line, running)
            if problem is not None:
                raise corruption(
                    path,
                    line_number(fd, position),
                    "begins with a space, as the lines of a batch still being written do, "
                    "but it does not match its checksum: a crash cuts lines short, it does "
                    "not change them, so this is damage, not a torn write",
                )
            position += len(line) + 1
    return layout, keep


def cut_torn_tail(fd: int, offset: int, size: int, real: Path) -> Repair:
    """Keep the bytes from ``offset`` to ``size`` aside, then cut the log there."""
    torn = pread_exact(fd, size - offset, offset)
    kept_at = _keep_aside(torn, offset, real)
    os.ftruncate(fd, offset)
    os.fsync(fd)
    return Repair(offset=offset, length=len(torn), kept_at=kept_at)


def _keep_aside(data: bytes, offset: int, real: Path) -> Path:
    """Write ``data`` durably to a new ``<log>.torn-<offset>[.n]`` file."""
    base = f"{real.name}.torn-{offset}"
    for attempt in itertools.count():
        candidate = real.with_name(base if attempt == 0 else f"{base}.{attempt}")
        try:
            fd = os.open(
                candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, LOG_FILE_MODE
            )
        except FileExistsError:
            continue
        try:
            write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        fsync_directory(real.parent)
        return candidate
    raise AssertionError("unreachable")  # pragma: no cover


def report_repair(path: Path, repair: Repair, *, stacklevel: int) -> None:
    """Log and warn (`LogRepaired`) that opening the log ``path`` cut off a torn tail.

    The kept bytes are named as the log was: beside the name given, unless
    that is a symlink elsewhere (the bytes lie beside the file itself).
    ``stacklevel`` counts from the caller, as in ``warnings.warn``.
    """
    kept_at = path.with_name(repair.kept_at.name)
    with contextlib.suppress(OSError):
        if not os.path.samefile(kept_at.parent, repair.kept_at.parent):
            kept_at = repair.kept_at
    message = (
        f"{path} ended with a torn batch ({repair.length} bytes after byte "
        f"offset {repair.offset}: a crash interrupted a write before its last record "
        f"was complete, so the append never returned). "
        f"Those bytes were moved to {kept_at}, and the log now ends with "
        f"its last complete record."
    )
    logger.warning("%s", message)
    warnings.warn(message, LogRepaired, stacklevel=stacklevel + 1)
