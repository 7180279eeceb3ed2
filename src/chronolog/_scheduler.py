"""The Scheduler: commands in, events out, one actor per task.

``open_scheduler`` opens (or creates) a log, replays it into the State,
records ``Failed(error="interrupted")`` for runs a previous process left
dangling, starts the LogWriter and one TaskActor per task, and on exit shuts
down gracefully. Every command is an append through the writer; the writer
folds each record into the State with the same step replay uses, so the live
state always equals ``replay(log)``.

Why one module of this size: the command API (``add``, ``pause``, ...), the
plumbing the actors use (the `Host` side) and the lifetime (open, recover,
serve, shut down) all hold the same few things -- the writer, the actors by
name, the targets -- and a command's meaning depends on the lifetime (a
command during shutdown, recovery before the first actor wakes). The rules
a command follows are pure and live in `_command_rules`.
"""

from __future__ import annotations

import contextlib
import enum
import functools
import logging
import math
import os
import socket
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeVar

import attrs
import trio

from ._actor import TaskActor
from ._alarms import Alarms, Sleeper
from ._clock import SystemClock
from ._cluster import join_cluster, writer_for
from ._command_rules import (
    IfExists,
    check_note,
    define_events,
    pause_events,
    remove_events,
    resume_events,
    run_now_events,
)
from ._compaction import Compaction, compact_log
from ._errors import ChronologError, ConfigError, DuplicateTask
from ._events import Failed, Skipped, SkipReason, TaskDefined, TaskPaused
from ._ids import time_occurrence, validate_task_name
from ._policies import CatchUp, Overlap, Policy, Retry
from ._processes import ProcessKeeper, registry_of
from ._projection import DEFAULT_HISTORY_LIMIT
from ._targets import MISSING_TARGET_NOTES, import_target, target_path
from ._views import Outcome
from .log import EventLog, FileLog, SQLiteLog
from .log._paths import log_at
from .log.sqlite import SQLITE_SUFFIXES

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
    from types import TracebackType

    from ._clock import Clock
    from ._events import Event
    from ._projection import State
    from ._triggers import Trigger
    from ._views import Run, TaskStatus
    from ._writer import LogWriter

__all__ = ["AddBatch", "Scheduler", "SchedulerStatistics", "open_scheduler", "serve_scheduler"]

#: How many distinct policies a scheduler shares among its tasks.
_SHARED_POLICIES: Final = 256

#: How the pauses that earlier versions of chronolog recorded for a task whose
#: trigger was spent begin. Such a task is finished now, without a record.
_LEGACY_FINISHED_NOTES: Final = ("its trigger will not fire again", "finished after ")
#: A clean stop saves a snapshot when the log holds at least this many
#: records after its base: below that, replaying them is as fast.
SNAPSHOT_MIN_RECORDS = 10_000

logger = logging.getLogger("chronolog.scheduler")


@attrs.frozen
class SchedulerStatistics:
    """A snapshot of a running scheduler (see ``Scheduler.statistics``)."""

    tasks: int
    running: int
    appends: int
    """Groups of events handed to the log writer."""
    batches: int
    """Writes to the log (each one write + one fsync for a FileLog)."""
    log_seq: int
    lateness_p50: timedelta | None
    lateness_p90: timedelta | None
    lateness_p99: timedelta | None
    """Percentiles of how late runs started after their due time (recent runs)."""
    records: int = 0
    """Records written by this scheduler; over ``batches``, the mean batch size."""
    largest_batch: int = 0
    """Most records written by one write."""
    append_time: timedelta = timedelta(0)
    """Time spent writing to the log in all; over ``batches``, the mean append latency."""
    queued: int = 0
    """Groups of events waiting for the log writer now."""


