"""PostgresLog: the shared contract, plus the database layout, order, claims and outcomes."""

# The tests prepare and inspect databases with plain blocking calls: blocking
# the test's own event loop for a moment is harmless, and it keeps them readable.

from __future__ import annotations

import itertools
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import msgspec
import psycopg
import pytest
import trio

from chronolog._errors import ClaimConflict, LogCorrupted
from chronolog._events import Completed, Failed, Scheduled, Skipped, SkipReason, Started
from chronolog.log import _postgres_turn
from chronolog.log._postgres_turn import Turn
from chronolog.log.postgres import PostgresLog

from .log_contract import T0, MakeLog, PersistentEventLogContract

if TYPE_CHECKING:
    from collections.abc import Callable

    from chronolog._events import Event

    from .postgres_server import Cluster


class TestPostgresLog(PersistentEventLogContract):
    @pytest.fixture
    def make_log(self, postgres_dsn: str) -> MakeLog:
        return lambda: PostgresLog(postgres_dsn, poll_interval=timedelta(milliseconds=50))


@pytest.fixture
def store_format_version(postgres_dsn: str) -> Callable[[int], None]:
    """For the contract's version checks: write another version into chronolog_meta."""

    def store(version: int) -> None:
        with psycopg.connect(postgres_dsn, autocommit=True) as connection:
            connection.execute(
                "UPDATE chronolog_meta SET value = %s WHERE key = 'version'", (str(version),)
            )

    return store


# -- one global order ----------------------------------------------------------


def _runs(prefix: str, count: int) -> list[Event]:
    """``count`` scheduled-and-started runs of task ``prefix``: claims nobody else makes."""
    events: list[Event] = []
    for n in range(count):
        occurrence = f"{prefix}@{n}"
        events.append(Scheduled(task=prefix, at=T0, occurrence=occurrence, due=T0))
        events.append(Started(task=prefix, at=T0, occurrence=occurrence, attempt=1, node=prefix))
    return events


async def _hammer(dsn: str, *, writers: int = 4, batches: int = 12) -> list[str]:
    """Several writers (each its own `PostgresLog`, its own connections) append at
    once while a follower reads ``seq > last`` again and again: what went wrong.

    Each append holds its transaction open a few milliseconds before it
    commits, so appends overlap whenever nothing serialises them.
    """
    problems: list[str] = []
    acknowledged: list[Event] = []
    seen: list[int] = []
    done = trio.Event()

    def slow_commit(point: str, connection: object) -> None:
        if point == "before-commit":
            time.sleep(0.003)

    async def writer(index: int) -> None:
        async with PostgresLog(dsn, poll_interval=timedelta(milliseconds=20)) as log:
            log.fault = slow_commit
            runs = _runs(f"w{index}", batches)
            for start in range(0, len(runs), 2):
                try:
                    acknowledged.extend(await log.append(runs[start : start + 2]))
                except (LogCorrupted, ClaimConflict, OSError) as exc:
                    problems.append(f"writer {index}: {type(exc).__name__}: {exc}")

    async def follower() -> None:
        log = PostgresLog(dsn)
        last = 0
        while True:
            finished = done.is_set()
            page = await log.read_after(last)
            for record in page:
                if record.seq != last + 1:
                    problems.append(f"the follower read seq {record.seq} after seq {last}")
                last = record.seq
                seen.append(record.seq)
            if finished and not page:
                return
            await trio.sleep(0.001)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(follower)
        async with trio.open_nursery() as writing:
            for index in range(writers):
                writing.start_soon(writer, index)
        done.set()
    stored = list(PostgresLog(dsn).read())
    if [record.seq for record in stored] != list(range(1, len(stored) + 1)):
        problems.append("the stored seqs are not contiguous")
    if sorted(acknowledged, key=lambda record: record.seq) != stored:
        problems.append("the stored records are not the acknowledged ones")
    if seen != [record.seq for record in stored]:
        problems.append("the follower did not read every stored record once, in order")
    return problems


async def test_appends_from_many_writers_are_contiguous_and_in_commit_order(
    postgres_dsn: str,
) -> None:
    assert await _hammer(postgres_dsn) == []


