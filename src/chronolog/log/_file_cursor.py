"""Reading a `FileLog` forward: whole batches of complete lines, checked.

A `Cursor` hands out a record only once the line it is on is complete, its
batch is whole (a batch a writer is still writing, or a crash cut short,
ends the reading), its seq follows the one before it, and -- in a log with
checksums -- the chain holds up to it. So a reader needs no lock: it can run
while a writer in another process appends, and never yields a record
half-written or unchecked.

Replay reads every record of a log through `Cursor.batches`, so its fast
path decodes a whole chunk of lines with one msgspec call and checks the
chain with one ``crc32`` call; only a chunk that fails is read again line by
line, to name the first bad line.
"""

from __future__ import annotations

import bisect
import os
import zlib
from operator import attrgetter
from typing import TYPE_CHECKING, Final

import msgspec

from .._errors import LogCorrupted
from .._events import decode_event, decode_lines
from ._checksum import TAIL_BYTES, check_lines, line_crc, running_after
from ._file_format import CONTINUED, Layout, corruption, read_layout
from ._file_io import PROBE_BYTES, line_number, pread_exact, rfind_newline

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from .._events import Event

__all__ = ["CHUNK_BYTES", "Cursor", "checksum_problem", "locate", "seq_decoder"]

#: Readers decode the log this many bytes (a few hundred records) at a time:
#: large enough that one decode call covers many records, small enough that
#: the records of one chunk stay in the CPU caches while they are checked.
CHUNK_BYTES = 1 << 16
#: ``read(after_seq)`` bisects the file by byte offset down to a window this
#: small, then scans it; below it a linear scan is as fast as more seeks.
_BISECT_MIN_BYTES = 1 << 18

_seq_of = attrgetter("seq")


class _SeqOnly(msgspec.Struct):
    """Just enough of a record to bisect by seq without decoding all of it."""

    seq: int = 0


seq_decoder: Final = msgspec.json.Decoder(_SeqOnly)


