"""Tools for testing code that runs on chronolog: the harness grows here.

For now it holds :class:`SimulatedClock`, which runs months of schedules on
``trio.testing.MockClock`` in milliseconds of real time.
"""

from chronolog._clock import SimulatedClock as SimulatedClock

__all__ = ["SimulatedClock"]
