"""``chronolog run JOBS.toml``: a scheduler as a service, from a job file.

Start-up, in order: validate the whole job file (a file with a problem
starts nothing); open the log as its only writer; append the records that
bring it in line with the file (tasks the file dropped are removed, changed
ones redefined) before any task actor starts; open the scheduler and bind
every target; serve the control socket; run until a signal.

Signals: SIGINT or SIGTERM stops gracefully (runs get the file's
``shutdown_grace``); a second one cancels the runs at once. SIGHUP reloads
the job file, as ``chronolog reload`` does; a file that does not validate
leaves the running configuration as it was and says why.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import os
import signal
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import attrs
import click
import trio

from .._clock import SystemClock, wall_clock_now
from .._config import load_job_file
from .._control import ControlError, check_socket_path, serve_control, socket_path
from .._direct import event_log_at
from .._errors import ChronologError, ConfigError
from .._events import Completed, Failed, Scheduled, Skipped, Started
from .._jobs import reconcile, startup_events, target_text
from .._leases import DEFAULT_LEASE
from .._policies import CatchUp
from .._projection import fold_into
from .._scheduler import default_node, log_decisions, open_scheduler
from .._triggers import At
from ..log._paths import postgres_log_class
from ._common import (
    BadUsage,
    CommandError,
    json_option,
    translate_errors,
    warnings_logged_instead,
)
from ._log_names import DatabaseURL, LogName, as_log_name, log_name
from ._observers import check_metrics_address, check_metrics_port, follow_hooks, start_metrics
from ._output import (
    describe_event,
    describe_policy,
    describe_trigger,
    duration_text,
    event_json,
    instant_text,
    print_json,
)
from ._requests import apply_live, parse_request

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from datetime import datetime

    from .._config import Job, JobFile
    from .._events import Event
    from .._metrics import SchedulerCollector
    from .._projection import State
    from .._scheduler import Scheduler
    from ..log import EventLog

__all__ = ["Service", "run_command"]

#: How often a scheduler on a shared log looks for others' appends when no
#: notification came (notifications wake it at once).
_SHARED_POLL: Final = timedelta(seconds=1)

logger = logging.getLogger("chronolog.run")


def _settings(job_file: JobFile) -> dict[str, Any]:
    """The settings of a job file that a running scheduler cannot change."""
    return {
        "log": job_file.log,
        "shutdown_grace": job_file.shutdown_grace,
        "max_concurrent": job_file.max_concurrent,
        "result_max_bytes": job_file.result_max_bytes,
    }


#: Cycle-collector thresholds of a `chronolog run` process (Python's are 700, 10, 10).
SERVICE_GC_THRESHOLDS = (50_000, 20, 100)


class Service:
    """A running ``chronolog run``: its scheduler and job file, driven by signals and requests."""

    def __init__(self, scheduler: Scheduler, job_file: JobFile, *, job_file_path: Path) -> None:
        self.scheduler = scheduler
        self.job_file = job_file
        self.job_file_path = job_file_path
        self.stop_requested = trio.Event()
        # One change at a time: a reload and a control command must not interleave.
        self._changes = trio.Lock()
        self._stops = 0

    async def handle(self, message: dict[str, Any]) -> dict[str, Any]:
        """Answer one control request (the control socket's handler)."""
        request = parse_request(message)
        if self.stop_requested.is_set():
            raise ControlError(
                "the scheduler is shutting down; the command was not applied", "ShuttingDown"
            )
        async with self._changes:
            result = await apply_live(
                self.scheduler,
                request,
                result_max_bytes=self.job_file.result_max_bytes,
                reload=self._reload,
            )
        logger.info("control: %s", json.dumps(result, ensure_ascii=False))
        return result

    async def reload(self) -> dict[str, Any]:
        """Read the job file again and declare its jobs; on an error nothing changes."""
        async with self._changes:
            return await self._reload()

    async def _reload(self) -> dict[str, Any]:
        try:
            job_file = await trio.to_thread.run_sync(load_job_file, self.job_file_path)
        except ConfigError as exc:
            logger.error("reload: the job file has problems; nothing changed: %s", exc)
            raise
        running = _settings(self.job_file)
        restart_needed = [
            name
            for name, value in _settings(job_file).items()
            if value != running[name] and not (name == "log" and value is None)
        ]
        for name in restart_needed:
            logger.warning(
                "reload: %s changed in the job file; it takes effect at the next start", name
            )
        reconciled = await reconcile(
            self.scheduler, job_file, result_max_bytes=self.job_file.result_max_bytes
        )
        self.job_file = attrs.evolve(job_file, **running)
        logger.info(
            "reloaded %s: %d created, %d changed, %d unchanged, %d removed",
            self.job_file_path,
            len(reconciled.created),
            len(reconciled.changed),
            len(reconciled.unchanged),
            len(reconciled.removed),
        )
        return {
            "job_file": str(self.job_file_path),
            **reconciled.as_json(),
            "restart_needed": restart_needed,
        }

    async def on_signal(self, signum: int) -> None:
        """SIGHUP reloads; SIGINT/SIGTERM stop gracefully, and cancel runs the second time."""
        name = signal.Signals(signum).name
        if signum == signal.SIGHUP:
            logger.info("%s: reloading %s", name, self.job_file_path)
            # On a problem _reload() said why, and the running configuration stays.
            with contextlib.suppress(ChronologError):
                await self.reload()
            return
        self._stops += 1
        if self._stops == 1:
            logger.info(
                "%s: stopping; running jobs get up to %s to finish (send it again to "
                "cancel them now)",
                name,
                duration_text(self.job_file.shutdown_grace),
            )
            self.stop_requested.set()
        elif self._stops == 2:
            logger.warning("%s again: cancelling the running jobs now", name)
            for task in self.scheduler.state.task_names():
                await self.scheduler.cancel(task)
        else:
            logger.warning("%s: already stopping, the running jobs are cancelled", name)


class _SignalRouter:
    """Signals from the first moment of `chronolog run` on.

    Until the service runs (the log is opened, replayed and brought in line
    with the job file), SIGINT or SIGTERM cancels the start-up and the
    command exits; SIGHUP has nothing to reload yet (the file was just read).
    From then on the `Service` answers them.
    """

    def __init__(self) -> None:
        self.startup = trio.CancelScope()
        self.service: Service | None = None

    async def route(self, signals: AsyncIterator[int]) -> None:
        async for signum in signals:
            service = self.service
            if service is not None:
                await service.on_signal(signum)
            elif signum == signal.SIGHUP:
                logger.info("SIGHUP while starting: the job file was just read; ignored")
            else:
                logger.info(
                    "%s while starting: stopping before any job runs", signal.Signals(signum).name
                )
                self.startup.cancel()


async def report_events(
    log: EventLog, *, after_seq: int, as_json: bool, node: str | None = None
) -> None:
    """Say what happens, until the log is closed: outcomes at INFO, plans at DEBUG.

    Failures and skips are left to the scheduler's own log lines
    (`chronolog.scheduler`), which count a burst of skips as one line. With
    ``as_json`` every record also goes to stdout, one JSON object per line.
    On a shared log (``node`` given), the runs of other nodes are theirs to
    report: only this node's starts and outcomes are logged.
    """
    mine: set[tuple[str, int]] = set()
    async for record in log.follow(after_seq=after_seq):
        if as_json:
            sys.stdout.write(json.dumps(event_json(record), ensure_ascii=False) + "\n")
            sys.stdout.flush()
        if isinstance(record, Failed | Skipped):
            continue
        if node is not None and isinstance(record, Started | Completed):
            key = (record.occurrence, record.attempt)
            if isinstance(record, Started) and record.node == node:
                mine.add(key)
            elif key not in mine:
                continue
            elif isinstance(record, Completed):
                mine.discard(key)
        level = logging.DEBUG if isinstance(record, Scheduled | Started) else logging.INFO
        if logger.isEnabledFor(level):
            logger.log(level, "%s: %s", record.task, describe_event(record))


async def serve(
    job_file: JobFile,
    *,
    job_file_path: Path,
    log_path: LogName,
    as_json: bool = False,
    metrics: tuple[str, int] | None = None,
) -> None:
    """Run ``job_file`` on ``log_path`` until SIGINT or SIGTERM (the ``run`` command's body).

    Signals are answered from the first moment: a stop signal during the
    start-up (a slow replay, a log that takes time to open) ends the command
    before any job runs.
    """
    router = _SignalRouter()
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM, signal.SIGHUP) as signals:
        async with trio.open_nursery() as routing:
            routing.start_soon(router.route, signals)
            try:
                with router.startup:
                    # The metrics port is taken first: if it is in use, nothing starts.
                    collector = None if metrics is None else await start_metrics(routing, *metrics)
                    await _serve_log(
                        job_file,
                        router,
                        job_file_path=job_file_path,
                        log_path=log_path,
                        as_json=as_json,
                        collector=collector,
                    )
            finally:
                routing.cancel_scope.cancel()
    if router.startup.cancelled_caught:
        logger.info("stopped before it started; %s is as it was", log_path)
    else:
        logger.info("stopped; %s is closed", log_path)


