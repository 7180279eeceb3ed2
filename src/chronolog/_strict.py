"""Strict folding: the state a writer starts from, refused when the log breaks a rule.

The projection's fold is total on purpose: any log folds to a State, and a
record that breaks a rule -- a ``Completed`` with no running attempt, a
second settlement, a start of what was never scheduled -- changes nothing
but ``seq``. A reader may live with that. A writer may not: a scheduler that
took such a log at its word would run a completed occurrence again, or never
run a pending one. So opening a log to write folds it *strictly*
(`EventLog.load_state`, ``strict=True``).

Running the invariant checker beside the fold would double the cost of every
start. Instead `fold_strictly` runs the projection's own fold, which watches
itself cheaply, record by record (`State.fold_until_doubtful`), for the sign
of a broken rule: a record that the
fold did not take (a ``Completed`` or ``Failed`` that did not become its
task's last outcome, a ``Started`` that did not become its last start, a
``Skipped`` that settled nothing) or that it took on a doubtful footing (a
start of an occurrence that was not open, a start of a scheduled time while
the task was paused, a skip of an occurrence that already settled, a record
for a task that does not exist, a version that does not increase). Only then
does the checker (`chronolog._invariants`) read the records again, from the
same starting state, to name the rule and the seq -- or, rarely, to find that
the sign misled (a skip of a due time the projection counts as settled
because a later one is), and the fold goes on.

Pure: records in, a State out. The caller provides the records again on
demand.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from ._errors import LogCorrupted
from ._invariants import Checker

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from ._events import Event
    from ._invariants import Violation
    from ._projection import State

__all__ = ["RECOVERY_GUIDE", "fold_strictly", "refusal"]

#: Where what is refused, and how to recover, is explained.
RECOVERY_GUIDE: Final = "docs/how-to/recover-a-damaged-log.md"


def refusal(
    where: str, violation: Violation, *, upgrading: int | None = None, compacting: bool = False
) -> LogCorrupted:
    """The error for a log that breaks ``violation``'s rule: for a writer, for an
    upgrade to format version 3 (``upgrading``: the version it stays), or for a
    compaction."""
    if compacting:
        why = (
            "Compaction folds records into a base snapshot, where the evidence would be "
            "lost, so it refuses a log that breaks a rule; the log was not changed"
        )
    elif upgrading is not None:
        why = (
            f"It is not upgraded to format version 3 (checksums would vouch for it): it "
            f"stays version {upgrading}, unchanged, and no scheduler runs on a log that "
            f"breaks its rules, since what it would run depends on them"
        )
    else:
        why = (
            "No scheduler runs on a log that breaks its rules, since what it would run "
            "depends on them"
        )
    return LogCorrupted(
        f"{where} breaks the rule {violation.rule} at seq {violation.seq}: "
        f"{violation.message}. {why}. `chronolog verify {where}` lists every problem; "
        f"{RECOVERY_GUIDE} says how to recover"
    )


def fold_strictly(
    state: State,
    records: Iterable[Event],
    *,
    recheck: Callable[[], tuple[State, Iterable[Event]]],
    where: str,
) -> State:
    """Fold ``records`` into ``state`` in place, as `fold_into` does, or raise
    `LogCorrupted` naming the first rule they break and its seq.

    ``recheck`` gives the starting state and the records again (a fresh copy
    of both), for the checker; it is called only when the fold shows a sign
    of a broken rule. ``where`` names the log in the message.
    """
    iterator = iter(records)
    checker: Checker | None = None
    again: Iterator[Event] | None = None
    while True:
        suspect = state.fold_until_doubtful(iterator)
        if suspect is None:
            return state
        if checker is None or again is None:
            checker = Checker()
            start, records_again = recheck()
            checker.start_from(start)
            again = iter(records_again)
        for record in again:
            checker.check(record)
            if checker.violations:
                raise refusal(where, checker.violations[0])
            if record.seq >= suspect.seq:
                break