class Scheduler:
    """A running scheduler; get one from :func:`open_scheduler`."""

    def __init__(
        self,
        *,
        log: EventLog,
        state: State,
        writer: LogWriter,
        clock: Clock,
        run_nursery: trio.Nursery,
        node: str,
        max_concurrent: int | None,
        result_max_bytes: int,
    ) -> None:
        self.log = log
        self.state = state
        self.clock = clock
        self.node = node
        self.result_max_bytes = result_max_bytes
        self.run_nursery = run_nursery
        self.capacity = (
            trio.CapacityLimiter(max_concurrent) if max_concurrent is not None else None
        )
        #: Where actors sleep until their due times (see _alarms.py).
        self.alarms = Alarms(clock, after_first_round=writer.wait_caught_up)
        self.stopping = False
        #: Why appends fail while the log cannot be written (disk full, I/O
        #: error); every task's status shows it until an append works again.
        self.log_problem: str | None = None
        self._writer = writer
        self._actors: dict[str, TaskActor] = {}
        self._targets: dict[str, Callable[[], Any]] = {}
        # Tasks mostly share a few policies: one object each, not one per task
        # (bounded, so that many distinct ones cost no more than they would).
        self._policies: dict[Policy, Policy] = {}
        self._actor_nursery: trio.Nursery | None = None
        self._stop_requested = trio.Event()
        #: When this scheduler started: a due time before it came while no
        #: scheduler ran, so it was missed (the catch-up policy decides).
        self.started_at = clock.now()
        #: Runs waiting to record their outcome until the log takes writes.
        self._log_waiters: set[Sleeper] = set()
        #: The process groups of command targets: none outlives this scheduler.
        path = getattr(log, "path", None)
        self.processes = ProcessKeeper(registry_of(path) if isinstance(path, Path) else None)

    # -- plumbing for actors ---------------------------------------------------

    def claim_delay(self, occurrence: str) -> timedelta:
        """How long after its due time this node claims ``occurrence`` (see
        `LogWriter.claim_delay`)."""
        return self._writer.claim_delay(occurrence)

    async def append_decided(self, decide: Callable[[State], Sequence[Event]]) -> list[Event]:
        """Append what a command rule makes of the state, decided as late as the
        writer can (see `LogWriter.append_decided`); the stored records."""
        try:
            records = await self._writer.append_decided(decide)
        except OSError as exc:
            self._log_failed(exc)
            raise
        if records:
            self._appended(records)
        return records

    async def append(self, events: Sequence[Event], *, shield: bool = False) -> list[Event]:
        """Append through the writer; the stored records (see `LogWriter.append`)."""
        try:
            records = await self._writer.append(events, shield=shield)
        except OSError as exc:
            self._log_failed(exc)
            raise
        self._appended(records)
        return records

    def append_now(self, events: Sequence[Event]) -> list[Event] | None:
        """`append` at once where the writer can, else None (see `LogWriter.append_now`)."""
        try:
            records = self._writer.append_now(events)
        except OSError as exc:
            self._log_failed(exc)
            raise
        if records is not None:
            self._appended(records)
        return records

    def append_soon(
        self,
        events: Sequence[Event],
        on_settled: Callable[[list[Event] | None, Exception | None], None],
    ) -> bool:
        """`append` with no task waiting: ``on_settled`` gets the records or the
        error from the writer; False when that cannot be queued at once (see
        `LogWriter.append_soon`)."""

        def settled(records: list[Event] | None, error: Exception | None) -> None:
            if records is not None:
                self._appended(records)
            elif isinstance(error, OSError):
                self._log_failed(error)
            on_settled(records, error)

        return self._writer.append_soon(events, settled)

    def _log_failed(self, exc: OSError) -> None:
        self.log_problem = f"the log cannot be written, so nothing starts: {exc}"

    def _appended(self, records: list[Event]) -> None:
        if self.log_problem is not None:
            # The log takes writes again: every actor backing off tries now,
            # rather than at the end of its back-off.
            self.log_problem = None
            logger.warning("the log takes writes again; every task goes on")
            for actor in self._actors.values():
                actor.notify()
            for sleeper in self._log_waiters:
                self.alarms.wake(sleeper)
        log_decisions(records)

    async def wait_for_log(self, until: datetime) -> None:
        """Sleep until ``until``, or less: until a write to the log works again."""
        sleeper = Sleeper()
        self._log_waiters.add(sleeper)
        try:
            await self.alarms.sleep_until(until, sleeper)
        finally:
            self._log_waiters.discard(sleeper)

    def target_for(self, name: str) -> Callable[[], Any] | str:
        """The callable task ``name`` runs: the one ``add`` gave, else the one its
        recorded import path names; or a sentence saying why there is none."""
        target = self._targets.get(name)
        if target is not None:
            return target
        path = self.state.definition(name).target
        try:
            return import_target(path)
        except LookupError as exc:
            return f"{exc}"

    def _spawn(self, name: str) -> TaskActor:
        actor = self._actors.get(name)
        if actor is None:
            actor = self._actors[name] = TaskActor(self, name)
            actor.notify()  # awake: it plans once, then waits dormant
        return actor

    def activate(self, actor: TaskActor) -> bool:
        """Run ``actor``'s loop in a task of the actor nursery (see `TaskActor.notify`);
        False once that nursery is gone (the scheduler stopped, or was abandoned)."""
        nursery = self._actor_nursery
        if nursery is None:
            return False
        nursery.start_soon(actor.run)
        return True

    def actor_ended(self, actor: TaskActor) -> None:
        """``actor``'s loop has returned: forget it (and its callable) if its task is gone."""
        if self._actors.get(actor.name) is actor and actor.name not in self.state:
            del self._actors[actor.name]
            self._targets.pop(actor.name, None)

    # -- commands ------------------------------------------------------------

    async def add(
        self,
        name: str,
        trigger: Trigger,
        target: Callable[[], Any],
        *,
        overlap: Overlap = Overlap.SKIP,
        catch_up: CatchUp = CatchUp.LATEST,
        catch_up_limit: int = 100,
        misfire_grace: timedelta | None = None,
        retry: Retry | None = None,
        # The task's run timeout (DESIGN.md's name), not a timeout of add() itself.
        timeout: timedelta | None = None,  # noqa: ASYNC109
        jitter: timedelta | None = None,
        paused: bool = False,
        max_runs: int | None = None,
        remove_after_run: bool = False,
        if_exists: IfExists = "update",
    ) -> TaskStatus:
        """Define task ``name``, or re-declare it (idempotent), and plan its next run.

        An identical definition appends nothing; a changed one appends a new
        ``TaskDefined`` version (``if_exists="update"``), raises
        ``DuplicateTask`` (``"error"``) or keeps the stored one (``"keep"``).
        A changed definition keeps every scheduled occurrence its trigger
        still produces. Re-adding never resets an ``Every`` anchor or re-runs
        a settled occurrence. The status returned already shows ``next_run``.
        """
        policy = _task_policy(
            name,
            target,
            overlap=overlap,
            catch_up=catch_up,
            catch_up_limit=catch_up_limit,
            misfire_grace=misfire_grace,
            retry=retry,
            timeout=timeout,
            jitter=jitter,
            paused=paused,
            max_runs=max_runs,
            remove_after_run=remove_after_run,
        )
        policy = self._shared_policy(policy)
        existed = name in self.state
        now = self.clock.now()
        # Bound before the append: an actor that runs the task while the
        # definition is written (a run already due) runs this callable.
        previous = self._targets.get(name)
        self._targets[name] = target
        try:
            records = await self.append_decided(
                lambda state: define_events(
                    state, name, trigger, target_path(target), policy, now, if_exists
                )
            )
        except BaseException:
            if previous is None:
                self._targets.pop(name, None)
            else:
                self._targets[name] = previous
            raise
        await self._bind(name, target, existed=existed, redefined=bool(records))
        return self.status(name)

    async def _bind(
        self, name: str, target: Callable[[], Any], *, existed: bool, redefined: bool
    ) -> None:
        """After ``add`` recorded a definition: give the task's actor its callable."""
        if not existed and name not in self._actors:
            # A new task: its actor dozes until the first due time add() has
            # just scheduled, unless there is more to decide (its first step).
            actor = self._actors[name] = TaskActor(self, name)
            actor.target = target
            if not actor.doze_as_planned():
                actor.notify()
            return
        actor = self._spawn(name)
        actor.target = target
        if existed:
            await self._resume_if_paused_by_chronolog(name, redefined=redefined)
        actor.notify()

    def batch(self) -> AddBatch:
        """Add many tasks with one write: ``async with sched.batch() as batch: batch.add(...)``.

        See `AddBatch`.
        """
        return AddBatch(self)

    async def _resume_if_paused_by_chronolog(self, name: str, *, redefined: bool) -> None:
        """Resume a task chronolog paused itself once ``add`` has remedied why.

        A task paused because its target was missing is resumed by any
        ``add``, which binds a callable. One that earlier versions paused
        because its trigger was spent (a "finished" task) is resumed by an
        ``add`` that changes its definition.
        """
        status = self.state.status(name)
        if not status.paused:
            return
        if status.note.startswith(MISSING_TARGET_NOTES):
            await self.resume(name, note="target given by add()")
        elif redefined and status.note.startswith(_LEGACY_FINISHED_NOTES):
            await self.resume(name, note="redefined by add()")

    def _shared_policy(self, policy: Policy) -> Policy:
        shared = self._policies.get(policy)
        if shared is not None:
            return shared
        if len(self._policies) < _SHARED_POLICIES:
            self._policies[policy] = policy
        return policy

    async def pause(self, name: str, *, note: str = "") -> None:
        """Stop running ``name``. Its pending occurrence stays scheduled: it is
        skipped (once) only if its due time comes while the task is still paused."""
        now = self.clock.now()
        await self._apply(name, lambda state: pause_events(state, name, note, now))

    async def resume(self, name: str, *, note: str = "") -> None:
        """Run ``name`` again from now on; the paused period is not caught up."""
        now = self.clock.now()
        await self._apply(name, lambda state: resume_events(state, name, note, now))

    async def _apply(self, name: str, decide: Callable[[State], list[Event]]) -> None:
        """Append a command's events (a checkpoint even when there are none)."""
        if await self.append_decided(decide):
            self._notify(name)
        else:
            await trio.lowlevel.checkpoint()

    async def run_now(self, name: str) -> str:
        """Run ``name`` once now (also when paused or finished); returns the occurrence id.

        A manual run is never de-duplicated and does not wait for, skip or
        replace a running run of the same task.
        """
        self.state.status(name)  # UnknownTask for a name that does not exist
        actor = self._spawn(name)
        if actor.target is None:
            target = self.target_for(name)
            if isinstance(target, str):
                raise ConfigError(f"cannot run task {name!r} now: {target}")
            actor.target = target
        occurrence, events = run_now_events(self.state, name, self.clock.now())
        # Reserved first, so the task's actor never takes the new Scheduled
        # for an occurrence of its own to start (two claims, one refused).
        actor.reserve(occurrence)
        try:
            await self.append(events)
        except BaseException:
            actor.release(occurrence)
            raise
        await actor.start(occurrence, 1, reserved=True)
        return occurrence

    async def cancel(self, name: str) -> int:
        """Cancel ``name``'s running runs (they end ``Failed``, error "cancelled")."""
        self.state.status(name)
        actor = self._actors.get(name)
        count = actor.cancel_runs("cancelled") if actor is not None else 0
        await trio.lowlevel.checkpoint()
        return count

    async def remove(self, name: str, *, note: str = "") -> None:
        """Delete ``name``: running runs are cancelled, pending occurrences skipped.
        ``note`` (why, who asked) is kept in the ``TaskRemoved`` record."""
        check_note(note)
        self.state.status(name)
        actor = self._actors.get(name)
        if actor is not None:
            actor.cancel_runs("removed")
            await actor.wait_idle()
        if name not in self.state:
            return
        now = self.clock.now()
        await self.append_decided(
            lambda state: remove_events(state, name, now, note) if name in state else []
        )
        self._targets.pop(name, None)
        self._notify(name)

    def _notify(self, name: str) -> None:
        actor = self._actors.get(name)
        if actor is not None:
            actor.notify()

    # -- questions -----------------------------------------------------------

    def status(self, name: str) -> TaskStatus:
        """Where ``name`` stands: the log's view plus what only this process sees
        (``problem``, e.g. a watched file that is missing)."""
        return self._with_problem(self.state.status(name))

    def tasks(self) -> list[TaskStatus]:
        return [self._with_problem(status) for status in self.state.tasks()]

    def _with_problem(self, status: TaskStatus) -> TaskStatus:
        actor = self._actors.get(status.name)
        problem = self.log_problem or (actor.problem if actor is not None else None)
        if problem is None:
            return status
        return attrs.evolve(status, problem=problem)

    def history(self, name: str, *, limit: int | None = 20) -> list[Run]:
        return self.state.history(name, limit=limit)

    async def compact(self, *, keep: timedelta) -> Compaction:
        """Fold the records recorded more than ``keep`` ago into the log's base.

        The log is rewritten atomically (see `EventLog.compact`): it keeps a
        snapshot of what the old records said plus the records of the last
        ``keep``, under their own seqs; then a snapshot of the current state
        is saved. Nothing the scheduler knows changes -- de-duplication,
        counts and the recent history window live on in the base. Appends
        wait while the file is rewritten. Call it as often as suits you,
        e.g. from a daily task; the log must support compaction (`FileLog`,
        `SQLiteLog`, `MemoryLog`).
        """
        with self.clock.hold_still():
            return await compact_log(
                self.log,
                keep=keep,
                now=self.clock.now(),
                history_limit=self.state.history_limit,
                live_state=self.state,
            )

    def events(self) -> AsyncGenerator[Event, None]:
        """Records as they are appended, from this call on (not from the first
        iteration: a task started to watch may first run after some land)."""
        return self.log.follow(after_seq=self.state.seq)

    def statistics(self) -> SchedulerStatistics:
        writer = self._writer.statistics()
        lateness = sorted(_lateness(self.state))
        return SchedulerStatistics(
            tasks=len(self.state.task_names()),
            running=sum(len(actor.runs) for actor in self._actors.values()),
            appends=writer.submissions,
            batches=writer.batches,
            log_seq=self.state.seq,
            lateness_p50=_percentile(lateness, 0.5),
            lateness_p90=_percentile(lateness, 0.9),
            lateness_p99=_percentile(lateness, 0.99),
            records=writer.records,
            largest_batch=writer.largest_batch,
            append_time=timedelta(seconds=writer.append_seconds),
            queued=writer.queued,
        )

    # -- lifecycle -----------------------------------------------------------

    async def _recover(self) -> None:
        """Record runs that a previous process left running as interrupted.

        First, command groups an earlier scheduler left alive are ended and
        waited for: no retry may start beside an attempt that still runs. An
        interrupted attempt's duration is how long it ran before it was
        ended, where that is known (a command's), else zero.
        """
        with self.clock.hold_still():
            leftovers = await trio.to_thread.run_sync(
                self.processes.end_leftovers, self.clock.now()
            )
        ended = {(left.occurrence, left.attempt): left.ended for left in leftovers}
        if self.log.shared:
            # Other processes run runs of this log: a run is lost when its
            # node's lease expires, and a survivor settles it (_leases.py).
            return
        now = self.clock.now()
        events: list[Event] = []
        for name in self.state.task_names():
            policy = self.state.status(name).policy
            for run in self.state.open_occurrences(name):
                if run.outcome is not Outcome.RUNNING:
                    continue
                retry_at = None
                if run.attempts < policy.retry.max_attempts:
                    retry_at = now + policy.retry.delay_before(run.attempts + 1)
                started = self.state.attempt_started(name, run.occurrence)
                stopped = ended.get((run.occurrence, run.attempts))
                duration = timedelta(0)
                if started is not None and stopped is not None and stopped > started:
                    duration = min(stopped, now) - started
                events.append(
                    Failed(
                        task=name,
                        at=now,
                        occurrence=run.occurrence,
                        attempt=run.attempts,
                        duration=max(duration, timedelta(0)),
                        error="interrupted",
                        error_type="Interrupted",
                        retry_at=retry_at,
                    )
                )
        if events:
            await self.append(events)

    async def _shutdown(self, grace: timedelta) -> None:
        # Actors the alarms woke in the round the stop was asked for take
        # their first step before `stopping` is set: a run due at the very
        # instant the stop begins still starts, as it would have a moment
        # earlier.
        await trio.lowlevel.checkpoint()
        self.stopping = True
        for actor in self._actors.values():
            actor.notify()
            actor.stop_waiting_retries()  # no need to hold the shutdown for them
        with trio.move_on_after(grace.total_seconds()):
            for actor in list(self._actors.values()):
                await actor.wait_idle()
        for actor in self._actors.values():
            actor.cancel_runs("shutdown")
        for actor in list(self._actors.values()):
            await actor.wait_idle()


