"""What Prometheus metrics cost a scheduler. Prints one JSON document.

A `SchedulerCollector` is fed ``--tasks`` tasks times ``--runs`` runs each
(Scheduled, Started, Completed records, as a scheduler appends them), then
scraped through `serve_metrics` over TCP, ``--scrapes`` times, while a Trio
task ticks every millisecond beside it:

* ``observe_us_per_record``: what following the log costs per record;
* ``collect_ms``: building the metric families (``collect()``);
* ``scrape_ms`` and ``scrape_bytes``: one scrape, rendered in a worker thread;
* ``longest_loop_stall_ms``: the longest the ticking task waited past its
  millisecond during the scrapes -- what a scrape costs the event loop that
  also runs the scheduler.

The best of the scrapes is reported for ``scrape_ms`` (a shared machine
only ever makes one slower), the worst for the stall.

Usage: python benchmarks/metrics.py [--tasks N] [--runs N] [--scrapes N]
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime, timedelta

import trio
from prometheus_client import CollectorRegistry

from chronolog import Completed, Scheduled, Started
from chronolog.metrics import SchedulerCollector, serve_metrics

START = datetime(2026, 1, 1, tzinfo=UTC)


def feed(collector: SchedulerCollector, tasks: int, runs: int) -> float:
    """Observe the records of ``tasks`` x ``runs`` runs; seconds per record."""
    seq = 0
    began = time.perf_counter()
    for task in range(tasks):
        name = f"task-{task}"
        for run in range(runs):
            due = START + timedelta(minutes=run)
            occurrence = f"{name}@{due:%Y-%m-%dT%H:%M:%SZ}"
            for record in (
                Scheduled(task=name, at=due, seq=seq + 1, occurrence=occurrence, due=due),
                Started(
                    task=name,
                    at=due + timedelta(milliseconds=3),
                    seq=seq + 2,
                    occurrence=occurrence,
                    attempt=1,
                ),
                Completed(
                    task=name,
                    at=due + timedelta(seconds=1),
                    seq=seq + 3,
                    occurrence=occurrence,
                    attempt=1,
                    duration=timedelta(seconds=1),
                ),
            ):
                collector.observe(record)
            seq += 3
    return (time.perf_counter() - began) / seq


async def scrape_while_ticking(registry: CollectorRegistry, scrapes: int) -> dict[str, float]:
    stall = 0.0
    best = float("inf")
    size = 0
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            lambda task_status: serve_metrics(
                "127.0.0.1", 0, registry=registry, task_status=task_status
            )
        )
        port = listeners[0].socket.getsockname()[1]
        measuring = False

        async def tick() -> None:
            nonlocal stall
            last = trio.current_time()
            while True:
                await trio.sleep(0.001)
                now = trio.current_time()
                if measuring:
                    stall = max(stall, now - last - 0.001)
                last = now

        nursery.start_soon(tick)
        await trio.sleep(0.1)
        measuring = True
        for _ in range(scrapes):
            began = time.perf_counter()
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            await stream.send_all(b"GET /metrics HTTP/1.1\r\n\r\n")
            received = 0
            while chunk := await stream.receive_some(65536):
                received += len(chunk)
            await stream.aclose()
            best = min(best, time.perf_counter() - began)
            size = received
        nursery.cancel_scope.cancel()
    return {"scrape_ms": best * 1000, "scrape_bytes": size, "longest_loop_stall_ms": stall * 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--scrapes", type=int, default=5)
    options = parser.parse_args()
    collector = SchedulerCollector()
    registry = CollectorRegistry()
    registry.register(collector)
    per_record = feed(collector, options.tasks, options.runs)
    began = time.perf_counter()
    collector.collect()
    collect = time.perf_counter() - began
    scraped = trio.run(scrape_while_ticking, registry, options.scrapes)
    print(
        json.dumps(
            {
                "tasks": options.tasks,
                "runs_per_task": options.runs,
                "observe_us_per_record": round(per_record * 1e6, 2),
                "collect_ms": round(collect * 1000, 1),
                **{key: round(value, 1) for key, value in scraped.items()},
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
