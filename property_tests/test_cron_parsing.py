"""Our cron parser and matcher against croniter, plus round-trips and fuzzing.

In UTC there is no DST, so chronolog and croniter must agree fire for fire on
every expression both accept (croniter runs with ``implement_cron_bug=True``,
which is the Vixie day-field rule chronolog implements; one known quirk of
croniter is excluded, see the test). Generated ranges
always have ``a < b``: croniter reads ``a-a`` as the whole field.
"""

from datetime import UTC, datetime, timedelta

import msgspec
from croniter import croniter
from hypothesis import assume, given, note
from hypothesis import strategies as st

from chronolog import Cron, InvalidTrigger
from chronolog._cron import parse_cron, wall_datetime, wall_seconds
from chronolog._events import TaskDefined, decode_event, encode_event

_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_WEEKDAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]


def _value(low: int, high: int, names: list[str] | None) -> st.SearchStrategy[str]:
    numbers = st.integers(low, high).map(str)
    if names is None:
        return numbers
    first = low if names is _MONTHS else 0
    spelled = st.integers(low, min(high, first + len(names) - 1)).map(lambda v: names[v - first])
    return st.one_of(numbers, spelled, spelled.map(str.upper))


def _item(low: int, high: int, names: list[str] | None = None) -> st.SearchStrategy[str]:
    def ranged(pair: tuple[int, int]) -> str:
        a, b = sorted(pair)
        return f"{a}-{b}"

    span = high - low + 1
    single = _value(low, high, names)
    pairs = st.tuples(st.integers(low, high), st.integers(low, high)).filter(
        lambda p: p[0] != p[1]
    )
    steps = st.integers(1, span)
    return st.one_of(
        single,
        pairs.map(ranged),
        steps.map(lambda s: f"*/{s}"),
        st.tuples(pairs.map(ranged), steps).map(lambda p: f"{p[0]}/{p[1]}"),
        st.tuples(st.integers(low, high), steps).map(lambda p: f"{p[0]}/{p[1]}"),
    )


def _field(low: int, high: int, names: list[str] | None = None) -> st.SearchStrategy[str]:
    return st.one_of(
        st.just("*"),
        st.lists(_item(low, high, names), min_size=1, max_size=3).map(",".join),
    )


@st.composite
def expressions(draw: st.DrawFn, *, seconds: bool = True) -> str:
    """Valid 5- or 6-field cron expressions (those that can fire)."""
    while True:
        fields = [
            draw(_field(0, 59)),
            draw(_field(0, 23)),
            draw(_field(1, 31)),
            draw(_field(1, 12, _MONTHS)),
            draw(_field(0, 6, _WEEKDAYS)),
        ]
        if seconds and draw(st.booleans()):
            fields.append(draw(_field(0, 59)))
        expr = " ".join(fields)
        try:
            parse_cron(expr)
        except InvalidTrigger:
            continue  # e.g. only the 30th of February
        return expr


instants = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2090, 12, 31), timezones=st.just(UTC)
).map(lambda d: d.replace(microsecond=0))


@given(expressions(), instants)
def test_agrees_with_croniter_in_utc(expr: str, start: datetime) -> None:
    # Known difference: croniter treats a day field that *contains* '*' (such as
    # '1,*/2') as unrestricted when the other day field lists every value;
    # Vixie cron, and chronolog, look only at the first character.
    day_fields = expr.split()[2:5:2]
    assume(not any("*" in field and not field.startswith("*") for field in day_fields))
    theirs = croniter(expr, start, implement_cron_bug=True)
    ours = Cron(expr)
    t = start
    for _ in range(8):
        expected = theirs.get_next(datetime)
        t_next = ours.next_after(t)
        note(f"after {t}: croniter {expected}, chronolog {t_next}")
        assert t_next == expected
        assert t_next is not None
        t = t_next


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
        st.sampled_from(["*", "1", "-", "/", ",", "jan", "mon", "61", "0", " ", "L", "?"]),
        max_size=12,
    ).map("".join)
)
def test_any_text_parses_or_raises_invalid_trigger(text: str) -> None:
    # Never a croniter/zoneinfo/IndexError traceback: either a trigger or a teaching error.
    message = ""
    try:
        Cron(text)
    except InvalidTrigger as exc:
        message = str(exc)
    else:
        return
    assert repr(text) in message or "cron" in message
