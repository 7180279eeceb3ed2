"""``chronolog next``: upcoming fire times, with DST notes."""

import json
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from chronolog import Cron
from chronolog._dst_notes import describe_due
from chronolog.cli import main
from chronolog.cli import next as next_module


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["next", *args])
    return result.exit_code, result.stdout, result.stderr


def fire_lines(stdout: str) -> list[str]:
    return [line.strip() for line in stdout.splitlines() if line.startswith("  ")]


def test_plain_utc() -> None:
    code, out, _ = run("0 3 * * *", "--after", "2026-01-01T00:00:00Z", "--count", "2")
    assert code == 0
    assert out.splitlines()[0] == (
        "'0 3 * * *' in UTC follows fixed times: each matching wall-clock time fires once, "
        "a time in a gap fires at the end of the gap."
    )
    assert out.splitlines()[1] == "Next 2 after 2026-01-01T00:00:00+00:00:"
    assert fire_lines(out) == [
        "Thu 2026-01-01 03:00:00 UTC (+00:00)  =  2026-01-01 03:00:00Z",
        "Fri 2026-01-02 03:00:00 UTC (+00:00)  =  2026-01-02 03:00:00Z",
    ]


def test_spring_forward_moves_a_fixed_time() -> None:
    code, out, _ = run(
        "30 2 * * *", "--tz", "America/New_York", "--after", "2026-03-07T12:00Z", "--count", "2"
    )
    assert code == 0
    assert fire_lines(out) == [
        "Sun 2026-03-08 03:00:00 EDT (-04:00)  =  2026-03-08 07:00:00Z  moved: 02:30 does not "
        "exist on 2026-03-08 (clocks jump 02:00→03:00); fires at the end of the gap",
        "Mon 2026-03-09 02:30:00 EDT (-04:00)  =  2026-03-09 06:30:00Z",
    ]


def test_spring_forward_merges_several_fixed_times() -> None:
    _, out, _ = run(
        "0,15,30,45 2 * * *",
        "--tz",
        "America/New_York",
        "--after",
        "2026-03-08T00:00-05:00",
        "--count",
        "1",
    )
    assert fire_lines(out) == [
        "Sun 2026-03-08 03:00:00 EDT (-04:00)  =  2026-03-08 07:00:00Z  merged: 02:00, 02:15, "
        "02:30, 02:45 fall in the gap on 2026-03-08 (clocks jump 02:00→03:00); one fire at the "
        "end of the gap"
    ]
    _, out, _ = run("* 2 * * *", "--tz", "Europe/Berlin", "--after", "2026-03-29T00:00Z")
    assert "merged: 02:00, 02:01, …, 02:59 (60 times) fall in the gap" in fire_lines(out)[0]
    _, out, _ = run("0 2,3 * * *", "--tz", "America/New_York", "--after", "2026-03-08T00:00Z")
    assert fire_lines(out)[0].endswith(
        "merged: 02:00 falls in the gap on 2026-03-08 (clocks jump 02:00→03:00); "
        "one fire at the end of the gap, together with 03:00"
    )


def test_fall_back_fixed_time_fires_on_the_first_pass() -> None:
    _, out, _ = run(
        "30 1 * * *", "--tz", "America/New_York", "--after", "2026-11-01T00:00Z", "--count", "2"
    )
    assert fire_lines(out) == [
        "Sun 2026-11-01 01:30:00 EDT (-04:00)  =  2026-11-01 05:30:00Z  first pass of the "
        "repeated hour 01:00\u201302:00 (fires once)",
        "Mon 2026-11-02 01:30:00 EST (-05:00)  =  2026-11-02 06:30:00Z",
    ]


