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

Day fields follow Vixie cron: when both day-of-month and day-of-week are
restricted (neither is written starting with ``*``) a day matches when
*either* matches; otherwise both must.

Everything that cannot work is rejected with an ``InvalidTrigger`` that
names the field, the offending text and what would be right -- including
expressions that can never fire, such as ``0 0 30 2 *``.
"""

from __future__ import annotations

import calendar
import re
from datetime import date, datetime
from functools import lru_cache
from typing import Final

from ._errors import InvalidTrigger, closest_match

__all__ = [
    "NICKNAMES",
    "CronSchedule",
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
_MONTH_LONG: Final = list(calendar.month_name)
# The longest each month can be (February in a leap year).
_MAX_MONTH_DAYS: Final = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)

_DAY: Final = 86_400
_EPOCH_ORDINAL: Final = date(1970, 1, 1).toordinal()
#: Wall seconds of 0001-01-01 00:00 and of 10000-01-01 00:00: the walls a
#: ``datetime`` can hold are ``[_MIN_WALL, _END_WALL)``.
_MIN_WALL: Final = (1 - _EPOCH_ORDINAL) * _DAY
_END_WALL: Final = (date(9999, 12, 31).toordinal() + 1 - _EPOCH_ORDINAL) * _DAY

# Quartz-style extensions: ?, L (last), W (nearest weekday), # (nth weekday).
_QUARTZ: Final = re.compile(r"\?|l|lw|l-\d+|\d+[lw]|w\d+|[0-9a-z]+#\d+")

_SUPPORTED = (
    "use *, numbers, names, ranges such as 1-5, steps such as */15 or 1-30/2, "
    "and comma-separated lists of those"
)


class _Field:
    """How one cron field is written: its name, bounds and names."""

    __slots__ = ("explicit_high", "high", "low", "name", "names", "position")

    def __init__(
        self,
        name: str,
        position: str,
        low: int,
        high: int,
        *,
        explicit_high: int | None = None,
        names: dict[str, int] | None = None,
    ) -> None:
        self.name = name
        self.position = position
        self.low = low
        self.high = high  # upper end of ``*`` and of ``a/s``
        self.explicit_high = high if explicit_high is None else explicit_high
        self.names = names or {}

    @property
    def span(self) -> int:
        return self.high - self.low + 1


_MINUTE: Final = _Field("minute", "1st", 0, 59)
_HOUR: Final = _Field("hour", "2nd", 0, 23)
_DOM: Final = _Field("day-of-month", "3rd", 1, 31)
_MONTH: Final = _Field("month", "4th", 1, 12, names=_MONTH_NAMES)
# 7 may be written for Sunday, but ``*`` and ``a/s`` stop at 6 (Saturday), so
# ``1/2`` is Monday, Wednesday, Friday -- not Sunday as well.
_DOW: Final = _Field("day-of-week", "5th", 0, 6, explicit_high=7, names=_WEEKDAY_NAMES)
_SECOND: Final = _Field("second", "6th", 0, 59)
_FIELDS: Final = (_MINUTE, _HOUR, _DOM, _MONTH, _DOW, _SECOND)

_FIELD_ORDER = "minute hour day-of-month month day-of-week"


def _next_table(values: frozenset[int], size: int) -> tuple[int, ...]:
    """``table[i]`` = the smallest value >= i in ``values``, or -1; one extra slot."""
    table = [-1] * (size + 1)
    upcoming = -1
    for i in range(size - 1, -1, -1):
        if i in values:
            upcoming = i
        table[i] = upcoming
    return tuple(table)


class CronSchedule:
    """A parsed cron expression: which walls match, and the next one that does.

    Build one with ``parse_cron``. Values are immutable; the lookup tables
    are computed once.
    """

    __slots__ = (
        "_day_table",
        "_first_minute",
        "_first_second",
        "_month_ok",
        "_next_day_of_month",
        "_next_hour",
        "_next_minute",
        "_next_second",
        "day_or",
        "days",
        "expr",
        "follows_elapsed_time",
        "hours",
        "minutes",
        "months",
        "seconds",
        "weekdays",
    )

    expr: str
    seconds: frozenset[int]
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
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
    ) -> None:
        self.expr = expr
        self.seconds = seconds
        self.minutes = minutes
        self.hours = hours
        self.days = days
        self.months = months
        self.weekdays = weekdays
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
        self._month_ok = tuple(m in months for m in range(13))
        # When the weekday cannot matter, jump straight to the next listed day.
        self._next_day_of_month = (
            _next_table(days, 32) if not day_or and len(weekdays) == 7 else None
        )
        # _day_table[day * 7 + weekday]: does this day of the month, falling on
        # this weekday (0 = Sunday), match?
        table = []
        for day in range(32):
            for weekday in range(7):
                if day_or:
                    table.append(day in days or weekday in weekdays)
                else:
                    table.append(day in days and weekday in weekdays)
        self._day_table = tuple(table)

    def __repr__(self) -> str:
        return f"CronSchedule({self.expr!r})"

    def day_matches(self, day: date) -> bool:
        """Whether ``day`` (its month, day of month and weekday) matches."""
        if not self._month_ok[day.month]:
            return False
        return self._day_table[day.day * 7 + day.isoweekday() % 7]

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
        table = self._day_table
        next_day_of_month = self._next_day_of_month
        while day <= last_day:
            length = calendar.monthrange(year, month)[1] if month == 2 else _MAX_MONTH_DAYS[month]
            if month_ok[month]:
                if next_day_of_month is not None:
                    candidate = next_day_of_month[day_of_month]
                    if 0 < candidate <= length:
                        return day + candidate - day_of_month
                else:
                    weekday = (day + 4) % 7  # 1970-01-01 was a Thursday (4)
                    for candidate in range(day_of_month, length + 1):
                        if table[candidate * 7 + weekday]:
                            return day + candidate - day_of_month
                        weekday = weekday + 1 if weekday < 6 else 0
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


@lru_cache(maxsize=1024)
def _parse_cached(expr: str) -> CronSchedule:
    return _parse(expr)


def parse_cron(expr: object) -> CronSchedule:
    """Parse a cron expression, or raise ``InvalidTrigger`` saying what is wrong."""
    if not isinstance(expr, str):
        raise InvalidTrigger(
            f"a cron expression must be a string such as '0 3 * * *', "
            f"got {type(expr).__name__} {expr!r}"
        )
    return _parse_cached(expr)


def _parse(expr: str) -> CronSchedule:
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
    minute, hour, dom, month, dow, second = (
        _parse_field(part, field, expr) for part, field in zip(parts, _FIELDS, strict=True)
    )
    weekdays = frozenset(0 if value == 7 else value for value in dow)
    day_or = not parts[2].startswith("*") and not parts[4].startswith("*")
    _check_can_fire(expr, dom, month, day_or)
    return CronSchedule(
        expr,
        seconds=second,
        minutes=minute,
        hours=hour,
        days=dom,
        months=month,
        weekdays=weekdays,
        day_or=day_or,
        follows_elapsed_time="*" in parts[1] or "/" in parts[1],
    )


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


def _parse_field(text: str, field: _Field, expr: str) -> frozenset[int]:
    values: set[int] = set()
    for item in text.split(","):
        if not item:
            raise InvalidTrigger(
                f"cron {field.name} field {text!r} has an empty list item in {expr!r}; "
                f"separate values with single commas, as in '1,15,30'"
            )
        values.update(_parse_item(item, text, field, expr))
    return frozenset(values)


def _parse_item(item: str, text: str, field: _Field, expr: str) -> range:
    base, slash, step_text = item.partition("/")
    step = 1
    if slash:
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
    if base == "*":
        return range(field.low, field.high + 1, step)
    if "-" in base:
        start_text, _, stop_text = base.partition("-")
        if not start_text or not stop_text:
            raise InvalidTrigger(
                f"cron {field.name} field {text!r} has an incomplete range {base!r} in "
                f"{expr!r}; a range has a start and an end, as in '1-5' "
                f"(negative numbers are not allowed)"
            )
        start = _parse_value(start_text, text, field, expr)
        stop = _parse_value(stop_text, text, field, expr)
        if start > stop:
            head = f"{start}" if start == field.high else f"{start}-{field.high}"
            tail = f"{field.low}" if stop == field.low else f"{field.low}-{stop}"
            raise InvalidTrigger(
                f"cron {field.name} field {text!r} has range {base!r} that runs backwards "
                f"in {expr!r}; write the smaller end first ('{stop}-{start}'), or "
                f"'{head},{tail}' for a range that wraps around"
            )
        return range(start, stop + 1, step)
    start = _parse_value(base, text, field, expr)
    if slash:
        # "a/s" means "from a to the end of the field, every s".
        return range(start, max(field.high, start) + 1, step)
    return range(start, start + 1)


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
    special = _QUARTZ.fullmatch(lowered)
    if special is not None:
        symbol = next(c for c in "?#LW" if c in word.upper())
        raise InvalidTrigger(
            f"cron {field.name} field {text!r} uses {symbol!r} in {expr!r}, which chronolog "
            f"does not support; {_SUPPORTED}"
        )
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


def _check_can_fire(expr: str, days: frozenset[int], months: frozenset[int], day_or: bool) -> None:
    # With both day fields restricted (OR), any weekday comes round in every
    # month. Otherwise the weekday cycles through every date over the years, so
    # the expression can fire exactly when some listed day exists in some
    # listed month.
    if day_or:
        return
    if any(day <= _MAX_MONTH_DAYS[month] for month in months for day in days):
        return
    listed_days = sorted(days)
    day_words = (
        f"day-of-month {listed_days[0]}"
        if len(listed_days) == 1
        else f"days-of-month {_and_list([str(d) for d in listed_days], 'and')}"
    )
    month_words = _and_list([_MONTH_LONG[m] for m in sorted(months)], "or")
    verb = "occurs" if len(listed_days) == 1 else "occur"
    raise InvalidTrigger(
        f"cron expression {expr!r} can never fire: {day_words} never {verb} in "
        f"{month_words}; pick a day that exists in those months, or add a month where it does"
    )


def _and_list(words: list[str], conjunction: str) -> str:
    if len(words) == 1:
        return words[0]
    return f"{', '.join(words[:-1])} {conjunction} {words[-1]}"
