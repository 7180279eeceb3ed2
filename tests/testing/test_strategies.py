"""The strategies' options are checked, and the harness stands without Hypothesis."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import UTC, datetime

import pytest

import chronolog.testing
from chronolog import ConfigError
from chronolog.testing import strategies


def test_strategies_are_also_names_of_chronolog_testing() -> None:
    assert chronolog.testing.cron_expressions is strategies.cron_expressions
    assert chronolog.testing.TaskDefinition is strategies.TaskDefinition
    assert "SchedulerMachine" in dir(chronolog.testing)
    with pytest.raises(AttributeError, match="has no attribute 'cron_expression'"):
        chronolog.testing.cron_expression  # noqa: B018 - the lookup is the test


def test_bad_options_are_refused_with_what_would_work() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(ConfigError, match="True, False or None"):
        strategies.cron_expressions(seconds="yes")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"max_fires_per_hour=\.\.\.\) must be at least 1"):
        strategies.cron_expressions(max_fires_per_hour=0)
    with pytest.raises(ConfigError, match="cron, every, at, manual, file_watch"):
        strategies.triggers(kinds=["weekly"])
    with pytest.raises(ConfigError, match="at least one value"):
        strategies.policies(overlaps=[])
    with pytest.raises(ConfigError, match="at least 1"):
        strategies.policies(max_attempts=0)
    with pytest.raises(ConfigError, match="aware datetime"):
        strategies.instants(start=datetime(2026, 1, 1))
    with pytest.raises(ConfigError, match="before start"):
        strategies.instants(start=start, end=datetime(2025, 1, 1, tzinfo=UTC))
    with pytest.raises(ConfigError, match="0 or more"):
        strategies.event_logs(max_steps=-1)
    with pytest.raises(ConfigError, match="at least one name"):
        strategies.event_logs(task_names=[])


def test_without_hypothesis_the_harness_imports_and_the_strategies_say_what_to_install() -> None:
    probe = textwrap.dedent(
        """
        import sys
        sys.modules["hypothesis"] = None  # as if it were not installed
        import chronolog.testing
        assert callable(chronolog.testing.simulate)
        for attempt in (
            lambda: chronolog.testing.cron_expressions,
            lambda: __import__("chronolog.testing.machine"),
        ):
            try:
                attempt()
            except ImportError as error:
                print(error)
            else:
                raise SystemExit("no ImportError")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines == [
        "chronolog.testing.strategies needs Hypothesis, which is not installed; install it "
        "with: pip install 'chronolog[testing]'",
        "chronolog.testing.machine needs Hypothesis, which is not installed; install it "
        "with: pip install 'chronolog[testing]'",
    ]
