"""Cron across DST changes, against a slow brute-force oracle.

The oracle walks UTC minute by minute over a window, reads each instant's
local wall time with ``zoneinfo`` and decides on its own whether the instant
is a fire, straight from the rules in DESIGN.md:

* elapsed-time expressions (hour field with ``*`` or ``/``): the wall matches;
* fixed-time expressions: the wall matches and this instant is the wall's
  first pass (``wall.replace(tzinfo=tz, fold=0)`` round-trips to it), or the
  instant is the first one after a gap that swallowed a matching wall.

Field matching uses croniter's expansion of the expression, not ours, so the
oracle shares no code with ``chronolog._triggers`` / ``_cron`` / ``_zones``.
Windows are biased toward each zone's real offset changes.
"""

from datetime import UTC, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter
from hypothesis import given, note
from hypothesis import strategies as st

from chronolog import Cron

ZONES = [
    "America/New_York",
    "Europe/Berlin",
    "Europe/London",
    "Australia/Sydney",
    "Australia/Lord_Howe",
    "America/Santiago",
    "America/Sao_Paulo",
    "Asia/Tehran",
    "Pacific/Chatham",
    "Africa/Casablanca",
    "Europe/Dublin",
    "Asia/Kolkata",
    "Pacific/Apia",
    "UTC",
    "America/St_Johns",
    "Asia/Jerusalem",
    "America/Havana",
    "Antarctica/Troll",
]

WINDOW = timedelta(days=2)
MINUTE = timedelta(minutes=1)


# -- the oracle ---------------------------------------------------------------


class Matcher:
    """Does a wall match? Built from croniter's field expansion, with Vixie day rules."""

    def __init__(self, expr: str) -> None:
        fields = expr.split()
        expanded = croniter(expr).expanded

        def values(index: int) -> set[int] | None:
            field = expanded[index]
            if field == ["*"]:
                return None
            return {int(v) % 7 if index == 4 else int(v) for v in field}

        self.minutes, self.hours, self.days, self.months, self.weekdays = (
            values(i) for i in range(5)
        )
        self.day_or = not fields[2].startswith("*") and not fields[4].startswith("*")
        self.elapsed = "*" in fields[1] or "/" in fields[1]

    def __call__(self, wall: datetime) -> bool:
        def ok(allowed: set[int] | None, value: int) -> bool:
            return allowed is None or value in allowed

        if not (
            ok(self.minutes, wall.minute)
            and ok(self.hours, wall.hour)
            and ok(self.months, wall.month)
        ):
            return False
        day_ok = ok(self.days, wall.day)
        weekday_ok = ok(self.weekdays, wall.isoweekday() % 7)
        return (day_ok or weekday_ok) if self.day_or else (day_ok and weekday_ok)


def oracle_fires(expr: str, tz: str, lo: datetime, hi: datetime) -> list[datetime]:
    """Every fire in ``[lo, hi]`` (UTC, whole minutes), decided minute by minute."""
    zone = ZoneInfo(tz)
    matches = Matcher(expr)

    def wall_of(instant: datetime) -> datetime:
        return instant.astimezone(zone).replace(tzinfo=None)

    fires = []
    previous_wall = wall_of(lo - MINUTE)
    instant = lo
    while instant <= hi:
        wall = wall_of(instant)
        if matches.elapsed:
            fire = matches(wall)
        else:
            first_pass = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
            fire = matches(wall) and first_pass == instant
            if not fire and wall - previous_wall > MINUTE:  # a gap ends here
                skipped = previous_wall + MINUTE
                while skipped < wall and not fire:
                    fire = matches(skipped)
                    skipped += MINUTE
        if fire:
            fires.append(instant)
        previous_wall = wall
        instant += MINUTE
    return fires


def chronolog_fires(expr: str, tz: str, lo: datetime, hi: datetime) -> list[datetime]:
    trigger = Cron(expr, tz=tz)
    fires = []
    fire = trigger.next_after(lo - timedelta(microseconds=1))
    while fire is not None and fire <= hi:
        fires.append(fire)
        fire = trigger.next_after(fire)
    return fires


@cache
def offset_changes(tz: str, year: int) -> tuple[datetime, ...]:
    """The instants in ``year`` at which the zone's UTC offset changes (to the minute)."""
    zone = ZoneInfo(tz)
    hour = timedelta(hours=1)
    changes = []
    instant = datetime(year, 1, 1, tzinfo=UTC)
    end = datetime(year + 1, 1, 1, tzinfo=UTC)
    previous = instant.astimezone(zone).utcoffset()
    while instant < end:
        later = instant + hour
        offset = later.astimezone(zone).utcoffset()
        if offset != previous:
            change = instant + MINUTE
            while change.astimezone(zone).utcoffset() == previous:
                change += MINUTE
            changes.append(change)
            previous = offset
        instant = later
    return tuple(changes)


