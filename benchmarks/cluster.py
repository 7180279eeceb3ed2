"""Several scheduler processes on one PostgreSQL log: throughput, conflicts, failover. Prints JSON.

Starts a throw-away PostgreSQL cluster (``tests/postgres_server.py``, with
``fsync`` on, so commits are durable as SQLite's are), or uses the server
named by ``--dsn`` (a user that may create databases). Cases:

* ``throughput``: ``--tasks`` one-off no-op tasks all due at one instant,
  on 1, 2 and 3 node processes (``_cluster_node.py``) sharing a fresh
  database, and on one node with a SQLiteLog for comparison. Durable runs/s
  is the runs over the time from the due instant to the last outcome
  recorded (the ``at`` of the last ``Completed``); ``runs_by_node`` shows how
  the runs spread; ``claims_lost_per_run`` counts claims a node made and
  lost to another (refused in the writer's turn or by the database).
  Targets: 3 nodes at least 1.5x one node; one node on PostgreSQL at least
  0.5x one node on SQLite.
* ``append_latency``: single-event appends to a ``PostgresLog``, one
  writer, then three at once: p50/p99 in milliseconds.
* ``failover``: two nodes with a lease of ``--lease`` seconds; a run that
  lasts a minute is claimed by one, which is killed (SIGKILL). The time from
  the kill to the ``Failed(node lost)`` and to the retry's ``Started`` on
  the survivor; the target is under two lease periods.

The machine may be shared (2 cores here: three nodes and the server share
them), so compare the figures of one run with each other.

Usage: python benchmarks/cluster.py [--tasks N] [--lease S] [--dsn URL] [--case NAME]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import trio

from chronolog import At, Completed, Failed, Scheduled, SQLiteLog, Started, State
from chronolog._command_rules import define_events
from chronolog._policies import Policy
from chronolog.log.postgres import PostgresLog

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from chronolog import Event

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from tests.postgres_server import Cluster, start_cluster  # noqa: E402

NODE = HERE / "_cluster_node.py"
#: Time for the nodes to start, and find their tasks declared, before the burst.
LEAD_SECONDS = 8.0


class Databases:
    """Fresh databases on the benchmark's server."""

    def __init__(self, dsn: str | None) -> None:
        self._dsn = dsn
        self._cluster: Cluster | None = None if dsn else start_cluster(fsync=True)
        self._count = 0

    def create(self) -> str:
        self._count += 1
        if self._cluster is not None:
            return self._cluster.create_database(f"bench_{os.getpid()}_{self._count}")
        assert self._dsn is not None
        import psycopg

        name = f"chronolog_bench_{os.getpid()}_{self._count}"
        with psycopg.connect(self._dsn, autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"'.encode())
        return urlunsplit(urlsplit(self._dsn)._replace(path=f"/{name}"))

    def close(self) -> None:
        if self._cluster is not None:
            self._cluster.stop("immediate", remove=True)


def start_node(log: str, name: str, *, due: datetime, extra: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(NODE), log, "--node", name, "--due", due.isoformat(), *extra],
        stdout=subprocess.PIPE,
        text=True,
    )


def read_log(log: str) -> list[Event]:
    if log.startswith("postgresql://"):
        return list(PostgresLog(log).read())
    return list(SQLiteLog(Path(log)).read())


async def declare(log: str, tasks: int, due: datetime) -> None:
    """Write the tasks' definitions in one batch, as the nodes will declare them (so
    their ``add`` finds them unchanged): the burst measures running, not declaring."""
    state = State()
    events: list[Event] = []
    now = datetime.now(UTC)
    for n in range(tasks):
        events += define_events(state, f"run-{n}", At(due), "__main__:noop", Policy(), now)
    target = PostgresLog(log) if log.startswith("postgresql://") else SQLiteLog(Path(log))
    async with target:
        await target.append(events)


