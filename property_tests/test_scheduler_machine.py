"""A state machine drives a live scheduler with random commands, crashes and restarts.

The scheduler runs in a Trio loop on a background thread, on simulated time
that stands still between rules (the mock clock's autojump is off except
while a rule lets time pass), so every step is deterministic. After every
rule the invariants are checked inside that loop once it is quiet: the live
state equals ``replay(log)``, the invariant checker finds nothing (no
attempt started twice, nothing started after it settled, ...), nothing due
was lost, a pause skipped only due times that came while it lasted, and a
redefinition skipped only due times its new trigger does not produce.

Besides adding, pausing, resuming, removing and running tasks now, the rules
pause briefly, declare a task again with only its target or policy changed,
add one-offs whose instant has passed, and fill the disk for a while.

A *crash* abandons the scheduler mid-run: the log is cut where it stood, as
``kill -9`` would leave it, and a new scheduler opens on that cut log. A
*restart* leaves gracefully and opens again on the same log.
"""

from __future__ import annotations

import errno
import math
import os
import shutil
import tempfile
import threading
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio
import trio.testing
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from chronolog import (
    At,
    ConfigError,
    Cron,
    Every,
    FileLog,
    LogRepaired,
    MemoryLog,
    Overlap,
    Retry,
    Scheduled,
    Skipped,
    SkipReason,
    State,
    TaskDefined,
    TaskPaused,
    TaskResumed,
    check_invariants,
    occurrence_id,
    open_scheduler,
    replay,
)
from chronolog.testing import SimulatedClock

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from chronolog import Event, EventLog, Scheduler, Trigger

START = datetime(2026, 3, 28, 22, 0, tzinfo=UTC)
NAMES = ("alpha", "beta", "gamma")
TRIGGERS = {
    "every-7m": Every(timedelta(minutes=7), anchor=START),
    "every-20m": Every(timedelta(minutes=20), anchor=START),
    "cron-berlin": Cron("*/15 * * * *", tz="Europe/Berlin"),
    "cron-2:30": Cron("30 2 * * *", tz="Europe/Berlin"),  # spring-forward night
}


class Target:
    """Succeeds, fails, or hangs for a while, as the machine tells it."""

    def __init__(self, sim: SimulatedClock, behaviour: str) -> None:
        self.sim = sim
        self.behaviour = behaviour

    async def __call__(self) -> str:
        if self.behaviour == "fail":
            raise RuntimeError("boom")
        if self.behaviour == "hang":
            await self.sim.advance(timedelta(minutes=25))
        return self.behaviour


class OtherTarget(Target):
    """The same job under another import path (``__main__:f`` and ``app:f``)."""


class FillableLog(MemoryLog):
    """A memory log whose disk can be made full: appends fail with ENOSPC meanwhile."""

    full = False

    def _check_disk(self) -> None:
        if self.full:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    async def append(self, events: Sequence[Event]) -> list[Event]:
        self._check_disk()
        return await super().append(events)

    def append_nowait(self, events: Sequence[Event]) -> list[Event]:
        self._check_disk()
        return super().append_nowait(events)


