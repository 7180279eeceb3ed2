"""Triggers: pure rules that say when a task is next due.

Every trigger is a frozen msgspec Struct in one tagged union (``kind``), so a
``TaskDefined`` record carries its trigger and a log explains itself.
Construction -- and decoding, since msgspec runs ``__post_init__`` then too --
validates every field and raises ``InvalidTrigger`` saying what would be
right. Aware datetimes are stored in UTC, so equal triggers encode equally;
naive ones are rejected, never guessed.

``next_after(t)`` is pure (no clock, no I/O beyond loading zone data): the
first fire instant strictly after ``t``, as an aware UTC datetime, within
``[start, end]`` (both inclusive), or None when there is none.

Instants given as local wall times (``start``, ``end``, ``At(when)``,
``Every`` anchors, ``t`` itself) follow one rule (``_zones.instant_of``): a
wall time that does not exist, inside a spring-forward gap, names the first
instant after the gap -- where a cron time in the gap fires too; a repeated
wall time names the pass its ``fold`` says (the first, by default).

Hashed cron values (``H``) are picked from a key. ``for_task(name)`` -- a
method of every trigger, a no-op for all but a ``Cron`` with ``H`` and no
key -- binds the task name as the key when a task is defined, so the log
records the expression as written and the key it was hashed with.

Cron and daylight-saving time
-----------------------------
A cron expression matches *walls*: local wall-clock times in ``tz``. Walls
and instants do not map one to one, so:

* an expression whose hour field is written with ``*`` or a step
  (``0 * * * *``, ``*/15 * * * *``, ``0 */2 * * *``, ``@hourly``) follows
  **elapsed time**: it fires at every real instant whose wall matches -- both
  passes of a repeated hour, and never for walls inside a gap;
* every other expression is **fixed-time**: each matching wall fires once, at
  its first instant, or -- when the wall does not exist (a spring-forward
  gap) -- at the first instant after the gap. Several gap walls land on the
  same instant and are one fire.

The zone is a sequence of UTC segments ``[T_i, T_i+1)`` with offset ``o_i``
(``_zones``). Under fixed-time rules segment ``i`` owns the walls from where
the earlier segments stopped (normally ``T_i + o_i-1``) to ``T_i+1 + o_i``
and maps a wall ``w`` to ``max(w - o_i, T_i)``: the first pass in an overlap,
the transition instant for a gap wall. Under elapsed-time rules segment ``i``
covers walls ``[T_i + o_i, T_i+1 + o_i)`` mapped by ``w - o_i``. Both maps are
monotone and every image lies in its own segment, so ``next_after`` walks
the segments from the one holding ``t`` and returns the first image after
``t``: no instant is returned twice, none is skipped.
"""

from __future__ import annotations

from bisect import bisect_right
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Final

import msgspec

from ._cron import CronSchedule, cron_syntax, parse_cron
from ._errors import InvalidTrigger
from ._zones import CHUNK_SECONDS, MAX_SECONDS, chunk_segments, instant_of, load_zone

__all__ = ["At", "Cron", "Every", "FileWatch", "Manual", "Trigger", "compiled_cron"]

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)
_SECOND_US: Final = 1_000_000
_LAST_CHUNK: Final = MAX_SECONDS // CHUNK_SECONDS


def _aware_utc(value: object, what: str) -> datetime:
    """``value`` as an aware UTC datetime, or ``InvalidTrigger`` saying why it cannot be."""
    if not isinstance(value, datetime):
        raise InvalidTrigger(
            f"{what} must be an aware datetime such as "
            f"datetime(2026, 3, 8, 2, 30, tzinfo=UTC), got {type(value).__name__} {value!r}"
        )
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidTrigger(
            f"{what} {value.isoformat()} is naive (it has no time zone), and chronolog never "
            f"guesses one; pass an aware datetime, e.g. {what.split()[-1]}="
            f"datetime({value.year}, {value.month}, {value.day}, {value.hour}, {value.minute}, "
            f"tzinfo=ZoneInfo('Europe/Paris')) or tzinfo=UTC"
        )
    try:
        return instant_of(value)
    except OverflowError:
        raise InvalidTrigger(
            f"{what} {value.isoformat()} is outside the years 1-9999 in UTC; "
            f"pick an instant a day or more inside them"
        ) from None


def _normalise(struct: msgspec.Struct, field: str, what: str) -> datetime | None:
    value = getattr(struct, field)
    if value is None:
        return None
    utc = _aware_utc(value, what)
    if utc is not value:
        msgspec.structs.force_setattr(struct, field, utc)
    return utc