async def _serve_log(
    job_file: JobFile,
    router: _SignalRouter,
    *,
    job_file_path: Path,
    log_path: LogName,
    as_json: bool,
    collector: SchedulerCollector | None = None,
) -> None:
    clock = SystemClock()
    log = _log_for(log_path, job_file)
    node = None if isinstance(log_path, Path) else job_file.node or default_node()
    await log.open()
    try:
        state = await trio.to_thread.run_sync(log.load_state, abandon_on_cancel=True)
        async with trio.open_nursery() as reporting:
            reporting.start_soon(
                lambda: report_events(log, after_seq=state.seq, as_json=as_json, node=node)
            )
            reporting.start_soon(
                lambda: follow_hooks(
                    log,
                    after_seq=state.seq,
                    job_file=lambda: router.service.job_file if router.service else job_file,
                    clock=clock,
                )
            )
            log_decisions(await _start_up(log, state, job_file, clock.now()))
            await _schedule(
                log,
                job_file,
                router,
                job_file_path=job_file_path,
                log_path=log_path,
                collector=collector,
            )
            await log.aclose()  # the reporter reads to the end of the log, then stops
    finally:
        await log.aclose()


async def _schedule(
    log: EventLog,
    job_file: JobFile,
    router: _SignalRouter,
    *,
    job_file_path: Path,
    log_path: LogName,
    collector: SchedulerCollector | None = None,
) -> None:
    # A shared log has no control socket: commands are recorded in the log,
    # which every scheduler on it follows.
    control = socket_path(log_path) if isinstance(log_path, Path) else None
    async with trio.open_nursery() as serving:
        async with open_scheduler(
            log,
            shutdown_grace=job_file.shutdown_grace,
            max_concurrent=job_file.max_concurrent,
            result_max_bytes=job_file.result_max_bytes,
            node=job_file.node or default_node(),
        ) as scheduler:
            service = Service(scheduler, job_file, job_file_path=job_file_path)
            await reconcile(scheduler, job_file, result_max_bytes=job_file.result_max_bytes)
            if control is not None:
                await serving.start(serve_control, control, service.handle)
            if collector is not None:
                await serving.start(collector.watch, scheduler)
            # From here on a stop is graceful: the start-up scope no longer applies.
            router.service = service
            count = len(scheduler.state.task_names())
            logger.info(
                "running %d task%s from %s on %s (%s)",
                count,
                "" if count == 1 else "s",
                job_file_path,
                log_path,
                f"control socket {control}"
                if control is not None
                else f"node {scheduler.node!r}; control commands go through the log",
            )
            await service.stop_requested.wait()
        # The scheduler has shut down. The socket goes before the log's lock
        # is released, so a control command never finds the log locked by a
        # scheduler that no longer answers.
        serving.cancel_scope.cancel()