async def test_without_the_append_lock_the_same_writers_break_the_order(
    postgres_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The test above would catch a log that does not serialise its appends: here
    every turn takes an advisory lock of its own, so none waits for another."""
    keys = itertools.count(1)
    begin_on = Turn._begin_on

    def unserialised(turn: Turn, connection: object, after_seq: int | None) -> None:
        monkeypatch.setattr(_postgres_turn, "APPEND_LOCK", (7, next(keys)))
        begin_on(turn, connection, after_seq)  # type: ignore[arg-type]

    monkeypatch.setattr(Turn, "_begin_on", unserialised)
    problems = await _hammer(postgres_dsn)
    assert problems, "unserialised appends went unnoticed"
    assert any("is already taken" in problem for problem in problems)


# -- claims and settlements --------------------------------------------------------


async def test_the_database_refuses_a_second_claim_or_settlement_from_any_writer(
    postgres_dsn: str,
) -> None:
    scheduled = Scheduled(task="job", at=T0, occurrence="job@1", due=T0)
    started = Started(task="job", at=T0, occurrence="job@1", attempt=1, node="a")
    completed = Completed(task="job", at=T0, occurrence="job@1", attempt=1, duration=timedelta(0))
    async with PostgresLog(postgres_dsn) as first, PostgresLog(postgres_dsn) as second:
        kept = await first.append([scheduled, started])
        # A duplicate Scheduled is harmless: two nodes planned the same occurrence.
        kept += await second.append([scheduled])
        with pytest.raises(ClaimConflict, match="already claimed"):
            await second.append([msgspec.structs.replace(started, node="b")])
        kept += await second.append([completed])
        failed = Failed(
            task="job", at=T0, occurrence="job@1", attempt=1, duration=timedelta(0), error="x"
        )
        with pytest.raises(ClaimConflict, match="chronolog_settlements"):
            await first.append([failed])
        skipped = Skipped(task="job", at=T0, occurrence="job@1", reason=SkipReason.MISSED)
        with pytest.raises(ClaimConflict, match="chronolog_final"):
            await first.append([skipped])
    assert list(PostgresLog(postgres_dsn).read()) == kept


# -- connections that break -----------------------------------------------------------


def _terminate(connection: psycopg.Connection[Any], dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (connection.info.backend_pid,))


async def test_a_connection_terminated_before_commit_keeps_nothing_and_the_log_goes_on(
    postgres_dsn: str,
) -> None:
    calls = itertools.count()

    def cut(point: str, connection: psycopg.Connection[Any]) -> None:
        if point == "before-commit" and next(calls) == 0:
            _terminate(connection, postgres_dsn)

    async with PostgresLog(postgres_dsn) as log:
        kept = await log.append(_runs("a", 1))
        log.fault = cut
        with pytest.raises(OSError, match="nothing of this batch was kept"):
            await log.append(_runs("b", 1))
        kept += await log.append(_runs("c", 1))
    assert list(PostgresLog(postgres_dsn).read()) == kept
    assert [record.seq for record in kept] == [1, 2, 3, 4]


async def test_a_commit_whose_answer_is_lost_is_read_back(
    postgres_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The server committed, but the connection broke before it said so: the
    append reads its batch back and returns it, neither doubled nor lost."""

    def lose_answer(point: str, connection: psycopg.Connection[Any]) -> None:
        if point == "after-commit":
            _terminate(connection, postgres_dsn)
            raise psycopg.OperationalError("server closed the connection unexpectedly (test)")

    async with PostgresLog(postgres_dsn) as log:
        log.fault = lose_answer
        stored = await log.append(_runs("a", 1))
        log.fault = None
        stored += await log.append(_runs("b", 1))
    assert list(PostgresLog(postgres_dsn).read()) == stored
    assert "reading back showed that the batch landed" in caplog.text


async def test_appends_go_on_after_the_server_restarts(
    postgres_cluster: Cluster, postgres_dsn: str
) -> None:
    async with PostgresLog(postgres_dsn) as log:
        kept = await log.append(_runs("a", 1))
        await trio.to_thread.run_sync(postgres_cluster.restart)
        kept += await log.append(_runs("b", 1))
        assert await log.read_after(0) == kept
