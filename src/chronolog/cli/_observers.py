"""What ``chronolog run`` runs beside its scheduler: result hooks and the metrics endpoint.

Both are observers of the log (see ``_hooks`` and ``_metrics``): they read
the records the scheduler appends and change nothing in it. The hooks follow
the log from the moment it is opened to the moment it is closed, so the
records of the start-up and of the shutdown fire theirs too; the metrics
endpoint listens before the log is opened (a port that is taken stops the
command before anything starts) and answers until the log is closed, also
while the scheduler shuts down.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from .._hooks import run_hooks
from ._common import BadUsage

if TYPE_CHECKING:
    from collections.abc import Callable

    import trio

    from .._clock import Clock
    from .._config import JobFile
    from .._metrics import SchedulerCollector
    from ..log import EventLog

__all__ = ["check_metrics_address", "check_metrics_port", "follow_hooks", "start_metrics"]

logger = logging.getLogger("chronolog.run")

_INSTALL = "pip install 'chronolog[metrics]'"


def check_metrics_address(address: str) -> tuple[str, int]:
    """``--metrics HOST:PORT`` checked, before anything starts (`BadUsage` saying why not)."""
    try:
        from .._metrics import parse_address
    except ImportError:
        raise BadUsage(
            f"--metrics needs the Prometheus client library, which is not installed: {_INSTALL}"
        ) from None
    try:
        return parse_address(address)
    except ValueError as exc:
        raise BadUsage(f"--metrics: {exc}") from exc


async def check_metrics_port(host: str, port: int) -> None:
    """`ConfigError` unless metrics could be served on ``host:port`` now (``run --check``)."""
    from .._metrics import check_metrics_port as listen_and_close

    await listen_and_close(host, port)


async def start_metrics(nursery: trio.Nursery, host: str, port: int) -> SchedulerCollector:
    """Serve a registry with a fresh `SchedulerCollector` on ``host:port`` in ``nursery``."""
    from prometheus_client.registry import CollectorRegistry

    from .._metrics import SchedulerCollector, serve_metrics

    registry = CollectorRegistry(auto_describe=True)
    collector = SchedulerCollector()
    registry.register(collector)
    listeners: list[trio.SocketListener] = await nursery.start(
        lambda task_status: serve_metrics(host, port, registry=registry, task_status=task_status)
    )
    for listener in listeners:
        name: Any = listener.socket.getsockname()
        shown = f"[{name[0]}]" if ":" in name[0] else name[0]
        logger.info("serving metrics on http://%s:%d/metrics", shown, name[1])
    return collector


async def follow_hooks(
    log: EventLog, *, after_seq: int, job_file: Callable[[], JobFile], clock: Clock
) -> None:
    """Run the result hooks of the records appended to ``log`` after ``after_seq``,
    with the hooks of the job file in force (``job_file()``), until the log closes;
    hooks still running then get the file's ``shutdown_grace`` to end."""
    await run_hooks(
        log.follow(after_seq=after_seq),
        lambda task: job_file().hooks_for(task),
        clock=clock,
        drain=lambda: job_file().shutdown_grace,
    )
