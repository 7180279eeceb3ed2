"""Cron expressions: our own parser, and a matcher over naive wall-clock times.

This module knows nothing about time zones. It answers two questions about
*walls* -- naive local wall-clock times -- and leaves the mapping from walls
to real instants (daylight-saving gaps and overlaps) to ``_triggers.Cron``:

* does this wall match the expression? (``CronSchedule.matches``)
* which is the first matching wall in ``[lo, hi)``? (``CronSchedule.next_wall``),
  with walls counted as whole seconds since 1970-01-01 00:00 (wall time, as
  if it were UTC). Integers keep the search exact and fast.

The grammar is the classic five fields ``minute hour day-of-month month
day-of-week`` with an optional sixth field for **seconds, written last** (as
croniter does: the first five fields always mean what they mean in a
crontab). A field is a comma-separated list of items; an item is ``*``, a
number, a name (``jan``..``dec`` in the month field, ``sun``..``sat`` in the
day-of-week field, any case), a range ``a-b``, or any of those with a step
``/s`` (``*/15``, ``1-30/2``, ``5/10`` meaning ``5-59/10``). Day-of-week 7
is Sunday, like 0. The nicknames ``@hourly @daily @midnight @weekly
@monthly @yearly @annually`` stand for their five-field expansions.

What real crontabs use beyond that, read as croniter and Quartz read it:

* **wrap-around ranges**: ``a-b`` with ``a > b`` runs from ``a`` to the end
  of the field's cycle and on from its start to ``b`` (``22-2`` hours,
  ``nov-feb``, ``fri-mon``); a step keeps counting across the wrap, as in
  Quartz. Sunday at the end of a range is 7, so ``mon-sun`` is every day
  and ``sat-sun`` the weekend; ``a-a`` is the one value ``a`` (``sun-sun``
  is Sunday).
* day of month: ``L`` (last day), ``L-n`` (``n`` days before it), ``nW``
  (the weekday nearest to day ``n``, never leaving the month; ``Wn`` too),
  ``LW`` (the last weekday), ``a-L``; day of week: ``5L``/``friL`` and
  croniter's ``L5`` (the last Friday of the month), ``fri#2``/``5#2`` (the
  second Friday); ``?`` alone in either day field means ``*``.
* **hashed values** (Jenkins): ``H``, ``H(a-b)``, ``H/s``, ``H(a-b)/s`` take
  a value that depends only on a *key* (the task name), so many tasks
  declared ``H * * * *`` spread over the hour, the same way on every machine
  and every replay. The value is the one croniter picks for
  ``hash_id=key``, except that a bare ``H`` in the day-of-month field picks
  from 1-28 (as Jenkins does), so it fires in every month.

Day fields follow Vixie cron: when both day-of-month and day-of-week are
restricted (neither is written starting with ``*`` or ``?``) a day matches
when *either* matches; otherwise both must.

Everything that cannot work is rejected with an ``InvalidTrigger`` that
names the field, the offending text and what would be right -- including
expressions that can never fire, such as ``0 0 30 2 *``.
"""

from __future__ import annotations

import calendar
import re
import zlib
from datetime import date, datetime
from functools import lru_cache
from typing import Final

from ._errors import InvalidTrigger, closest_match

__all__ = [
    "NICKNAMES",
    "CronSchedule",
    "CronSyntax",
    "cron_syntax",
    "parse_cron",
    "wall_datetime",
    "wall_seconds",
]

#: ``@name`` -> the five-field expression it stands for.
NICKNAMES: Final = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

_MONTH_NAMES: Final = {
    name.lower(): number for number, name in enumerate(calendar.month_abbr) if name
}
_WEEKDAY_NAMES: Final = {
    "sun": 0,
    "mon": 1,
    "tue": 2,
    "wed": 3,
    "thu": 4,
    "fri": 5,
    "sat": 6,
}
_WEEKDAY_LONG: Final = (
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
)
_MONTH_LONG: Final = list(calendar.month_name)
# The longest each month can be (February in a leap year).
_MAX_MONTH_DAYS: Final = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)

_DAY: Final = 86_400
_EPOCH_ORDINAL: Final = date(1970, 1, 1).toordinal()
#: Wall seconds of 0001-01-01 00:00 and of 10000-01-01 00:00: the walls a
#: ``datetime`` can hold are ``[_MIN_WALL, _END_WALL)``.
_MIN_WALL: Final = (1 - _EPOCH_ORDINAL) * _DAY
_END_WALL: Final = (date(9999, 12, 31).toordinal() + 1 - _EPOCH_ORDINAL) * _DAY

_LAST_OFFSET: Final = re.compile(r"l-(\d+)")
_NEAREST: Final = re.compile(r"(\d+)w|w(\d+)")
_LAST_OF: Final = re.compile(r"([0-9a-z]+)l|l([0-9a-z]+)")
_NTH: Final = re.compile(r"([0-9a-z]+)#(\d*)")
_HASHED: Final = re.compile(r"([hr])(?:\(([0-9a-z]*)-([0-9a-z]*)\))?(?:/(\d+))?")
_TO_LAST: Final = re.compile(r"[^-]+-l(?:/.*)?")

