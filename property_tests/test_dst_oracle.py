"""Cron across DST changes, against a slow brute-force oracle.

The oracle walks UTC minute by minute over a window, reads each instant's
local wall time with ``zoneinfo`` and decides on its own whether the instant
is a fire, straight from the rules in DESIGN.md:

* elapsed-time expressions (hour field with ``*`` or ``/``): the wall matches;
* fixed-time expressions: the wall matches and this instant is the wall's
  first pass (``wall.replace(tzinfo=tz, fold=0)`` round-trips to it), or the
  instant is the first one after a gap that swallowed a matching wall.

Whether a wall matches is not read from the expression's text: each
expression is drawn as a *plan* (what every item means) and written out from
it, and the oracle judges walls from the plan with its own, deliberately
different, reading of each form -- ranges walk the field's cycle one step at
a time, ``nW`` is "the Monday-Friday day of the month closest to n", ``LW``
"the last Monday-Friday day", ``fri#2`` "the day on which the count of
Fridays so far reaches 2", ``H`` values come from ``zlib.crc32`` as croniter
documents them. It shares no code with ``chronolog._triggers`` / ``_cron`` /
``_zones``. Windows are biased toward each zone's real offset changes, and
the special days toward the days in the window, where they can matter.
"""

from __future__ import annotations

import calendar
import zlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
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
MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
WEEKDAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
KEYS = ["backup", "report", "sync-users", "a", "task-17"]


# -- plans: what an expression means, written out as text ---------------------------------


@dataclass(frozen=True)
class Item:
    """One list item: its text, and what it means (``kind`` and ``args``)."""

    text: str
    kind: str  # range | hash | last | nearest | last_weekday | nth | last_of
    args: tuple[int, ...] = ()


@dataclass(frozen=True)
class FieldRule:
    low: int
    high: int  # of the cycle; day-of-week 0-6
    hash_index: int  # croniter's field index
    bare_hash_span: int  # how many values a bare H picks from


MINUTE_FIELD = FieldRule(0, 59, 0, 60)
HOUR_FIELD = FieldRule(0, 23, 1, 24)
DAY_FIELD = FieldRule(1, 31, 2, 28)
MONTH_FIELD = FieldRule(1, 12, 3, 12)
WEEKDAY_FIELD = FieldRule(0, 6, 4, 7)


def walk(rule: FieldRule, start: int, stop: int) -> list[int]:
    """The values from ``start`` to ``stop``, stepping forward one at a time (wrapping)."""
    if rule is WEEKDAY_FIELD:
        if start <= stop:  # numerically: 0-7 is every day, 7-7 Sunday
            return [value % 7 for value in range(start, stop + 1)]
        start, stop = start % 7, stop % 7  # 7-3 is Sunday to Wednesday
    values = [start]
    while values[-1] != stop:
        following = values[-1] + 1
        values.append(rule.low if following > rule.high else following)
    return values


def field_values(rule: FieldRule, items: tuple[Item, ...], key: str) -> set[int]:
    """The values of a minute, hour, month or day-of-week field (plain and hashed items)."""
    values: set[int] = set()
    for item in items:
        if item.kind == "range":
            start, stop, step = item.args
            values.update(walk(rule, start, stop)[::step])
        elif item.kind == "hash":
            crc = zlib.crc32(key.encode()) >> rule.hash_index
            if item.args:
                start, stop, step = item.args
                span = walk(rule, start, stop)
            else:
                step = 0
                span = list(range(rule.low, rule.low + rule.bare_hash_span))
            if step:
                values.update(span[crc % min(step, len(span)) :: step])
            else:
                values.add(span[crc % len(span)])
    return values


def weekdays_of(day: date) -> list[int]:
    """The weekday (0 = Sunday) of every day of ``day``'s month, from the 1st."""
    length = calendar.monthrange(day.year, day.month)[1]
    return [(date(day.year, day.month, d).isoweekday()) % 7 for d in range(1, length + 1)]


