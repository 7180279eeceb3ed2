"""``chronolog next``: upcoming fire times, with DST notes."""

import json
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner

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
            "one; add an offset or Z, e.g. '2026-03-08T02:00Z' or '2026-03-08T02:00-05:00'\n",
        ),
        (
            ["0 3 * * *", "--after", "tomorrow"],
            "Error: --after 'tomorrow' is not an ISO 8601 time; write e.g. "
            "'2026-03-08T00:00:00Z' or '2026-03-08T00:00-05:00'\n",
        ),
        (["0 3 * * *", "--count", "0"], "Error: --count must be at least 1, got 0\n"),
        (["0 3 * *"], "Error: cron expression '0 3 * *' has 4 fields; write 5"),
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
