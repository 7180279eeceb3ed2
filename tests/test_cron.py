"""The cron parser and wall-clock matcher (``chronolog._cron``)."""

from datetime import datetime

import pytest

from chronolog import InvalidTrigger
from chronolog._cron import NICKNAMES, parse_cron, wall_datetime, wall_seconds


def fires(expr: str, after: datetime, count: int) -> list[datetime]:
    """The next ``count`` matching walls strictly after ``after``."""
    schedule = parse_cron(expr)
    found = []
    wall = wall_seconds(after)
    for _ in range(count):
        next_wall = schedule.next_wall(wall + 1, wall + 10 * 366 * 86_400)
        assert next_wall is not None
        found.append(wall_datetime(next_wall))
        wall = next_wall
    return found


# -- what fields mean ---------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "field", "expected"),
    [
        ("*/15 * * * *", "minutes", {0, 15, 30, 45}),
        ("5/20 * * * *", "minutes", {5, 25, 45}),
        ("10-20/5 * * * *", "minutes", {10, 15, 20}),
        ("1,2,3-5 * * * *", "minutes", {1, 2, 3, 4, 5}),
        ("59/15 * * * *", "minutes", {59}),
        ("0 */6 * * *", "hours", {0, 6, 12, 18}),
        ("0 0 1-7 * *", "days", set(range(1, 8))),
        ("0 0 * jan,MAR,Dec *", "months", {1, 3, 12}),
        ("0 0 * feb-apr *", "months", {2, 3, 4}),
        ("0 0 * */3 *", "months", {1, 4, 7, 10}),
        ("0 0 * * mon-fri", "weekdays", {1, 2, 3, 4, 5}),
        ("0 0 * * Sun,SAT", "weekdays", {0, 6}),
        ("0 0 * * 7", "weekdays", {0}),
        ("0 0 * * 5-7", "weekdays", {5, 6, 0}),
        ("0 0 * * */2", "weekdays", {0, 2, 4, 6}),
        ("0 0 * * 1/2", "weekdays", {1, 3, 5}),
        ("0 0 * * *", "seconds", {0}),
        ("0 0 * * * 30", "seconds", {30}),
        ("0 0 * * * */20", "seconds", {0, 20, 40}),
    ],
)
def test_field_values(expr: str, field: str, expected: set[int]) -> None:
    assert getattr(parse_cron(expr), field) == expected


def test_the_sixth_field_is_seconds_and_comes_last() -> None:
    # croniter's convention: the first five fields mean what they mean in a crontab.
    assert fires("30 2 * * * 15", datetime(2026, 1, 1), 2) == [
        datetime(2026, 1, 1, 2, 30, 15),
        datetime(2026, 1, 2, 2, 30, 15),
    ]
    assert fires("* * * * * */20", datetime(2026, 1, 1), 4) == [
        datetime(2026, 1, 1, 0, 0, 20),
        datetime(2026, 1, 1, 0, 0, 40),
        datetime(2026, 1, 1, 0, 1, 0),
        datetime(2026, 1, 1, 0, 1, 20),
    ]


@pytest.mark.parametrize(
    ("nickname", "expansion"),
    [
        ("@hourly", "0 * * * *"),
        ("@daily", "0 0 * * *"),
        ("@midnight", "0 0 * * *"),
        ("@weekly", "0 0 * * 0"),
        ("@monthly", "0 0 1 * *"),
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
        ("@DAILY", "0 0 * * *"),
    ],
)
def test_nicknames(nickname: str, expansion: str) -> None:
    ours, theirs = parse_cron(nickname), parse_cron(expansion)
    assert NICKNAMES[nickname.lower()] == expansion
    for field in ("seconds", "minutes", "hours", "days", "months", "weekdays"):
        assert getattr(ours, field) == getattr(theirs, field)
    assert ours.follows_elapsed_time == theirs.follows_elapsed_time


def test_day_fields_or_when_both_are_restricted() -> None:
    # The 13th of the month, and every Friday (Vixie cron: either matches).
    assert fires("0 0 13 * fri", datetime(2026, 2, 1), 5) == [
        datetime(2026, 2, 6),
        datetime(2026, 2, 13),
        datetime(2026, 2, 20),
        datetime(2026, 2, 27),
        datetime(2026, 3, 6),
    ]


def test_day_fields_and_when_one_starts_with_a_star() -> None:
    # Odd days that are Mondays: '*/2' starts with '*', so both must match.
    assert fires("0 0 */2 * mon", datetime(2026, 1, 1), 3) == [
        datetime(2026, 1, 5),
        datetime(2026, 1, 19),
        datetime(2026, 2, 9),
    ]
    # Only the weekday restricts the day.
    assert fires("0 0 * * sat", datetime(2026, 1, 1), 2) == [
        datetime(2026, 1, 3),
        datetime(2026, 1, 10),
    ]


def test_leap_day() -> None:
    assert fires("0 12 29 2 *", datetime(2026, 1, 1), 3) == [
        datetime(2028, 2, 29, 12),
        datetime(2032, 2, 29, 12),
        datetime(2036, 2, 29, 12),
    ]


def test_the_31st_skips_short_months() -> None:
    assert fires("0 0 31 * *", datetime(2026, 1, 31), 3) == [
        datetime(2026, 3, 31),
        datetime(2026, 5, 31),
        datetime(2026, 7, 31),
    ]


