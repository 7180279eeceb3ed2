"""Several schedulers on one log: how a scheduler joins the others.

A scheduler on a log that several processes append to (`EventLog.shared`,
a `PostgresLog`) gets a `SharedLogWriter` instead of a plain `LogWriter`,
and beside it a `Follower` (records from elsewhere, folded and told to the
actors) and `Leases` (who is alive; what a lost node leaves). `writer_for`
makes them; `join_cluster` connects them to the scheduler once its actors
exist. For any other log both are the plain single-writer path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import trio

from ._follower import Follower
from ._leases import DEFAULT_LEASE, Leases
from ._shared_writer import SharedLogWriter
from ._writer import LogWriter

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from datetime import timedelta

    from ._actor import TaskActor
    from ._clock import Clock
    from ._follower import SharedLog
    from ._leases import LeaseHost
    from ._projection import State
    from .log import EventLog

__all__ = ["join_cluster", "writer_for"]


async def writer_for(log: EventLog, state: State, *, clock: Clock, node: str) -> LogWriter:
    """The log writer for a scheduler on ``log``: shared or not.

    On a shared log the node's lease is taken here, before anything runs:
    ``OSError`` when the database cannot be reached, `ConfigError` when
    another live process uses the node name.
    """
    if not log.shared:
        await trio.lowlevel.checkpoint()
        return LogWriter(log, state, clock=clock)
    shared = cast("SharedLog", log)
    poll: timedelta = getattr(log, "poll_interval", DEFAULT_LEASE / 10)
    lease: timedelta = getattr(log, "lease", DEFAULT_LEASE)
    leases = Leases(shared, node=node, lease=lease)
    await leases.take()
    return SharedLogWriter(
        shared,
        state,
        clock=clock,
        follower=Follower(shared, state, poll=poll),
        leases=leases,
    )


def join_cluster(
    writer: LogWriter,
    host: LeaseHost,
    *,
    actors: Mapping[str, TaskActor],
    spawn: Callable[[str], TaskActor],
) -> None:
    """Let the follower wake ``actors`` and the lease settle lost runs through ``host``."""
    if isinstance(writer, SharedLogWriter):
        writer.follower.attach(actors=actors, spawn=spawn)
        writer.leases.attach(host, actors)