def _check_bounds(kind: str, start: datetime | None, end: datetime | None) -> None:
    if start is not None and end is not None and end < start:
        raise InvalidTrigger(
            f"{kind} end {end.isoformat()} is before its start {start.isoformat()}; "
            f"the trigger could never fire -- swap them, or move end later"
        )


def _check_t(t: object) -> datetime:
    """``t`` as an instant (see ``instant_of``), or ``InvalidTrigger`` when it is naive."""
    if not isinstance(t, datetime) or t.tzinfo is None or t.utcoffset() is None:
        raise InvalidTrigger(
            f"next_after needs an aware datetime (e.g. datetime(2026, 1, 1, tzinfo=UTC)), got "
            f"{t.isoformat() + ' (naive)' if isinstance(t, datetime) else repr(t)}"
        )
    if t.tzinfo is UTC:
        return t
    try:
        return instant_of(t)
    except OverflowError:
        return t


def _floor_seconds(when: datetime) -> int:
    delta = when - _EPOCH
    return delta.days * 86_400 + delta.seconds


def _ceil_seconds(when: datetime) -> int:
    delta = when - _EPOCH
    return delta.days * 86_400 + delta.seconds + (1 if delta.microseconds else 0)


def _micros(when: datetime) -> int:
    return (when - _EPOCH) // _MICROSECOND


def _from_seconds(second: int) -> datetime | None:
    if second > MAX_SECONDS:
        return None
    return _EPOCH + timedelta(seconds=second)


def _from_micros(micros: int) -> datetime | None:
    try:
        return _EPOCH + timedelta(microseconds=micros)
    except OverflowError:
        return None


class CompiledCron:
    """A cron expression bound to a zone, ready to answer ``next_after`` fast.

    Kept out of the ``Cron`` struct (which must stay plain data for the log);
    ``compiled_cron`` caches one per (expression, zone).
    """

    __slots__ = ("schedule", "tz")

    def __init__(self, schedule: CronSchedule, tz: str) -> None:
        self.schedule = schedule
        self.tz = tz

    @property
    def follows_elapsed_time(self) -> bool:
        return self.schedule.follows_elapsed_time

    def next_after_second(self, after: int, until: int | None = None) -> int | None:
        """The first fire (UTC second) strictly after UTC second ``after``, if <= ``until``."""
        schedule = self.schedule
        elapsed = schedule.follows_elapsed_time
        chunk = after // CHUNK_SECONDS
        starts, segments = chunk_segments(self.tz, chunk)
        index = bisect_right(starts, after) - 1
        while True:
            for segment in segments[index:]:
                start, end, offset, _, owned_from = segment
                if until is not None and start > until:
                    return None
                lo = start + offset if elapsed else owned_from
                if start <= after:
                    lo = max(lo, after + 1 + offset)
                wall = schedule.next_wall(lo, end + offset)
                if wall is not None:
                    fire = wall - offset
                    if fire < start:  # a wall in a spring-forward gap (fixed-time)
                        fire = start
                    return None if until is not None and fire > until else fire
            chunk += 1
            if chunk > _LAST_CHUNK:
                return None
            segments = chunk_segments(self.tz, chunk)[1]
            index = 0


@lru_cache(maxsize=16_384)  # one per task with hashed fields: keep thousands
def _compile(expr: str, tz: str, key: str | None) -> CompiledCron:
    schedule = parse_cron(expr, key)
    load_zone(tz)
    return CompiledCron(schedule, tz)


def compiled_cron(expr: object, tz: object = "UTC", key: str | None = None) -> CompiledCron:
    """Parse ``expr`` (``H`` values picked with ``key``) and load ``tz`` (cached).

    Raises ``InvalidTrigger`` saying what is wrong, also when ``expr`` has
    ``H`` values and ``key`` is None.
    """
    if not isinstance(expr, str):
        parse_cron(expr)  # raises the teaching error
    if not isinstance(tz, str):
        load_zone(tz)  # raises the teaching error
    assert isinstance(expr, str)
    assert isinstance(tz, str)
    return _compile(expr, tz, key)


