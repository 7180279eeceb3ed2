"""Prove that your jobs behave: chronolog's public testing harness.

* Simulated schedulers: :func:`simulated_scheduler` (Trio tests) and
  :func:`simulate` (any test suite), on :class:`SimulatedClock` time.
* :class:`Timeline`: a log read back as runs, fire times, outcomes and skips.
* Faults: :class:`Crash`, :class:`Restart`, :class:`ClockJump`,
  :class:`FlakyTarget`, :class:`HangingTarget`.
* Checkers that explain what went wrong: :func:`assert_exactly_once`,
  :func:`assert_nothing_lost`, :func:`assert_replay_consistent`,
  :func:`assert_fires`.
* With Hypothesis installed (``pip install 'chronolog[testing]'``):
  strategies (``cron_expressions()``, ``event_logs()``, ...) and
  ``SchedulerMachine``, a stateful machine to subclass. They load on first
  use, so this package imports without Hypothesis.
* A pytest plugin (registered by entry point) with the fixtures
  ``chronolog_start``, ``chronolog_clock``, ``chronolog_sim`` and
  ``chronolog_file_log``.
"""

from __future__ import annotations

import importlib

from chronolog._clock import SimulatedClock as SimulatedClock

from .faults import ClockJump as ClockJump
from .faults import Crash as Crash
from .faults import FlakyTarget as FlakyTarget
from .faults import HangingTarget as HangingTarget
from .faults import Restart as Restart
from .invariants import assert_exactly_once as assert_exactly_once
from .invariants import assert_fires as assert_fires
from .invariants import assert_nothing_lost as assert_nothing_lost
from .invariants import assert_replay_consistent as assert_replay_consistent
from .simulate import Simulation as Simulation
from .simulate import SimulationError as SimulationError
from .simulate import simulate as simulate
from .simulate import simulated_scheduler as simulated_scheduler
from .timeline import Attempt as Attempt
from .timeline import Note as Note
from .timeline import Occurrence as Occurrence
from .timeline import Timeline as Timeline

#: Names that need Hypothesis, and the module each lives in.
_WITH_HYPOTHESIS = {
    "SchedulerMachine": "machine",
    "TaskDefinition": "strategies",
    "cron_expressions": "strategies",
    "event_logs": "strategies",
    "instants": "strategies",
    "policies": "strategies",
    "task_definitions": "strategies",
    "time_zones": "strategies",
    "triggers": "strategies",
}

__all__ = [
    "Attempt",
    "ClockJump",
    "Crash",
    "FlakyTarget",
    "HangingTarget",
    "Note",
    "Occurrence",
    "Restart",
    "SimulatedClock",
    "Simulation",
    "SimulationError",
    "Timeline",
    "assert_exactly_once",
    "assert_fires",
    "assert_nothing_lost",
    "assert_replay_consistent",
    "simulate",
    "simulated_scheduler",
    *_WITH_HYPOTHESIS,
]


def __getattr__(name: str) -> object:
    module = _WITH_HYPOTHESIS.get(name)
    if module is None:
        raise AttributeError(f"module 'chronolog.testing' has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WITH_HYPOTHESIS))
