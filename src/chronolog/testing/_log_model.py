"""A small model of a scheduler that writes only logs keeping every rule.

``event_logs()`` drives it with random steps. The model keeps the rules of
DESIGN.md -- schedule before start, one claim per attempt, retries only
when planned, nothing after removal, nothing time-based starts while paused
-- and time-based due times lie on its tasks' trigger (every minute from
``START``), so every log it writes passes ``check_invariants`` and
``assert_exactly_once``, and a mutation of it (a repeated claim, a lost
``Scheduled``) must not. It does not run every due time: logs from it skip
and leave due times at random, so they say nothing about "nothing lost".

Pure Python, no Hypothesis: the strategy lives in ``strategies``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

import msgspec

from .._events import (
    Completed,
    Event,
    Failed,
    Scheduled,
    Skipped,
    SkipReason,
    Started,
    TaskDefined,
    TaskPaused,
    TaskRemoved,
    TaskResumed,
)
from .._ids import content_hash, file_change_occurrence, manual_occurrence, time_occurrence
from .._triggers import Every

if TYPE_CHECKING:
    from .._policies import Policy

__all__ = ["ACTIONS", "START", "TASK_NAMES", "LogModel"]

START: Final = datetime(2026, 3, 1, tzinfo=UTC)
TASK_NAMES: Final = ("backup", "report", "a@b", "x#y!z", "Zürich ✓")
#: The trigger of every model task: due times are whole minutes after START.
TRIGGER: Final = Every(timedelta(minutes=1), anchor=START)
#: Steps the driver picks from, weighted by repetition; crash_and_restart last.
ACTIONS: Final = (
    ("schedule",) * 4
    + ("start",) * 4
    + ("finish",) * 4
    + ("skip", "skip_missed", "pause", "resume", "remove", "define", "crash_and_restart")
)


def _on_grid(when: datetime) -> datetime:
    """``when``, or the next whole minute after START when it is between two."""
    seconds = (when - START).total_seconds()
    minutes = -(-int(seconds) // 60)
    return START + timedelta(minutes=minutes)


@dataclass
class _OpenOccurrence:
    id: str
    due: datetime
    attempt: int = 0
    running: bool = False
    retry_planned: bool = False


@dataclass
class _ModelTask:
    name: str
    version: int = 1
    paused: bool = False
    next_due: datetime = START
    open: dict[str, _OpenOccurrence] = field(default_factory=dict)
    last_change: str | None = None


@dataclass
class LogModel:
    """Appends only events that keep every rule; ``records`` is the log so far."""

    now: datetime = START
    records: list[Event] = field(default_factory=list)
    tasks: dict[str, _ModelTask] = field(default_factory=dict)
    retired: dict[str, tuple[datetime, str | None]] = field(default_factory=dict)

    def emit(self, event: Event) -> None:
        self.records.append(msgspec.structs.replace(event, seq=len(self.records) + 1))

    def tick(self, seconds: int) -> None:
        self.now += timedelta(seconds=seconds)

    # Each step returns False when it does not apply in the current state.

    def define(self, name: str, policy: Policy) -> bool:
        task = self.tasks.get(name)
        if task is None:
            # A task defined again after removal never reuses a settled due
            # time, and its chain of file changes goes on where it stopped.
            next_due, last_change = self.retired.pop(name, (self.now, None))
            task = self.tasks[name] = _ModelTask(
                name, paused=policy.paused, next_due=max(self.now, next_due)
            )
            task.last_change = last_change
        else:
            task.version += 1
        self.emit(
            TaskDefined(
                task=name,
                at=self.now,
                trigger=TRIGGER,
                target="jobs:run",
                policy=policy,
                version=task.version,
            )
        )
        return True

    def schedule(self, name: str, kind: str, token: int) -> bool:
        task = self.tasks.get(name)
        if task is None:
            return False
        if kind == "time":
            if task.paused:
                return False
            task.next_due = _on_grid(max(task.next_due, self.now)) + timedelta(
                minutes=1 + token % 7
            )
            due = task.next_due
            occurrence = time_occurrence(name, due)
            content = None
        elif kind == "manual":
            due = self.now
            occurrence = manual_occurrence(name, f"{token:x}-{len(self.records)}")
            content = None
        else:
            due = self.now
            content = content_hash(str(token % 3).encode())
            occurrence = file_change_occurrence(name, task.last_change, content)
            task.last_change = occurrence
        task.open[occurrence] = _OpenOccurrence(occurrence, due)
        self.emit(
            Scheduled(task=name, at=self.now, occurrence=occurrence, due=due, content_hash=content)
        )
        return True

    def _pick(self, name: str, token: int, *, running: bool | None) -> _OpenOccurrence | None:
        task = self.tasks.get(name)
        if task is None:
            return None
        candidates = [o for o in task.open.values() if running is None or o.running is running]
        return candidates[token % len(candidates)] if candidates else None

    def start(self, name: str, token: int) -> bool:
        entry = self._pick(name, token, running=False)
        if entry is None:
            return False
        task = self.tasks[name]
        first = entry.attempt == 0
        if first and task.paused and entry.id.startswith(name + "@"):
            return False
        if not first and not entry.retry_planned:
            return False
        entry.attempt += 1
        entry.running = True
        entry.retry_planned = False
        self.emit(
            Started(task=name, at=self.now, occurrence=entry.id, attempt=entry.attempt, node="n1")
        )
        return True

    def finish(self, name: str, token: int, outcome: str) -> bool:
        entry = self._pick(name, token, running=True)
        if entry is None:
            return False
        entry.running = False
        task = self.tasks[name]
        duration = timedelta(milliseconds=token % 5000)
        if outcome == "completed":
            del task.open[entry.id]
            result: Any = {"n": token, "text": "ok"} if token % 2 else None
            self.emit(
                Completed(
                    task=name,
                    at=self.now,
                    occurrence=entry.id,
                    attempt=entry.attempt,
                    duration=duration,
                    result=result,
                )
            )
            return True
        retry = outcome == "retry"
        if retry:
            entry.retry_planned = True
        else:
            del task.open[entry.id]
        self.emit(
            Failed(
                task=name,
                at=self.now,
                occurrence=entry.id,
                attempt=entry.attempt,
                duration=duration,
                error=f"boom {token}",
                error_type="RuntimeError",
                retry_at=self.now + timedelta(seconds=30) if retry else None,
            )
        )
        return True

    def skip(self, name: str, token: int, reason: SkipReason) -> bool:
        entry = self._pick(name, token, running=False)
        if entry is None or entry.attempt > 0:
            return False
        del self.tasks[name].open[entry.id]
        self.emit(Skipped(task=name, at=self.now, occurrence=entry.id, reason=reason))
        return True

    def skip_missed(self, name: str, length: int = 1) -> bool:
        """Catch-up: due times that passed while down, skipped without being scheduled.

        With ``length`` above 1 and that many due times past since the
        task's last one, they are one range record, as a scheduler writes
        after an outage: the first occurrence, the last due time, how many.
        """
        task = self.tasks.get(name)
        if task is None:
            return False
        first = task.next_due + timedelta(minutes=1)
        passed = (self.now - first) // timedelta(minutes=1) + 1 if first <= self.now else 0
        count = min(length, passed)
        if count >= 2:
            last = first + timedelta(minutes=count - 1)
            task.next_due = last
            self.emit(
                Skipped(
                    task=name,
                    at=self.now,
                    occurrence=time_occurrence(name, first),
                    reason=SkipReason.MISSED,
                    due=first,
                    last_due=last,
                    count=count,
                )
            )
            return True
        task.next_due = _on_grid(max(task.next_due, self.now)) + timedelta(minutes=1)
        due = task.next_due
        self.emit(
            Skipped(
                task=name,
                at=self.now,
                occurrence=time_occurrence(name, due),
                reason=SkipReason.MISSED,
                due=due,
            )
        )
        return True

    def pause(self, name: str) -> bool:
        task = self.tasks.get(name)
        if task is None or task.paused:
            return False
        task.paused = True
        self.emit(TaskPaused(task=name, at=self.now, note="maintenance"))
        for entry in list(task.open.values()):
            if entry.attempt == 0 and entry.id.startswith(name + "@"):
                del task.open[entry.id]
                self.emit(
                    Skipped(task=name, at=self.now, occurrence=entry.id, reason=SkipReason.PAUSED)
                )
        return True

    def resume(self, name: str) -> bool:
        task = self.tasks.get(name)
        if task is None or not task.paused:
            return False
        task.paused = False
        self.emit(TaskResumed(task=name, at=self.now))
        return True

    def remove(self, name: str) -> bool:
        task = self.tasks.get(name)
        if task is None or any(o.running for o in task.open.values()):
            return False
        for entry in list(task.open.values()):
            self.emit(
                Skipped(task=name, at=self.now, occurrence=entry.id, reason=SkipReason.REMOVED)
            )
        del self.tasks[name]
        self.retired[name] = (task.next_due, task.last_change)
        self.emit(TaskRemoved(task=name, at=self.now))
        return True

    def crash_and_restart(self) -> bool:
        """What a restart records for runs a crash interrupted."""
        interrupted = False
        for task in self.tasks.values():
            for entry in list(task.open.values()):
                if entry.running:
                    interrupted = True
                    entry.running = False
                    del task.open[entry.id]
                    self.emit(
                        Failed(
                            task=task.name,
                            at=self.now,
                            occurrence=entry.id,
                            attempt=entry.attempt,
                            error="interrupted",
                        )
                    )
        return interrupted
