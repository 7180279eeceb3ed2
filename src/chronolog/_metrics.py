"""Prometheus metrics of a running scheduler: a collector, and a Trio HTTP endpoint for it.

`SchedulerCollector` is an observer. Its `~SchedulerCollector.watch` task
follows the scheduler's records (`Scheduler.events`) and counts what they
say -- runs by outcome, skips by reason, lateness and durations -- and
samples `Scheduler.statistics` for the writer's side (appends, batch sizes,
append latency). ``collect()`` reads only the collector's own tallies, under
a lock, so any registry can scrape it from any thread (prometheus_client's
own HTTP server runs in a thread), and a scrape never touches the scheduler.

What is known when the watch starts -- tasks, their pause state, runs in
progress, the last success and failure of each task -- is taken from the
scheduler's state, so ``chronolog_last_success_timestamp_seconds`` survives
a restart; the counters and histograms count from the start of the watch,
as Prometheus counters do (``rate()`` and ``increase()`` handle the reset).

`serve_metrics` answers ``GET /metrics`` with a registry's exposition, in
Trio -- no thread, no event loop of another library.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import math
import threading
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

import attrs
import trio

from ._errors import ConfigError
from ._events import (
    Completed,
    Failed,
    Scheduled,
    Skipped,
    Started,
    TaskDefined,
    TaskPaused,
    TaskRemoved,
    TaskResumed,
)
from ._projection import Outcome

try:
    from prometheus_client.core import (
        CounterMetricFamily,
        GaugeMetricFamily,
        HistogramMetricFamily,
        Metric,
        SummaryMetricFamily,
    )
    from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
    from prometheus_client.registry import REGISTRY, CollectorRegistry
except ImportError as _error:  # pragma: no cover - exercised without the extra
    raise ImportError(
        "chronolog's Prometheus metrics need prometheus-client: pip install 'chronolog[metrics]'"
    ) from _error

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence

    from ._events import Event
    from ._projection import State
    from ._scheduler import Scheduler

__all__ = [
    "DEFAULT_DURATION_BUCKETS",
    "DEFAULT_LATENESS_BUCKETS",
    "SchedulerCollector",
    "parse_address",
    "serve_metrics",
]

logger = logging.getLogger("chronolog.metrics")

#: Upper bounds (seconds) of the lateness histogram: from a timely start to minutes late.
DEFAULT_LATENESS_BUCKETS: Final = (
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
)  # fmt: skip
#: Upper bounds (seconds) of the run duration histogram: from a blink to two hours.
DEFAULT_DURATION_BUCKETS: Final = (
    0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0,
)  # fmt: skip
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def _timestamp(when: datetime) -> float:
    return (when - _EPOCH) / timedelta(seconds=1)


class _Histogram:
    """Cumulative-ready bucket counts, a sum and a count (one label set)."""

    __slots__ = ("counts", "sum", "total")

    def __init__(self, size: int) -> None:
        self.counts = [0] * size  # the last one is +Inf
        self.sum = 0.0
        self.total = 0

    def observe(self, bounds: Sequence[float], value: float) -> None:
        index = next((i for i, bound in enumerate(bounds) if value <= bound), len(bounds))
        self.counts[index] += 1
        self.sum += value
        self.total += 1


def _cumulative(bounds: Sequence[float], counts: Sequence[int]) -> list[tuple[str, float]]:
    """Bucket counts as Prometheus wants them: cumulative, labelled by upper bound."""
    total = 0
    result: list[tuple[str, float]] = []
    for bound, count in zip([*bounds, math.inf], counts, strict=True):
        total += count
        result.append(("+Inf" if bound == math.inf else repr(float(bound)), total))
    return result


@attrs.frozen
class _Tallies:
    """A copy of a collector's tallies, taken under its lock, for one scrape."""

    runs: dict[tuple[str, str], int]
    skips: dict[tuple[str, str], int]
    running: dict[str, int]
    lateness: dict[str, tuple[list[int], float]]
    duration: dict[str, tuple[list[int], float]]
    last_success: dict[str, float]
    last_failure: dict[str, float]
    paused: dict[str, bool]
    log_seq: int
    writer: dict[str, float]


