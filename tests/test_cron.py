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
        ("0 L * * *", "cron hour field 'L' uses 'L'"),
        ("0 L * * *", "'L' (last) belongs in the day-of-month field ('L', 'L-3', 'LW')"),
        ("0 ? * * *", "'?' (any day) belongs in the day-of-month or day-of-week field"),
        ("0 0 1#2 * *", "'#' (nth weekday of the month) belongs in the day-of-week field"),
        ("0 0 * * 15W", "'W' (nearest weekday) belongs in the day-of-month field"),
        ("0 0 * 3W *", "cron month field '3W' uses 'W'"),
        ("0 0 ?,1 * *", "'?' means any day (the same as *) and stands alone in its field"),
        ("0 0 L-31 * *", "'L-31' in '0 0 L-31 * *', which is before the 1st in every month"),
        ("0 0 L-31 * *", "with n from 0 to 30"),
        ("0 0 0W * *", "day 0 is out of range 1-31"),
        ("0 0 32W * *", "day 32 is out of range 1-31"),
        ("0 0 1-15W * *", "W takes a single day, as in '15W' or 'LW'"),
        ("0 0 L/2 * *", "a step applies to *, numbers and ranges, not to 'L', 'W' or '#'"),
        ("0 0 5L * *", "'5L' (the last Friday), goes in the day-of-week field (5th)"),
        ("0 0 * * L", "a lone 'L'"),
        ("0 0 * * L", "write 'sat' for every Saturday, or '5L' for the last Friday"),
        ("0 0 * * fri#6", "a month has at most 5 of each weekday, so write #1 to #5"),
        ("0 0 * * fri#6", "('fri#5' fires only in months with five Fridays), or 'friL'"),
        ("0 0 * * 5#0", "write #1 to #5 ('5#5' fires only in months with five Fridays)"),
        ("0 0 * * 1-5#2", "'#' takes one weekday and a number, as in 'fri#2'"),
        ("0 0 * * fri#2/2", "a step applies to *, numbers and ranges"),
        ("0 0 * * 1-5L", "the last weekday of a kind in the month is written '5L' or 'friL'"),
        ("0 0 * * LW", "cron day-of-week field 'LW' uses 'L'"),
        ("0 0 * * fri#8", "a month has at most 5"),
        ("R * * * *", "croniter's R picks a new random value each time"),
        ("R * * * *", "use H, which picks a stable value from the task name"),
        ("H( * * * *", "a hashed value is written H, H(a-b), H/s or H(a-b)/s"),
        ("H(0-) * * * *", "a hashed value is written H, H(a-b), H/s or H(a-b)/s"),
        ("H(0-60) * * * *", "cron minute field 'H(0-60)': 60 is out of range 0-59"),
        ("H/0 * * * *", "step '0'"),
        ("H/61 * * * *", "step 61"),
        ("0 0 H(mon-fri) * *", "'mon' is a day-of-week name"),
        ("0 0 L-30 2 *", "'0 0 L-30 2 *' can never fire: day-of-month 'L-30' matches no day in"),
        ("0 0 L-29 2 *", "day-of-month 'L-29' matches no day in February"),
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


# -- wrap-around ranges ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "field", "expected"),
    [
        ("0 0 * * sat-sun", "weekdays", {6, 0}),
        ("0 0 * * fri-mon", "weekdays", {5, 6, 0, 1}),
        ("0 0 * * mon-sun", "weekdays", set(range(7))),  # Sunday at the end of a range is 7
        ("0 0 * * 3-0", "weekdays", {3, 4, 5, 6, 0}),
        ("0 0 * * 7-3", "weekdays", {0, 1, 2, 3}),
        ("0 0 * * 0-0", "weekdays", {0}),  # a-a is the one value a, as in Vixie cron
        ("0 0 * * sun-sun", "weekdays", {0}),
        ("0 0 * * 7-7", "weekdays", {0}),
        ("0 0 * * 7-0", "weekdays", {0}),
        ("0 0 * * 0-7", "weekdays", set(range(7))),
        ("0 0 * * SAT-SUN/2", "weekdays", {6}),
        ("0 0 * * mon-sun/2", "weekdays", {1, 3, 5, 0}),
        ("0 0 * * fri-mon/2", "weekdays", {5, 0}),
        ("0 22-2 * * *", "hours", {22, 23, 0, 1, 2}),
        ("0 22-2/3 * * *", "hours", {22, 1}),  # the step counts on across midnight
        ("50-10/15 * * * *", "minutes", {50, 5}),
        ("0 0 * nov-feb *", "months", {11, 12, 1, 2}),
        ("0 0 * 11-2/2 *", "months", {11, 1}),
        ("0 0 25-5/3 * *", "days", {25, 28, 31, 3}),
        ("0 0 * * * 58-1", "seconds", {58, 59, 0, 1}),
        ("5-5 * * * *", "minutes", {5}),
    ],
)
def test_wrap_around_ranges(expr: str, field: str, expected: set[int]) -> None:
    assert getattr(parse_cron(expr), field) == expected


