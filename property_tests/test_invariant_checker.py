"""The invariant checker finds every violation injected into a valid log."""

from __future__ import annotations

from datetime import timedelta

import msgspec
from hypothesis import assume, given
from hypothesis import strategies as st

from chronolog._events import Completed, Event, Failed, Scheduled, Started, TaskRemoved
from chronolog._invariants import Rule, check_invariants
from chronolog._projection import replay

from .log_model import valid_logs


def renumber(records: list[Event]) -> list[Event]:
    return [msgspec.structs.replace(r, seq=n) for n, r in enumerate(records, start=1)]


def rules_at(records: list[Event], seq: int) -> set[Rule]:
    return {v.rule for v in check_invariants(records) if v.seq == seq}


@given(valid_logs(), st.data())
def test_a_repeated_claim_is_found(log: list[Event], data: st.DataObject) -> None:
    starts = [r for r in log if isinstance(r, Started)]
    assume(starts)
    start = data.draw(st.sampled_from(starts))
    position = data.draw(st.integers(log.index(start) + 1, len(log)))
    broken = renumber([*log[:position], start, *log[position:]])
    seq = position + 1
    found = rules_at(broken, seq)
    assert found & {
        Rule.STARTED_TWICE,
        Rule.STARTED_AFTER_SETTLED,
        Rule.STARTED_WHILE_RUNNING,
        Rule.REMOVED_TASK,
        Rule.WRONG_ATTEMPT,
    }, (seq, check_invariants(broken))
    # The projection refuses the same claim: de-dup and checker agree.
    before = replay(broken[: seq - 1])
    assert start.task not in before or not before.may_start(
        start.task, start.occurrence, start.attempt
    )


@given(valid_logs(), st.data())
def test_a_lost_claim_is_found(log: list[Event], data: st.DataObject) -> None:
    finishes = [r for r in log if isinstance(r, Completed | Failed)]
    assume(finishes)
    finish = data.draw(st.sampled_from(finishes))
    start = next(
        r
        for r in reversed(log[: log.index(finish)])
        if isinstance(r, Started)
        and (r.occurrence, r.attempt) == (finish.occurrence, finish.attempt)
    )
    broken = renumber([r for r in log if r is not start])
    seq = broken.index(msgspec.structs.replace(finish, seq=log.index(finish))) + 1
    assert Rule.FINISHED_WITHOUT_START in rules_at(broken, seq)


@given(valid_logs(), st.data())
def test_a_start_without_schedule_is_found(log: list[Event], data: st.DataObject) -> None:
    scheduled = [r for r in log if isinstance(r, Scheduled)]
    assume(scheduled)
    schedule = data.draw(st.sampled_from(scheduled))
    broken = renumber([r for r in log if r is not schedule])
    found = {v.rule for v in check_invariants(broken)}
    starts = [r for r in log if isinstance(r, Started) and r.occurrence == schedule.occurrence]
    if starts:
        assert Rule.NOT_SCHEDULED in found or Rule.REMOVED_TASK in found


@given(valid_logs(), st.data())
def test_an_out_of_order_seq_is_found(log: list[Event], data: st.DataObject) -> None:
    assume(len(log) >= 2)
    index = data.draw(st.integers(1, len(log) - 1))
    earlier = data.draw(st.integers(0, log[index - 1].seq))
    broken = list(log)
    broken[index] = msgspec.structs.replace(log[index], seq=earlier)
    assert Rule.SEQ_ORDER in rules_at(broken, earlier)


@given(valid_logs())
def test_events_after_removal_are_found(log: list[Event]) -> None:
    removals = [r for r in log if isinstance(r, TaskRemoved)]
    assume(removals)
    removal = removals[-1]
    if any(r.task == removal.task and r.seq > removal.seq for r in log):
        return  # The task was defined again; a later event is legitimate.
    ghost = Scheduled(
        task=removal.task,
        at=removal.at + timedelta(seconds=1),
        occurrence=f"{removal.task}!ghost",
        due=removal.at,
    )
    broken = renumber([*log, ghost])
    assert rules_at(broken, len(broken)) == {Rule.REMOVED_TASK}


@given(valid_logs(), st.data())
def test_a_repeated_outcome_is_found(log: list[Event], data: st.DataObject) -> None:
    finishes = [r for r in log if isinstance(r, Completed | Failed)]
    assume(finishes)
    finish = data.draw(st.sampled_from(finishes))
    position = data.draw(st.integers(log.index(finish) + 1, len(log)))
    broken = renumber([*log[:position], finish, *log[position:]])
    assert rules_at(broken, position + 1) & {Rule.FINISHED_WITHOUT_START, Rule.REMOVED_TASK}
