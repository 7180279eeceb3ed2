"""Several schedulers on one PostgreSQL log, in one process: claims, followers, leases.

Each scheduler here is a node as a separate process would be -- its own
`PostgresLog` object (its own connections), its own state, its own node
name -- only they share an event loop, which makes the tests quick to set
up and to watch. The tests with real ``chronolog run`` processes (kill -9, a
database restart) are in ``test_cluster_processes.py``.
"""

from __future__ import annotations

import collections
import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
import trio

from chronolog import (
    Completed,
    Every,
    Failed,
    Manual,
    Retry,
    Scheduled,
    Started,
    SystemClock,
    TaskDefined,
    TaskPaused,
    check_invariants,
    current_run,
    open_scheduler,
    replay,
)
from chronolog._command_rules import pause_events
from chronolog._errors import ConfigError
from chronolog._policies import Policy
from chronolog.log.postgres import PostgresLog

if TYPE_CHECKING:
    from collections.abc import Callable

    from chronolog import Event, Scheduler

    from .conftest import Server
    from .postgres_server import Cluster

LEASE = timedelta(seconds=1)


class OffsetClock(SystemClock):
    """The system clock, ``offset`` ahead (or behind): a machine whose clock is off."""

    def __init__(self, offset: timedelta) -> None:
        self.offset = offset

    def now(self) -> datetime:
        return super().now() + self.offset


def shared_log(dsn: str) -> PostgresLog:
    return PostgresLog(dsn, lease=LEASE, poll_interval=timedelta(milliseconds=200))


def records_of(dsn: str) -> list[Event]:
    return list(PostgresLog(dsn).read())


def starts(records: list[Event]) -> collections.Counter[tuple[str, int]]:
    return collections.Counter(
        (record.occurrence, record.attempt) for record in records if isinstance(record, Started)
    )


async def run_nodes(
    dsn: str,
    count: int,
    body: Callable[[int, Scheduler], Any],
    *,
    clocks: list[SystemClock] | None = None,
) -> list[Scheduler]:
    """Run ``count`` schedulers on ``dsn`` at once, each doing ``body(index, scheduler)``."""
    schedulers: list[Scheduler] = []

    async def node(index: int) -> None:
        clock = clocks[index] if clocks else None
        async with open_scheduler(
            shared_log(dsn),
            node=f"node-{index}",
            clock=clock,
            shutdown_grace=timedelta(seconds=2),
        ) as scheduler:
            schedulers.append(scheduler)
            await body(index, scheduler)

    async with trio.open_nursery() as nursery:
        for index in range(count):
            nursery.start_soon(node, index)
    return schedulers


async def test_every_occurrence_starts_once_across_nodes(postgres_dsn: str) -> None:
    ran: collections.Counter[str] = collections.Counter()

    async def body(index: int, scheduler: Scheduler) -> None:
        for n in range(15):

            def job(n: int = n) -> None:
                ran[f"node-{index}"] += 1

            await scheduler.add(f"task-{n}", Every(timedelta(seconds=1)), job)
        await trio.sleep(4)

    schedulers = await run_nodes(postgres_dsn, 3, body)
    records = records_of(postgres_dsn)
    claims = starts(records)
    assert claims, "nothing ran"
    assert max(claims.values()) == 1
    assert sum(ran.values()) == len(claims)
    # Three nodes declared the same fifteen tasks: one definition each.
    definitions = collections.Counter(r.task for r in records if isinstance(r, TaskDefined))
    assert set(definitions.values()) == {1}
    assert check_invariants(records) == []
    # Every node's state is the fold of the whole log, whoever wrote what.
    final = replay(records)
    for scheduler in schedulers:
        assert scheduler.state.seq <= final.seq


async def test_the_live_states_converge(postgres_dsn: str) -> None:
    async def body(index: int, scheduler: Scheduler) -> None:
        await scheduler.add("tick", Every(timedelta(seconds=1)), lambda: index)
        await trio.sleep(2.5)
        # Quiet for a moment: each node has followed the others to the end.
        await scheduler.pause("tick")
        await trio.sleep(1.5)
        assert scheduler.state == replay(records_of(postgres_dsn))

    await run_nodes(postgres_dsn, 2, body)


