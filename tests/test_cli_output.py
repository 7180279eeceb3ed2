"""What the commands share: formatting, exit codes, the progress bar."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest
from rich.console import Console

from chronolog import (
    Completed,
    Cron,
    DuplicateTask,
    Every,
    LogCorrupted,
    Policy,
    Scheduled,
    UnknownTask,
)
from chronolog.cli._common import (
    BadUsage,
    CommandError,
    ExitCode,
    UnusableLog,
    error_document,
    parse_instant,
    translate_errors,
)
from chronolog.cli._output import (
    date_text,
    describe_policy,
    describe_trigger,
    duration_text,
    instant_text,
    iso,
)
from chronolog.cli._progress import MIN_RECORDS, progress_over

if TYPE_CHECKING:
    from chronolog import Event

T = datetime(2026, 3, 29, 1, 0, tzinfo=UTC)


def test_times_and_durations() -> None:
    assert instant_text(T) == "2026-03-29 01:00:00Z"
    assert instant_text(T + timedelta(milliseconds=250)) == "2026-03-29 01:00:00.250Z"
    assert iso(T) == "2026-03-29T01:00:00Z"
    assert [
        duration_text(timedelta(seconds=s))
        for s in (0.25, 3.5, 12.25, 60, 250, 3600, 7380, 86_400, 97_200)
    ] == ["250 ms", "3.5 s", "12.2 s", "1 min", "4 min 10 s", "1 h", "2 h 3 min", "1 d", "1 d 3 h"]
    hashed = Cron("H 3 * * *").for_task("backup")
    assert describe_trigger(hashed) == (
        f"cron 'H 3 * * *' in UTC (H for 'backup': {hashed.resolved_expr!r})"
    )
    assert describe_trigger(Cron("30 2 * * *", tz="Europe/Berlin")) == (
        "cron '30 2 * * *' in Europe/Berlin"
    )
    assert describe_trigger(Every(timedelta(minutes=5), anchor=T)) == (
        "every 5 min from 2026-03-29 01:00:00Z"
    )


def test_times_need_an_offset() -> None:
    assert parse_instant("2026-03-29T03:00+02:00", "--at") == T
    assert parse_instant("2026-03-29T01:00Z", "--at") == T
    with pytest.raises(BadUsage, match="has no UTC offset"):
        parse_instant("2026-03-29", "--since")


@pytest.mark.parametrize(
    ("error", "kind", "code"),
    [
        (LogCorrupted("jobs.jsonl line 3 is not a valid record"), UnusableLog, 3),
        (UnknownTask("no task named 'x'"), BadUsage, 2),
        (DuplicateTask("task 'x' exists with another definition"), BadUsage, 2),
        # A file that is not there once the command runs -- a lock file, a log
        # removed meanwhile -- is work it could not do. A LOG path with nothing
        # behind it is refused before anything is opened, as a usage error.
        (FileNotFoundError(2, "cannot open lock file x.lock"), CommandError, 1),
        (IsADirectoryError(21, "cannot open lock file x.lock"), CommandError, 1),
        (PermissionError(13, "cannot read log x: Permission denied"), CommandError, 1),
    ],
)
def test_errors_map_to_exit_codes(error: Exception, kind: type, code: int) -> None:
    @translate_errors
    def command() -> None:
        raise error

    with pytest.raises(kind) as raised:
        command()
    assert raised.value.exit_code == code == ExitCode(code)
    assert "\n" not in raised.value.message
    assert "[Errno" not in raised.value.message
    assert error_document(raised.value) == {
        "error": {
            "type": type(error).__name__,
            "message": raised.value.message,
            "exit_code": code,
        }
    }


def test_one_spelling_of_durations_for_people() -> None:
    seconds = [0.25, 2, 2.35, 11, 12.5, 20, 90, 3600, 3 * 86_400 + 3600]
    assert [duration_text(timedelta(seconds=s)) for s in seconds] == [
        "250 ms",
        "2 s",
        "2.35 s",
        "11 s",
        "12.5 s",
        "20 s",
        "1 min 30 s",
        "1 h",
        "3 d 1 h",
    ]
    # The interval of a trigger and the policies say it the same way.
    assert describe_trigger(Every(timedelta(seconds=11))) == "every 11 s"
    assert describe_policy(Policy(timeout=timedelta(seconds=11))) == "timeout=11 s"


def test_years_have_four_digits() -> None:
    first = datetime(1, 1, 1, 2, 0, tzinfo=UTC)
    assert instant_text(first) == "0001-01-01 02:00:00Z"
    assert date_text(first) == "0001-01-01"


def records(count: int) -> list[Event]:
    return [
        Completed(task="t", at=T, occurrence=f"t@{n}", attempt=1, seq=n)
        for n in range(1, count + 1)
    ]


def test_the_bar_passes_every_record_through_and_draws_on_a_terminal() -> None:
    many = records(50_000)
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=100)
    with progress_over(
        many, total=len(many), description="verifying", as_json=False, console=console
    ) as stream:
        assert list(stream) == many
    assert "verifying" in screen.getvalue()


def test_no_bar_when_stderr_is_no_terminal_or_for_json(capsys: pytest.CaptureFixture[str]) -> None:
    many = records(10)
    big = MIN_RECORDS * 2
    for as_json in (False, True):
        with progress_over(many, total=big, description="x", as_json=as_json) as stream:
            assert list(stream) == many
    assert capsys.readouterr() == ("", "")


def test_the_bar_counts_records_by_their_seq() -> None:
    scheduled = [Scheduled(task="t", at=T, occurrence="t@1", due=T, seq=7)]
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=100)
    with progress_over(scheduled, total=7, description="r", as_json=False, console=console) as s:
        assert list(s) == scheduled
    assert "7/7" in screen.getvalue()
