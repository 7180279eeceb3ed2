"""Rewriting a `FileLog` whole: compaction, and the upgrade to format version 3.

Both write the new file beside the log (``<log>.compact``, ``<log>.upgrade``),
lock it, fsync it and rename it over the log's real path; the caller then
appends to the new file and fsyncs the directory. A crash at any moment
leaves the old log or the new one, and a failure before the rename leaves
the log unchanged and says so. A log with a second hard link is refused:
the rename would replace one name only, and the others would keep the old
log.

* Compaction keeps the records after a seq byte for byte, behind a header
  that names the new base snapshot and the checksum their chain goes on
  from.
* The upgrade seals every record of a version 1 or 2 log with its checksum,
  in the same batches. Checksums would vouch for what the log says, so the
  log is first checked against every rule of the log (`check_before_upgrade`,
  when it is opened for writing).
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from typing import TYPE_CHECKING, Final

from .._events import decode_event, encode_header, encode_record_into
from .._invariants import Checker
from .._projection import DEFAULT_HISTORY_LIMIT
from .._strict import refusal
from ._checksum import running_after, seal
from ._file_cursor import Cursor
from ._file_format import HEADER, corruption
from ._file_io import line_number, pread_exact, remove, write_all
from ._file_snapshot import stored_base
from ._lock import check_single_name, lock_replacement
from ._os import LOG_FILE_MODE, os_error

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from ._file_format import Layout

__all__ = ["check_before_upgrade", "compacted", "upgraded"]

#: A rewrite copies the log this many bytes at a time.
_COPY_BYTES: Final = 1 << 20


def compacted(
    path: Path,
    real: Path,
    snapshot_path: Path,
    old_fd: int,
    size: int,
    base: bytes,
    seq: int,
    record: tuple[int, int],
) -> tuple[int, int]:
    """Replace the log (open at ``old_fd``, ``size`` bytes) by ``base`` -- the State up
    to the record with ``seq`` on the line ``record`` (start and end offsets) --
    and the records after it; return the new file's descriptor (locked) and size.

    The snapshot file goes first: its offsets would not match the new file.
    """
    start, cut = record
    # The records kept are copied byte for byte: the header says where
    # their checksum chain goes on from.
    chain = running_after(pread_exact(old_fd, cut - start, start))
    if chain is None:
        raise corruption(path, line_number(old_fd, start), "carries no checksum")
    what = f"could not compact log {path}"
    unchanged = "the log is unchanged"
    try:
        check_single_name(old_fd, path, "compact")
        remove(snapshot_path)
    except OSError as exc:
        raise os_error(exc, what, unchanged) from exc

    def write(new_fd: int) -> None:
        line = base + b"\n"
        header = encode_header(checksums=True, base_seq=seq, base=line, chain=chain)
        write_all(new_fd, header + line)
        position = cut
        while position < size:
            chunk = os.pread(old_fd, min(_COPY_BYTES, size - position), position)
            if not chunk:
                raise OSError(errno.EIO, f"{path} ended at byte {position} while copied")
            write_all(new_fd, chunk)
            position += len(chunk)

    return _rewrite_beside(path, real, old_fd, ".compact", what, unchanged, write)


def upgraded(path: Path, real: Path, old_fd: int, size: int, layout: Layout) -> tuple[int, int]:
    """Replace the log of format version 1 or 2 (open at ``old_fd``, ``size`` bytes)
    by its version 3 form; return the new file's descriptor (locked) and size.

    Refused up front, with the log unchanged, when the file system lacks the
    room for the copy.
    """
    what = f"could not upgrade log {path} from format version {layout.version} to 3"
    unchanged = f"the log is unchanged (version {layout.version})"
    check_single_name(old_fd, path, "upgrade (rewrite)")
    needed = size + (size // 8) + (1 << 20)
    try:
        free = os.statvfs(real.parent)
    except OSError as exc:
        raise os_error(exc, what, unchanged) from exc
    if free.f_bavail * free.f_frsize < needed:
        raise OSError(
            errno.ENOSPC,
            f"{what}: it needs about {_mib(needed)} free beside it, and the file system "
            f"has {_mib(free.f_bavail * free.f_frsize)}; {unchanged}. Free some "
            f"space and try again",
        )
    return _rewrite_beside(
        path,
        real,
        old_fd,
        ".upgrade",
        what,
        unchanged,
        lambda new_fd: _write_upgraded(old_fd, new_fd, layout, size),
        # Only once the new file is complete: its offsets are the old file's.
        before_rename=lambda: remove(real.with_name(real.name + ".snapshot")),
    )


def check_before_upgrade(path: Path, fd: int, layout: Layout, end: int) -> None:
    """Read a log of an older format up to ``end`` and check every rule: it is
    about to be rewritten with checksums, which would vouch for what it says."""
    checker = Checker()
    if layout.base_seq:
        checker.start_from(stored_base(path, fd, layout, DEFAULT_HISTORY_LIMIT))
    cursor = Cursor(path, fd)
    for batch in cursor.batches(0, end):
        for record in batch:
            checker.check(record)
            if checker.violations:
                raise refusal(str(path), checker.violations[0], upgrading=layout.version)


def _rewrite_beside(
    path: Path,
    real: Path,
    old_fd: int,
    suffix: str,
    what: str,
    unchanged: str,
    write: Callable[[int], None],
    before_rename: Callable[[], None] | None = None,
) -> tuple[int, int]:
    """Write a new file with ``write`` beside the log's real path ``real`` (named
    ``<log><suffix>``), with the old file's mode, locked and fsynced, and rename
    it over the log; return its descriptor and size. The old descriptor stays
    open. Any failure before the rename removes the new file and raises an
    ``OSError`` saying ``what`` failed and that the log is ``unchanged``."""
    temporary = real.with_name(real.name + suffix)
    try:
        remove(temporary)
        new_fd = os.open(
            temporary,
            os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC,
            LOG_FILE_MODE,
        )
    except OSError as exc:
        raise os_error(exc, what, unchanged) from exc
    try:
        os.fchmod(new_fd, stat.S_IMODE(os.fstat(old_fd).st_mode))
        lock_replacement(new_fd, path)
        write(new_fd)
        os.fsync(new_fd)
        new_size = os.fstat(new_fd).st_size
        if before_rename is not None:
            before_rename()
        os.replace(temporary, real)
    except BaseException as exc:
        os.close(new_fd)
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        if isinstance(exc, OSError):
            raise os_error(exc, what, unchanged) from exc
        raise
    return new_fd, new_size


def _write_upgraded(old_fd: int, new_fd: int, layout: Layout, size: int) -> None:
    """Write the version 3 form of the old file's content (up to ``size``) to ``new_fd``."""
    if layout.base_seq:
        base = pread_exact(old_fd, layout.records_start - layout.base_start, layout.base_start)
        header = encode_header(checksums=True, base_seq=layout.base_seq, base=base)
        write_all(new_fd, header + base)
    else:
        write_all(new_fd, HEADER)
    running = 0
    position = layout.records_start
    pending = b""
    while position < size:
        chunk = os.pread(old_fd, min(_COPY_BYTES, size - position), position)
        if not chunk:
            raise OSError(errno.EIO, f"the log ended at byte {position} while it was copied")
        position += len(chunk)
        data = pending + chunk
        cut = data.rfind(b"\n") + 1
        pending = data[cut:]
        buffer = bytearray()
        for line in data[:cut].split(b"\n")[:-1]:
            start = len(buffer)
            if line.startswith(b" "):
                buffer += b" "
            encode_record_into(decode_event(line), buffer)
            del buffer[-1]
            tail, running = seal(bytes(buffer[start:]), running)
            buffer += tail
        write_all(new_fd, bytes(buffer))


def _mib(size: int) -> str:
    return f"{size / 2**20:.1f} MiB"