async def test_a_pause_from_one_node_or_from_outside_reaches_every_node(
    postgres_dsn: str,
) -> None:
    paused_at: dict[str, int] = {}

    async def body(index: int, scheduler: Scheduler) -> None:
        await scheduler.add("a", Every(timedelta(seconds=1)), lambda: None)
        await scheduler.add("b", Every(timedelta(seconds=1)), lambda: None)
        await trio.sleep(1.5)
        if index == 0:
            await scheduler.pause("a", note="from node 0")
        else:
            # A command that appends to the log directly, as `chronolog pause`
            # on a PostgreSQL log does: a writer of its own, deciding in its turn.
            async with shared_log(postgres_dsn) as log, log.appending(0) as turn:
                state = replay(turn.records)
                await turn.append(pause_events(state, "b", "from outside", SystemClock().now()))
        await trio.sleep(3)

    await run_nodes(postgres_dsn, 2, body)
    records = records_of(postgres_dsn)
    for record in records:
        if isinstance(record, TaskPaused):
            paused_at[record.task] = record.seq
    assert set(paused_at) == {"a", "b"}
    late = [
        record
        for record in records
        if isinstance(record, Started)
        and record.occurrence.startswith(tuple(f"{t}@" for t in paused_at))
        and record.seq > paused_at[record.task]
    ]
    assert late == []
    assert check_invariants(records) == []


async def test_a_manual_run_recorded_on_one_node_runs_once(postgres_dsn: str) -> None:
    runs: list[int] = []

    async def body(index: int, scheduler: Scheduler) -> None:
        await scheduler.add("report", Manual(), lambda: runs.append(index))
        await trio.sleep(1)
        if index == 1:
            await scheduler.run_now("report")
            await scheduler.run_now("report")
        await trio.sleep(2)

    await run_nodes(postgres_dsn, 3, body)
    records = records_of(postgres_dsn)
    assert len(runs) == 2
    assert len(starts(records)) == 2
    assert check_invariants(records) == []


async def test_two_nodes_two_seconds_apart_still_run_each_occurrence_once(
    postgres_dsn: str,
) -> None:
    async def body(index: int, scheduler: Scheduler) -> None:
        for n in range(10):
            await scheduler.add(f"task-{n}", Every(timedelta(seconds=1)), lambda: None)
        await trio.sleep(5)

    clocks = [OffsetClock(timedelta(seconds=1)), OffsetClock(timedelta(seconds=-1))]
    await run_nodes(postgres_dsn, 2, body, clocks=clocks)
    records = records_of(postgres_dsn)
    claims = starts(records)
    assert len(claims) >= 30
    assert max(claims.values()) == 1
    assert check_invariants(records) == []


async def _ghost_run(dsn: str, *, node: str, retry: Retry) -> str:
    """A run that a node which no longer exists (no lease) left running: its occurrence."""
    now = SystemClock().now()
    occurrence = f"job@{now.replace(microsecond=0).isoformat().replace('+00:00', 'Z')}"
    async with shared_log(dsn) as log:
        await log.append(
            [
                TaskDefined(
                    task="job",
                    at=now,
                    trigger=Manual(),
                    target="tests.test_cluster:ghost_job",
                    policy=Policy(retry=retry),
                ),
                Scheduled(task="job", at=now, occurrence=occurrence, due=now),
                Started(task="job", at=now, occurrence=occurrence, attempt=1, node=node),
            ]
        )
    return occurrence


ghost_runs: list[str] = []
ghost_ran = trio.Event()


async def ghost_job() -> None:
    await trio.lowlevel.checkpoint()
    ghost_runs.append("ran")
    ghost_ran.set()


async def test_a_lost_node_s_run_is_settled_once_and_retried(postgres_dsn: str) -> None:
    global ghost_ran
    ghost_runs.clear()
    ghost_ran = trio.Event()
    occurrence = await _ghost_run(
        postgres_dsn, node="ghost", retry=Retry(max_attempts=2, backoff=timedelta(seconds=1))
    )

    async def body(index: int, scheduler: Scheduler) -> None:
        with trio.move_on_after(10):
            await ghost_ran.wait()
        await trio.sleep(0.5)

    await run_nodes(postgres_dsn, 2, body)
    records = records_of(postgres_dsn)
    lost = [r for r in records if isinstance(r, Failed) and r.occurrence == occurrence]
    assert len(lost) == 1
    assert lost[0].error == "node lost"
    assert lost[0].retry_at is not None
    assert starts(records)[(occurrence, 2)] == 1
    assert ghost_runs == ["ran"]
    done = [r for r in records if isinstance(r, Completed) and r.occurrence == occurrence]
    assert [r.attempt for r in done] == [2]
    assert check_invariants(records) == []


