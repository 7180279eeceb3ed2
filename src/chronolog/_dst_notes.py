"""What daylight saving did to a cron fire, in words: moved, merged, first or second pass.

`describe_fire` looks at one fire of a compiled cron trigger (a UTC second)
and the zone's changes of offset around it; `describe_due` adds what the
trigger's ``start``/``end`` bounds did. ``chronolog next`` prints these notes
beside fire times, and `chronolog.explain` gives one for the occurrence it
explains. The rules themselves are the triggers' (``docs/how-to/
daylight-saving-time.md``); this module only says which applied.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

from ._cron import wall_datetime
from ._triggers import compiled_cron
from ._words import date_text
from ._zones import segment_at, transitions_between

if TYPE_CHECKING:
    from ._cron import CronSchedule
    from ._triggers import CompiledCron, Cron
    from ._zones import Transition

__all__ = ["GAP_RULE", "describe_due", "describe_fire", "jump_text"]

#: The one rule for times that do not exist, said where it applies.
GAP_RULE: Final = (
    "every time given inside a gap (At, start=, end=, --after) means the end of the gap, "
    "where a cron time in the gap fires too"
)
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_NEARBY: Final = 2 * 86_400  # DST changes that can explain a fire lie this close
_MAX_LISTED: Final = 4
_DASH: Final = "\u2013"  # en dash, for ranges of wall-clock times


def _seconds(when: datetime) -> int:
    """``when`` as whole seconds since the Unix epoch (its fraction dropped)."""
    delta = when - _EPOCH
    return delta.days * 86_400 + delta.seconds


def _clock(wall: int, *, with_date: bool) -> str:
    moment = wall_datetime(wall)
    text = f"{moment:%H:%M}" if moment.second == 0 else f"{moment:%H:%M:%S}"
    return f"{date_text(moment)} {text}" if with_date else text


def jump_text(change: Transition) -> tuple[str, bool]:
    """``'02:00→03:00'`` for a change of offset, and whether dates were needed."""
    old = change.at + change.before
    new = change.at + change.after
    with_date = old // 86_400 != new // 86_400
    return f"{_clock(old, with_date=with_date)}→{_clock(new, with_date=with_date)}", with_date


def _matching_walls(schedule: CronSchedule, lo: int, hi: int) -> tuple[list[int], int]:
    """The first few and the last matching walls in ``[lo, hi)``, and how many match."""
    found: list[int] = []
    count = 0
    wall = schedule.next_wall(lo, hi)
    while wall is not None:
        count += 1
        if len(found) <= _MAX_LISTED:
            found.append(wall)
        else:
            found[-1] = wall  # keep the first few and the last
        wall = schedule.next_wall(wall + 1, hi)
    return found, count


def _wall_list(walls: list[int], count: int, *, with_date: bool) -> str:
    names = [_clock(w, with_date=with_date) for w in walls]
    if count <= _MAX_LISTED:
        return ", ".join(names)
    return f"{names[0]}, {names[1]}, …, {names[-1]} ({count} times)"


def _repeated(change: Transition) -> str:
    shift = change.before - change.after
    name = {3600: "hour", 1800: "half hour", 86_400: "day"}.get(shift, "period")
    lo, hi = change.at + change.after, change.at + change.before
    with_date = lo // 86_400 != (hi - 1) // 86_400
    first = _clock(lo, with_date=with_date)
    last = _clock(hi, with_date=with_date)
    return f"the repeated {name} {first}{_DASH}{last}"


def describe_fire(compiled: CompiledCron, fire: int) -> str | None:
    """Why a fire at UTC second ``fire`` is special under DST, or None when it is not.

    Fixed-time expressions: a wall that does not exist is *moved* to the end of
    the gap, several are *merged* there, and a repeated wall fires on its first
    pass only. Elapsed-time expressions: both passes of a repeated hour fire,
    and walls in a gap are skipped.
    """
    schedule = compiled.schedule
    segment = segment_at(compiled.tz, fire)
    wall = fire + segment.offset
    nearby = transitions_between(compiled.tz, fire - _NEARBY, fire + _NEARBY + 1)
    earlier = [change for change in nearby if change.at <= fire]
    later = [change for change in nearby if change.at > fire]
    previous = earlier[-1] if earlier else None
    upcoming = later[0] if later else None

    if previous is not None and previous.after > previous.before:
        # Spring forward before this fire. Only the first fire after the gap can
        # tell what the gap swallowed.
        elapsed = schedule.follows_elapsed_time
        first_after_gap = compiled.next_after_second(previous.at - 1) if elapsed else None
        if fire == (first_after_gap if elapsed else previous.at):
            gap_lo, gap_hi = previous.at + previous.before, previous.at + previous.after
            walls, count = _matching_walls(schedule, gap_lo, gap_hi)
            jump, with_date = jump_text(previous)
            day = "" if with_date else f" on {date_text(wall_datetime(gap_lo))}"
            listed = _wall_list(walls, count, with_date=with_date)
            if count and elapsed:
                verb = "does" if count == 1 else "do"
                return (
                    f"after a gap: {listed} {verb} not exist{day} (clocks jump {jump}); "
                    f"skipped, as this expression follows elapsed time"
                )
            own = schedule.next_wall(wall, wall + 1) == wall
            if count == 1 and not own:
                return (
                    f"moved: {listed} does not exist{day} (clocks jump {jump}); "
                    f"fires at the end of the gap"
                )
            if count:
                together = f", together with {_clock(wall, with_date=with_date)}" if own else ""
                verb = "falls" if count == 1 else "fall"
                return (
                    f"merged: {listed} {verb} in the gap{day} (clocks jump {jump}); "
                    f"one fire at the end of the gap{together}"
                )

    if previous is not None and previous.after < previous.before:
        repeated_hi = previous.at + previous.before
        if wall < repeated_hi and schedule.follows_elapsed_time:
            return f"second pass of {_repeated(previous)} (clocks went back)"

    if (
        upcoming is not None
        and upcoming.after < upcoming.before
        and wall >= upcoming.at + upcoming.after
    ):
        if schedule.follows_elapsed_time:
            return f"first pass of {_repeated(upcoming)} (fires again in the second pass)"
        return f"first pass of {_repeated(upcoming)} (fires once)"
    return None


def describe_due(trigger: Cron, fire: int) -> str | None:
    """What daylight saving did to the fire of ``trigger`` at UTC second ``fire``, if anything.

    `describe_fire`'s note, and when the fire is the trigger's ``start`` or
    ``end`` and that instant ends a gap, the rule that put it there: a bound
    written inside a gap means the end of the gap.
    """
    note = describe_fire(compiled_cron(trigger.expr, trigger.tz, trigger.key), fire)
    bounds = [
        (what, bound)
        for what, bound in (("start", trigger.start), ("end", trigger.end))
        if bound is not None and _seconds(bound) == fire and bound.microsecond == 0
    ]
    for what, _ in bounds:
        change = next(iter(transitions_between(trigger.tz, fire, fire + 1)), None)
        if change is not None and change.after > change.before:
            jump, _ = jump_text(change)
            sentence = f"its {what} is the end of the gap (clocks jump {jump}): {GAP_RULE}"
            return sentence if note is None else f"{note}; {sentence}"
    return note
