"""Hypothesis profiles, chosen by HYPOTHESIS_PROFILE (``dev`` by default, ``ci`` in CI).

No profile derandomizes: a failure found once is a failure to fix, and
Hypothesis' example database replays it locally.
"""

import os
from collections.abc import Iterator
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, settings

from chronolog._actor import _NO_REASONS, _NO_RUNS
from chronolog._projection import _NO_AHEAD

settings.register_profile("dev", max_examples=100, deadline=timedelta(seconds=2))
settings.register_profile(
    "ci",
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@pytest.fixture(autouse=True)
def _shared_empty_ahead_stays_empty() -> Iterator[None]:
    """Tasks share one empty ``ahead`` dict until they skip ahead, and idle actors
    one empty ``runs`` and ``cancel_reasons``: a write to one would reach every
    task. Every property checks it."""
    yield
    assert _NO_AHEAD == {}, f"the shared empty `ahead` of _Task was written to: {_NO_AHEAD}"
    assert _NO_RUNS == {}, f"the shared empty `runs` of TaskActor was written to: {_NO_RUNS}"
    assert _NO_REASONS == {}, f"the shared empty `cancel_reasons` was written to: {_NO_REASONS}"