def test_next_wall_respects_its_window() -> None:
    schedule = parse_cron("0 3 * * *")
    lo = wall_seconds(datetime(2026, 1, 1, 3, 0))
    assert schedule.next_wall(lo, lo + 1) == lo
    assert schedule.next_wall(lo + 1, lo + 86_400) is None
    assert schedule.next_wall(lo + 1, lo + 86_401) == lo + 86_400
    assert schedule.next_wall(lo, lo) is None


def test_matches() -> None:
    schedule = parse_cron("30 2 * * 1-5")
    assert schedule.matches(datetime(2026, 3, 9, 2, 30))  # a Monday
    assert not schedule.matches(datetime(2026, 3, 8, 2, 30))  # a Sunday
    assert not schedule.matches(datetime(2026, 3, 9, 2, 30, 1))
    assert not schedule.matches(datetime(2026, 3, 9, 2, 30, 0, 5))


@pytest.mark.parametrize(
    ("expr", "elapsed"),
    [
        ("0 * * * *", True),
        ("*/15 * * * *", True),
        ("0 */2 * * *", True),
        ("0 1-5/2 * * *", True),
        ("@hourly", True),
        ("30 2 * * *", False),
        ("0 0-23 * * *", False),
        ("0,30 1,2 * * *", False),
        ("@daily", False),
        ("* 2 * * * *", False),
    ],
)
def test_elapsed_or_fixed_time(expr: str, elapsed: bool) -> None:
    assert parse_cron(expr).follows_elapsed_time is elapsed


def test_whitespace_is_flexible() -> None:
    assert parse_cron("  0\t3  *  * *\n").hours == {3}


# -- errors that teach --------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("61 3 * * *", "cron minute field '61' is out of range 0-59 in '61 3 * * *'"),
        ("0 24 * * *", "cron hour field '24' is out of range 0-23"),
        ("0 0 0 * *", "cron day-of-month field '0' is out of range 1-31"),
        ("0 0 * 13 *", "cron month field '13' is out of range 1-12"),
        ("0 0 * * 8", "cron day-of-week field '8' is out of range 0-7"),
        ("0 0 * * * 60", "cron second field '60' is out of range 0-59"),
        ("1,61 * * * *", "cron minute field '1,61': 61 is out of range 0-59"),
        ("5-2 * * * *", "range '5-2' that runs backwards"),
        ("5-2 * * * *", "write the smaller end first ('2-5'), or '5-59,0-2'"),
        ("0 22-2 * * *", "'22-23,0-2' for a range that wraps around"),
        ("*/0 * * * *", "step '0'"),
        ("*/0 * * * *", "a step is a whole number of at least 1"),
        ("*/x * * * *", "step 'x'"),
        ("*/61 * * * *", "step 61 in '*/61 * * * *', larger than the field's range 0-59"),
        ("1,,2 * * * *", "empty list item"),
        ("-5 * * * *", "incomplete range '-5'"),
        ("5- * * * *", "incomplete range '5-'"),
        ("0 0 * * thurs", "unknown day-of-week name 'thurs'"),
        ("0 0 * * thurs", "did you mean 'thu'?"),
        ("0 0 * janu *", "unknown month name 'janu'"),
        ("0 0 * * jan", "unknown day-of-week name 'jan'"),
        ("0 0 * mon *", "unknown month name 'mon'"),
        ("0 mon * * *", "'mon' is a day-of-week name, which goes in the 5th field"),
        ("0 0 L * *", "uses 'L'"),
        ("0 0 ? * *", "uses '?'"),
        ("0 0 * * 1#2", "uses '#'"),
        ("0 0 15W * *", "uses 'W'"),
        ("0 0 1.5 * *", "'1.5'"),
        ("0 0 30 2 *", "'0 0 30 2 *' can never fire: day-of-month 30 never occurs in February"),
        (
            "0 0 31 4,6,9,11 *",
            "day-of-month 31 never occurs in April, June, September or November",
        ),
        ("0 0 30,31 2 *", "days-of-month 30 and 31 never occur in February"),
        ("@reboot", "'@reboot' has no fire time in chronolog; use Manual()"),
        ("@dayly", "unknown cron nickname '@dayly'; did you mean '@daily'?"),
        ("@every 5m", "for a fixed interval use Every(timedelta(...))"),
    ],
)
def test_invalid_expressions_say_what_is_wrong(expr: str, message: str) -> None:
    with pytest.raises(InvalidTrigger) as info:
        parse_cron(expr)
    assert message in str(info.value)


@pytest.mark.parametrize("expr", ["", "   ", "* * * *", "* * * * * * *", "0 3"])
def test_wrong_field_count_names_the_order(expr: str) -> None:
    with pytest.raises(InvalidTrigger) as info:
        parse_cron(expr)
    message = str(info.value)
    assert "5 fields" in message or "write 5" in message
    assert "minute hour day-of-month month day-of-week" in message


def test_field_count_message() -> None:
    with pytest.raises(InvalidTrigger, match="has 4 fields; write 5") as info:
        parse_cron("* * * *")
    assert "or 6 (the same 5, then second)" in str(info.value)


def test_non_string_expression() -> None:
    with pytest.raises(
        InvalidTrigger, match="must be a string such as '0 3 \\* \\* \\*', got int 5"
    ):
        parse_cron(5)


def test_an_impossible_day_is_fine_when_either_day_field_can_match() -> None:
    # Both day fields restricted: Fridays in February still fire.
    assert parse_cron("0 0 30 2 fri").day_or
    # One February day exists: the 29th.
    assert parse_cron("0 0 29-31 2 *").days == {29, 30, 31}