_Choice = TypeVar("_Choice", bound=enum.Enum)

#: How loudly each kind of skip is logged: a lost run is a warning, what a
#: user asked for (a pause, a redefinition) is information.
_SKIP_LEVELS: Final = {
    SkipReason.MISSED: logging.WARNING,
    SkipReason.OVERLAP: logging.INFO,
    SkipReason.PAUSED: logging.INFO,
    SkipReason.REDEFINED: logging.INFO,
    SkipReason.REMOVED: logging.DEBUG,
    SkipReason.CANCELLED: logging.DEBUG,
}


def log_decisions(records: Sequence[Event]) -> None:
    """Tell Python logging (the ``chronolog.scheduler`` logger) what the records decided.

    A failed run and a task paused because its target cannot be imported
    are warnings. Skips are counted per task and reason, so an outage of a
    per-second task is one line, not one per due time.
    """
    skips: dict[tuple[str, SkipReason], list[Skipped]] | None = None
    for record in records:
        kind = type(record)
        if kind is Skipped:
            assert isinstance(record, Skipped)
            if skips is None:
                skips = {}
            skips.setdefault((record.task, record.reason), []).append(record)
        elif kind is Failed:
            assert isinstance(record, Failed)
            if logger.isEnabledFor(logging.WARNING):
                then = (
                    f"; attempt {record.attempt + 1} at {record.retry_at.isoformat()}"
                    if record.retry_at is not None
                    else ""
                )
                logger.warning(
                    "task %r: attempt %d of %s failed: %s%s",
                    record.task,
                    record.attempt,
                    record.occurrence,
                    record.error,
                    then,
                )
        elif kind is TaskPaused:
            assert isinstance(record, TaskPaused)
            if record.note.startswith(MISSING_TARGET_NOTES):
                logger.warning("task %r is paused: %s", record.task, record.note)
    if skips is None:
        return
    for (task, reason), skipped in skips.items():
        level = _SKIP_LEVELS.get(reason, logging.INFO)
        if not logger.isEnabledFor(level):
            continue
        # Due times, not records: a range of missed ones counts each.
        total = sum(record.count if record.last_due is not None else 1 for record in skipped)
        if total == 1:
            logger.log(level, "task %r: %s skipped (%s)", task, skipped[0].occurrence, reason)
        else:
            last = skipped[-1]
            logger.log(
                level,
                "task %r: %d occurrences skipped (%s), %s to %s",
                task,
                total,
                reason,
                skipped[0].occurrence,
                last.occurrence if last.last_due is None else time_occurrence(task, last.last_due),
            )


