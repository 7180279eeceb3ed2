"""``chronolog compact LOG --keep 30d``: fold old history into a snapshot.

The log is rewritten atomically (see `chronolog._compaction`): what its old
records said lives on in a base snapshot -- tasks, de-duplication state,
counts, the recent run window -- and the records of the last ``--keep`` stay
as they are, under their own seqs. A scheduler that holds the log keeps
others from rewriting it: then this command fails with exit code 3 and
``Scheduler.compact`` is the way (from inside that scheduler).

Compaction never hides damage. A log that ``chronolog verify`` would fail
-- a checksum that does not match, a missing record, a broken rule, a torn
last batch -- is refused with exit code 3 and left byte for byte as it was.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Final

import click
import trio

from .._clock import SystemClock
from .._compaction import compact_log
from .._direct import event_log_at
from .._errors import LogCorrupted
from .._job_file_syntax import MAX_DURATION, check_duration_bound
from .._strict import RECOVERY_GUIDE
from ..log.file import FileLog
from ._common import BadUsage, json_option, log_argument, translate_errors
from ._output import iso, print_json

if TYPE_CHECKING:
    from datetime import datetime
    from pathlib import Path

    from .._compaction import Compaction

__all__ = ["compact_command", "parse_duration"]

_UNITS: Final = {
    "w": timedelta(weeks=1),
    "d": timedelta(days=1),
    "h": timedelta(hours=1),
    "m": timedelta(minutes=1),
    "s": timedelta(seconds=1),
}
_PART: Final = re.compile(r"(\d+)([wdhms])")


def parse_duration(text: str, option: str) -> timedelta:
    """``30d``, ``12h``, ``1w2d``, ``90m``, ``0s`` as a timedelta; `BadUsage` otherwise.

    At most `MAX_DURATION` (the longest duration anything of chronolog accepts).
    """
    compact_text = text.strip().lower()
    if compact_text == "0":
        return timedelta(0)
    parts = _PART.findall(compact_text)
    if not parts or "".join(number + unit for number, unit in parts) != compact_text:
        raise BadUsage(
            f"{option} {text!r} is not a duration; write a number and a unit, e.g. 30d, 12h, "
            f"90m or 1w2d (units: w, d, h, m, s)"
        )
    # As a float first: a number too long for an int is inf, and too long.
    seconds = sum(float(number) * _UNITS[unit].total_seconds() for number, unit in parts)
    try:
        check_duration_bound(seconds, text)
    except ValueError as exc:
        raise BadUsage(f"{option} {exc}; give {MAX_DURATION.days}d or less") from None
    return sum((int(number) * _UNITS[unit] for number, unit in parts), timedelta(0))


def _keep(context: click.Context, parameter: click.Parameter, value: str) -> timedelta:
    return parse_duration(value, "--keep")


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None


async def _compact(path: Path, keep: timedelta, now: datetime) -> Compaction:
    log = event_log_at(path)
    if isinstance(log, FileLog):
        # Opening to write would move a torn tail aside: refuse it first,
        # as verify fails it, and change nothing.
        torn = log.torn_tail()
        if torn is not None and log.writer() is None:  # else a batch being written
            raise LogCorrupted(
                f"{path} ends with a torn batch ({torn.length} bytes from byte {torn.offset}, "
                f"line {torn.line}, are not a whole batch: what a crash in the middle of an "
                f"append leaves, or a cut), so it is not compacted and was not changed. A "
                f"scheduler that opens the log moves those bytes aside (with a warning); "
                f"compact after that. See {RECOVERY_GUIDE}"
            )
    async with log:
        return await compact_log(log, keep=keep, now=now)


def _document(path: Path, compaction: Compaction, before: int | None) -> dict[str, Any]:
    return {
        "log": str(path),
        "compacted": compaction.folded > 0,
        "base_seq": compaction.base_seq,
        "folded": compaction.folded,
        "kept": compaction.kept,
        "cut_before": iso(compaction.cut_before),
        "bytes_before": before,
        "bytes_after": _size(path),
    }


def _sentence(document: dict[str, Any]) -> str:
    log, cut = document["log"], document["cut_before"]
    if not document["compacted"]:
        where = f"the base at seq {document['base_seq']}" if document["base_seq"] else "the start"
        return (
            f"{log}: nothing to compact: no record after {where} was recorded before {cut} "
            f"({document['kept']} records kept)"
        )
    sizes = ""
    if document["bytes_before"] is not None and document["bytes_after"] is not None:
        sizes = f"; {_mib(document['bytes_before'])} -> {_mib(document['bytes_after'])}"
    return (
        f"{log}: folded {document['folded']} records (up to seq {document['base_seq']}) into "
        f"its base snapshot; kept the {document['kept']} records from {cut} on{sizes}"
    )


def _mib(size: int) -> str:
    return f"{size / 2**20:.1f} MiB" if size >= 2**20 else f"{size / 2**10:.1f} KiB"


@click.command("compact")
@log_argument
@click.option(
    "--keep",
    required=True,
    metavar="DURATION",
    callback=_keep,
    help="Keep the records of this last stretch of time as they are, e.g. 30d, 12h, 1w2d.",
)
@json_option
@translate_errors
def compact_command(log: Path, keep: timedelta, as_json: bool) -> None:
    """Fold the records of LOG older than --keep into a snapshot, atomically."""
    if not log.is_file():
        what = "is a directory, not a log" if log.is_dir() else "does not exist"
        raise BadUsage(f"log {log} {what}; check the path")
    before = _size(log)
    compaction = trio.run(_compact, log, keep, SystemClock().now())
    document = _document(log, compaction, before)
    if as_json:
        print_json(document)
    else:
        click.echo(_sentence(document))