_SUPPORTED = (
    "use *, numbers, names, ranges such as 1-5 or 22-2, steps such as */15 or 1-30/2, "
    "H for a hashed value, and comma-separated lists of those"
)
_SYMBOLS: Final = {
    "L": (
        "'L' (last) belongs in the day-of-month field ('L', 'L-3', 'LW') or the "
        "day-of-week field ('5L' or 'friL', the last Friday of the month)"
    ),
    "W": "'W' (nearest weekday) belongs in the day-of-month field, as in '15W' or 'LW'",
    "#": "'#' (nth weekday of the month) belongs in the day-of-week field, as in 'fri#2'",
    "?": "'?' (any day) belongs in the day-of-month or day-of-week field, where it means *",
}


class _Field:
    """How one cron field is written: its name, bounds, names and hashing range."""

    __slots__ = (
        "explicit_high",
        "hash_index",
        "hash_low",
        "hash_span",
        "high",
        "low",
        "name",
        "names",
        "position",
    )

    def __init__(
        self,
        name: str,
        position: str,
        low: int,
        high: int,
        hash_index: int,
        *,
        explicit_high: int | None = None,
        hash_span: int | None = None,
        names: dict[str, int] | None = None,
    ) -> None:
        self.name = name
        self.position = position
        self.low = low
        self.high = high  # upper end of ``*`` and of ``a/s``
        self.explicit_high = high if explicit_high is None else explicit_high
        self.names = names or {}
        #: croniter's field index: a hashed value uses ``crc32(key) >> hash_index``.
        self.hash_index = hash_index
        self.hash_low = low
        #: How many values a bare ``H`` picks from, starting at ``low``.
        self.hash_span = self.span if hash_span is None else hash_span

    @property
    def span(self) -> int:
        """How many values the field's cycle has."""
        return self.high - self.low + 1

    def value_at(self, first: int, step: int) -> int:
        """The value ``step`` places after ``first`` along the field's cycle."""
        return self.low + (first - self.low + step) % self.span

    def walk(self, start: int, stop: int) -> int:
        """How many values the range ``start-stop`` covers, walking forward (wrapping)."""
        if self.explicit_high != self.high and stop == self.low and start > stop:
            stop = self.explicit_high  # Sunday at the end of a range is 7: 'mon-sun'
        if start <= stop:
            return stop - start + 1
        return (stop - start) % self.span + 1


_MINUTE: Final = _Field("minute", "1st", 0, 59, 0)
_HOUR: Final = _Field("hour", "2nd", 0, 23, 1)
# A bare H picks from 1-28, as Jenkins does: every month has those days.
_DOM: Final = _Field("day-of-month", "3rd", 1, 31, 2, hash_span=28)
_MONTH: Final = _Field("month", "4th", 1, 12, 3, names=_MONTH_NAMES)
# 7 may be written for Sunday, but ``*`` and ``a/s`` stop at 6 (Saturday), so
# ``1/2`` is Monday, Wednesday, Friday -- not Sunday as well.
_DOW: Final = _Field("day-of-week", "5th", 0, 6, 4, explicit_high=7, names=_WEEKDAY_NAMES)
_SECOND: Final = _Field("second", "6th", 0, 59, 5)
_FIELDS: Final = (_MINUTE, _HOUR, _DOM, _MONTH, _DOW, _SECOND)

_FIELD_ORDER = "minute hour day-of-month month day-of-week"


# -- parsed items ---------------------------------------------------------------------


class _Values:
    """Plain values: a number, a range, a step, ``*``."""

    __slots__ = ("text", "values")

    def __init__(self, text: str, values: frozenset[int]) -> None:
        self.text = text
        self.values = values


class _Hashed:
    """``H``, ``H(a-b)``, ``H/s`` or ``H(a-b)/s``: values chosen by a key's hash."""

    __slots__ = ("count", "first", "step", "text")

    def __init__(self, text: str, first: int, count: int, step: int | None) -> None:
        self.text = text
        self.first = first  # the range's first value
        self.count = count  # how many values the range walks
        self.step = step

    def offset(self, field: _Field, key: str | None) -> int | None:
        if key is None:
            return None
        crc = zlib.crc32(key.encode("utf-8", "surrogatepass"))
        return (crc >> field.hash_index) % min(self.step or self.count, self.count)

    def values(self, field: _Field, key: str | None) -> frozenset[int]:
        """The values for ``key``; for None, every value some key could give."""
        offset = self.offset(field, key)
        if offset is None:
            return frozenset(field.value_at(self.first, k) for k in range(self.count))
        if self.step is None:
            return frozenset({field.value_at(self.first, offset)})
        steps = range(offset, self.count, self.step)
        return frozenset(field.value_at(self.first, k) for k in steps)

    def resolved(self, field: _Field, key: str) -> str:
        """The item written without ``H``, for ``key`` (it parses to the same values)."""
        offset = self.offset(field, key)
        assert offset is not None
        start = field.value_at(self.first, offset)
        if self.step is None:
            return str(start)
        # Keep the step even when it reaches one value: an hour field with a
        # step follows elapsed time across DST changes, and so must its reading.
        return f"{start}-{field.value_at(self.first, self.count - 1)}/{self.step}"


class _LastDay:
    """``L`` or ``L-n``: the last day of the month, or ``n`` days before it."""

    __slots__ = ("offset", "text")

    def __init__(self, text: str, offset: int) -> None:
        self.text = text
        self.offset = offset


