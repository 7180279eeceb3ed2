"""Our cron parser and matcher against croniter, plus round-trips and fuzzing.

In UTC there is no DST, so chronolog and croniter must agree fire for fire on
every expression both accept and read alike (croniter runs with
``implement_cron_bug=True``, which is the Vixie day-field rule chronolog
implements). That covers wrap-around ranges, ``L``, ``nW``, ``fri#2``,
croniter's ``L5`` and ``?``, and hashed fields (``H``) against
``croniter(..., hash_id=key)``. Where the two read an expression differently on
purpose, the generators leave it out, each for a reason given here:

* ``a-a``: croniter reads it as the whole field, chronolog as the value ``a``;
* a step on a wrap-around range (``50-10/15``): croniter is one off after the
  wrap; chronolog counts like Quartz (50, 5);
* ``nW`` with a restricted day-of-week, or ``fri#2``/``L5`` with a restricted
  day-of-month: croniter ignores the other field (or gives up), chronolog
  applies the Vixie rule (either matches);
* a bare ``H`` in day-of-month: croniter picks from 1-31, chronolog from 1-28
  (as Jenkins), so that it fires every month;
* a day field that contains ``*`` but does not start with it (``1,*/2``):
  croniter treats it as unrestricted, Vixie cron and chronolog look only at
  the first character.

croniter also counts ``L`` as one of the 31 days, so ``L,2-L`` reads as
every day (the 1st included), and it gives up (``CroniterBadDateError``) on
some ``L`` + ``#`` combinations, such as ``* * L * 0#1``; those examples are
dropped. Forms croniter does not read (``LW``, ``L-3``, ``5L``) are checked
against the brute-force oracle in ``test_dst_oracle.py`` instead.
"""

from datetime import UTC, datetime, timedelta

import msgspec
from croniter import croniter
from croniter.croniter import CroniterBadDateError, CroniterError
from hypothesis import assume, given, note
from hypothesis import strategies as st

from chronolog import Cron, InvalidTrigger
from chronolog._cron import parse_cron, wall_datetime, wall_seconds
from chronolog._events import TaskDefined, decode_event, encode_event
from chronolog.testing.strategies import cron_expressions

_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_WEEKDAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]


def _value(low: int, high: int, names: list[str] | None) -> st.SearchStrategy[str]:
    numbers = st.integers(low, high).map(str)
    if names is None:
        return numbers
    first = low if names is _MONTHS else 0
    spelled = st.integers(low, min(high, first + len(names) - 1)).map(lambda v: names[v - first])
    return st.one_of(numbers, spelled, spelled.map(str.upper))


def _item(
    low: int, high: int, names: list[str] | None = None, *, hashed: bool = False
) -> st.SearchStrategy[str]:
    def ranged(pair: tuple[int, int]) -> str:
        a, b = sorted(pair)
        return f"{a}-{b}"

    span = high - low + 1
    single = _value(low, high, names)
    pairs = st.tuples(st.integers(low, high), st.integers(low, high)).filter(
        lambda p: p[0] != p[1]
    )
    steps = st.integers(1, span)
    choices = [
        single,
        pairs.map(ranged),
        pairs.map(lambda p: f"{p[0]}-{p[1]}"),  # wrap-around when p[0] > p[1]
        steps.map(lambda s: f"*/{s}"),
        st.tuples(pairs.map(ranged), steps).map(lambda p: f"{p[0]}/{p[1]}"),
        st.tuples(st.integers(low, high), steps).map(lambda p: f"{p[0]}/{p[1]}"),
    ]
    if hashed:
        choices += [
            st.just("H"),
            pairs.map(ranged).map(lambda r: f"H({r})"),
            steps.map(lambda s: f"H/{s}"),
            st.tuples(pairs.map(ranged), steps).map(lambda p: f"H({p[0]})/{p[1]}"),
        ]
    return st.one_of(choices)


def _field(
    low: int, high: int, names: list[str] | None = None, *, hashed: bool = False
) -> st.SearchStrategy[str]:
    return st.one_of(
        st.just("*"),
        st.lists(_item(low, high, names, hashed=hashed), min_size=1, max_size=3).map(",".join),
    )