def check(expr: str, tz: str, lo: datetime, hi: datetime) -> None:
    expected = oracle_fires(expr, tz, lo, hi)
    actual = chronolog_fires(expr, tz, lo, hi)
    if actual != expected:
        zone = ZoneInfo(tz)

        def show(fires: list[datetime]) -> list[str]:
            return [f"{f:%Y-%m-%d %H:%M}Z={f.astimezone(zone):%d %H:%M %Z}" for f in fires]

        note(f"only oracle:    {show(sorted(set(expected) - set(actual)))}")
        note(f"only chronolog: {show(sorted(set(actual) - set(expected)))}")
    assert actual == expected


# -- strategies ---------------------------------------------------------------

# Hours near the usual change times (00:00-03:00, 23:00) are the interesting ones.
_HOURS = st.one_of(st.sampled_from([0, 1, 2, 3, 23]), st.integers(0, 23))


def _list_of(values: st.SearchStrategy[int]) -> st.SearchStrategy[str]:
    return st.lists(values, min_size=1, max_size=4, unique=True).map(
        lambda items: ",".join(str(v) for v in sorted(items))
    )


def _range_in(low: int, high: int) -> st.SearchStrategy[str]:
    """``a-b`` with ``a < b`` (croniter reads ``a-a`` as the whole field)."""
    return st.tuples(st.integers(low, high - 1), st.integers(1, high - low)).map(
        lambda pair: f"{pair[0]}-{min(high, pair[0] + pair[1])}"
    )


minute_fields = st.one_of(
    st.integers(0, 59).map(str),
    st.sampled_from(["0", "30", "0,30", "15,45", "*/15", "*/20", "5/10", "*", "50-59"]),
    _list_of(st.integers(0, 59)),
    _range_in(0, 59),
    st.tuples(_range_in(0, 59), st.integers(2, 30)).map(lambda p: f"{p[0]}/{p[1]}"),
)
fixed_hour_fields = st.one_of(_HOURS.map(str), _list_of(_HOURS), _range_in(0, 4), _range_in(0, 23))
elapsed_hour_fields = st.sampled_from(["*", "*/2", "*/3", "1-5/2", "0-23/4", "*/1", "22/1"])
day_of_month_fields = st.one_of(
    st.just("*"), st.just("*"), _list_of(st.integers(1, 31)), _range_in(1, 31), st.just("*/2")
)
day_of_week_fields = st.one_of(
    st.just("*"),
    st.just("*"),
    _list_of(st.integers(0, 6)),
    _range_in(0, 6),
    st.sampled_from(["sun", "mon-fri", "sat,sun"]),
)
month_fields = st.one_of(st.just("*"), st.just("*"), _list_of(st.integers(1, 12)))


@st.composite
def expressions(draw: st.DrawFn) -> str:
    minute = draw(minute_fields)
    hour = draw(st.one_of(fixed_hour_fields, elapsed_hour_fields))
    days = draw(day_of_month_fields)
    return f"{minute} {hour} {days} {draw(month_fields)} {draw(day_of_week_fields)}"


@st.composite
def windows(draw: st.DrawFn, tz: str) -> tuple[datetime, datetime]:
    """A ``WINDOW``-long UTC window in 1990-2040, usually around an offset change."""
    year = draw(st.integers(1990, 2040))
    changes = offset_changes(tz, year)
    if changes and draw(st.integers(0, 4)):
        center = draw(st.sampled_from(changes))
        shift = timedelta(minutes=draw(st.integers(-24 * 60, 24 * 60)))
        lo = center + shift - WINDOW / 2
    else:
        lo = datetime(year, 1, 1, tzinfo=UTC) + timedelta(minutes=draw(st.integers(0, 525_000)))
    return lo, lo + WINDOW


# -- the properties -----------------------------------------------------------


@given(st.data())
def test_cron_matches_the_brute_force_oracle(data: st.DataObject) -> None:
    tz = data.draw(st.sampled_from(ZONES), label="tz")
    expr = data.draw(expressions(), label="expr")
    lo, hi = data.draw(windows(tz), label="window")
    check(expr, tz, lo, hi)


@pytest.mark.parametrize("tz", [zone for zone in ZONES if zone != "UTC"])
@pytest.mark.parametrize(
    "expr", ["30 2 * * *", "0,15,30,45 0-3 * * *", "*/15 * * * *", "30 */2 * * *", "0 0 * * *"]
)
def test_every_zone_around_its_changes(tz: str, expr: str) -> None:
    # Deterministic coverage of each zone's changes in one DST-rich year.
    year = 2011 if tz == "Pacific/Apia" else 2016
    for change in offset_changes(tz, year)[:2]:
        check(expr, tz, change - WINDOW / 2, change + WINDOW / 2)
