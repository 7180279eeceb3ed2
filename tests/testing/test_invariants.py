"""The assert_* checkers: silent on sound logs, and each one can fail -- readably."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import msgspec
import pytest

from chronolog import (
    Completed,
    ConfigError,
    Cron,
    Every,
    Failed,
    MemoryLog,
    Scheduled,
    Skipped,
    SkipReason,
    Started,
    TaskDefined,
    TaskPaused,
    TaskRemoved,
    TaskResumed,
    replay,
)
from chronolog.testing import (
    HangingTarget,
    Note,
    Timeline,
    assert_exactly_once,
    assert_fires,
    assert_nothing_lost,
    assert_replay_consistent,
    simulate,
    simulated_scheduler,
)

if TYPE_CHECKING:
    from trio.testing import MockClock

    from chronolog import Event, Scheduler

T0 = datetime(2026, 10, 24, 20, 0, tzinfo=UTC)
TEN = timedelta(minutes=10)
BERLIN = ZoneInfo("Europe/Berlin")
EVERY_TEN = Every(TEN, anchor=T0)


def numbered(events: list[Event]) -> list[Event]:
    return [msgspec.structs.replace(event, seq=n) for n, event in enumerate(events, start=1)]


def oid(task: str, due: datetime) -> str:
    return f"{task}@{due.astimezone(UTC).replace(tzinfo=None).isoformat()}Z"


def defined(task: str = "t", trigger: Cron | Every = EVERY_TEN, at: datetime = T0) -> Event:
    return TaskDefined(task=task, at=at, trigger=trigger, target="jobs:run")


def ran(task: str, due: datetime, *, occurrence: str | None = None) -> list[Event]:
    """Scheduled, Started and Completed for one occurrence that ran on time."""
    name = occurrence or oid(task, due)
    return [
        Scheduled(task=task, at=due - TEN, occurrence=name, due=due),
        Started(task=task, at=due, occurrence=name, attempt=1),
        Completed(task=task, at=due, occurrence=name, attempt=1),
    ]


def on_time(task: str, count: int) -> list[Event]:
    return [event for k in range(1, count + 1) for event in ran(task, T0 + k * TEN)]


# -- exactly once -----------------------------------------------------------------


def test_a_sound_log_passes_every_checker() -> None:
    records = numbered([defined(), *on_time("t", 6)])
    assert_exactly_once(records)
    assert_nothing_lost(records, until=T0 + 6 * TEN)
    assert_replay_consistent(records, state=replay(records))
    assert_fires(records, "t", [T0 + k * TEN for k in range(1, 7)])


def test_a_double_start_names_the_occurrence_the_rule_and_the_seqs() -> None:
    due = T0 + TEN
    records = numbered(
        [
            defined(),
            *ran("t", due),
            Started(task="t", at=due + TEN, occurrence=oid("t", due), attempt=1),
        ]
    )
    with pytest.raises(AssertionError) as failure:
        assert_exactly_once(records)
    message = str(failure.value)
    assert message.startswith("exactly-once is broken: 1 problem(s)")
    assert f"occurrence {oid('t', due)!r} of task 't' ran more than once" in message
    assert "completed at seq 4, yet attempt 1 started again [started-after-settled]" in message
    for seq in (2, 3, 4, 5):
        assert f"seq {seq} at " in message


def test_a_second_claim_while_running_is_caught() -> None:
    due = T0 + TEN
    name = oid("t", due)
    records = numbered(
        [
            defined(),
            Scheduled(task="t", at=T0, occurrence=name, due=due),
            Started(task="t", at=due, occurrence=name, attempt=1),
            Started(task="t", at=due, occurrence=name, attempt=1),
        ]
    )
    with pytest.raises(AssertionError, match=r"started twice \(first at seq 3, again at seq 4\)"):
        assert_exactly_once(records)


def test_one_due_time_run_under_two_ids_is_caught() -> None:
    due = T0 + TEN
    other = "t@2026-10-24T20:10:00+00:00"  # the same instant, spelled another way
    records = numbered([defined(), *ran("t", due), *ran("t", due, occurrence=other)])
    with pytest.raises(AssertionError, match=r"due time 2026-10-24 20:10:00Z of task 't' ran 2"):
        assert_exactly_once(records)


def test_a_dst_double_fire_is_named() -> None:
    # Clocks go back from 03:00 CEST to 02:00 CET: 02:30 happens twice.
    nightly = Cron("30 2 * * *", tz="Europe/Berlin")
    summer = datetime(2026, 10, 25, 2, 30, tzinfo=BERLIN)  # 00:30Z, the first 02:30
    winter = summer.replace(fold=1)  # 01:30Z, the second 02:30
    assert nightly.next_after(summer - TEN) == summer.astimezone(UTC)
    records = numbered(
        [defined("nightly", nightly), *ran("nightly", summer), *ran("nightly", winter)]
    )
    with pytest.raises(AssertionError) as failure:
        assert_exactly_once(records)
    message = str(failure.value)
    assert "DST double fire: task 'nightly' ran at 2026-10-25 01:30:00Z" in message
    assert "2026-10-25 02:30:00+01:00 CET in Europe/Berlin" in message
    assert "2026-10-25 02:30:00+02:00 CEST in Europe/Berlin" in message
    assert "should never have run" in message


def test_a_run_the_trigger_never_produces_is_caught() -> None:
    records = numbered([defined(), *ran("t", T0 + timedelta(minutes=15))])
    with pytest.raises(AssertionError) as failure:
        assert_exactly_once(records)
    message = str(failure.value)
    assert "ran for due time 2026-10-24 20:15:00Z" in message
    assert "every 10 min from 2026-10-24 20:00:00Z never produces" in message
    assert "2026-10-24 20:10:00Z and 2026-10-24 20:20:00Z" in message


def test_elapsed_time_cron_runs_both_passes_of_the_repeated_hour_legitimately() -> None:
    async def setup(scheduler: Scheduler) -> None:
        await scheduler.add(
            "quarterly", Cron("*/30 * * * *", tz="Europe/Berlin"), HangingTarget(timedelta(0))
        )

    start = datetime(2026, 10, 24, 23, 0, tzinfo=UTC)
    timeline = simulate(setup, start=start, until=timedelta(hours=3))
    walls = [t.astimezone(BERLIN).strftime("%H:%M") for t in timeline.fire_times("quarterly")]
    assert walls == ["01:30", "02:00", "02:30", "02:00", "02:30", "03:00"]
    assert_exactly_once(timeline)
    assert_nothing_lost(timeline, until=start + timedelta(hours=3))


# -- nothing lost -----------------------------------------------------------------


def test_a_lost_due_time_is_explained_with_its_neighbours_and_the_harness_notes() -> None:
    records = numbered([defined(), *on_time("t", 2), *ran("t", T0 + 4 * TEN)])
    notes = [Note(T0 + 25 * timedelta(minutes=1), 7, "crash", "killed")]
    with pytest.raises(AssertionError) as failure:
        assert_nothing_lost(Timeline(records, notes=notes), until=T0 + 4 * TEN)
    message = str(failure.value)
    assert message.startswith(
        "1 due time(s) of task(s) 't' up to 2026-10-24 20:40:00Z were lost: never started, "
        "never skipped"
    )
    assert "task 't', due 2026-10-24 20:30:00Z: no occurrence 't@2026-10-24T20:30:00Z'" in message
    # chronolog.explain's verdict, the same as `chronolog why` gives.
    assert "  no-record: the log has no record of this occurrence" in message
    assert "no scheduler was running then" in message
    before = "last record of the task before it: seq 7 at 2026-10-24 20:20:00Z, task 't'"
    assert f"{before}: completed" in message
    after = "first record of the task from then on: seq 8 at 2026-10-24 20:30:00Z, task 't'"
    assert f"{after}: scheduled t@2026-10-24T20:40" in message
    assert "harness: crash at 2026-10-24 20:25:00Z (killed)" in message


def test_until_bounds_what_must_have_happened() -> None:
    records = numbered([defined(), *on_time("t", 2)])
    assert_nothing_lost(records, until=T0 + 2 * TEN)
    with pytest.raises(AssertionError, match=r"(?s)3 due time.*the task has no record after it"):
        assert_nothing_lost(records, until=T0 + 5 * TEN)


def test_skipped_pending_busy_and_paused_due_times_are_not_lost() -> None:
    name = oid("t", T0 + 2 * TEN)
    records = numbered(
        [
            defined(),
            *ran("t", T0 + TEN),
            Skipped(task="t", at=T0 + 2 * TEN, occurrence=name, reason=SkipReason.OVERLAP),
            TaskPaused(task="t", at=T0 + 25 * timedelta(minutes=1)),
            TaskResumed(task="t", at=T0 + 55 * timedelta(minutes=1)),  # 30, 40, 50 paused
            *ran("t", T0 + 6 * TEN),
            Scheduled(
                task="t", at=T0 + 6 * TEN, occurrence=oid("t", T0 + 7 * TEN), due=T0 + 7 * TEN
            ),
        ]
    )
    assert_nothing_lost(records, until=T0 + 7 * TEN)  # 70 is still scheduled: pending
    busy = numbered(
        [
            defined(),
            Scheduled(task="t", at=T0, occurrence=oid("t", T0 + TEN), due=T0 + TEN),
            Started(task="t", at=T0 + TEN, occurrence=oid("t", T0 + TEN), attempt=1),
            Failed(
                task="t",
                at=T0 + TEN,
                occurrence=oid("t", T0 + TEN),
                attempt=1,
                error="boom",
                retry_at=T0 + 6 * TEN,
            ),
        ]
    )
    assert_nothing_lost(busy, until=T0 + 5 * TEN)  # behind a retry: not reached yet


def test_redefinition_and_removal_change_what_is_expected() -> None:
    hourly = Every(timedelta(hours=1), anchor=T0)
    records = numbered(
        [
            defined(),
            *on_time("t", 3),
            defined(trigger=hourly, at=T0 + 35 * timedelta(minutes=1)),
            *ran("t", T0 + timedelta(hours=1)),
            TaskRemoved(task="t", at=T0 + timedelta(minutes=70)),
        ]
    )
    assert_nothing_lost(records, until=T0 + timedelta(hours=5))


def test_nothing_lost_refuses_what_it_cannot_check() -> None:
    records = numbered([defined(trigger=Every(timedelta(seconds=1), anchor=T0))])
    with pytest.raises(ConfigError, match="earlier until"):
        assert_nothing_lost(records, until=T0 + timedelta(days=365))
    with pytest.raises(ConfigError, match="aware"):
        assert_nothing_lost(records, until=datetime(2026, 1, 1))
    with pytest.raises(KeyError, match="no task named 'u'"):
        assert_nothing_lost(records, until=T0, task="u")


# -- replay consistent ------------------------------------------------------------------


def test_every_rule_break_is_reported_with_the_records_involved() -> None:
    due = T0 + TEN
    records = numbered(
        [defined(), Completed(task="t", at=due, occurrence=oid("t", due), attempt=1)]
    )
    with pytest.raises(AssertionError) as failure:
        assert_replay_consistent(records)
    message = str(failure.value)
    assert "[finished-without-start]" in message
    assert "seq 2 at 2026-10-24 20:10:00Z, task 't': completed" in message


def test_a_record_that_changes_on_disk_is_caught() -> None:
    due = T0 + TEN
    name = oid("t", due)
    records = numbered(
        [
            defined(),
            Scheduled(task="t", at=T0, occurrence=name, due=due),
            Started(task="t", at=due, occurrence=name, attempt=1),
            Completed(task="t", at=due, occurrence=name, attempt=1, result=(1, 2)),
        ]
    )
    with pytest.raises(AssertionError, match=r"seq 4 changes when written to a log and read back"):
        assert_replay_consistent(records)


def test_a_live_state_that_differs_from_the_replay_is_described() -> None:
    records = numbered([defined(), *on_time("t", 2)])
    with pytest.raises(AssertionError) as failure:
        assert_replay_consistent(records, state=replay(records[:-1]))
    message = str(failure.value)
    assert "live state != replay(log)" in message
    assert "the live state has folded up to seq 6, the log ends at seq 7" in message
    assert "task 't': " in message
    with pytest.raises(ConfigError, match="State or a Scheduler"):
        assert_replay_consistent(records, state="state")  # type: ignore[arg-type]


async def test_replay_consistent_takes_a_running_scheduler(autojump_clock: MockClock) -> None:
    async with simulated_scheduler(T0) as sim:
        await sim.add("t", EVERY_TEN, HangingTarget(timedelta(minutes=15)))
        await sim.advance(timedelta(hours=1))
        assert_replay_consistent(sim, state=sim.scheduler)
        assert_exactly_once(sim)


# -- fires ------------------------------------------------------------------------------


def test_fires_lists_what_is_missing_and_unexpected_in_local_time() -> None:
    nightly = Cron("0 2 * * *", tz="Europe/Berlin")
    days = [datetime(2026, 3, day, 2, 0, tzinfo=BERLIN) for day in range(27, 32)]
    fired = [nightly.next_after(day - TEN) for day in days]
    assert fired[2] == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)  # 03:00 CEST: after the gap
    records = numbered([defined("nightly", nightly, at=days[0] - timedelta(days=1))])
    records = numbered(
        [records[0], *(event for due in fired if due is not None for event in ran("nightly", due))]
    )
    wrong = [*days[:2], datetime(2026, 3, 29, 2, 30, tzinfo=UTC), *days[3:]]
    with pytest.raises(AssertionError) as failure:
        assert_fires(records, "nightly", wrong)
    message = str(failure.value)
    assert message.startswith("task 'nightly' did not fire as expected (started): expected 5")
    assert "missing (expected, never fired): 1" in message
    assert "2026-03-29 02:30:00Z (2026-03-29 04:30:00+02:00 CEST in Europe/Berlin)" in message
    assert "unexpected (fired, not expected): 1" in message
    assert "2026-03-29 01:00:00Z (2026-03-29 03:00:00+02:00 CEST in Europe/Berlin)" in message
    marked = [line for line in message.splitlines() if line.strip().startswith(">>")]
    assert len(marked) == 1
    assert "2026-03-29 03:00:00+02:00 CEST" in marked[0]
    assert_fires(records, "nightly", days)  # 02:00 on the 29th means 03:00 CEST (fold rules)
    assert_fires(records, "nightly", fired, by="due", start=days[0], end=days[-1] + TEN)
    assert_fires(records, "nightly", fired[1:], start=days[1])


def test_fires_for_a_task_that_never_existed() -> None:
    records = numbered([defined()])
    with pytest.raises(AssertionError, match="task 'u' never fired"):
        assert_fires(records, "u", [T0])
    with pytest.raises(ConfigError, match=r"expected\[0\]"):
        assert_fires(records, "t", [datetime(2026, 1, 1)])


def test_checkers_say_what_they_read() -> None:
    with pytest.raises(ConfigError, match="EventLog, a Timeline, a Simulation or"):
        assert_exactly_once(42)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="item 1 is str"):
        assert_exactly_once([defined(), "Started"])  # type: ignore[list-item]
    assert_exactly_once(MemoryLog())
    assert_nothing_lost([], until=T0)
