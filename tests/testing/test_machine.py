"""SchedulerMachine as a user subclasses it: own tasks, own rules, own invariants."""

from __future__ import annotations

import shutil
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import invariant, rule, run_state_machine_as_test

from chronolog import Cron, Every, FileLog, Overlap, Retry
from chronolog.testing import FlakyTarget, HangingTarget
from chronolog.testing.machine import SchedulerMachine

if TYPE_CHECKING:
    from chronolog import EventLog, Scheduler

QUICK = settings(max_examples=8, stateful_step_count=8, deadline=None, database=None)


class Exports(SchedulerMachine):
    """A nightly export in Berlin and a flaky sync every quarter of an hour."""

    start: ClassVar[datetime] = datetime(2026, 3, 28, 22, 0, tzinfo=UTC)

    def __init__(self) -> None:
        self.sync = FlakyTarget(1)
        super().__init__()

    async def setup(self, scheduler: Scheduler) -> None:
        await scheduler.add(
            "export", Cron("0 2 * * *", tz="Europe/Berlin"), HangingTarget(timedelta(minutes=30))
        )
        await scheduler.add(
            "sync",
            Every(timedelta(minutes=15)),
            self.sync,
            overlap=Overlap.QUEUE,
            retry=Retry(max_attempts=2, backoff=timedelta(minutes=1)),
        )

    @rule(minutes=st.integers(1, 90))
    def sync_by_hand_then_wait(self, minutes: int) -> None:
        async def sync_by_hand() -> None:
            if "sync" in self.scheduler.state:  # the base class's rules may remove it
                await self.scheduler.run_now("sync")
            await self.simulation.advance(timedelta(minutes=minutes))

        self.call(sync_by_hand)

    @invariant()
    def the_nightly_export_runs_at_most_once_a_day(self) -> None:
        runs = self.timeline().runs("export")
        days = [run.due.date() for run in runs if run.due is not None and run.kind == "time"]
        assert len(days) == len(set(days)), self.timeline().render(task="export")


def test_a_subclass_with_its_own_rules_and_invariants_runs() -> None:
    run_state_machine_as_test(Exports, settings=QUICK)


class OnAFile(SchedulerMachine):
    """The same promises on a FileLog: real writes and fsyncs, simulated time."""

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="chronolog-machine-"))
        super().__init__()

    async def setup(self, scheduler: Scheduler) -> None:
        await scheduler.add("tick", Every(timedelta(minutes=10)), HangingTarget(timedelta(0)))

    def make_log(self) -> EventLog:
        return FileLog(self.directory / "jobs.jsonl")

    def teardown(self) -> None:
        try:
            super().teardown()
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)


def test_a_machine_on_a_file_log() -> None:
    run_state_machine_as_test(OnAFile, settings=QUICK)