def day_item_matches(item: Item, day: date, key: str) -> bool:
    weekdays = weekdays_of(day)
    length = len(weekdays)
    working = [d for d in range(1, length + 1) if weekdays[d - 1] not in (0, 6)]
    if item.kind == "last":
        return day.day == length - item.args[0]
    if item.kind == "nearest":
        target = min(item.args[0], length)
        return day.day == min(working, key=lambda d: abs(d - target))
    if item.kind == "last_weekday":
        return day.day == max(working)
    if item.kind == "nth":
        weekday, nth = item.args
        so_far = weekdays[: day.day].count(weekday)
        return weekdays[day.day - 1] == weekday and so_far == nth
    if item.kind == "last_of":
        (weekday,) = item.args
        return weekdays[day.day - 1] == weekday and weekday not in weekdays[day.day :]
    return day.day in field_values(DAY_FIELD, (item,), key)


@dataclass(frozen=True)
class Plan:
    minute: tuple[Item, ...]
    hour: tuple[Item, ...]
    day: tuple[Item, ...]
    month: tuple[Item, ...]
    weekday: tuple[Item, ...]
    key: str

    @property
    def texts(self) -> list[str]:
        return [
            ",".join(item.text for item in field)
            for field in (self.minute, self.hour, self.day, self.month, self.weekday)
        ]

    @property
    def expr(self) -> str:
        return " ".join(self.texts)


class Matcher:
    """Does a wall match? Judged from the plan, with Vixie day rules."""

    def __init__(self, plan: Plan) -> None:
        _, hour, day, _, weekday = plan.texts
        key = plan.key
        self.plan = plan
        self.minutes = field_values(MINUTE_FIELD, plan.minute, key)
        self.hours = field_values(HOUR_FIELD, plan.hour, key)
        self.months = field_values(MONTH_FIELD, plan.month, key)
        self.day_star = day.startswith("*") or day == "?"
        self.weekday_star = weekday.startswith("*") or weekday == "?"
        self.day_or = not self.day_star and not self.weekday_star
        self.elapsed = "*" in hour or "/" in hour

    @cache  # noqa: B019 -- one matcher per example
    def day_ok(self, day: date) -> bool:
        key = self.plan.key
        by_date = self.day_star or any(day_item_matches(i, day, key) for i in self.plan.day)
        weekday = day.isoweekday() % 7
        by_weekday = self.weekday_star or any(
            weekday in field_values(WEEKDAY_FIELD, (i,), key)
            if i.kind in ("range", "hash")
            else day_item_matches(i, day, key)
            for i in self.plan.weekday
        )
        if self.day_or:
            return by_date or by_weekday
        return by_date and by_weekday

    def __call__(self, wall: datetime) -> bool:
        return (
            wall.minute in self.minutes
            and wall.hour in self.hours
            and wall.month in self.months
            and self.day_ok(wall.date())
        )


# -- the oracle ---------------------------------------------------------------------------


def oracle_fires(plan: Plan, tz: str, lo: datetime, hi: datetime) -> list[datetime]:
    """Every fire in ``[lo, hi]`` (UTC, whole minutes), decided minute by minute."""
    zone = ZoneInfo(tz)
    matches = Matcher(plan)

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


def chronolog_fires(plan: Plan, tz: str, lo: datetime, hi: datetime) -> list[datetime]:
    trigger = Cron(plan.expr, tz=tz).for_task(plan.key)
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


def check(plan: Plan, tz: str, lo: datetime, hi: datetime) -> None:
    expected = oracle_fires(plan, tz, lo, hi)
    actual = chronolog_fires(plan, tz, lo, hi)
    if actual != expected:
        zone = ZoneInfo(tz)

        def show(fires: list[datetime]) -> list[str]:
            return [f"{f:%Y-%m-%d %H:%M}Z={f.astimezone(zone):%d %H:%M %Z}" for f in fires]

        only_oracle = show(sorted(set(expected) - set(actual)))
        only_chronolog = show(sorted(set(actual) - set(expected)))
        raise AssertionError(
            f"{plan.expr!r} (key {plan.key!r}) in {tz}: only oracle {only_oracle}, "
            f"only chronolog {only_chronolog}"
        )