class _NearestWeekday:
    """``nW`` (or ``Wn``), and ``LW`` when ``day`` is None."""

    __slots__ = ("day", "text")

    def __init__(self, text: str, day: int | None) -> None:
        self.text = text
        self.day = day


class _NthWeekday:
    """``fri#2``: the ``nth`` such weekday of the month; ``nth`` 0 is ``friL``, the last."""

    __slots__ = ("nth", "text", "weekday")

    def __init__(self, text: str, weekday: int, nth: int) -> None:
        self.text = text
        self.weekday = weekday
        self.nth = nth


_Item = _Values | _Hashed | _LastDay | _NearestWeekday | _NthWeekday


# -- the schedule ---------------------------------------------------------------------


@lru_cache(maxsize=4096)  # shared: hashed minutes pick among 60 tables, not one per task
def _next_table(values: frozenset[int], size: int) -> tuple[int, ...]:
    """``table[i]`` = the smallest value >= i in ``values``, or -1; one extra slot."""
    table = [-1] * (size + 1)
    upcoming = -1
    for i in range(size - 1, -1, -1):
        if i in values:
            upcoming = i
        table[i] = upcoming
    return tuple(table)


def _nearest_weekday(day: int, length: int, first_weekday: int) -> int:
    """The weekday (Monday-Friday) nearest to ``day``, in a month of ``length`` days.

    ``first_weekday`` is the weekday of the 1st (0 = Sunday). A day past the
    end of the month counts as its last day (as croniter reads '31W' in
    April); the answer never leaves the month: a Saturday the 1st gives
    Monday the 3rd, a Sunday the last gives the Friday before.
    """
    day = min(day, length)
    weekday = (first_weekday + day - 1) % 7
    if weekday == 6:
        return 3 if day == 1 else day - 1
    if weekday == 0:
        return day - 2 if day == length else day + 1
    return day


@lru_cache(maxsize=4096)
def _shared(values: frozenset[int]) -> frozenset[int]:
    """One frozenset per distinct set of values, however many schedules hold it."""
    return values


@lru_cache(maxsize=1024)
def _month_table(months: frozenset[int]) -> tuple[bool, ...]:
    return tuple(month in months for month in range(13))


@lru_cache(maxsize=1024)
def _day_masks(
    days: frozenset[int],
    last_days: frozenset[int],
    nearest_weekdays: frozenset[int],
    last_weekday: bool,
    weekdays: frozenset[int],
    nth_weekdays: frozenset[tuple[int, int]],
    day_or: bool,
) -> tuple[int, ...]:
    """Which days match, for each length of month and weekday of its 1st (see CronSchedule)."""
    masks = [0] * (32 * 7)
    for length in range(28, 32):
        for first_weekday in range(7):
            by_date = 0
            for day in days:
                if day <= length:
                    by_date |= 1 << day
            for offset in last_days:
                if offset < length:
                    by_date |= 1 << (length - offset)
            for day in nearest_weekdays:
                by_date |= 1 << _nearest_weekday(day, length, first_weekday)
            if last_weekday:
                by_date |= 1 << _nearest_weekday(length, length, first_weekday)
            by_weekday = 0
            for day in range(1, length + 1):
                weekday = (first_weekday + day - 1) % 7
                nth = (day - 1) // 7 + 1
                if (
                    weekday in weekdays
                    or (weekday, nth) in nth_weekdays
                    or (day + 7 > length and (weekday, 0) in nth_weekdays)
                ):
                    by_weekday |= 1 << day
            mask = by_date | by_weekday if day_or else by_date & by_weekday
            masks[length * 7 + first_weekday] = mask
    return tuple(masks)