def _sole_error(group: BaseExceptionGroup[BaseException]) -> Exception | None:
    """The one error inside nested single-error groups, if that is what ``group`` is."""
    inner: BaseException = group
    while isinstance(inner, BaseExceptionGroup) and len(inner.exceptions) == 1:
        inner = inner.exceptions[0]
    return (
        inner if isinstance(inner, Exception) and not isinstance(inner, ExceptionGroup) else None
    )


class _UTCFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%dT%H:%M:%SZ")
        self.converter = time.gmtime


def _log_for(log_path: LogName, job_file: JobFile) -> EventLog:
    """The log ``run`` opens: a `PostgresLog` with the job file's lease for a URL."""
    if isinstance(log_path, DatabaseURL):
        lease = DEFAULT_LEASE if job_file.lease is None else job_file.lease
        return postgres_log_class()(log_path.dsn, poll_interval=_SHARED_POLL, lease=lease)
    return event_log_at(log_path)


async def _start_up(log: EventLog, state: State, job_file: JobFile, now: datetime) -> list[Event]:
    """Bring the log in line with the job file (`startup_events`): on a shared log,
    decided in a turn, so that nodes starting at once declare each job once."""
    if not isinstance(log, postgres_log_class()):
        return await log.append(startup_events(state, job_file, now))
    async with log.appending(state.seq) as turn:
        return await turn.append(startup_events(fold_into(state, turn.records), job_file, now))