def _choice(kind: type[_Choice], value: object, option: str) -> _Choice:
    """``value`` as a member of the enum ``kind``, or a ConfigError naming the choices."""
    try:
        return kind(value)
    except ValueError:
        choices = ", ".join(f"{kind.__name__}.{member.name}" for member in kind)
        raise ConfigError(f"{option} must be one of {choices}; got {value!r}") from None


def _lateness(state: State) -> list[timedelta]:
    samples: list[timedelta] = []
    for name in state.task_names():
        for run in state.history(name, limit=50):
            if run.started is not None and run.due is not None:
                samples.append(max(run.started - run.due, timedelta(0)))
    return samples


def _percentile(samples: list[timedelta], fraction: float) -> timedelta | None:
    if not samples:
        return None
    index = min(len(samples) - 1, math.ceil(fraction * len(samples)) - 1)
    return samples[max(index, 0)]


def default_node() -> str:
    """The node name of a scheduler not given one: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _as_log(log: EventLog | str | os.PathLike[str]) -> EventLog:
    if isinstance(log, EventLog):
        return log
    if isinstance(log, str | os.PathLike):
        return log_at(log)
    raise ConfigError(
        f"log must be an EventLog or a path to a log file (JSON Lines, or SQLite for "
        f"{', '.join(SQLITE_SUFFIXES)}), got {type(log).__name__}"
    )


def _task_policy(
    name: str,
    target: Callable[[], Any],
    *,
    overlap: Overlap,
    catch_up: CatchUp,
    catch_up_limit: int,
    misfire_grace: timedelta | None,
    retry: Retry | None,
    timeout: timedelta | None,
    jitter: timedelta | None,
    paused: bool,
    max_runs: int | None,
    remove_after_run: bool,
) -> Policy:
    """Check ``add``'s arguments that are not the trigger's, and build the task's policy."""
    validate_task_name(name)
    if not callable(target):
        raise ConfigError(f"task {name!r}: target must be callable, got {target!r}")
    return Policy(
        overlap=_choice(Overlap, overlap, "overlap"),
        catch_up=_choice(CatchUp, catch_up, "catch_up"),
        catch_up_limit=catch_up_limit,
        misfire_grace=misfire_grace,
        retry=retry if retry is not None else Retry(),
        timeout=timeout,
        jitter=jitter,
        paused=paused,
        max_runs=max_runs,
        remove_after_run=remove_after_run,
    )