class CronSchedule:
    """A parsed cron expression with concrete values: which walls match, and the next one.

    Build one with ``parse_cron`` (or ``CronSyntax.schedule`` for a hashed
    expression and its key). Values are immutable; the lookup tables are
    computed once.
    """

    __slots__ = (
        "_day_masks",
        "_first_minute",
        "_first_second",
        "_last_time_of_day",
        "_month_ok",
        "_next_hour",
        "_next_minute",
        "_next_second",
        "day_or",
        "days",
        "expr",
        "follows_elapsed_time",
        "hours",
        "key",
        "last_days",
        "last_weekday",
        "minutes",
        "months",
        "nearest_weekdays",
        "nth_weekdays",
        "resolved",
        "seconds",
        "weekdays",
    )

    expr: str
    key: str | None
    resolved: str
    seconds: frozenset[int]
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    last_days: frozenset[int]
    nearest_weekdays: frozenset[int]
    last_weekday: bool
    nth_weekdays: frozenset[tuple[int, int]]
    day_or: bool
    follows_elapsed_time: bool

    def __init__(
        self,
        expr: str,
        *,
        seconds: frozenset[int],
        minutes: frozenset[int],
        hours: frozenset[int],
        days: frozenset[int],
        months: frozenset[int],
        weekdays: frozenset[int],
        day_or: bool,
        follows_elapsed_time: bool,
        last_days: frozenset[int] = frozenset(),
        nearest_weekdays: frozenset[int] = frozenset(),
        last_weekday: bool = False,
        nth_weekdays: frozenset[tuple[int, int]] = frozenset(),
        key: str | None = None,
        resolved: str | None = None,
    ) -> None:
        self.expr = expr
        #: The key hashed values (``H``) were picked with, or None.
        self.key = key
        #: The expression with every ``H`` written as the values it picked.
        self.resolved = expr if resolved is None else resolved
        self.seconds = seconds
        self.minutes = minutes
        self.hours = hours
        #: Plain days of the month, and what ``L``/``L-n`` (days before the
        #: last), ``nW`` and ``LW`` add.
        self.days = days
        self.last_days = last_days
        self.nearest_weekdays = nearest_weekdays
        self.last_weekday = last_weekday
        self.months = months
        #: Plain weekdays (0 = Sunday), and ``(weekday, n)`` for ``fri#n``
        #: (``n`` = 0 for ``friL``, the last one of the month).
        self.weekdays = weekdays
        self.nth_weekdays = nth_weekdays
        #: Vixie rule: both day fields restricted -> a day matches if either does.
        self.day_or = day_or
        #: The hour field is written with ``*`` or a step: the expression follows
        #: real elapsed time across DST changes instead of firing each wall once.
        self.follows_elapsed_time = follows_elapsed_time
        self._next_hour = _next_table(hours, 24)
        self._next_minute = _next_table(minutes, 60)
        self._next_second = _next_table(seconds, 60)
        self._first_minute = min(minutes)
        self._first_second = min(seconds)
        self._last_time_of_day = max(hours) * 3600 + max(minutes) * 60 + max(seconds)
        self._month_ok = _month_table(months)
        # _day_masks[length * 7 + weekday of the 1st]: bit d is set when day d
        # of such a month matches. Shared by every schedule with the same day
        # rules (a thousand tasks 'H * * * *' have one).
        self._day_masks = _day_masks(
            days, last_days, nearest_weekdays, last_weekday, weekdays, nth_weekdays, day_or
        )

    def __repr__(self) -> str:
        if self.key is not None:
            return f"CronSchedule({self.expr!r}, key={self.key!r})"
        return f"CronSchedule({self.expr!r})"

    def can_fire_in(self, month: int) -> bool:
        """Whether some day of ``month`` (in some year) matches."""
        if not self._month_ok[month]:
            return False
        lengths = (28, 29) if month == 2 else (_MAX_MONTH_DAYS[month],)
        return any(self._day_masks[length * 7 + w] for length in lengths for w in range(7))

    def day_matches(self, day: date) -> bool:
        """Whether ``day`` (its month, day of month and weekday) matches."""
        if not self._month_ok[day.month]:
            return False
        length = calendar.monthrange(day.year, day.month)[1]
        first_weekday = (day.isoweekday() - day.day + 1) % 7
        return bool(self._day_masks[length * 7 + first_weekday] >> day.day & 1)

    def matches(self, wall: datetime) -> bool:
        """Whether the wall-clock time ``wall`` matches (its tzinfo, if any, is ignored)."""
        return (
            wall.second in self.seconds
            and wall.minute in self.minutes
            and wall.hour in self.hours
            and wall.microsecond == 0
            and self.day_matches(wall)
        )

    def next_wall(self, lo: int, hi: int) -> int | None:
        """The smallest matching wall ``w`` with ``lo <= w < hi``, or None.

        Walls are whole seconds since 1970-01-01 00:00 wall time.
        """
        lo = max(lo, _MIN_WALL)
        hi = min(hi, _END_WALL)
        if lo >= hi:
            return None
        day, second_of_day = divmod(lo, _DAY)
        if second_of_day > self._last_time_of_day:
            day, second_of_day = day + 1, 0  # nothing later today: start tomorrow
        last_day = (hi - 1) // _DAY
        while True:
            found = self._next_day(day, last_day)
            if found is None:
                return None
            if found != day:
                day, second_of_day = found, 0
            time_of_day = self._next_time_of_day(second_of_day)
            if time_of_day is not None:
                wall = day * _DAY + time_of_day
                return wall if wall < hi else None
            day, second_of_day = day + 1, 0
            if day > last_day:
                return None

    def _next_day(self, day: int, last_day: int) -> int | None:
        """The first matching day >= ``day`` (days since 1970-01-01), if <= ``last_day``."""
        if day > last_day:
            return None
        current = date.fromordinal(day + _EPOCH_ORDINAL)
        year, month, day_of_month = current.year, current.month, current.day
        month_ok = self._month_ok
        masks = self._day_masks
        while day <= last_day:
            if month == 2:
                leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
                length = 29 if leap else 28
            else:
                length = _MAX_MONTH_DAYS[month]
            if month_ok[month]:
                # 1970-01-01 (day 0) was a Thursday (4); 0 = Sunday.
                first_weekday = (day - day_of_month + 5) % 7
                later = masks[length * 7 + first_weekday] >> day_of_month
                if later:
                    return day + (later & -later).bit_length() - 1
            day += length - day_of_month + 1
            day_of_month = 1
            if month == 12:
                year, month = year + 1, 1
            else:
                month += 1
        return None

    def _next_time_of_day(self, second_of_day: int) -> int | None:
        """The first matching second of the day >= ``second_of_day``, or None."""
        hour, rest = divmod(second_of_day, 3600)
        minute, second = divmod(rest, 60)
        next_hour = self._next_hour[hour]
        if next_hour < 0:
            return None
        if next_hour == hour:
            next_minute = self._next_minute[minute]
            if next_minute == minute:
                next_second = self._next_second[second]
                if next_second >= 0:
                    return hour * 3600 + minute * 60 + next_second
                next_minute = self._next_minute[minute + 1]
            if next_minute >= 0:
                return hour * 3600 + next_minute * 60 + self._first_second
            next_hour = self._next_hour[hour + 1]
            if next_hour < 0:
                return None
        return next_hour * 3600 + self._first_minute * 60 + self._first_second