def runnable_log(job_file_path: Path, job_file: JobFile, log_option: LogName | None) -> LogName:
    """The log ``run`` runs on, after every check ``run`` makes before it opens it.

    ``run`` and ``run --check`` both call this, so ``--check`` passes exactly
    the files and logs that ``run`` would go on with: the log is named (by
    the file or ``--log``), its directory exists, it is not a directory, the
    process may read and write it and create files beside it, and its
    control socket can be made there. What the log holds -- damage, a
    writer that holds it -- is for ``run`` to find when it opens it, and for
    ``chronolog verify``.
    """
    named = log_option if log_option is not None else job_file.log
    if named is None:
        raise BadUsage(
            f'{job_file_path} names no log and --log is not given; add e.g. log = "jobs.jsonl" '
            f"to the job file"
        )
    log_path = log_name(named)
    if isinstance(log_path, DatabaseURL):
        postgres_log_class()  # ConfigError (usage) when psycopg is missing
        return log_path
    directory = log_path.parent
    if not directory.is_dir():
        what = "is not a directory" if directory.exists() else "does not exist"
        raise BadUsage(
            f"cannot open log {log_path}: directory {directory} {what}; create it first"
        )
    if log_path.is_dir():
        raise BadUsage(
            f"log {log_path} is a directory, not a log; give the path of a log file in it, "
            f"e.g. {log_path / 'jobs.jsonl'}"
        )
    control = socket_path(log_path)
    check_socket_path(control)  # ConfigError: usage, as a job file problem is
    if log_path.exists() and not os.access(log_path, os.R_OK | os.W_OK):
        raise CommandError(
            f"cannot open log {log_path} for writing: permission denied; a scheduler reads and "
            f"writes its log: check the permissions of the log"
        )
    if not os.access(control.parent, os.W_OK | os.X_OK):
        raise CommandError(
            f"cannot create files in {control.parent} (permission denied): a scheduler puts "
            f"its lock file and control socket beside its log; check the permissions of that "
            f"directory"
        )
    return log_path


def _past_note(job: Job, now: datetime) -> str | None:
    """What a scheduler started at ``now`` does with a one-off whose time has passed."""
    trigger = job.trigger
    if not isinstance(trigger, At) or trigger.when > now:
        return None
    policy = job.policy
    grace = policy.misfire_grace
    if policy.catch_up is CatchUp.NONE:
        fate = "skips it as missed (catch_up = none)"
    elif grace is not None and now - trigger.when > grace:
        fate = f"skips it as missed: it is more than misfire_grace = {duration_text(grace)} late"
    else:
        fate = f"runs it once, at start (catch_up = {policy.catch_up})"
    return (
        f"{instant_text(trigger.when)} has passed: a scheduler started now {fate}; "
        f"if the log already knows this one-off, what it recorded stands"
    )