def burst(log: str, nodes: int, tasks: int) -> dict[str, Any]:
    due = datetime.now(UTC) + timedelta(seconds=LEAD_SECONDS)
    trio.run(declare, log, tasks, due)
    processes = [
        start_node(log, f"node-{index}", due=due, extra=["--tasks", str(tasks)])
        for index in range(nodes)
    ]
    reports = []
    for process in processes:
        out, _ = process.communicate(timeout=300)
        reports += [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        if process.returncode != 0:
            raise RuntimeError(f"a node failed (exit {process.returncode}): {out}")
    if datetime.now(UTC) < due:
        raise RuntimeError("the nodes finished before the due time")
    records = read_log(log)
    completed = [r for r in records if isinstance(r, Completed)]
    started = [r for r in records if isinstance(r, Started)]
    if len(completed) != tasks or len({r.occurrence for r in started}) != tasks:
        raise RuntimeError(f"{len(completed)} runs completed of {tasks}")
    span = (max(r.at for r in completed) - due).total_seconds()
    lost = sum(report.get("claims_lost", 0) for report in reports)
    by_node: dict[str, int] = {}
    for record in started:
        by_node[record.node] = by_node.get(record.node, 0) + 1
    ready = [report for report in reports if "ready" in report]
    return {
        "nodes": nodes,
        "runs": tasks,
        "durable_runs_per_s": round(tasks / span),
        "seconds": round(span, 3),
        "runs_by_node": dict(sorted(by_node.items())),
        "claims_lost_per_run": round(lost / tasks, 3),
        "nodes_ready": len(ready),
    }


def case_throughput(options: argparse.Namespace, databases: Databases) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as directory:
        results["sqlite_1_node"] = burst(str(Path(directory) / "jobs.sqlite"), 1, options.tasks)
    for nodes in (1, 2, 3):
        results[f"postgres_{nodes}_nodes"] = burst(databases.create(), nodes, options.tasks)
    one = results["postgres_1_nodes"]["durable_runs_per_s"]
    results["ratio_3_nodes_to_1"] = round(
        results["postgres_3_nodes"]["durable_runs_per_s"] / one, 2
    )
    results["ratio_postgres_to_sqlite_1_node"] = round(
        one / results["sqlite_1_node"]["durable_runs_per_s"], 2
    )
    return results


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "appends": len(ordered),
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 2),
    }


def case_append_latency(options: argparse.Namespace, databases: Databases) -> dict[str, Any]:
    count = options.appends

    async def writer(dsn: str, prefix: str, samples: list[float]) -> None:
        now = datetime.now(UTC)
        async with PostgresLog(dsn) as log:
            for n in range(count):
                event = Scheduled(task=prefix, at=now, occurrence=f"{prefix}@{n}", due=now)
                began = time.perf_counter()
                await log.append([event])
                samples.append(time.perf_counter() - began)

    async def run(writers: int) -> dict[str, float]:
        dsn = databases.create()
        samples: list[float] = []
        async with trio.open_nursery() as nursery:
            for index in range(writers):
                nursery.start_soon(writer, dsn, f"w{index}", samples)
        return _percentiles(samples)

    return {"1_writer": trio.run(run, 1), "3_writers": trio.run(run, 3)}


def case_failover(options: argparse.Namespace, databases: Databases) -> dict[str, Any]:
    dsn = databases.create()
    lease = options.lease
    due = datetime.now(UTC) + timedelta(seconds=LEAD_SECONDS)
    extra = ["--failover", "--lease", str(lease)]
    processes = {
        f"node-{index}": start_node(dsn, f"node-{index}", due=due, extra=extra)
        for index in range(2)
    }
    try:
        claim = _wait_for(dsn, lambda r: isinstance(r, Started) and r.attempt == 1, 60)
        assert isinstance(claim, Started)
        victim = processes[claim.node]
        time.sleep(0.5)
        victim.send_signal(signal.SIGKILL)
        killed = datetime.now(UTC)
        victim.wait()
        lost = _wait_for(dsn, lambda r: isinstance(r, Failed) and r.error == "node lost", 60)
        retry = _wait_for(dsn, lambda r: isinstance(r, Started) and r.attempt == 2, 60)
        assert isinstance(retry, Started)
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                process.wait()
    to_retry = (retry.at - killed).total_seconds()
    return {
        "lease_s": lease,
        "kill_to_node_lost_s": round((lost.at - killed).total_seconds(), 3),
        "kill_to_retry_start_s": round(to_retry, 3),
        "retry_on_other_node": retry.node != claim.node,
        "ratio_to_lease": round(to_retry / lease, 2),
    }


def _wait_for(dsn: str, found: Callable[[Event], bool], patience: float) -> Event:
    deadline = time.monotonic() + patience
    while time.monotonic() < deadline:
        for record in _records(dsn):
            if found(record):
                return record
        time.sleep(0.02)
    raise RuntimeError("gave up waiting for a record")


def _records(dsn: str) -> Iterator[Event]:
    return PostgresLog(dsn).read()


CASES = {
    "throughput": case_throughput,
    "append_latency": case_append_latency,
    "failover": case_failover,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--appends", type=int, default=500)
    parser.add_argument("--lease", type=float, default=2.0)
    parser.add_argument("--dsn", help="a server to use instead of a throw-away cluster")
    parser.add_argument("--case", choices=sorted(CASES), action="append")
    options = parser.parse_args()
    databases = Databases(options.dsn)
    try:
        results = {name: CASES[name](options, databases) for name in (options.case or list(CASES))}
    finally:
        databases.close()
    print(json.dumps({"benchmark": "cluster", "cpus": os.cpu_count(), **results}, indent=2))


if __name__ == "__main__":
    main()
