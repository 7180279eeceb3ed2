"""The pytest plugin: fixtures that work in a user's suite, and nothing else.

The suites below run in a separate pytest process, in a directory of their
own, exactly as a user's project would see the plugin: registered by the
``pytest11`` entry point of the installed package.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from typing import TYPE_CHECKING

import chronolog.testing.plugin

if TYPE_CHECKING:
    from pathlib import Path

USER_TESTS = """
from datetime import datetime, timedelta, timezone

from chronolog import Every, FileLog
from chronolog.testing import HangingTarget, assert_exactly_once, simulate

START = datetime(2030, 5, 1, tzinfo=timezone.utc)


async def test_a_simulated_scheduler_from_the_fixture(autojump_clock, chronolog_sim):
    assert chronolog_sim.now() == START  # chronolog_start, overridden in conftest.py
    job = HangingTarget(timedelta(0))
    await chronolog_sim.add("tick", Every(timedelta(minutes=5), anchor=START), job)
    await chronolog_sim.advance(timedelta(hours=1))
    assert job.calls == 12
    assert_exactly_once(chronolog_sim)


async def test_the_clock_alone(autojump_clock, chronolog_clock):
    await chronolog_clock.advance(timedelta(days=3))
    assert chronolog_clock.now() == START + timedelta(days=3)


def test_a_file_log_in_a_sync_test(chronolog_file_log, tmp_path):
    assert isinstance(chronolog_file_log, FileLog)
    assert chronolog_file_log.path == tmp_path / "jobs.jsonl"

    async def setup(scheduler):
        await scheduler.add("tick", Every(timedelta(hours=1), anchor=START), HangingTarget())

    simulate(setup, start=START, until=timedelta(hours=3), log=chronolog_file_log)
    assert len(list(FileLog(tmp_path / "jobs.jsonl").read())) > 5


async def test_forgot_the_mock_clock(chronolog_sim):
    pass
"""

CONFTEST = """
from datetime import datetime, timezone

import pytest


@pytest.fixture
def chronolog_start():
    return datetime(2030, 5, 1, tzinfo=timezone.utc)
"""

PLAIN_TESTS = """
def test_nothing_to_do_with_chronolog(tmp_path):
    assert tmp_path.exists()
"""


def run_pytest(directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # Hypothesis' plugin is left out: it is slow to load and beside the point.
    options = ["-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-q"]
    return subprocess.run(
        [sys.executable, "-m", "pytest", *options, *args],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_plugin_has_fixtures_and_no_hooks() -> None:
    names = vars(chronolog.testing.plugin)
    assert not [name for name in names if name.startswith("pytest_")]
    assert sorted(chronolog.testing.plugin.__all__) == [
        "chronolog_clock",
        "chronolog_file_log",
        "chronolog_sim",
        "chronolog_start",
    ]


def test_the_fixtures_work_in_a_users_trio_suite(tmp_path: Path) -> None:
    (tmp_path / "pytest.ini").write_text("[pytest]\ntrio_mode = true\n")
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_jobs.py").write_text(textwrap.dedent(USER_TESTS))
    result = run_pytest(tmp_path)
    output = result.stdout + result.stderr
    assert "1 failed, 3 passed" in output, output
    assert "FAILED test_jobs.py::test_forgot_the_mock_clock" in output
    assert (
        "the chronolog_clock fixture needs the test to run on a trio.testing.MockClock" in output
    )
    assert "Add autojump_clock to the test's arguments" in output


def test_a_suite_that_does_not_use_the_fixtures_runs_as_without_the_plugin(
    tmp_path: Path,
) -> None:
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_plain.py").write_text(PLAIN_TESTS)
    with_plugin = run_pytest(tmp_path, "-rA", "-p", "no:trio")
    without = run_pytest(tmp_path, "-rA", "-p", "no:trio", "-p", "no:chronolog")
    assert with_plugin.returncode == without.returncode == 0
    summary = [line for line in with_plugin.stdout.splitlines() if line.startswith("PASSED")]
    assert summary == [line for line in without.stdout.splitlines() if line.startswith("PASSED")]
    assert summary == ["PASSED test_plain.py::test_nothing_to_do_with_chronolog"]