class SchedulerCollector:
    """Prometheus metrics of a `Scheduler`, for any ``prometheus_client`` registry.

    ::

        collector = SchedulerCollector()
        registry.register(collector)          # or prometheus_client.REGISTRY
        async with trio.open_nursery() as nursery:
            async with open_scheduler("jobs.jsonl") as sched:
                await nursery.start(collector.watch, sched)
                ...

    The metrics (``task`` is the task's name):

    * ``chronolog_runs_total{task,outcome}`` counter: attempts that ended,
      ``outcome`` ``completed`` or ``failed`` (an attempt that will be
      retried counts as ``failed`` too);
    * ``chronolog_skips_total{task,reason}`` counter: occurrences skipped --
      due times, not records: a range missed in one outage (one ``Skipped``
      with ``count``) adds its ``count``;
    * ``chronolog_runs_in_progress{task}`` gauge;
    * ``chronolog_run_lateness_seconds{task}`` histogram: how long after its
      due time a first attempt started (jitter counts; retries do not);
    * ``chronolog_run_duration_seconds{task}`` histogram: attempts that ended;
    * ``chronolog_last_success_timestamp_seconds{task}`` and
      ``chronolog_last_failure_timestamp_seconds{task}`` gauges (Unix time);
    * ``chronolog_tasks`` gauge and ``chronolog_task_paused{task}`` (1 or 0);
    * ``chronolog_log_seq`` gauge: the seq of the last record;
    * ``chronolog_log_append_duration_seconds`` summary: writes to the log
      (count) and the time they took (sum) -- their ratio is the mean latency;
    * ``chronolog_writer_batch_records`` summary: records per write (count:
      writes, sum: records); ``chronolog_writer_batch_records_max`` gauge;
    * ``chronolog_writer_queued_appends`` gauge: groups of events waiting.

    The writer's figures are sampled every ``statistics_interval`` (and when
    the watch starts and ends), since `Scheduler.statistics` reads every
    task's recent history; the others follow each record.
    """

    def __init__(
        self,
        *,
        lateness_buckets: Sequence[float] = DEFAULT_LATENESS_BUCKETS,
        duration_buckets: Sequence[float] = DEFAULT_DURATION_BUCKETS,
        statistics_interval: timedelta = timedelta(seconds=5),
    ) -> None:
        for name, bounds in (("lateness", lateness_buckets), ("duration", duration_buckets)):
            if not bounds or list(bounds) != sorted(set(bounds)) or bounds[0] < 0:
                raise ConfigError(
                    f"{name}_buckets must be increasing upper bounds in seconds, "
                    f"such as (0.1, 1, 10); got {tuple(bounds)!r}"
                )
        if statistics_interval <= timedelta(0):
            raise ConfigError(f"statistics_interval must be positive, got {statistics_interval}")
        self.lateness_buckets = tuple(float(bound) for bound in lateness_buckets)
        self.duration_buckets = tuple(float(bound) for bound in duration_buckets)
        self.statistics_interval = statistics_interval
        self._lock = threading.Lock()
        self._runs: defaultdict[tuple[str, str], int] = defaultdict(int)
        self._skips: defaultdict[tuple[str, str], int] = defaultdict(int)
        self._lateness: dict[str, _Histogram] = {}
        self._duration: dict[str, _Histogram] = {}
        self._running: dict[str, set[tuple[str, int]]] = {}
        self._paused: dict[str, bool] = {}
        self._last_success: dict[str, float] = {}
        self._last_failure: dict[str, float] = {}
        self._due: dict[str, datetime] = {}
        self._log_seq = 0
        self._writer: dict[str, float] = {}
        self._watching = False

    # -- following a scheduler ------------------------------------------------------

    async def watch(
        self,
        scheduler: Scheduler,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Follow ``scheduler`` until its log closes (or until cancelled).

        With ``nursery.start`` it returns once the collector knows the
        scheduler's state, so a scrape right after sees every task.
        """
        if self._watching:
            raise RuntimeError("this SchedulerCollector already watches a scheduler")
        self._watching = True
        try:
            # events() counts from the state's seq when called: no checkpoint
            # between it and the seeding, so no record is missed or counted twice.
            async with contextlib.aclosing(scheduler.events()) as records:
                self._seed(scheduler.state)
                self._sample(scheduler)
                task_status.started()
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._sample_every, scheduler)
                    async for record in records:
                        self.observe(record)
                    nursery.cancel_scope.cancel()
        finally:
            self._watching = False
            with contextlib.suppress(Exception):
                self._sample(scheduler)

    async def _sample_every(self, scheduler: Scheduler) -> None:
        while True:
            await trio.sleep(self.statistics_interval.total_seconds())
            self._sample(scheduler)

    def _sample(self, scheduler: Scheduler) -> None:
        statistics = scheduler.statistics()
        sampled = {
            "batches": float(statistics.batches),
            "records": float(statistics.records),
            "largest_batch": float(statistics.largest_batch),
            "append_seconds": statistics.append_time.total_seconds(),
            "queued": float(statistics.queued),
        }
        with self._lock:
            self._writer = sampled
            self._log_seq = max(self._log_seq, statistics.log_seq)

    def _seed(self, state: State) -> None:
        with self._lock:
            self._log_seq = max(self._log_seq, state.seq)
            for name in state.task_names():
                status = state.status(name)
                self._paused[name] = status.paused
                self._running[name] = set()
                for run in state.open_occurrences(name):
                    if run.outcome is Outcome.RUNNING:
                        self._running[name].add((run.occurrence, run.attempts))
                    elif run.due is not None and run.attempts == 0:
                        self._due[run.occurrence] = run.due
                for run in state.history(name):
                    if run.finished is None:
                        continue
                    if run.outcome is Outcome.COMPLETED and name not in self._last_success:
                        self._last_success[name] = _timestamp(run.finished)
                    elif run.outcome is Outcome.FAILED and name not in self._last_failure:
                        self._last_failure[name] = _timestamp(run.finished)

    def observe(self, record: Event) -> None:
        """Count one record (`watch` calls it for each record the log gets)."""
        with self._lock:
            self._log_seq = max(self._log_seq, record.seq)
            task = record.task
            kind = type(record)
            if kind is Scheduled:
                assert isinstance(record, Scheduled)
                self._due[record.occurrence] = record.due
            elif kind is Started:
                assert isinstance(record, Started)
                self._running.setdefault(task, set()).add((record.occurrence, record.attempt))
                due = self._due.pop(record.occurrence, None)
                if due is not None and record.attempt == 1:
                    lateness = max((record.at - due) / timedelta(seconds=1), 0.0)
                    self._histogram(self._lateness, task, self.lateness_buckets).observe(
                        self.lateness_buckets, lateness
                    )
            elif kind is Completed or kind is Failed:
                assert isinstance(record, Completed | Failed)
                self._running.setdefault(task, set()).discard((record.occurrence, record.attempt))
                outcome = "completed" if kind is Completed else "failed"
                self._runs[task, outcome] += 1
                self._histogram(self._duration, task, self.duration_buckets).observe(
                    self.duration_buckets, record.duration / timedelta(seconds=1)
                )
                stamps = self._last_success if kind is Completed else self._last_failure
                stamps[task] = _timestamp(record.at)
            elif kind is Skipped:
                assert isinstance(record, Skipped)
                # Due times, not records: a range missed in one outage counts
                # each (as TaskStatus.skip_count does), so the rate of skips
                # says how much did not run, however it was written.
                self._skips[task, str(record.reason)] += (
                    record.count if record.last_due is not None else 1
                )
                self._due.pop(record.occurrence, None)
            elif kind is TaskDefined:
                self._paused.setdefault(task, False)
                self._running.setdefault(task, set())
            elif kind is TaskPaused or kind is TaskResumed:
                self._paused[task] = kind is TaskPaused
            elif kind is TaskRemoved:
                for gauges in (
                    self._paused,
                    self._running,
                    self._last_success,
                    self._last_failure,
                ):
                    gauges.pop(task, None)

    @staticmethod
    def _histogram(
        histograms: dict[str, _Histogram], task: str, bounds: Sequence[float]
    ) -> _Histogram:
        histogram = histograms.get(task)
        if histogram is None:
            histogram = histograms[task] = _Histogram(len(bounds) + 1)
        return histogram

    # -- the prometheus_client collector protocol -----------------------------------

    def describe(self) -> Iterable[Metric]:
        """The metric families, without samples (what a registry checks names with)."""
        return list(self._families(None))

    def collect(self) -> Iterable[Metric]:
        """The metric families with their samples: what a scrape shows.

        The tallies are copied under the lock, and the families built from the
        copy: a scrape holds the watch up for the copy only.
        """
        with self._lock:
            tallies = _Tallies(
                runs=dict(self._runs),
                skips=dict(self._skips),
                running={task: len(running) for task, running in self._running.items()},
                lateness={task: (list(h.counts), h.sum) for task, h in self._lateness.items()},
                duration={task: (list(h.counts), h.sum) for task, h in self._duration.items()},
                last_success=dict(self._last_success),
                last_failure=dict(self._last_failure),
                paused=dict(self._paused),
                log_seq=self._log_seq,
                writer=dict(self._writer),
            )
        return list(self._families(tallies))

    def _families(self, tallies: _Tallies | None) -> Iterator[Metric]:
        runs = CounterMetricFamily(
            "chronolog_runs",
            "Attempts that ended, by task and outcome (completed or failed).",
            labels=["task", "outcome"],
        )
        skips = CounterMetricFamily(
            "chronolog_skips",
            "Occurrences skipped, by task and reason.",
            labels=["task", "reason"],
        )
        in_progress = GaugeMetricFamily(
            "chronolog_runs_in_progress", "Attempts running now, by task.", labels=["task"]
        )
        lateness = HistogramMetricFamily(
            "chronolog_run_lateness_seconds",
            "How long after its due time a first attempt started, by task.",
            labels=["task"],
        )
        duration = HistogramMetricFamily(
            "chronolog_run_duration_seconds",
            "How long attempts ran, by task.",
            labels=["task"],
        )
        last_success = GaugeMetricFamily(
            "chronolog_last_success_timestamp_seconds",
            "When the task's last run completed (Unix time).",
            labels=["task"],
        )
        last_failure = GaugeMetricFamily(
            "chronolog_last_failure_timestamp_seconds",
            "When the task's last attempt failed (Unix time).",
            labels=["task"],
        )
        tasks = GaugeMetricFamily("chronolog_tasks", "Tasks defined.")
        paused = GaugeMetricFamily(
            "chronolog_task_paused", "1 while the task is paused, else 0.", labels=["task"]
        )
        log_seq = GaugeMetricFamily("chronolog_log_seq", "The seq of the last record in the log.")
        append = SummaryMetricFamily(
            "chronolog_log_append_duration_seconds",
            "Writes to the log (count) and the time they took (sum).",
        )
        batch = SummaryMetricFamily(
            "chronolog_writer_batch_records", "Records per write to the log (count: writes)."
        )
        batch_max = GaugeMetricFamily(
            "chronolog_writer_batch_records_max", "Most records written by one write."
        )
        queued = GaugeMetricFamily(
            "chronolog_writer_queued_appends", "Groups of events waiting for the log writer."
        )
        families = (
            runs, skips, in_progress, lateness, duration, last_success, last_failure,
            tasks, paused, log_seq, append, batch, batch_max, queued,
        )  # fmt: skip
        if tallies is None:
            yield from families
            return
        for (task, outcome), count in sorted(tallies.runs.items()):
            runs.add_metric([task, outcome], count)
        for (task, reason), count in sorted(tallies.skips.items()):
            skips.add_metric([task, reason], count)
        for task, running in sorted(tallies.running.items()):
            in_progress.add_metric([task], running)
        for histograms, family, bounds in (
            (tallies.lateness, lateness, self.lateness_buckets),
            (tallies.duration, duration, self.duration_buckets),
        ):
            for task, (counts, total) in sorted(histograms.items()):
                family.add_metric([task], _cumulative(bounds, counts), total)
        for task, stamp in sorted(tallies.last_success.items()):
            last_success.add_metric([task], stamp)
        for task, stamp in sorted(tallies.last_failure.items()):
            last_failure.add_metric([task], stamp)
        tasks.add_metric([], len(tallies.paused))
        for task, is_paused in sorted(tallies.paused.items()):
            paused.add_metric([task], 1 if is_paused else 0)
        log_seq.add_metric([], tallies.log_seq)
        writer = tallies.writer
        if writer:
            append.add_metric([], int(writer["batches"]), writer["append_seconds"])
            batch.add_metric([], int(writer["batches"]), writer["records"])
            batch_max.add_metric([], writer["largest_batch"])
            queued.add_metric([], writer["queued"])
        yield from families


# -- serving a registry over HTTP, in Trio ----------------------------------------------

#: The longest request head the endpoint reads (a scrape's is a few hundred bytes).
MAX_REQUEST_BYTES: Final = 16384
#: How long a connection may take to send its request.
REQUEST_TIMEOUT_SECONDS: Final = 10.0
#: Connections answered at once; more are turned away (503) rather than queued.
MAX_CONNECTIONS: Final = 32
#: How long a turned-away connection may take to send its request.
BUSY_READ_SECONDS: Final = 1.0


def parse_address(text: str) -> tuple[str, int]:
    """``"127.0.0.1:9464"``, ``"[::1]:9464"`` or ``"localhost:9464"`` as (host, port)."""
    host, colon, port_text = text.strip().rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    example = "write HOST:PORT, e.g. 127.0.0.1:9464 (or [::1]:9464, or 0.0.0.0:9464 for all)"
    if not colon or not host or not port_text.isdigit():
        raise ConfigError(f"metrics address {text!r} is not HOST:PORT; {example}")
    port = int(port_text)
    if port > 65535:
        raise ConfigError(f"metrics port {port} is out of range 0-65535; {example}")
    return host, port


async def check_metrics_port(host: str, port: int) -> None:
    """`ConfigError` unless `serve_metrics` could listen on ``host:port`` now
    (``chronolog run --check``): it listens, and closes at once."""
    for listener in await _listen(host, port):
        await listener.aclose()


async def _listen(host: str, port: int) -> list[trio.SocketListener]:
    try:
        return await trio.open_tcp_listeners(port, host=host)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(
                f"cannot serve metrics on {host}:{port}: the port is in use (another "
                f"chronolog run, or another exporter?); pick another port"
            ) from exc
        raise ConfigError(f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}") from exc


async def serve_metrics(
    host: str,
    port: int,
    *,
    registry: CollectorRegistry = REGISTRY,
    task_status: trio.TaskStatus[list[trio.SocketListener]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Answer ``GET /metrics`` on ``host:port`` with ``registry``'s metrics, until cancelled.

    With ``nursery.start`` it returns the listeners once they listen (with
    ``port=0``, their sockets say which port was picked). A port that is
    taken is a `ConfigError` saying so, raised before anything is served.
    """
    listeners = await _listen(host, port)
    task_status.started(listeners)
    in_flight = 0

    async def handler(stream: trio.SocketStream) -> None:
        nonlocal in_flight
        if in_flight >= MAX_CONNECTIONS:
            # Slow or idle connections must not pile up: tell this one to come back.
            # Its request is read first (briefly): closing a socket with unread
            # data resets the connection, and the client would not see the answer.
            async with stream:
                with contextlib.suppress(
                    trio.BrokenResourceError, trio.ClosedResourceError, ConnectionError
                ):
                    with trio.move_on_after(BUSY_READ_SECONDS):
                        await _read_head(stream)
                    await stream.send_all(_response(503, "Service Unavailable", b"busy\n"))
            return
        in_flight += 1
        try:
            await _answer(stream, registry)
        finally:
            in_flight -= 1

    await trio.serve_listeners(handler, listeners)


async def _answer(stream: trio.SocketStream, registry: CollectorRegistry) -> None:
    async with stream:
        try:
            head = b""
            with trio.move_on_after(REQUEST_TIMEOUT_SECONDS):
                head = await _read_head(stream)
            response = await _respond(head, registry)
            await stream.send_all(response)
        except (trio.BrokenResourceError, trio.ClosedResourceError, ConnectionError):
            pass  # the scraper went away


async def _read_head(stream: trio.SocketStream) -> bytes:
    data = bytearray()
    while b"\r\n\r\n" not in data and b"\n\n" not in data:
        if len(data) > MAX_REQUEST_BYTES:
            break
        chunk = await stream.receive_some(4096)
        if not chunk:
            break
        data += chunk
    return bytes(data)


async def _respond(head: bytes, registry: CollectorRegistry) -> bytes:
    line = head.split(b"\n", 1)[0].decode("latin-1").strip()
    parts = line.split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        return _response(400, "Bad Request", b"expected an HTTP request such as GET /metrics\n")
    method, target, _ = parts
    path = target.split("?", 1)[0]
    if method not in ("GET", "HEAD"):
        return _response(405, "Method Not Allowed", b"only GET and HEAD\n", allow="GET, HEAD")
    if path not in ("/metrics", "/"):
        return _response(404, "Not Found", b"the metrics are at /metrics\n")
    try:
        # In a thread: a large registry takes a while to render, and the event
        # loop (the scheduler's) must not stop for it.
        body = await trio.to_thread.run_sync(generate_latest, registry, abandon_on_cancel=True)
    except Exception:
        logger.exception("collecting the metrics failed")
        return _response(500, "Internal Server Error", b"collecting the metrics failed\n")
    return _response(200, "OK", body, content_type=CONTENT_TYPE_LATEST, head=method == "HEAD")


def _response(
    status: int,
    reason: str,
    body: bytes,
    *,
    content_type: str = "text/plain; charset=utf-8",
    head: bool = False,
    **headers: Any,
) -> bytes:
    lines = [
        f"HTTP/1.1 {status} {reason}",
        f"Content-Type: {content_type}",
        f"Content-Length: {len(body)}",
        "Connection: close",
        *(f"{name.title()}: {value}" for name, value in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (b"" if head else body)