#: Day-of-month fields with L or W, as croniter reads them (W alone in its field).
_SPECIAL_DAYS = st.one_of(
    st.lists(
        st.one_of(
            st.just("L"), st.integers(1, 31).map(str), st.integers(1, 30).map("{}-L".format)
        ),
        min_size=1,
        max_size=3,
    ).map(",".join),
    st.integers(1, 31).map("{}W".format),
    st.integers(1, 31).map("W{}".format),
    st.just("?"),
)
#: Day-of-week fields of nth and last weekdays only (croniter refuses to mix
#: them with plain weekdays).
_SPECIAL_WEEKDAYS = st.one_of(
    st.lists(
        st.one_of(
            st.tuples(st.integers(0, 7), st.integers(1, 5)).map(lambda p: f"{p[0]}#{p[1]}"),
            st.tuples(st.sampled_from(_WEEKDAYS), st.integers(1, 5)).map(
                lambda p: f"{p[0]}#{p[1]}"
            ),
            st.integers(0, 7).map("L{}".format),
        ),
        min_size=1,
        max_size=3,
    ).map(",".join),
    st.just("?"),
)


def _number(word: str) -> int | None:
    if word.isdigit():
        return int(word)
    for names in (_MONTHS, _WEEKDAYS):
        if word.lower() in names:
            return names.index(word.lower()) + (1 if names is _MONTHS else 0)
    return None


def _read_alike(expr: str) -> bool:
    """False for the expressions croniter reads differently on purpose (module docstring)."""
    fields = expr.split()
    for text in fields:
        for item in text.split(","):
            base, _, step = item.partition("/")
            bounds = [_number(b) for b in base.removeprefix("H(").removesuffix(")").split("-")]
            if len(bounds) != 2 or None in bounds:
                continue
            if bounds[0] == bounds[1]:
                return False  # a-a
            if step and not base.startswith("H") and bounds[0] > bounds[1]:  # type: ignore[operator]
                return False  # a step on a wrap-around range
    days, weekdays = fields[2], fields[4]
    if "W" in days and not weekdays.startswith(("*", "?")):
        return False  # nW with a restricted day-of-week
    if ("#" in weekdays or "L" in weekdays) and not days.startswith(("*", "?")):
        return False  # fri#2 or L5 with a restricted day-of-month
    if "H" in days.split(","):
        return False  # a bare H in day-of-month
    return not any("*" in field and not field.startswith("*") for field in (days, weekdays))


@st.composite
def expressions(draw: st.DrawFn, *, seconds: bool = True, hashed: bool = False) -> str:
    """Valid 5- or 6-field cron expressions (those that can fire)."""
    while True:
        fields = [
            draw(_field(0, 59, hashed=hashed)),
            draw(_field(0, 23, hashed=hashed)),
            draw(st.one_of(_field(1, 31, hashed=hashed), _SPECIAL_DAYS)),
            draw(_field(1, 12, _MONTHS, hashed=hashed)),
            draw(st.one_of(_field(0, 6, _WEEKDAYS, hashed=hashed), _SPECIAL_WEEKDAYS)),
        ]
        if seconds and draw(st.booleans()):
            fields.append(draw(_field(0, 59, hashed=hashed)))
        expr = " ".join(fields)
        try:
            parse_cron(expr, "key" if hashed else None)
        except InvalidTrigger:
            continue  # e.g. only the 30th of February
        return expr


instants = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2090, 12, 31), timezones=st.just(UTC)
).map(lambda d: d.replace(microsecond=0))


def _croniter_reads(expr: str, key: str | None = None) -> bool:
    try:
        expanded = croniter(expr, hash_id=key).expanded
    except (CroniterError, ValueError, TypeError):
        return False
    # croniter counts L as one of the 31 days: L and 30 other days read as '*'.
    return not ("L" in expr.split()[2] and expanded[2] == ["*"])


def _croniter_next(iterator: croniter) -> datetime:
    """croniter's next fire; it gives up on some L + nth-weekday combinations."""
    try:
        fire: datetime = iterator.get_next(datetime)
    except CroniterBadDateError:
        assume(False)
        raise
    return fire


@given(expressions(), instants)
def test_agrees_with_croniter_in_utc(expr: str, start: datetime) -> None:
    assume(_read_alike(expr) and _croniter_reads(expr))
    theirs = croniter(expr, start, implement_cron_bug=True)
    ours = Cron(expr)
    t = start
    for _ in range(8):
        expected = _croniter_next(theirs)
        t_next = ours.next_after(t)
        note(f"after {t}: croniter {expected}, chronolog {t_next}")
        assert t_next == expected
        assert t_next is not None
        t = t_next


keys = st.text(min_size=1, max_size=12)