def wall_seconds(wall: datetime) -> int:
    """A naive wall-clock time as whole seconds since 1970-01-01 00:00 (microseconds dropped)."""
    return (
        (wall.toordinal() - _EPOCH_ORDINAL) * _DAY
        + wall.hour * 3600
        + wall.minute * 60
        + wall.second
    )


def wall_datetime(seconds: int) -> datetime:
    """The naive wall-clock time ``seconds`` after 1970-01-01 00:00."""
    day, rest = divmod(seconds, _DAY)
    hour, rest = divmod(rest, 3600)
    minute, second = divmod(rest, 60)
    d = date.fromordinal(day + _EPOCH_ORDINAL)
    return datetime(d.year, d.month, d.day, hour, minute, second)


# -- the syntax: fields parsed, hashed values not yet picked ---------------------------


class CronSyntax:
    """A cron expression as written: valid, but with ``H`` values not yet picked.

    ``schedule(key)`` picks them (cached) and returns the ``CronSchedule``.
    Get one with ``cron_syntax``.
    """

    __slots__ = ("_fields", "_plain", "_texts", "day_or", "expr", "follows_elapsed_time", "hashed")

    def __init__(self, expr: str, fields: tuple[tuple[_Item, ...], ...], texts: list[str]) -> None:
        self.expr = expr
        self._fields = fields
        self._texts = texts
        self._plain: CronSchedule | None = None
        #: Some field has an ``H`` item: the values depend on a key.
        self.hashed = any(isinstance(item, _Hashed) for items in fields for item in items)
        self.day_or = not _is_star(texts[2]) and not _is_star(texts[4])
        hour = texts[1]
        self.follows_elapsed_time = "*" in hour or "/" in hour

    def __repr__(self) -> str:
        return f"CronSyntax({self.expr!r})"

    def schedule(self, key: str | None = None) -> CronSchedule:
        """The schedule for ``key`` (the task name when it has ``H`` values).

        Raises ``InvalidTrigger`` when the expression is hashed and ``key`` is
        None, or when the values picked for ``key`` can never fire.
        """
        if not self.hashed:
            if self._plain is None:
                self._plain = self.build(None)
            return self._plain
        if key is None:
            raise InvalidTrigger(
                f"cron expression {self.expr!r} has hashed values (H), which are picked "
                f"from a key; give one, e.g. Cron({self.expr!r}, key='backup'), or add the "
                f"trigger to a scheduler, which uses the task name"
            )
        return _schedule(self.expr, key)

    def build(self, key: str | None, *, check: bool = True) -> CronSchedule:
        """The schedule for ``key``; with ``key`` None, every value some key could pick."""
        resolved_fields: list[str] = []
        value_sets: list[frozenset[int]] = []
        last_days: set[int] = set()
        nearest: set[int] = set()
        last_weekday = False
        nth: set[tuple[int, int]] = set()
        for field, items in zip(_FIELDS, self._fields, strict=True):
            values: set[int] = set()
            words: list[str] = []
            for item in items:
                words.append(item.text)
                if isinstance(item, _Values):
                    values |= item.values
                elif isinstance(item, _Hashed):
                    values |= item.values(field, key)
                    if key is not None:
                        words[-1] = item.resolved(field, key)
                elif isinstance(item, _LastDay):
                    last_days.add(item.offset)
                elif isinstance(item, _NearestWeekday):
                    if item.day is None:
                        last_weekday = True
                    else:
                        nearest.add(item.day)
                else:
                    nth.add((item.weekday, item.nth))
            if field is _DOW:
                values = {value % 7 for value in values}
            value_sets.append(_shared(frozenset(values)))
            resolved_fields.append(",".join(words))
        seconds, minutes, hours, days, months, weekdays = (
            value_sets[5],
            value_sets[0],
            value_sets[1],
            value_sets[2],
            value_sets[3],
            value_sets[4],
        )
        if len(self.expr.split()) == 5:
            resolved_fields.pop()  # the seconds field was not written
        resolved = " ".join(resolved_fields) if self.hashed and key is not None else self.expr
        schedule = CronSchedule(
            self.expr,
            seconds=seconds,
            minutes=minutes,
            hours=hours,
            days=days,
            months=months,
            weekdays=weekdays,
            day_or=self.day_or,
            follows_elapsed_time=self.follows_elapsed_time,
            last_days=frozenset(last_days),
            nearest_weekdays=frozenset(nearest),
            last_weekday=last_weekday,
            nth_weekdays=frozenset(nth),
            key=key if self.hashed else None,
            resolved=resolved,
        )
        if check:
            _check_can_fire(self, schedule, key, resolved_fields[2])
        return schedule


def _is_star(text: str) -> bool:
    return text.startswith("*") or text == "?"


@lru_cache(maxsize=1024)
def _syntax_cached(expr: str) -> CronSyntax:
    syntax = _parse(expr)
    # Validate now: an expression that can never fire, whatever the key, is refused.
    schedule = syntax.build(None)
    if not syntax.hashed:
        syntax._plain = schedule
    return syntax