def test_fall_back_elapsed_time_fires_both_passes() -> None:
    _, out, _ = run(
        "*/30 * * * *", "--tz", "America/New_York", "--after", "2026-11-01T04:45Z", "--count", "5"
    )
    assert "follows elapsed time" in out.splitlines()[0]
    assert fire_lines(out) == [
        "Sun 2026-11-01 01:00:00 EDT (-04:00)  =  2026-11-01 05:00:00Z  first pass of the "
        "repeated hour 01:00\u201302:00 (fires again in the second pass)",
        "Sun 2026-11-01 01:30:00 EDT (-04:00)  =  2026-11-01 05:30:00Z  first pass of the "
        "repeated hour 01:00\u201302:00 (fires again in the second pass)",
        "Sun 2026-11-01 01:00:00 EST (-05:00)  =  2026-11-01 06:00:00Z  second pass of the "
        "repeated hour 01:00\u201302:00 (clocks went back)",
        "Sun 2026-11-01 01:30:00 EST (-05:00)  =  2026-11-01 06:30:00Z  second pass of the "
        "repeated hour 01:00\u201302:00 (clocks went back)",
        "Sun 2026-11-01 02:00:00 EST (-05:00)  =  2026-11-01 07:00:00Z",
    ]


def test_spring_forward_elapsed_time_says_what_it_skipped() -> None:
    _, out, _ = run(
        "0 * * * *", "--tz", "America/New_York", "--after", "2026-03-08T06:00Z", "--count", "1"
    )
    assert fire_lines(out) == [
        "Sun 2026-03-08 03:00:00 EDT (-04:00)  =  2026-03-08 07:00:00Z  after a gap: 02:00 does "
        "not exist on 2026-03-08 (clocks jump 02:00→03:00); skipped, as this expression follows "
        "elapsed time"
    ]


def test_half_hour_shift_and_a_skipped_day() -> None:
    _, out, _ = run(
        "45 1 * * *", "--tz", "Australia/Lord_Howe", "--after", "2026-04-04T12:00Z", "--count", "1"
    )
    assert fire_lines(out)[0].endswith(
        "first pass of the repeated half hour 01:30\u201302:00 (fires once)"
    )
    _, out, _ = run("0 12 * * *", "--tz", "Pacific/Apia", "--after", "2011-12-29T23:00Z")
    assert fire_lines(out)[0] == (
        "Sat 2011-12-31 00:00:00 +14 (+14:00)  =  2011-12-30 10:00:00Z  moved: "
        "2011-12-30 12:00 does not exist (clocks jump 2011-12-30 00:00→2011-12-31 00:00); "
        "fires at the end of the gap"
    )


def test_json_output() -> None:
    code, out, _ = run(
        "30 2 * * *",
        "--tz",
        "America/New_York",
        "--after",
        "2026-03-07T12:00Z",
        "--count",
        "2",
        "--json",
    )
    assert code == 0
    assert json.loads(out) == [
        {
            "utc": "2026-03-08T07:00:00Z",
            "local": "2026-03-08T03:00:00-04:00",
            "offset": "-04:00",
            "note": "moved: 02:30 does not exist on 2026-03-08 (clocks jump 02:00→03:00); "
            "fires at the end of the gap",
        },
        {
            "utc": "2026-03-09T06:30:00Z",
            "local": "2026-03-09T02:30:00-04:00",
            "offset": "-04:00",
            "note": None,
        },
    ]


def test_count_defaults_to_ten() -> None:
    _, out, _ = run("@hourly", "--after", "2026-01-01T00:00Z", "--json")
    assert len(json.loads(out)) == 10


