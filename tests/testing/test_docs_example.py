"""The how-to "Prove your jobs behave" runs as printed, so it cannot rot.

Its Python blocks are executed in order, in one namespace, as a user who
copies them into a test module would; then every test they define runs, and
the table the page prints is compared with what the code prints.
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path
from typing import Any

import pytest
import trio
from trio.testing import MockClock

from chronolog.testing import SimulatedClock, simulated_scheduler
from chronolog.testing.plugin import DEFAULT_START

PAGE = Path(__file__).parents[2] / "docs" / "how-to" / "prove-your-jobs-behave.md"


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", PAGE.read_text(), flags=re.DOTALL)


@pytest.fixture(scope="module")
def page() -> tuple[dict[str, Any], str]:
    """The page's namespace after running its blocks, and what they printed."""
    namespace: dict[str, Any] = {"__name__": "prove_your_jobs_behave"}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        for source in blocks("python"):
            exec(compile(source, str(PAGE), "exec"), namespace)
    return namespace, printed.getvalue()


def test_the_printed_timeline_is_what_the_code_prints(page: tuple[dict[str, Any], str]) -> None:
    _, printed = page
    (table,) = blocks("text")
    assert printed == table


def test_the_year_with_a_crash(page: tuple[dict[str, Any], str]) -> None:
    namespace, _ = page
    namespace["test_the_nightly_export_runs_once_a_night_for_a_year"]()


def test_the_trio_example(page: tuple[dict[str, Any], str]) -> None:
    namespace, _ = page
    clock = MockClock(autojump_threshold=0)
    trio.run(namespace["test_a_deploy_at_0159_does_not_lose_the_0200_export"], clock, clock=clock)


def test_the_fixture_example(page: tuple[dict[str, Any], str]) -> None:
    namespace, _ = page
    clock = MockClock(autojump_threshold=0)

    # What the plugin's chronolog_sim fixture does (tests/testing/test_plugin.py
    # runs the real fixtures in a pytest of their own).
    async def with_fixtures() -> None:
        simulated = SimulatedClock(DEFAULT_START, mock_clock=clock)
        async with simulated_scheduler(clock=simulated) as sim:
            await namespace["test_the_export_with_fixtures"](clock, sim)

    trio.run(with_fixtures, clock=clock)


def test_the_property_example(page: tuple[dict[str, Any], str]) -> None:
    namespace, _ = page
    namespace["test_any_job_survives_a_crash"]()


def test_the_state_machine_example(page: tuple[dict[str, Any], str]) -> None:
    namespace, _ = page
    namespace["TestNightlyExport"]("runTest").runTest()