@lru_cache(maxsize=16_384)
def _schedule(expr: str, key: str | None) -> CronSchedule:
    return _syntax_cached(expr).build(key)


def cron_syntax(expr: object) -> CronSyntax:
    """Parse and validate a cron expression, or raise ``InvalidTrigger`` saying what is wrong."""
    if not isinstance(expr, str):
        raise InvalidTrigger(
            f"a cron expression must be a string such as '0 3 * * *', "
            f"got {type(expr).__name__} {expr!r}"
        )
    return _syntax_cached(expr)


def parse_cron(expr: object, key: str | None = None) -> CronSchedule:
    """Parse a cron expression, its ``H`` values picked with ``key``.

    Raises ``InvalidTrigger`` saying what is wrong.
    """
    return cron_syntax(expr).schedule(key)


# -- parsing ----------------------------------------------------------------------------


def _parse(expr: str) -> CronSyntax:
    text = expr.strip()
    if not text:
        raise InvalidTrigger(
            f"cron expression {expr!r} is empty; write 5 fields ({_FIELD_ORDER}), "
            f"e.g. '0 3 * * *' for 03:00 every day, or a nickname such as '@daily'"
        )
    if text.startswith("@"):
        text = _expand_nickname(text, expr)
    parts = text.split()
    if len(parts) not in (5, 6):
        shell = (
            "; in a shell, quote the expression so that * is not expanded into file names"
            if len(parts) > 6
            else ""
        )
        raise InvalidTrigger(
            f"cron expression {expr!r} has {len(parts)} field{'s' if len(parts) != 1 else ''}; "
            f"write 5 ({_FIELD_ORDER}) or 6 (the same 5, then second), "
            f"e.g. '30 2 * * *' or '30 2 * * * 15'{shell}"
        )
    if len(parts) == 5:
        parts.append("0")
    fields = tuple(
        _parse_field(part, field, expr) for part, field in zip(parts, _FIELDS, strict=True)
    )
    return CronSyntax(expr, fields, parts)


def _expand_nickname(text: str, expr: str) -> str:
    lowered = text.lower()
    if lowered in NICKNAMES:
        return NICKNAMES[lowered]
    known = ", ".join(NICKNAMES)
    if lowered == "@reboot":
        raise InvalidTrigger(
            f"cron nickname {expr!r} has no fire time in chronolog; "
            f"use Manual() and run_now, or one of {known}"
        )
    hint = closest_match(lowered, NICKNAMES)
    did_you_mean = f"did you mean {hint!r}? " if hint else ""
    every = (
        "; for a fixed interval use Every(timedelta(...)) instead of a cron expression"
        if lowered.startswith("@every")
        else ""
    )
    raise InvalidTrigger(
        f"unknown cron nickname {expr!r}; {did_you_mean}known nicknames: {known}{every}"
    )


def _parse_field(text: str, field: _Field, expr: str) -> tuple[_Item, ...]:
    if "?" in text:
        if field is not _DOM and field is not _DOW:
            _wrong_field("?", text, field, expr)
        if text != "?":
            raise InvalidTrigger(
                f"cron {field.name} field {text!r} uses '?' with other values in {expr!r}; "
                f"'?' means any day (the same as *) and stands alone in its field"
            )
        return (_Values("?", frozenset(range(field.low, field.high + 1))),)
    items: list[_Item] = []
    for item in text.split(","):
        if not item:
            raise InvalidTrigger(
                f"cron {field.name} field {text!r} has an empty list item in {expr!r}; "
                f"separate values with single commas, as in '1,15,30'"
            )
        items.append(_parse_item(item, text, field, expr))
    return tuple(items)


def _wrong_field(symbol: str, text: str, field: _Field, expr: str) -> None:
    raise InvalidTrigger(
        f"cron {field.name} field {text!r} uses {symbol!r} in {expr!r}; {_SYMBOLS[symbol]}"
    )


def _parse_item(item: str, text: str, field: _Field, expr: str) -> _Item:
    lowered = item.lower()
    hashed = _HASHED.fullmatch(lowered)
    if hashed is not None:
        return _parse_hashed(item, hashed, text, field, expr)
    if lowered[:1] in ("h", "r") and lowered[1:2] in ("", "(", "/"):
        raise InvalidTrigger(
            f"cron {field.name} field {text!r} has {item!r} in {expr!r}; a hashed value is "
            f"written H, H(a-b), H/s or H(a-b)/s, as in 'H(0-29)/10'"
        )
    if field is _DOM:
        special = _parse_day_of_month_special(item, lowered, text, expr)
        if special is not None:
            return special
    if field is _DOW:
        special = _parse_day_of_week_special(item, lowered, text, expr)
        if special is not None:
            return special
    base, slash, step_text = item.partition("/")
    step = _parse_step(step_text, text, field, expr) if slash else 1
    if base == "*":
        return _Values(item, frozenset(range(field.low, field.high + 1, step)))
    if "-" in base:
        start_text, _, stop_text = base.partition("-")
        if not start_text or not stop_text:
            raise InvalidTrigger(
                f"cron {field.name} field {text!r} has an incomplete range {base!r} in "
                f"{expr!r}; a range has a start and an end, as in '1-5' "
                f"(negative numbers are not allowed)"
            )
        start = _parse_value(start_text, text, field, expr)
        if field is _DOM and stop_text.lower() == "l":
            stop = field.high  # 'a-L': from day a to the last day of the month
        else:
            stop = _parse_value(stop_text, text, field, expr)
        steps = range(0, field.walk(start, stop), step)
        return _Values(item, frozenset(field.value_at(start, k) for k in steps))
    start = _parse_value(base, text, field, expr)
    if slash:
        # "a/s" means "from a to the end of the field, every s".
        return _Values(item, frozenset(range(start, max(field.high, start) + 1, step)))
    return _Values(item, frozenset({start}))


