"""A bug zoo: logs that make a correct scheduler look like a broken one.

Each toy wraps the appends of the real scheduler and writes what a
scheduler with a classic bug would have written. The real scheduler does
not know -- its live state misses what the toy adds -- which is exactly how
a broken scheduler would look from its log. The checkers and the state
machine must catch every one of them, naming the problem.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import msgspec

from chronolog import Completed, Failed, MemoryLog, Scheduled, Skipped, SkipReason, Started

if TYPE_CHECKING:
    from collections.abc import Sequence

    from chronolog import Event


class DoubleStartAfterRestart(MemoryLog):
    """At a restart, starts the interrupted run again under the same attempt.

    The toy forgot that the claim of that attempt was taken before the crash.
    """

    async def append(self, events: Sequence[Event]) -> list[Event]:
        records = await super().append(events)
        again = [
            Started(task=r.task, at=r.at, occurrence=r.occurrence, attempt=r.attempt, node="toy")
            for r in records
            if isinstance(r, Failed) and r.error == "interrupted"
        ]
        if again:
            await super().append(again)
        return records


class ForgetsMissedRuns(MemoryLog):
    """After downtime, skips the runs it missed without recording that it did.

    Its own state believes the skips happened (the records come back to it),
    but the log -- what the next restart replays -- never hears of them.
    """

    async def append(self, events: Sequence[Event]) -> list[Event]:
        kept = [
            event
            for event in events
            if not (isinstance(event, Skipped) and event.reason is SkipReason.MISSED)
        ]
        stored = await super().append(kept) if kept else []
        written = {id(event): record for event, record in zip(kept, stored, strict=True)}
        return [
            written.get(id(event), msgspec.structs.replace(event, seq=self.last_seq))
            for event in events
        ]


class DoublesDstFires(MemoryLog):
    """Computes fire times on the local wall clock, so a repeated hour fires twice.

    After each run it completes, if the run's wall time comes round again on
    a fall-back night, the toy runs the second pass as well.
    """

    def __init__(self, zone: str) -> None:
        super().__init__()
        self.zone = ZoneInfo(zone)
        self.due: dict[str, datetime] = {}

    async def append(self, events: Sequence[Event]) -> list[Event]:
        records = await super().append(events)
        for record in records:
            if isinstance(record, Scheduled) and record.occurrence.startswith(record.task + "@"):
                self.due[record.occurrence] = record.due  # fires of the cron, not manual runs
            elif isinstance(record, Completed) and record.occurrence in self.due:
                wall = self.due[record.occurrence].astimezone(self.zone)
                second = wall.replace(fold=1).astimezone(UTC)
                if second != wall.astimezone(UTC):
                    name = f"{record.task}@{second.replace(tzinfo=None).isoformat()}Z"
                    await super().append(
                        [
                            Scheduled(task=record.task, at=record.at, occurrence=name, due=second),
                            Started(task=record.task, at=second, occurrence=name, attempt=1),
                            Completed(task=record.task, at=second, occurrence=name, attempt=1),
                        ]
                    )
        return records
