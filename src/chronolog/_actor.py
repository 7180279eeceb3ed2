"""TaskActor: one Trio task per scheduled task, deciding when it runs.

An actor never changes state directly. It reads the projection, decides,
and appends events through the scheduler's LogWriter; the writer folds them
into the shared State. Its loop:

1. Find the pending occurrence: an open ``Scheduled`` one, a failed one
   waiting for its retry, or else the trigger's next due time after the
   task's cursor (``Scheduled`` is appended before sleeping, so a restart
   finds it).
2. Sleep until it is due (plus its deterministic jitter); any command that
   changes the task (pause, redefinition, removal, shutdown) wakes it to plan
   again. While the task is paused it starts nothing: a scheduled occurrence
   whose due time comes meanwhile is skipped (``paused``).
3. Fire: a due time that was missed (it came while no scheduler ran, it was
   already past when it was planned, later ones passed too, or it is older
   than ``misfire_grace``) goes to the catch-up policy; one that is merely
   late runs. Then the overlap policy, then a run. A run starts only after
   its ``Started`` record is durable (write-ahead claim).

Whatever a job raises -- ``SystemExit`` and ``KeyboardInterrupt`` included --
fails that run only (`_attempts` says how an attempt's end is recorded);
errors of the log (also inside exception groups from the actor's nurseries)
make the actor back off and try again.

Why one module of this size: an actor is one state machine, and its loop,
its runs, their retries and its file watch all read and change the same few
fields (``runs``, ``cancel_reasons``, the sleeper, the planned occurrence).
The pure rules it applies live elsewhere (`_command_rules`, `_attempts`,
the triggers' ``fires_at``), so what is left here is the Trio side only.
"""

from __future__ import annotations

import functools
import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, Protocol

import attrs
import msgspec
import trio

from ._alarms import Sleeper
from ._attempts import ErrorFields, attempt_outcome, call_job
from ._command_rules import pause_events, remove_events
from ._errors import ClaimConflict, LogClosed
from ._events import Completed, Failed, Scheduled, Skipped, SkipReason, Started
from ._ids import file_change_occurrence, jitter_for, time_occurrence
from ._policies import CatchUp, Overlap
from ._run_context import RunContext
from ._targets import missing_target_note
from ._triggers import At, Cron, Every, FileWatch, Manual
from ._views import OPEN_STATES, OccurrenceState, OpenEntry, Outcome
from ._watch import FileSeen, watch_file
from ._words import duration_text

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from ._alarms import Alarms, Handle
    from ._clock import Clock
    from ._events import Event, TaskDefined
    from ._processes import ProcessKeeper
    from ._projection import State
    from ._triggers import Trigger

__all__ = ["Host", "TaskActor"]

logger = logging.getLogger("chronolog.scheduler")

_TIME_TRIGGERS = (Cron, Every, At)
#: Waits between attempts to plan again after the log refused a write. Any
#: write that works again wakes every actor at once (`Scheduler._appended`);
#: the cap bounds how long a log that recovers with no other writer goes
#: unnoticed.
_MIN_BACKOFF = timedelta(seconds=1)
_MAX_BACKOFF = timedelta(seconds=15)
#: Most due times one ``Skipped(missed)`` range counts when its trigger must
#: be stepped through (a cron expression): a longer outage is caught up over
#: several steps, one record each. ``Every`` counts any span at once.
_MAX_MISSED_PER_RANGE = 1_000_000
#: Cron fires counted between two checkpoints while an outage is measured.
_COUNT_SLICE = 2_048
#: Most due times one pass of a waiting ``QUEUE`` occurrence skips (each gets a record).
_MAX_MISSED_PER_STEP = 100_000
_MICROSECOND = timedelta(microseconds=1)
#: How long a task whose target cannot be imported waits for add() to bind it.
TARGET_GRACE = timedelta(seconds=10)


def _leaves(error: BaseException) -> list[BaseException]:
    """The exceptions inside ``error``, however deeply grouped (``error`` itself if bare)."""
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in _leaves(inner)]
    return [error]


def _log_trouble(error: Exception) -> type[Exception] | None:
    """How the actor's loop must treat ``error``, bare or grouped.

    `LogClosed` (the scheduler is stopping: return), `ClaimConflict`
    (another claim won: plan again), `OSError` (the log cannot be written:
    back off and try again), or None for anything else (a bug of planning:
    pause the task). An error inside an exception group -- from a nursery
    of the actor's -- is treated as the same error bare.
    """
    leaves = _leaves(error)
    if any(isinstance(leaf, LogClosed) for leaf in leaves):
        return LogClosed
    if all(isinstance(leaf, ClaimConflict) for leaf in leaves):
        return ClaimConflict
    if all(isinstance(leaf, OSError | ClaimConflict) for leaf in leaves):
        return OSError
    return None


class Host(Protocol):
    """What an actor needs of the scheduler that owns it (`Scheduler` is one).

    The actor reads the live state and the clock, and changes things only by
    appending events -- the same ones the command rules give a command -- so
    it never calls back into the command API.
    """

    state: State
    clock: Clock
    node: str
    alarms: Alarms
    capacity: trio.CapacityLimiter | None
    run_nursery: trio.Nursery
    processes: ProcessKeeper
    result_max_bytes: int

    @property
    def stopping(self) -> bool:
        """True once the scheduler shuts down: nothing new starts."""

    @property
    def started_at(self) -> datetime:
        """When the scheduler started: earlier due times came while none ran."""

    async def append(self, events: Sequence[Event], *, shield: bool = False) -> list[Event]:
        """Append through the log writer; the stored records, once durable and folded."""

    def append_now(self, events: Sequence[Event]) -> list[Event] | None:
        """`append` without a task switch where the log allows it, else None."""

    def append_soon(
        self,
        events: Sequence[Event],
        on_settled: Callable[[list[Event] | None, Exception | None], None],
    ) -> bool:
        """Queue an append with no task waiting for it; ``on_settled`` gets the
        records or the error. False (nothing queued) when that needs a wait."""

    async def wait_for_log(self, until: datetime) -> None:
        """Sleep until ``until``, or until the log takes writes again."""

    def target_for(self, name: str) -> Callable[[], Any] | str:
        """Task ``name``'s callable, or a sentence saying why there is none."""

    def claim_delay(self, occurrence: str) -> timedelta:
        """How long after its due time this node claims ``occurrence``: zero, except
        on a log several nodes share, where one node is preferred (``_leases``)."""

    def activate(self, actor: TaskActor) -> bool:
        """Start ``actor.run`` in a Trio task (it was dormant and must plan); False
        when no new task can start."""

    def actor_ended(self, actor: TaskActor) -> None:
        """``actor``'s loop returned for good (its task is gone, or the scheduler stops)."""


class _Slot:
    """Who holds a ``max_concurrent`` slot: one per run, from claim to end."""

    __slots__ = ()


@attrs.frozen
class _Outage:
    """Due times of a time trigger that passed while nothing could run them.

    ``first`` and ``last`` are the first and last that nothing had settled or
    opened; ``taken``, the few in between that were (by due time: their
    standing). The due times themselves are never listed.
    """

    trigger: Cron | Every | At
    first: datetime
    last: datetime
    taken: dict[datetime, OccurrenceState]