def _parse_step(step_text: str, text: str, field: _Field, expr: str) -> int:
    if not (step_text.isascii() and step_text.isdigit()) or int(step_text) == 0:
        raise InvalidTrigger(
            f"cron {field.name} field {text!r} has step {step_text!r} in {expr!r}; "
            f"a step is a whole number of at least 1, as in '*/15' or '0-30/5'"
        )
    step = int(step_text)
    if step > field.span:
        raise InvalidTrigger(
            f"cron {field.name} field {text!r} has step {step} in {expr!r}, larger than "
            f"the field's range {field.low}-{field.high}; it could only ever match the "
            f"start value, so write that value instead"
        )
    return step


def _parse_hashed(item: str, match: re.Match[str], text: str, field: _Field, expr: str) -> _Hashed:
    letter, start_text, stop_text, step_text = match.groups()
    if letter == "r":
        raise InvalidTrigger(
            f"cron {field.name} field {text!r} uses {item!r} in {expr!r}: croniter's R picks "
            f"a new random value each time the expression is read, so a restart or a replay "
            f"of the log would move the task; use H, which picks a stable value from the "
            f"task name"
        )
    step = _parse_step(step_text, text, field, expr) if step_text is not None else None
    if start_text is None:
        if step is None:
            return _Hashed(item, field.hash_low, field.hash_span, None)
        return _Hashed(item, field.low, field.span, step)
    if not start_text or not stop_text:
        raise InvalidTrigger(
            f"cron {field.name} field {text!r} has {item!r} in {expr!r}; a hashed value is "
            f"written H, H(a-b), H/s or H(a-b)/s, as in 'H(0-29)/10'"
        )
    start = _parse_value(start_text, text, field, expr)
    stop = _parse_value(stop_text, text, field, expr)
    return _Hashed(item, start, field.walk(start, stop), step)


def _no_step(item: str, text: str, field: _Field, expr: str) -> None:
    if "/" in item:
        raise InvalidTrigger(
            f"cron {field.name} field {text!r} has {item!r} in {expr!r}; a step applies to "
            f"*, numbers and ranges, not to 'L', 'W' or '#'"
        )


def _parse_day_of_month_special(item: str, lowered: str, text: str, expr: str) -> _Item | None:
    if "l" not in lowered and "w" not in lowered:
        if "#" in lowered:
            _wrong_field("#", text, _DOM, expr)
        return None
    if _TO_LAST.fullmatch(lowered):
        return None  # 'a-L' (or 'a-L/s'): a range, parsed as such
    _no_step(item, text, _DOM, expr)
    if lowered == "l":
        return _LastDay(item, 0)
    if lowered == "lw":
        return _NearestWeekday(item, None)
    last = _LAST_OFFSET.fullmatch(lowered)
    if last is not None:
        offset = int(last.group(1))
        if offset > 30:
            raise InvalidTrigger(
                f"cron day-of-month field {text!r} has {item!r} in {expr!r}, which is before "
                f"the 1st in every month; L-n counts back from the last day, with n from 0 "
                f"to 30 ('L-1' is the day before the last)"
            )
        return _LastDay(item, offset)
    nearest = _NEAREST.fullmatch(lowered)
    if nearest is not None:
        day = int(nearest.group(1) or nearest.group(2))
        if not 1 <= day <= 31:
            raise InvalidTrigger(
                f"cron day-of-month field {text!r} has {item!r} in {expr!r}: day {day} is out "
                f"of range 1-31; 'nW' is the weekday nearest to day n, as in '15W' or '1W'"
            )
        return _NearestWeekday(item, day)
    if lowered.endswith("w"):
        raise InvalidTrigger(
            f"cron day-of-month field {text!r} has {item!r} in {expr!r}; W takes a single "
            f"day, as in '15W' or 'LW' (for several, list them: '1W,15W')"
        )
    if _LAST_OF.fullmatch(lowered):
        raise InvalidTrigger(
            f"cron day-of-month field {text!r} has {item!r} in {expr!r}; the last weekday "
            f"of a kind, such as '5L' (the last Friday), goes in the day-of-week field "
            f"(5th), and 'L' alone or 'L-3' in this one"
        )
    return None