class Cron(msgspec.Struct, frozen=True, tag="cron", tag_field="kind", omit_defaults=True):
    """Fires at the wall-clock times a cron expression names, in time zone ``tz``.

    ``expr`` has 5 fields (minute hour day-of-month month day-of-week) or 6
    (the same, then second), or is a nickname such as ``@daily``. ``start``
    and ``end`` (aware, inclusive) bound the fires. ``key`` picks the values
    of hashed fields (``H``); when it is None, a scheduler uses the task's
    name (``for_task``). It is kept only for expressions with ``H``. See the
    module docstring for daylight-saving rules.
    """

    expr: str
    tz: str = "UTC"
    start: datetime | None = None
    end: datetime | None = None
    key: str | None = None

    def __post_init__(self) -> None:
        key = self.key
        if key is not None and (not isinstance(key, str) or not key):
            raise InvalidTrigger(
                f"Cron key must be a non-empty string, such as the task name 'backup', got "
                f"{key!r}; leave it None and a scheduler uses the task name"
            )
        syntax = cron_syntax(self.expr)
        if key is not None and not syntax.hashed:
            msgspec.structs.force_setattr(self, "key", None)  # nothing is hashed with it
        if syntax.hashed and key is None:
            load_zone(self.tz)  # the values are picked when the key is known
        else:
            compiled_cron(self.expr, self.tz, self.key)
        start = _normalise(self, "start", "Cron start")
        end = _normalise(self, "end", "Cron end")
        _check_bounds("Cron", start, end)

    @property
    def follows_elapsed_time(self) -> bool:
        """True when the hour field has ``*`` or a step: fires follow real elapsed time."""
        return cron_syntax(self.expr).follows_elapsed_time

    @property
    def hashed(self) -> bool:
        """True when ``expr`` has hashed values (``H``), picked with ``key``."""
        return cron_syntax(self.expr).hashed

    @property
    def resolved_expr(self) -> str:
        """``expr`` with each ``H`` written as the values ``key`` picked.

        ``Cron("H 3 * * *", key="backup").resolved_expr`` is ``'24 3 * * *'``.
        Raises ``InvalidTrigger`` for an expression with ``H`` and no key.
        """
        return compiled_cron(self.expr, self.tz, self.key).schedule.resolved

    def for_task(self, name: str) -> Cron:
        """This trigger with ``key=name`` when it has ``H`` and no key; else itself."""
        if self.key is not None or not cron_syntax(self.expr).hashed:
            return self
        return Cron(self.expr, tz=self.tz, start=self.start, end=self.end, key=name)

    def next_after(self, t: datetime) -> datetime | None:
        after = _floor_seconds(_check_t(t))
        if self.start is not None:
            after = max(after, _ceil_seconds(self.start) - 1)
        until = None if self.end is None else _floor_seconds(self.end)
        fire = _compile(self.expr, self.tz, self.key).next_after_second(after, until)
        return None if fire is None else _from_seconds(fire)

    def fires_at(self, t: datetime) -> bool:
        """Whether this trigger fires at instant ``t``."""
        return _fires_at(self, t)

    def previous_before(self, t: datetime) -> datetime | None:
        """The last fire strictly before ``t`` (within its bounds), or None."""
        return _previous_by_search(self, _check_t(t), self.start)

    def count_fires(
        self, first: datetime, last: datetime, *, limit: int | None = None
    ) -> tuple[int, datetime | None]:
        """How many fires lie in ``[first, last]``, and the last of them counted.

        A cron expression has no closed form for that count (walls, zones,
        daylight-saving rules), so this steps from fire to fire: pass
        ``limit`` to stop after that many (see `Every.count_fires`).
        """
        return _count_by_stepping(self, _check_t(first), _check_t(last), limit)