@attrs.frozen
class _Pending:
    occurrence: str
    due: datetime
    attempt: int
    scheduled: bool
    """True when a ``Scheduled`` record for it is in the log already."""
    planned_at: datetime | None = None
    """When that ``Scheduled`` record was written."""


#: The `TaskActor.runs` and `cancel_reasons` of every actor with none: never written to.
_NO_RUNS: Final[dict[str, trio.CancelScope]] = {}
_NO_REASONS: Final[dict[str, str]] = {}


class TaskActor:
    """Decides, for one task, what runs when. Owned by the Scheduler."""

    # Slots: an idle actor's memory is a target (under 8 KiB per task).
    __slots__ = (
        "_ahead",
        "_awake",
        "_changed",
        "_claiming",
        "_dozing",
        "_host",
        "_idle",
        "_next_memo",
        "_remove_when_idle",
        "_run_end_matters",
        "_sleeper",
        "_waiting_retries",
        "cancel_reasons",
        "name",
        "problem",
        "runs",
        "target",
    )

    def __init__(self, host: Host, name: str) -> None:
        self.name = name
        self.target: Callable[[], Any] | None = None
        self._host = host
        #: Remove the task once no run of it is left (``remove_after_run``).
        self._remove_when_idle = False
        # Whether a Trio task runs this actor's loop. A dormant actor has none:
        # it is woken by `notify` or, at the instant it waits for, by the
        # alarm in `_doze`. Made awake by the scheduler (`notify`).
        self._awake = False
        self._dozing: Handle | None = None
        # Set by `notify` while awake: plan again. None while dormant.
        self._changed: trio.Event | None = None
        # Cancel scopes of this task's runs in this process, by occurrence,
        # and why each was cancelled (the error its Failed record gets).
        # Shared and empty while none runs (an idle actor keeps no dicts:
        # memory); `_add_run` and `mark_cancelled` make the actor's own.
        self.runs: dict[str, trio.CancelScope] = _NO_RUNS
        self.cancel_reasons: dict[str, str] = _NO_REASONS
        # Set when the last run of this task in this process ends; None while
        # none runs (an idle actor then holds no Event: memory).
        self._idle: trio.Event | None = None
        # What ends the actor's current sleep early (notify() does): one
        # Sleeper instead of a nursery with a sleeper and a watcher task keeps
        # an idle actor to a single Trio task (memory, and wake-up cost).
        self._sleeper = Sleeper()
        # Whether the end of a run that settled its occurrence must wake the
        # actor: False while it waits for something no run end changes (its
        # next due time, a command while paused), since waking it then would
        # only plan the same again.
        self._run_end_matters = True
        #: What keeps the task from firing now that the log does not record
        #: (a watched file is missing); shown by Scheduler.status().
        self.problem: str | None = None
        #: Occurrences of this task whose run waits for its next attempt.
        self._waiting_retries: set[str] | None = None  # made on first use: idle memory
        #: The occurrence the last claim scheduled with it, once durable.
        self._ahead: _Pending | None = None
        #: The trigger's last answer (trigger, after, due): each fire asks the
        #: same question twice (any due times missed? what comes next?).
        self._next_memo: tuple[Trigger, datetime, datetime | None] | None = None
        #: A claim `_fire_now` made is being written: 0 none, 1 yes, 2 yes and
        #: a `notify` came meanwhile (the actor plans once it is settled).
        self._claiming = 0

    # -- notifications -------------------------------------------------------

    def notify(self) -> None:
        """Something about this task changed: plan again (waking the actor if dormant)."""
        if not self._awake:
            self._activate()
            return
        if self._changed is not None:
            self._changed.set()
        self._changed = trio.Event()
        self._host.alarms.wake(self._sleeper)

    def _activate(self) -> None:
        """Give a dormant actor a Trio task again; nothing once the scheduler stops."""
        dozing = self._dozing
        if dozing is not None:
            self._dozing = None
            self._host.alarms.cancel(dozing)
        if self._claiming:
            self._claiming = 2  # plan once the claim in flight is settled
            return
        if self._awake or self._host.stopping:
            return
        if self._host.activate(self):
            self._awake = True
            self._run_end_matters = True
            self._changed = trio.Event()

    def _changed_event(self) -> trio.Event:
        """What `notify` sets while the actor is awake."""
        assert self._changed is not None, "only an awake actor waits for changes"
        return self._changed

    def _doze(self, until: datetime | None, *, run_end_matters: bool) -> None:
        """Go dormant: the loop returns and the actor holds no Trio task until
        `notify` (a command, a run's end when ``run_end_matters``) or ``until``.

        Called with nothing awaited since ``changed`` was last seen unset, so
        no change can be missed between that look and this.
        """
        self._awake = False
        self._changed = None
        self._run_end_matters = run_end_matters
        if until is not None:
            self._dozing = self._host.alarms.call_at(until, self._alarm_rang, key=self.name)

    def _alarm_rang(self) -> None:
        """The instant a dormant actor waited for has come: fire at once where
        nothing stands in the way, else plan in a Trio task."""
        self._dozing = None
        if not self._fire_now():
            self._activate()

    def _fire_now(self) -> bool:
        """Claim the occurrence this dormant actor waited for, right from its alarm,
        with no Trio task of the actor's own: the common case, and every actor
        of a burst. False, with nothing done, when anything calls for the full
        step (`_step`): a catch-up, an overlap, a capacity limit, a retry, a
        pause, a change, a shutdown.

        The claim is `start`'s: the occurrence reserved first, its ``Started``
        (and the next occurrence's ``Scheduled``) appended, and the run
        started only once they are durable and folded (`_claim_settled`).
        """
        host = self._host
        if host.stopping or self.runs or host.capacity is not None:
            return False
        found = self._planned_entry()
        if found is None:
            return False
        entry, definition = found
        due = entry.due
        assert due is not None
        name = self.name
        policy = definition.policy
        now = host.clock.now()
        if policy.jitter is not None and due + jitter_for(entry.occurrence, policy.jitter) > now:
            return False
        planned_at = entry.planned_at
        if (
            due > now
            or due < host.started_at
            or planned_at is None
            or planned_at > due
            or (policy.misfire_grace is not None and now - due > policy.misfire_grace)
            or self._outage(due, now) is not None
        ):
            return False  # missed: the catch-up policy decides, in `_fire`
        occurrence = entry.occurrence
        del found, entry
        self.reserve(occurrence)
        ahead = self._plan_ahead()
        events: list[Event] = [
            Started(task=name, at=now, occurrence=occurrence, attempt=1, node=host.node)
        ]
        if ahead is not None:
            events.append(self._scheduled(ahead, now))
        try:
            records = host.append_now(events)
        except (ClaimConflict, OSError):
            self.release(occurrence)
            return False  # the full step plans again, or backs off
        except LogClosed:
            self.release(occurrence)
            return True  # the scheduler is stopping
        if records is not None:
            self._claimed(occurrence, ahead, woken=False)
            return True
        self._claiming = 1
        settled = functools.partial(self._claim_settled, occurrence, ahead)
        if host.append_soon(events, settled):
            return True
        self._claiming = 0
        self.release(occurrence)
        return False

    def _planned_entry(self) -> tuple[OpenEntry, TaskDefined] | None:
        """The task's only open occurrence, with the definition in force, when it is
        the trigger's next one, scheduled under that definition, for a task that
        runs (not paused, its callable bound): what the actor's step would wait
        for. None otherwise."""
        state = self._host.state
        name = self.name
        if self.target is None or name not in state or state.is_paused(name):
            return None
        entries = state.open_entries(name)
        if len(entries) != 1:
            return None
        entry = entries[0]
        definition = state.definition(name)
        if (
            entry.outcome is not Outcome.SCHEDULED
            or entry.due is None
            # Planned under the definition in force: the trigger's next one.
            or entry.planned_seq <= definition.seq
            or not entry.occurrence.startswith(name + "@")
            or not isinstance(definition.trigger, _TIME_TRIGGERS)
        ):
            return None
        return entry, definition

    def doze_as_planned(self) -> bool:
        """For a new actor whose task ``add`` has just defined and scheduled: doze
        until its first due time, as its first step would decide, without taking
        that step in a task of its own. False, with nothing done, when the step
        must be taken (anything else to decide, or the due time has come)."""
        host = self._host
        if self._awake or host.stopping:
            return False
        found = self._planned_entry()
        if found is None:
            return False
        entry, definition = found
        assert entry.due is not None
        wake_at = entry.due
        jitter = definition.policy.jitter
        if jitter is not None:
            wake_at += jitter_for(entry.occurrence, jitter)
        if wake_at <= host.clock.now():
            return False
        self._doze(wake_at, run_end_matters=False)
        return True

    def _claim_settled(
        self,
        occurrence: str,
        ahead: _Pending | None,
        records: list[Event] | None,
        error: Exception | None,
    ) -> None:
        """The writer settled a claim of `_fire_now`'s (synchronously, in its task)."""
        woken = self._claiming == 2
        self._claiming = 0
        if records is not None:
            self._claimed(occurrence, ahead, woken=woken)
            return
        if isinstance(error, ClaimConflict):
            logger.debug("task %r: %s", self.name, error)
        self.release(occurrence)
        if not isinstance(error, LogClosed):
            self._activate()  # plan again (backing off while the log cannot be written)

    def _claimed(self, occurrence: str, ahead: _Pending | None, *, woken: bool) -> None:
        """A claim of `_fire_now`'s is durable: run it, and doze until the next
        occurrence (what `_step` would do; a change meanwhile makes it plan)."""
        host = self._host
        host.run_nursery.start_soon(self._run, occurrence, 1, None)
        if woken:
            self._activate()
            return
        definition = host.state.definition(self.name)
        if ahead is not None:
            # The claim scheduled the next occurrence, the trigger's next one.
            wake_at = ahead.due
            jitter = definition.policy.jitter
            if jitter is not None:
                wake_at += jitter_for(ahead.occurrence, jitter)
            self._doze(wake_at, run_end_matters=False)
            return
        if isinstance(definition.trigger, At):
            # A one-off's only due time is claimed: nothing left to plan, and
            # the run's end changes no plan (`_step`, when nothing is pending).
            self._doze(None, run_end_matters=False)
            return
        self._activate()

    def cancel_runs(self, reason: str) -> int:
        for occurrence, scope in self.runs.items():
            self.mark_cancelled(occurrence, reason)
            scope.cancel()
        return len(self.runs)

    def stop_waiting_retries(self) -> None:
        """End the runs that only wait for a retry: the log keeps each retry
        planned (its ``Failed`` has ``retry_at``) for the next start."""
        for occurrence in self._waiting_retries or ():
            self.mark_cancelled(occurrence, "shutdown")
            self.runs[occurrence].cancel()

    async def wait_idle(self) -> None:
        """Return once no run of this task is active in this process."""
        idle = self._idle
        if idle is None:
            await trio.lowlevel.checkpoint()
        else:
            await idle.wait()

    # -- the loop ------------------------------------------------------------

    async def run(self) -> None:
        """Plan and fire until the task is removed or the scheduler stops."""
        try:
            host = self._host
            backoff = _MIN_BACKOFF
            while not host.stopping and self.name in host.state:
                changed = self._changed
                assert changed is not None
                trouble: type[Exception] | None = None
                error: Exception | None = None
                try:
                    if await self._step(changed):
                        return  # dormant
                    backoff = _MIN_BACKOFF
                    continue
                except Exception as exc:
                    trouble, error = _log_trouble(exc), exc
                # Handled out here, not in the except block: a handled
                # exception stays alive, with its frames, while a block awaits.
                if trouble is LogClosed:
                    return
                if trouble is ClaimConflict:
                    logger.debug("task %r: %s", self.name, error)
                elif trouble is OSError:
                    # The log cannot be written (disk full, I/O error): nothing
                    # starts that could not be recorded. Try again, backing off;
                    # the first write that works anywhere wakes this at once.
                    logger.warning(
                        "task %r: cannot write to the log (%s); trying again in %s",
                        self.name,
                        error,
                        duration_text(backoff),
                    )
                    del error
                    # Woken by changes from now on only: a failed claim's clean-up
                    # has just set `changed`, which would make this a busy loop.
                    await self._sleep_until(host.clock.now() + backoff, self._changed_event())
                    backoff = min(backoff * 2, _MAX_BACKOFF)
                else:
                    # An error in one task never stops another: pause this one.
                    logger.error("task %r stopped planning", self.name, exc_info=error)
                    note = f"chronolog could not plan this task: {error}"
                    del error
                    await self._pause_or_wait(note, changed)
        finally:
            if self._awake:
                self._awake = False
                self._changed = None
                self._host.actor_ended(self)

    async def _pause_or_wait(self, note: str, changed: trio.Event) -> None:
        """Pause the task with ``note``; if even that fails, wait and plan again."""
        failed: Exception | None = None
        try:
            await self._pause(note)
        except Exception as exc:
            if _log_trouble(exc) is LogClosed:
                raise
            failed = exc
        if failed is not None:
            logger.error("task %r could not be paused", self.name, exc_info=failed)
            del failed
            await self._sleep_until(self._host.clock.now() + _MAX_BACKOFF, changed)

    async def _step(self, changed: trio.Event) -> bool:
        """Plan once and act on it; True when the actor went dormant."""
        host = self._host
        state = host.state
        # Ask the State directly: a TaskStatus view per step costs far more.
        definition = state.definition(self.name)
        trigger = definition.trigger
        # Read once per step: every branch below that awaits returns, so the
        # entries stay current for the checks that follow.
        entries = state.open_entries(self.name)
        recorded = self._recorded_manual_runs(entries)
        if recorded and (self.target is not None or self._bind_target() is None):
            # Manual runs recorded while no scheduler ran (`chronolog run-now`
            # on a stopped service, or a crash right after run_now recorded
            # one): start them as run_now would, paused or not.
            for occurrence in recorded:
                await self.start(occurrence, 1)
            return False
        if state.is_paused(self.name):
            return await self._while_paused(entries, changed)
        if self.target is None:
            problem = self._bind_target()
            if problem is not None:
                # After a restart an application declares its tasks again
                # right away: give add() until TARGET_GRACE after the start to
                # bind the callable before pausing the task. Counted from the
                # start, not from this step: a pause that failed (a full disk)
                # is tried again at once, not after another grace.
                grace_ends = host.started_at + TARGET_GRACE
                woke_by_change = host.clock.now() < grace_ends and not await self._sleep_until(
                    grace_ends, changed
                )
                if not woke_by_change and self.target is None:
                    await self._pause(missing_target_note(problem))
                return False
        if isinstance(trigger, FileWatch):
            await self._watch_file(trigger, changed)
            return False
        stale = self._stale_occurrences(definition, entries)
        if stale:
            # Scheduled under an earlier definition (a command raced with our
            # plan, or the log was written by another process): the trigger in
            # force does not produce them.
            now = host.clock.now()
            await host.append(
                [
                    Skipped(task=self.name, at=now, occurrence=o, reason=SkipReason.REDEFINED)
                    for o in stale
                ]
            )
            return False
        pending = self._pending(entries)
        if pending is None:
            # A manual task starts only by run_now; a finished one (its
            # trigger has no due time left) only changes by a command; one
            # with a run or a retry still under way elsewhere hears when it
            # ends. A run of this process's own that ends settled changes
            # no plan (the trigger's walk steps over open and settled due
            # times alike), and one that ends unsettled wakes the actor
            # anyway (`_end_run`): a one-off's actor is not woken only to
            # find nothing left to do.
            runs = self.runs
            under_way = not isinstance(trigger, Manual) and any(
                entry.occurrence not in runs for entry in entries
            )
            return await self._wait(None, changed, run_end_matters=under_way)
        # Not kept alive in this frame while the actor sleeps and fires: for
        # thousands of actors that is memory, and objects the GC walks.
        del entries, recorded, stale
        if not pending.scheduled:
            record = self._scheduled(pending)
            await host.append([record])
            pending = _Pending(pending.occurrence, pending.due, 1, True, record.at)
        jitter = definition.policy.jitter
        while True:
            wake_at = pending.due
            if jitter is not None and pending.attempt == 1:
                wake_at += jitter_for(pending.occurrence, jitter)
            delay = host.claim_delay(pending.occurrence)
            if delay:  # a sum makes a new datetime, which a dormant actor would keep
                wake_at += delay
            if wake_at > host.clock.now():
                return await self._wait(wake_at, changed, run_end_matters=False)
            # Every actor due now was woken in one round by the alarms, so
            # their claims share a write; no checkpoint here, which would
            # put them a round behind a shutdown asked for at this instant.
            if changed.is_set() or host.stopping:
                await trio.lowlevel.checkpoint()
                return False
            ahead = await self._fire(pending)
            # The claim scheduled the next occurrence as well. While nothing
            # has changed (every command, and every run that ends unsettled,
            # sets `changed`), planning again would find just that one:
            # wait for it at once.
            if ahead is None or changed.is_set():
                return False
            pending = ahead

    async def _while_paused(self, entries: list[OpenEntry], changed: trio.Event) -> bool:
        """Start nothing; skip each scheduled occurrence as its due time comes.

        The pending occurrence stays scheduled through a pause: a resume
        before its due time costs nothing. Reached while still paused, it is
        ``Skipped(paused)`` -- once: nothing new is planned until the resume.
        """
        host = self._host
        now = host.clock.now()
        prefix = self.name + "@"
        waiting = [
            entry
            for entry in entries
            if entry.outcome is Outcome.SCHEDULED
            and entry.due is not None
            and entry.occurrence.startswith(prefix)
            and entry.occurrence not in self.runs
        ]
        due = [entry.occurrence for entry in waiting if entry.due is not None and entry.due <= now]
        if due:
            await host.append(
                [
                    Skipped(task=self.name, at=now, occurrence=o, reason=SkipReason.PAUSED)
                    for o in due
                ]
            )
            return False
        until = min((entry.due for entry in waiting if entry.due), default=None)
        return await self._wait(until, changed, run_end_matters=False)

    def _next_after(self, trigger: Cron | Every | At, instant: datetime) -> datetime | None:
        """``trigger.next_after(instant)``, remembering the last answer."""
        memo = self._next_memo
        if memo is not None and memo[0] is trigger and memo[1] == instant:
            return memo[2]
        due = trigger.next_after(instant)
        self._next_memo = (trigger, instant, due)
        return due

    def _recorded_manual_runs(self, entries: list[OpenEntry]) -> list[str]:
        """Manual occurrences scheduled in the log that nobody here is starting."""
        prefix = self.name + "!"
        return [
            entry.occurrence
            for entry in entries
            if entry.outcome is Outcome.SCHEDULED
            and entry.occurrence.startswith(prefix)
            and entry.occurrence not in self.runs
        ]

    def _stale_occurrences(self, definition: TaskDefined, entries: list[OpenEntry]) -> list[str]:
        """Scheduled occurrences of the trigger that the definition in force does not produce.

        Only those scheduled before that definition need the check: what was
        planned under it is the trigger's own. Every other one is kept, however
        far ahead; `State.next_occurrence` plans the new trigger's earlier due
        times before it.
        """
        trigger = definition.trigger
        prefix = self.name + "@"
        return [
            entry.occurrence
            for entry in entries
            if entry.outcome is Outcome.SCHEDULED
            and entry.due is not None
            and entry.planned_seq < definition.seq
            and entry.occurrence.startswith(prefix)
            and not trigger.fires_at(entry.due)
        ]

    def _pending(self, entries: list[OpenEntry]) -> _Pending | None:
        """The next occurrence to fire: a retry left to the actor, or the trigger's next."""
        pending: _Pending | None = None
        for entry in entries:
            if (
                entry.outcome is Outcome.RETRY_PENDING
                and entry.retry_at is not None
                and entry.occurrence not in self.runs
                and (pending is None or entry.retry_at < pending.due)
            ):
                pending = _Pending(entry.occurrence, entry.retry_at, entry.attempt + 1, True)
        planned = self._next_occurrence()
        if planned is not None and (pending is None or planned.due < pending.due):
            return planned
        return pending

    def _next_occurrence(self) -> _Pending | None:
        """`State.next_occurrence` for this task, with this process's runs left out."""
        state = self._host.state
        trigger = state.definition(self.name).trigger
        if not isinstance(trigger, _TIME_TRIGGERS):
            return None
        planned = state.next_occurrence(
            self.name,
            exclude=self.runs,
            next_after=lambda instant: self._next_after(trigger, instant),
        )
        if planned is None:
            return None
        return _Pending(planned.occurrence, planned.due, 1, planned.scheduled, planned.planned_at)

    async def _sleep_until(self, when: datetime, changed: trio.Event) -> bool:
        """Sleep until ``when``; False if woken earlier by a change (or stopping)."""
        if changed.is_set():
            await trio.lowlevel.checkpoint()
        else:
            # notify() sets ``changed`` and ends this sleep. An outside
            # cancellation (shutdown) is not caught here: it propagates. (No
            # check that `when` has come first: the clock does that, and a
            # sleep that is needed is by far the common case.)
            self._run_end_matters = False
            try:
                await self._host.alarms.sleep_until(when, self._sleeper)
            finally:
                self._run_end_matters = True
        return not changed.is_set() and not self._host.stopping

    async def _wait(
        self, until: datetime | None, changed: trio.Event, *, run_end_matters: bool
    ) -> bool:
        """Wait, dormant, for a change or ``until``; False (plan again) if a change came
        already.

        ``run_end_matters``: the end of a run that settled its occurrence is
        a change worth waking for (it is while runs are under way).
        """
        if changed.is_set():
            await trio.lowlevel.checkpoint()
            return False
        self._doze(until, run_end_matters=run_end_matters)
        return True

    # -- firing --------------------------------------------------------------

    async def _fire(self, pending: _Pending) -> _Pending | None:
        """Start ``pending`` as the policies say; the occurrence scheduled with its claim."""
        host = self._host
        state = host.state
        self._ahead = None
        if state.is_paused(self.name):
            # Paused as it woke (in the same instant): plan again, which skips it.
            await trio.lowlevel.checkpoint()
            return None
        if pending.attempt > 1:
            await self.start(pending.occurrence, pending.attempt)
            return None
        policy = state.definition(self.name).policy
        now = host.clock.now()
        due = pending.due
        outage = self._outage(due, now)
        if (
            outage is not None
            # It came while no scheduler ran ...
            or due < host.started_at
            # ... or it was past already when it was planned (a one-off defined
            # after its instant, a restart after an outage with no record).
            or pending.planned_at is None
            or pending.planned_at > due
            or (policy.misfire_grace is not None and now - due > policy.misfire_grace)
        ):
            await self._catch_up(pending.occurrence, due, outage, now)
            return None
        # Merely late (a busy loop, capacity): it runs.
        await self._start_with_overlap(pending.occurrence, due)
        return self._ahead

    def _outage(self, due: datetime, now: datetime) -> _Outage | None:
        """The trigger's due times in (due, now] that nothing settled or opened: missed.

        Not enumerated: the first and last of them, and the few due times in
        between that are open or settled already (those the range leaves
        out). Only due times after the task's origin and watermark count:
        those before a redefinition or a resume were never the trigger's to
        fire, and those at or below the watermark settled. None when no
        later due time has passed: the common answer, at the cost of one
        (memoised) ``next_after``.
        """
        state = self._host.state
        trigger = state.definition(self.name).trigger
        if not isinstance(trigger, _TIME_TRIGGERS):
            return None
        cursor = max(due, state.origin(self.name))
        watermark = state.watermark(self.name)
        if watermark is not None and watermark > cursor:
            cursor = watermark
        first = self._next_after(trigger, cursor)
        if first is None or first > now:
            return None
        taken: dict[datetime, OccurrenceState] = {}
        prefix = self.name + "@"
        for entry in state.open_entries(self.name):
            if (
                entry.due is not None
                and cursor < entry.due <= now
                and entry.occurrence.startswith(prefix)
                and trigger.fires_at(entry.due)
            ):
                taken[entry.due] = OPEN_STATES[entry.outcome]
        for ahead in state.skipped_ahead(self.name):
            if cursor < ahead <= now and trigger.fires_at(ahead):
                taken[ahead] = OccurrenceState.SETTLED
        last = trigger.previous_before(now + _MICROSECOND)
        # The last due time nothing took: step back over the taken ones.
        while last is not None and last in taken and last >= first:
            last = trigger.previous_before(last)
        if last is None or last < first:
            return None  # every later due time is open or settled already
        return _Outage(trigger, first, last, taken)

    async def _catch_up(
        self, occurrence: str, due: datetime, outage: _Outage | None, now: datetime
    ) -> None:
        """Due times passed while nothing could run them: the catch-up policy picks
        what runs, and the rest is skipped as ``missed`` -- one record for the
        whole outage (see `_skip_range`), not one per due time.

        ``occurrence`` (due at ``due``) is the one the actor woke for;
        ``outage``, the later due times that passed too, if any.
        """
        host = self._host
        policy = host.state.definition(self.name).policy
        grace = policy.misfire_grace

        def fresh(when: datetime) -> bool:
            return grace is None or now - when <= grace

        # The due times to run, newest last: LATEST the newest, ALL the
        # newest ones up to the cap (running older ones after skipping newer
        # ones is impossible: a skip settles everything due before it), and
        # only those within misfire_grace. Found from the newest back, so an
        # outage is never walked from its start.
        limit = 0
        if policy.catch_up is CatchUp.LATEST:
            limit = 1
        elif policy.catch_up is CatchUp.ALL:
            limit = policy.catch_up_limit
        run: list[datetime] = []
        candidate: datetime | None = outage.last if outage is not None else due
        while candidate is not None and len(run) < limit and fresh(candidate):
            run.append(candidate)
            candidate = self._missed_before(candidate, due, outage)
        run.reverse()
        events: list[Event] = []
        # Everything before the first run (all of it, if none runs) is skipped.
        if not run or run[0] != due:
            skipped_to = candidate if run else (outage.last if outage is not None else due)
            assert skipped_to is not None
            skips = await self._skip_range(occurrence, due, skipped_to, outage, now)
            if skips is None:
                return  # the task changed while the outage was counted: plan again
            events.extend(skips)
            last_skip = skips[0] if skips else None
            if (
                isinstance(last_skip, Skipped)
                and last_skip.last_due is not None
                and last_skip.last_due < skipped_to
            ):
                # A cron outage past the per-record bound: this record covers
                # its start; nothing runs yet, and the next step goes on from
                # the record's last due time (running the newest now would
                # settle the due times between the two unrecorded).
                run = []
        for when in run:
            planned = time_occurrence(self.name, when) if when != due else occurrence
            if host.state.may_schedule(self.name, planned, when):
                events.append(Scheduled(task=self.name, at=now, occurrence=planned, due=when))
        if events:
            await host.append(events)
        for when in run:
            planned = time_occurrence(self.name, when) if when != due else occurrence
            if len(run) > 1:
                await self.wait_idle()  # ALL runs the missed ones in order, one at a time
            await self._start_with_overlap(planned, when)

    def _missed_before(
        self, when: datetime, due: datetime, outage: _Outage | None
    ) -> datetime | None:
        """The missed due time before ``when``: the outage's, stepping over the
        taken ones, then ``due`` itself; None before that."""
        if when == due or outage is None:
            return None
        before = outage.trigger.previous_before(when)
        while before is not None and before >= outage.first and before in outage.taken:
            before = outage.trigger.previous_before(before)
        if before is None or before < outage.first:
            return due
        return before

    async def _skip_range(
        self,
        occurrence: str,
        due: datetime,
        last: datetime,
        outage: _Outage | None,
        now: datetime,
    ) -> list[Event] | None:
        """The ``Skipped(missed)`` records for ``occurrence`` (due at ``due``) and the
        outage's due times up to ``last``: one record, however long the outage.

        The range names its first occurrence, its last due time and how many
        due times it settles: those of the trigger in between that were
        neither open nor settled (an open one that is only scheduled gets a
        record of its own; a running one is left alone). ``Every`` and ``At``
        count arithmetically; a cron expression is counted fire by fire, in
        slices with a checkpoint between them so no other task waits, and at
        most `_MAX_MISSED_PER_RANGE` due times per record: the rest is the
        next step's. None when the task changed while counting.
        """
        name = self.name
        skips: list[Event] = []
        count = 1
        range_last = due
        if outage is not None and last >= outage.first:
            counted = await self._count_fires(outage.trigger, outage.first, last)
            if counted is None:
                return None
            number, range_last_counted = counted
            if range_last_counted is not None:
                range_last = range_last_counted
                count += number
            for taken_due, standing in sorted(outage.taken.items()):
                if taken_due > range_last:
                    break
                count -= 1  # not the range's: open or settled already
                if standing is OccurrenceState.SCHEDULED:
                    skips.append(
                        Skipped(
                            task=name,
                            at=now,
                            occurrence=time_occurrence(name, taken_due),
                            reason=SkipReason.MISSED,
                            due=taken_due,
                        )
                    )
        standing = self._host.state.occurrence_state(name, occurrence, due)
        if standing not in (OccurrenceState.NEW, OccurrenceState.SCHEDULED):
            return skips  # settled meanwhile; the rest is planned again
        if range_last == due:
            skips.insert(
                0,
                Skipped(
                    task=name, at=now, occurrence=occurrence, reason=SkipReason.MISSED, due=due
                ),
            )
        else:
            skips.insert(
                0,
                Skipped(
                    task=name,
                    at=now,
                    occurrence=occurrence,
                    reason=SkipReason.MISSED,
                    due=due,
                    last_due=range_last,
                    count=count,
                ),
            )
        return skips

    async def _count_fires(
        self, trigger: Cron | Every | At, first: datetime, last: datetime
    ) -> tuple[int, datetime | None] | None:
        """``trigger.count_fires(first, last)``, bounded; None if the task changed meanwhile.

        ``Every`` and ``At`` answer at once. A cron expression is stepped
        through in slices of `_COUNT_SLICE` fires with a checkpoint after
        each, so an outage of a per-second cron delays no other task, and
        stops at `_MAX_MISSED_PER_RANGE`.
        """
        if not isinstance(trigger, Cron):
            return trigger.count_fires(first, last)
        total = 0
        counted: datetime | None = None
        cursor = first
        while total < _MAX_MISSED_PER_RANGE:
            size = min(_COUNT_SLICE, _MAX_MISSED_PER_RANGE - total)
            number, upto = trigger.count_fires(cursor, last, limit=size)
            if upto is not None:
                total += number
                counted = upto
            if number < size or upto is None:
                break
            cursor = upto + _MICROSECOND
            await trio.lowlevel.checkpoint()
            changed = self._changed
            if self._host.stopping or (changed is not None and changed.is_set()):
                return None
        return total, counted

    async def _start_with_overlap(self, occurrence: str, due: datetime | None) -> None:
        host = self._host
        policy = host.state.definition(self.name).policy
        if self.runs and policy.overlap is not Overlap.ALLOW:
            if policy.overlap is Overlap.SKIP:
                await host.append(
                    [
                        Skipped(
                            task=self.name,
                            at=host.clock.now(),
                            occurrence=occurrence,
                            reason=SkipReason.OVERLAP,
                        )
                    ]
                )
                return
            if policy.overlap is Overlap.REPLACE:
                self.cancel_runs("replaced")
                await self.wait_idle()
            elif not await self._wait_in_queue(due):
                return  # the task changed: plan again
        await self.start(occurrence, 1)

    async def _wait_in_queue(self, due: datetime | None) -> bool:
        """QUEUE: wait for this task's runs to end; False if the task changed first.

        One occurrence waits at most: each later due time of the trigger that
        passes meanwhile is recorded as ``Skipped(overlap)`` when it comes,
        so the log tells what became of it while the wait goes on.
        """
        changed = self._changed_event()
        async with trio.open_nursery() as nursery:

            async def stop_on_change() -> None:
                await changed.wait()
                nursery.cancel_scope.cancel()

            nursery.start_soon(stop_on_change)
            if due is not None:
                nursery.start_soon(self._skip_while_queued, due)
            await self.wait_idle()
            nursery.cancel_scope.cancel()
        # A run that ends also wakes the actor: decide by what holds now.
        return not self.runs

    async def _skip_while_queued(self, waiting_due: datetime) -> None:
        host = self._host
        state = host.state
        trigger = state.definition(self.name).trigger
        if not isinstance(trigger, _TIME_TRIGGERS):
            return
        due = trigger.next_after(waiting_due)
        while due is not None:
            await host.clock.sleep_until(due)
            now = host.clock.now()
            # All that passed at once (a clock jump) in one write: one range
            # record when nothing in it is open or settled already.
            outage = self._outage(due - _MICROSECOND, now)
            if outage is not None and outage.first == due and not outage.taken:
                counted = await self._count_fires(trigger, due, outage.last)
                if counted is None:
                    return  # the task changed: the wait ends, and the actor plans again
                count, last = counted
                assert last is not None
                occurrence = time_occurrence(self.name, due)
                if state.may_schedule(self.name, occurrence, due):
                    skip = Skipped(
                        task=self.name,
                        at=now,
                        occurrence=occurrence,
                        reason=SkipReason.OVERLAP,
                        due=due,
                    )
                    if count > 1:
                        skip = msgspec.structs.replace(skip, last_due=last, count=count)
                    await host.append([skip])
                due = trigger.next_after(last)
                continue
            # Something in between is open or settled (another node): one
            # record per due time, bounded.
            passed: list[datetime] = []
            while due is not None and due <= now and len(passed) < _MAX_MISSED_PER_STEP:
                passed.append(due)
                due = trigger.next_after(due)
            skips: list[Event] = [
                Skipped(
                    task=self.name,
                    at=now,
                    occurrence=occurrence,
                    reason=SkipReason.OVERLAP,
                    due=passed_due,
                )
                for passed_due in passed
                for occurrence in [time_occurrence(self.name, passed_due)]
                if state.may_schedule(self.name, occurrence, passed_due)
            ]
            if skips:
                await host.append(skips)

    async def start(self, occurrence: str, attempt: int, *, reserved: bool = False) -> None:
        """Claim ``attempt`` of ``occurrence``, then run it in the scheduler's nursery.

        Returns once the claim is settled: its ``Started`` is durable and the
        run is under way, or the claim was refused (then nothing runs). The
        actor claims itself, so a dispatch costs one task spawn and no
        ``nursery.start`` handshake with the run task. ``reserved``: the
        caller has already called :meth:`reserve` for it (``run_now``).
        """
        host = self._host
        if not reserved:
            if occurrence in self.runs:
                # Already under way in this process (run_now, or a retry):
                # starting it again could only lose the claim.
                await trio.lowlevel.checkpoint()
                return
            self.reserve(occurrence)
        slot: _Slot | None = None
        handed_over = False
        try:
            if host.capacity is not None:
                # max_concurrent: the run waits here for a slot (late, never lost).
                candidate = _Slot()
                await host.capacity.acquire_on_behalf_of(candidate)
                slot = candidate
            # A shutdown that began while the run waited for a slot: nothing
            # starts now (the occurrence stays scheduled for the next start).
            if not host.stopping and await self._claim(occurrence, attempt, self._plan_ahead()):
                host.run_nursery.start_soon(self._run, occurrence, attempt, slot)
                handed_over = True
        finally:
            if not handed_over:
                self._end_run(occurrence, slot)

    def reserve(self, occurrence: str) -> None:
        """Mark ``occurrence`` as handled in this process until its run ends.

        In ``self.runs`` before the claim: a cancel() that arrives while the
        Started is being written must still reach this run, and the actor's
        own planning leaves a reserved occurrence alone (``run_now`` reserves
        its occurrence before it records it as scheduled).
        """
        self._add_run(occurrence, trio.CancelScope())
        if self._idle is None:
            # Busy from now until the last run ends; a second reservation
            # keeps the same Event, so nobody waits on one that is never set.
            self._idle = trio.Event()

    def release(self, occurrence: str) -> None:
        """Undo :meth:`reserve` for an occurrence that will not run."""
        self._end_run(occurrence, None)

    def _add_run(self, occurrence: str, scope: trio.CancelScope) -> None:
        if self.runs is _NO_RUNS:
            self.runs = {}
        self.runs[occurrence] = scope

    def mark_cancelled(self, occurrence: str, reason: str) -> None:
        """Say why ``occurrence``'s run is cancelled (the error its ``Failed`` gets);
        the first reason given stays."""
        if self.cancel_reasons is _NO_REASONS:
            self.cancel_reasons = {}
        self.cancel_reasons.setdefault(occurrence, reason)

    def _end_run(self, occurrence: str, slot: _Slot | None) -> None:
        if slot is not None and self._host.capacity is not None:
            self._host.capacity.release_on_behalf_of(slot)
        self.runs.pop(occurrence, None)
        self.cancel_reasons.pop(occurrence, None)
        if not self.runs:
            self.runs = _NO_RUNS
        if not self.cancel_reasons:
            self.cancel_reasons = _NO_REASONS
        if not self.runs and self._idle is not None:
            idle, self._idle = self._idle, None
            idle.set()
        if not self.runs and self._remove_when_idle:
            self._remove_when_idle = False
            self._host.run_nursery.start_soon(self._remove)
        # An actor asleep until its next due time planned with this run in
        # `runs`; once the occurrence has settled, planning again would give
        # the same plan. A run that ends unsettled (a retry left to the actor,
        # a lost log) and an actor waiting for open runs to end must hear of it.
        if self._run_end_matters or self._host.state.is_open(self.name, occurrence):
            self.notify()

    def _plan_ahead(self) -> _Pending | None:
        """The trigger's next occurrence, to record with a claim, if it has no record yet.

        Called with the occurrence being claimed reserved, so it is the one
        after it. Recorded in the claim's own write, this saves a write and
        a step of the actor per run: after the claim, the actor finds its
        next occurrence scheduled and goes straight to sleep.
        """
        state = self._host.state
        name = self.name
        if name not in state or state.is_paused(name):
            return None
        max_runs = state.definition(name).policy.max_runs
        if max_runs is not None and state.run_count(name) + 1 >= max_runs:
            return None  # the claim takes the last run
        # A retry waiting for this actor comes first when it is due first: the
        # actor must wake for it, not sleep on to the occurrence after.
        pending = self._pending(state.open_entries(name))
        if pending is None or pending.scheduled:
            return None
        return pending

    def _scheduled(self, pending: _Pending, now: datetime | None = None) -> Scheduled:
        """The ``Scheduled`` record of a pending occurrence the actor planned."""
        return Scheduled(
            task=self.name,
            at=self._host.clock.now() if now is None else now,
            occurrence=pending.occurrence,
            due=pending.due,
        )

    async def _claim(self, occurrence: str, attempt: int, ahead: _Pending | None = None) -> bool:
        """Append the attempt's ``Started`` (and ``ahead``'s ``Scheduled``); False if
        it may not start.

        `LogClosed` goes through: the log takes no more appends (the scheduler
        is stopping, or the log broke), so the caller must stop, not pick the
        same occurrence again.
        """
        host = self._host
        now = host.clock.now()
        started = Started(
            task=self.name, at=now, occurrence=occurrence, attempt=attempt, node=host.node
        )
        events: list[Event] = [started]
        if ahead is not None:
            events.append(self._scheduled(ahead, now))
            ahead = _Pending(ahead.occurrence, ahead.due, 1, True, now)
        try:
            # At once where the log allows (in memory): no task switch. Its
            # caller goes on to sleep or wait, so it yields soon anyway.
            if host.append_now(events) is None:
                await host.append(events)
        except ClaimConflict:
            logger.debug("task %r: %s already claimed", self.name, occurrence)
            await trio.lowlevel.checkpoint()  # a refused claim never makes a busy loop
            return False
        self._ahead = ahead
        return True

    async def _run(self, occurrence: str, attempt: int, slot: _Slot | None) -> None:
        """Run a claimed attempt, and its retries, each claimed in turn."""
        clock = self._host.clock
        try:
            while True:
                try:
                    retry_at = await self._attempt(occurrence, attempt, self.runs[occurrence])
                except LogClosed:
                    # The writer is gone (the scheduler is stopping hard): the
                    # outcome cannot be recorded; a restart will find this
                    # run's Started and record it as interrupted.
                    logger.warning("task %r: %s could not be recorded", self.name, occurrence)
                    return
                if retry_at is None:
                    return
                # A cancel scope per attempt and per wait between attempts (a
                # scope serves one `with` only); cancel_runs() cancels the
                # current one.
                with self._new_scope(occurrence) as waiting:
                    if self._waiting_retries is None:
                        self._waiting_retries = set()
                    self._waiting_retries.add(occurrence)
                    try:
                        await clock.sleep_until(retry_at)
                    finally:
                        self._waiting_retries.discard(occurrence)
                if waiting.cancelled_caught:
                    await self._drop_retry(occurrence)
                    return
                self._new_scope(occurrence)
                attempt += 1
                try:
                    claimed = await self._claim(occurrence, attempt)
                except OSError as exc:
                    # The retry stays pending in the state: the actor claims it
                    # itself, backing off until the log can be written again.
                    logger.warning(
                        "task %r: cannot record attempt %d of %s (%s); not started",
                        self.name,
                        attempt,
                        occurrence,
                        exc,
                    )
                    return
                except LogClosed:
                    return  # nothing starts that cannot be recorded
                if not claimed:
                    return
        finally:
            self._end_run(occurrence, slot)

    async def _drop_retry(self, occurrence: str) -> None:
        """A waiting retry was cancelled: settle the occurrence, unless by shutdown.

        Without a record the retry would stand in the log (its ``Failed`` has
        ``retry_at``) and the actor would plan it again. After a shutdown it
        should stand: the next start retries it.
        """
        if self.cancel_reasons.get(occurrence, "shutdown") == "shutdown":
            return
        host = self._host
        try:
            await host.append(
                [
                    Skipped(
                        task=self.name,
                        at=host.clock.now(),
                        occurrence=occurrence,
                        reason=SkipReason.CANCELLED,
                    )
                ],
                shield=True,
            )
        except (OSError, LogClosed) as exc:
            # The retry stays planned in the log; better run once more than
            # take the scheduler down.
            logger.warning(
                "task %r: could not record that the retry of %s was cancelled (%s)",
                self.name,
                occurrence,
                exc,
            )

    def _new_scope(self, occurrence: str) -> trio.CancelScope:
        """A fresh cancel scope for the run of ``occurrence``; honours a pending cancel."""
        scope = trio.CancelScope()
        if occurrence in self.cancel_reasons:
            scope.cancel()
        self._add_run(occurrence, scope)
        return scope

    async def _attempt(
        self, occurrence: str, attempt: int, scope: trio.CancelScope
    ) -> datetime | None:
        """Run the target once; record the outcome; return when to retry, if at all."""
        host = self._host
        clock = host.clock
        policy = host.state.definition(self.name).policy
        target = self.target
        assert target is not None
        started = clock.now()
        result: Any = None
        error: ErrorFields | None = None
        if policy.timeout is not None:
            # The run's own scope doubles as its timeout (one scope per attempt,
            # not two): cancel_runs() records a reason before it cancels, so a
            # scope cancelled without one ran out of time.
            scope.relative_deadline = policy.timeout.total_seconds()
        context = RunContext(
            task=self.name,
            occurrence=occurrence,
            attempt=attempt,
            due=host.state.open_due(self.name, occurrence),
            node=host.node,
            keeper=host.processes,
        )
        with scope:
            result, error = await call_job(target, clock, context)
        record = attempt_outcome(
            task=self.name,
            occurrence=occurrence,
            attempt=attempt,
            policy=policy,
            started=started,
            ended=clock.now(),
            result=result,
            error=error,
            cancelled=scope.cancelled_caught,
            cancel_reason=self.cancel_reasons.get(occurrence),
            result_max_bytes=host.result_max_bytes,
        )
        if not await self._record_outcome(occurrence, record):
            return None
        if isinstance(record, Failed):
            return record.retry_at
        if policy.remove_after_run:
            # Removed once this task has no run left in this process.
            self._remove_when_idle = True
        return None

    async def _record_outcome(self, occurrence: str, record: Completed | Failed) -> bool:
        """Append a finished attempt's outcome; False if shutdown came first.

        While the log cannot be written (disk full, I/O error) the run keeps
        its claim and tries again, backing off: a crash here must not take
        the scheduler down. Given up only when shutdown cancels the run: the
        restart then finds the attempt's ``Started`` alone and records it as
        interrupted.
        """
        host = self._host
        clock = host.clock
        backoff = _MIN_BACKOFF
        while True:
            events: list[Event] = [record]
            try:
                if host.append_now(events) is None:
                    await host.append(events, shield=True)
            except OSError as exc:
                logger.warning(
                    "task %r: cannot record how %s ended (%s); trying again in %s",
                    self.name,
                    occurrence,
                    exc,
                    duration_text(backoff),
                )
            except ClaimConflict as exc:
                # Settled already, by a record this run did not write (the
                # log says how it ended): one settlement per attempt.
                logger.warning("task %r: %s", self.name, exc)
                return False
            else:
                return True
            if host.stopping and occurrence in self.cancel_reasons:
                return False  # the shutdown grace is over
            # Its own scope, not one honouring an earlier cancel(): that would
            # turn this wait into a busy loop. Shutdown cancels it.
            with trio.CancelScope() as waiting:
                self._add_run(occurrence, waiting)
                await host.wait_for_log(clock.now() + backoff)
            backoff = min(backoff * 2, _MAX_BACKOFF)
            record = msgspec.structs.replace(record, at=clock.now())

    # -- file changes --------------------------------------------------------

    async def _watch_file(self, trigger: FileWatch, changed: trio.Event) -> None:
        """Run on every change of the watched file's content, until the task changes."""
        host = self._host
        _, last_hash = host.state.last_file_change(self.name)
        async with trio.open_nursery() as nursery:

            async def stop_on_change() -> None:
                await changed.wait()
                nursery.cancel_scope.cancel()

            nursery.start_soon(stop_on_change)
            changes = await nursery.start(
                functools.partial(
                    watch_file,
                    trigger.path,
                    poll=trigger.poll,
                    last_hash=last_hash,
                    clock=host.clock,
                )
            )
            try:
                await self._follow_changes(changes)
            finally:
                self.problem = None

    async def _follow_changes(self, changes: trio.MemoryReceiveChannel[FileSeen]) -> None:
        host = self._host
        async for seen in changes:
            if seen.content_hash is None:
                # Not a crash, and nothing to record: the task waits for the
                # file to come back, and says why in its status.
                self.problem = f"{seen.problem}; it fires again once the file can be read"
                logger.warning("task %r: %s", self.name, self.problem)
                continue
            self.problem = None
            previous, _ = host.state.last_file_change(self.name)
            occurrence = file_change_occurrence(self.name, previous, seen.content_hash)
            now = host.clock.now()
            await host.append(
                [
                    Scheduled(
                        task=self.name,
                        at=now,
                        occurrence=occurrence,
                        due=now,
                        content_hash=seen.content_hash,
                    )
                ]
            )
            await self._start_with_overlap(occurrence, None)

    async def _pause(self, note: str) -> None:
        """Pause the task, as `Scheduler.pause` would (nothing if it is paused or gone)."""
        host = self._host
        events: list[Event] = []
        if self.name in host.state:
            events = pause_events(host.state, self.name, note, host.clock.now())
        if events:
            await host.append(events)
            self.notify()
        else:
            await trio.lowlevel.checkpoint()

    async def _remove(self) -> None:
        """Remove the task, as `Scheduler.remove` would, once its runs are over
        (``remove_after_run``)."""
        host = self._host
        if self.name not in host.state:
            return
        try:
            await host.append(remove_events(host.state, self.name, host.clock.now()))
        except OSError as exc:
            # Not worth more than a warning: the task ran and its trigger is
            # spent, so it only stays defined (and finished).
            logger.warning("task %r ran but could not be removed: %s", self.name, exc)
            return
        self.notify()

    def _bind_target(self) -> str | None:
        """Bind the task's callable; a sentence saying why not, if it cannot be."""
        target = self._host.target_for(self.name)
        if isinstance(target, str):
            return target
        self.target = target
        return None
