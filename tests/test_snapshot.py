"""The snapshot codec: a State as a versioned, self-describing JSON document.

The exact round trip for every reachable state is a property test
(property_tests/test_snapshots.py); these are the document's shape and its
refusals.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from chronolog._events import (
    Completed,
    Event,
    Failed,
    Scheduled,
    Skipped,
    SkipReason,
    Started,
    TaskDefined,
    TaskRemoved,
)
from chronolog._policies import Policy, Retry
from chronolog._projection import State, replay
from chronolog._snapshot import (
    SNAPSHOT_FORMAT,
    SNAPSHOT_VERSION,
    SnapshotInvalid,
    decode_state,
    encode_state,
    snapshot_info,
)
from chronolog._triggers import Every, Manual

T0 = datetime(2026, 3, 1, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def numbered(events: list[Event]) -> list[Event]:
    return [msgspec.structs.replace(event, seq=n) for n, event in enumerate(events, start=1)]


def occurrence(task: str, n: int) -> str:
    return f"{task}@{(T0 + n * MINUTE).isoformat()}"


def a_log() -> list[Event]:
    """Runs that settle, a retry in flight, a run going on, a removed task."""
    every = Every(MINUTE, anchor=T0)
    events: list[Event] = [
        TaskDefined(task="sync", at=T0, trigger=every, target="jobs:sync"),
        TaskDefined(
            task="mail",
            at=T0,
            trigger=every,
            target="jobs:mail",
            policy=Policy(retry=Retry(max_attempts=3)),
        ),
        TaskDefined(task="gone", at=T0, trigger=Manual(), target="jobs:gone"),
    ]
    for n in range(1, 4):
        due = T0 + n * MINUTE
        name = occurrence("sync", n)
        events += [
            Scheduled(task="sync", at=due, occurrence=name, due=due),
            Started(task="sync", at=due, occurrence=name, attempt=1),
            Completed(task="sync", at=due, occurrence=name, attempt=1, result={"n": n}),
        ]
    due = T0 + MINUTE
    retry = occurrence("mail", 1)
    events += [
        Scheduled(task="mail", at=due, occurrence=retry, due=due),
        Started(task="mail", at=due, occurrence=retry, attempt=1),
        Failed(task="mail", at=due, occurrence=retry, attempt=1, error="x", retry_at=due + MINUTE),
        Scheduled(task="sync", at=due, occurrence=occurrence("sync", 9), due=T0 + 9 * MINUTE),
        Started(task="sync", at=due, occurrence=occurrence("sync", 9), attempt=1),
        Skipped(
            task="gone",
            at=due,
            occurrence="gone!1",
            reason=SkipReason.MISSED,
            due=due,
        ),
        TaskRemoved(task="gone", at=due),
    ]
    return numbered(events)


def test_the_document_says_what_it_is() -> None:
    state = replay(a_log())
    document = json.loads(encode_state(state))
    assert document["format"] == SNAPSHOT_FORMAT == "chronolog-snapshot"
    assert document["version"] == SNAPSHOT_VERSION == 1
    assert document["seq"] == state.seq
    assert document["history_limit"] == 100
    assert [task["definition"]["task"] for task in document["tasks"]] == ["sync", "mail"]
    assert [retired["task"] for retired in document["retired"]] == ["gone"]
    # Records inside keep the log's own encoding, tag and seq included.
    running = document["tasks"][0]["open"][0]
    assert running["entry"]["first_start"]["type"] == "Started"
    assert "last" not in running["entry"]  # the same record as first_start
    retrying = document["tasks"][1]["open"][0]["entry"]
    assert retrying["last"]["type"] == "Failed"


def test_the_round_trip_is_exact() -> None:
    state = replay(a_log())
    again = decode_state(encode_state(state))
    assert again == state
    assert again.tasks() == state.tasks()
    assert again.history("sync") == state.history("sync")
    assert again.may_start("mail", occurrence("mail", 1), 2)
    assert not again.may_start("mail", occurrence("mail", 1), 1)


def test_snapshot_info_reads_the_envelope_only() -> None:
    info = snapshot_info(encode_state(replay(a_log())))
    assert (info.format, info.version, info.seq, info.history_limit) == (
        SNAPSHOT_FORMAT,
        1,
        len(a_log()),
        100,
    )


def test_a_smaller_history_limit_keeps_the_newest_runs() -> None:
    log = a_log()
    state = decode_state(encode_state(replay(log)), history_limit=2)
    assert state == replay(log, history_limit=2)
    assert [run.occurrence for run in state.history("sync")][1:] == [
        occurrence("sync", 3),
        occurrence("sync", 2),
    ]


def test_a_larger_history_limit_is_refused_unless_a_shorter_window_will_do() -> None:
    document = encode_state(replay(a_log(), history_limit=2))
    with pytest.raises(SnapshotInvalid, match="keeps 2 runs per task, fewer than the 100"):
        decode_state(document, history_limit=100)
    base = decode_state(document, history_limit=100, whole_history=False)
    assert len(base.history("sync")) == 3  # the running one and the two kept


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda d: d[: len(d) // 2], "not a snapshot document"),
        (lambda d: b"[]", "not a snapshot document"),
        (lambda d: d.replace(b'"chronolog-snapshot"', b'"chronolog"'), "format 'chronolog'"),
        (
            lambda d: d.replace(b'"version":1', b'"version":2'),
            "version 2; this chronolog reads version 1 -- upgrade chronolog",
        ),
        (lambda d: d.replace(b'"run_count"', b'"runs_count"'), "damaged snapshot document"),
        (lambda d: d.replace(b'"history_limit":100', b'"history_limit":0'), "history limit 0"),
    ],
)
def test_what_is_not_a_snapshot_is_refused(mangle, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SnapshotInvalid, match=message):
        decode_state(mangle(encode_state(replay(a_log()))))


def test_a_task_twice_is_damage() -> None:
    document = json.loads(encode_state(replay(a_log())))
    document["tasks"].append(document["tasks"][0])
    with pytest.raises(SnapshotInvalid, match="task 'sync' twice"):
        decode_state(json.dumps(document).encode())


def test_the_empty_state() -> None:
    assert decode_state(encode_state(State(history_limit=7))) == State()
    assert snapshot_info(encode_state(State(history_limit=7))).history_limit == 7


def test_definitions_survive_whole() -> None:
    state = decode_state(encode_state(replay(a_log())))
    definition = state.definition("mail")
    assert definition == a_log()[1]
    assert definition.policy.retry == Retry(max_attempts=3)
    assert definition.trigger == Every(MINUTE, anchor=T0)