def test_after_defaults_to_now(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(next_module, "current_time", lambda: datetime(2026, 5, 1, 12, tzinfo=UTC))
    _, out, _ = run("0 0 1 * *", "--count", "1", "--json")
    assert json.loads(out)[0]["utc"] == "2026-06-01T00:00:00Z"


def test_after_with_an_offset_is_an_instant() -> None:
    _, out, _ = run("0 3 * * *", "--after", "2026-01-01T04:00+02:00", "--count", "1", "--json")
    assert json.loads(out)[0]["utc"] == "2026-01-01T03:00:00Z"


def test_exhausted() -> None:
    code, out, _ = run("0 0 1 1 *", "--after", "9998-06-01T00:00Z", "--count", "3")
    assert code == 0
    assert fire_lines(out) == [
        "Fri 9999-01-01 00:00:00 UTC (+00:00)  =  9999-01-01 00:00:00Z",
        "(no more fires before the year 10000)",
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["61 3 * * *"], "Error: cron minute field '61' is out of range 0-59 in '61 3 * * *'\n"),
        (
            ["0 3 * * *", "--tz", "Europe/Pari"],
            "Error: unknown time zone 'Europe/Pari'; did you mean 'Europe/Paris'?\n",
        ),
        (
            ["0 3 * * *", "--after", "2026-03-08T02:00"],
            "Error: --after '2026-03-08T02:00' has no UTC offset, and chronolog never guesses "
            "one; add an offset or Z, e.g. '2026-03-08T02:00Z' or '2026-03-08T02:00-05:00', or "
            "a zone, e.g. '2026-03-08T02:00[America/New_York]'\n",
        ),
        (
            ["0 3 * * *", "--after", "tomorrow"],
            "Error: --after 'tomorrow' is not an ISO 8601 time; write e.g. "
            "'2026-03-08T00:00:00Z' or '2026-03-08T00:00-05:00'\n",
        ),
        (
            ["0 3 * * *", "--count", "0"],
            "Error: --count 0 is not from 1 to 100000, the most fire times one preview shows; "
            "give a later --after to see further\n",
        ),
        (["0 3 * *"], "Error: cron expression '0 3 * *' has 4 fields; write 5"),
        (
            ["H 3 * * *"],
            "Error: cron expression 'H 3 * * *' has hashed values (H), which are picked from "
            "a key: the task's name; give it with --key, e.g. --key backup\n",
        ),
        (["H 3 * * *", "--key", ""], "Error: --key must not be empty; give the task's name\n"),
        (
            ["0 3 * * *", "--after", "2026-03-08T02:00[Europe/Pari]"],
            "Error: unknown time zone 'Europe/Pari'; did you mean 'Europe/Paris'?\n",
        ),
        (
            ["0 3 * * *", "--after", "2026-07-01T02:00+01:00[Europe/Paris]"],
            "Error: --after '2026-07-01T02:00+01:00[Europe/Paris]': the offset +01:00 is not "
            "Europe/Paris's at that time; drop the offset or fix it\n",
        ),
        (
            ["0 3 * * *", "--after", "soon[Europe/Paris]"],
            "Error: --after 'soon' is not an ISO 8601 time",
        ),
        (["0 0 * * L"], "Error: cron day-of-week field 'L' uses a lone 'L'"),
        (
            ["0 3 * * *", "--after", "9999-12-31T23:59[Pacific/Pago_Pago]"],
            "Error: --after '9999-12-31T23:59[Pacific/Pago_Pago]' is outside the years 1-9999 "
            "in UTC; pick a time a day or more inside them\n",
        ),
        (
            ["0 3 * * *", "--after", "9999-12-31T23:59-11:00"],
            "Error: --after '9999-12-31T23:59-11:00' is outside the years 1-9999",
        ),
    ],
)
def test_bad_input_exits_2_with_one_line(args: list[str], message: str) -> None:
    code, out, err = run(*args)
    assert code == 2
    assert out == ""
    assert err.startswith(message)
    assert err.count("\n") == 1
    assert "Traceback" not in err


def test_help() -> None:
    result = CliRunner().invoke(main, ["next", "--help"])
    assert result.exit_code == 0
    for option in ("--tz", "--count", "--after", "--json"):
        assert option in result.stdout


# -- the forms of real crontabs -------------------------------------------------------------


def test_hashed_fields_show_what_the_key_picked() -> None:
    code, out, _ = run(
        "H H(0-5) * * *", "--key", "backup", "--after", "2026-01-01T00:00Z", "--count", "2"
    )
    assert code == 0
    assert out.splitlines()[:3] == [
        "'H H(0-5) * * *' in UTC follows fixed times: each matching wall-clock time fires once, "
        "a time in a gap fires at the end of the gap.",
        "Hashed with key 'backup': '24 0 * * *'.",
        "Next 2 after 2026-01-01T00:00:00+00:00:",
    ]
    assert fire_lines(out) == [
        "Thu 2026-01-01 00:24:00 UTC (+00:00)  =  2026-01-01 00:24:00Z",
        "Fri 2026-01-02 00:24:00 UTC (+00:00)  =  2026-01-02 00:24:00Z",
    ]


