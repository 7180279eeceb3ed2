"""Following a shared log: records other processes append, folded into the live state.

On a log that several schedulers append to (a `PostgresLog`), a scheduler's
writer folds its own records into the state as it writes them; everything
else -- another node's claims and outcomes, a ``pause`` from the command
line -- arrives here. The `Follower` reads the records after the state's
position, folds them with the same fold replay uses (strictly: a record that
breaks a rule of the log stops the scheduler, as it would stop a restart),
and then tells the actors they concern (`react`):

* a task defined elsewhere gets an actor here too; a redefinition, a pause,
  a resume or a removal wakes the task's actor to plan again (a removal also
  cancels the task's runs here);
* a manual run recorded elsewhere, and a retry another node planned, wake
  the actor: every node may start it, the first claim wins;
* an occurrence this process runs that was settled elsewhere -- its node was
  taken for lost, or a command cancelled it -- has its run cancelled here:
  its outcome is already recorded, and a retry may start on another node.

Order: the state takes records in seq order only. The writer and the
follower share `Follower.folding`, a lock held while either folds, so a
record is folded once, by whichever reaches it first, and never out of
order; records at or below the state's seq are skipped.

Waking: the follower ``LISTEN``s for the notification of every append and
reads by seq (``read_after``), and looks again every ``poll`` anyway. While
the database cannot be reached it backs off and tries again; once it can,
it catches up from its last seq.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Final, Protocol

import trio

from ._errors import LogCorrupted
from ._events import (
    Completed,
    Failed,
    Scheduled,
    Skipped,
    Started,
    TaskDefined,
    TaskPaused,
    TaskRemoved,
    TaskResumed,
)
from ._invariants import Checker
from ._strict import refusal

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from contextlib import AbstractAsyncContextManager
    from datetime import timedelta

    from ._actor import TaskActor
    from ._events import Event
    from ._projection import State

__all__ = ["Follower", "SharedLog", "Turn"]

logger = logging.getLogger("chronolog.follower")

#: Records read per query while catching up.
_PAGE: Final = 2048
_MIN_BACKOFF_SECONDS: Final = 0.2
_MAX_BACKOFF_SECONDS: Final = 5.0


class Turn(Protocol):
    """A transaction holding a shared log's append lock (`PostgresLog.appending`)."""

    records: list[Event]

    async def append(self, events: Sequence[Event]) -> list[Event]: ...


class Notifications(Protocol):
    async def wait(self, after_seq: int, seconds: float) -> None: ...


class SharedLog(Protocol):
    """What the runtime needs of a log several processes append to (`PostgresLog`)."""

    shared: bool

    def appending(self, after_seq: int | None) -> AbstractAsyncContextManager[Turn]: ...

    async def read_after(self, after_seq: int, *, rows: int = ...) -> list[Event]: ...

    def notifications(self) -> AbstractAsyncContextManager[Notifications]: ...

    async def renew_lease(self, node: str, instance: str, lease: timedelta) -> bool: ...

    async def release_lease(self, node: str, instance: str) -> None: ...

    async def lost_nodes(self, nodes: Sequence[str]) -> set[str]: ...

    async def live_nodes(self) -> list[str]: ...

    async def forget_nodes(self, nodes: Sequence[str]) -> None: ...


