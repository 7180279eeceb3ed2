"""``chronolog next``: preview when a cron expression fires, and what DST does to it."""

from __future__ import annotations

import json
import re
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Final
from zoneinfo import ZoneInfo

import click

from .._clock import wall_clock_now
from .._dst_notes import GAP_RULE, describe_fire, jump_text
from .._errors import InvalidTrigger
from .._triggers import CompiledCron, compiled_cron
from .._zones import (
    MAX_SECONDS,
    instant_of,
    load_zone,
    transitions_between,
)
from ._common import BadUsage, json_option, translate_errors
from ._output import shorten

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["current_time", "next_command"]

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
#: The most fire times one ``chronolog next`` shows (``--count``).
MAX_COUNT: Final = 100_000
#: ``2026-03-08T02:30[America/New_York]``: a local time and its zone (RFC 9557).
_ZONED: Final = re.compile(r"(?P<time>[^\[\]]+)\[(?P<zone>[^\[\]]+)\]")


def current_time() -> datetime:
    """Now, as an aware UTC datetime: the one clock read of this command.

    The read itself lives in ``_clock`` (the only module that may touch the wall
    clock); tests replace this function.
    """
    return wall_clock_now()


def _seconds(when: datetime) -> int:
    delta = when - _EPOCH
    return delta.days * 86_400 + delta.seconds


def _format_offset(offset: timedelta | int) -> str:
    seconds = offset if isinstance(offset, int) else offset // timedelta(seconds=1)
    sign = "-" if seconds < 0 else "+"
    hours, rest = divmod(abs(seconds), 3600)
    minutes, second = divmod(rest, 60)
    text = f"{sign}{hours:02d}:{minutes:02d}"
    return f"{text}:{second:02d}" if second else text


def _date(moment: datetime) -> str:
    """``0001-01-01``: the year with four digits, which ``%Y`` does not promise."""
    return f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"


