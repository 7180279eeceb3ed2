"""The job file: every key, its defaults, and an error naming the path of each mistake."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from chronolog import At, CatchUp, ConfigError, Cron, Every, FileWatch, Manual, Overlap, Retry
from chronolog._commands import CommandSpec
from chronolog._config import (
    CallSpec,
    load_job_file,
    log_setting,
    parse_job_file,
    policy_arguments,
    resolve_job,
)
from chronolog._job_file_syntax import MAX_DURATION, duration_spelling, parse_duration

if TYPE_CHECKING:
    from pathlib import Path

ECHO = "echo"  # on PATH wherever the tests run


def problems_of(text: str) -> str:
    with pytest.raises(ConfigError) as raised:
        parse_job_file(text)
    return str(raised.value)


# -- durations -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("5m", timedelta(minutes=5)),
        ("5min", timedelta(minutes=5)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1h 30m", timedelta(hours=1, minutes=30)),
        ("1.5h", timedelta(hours=1, minutes=30)),
        ("500ms", timedelta(milliseconds=500)),
        ("2d", timedelta(days=2)),
        (" 10s ", timedelta(seconds=10)),
    ],
)
def test_durations_are_a_number_and_a_unit(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected
    assert parse_duration(duration_spelling(expected)) == expected


@pytest.mark.parametrize("text", ["", "5", "5 mins", "m5", "1h30", "5s extra", "-5s", "1y"])
def test_a_bad_duration_shows_the_syntax(text: str) -> None:
    with pytest.raises(ValueError, match=r"is not a duration; write a number and a unit"):
        parse_duration(text)


def test_the_longest_duration_is_100_years() -> None:
    assert parse_duration("36500d") == MAX_DURATION == timedelta(days=36_500)
    assert parse_duration("876000h") == MAX_DURATION
    for text in (
        "36501d",
        "36500d1ms",
        "99999999999999d",
        "9" * 5000 + "s",
        "1" + "0" * 400 + "d",
    ):
        with pytest.raises(ValueError, match=r"is longer than 36500d \(100 years\), the longest"):
            parse_duration(text)


def test_a_duration_must_be_longer_than_zero_unless_allowed() -> None:
    with pytest.raises(ValueError, match="must be longer than zero"):
        parse_duration("0s")
    assert parse_duration("0s", allow_zero=True) == timedelta(0)
    with pytest.raises(ValueError, match="expected a duration string, got an integer 5"):
        parse_duration(5)


# -- a valid file ----------------------------------------------------------------


def test_every_key_of_a_job_file(tmp_path: Path) -> None:
    (tmp_path / "work").mkdir()
    path = tmp_path / "jobs.toml"
    path.write_text(
        """
log = "logs/jobs.jsonl"
shutdown_grace = "10s"
max_concurrent = 4
result_max_bytes = 4096

[defaults]
overlap = "queue"
timeout = "30m"
retry = { max_attempts = 3, backoff = "10s" }
tz = "Europe/Paris"
env = { LANG = "C", LEVEL = "default" }

[[jobs]]
name = "backup"
cron = "0 3 * * *"
command = ["echo", "backup", "--full"]
env = { LEVEL = "job" }
cwd = "work"
catch_up = "all"
catch_up_limit = 10
misfire_grace = "1h"
jitter = "30s"
max_runs = 100
start = 2026-01-01T00:00:00Z
end = "2027-01-01T00:00:00+01:00"

[[jobs]]
name = "report"
every = "15m"
call = "json:dumps"
overlap = "replace"
retry = { max_attempts = 1, factor = 3, max_backoff = "5m" }
paused = true

[[jobs]]
name = "once"
at = 2026-05-01T09:00:00+02:00
command = "echo once > once.txt"
remove_after_run = true

[[jobs]]
name = "ingest"
watch = "inbox.csv"
poll = "500ms"
command = "echo changed"