class AddBatch:
    """Many ``add`` calls recorded with one write: what `Scheduler.batch` gives.

    ::

        async with sched.batch() as batch:
            for name, cron in jobs:
                batch.add(name, Cron(cron), run_job)

    `add` takes `Scheduler.add`'s arguments and checks them at once, with
    the same rules (`define_events`): a bad name, target or policy, an
    ``if_exists="error"`` conflict, or a name given twice in one batch
    raises there, naming the task. Nothing is written until the ``async
    with`` block ends without an exception; then every definition of the
    batch (with each task's first ``Scheduled``) is appended as **one**
    group -- one write and one fsync on a `FileLog`, all or nothing -- and
    the tasks' actors start. If the block raises, or the write fails,
    nothing of the batch is written and the error propagates. The write is
    not interrupted by cancellation: once the block has ended, the batch is
    recorded and its tasks bound, or not recorded at all.

    Each definition is checked against the live state when it is added to
    the batch, as ``add`` checks it before its own write. A batch is used
    once.
    """

    __slots__ = ("_definitions", "_done", "_entries", "_names", "_scheduler")

    def __init__(self, scheduler: Scheduler) -> None:
        self._scheduler = scheduler
        #: What `define_events` is asked again when the batch is written: on a
        #: log other schedulers share, against the whole log, under its lock.
        self._definitions: list[tuple[str, Trigger, str, Policy, datetime, IfExists]] = []
        #: (name, callable, whether the task existed)
        self._entries: list[tuple[str, Callable[[], Any], bool]] = []
        self._names: set[str] = set()
        self._done = False

    def __len__(self) -> int:
        """Definitions added so far."""
        return len(self._entries)

    def add(
        self,
        name: str,
        trigger: Trigger,
        target: Callable[[], Any],
        *,
        overlap: Overlap = Overlap.SKIP,
        catch_up: CatchUp = CatchUp.LATEST,
        catch_up_limit: int = 100,
        misfire_grace: timedelta | None = None,
        retry: Retry | None = None,
        timeout: timedelta | None = None,
        jitter: timedelta | None = None,
        paused: bool = False,
        max_runs: int | None = None,
        remove_after_run: bool = False,
        if_exists: IfExists = "update",
    ) -> None:
        """Add a definition to the batch (`Scheduler.add`'s arguments and rules)."""
        if self._done:
            raise ChronologError(
                f"this batch was written already (or abandoned); add {name!r} with "
                f"Scheduler.add or in a new batch"
            )
        if name in self._names:
            raise ConfigError(
                f"task {name!r} is added twice in one batch; give each task once per batch"
            )
        scheduler = self._scheduler
        state = scheduler.state
        existed = name in state
        try:
            policy = _task_policy(
                name,
                target,
                overlap=overlap,
                catch_up=catch_up,
                catch_up_limit=catch_up_limit,
                misfire_grace=misfire_grace,
                retry=retry,
                timeout=timeout,
                jitter=jitter,
                paused=paused,
                max_runs=max_runs,
                remove_after_run=remove_after_run,
            )
            policy = scheduler._shared_policy(policy)
            now = scheduler.clock.now()
            path = target_path(target)
            define_events(state, name, trigger, path, policy, now, if_exists)
        except (ConfigError, DuplicateTask) as error:
            # Say which definition of the batch is wrong: a batch is often a loop.
            raise type(error)(
                f"definition {len(self._entries) + 1} of the batch, task {name!r}: {error} "
                f"(nothing of the batch is written)"
            ) from error
        self._names.add(name)
        self._definitions.append((name, trigger, path, policy, now, if_exists))
        self._entries.append((name, target, existed))

    async def __aenter__(self) -> AddBatch:
        if self._done:
            raise ChronologError("a batch is used once: call Scheduler.batch() again")
        await trio.lowlevel.checkpoint()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._done = True
        definitions, self._definitions = self._definitions, []
        entries, self._entries = self._entries, []
        if kind is not None:
            return  # nothing written; the error propagates

        def decide(state: State) -> list[Event]:
            events: list[Event] = []
            for name, trigger, path, policy, now, if_exists in definitions:
                events.extend(define_events(state, name, trigger, path, policy, now, if_exists))
            return events

        scheduler = self._scheduler
        # Shielded: once written, the tasks must get their actors.
        with trio.CancelScope(shield=True):
            records = await scheduler.append_decided(decide)
        changed = {record.task for record in records if isinstance(record, TaskDefined)}
        for name, target, _ in entries:
            scheduler._targets[name] = target
        for name, target, existed in entries:
            await scheduler._bind(name, target, existed=existed, redefined=name in changed)


