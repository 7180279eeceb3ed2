"""How fast is ``Cron.next_after``, next to bare ``croniter.get_next``?

Prints one JSON document. Both sides walk the same expressions from the same
start, fire after fire, in the same run: chronolog by calling
``Cron.next_after(previous_fire)`` (pure, no state), croniter by calling
``get_next`` on one iterator (its fastest, stateful path). Each round walks
about five years of fires (at most 1000) and starts again, so year-long
expressions are timed too without running off to the year 9999. The two
sides' rounds alternate and the fastest of each counts, so a busy machine
skews neither side. Caches are warm for both: the cost of a zone's first use
(discovering its offset changes for a year) is reported separately.

``same_fires`` says whether the two agree fire for fire. In UTC they must; in
a DST zone they differ on purpose for fixed-time expressions (croniter fires
``30 1 * * *`` twice in a fall-back night, chronolog once).

The forms of real crontabs are timed too: wrap-around ranges, ``L``, ``nW``,
``LW``, ``5L``, ``fri#2``, ``?`` and hashed ``H`` fields (croniter with
``hash_id``, chronolog with ``key``). croniter does not read ``LW``, ``L-3``
or ``5L``: those are timed against the closest form it reads (``L`` and its
``L5``), listed as ``croniter_expr``, and ``same_fires`` is not expected of
the first two.

Run: ``python benchmarks/triggers.py`` (``--quick`` for one zone and the
new forms only). Nothing here asserts on time.
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
#: The forms of real crontabs: (chronolog's expression, croniter's when it
#: reads it otherwise or not at all, the key of hashed fields).
NEW_FORMS: list[tuple[str, str | None, str | None]] = [
    ("0 9 * * sat-sun", None, None),
    ("30 22-2 * * *", None, None),
    ("0 0 1 nov-feb *", None, None),
    ("0 0 L * *", None, None),
    ("0 0 L-3 * *", "0 0 L * *", None),
    ("0 0 15W * *", None, None),
    ("0 0 LW * *", "0 0 L * *", None),
    ("0 0 * * 5L", "0 0 * * L5", None),
    ("0 0 * * fri#2", None, None),
    ("0 12 ? * mon", None, None),
    ("H H * * *", None, "backup"),
    ("H(0-29)/10 * * * *", None, "backup"),
]
ZONES = ["UTC", "America/New_York"]
START = datetime(2026, 1, 1, tzinfo=UTC)
HORIZON = timedelta(days=5 * 365)
MAX_FIRES = 1000
MIN_SECONDS = 0.3
ROUNDS = 5


def best_rates(*rounds: Callable[[], int]) -> list[float]:
    """Calls per second of each round's fastest run (a round returns how many calls it made).

    The rounds run in turn, again and again, for MIN_SECONDS each at least and
    ROUNDS times at least, so both sides see the same machine load; the
    fastest run of each is the one least disturbed by other processes.
    """
    best = [0.0] * len(rounds)
    spent = [0.0] * len(rounds)
    runs = 0
    while runs < ROUNDS or min(spent) < MIN_SECONDS:
        for index, round_ in enumerate(rounds):
            began = time.perf_counter()
            calls = round_()
            elapsed = time.perf_counter() - began
            spent[index] += elapsed
            best[index] = max(best[index], calls / elapsed)
        runs += 1
    return best


def case(
    expr: str, tz: str, croniter_expr: str | None = None, key: str | None = None
) -> dict[str, object]:
    trigger = Cron(expr, tz=tz, key=key)
    ours: list[datetime] = []
    fire = trigger.next_after(START)
    while fire is not None and fire < START + HORIZON and len(ours) < MAX_FIRES:
        ours.append(fire)
        fire = trigger.next_after(fire)
    count = len(ours)

    theirs_expr = croniter_expr or expr
    iterator = croniter(theirs_expr, START.astimezone(ZoneInfo(tz)), hash_id=key)
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
    ours_rate, theirs_rate = best_rates(chronolog_round, croniter_round)
    return {
        "expr": expr,
        **({"croniter_expr": croniter_expr} if croniter_expr else {}),
        **({"key": key} if key else {}),
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
    quick = "--quick" in sys.argv[1:]
    zones = ZONES[:1] if quick else ZONES
    cases = [] if quick else [case(expr, tz) for tz in zones for expr in EXPRESSIONS]
    cases += [case(expr, tz, theirs, key) for tz in zones for expr, theirs, key in NEW_FORMS]
    ratios = [c["ratio"] for c in cases]
    assert all(isinstance(r, float) for r in ratios)
    floats = [float(r) for r in ratios]  # type: ignore[arg-type]
    document = {
        "benchmark": "Cron.next_after vs croniter.get_next",
        "python": platform.python_version(),
        "croniter": version("croniter"),
        "method": (
            f"fire after fire from {START.isoformat()}, up to {MAX_FIRES} fires or "
            f"{HORIZON.days} days per round; chronolog's and croniter's rounds in turn, at "
            f"least {ROUNDS} times and {MIN_SECONDS}s each, the fastest round of each "
            f"counted; warm caches"
        ),
        "cases": cases,
        "summary": {
            "min_ratio": min(floats),
            "geometric_mean_ratio": round(math.exp(sum(map(math.log, floats)) / len(floats)), 2),
            "max_ratio": max(floats),
            "utc_fires_all_agree": all(
                c["same_fires"] for c in cases if c["tz"] == "UTC" and "croniter_expr" not in c
            ),
        },
        "cold_zone_chunk_ms": {tz: cold_zone_year_ms(tz) for tz in zones},
    }
    json.dump(document, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
