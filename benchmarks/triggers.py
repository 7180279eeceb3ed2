"""How fast is ``Cron.next_after``, next to bare ``croniter.get_next``?

Prints one JSON document. Both sides walk the same expressions from the same
start, fire after fire, in the same run: chronolog by calling
``Cron.next_after(previous_fire)`` (pure, no state), croniter by calling
``get_next`` on one iterator (its fastest, stateful path). Each round walks
about five years of fires (at most 1000) and starts again, so year-long
expressions are timed too without running off to the year 9999. Caches are
warm for both: the cost of a zone's first use (discovering its offset
changes for a year) is reported separately.

``same_fires`` says whether the two agree fire for fire. In UTC they must; in
a DST zone they differ on purpose for fixed-time expressions (croniter fires
``30 1 * * *`` twice in a fall-back night, chronolog once).

Run: ``python benchmarks/triggers.py``. Nothing here asserts on time.
"""

from __future__ import annotations

import json
import math
import platform
import sys
import time
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from croniter import croniter

from chronolog import Cron
from chronolog._zones import CHUNK_SECONDS, chunk_segments

if TYPE_CHECKING:
    from collections.abc import Callable

EXPRESSIONS = [
    "*/5 * * * *",
    "30 2 * * *",
    "30 1 * * *",
    "0 9 * * mon-fri",
    "15 */2 * * *",
    "0 0 1 * *",
    "0 0 13 * fri",
    "0,30 8-18 * jan-jun 1-5",
    "*/10 * * * * 30",
]
ZONES = ["UTC", "America/New_York"]
START = datetime(2026, 1, 1, tzinfo=UTC)
HORIZON = timedelta(days=5 * 365)
MAX_FIRES = 1000
MIN_SECONDS = 0.3


def calls_per_second(round_: Callable[[], int]) -> float:
    """Repeat ``round_`` (which returns how many calls it made) for MIN_SECONDS."""
    calls = 0
    began = time.perf_counter()
    while True:
        calls += round_()
        elapsed = time.perf_counter() - began
        if elapsed >= MIN_SECONDS:
            return calls / elapsed


def case(expr: str, tz: str) -> dict[str, object]:
    trigger = Cron(expr, tz=tz)
    ours: list[datetime] = []
    fire = trigger.next_after(START)
    while fire is not None and fire < START + HORIZON and len(ours) < MAX_FIRES:
        ours.append(fire)
        fire = trigger.next_after(fire)
    count = len(ours)

    iterator = croniter(expr, START.astimezone(ZoneInfo(tz)))
    theirs = [iterator.get_next(datetime).astimezone(UTC) for _ in range(count)]

    def chronolog_round() -> int:
        t = START
        for _ in range(count):
            t = trigger.next_after(t)  # type: ignore[assignment]
        return count

    def croniter_round() -> int:
        iterator.set_current(START.astimezone(ZoneInfo(tz)), force=True)
        for _ in range(count):
            iterator.get_next(datetime)
        return count

    # Compare where both walked: the longer list's tail is not a disagreement.
    horizon = min(ours[-1], theirs[-1])
    differing = {f for f in set(ours) ^ set(theirs) if f <= horizon}
    ours_rate = calls_per_second(chronolog_round)
    theirs_rate = calls_per_second(croniter_round)
    return {
        "expr": expr,
        "tz": tz,
        "fires_per_round": count,
        "calls_per_second": {"chronolog": round(ours_rate), "croniter": round(theirs_rate)},
        "ratio": round(ours_rate / theirs_rate, 2),
        "same_fires": not differing,
        "differing_fires": [
            f"{f:%Y-%m-%dT%H:%M:%SZ} only {'chronolog' if f in ours else 'croniter'}"
            for f in sorted(differing)
        ],
    }


def cold_zone_year_ms(tz: str) -> float:
    """Milliseconds to discover a zone's offset changes for one ~388-day chunk."""
    chunk_segments.cache_clear()
    chunks = range(START.year - 1970, START.year - 1970 + 20)
    began = time.perf_counter()
    for index in chunks:
        chunk_segments(tz, index * 31_536_000 // CHUNK_SECONDS)
    return round((time.perf_counter() - began) * 1000 / len(chunks), 3)


def main() -> None:
    cases = [case(expr, tz) for tz in ZONES for expr in EXPRESSIONS]
    ratios = [c["ratio"] for c in cases]
    assert all(isinstance(r, float) for r in ratios)
    floats = [float(r) for r in ratios]  # type: ignore[arg-type]
    document = {
        "benchmark": "Cron.next_after vs croniter.get_next",
        "python": platform.python_version(),
        "croniter": version("croniter"),
        "method": (
            f"fire after fire from {START.isoformat()}, up to {MAX_FIRES} fires or "
            f"{HORIZON.days} days per round, rounds repeated for {MIN_SECONDS}s, warm caches"
        ),
        "cases": cases,
        "summary": {
            "min_ratio": min(floats),
            "geometric_mean_ratio": round(math.exp(sum(map(math.log, floats)) / len(floats)), 2),
            "max_ratio": max(floats),
            "utc_fires_all_agree": all(c["same_fires"] for c in cases if c["tz"] == "UTC"),
        },
        "cold_zone_chunk_ms": {tz: cold_zone_year_ms(tz) for tz in ZONES},
    }
    json.dump(document, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