class Cursor:
    """Decodes the complete lines of a log file from a byte offset on, and checks them.

    It remembers where it stopped (always at a line start), the last seq it
    saw and the running checksum there, so a follower can call `batches`
    again as the file grows. Every record it hands out has the seq that
    follows the one before it, and -- in a log with checksums -- lies on a
    line that matches its checksum.
    """

    def __init__(self, path: Path, fd: int, *, offset: int = 0, previous_seq: int = 0) -> None:
        self._path = path
        self._fd = fd
        #: Where the next unread line starts; 0 while the header is unread.
        #: A reader that resumes from a snapshot starts at the line after the
        #: snapshot's record, with ``previous_seq`` its seq.
        self.offset = offset
        #: Set when a decode stopped early at damage, to hand out the records
        #: before it first; the next decode raises.
        self.damage_ahead = False
        self._previous_seq = previous_seq
        self._started = False
        self._checksums = False
        #: The running checksum at `offset` (logs with checksums).
        self._running = 0
        self._pending_running = 0

    def _start(self, after_seq: int, limit: int | None) -> bool:
        """Read the header and find where to begin; False while there is no header."""
        layout = read_layout(self._path, self._fd, limit)
        if layout is None:
            return False
        self._started = True
        self._checksums = layout.checksums
        if self.offset == 0:
            self.offset = layout.records_start
            self._previous_seq = layout.base_seq
            self._running = layout.chain
            if after_seq > layout.base_seq:
                self.skip_towards(after_seq, limit)
        if self.offset > layout.records_start:
            self._resume(layout)
        return True

    def _resume(self, layout: Layout) -> None:
        """Learn the seq and the running checksum at `offset`, from the line before it."""
        start = rfind_newline(self._fd, self.offset - 1) + 1
        line = pread_exact(self._fd, self.offset - start, start)
        try:
            self._previous_seq = seq_decoder.decode(line).seq
        except msgspec.DecodeError as exc:
            raise corruption(
                self._path, line_number(self._fd, start), f"is not a valid record: {exc}"
            ) from exc
        if layout.checksums:
            running = running_after(line)
            if running is None:
                raise corruption(
                    self._path,
                    line_number(self._fd, start),
                    "carries no checksum, but the header says its records all have one",
                )
            self._running = running

    def batches(self, after_seq: int, limit: int | None) -> Iterator[list[Event]]:
        """Yield lists of records with ``seq > after_seq``, from the whole batches
        of complete lines before ``limit`` (or the end of the file)."""
        if not self._started and not self._start(after_seq, limit):
            return
        fd = self._fd
        position = self.offset
        # Bytes from `offset` on that are read but not yet taken: the start of
        # a line longer than a chunk, or the lines of a batch whose last
        # record is still to come.
        pending = b""
        # Reads held back whole: complete lines that all continue one batch
        # whose end has not been read yet (a batch larger than a chunk). They
        # are decoded once, with the chunk that ends the batch, so a batch
        # of n chunks costs n chunks of work, not n * n / 2.
        held: list[bytes] = []
        while True:
            size = CHUNK_BYTES if limit is None else min(CHUNK_BYTES, limit - position)
            chunk = os.pread(fd, size, position) if size > 0 else b""
            if not chunk and not held:
                return
            position += len(chunk)
            data = pending + chunk if pending else chunk
            cut = data.rfind(b"\n") + 1
            if cut == 0 and chunk:
                pending = data
                continue
            if held and chunk and not _ends_batch(data, cut):
                held.append(data[:cut])
                pending = data[cut:]
                continue
            if held:
                # The batch ends here (or the file does: decoded as before, so
                # damage in its lines is found as it was).
                data = b"".join([*held, data])
                held = []
                cut = data.rfind(b"\n") + 1
                if cut == 0:
                    return
            lines = data if cut == len(data) else data[:cut]
            records, taken = self._decode(lines)
            if taken == 0 and chunk and not self.damage_ahead:
                # No batch ends in these lines: hold them (see `held`).
                held.append(lines)
                pending = data[cut:]
                continue
            pending = data[taken:]
            if records:
                if records[0].seq > after_seq:
                    yield records
                else:
                    rest = records[bisect.bisect_right(records, after_seq, key=_seq_of) :]
                    if rest:
                        yield rest
            if self.damage_ahead:
                self._decode_each(lines[taken:])  # raises LogCorrupted at the damage
            if not chunk:
                return

    def _decode(self, lines: bytes) -> tuple[list[Event], int]:
        """Decode complete lines; return the records of the whole batches among
        them and how many bytes those take. Fast path: all lines at once."""
        try:
            records = decode_lines(lines)
        except msgspec.DecodeError:
            return self._decode_each(lines)
        decode = self._sealed if self._checksums else self._unsealed
        found = decode(lines, records)
        if found is None:
            return self._decode_each(lines)
        records, taken = found
        # Contiguous seqs, checked in C (two lists compared): this runs for
        # every record of every replay.
        previous = self._previous_seq
        if list(map(_seq_of, records)) != list(range(previous + 1, previous + 1 + len(records))):
            return self._decode_each(lines)
        if self._checksums:
            # Only now, with the records of these lines vouched for: the
            # running checksum after them.
            self._running = self._pending_running
        self.offset += taken
        if records:
            self._previous_seq = records[-1].seq
        return records, taken

    def _unsealed(self, lines: bytes, records: list[Event]) -> tuple[list[Event], int] | None:
        """The records of the whole batches of lines without checksums, and their bytes."""
        # decode_lines skips blank lines and accepts values spanning lines or
        # sharing one; a count mismatch sends those to the exact decoder.
        if len(records) != lines.count(b"\n"):
            return None
        taken = len(lines)
        whole = len(records)
        # The last batch has not ended in these lines: hold it back.
        while whole:
            start = lines.rfind(b"\n", 0, taken - 1) + 1
            if lines[start] != CONTINUED:
                break
            whole -= 1
            taken = start
        return records[:whole] if whole < len(records) else records, taken

    def _sealed(self, lines: bytes, records: list[Event]) -> tuple[list[Event], int] | None:
        """The records of the whole batches of lines with checksums, and their bytes.

        One crc32 over every whole line: the chain the last one carries holds
        only if every byte before it is as the writer wrote it -- one record
        per line, no blank line -- so, unlike lines without checksums, the
        lines need not be counted: the seq on the last whole line says how
        many records they hold.
        """
        taken = len(lines)
        # The last batch has not ended in these lines: hold it back.
        while taken:
            start = lines.rfind(b"\n", 0, taken - 1) + 1
            if lines[start] != CONTINUED:
                break
            taken = start
        if taken == 0:
            return [], 0
        running = check_lines(lines, taken, self._running)
        if running is None:
            return None
        try:
            last = seq_decoder.decode(lines[lines.rfind(b"\n", 0, taken - 1) + 1 : taken]).seq
        except msgspec.DecodeError:
            return None
        whole = last - self._previous_seq
        if not 0 < whole <= len(records) or records[whole - 1].seq != last:
            return None
        self._pending_running = running
        return records[:whole] if whole < len(records) else records, taken

    def _decode_each(self, lines: bytes) -> tuple[list[Event], int]:
        """Decode and check line by line; raise `LogCorrupted` at the first bad line."""
        self.damage_ahead = False
        records: list[Event] = []
        batch: list[Event] = []
        taken = 0  # bytes of the whole batches decoded so far
        position = 0
        previous = self._previous_seq
        running = running_taken = self._running
        for line in lines.split(b"\n")[:-1]:
            problem = None
            cause: Exception | None = None
            try:
                record = decode_event(line)
            except msgspec.DecodeError as exc:
                problem = "is empty" if not line.strip() else f"is not a valid record: {exc}"
                cause = exc
            else:
                problem = _seq_problem(record.seq, previous, self.offset + position, self._fd)
            if problem is None and self._checksums:
                problem, running = checksum_problem(line, running)
            if problem is not None:
                if records or batch:
                    # Hand out every record before the damage first, also those
                    # of a batch that the damage cut short: this is no write in
                    # flight, and the next call raises.
                    records.extend(batch)
                    taken = position
                    running_taken = running
                    self.damage_ahead = True
                    break
                raise self._corrupted(problem, self.offset + position) from cause
            previous = record.seq
            position += len(line) + 1
            batch.append(record)
            if line[:1] != b" ":
                records.extend(batch)
                batch.clear()
                taken = position
                running_taken = running
        self.offset += taken
        self._running = running_taken
        if records:
            self._previous_seq = records[-1].seq
        return records, taken

    def _corrupted(self, problem: str, offset: int) -> LogCorrupted:
        return corruption(self._path, line_number(self._fd, offset), problem)

    def skip_towards(self, after_seq: int, limit: int | None) -> None:
        """Move `offset` forward, by bisection, to a line start before the first
        record with ``seq > after_seq``; skipped lines are not validated."""
        low = self.offset
        high = limit if limit is not None else os.fstat(self._fd).st_size
        while high - low > _BISECT_MIN_BYTES:
            middle = (low + high) // 2
            start = self._next_line_start(middle, high)
            if start is None:
                high = middle
                continue
            seq = self._probe_seq(start, high)
            if seq is None:
                break  # let the linear scan report the damage
            if seq > after_seq:
                high = start
            elif start > low:
                low = start
            else:
                break
        self.offset = low

    def _next_line_start(self, position: int, end: int) -> int | None:
        data = os.pread(self._fd, min(PROBE_BYTES, end - position + 1), position - 1)
        newline = data.find(b"\n")
        if newline < 0 or position + newline >= end:
            return None
        return position + newline

    def _probe_seq(self, start: int, end: int) -> int | None:
        data = os.pread(self._fd, min(PROBE_BYTES, end - start), start)
        newline = data.find(b"\n")
        if newline < 0:
            return None
        try:
            return seq_decoder.decode(data[:newline]).seq
        except msgspec.DecodeError:
            return None

    def check_not_shrunk(self) -> None:
        size = os.fstat(self._fd).st_size
        if size < self.offset:
            raise LogCorrupted(
                f"{self._path} shrank to {size} bytes while being read up to byte "
                f"{self.offset}: records already read are gone (a writer undid a failed "
                f"append, or the file was replaced); read the log again from the start"
            )


