"""Time zones: loading with teaching errors, and where a zone's UTC offset changes.

``zoneinfo`` answers "what is the offset at this instant?" but not "where
does the offset change?". Cron needs the second question, so this module
discovers the changes by probing: it samples the offset once a day and
bisects each change to the exact second. Once a day is enough: across the
whole tz database (checked over every zone's explicit transitions, 2025
data) no two offset changes are closer than about four days, and the rules
for future years change the offset a few times a year at most.

It also holds the one rule for a wall time that does not exist
(``instant_of``): an aware ``datetime`` such as 02:30 on the night clocks
jump from 02:00 to 03:00 names the first instant after the gap -- the
instant of the jump -- exactly where a cron time inside the gap fires.

A zone is cut into *segments*: UTC intervals ``[start, end)`` with one
constant offset. Segments are computed per *chunk* of ``2**25`` seconds
(about 388 days) and cached, so chunk borders add artificial segment
boundaries where the offset does not change; they are harmless. Everything
is in whole seconds since the Unix epoch (offsets too).
"""

from __future__ import annotations

from bisect import bisect_right
from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache
from typing import Final, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from ._errors import InvalidTrigger, closest_match

__all__ = [
    "CHUNK_SECONDS",
    "MAX_SECONDS",
    "MIN_SECONDS",
    "Segment",
    "Transition",
    "chunk_segments",
    "instant_of",
    "load_zone",
    "offset_at",
    "segment_at",
    "transitions_between",
    "utc_datetime",
]

CHUNK_SECONDS: Final = 1 << 25
#: The instants an aware ``datetime`` can hold, in seconds since the epoch.
MIN_SECONDS: Final = -62_135_596_800  # 0001-01-01T00:00:00Z
MAX_SECONDS: Final = 253_402_300_799  # 9999-12-31T23:59:59Z

_PROBE_STEP: Final = 86_400
# Offsets in the tz database stay within +-16 hours, so a segment that ended
# more than three days before a chunk cannot own walls later than the chunk's
# first wall. See ``chunk_segments``.
_PAD: Final = 3 * 86_400
_SECOND: Final = timedelta(seconds=1)
# Probing an offset needs room for the offset itself on both ends of the range.
_PROBE_MIN: Final = MIN_SECONDS + 2 * 86_400
_PROBE_MAX: Final = MAX_SECONDS - 2 * 86_400

# Names that load but depend on the machine the log is read on.
_MACHINE_LOCAL: Final = frozenset({"localtime", "posixrules", "Factory"})


class Transition(NamedTuple):
    """The offset changes from ``before`` to ``after`` seconds at UTC second ``at``."""

    at: int
    before: int
    after: int


class Segment(NamedTuple):
    """UTC seconds ``[start, end)`` during which the zone's offset is ``offset``.

    ``before`` is the offset just before ``start`` (equal to ``offset`` at an
    artificial chunk border). ``owned_from`` is the first wall (local seconds)
    this segment owns under fixed-time rules: no earlier segment reached it.
    """

    start: int
    end: int
    offset: int
    before: int
    owned_from: int


@lru_cache(maxsize=1)
def _zone_names() -> frozenset[str]:
    return frozenset(available_timezones()) - _MACHINE_LOCAL


def load_zone(name: object) -> ZoneInfo:
    """The IANA zone ``name``, or ``InvalidTrigger`` with a "did you mean" hint."""
    if not isinstance(name, str):
        raise InvalidTrigger(
            f"a time zone must be an IANA name such as 'Europe/Paris', "
            f"got {type(name).__name__} {name!r}"
        )
    if name in _MACHINE_LOCAL:
        raise InvalidTrigger(
            f"time zone {name!r} means whatever zone the machine reading the log is set to; "
            f"name the zone instead, such as 'Europe/Paris' or 'UTC'"
        )
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        hint = closest_match(name, sorted(_zone_names())) if name else None
        advice = (
            f"did you mean {hint!r}?"
            if hint
            else "use an IANA name such as 'UTC', 'Europe/Paris' or 'America/New_York'"
        )
        raise InvalidTrigger(f"unknown time zone {name!r}; {advice}") from exc


def _offset(zone: ZoneInfo, second: int) -> int:
    second = min(max(second, _PROBE_MIN), _PROBE_MAX)
    offset = datetime.fromtimestamp(second, zone).utcoffset()
    assert offset is not None
    return offset // _SECOND


def offset_at(zone_name: str, second: int) -> int:
    """The UTC offset (seconds) of the zone at UTC second ``second``."""
    return _offset(ZoneInfo(zone_name), second)


