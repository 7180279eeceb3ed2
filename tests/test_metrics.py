"""Prometheus metrics: the collector on a scheduler (simulated time), and the HTTP endpoint.

The collector is read the way Prometheus reads it: through a registry's
text exposition, parsed back with prometheus_client's own parser. The
endpoint is spoken to over a real TCP socket, on the real clock; a real
``chronolog run --metrics`` is scraped in ``test_cli_run_observers.py``.
"""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
import trio
import trio.testing
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry

from chronolog import ConfigError, Every, Manual, MemoryLog, Overlap, Retry, open_scheduler
from chronolog._metrics import parse_address
from chronolog.metrics import SchedulerCollector, serve_metrics
from chronolog.testing import SimulatedClock

if TYPE_CHECKING:
    from trio.testing import MockClock

START = datetime(2026, 3, 27, 12, 0, tzinfo=UTC)


def scrape(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the exposition: (name, sorted labels) -> value."""
    text = generate_latest(registry).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: dict[Any, float], name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


async def test_the_collector_counts_what_the_records_say(autojump_clock: MockClock) -> None:
    sim = SimulatedClock(START, mock_clock=autojump_clock)
    log = MemoryLog()
    registry = CollectorRegistry()
    collector = SchedulerCollector()
    registry.register(collector)
    attempts: list[int] = []

    def flaky() -> None:
        attempts.append(1)
        if len(attempts) % 2:
            raise ValueError("odd attempt")

    async def slow() -> str:
        await sim.sleep_until(sim.now() + timedelta(minutes=7))
        return "done"

    async with trio.open_nursery() as nursery:
        async with open_scheduler(log, clock=sim) as sched:
            await nursery.start(collector.watch, sched)
            await sched.add(
                "flaky",
                Every(timedelta(minutes=10)),
                flaky,
                retry=Retry(max_attempts=2, backoff=timedelta(seconds=30)),
            )
            await sched.add("slow", Every(timedelta(minutes=5)), slow, overlap=Overlap.SKIP)
            await sched.add("idle", Manual(), lambda: None)
            await sched.pause("idle", note="not now")
            await sim.sleep_until(START + timedelta(minutes=21))
            during = scrape(registry)
        await log.aclose()
    after = scrape(registry)
    # flaky: due 12:10 and 12:20; each failed once, then completed on the retry.
    assert value(during, "chronolog_runs_total", task="flaky", outcome="failed") == 2
    assert value(during, "chronolog_runs_total", task="flaky", outcome="completed") == 2
    assert value(during, "chronolog_last_success_timestamp_seconds", task="flaky") == (
        datetime(2026, 3, 27, 12, 20, 30, tzinfo=UTC).timestamp()
    )
    assert value(during, "chronolog_last_failure_timestamp_seconds", task="flaky") == (
        datetime(2026, 3, 27, 12, 20, tzinfo=UTC).timestamp()
    )
    # Lateness counts first attempts only, and they started on time.
    assert value(during, "chronolog_run_lateness_seconds_count", task="flaky") == 2
    assert value(during, "chronolog_run_lateness_seconds_sum", task="flaky") == 0
    assert value(during, "chronolog_run_duration_seconds_count", task="flaky") == 4
    # slow: runs of 7 minutes every 5: 12:05 ran, 12:10 skipped (overlap), 12:15 ran,
    # 12:20 skipped; the 12:15 run is still going at 12:21.
    assert value(during, "chronolog_skips_total", task="slow", reason="overlap") == 2
    assert value(during, "chronolog_runs_in_progress", task="slow") == 1
    assert value(during, "chronolog_run_duration_seconds_sum", task="slow") == 420
    assert value(during, "chronolog_run_duration_seconds_bucket", task="slow", le="300.0") == 0
    assert value(during, "chronolog_run_duration_seconds_bucket", task="slow", le="600.0") == 1
    assert value(during, "chronolog_task_paused", task="idle") == 1
    assert value(during, "chronolog_task_paused", task="slow") == 0
    assert value(during, "chronolog_tasks") == 3
    assert value(during, "chronolog_log_seq") == log.last_seq - _records_after(log, during)
    # The writer's side: writes, the records in them, and how long they took (none:
    # simulated time holds still while the log writes).
    batches = value(during, "chronolog_log_append_duration_seconds_count")
    assert batches is not None
    assert batches > 0
    assert value(during, "chronolog_log_append_duration_seconds_sum") == 0
    assert value(during, "chronolog_writer_batch_records_sum")
    assert value(during, "chronolog_writer_batch_records_max")
    # After the shutdown the running run ended (shutdown), and every record is counted.
    assert value(after, "chronolog_runs_in_progress", task="slow") == 0
    assert value(after, "chronolog_log_seq") == log.last_seq


def _records_after(log: MemoryLog, samples: dict[Any, float]) -> int:
    """How many records the log got after the scrape (its seq counts records)."""
    seq = value(samples, "chronolog_log_seq")
    assert seq is not None
    return log.last_seq - int(seq)


async def test_a_collector_started_later_knows_the_past_from_the_state(
    autojump_clock: MockClock,
) -> None:
    sim = SimulatedClock(START, mock_clock=autojump_clock)
    log = MemoryLog()
    async with open_scheduler(log, clock=sim) as sched:
        await sched.add("ok", Manual(), lambda: "fine")
        await sched.add("bad", Manual(), lambda: 1 / 0)
        await sched.run_now("ok")
        await sched.run_now("bad")
        await sim.sleep_until(START + timedelta(minutes=1))
    registry = CollectorRegistry()
    collector = SchedulerCollector()
    registry.register(collector)
    async with trio.open_nursery() as nursery:
        async with open_scheduler(log, clock=sim) as sched:
            await nursery.start(collector.watch, sched)
            samples = scrape(registry)
        nursery.cancel_scope.cancel()
    assert (
        value(samples, "chronolog_last_success_timestamp_seconds", task="ok") == START.timestamp()
    )
    assert value(samples, "chronolog_last_failure_timestamp_seconds", task="bad") == (
        START.timestamp()
    )
    assert value(samples, "chronolog_last_success_timestamp_seconds", task="bad") is None
    # Counters count from the start of the watch, as Prometheus counters do.
    assert value(samples, "chronolog_runs_total", task="ok", outcome="completed") is None
    assert value(samples, "chronolog_tasks") == 2


async def test_a_range_of_missed_due_times_counts_each_as_a_skip(
    autojump_clock: MockClock,
) -> None:
    """One record for a two-hour outage of a per-minute task; the counter still
    says 119 occurrences did not run."""
    sim = SimulatedClock(START, mock_clock=autojump_clock)
    log = MemoryLog()
    every = Every(timedelta(minutes=1), anchor=START)
    async with open_scheduler(log, clock=sim) as sched:
        await sched.add("minutely", every, lambda: None)
        await sim.sleep_until(START + timedelta(seconds=30))
    sim.jump(timedelta(hours=2))  # down until 14:00:30
    registry = CollectorRegistry()
    collector = SchedulerCollector()
    registry.register(collector)
    async with trio.open_nursery() as nursery:
        async with open_scheduler(log, clock=sim) as sched:
            await nursery.start(collector.watch, sched)
            await sched.add("minutely", every, lambda: None)
            await sim.sleep_until(START + timedelta(hours=2, seconds=40))
            samples = scrape(registry)
        nursery.cancel_scope.cancel()
    # 12:01 to 13:59 skipped as one range; 14:00, the latest, ran late.
    assert value(samples, "chronolog_skips_total", task="minutely", reason="missed") == 119
    assert value(samples, "chronolog_runs_total", task="minutely", outcome="completed") == 1


def test_names_and_labels_follow_the_conventions() -> None:
    registry = CollectorRegistry()
    registry.register(SchedulerCollector())
    names = {family.name: family for family in SchedulerCollector().describe()}
    assert set(names) == {
        "chronolog_runs",
        "chronolog_skips",
        "chronolog_runs_in_progress",
        "chronolog_run_lateness_seconds",
        "chronolog_run_duration_seconds",
        "chronolog_last_success_timestamp_seconds",
        "chronolog_last_failure_timestamp_seconds",
        "chronolog_tasks",
        "chronolog_task_paused",
        "chronolog_log_seq",
        "chronolog_log_append_duration_seconds",
        "chronolog_writer_batch_records",
        "chronolog_writer_batch_records_max",
        "chronolog_writer_queued_appends",
    }
    assert names["chronolog_runs"].type == "counter"  # exposed as chronolog_runs_total
    assert names["chronolog_run_lateness_seconds"].type == "histogram"
    # Registering twice is the registry's usual error, not a silent double count.
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        registry.register(SchedulerCollector())


def test_buckets_and_interval_are_checked() -> None:
    with pytest.raises(ConfigError, match="lateness_buckets must be increasing"):
        SchedulerCollector(lateness_buckets=(1.0, 0.5))
    with pytest.raises(ConfigError, match="duration_buckets must be increasing"):
        SchedulerCollector(duration_buckets=())
    with pytest.raises(ConfigError, match="statistics_interval must be positive"):
        SchedulerCollector(statistics_interval=timedelta(0))


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("127.0.0.1:9464", ("127.0.0.1", 9464)),
        ("[::1]:9464", ("::1", 9464)),
        ("localhost:0", ("localhost", 0)),
    ],
)
def test_an_address_is_host_and_port(text: str, address: tuple[str, int]) -> None:
    assert parse_address(text) == address


@pytest.mark.parametrize("text", ["9464", "127.0.0.1", ":9464", "host:http", "host:70000"])
def test_an_address_that_is_not_one_says_how_to_write_it(text: str) -> None:
    with pytest.raises(ConfigError, match=r"HOST:PORT|out of range"):
        parse_address(text)


# -- the endpoint, over TCP, on the real clock ---------------------------------------------


async def request(port: int, raw: bytes) -> bytes:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(raw)
        answer = b""
        while chunk := await stream.receive_some(65536):
            answer += chunk
    return answer


async def test_the_endpoint_serves_the_registry_and_nothing_else() -> None:
    registry = CollectorRegistry()
    registry.register(SchedulerCollector())
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(
                lambda task_status: serve_metrics(
                    "127.0.0.1", 0, registry=registry, task_status=task_status
                )
            )
            port = listeners[0].socket.getsockname()[1]
            ok = await request(port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            head, _, body = ok.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200 OK")
            assert b"Content-Type: text/plain; version=" in head
            assert b"# TYPE chronolog_runs_total counter" in body
            head_only = await request(port, b"HEAD /metrics HTTP/1.0\r\n\r\n")
            assert head_only.endswith(b"\r\n\r\n")
            assert b"200 OK" in head_only
            missing = await request(port, b"GET /other HTTP/1.1\r\n\r\n")
            assert missing.startswith(b"HTTP/1.1 404 Not Found")
            post = await request(port, b"POST /metrics HTTP/1.1\r\n\r\n")
            assert post.startswith(b"HTTP/1.1 405 Method Not Allowed")
            assert b"Allow: GET, HEAD" in post
            garbage = await request(port, b"\x00\xff nonsense\r\n\r\n")
            assert garbage.startswith(b"HTTP/1.1 400 Bad Request")
            # A request that never ends its head is cut off; the endpoint goes on.
            try:
                huge = await request(port, b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 1_000_000)
            except trio.BrokenResourceError:
                huge = b"HTTP/1.1 400 (the connection was closed while the test still sent)"
            assert huge.startswith(b"HTTP/1.1 400")
            again = await request(port, b"GET /metrics HTTP/1.1\r\n\r\n")
            assert again.startswith(b"HTTP/1.1 200 OK")
            nursery.cancel_scope.cancel()


async def test_idle_connections_cannot_pile_up(monkeypatch: pytest.MonkeyPatch) -> None:
    import chronolog._metrics

    monkeypatch.setattr(chronolog._metrics, "MAX_CONNECTIONS", 3)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(
                lambda task_status: serve_metrics(
                    "127.0.0.1", 0, registry=CollectorRegistry(), task_status=task_status
                )
            )
            port = listeners[0].socket.getsockname()[1]
            idle = [await trio.open_tcp_stream("127.0.0.1", port) for _ in range(3)]
            try:
                await trio.testing.wait_all_tasks_blocked()
                busy = await request(port, b"GET /metrics HTTP/1.1\r\n\r\n")
                assert busy.startswith(b"HTTP/1.1 503 Service Unavailable")
            finally:
                for stream in idle:
                    await stream.aclose()
            await trio.testing.wait_all_tasks_blocked()
            ok = await request(port, b"GET /metrics HTTP/1.1\r\n\r\n")
            assert ok.startswith(b"HTTP/1.1 200 OK")
            nursery.cancel_scope.cancel()


async def test_a_port_that_is_taken_is_an_error_that_says_so() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(
            ConfigError, match=f"cannot serve metrics on 127.0.0.1:{port}: the port is in use"
        ):
            await serve_metrics("127.0.0.1", port, registry=CollectorRegistry())
