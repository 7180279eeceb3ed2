"""Hypothesis profiles, chosen by HYPOTHESIS_PROFILE (``dev`` by default, ``ci`` in CI).

No profile derandomizes: a failure found once is a failure to fix, and
Hypothesis' example database replays it locally.
"""

import os
from datetime import timedelta

from hypothesis import HealthCheck, settings

settings.register_profile("dev", max_examples=100, deadline=timedelta(seconds=2))
settings.register_profile(
    "ci",
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))