class Every(msgspec.Struct, frozen=True, tag="every", tag_field="kind", omit_defaults=True):
    """Fires every ``interval`` on the grid ``anchor + k * interval`` (``k`` any integer).

    The grid is anchored at ``anchor``; when that is None, at ``start`` if
    given, else at the Unix epoch (1970-01-01T00:00Z). The scheduler persists
    a real anchor when a task is defined (``anchored``), so a restart never
    shifts the grid. ``start`` and ``end`` (aware, inclusive) bound the fires:
    an anchor is a phase, ``start`` is when firing may begin.
    """

    interval: timedelta
    anchor: datetime | None = None
    start: datetime | None = None
    end: datetime | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.interval, timedelta):
            raise InvalidTrigger(
                f"Every interval must be a timedelta such as timedelta(minutes=5), "
                f"got {type(self.interval).__name__} {self.interval!r}"
            )
        if self.interval <= timedelta(0):
            raise InvalidTrigger(
                f"Every interval must be positive, got {self.interval!r}; "
                f"use e.g. timedelta(minutes=5)"
            )
        _normalise(self, "anchor", "Every anchor")
        start = _normalise(self, "start", "Every start")
        end = _normalise(self, "end", "Every end")
        _check_bounds("Every", start, end)

    def for_task(self, name: str) -> Every:
        """Itself: nothing in an ``Every`` depends on the task's name."""
        return self

    def anchored(self, at: datetime) -> Every:
        """This trigger with its grid pinned: a None anchor becomes ``start``, else ``at``."""
        at = _aware_utc(at, "Every anchor")
        if self.anchor is not None:
            return self
        return msgspec.structs.replace(self, anchor=self.start if self.start is not None else at)

    def next_after(self, t: datetime) -> datetime | None:
        t = _check_t(t)
        anchor = self.anchor if self.anchor is not None else self.start
        origin = 0 if anchor is None else _micros(anchor)
        step = self.interval // _MICROSECOND
        fire = origin + ((_micros(t) - origin) // step + 1) * step
        if self.start is not None:
            start = _micros(self.start)
            if fire < start:
                fire = origin + -((origin - start) // step) * step
        if self.end is not None and fire > _micros(self.end):
            return None
        return _from_micros(fire)

    def fires_at(self, t: datetime) -> bool:
        """Whether this trigger fires at instant ``t``."""
        return _fires_at(self, t)

    def previous_before(self, t: datetime) -> datetime | None:
        """The last fire strictly before ``t`` (within its bounds), or None."""
        before = _micros(_check_t(t)) - 1
        if self.end is not None:
            before = min(before, _micros(self.end))
        anchor = self.anchor if self.anchor is not None else self.start
        origin = 0 if anchor is None else _micros(anchor)
        step = self.interval // _MICROSECOND
        fire = origin + ((before - origin) // step) * step
        if self.start is not None and fire < _micros(self.start):
            return None
        return _from_micros(fire)

    def count_fires(
        self, first: datetime, last: datetime, *, limit: int | None = None
    ) -> tuple[int, datetime | None]:
        """How many fires lie in ``[first, last]`` (both inclusive), and the last of
        them counted: ``(0, None)`` when none does.

        With ``limit``, counting stops after that many: ``(limit, the
        limit-th fire)``. Arithmetic on the grid, however long the span: a
        year of a per-second task costs what a minute does.
        """
        low, high = _micros(_check_t(first)), _micros(_check_t(last))
        if self.start is not None:
            low = max(low, _micros(self.start))
        if self.end is not None:
            high = min(high, _micros(self.end))
        anchor = self.anchor if self.anchor is not None else self.start
        origin = 0 if anchor is None else _micros(anchor)
        step = self.interval // _MICROSECOND
        first_k = -((origin - low) // step)  # ceil((low - origin) / step)
        last_k = (high - origin) // step
        count = last_k - first_k + 1
        if count <= 0:
            return 0, None
        if limit is not None and count > limit:
            count = max(limit, 0)
            if count == 0:
                return 0, None
        return count, _from_micros(origin + (first_k + count - 1) * step)


class At(msgspec.Struct, frozen=True, tag="at", tag_field="kind"):
    """Fires once, at ``when`` (aware; a wall time in a DST gap means the end of the gap)."""

    when: datetime

    def __post_init__(self) -> None:
        _normalise(self, "when", "At when")

    def for_task(self, name: str) -> At:
        """Itself: nothing in an ``At`` depends on the task's name."""
        return self

    def next_after(self, t: datetime) -> datetime | None:
        return self.when if self.when > _check_t(t) else None

    def fires_at(self, t: datetime) -> bool:
        """Whether this trigger fires at instant ``t``."""
        return _fires_at(self, t)

    def previous_before(self, t: datetime) -> datetime | None:
        """Its instant, if that is strictly before ``t``; else None."""
        return self.when if self.when < _check_t(t) else None

    def count_fires(
        self, first: datetime, last: datetime, *, limit: int | None = None
    ) -> tuple[int, datetime | None]:
        """``(1, when)`` if its instant lies in ``[first, last]``, else ``(0, None)``."""
        if _check_t(first) <= self.when <= _check_t(last) and (limit is None or limit > 0):
            return 1, self.when
        return 0, None


class FileWatch(msgspec.Struct, frozen=True, tag="file_watch", tag_field="kind"):
    """Fires when the content of ``path`` changes, checked every ``poll``."""

    path: str
    poll: timedelta = timedelta(seconds=2)

    def __post_init__(self) -> None:
        if not isinstance(self.path, str) or not self.path.strip():
            raise InvalidTrigger(
                f"FileWatch path must be a non-empty string such as 'data/input.csv', "
                f"got {self.path!r}"
            )
        if not isinstance(self.poll, timedelta) or self.poll <= timedelta(0):
            raise InvalidTrigger(
                f"FileWatch poll must be a positive timedelta such as timedelta(seconds=2), "
                f"got {self.poll!r}"
            )

    def for_task(self, name: str) -> FileWatch:
        """Itself: nothing in a ``FileWatch`` depends on the task's name."""
        return self

    def next_after(self, t: datetime) -> datetime | None:
        """Always None: a file change is observed, not predicted."""
        _check_t(t)
        return None

    def fires_at(self, t: datetime) -> bool:
        """Always False: a file change is observed, not predicted."""
        _check_t(t)
        return False

    def previous_before(self, t: datetime) -> datetime | None:
        """Always None: a file change is observed, not predicted."""
        _check_t(t)
        return None

    def count_fires(
        self, first: datetime, last: datetime, *, limit: int | None = None
    ) -> tuple[int, datetime | None]:
        """Always ``(0, None)``: a file change is observed, not predicted."""
        _check_t(first)
        _check_t(last)
        return 0, None


class Manual(msgspec.Struct, frozen=True, tag="manual", tag_field="kind"):
    """Never fires by itself; runs only through ``run_now``."""

    def for_task(self, name: str) -> Manual:
        """Itself: nothing in a ``Manual`` trigger depends on the task's name."""
        return self

    def next_after(self, t: datetime) -> datetime | None:
        """Always None: manual tasks have no time-based next."""
        _check_t(t)
        return None

    def fires_at(self, t: datetime) -> bool:
        """Always False: a manual task fires only when asked."""
        _check_t(t)
        return False

    def previous_before(self, t: datetime) -> datetime | None:
        """Always None: a manual task fires only when asked."""
        _check_t(t)
        return None

    def count_fires(
        self, first: datetime, last: datetime, *, limit: int | None = None
    ) -> tuple[int, datetime | None]:
        """Always ``(0, None)``: a manual task fires only when asked."""
        _check_t(first)
        _check_t(last)
        return 0, None


Trigger = Cron | Every | At | FileWatch | Manual

#: How far back `previous_before` looks for a cron fire: one Gregorian cycle,
#: after which every calendar repeats (a cron that did not fire in it never did).
_SEARCH_BACK: Final = timedelta(days=146_097)
#: The earliest instant a search starts from (``datetime.min`` has no room below).
_EARLIEST: Final = datetime(1, 1, 2, tzinfo=UTC)


def _fires_at(trigger: Cron | Every | At, t: datetime) -> bool:
    instant = _check_t(t)
    if instant <= _EARLIEST:
        return False
    return trigger.next_after(instant - _MICROSECOND) == instant


def _previous_by_search(
    trigger: Cron | Every | At, t: datetime, start: datetime | None
) -> datetime | None:
    """The last fire of ``trigger`` before ``t``, found with ``next_after`` alone.

    Steps back from ``t`` in doubling steps until a fire lies between the
    step and ``t``, then bisects for the last one: about two ``next_after``
    calls per halving, some sixty in all for a fire a century back.
    """
    lowest = max(t - _SEARCH_BACK if t - _EARLIEST > _SEARCH_BACK else _EARLIEST, _EARLIEST)
    if start is not None:
        lowest = max(lowest, start - _MICROSECOND)
    if t <= lowest:
        return None
    step = timedelta(seconds=1)
    while True:
        cursor = max(t - step, lowest)
        fire = trigger.next_after(cursor)
        if fire is not None and fire < t:
            break
        if cursor == lowest:
            return None
        step *= 2
    # next_after(cursor) < t: bisect for the largest `low` that still sees a
    # fire before t; the fire after it is the last one.
    low, high = _micros(cursor), _micros(t)
    while high - low > 1:
        middle = (low + high) // 2
        found = trigger.next_after(_EPOCH + timedelta(microseconds=middle))
        if found is not None and found < t:
            low = middle
        else:
            high = middle
    return trigger.next_after(_EPOCH + timedelta(microseconds=low))


def _count_by_stepping(
    trigger: Cron, first: datetime, last: datetime, limit: int | None
) -> tuple[int, datetime | None]:
    """`count_fires` by walking ``next_after`` from fire to fire (at most ``limit``)."""
    count = 0
    counted: datetime | None = None
    if first <= _EARLIEST or last < first:
        return 0, None
    fire = trigger.next_after(first - _MICROSECOND)
    while fire is not None and fire <= last and (limit is None or count < limit):
        count += 1
        counted = fire
        fire = trigger.next_after(fire)
    return count, counted
