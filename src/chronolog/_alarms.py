"""Alarms: actors that sleep until the same instant share one timer.

A Trio sleep ends by cancelling its cancel scope: the sleeping task gets a
``Cancelled`` exception, with a traceback, and catches it. That is cheap
for one task, but when thousands of actors are due at the same instant
(5,000 one-off tasks at 09:00, 1,000 tasks every second) it is thousands of
exceptions at once, each with frames the cycle collector must then walk;
a burst's cost would grow with the collector's work, not with the runs.

So the first actor to sleep until an instant sleeps by itself on the clock,
and any actor that sleeps until an instant some other actor already sleeps
until parks instead, in a heap kept by one *keeper* task. The keeper sleeps
until the earliest instant in its heap and wakes every parked actor that is
due with a plain reschedule: no exception, no cancel scope per actor. An
actor alone at its instant (one task on simulated time, say) never waits
for the keeper, so it pays nothing for this.

Either way an actor's sleep ends early when `Alarms.wake` is called for it
(a change to its task), and ends with ``Cancelled`` when its task is
cancelled (shutdown). The clock decides when an instant has come, so clock
jumps behave as with `Clock.sleep_until`: the keeper's own sleep is one.
"""

from __future__ import annotations

import heapq
import itertools
from typing import TYPE_CHECKING, Final

import trio

from ._clock import TrioDeadlineClock

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from datetime import datetime

    from ._clock import Clock

__all__ = ["Alarms", "Handle", "Sleeper"]

#: Rebuild the heap once more than half of it (and at least this many) is dead.
_COMPACT_AT: Final = 256
#: Most alarms one round wakes or calls. Past it, the keeper lets every other
#: runnable task have its turn before the next round: the claims of the first
#: actors of a burst are then written (and their runs start) while later
#: actors of the same instant are still being woken, instead of nothing
#: starting until all of them have claimed.
ROUND: Final = 128


class _Alarm:
    """One parked sleep, or one call: whom to wake (or what to call), and whether
    that has happened."""

    __slots__ = ("call", "task", "when", "woken")

    def __init__(
        self,
        task: trio.lowlevel.Task | None,
        when: datetime,
        call: Callable[[], object] | None = None,
    ) -> None:
        self.task = task
        self.when = when
        self.call = call
        self.woken = False


#: What `Alarms.call_at` returns, for `Alarms.cancel`.
Handle = _Alarm


class Sleeper:
    """What ends one actor's current sleep early: its scope, or its alarm."""

    __slots__ = ("alarm", "scope", "woken")

    def __init__(self) -> None:
        self.scope: trio.CancelScope | None = None
        self.alarm: _Alarm | None = None
        #: Set by `Alarms.wake` while the sleep is in ``scope``.
        self.woken = False


