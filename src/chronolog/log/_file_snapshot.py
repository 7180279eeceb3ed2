"""The states a `FileLog` keeps: the sidecar snapshot, and the base of a compacted log.

The snapshot lives in ``<log>.snapshot``: a head line (`_SnapshotHead`), then
the encoded State. It only ever makes opening faster, so one that does not
apply -- damaged, of another log, of this log before a rewrite -- is ignored
with a `SnapshotIgnored` warning and the log replayed from its base.

The base of a compacted log is the line after the header, which names its
length and SHA-256: the records it folds are gone, so a base that does not
match is `LogCorrupted`, never ignored.
"""

from __future__ import annotations

import hashlib
import os
from typing import TYPE_CHECKING, Final

import msgspec

from .._projection import State
from ._base import base_from_snapshot, ignore_snapshot, state_from_snapshot
from ._file_format import corruption
from ._file_io import pread_exact

if TYPE_CHECKING:
    from pathlib import Path

    from ._file_format import Layout

__all__ = ["snapshot_file", "stored_base", "usable_snapshot"]

_SNAPSHOT_FILE_FORMAT: Final = "chronolog-log-snapshot"
_SNAPSHOT_FILE_VERSION: Final = 1
#: How much of the start of the log a snapshot's ``head_sha256`` covers.
_HEAD_BYTES: Final = 4096


class _SnapshotHead(msgspec.Struct, frozen=True):
    """The first line of a snapshot file: which log, which record, which checksums.

    The snapshot applies to a log only if the record at ``seq`` is still the
    very line ``[record_start, record_end)`` it was (same SHA-256) and the
    log still begins with the same bytes: a snapshot of another log, or of
    this log before a rewrite, fails one of these two checks -- both cost a
    couple of reads, however long the log. The tail to replay starts at
    ``record_end``.
    """

    format: str
    version: int
    log: str
    seq: int
    record_start: int
    record_end: int
    record_sha256: str
    head_sha256: str
    state_bytes: int
    state_sha256: str


_snapshot_head_decoder: Final = msgspec.json.Decoder(_SnapshotHead)


def stored_base(path: Path, fd: int, layout: Layout | None, history_limit: int) -> State:
    """The State the records of a log file fold onto: its base snapshot, or nothing."""
    if layout is None or layout.base_seq == 0:
        return State(history_limit=history_limit)
    length = layout.records_start - layout.base_start
    line = pread_exact(fd, length, layout.base_start)
    if hashlib.sha256(line).hexdigest() != layout.base_sha256:
        raise corruption(
            path,
            2,
            "(the base snapshot of this compacted log) does not match its checksum in the header",
        )
    return base_from_snapshot(line[:-1], history_limit=history_limit, where=str(path))


def snapshot_file(
    log_name: str, fd: int, seq: int, record: tuple[int, int], document: bytes
) -> bytes:
    """The content of the snapshot file of ``document``, the State up to the record
    with ``seq`` on the line ``record`` (start and end offsets) of the log file
    named ``log_name`` (its real name), open at ``fd``."""
    start, end = record
    head = _SnapshotHead(
        format=_SNAPSHOT_FILE_FORMAT,
        version=_SNAPSHOT_FILE_VERSION,
        log=log_name,
        seq=seq,
        record_start=start,
        record_end=end,
        record_sha256=hashlib.sha256(pread_exact(fd, end - start, start)).hexdigest(),
        head_sha256=hashlib.sha256(pread_exact(fd, min(_HEAD_BYTES, end), 0)).hexdigest(),
        state_bytes=len(document),
        state_sha256=hashlib.sha256(document).hexdigest(),
    )
    return msgspec.json.encode(head) + b"\n" + document + b"\n"


def usable_snapshot(
    log_path: Path,
    snapshot_path: Path,
    fd: int,
    layout: Layout,
    history_limit: int,
    limit: int | None,
) -> tuple[State, int] | None:
    """The snapshot's State and the offset of the tail after it, if it applies to
    the log open at ``fd`` (read up to ``limit``); None, with a warning where it
    is damaged or another log's, otherwise."""
    where = f"{snapshot_path} of log {log_path}"
    try:
        content = snapshot_path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        ignore_snapshot(where, f"it cannot be read ({exc.strerror or exc})")
        return None
    newline = content.find(b"\n")
    try:
        head = _snapshot_head_decoder.decode(content[: max(newline, 0)])
    except msgspec.DecodeError:
        ignore_snapshot(where, "it is not a chronolog snapshot file")
        return None
    if head.format != _SNAPSHOT_FILE_FORMAT or head.version != _SNAPSHOT_FILE_VERSION:
        ignore_snapshot(
            where,
            f"it is a {head.format!r} file of version {head.version}, not one this "
            f"chronolog reads",
        )
        return None
    if head.seq <= layout.base_seq:
        return None  # older than the base: nothing to gain
    problem = _snapshot_mismatch(snapshot_path, fd, head, limit)
    document = content[newline + 1 :]
    if problem is None and (
        len(document) != head.state_bytes + 1
        or hashlib.sha256(document[:-1]).hexdigest() != head.state_sha256
    ):
        problem = "it is damaged (its state does not match its checksum)"
    if problem is not None:
        ignore_snapshot(where, problem)
        return None
    state = state_from_snapshot(document[:-1], history_limit=history_limit, where=where)
    if state is None:
        return None
    if state.seq != head.seq:
        ignore_snapshot(where, f"its state is at seq {state.seq}, its header says {head.seq}")
        return None
    return state, head.record_end


def _snapshot_mismatch(
    snapshot_path: Path, fd: int, head: _SnapshotHead, limit: int | None
) -> str | None:
    """Why the snapshot with ``head`` does not apply to the log in ``fd``; None if it does."""
    size = limit if limit is not None else os.fstat(fd).st_size
    if head.log + ".snapshot" != snapshot_path.name:
        return f"it was saved for log {head.log!r}"
    if not 0 <= head.record_start < head.record_end <= size:
        return (
            f"its record at seq {head.seq} ends at byte {head.record_end}, past the end of the "
            f"log ({size} bytes): the log was cut or replaced since"
        )
    line = pread_exact(fd, head.record_end - head.record_start, head.record_start)
    head_bytes = pread_exact(fd, min(_HEAD_BYTES, head.record_end), 0)
    if (
        hashlib.sha256(line).hexdigest() != head.record_sha256
        or hashlib.sha256(head_bytes).hexdigest() != head.head_sha256
    ):
        return (
            f"its record at seq {head.seq} is not in the log where it was: the snapshot "
            f"belongs to another log, or to this one before it was rewritten"
        )
    return None