def _parse_day_of_week_special(item: str, lowered: str, text: str, expr: str) -> _Item | None:
    if "#" in lowered:
        _no_step(item, text, _DOW, expr)
        nth = _NTH.fullmatch(lowered)
        if nth is None or "-" in lowered:
            raise InvalidTrigger(
                f"cron day-of-week field {text!r} has {item!r} in {expr!r}; '#' takes one "
                f"weekday and a number, as in 'fri#2' or '5#2' (for several, list them: "
                f"'mon#2,tue#2')"
            )
        weekday_text, count_text = nth.groups()
        weekday = _parse_value(weekday_text, text, _DOW, expr) % 7
        if not count_text.isdigit() or not 1 <= int(count_text) <= 5:
            raise InvalidTrigger(
                f"cron day-of-week field {text!r} has {item!r} in {expr!r}; a month has at "
                f"most 5 of each weekday, so write #1 to #5 ('{weekday_text}#5' fires only in "
                f"months with five {_WEEKDAY_LONG[weekday]}s), or '{weekday_text}L' for the last"
            )
        return _NthWeekday(item, weekday, int(count_text))
    if "l" not in lowered or lowered in _WEEKDAY_NAMES:
        if "w" in lowered and _NEAREST.fullmatch(lowered):
            _wrong_field("W", text, _DOW, expr)
        return None
    if lowered == "l":
        raise InvalidTrigger(
            f"cron day-of-week field {text!r} uses a lone 'L' in {expr!r}, which readers "
            f"disagree on (Quartz reads it as Saturday, croniter refuses it); write 'sat' "
            f"for every Saturday, or '5L' for the last Friday of the month"
        )
    if lowered == "lw" or _LAST_OFFSET.fullmatch(lowered):
        _wrong_field("L", text, _DOW, expr)
    last = _LAST_OF.fullmatch(lowered)
    if last is None or "/" in lowered or "-" in lowered:
        _no_step(item, text, _DOW, expr)
        raise InvalidTrigger(
            f"cron day-of-week field {text!r} has {item!r} in {expr!r}; the last weekday of "
            f"a kind in the month is written '5L' or 'friL' (or croniter's 'L5'), with one "
            f"weekday"
        )
    weekday_text = last.group(1) or last.group(2)
    weekday = _parse_value(weekday_text, text, _DOW, expr) % 7
    return _NthWeekday(item, weekday, 0)


def _parse_value(word: str, text: str, field: _Field, expr: str) -> int:
    if word.isascii() and word.isdigit():
        value = int(word)
        if not field.low <= value <= field.explicit_high:
            where = f"field {text!r}" if word == text else f"field {text!r}: {value}"
            raise InvalidTrigger(
                f"cron {field.name} {where} is out of range "
                f"{field.low}-{field.explicit_high} in {expr!r}"
            )
        return value
    lowered = word.lower()
    if lowered in field.names:
        return field.names[lowered]
    for symbol in ("#", "?"):
        if symbol in word:
            _wrong_field(symbol, text, field, expr)
    if field is not _DOM and field is not _DOW and re.fullmatch(r"l|l-\d+|\d*lw?|\d+w", lowered):
        _wrong_field("W" if "w" in lowered else "L", text, field, expr)
    if field.names and word.isalpha():
        hint = closest_match(lowered, field.names)
        did_you_mean = f"did you mean {hint!r}? " if hint else ""
        raise InvalidTrigger(
            f"unknown {field.name} name {word!r} in cron {field.name} field {text!r} of "
            f"{expr!r}; {did_you_mean}use {', '.join(field.names)} "
            f"or numbers {field.low}-{field.explicit_high}"
        )
    if word.isalpha():
        owner = next((f for f in _FIELDS if lowered in f.names), None)
        moved = (
            f"; {word!r} is a {owner.name} name, which goes in the {owner.position} field "
            f"({_FIELD_ORDER})"
            if owner is not None
            else ""
        )
        raise InvalidTrigger(
            f"cron {field.name} field {text!r} has {word!r} in {expr!r}, which is not a "
            f"number {field.low}-{field.explicit_high}{moved}"
        )
    raise InvalidTrigger(
        f"cron {field.name} field {text!r} has {word!r} in {expr!r}, which is not a number "
        f"{field.low}-{field.explicit_high}; {_SUPPORTED}"
    )


# -- can it ever fire? ------------------------------------------------------------------


def _check_can_fire(
    syntax: CronSyntax, schedule: CronSchedule, key: str | None, day_text: str
) -> None:
    # Every month starts on every weekday over the years, in leap and common
    # years alike, so the expression can fire exactly when some (month,
    # length, weekday of the 1st) has a matching day.
    if any(schedule.can_fire_in(month) for month in schedule.months):
        return
    expr = syntax.expr
    month_words = _and_list([_MONTH_LONG[m] for m in sorted(schedule.months)], "or")
    hashed = (
        f" (with key {key!r}: {schedule.resolved!r})" if key is not None and syntax.hashed else ""
    )
    plain = not (
        schedule.last_days
        or schedule.nearest_weekdays
        or schedule.last_weekday
        or schedule.nth_weekdays
        or syntax.hashed
    )
    if plain:
        listed_days = sorted(schedule.days)
        day_words = (
            f"day-of-month {listed_days[0]}"
            if len(listed_days) == 1
            else f"days-of-month {_and_list([str(d) for d in listed_days], 'and')}"
        )
        verb = "occurs" if len(listed_days) == 1 else "occur"
        raise InvalidTrigger(
            f"cron expression {expr!r} can never fire: {day_words} never {verb} in "
            f"{month_words}; pick a day that exists in those months, or add a month where "
            f"it does"
        )
    raise InvalidTrigger(
        f"cron expression {expr!r}{hashed} can never fire: day-of-month {day_text!r} "
        f"matches no day in {month_words}; pick days that exist in those months, or add a "
        f"month where they do"
    )


def _and_list(words: list[str], conjunction: str) -> str:
    if len(words) == 1:
        return words[0]
    return f"{', '.join(words[:-1])} {conjunction} {words[-1]}"