# -- strategies ----------------------------------------------------------------------------

# Hours near the usual change times (00:00-03:00, 23:00) are the interesting ones.
_HOURS = st.one_of(st.sampled_from([0, 1, 2, 3, 23]), st.integers(0, 23))


def _values(
    values: st.SearchStrategy[int], names: list[str] | None = None, first: int = 0
) -> st.SearchStrategy[Item]:
    """Single values, as numbers or (any case) names."""

    def spelled(value: int) -> st.SearchStrategy[Item]:
        texts = [str(value)]
        if names is not None and 0 <= value - first < len(names):
            texts += [names[value - first], names[value - first].upper()]
        return st.sampled_from(texts).map(lambda text: Item(text, "range", (value, value, 1)))

    return values.flatmap(spelled)


def _ranges(low: int, high: int, *, steps: bool, wrap: bool = True) -> st.SearchStrategy[Item]:
    """``a-b`` (``a > b`` wraps around) and, with ``steps``, ``a-b/s``."""
    pairs = st.tuples(st.integers(low, high), st.integers(low, high))
    if not wrap:
        pairs = pairs.map(lambda pair: (min(pair), max(pair)))
    step = st.integers(1, 4) | st.integers(1, high - low + 1) if steps else st.just(1)

    def item(pair: tuple[int, int], step: int) -> Item:
        text = f"{pair[0]}-{pair[1]}" if step == 1 else f"{pair[0]}-{pair[1]}/{step}"
        return Item(text, "range", (pair[0], pair[1], step))

    return st.builds(item, pairs, step)


def _stars(low: int, high: int) -> st.SearchStrategy[Item]:
    step = st.integers(1, high - low + 1)
    return step.map(lambda s: Item(f"*/{s}", "range", (low, high, s)))


def _hashed(low: int, high: int, *, steps: bool) -> st.SearchStrategy[Item]:
    pairs = st.tuples(st.integers(low, high), st.integers(low, high))
    choices = [
        st.just(Item("H", "hash")),
        pairs.map(lambda p: Item(f"H({p[0]}-{p[1]})", "hash", (p[0], p[1], 0))),
    ]
    if steps:
        step = st.integers(1, high - low + 1)
        choices += [
            step.map(lambda s: Item(f"H/{s}", "hash", (low, high, s))),
            st.builds(
                lambda p, s: Item(f"H({p[0]}-{p[1]})/{s}", "hash", (p[0], p[1], s)), pairs, step
            ),
        ]
    return st.one_of(choices)


def _listed(items: st.SearchStrategy[Item]) -> st.SearchStrategy[tuple[Item, ...]]:
    return st.lists(items, min_size=1, max_size=3).map(tuple)


STAR = (Item("*", "range", (0, 0, 1)),)  # day fields: never read, a star matches every day
QUESTION = (Item("?", "range", (0, 0, 1)),)
EVERY_MONTH = (Item("*", "range", (1, 12, 1)),)
EVERY_HOUR = (Item("*", "range", (0, 23, 1)),)

minute_fields = _listed(
    st.one_of(
        _values(st.integers(0, 59)),
        _values(st.sampled_from([0, 15, 30, 45])),
        _ranges(0, 59, steps=True),
        _stars(0, 59),
        _hashed(0, 59, steps=True),
    )
)
fixed_hour_fields = _listed(
    st.one_of(
        _values(_HOURS),
        _ranges(0, 4, steps=False),
        _ranges(0, 23, steps=False),
        st.integers(20, 23).map(lambda start: Item(f"{start}-3", "range", (start, 3, 1))),
        _hashed(0, 23, steps=False),
    )
)
elapsed_hour_fields = st.one_of(
    st.just(EVERY_HOUR),
    _listed(
        st.one_of(_stars(0, 23), _ranges(0, 23, steps=True), _hashed(0, 23, steps=True))
    ).filter(lambda items: any("/" in item.text for item in items)),
)
month_fields = st.one_of(
    st.just(EVERY_MONTH),
    st.just(EVERY_MONTH),
    _listed(st.one_of(_values(st.integers(1, 12), MONTHS, first=1), _ranges(1, 12, steps=True))),
    _listed(_hashed(1, 12, steps=False)),
)