async def test_a_run_of_this_node_that_no_actor_runs_is_settled(postgres_dsn: str) -> None:
    """A claim whose commit's outcome was unknown and that landed after all: nobody
    runs it, so the node settles it as lost (with no retry: max_attempts 1)."""
    occurrence = await _ghost_run(postgres_dsn, node="node-0", retry=Retry())

    async def body(index: int, scheduler: Scheduler) -> None:
        await trio.sleep(2)

    await run_nodes(postgres_dsn, 1, body)
    records = records_of(postgres_dsn)
    lost = [r for r in records if isinstance(r, Failed) and r.occurrence == occurrence]
    assert [(r.error, r.retry_at) for r in lost] == [("node lost", None)]


async def test_a_node_name_in_use_is_refused(postgres_dsn: str) -> None:
    async with open_scheduler(shared_log(postgres_dsn), node="web-1"):
        with pytest.raises(ConfigError, match="node name 'web-1' is in use"):
            async with open_scheduler(shared_log(postgres_dsn), node="web-1"):
                pass  # pragma: no cover


async def test_a_node_that_cannot_renew_its_lease_stops_its_runs(
    postgres_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fenced: its runs are cancelled (``node lost``) before its lease expires,
    so the survivor's retry never runs beside them."""
    started = trio.Event()
    ended = trio.Event()

    async def long_job() -> None:
        started.set()
        try:
            await trio.sleep(30)
        finally:
            ended.set()

    async def cut_off(self: PostgresLog, *args: object) -> bool:
        await trio.lowlevel.checkpoint()
        raise ConnectionResetError("the database cannot be reached (test)")

    async with open_scheduler(shared_log(postgres_dsn), node="node-0") as scheduler:
        await scheduler.add("long", Manual(), long_job)
        await scheduler.run_now("long")
        await started.wait()
        monkeypatch.setattr(PostgresLog, "renew_lease", cut_off)
        with trio.fail_after(3):
            await ended.wait()
        monkeypatch.undo()
    records = records_of(postgres_dsn)
    failed = [r for r in records if isinstance(r, Failed)]
    assert [r.error for r in failed] == ["node lost"]


async def _through_trouble(
    dsn: str, trouble: Callable[[], object], *, nodes: int = 2, tasks: int = 8
) -> tuple[list[Event], collections.Counter[str], float]:
    """``nodes`` nodes run ``tasks`` per-second tasks; ``trouble()`` strikes after 1.5 s.

    Returns the log, how often each occurrence ran, and when (trio time) the
    trouble was over.
    """
    ran: collections.Counter[str] = collections.Counter()
    over = 0.0

    async def body(index: int, scheduler: Scheduler) -> None:
        nonlocal over
        for n in range(tasks):

            def job(name: str = f"task-{n}") -> None:
                context = current_run()
                assert context is not None
                ran[context.occurrence] += 1

            await scheduler.add(f"task-{n}", Every(timedelta(seconds=1)), job)
        await trio.sleep(1.5)
        if index == 0:
            await trio.to_thread.run_sync(trouble)
            over = trio.current_time()
        await trio.sleep(4)

    await run_nodes(dsn, nodes, body)
    return records_of(dsn), ran, over


def _check_exactly_once(records: list[Event], ran: collections.Counter[str]) -> None:
    assert check_invariants(records) == []
    claims = starts(records)
    assert max(claims.values()) == 1
    assert max(ran.values()) == 1, "an occurrence ran twice"
    # Every run that ran was claimed in the log: no acknowledged claim was lost.
    assert set(ran) <= {occurrence for occurrence, _ in claims}


async def test_the_database_restarts_under_the_nodes(
    postgres_cluster: Cluster, postgres_dsn: str
) -> None:
    records, ran, _ = await _through_trouble(
        postgres_dsn, lambda: postgres_cluster.restart(down_seconds=0.5)
    )
    _check_exactly_once(records, ran)
    # The nodes went on after the restart: runs due well after it were claimed.
    last_due = max(r.at for r in records if isinstance(r, Started))
    first_due = min(r.at for r in records if isinstance(r, Started))
    assert (last_due - first_due).total_seconds() >= 4


async def test_connections_terminated_in_the_middle_of_appends(
    postgres_server: Server, postgres_dsn: str
) -> None:
    database = postgres_dsn.split("?")[0].rsplit("/", 1)[1]

    def terminate_again_and_again() -> None:
        for _ in range(5):
            postgres_server.terminate_backends(database)
            time.sleep(0.2)

    records, ran, _ = await _through_trouble(postgres_dsn, terminate_again_and_again)
    _check_exactly_once(records, ran)
    assert len(ran) >= 8 * 4
