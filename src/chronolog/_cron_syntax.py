"""Cron syntax: the grammar chronolog reads, parsed into items per field.

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

This module only reads: it turns text into items (`Values`, `Hashed`,
`LastDay`, `NearestWeekday`, `NthWeekday`) per field, and rejects what is
not cron with an ``InvalidTrigger`` that names the field, the offending text
and what would be right. `_cron` turns items into the concrete values a
schedule matches (and refuses expressions that can never fire).
"""

from __future__ import annotations

import calendar
import re
import zlib
from typing import Final

from ._errors import InvalidTrigger, closest_match

__all__ = [
    "DAY_OF_WEEK",
    "FIELDS",
    "FIELD_ORDER",
    "NICKNAMES",
    "Field",
    "Hashed",
    "Item",
    "LastDay",
    "NearestWeekday",
    "NthWeekday",
    "Values",
    "parse_fields",
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


class Field:
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


_MINUTE: Final = Field("minute", "1st", 0, 59, 0)
_HOUR: Final = Field("hour", "2nd", 0, 23, 1)
# A bare H picks from 1-28, as Jenkins does: every month has those days.
_DOM: Final = Field("day-of-month", "3rd", 1, 31, 2, hash_span=28)
_MONTH: Final = Field("month", "4th", 1, 12, 3, names=_MONTH_NAMES)
# 7 may be written for Sunday, but ``*`` and ``a/s`` stop at 6 (Saturday), so
# ``1/2`` is Monday, Wednesday, Friday -- not Sunday as well.
DAY_OF_WEEK: Final = Field("day-of-week", "5th", 0, 6, 4, explicit_high=7, names=_WEEKDAY_NAMES)
_SECOND: Final = Field("second", "6th", 0, 59, 5)
FIELDS: Final = (_MINUTE, _HOUR, _DOM, _MONTH, DAY_OF_WEEK, _SECOND)

FIELD_ORDER = "minute hour day-of-month month day-of-week"


# -- parsed items ---------------------------------------------------------------------


class Values:
    """Plain values: a number, a range, a step, ``*``."""

    __slots__ = ("text", "values")

    def __init__(self, text: str, values: frozenset[int]) -> None:
        self.text = text
        self.values = values


class Hashed:
    """``H``, ``H(a-b)``, ``H/s`` or ``H(a-b)/s``: values chosen by a key's hash."""

    __slots__ = ("count", "first", "step", "text")

    def __init__(self, text: str, first: int, count: int, step: int | None) -> None:
        self.text = text
        self.first = first  # the range's first value
        self.count = count  # how many values the range walks
        self.step = step

    def offset(self, field: Field, key: str | None) -> int | None:
        if key is None:
            return None
        crc = zlib.crc32(key.encode("utf-8", "surrogatepass"))
        return (crc >> field.hash_index) % min(self.step or self.count, self.count)

    def values(self, field: Field, key: str | None) -> frozenset[int]:
        """The values for ``key``; for None, every value some key could give."""
        offset = self.offset(field, key)
        if offset is None:
            return frozenset(field.value_at(self.first, k) for k in range(self.count))
        if self.step is None:
            return frozenset({field.value_at(self.first, offset)})
        steps = range(offset, self.count, self.step)
        return frozenset(field.value_at(self.first, k) for k in steps)

    def resolved(self, field: Field, key: str) -> str:
        """The item written without ``H``, for ``key`` (it parses to the same values)."""
        offset = self.offset(field, key)
        assert offset is not None
        start = field.value_at(self.first, offset)
        if self.step is None:
            return str(start)
        # Keep the step even when it reaches one value: an hour field with a
        # step follows elapsed time across DST changes, and so must its reading.
        return f"{start}-{field.value_at(self.first, self.count - 1)}/{self.step}"


class LastDay:
    """``L`` or ``L-n``: the last day of the month, or ``n`` days before it."""

    __slots__ = ("offset", "text")

    def __init__(self, text: str, offset: int) -> None:
        self.text = text
        self.offset = offset


class NearestWeekday:
    """``nW`` (or ``Wn``), and ``LW`` when ``day`` is None."""

    __slots__ = ("day", "text")

    def __init__(self, text: str, day: int | None) -> None:
        self.text = text
        self.day = day


class NthWeekday:
    """``fri#2``: the ``nth`` such weekday of the month; ``nth`` 0 is ``friL``, the last."""

    __slots__ = ("nth", "text", "weekday")

    def __init__(self, text: str, weekday: int, nth: int) -> None:
        self.text = text
        self.weekday = weekday
        self.nth = nth


Item = Values | Hashed | LastDay | NearestWeekday | NthWeekday


# -- parsing ----------------------------------------------------------------------------


def parse_fields(expr: str) -> tuple[tuple[tuple[Item, ...], ...], list[str]]:
    """The items of each of the six fields of ``expr`` (seconds last) and each
    field's text, or ``InvalidTrigger`` saying what is wrong."""
    text = expr.strip()
    if not text:
        raise InvalidTrigger(
            f"cron expression {expr!r} is empty; write 5 fields ({FIELD_ORDER}), "
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
            f"write 5 ({FIELD_ORDER}) or 6 (the same 5, then second), "
            f"e.g. '30 2 * * *' or '30 2 * * * 15'{shell}"
        )
    if len(parts) == 5:
        parts.append("0")
    fields = tuple(
        _parse_field(part, field, expr) for part, field in zip(parts, FIELDS, strict=True)
    )
    return fields, parts


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


def _parse_field(text: str, field: Field, expr: str) -> tuple[Item, ...]:
    if "?" in text:
        if field is not _DOM and field is not DAY_OF_WEEK:
            _wrong_field("?", text, field, expr)
        if text != "?":
            raise InvalidTrigger(
                f"cron {field.name} field {text!r} uses '?' with other values in {expr!r}; "
                f"'?' means any day (the same as *) and stands alone in its field"
            )
        return (Values("?", frozenset(range(field.low, field.high + 1))),)
    items: list[Item] = []
    for item in text.split(","):
        if not item:
            raise InvalidTrigger(
                f"cron {field.name} field {text!r} has an empty list item in {expr!r}; "
                f"separate values with single commas, as in '1,15,30'"
            )
        items.append(_parse_item(item, text, field, expr))
    return tuple(items)


def _wrong_field(symbol: str, text: str, field: Field, expr: str) -> None:
    raise InvalidTrigger(
        f"cron {field.name} field {text!r} uses {symbol!r} in {expr!r}; {_SYMBOLS[symbol]}"
    )


def _parse_item(item: str, text: str, field: Field, expr: str) -> Item:
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
    if field is DAY_OF_WEEK:
        special = _parse_day_of_week_special(item, lowered, text, expr)
        if special is not None:
            return special
    base, slash, step_text = item.partition("/")
    step = _parse_step(step_text, text, field, expr) if slash else 1
    if base == "*":
        return Values(item, frozenset(range(field.low, field.high + 1, step)))
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
        return Values(item, frozenset(field.value_at(start, k) for k in steps))
    start = _parse_value(base, text, field, expr)
    if slash:
        # "a/s" means "from a to the end of the field, every s".
        return Values(item, frozenset(range(start, max(field.high, start) + 1, step)))
    return Values(item, frozenset({start}))


def _parse_step(step_text: str, text: str, field: Field, expr: str) -> int:
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


def _parse_hashed(item: str, match: re.Match[str], text: str, field: Field, expr: str) -> Hashed:
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
            return Hashed(item, field.hash_low, field.hash_span, None)
        return Hashed(item, field.low, field.span, step)
    if not start_text or not stop_text:
        raise InvalidTrigger(
            f"cron {field.name} field {text!r} has {item!r} in {expr!r}; a hashed value is "
            f"written H, H(a-b), H/s or H(a-b)/s, as in 'H(0-29)/10'"
        )
    start = _parse_value(start_text, text, field, expr)
    stop = _parse_value(stop_text, text, field, expr)
    return Hashed(item, start, field.walk(start, stop), step)


def _no_step(item: str, text: str, field: Field, expr: str) -> None:
    if "/" in item:
        raise InvalidTrigger(
            f"cron {field.name} field {text!r} has {item!r} in {expr!r}; a step applies to "
            f"*, numbers and ranges, not to 'L', 'W' or '#'"
        )


def _parse_day_of_month_special(item: str, lowered: str, text: str, expr: str) -> Item | None:
    if "l" not in lowered and "w" not in lowered:
        if "#" in lowered:
            _wrong_field("#", text, _DOM, expr)
        return None
    if _TO_LAST.fullmatch(lowered):
        return None  # 'a-L' (or 'a-L/s'): a range, parsed as such
    _no_step(item, text, _DOM, expr)
    if lowered == "l":
        return LastDay(item, 0)
    if lowered == "lw":
        return NearestWeekday(item, None)
    last = _LAST_OFFSET.fullmatch(lowered)
    if last is not None:
        offset = int(last.group(1))
        if offset > 30:
            raise InvalidTrigger(
                f"cron day-of-month field {text!r} has {item!r} in {expr!r}, which is before "
                f"the 1st in every month; L-n counts back from the last day, with n from 0 "
                f"to 30 ('L-1' is the day before the last)"
            )
        return LastDay(item, offset)
    nearest = _NEAREST.fullmatch(lowered)
    if nearest is not None:
        day = int(nearest.group(1) or nearest.group(2))
        if not 1 <= day <= 31:
            raise InvalidTrigger(
                f"cron day-of-month field {text!r} has {item!r} in {expr!r}: day {day} is out "
                f"of range 1-31; 'nW' is the weekday nearest to day n, as in '15W' or '1W'"
            )
        return NearestWeekday(item, day)
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


def _parse_day_of_week_special(item: str, lowered: str, text: str, expr: str) -> Item | None:
    if "#" in lowered:
        _no_step(item, text, DAY_OF_WEEK, expr)
        nth = _NTH.fullmatch(lowered)
        if nth is None or "-" in lowered:
            raise InvalidTrigger(
                f"cron day-of-week field {text!r} has {item!r} in {expr!r}; '#' takes one "
                f"weekday and a number, as in 'fri#2' or '5#2' (for several, list them: "
                f"'mon#2,tue#2')"
            )
        weekday_text, count_text = nth.groups()
        weekday = _parse_value(weekday_text, text, DAY_OF_WEEK, expr) % 7
        if not count_text.isdigit() or not 1 <= int(count_text) <= 5:
            raise InvalidTrigger(
                f"cron day-of-week field {text!r} has {item!r} in {expr!r}; a month has at "
                f"most 5 of each weekday, so write #1 to #5 ('{weekday_text}#5' fires only in "
                f"months with five {_WEEKDAY_LONG[weekday]}s), or '{weekday_text}L' for the last"
            )
        return NthWeekday(item, weekday, int(count_text))
    if "l" not in lowered or lowered in _WEEKDAY_NAMES:
        if "w" in lowered and _NEAREST.fullmatch(lowered):
            _wrong_field("W", text, DAY_OF_WEEK, expr)
        return None
    if lowered == "l":
        raise InvalidTrigger(
            f"cron day-of-week field {text!r} uses a lone 'L' in {expr!r}, which readers "
            f"disagree on (Quartz reads it as Saturday, croniter refuses it); write 'sat' "
            f"for every Saturday, or '5L' for the last Friday of the month"
        )
    if lowered == "lw" or _LAST_OFFSET.fullmatch(lowered):
        _wrong_field("L", text, DAY_OF_WEEK, expr)
    last = _LAST_OF.fullmatch(lowered)
    if last is None or "/" in lowered or "-" in lowered:
        _no_step(item, text, DAY_OF_WEEK, expr)
        raise InvalidTrigger(
            f"cron day-of-week field {text!r} has {item!r} in {expr!r}; the last weekday of "
            f"a kind in the month is written '5L' or 'friL' (or croniter's 'L5'), with one "
            f"weekday"
        )
    weekday_text = last.group(1) or last.group(2)
    weekday = _parse_value(weekday_text, text, DAY_OF_WEEK, expr) % 7
    return NthWeekday(item, weekday, 0)


def _parse_value(word: str, text: str, field: Field, expr: str) -> int:
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
    if (
        field is not _DOM
        and field is not DAY_OF_WEEK
        and re.fullmatch(r"l|l-\d+|\d*lw?|\d+w", lowered)
    ):
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
        owner = next((f for f in FIELDS if lowered in f.names), None)
        moved = (
            f"; {word!r} is a {owner.name} name, which goes in the {owner.position} field "
            f"({FIELD_ORDER})"
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
