"""The log writer: the one task that appends to the log, with group commit.

Every part of a scheduler that wants to record something calls
:meth:`LogWriter.append`. The call puts the events, as one *submission*, into
a bounded channel and waits. A single writer task (:meth:`LogWriter.run`)
takes every submission that is waiting -- all that arrived while its
previous write was in flight -- checks their claims, writes the accepted ones
with **one** ``log.append`` (one write and one fsync for a `FileLog`), folds
the stored records into the live `State`, and only then wakes the
submitters. So:

* when ``append`` returns, its records are durable *and* already reflected
  in the state, and the state is always the fold of the log
  (live state == replay(log));
* a submission's events stay contiguous and in order, and submissions are
  written in the order the channel accepted them;
* a ``Started`` whose claim is taken -- by the log, or by an earlier
  submission of the same batch -- is never written: its whole submission is
  rejected with `ClaimConflict` and the rest of the batch goes on.

See ``docs/reference/writer.md`` for the guarantees in full. (One module:
the queue, the claim checks and the group commit are one loop.)
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Final

import attrs
import trio

from ._errors import ClaimConflict, LogClosed
from ._events import Completed, Failed, Skipped, Started
from ._views import OccurrenceState, Outcome
from .log._base import EventLog, check_unappended

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from types import TracebackType
    from typing import TypeAlias

    from ._clock import Clock
    from ._events import Event
    from ._projection import State

    #: What `LogWriter.append_soon` calls once a submission is settled: the
    #: stored records, or the error.
    Settled: TypeAlias = Callable[[list[Event] | None, Exception | None], None]

__all__ = ["LogWriter", "WriterStatistics"]

logger = logging.getLogger("chronolog.writer")

#: The claim delay of a scheduler that is its log's only writer.
_NO_DELAY = timedelta(0)

_SETTLED: Final = frozenset({Outcome.COMPLETED, Outcome.FAILED, Outcome.SKIPPED})
#: Records the writer checks against the state before writing them.
_CHECKED: Final = frozenset({Started, Completed, Failed, Skipped})


@attrs.frozen
class WriterStatistics:
    """A snapshot of what a `LogWriter` has done so far."""

    submissions: int
    """``append()`` calls accepted (taken by the writer, or waiting in its queue)."""
    batches: int
    """``log.append`` calls made: writes (and fsyncs), failed ones included."""
    records: int
    """Records written."""
    largest_batch: int
    """Most records written by one ``log.append``."""
    queued: int
    """Submissions waiting in the queue now."""
    append_seconds: float = attrs.field(default=0.0, eq=False)
    """Time spent in ``log.append`` in all (on the Trio clock: none on simulated time,
    whose clock holds still while the log writes); over ``batches``, the mean latency.
    A measurement rather than a count, so snapshots compare equal without it."""


class _Submission:
    """One ``append()`` call: its events, and what became of them.

    The submitter parks itself in :meth:`wait` and the writer wakes it with
    :meth:`succeed` or :meth:`fail` -- Trio's low-level primitives rather
    than a `trio.Event`, because a submission is made for every append and
    an Event costs several more objects and steps.
    """

    __slots__ = ("_waiter", "done", "error", "events", "on_settled", "records", "traceback")

    def __init__(self, events: list[Event], on_settled: Settled | None = None) -> None:
        self.events = events
        #: Called (by the writer) once settled, for a submission nobody waits for.
        self.on_settled = on_settled
        self.done = False
        # None until settled: an empty list here would be one more object
        # alive per waiting append (thousands in a burst, for the GC to walk).
        self.records: list[Event] | None = None
        self.error: Exception | None = None
        self.traceback: TracebackType | None = None
        self._waiter: trio.lowlevel.Task | None = None

    async def wait(self, *, shield: bool) -> None:
        """Return once the writer has settled this submission (a checkpoint).

        ``shield``: wait for the answer even if the caller is cancelled,
        without the cost of a shielded cancel scope.
        """
        if self.done:
            if shield:
                await trio.lowlevel.cancel_shielded_checkpoint()
            else:
                await trio.lowlevel.checkpoint()
            return
        self._waiter = trio.lowlevel.current_task()

        def abort(_: object) -> trio.lowlevel.Abort:
            if shield:
                return trio.lowlevel.Abort.FAILED  # the writer wakes it, as always
            # Cancelled while waiting: the submission stays queued and is
            # still written; only this caller stops waiting for the answer.
            self._waiter = None
            return trio.lowlevel.Abort.SUCCEEDED

        await trio.lowlevel.wait_task_rescheduled(abort)

    def succeed(self, records: list[Event]) -> None:
        self.records = records
        self._settle()

    def fail(self, error: Exception) -> None:
        self.error = error
        self.traceback = error.__traceback__
        self._settle()

    def _settle(self) -> None:
        self.done = True
        waiter, self._waiter = self._waiter, None
        if waiter is not None:
            trio.lowlevel.reschedule(waiter)
        on_settled, self.on_settled = self.on_settled, None
        if on_settled is not None:
            on_settled(self.records, self.error)


class LogWriter:
    """The single writer of a log: batches concurrent appends into one write.

    Start :meth:`run` in a nursery (``await nursery.start(writer.run)``), call
    :meth:`append` from any task, and :meth:`close` the writer to stop: `run`
    then writes everything already accepted and returns.

    ``state`` is the live projection. The writer is the only code that folds
    records into it (with the same step replay uses), right after they are
    written. ``max_queued`` bounds the submissions waiting for the writer
    (``append`` blocks while the queue is full); ``max_batch_records`` bounds
    the records of one write (a larger single submission is written alone,
    never split).
    """

    def __init__(
        self,
        log: EventLog,
        state: State,
        *,
        clock: Clock,
        max_queued: int = 1024,
        max_batch_records: int = 4096,
    ) -> None:
        if max_queued < 1:
            raise ValueError(f"max_queued must be at least 1, got {max_queued}")
        if max_batch_records < 1:
            raise ValueError(f"max_batch_records must be at least 1, got {max_batch_records}")
        self._log = log
        self._state = state
        self._clock = clock
        self._max_batch_records = max_batch_records
        self._send, self._receive = trio.open_memory_channel[_Submission](max_queued)
        self._closed = False
        self._started = False
        # The submissions the writer has taken out of the queue and not yet
        # settled: what a stop in the middle of a write must answer.
        self._in_hand: list[_Submission] = []
        self._taken = 0
        #: Submissions sent to the queue and not yet taken by the writer.
        self._queued = 0
        self._log_appends_nowait = type(log).append_nowait is not EventLog.append_nowait
        #: Tasks in `wait_caught_up`, woken once nothing is queued or in hand.
        self._catching_up: list[trio.lowlevel.Task] = []
        self._batches = 0
        self._records = 0
        self._largest_batch = 0
        self._append_seconds = 0.0

    def __repr__(self) -> str:
        return f"<LogWriter for {self._log!r}, {self._records} records in {self._batches} batches>"

    # -- submitters ------------------------------------------------------------

    async def append(self, events: Sequence[Event], *, shield: bool = False) -> list[Event]:
        """Write ``events`` as one atomic group and return the stored records.

        Returns once the records are durable in the log *and* folded into the
        state. Raises `ClaimConflict` when a ``Started`` among them claims an
        attempt that may not start (nothing of the group is written then),
        the log's own error when the write fails (nothing is written or
        folded; a later append is tried again), and `LogClosed` once the
        writer is closed. ``TypeError``/``ValueError`` for events that cannot
        be appended are raised here, before anything is queued.

        Blocks while the queue is full. Cancelled before the group is
        accepted, nothing is written; cancelled after, the group is still
        written (and folded), only the caller does not learn the result.
        With ``shield=True`` cancellation does not interrupt the call (as
        inside a shielded cancel scope, which costs more): it returns the
        result, or raises the error, as if not cancelled.
        """
        batch = check_unappended(events)
        if self._closed:
            raise self._closed_error()
        if not batch:
            if shield:
                await trio.lowlevel.cancel_shielded_checkpoint()
            else:
                await trio.lowlevel.checkpoint()
            return []
        submission = _Submission(batch)
        # Queue without a schedule point when there is room (the wait below
        # is one): each task switch is a large share of an append's cost.
        if not shield:
            await trio.lowlevel.checkpoint_if_cancelled()
        if self._commit_now(submission):
            await trio.lowlevel.cancel_shielded_checkpoint()
            return self._answer(submission)
        # No await inside an `except` block here or below: a handled
        # exception stays alive (with its traceback's frames) for as long as
        # the block waits, so thousands of waiting appends would keep
        # thousands of frames for the cycle collector to walk.
        try:
            self._send.send_nowait(submission)
            full = False
        except trio.WouldBlock:
            full = True
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            raise self._closed_error() from None
        if full:
            # Backpressure: the queue is full.
            try:
                with trio.CancelScope(shield=shield):
                    await self._send.send(submission)
            except (trio.ClosedResourceError, trio.BrokenResourceError):
                raise self._closed_error() from None
        self._queued += 1
        await submission.wait(shield=shield)
        return self._answer(submission)

    def claim_delay(self, occurrence: str) -> timedelta:
        """How long after its due time this process claims ``occurrence``: at once, as
        the only writer (on a shared log, see ``_shared_writer``)."""
        return _NO_DELAY

    async def append_decided(self, decide: Callable[[State], Sequence[Event]]) -> list[Event]:
        """Append what ``decide`` makes of the state (a command rule), as `append` does.

        Here the state is the whole truth, so ``decide`` runs at once; the
        writer of a log other processes append to (``_shared_writer``) runs
        it while it holds the log, on a state that has every record. When it
        decides nothing, nothing is awaited: an application re-declaring its
        tasks at start-up binds every callable before any actor runs a
        catch-up (which would otherwise run what the recorded path names).
        """
        events = decide(self._state)
        if not events:
            return []
        return await self.append(events)

    def append_now(self, events: Sequence[Event]) -> list[Event] | None:
        """`append` at once, with no checkpoint, where that needs no wait; else None.

        It can when the log can append without waiting (a `MemoryLog`) and
        nothing is queued or being written (so no earlier submission is
        overtaken). Returns None, with nothing written, when it cannot;
        otherwise returns or raises what `append` would. The scheduler's
        actors claim runs and record outcomes with it first: on a memory log
        that saves a task switch per append. (None rather than
        ``trio.WouldBlock``: on a `FileLog` every claim would raise it.)
        """
        batch = check_unappended(events)
        if self._closed:
            raise self._closed_error()
        submission = _Submission(batch)
        if not self._commit_now(submission):
            return None
        return self._answer(submission)

    def append_soon(self, events: Sequence[Event], on_settled: Settled) -> bool:
        """Queue ``events`` as one submission, with no wait; False (nothing queued)
        when that needs a wait (the queue is full) or the writer is closed.

        The writer calls ``on_settled(records, None)`` once the records are
        durable and folded (what `append` would return), or
        ``on_settled(None, error)`` with what `append` would raise -- from the
        writer task, synchronously: it must not block, and must not raise.
        What costs no Trio task per submission: the scheduler's actors claim
        the runs of a burst this way, with no task of their own waiting.
        """
        batch = check_unappended(events)
        if self._closed:
            return False
        try:
            self._send.send_nowait(_Submission(batch, on_settled))
        except (trio.WouldBlock, trio.ClosedResourceError, trio.BrokenResourceError):
            return False
        self._queued += 1
        return True

    @staticmethod
    def _answer(submission: _Submission) -> list[Event]:
        if submission.error is not None:
            # The same exception object goes to every submitter of a failed
            # batch, each time with the writer's traceback as its start.
            raise submission.error.with_traceback(submission.traceback)
        assert submission.records is not None  # settled without an error
        return submission.records

    def close(self) -> None:
        """Stop accepting submissions; `run` writes those accepted, then returns.

        Idempotent. Tasks blocked in ``append`` because the queue is full get
        `LogClosed` (their events are not written), as does every later call.
        """
        self._closed = True
        self._send.close()

    def statistics(self) -> WriterStatistics:
        """A frozen snapshot of the writer's counters."""
        queued = self._receive.statistics().current_buffer_used
        return WriterStatistics(
            submissions=self._taken + queued,
            batches=self._batches,
            records=self._records,
            largest_batch=self._largest_batch,
            queued=queued,
            append_seconds=self._append_seconds,
        )

    def _closed_error(self) -> LogClosed:
        return LogClosed(
            f"{self!r} is closed: nothing more is appended (the scheduler is shutting "
            f"down or has stopped); open a new scheduler to record more events"
        )

    # -- the writer task -----------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Be the writer task: write batches until `close`, then drain and return.

        Returns once every submission accepted before the close is settled
        (written, or answered with its error); nothing is appended after it
        returns. If it is cancelled instead, submissions it had not written
        get `LogClosed` and the writer is closed.
        """
        if self._started:
            raise RuntimeError(f"{self!r} already has its writer task: run() runs once")
        self._started = True
        task_status.started()
        carried: _Submission | None = None
        try:
            while True:
                if carried is None:
                    try:
                        carried = await self._receive.receive()
                    except trio.EndOfChannel:
                        return
                    self._taken += 1
                    self._queued -= 1
                carried = self._gather(carried)
                await self._commit(self._in_hand)
                self._in_hand = []
                if carried is None and not self._queued:
                    self._caught_up()
        finally:
            self._stop(carried)

    def _gather(self, first: _Submission) -> _Submission | None:
        """Take ``first`` and what waits behind it, up to the record limit, into a batch.

        Returns the submission that did not fit (it starts the next batch),
        or ``None``.
        """
        batch = self._in_hand = [first]
        count = len(first.events)
        receive_nowait = self._receive.receive_nowait
        while count < self._max_batch_records:
            try:
                submission = receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel):
                return None
            self._taken += 1
            self._queued -= 1
            count += len(submission.events)
            if count > self._max_batch_records:
                return submission
            batch.append(submission)
        return None

    async def _commit(self, batch: list[_Submission]) -> None:
        """Check claims, write the accepted submissions at once, fold, then wake."""
        accepted = self._admit(batch)
        if not accepted:
            return
        events = self._events_of(accepted)
        self._batches += 1
        began = trio.current_time()
        try:
            with self._clock.hold_still():
                records = await self._log.append(events)
        except Exception as error:
            self._fail(accepted, events, error)
            return
        finally:
            self._append_seconds += trio.current_time() - began
        # No checkpoint from here to the end: the records are in the log, so
        # they are folded and handed out even if this task is being cancelled.
        self._fold_and_settle(accepted, records)

    def _commit_now(self, submission: _Submission) -> bool:
        """`_commit` for one submission, with no wait at all; False (and nothing
        written) when the log cannot append without waiting, or when
        submissions are queued or being written (they come first)."""
        if not self._log_appends_nowait or self._queued or self._in_hand or not self._started:
            return False
        if not submission.events:
            submission.succeed([])
            return True
        accepted = self._admit([submission])
        if accepted:
            events = submission.events
            began = trio.current_time()
            try:
                records = self._log.append_nowait(events)
            except trio.WouldBlock:
                # Another append holds the log (a compaction, say). The claim
                # check kept no state: the writer checks again when it takes
                # the submission from the queue.
                return False
            except Exception as error:
                self._batches += 1
                self._append_seconds += trio.current_time() - began
                self._fail(accepted, events, error)
            else:
                self._batches += 1
                self._append_seconds += trio.current_time() - began
                self._fold_and_settle(accepted, records)
        self._taken += 1
        return True

    def _admit(self, batch: list[_Submission]) -> list[_Submission]:
        """The submissions whose claims may be written; the others are failed."""
        if len(batch) == 1:
            events = batch[0].events
            if not any(type(event) in _CHECKED for event in events[1:]):
                # One submission whose only checked record, if any, comes first
                # (a claim, with its next occurrence; an outcome): checked
                # against the live state itself, as `_ClaimCheck` would.
                return self._admit_first(batch)
        if not any(type(event) in _CHECKED for submission in batch for event in submission.events):
            return batch
        check = _ClaimCheck(self._state)
        accepted = []
        for submission in batch:
            conflict = check.admit(submission)
            if conflict is None:
                accepted.append(submission)
            else:
                submission.fail(conflict)
        return accepted

    def _admit_first(self, batch: list[_Submission]) -> list[_Submission]:
        submission = batch[0]
        events = submission.events
        first = events[0]
        if type(first) not in _CHECKED:
            return batch
        conflict = _conflict(self._state, first, len(events))
        if conflict is not None:
            submission.fail(conflict)
            return []
        if type(first) is Skipped and _stale_skip(self._state, first):
            submission.events = events[1:]
        return batch

    @staticmethod
    def _events_of(accepted: list[_Submission]) -> list[Event]:
        if len(accepted) == 1:
            return accepted[0].events
        return [event for submission in accepted for event in submission.events]

    def _fail(self, accepted: list[_Submission], events: list[Event], error: Exception) -> None:
        logger.warning(
            "appending %d records (%d submissions) to %r failed: %r; its submitters "
            "get the error, later appends are tried again",
            len(events),
            len(accepted),
            self._log,
            error,
        )
        for submission in accepted:
            submission.fail(error)

    def _fold_and_settle(self, accepted: list[_Submission], records: list[Event]) -> None:
        fold = self._state.fold
        for record in records:
            fold(record)
        self._records += len(records)
        self._largest_batch = max(self._largest_batch, len(records))
        start = 0
        for submission in accepted:
            end = start + len(submission.events)
            submission.succeed(records[start:end])
            start = end

    async def wait_caught_up(self) -> None:
        """Return once every submission queued so far is settled (a checkpoint).

        What the alarm keeper waits for after the first round of actors due
        at one instant: their claims are durable, and their runs start,
        while the event loop is idle for the write -- not while it claims
        the rest of the burst, when the worker thread that writes and
        fsyncs would have to win the interpreter lock back from it after
        every system call (tens of milliseconds, for 0.1 ms of disk).
        """
        if self._closed or not (self._queued or self._in_hand):
            await trio.lowlevel.checkpoint()
            return
        task = trio.lowlevel.current_task()
        self._catching_up.append(task)

        def abort(_: object) -> trio.lowlevel.Abort:
            self._catching_up.remove(task)
            return trio.lowlevel.Abort.SUCCEEDED

        await trio.lowlevel.wait_task_rescheduled(abort)

    def _caught_up(self) -> None:
        waiting, self._catching_up = self._catching_up, []
        for task in waiting:
            trio.lowlevel.reschedule(task)

    def _stop(self, carried: _Submission | None) -> None:
        """Close for good and answer every submission that will not be written."""
        self.close()
        self._caught_up()
        in_flight = [submission for submission in self._in_hand if not submission.done]
        self._in_hand = []
        queued = [] if carried is None or carried.done else [carried]
        while True:
            try:
                queued.append(self._receive.receive_nowait())
            except (trio.WouldBlock, trio.EndOfChannel):
                break
        self._receive.close()
        for submission in in_flight:
            submission.fail(
                LogClosed(
                    "the log writer stopped while this submission was being written, so it "
                    "was not folded into the state; read the log to see whether it landed"
                )
            )
        for submission in queued:
            submission.fail(
                LogClosed("the log writer stopped before writing this submission: not written")
            )


class _ClaimCheck:
    """Which submissions of one batch may be written: their claims and settlements.

    A ``Started`` may start only what `State.may_start` allows (one claim
    per attempt); a ``Completed`` or ``Failed`` must end the attempt that is
    running (one settlement per attempt). A ``Skipped`` for an occurrence that
    is running or has settled meanwhile is dropped from its submission, the
    rest of which stands: it was planned from an earlier state (a pause or a
    redefinition racing a claim, an overlap skip racing a pause skip).

    Answers against the state as it will be once the submissions admitted so
    far are folded in. A record whose task has no earlier record in the batch
    is checked against the live state itself. One that follows a record of
    its own task is checked against a scratch state: copies of only the
    tasks the batch touches, with the admitted records folded in (rebuilt
    after a rejection, which it cannot undo).
    """

    __slots__ = ("_admitted", "_covered", "_scratch", "_state", "_touched")

    def __init__(self, state: State) -> None:
        self._state = state
        self._admitted: list[Event] = []
        self._touched: set[str] = set()
        self._scratch: State | None = None
        #: The tasks the scratch holds.
        self._covered: set[str] = set()

    def admit(self, submission: _Submission) -> ClaimConflict | None:
        """Admit ``submission`` if every claim and settlement in it holds, else say why not."""
        events = submission.events
        scratch: State | None = None
        if self._scratch is not None or self._needs_scratch(events):
            scratch = self._scratch_for(events)
        checked = self._state if scratch is None else scratch
        kept: list[Event] = []
        for event in events:
            kind = type(event)
            if kind in _CHECKED:
                conflict = _conflict(checked, event, len(events))
                if conflict is not None:
                    # The scratch may now hold part of a rejected submission.
                    self._scratch = None
                    return conflict
                if kind is Skipped and _stale_skip(checked, event):
                    continue
            if scratch is not None:
                scratch.fold(event)
            kept.append(event)
        if len(kept) != len(events):
            submission.events = kept
        self._admitted.extend(kept)
        self._touched.update(event.task for event in kept)
        return None

    def _needs_scratch(self, events: list[Event]) -> bool:
        """Does a checked record follow a record of its own task in this batch?"""
        touched = self._touched
        seen: set[str] = set()
        for event in events:
            task = event.task
            if type(event) in _CHECKED and (task in touched or task in seen):
                return True
            seen.add(task)
        return False

    def _scratch_for(self, events: list[Event]) -> State:
        """The scratch state, holding (at least) the tasks of ``events``."""
        scratch = self._scratch
        if scratch is None:
            scratch = self._scratch = self._state.isolate(*self._touched)
            self._covered = set(self._touched)
            for event in self._admitted:
                scratch.fold(event)
        for event in events:
            # A task the batch has not touched yet: the live state's is current.
            if event.task not in self._covered:
                self._covered.add(event.task)
                scratch.adopt(self._state, event.task)
        return scratch


def _conflict(state: State, event: Event, size: int) -> ClaimConflict | None:
    """The error for a claim or settlement that ``state`` does not allow, else None."""
    if type(event) is Started:
        if state.may_start(event.task, event.occurrence, event.attempt):
            return None
        return _claim_conflict(state, event, size)
    if type(event) is Completed or type(event) is Failed:
        if state.may_settle(event.task, event.occurrence, event.attempt):
            return None
        return ClaimConflict(
            f"attempt {event.attempt} of occurrence {event.occurrence!r} of task "
            f"{event.task!r} cannot end with {type(event).__name__}: it is not running "
            f"({_standing(state, event.task, event.occurrence)}), so its outcome was recorded "
            f"already or it never started. Its submission of {size} "
            f"event{'' if size == 1 else 's'} was not written"
        )
    return None


def _standing(state: State, task: str, occurrence: str) -> str:
    if task not in state:
        return f"there is no task {task!r}"
    for run in state.history(task):
        if run.occurrence == occurrence:
            return f"it is {run.outcome}"
    return "it is not open"


def _stale_skip(state: State, event: Event) -> bool:
    """Is ``event`` a ``Skipped`` for an occurrence that is running or has settled?"""
    if type(event) is not Skipped:
        return False
    if event.task not in state:
        return True  # removed meanwhile: its occurrences were settled with it
    standing = state.occurrence_state(event.task, event.occurrence, event.due)
    if standing is OccurrenceState.RUNNING or standing is OccurrenceState.SETTLED:
        return True
    # A skip of an occurrence that is not open says when it was due; one
    # without a due time was planned for an open occurrence that settled since.
    return standing is OccurrenceState.NEW and event.due is None


def _claim_conflict(state: State, started: Started, size: int) -> ClaimConflict:
    """The error for a ``Started`` that ``state`` does not let start, saying why."""
    task, occurrence, attempt = started.task, started.occurrence, started.attempt
    return ClaimConflict(
        f"attempt {attempt} of occurrence {occurrence!r} of task {task!r} may not start: "
        f"{_why_not(state, started)}. Its submission of {size} "
        f"event{'' if size == 1 else 's'} was not written; do not run it"
    )


def _why_not(state: State, started: Started) -> str:
    task, occurrence = started.task, started.occurrence
    if task not in state:
        return f"there is no task {task!r} (a TaskDefined must come first)"
    for run in state.history(task):
        if run.occurrence != occurrence:
            continue
        if run.outcome in _SETTLED:
            return f"the occurrence has already settled ({run.outcome})"
        if run.outcome is Outcome.RUNNING:
            return f"attempt {run.attempts} of it is running (its claim is taken)"
        if run.outcome is Outcome.RETRY_PENDING:
            return (
                f"attempt {run.attempts} failed with a retry planned, so only attempt "
                f"{run.attempts + 1} may start"
            )
        return "it is scheduled and has not started, so only attempt 1 may start"
    return (
        "the occurrence is not scheduled (append its Scheduled first, earlier in the same "
        "submission or before) or it settled long ago"
    )
