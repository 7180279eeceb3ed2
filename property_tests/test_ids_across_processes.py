"""Occurrence ids and jitter are the same in another process (no hash seed, no state)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from chronolog._ids import content_hash, file_change_occurrence, jitter_for, time_occurrence

_CHILD = """
import json, sys
from datetime import datetime, timedelta
from chronolog._ids import content_hash, file_change_occurrence, jitter_for, time_occurrence
out = []
for task, due, content, jitter_us in json.load(sys.stdin):
    due = datetime.fromisoformat(due)
    change = file_change_occurrence(task, None, content_hash(content.encode()))
    occurrence = time_occurrence(task, due)
    delay = jitter_for(occurrence, timedelta(microseconds=jitter_us))
    out.append([occurrence, change, delay // timedelta(microseconds=1)])
json.dump(out, sys.stdout)
"""

cases = st.lists(
    st.tuples(
        # Task names are printable text: letters, digits, punctuation, symbols.
        st.text(alphabet=st.characters(categories=("L", "N", "P", "S")), min_size=1, max_size=20),
        st.datetimes(
            min_value=datetime(1990, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.just(UTC)
        ),
        st.text(max_size=30),
        st.integers(1, 10**9),
    ),
    min_size=1,
    max_size=20,
)


@settings(max_examples=10, deadline=None)
@given(cases)
def test_ids_are_stable_across_processes(batch: list[tuple[str, datetime, str, int]]) -> None:
    here = [
        [
            time_occurrence(task, due),
            file_change_occurrence(task, None, content_hash(content.encode())),
            jitter_for(time_occurrence(task, due), timedelta(microseconds=jitter))
            // timedelta(microseconds=1),
        ]
        for task, due, content, jitter in batch
    ]
    payload = json.dumps([[t, d.isoformat(), c, j] for t, d, c, j in batch])
    child = subprocess.run(
        [sys.executable, "-c", _CHILD],
        input=payload,
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "random", "PATH": ""},
    )
    assert json.loads(child.stdout) == here