class SchedulerMachine(RuleBasedStateMachine):
    use_file_log = False

    def __init__(self) -> None:
        super().__init__()
        self.mock = trio.testing.MockClock(autojump_threshold=math.inf)
        self.sim = SimulatedClock(START, mock_clock=self.mock)
        self.directory = Path(tempfile.mkdtemp(prefix="chronolog-machine-"))
        self.generation = 0
        self.defined: set[str] = set()
        self._ready = threading.Event()
        self._thread = threading.Thread(
            target=trio.run, args=(self._loop,), kwargs={"clock": self.mock}
        )
        self._thread.start()
        assert self._ready.wait(30), "the scheduler's Trio loop did not start"
        self._call(self._open)

    # -- the background loop ----------------------------------------------------

    async def _loop(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        self._stop = trio.Event()
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            self._ready.set()
            await self._stop.wait()
            nursery.cancel_scope.cancel()

    def _call(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        return trio.from_thread.run(fn, *args, trio_token=self._token)

    async def _flowing(self, fn: Callable[[], Awaitable[Any]]) -> Any:
        """Run ``fn`` with simulated time allowed to pass, then freeze it again."""
        self.sim.autojump_threshold = 0
        try:
            return await fn()
        finally:
            await trio.testing.wait_all_tasks_blocked()
            self.sim.autojump_threshold = math.inf

    def _first_log(self) -> EventLog:
        if self.use_file_log:
            return FileLog(self.directory / "jobs-0.jsonl")
        return FillableLog()

    async def _open(self) -> None:
        await self._start(self._first_log())

    async def _start(self, log: EventLog) -> None:
        self.log = log
        self._life = trio.CancelScope()
        self._ended = trio.Event()

        async def life(task_status: trio.TaskStatus[Scheduler]) -> None:
            try:
                with self._life:
                    async with open_scheduler(
                        log, clock=self.sim, shutdown_grace=timedelta(seconds=30)
                    ) as scheduler:
                        task_status.started(scheduler)
                        await trio.sleep_forever()
            finally:
                self._ended.set()

        with warnings.catch_warnings():
            # A crash copy may end in a torn batch, repaired with a warning.
            warnings.simplefilter("ignore", LogRepaired)
            self.sched = await self._nursery.start(life)
        await trio.testing.wait_all_tasks_blocked()

    async def _close(self) -> None:
        self._life.cancel()
        await self._flowing(self._ended.wait)

    def teardown(self) -> None:
        try:
            self._call(self._close)
        finally:
            trio.from_thread.run_sync(self._stop.set, trio_token=self._token)
            self._thread.join()
            shutil.rmtree(self.directory, ignore_errors=True)

    # -- rules -------------------------------------------------------------------

    @rule(
        name=st.sampled_from(NAMES),
        trigger=st.sampled_from(sorted(TRIGGERS)),
        behaviour=st.sampled_from(["ok", "ok", "fail", "hang"]),
        overlap=st.sampled_from(Overlap),
        attempts=st.integers(1, 3),
    )
    def add(
        self, name: str, trigger: str, behaviour: str, overlap: Overlap, attempts: int
    ) -> None:
        async def add() -> None:
            await self.sched.add(
                name,
                TRIGGERS[trigger],
                Target(self.sim, behaviour),
                overlap=overlap,
                retry=Retry(max_attempts=attempts, backoff=timedelta(minutes=2)),
            )
            await trio.testing.wait_all_tasks_blocked()

        self._call(add)
        self.defined.add(name)

    def _command(self, command: str, name: str) -> None:
        async def run() -> None:
            if name in self.sched.state:
                try:
                    await getattr(self.sched, command)(name)
                except ConfigError as error:
                    # After a restart the machine does not add its tasks again,
                    # and a callable object has no import path: run_now says so.
                    if command != "run_now" or "not importable" not in str(error):
                        raise
            await trio.testing.wait_all_tasks_blocked()

        self._call(run)

    @precondition(lambda self: self.defined)
    @rule(name=st.sampled_from(NAMES))
    def pause(self, name: str) -> None:
        self._command("pause", name)

    @precondition(lambda self: self.defined)
    @rule(name=st.sampled_from(NAMES))
    def resume(self, name: str) -> None:
        self._command("resume", name)

    @precondition(lambda self: self.defined)
    @rule(name=st.sampled_from(NAMES))
    def remove(self, name: str) -> None:
        self._command("remove", name)

    @precondition(lambda self: self.defined)
    @rule(name=st.sampled_from(NAMES))
    def run_now(self, name: str) -> None:
        self._command("run_now", name)

    @precondition(lambda self: self.defined)
    @rule(name=st.sampled_from(NAMES), minutes=st.integers(0, 30))
    def short_pause(self, name: str, minutes: int) -> None:
        """Pause and resume a few minutes later: a run due after the resume is not lost."""

        async def run() -> None:
            if name not in self.sched.state:
                return
            await self.sched.pause(name)
            await self._flowing(lambda: self.sim.advance(timedelta(minutes=minutes)))
            if name in self.sched.state:
                await self.sched.resume(name)
            await trio.testing.wait_all_tasks_blocked()

        self._call(run)

    @precondition(lambda self: self.defined)
    @rule(
        name=st.sampled_from(NAMES),
        change=st.sampled_from(["timeout", "target", "retry", "overlap"]),
    )
    def redefine_keeping_the_trigger(self, name: str, change: str) -> None:
        """Declare a task again with only its target or a policy changed."""

        async def run() -> None:
            if name not in self.sched.state:
                return
            status = self.sched.state.status(name)
            policy = status.policy
            options: dict[str, Any] = {
                "overlap": policy.overlap,
                "retry": policy.retry,
                "timeout": policy.timeout,
            }
            target: Callable[[], Awaitable[str]] = Target(self.sim, "ok")
            if change == "timeout":
                options["timeout"] = timedelta(minutes=41) if policy.timeout is None else None
            elif change == "retry":
                options["retry"] = Retry(max_attempts=policy.retry.max_attempts % 3 + 1)
            elif change == "overlap":
                options["overlap"] = (
                    Overlap.ALLOW if policy.overlap is not Overlap.ALLOW else Overlap.SKIP
                )
            else:
                target = OtherTarget(self.sim, "ok")
            await self.sched.add(name, status.trigger, target, **options)
            await trio.testing.wait_all_tasks_blocked()

        self._call(run)

    @rule(name=st.sampled_from(NAMES), seconds_ago=st.integers(0, 7200))
    def add_a_past_one_off(self, name: str, seconds_ago: int) -> None:
        """A one-off whose instant has passed: catch-up decides, never a silent drop."""

        async def run() -> None:
            when = self.sim.now() - timedelta(seconds=seconds_ago)
            await self.sched.add(name, At(when), Target(self.sim, "ok"))
            await trio.testing.wait_all_tasks_blocked()

        self._call(run)
        self.defined.add(name)

    @precondition(lambda self: not self.use_file_log)
    @rule(minutes=st.integers(1, 45))
    def fill_the_disk_for_a_while(self, minutes: int) -> None:
        """Every append fails with ENOSPC for a while; then the disk has room again."""

        async def run() -> None:
            log = self.log
            assert isinstance(log, FillableLog)
            log.full = True
            try:
                await self._flowing(lambda: self.sim.advance(timedelta(minutes=minutes)))
            finally:
                log.full = False
            # Whatever was backing off notices within its longest back-off.
            await self._flowing(lambda: self.sim.advance(timedelta(seconds=16)))

        self._call(run)

    @rule(minutes=st.integers(1, 240))
    def advance(self, minutes: int) -> None:
        self._call(self._flowing, lambda: self.sim.advance(timedelta(minutes=minutes)))

    @rule()
    def crash_and_restart(self) -> None:
        async def crash() -> None:
            # What is durable at this instant is all a killed process leaves:
            # the new scheduler opens on a copy taken now, and whatever the
            # abandoned one does afterwards lands in the old log, unseen.
            snapshot: EventLog
            if isinstance(self.log, FileLog):
                self.generation += 1
                path = self.directory / f"jobs-{self.generation}.jsonl"
                shutil.copyfile(self.log.path, path)
                snapshot = FileLog(path)
            else:
                snapshot = FillableLog(list(self.log.read()))
            await self._close()
            await self._start(snapshot)

        self._call(crash)

    @rule()
    def restart(self) -> None:
        async def restart() -> None:
            await self._close()
            log = self.log
            again = (
                FileLog(log.path) if isinstance(log, FileLog) else FillableLog(list(log.read()))
            )
            await self._start(again)

        self._call(restart)

    # -- invariants --------------------------------------------------------------

    @invariant()
    def live_state_is_the_replay_of_the_log_and_the_log_is_sound(self) -> None:
        async def check() -> None:
            await trio.testing.wait_all_tasks_blocked()
            records = list(self.log.read())
            assert replay(records) == self.sched.state
            assert check_invariants(records) == []
            assert unaccounted_due_times(records, until=self.sim.now()) == []
            assert paused_skips_outside_pauses(records) == []
            assert redefinitions_that_skipped_kept_due_times(records) == []

        self._call(check)


def paused_skips_outside_pauses(records: list[Event]) -> list[str]:
    """``Skipped(paused)`` records made before their due time, or while not paused.

    A pause keeps the pending occurrence scheduled: it may be skipped only
    once its due time has come, with the task still paused.
    """
    due_of: dict[str, datetime] = {}
    paused: dict[str, bool] = {}
    wrong: list[str] = []
    for record in records:
        if isinstance(record, TaskDefined):
            paused.setdefault(record.task, record.policy.paused)
        elif isinstance(record, TaskPaused | TaskResumed):
            paused[record.task] = isinstance(record, TaskPaused)
        elif isinstance(record, Scheduled):
            due_of[record.occurrence] = record.due
        elif isinstance(record, Skipped) and record.reason is SkipReason.PAUSED:
            due = record.due if record.due is not None else due_of.get(record.occurrence)
            if due is None or record.at < due or not paused.get(record.task, False):
                wrong.append(f"seq {record.seq}: {record.occurrence} skipped at {record.at}")
    return wrong


def redefinitions_that_skipped_kept_due_times(records: list[Event]) -> list[str]:
    """``Skipped(redefined)`` records for a due time the new definition produces."""
    due_of: dict[str, datetime] = {}
    wrong: list[str] = []
    for index, record in enumerate(records):
        if isinstance(record, Scheduled):
            due_of[record.occurrence] = record.due
        if not (isinstance(record, Skipped) and record.reason is SkipReason.REDEFINED):
            continue
        # The definition it was skipped for: the next TaskDefined of the task in
        # the same write (a command skips, then defines), else the one in force.
        following = next(
            (
                r
                for r in records[index + 1 :]
                if r.task == record.task and not isinstance(r, Skipped)
            ),
            None,
        )
        if isinstance(following, TaskDefined) and following.at == record.at:
            definition = following
        else:
            definition = next(
                r
                for r in reversed(records[:index])
                if isinstance(r, TaskDefined) and r.task == record.task
            )
        due = due_of.get(record.occurrence)
        if due is not None and definition.trigger.fires_at(due):
            wrong.append(f"seq {record.seq}: {record.occurrence} skipped, yet produced")
    return wrong


def unaccounted_due_times(records: list[Event], *, until: datetime) -> list[str]:
    """Due times before ``until`` that a task's trigger produced while the task
    existed and was not paused, yet no record mentions: silently lost.

    Walks the log with the projection itself, so "existed", "paused" and the
    origin a definition or a resume sets mean exactly what the scheduler
    takes them to mean. Each stretch of a task's life with one definition,
    unpaused, is checked against that definition's trigger.
    """
    mentioned = {(r.task, r.occurrence) for r in records if hasattr(r, "occurrence")}
    # Due times missed in one outage are one record: (first, last) by task.
    ranges: dict[str, list[tuple[datetime, datetime]]] = {}
    for r in records:
        if isinstance(r, Skipped) and r.last_due is not None and r.due is not None:
            ranges.setdefault(r.task, []).append((r.due, r.last_due))
    state = State()
    # task -> (trigger, origin) of the stretch it is in now, if unpaused.
    open_stretch: dict[str, tuple[Trigger, datetime]] = {}
    lost: list[str] = []

    def close(task: str, end: datetime) -> None:
        stretch = open_stretch.pop(task, None)
        if stretch is None:
            return
        trigger, origin = stretch
        due = trigger.next_after(origin)
        while due is not None and due < end:
            if (task, occurrence_id(task, due)) not in mentioned and not any(
                first <= due <= last for first, last in ranges.get(task, ())
            ):
                lost.append(f"{task} due {due.isoformat()} (stretch from {origin.isoformat()})")
            due = trigger.next_after(due)

    for record in records:
        state.fold(record)
        task = record.task
        if task in state and not state.is_paused(task):
            stretch = (state.definition(task).trigger, state.origin(task))
        else:
            stretch = None
        if open_stretch.get(task) != stretch:
            close(task, record.at)
            if stretch is not None:
                open_stretch[task] = stretch
    for task in list(open_stretch):
        close(task, until)
    return lost


class FileLogMachine(SchedulerMachine):
    use_file_log = True


SchedulerMachine.TestCase.settings = settings(
    max_examples=50, stateful_step_count=20, deadline=None
)
FileLogMachine.TestCase.settings = settings(max_examples=10, stateful_step_count=15, deadline=None)
TestSchedulerOnMemoryLog = SchedulerMachine.TestCase
TestSchedulerOnFileLog = FileLogMachine.TestCase