@given(expressions(hashed=True), keys, instants)
def test_hashed_fields_agree_with_croniters_hash_id(expr: str, key: str, start: datetime) -> None:
    assume(_read_alike(expr) and _croniter_reads(expr, key))
    try:
        ours = Cron(expr, key=key)
    except InvalidTrigger:
        # This key picks values that can never fire: croniter would search forever.
        assume(False)
    theirs = croniter(expr, start, implement_cron_bug=True, hash_id=key)
    t = start
    for _ in range(6):
        expected = _croniter_next(theirs)
        t_next = ours.next_after(t)
        note(f"after {t}: croniter {expected}, chronolog {t_next} ({ours.resolved_expr!r})")
        assert t_next == expected
        assert t_next is not None
        t = t_next


@given(expressions(hashed=True), keys, instants)
def test_the_resolved_expression_means_the_same(expr: str, key: str, start: datetime) -> None:
    try:
        hashed = Cron(expr, key=key)
    except InvalidTrigger:
        assume(False)
    resolved = Cron(hashed.resolved_expr)
    assert not resolved.hashed
    assert hashed.follows_elapsed_time == resolved.follows_elapsed_time
    t = start
    for _ in range(4):
        fire = hashed.next_after(t)
        assert fire == resolved.next_after(t)
        if fire is None:
            break
        t = fire


@given(cron_expressions(hashed=True, seconds=None), keys)
def test_drawn_hashed_expressions_fire_whatever_the_key(expr: str, key: str) -> None:
    trigger = Cron(expr, key=key)
    assert trigger.next_after(datetime(2026, 1, 1, tzinfo=UTC)) is not None


@given(cron_expressions(extended=False, seconds=None))
def test_unextended_expressions_use_what_every_cron_reads(expr: str) -> None:
    assume(not expr.startswith("@"))
    unnamed = expr.lower()
    for name in _MONTHS + _WEEKDAYS:
        unnamed = unnamed.replace(name, "")
    assert not any(letter in unnamed for letter in "lw#?h")
    for field in expr.split()[:5]:
        for item in field.split(","):
            bounds = item.split("/")[0].split("-")
            if len(bounds) == 2 and bounds[0].isdigit() and bounds[1].isdigit():
                assert int(bounds[0]) <= int(bounds[1])


@given(expressions(), instants, st.integers(1, 999_999))
def test_next_fire_is_the_first_matching_wall(expr: str, start: datetime, micros: int) -> None:
    # Brute force over seconds, for fires close enough to check.
    schedule = parse_cron(expr)
    t = start + timedelta(microseconds=micros)  # sub-second: the next fire is strictly after
    fire = Cron(expr).next_after(t)
    assert fire is not None
    assert fire > t
    assert schedule.matches(fire)
    first = wall_seconds(start.replace(tzinfo=None)) + 1
    last = wall_seconds(fire.replace(tzinfo=None))
    if last - first < 50_000:
        for second in range(first, last):
            assert not schedule.matches(wall_datetime(second))


zones = st.sampled_from(["UTC", "Europe/Paris", "America/New_York", "Australia/Lord_Howe"])


@st.composite
def crons(draw: st.DrawFn) -> Cron:
    start = draw(st.none() | instants)
    end = draw(st.none() | instants)
    if start is not None and end is not None and end < start:
        start, end = end, start
    return Cron(draw(expressions()), tz=draw(zones), start=start, end=end)


@given(crons(), instants)
def test_round_trips_through_the_log(trigger: Cron, t: datetime) -> None:
    event = TaskDefined(task="job", at=t, trigger=trigger, target="pkg.mod:job")
    decoded = decode_event(encode_event(event))
    assert decoded == event
    assert isinstance(decoded, TaskDefined)
    assert msgspec.json.encode(decoded.trigger) == msgspec.json.encode(trigger)
    assert decoded.trigger.next_after(t) == trigger.next_after(t)


@given(
    st.text(max_size=40)
    | st.lists(
        st.sampled_from(
            [
                *("*", "1", "-", "/", ",", "jan", "mon", "61", "0", " ", "L", "?", "W", "#"),
                *("H", "(", ")", "5", "31", "l", "w", "h", "fri", "R", "7"),
            ]
        ),
        max_size=16,
    ).map("".join)
)
def test_any_text_parses_or_raises_invalid_trigger(text: str) -> None:
    # Never a croniter/zoneinfo/IndexError traceback: either a trigger or a teaching error.
    message = ""
    try:
        trigger = Cron(text)
        if trigger.hashed:
            trigger = trigger.for_task("task")
        trigger.next_after(datetime(2026, 1, 1, tzinfo=UTC))
    except InvalidTrigger as exc:
        message = str(exc)
    else:
        return
    assert repr(text) in message or "cron" in message