class Alarms:
    """The sleeps of a scheduler's actors. Run `run` as a task, then call `sleep_until`."""

    def __init__(
        self, clock: Clock, *, after_first_round: Callable[[], Awaitable[None]] | None = None
    ) -> None:
        self._clock = clock
        #: What the keeper awaits between the first round of a crowd due at
        #: one instant and the next (the scheduler: its claims are durable).
        self._after_first_round = after_first_round
        # The built-in clocks (and the harness's wrapper) say which Trio
        # deadline to sleep to; a clock of the user's own only sleeps.
        self._deadline_clock = clock if isinstance(clock, TrioDeadlineClock) else None
        # (instant, key, order of arrival, alarm): parked sleepers have key "".
        self._heap: list[tuple[datetime, str, int, _Alarm]] = []
        self._order = itertools.count()
        self._dead = 0
        # How many actors sleep until each instant: by themselves, and parked.
        self._alone: dict[datetime, int] = {}
        self._parked: dict[datetime, int] = {}
        # The keeper's state: its task while it waits for a first alarm, or
        # its sleep (as any lone sleeper's) and the instant that sleep is for.
        self._keeper_idle: trio.lowlevel.Task | None = None
        self._keeper_sleeper = Sleeper()
        self._keeper_until: datetime | None = None
        #: When the keeper last woke anyone (a sleeper alone at that instant
        #: then joins their round).
        self._rang_at: datetime | None = None

    def __repr__(self) -> str:
        parked, alone = len(self._heap) - self._dead, sum(self._alone.values())
        return f"<Alarms: {parked} parked, {alone} alone>"

    async def sleep_until(self, when: datetime, sleeper: Sleeper) -> None:
        """Return once the clock reaches ``when``, or once `wake` is called for ``sleeper``."""
        if when in self._alone or when in self._parked:
            await self._park(when, sleeper)
            return
        alone = self._alone
        alone[when] = alone.get(when, 0) + 1
        try:
            due = await self._sleep_alone(when, sleeper)
        finally:
            _forget(alone, when)
        if not due:
            return
        now = self._clock.now()
        if self._ring(now) or self._rang_at == now:
            # Those parked for this instant wake now (or the keeper, woken
            # at the same moment, has just woken them), and this sleeper goes
            # on with them: every actor due at an instant takes its step in
            # the same round, so their claims share a write and none of
            # them is a round ahead of the others.
            await trio.lowlevel.cancel_shielded_checkpoint()

    async def _sleep_alone(self, when: datetime, sleeper: Sleeper) -> bool:
        """Sleep on the clock in a scope `wake` cancels; False if woken that way."""
        try:
            clock = self._deadline_clock
            if clock is None:
                with trio.CancelScope() as scope:
                    sleeper.scope = scope
                    await self._clock.sleep_until(when)
                return not scope.cancelled_caught
            # The clock tells which Trio deadline to sleep to: one cancel scope
            # serves as both the sleep and what `wake` cancels.
            sleeper.woken = False
            while True:
                with trio.CancelScope(deadline=clock._look_again_at(when)) as scope:
                    sleeper.scope = scope
                    await clock._until_stepped()
                if sleeper.woken:
                    return False
                if clock.now() >= when:
                    return True
                # A backward step of the wall clock, or a slice of a long sleep
                # on the system clock: sleep on.
        finally:
            sleeper.scope = None

    def wake(self, sleeper: Sleeper) -> None:
        """End ``sleeper``'s current sleep now (nothing if it is not asleep)."""
        if sleeper.scope is not None:
            sleeper.woken = True
            sleeper.scope.cancel()
        alarm = sleeper.alarm
        if alarm is not None and not alarm.woken:
            self._bury(alarm)
            assert alarm.task is not None
            trio.lowlevel.reschedule(alarm.task)

    # -- calls at an instant ----------------------------------------------------

    def call_at(self, when: datetime, call: Callable[[], object], *, key: str) -> Handle:
        """Call ``call()`` (synchronously, from the keeper) once the clock reaches ``when``.

        Costs no Trio task: this is how a dormant actor waits for its due
        time. Calls due at one instant are made together with the sleepers
        parked for it, in the order of their ``key`` (an actor's task name),
        in rounds of at most `ROUND` (other tasks run between two rounds): the
        order in which the claims of one instant are made then does not depend
        on how long earlier log writes took. `cancel` takes it back.
        """
        alarm = _Alarm(None, when, call)
        heapq.heappush(self._heap, (when, key, next(self._order), alarm))
        self._parked[when] = self._parked.get(when, 0) + 1
        self._rearm(when)
        return alarm

    def cancel(self, handle: Handle) -> None:
        """Take back a `call_at` that has not been made yet (nothing if it has)."""
        if not handle.woken:
            self._bury(handle)

    # -- parked sleeps --------------------------------------------------------

    async def _park(self, when: datetime, sleeper: Sleeper) -> None:
        alarm = _Alarm(trio.lowlevel.current_task(), when)
        heapq.heappush(self._heap, (when, "", next(self._order), alarm))
        self._parked[when] = self._parked.get(when, 0) + 1
        self._rearm(when)
        sleeper.alarm = alarm

        def abort(_: object) -> trio.lowlevel.Abort:
            self._bury(alarm)
            return trio.lowlevel.Abort.SUCCEEDED

        try:
            await trio.lowlevel.wait_task_rescheduled(abort)
        finally:
            sleeper.alarm = None

    def _bury(self, alarm: _Alarm) -> None:
        """Mark ``alarm`` as done before its time; the keeper drops it later."""
        alarm.woken = True
        _forget(self._parked, alarm.when)
        self._dead += 1
        if self._dead > _COMPACT_AT and self._dead * 2 > len(self._heap):
            self._heap = [entry for entry in self._heap if not entry[3].woken]
            heapq.heapify(self._heap)
            self._dead = 0

    def _rearm(self, when: datetime) -> None:
        """A new alarm at ``when``: make sure the keeper wakes for it."""
        if self._keeper_idle is not None:
            task, self._keeper_idle = self._keeper_idle, None
            trio.lowlevel.reschedule(task)
        elif self._keeper_until is not None and when < self._keeper_until:
            self.wake(self._keeper_sleeper)  # it sleeps for a later instant: start over

    # -- the keeper -------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Be the keeper: wake parked sleepers when their instant comes. Runs until cancelled."""
        task_status.started()
        heap = self._heap
        while True:
            while heap and heap[0][3].woken:
                heapq.heappop(heap)
                self._dead -= 1
            if not heap:
                self._keeper_idle = trio.lowlevel.current_task()

                def abort(_: object) -> trio.lowlevel.Abort:
                    self._keeper_idle = None
                    return trio.lowlevel.Abort.SUCCEEDED

                await trio.lowlevel.wait_task_rescheduled(abort)
                heap = self._heap
                continue
            when = heap[0][0]
            self._keeper_until = when
            try:
                await self._sleep_alone(when, self._keeper_sleeper)
            finally:
                self._keeper_until = None
            heap = self._heap  # a compaction may have replaced it
            now = self._clock.now()
            rung = self._ring(now)
            if rung:
                self._rang_at = now
            first = True
            while rung == ROUND and self._due(now):
                # The rest of this instant's alarms in later rounds, in order.
                if first and self._after_first_round is not None:
                    await self._after_first_round()
                else:
                    await trio.lowlevel.checkpoint()
                first = False
                rung = self._ring(now)
                if rung:
                    self._rang_at = now

    def _due(self, now: datetime) -> bool:
        """Is a live alarm due at ``now`` still in the heap?"""
        heap = self._heap
        while heap and heap[0][3].woken:
            heapq.heappop(heap)
            self._dead -= 1
        return bool(heap) and heap[0][0] <= now

    def _ring(self, now: datetime) -> int:
        """Wake the parked sleepers whose instant has come, `ROUND` at most; how many.

        The keeper wakes the rest (it sleeps until the earliest instant in the
        heap, so it is due whenever a lone sleeper rings).
        """
        heap = self._heap
        rung = 0
        while rung < ROUND and heap and heap[0][0] <= now:
            alarm = heapq.heappop(heap)[3]
            if alarm.woken:
                self._dead -= 1
                continue
            alarm.woken = True
            _forget(self._parked, alarm.when)
            if alarm.task is not None:
                trio.lowlevel.reschedule(alarm.task)
            else:
                assert alarm.call is not None
                alarm.call()
            rung += 1
        return rung


def _forget(counts: dict[datetime, int], when: datetime) -> None:
    left = counts[when] - 1
    if left:
        counts[when] = left
    else:
        del counts[when]
