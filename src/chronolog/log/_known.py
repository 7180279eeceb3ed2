"""The records a log still knows: those its base snapshot holds, then the rest.

A compacted log starts with a base snapshot instead of its first records.
A reader that looks at records one by one (``history``, ``why``, a
timeline) reads the records the base still holds, then the records after
the base, so that nothing folded into the base silently disappears from
an answer.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

from .._errors import LogChanged

if TYPE_CHECKING:
    from collections.abc import Iterator

    from .._events import Event
    from .._projection import State
    from ._base import EventLog

__all__ = ["after_base", "base_records", "known_records"]


def after_base(log: EventLog, base: State) -> Iterator[Event]:
    """The records of ``log`` after ``base`` (its `EventLog.base_state`), in order.

    Raises `LogChanged` when the log was compacted again between reading
    its base and its records: the records would not continue that base.
    """
    records = log.read(base.seq)
    first = next(records, None)
    if first is None:
        return
    if first.seq > base.seq + 1 and log.base_seq > base.seq:
        raise LogChanged(
            f"{log!r} was compacted while it was being read (its base moved from seq "
            f"{base.seq} to seq {log.base_seq}); run the command again"
        )
    yield first
    yield from records


def base_records(base: State) -> list[Event]:
    """The records a base snapshot still holds, in log order.

    A base keeps, as records, the definition in force of every task, the
    records of every open occurrence (its ``Scheduled``, first ``Started``
    and latest record) and each task's window of recent settled runs. Read
    before the records after the base, they let the commands that look at
    records one by one (``history``, ``why``, ``timeline``) see what the
    base knows. Empty for a log that was never compacted.
    """
    kept: dict[int, Event] = {}
    # The projection keeps these as the records themselves (State.memory());
    # reading them is how a base turns back into records without a second format.
    for task in base.memory().tasks:
        kept[task.definition.seq] = task.definition
        entries = [*task.open.values(), *(entry for _, entry, _ in task.history if entry)]
        for entry in entries:
            for record in entry:
                if record is not None:
                    kept[record.seq] = record
        for _, _, final in task.history:
            kept[final.seq] = final
    return [kept[seq] for seq in sorted(kept)]


def known_records(log: EventLog, base: State) -> Iterator[Event]:
    """Every record the log still knows: `base_records` of ``base``, then `after_base`.

    For a log that was never compacted, simply all its records.
    """
    return itertools.chain(base_records(base), after_base(log, base))
