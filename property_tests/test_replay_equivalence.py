"""replay(log) is the fold of every prefix, step by step, and agrees with the checker."""

from __future__ import annotations

from functools import reduce

from hypothesis import given

from chronolog._events import Event, Started
from chronolog._invariants import check_invariants
from chronolog._projection import State, apply, replay

from .log_model import valid_logs


@given(valid_logs())
def test_model_logs_keep_every_rule(log: list[Event]) -> None:
    assert check_invariants(log) == []


@given(valid_logs())
def test_replay_equals_fold_of_every_prefix(log: list[Event]) -> None:
    state = State()
    for n, record in enumerate(log, start=1):
        before = state.copy()
        state = apply(state, record)
        assert before == replay(log[: n - 1]), "apply() changed the state it was given"
        assert state == replay(log[:n])
    assert state == reduce(apply, log, State()) == replay(log)


@given(valid_logs())
def test_every_claim_in_a_valid_log_is_free_when_made(log: list[Event]) -> None:
    state = State()
    for record in log:
        if isinstance(record, Started):
            assert state.may_start(record.task, record.occurrence, record.attempt), record
        state.fold(record)
        if isinstance(record, Started):
            # The claim is taken: the same attempt may never start again.
            assert not state.may_start(record.task, record.occurrence, record.attempt)


@given(valid_logs())
def test_views_are_consistent_with_history(log: list[Event]) -> None:
    state = replay(log)
    for status in state.tasks():
        runs = state.history(status.name)
        running = {run.occurrence for run in runs if run.outcome == "running"}
        assert running == set(status.running)
        assert status.run_count >= len([r for r in runs if r.started is not None])
        assert state.open_occurrence_count() >= len(running)