class Follower:
    """Folds the records other processes append to ``log`` into ``state``."""

    def __init__(self, log: SharedLog, state: State, *, poll: timedelta) -> None:
        self._log = log
        self._state = state
        self._poll_seconds = poll.total_seconds()
        #: Held by whoever folds into the state (the writer, or this follower).
        self.folding = trio.Lock()
        #: What to do with records folded from elsewhere (see `attach`).
        self._react: Callable[[list[Event]], None] | None = None
        #: Records folded from elsewhere so far (statistics).
        self.folded = 0

    def attach(
        self,
        *,
        actors: Mapping[str, TaskActor],
        spawn: Callable[[str], TaskActor],
    ) -> None:
        """From now on, wake the actors that records from elsewhere concern."""
        state = self._state

        def react(records: list[Event]) -> None:
            wake_actors(records, state=state, actors=actors, spawn=spawn)

        self._react = react

    # -- folding -----------------------------------------------------------------

    def fold(self, records: Sequence[Event]) -> None:
        """Fold ``records`` (read from the log) past the state's seq, in order.

        The caller holds `folding`. Records at or below the state's seq were
        folded already (by the writer, which wrote them) and are skipped.
        Strict: a record that breaks a rule of the log raises `LogCorrupted`.
        """
        state = self._state
        fresh = [record for record in records if record.seq > state.seq]
        if not fresh:
            return
        if fresh[0].seq != state.seq + 1:
            raise LogCorrupted(
                f"records {state.seq + 1} to {fresh[0].seq - 1} of the shared log were not "
                f"read before seq {fresh[0].seq}: the log lost records, or was compacted past "
                f"this scheduler's position; restart it"
            )
        # What the records' tasks were before them: the checker starts there
        # if the fold shows the sign of a broken rule (rarely).
        before = state.isolate(*{record.task for record in fresh})
        suspect = state.fold_until_doubtful(iter(fresh))
        while suspect is not None:
            _check_strictly(before, fresh, suspect)
            rest = iter([record for record in fresh if record.seq > suspect.seq])
            suspect = state.fold_until_doubtful(rest)
        self.folded += len(fresh)
        react = self._react
        if react is not None:
            react(fresh)

    async def catch_up(self) -> None:
        """Read and fold whatever other processes appended since the state's seq.

        Raises ``OSError`` when the log cannot be read.
        """
        while True:
            page = await self._log.read_after(self._state.seq, rows=_PAGE)
            if not page:
                return
            async with self.folding:
                self.fold(page)
            if len(page) < _PAGE:
                return

    # -- the follower task -----------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Follow the log until cancelled: wait for a notification, catch up."""
        backoff = _MIN_BACKOFF_SECONDS
        failing = False
        async with self._log.notifications() as notifications:
            task_status.started()
            while True:
                try:
                    await self.catch_up()
                    await notifications.wait(self._state.seq, self._poll_seconds)
                except OSError as exc:
                    if not failing:
                        logger.warning(
                            "cannot follow the log (%s); this scheduler starts nothing until it "
                            "can, and catches up then",
                            exc,
                        )
                    failing = True
                    await trio.sleep(backoff)
                    backoff = min(backoff * 2, _MAX_BACKOFF_SECONDS)
                    continue
                if failing:
                    logger.warning("following the log again from seq %d", self._state.seq)
                failing = False
                backoff = _MIN_BACKOFF_SECONDS


def _check_strictly(before: State, records: list[Event], suspect: Event) -> None:
    """Name the rule ``suspect`` breaks, if it breaks one (`LogCorrupted`); return if
    the sign misled (the fold goes on)."""
    checker = Checker()
    checker.start_from(before)
    for record in records:
        checker.check(record)
        if checker.violations:
            raise refusal("the shared log", checker.violations[0])
        if record.seq >= suspect.seq:
            return


def wake_actors(
    records: list[Event],
    *,
    state: State,
    actors: Mapping[str, TaskActor],
    spawn: Callable[[str], TaskActor],
) -> None:
    """Tell the actors what records from elsewhere mean for them (see the module docstring)."""
    for record in records:
        kind = type(record)
        name = record.task
        actor = actors.get(name)
        if kind is TaskDefined:
            if actor is None:
                if name in state:
                    spawn(name)
            else:
                actor.notify()
        elif kind is TaskRemoved or kind is TaskPaused or kind is TaskResumed:
            if actor is not None:
                if kind is TaskRemoved:
                    actor.cancel_runs("removed")
                actor.notify()
        elif kind is Scheduled:
            if record.occurrence.startswith(name + "!"):  # type: ignore[union-attr]
                if actor is None and name in state:
                    spawn(name)
                elif actor is not None:
                    actor.notify()
        elif kind is Completed or kind is Failed or kind is Skipped or kind is Started:
            if actor is None:
                continue
            occurrence: str = record.occurrence  # type: ignore[union-attr]
            scope = actor.runs.get(occurrence)
            if scope is not None:
                # Run here, settled (or started) elsewhere: its fate is recorded.
                error = getattr(record, "error", None)
                reason = "node lost" if error == "node lost" else "cancelled"
                actor.mark_cancelled(occurrence, reason)
                scope.cancel()
            elif kind is Failed and record.retry_at is not None:  # type: ignore[union-attr]
                actor.notify()
