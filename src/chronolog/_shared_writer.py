"""The log writer of a scheduler on a shared log: every batch decided in its turn.

A `LogWriter` checks claims against its state, which is the whole truth when
it is the only writer. On a log that other processes append to (a
`PostgresLog`), the state can be behind: another node may have claimed the
occurrence, paused the task or removed it a moment ago. So each batch is
committed in a *turn* (`PostgresLog.appending`): the log's append lock is
taken, the records appended elsewhere since the state's seq are read and
folded (`Follower.fold`), and only then are the batch's claims checked --
the writer's own checks, then `refuse_doubtful`, which refuses a
submission whose records would break a rule of the log on the state as it
now is (a start of a paused task, a record of a removed task, ...). The
accepted submissions are appended and folded before the lock is released.
Every node's decisions are therefore made on the whole log, one at a time,
in the order of the log: the database's unique indexes on claims and
settlements are the second line, not the first.

Most of what other nodes appended is folded before the turn, without the
lock (`Follower.catch_up`), so a turn reads a few records at most.

Commands (add, pause, resume, remove) are not events computed in advance but
decisions: `SharedLogWriter.append_decided` makes them inside a turn, on the
state the turn has brought up to date, so that two nodes declaring the same
job file at once record one definition, not two.

The follower and the node's lease run beside the writer task (`run`): they
live exactly as long as the scheduler can append.
"""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING

import msgspec
import trio

from ._errors import ChronologError, ClaimConflict
from ._invariants import Checker
from ._writer import LogWriter, _Submission
from .log._base import EventLog, check_unappended

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from datetime import timedelta

    from ._clock import Clock
    from ._events import Event
    from ._follower import Follower, SharedLog
    from ._leases import Leases
    from ._projection import State

__all__ = ["SharedLogWriter", "refuse_doubtful"]

logger = logging.getLogger("chronolog.writer")


class SharedLogWriter(LogWriter):
    """A `LogWriter` for a log other processes append to (see the module docstring)."""

    def __init__(
        self,
        log: SharedLog,
        state: State,
        *,
        clock: Clock,
        follower: Follower,
        leases: Leases,
    ) -> None:
        assert isinstance(log, EventLog)
        super().__init__(log, state, clock=clock)
        self._shared = log
        self.follower = follower
        self.leases = leases

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The writer task, with the follower and the lease beside it.

        The lease is taken before the writer starts (so nothing is claimed
        without one), and given back once the writer has written everything.
        """
        async with trio.open_nursery() as nursery:
            await nursery.start(self.leases.run)
            await nursery.start(self.follower.run)
            try:
                await super().run(task_status=task_status)
            finally:
                nursery.cancel_scope.cancel()
                with trio.CancelScope(shield=True):
                    await self.leases.release()

    async def _commit(self, batch: list[_Submission]) -> None:
        """Check the batch's claims on the whole log, in a turn; append; fold."""
        with contextlib.suppress(OSError):  # the turn reads what is missing, or says why not
            await self.follower.catch_up()
        accepted: list[_Submission] = []
        events: list[Event] = []
        async with self.follower.folding:
            # A claim the log already shows taken is refused here, without a
            # turn: the state only grows, so it would be refused in one too.
            # (Nodes woken by one due time lose most of their claims.)
            batch = self._admit(batch)
            if not batch:
                return
            try:
                async with self._shared.appending(self._state.seq) as turn:
                    self.follower.fold(turn.records)
                    accepted = refuse_doubtful(self._state, self._admit(batch))
                    if not accepted:
                        return
                    events = self._events_of(accepted)
                    self._batches += 1
                    began = trio.current_time()
                    try:
                        with self._clock.hold_still():
                            records = await turn.append(events)
                    finally:
                        self._append_seconds += trio.current_time() - began
            except Exception as error:
                pending = [submission for submission in batch if not submission.done]
                self._fail(pending, events, error)
                return
            # No checkpoint from here on: the records are in the log.
            self._fold_and_settle(accepted, records)

    def claim_delay(self, occurrence: str) -> timedelta:
        """Nodes take turns by occurrence: the one its lease ranks first claims at
        the due time, the next a moment later (see `Leases.claim_delay`)."""
        return self.leases.claim_delay(occurrence)

    async def append_decided(self, decide: Callable[[State], Sequence[Event]]) -> list[Event]:
        """Decide what to append on the state brought up to date in a turn, and
        append it there: the stored records (none if ``decide`` gave none).

        ``decide`` is pure (a command rule such as ``define_events``) and may
        raise (``UnknownTask``, ...): nothing is appended then.
        """
        if self._closed:
            raise self._closed_error()
        with contextlib.suppress(OSError):
            await self.follower.catch_up()
        # A command that changes nothing on the state as it has been followed
        # (an application declaring its tasks again at every start) takes no
        # turn: had another node changed the task a moment earlier, the
        # command would only have come after that change.
        # A refusal (an unknown task) is left for the turn to decide.
        async with self.follower.folding:
            with contextlib.suppress(ChronologError):
                if not decide(self._state):
                    return []
        async with self.follower.folding:
            async with self._shared.appending(self._state.seq) as turn:
                self.follower.fold(turn.records)
                events = check_unappended(decide(self._state))
                if not events:
                    return []
                submission = _Submission(events)
                if not refuse_doubtful(self._state, self._admit([submission])):
                    assert submission.error is not None
                    raise submission.error
                self._batches += 1
                began = trio.current_time()
                try:
                    records = await turn.append(submission.events)
                finally:
                    self._append_seconds += trio.current_time() - began
            self._fold_and_settle([submission], records)
        return records


def refuse_doubtful(state: State, submissions: list[_Submission]) -> list[_Submission]:
    """The submissions whose records keep every rule of the log on ``state`` (as the
    earlier ones would leave it); the others fail with `ClaimConflict` naming the rule.

    The projection's own fold watches for the sign of a broken rule
    (`State.fold_until_doubtful`, as a strict open does); only then does the
    invariant checker say whether, and which, rule would break.
    """
    if not submissions:
        return submissions
    tasks = {event.task for submission in submissions for event in submission.events}
    scratch = state.isolate(*tasks)
    seq = state.seq
    accepted = []
    for submission in submissions:
        numbered = [
            msgspec.structs.replace(event, seq=seq + offset)
            for offset, event in enumerate(submission.events, start=1)
        ]
        own = {event.task for event in numbered}
        trial = scratch.isolate(*own)
        suspect = trial.fold_until_doubtful(iter(numbered))
        if suspect is not None:
            checker = Checker()
            checker.start_from(scratch.isolate(*own))
            for record in numbered:
                checker.check(record)
            if checker.violations:
                violation = checker.violations[0]
                submission.fail(
                    ClaimConflict(
                        f"{violation.message} [{violation.rule}], on the log as other processes "
                        f"left it: the submission of {len(numbered)} "
                        f"event{'' if len(numbered) == 1 else 's'} was not written"
                    )
                )
                continue
        for record in numbered:
            scratch.fold(record)
        seq += len(numbered)
        accepted.append(submission)
    return accepted