def _ends_batch(data: bytes, cut: int) -> bool:
    """Does a complete line of ``data[:cut]`` end a batch (not start with `CONTINUED`)?

    Looks from the last line back, so the usual answer (the last line ends
    one) costs one step; a batch larger than a chunk costs a walk over the
    lines of this chunk only.
    """
    end = cut
    while end:
        start = data.rfind(b"\n", 0, end - 1) + 1
        if data[start] != CONTINUED:
            return True
        end = start
    return False


def _seq_problem(seq: int, previous: int, offset: int, fd: int) -> str | None:
    """What is wrong with a record's ``seq`` after one with ``previous``; None if nothing."""
    if seq == previous + 1:
        return None
    if seq <= previous:
        return (
            f"has seq {seq}, but seqs must strictly increase: expected seq {previous + 1} "
            f"after seq {previous}"
        )
    before = line_number(fd, offset) - 1
    missing = f"seq {previous + 1}" if seq == previous + 2 else f"seqs {previous + 1} to {seq - 1}"
    return (
        f"has seq {seq}, but the record before it (line {before}) has seq {previous}: the "
        f"record{'s' if seq > previous + 2 else ''} with {missing} "
        f"{'are' if seq > previous + 2 else 'is'} missing"
    )


def checksum_problem(line: bytes, running: int) -> tuple[str | None, int]:
    """Check one line (no newline) against the chain; (problem or None, running after it)."""
    whole = line + b"\n"
    crc = line_crc(whole)
    if crc is None:
        return "carries no checksum, but the header says its records all have one", running
    computed = zlib.crc32(whole[:-TAIL_BYTES], running)
    if computed != crc:
        return (
            f"does not match its checksum (it carries {crc:08x}; its content and the lines "
            f"before it give {computed:08x}): it was changed after it was written, or a line "
            f"before it was removed, added or moved",
            running,
        )
    return None, zlib.crc32(whole[-TAIL_BYTES:], crc)


def locate(path: Path, fd: int, seq: int, limit: int) -> tuple[int, int] | None:
    """The offsets ``(start, end)`` of the line of the record with ``seq``, or None.

    Bisects to the neighbourhood by byte offset (as ``read(after_seq)``),
    then reads the seqs of the lines from there: a few reads, however long
    the log.
    """
    cursor = Cursor(path, fd)
    layout = read_layout(path, fd, limit)
    if layout is None:
        return None
    cursor.offset = layout.records_start
    cursor.skip_towards(seq - 1, limit)
    position = cursor.offset
    pending = b""
    while position < limit:
        chunk = os.pread(fd, min(CHUNK_BYTES, limit - position), position)
        if not chunk:
            return None
        data = pending + chunk
        start = position - len(pending)
        position += len(chunk)
        line_start = 0
        while (newline := data.find(b"\n", line_start)) >= 0:
            try:
                found = seq_decoder.decode(data[line_start:newline]).seq
            except msgspec.DecodeError:
                return None
            if found == seq:
                return start + line_start, start + newline + 1
            if found > seq:
                return None
            line_start = newline + 1
        pending = data[line_start:]
    return None