#: Days of the month where the rules turn: the first days, the last ones.
_EDGE_DAYS = st.sampled_from([1, 2, 3, 15, 27, 28, 29, 30, 31])


def day_fields(near: date) -> st.SearchStrategy[tuple[Item, ...]]:
    """Day-of-month fields, their special days aimed at ``near``, the days around it
    and the edges of months."""
    length = calendar.monthrange(near.year, near.month)[1]
    days = st.one_of(
        st.integers(max(1, near.day - 3), min(31, near.day + 3)), _EDGE_DAYS, st.integers(1, 31)
    )
    before_last = st.one_of(
        st.integers(0, 6).map(lambda n: min(30, max(0, length - near.day + n - 3))),
        st.sampled_from([0, 1, 2, 3, 27, 28, 29, 30]),
        st.integers(0, 30),
    )
    specials = st.one_of(
        st.just(Item("L", "last", (0,))),
        before_last.map(lambda n: Item(f"L-{n}", "last", (n,))),
        days.map(lambda d: Item(f"{d}W", "nearest", (d,))),
        days.map(lambda d: Item(f"W{d}", "nearest", (d,))),
        st.just(Item("LW", "last_weekday")),
    )
    plain = st.one_of(_values(days), _ranges(1, 31, steps=True), _hashed(1, 28, steps=False))
    return st.one_of(
        st.just(STAR),
        st.just(QUESTION),
        _listed(plain),
        _listed(specials),
        _listed(specials),
    )


def weekday_fields(near: date) -> st.SearchStrategy[tuple[Item, ...]]:
    """Day-of-week fields; the nth and last weekdays aimed at ``near``'s weekday."""
    weekday = near.isoweekday() % 7
    nth = (near.day - 1) // 7 + 1
    weekdays = st.just(weekday) | st.integers(0, 6)
    spelled = weekdays.flatmap(
        lambda w: st.sampled_from([str(w), WEEKDAYS[w], *(["7"] if w == 0 else [])]).map(
            lambda text: (text, w)
        )
    )
    specials = st.one_of(
        st.builds(
            lambda s, n: Item(f"{s[0]}#{n}", "nth", (s[1], n)),
            spelled,
            st.just(nth) | st.integers(1, 5),
        ),
        spelled.map(lambda s: Item(f"{s[0]}L", "last_of", (s[1],))),
        spelled.map(lambda s: Item(f"L{s[0]}", "last_of", (s[1],))),
    )
    plain = st.one_of(
        _values(st.integers(0, 6), names=WEEKDAYS),
        _ranges(0, 7, steps=True),
        _hashed(0, 6, steps=False),
    )
    return st.one_of(
        st.just(STAR),
        st.just(STAR),
        st.just(QUESTION),
        _listed(plain),
        _listed(specials),
        _listed(specials),
    )


@st.composite
def plans(draw: st.DrawFn, near: date) -> Plan:
    """A five-field expression that can fire, with the forms real crontabs use."""
    while True:
        plan = Plan(
            minute=draw(minute_fields),
            hour=draw(st.one_of(fixed_hour_fields, elapsed_hour_fields)),
            day=draw(day_fields(near)),
            month=draw(month_fields),
            weekday=draw(weekday_fields(near)),
            key=draw(st.sampled_from(KEYS)),
        )
        try:
            Cron(plan.expr).for_task(plan.key)
        except ValueError:
            continue  # e.g. only the 30th of February
        return plan


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


# -- the properties ------------------------------------------------------------------------


