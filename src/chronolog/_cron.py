"""Cron schedules: concrete values, and a matcher over naive wall-clock times.

This module knows nothing about time zones. It answers two questions about
*walls* -- naive local wall-clock times -- and leaves the mapping from walls
to real instants (daylight-saving gaps and overlaps) to ``_triggers.Cron``:

* does this wall match the expression? (``CronSchedule.matches``)
* which is the first matching wall in ``[lo, hi)``? (``CronSchedule.next_wall``),
  with walls counted as whole seconds since 1970-01-01 00:00 (wall time, as
  if it were UTC). Integers keep the search exact and fast.

The grammar and its parser live in `_cron_syntax`; this module turns parsed
items into concrete values (a ``CronSyntax`` picks hashed values for a key)
and searches walls. Everything that cannot work is rejected with an
``InvalidTrigger`` that names the field, the offending text and what would be
right -- including expressions that can never fire, such as ``0 0 30 2 *``.
"""

from __future__ import annotations

import calendar
from datetime import date, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Final

from ._cron_syntax import (
    DAY_OF_WEEK,
    FIELDS,
    NICKNAMES,
    Hashed,
    LastDay,
    NearestWeekday,
    Values,
    parse_fields,
)
from ._errors import InvalidTrigger

if TYPE_CHECKING:
    from ._cron_syntax import Item

__all__ = [
    "NICKNAMES",
    "CronSchedule",
    "CronSyntax",
    "cron_syntax",
    "parse_cron",
    "wall_datetime",
    "wall_seconds",
]

_MONTH_LONG: Final = list(calendar.month_name)
# The longest each month can be (February in a leap year).
_MAX_MONTH_DAYS: Final = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)

_DAY: Final = 86_400
_EPOCH_ORDINAL: Final = date(1970, 1, 1).toordinal()
#: Wall seconds of 0001-01-01 00:00 and of 10000-01-01 00:00: the walls a
#: ``datetime`` can hold are ``[_MIN_WALL, _END_WALL)``.
_MIN_WALL: Final = (1 - _EPOCH_ORDINAL) * _DAY
_END_WALL: Final = (date(9999, 12, 31).toordinal() + 1 - _EPOCH_ORDINAL) * _DAY


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

    def __init__(self, expr: str, fields: tuple[tuple[Item, ...], ...], texts: list[str]) -> None:
        self.expr = expr
        self._fields = fields
        self._texts = texts
        self._plain: CronSchedule | None = None
        #: Some field has an ``H`` item: the values depend on a key.
        self.hashed = any(isinstance(item, Hashed) for items in fields for item in items)
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
        for field, items in zip(FIELDS, self._fields, strict=True):
            values: set[int] = set()
            words: list[str] = []
            for item in items:
                words.append(item.text)
                if isinstance(item, Values):
                    values |= item.values
                elif isinstance(item, Hashed):
                    values |= item.values(field, key)
                    if key is not None:
                        words[-1] = item.resolved(field, key)
                elif isinstance(item, LastDay):
                    last_days.add(item.offset)
                elif isinstance(item, NearestWeekday):
                    if item.day is None:
                        last_weekday = True
                    else:
                        nearest.add(item.day)
                else:
                    nth.add((item.weekday, item.nth))
            if field is DAY_OF_WEEK:
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
    syntax = CronSyntax(expr, *parse_fields(expr))
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
