"""`Retry.delay_before` for any attempt a policy allows: capped, never an overflow.

With the default factor 2, attempt 66 would wait 2**64 seconds -- more than a
``timedelta`` holds -- so a task with ``retry.max_attempts`` of 100 that kept
failing crashed its actor at the 49th attempt. The delay is compared with
``max_backoff`` in seconds first.
"""

from __future__ import annotations

import math
from datetime import timedelta

import pytest

from chronolog import ConfigError, Retry


@pytest.mark.parametrize("factor", [1.0, 2.0, 10.0, 1e6, 1e308, math.inf])
def test_every_attempt_waits_at_most_max_backoff(factor: float) -> None:
    retry = Retry(max_attempts=1000, factor=factor, max_backoff=timedelta(hours=2))
    delays = [retry.delay_before(attempt) for attempt in range(2, 1001)]
    assert delays[0] == timedelta(seconds=1)
    assert delays == sorted(delays)
    assert max(delays) <= timedelta(hours=2)
    if factor > 1:
        assert delays[-1] == timedelta(hours=2)


def test_a_factor_that_is_not_a_number_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"Retry\.factor must be at least 1\.0, got nan"):
        Retry(factor=math.nan)
