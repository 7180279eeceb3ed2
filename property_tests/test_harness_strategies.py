"""chronolog.testing's strategies draw what they promise, and real schedules keep their promises.

The last property is the harness used the way a user would: any task
definition, on simulated time, through a crash, runs exactly once per due
time and loses nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chronolog import (
    At,
    CatchUp,
    Cron,
    Every,
    Failed,
    Overlap,
    Policy,
    check_invariants,
)
from chronolog.testing import (
    Crash,
    HangingTarget,
    assert_exactly_once,
    assert_nothing_lost,
    assert_replay_consistent,
    simulate,
)
from chronolog.testing.strategies import (
    TaskDefinition,
    cron_expressions,
    event_logs,
    instants,
    policies,
    task_definitions,
    time_zones,
    triggers,
)

if TYPE_CHECKING:
    from chronolog import Event, Scheduler, Trigger


@cache
def offset_changes(zone: str) -> list[datetime]:
    """Days (UTC midnight) between 2020 and 2036 on which ``zone``'s offset changed."""
    tz = ZoneInfo(zone)
    day = datetime(2020, 1, 1, tzinfo=UTC)
    changes = []
    previous = day.astimezone(tz).utcoffset()
    while day < datetime(2036, 1, 1, tzinfo=UTC):
        day += timedelta(days=1)
        offset = day.astimezone(tz).utcoffset()
        if offset != previous:
            changes.append(day)
        previous = offset
    return changes


@given(cron_expressions(seconds=None))
def test_every_cron_expression_parses_and_fires(expr: str) -> None:
    cron = Cron(expr, tz="Europe/Berlin")
    assert cron.next_after(datetime(2026, 1, 1, tzinfo=UTC)) is not None


@given(cron_expressions(seconds=True, nicknames=False), cron_expressions(seconds=False))
def test_field_counts_follow_the_option(six: str, five: str) -> None:
    assert len(six.split()) == 6
    assert five.startswith("@") or len(five.split()) == 5


@given(cron_expressions(follows_elapsed_time=True), cron_expressions(follows_elapsed_time=False))
def test_elapsed_and_fixed_time_expressions_are_what_was_asked(elapsed: str, fixed: str) -> None:
    assert Cron(elapsed).follows_elapsed_time
    assert not Cron(fixed).follows_elapsed_time


@given(cron_expressions(seconds=None, max_fires_per_hour=4), st.sampled_from([1, 7, 24]))
def test_sparse_expressions_fire_at_most_so_often(expr: str, day: int) -> None:
    cron = Cron(expr)
    hour = datetime(2026, 1, day, 5, tzinfo=UTC)
    fires, cursor = 0, hour - timedelta(microseconds=1)
    while (fire := cron.next_after(cursor)) is not None and fire < hour + timedelta(hours=1):
        fires, cursor = fires + 1, fire
    assert fires <= 4


@given(triggers(kinds=("every",), max_fires_per_hour=4))
def test_sparse_every_triggers_keep_their_distance(trigger: Trigger) -> None:
    assert isinstance(trigger, Every)
    assert trigger.interval >= timedelta(minutes=15)


@given(time_zones(dst=True), time_zones(dst=False), time_zones(all_zones=True))
def test_time_zones_with_and_without_dst(with_dst: str, without: str, any_zone: str) -> None:
    assert offset_changes(with_dst)
    assert not offset_changes(without)
    Cron("@daily", tz=any_zone)


@settings(max_examples=50, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_instants_stay_in_bounds_and_gather_around_offset_changes(data: st.DataObject) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    end = datetime(2027, 1, 1, tzinfo=UTC)
    drawn = data.draw(
        st.lists(instants(zone="Europe/Berlin", start=start, end=end), min_size=40, max_size=40)
    )
    assert all(start <= when <= end and when.tzinfo is UTC for when in drawn)
    changes = [datetime(2026, 3, 29, 1, tzinfo=UTC), datetime(2026, 10, 25, 1, tzinfo=UTC)]
    near = [w for w in drawn if any(abs(w - change) <= timedelta(hours=4) for change in changes)]
    # Half the draws aim at a change: 40 draws with none near one is all but impossible.
    assert near


@given(instants(zone=time_zones(), microseconds=True))
def test_instants_in_any_zone_are_aware_utc(when: datetime) -> None:
    assert when.tzinfo is UTC


@given(triggers(kinds=("cron", "every", "at", "manual", "file_watch")))
def test_triggers_are_valid_and_bounded(trigger: Trigger) -> None:
    start = getattr(trigger, "start", None)
    end = getattr(trigger, "end", None)
    if start is not None and end is not None:
        assert start <= end
    if isinstance(trigger, Cron | Every | At):
        fire = trigger.next_after(datetime(2025, 1, 1, tzinfo=UTC))
        assert fire is None or (end is None or fire <= end)


@given(policies(overlaps=[Overlap.QUEUE], catch_ups=[CatchUp.ALL], max_attempts=2, timeouts=False))
def test_policies_honour_their_options(policy: Policy) -> None:
    assert policy.overlap is Overlap.QUEUE
    assert policy.catch_up is CatchUp.ALL
    assert 1 <= policy.retry.max_attempts <= 2
    assert policy.timeout is None
    assert policy.jitter is None
    assert policy.max_runs is None
    assert not policy.paused


@settings(max_examples=60)
@given(event_logs())
def test_event_logs_pass_every_checker(log: list[Event]) -> None:
    assert check_invariants(log) == []
    assert_exactly_once(log)
    assert_replay_consistent(log)


@settings(max_examples=30)
@given(event_logs(crashes=False, task_names=["only"]))
def test_event_logs_without_crashes(log: list[Event]) -> None:
    assert {record.task for record in log} == {"only"}
    assert not any(isinstance(r, Failed) and r.error == "interrupted" for r in log)


START = datetime(2026, 3, 27, 20, 0, tzinfo=UTC)
#: Near spring-forward in Europe (the 29th) and in Lord Howe's autumn (5 April).
CHEAP_TRIGGERS = triggers(
    kinds=("cron", "every"),
    zones=st.sampled_from(["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "UTC"]),
    start=START - timedelta(days=1),
    end=START + timedelta(days=3),
    max_fires_per_hour=6,
)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    definition=task_definitions(triggers=CHEAP_TRIGGERS, policies=policies(max_attempts=3)),
    crash_after=st.integers(1, 70),
    down_for=st.integers(0, 240),
    run_minutes=st.integers(0, 20),
)
def test_any_task_runs_exactly_once_through_a_crash_and_loses_nothing(
    definition: TaskDefinition, crash_after: int, down_for: int, run_minutes: int
) -> None:
    async def setup(scheduler: Scheduler) -> None:
        await definition.add_to(scheduler, HangingTarget(timedelta(minutes=run_minutes)))

    until = START + timedelta(days=2)
    timeline = simulate(
        setup,
        start=START,
        until=until,
        faults=[
            Crash(
                at=START + timedelta(minutes=crash_after * 20),
                restart_after=timedelta(minutes=down_for),
            )
        ],
    )
    assert_exactly_once(timeline)
    assert_replay_consistent(timeline)
    # Runs still going at the end (or behind a retry) are not lost; leave the
    # last hours for them to settle.
    assert_nothing_lost(timeline, until=until - timedelta(hours=6))