def open_scheduler(
    log: EventLog | str | os.PathLike[str],
    *,
    clock: Clock | None = None,
    max_concurrent: int | None = None,
    shutdown_grace: timedelta = timedelta(seconds=30),
    node: str | None = None,
    result_max_bytes: int = 8192,
    history_limit: int = DEFAULT_HISTORY_LIMIT,
) -> contextlib.AbstractAsyncContextManager[Scheduler]:
    """Run a scheduler on ``log`` for the duration of an ``async with`` block::

        async with open_scheduler("jobs.jsonl") as sched:
            await sched.add(...)

    ``log`` is an EventLog, or a path (``str``/``Path``): a name ending in
    ``.sqlite``, ``.sqlite3`` or ``.db`` becomes a SQLiteLog, any other a
    FileLog (JSON Lines). Opening replays the log; leaving the block stops
    new occurrences, lets running ones finish within ``shutdown_grace``, then
    cancels them (``Failed``, error "shutdown"). Pending occurrences stay
    scheduled, so a scheduler restarted before their due time runs them on
    time. To run one in a nursery instead, see `serve_scheduler`.
    """
    return _open_scheduler(
        log,
        clock=clock,
        max_concurrent=max_concurrent,
        shutdown_grace=shutdown_grace,
        node=node,
        result_max_bytes=result_max_bytes,
        history_limit=history_limit,
    )