def _changes(zone: ZoneInfo, lo: int, hi: int) -> list[Transition]:
    """Every offset change at a second in ``(lo, hi]``."""
    found: list[Transition] = []
    lo = max(lo, _PROBE_MIN)
    hi = min(hi, _PROBE_MAX)
    fromtimestamp = datetime.fromtimestamp
    previous = lo
    previous_offset = fromtimestamp(lo, zone).utcoffset()
    # The hot loop of a zone's first use: keep it to one call per probe.
    for probe in range(lo + _PROBE_STEP, hi + _PROBE_STEP, _PROBE_STEP):
        probe = min(probe, hi)
        probe_offset = fromtimestamp(probe, zone).utcoffset()
        if probe_offset != previous_offset:
            # Bisect to the first second with the new offset.
            below, above = previous, probe
            while above - below > 1:
                middle = (below + above) // 2
                if fromtimestamp(middle, zone).utcoffset() == previous_offset:
                    below = middle
                else:
                    above = middle
            found.append(Transition(above, _offset(zone, above - 1), _offset(zone, above)))
        previous, previous_offset = probe, probe_offset
    return found


@lru_cache(maxsize=4096)
def chunk_segments(zone_name: str, chunk: int) -> tuple[tuple[int, ...], tuple[Segment, ...]]:
    """The segments covering UTC seconds ``[chunk * CHUNK_SECONDS, (chunk + 1) * CHUNK_SECONDS)``.

    Returns the segment starts (for bisecting) and the segments.

    ``owned_from`` is the running maximum of the walls every earlier segment
    reached (``end + offset``). Normally that is just the previous segment's
    last wall; it differs only when a short segment lies inside a larger
    fall-back, where a wall could otherwise be owned twice.
    """
    zone = ZoneInfo(zone_name)
    lo = chunk * CHUNK_SECONDS
    hi = lo + CHUNK_SECONDS
    changes = _changes(zone, lo - _PAD, hi)
    # Walls reached by the segments in the padding before the chunk.
    reached = lo - _PAD + _offset(zone, lo - _PAD)
    for change in changes:
        if change.at > lo:
            break
        reached = max(reached, change.at + change.before)
    reached = max(reached, lo + _offset(zone, lo - 1))
    inside = [change for change in changes if lo < change.at < hi]
    starts = [lo, *(change.at for change in inside)]
    ends = [*(change.at for change in inside), hi]
    first_offset = _offset(zone, lo)
    offsets = [first_offset, *(change.after for change in inside)]
    befores = [_offset(zone, lo - 1), *(change.before for change in inside)]
    segments = []
    for start, end, offset, before in zip(starts, ends, offsets, befores, strict=True):
        segments.append(Segment(start, end, offset, before, reached))
        reached = max(reached, end + offset)
    return tuple(starts), tuple(segments)


def segment_at(zone_name: str, second: int) -> Segment:
    """The segment holding UTC second ``second``."""
    starts, segments = chunk_segments(zone_name, second // CHUNK_SECONDS)
    return segments[bisect_right(starts, second) - 1]


def transitions_between(zone_name: str, lo: int, hi: int) -> list[Transition]:
    """The real offset changes at UTC seconds in ``[lo, hi)``, in order."""
    found: list[Transition] = []
    for chunk in range(lo // CHUNK_SECONDS, (hi - 1) // CHUNK_SECONDS + 1):
        for segment in chunk_segments(zone_name, chunk)[1]:
            if lo <= segment.start < hi and segment.before != segment.offset:
                found.append(Transition(segment.start, segment.before, segment.offset))
    return found


def instant_of(value: datetime) -> datetime:
    """The instant an aware datetime names, as an aware UTC datetime.

    One rule for wall times that do not exist: a local time inside a gap
    (clocks jumped over it, e.g. 02:30 when they go from 02:00 to 03:00)
    names the first instant after the gap, the instant of the jump -- where
    a cron time in the gap fires, too. Python would read it with the offset
    before the jump instead (03:30 after the gap), whatever its ``fold``. A
    wall time that happens twice names the pass its ``fold`` says (0, the
    default: the first), as in Python, and as cron fires such a time once,
    at its first pass. Every other aware datetime names what Python says.
    """
    utc = value.astimezone(UTC)
    zone = value.tzinfo
    if zone is UTC or isinstance(zone, timezone):
        return utc  # a fixed offset has no gaps
    wall = value.replace(tzinfo=None, fold=0)
    if utc.astimezone(zone).replace(tzinfo=None, fold=0) == wall:
        return utc
    # ``wall`` is in a gap. With the offset before the jump it reads as an
    # instant after the jump; with the one after it, as an instant before
    # (PEP 495 folds). The jump is the first instant whose wall is later.
    other = value.replace(fold=1 - value.fold).astimezone(UTC)
    before, after = min(utc, other), max(utc, other)
    if before == after:  # a tzinfo that ignores fold: look around
        before, after = utc - timedelta(days=2), utc + timedelta(days=2)
    step = timedelta(microseconds=1)
    while after - before > step:
        middle = before + (after - before) // 2
        if middle.astimezone(zone).replace(tzinfo=None, fold=0) > wall:
            after = middle
        else:
            before = middle
    return after


def utc_datetime(second: int) -> datetime:
    """The aware UTC datetime ``second`` seconds after the epoch."""
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=second)