@given(st.data())
def test_cron_matches_the_brute_force_oracle(data: st.DataObject) -> None:
    tz = data.draw(st.sampled_from(ZONES), label="tz")
    lo, hi = data.draw(windows(tz), label="window")
    near = (lo + WINDOW / 2).astimezone(ZoneInfo(tz)).date()
    plan = data.draw(plans(near), label="plan")
    check(plan, tz, lo, hi)


NOON = (Item("0", "range", (0, 0, 1)),), (Item("12", "range", (12, 12, 1)),)


@given(st.data())
def test_day_rules_over_whole_years(data: st.DataObject) -> None:
    # The special days are rare in a two-day window: here each plan's days are
    # compared with the oracle's over a whole year, at noon UTC.
    year = data.draw(st.integers(1990, 2040), label="year")
    near = date(year, data.draw(st.integers(1, 12)), data.draw(st.integers(1, 28)))
    drawn = data.draw(plans(near), label="plan")
    plan = Plan(*NOON, drawn.day, drawn.month, drawn.weekday, drawn.key)
    matches = Matcher(plan)
    first, last = datetime(year, 1, 1, tzinfo=UTC), datetime(year, 12, 31, 12, tzinfo=UTC)
    days = (first + timedelta(days=n, hours=12) for n in range((last - first).days + 1))
    expected = [noon for noon in days if matches(noon.replace(tzinfo=None))]
    assert chronolog_fires(plan, "UTC", first, last) == expected


def _plan(expr: str, key: str = "backup") -> Plan:
    """A plan for a fixed expression of the examples below (plain and special items)."""
    minute, hour, day, month, weekday = expr.split()

    def plain(text: str, rule: FieldRule) -> tuple[Item, ...]:
        if text == "*":
            return (Item("*", "range", (rule.low, rule.high, 1)),)
        items = []
        for part in text.split(","):
            if part == "H":
                items.append(Item(part, "hash"))
            elif part.startswith("H("):
                start, stop = part[2:-1].split("-")
                items.append(Item(part, "hash", (int(start), int(stop), 0)))
            elif "-" in part:
                start, stop = part.split("-")
                items.append(Item(part, "range", (int(start), int(stop), 1)))
            elif "/" in part:
                items.append(Item(part, "range", (rule.low, rule.high, int(part[2:]))))
            else:
                items.append(Item(part, "range", (int(part), int(part), 1)))
        return tuple(items)

    def special(text: str) -> tuple[Item, ...]:
        if text.endswith("L"):
            return (Item(text, "last_of", (int(text[:-1]) % 7,)),)
        weekday, nth = text.split("#")
        return (Item(text, "nth", (int(weekday) % 7, int(nth))),)

    days = (Item("L", "last", (0,)),) if day == "L" else plain(day, DAY_FIELD)
    weekdays = (
        special(weekday) if weekday[-1] == "L" or "#" in weekday else plain(weekday, WEEKDAY_FIELD)
    )
    return Plan(
        plain(minute, MINUTE_FIELD),
        plain(hour, HOUR_FIELD),
        days,
        plain(month, MONTH_FIELD),
        weekdays,
        key,
    )


@pytest.mark.parametrize("tz", [zone for zone in ZONES if zone != "UTC"])
@pytest.mark.parametrize(
    "expr",
    [
        "30 2 * * *",
        "0,15,30,45 0-3 * * *",
        "*/15 * * * *",
        "30 */2 * * *",
        "0 0 * * *",
        "30 23-3 * * *",
        "30 2 * * 0L",
        "30 1 * * 0#1",
        "0 2 L * *",
        "H H(0-3) * * *",
        "H */1 * * *",
    ],
)
def test_every_zone_around_its_changes(tz: str, expr: str) -> None:
    # Deterministic coverage of each zone's changes in one DST-rich year.
    year = 2011 if tz == "Pacific/Apia" else 2016
    for change in offset_changes(tz, year)[:2]:
        check(_plan(expr), tz, change - WINDOW / 2, change + WINDOW / 2)