async def serve_scheduler(
    log: EventLog | str | os.PathLike[str],
    *,
    clock: Clock | None = None,
    max_concurrent: int | None = None,
    shutdown_grace: timedelta = timedelta(seconds=30),
    node: str | None = None,
    result_max_bytes: int = 8192,
    history_limit: int = DEFAULT_HISTORY_LIMIT,
    task_status: trio.TaskStatus[Scheduler] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run a scheduler on ``log`` in a nursery, until that nursery is cancelled::

        sched = await nursery.start(serve_scheduler, "jobs.jsonl")

    ``nursery.start`` returns the `Scheduler` once it runs (typed as such).
    Cancelling the nursery shuts it down gracefully, as leaving
    `open_scheduler`'s block does: running jobs get ``shutdown_grace``,
    outcomes are recorded, pending occurrences stay scheduled. The arguments
    are `open_scheduler`'s.
    """
    async with open_scheduler(
        log,
        clock=clock,
        max_concurrent=max_concurrent,
        shutdown_grace=shutdown_grace,
        node=node,
        result_max_bytes=result_max_bytes,
        history_limit=history_limit,
    ) as scheduler:
        task_status.started(scheduler)
        await trio.sleep_forever()


@contextlib.asynccontextmanager
async def _open_scheduler(
    log: EventLog | str | os.PathLike[str],
    *,
    clock: Clock | None,
    max_concurrent: int | None,
    shutdown_grace: timedelta,
    node: str | None,
    result_max_bytes: int,
    history_limit: int,
) -> AsyncIterator[Scheduler]:
    """`open_scheduler`'s body."""
    if max_concurrent is not None and max_concurrent < 1:
        raise ConfigError(f"max_concurrent must be at least 1, got {max_concurrent}")
    if result_max_bytes < 64:
        raise ConfigError(f"result_max_bytes must be at least 64, got {result_max_bytes}")
    clock = clock if clock is not None else SystemClock()
    node = node if node is not None else default_node()
    event_log = _as_log(log)
    async with contextlib.AsyncExitStack() as stack:
        if (
            event_log is not log
            or (isinstance(event_log, FileLog | SQLiteLog) and not event_log.is_open)
            or (event_log.shared and getattr(event_log, "is_open", True) is False)
        ):
            # We opened it, so we close it; a log the caller opened stays theirs.
            await stack.enter_async_context(event_log)
        elif event_log.closed:
            raise ConfigError(
                f"{event_log!r} is closed; open_scheduler needs a log it can append to"
            )
        with clock.hold_still():
            state = await trio.to_thread.run_sync(
                functools.partial(event_log.load_state, history_limit=history_limit)
            )
        writer = await writer_for(event_log, state, clock=clock, node=node)
        body_error: BaseException | None = None
        unwrapped: BaseException | None = None
        try:
            async with trio.open_nursery() as body_nursery:
                # The scheduler's own tasks run in a shielded task beside the
                # body: cancelling the code around `async with open_scheduler()`
                # stops the body at once, but the scheduler still shuts down
                # gracefully (runs get their grace, outcomes are recorded, the
                # writer drains).
                scheduler = await body_nursery.start(
                    functools.partial(
                        _serve,
                        event_log=event_log,
                        state=state,
                        writer=writer,
                        clock=clock,
                        node=node,
                        max_concurrent=max_concurrent,
                        result_max_bytes=result_max_bytes,
                        shutdown_grace=shutdown_grace,
                    )
                )
                try:
                    yield scheduler
                except BaseException as error:
                    body_error = error
                    raise
                finally:
                    scheduler._stop_requested.set()
        except BaseExceptionGroup as group:
            # The nursery wraps what the body raised in a group. When that is
            # all that went wrong, give it back as raised: the caller's own
            # `except ValueError` (or a Ctrl-C's KeyboardInterrupt) must work.
            if body_error is None or group.exceptions != (body_error,):
                raise
            unwrapped = body_error
        if unwrapped is None:
            await _save_snapshot(event_log, state, clock)
        else:
            # Raised outside the except clause, so the group is not its context.
            raise unwrapped


async def _save_snapshot(event_log: EventLog, state: State, clock: Clock) -> None:
    """Leave a snapshot for the next open, once the log is long enough to gain by it.

    Only after a clean stop, when every record is folded into ``state``. A
    snapshot is an optimisation: failing to save one is logged, not raised.
    """
    if (
        event_log.closed
        or state.seq - event_log.base_seq < SNAPSHOT_MIN_RECORDS
        or state.seq != event_log.last_seq
    ):
        return
    with trio.CancelScope(shield=True), clock.hold_still():
        try:
            await event_log.save_snapshot(state)
        except (OSError, ChronologError, ValueError) as exc:
            logger.warning("could not save a snapshot of %r: %s", event_log, exc)


async def _serve(
    *,
    event_log: EventLog,
    state: State,
    writer: LogWriter,
    clock: Clock,
    node: str,
    max_concurrent: int | None,
    result_max_bytes: int,
    shutdown_grace: timedelta,
    task_status: trio.TaskStatus[Scheduler] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Writer, runs and actors, from recovery to a graceful shutdown."""
    with trio.CancelScope(shield=True):
        async with trio.open_nursery() as writer_nursery:
            await writer_nursery.start(writer.run)
            scheduler: Scheduler | None = None
            try:
                async with trio.open_nursery() as run_nursery:
                    scheduler = Scheduler(
                        log=event_log,
                        state=state,
                        writer=writer,
                        clock=clock,
                        run_nursery=run_nursery,
                        node=node,
                        max_concurrent=max_concurrent,
                        result_max_bytes=result_max_bytes,
                    )
                    join_cluster(
                        writer, scheduler, actors=scheduler._actors, spawn=scheduler._spawn
                    )
                    await scheduler._recover()
                    async with trio.open_nursery() as actor_nursery:
                        await actor_nursery.start(scheduler.alarms.run)
                        scheduler._actor_nursery = actor_nursery
                        try:
                            for name in state.task_names():
                                scheduler._spawn(name)
                            task_status.started(scheduler)
                            await scheduler._stop_requested.wait()
                            await scheduler._shutdown(shutdown_grace)
                            actor_nursery.cancel_scope.cancel()
                        finally:
                            scheduler._actor_nursery = None
            finally:
                writer.close()
                if scheduler is not None:
                    # Every run has ended: what is left of its commands (children
                    # they left behind) ends with the scheduler.
                    with clock.hold_still():
                        await trio.to_thread.run_sync(scheduler.processes.close)