def _check_output(job_file: JobFile, log_path: LogName, as_json: bool) -> None:
    now = wall_clock_now()
    jobs = [
        {
            "task": job.name,
            "trigger": describe_trigger(job.trigger),
            "target": target_text(job.target, added=False),
            "policy": describe_policy(job.policy),
            "note": _past_note(job, now),
        }
        for job in job_file.jobs
    ]
    if as_json:
        print_json(
            {
                "job_file": str(job_file.path),
                "log": str(log_path),
                "shutdown_grace_seconds": job_file.shutdown_grace.total_seconds(),
                "max_concurrent": job_file.max_concurrent,
                "result_max_bytes": job_file.result_max_bytes,
                "jobs": jobs,
            }
        )
        return
    count = len(jobs)
    click.echo(f"{job_file.path} is valid: {count} job{'' if count == 1 else 's'}, log {log_path}")
    for job, entry in zip(job_file.jobs, jobs, strict=True):
        click.echo(f"  {job.name}: {entry['trigger']}; runs {job.target.describe()}")
        if entry["policy"] != "default policy":
            click.echo(f"    {entry['policy']}")
        if entry["note"] is not None:
            click.echo(f"    {entry['note']}")


@click.command("run")
@click.argument(
    "job_file_path",
    metavar="JOBS.toml",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
)
@click.option(
    "--log",
    "log_option",
    type=click.Path(readable=False),
    callback=as_log_name,
    help="The log to run on, instead of the job file's `log` (a path or a postgresql:// URL).",
)
@click.option("--check", is_flag=True, help="Validate the job file, show its jobs, start nothing.")
@click.option("-v", "--verbose", is_flag=True, help="Also log when runs are planned and start.")
@click.option("-q", "--quiet", is_flag=True, help="Log only warnings and errors.")
@click.option(
    "--metrics",
    "metrics_address",
    metavar="HOST:PORT",
    help="Serve Prometheus metrics at http://HOST:PORT/metrics (needs chronolog[metrics]).",
)
@json_option
@translate_errors
def run_command(
    job_file_path: Path,
    log_option: LogName | None,
    check: bool,
    verbose: bool,
    quiet: bool,
    as_json: bool,
    metrics_address: str | None = None,
) -> None:
    """Run the jobs of JOBS.toml until SIGINT or SIGTERM (SIGHUP reloads the file).

    With --json every record appended while it runs is printed to stdout, one
    JSON object per line (--check --json: one document describing the file).
    """
    # Like `python script.py`: modules beside the job file can be called.
    directory = str(job_file_path.resolve().parent)
    if directory not in sys.path:
        sys.path.append(directory)
    try:
        job_file = load_job_file(job_file_path)
    except ConfigError as exc:
        # Not translate_errors' one line: a file can have several problems, one per line.
        raise BadUsage(str(exc)) from exc
    log_path = runnable_log(job_file_path, job_file, log_option)  # before anything is written
    metrics = None if metrics_address is None else check_metrics_address(metrics_address)
    if check:
        if metrics is not None:
            trio.run(check_metrics_port, *metrics)  # a port in use fails --check as it fails run
        _check_output(job_file, log_path, as_json)
        return
    warnings_logged_instead()  # a repaired tail is in the log lines already
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_UTCFormatter())
    package_logger = logging.getLogger("chronolog")
    package_logger.addHandler(handler)
    previous_level = package_logger.level
    package_logger.setLevel(
        logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO
    )
    # This process is chronolog's own, so it may tune the cycle collector as
    # an application would (the library itself never does): with the default
    # thresholds, full collections of a large scheduler's heap pause every
    # task for tens of milliseconds, which is most of its lateness
    # (docs/how-to/run-at-high-rates.md, benchmarks/runtime.py).
    gc.set_threshold(*SERVICE_GC_THRESHOLDS)
    try:
        trio.run(
            lambda: serve(
                job_file,
                job_file_path=job_file_path,
                log_path=log_path,
                as_json=as_json,
                metrics=metrics,
            )
        )
    except BaseExceptionGroup as group:
        # An error inside the service's nurseries comes wrapped; alone, it is
        # the command's error (translate_errors turns it into one line).
        sole = _sole_error(group)
        if sole is None:
            raise
        raise sole from group
    finally:
        package_logger.removeHandler(handler)
        package_logger.setLevel(previous_level)