def test_a_wrapped_day_range_runs_into_the_next_month() -> None:
    assert fires("0 0 29-2 * *", datetime(2026, 1, 29, 12), 5) == [
        datetime(2026, 1, 30),
        datetime(2026, 1, 31),
        datetime(2026, 2, 1),
        datetime(2026, 2, 2),
        datetime(2026, 3, 1),  # February 2026 has no 29th to 31st
    ]


def test_the_weekend_is_saturday_and_sunday() -> None:
    assert fires("0 0 * * sat-sun", datetime(2026, 1, 1), 4) == [
        datetime(2026, 1, 3),
        datetime(2026, 1, 4),
        datetime(2026, 1, 10),
        datetime(2026, 1, 11),
    ]


# -- L, W, #, ? -------------------------------------------------------------------------


def test_last_day_of_the_month() -> None:
    assert fires("0 0 L * *", datetime(2026, 1, 1), 4) == [
        datetime(2026, 1, 31),
        datetime(2026, 2, 28),
        datetime(2026, 3, 31),
        datetime(2026, 4, 30),
    ]


def test_last_day_of_february_in_leap_and_common_years() -> None:
    assert fires("0 0 L 2 *", datetime(2027, 1, 1), 3) == [
        datetime(2027, 2, 28),
        datetime(2028, 2, 29),
        datetime(2029, 2, 28),
    ]
    assert fires("0 0 L-3 2 *", datetime(2027, 1, 1), 2) == [
        datetime(2027, 2, 25),
        datetime(2028, 2, 26),
    ]
    # 28 days before the last day exists only in a leap February.
    assert fires("0 0 L-28 2 *", datetime(2026, 1, 1), 2) == [
        datetime(2028, 2, 1),
        datetime(2032, 2, 1),
    ]


def test_days_before_the_last() -> None:
    assert fires("0 0 L-1,L * *", datetime(2026, 4, 1), 4) == [
        datetime(2026, 4, 29),
        datetime(2026, 4, 30),
        datetime(2026, 5, 30),
        datetime(2026, 5, 31),
    ]
    assert fires("0 0 20-L/5 * *", datetime(2026, 1, 1), 3) == [
        datetime(2026, 1, 20),
        datetime(2026, 1, 25),
        datetime(2026, 1, 30),
    ]


def test_nearest_weekday() -> None:
    # 2026: the 15th is a Thursday in January, a Sunday in February, a
    # Saturday in August.
    assert fires("0 0 15W * *", datetime(2026, 1, 1), 2) == [
        datetime(2026, 1, 15),
        datetime(2026, 2, 16),
    ]
    assert fires("0 0 15W 8 *", datetime(2026, 1, 1), 1) == [datetime(2026, 8, 14)]
    assert fires("0 0 W15 8 *", datetime(2026, 1, 1), 1) == [datetime(2026, 8, 14)]


def test_nearest_weekday_never_leaves_the_month() -> None:
    # 2026-08-01 is a Saturday: the nearest weekday in August is Monday the 3rd,
    # not Friday 31 July. 2026-02-01 is a Sunday: Monday the 2nd.
    assert fires("0 0 1W 8 *", datetime(2026, 1, 1), 1) == [datetime(2026, 8, 3)]
    assert fires("0 0 1W * *", datetime(2026, 1, 15), 3) == [
        datetime(2026, 2, 2),
        datetime(2026, 3, 2),  # 1 March 2026 is a Sunday too
        datetime(2026, 4, 1),
    ]
    # 2026-05-31 is a Sunday: Friday the 29th, not Monday 1 June.
    assert fires("0 0 31W 5 *", datetime(2026, 1, 1), 1) == [datetime(2026, 5, 29)]
    # A day the month does not have counts as its last day (as croniter reads
    # it): 2027-02-28 is a Sunday, so Friday the 26th; 2026-04-30 a Thursday.
    assert fires("0 0 31W 2 *", datetime(2027, 1, 1), 2) == [
        datetime(2027, 2, 26),
        datetime(2028, 2, 29),
    ]
    assert fires("0 0 31W 4 *", datetime(2026, 1, 1), 1) == [datetime(2026, 4, 30)]


