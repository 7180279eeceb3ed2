"""The one occurrence view (`chronolog._occurrences`) says what the projection says.

The command line and the testing harness read occurrences from records; the
scheduler reads them from its `State`. On every valid log both must tell the
same story about every run the projection still holds.
"""

from __future__ import annotations

from hypothesis import given

from chronolog._events import Event, Started
from chronolog._occurrences import OccurrenceTracker, group_by_occurrence
from chronolog._projection import replay
from chronolog._views import Outcome

from .log_model import valid_logs


@given(valid_logs())
def test_every_run_the_projection_holds_reads_the_same_from_the_records(
    log: list[Event],
) -> None:
    state = replay(log)
    groups = group_by_occurrence(log)
    compared = 0
    for name in state.task_names():
        for run in state.history(name):
            assert groups[run.occurrence].run() == run
            compared += 1
    assert compared == sum(len(state.history(name)) for name in state.task_names())


@given(valid_logs())
def test_attempts_and_standing_agree_with_the_run(log: list[Event]) -> None:
    for group in group_by_occurrence(log).values():
        view, run = group.view(), group.run()
        assert view.outcome is run.outcome
        assert view.seqs[-1] == run.seq
        assert view.finished == run.finished
        starts = [r for r in group.records if isinstance(r, Started)]
        assert [a.number for a in view.attempts] == [s.attempt for s in starts]
        if view.attempts:
            assert view.started == run.started
            assert view.attempts[-1].number == run.attempts
        if run.due is not None:
            assert view.due == run.due


@given(valid_logs())
def test_the_tracker_hands_back_each_occurrence_once_when_it_settles(
    log: list[Event],
) -> None:
    tracker = OccurrenceTracker()
    handed: list[str] = []
    for record in log:
        settled = tracker.feed(record)
        if settled is not None:
            assert settled.settled
            assert settled.view().outcome in (Outcome.COMPLETED, Outcome.FAILED, Outcome.SKIPPED)
            handed.append(settled.occurrence)
    assert len(handed) == len(set(handed))
    still_open = {group.occurrence for group in tracker.still_open()}
    assert still_open.isdisjoint(handed)
    groups = group_by_occurrence(log)
    assert set(handed) | still_open == set(groups)