def test_a_key_without_hashed_fields_changes_nothing() -> None:
    plain = run("0 3 * * *", "--after", "2026-01-01T00:00Z", "--count", "2")
    keyed = run("0 3 * * *", "--key", "backup", "--after", "2026-01-01T00:00Z", "--count", "2")
    assert plain == keyed


def test_an_nth_sunday_on_the_change_day_is_moved() -> None:
    _, out, _ = run(
        "30 2 * * sun#2",
        "--tz",
        "America/New_York",
        "--after",
        "2026-03-01T00:00Z",
        "--count",
        "2",
    )
    assert fire_lines(out) == [
        "Sun 2026-03-08 03:00:00 EDT (-04:00)  =  2026-03-08 07:00:00Z  moved: 02:30 does not "
        "exist on 2026-03-08 (clocks jump 02:00→03:00); fires at the end of the gap",
        "Sun 2026-04-12 02:30:00 EDT (-04:00)  =  2026-04-12 06:30:00Z",
    ]


def test_a_wrapped_range_and_the_last_sunday() -> None:
    _, out, _ = run(
        "30 23-1 * 10 sunL",
        "--tz",
        "Europe/Berlin",
        "--after",
        "2026-10-24T12:00Z",
        "--count",
        "4",
    )
    assert fire_lines(out) == [
        "Sun 2026-10-25 00:30:00 CEST (+02:00)  =  2026-10-24 22:30:00Z",
        "Sun 2026-10-25 01:30:00 CEST (+02:00)  =  2026-10-24 23:30:00Z",
        "Sun 2026-10-25 23:30:00 CET (+01:00)  =  2026-10-25 22:30:00Z",
        "Sun 2027-10-31 00:30:00 CEST (+02:00)  =  2027-10-30 22:30:00Z",
    ]


# -- times given in a zone ------------------------------------------------------------------


def test_after_in_a_gap_means_the_end_of_the_gap() -> None:
    code, out, _ = run(
        "30 2 * * *",
        "--tz",
        "Europe/Berlin",
        "--after",
        "2025-03-30T02:30[Europe/Berlin]",
        "--count",
        "1",
    )
    assert code == 0
    assert out.splitlines()[1:3] == [
        "--after 2025-03-30T02:30 does not exist in Europe/Berlin (clocks jump 02:00→03:00): "
        "read as 2025-03-30T03:00:00+02:00: every time given inside a gap (At, start=, end=, "
        "--after) means the end of the gap, where a cron time in the gap fires too.",
        "Next 1 after 2025-03-30T03:00:00+02:00:",
    ]


def test_after_in_an_overlap_means_the_first_pass() -> None:
    _, out, _ = run(
        "0 * * * *", "--tz", "America/New_York", "--after", "2026-11-01T01:30[America/New_York]"
    )
    assert out.splitlines()[1:3] == [
        "--after 2026-11-01T01:30 happens twice in America/New_York (clocks go back "
        "02:00→01:00): read as its first pass, 2026-11-01T01:30:00-04:00, as a cron time there "
        "fires once, at its first pass.",
        "Next 10 after 2026-11-01T01:30:00-04:00:",
    ]
    assert fire_lines(out)[0].startswith("Sun 2026-11-01 01:00:00 EST (-05:00)")


def test_after_in_a_zone_with_a_matching_offset_or_a_plain_time() -> None:
    shown = run("0 3 * * *", "--after", "2026-07-01T02:00+02:00[Europe/Paris]", "--json")[1]
    assert shown == run("0 3 * * *", "--after", "2026-07-01T00:00Z", "--json")[1]
    _, out, _ = run("0 3 * * *", "--after", "2026-07-01T02:00[Europe/Paris]", "--count", "1")
    assert out.splitlines()[1] == "Next 1 after 2026-07-01T00:00:00+00:00:"