def test_last_weekday_of_the_month() -> None:
    assert fires("0 0 LW * *", datetime(2026, 1, 1), 3) == [
        datetime(2026, 1, 30),  # the 31st is a Saturday
        datetime(2026, 2, 27),  # the 28th is a Saturday
        datetime(2026, 3, 31),
    ]
    assert fires("0 0 LW 2 *", datetime(2027, 1, 1), 1) == [datetime(2027, 2, 26)]  # a Sunday


@pytest.mark.parametrize("weekday", ["5L", "friL", "FRIL", "L5", "Lfri", "l5"])
def test_last_weekday_of_a_kind(weekday: str) -> None:
    assert fires(f"0 0 * * {weekday}", datetime(2026, 1, 1), 4) == [
        datetime(2026, 1, 30),
        datetime(2026, 2, 27),
        datetime(2026, 3, 27),
        datetime(2026, 4, 24),
    ]


@pytest.mark.parametrize("sunday", ["0L", "7L", "sunL", "L0", "L7"])
def test_the_last_sunday_is_europes_change_day(sunday: str) -> None:
    assert fires(f"30 2 * 3,10 {sunday}", datetime(2026, 1, 1), 2) == [
        datetime(2026, 3, 29, 2, 30),
        datetime(2026, 10, 25, 2, 30),
    ]


@pytest.mark.parametrize("second_friday", ["fri#2", "5#2", "FRI#2"])
def test_nth_weekday(second_friday: str) -> None:
    assert fires(f"0 0 * * {second_friday}", datetime(2026, 1, 1), 3) == [
        datetime(2026, 1, 9),
        datetime(2026, 2, 13),
        datetime(2026, 3, 13),
    ]
    # America's change days: the second Sunday of March, the first of November.
    assert fires("0 2 * 3 sun#2", datetime(2026, 1, 1), 1) == [datetime(2026, 3, 8, 2)]
    assert fires("0 1 * 11 7#1", datetime(2026, 1, 1), 1) == [datetime(2026, 11, 1, 1)]


def test_a_fifth_friday_only_in_months_that_have_one() -> None:
    assert fires("0 0 * * fri#5", datetime(2026, 1, 1), 5) == [
        datetime(2026, 1, 30),
        datetime(2026, 5, 29),
        datetime(2026, 7, 31),
        datetime(2026, 10, 30),
        datetime(2027, 1, 29),
    ]
    # A fifth Tuesday in February needs a leap year starting on a Tuesday.
    assert fires("0 0 * 2 tue#5", datetime(2026, 1, 1), 1) == [datetime(2028, 2, 29)]
    after = wall_seconds(datetime(2028, 3, 1))
    following = parse_cron("0 0 * 2 tue#5").next_wall(after, after + 30 * 366 * 86_400)
    assert following == wall_seconds(datetime(2056, 2, 29))


def test_several_special_days_in_one_list() -> None:
    assert fires("0 0 * * mon#1,fri#3,0L", datetime(2026, 1, 1), 4) == [
        datetime(2026, 1, 5),
        datetime(2026, 1, 16),
        datetime(2026, 1, 25),
        datetime(2026, 2, 2),
    ]
    assert fires("0 0 1W,15W,L * *", datetime(2026, 2, 1), 4) == [
        datetime(2026, 2, 2),
        datetime(2026, 2, 16),
        datetime(2026, 2, 28),
        datetime(2026, 3, 2),
    ]


def test_question_mark_is_a_star_in_the_day_fields() -> None:
    # As '*', '?' does not make the day fields "both restricted": 15ths only.
    assert parse_cron("0 0 15 * ?").day_or is False
    assert fires("0 0 15 * ?", datetime(2026, 1, 1), 2) == [
        datetime(2026, 1, 15),
        datetime(2026, 2, 15),
    ]
    assert fires("0 0 ? * mon", datetime(2026, 1, 1), 2) == [
        datetime(2026, 1, 5),
        datetime(2026, 1, 12),
    ]


def test_special_days_follow_the_vixie_rule() -> None:
    # Both day fields restricted: the last day of the month, or any Friday.
    assert fires("0 0 L * fri", datetime(2026, 1, 24), 3) == [
        datetime(2026, 1, 30),
        datetime(2026, 1, 31),
        datetime(2026, 2, 6),
    ]
    # The 15W of the month or the second Friday.
    assert fires("0 0 15W * fri#2", datetime(2026, 2, 1), 3) == [
        datetime(2026, 2, 13),
        datetime(2026, 2, 16),
        datetime(2026, 3, 13),
    ]


