"""Reading a log for a command: read-only, from its base, up to a moment, with progress.

Reading never writes: `FileLog.read` and `SQLiteLog.read` open the log
read-only and take no lock, so every inspection command works on a log that
a running scheduler holds, sees only whole batches (never a batch still being
written), and never repairs a torn tail -- that is for the writer to do when
it opens the log.

A compacted log starts with a base snapshot instead of its first records.
Commands fold its records onto that base (`read_state`), check rules from it
(``verify``), or read the records the base still holds followed by the rest
(`known_records`), so that nothing folded into the base silently disappears
from an answer. A question about a moment before the base gets an error
saying where the log was compacted.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

from .._projection import fold_into
from ..log._known import after_base as after_base
from ..log._known import base_records as base_records
from ..log._known import known_records as known_records
from ..log._paths import log_at, postgres_log_class
from ._common import BadUsage
from ._log_names import DatabaseURL
from ._output import iso
from ._progress import progress_over

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from datetime import datetime, timedelta
    from pathlib import Path

    from .._events import Event
    from .._projection import State
    from ..log import FileLog, SQLiteLog
    from ..log.postgres import PostgresLog
    from ._log_names import LogName

__all__ = [
    "Tally",
    "after_base",
    "base_records",
    "compacted_away",
    "known_records",
    "open_log",
    "prefix",
    "read_state",
    "tallied",
]

_CHUNK = 20_000


def open_log(
    path: LogName, *, poll_interval: timedelta | None = None
) -> FileLog | SQLiteLog | PostgresLog:
    """The log ``path`` names, for reading: a `PostgresLog` for a ``postgresql://``
    URL, else a `SQLiteLog` or a `FileLog`, by suffix.

    Fails early, with exit code 2, when no log is there -- no file at
    ``path``, a database without chronolog's tables, or no such database --
    before any output starts. ``poll_interval`` is for commands that follow
    the log.
    """
    if isinstance(path, DatabaseURL):
        return _open_database(path, poll_interval)
    if not path.exists():
        raise BadUsage(
            f"log {path} does not exist; check the path (a scheduler creates the file "
            f"when it first opens it)"
        )
    if path.is_dir():
        raise BadUsage(
            f"{path} is a directory, not a log; give the log file (e.g. {path / 'jobs.jsonl'})"
        )
    if poll_interval is None:
        return log_at(path)
    return log_at(path, poll_interval=poll_interval)


def _open_database(url: DatabaseURL, poll_interval: timedelta | None) -> PostgresLog:
    log = (
        log_at(url.dsn) if poll_interval is None else log_at(url.dsn, poll_interval=poll_interval)
    )
    assert isinstance(log, postgres_log_class())
    try:
        exists = log.exists()
    except FileNotFoundError as exc:  # no such database
        raise BadUsage(exc.strerror or str(exc)) from exc
    if not exists:
        raise BadUsage(
            f"database {url} holds no chronolog log (no chronolog tables); check the URL, or "
            f"create the log with `chronolog db init` or by starting a scheduler on it"
        )
    return log


def compacted_away(path: Path, base_seq: int, first: Event | None, asked: str) -> BadUsage:
    """The error for a question about a moment that a compaction folded into the base."""
    if first is None:
        begins = "and it keeps no record after that"
        instead = f"only the state at seq {base_seq}, its end, can be shown"
    else:
        begins = f"and its records begin at seq {first.seq}, recorded {iso(first.at)}"
        instead = f"give --seq {base_seq} or later, or --at {iso(first.at)} or later"
    return BadUsage(
        f"{path} was compacted at seq {base_seq}: what happened up to then was folded into its "
        f"base snapshot, {begins}; the state at {asked} is gone ({instead})"
    )


def prefix(
    records: Iterable[Event], *, seq: int | None = None, at: datetime | None = None
) -> Iterator[Event]:
    """The records up to and including ``seq``, and recorded at or before ``at``.

    "The log as it was at ``at``" is its longest prefix whose records were
    all recorded by then: it stops at the first record stamped later, even
    if a clock that went back stamped an earlier time on a record after it.
    """
    stream = iter(records)
    if seq is not None:
        stream = itertools.takewhile(lambda record: record.seq <= seq, stream)
    if at is not None:
        stream = itertools.takewhile(lambda record: record.at <= at, stream)
    return stream


class Tally:
    """How many records went through `tallied`, and the last of them."""

    __slots__ = ("count", "last")

    def __init__(self) -> None:
        self.count = 0
        self.last: Event | None = None


def tallied(records: Iterable[Event], tally: Tally) -> Iterator[Event]:
    """``records`` unchanged, counted into ``tally`` a chunk at a time (no cost per record).

    When reading fails (damage), the records read before it are still handed
    out and counted, then the error is raised: ``tally`` says how far the
    log was read.
    """

    def chunks() -> Iterator[list[Event]]:
        iterator = iter(records)
        while True:
            chunk: list[Event] = []
            try:
                # extend keeps what it took before an error, where list() would not.
                chunk.extend(itertools.islice(iterator, _CHUNK))
            except BaseException:
                if chunk:
                    tally.count += len(chunk)
                    tally.last = chunk[-1]
                    yield chunk
                raise
            if not chunk:
                return
            tally.count += len(chunk)
            tally.last = chunk[-1]
            yield chunk

    return itertools.chain.from_iterable(chunks())


def read_state(
    path: Path,
    *,
    as_json: bool,
    seq: int | None = None,
    at: datetime | None = None,
    tally: Tally | None = None,
) -> State:
    """The state of the log at ``path`` (up to ``seq``/``at``), with a progress bar on large logs.

    The records are folded onto the log's base, so a compacted log gives the
    same state as ``log.load_state()``. A ``seq`` or ``at`` before the base
    is a `BadUsage` naming where the log was compacted. ``tally``, when
    given, learns how many records after the base were folded and the last one.
    """
    log = open_log(path)
    state = log.base_state()
    records = after_base(log, state)
    if state.seq and seq is not None and seq < state.seq:
        raise compacted_away(path, state.seq, next(records, None), f"seq {seq}")
    if state.seq and at is not None:
        # When the last folded record was stamped is not kept, so the state at a
        # time before the first kept record cannot be told apart from an older one.
        first = next(records, None)
        if first is None or first.at > at:
            raise compacted_away(path, state.seq, first, str(iso(at)))
        records = itertools.chain([first], records)
    total = log.last_seq if seq is None else min(seq, log.last_seq)
    records = prefix(records, seq=seq, at=at)
    if tally is not None:
        records = tallied(records, tally)
    with progress_over(records, total=total, description="replaying", as_json=as_json) as stream:
        return fold_into(state, stream)
