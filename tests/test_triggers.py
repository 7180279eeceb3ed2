"""Triggers (``chronolog._triggers``): fire times, DST rules, bounds, validation, the log."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import msgspec
import pytest

from chronolog import At, Cron, Every, FileWatch, InvalidTrigger, Manual
from chronolog._events import TaskDefined, decode_event, encode_event


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def fires(trigger: Cron | Every | At, after: datetime, until: datetime) -> list[datetime]:
    """Every fire in ``(after, until]``, by iterating ``next_after``."""
    found = []
    fire = trigger.next_after(after)
    while fire is not None and fire <= until:
        found.append(fire)
        fire = trigger.next_after(fire)
    return found


def local_day(tz: str, year: int, month: int, day: int) -> tuple[datetime, datetime]:
    """The UTC instants just before a local calendar day begins, and when it ends."""
    zone = ZoneInfo(tz)
    begin = datetime(year, month, day, tzinfo=zone).astimezone(UTC)
    end = (datetime(year, month, day, tzinfo=zone) + timedelta(days=1)).astimezone(UTC)
    return begin - timedelta(microseconds=1), end - timedelta(microseconds=1)


NEW_YORK = "America/New_York"


# -- Cron: plain -----------------------------------------------------------------


def test_cron_in_utc() -> None:
    trigger = Cron("30 2 * * *")
    assert trigger.next_after(utc(2026, 1, 1)) == utc(2026, 1, 1, 2, 30)
    assert trigger.next_after(utc(2026, 1, 1, 2, 30)) == utc(2026, 1, 2, 2, 30)


def test_cron_returns_aware_utc_whatever_the_input_zone() -> None:
    paris = ZoneInfo("Europe/Paris")
    fire = Cron("0 3 * * *", tz="Europe/Paris").next_after(datetime(2026, 6, 1, tzinfo=paris))
    assert fire == utc(2026, 6, 1, 1)
    assert fire is not None
    assert fire.tzinfo is UTC


def test_cron_is_strictly_after_sub_second_t() -> None:
    trigger = Cron("0 3 * * *")
    assert trigger.next_after(utc(2026, 1, 1, 2, 59, 59, 999_999)) == utc(2026, 1, 1, 3)
    assert trigger.next_after(utc(2026, 1, 1, 3, 0, 0, 1)) == utc(2026, 1, 2, 3)
    seconds = Cron("* * * * * *")
    assert seconds.next_after(utc(2026, 1, 1, 0, 0, 0, 500_000)) == utc(2026, 1, 1, 0, 0, 1)


def test_cron_start_and_end_are_inclusive() -> None:
    trigger = Cron("0 3 * * *", start=utc(2026, 1, 2, 3), end=utc(2026, 1, 4, 3))
    assert fires(trigger, utc(2025, 12, 1), utc(2026, 2, 1)) == [
        utc(2026, 1, 2, 3),
        utc(2026, 1, 3, 3),
        utc(2026, 1, 4, 3),
    ]
    assert trigger.next_after(utc(2026, 1, 4, 3)) is None


def test_cron_sub_second_bounds() -> None:
    # A start a hair after 03:00 excludes it; an end a hair before 03:00 does too.
    assert Cron("0 3 * * *", start=utc(2026, 1, 1, 3, 0, 0, 1)).next_after(utc(2026, 1, 1)) == utc(
        2026, 1, 2, 3
    )
    assert (
        Cron("0 3 * * *", end=utc(2026, 1, 1, 2, 59, 59, 999_999)).next_after(utc(2026, 1, 1))
        is None
    )


def test_cron_is_exhausted_after_the_last_representable_year() -> None:
    assert Cron("0 0 1 1 *").next_after(utc(9999, 6, 1)) is None
    assert Cron("59 23 31 12 *", tz="America/New_York").next_after(utc(9999, 6, 1)) is None


# -- Cron and DST: America/New_York 2026 ---------------------------------------------


def test_new_york_spring_forward_fixed_time_fires_once_at_the_end_of_the_gap() -> None:
    # 2026-03-08: clocks jump 02:00 EST -> 03:00 EDT (07:00Z). 02:30 does not exist.
    assert fires(Cron("30 2 * * *", tz=NEW_YORK), utc(2026, 3, 6, 12), utc(2026, 3, 9, 12)) == [
        utc(2026, 3, 7, 7, 30),  # 02:30 EST
        utc(2026, 3, 8, 7, 0),  # 03:00 EDT, the end of the gap
        utc(2026, 3, 9, 6, 30),  # 02:30 EDT
    ]


def test_new_york_fall_back_fixed_time_fires_once_on_the_first_pass() -> None:
    # 2026-11-01: clocks go back 02:00 EDT -> 01:00 EST (06:00Z). 01:30 happens twice.
    assert fires(Cron("30 1 * * *", tz=NEW_YORK), utc(2026, 10, 31, 12), utc(2026, 11, 2, 12)) == [
        utc(2026, 11, 1, 5, 30),  # 01:30 EDT; not again at 06:30Z (01:30 EST)
        utc(2026, 11, 2, 6, 30),
    ]


def test_new_york_hourly_fires_23_and_25_times() -> None:
    hourly = Cron("0 * * * *", tz=NEW_YORK)
    assert len(fires(hourly, *local_day(NEW_YORK, 2026, 3, 8))) == 23
    assert len(fires(hourly, *local_day(NEW_YORK, 2026, 11, 1))) == 25
    assert len(fires(hourly, *local_day(NEW_YORK, 2026, 11, 2))) == 24
    assert len(fires(Cron("@hourly", tz=NEW_YORK), *local_day(NEW_YORK, 2026, 11, 1))) == 25


def test_new_york_quarter_hours_fire_in_both_passes_of_the_repeated_hour() -> None:
    found = fires(Cron("*/15 * * * *", tz=NEW_YORK), utc(2026, 11, 1, 4, 59), utc(2026, 11, 1, 7))
    assert found == [utc(2026, 11, 1, 5, m) for m in (0, 15, 30, 45)] + [
        utc(2026, 11, 1, 6, m) for m in (0, 15, 30, 45)
    ] + [utc(2026, 11, 1, 7)]
    walls = [f.astimezone(ZoneInfo(NEW_YORK)).strftime("%H:%M %Z") for f in found]
    assert walls[:5] == ["01:00 EDT", "01:15 EDT", "01:30 EDT", "01:45 EDT", "01:00 EST"]


def test_new_york_elapsed_time_skips_walls_in_the_gap() -> None:
    found = fires(Cron("30 */1 * * *", tz=NEW_YORK), utc(2026, 3, 8, 5), utc(2026, 3, 8, 8))
    # 00:30 EST, 01:30 EST, (no 02:30), 03:30 EDT
    assert found == [utc(2026, 3, 8, 5, 30), utc(2026, 3, 8, 6, 30), utc(2026, 3, 8, 7, 30)]


def test_several_fixed_walls_in_one_gap_are_one_fire() -> None:
    trigger = Cron("0,15,30,45 2 * * *", tz=NEW_YORK)
    found = fires(trigger, utc(2026, 3, 7, 12), utc(2026, 3, 9, 6, 20))
    assert found == [utc(2026, 3, 8, 7), utc(2026, 3, 9, 6), utc(2026, 3, 9, 6, 15)]
    # The gap wall and the 03:00 wall itself are the same instant too: one fire.
    assert fires(Cron("30 2,3 * * *", tz=NEW_YORK), utc(2026, 3, 8, 5), utc(2026, 3, 8, 8)) == [
        utc(2026, 3, 8, 7),
        utc(2026, 3, 8, 7, 30),
    ]
    assert fires(Cron("0 2,3 * * *", tz=NEW_YORK), utc(2026, 3, 8, 5), utc(2026, 3, 8, 8)) == [
        utc(2026, 3, 8, 7)
    ]


def test_a_fixed_range_of_hours_fires_each_wall_once() -> None:
    # '0-23' is written without '*' or a step: fixed-time, so 01:00 fires once.
    assert len(fires(Cron("0 0-23 * * *", tz=NEW_YORK), *local_day(NEW_YORK, 2026, 11, 1))) == 24
    assert len(fires(Cron("0 0-23 * * *", tz=NEW_YORK), *local_day(NEW_YORK, 2026, 3, 8))) == 23


# -- Cron and DST: other zones ---------------------------------------------------------


def test_berlin() -> None:
    berlin = Cron("30 2 * * *", tz="Europe/Berlin")
    # 2026-03-29 02:00 CET -> 03:00 CEST at 01:00Z.
    assert fires(berlin, utc(2026, 3, 28), utc(2026, 3, 30, 12)) == [
        utc(2026, 3, 28, 1, 30),
        utc(2026, 3, 29, 1, 0),
        utc(2026, 3, 30, 0, 30),
    ]
    # 2026-10-25 03:00 CEST -> 02:00 CET at 01:00Z: 02:30 CEST only.
    assert fires(berlin, utc(2026, 10, 24, 12), utc(2026, 10, 26, 12)) == [
        utc(2026, 10, 25, 0, 30),
        utc(2026, 10, 26, 1, 30),
    ]


def test_sydney_southern_hemisphere() -> None:
    sydney = Cron("30 2 * * *", tz="Australia/Sydney")
    # 2026-04-05 03:00 AEDT -> 02:00 AEST (16:00Z on the 4th): first pass only.
    assert fires(sydney, utc(2026, 4, 4), utc(2026, 4, 5, 17)) == [
        utc(2026, 4, 4, 15, 30),
        utc(2026, 4, 5, 16, 30),
    ]
    # 2026-10-04 02:00 AEST -> 03:00 AEDT (16:00Z on the 3rd): end of the gap.
    assert fires(sydney, utc(2026, 10, 3), utc(2026, 10, 4, 16)) == [
        utc(2026, 10, 3, 16, 0),
        utc(2026, 10, 4, 15, 30),
    ]


def test_lord_howe_half_hour_shift() -> None:
    tz = "Australia/Lord_Howe"
    # 2026-10-04 02:00 +10:30 -> 02:30 +11 (15:30Z on the 3rd).
    assert Cron("15 2 * * *", tz=tz).next_after(utc(2026, 10, 3)) == utc(2026, 10, 3, 15, 30)
    assert Cron("45 2 * * *", tz=tz).next_after(utc(2026, 10, 3)) == utc(2026, 10, 3, 15, 45)
    # 2026-04-05 02:00 +11 -> 01:30 +10:30 (15:00Z on the 4th): 01:30-02:00 repeats.
    assert fires(Cron("45 1 * * *", tz=tz), utc(2026, 4, 4), utc(2026, 4, 5, 16)) == [
        utc(2026, 4, 4, 14, 45),
        utc(2026, 4, 5, 15, 15),
    ]
    assert fires(
        Cron("*/15 * * * *", tz=tz), utc(2026, 4, 4, 14, 20), utc(2026, 4, 4, 15, 30)
    ) == [
        utc(2026, 4, 4, 14, 30),  # 01:30 +11
        utc(2026, 4, 4, 14, 45),  # 01:45 +11
        utc(2026, 4, 4, 15, 0),  # 01:30 +10:30, second pass
        utc(2026, 4, 4, 15, 15),  # 01:45 +10:30
        utc(2026, 4, 4, 15, 30),  # 02:00 +10:30
    ]


def test_santiago_changes_at_midnight() -> None:
    tz = "America/Santiago"
    # 2026-09-06 00:00 -04 -> 01:00 -03 (04:00Z): midnight does not exist that day.
    assert fires(Cron("0 0 * * *", tz=tz), utc(2026, 9, 4), utc(2026, 9, 7, 4)) == [
        utc(2026, 9, 4, 4),
        utc(2026, 9, 5, 4),
        utc(2026, 9, 6, 4),  # 01:00 -03, the end of the gap
        utc(2026, 9, 7, 3),
    ]
    # 2026-04-05 00:00 -03 -> 2026-04-04 23:00 -04 (03:00Z): 23:30 on the 4th repeats.
    assert fires(Cron("30 23 * * *", tz=tz), utc(2026, 4, 4, 12), utc(2026, 4, 6, 4)) == [
        utc(2026, 4, 5, 2, 30),  # 23:30 -03 on the 4th, once
        utc(2026, 4, 6, 3, 30),
    ]


def test_apia_skipped_a_whole_day() -> None:
    tz = "Pacific/Apia"
    # 2011-12-29 24:00 -10 became 2011-12-31 00:00 +14 (10:00Z on the 30th).
    assert fires(Cron("0 12 * * *", tz=tz), utc(2011, 12, 29), utc(2011, 12, 31, 23)) == [
        utc(2011, 12, 29, 22),  # 12:00 -10 on the 29th
        utc(2011, 12, 30, 10),  # the 30th's 12:00 never happened: end of the gap
        utc(2011, 12, 30, 22),  # 12:00 +14 on the 31st
        utc(2011, 12, 31, 22),
    ]
    # Elapsed time: nothing on the 30th, which did not exist.
    found = fires(Cron("0 */6 * * *", tz=tz), utc(2011, 12, 29, 12), utc(2011, 12, 30, 17))
    assert found == [
        utc(2011, 12, 29, 16),
        utc(2011, 12, 29, 22),
        utc(2011, 12, 30, 4),
        utc(2011, 12, 30, 10),
        utc(2011, 12, 30, 16),
    ]
    zone = ZoneInfo(tz)
    assert [f.astimezone(zone).strftime("%d %H") for f in found] == [
        "29 06",
        "29 12",
        "29 18",
        "31 00",
        "31 06",
    ]


def test_iteration_never_repeats_an_instant() -> None:
    found = fires(Cron("* 2 * * *", tz=NEW_YORK), utc(2026, 3, 7), utc(2026, 3, 10))
    assert len(found) == len(set(found)) == 60 + 1 + 60
    assert found == sorted(found)


# -- Every ------------------------------------------------------------------------------


def test_every_is_anchored_at_the_epoch_by_default() -> None:
    trigger = Every(timedelta(minutes=10))
    assert trigger.next_after(utc(2026, 1, 1, 12, 3)) == utc(2026, 1, 1, 12, 10)
    assert trigger.next_after(utc(2026, 1, 1, 12, 10)) == utc(2026, 1, 1, 12, 20)
    # The epoch was a Thursday, and so is 2026-01-01.
    assert Every(timedelta(days=7)).next_after(utc(2025, 12, 31)) == utc(2026, 1, 1)


def test_every_follows_its_anchor_in_both_directions() -> None:
    trigger = Every(timedelta(hours=1), anchor=utc(2030, 1, 1, 0, 15))
    assert trigger.next_after(utc(2026, 1, 1, 12, 0)) == utc(2026, 1, 1, 12, 15)
    assert trigger.next_after(utc(2026, 1, 1, 12, 15)) == utc(2026, 1, 1, 13, 15)


def test_every_is_anchored_at_start_and_does_not_fire_before_it() -> None:
    trigger = Every(timedelta(minutes=45), start=utc(2026, 1, 1, 9, 7))
    assert trigger.next_after(utc(2025, 1, 1)) == utc(2026, 1, 1, 9, 7)  # start is inclusive
    assert trigger.next_after(utc(2026, 1, 1, 9, 7)) == utc(2026, 1, 1, 9, 52)
    anchored = Every(timedelta(minutes=45), anchor=utc(2026, 1, 1), start=utc(2026, 1, 1, 9, 7))
    assert anchored.next_after(utc(2025, 1, 1)) == utc(2026, 1, 1, 9, 45)


def test_every_end_is_inclusive() -> None:
    trigger = Every(timedelta(hours=1), end=utc(2026, 1, 1, 3))
    assert fires(trigger, utc(2026, 1, 1, 0, 30), utc(2027, 1, 1)) == [
        utc(2026, 1, 1, 1),
        utc(2026, 1, 1, 2),
        utc(2026, 1, 1, 3),
    ]


def test_every_uses_exact_integer_arithmetic() -> None:
    interval = timedelta(days=1, microseconds=1)
    trigger = Every(interval)
    fire = trigger.next_after(utc(2200, 1, 1))
    assert fire is not None
    k = (fire - utc(1970, 1, 1)) // interval
    assert utc(1970, 1, 1) + k * interval == fire
    assert fire - interval <= utc(2200, 1, 1) < fire
    tiny = Every(timedelta(microseconds=3), anchor=utc(2026, 1, 1))
    assert tiny.next_after(utc(2026, 1, 1, 0, 0, 0, 4)) == utc(2026, 1, 1, 0, 0, 0, 6)


def test_every_is_strictly_after_sub_second_t() -> None:
    trigger = Every(timedelta(seconds=1))
    assert trigger.next_after(utc(2026, 1, 1, 0, 0, 0, 999_999)) == utc(2026, 1, 1, 0, 0, 1)
    assert trigger.next_after(utc(2026, 1, 1, 0, 0, 1)) == utc(2026, 1, 1, 0, 0, 2)


def test_every_ignores_dst_it_counts_real_time() -> None:
    trigger = Every(timedelta(hours=1), anchor=utc(2026, 1, 1))
    assert len(fires(trigger, *local_day(NEW_YORK, 2026, 11, 1))) == 25


def test_every_anchored() -> None:
    unanchored = Every(timedelta(minutes=5))
    pinned = unanchored.anchored(utc(2026, 5, 1, 12, 3, 30))
    assert pinned.anchor == utc(2026, 5, 1, 12, 3, 30)
    assert pinned.next_after(utc(2026, 5, 1, 12, 4)) == utc(2026, 5, 1, 12, 8, 30)
    assert pinned.anchored(utc(2030, 1, 1)) is pinned  # never re-anchored
    with_start = Every(timedelta(minutes=5), start=utc(2026, 1, 1, 0, 1))
    assert with_start.anchored(utc(2026, 5, 1, 12, 3)).anchor == utc(2026, 1, 1, 0, 1)
    with pytest.raises(InvalidTrigger, match="naive"):
        unanchored.anchored(datetime(2026, 1, 1))


def test_every_beyond_the_datetime_range_is_exhausted() -> None:
    assert Every(timedelta(days=400)).next_after(datetime.max.replace(tzinfo=UTC)) is None


# -- At, FileWatch, Manual ------------------------------------------------------------


def test_at_fires_once() -> None:
    trigger = At(utc(2026, 3, 8, 7))
    assert trigger.next_after(utc(2026, 1, 1)) == utc(2026, 3, 8, 7)
    assert trigger.next_after(utc(2026, 3, 8, 6, 59, 59, 999_999)) == utc(2026, 3, 8, 7)
    assert trigger.next_after(utc(2026, 3, 8, 7)) is None
    assert trigger.next_after(utc(2027, 1, 1)) is None


def test_filewatch_and_manual_have_no_time_based_next() -> None:
    assert FileWatch("data/in.csv").next_after(utc(2026, 1, 1)) is None
    assert Manual().next_after(utc(2026, 1, 1)) is None


# -- canonical values and the log ---------------------------------------------------


def test_aware_datetimes_are_stored_in_utc() -> None:
    paris = ZoneInfo("Europe/Paris")
    trigger = Cron("0 3 * * *", start=datetime(2026, 7, 1, 2, tzinfo=paris))
    assert trigger.start == utc(2026, 7, 1, 0)
    assert trigger.start is not None
    assert trigger.start.tzinfo is UTC
    assert At(datetime(2026, 7, 1, 2, tzinfo=paris)) == At(utc(2026, 7, 1))
    assert b'"when":"2026-07-01T00:00:00Z"' in msgspec.json.encode(
        At(datetime(2026, 7, 1, 2, tzinfo=paris))
    )


ALL_TRIGGERS = [
    Cron("30 2 * * *"),
    Cron("0 9 * * mon-fri", tz="Europe/Paris", start=utc(2026, 1, 1), end=utc(2027, 1, 1)),
    Cron("H H(0-5) L * fri#2", tz="Europe/Paris", key="backup"),
    Every(timedelta(minutes=5)),
    Every(timedelta(hours=1, microseconds=7), anchor=utc(2026, 1, 1), start=utc(2026, 2, 1)),
    At(utc(2026, 3, 8, 7)),
    FileWatch("data/in.csv", poll=timedelta(seconds=10)),
    Manual(),
]


@pytest.mark.parametrize("trigger", ALL_TRIGGERS, ids=lambda t: type(t).__name__)
def test_round_trip_inside_task_defined(trigger: Cron | Every | At | FileWatch | Manual) -> None:
    event = TaskDefined(task="job", at=utc(2026, 1, 1), trigger=trigger, target="pkg.mod:job")
    decoded = decode_event(encode_event(event))
    assert decoded == event
    assert isinstance(decoded, TaskDefined)
    assert type(decoded.trigger) is type(trigger)
    t = utc(2026, 6, 1, 12, 34, 56)
    assert decoded.trigger.next_after(t) == trigger.next_after(t)


def test_cron_encodes_compactly() -> None:
    assert msgspec.json.encode(Cron("30 2 * * *")) == b'{"kind":"cron","expr":"30 2 * * *"}'
    # The expression as written, and the key its H values were picked with.
    assert msgspec.json.encode(Cron("H 3 * * *", key="backup")) == (
        b'{"kind":"cron","expr":"H 3 * * *","key":"backup"}'
    )


@pytest.mark.parametrize(
    ("trigger_json", "message"),
    [
        (b'{"kind":"cron","expr":"61 3 * * *"}', "cron minute field '61' is out of range 0-59"),
        (b'{"kind":"cron","expr":"0 3 * * *","tz":"Mars/Olympus"}', "unknown time zone"),
        (b'{"kind":"at","when":"2026-01-01T00:00:00"}', "naive"),
        (b'{"kind":"every","interval":"PT0S"}', "must be positive"),
        (b'{"kind":"file_watch","path":""}', "non-empty string"),
        (b'{"kind":"cron","expr":"H 3 * * *","key":""}', "Cron key must be a non-empty"),
        (b'{"kind":"cron","expr":"0 0 H(29-31) 2 *","key":"k3"}', "can never fire"),
    ],
)
def test_decoding_validates_again(trigger_json: bytes, message: str) -> None:
    line = (
        b'{"type":"TaskDefined","task":"job","at":"2026-01-01T00:00:00Z","target":"m:f","trigger":'
    )
    with pytest.raises(msgspec.ValidationError, match=message):
        decode_event(line + trigger_json + b"}")


# -- errors that teach ------------------------------------------------------------------


def test_unknown_zone_suggests_the_closest_name_and_keeps_the_cause() -> None:
    with pytest.raises(InvalidTrigger) as info:
        Cron("0 3 * * *", tz="Europe/Pari")
    assert str(info.value) == "unknown time zone 'Europe/Pari'; did you mean 'Europe/Paris'?"
    assert info.value.__cause__ is not None
    with pytest.raises(InvalidTrigger, match="did you mean 'America/New_York'"):
        Cron("0 3 * * *", tz="america/new_york")
    with pytest.raises(InvalidTrigger, match="unknown time zone 'Nowhere/Atall'; use an IANA"):
        Cron("0 3 * * *", tz="Nowhere/Atall")
    with pytest.raises(InvalidTrigger, match=r"unknown time zone '\.\./etc/passwd'"):
        Cron("0 3 * * *", tz="../etc/passwd")


def test_machine_local_zones_are_rejected() -> None:
    with pytest.raises(InvalidTrigger, match="name the zone instead"):
        Cron("0 3 * * *", tz="localtime")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: Cron(42),
            "a cron expression must be a string such as '0 3 \\* \\* \\*', got int 42",
        ),
        (lambda: Cron("0 3 * * *", tz=None), "a time zone must be an IANA name"),
        (
            lambda: Cron("61 3 * * *"),
            "cron minute field '61' is out of range 0-59 in '61 3 \\* \\* \\*'",
        ),
        (
            lambda: Cron("* * *"),
            "has 3 fields; write 5 \\(minute hour day-of-month month day-of-week\\)",
        ),
        (
            lambda: Cron("0 3 * * *", start=datetime(2026, 1, 1)),
            "Cron start 2026-01-01T00:00:00 is naive",
        ),
        (
            lambda: Cron("0 3 * * *", end=datetime(2026, 1, 1)),
            "Cron end .* is naive .* never guesses",
        ),
        (
            lambda: Cron("0 3 * * *", start=utc(2026, 2, 1), end=utc(2026, 1, 1)),
            "Cron end 2026-01-01T00:00:00\\+00:00 is before its start 2026-02-01",
        ),
        (lambda: Cron("0 3 * * *", start="2026-01-01"), "Cron start must be an aware datetime"),
        (lambda: Every(timedelta(0)), "Every interval must be positive"),
        (lambda: Every(timedelta(seconds=-5)), "Every interval must be positive"),
        (
            lambda: Every(300),
            "Every interval must be a timedelta such as timedelta\\(minutes=5\\), got int",
        ),
        (
            lambda: Every(timedelta(minutes=5), anchor=datetime(2026, 1, 1)),
            "Every anchor .* is naive",
        ),
        (
            lambda: Every(timedelta(minutes=5), start=datetime(2026, 1, 1)),
            "Every start .* is naive",
        ),
        (
            lambda: Every(timedelta(minutes=5), start=utc(2026, 2, 1), end=utc(2026, 1, 1)),
            "Every end .* is before its start",
        ),
        (lambda: At(datetime(2026, 1, 1)), "At when 2026-01-01T00:00:00 is naive"),
        (lambda: Cron("H 3 * * *", key=""), "Cron key must be a non-empty string"),
        (lambda: Cron("H 3 * * *", key=7), "such as the task name 'backup', got 7"),
        (lambda: Cron("0 0 H(29-31) 2 *", key="k3"), "\\(with key 'k3': '0 0 30 2 \\*'\\)"),
        (lambda: Cron("R 3 * * *"), "use H, which picks a stable value"),
        (lambda: FileWatch(""), "FileWatch path must be a non-empty string"),
        (
            lambda: FileWatch("a.txt", poll=timedelta(0)),
            "FileWatch poll must be a positive timedelta",
        ),
    ],
)
def test_invalid_triggers_say_what_is_wrong(make: object, message: str) -> None:
    assert callable(make)
    with pytest.raises(InvalidTrigger, match=message):
        make()


@pytest.mark.parametrize("trigger", ALL_TRIGGERS, ids=lambda t: type(t).__name__)
def test_next_after_rejects_naive_t(trigger: Cron | Every | At | FileWatch | Manual) -> None:
    with pytest.raises(InvalidTrigger, match="next_after needs an aware datetime"):
        trigger.next_after(datetime(2026, 1, 1))


def test_invalid_trigger_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="out of range"):
        Cron("0 25 * * *")


def test_follows_elapsed_time() -> None:
    assert Cron("0 * * * *").follows_elapsed_time
    assert not Cron("0 3 * * *").follows_elapsed_time


# -- the new forms follow the same DST rules ---------------------------------------------------

BERLIN = "Europe/Berlin"


def test_nth_sunday_on_americas_change_day() -> None:
    # 2026-03-08 is the second Sunday of March: 02:30 does not exist in New York.
    assert fires(Cron("30 2 * * sun#2", tz=NEW_YORK), utc(2026, 3, 1), utc(2026, 4, 30)) == [
        utc(2026, 3, 8, 7),  # 03:00 EDT, the end of the gap
        utc(2026, 4, 12, 6, 30),
    ]


def test_last_sunday_on_europes_change_days() -> None:
    trigger = Cron("30 2 * 3,10 0L", tz=BERLIN)
    assert fires(trigger, utc(2026, 1, 1), utc(2026, 12, 31)) == [
        utc(2026, 3, 29, 1),  # 02:30 does not exist: 03:00 CEST
        utc(2026, 10, 25, 0, 30),  # 02:30 happens twice: the first pass (CEST) only
    ]
    # Elapsed time: both passes of the repeated hour on the last Sunday of October.
    elapsed = Cron("30 */1 * 10 sunL", tz=BERLIN)
    assert fires(elapsed, utc(2026, 10, 24, 23, 45), utc(2026, 10, 25, 2)) == [
        utc(2026, 10, 25, 0, 30),  # 02:30 CEST
        utc(2026, 10, 25, 1, 30),  # 02:30 CET
    ]


def test_a_wrapped_hour_range_across_santiagos_missing_midnight() -> None:
    # 2026-09-06: clocks jump 00:00 -04 -> 01:00 -03 (04:00Z). 00:00 and 01:00
    # land on one instant.
    trigger = Cron("0 22-2 * * *", tz="America/Santiago")
    assert fires(trigger, utc(2026, 9, 6, 1), utc(2026, 9, 6, 6)) == [
        utc(2026, 9, 6, 2),  # 22:00 -04 on the 5th
        utc(2026, 9, 6, 3),  # 23:00 -04
        utc(2026, 9, 6, 4),  # 00:00 (moved) and 01:00 -03: one fire
        utc(2026, 9, 6, 5),  # 02:00 -03
    ]


def test_first_sunday_on_lord_howes_half_hour_fall_back() -> None:
    # 2026-04-05, the first Sunday of April: 02:00 +11 -> 01:30 +10:30.
    trigger = Cron("45 1 * 4 sun#1", tz="Australia/Lord_Howe")
    assert fires(trigger, utc(2026, 4, 1), utc(2026, 4, 30)) == [
        utc(2026, 4, 4, 14, 45),  # 01:45 +11, first pass only
    ]


def test_the_day_before_the_last_in_apias_skipped_day() -> None:
    # 2011-12-30 did not happen in Samoa: its noon fires at the end of the gap.
    trigger = Cron("0 12 L-1 12 *", tz="Pacific/Apia")
    assert trigger.next_after(utc(2011, 12, 1)) == utc(2011, 12, 30, 10)


def test_hashed_fields_follow_the_dst_rules() -> None:
    # key 'backup' picks minute 24: 02:24 does not exist on 2026-03-08.
    trigger = Cron("H 2 * * *", tz=NEW_YORK, key="backup")
    assert trigger.resolved_expr == "24 2 * * *"
    assert fires(trigger, utc(2026, 3, 7, 12), utc(2026, 3, 9, 12)) == [
        utc(2026, 3, 8, 7),
        utc(2026, 3, 9, 6, 24),
    ]
    assert not trigger.follows_elapsed_time
    assert Cron("H/30 * * * *", tz=NEW_YORK, key="backup").follows_elapsed_time


# -- hashed fields and their key ----------------------------------------------------------------


def test_a_hashed_cron_needs_its_key_to_fire() -> None:
    trigger = Cron("H 3 * * *", tz=NEW_YORK)  # valid: a scheduler supplies the task name
    assert trigger.hashed
    assert trigger.key is None
    with pytest.raises(InvalidTrigger, match=r"give one, e.g. Cron\('H 3 \* \* \*', key="):
        trigger.next_after(utc(2026, 1, 1))
    with pytest.raises(InvalidTrigger, match="picked from a key"):
        _ = trigger.resolved_expr
    bound = trigger.for_task("backup")
    assert bound == Cron("H 3 * * *", tz=NEW_YORK, key="backup")
    assert bound.next_after(utc(2026, 1, 1)) == utc(2026, 1, 1, 8, 24)


def test_for_task_binds_only_what_needs_a_key() -> None:
    keyed = Cron("H 3 * * *", key="shared")
    assert keyed.for_task("backup") is keyed  # an explicit key stays
    plain = Cron("0 3 * * *")
    assert plain.for_task("backup") is plain
    for trigger in ALL_TRIGGERS:
        if not (isinstance(trigger, Cron) and trigger.key is None and trigger.hashed):
            assert trigger.for_task("backup") is trigger
    bounded = Cron("H 3 * * *", start=utc(2026, 1, 1), end=utc(2027, 1, 1))
    assert bounded.for_task("x") == Cron(
        "H 3 * * *", start=utc(2026, 1, 1), end=utc(2027, 1, 1), key="x"
    )


def test_a_key_is_kept_only_when_something_is_hashed() -> None:
    assert Cron("0 3 * * *", key="backup").key is None
    assert Cron("0 3 * * *", key="backup") == Cron("0 3 * * *")


def test_many_tasks_declared_h_spread_over_the_hour() -> None:
    first = utc(2026, 1, 1)
    minutes = {
        Cron("H * * * *").for_task(f"task-{i}").next_after(first).minute  # type: ignore[union-attr]
        for i in range(300)
    }
    assert len(minutes) > 50


# -- one rule for instants that do not exist ----------------------------------------------------

BERLIN_ZONE = ZoneInfo(BERLIN)


@pytest.mark.parametrize("fold", [0, 1])
def test_a_wall_time_in_a_gap_means_the_end_of_the_gap(fold: int) -> None:
    # 2025-03-30: Berlin jumps 02:00 CET -> 03:00 CEST at 01:00Z. Python reads
    # 02:30 as 01:30Z (fold 0) or 00:30Z (fold 1); chronolog as 01:00Z, where
    # '30 2 * * *' fires that night.
    gap = datetime(2025, 3, 30, 2, 30, tzinfo=BERLIN_ZONE, fold=fold)
    end_of_gap = utc(2025, 3, 30, 1)
    assert At(gap).when == end_of_gap
    assert Every(timedelta(hours=1), anchor=gap).anchor == end_of_gap
    nightly = Cron("30 2 * * *", tz=BERLIN)
    assert nightly.next_after(utc(2025, 3, 29, 12)) == end_of_gap
    # start and end are inclusive: the moved fire is in both.
    assert Cron("30 2 * * *", tz=BERLIN, start=gap).next_after(utc(2025, 3, 1)) == end_of_gap
    bounded = Cron("30 2 * * *", tz=BERLIN, end=gap)
    assert fires(bounded, utc(2025, 3, 28), utc(2025, 4, 1)) == [
        utc(2025, 3, 28, 1, 30),
        utc(2025, 3, 29, 1, 30),
        end_of_gap,
    ]
    # So does t itself.
    assert Every(timedelta(minutes=30)).next_after(gap) == utc(2025, 3, 30, 1, 30)
    assert At(utc(2025, 3, 30, 1, 15)).next_after(gap) == utc(2025, 3, 30, 1, 15)


def test_a_repeated_wall_time_means_the_pass_its_fold_says() -> None:
    # 2025-10-26: Berlin goes back 03:00 CEST -> 02:00 CET at 01:00Z.
    first = datetime(2025, 10, 26, 2, 30, tzinfo=BERLIN_ZONE)
    second = first.replace(fold=1)
    assert At(first).when == utc(2025, 10, 26, 0, 30)
    assert At(second).when == utc(2025, 10, 26, 1, 30)


@pytest.mark.parametrize(
    ("wall", "zone", "end_of_gap"),
    [
        (datetime(2025, 10, 5, 2, 15), "Australia/Lord_Howe", utc(2025, 10, 4, 15, 30)),
        (datetime(2025, 9, 7, 0, 0), "America/Santiago", utc(2025, 9, 7, 4)),
        (datetime(2011, 12, 30, 12, 0), "Pacific/Apia", utc(2011, 12, 30, 10)),
        (datetime(2026, 3, 8, 2, 0), NEW_YORK, utc(2026, 3, 8, 7)),
        (datetime(2026, 3, 8, 2, 59, 59, 999_999), NEW_YORK, utc(2026, 3, 8, 7)),
    ],
)
def test_gaps_in_odd_zones(wall: datetime, zone: str, end_of_gap: datetime) -> None:
    assert At(wall.replace(tzinfo=ZoneInfo(zone))).when == end_of_gap


def test_walls_that_exist_are_read_as_python_reads_them() -> None:
    for wall in (datetime(2025, 3, 30, 1, 59, 59), datetime(2025, 3, 30, 3), datetime(2025, 7, 1)):
        aware = wall.replace(tzinfo=BERLIN_ZONE)
        assert At(aware).when == aware.astimezone(UTC)


def test_fires_at_and_previous_before_at_exact_instants() -> None:
    backup = Cron("30 2 * * *", tz="Europe/Berlin")
    gap_night = datetime(2026, 3, 29, 1, 0, tzinfo=UTC)  # 02:30 does not exist: 03:00 CEST
    assert backup.fires_at(gap_night)
    assert not backup.fires_at(datetime(2026, 3, 29, 1, 30, tzinfo=UTC))
    assert backup.previous_before(gap_night) == datetime(2026, 3, 28, 1, 30, tzinfo=UTC)
    assert backup.previous_before(gap_night + timedelta(microseconds=1)) == gap_night
    bounded = Cron("0 * * * *", start=datetime(2026, 1, 1, 5, tzinfo=UTC))
    assert bounded.previous_before(datetime(2026, 1, 1, 5, tzinfo=UTC)) is None
    assert bounded.previous_before(datetime(2026, 1, 1, 5, 1, tzinfo=UTC)) == datetime(
        2026, 1, 1, 5, tzinfo=UTC
    )
    anchor = datetime(2026, 1, 1, 0, 0, 30, tzinfo=UTC)
    every = Every(timedelta(minutes=7), anchor=anchor, end=anchor + timedelta(minutes=21))
    assert every.fires_at(anchor + timedelta(minutes=14))
    assert not every.fires_at(anchor + timedelta(minutes=15))
    assert every.previous_before(anchor + timedelta(days=1)) == anchor + timedelta(minutes=21)
    assert every.previous_before(anchor + timedelta(minutes=7)) == anchor
    once = At(anchor)
    assert (once.fires_at(anchor), once.previous_before(anchor)) == (True, None)
    assert once.previous_before(anchor + timedelta(microseconds=1)) == anchor
    assert not Manual().fires_at(anchor)
    assert FileWatch("x").previous_before(anchor) is None
    never_again = Cron("0 0 1 1 *", end=datetime(2020, 1, 1, tzinfo=UTC))
    assert never_again.previous_before(datetime(2026, 1, 1, tzinfo=UTC)) == datetime(
        2020, 1, 1, tzinfo=UTC
    )


# -- counting fires (the size of a range of missed due times) ---------------------------


def test_every_counts_a_year_of_seconds_arithmetically() -> None:
    every = Every(timedelta(seconds=1), anchor=utc(2026, 1, 1))
    year = (utc(2026, 1, 1), utc(2027, 1, 1))
    assert every.count_fires(*year) == (365 * 86_400 + 1, utc(2027, 1, 1))
    assert every.count_fires(*year, limit=3) == (3, utc(2026, 1, 1, 0, 0, 2))
    assert every.count_fires(*year, limit=0) == (0, None)


def test_every_counts_within_its_start_and_end_and_on_its_grid() -> None:
    every = Every(
        timedelta(minutes=10),
        anchor=utc(2026, 1, 1, 0, 5),
        start=utc(2026, 1, 1, 1),
        end=utc(2026, 1, 1, 2),
    )
    # 01:05, 01:15, ..., 01:55: the grid is :05, the bounds 01:00-02:00.
    assert every.count_fires(utc(2026, 1, 1), utc(2026, 1, 2)) == (6, utc(2026, 1, 1, 1, 55))
    assert every.count_fires(utc(2026, 1, 1, 1, 6), utc(2026, 1, 1, 1, 14)) == (0, None)
    assert every.count_fires(utc(2026, 1, 1, 3), utc(2026, 1, 1, 4)) == (0, None)


def test_cron_counts_by_stepping_and_agrees_across_a_dst_change() -> None:
    hourly = Cron("0 * * * *", tz=NEW_YORK)
    first, last = local_day(NEW_YORK, 2026, 11, 1)  # fall back: 25 hours
    assert hourly.count_fires(first, last) == (25, fires(hourly, first, last)[-1])
    assert hourly.count_fires(first, last, limit=4) == (4, fires(hourly, first, last)[3])


def test_at_manual_and_file_watch_count_as_they_fire() -> None:
    at = At(utc(2026, 5, 1, 12))
    assert at.count_fires(utc(2026, 5, 1), utc(2026, 5, 2)) == (1, utc(2026, 5, 1, 12))
    assert at.count_fires(utc(2026, 5, 2), utc(2026, 5, 3)) == (0, None)
    assert Manual().count_fires(utc(2026, 5, 1), utc(2026, 5, 2)) == (0, None)
    assert FileWatch("x").count_fires(utc(2026, 5, 1), utc(2026, 5, 2)) == (0, None)