# -- hashed values -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "resolved"),
    [
        # The values croniter picks with hash_id=b"backup" (crc32 1072746924).
        ("H * * * *", "24 * * * *"),
        ("H H * * *", "24 6 * * *"),
        ("H(0-29)/10 * * * *", "4-29/10 * * * *"),
        ("H(30-59)/10 * * * *", "34-59/10 * * * *"),
        ("H/15 * * * *", "9-59/15 * * * *"),
        ("0 0 * H *", "0 0 * 2 *"),
        ("0 0 * * H", "0 0 * * 3"),
        ("* * * * * H", "* * * * * 21"),
        ("h h(0-5) * * *", "24 0 * * *"),
        # A bare H in day-of-month picks from 1-28, so it fires every month
        # (croniter picks from 1-31 and gives 28 here).
        ("0 0 H * *", "0 0 16 * *"),
        ("0 0 H(1-31) * *", "0 0 28 * *"),
        # Wrapping ranges work as everywhere else.
        ("H(50-10)/15 * * * *", "59-10/15 * * * *"),
        ("0 H/18 * * *", "0 12-23/18 * * *"),  # one value, but a step: elapsed time
        ("H(40-10)/15 * * * *", "49-10/15 * * * *"),
    ],
)
def test_hashed_values_for_a_key(expr: str, resolved: str) -> None:
    schedule = parse_cron(expr, "backup")
    assert schedule.resolved == resolved
    assert schedule.key == "backup"
    plain = parse_cron(resolved)
    for field in ("seconds", "minutes", "hours", "days", "months", "weekdays"):
        assert getattr(schedule, field) == getattr(plain, field)
    assert schedule.follows_elapsed_time == plain.follows_elapsed_time


def test_hashed_values_are_stable_and_spread() -> None:
    minutes = [min(parse_cron("H * * * *", f"task-{i}").minutes) for i in range(1000)]
    assert minutes == [min(parse_cron("H * * * *", f"task-{i}").minutes) for i in range(1000)]
    assert set(minutes) == set(range(60))
    assert max(minutes.count(minute) for minute in range(60)) < 40  # about 17 each
    days = {min(parse_cron("0 0 H * *", f"task-{i}").days) for i in range(1000)}
    assert days == set(range(1, 29))


def test_a_hashed_wrapping_range_picks_from_both_ends() -> None:
    picked = {min(parse_cron("H(30-10) * * * *", f"k{i}").minutes) for i in range(2000)}
    assert picked == set(range(30, 60)) | set(range(11))


def test_a_hashed_expression_needs_a_key() -> None:
    with pytest.raises(InvalidTrigger, match=r"has hashed values \(H\), which are picked from a"):
        parse_cron("H 3 * * *")
    assert parse_cron("0 3 * * *", "ignored").resolved == "0 3 * * *"
    assert parse_cron("0 3 * * *", "ignored").key is None


def test_a_key_can_make_a_hashed_day_impossible() -> None:
    # 29-31 in February: only keys that pick 29 can fire, so the others are
    # refused when the key is known, saying what the key picked.
    keys = [f"k{i}" for i in range(30)]
    picked = {key: min(parse_cron("0 0 H(29-31) * *", key).days) for key in keys}
    good = next(key for key in keys if picked[key] == 29)
    bad = next(key for key in keys if picked[key] > 29)
    assert parse_cron("0 0 H(29-31) 2 *", good).resolved == "0 0 29 2 *"
    with pytest.raises(InvalidTrigger, match=rf"\(with key '{bad}': '0 0 3[01] 2 \*'\) can never"):
        parse_cron("0 0 H(29-31) 2 *", bad)


# -- any case, any size --------------------------------------------------------------------


def test_letters_in_any_case() -> None:
    for lower, upper in [
        ("0 0 l * *", "0 0 L * *"),
        ("0 0 lw * *", "0 0 LW * *"),
        ("0 0 15w * *", "0 0 15W * *"),
        ("0 0 * * fri#2", "0 0 * * FRI#2"),
        ("0 0 * * sat-sun", "0 0 * * SAT-SUN"),
    ]:
        assert fires(lower, datetime(2026, 1, 1), 3) == fires(upper, datetime(2026, 1, 1), 3)


def test_huge_lists() -> None:
    every_minute = ",".join(str(m) for m in range(60))
    schedule = parse_cron(f"{every_minute},{every_minute} * * * *")
    assert schedule.minutes == set(range(60))
    days = ",".join(["L", "LW", *(f"{d}W" for d in range(1, 32)), *map(str, range(1, 32))])
    assert parse_cron(f"0 0 {days} * *").next_wall(0, 86_400) == 0