def test_describe_due_says_why_a_bound_lies_at_the_end_of_a_gap() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    start = datetime(2025, 3, 30, 2, 30, tzinfo=berlin)  # in the gap: read as 01:00Z
    trigger = Cron("30 2 * * *", tz="Europe/Berlin", start=start)
    fire = trigger.next_after(datetime(2025, 3, 1, tzinfo=UTC))
    assert fire == datetime(2025, 3, 30, 1, tzinfo=UTC)
    second = int(fire.timestamp())
    assert describe_due(trigger, second) == (
        "moved: 02:30 does not exist on 2025-03-30 (clocks jump 02:00→03:00); fires at the end "
        "of the gap; its start is the end of the gap (clocks jump 02:00→03:00): every time "
        "given inside a gap (At, start=, end=, --after) means the end of the gap, where a cron "
        "time in the gap fires too"
    )
    unbounded = Cron("30 2 * * *", tz="Europe/Berlin")
    assert describe_due(unbounded, second) == (
        "moved: 02:30 does not exist on 2025-03-30 (clocks jump 02:00→03:00); fires at the end "
        "of the gap"
    )
    later = Cron("0 4 * * *", tz="Europe/Berlin", start=start)
    assert describe_due(later, second) == (
        "its start is the end of the gap (clocks jump 02:00→03:00): every time given inside a "
        "gap (At, start=, end=, --after) means the end of the gap, where a cron time in the gap "
        "fires too"
    )
    hashed = Cron("H 2 * * *", tz="America/New_York", key="backup")
    assert describe_due(hashed, int(datetime(2026, 3, 8, 7, tzinfo=UTC).timestamp()))


@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_fire_times_are_printed_as_they_are_computed(
    as_json: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each fire is out before the next is looked for: the third one fails here, and
    the first two have been printed already (they were not held back for a list)."""
    computed = []
    describe = next_module.describe_fire

    def third_fails(compiled: object, fire: int) -> str | None:
        computed.append(fire)
        if len(computed) == 3:
            raise RuntimeError("the third fire")
        return describe(compiled, fire)  # type: ignore[arg-type]

    monkeypatch.setattr(next_module, "describe_fire", third_fails)
    arguments = ["next", "0 2 * * *", "--after", "2026-01-01T00:00Z", "--count", "100000"]
    result = CliRunner().invoke(main, [*arguments, "--json"] if as_json else arguments)
    assert isinstance(result.exception, RuntimeError)
    if as_json:
        assert result.stdout.startswith('[\n  {\n    "utc": "2026-01-01T02:00:00Z",')
        assert '"utc": "2026-01-02T02:00:00Z"' in result.stdout
    else:
        assert fire_lines(result.stdout)[:2] == [
            "Thu 2026-01-01 02:00:00 UTC (+00:00)  =  2026-01-01 02:00:00Z",
            "Fri 2026-01-02 02:00:00 UTC (+00:00)  =  2026-01-02 02:00:00Z",
        ]


def test_the_count_is_at_most_100000() -> None:
    code, out, _ = run("0 0 1 1 *", "--after", "9990-01-01T00:00Z", "--count", "100000")
    assert code == 0
    assert len(fire_lines(out)) == 9 + 1  # 9991 to 9999, and the line saying there is no more
    assert out.endswith("(no more fires before the year 10000)\n")
    code, out, err = run("* * * * *", "--count", "100001", "--json")
    assert code == 2
    assert json.loads(out)["error"]["message"].startswith("--count 100001 is not from 1 to 100000")
    assert err.startswith("Error: --count 100001 is not from 1 to 100000")


def test_years_have_four_digits() -> None:
    code, out, _ = run("0 2 * * *", "--after", "0001-01-01T00:00Z", "--count", "1")
    assert code == 0
    assert fire_lines(out) == ["Mon 0001-01-01 02:00:00 UTC (+00:00)  =  0001-01-01 02:00:00Z"]
    document = json.loads(
        run("0 2 * * *", "--after", "0001-01-01T00:00Z", "--count", "1", "--json")[1]
    )
    assert document[0]["utc"] == "0001-01-01T02:00:00Z"
