"""Occurrence ids: deterministic, kind-tagged, safe for odd task names."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from chronolog import ConfigError
from chronolog._ids import (
    OccurrenceKind,
    content_hash,
    file_change_occurrence,
    jitter_for,
    manual_occurrence,
    occurrence_kind,
    time_occurrence,
    validate_task_name,
)


def test_time_ids_name_the_due_instant_in_utc() -> None:
    new_york = timezone(timedelta(hours=-4))
    due = datetime(2026, 11, 1, 1, 30, tzinfo=new_york)
    assert time_occurrence("backup", due) == "backup@2026-11-01T05:30:00Z"
    assert time_occurrence("backup", due) == time_occurrence("backup", due.astimezone(UTC))
    with_micro = datetime(2026, 1, 1, 0, 0, 0, 250, tzinfo=UTC)
    assert time_occurrence("t", with_micro) == "t@2026-01-01T00:00:00.000250Z"


def test_time_ids_reject_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        time_occurrence("backup", datetime(2026, 1, 1))


def test_file_change_ids_chain_so_a_repeated_change_is_new() -> None:
    a, b = content_hash(b"A"), content_hash(b"B")
    first = file_change_occurrence("watch", None, b)
    back = file_change_occurrence("watch", first, a)
    again = file_change_occurrence("watch", back, b)
    assert len({first, back, again}) == 3
    assert first == file_change_occurrence("watch", None, b)
    assert first.startswith("watch#")


def test_manual_ids_are_unique_unless_the_token_is_given() -> None:
    assert manual_occurrence("t") != manual_occurrence("t")
    assert manual_occurrence("t", "abc") == "t!abc"


@pytest.mark.parametrize("task", ["plain", "a@b", "x#y!z", "Zürich ✓"])
def test_the_kind_is_read_after_the_task_name(task: str) -> None:
    due = datetime(2026, 1, 1, tzinfo=UTC)
    assert occurrence_kind(task, time_occurrence(task, due)) is OccurrenceKind.TIME
    assert occurrence_kind(task, manual_occurrence(task)) is OccurrenceKind.MANUAL
    change = file_change_occurrence(task, None, content_hash(b""))
    assert occurrence_kind(task, change) is OccurrenceKind.FILE_CHANGE


def test_an_id_of_another_task_is_refused() -> None:
    with pytest.raises(ValueError, match="does not belong to task"):
        occurrence_kind("backup", "report@2026-01-01T00:00:00Z")


def test_jitter_is_deterministic_and_within_bounds() -> None:
    jitter = timedelta(minutes=5)
    delays = [jitter_for(f"t@{n}", jitter) for n in range(500)]
    assert all(timedelta(0) <= d < jitter for d in delays)
    assert len(set(delays)) > 450  # spread, not constant
    assert delays == [jitter_for(f"t@{n}", jitter) for n in range(500)]
    assert jitter_for("t@1", timedelta(0)) == timedelta(0)


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("", "empty"),
        (" backup", "leading/trailing spaces"),
        ("a" * 201, "201 characters long; the limit is 200"),
        ("line\nbreak", "control characters"),
        (42, "must be a string, got int"),
    ],
)
def test_bad_task_names_are_refused_with_a_reason(name: object, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        validate_task_name(name)


def test_good_task_names_pass() -> None:
    assert validate_task_name("nightly export (eu) ✓") == "nightly export (eu) ✓"