def _parse_time(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise InvalidTrigger(
            f"--after {text!r} is not an ISO 8601 time; write e.g. '2026-03-08T00:00:00Z' "
            f"or '2026-03-08T00:00-05:00'"
        ) from None


def _parse_after(text: str, tz: str) -> tuple[datetime, str | None]:
    """The instant ``--after`` names, and a sentence when it was a wall time that needs one.

    ``TIME`` with an offset or Z is an instant; ``TIME[Zone]`` is a wall
    time in that zone, read with chronolog's one rule for instants: inside a
    gap it means the end of the gap; when it happens twice, its first pass.
    """
    try:
        when, note = _read_after(text, tz)
        when.astimezone(UTC).astimezone(load_zone(tz))
    except OverflowError:
        where = "UTC" if tz == "UTC" else f"UTC or in {tz}"
        raise InvalidTrigger(
            f"--after {text!r} is outside the years 1-9999 in {where}; "
            f"pick a time a day or more inside them"
        ) from None
    return when, note


def _read_after(text: str, tz: str) -> tuple[datetime, str | None]:
    zoned = _ZONED.fullmatch(text.strip())
    if zoned is None:
        when = _parse_time(text)
        if when.tzinfo is None or when.utcoffset() is None:
            example = text if "T" in text or " " in text else f"{text}T00:00"
            named = tz if tz != "UTC" else "America/New_York"
            raise InvalidTrigger(
                f"--after {text!r} has no UTC offset, and chronolog never guesses one; "
                f"add an offset or Z, e.g. '{example}Z' or '{example}-05:00', or a zone, "
                f"e.g. '{example}[{named}]'"
            )
        return when, None
    local_text, zone_name = zoned.group("time"), zoned.group("zone")
    zone = load_zone(zone_name)
    when = _parse_time(local_text)
    if when.tzinfo is not None:
        offset = when.utcoffset()
        if when.astimezone(zone).utcoffset() != offset:
            raise InvalidTrigger(
                f"--after {text!r}: the offset {_format_offset(offset or timedelta(0))} is not "
                f"{zone_name}'s at that time; drop the offset or fix it"
            )
        return when, None
    local = when.replace(tzinfo=zone)
    instant = instant_of(local)
    shown = instant.astimezone(zone).isoformat(timespec="seconds")
    second = _seconds(instant)
    if instant.astimezone(zone).replace(tzinfo=None) != when:
        change = transitions_between(zone_name, second, second + 1)[0]
        jump, _ = jump_text(change)
        return instant, (
            f"{local_text} does not exist in {zone_name} (clocks jump {jump}): read as "
            f"{shown}: {GAP_RULE}."
        )
    second_pass = _seconds(local.replace(fold=1).astimezone(UTC))
    if second_pass != second:
        change = transitions_between(zone_name, second, second_pass + 1)[0]
        jump, _ = jump_text(change)
        return instant, (
            f"{local_text} happens twice in {zone_name} (clocks go back {jump}): read as "
            f"its first pass, {shown}, as a cron time there fires once, at its first pass."
        )
    return instant, None


class _Fire:
    __slots__ = ("local", "note", "utc")

    def __init__(self, utc: datetime, local: datetime, note: str | None) -> None:
        self.utc = utc
        self.local = local
        self.note = note

    def as_json(self) -> dict[str, str | None]:
        offset = self.local.utcoffset()
        assert offset is not None
        return {
            "utc": f"{_date(self.utc)}T{self.utc:%H:%M:%S}Z",
            "local": self.local.isoformat(),
            "offset": _format_offset(offset),
            "note": self.note,
        }

    def as_line(self) -> str:
        offset = self.local.utcoffset()
        assert offset is not None
        zone = f"{self.local.tzname()} ({_format_offset(offset)})"
        local, utc = self.local, self.utc
        line = (
            f"{local:%a} {_date(local)} {local:%H:%M:%S} {zone}  =  {_date(utc)} {utc:%H:%M:%S}Z"
        )
        return f"{line}  {self.note}" if self.note else line


def upcoming_fires(compiled: CompiledCron, after: datetime, count: int) -> Iterator[_Fire]:
    """The next ``count`` fires strictly after ``after``, with their DST notes, one by
    one as they are found (the command prints each before it looks for the next)."""
    zone = ZoneInfo(compiled.tz)
    second = _seconds(after)
    for _ in range(count):
        found = compiled.next_after_second(second)
        if found is None or found > MAX_SECONDS:
            return
        utc = _EPOCH + timedelta(seconds=found)
        yield _Fire(utc, utc.astimezone(zone), describe_fire(compiled, found))
        second = found


def _stream_json(fires: Iterator[_Fire]) -> None:
    """The fires as one JSON array, each element written as soon as it is found
    (the same text as ``json.dumps(list, indent=2)``)."""
    opened = False
    for fire in fires:
        element = json.dumps(fire.as_json(), indent=2, ensure_ascii=False)
        sys.stdout.write(("[\n" if not opened else ",\n") + textwrap.indent(element, "  "))
        sys.stdout.flush()
        opened = True
    sys.stdout.write("\n]\n" if opened else "[]\n")
    sys.stdout.flush()


def _count(context: click.Context, parameter: click.Parameter, value: str) -> int:
    try:
        count = int(value)
    except ValueError:  # also a number with more digits than Python reads
        raise BadUsage(
            f"--count {shorten(value, 40)!r} is not a whole number; give e.g. 10"
        ) from None
    if not 1 <= count <= MAX_COUNT:
        raise BadUsage(
            f"--count {count} is not from 1 to {MAX_COUNT}, the most fire times one preview "
            f"shows; give a later --after to see further"
        )
    return count


@click.command("next")
@click.argument("expr")
@click.option("--tz", default="UTC", show_default=True, help="IANA time zone of the expression.")
@click.option(
    "--count",
    default="10",
    show_default=True,
    callback=_count,
    help=f"How many fire times to show (at most {MAX_COUNT}).",
)
@click.option(
    "--after",
    metavar="TIME",
    help="Show fires strictly after this ISO 8601 time with an offset or Z (default: now).",
)
@click.option(
    "--key",
    metavar="NAME",
    help="Key that picks the values of hashed fields (H): the task's name.",
)
@json_option
@translate_errors
def next_command(
    expr: str, tz: str, count: int, after: str | None, key: str | None, as_json: bool
) -> None:
    """Show the upcoming fire times of the cron expression EXPR.

    Each line gives the local time (zone abbreviation and UTC offset) and the
    UTC instant, and says when a daylight-saving change moved, merged or
    repeated a fire. Quote EXPR: chronolog next '30 2 * * *' --tz America/New_York

    --after takes an instant ('2026-03-08T00:00Z', '2026-03-08T00:00-05:00') or
    a local time in a zone ('2026-03-08T02:30[America/New_York]'); a local time
    inside a DST gap means the end of the gap.
    """
    note = None
    try:
        if key is not None and not key:
            raise InvalidTrigger("--key must not be empty; give the task's name")
        compiled = compiled_cron(expr, tz, key)
        if after is not None:
            start, note = _parse_after(after, tz)
        else:
            start = current_time()
    except InvalidTrigger as exc:
        message = str(exc)
        if "has hashed values (H)" in message:
            message = (
                f"cron expression {expr!r} has hashed values (H), which are picked from a "
                f"key: the task's name; give it with --key, e.g. --key backup"
            )
        raise BadUsage(message, kind="InvalidTrigger") from exc
    fires = upcoming_fires(compiled, start, count)
    if as_json:
        _stream_json(fires)
        return
    kind = (
        "elapsed time: the hour field has * or a step, so both passes of a repeated hour "
        "fire and times in a gap are skipped"
        if compiled.follows_elapsed_time
        else "fixed times: each matching wall-clock time fires once, a time in a gap fires "
        "at the end of the gap"
    )
    click.echo(f"{expr!r} in {tz} follows {kind}.")
    schedule = compiled.schedule
    if schedule.key is not None:
        click.echo(f"Hashed with key {schedule.key!r}: {schedule.resolved!r}.")
    if note is not None:
        click.echo(f"--after {note}")
    shown = start.astimezone(ZoneInfo(tz)).isoformat(timespec="seconds")
    click.echo(f"Next {count} after {shown}:")
    shown_count = 0
    for fire in fires:
        click.echo(f"  {fire.as_line()}")
        shown_count += 1
    if shown_count < count:
        click.echo("  (no more fires before the year 10000)")
