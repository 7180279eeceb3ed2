"""chronolog's pytest plugin: fixtures for testing jobs on simulated time.

Registered through the ``pytest11`` entry point, so installing chronolog
makes these fixtures available to every test suite. The plugin defines
fixtures only -- no hooks, no options, no markers -- so a test run that does
not ask for them is exactly what it would be without chronolog, and nothing
is imported until a fixture is used.

* ``chronolog_start`` -- where simulated time begins (override it in a
  ``conftest.py`` to move every simulation).
* ``chronolog_clock`` -- a ``SimulatedClock`` on the test's Trio clock.
* ``chronolog_sim`` -- a ``Simulation``: a scheduler on a ``MemoryLog``.
* ``chronolog_file_log`` -- a ``FileLog`` in the test's temporary directory
  (not opened; works in synchronous tests too).

The first two need a Trio test (pytest-trio) running on a
``trio.testing.MockClock``. pytest-trio runs a test on a clock only when
the test function itself takes the clock fixture, so take ``autojump_clock``
as well::

    async def test_nightly(autojump_clock, chronolog_sim):
        await chronolog_sim.add("nightly", Cron("0 2 * * *"), export)
        await chronolog_sim.advance(timedelta(days=7))
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from chronolog.log import FileLog
    from chronolog.testing import SimulatedClock, Simulation

__all__ = ["chronolog_clock", "chronolog_file_log", "chronolog_sim", "chronolog_start"]

#: Where simulated time begins unless ``chronolog_start`` is overridden.
DEFAULT_START = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def chronolog_start() -> datetime:
    """Where simulated time begins; override this fixture to start elsewhere."""
    return DEFAULT_START


@pytest.fixture
async def chronolog_clock(chronolog_start: datetime) -> SimulatedClock:
    """A SimulatedClock that starts at ``chronolog_start``, on the test's Trio clock.

    The test must run on a MockClock: take pytest-trio's ``autojump_clock``
    (or ``mock_clock``) fixture as an argument of the test function.
    """
    import trio
    from trio.testing import MockClock

    from chronolog import ConfigError
    from chronolog.testing import SimulatedClock

    running = trio.lowlevel.current_clock()
    if not isinstance(running, MockClock):
        raise ConfigError(
            f"the chronolog_clock fixture needs the test to run on a trio.testing.MockClock, "
            f"but it runs on {running!r}. Add autojump_clock to the test's arguments, e.g. "
            "`async def test_nightly(autojump_clock, chronolog_sim): ...` -- pytest-trio "
            "uses a clock only when the test function itself takes it"
        )
    return SimulatedClock(chronolog_start, mock_clock=running)


@pytest.fixture
async def chronolog_sim(chronolog_clock: SimulatedClock) -> AsyncIterator[Simulation]:
    """A scheduler on a MemoryLog on simulated time (a ``Simulation``), stopped after the test."""
    from chronolog.testing import simulated_scheduler

    async with simulated_scheduler(clock=chronolog_clock) as simulation:
        yield simulation


@pytest.fixture
def chronolog_file_log(tmp_path: Path) -> FileLog:
    """A FileLog at ``tmp_path / "jobs.jsonl"``, not opened yet (simulations open it)."""
    from chronolog.log import FileLog

    return FileLog(tmp_path / "jobs.jsonl")