[[jobs]]
name = "by-hand"
manual = true
command = "echo asked"
"""
    )
    job_file = load_job_file(path)
    assert job_file.path == path
    assert job_file.log == tmp_path / "logs/jobs.jsonl"
    assert job_file.shutdown_grace == timedelta(seconds=10)
    assert job_file.max_concurrent == 4
    assert job_file.result_max_bytes == 4096
    backup, report, once, ingest, by_hand = job_file.jobs
    assert backup.trigger == Cron(
        "0 3 * * *",
        tz="Europe/Paris",
        start=datetime(2026, 1, 1, tzinfo=UTC),
        end=datetime(2026, 12, 31, 23, tzinfo=UTC),
    )
    assert backup.target == CommandSpec(
        argv=("echo", "backup", "--full"),
        cwd=str(tmp_path / "work"),
        env=(("LANG", "C"), ("LEVEL", "job")),
    )
    policy = backup.policy
    assert (policy.overlap, policy.catch_up, policy.catch_up_limit) == (
        Overlap.QUEUE,
        CatchUp.ALL,
        10,
    )
    assert policy.misfire_grace == timedelta(hours=1)
    assert policy.jitter == timedelta(seconds=30)
    assert policy.timeout == timedelta(minutes=30)  # from [defaults]
    assert policy.retry == Retry(max_attempts=3, backoff=timedelta(seconds=10))
    assert policy.max_runs == 100
    assert report.trigger == Every(timedelta(minutes=15))
    assert report.target == CallSpec("json:dumps")
    assert report.policy.overlap is Overlap.REPLACE
    # A job's retry table replaces the default one as a whole.
    assert report.policy.retry == Retry(
        max_attempts=1, factor=3.0, max_backoff=timedelta(minutes=5)
    )
    assert report.policy.paused
    assert once.trigger == At(datetime(2026, 5, 1, 7, tzinfo=UTC))
    assert once.target == CommandSpec(
        shell="echo once > once.txt",
        cwd=str(tmp_path),  # commands run in the job file's directory by default
        env=(("LANG", "C"), ("LEVEL", "default")),
    )
    assert once.policy.remove_after_run
    assert ingest.trigger == FileWatch(
        str(tmp_path / "inbox.csv"), poll=timedelta(milliseconds=500)
    )
    assert by_hand.trigger == Manual()
    assert policy_arguments(by_hand.policy)["overlap"] is Overlap.QUEUE


def test_an_empty_file_is_a_scheduler_without_jobs() -> None:
    job_file = parse_job_file("")
    assert job_file.jobs == ()
    assert job_file.log is None
    assert job_file.shutdown_grace == timedelta(seconds=30)
    assert job_file.result_max_bytes == 8192


def test_shutdown_grace_may_be_zero() -> None:
    assert parse_job_file('shutdown_grace = "0s"').shutdown_grace == timedelta(0)


def test_log_setting_reads_only_the_log(tmp_path: Path) -> None:
    path = tmp_path / "jobs.toml"
    path.write_text('log = "jobs.jsonl"\n[[jobs]]\nname = "x"\ncall = "no.such:module"\n')
    assert log_setting(path) == tmp_path / "jobs.jsonl"
    path.write_text("[[jobs]]\n")
    assert log_setting(path) is None
    path.write_text("log = 3\n")
    with pytest.raises(ConfigError, match="log: expected a path"):
        log_setting(path)


# -- what is wrong, and where -------------------------------------------------------


def test_malformed_toml_names_line_and_column() -> None:
    message = problems_of('log = "jobs.jsonl"\n[[jobs]]\nname = "a\n')
    assert message == "job file is not valid TOML: line 3, column 10: illegal character '\\n'"


def test_malformed_toml_at_the_end() -> None:
    assert problems_of("log = ") == (
        "job file is not valid TOML: at the end of the file: invalid value"
    )


def test_an_unknown_key_is_named_with_its_path_and_the_closest_key() -> None:
    message = problems_of(
        '[[jobs]]\nname = "a"\nmanual = true\ncall = "json:dumps"\n[[jobs]]\n'
        'name = "b"\ncrn = "* * * * *"\ncall = "json:dumps"\n'
    )
    assert message == "job file: jobs[1].crn (job 'b'): unknown key; did you mean 'cron'?"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("lg = 1", "job file: lg: unknown key; did you mean 'log'?"),
        (
            "[defaults]\ntimout = '1s'",
            "job file: defaults.timout: unknown key; did you mean 'timeout'?",
        ),
        (
            "[defaults]\nretry = { attempts = 2 }",
            "job file: defaults.retry.attempts: unknown key; did you mean 'max_attempts'?",
        ),
        ("[defaults]\nzzz = 1", "job file: defaults.zzz: unknown key"),
    ],
)
def test_unknown_keys_everywhere(text: str, expected: str) -> None:
    assert problems_of(text) == expected


def test_a_missing_key_is_named() -> None:
    message = problems_of("[[jobs]]\nevery = '1s'\ncall = 'json:dumps'\n")
    assert message == "job file: jobs[0].name: missing (this key is required)"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("max_concurrent = '4'", "max_concurrent: expected an integer, got a string '4'"),
        ("max_concurrent = true", "max_concurrent: expected an integer, got a boolean True"),
        ("[defaults]\npaused = 1", "defaults.paused: expected true or false, got an integer 1"),
        (
            "[defaults]\ntimeout = 60",
            "defaults.timeout: expected a duration string, got an integer 60",
        ),
        (
            "[defaults]\noverlap = 'sometimes'",
            "defaults.overlap: expected one of skip, queue, allow, replace",
        ),
        ("[defaults]\ncatch_up = 'some'", "defaults.catch_up: expected one of latest, all, none"),
        (
            "[defaults]\nenv = { A = 1 }",
            "defaults.env: A is an integer 1; environment values are strings",
        ),
        ("[defaults]\nenv = 'A=1'", "defaults.env: expected a table"),
        (
            "jobs = 3",
            "jobs: expected an array of tables, one [[jobs]] entry per job, got an integer 3",
        ),
        ("jobs = [3]", "jobs[0]: expected a table (a [[jobs]] entry with name = ...), got an"),
        ("defaults = 3", "defaults: expected a table such as [defaults] with tz = ..., got an"),
        ("[defaults]\nretry = 3", "defaults.retry: expected a table such as { max_attempts"),
        (
            "max_concurrent = 1000000001",
            "max_concurrent: 1000000001 is larger than 1000000000, the largest number chronolog "
            "accepts",
        ),
        ("[defaults]\nretry = { factor = inf }", "defaults.retry.factor: expected a finite"),
        (
            "shutdown_grace = '36501d'",
            "shutdown_grace: '36501d' is longer than 36500d (100 years), the longest duration "
            "chronolog accepts",
        ),
        ("[defaults]\ntz = ''", "defaults.tz: is empty; write an IANA time zone"),
        ("[defaults]\ncwd = ' '", "defaults.cwd: is empty; give a directory"),
        ("max_concurrent = 0", "max_concurrent: must be at least 1, got 0"),
        ("result_max_bytes = 10", "result_max_bytes: must be at least 64, got 10"),
        ("log = ' '", "log: is empty"),
    ],
)
def test_wrong_types_and_values_at_the_top(text: str, expected: str) -> None:
    assert expected in problems_of(text)


def job(body: str, name: str = "a") -> str:
    return f'[[jobs]]\nname = "{name}"\n{body}\n'


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "call = 'json:dumps'",
            "jobs[0] (job 'a'): no trigger; give exactly one of cron, every, at, watch or "
            "manual = true",
        ),
        (
            "every = '1s'\ncron = '* * * * *'\ncall = 'json:dumps'",
            "jobs[0].every (job 'a'): a job has exactly one trigger, and this one also has cron",
        ),
        (
            "manual = false\ncall = 'json:dumps'",
            "jobs[0].manual (job 'a'): manual = false names no trigger; write manual = true",
        ),
        (
            "cron = '61 3 * * *'\ncall = 'json:dumps'",
            "jobs[0].cron (job 'a'): cron minute field '61' is out of range 0-59 in '61 3 * * *'",
        ),
        (
            "cron = '0 3 * * *'\ntz = 'Mars/Olympus'\ncall = 'json:dumps'",
            "jobs[0].tz (job 'a'): unknown time zone 'Mars/Olympus'",
        ),
        (
            "every = '1s'\ntz = 'UTC'\ncall = 'json:dumps'",
            "jobs[0].tz (job 'a'): applies only to "
            "cron jobs (at, start and end take a UTC offset instead), and this job uses every",
        ),
        (
            "cron = '* * * * *'\npoll = '1s'\ncall = 'json:dumps'",
            "jobs[0].poll (job 'a'): applies only to watch jobs",
        ),
        (
            "every = '1s'\nremove_after_run = true\ncall = 'json:dumps'",
            "jobs[0].remove_after_run (job 'a'): applies only to at jobs",
        ),
        (
            "manual = true\nstart = 2026-01-01T00:00:00Z\ncall = 'json:dumps'",
            "jobs[0].start (job 'a'): applies only to cron and every jobs",
        ),
        (
            "at = 2026-01-01T00:00:00\ncall = 'json:dumps'",
            "jobs[0].at (job 'a'): 2026-01-01T00:00:00 "
            "has no UTC offset, and chronolog never guesses one",
        ),
        (
            "at = 2026-01-01\ncall = 'json:dumps'",
            "jobs[0].at (job 'a'): 2026-01-01 is not a date and time",
        ),
        (
            "at = 'tomorrow'\ncall = 'json:dumps'",
            "jobs[0].at (job 'a'): 'tomorrow' is not a date and time",
        ),
        (
            "every = '1s'\nstart = 2027-01-01T00:00:00Z\nend = 2026-01-01T00:00:00Z\n"
            "call = 'json:dumps'",
            "jobs[0].end (job 'a'): Every end 2026-01-01T00:00:00+00:00 is before its start",
        ),
        ("watch = ' '\ncall = 'json:dumps'", "jobs[0].watch (job 'a'): is empty"),
        ("manual = true", "jobs[0] (job 'a'): no target; give command"),
        (
            "manual = true\ncall = 'json:dumps'\ncommand = 'x'",
            "jobs[0].call (job 'a'): a job has one target, and this one also has command",
        ),
        (
            "manual = true\ncall = 'json:dumps'\ncwd = '.'",
            "jobs[0].cwd (job 'a'): applies only to command targets, and this job has call",
        ),
        ("manual = true\ncall = 'dumps'", "jobs[0].call (job 'a'): 'dumps' is not an import path"),
        (
            "manual = true\ncall = 'no_such_module_here:run'",
            "jobs[0].call (job 'a'): cannot import "
            "module 'no_such_module_here' of target 'no_such_module_here:run'",
        ),
        (
            "manual = true\ncall = 'json:nothing'",
            "jobs[0].call (job 'a'): module 'json' has no 'nothing'",
        ),
        (
            "manual = true\ncall = 'json:__name__'",
            "jobs[0].call (job 'a'): target 'json:__name__' is a str, not a callable",
        ),
        ("manual = true\ncommand = ''", "jobs[0].command (job 'a'): the command is empty"),
        ("manual = true\ncommand = []", "jobs[0].command (job 'a'): the argument list is empty"),
        (
            "manual = true\ncommand = ['echo', 1]",
            "jobs[0].command (job 'a'): argument 1 is an integer",
        ),
        (
            "manual = true\ncommand = 5",
            "jobs[0].command (job 'a'): expected a shell command string or a list of arguments",
        ),
        (
            "manual = true\ncommand = ['no-such-program-xyz']",
            "jobs[0].command (job 'a'): program "
            "'no-such-program-xyz' is not an executable file on PATH",
        ),
        ("manual = true\ncommand = ['./missing.sh']", "is not an executable file (looked for "),
        ("manual = true\ncommand = 'x'\ncwd = 'nowhere'", "jobs[0].cwd (job 'a'): directory "),
        (
            "manual = true\ncall = 'json:dumps'\ncatch_up_limit = 0",
            "jobs[0].catch_up_limit (job 'a'): catch_up_limit must be at least 1, got 0",
        ),
        (
            "manual = true\ncall = 'json:dumps'\nmax_runs = 0",
            "jobs[0].max_runs (job 'a'): max_runs must be at least 1 when given, got 0",
        ),
        (
            "manual = true\ncall = 'json:dumps'\nretry = { max_attempts = 0 }",
            "jobs[0].retry (job 'a'): Retry.max_attempts must be at least 1",
        ),
        (
            "manual = true\ncall = 'json:dumps'\ntimeout = '0s'",
            "jobs[0].timeout (job 'a'): duration '0s' must be longer than zero",
        ),
    ],
)
def test_what_is_wrong_with_a_job(body: str, expected: str) -> None:
    assert expected in problems_of(job(body))


def test_a_hashed_cron_field_is_checked_with_the_jobs_name_as_key() -> None:
    """H(29-31) in February: possible for a name that picks 29, not for one that picks 31."""
    body = "cron = '0 0 H(29-31) 2 *'\ncall = 'json:dumps'"
    (valid,) = parse_job_file(job(body, name="a")).jobs
    assert valid.trigger == Cron("0 0 H(29-31) 2 *", key="a")
    assert "jobs[0].cron (job 'f'): cron expression '0 0 H(29-31) 2 *' (with key 'f': " in (
        problems_of(job(body, name="f"))
    )


def test_a_bad_task_name_and_a_duplicate_name() -> None:
    assert "jobs[0].name (job ' a'): task name ' a' is empty or has leading/trailing spaces" in (
        problems_of(job("manual = true\ncall = 'json:dumps'", name=" a"))
    )
    message = problems_of(job("manual = true\ncall = 'json:dumps'") * 2)
    assert message == "job file: jobs[1].name (job 'a'): 'a' is also the name of jobs[0]"


def test_a_missing_default_cwd_is_named_in_defaults() -> None:
    message = problems_of("[defaults]\ncwd = 'nowhere'\n" + job("manual = true\ncommand = 'x'"))
    assert message.startswith("job file: defaults.cwd: directory ")


def test_every_problem_is_listed_one_per_line_up_to_a_limit() -> None:
    text = "".join(job("every = 'soon'\ncall = 'json:dumps'", name=f"j{i}") for i in range(10))
    lines = problems_of(text).splitlines()
    assert lines[0] == "job file: 10 problems:"
    assert lines[1] == (
        "  jobs[0].every (job 'j0'): 'soon' is not a duration; write a number and a unit, "
        "e.g. '90s', '5m', '1h30m', '2d' (units: ms, s, m, h, d)"
    )
    assert len(lines) == 1 + 8 + 1
    assert lines[-1] == "  ... and 2 more"


def test_a_program_path_is_taken_from_the_working_directory(tmp_path: Path) -> None:
    script = tmp_path / "run.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o755)
    path = tmp_path / "jobs.toml"
    path.write_text(job("manual = true\ncommand = ['./run.sh', 'x']"))
    (found,) = load_job_file(path).jobs
    assert found.target == CommandSpec(argv=("./run.sh", "x"), cwd=str(tmp_path))
    script.chmod(0o644)
    with pytest.raises(ConfigError, match=r"program './run.sh' is not an executable file"):
        load_job_file(path)


def test_a_job_file_that_cannot_be_read(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"job file .*nothing.toml does not exist"):
        load_job_file(tmp_path / "nothing.toml")
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe")
    with pytest.raises(ConfigError, match="is not UTF-8 text"):
        load_job_file(binary)
    if os.geteuid() != 0:  # root reads anything
        secret = tmp_path / "secret.toml"
        secret.write_text("")
        secret.chmod(0)
        with pytest.raises(ConfigError, match="cannot read job file"):
            load_job_file(secret)


# -- one job, for `chronolog add` -------------------------------------------------


def test_resolve_job_names_options_instead_of_paths(tmp_path: Path) -> None:
    def option(key: str) -> str:
        return "the task" if not key else "--" + key.replace("_", "-")

    with pytest.raises(ConfigError) as raised:
        resolve_job(
            {"name": "x", "every": "1s", "cron": "* * * * *", "call": "json:dumps", "cwd": "."},
            base=tmp_path,
            source="cannot add 'x'",
            where=option,
            term=option,
        )
    assert str(raised.value).splitlines() == [
        "cannot add 'x': 2 problems:",
        "  --every: a job has exactly one trigger, and this one also has --cron",
        "  --cwd: applies only to command targets, and this job has --call",
    ]
    with pytest.raises(ConfigError, match=r"^cannot add 'x': --every: '1 sec' is not a duration"):
        resolve_job(
            {"name": "x", "every": "1 sec", "call": "json:dumps"},
            base=tmp_path,
            source="cannot add 'x'",
            where=option,
        )
    with pytest.raises(ConfigError, match=r"  --naem: unknown key; did you mean 'name'\?"):
        resolve_job({"naem": "x"}, base=tmp_path, where=option)
    found = resolve_job({"name": "x", "every": "1s", "command": "echo hi"}, base=tmp_path)
    assert found.target == CommandSpec(shell="echo hi", cwd=str(tmp_path))


def test_the_current_directory_is_the_base_of_a_file_without_a_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    job_file = parse_job_file('log = "x.jsonl"\n' + job(f"manual = true\ncommand = ['{ECHO}']"))
    assert job_file.log == tmp_path / "x.jsonl"
    assert job_file.jobs[0].target == CommandSpec(argv=(ECHO,), cwd=str(tmp_path))


def test_a_postgresql_log_is_a_url_with_a_node_and_a_lease(tmp_path: Path) -> None:
    url = "postgresql://scheduler@db.internal:5432/jobs"
    job_file = parse_job_file(
        f'log = "{url}"\nnode = "web-1"\nlease = "30s"\n', path=tmp_path / "jobs.toml"
    )
    assert (job_file.log, job_file.node, job_file.lease) == (url, "web-1", timedelta(seconds=30))
    (tmp_path / "jobs.toml").write_text(f'log = "{url}"\n')
    assert log_setting(tmp_path / "jobs.toml") == url


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('log = "jobs.jsonl"\nlease = "30s"', "lease: applies to a postgresql:// log only"),
        ('log = "postgresql://a@b/c"\nlease = "500ms"', "lease: must be at least 1s, got 500ms"),
        ('node = " "', "node: is empty"),
    ],
)
def test_node_and_lease_are_checked(text: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(expected)):
        parse_job_file(text)
