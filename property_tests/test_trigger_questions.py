"""The questions triggers answer about instants agree with ``next_after``.

``fires_at(t)`` and ``previous_before(t)`` are written once, on the trigger;
these properties hold them to ``next_after``, the trigger's primary answer,
for every kind of trigger, time zone and bound that the strategies draw.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from hypothesis import given
from hypothesis import strategies as st

from chronolog.testing import instants, triggers

if TYPE_CHECKING:
    from chronolog import Trigger

START = datetime(2025, 1, 1, tzinfo=UTC)
END = datetime(2028, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
TRIGGERS = triggers(kinds=("cron", "every", "at", "manual", "file_watch"), start=START, end=END)
INSTANTS = instants(start=START, end=END, microseconds=True)


@given(trigger=TRIGGERS, t=INSTANTS)
def test_the_next_fire_is_a_fire_and_its_previous_one_is_the_one_before(
    trigger: Trigger, t: datetime
) -> None:
    fire = trigger.next_after(t)
    if fire is None:
        return
    assert trigger.fires_at(fire)
    assert (
        not trigger.fires_at(fire - MICROSECOND)
        or trigger.next_after(fire - 2 * MICROSECOND) == fire - MICROSECOND
    )
    before = trigger.previous_before(fire)
    if before is not None:
        assert before < fire
        assert trigger.fires_at(before)
        assert trigger.next_after(before) == fire  # nothing fires between them


@given(trigger=TRIGGERS, t=INSTANTS)
def test_nothing_fires_between_the_previous_fire_and_now(trigger: Trigger, t: datetime) -> None:
    before = trigger.previous_before(t)
    if before is None:
        # Nothing fired before t: the first fire (if any) is at or after t.
        first = trigger.next_after(START - timedelta(days=400))
        assert first is None or first >= t
        return
    assert before < t
    assert trigger.fires_at(before)
    following = trigger.next_after(before)
    assert following is None or following >= t


@given(trigger=TRIGGERS, t=INSTANTS, offset=st.integers(-3, 3))
def test_fires_at_says_what_next_after_does(trigger: Trigger, t: datetime, offset: int) -> None:
    probe = t + offset * MICROSECOND
    assert trigger.fires_at(probe) == (trigger.next_after(probe - MICROSECOND) == probe)


@given(
    trigger=TRIGGERS,
    first=INSTANTS,
    span=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=3)),
    limit=st.none() | st.integers(0, 50),
)
def test_count_fires_counts_what_stepping_through_next_after_finds(
    trigger: Trigger, first: datetime, span: timedelta, limit: int | None
) -> None:
    """How many fires an outage held -- the size of a ``Skipped`` range -- is
    counted arithmetically for ``Every``; it must agree with walking the fires."""
    last = first + span
    walked: list[datetime] = []
    fire = trigger.next_after(first - MICROSECOND)
    while fire is not None and fire <= last and (limit is None or len(walked) < limit):
        walked.append(fire)
        if len(walked) > 5000:
            return  # too dense to walk in a property; the arithmetic is what is tested
        fire = trigger.next_after(fire)
    count, counted = trigger.count_fires(first, last, limit=limit)
    assert count == len(walked)
    assert counted == (walked[-1] if walked else None)
