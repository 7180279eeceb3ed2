"""`chronolog.explain` on records written by the command rules, at exact instants.

Most verdicts are exercised through ``chronolog why`` (tests/test_cli_why.py);
these pin what the core says where a record carries the reason itself.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec

from chronolog import Cron, Event, Policy, Verdict, explain, occurrence_id, replay
from chronolog._command_rules import define_events, remove_events

T0 = datetime(2026, 3, 27, 12, 0, tzinfo=UTC)
NIGHTLY = Cron("30 2 * * *", tz="Europe/Berlin")
TONIGHT = datetime(2026, 3, 28, 1, 30, tzinfo=UTC)


def numbered(records: list[Event], events: list[Event]) -> None:
    for event in events:
        records.append(msgspec.structs.replace(event, seq=len(records) + 1))


def test_a_run_skipped_by_a_removal_says_when_and_why_the_task_was_removed() -> None:
    records: list[Event] = []
    numbered(records, define_events(replay(records), "backup", NIGHTLY, "app:b", Policy(), T0))
    removed_at = T0 + timedelta(hours=2)
    numbered(records, remove_events(replay(records), "backup", removed_at, "moved to cron"))
    answer = explain(records, occurrence_id("backup", TONIGHT))
    assert answer.verdict is Verdict.SKIPPED_REMOVED
    assert "removed at 2026-03-27 14:00:00Z (note: 'moved to cron')" in answer.reason


def test_a_removal_without_a_note_says_no_note() -> None:
    records: list[Event] = []
    numbered(records, define_events(replay(records), "backup", NIGHTLY, "app:b", Policy(), T0))
    numbered(records, remove_events(replay(records), "backup", T0))
    answer = explain(records, occurrence_id("backup", TONIGHT))
    assert answer.verdict is Verdict.SKIPPED_REMOVED
    assert "note" not in answer.reason
