"""Hypothesis strategies for chronolog's values: cron expressions to whole logs.

Every strategy is a function with keyword-only options, named in the plural
after what it draws. All of them need Hypothesis
(``pip install 'chronolog[testing]'``); the rest of ``chronolog.testing``
does not.

* :func:`cron_expressions` -- strings that ``chronolog.Cron`` accepts;
* :func:`time_zones` -- IANA names, with and without daylight-saving time;
* :func:`instants` -- aware UTC datetimes, biased towards a zone's offset changes;
* :func:`triggers`, :func:`policies`, :func:`task_definitions`;
* :func:`event_logs` -- whole valid logs, written by a model of a scheduler.

Why one module of this size: the strategies build on each other (a log is
drawn from task definitions, which are drawn from triggers and policies),
and users import them from one place.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Final
from zoneinfo import available_timezones

import attrs

try:
    from hypothesis import strategies as st
except ImportError as error:  # pragma: no cover - exercised in a venv without Hypothesis
    raise ImportError(
        "chronolog.testing.strategies needs Hypothesis, which is not installed; "
        "install it with: pip install 'chronolog[testing]'"
    ) from error

from .._errors import ConfigError, InvalidTrigger
from .._events import SkipReason
from .._policies import CatchUp, Overlap, Policy, Retry
from .._triggers import At, Cron, Every, FileWatch, Manual
from .._zones import load_zone, transitions_between
from ._log_model import ACTIONS, TASK_NAMES, LogModel

if TYPE_CHECKING:
    from collections.abc import Iterable

    from hypothesis.strategies import DrawFn, SearchStrategy

    from .._events import Event
    from .._scheduler import Scheduler
    from .._triggers import Trigger
    from .._views import TaskStatus
    from .simulate import Simulation

__all__ = [
    "TaskDefinition",
    "cron_expressions",
    "event_logs",
    "instants",
    "policies",
    "task_definitions",
    "time_zones",
    "triggers",
]

_MONTHS: Final = (
    "jan",
    "feb",
    "mar",
    "apr",
    "may",
    "jun",
    "jul",
    "aug",
    "sep",
    "oct",
    "nov",
    "dec",
)
_WEEKDAYS: Final = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_NICKNAMES: Final = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight")

#: A few zones that together cover what makes time zones hard: no DST,
#: northern and southern DST, half-hour DST (Lord Howe), DST that goes
#: negative in the tz database (Dublin), +2 h DST (Troll), odd offsets
#: (Kathmandu, Chatham), a skipped day (Apia, 2011), DST abolished (Sao
#: Paulo 2019, Tehran 2022), and DST suspended for Ramadan (Casablanca).
_ZONES: Final = (
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Australia/Sydney",
    "Asia/Kolkata",
    "Europe/London",
    "Europe/Dublin",
    "America/Los_Angeles",
    "America/St_Johns",
    "America/Havana",
    "America/Santiago",
    "America/Sao_Paulo",
    "Australia/Lord_Howe",
    "Pacific/Auckland",
    "Pacific/Chatham",
    "Pacific/Apia",
    "Asia/Jerusalem",
    "Asia/Tehran",
    "Asia/Kathmandu",
    "Asia/Tokyo",
    "Africa/Casablanca",
    "Antarctica/Troll",
    "Pacific/Kiritimati",
)
#: Zones whose names depend on the machine reading the log; never drawn.
_MACHINE_LOCAL: Final = frozenset({"localtime", "posixrules", "Factory"})
#: "Has DST" means: the offset changes at least once in these years.
_DST_YEARS: Final = (datetime(2020, 1, 1, tzinfo=UTC), datetime(2036, 1, 1, tzinfo=UTC))
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_DEFAULT_START: Final = datetime(2000, 1, 1, tzinfo=UTC)
_DEFAULT_END: Final = datetime(2040, 1, 1, tzinfo=UTC)
#: Offsets from a transition that tend to matter: the instant itself, a
#: second either side, half an hour and whole hours around it.
_NEAR_OFFSETS: Final = (0, -1, 1, -1800, 1800, -3600, 3600, -5400, 5400, -7200, 7200)
_INTERVALS: Final = tuple(
    timedelta(seconds=s) for s in (1, 60, 300, 900, 3600, 5400, 86400, 7 * 86400)
)
_TRIGGER_KINDS: Final = ("cron", "every", "at", "manual", "file_watch")
#: Keys for hashed cron fields (H), as a scheduler would take them from task names.
_HASH_KEYS: Final = ("backup", "report", "sync-users", "nightly.export")


# -- cron expressions ----------------------------------------------------------------


def _value(low: int, high: int, names: tuple[str, ...]) -> SearchStrategy[str]:
    numbers = st.integers(low, high).map(str)
    if not names:
        return numbers
    first = 1 if names is _MONTHS else 0
    spelled = st.integers(max(low, first), min(high, first + len(names) - 1)).map(
        lambda value: names[value - first]
    )
    return st.one_of(numbers, spelled, spelled.map(str.upper))


def _range(low: int, high: int, *, wrap: bool) -> SearchStrategy[str]:
    """``a-b``; with ``wrap``, also ``a > b`` (a range that wraps around the field's cycle)."""
    pairs = st.tuples(st.integers(low, high), st.integers(low, high))
    if not wrap:
        return pairs.map(lambda pair: f"{min(pair)}-{max(pair)}")
    return pairs.map(lambda pair: f"{pair[0]}-{pair[1]}")


def _hashed_item(
    low: int, high: int, *, steps: bool, top: int | None = None
) -> SearchStrategy[str]:
    """``H``, ``H(a-b)`` and, with ``steps``, ``H/s``, ``H(a-b)/s``.

    ``top`` keeps every value a key could pick at or below it (day-of-month:
    28, so that the expression fires in every month whatever the key).
    """
    upper = high if top is None else top
    bounds = st.tuples(st.integers(low, upper), st.integers(low, upper))
    ranged = bounds.map(lambda pair: f"H({pair[0]}-{pair[1]})")
    if top is not None:
        ranged = bounds.map(lambda pair: f"H({min(pair)}-{max(pair)})")
    choices = [st.just("H"), ranged]
    if steps:
        step = st.integers(1, (upper if top is not None else high) - low + 1)
        choices += [
            step.map(lambda s: f"H/{s}"),
            st.tuples(ranged, step).map(lambda p: f"{p[0]}/{p[1]}"),
        ]
    return st.one_of(choices)


def _item(
    low: int,
    high: int,
    names: tuple[str, ...],
    *,
    steps: bool,
    wrap: bool,
    hashed: bool,
    hash_top: int | None = None,
) -> SearchStrategy[str]:
    choices = [_value(low, high, names), _range(low, high, wrap=wrap)]
    if steps:
        step = st.integers(1, high - low + 1)
        choices += [
            st.tuples(_range(low, high, wrap=wrap), step).map(lambda p: f"{p[0]}/{p[1]}"),
            st.tuples(st.integers(low, high), step).map(lambda p: f"{p[0]}/{p[1]}"),
        ]
    if hashed:
        choices.append(_hashed_item(low, high, steps=steps, top=hash_top))
    return st.one_of(choices)


#: Day-of-month forms beyond numbers: last day, days before it, nearest weekday.
_DAY_SPECIALS: Final = st.one_of(
    st.just("L"),
    st.just("LW"),
    st.integers(0, 30).map(lambda n: f"L-{n}"),
    st.integers(1, 31).map(lambda day: f"{day}W"),
    st.integers(1, 31).map(lambda day: f"W{day}"),
    st.integers(1, 30).map(lambda day: f"{day}-L"),
)


def _weekday_specials() -> SearchStrategy[str]:
    """Day-of-week forms beyond numbers: the last such weekday, the nth one."""
    weekday = st.one_of(st.integers(0, 7).map(str), st.sampled_from(_WEEKDAYS))
    return st.one_of(
        weekday.map(lambda day: f"{day}L"),
        weekday.map(lambda day: f"L{day}"),
        st.tuples(weekday, st.integers(1, 5)).map(lambda p: f"{p[0]}#{p[1]}"),
    )


def _field(
    low: int,
    high: int,
    names: tuple[str, ...] = (),
    *,
    wildcard: bool | None = None,
    extended: bool = False,
    hashed: bool = False,
    specials: SearchStrategy[str] | None = None,
    hash_top: int | None = None,
) -> SearchStrategy[str]:
    """A field; ``wildcard`` True: written with ``*`` or a step, False: neither, None: any.

    ``extended`` adds wrap-around ranges, ``specials`` (and ``?``, in a day
    field, when given); ``hashed`` adds ``H`` items.
    """
    item = _item(
        low,
        high,
        names,
        steps=wildcard is not False,
        wrap=extended,
        hashed=hashed,
        hash_top=hash_top,
    )
    if extended and specials is not None:
        item = st.one_of(item, specials)
    plain = st.lists(item, min_size=1, max_size=3).map(",".join)
    star = st.one_of(st.just("*"), st.integers(1, high - low + 1).map(lambda step: f"*/{step}"))
    if extended and specials is not None:
        star = st.one_of(star, st.just("?"))
    if wildcard is None:
        return st.one_of(star, plain)
    if wildcard:
        return st.one_of(star, plain.filter(lambda text: "/" in text))
    return plain


def _sparse_field(most: int, *, hashed: bool = False) -> SearchStrategy[str]:
    """A minute or second field that matches at most ``most`` values of 0-59."""
    listed = st.lists(st.integers(0, 59), min_size=1, max_size=most, unique=True).map(
        lambda values: ",".join(map(str, sorted(values)))
    )
    stepped = st.integers(-(-60 // most), 60).map(lambda step: f"*/{step}")
    if not hashed:
        return st.one_of(listed, stepped)
    hashed_steps = st.integers(-(-60 // most), 60).map(lambda step: f"H/{step}")
    return st.one_of(listed, stepped, st.just("H"), hashed_steps)


def _parses(expr: str) -> bool:
    try:
        Cron(expr)
    except InvalidTrigger:
        return False
    return True


def _fires_whatever_the_key(expr: str) -> bool:
    """A hashed month only with a day-of-month every month has (or one hashed below 29)."""
    fields = expr.split()
    if len(fields) < 5 or "h" not in fields[3].lower():
        return True
    days = fields[2]
    return days in ("*", "?") or all(item.lower().startswith("h") for item in days.split(","))


def cron_expressions(
    *,
    seconds: bool | None = False,
    nicknames: bool = True,
    follows_elapsed_time: bool | None = None,
    max_fires_per_hour: int | None = None,
    extended: bool = True,
    hashed: bool = False,
) -> SearchStrategy[str]:
    """Cron expressions that ``chronolog.Cron`` accepts.

    Fields mix ``*``, numbers, names (``jan``, ``MON``), ranges, steps and
    lists. ``seconds``: False draws five fields, True six (the sixth is the
    second), None either. ``nicknames`` adds ``@daily`` and friends.
    ``follows_elapsed_time``: True draws only expressions whose hour field
    has ``*`` or a step (they follow elapsed time across DST changes), False
    only fixed-time ones (each matching wall time fires once), None both.
    ``max_fires_per_hour`` keeps the minute (and second) fields sparse, so
    that simulations of the drawn schedules stay cheap.

    ``extended`` (the default) adds what real crontabs use beyond that:
    wrap-around ranges (``22-2``, ``fri-mon``), ``L``, ``L-3``, ``15W``,
    ``LW``, ``5L``, ``fri#2``, ``?``, in any case; ``extended=False`` draws
    only what every cron reads. ``hashed=True`` adds ``H`` fields, whose
    values come from a key: build those with ``Cron(expr, key=...)`` (a
    scheduler uses the task name). Every drawn hashed expression fires
    whatever the key.
    """
    if max_fires_per_hour is not None and max_fires_per_hour < 1:
        raise ConfigError(
            "cron_expressions(max_fires_per_hour=...) must be at least 1, "
            f"got {max_fires_per_hour}"
        )
    if seconds not in (True, False, None):
        raise ConfigError(
            f"cron_expressions(seconds=...) takes True, False or None, got {seconds!r}"
        )
    hour = _field(0, 23, wildcard=follows_elapsed_time, extended=extended, hashed=hashed)
    minute, second = (
        _field(0, 59, extended=extended, hashed=hashed),
        _field(0, 59, extended=extended, hashed=hashed),
    )
    if max_fires_per_hour is not None:
        # A sixth field multiplies the fires: then the minute is a single value.
        minute = _sparse_field(max_fires_per_hour, hashed=hashed)
        second = _sparse_field(max_fires_per_hour, hashed=hashed)
        if seconds is not False:
            minute = st.integers(0, 59).map(str)
    days = _field(1, 31, specials=_DAY_SPECIALS, hash_top=28, extended=extended, hashed=hashed)
    weekdays = _field(
        0, 7, _WEEKDAYS, specials=_weekday_specials(), extended=extended, hashed=hashed
    )
    five = st.tuples(
        minute, hour, days, _field(1, 12, _MONTHS, extended=extended, hashed=hashed), weekdays
    ).map(" ".join)
    six = st.tuples(five, second).map(" ".join)
    shapes = {False: [five], True: [six], None: [five, six]}[seconds]
    choices: list[SearchStrategy[str]] = list(shapes)
    if extended:
        # Letters in any case: 'l', 'lw', '15w', 'fri#2', 'h'.
        choices = [
            st.tuples(shape, st.booleans()).map(lambda p: p[0].lower() if p[1] else p[0])
            for shape in choices
        ]
    if nicknames and seconds is not True:
        names = list(_NICKNAMES) if follows_elapsed_time is not True else []
        if follows_elapsed_time is not False:
            names.append("@hourly")
        choices.append(st.sampled_from(names))
    return st.one_of(choices).filter(_fires_whatever_the_key).filter(_parses)


# -- time zones and instants ----------------------------------------------------------


def _seconds(when: datetime) -> int:
    return int((when - _EPOCH).total_seconds())


@lru_cache(maxsize=1024)
def _has_dst(zone: str) -> bool:
    low, high = (_seconds(when) for when in _DST_YEARS)
    return bool(transitions_between(zone, low, high))


@lru_cache(maxsize=1)
def _all_zones() -> tuple[str, ...]:
    return tuple(sorted(set(available_timezones()) - _MACHINE_LOCAL))


def time_zones(*, dst: bool | None = None, all_zones: bool = False) -> SearchStrategy[str]:
    """IANA time zone names.

    By default from a curated set of about twenty zones that covers the hard
    cases (half-hour and negative DST, southern hemisphere, skipped days,
    abolished DST). ``all_zones=True`` draws from every zone on this machine.
    ``dst=True`` keeps zones whose offset changes between 2020 and 2036,
    ``dst=False`` zones whose offset does not.
    """
    names = _all_zones() if all_zones else _ZONES
    if dst is None:
        return st.sampled_from(names)
    chosen = [name for name in names if _has_dst(name) is dst]
    return st.sampled_from(chosen)


def _bound(value: datetime, what: str) -> datetime:
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise ConfigError(f"instants({what}=...) needs an aware datetime, got {value!r}")
    return value.astimezone(UTC)


def _instants_in(zone: str, low: int, high: int, microseconds: bool) -> SearchStrategy[datetime]:
    load_zone(zone)
    uniform = st.integers(low, high)
    changes = [change.at for change in transitions_between(zone, low, high + 1)]
    seconds: SearchStrategy[int] = uniform
    if changes:
        offsets = st.one_of(st.sampled_from(_NEAR_OFFSETS), st.integers(-4 * 3600, 4 * 3600))
        near = st.tuples(st.sampled_from(changes), offsets).map(
            lambda pair: min(max(pair[0] + pair[1], low), high)
        )
        seconds = st.one_of(near, uniform)
    instants = seconds.map(lambda second: _EPOCH + timedelta(seconds=second))
    if not microseconds:
        return instants
    return st.tuples(instants, st.integers(0, 999_999)).map(
        lambda pair: min(
            pair[0] + timedelta(microseconds=pair[1]), _EPOCH + timedelta(seconds=high)
        )
    )


def instants(
    *,
    zone: str | SearchStrategy[str] = "UTC",
    start: datetime = _DEFAULT_START,
    end: datetime = _DEFAULT_END,
    microseconds: bool = False,
) -> SearchStrategy[datetime]:
    """Aware UTC datetimes in ``[start, end]``, about half of them near ``zone``'s offset changes.

    Near means the change itself, a second either side, or up to four hours
    away -- where daylight-saving bugs live. ``zone`` is a name or a strategy
    of names (such as ``time_zones()``). Whole seconds unless
    ``microseconds=True``.
    """
    low, high = _seconds(_bound(start, "start")), _seconds(_bound(end, "end"))
    if high < low:
        raise ConfigError(f"instants(): end {end!r} is before start {start!r}")
    if isinstance(zone, str):
        return _instants_in(zone, low, high, microseconds)
    return zone.flatmap(lambda name: _instants_in(name, low, high, microseconds))


# -- triggers, policies, task definitions ------------------------------------------------


@st.composite
def _bounds(
    draw: DrawFn, moments: SearchStrategy[datetime]
) -> tuple[datetime | None, datetime | None]:
    first, second = draw(st.none() | moments), draw(st.none() | moments)
    if first is not None and second is not None and second < first:
        first, second = second, first
    return first, second


def triggers(
    *,
    kinds: Iterable[str] = ("cron", "every", "at"),
    zones: SearchStrategy[str] | None = None,
    start: datetime = datetime(2026, 1, 1, tzinfo=UTC),
    end: datetime = datetime(2028, 1, 1, tzinfo=UTC),
    bounds: bool = True,
    max_fires_per_hour: int | None = None,
) -> SearchStrategy[Trigger]:
    """Triggers of the given ``kinds`` (``cron``, ``every``, ``at``, ``manual``, ``file_watch``).

    Instants (``At`` times, ``Every`` anchors, ``start``/``end`` bounds) are
    drawn from ``instants()`` in ``[start, end]``, near the zone's DST
    changes; cron zones from ``zones`` (default ``time_zones()``). Cron
    expressions come from ``cron_expressions(hashed=True)``, each with a
    ``key`` (kept only when it has ``H``).
    ``bounds=False`` never sets a trigger's ``start``/``end``.
    ``max_fires_per_hour`` bounds how often a drawn trigger fires (cron
    minute fields, ``Every`` intervals), to keep simulations cheap.
    """
    wanted = tuple(kinds)
    unknown = [kind for kind in wanted if kind not in _TRIGGER_KINDS]
    if unknown or not wanted:
        raise ConfigError(
            f"triggers(kinds=...) takes some of {', '.join(_TRIGGER_KINDS)}, got {wanted!r}"
        )
    zone_names = zones if zones is not None else time_zones()
    moments = instants(zone=zone_names, start=start, end=end)
    limits = _bounds(moments) if bounds else st.just((None, None))
    shortest = 1 if max_fires_per_hour is None else -(-3600 // max_fires_per_hour)
    intervals = st.one_of(
        st.sampled_from([i for i in _INTERVALS if i.total_seconds() >= shortest]),
        st.integers(shortest, 7 * 86400).map(_seconds_delta),
    )
    built: dict[str, SearchStrategy[Trigger]] = {
        "cron": st.builds(
            lambda expr, tz, edges, key: Cron(expr, tz=tz, start=edges[0], end=edges[1], key=key),
            cron_expressions(max_fires_per_hour=max_fires_per_hour, hashed=True),
            zone_names,
            limits,
            st.sampled_from(_HASH_KEYS),
        ),
        "every": st.builds(
            lambda interval, anchor, edges: Every(
                interval, anchor=anchor, start=edges[0], end=edges[1]
            ),
            intervals,
            moments,
            limits,
        ),
        "at": moments.map(At),
        "manual": st.just(Manual()),
        "file_watch": st.sampled_from(["data/input.csv", "inbox.txt"]).map(FileWatch),
    }
    return st.one_of([built[kind] for kind in wanted])


def _seconds_delta(seconds: int) -> timedelta:
    return timedelta(seconds=seconds)


def policies(
    *,
    overlaps: Iterable[Overlap] = tuple(Overlap),
    catch_ups: Iterable[CatchUp] = tuple(CatchUp),
    max_attempts: int = 3,
    timeouts: bool = True,
    misfire_grace: bool = True,
    jitter: bool = False,
    max_runs: bool = False,
    paused: bool = False,
) -> SearchStrategy[Policy]:
    """Per-task policies. Options narrow what varies.

    ``overlaps`` and ``catch_ups`` are the values to draw from;
    ``max_attempts`` the most retry attempts (1: never retry); ``timeouts``,
    ``misfire_grace``, ``jitter``, ``max_runs`` and ``paused`` say whether
    those may be set at all (the defaults leave jitter, max_runs and paused
    off, as most tasks have them).
    """
    overlap_values, catch_up_values = tuple(overlaps), tuple(catch_ups)
    if not overlap_values or not catch_up_values:
        raise ConfigError("policies(): overlaps= and catch_ups= need at least one value each")
    if max_attempts < 1:
        raise ConfigError(f"policies(max_attempts=...) must be at least 1, got {max_attempts}")

    def maybe(allowed: bool, values: SearchStrategy[Any]) -> SearchStrategy[Any]:
        return st.none() | values if allowed else st.none()

    minutes = st.integers(1, 180).map(lambda m: timedelta(minutes=m))
    return st.builds(
        Policy,
        overlap=st.sampled_from(overlap_values),
        catch_up=st.sampled_from(catch_up_values),
        catch_up_limit=st.integers(1, 100),
        misfire_grace=maybe(misfire_grace, minutes),
        retry=st.builds(
            Retry,
            max_attempts=st.integers(1, max_attempts),
            backoff=st.integers(1, 600).map(_seconds_delta),
            factor=st.sampled_from([1.0, 1.5, 2.0]),
        ),
        timeout=maybe(timeouts, minutes),
        jitter=maybe(jitter, st.integers(1, 300).map(_seconds_delta)),
        paused=st.booleans() if paused else st.just(False),
        max_runs=maybe(max_runs, st.integers(1, 20)),
    )


@attrs.frozen
class TaskDefinition:
    """A task as ``Scheduler.add`` takes it, minus the target (see :func:`task_definitions`)."""

    name: str
    trigger: Trigger
    policy: Policy = attrs.field(factory=Policy)

    def options(self) -> dict[str, Any]:
        """The keyword arguments of ``Scheduler.add`` that give this policy."""
        policy = self.policy
        return {
            "overlap": policy.overlap,
            "catch_up": policy.catch_up,
            "catch_up_limit": policy.catch_up_limit,
            "misfire_grace": policy.misfire_grace,
            "retry": policy.retry,
            "timeout": policy.timeout,
            "jitter": policy.jitter,
            "paused": policy.paused,
            "max_runs": policy.max_runs,
            "remove_after_run": policy.remove_after_run,
        }

    async def add_to(self, scheduler: Scheduler | Simulation, target: Any) -> TaskStatus:
        """Add this task with ``target``; a ``Simulation`` also declares it after restarts."""
        return await scheduler.add(self.name, self.trigger, target, **self.options())


def task_definitions(
    *,
    names: SearchStrategy[str] | None = None,
    triggers: SearchStrategy[Trigger] | None = None,
    policies: SearchStrategy[Policy] | None = None,
) -> SearchStrategy[TaskDefinition]:
    """Task definitions: a name, a trigger and a policy.

    Names default to a few real and awkward ones (``backup``, ``a@b``,
    ``Zürich ✓``). For several tasks at once, draw
    ``st.lists(task_definitions(), unique_by=lambda d: d.name)``.
    """
    return st.builds(
        TaskDefinition,
        name=names if names is not None else st.sampled_from(TASK_NAMES),
        trigger=triggers if triggers is not None else _default_triggers(),
        policy=policies if policies is not None else _default_policies(),
    )


def _default_triggers() -> SearchStrategy[Trigger]:
    return triggers()


def _default_policies() -> SearchStrategy[Policy]:
    return policies()


# -- whole logs ------------------------------------------------------------------------------


_MODEL_POLICIES: Final = st.builds(
    Policy,
    overlap=st.sampled_from(Overlap),
    retry=st.builds(Retry, max_attempts=st.integers(1, 4)),
    paused=st.booleans(),
)
_SKIP_REASONS: Final = (SkipReason.OVERLAP, SkipReason.REDEFINED, SkipReason.MISSED)


@st.composite
def _model_logs(
    draw: DrawFn, max_steps: int, actions: tuple[str, ...], names: tuple[str, ...]
) -> list[Event]:
    model = LogModel()
    model.define(draw(st.sampled_from(names)), Policy())
    for _ in range(draw(st.integers(0, max_steps))):
        model.tick(draw(st.integers(0, 90)))
        action = draw(st.sampled_from(actions))
        token = draw(st.integers(0, 10**6))
        if action == "define":
            model.define(draw(st.sampled_from(names)), draw(_MODEL_POLICIES))
        elif action == "crash_and_restart":
            model.crash_and_restart()
        elif model.tasks:
            present = sorted(model.tasks)
            name = present[token % len(present)]
            if action == "schedule":
                kind = draw(st.sampled_from(["time", "time", "manual", "file"]))
                model.schedule(name, kind, token)
            elif action == "start":
                model.start(name, token)
            elif action == "finish":
                outcome = draw(st.sampled_from(["completed", "completed", "failed", "retry"]))
                model.finish(name, token, outcome)
            elif action == "skip":
                model.skip(name, token, draw(st.sampled_from(_SKIP_REASONS)))
            elif action == "skip_missed":
                # Sometimes after an outage: the due times it missed are one range.
                if draw(st.booleans()):
                    model.tick(draw(st.integers(60, 6 * 3600)))
                model.skip_missed(name, draw(st.integers(1, 400)))
            else:
                getattr(model, action)(name)
    return model.records


def event_logs(
    *,
    max_steps: int = 80,
    crashes: bool = True,
    task_names: Iterable[str] = TASK_NAMES,
) -> SearchStrategy[list[Event]]:
    """Valid logs: lists of records with seqs 1..n, written by driving a model scheduler.

    The model defines, schedules, starts, finishes, skips, pauses, resumes
    and removes tasks (time-based, manual and file-change occurrences),
    skips due times missed in an outage (one by one, or as one range record:
    ``Skipped`` with ``last_due`` and ``count``), and
    with ``crashes=True`` also restarts after crashes (interrupted runs end
    ``Failed``). Its logs keep every rule of ``check_invariants`` and pass
    ``assert_exactly_once`` and ``assert_replay_consistent``; they do not
    run every due time (steps skip and abandon occurrences at random), so
    they are no input for ``assert_nothing_lost``. Mutate one to check that
    a checker of your own notices.
    """
    if max_steps < 0:
        raise ConfigError(f"event_logs(max_steps=...) must be 0 or more, got {max_steps}")
    names = tuple(task_names)
    if not names:
        raise ConfigError("event_logs(task_names=...) needs at least one name")
    actions = ACTIONS if crashes else tuple(a for a in ACTIONS if a != "crash_and_restart")
    return _model_logs(max_steps, actions, names)
