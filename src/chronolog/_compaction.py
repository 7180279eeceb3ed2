"""Compaction: fold a log's old records into its base, keep the recent ones.

``compact_log(log, keep=timedelta(days=30), now=...)`` finds the cut -- the
end of the longest run of records, from the base on, recorded more than
``keep`` before ``now`` -- folds the records up to it onto the base, and
asks the backend to make that State the new base (`EventLog.compact`:
atomic, the backend's own way). The seqs of the records kept do not change.
Then it saves a snapshot of the log's current state, so that the next open
needs neither the old records nor a replay of the kept ones.

The cut follows the same rule as "the log as it was at time t" in the
command line: a record stamped earlier than one before it (a clock that went
back) never pulls the cut past a later-stamped record.

Compaction never hides damage: the records it folds are read and checked --
checksums, contiguous seqs and every rule of `chronolog.check_invariants` --
and a log that fails raises `LogCorrupted` before anything is changed. Once
folded into a base, a broken rule could no longer be seen.

Both ``chronolog compact`` and `Scheduler.compact` use it. The log must be
open for writing -- its writer lock is what keeps another process from
appending while the file is rewritten.
"""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import attrs
import trio

from ._invariants import Checker
from ._projection import DEFAULT_HISTORY_LIMIT, fold_into
from ._strict import refusal

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from ._events import Event
    from ._projection import State
    from .log import EventLog

__all__ = ["Compaction", "compact_log"]


@attrs.frozen
class Compaction:
    """What a compaction did (from `Scheduler.compact` and ``chronolog compact``)."""

    base_seq: int
    """The records up to this seq are folded into the log's base now."""
    folded: int
    """Records this compaction folded into the base (they are no longer stored)."""
    kept: int
    """Records after the base (recorded within ``keep``, or after such a record)."""
    cut_before: datetime
    """Records recorded before this instant (``now - keep``) were folded."""


class _Counted:
    """Counts the records an iterator hands out, at no cost per record."""

    def __init__(self) -> None:
        self.count = 0

    def over(self, records: Iterable[Event]) -> Iterator[Event]:
        iterator = iter(records)
        while chunk := list(itertools.islice(iterator, 4096)):
            self.count += len(chunk)
            yield from chunk


def _checked(records: Iterable[Event], checker: Checker, where: str) -> Iterator[Event]:
    """``records``, each checked against every rule first; `LogCorrupted` at the first broken."""
    iterator = iter(records)
    while chunk := list(itertools.islice(iterator, 4096)):
        for record in chunk:
            checker.check(record)
        if checker.violations:
            raise refusal(where, checker.violations[0], compacting=True)
        yield from chunk


def _plan(
    log: EventLog, cut_before: datetime, history_limit: int, current: bool
) -> tuple[State, int, State | None, int]:
    """(state at the cut, records folded, state now or None, records kept); runs in a thread.

    Reads every record after the base once, checking each (`LogCorrupted`
    before anything changes).
    """
    state = log.base_state(history_limit=history_limit)
    checker = Checker()
    checker.start_from(state)
    records = _checked(log.read(log.base_seq), checker, _name_of(log))
    first_kept: list[Event] = []

    def before_cut(record: Event) -> bool:
        if record.at < cut_before:
            return True
        first_kept.append(record)
        return False

    folded = _Counted()
    fold_into(state, folded.over(itertools.takewhile(before_cut, records)))
    kept = _Counted()
    tail = kept.over(itertools.chain(first_kept, records))
    if not current:
        return state, folded.count, None, sum(1 for _ in tail)
    now = fold_into(state.copy(), tail)
    return state, folded.count, now, kept.count


def _name_of(log: EventLog) -> str:
    path = getattr(log, "path", None)
    return str(path) if path is not None else repr(log)


async def compact_log(
    log: EventLog,
    *,
    keep: timedelta,
    now: datetime,
    history_limit: int = DEFAULT_HISTORY_LIMIT,
    live_state: State | None = None,
) -> Compaction:
    """Fold the records of ``log`` recorded before ``now - keep`` into its base.

    ``log`` must be open for writing. ``live_state`` is the log's current
    state when the caller holds it (a running scheduler): it is saved as the
    snapshot after the compaction; without it the kept records are folded
    to make that snapshot. ``history_limit`` is how many settled runs per
    task the base keeps for history views.
    """
    if keep < timedelta(0):
        raise ValueError(f"keep must be zero or more, got {keep!r}")
    cut_before = now - keep
    cut, folded, current, kept = await trio.to_thread.run_sync(
        _plan, log, cut_before, history_limit, live_state is None
    )
    if folded:
        await log.compact(cut)
    snapshot = live_state if live_state is not None else current
    if folded and snapshot is not None and snapshot.seq > cut.seq:
        await log.save_snapshot(snapshot)
    return Compaction(base_seq=log.base_seq, folded=folded, kept=kept, cut_before=cut_before)
