"""Leases: which scheduler processes of a shared log are alive, and what a lost one leaves.

Every node (scheduler process) on a shared log holds a *lease*: a row in the
database with an expiry, in the database's own time, so that nodes whose
clocks disagree still agree on it. A node renews its lease every quarter of
the lease period. Then:

* **A lost node's runs are settled once, by a survivor.** Every quarter of
  the period each node looks at the runs the log shows running. A run whose
  node holds no valid lease -- it was killed, its machine died, it lost the
  database for longer than the lease -- is settled as
  ``Failed(error="node lost")`` with the retry its policy plans, through the
  writer's turn (`SharedLogWriter.append_decided`): decided on the whole
  log, so only one survivor records it (the database's unique index on
  settlements would refuse a second anyway). Then the actors hear of it, and
  the retry starts on whichever node claims it first.
* **A node that cannot renew fences itself.** Its lease outlives its last
  renewal by the lease period. Once no renewal has worked for three quarters
  of it, the node cancels its own runs (``node lost``): before anyone can
  take it for lost and start a retry, it has stopped. It starts nothing
  while it cannot reach the database (nothing can be claimed), and when it
  can again it renews its lease and catches up from its last seq.
* **A run of this node that this process does not run** -- a claim whose
  commit's outcome was unknown and that landed after all -- is settled the
  same way (``node lost``): nobody runs it.
* Two processes with the same node name cannot both hold a lease: the
  second is refused when it starts (`ConfigError`).
* **Nodes take turns by occurrence.** Every node wakes for every due time,
  and the first claim wins; left at that, the node that happens to be
  fastest would claim everything. So the live nodes (those with a valid
  lease, read at each renewal) are ranked per occurrence by a hash of the
  occurrence id and the node name (`claim_rank`), and a node claims
  `CLAIM_STAGGER` times its rank after the due time: the first-ranked node
  claims on time, the next one only if the first has not (it died, or is
  slow). Every node computes the same ranks, so the runs spread evenly, and
  nothing depends on it: the claim is still the database's to grant.

With the default lease of 10 s, a killed node's runs are retried about
10-12.5 s later (its lease expires, then the next check of a survivor).
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Final, Protocol

import trio

from ._errors import ClaimConflict, ConfigError, LogClosed
from ._events import Failed, Started

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from ._actor import TaskActor
    from ._clock import Clock
    from ._events import Event
    from ._follower import SharedLog
    from ._projection import State

__all__ = [
    "CLAIM_STAGGER",
    "DEFAULT_LEASE",
    "NODE_LOST",
    "Leases",
    "claim_rank",
    "lost_run_events",
]

logger = logging.getLogger("chronolog.leases")

DEFAULT_LEASE: Final = timedelta(seconds=10)
#: The error of a run whose node was lost.
NODE_LOST: Final = "node lost"
#: How much later than the node ranked before it a node claims an occurrence.
CLAIM_STAGGER: Final = timedelta(milliseconds=250)


class LeaseHost(Protocol):
    """What the lease needs of the scheduler (`Scheduler` is one)."""

    state: State
    clock: Clock
    node: str

    async def append_decided(self, decide: Callable[[State], Sequence[Event]]) -> list[Event]: ...


class Leases:
    """This node's lease on a shared log, and the check for lost nodes."""

    def __init__(self, log: SharedLog, *, node: str, lease: timedelta) -> None:
        if lease < timedelta(seconds=1):
            raise ConfigError(f"the lease must be at least 1 s, got {lease}")
        self._log = log
        self.node = node
        self.lease = lease
        #: This process, among processes that might use the same node name.
        self.instance = uuid.uuid4().hex
        self._host: LeaseHost | None = None
        self._actors: Mapping[str, TaskActor] = {}
        # Until when (trio.current_time) the lease surely holds: its last
        # renewal was sent before then minus the lease.
        self._valid_until = 0.0
        self._fenced = False
        #: The nodes with a valid lease, as of the last renewal (sorted).
        self.live: tuple[str, ...] = (node,)
        self.lost_runs = 0
        """Runs of lost nodes this node settled (statistics)."""

    def attach(self, host: LeaseHost, actors: Mapping[str, TaskActor]) -> None:
        """From now on, settle lost runs through ``host`` and fence ``actors``' runs."""
        self._host = host
        self._actors = actors

    def claim_delay(self, occurrence: str) -> timedelta:
        """`CLAIM_STAGGER` times this node's rank for ``occurrence`` among the live nodes."""
        return CLAIM_STAGGER * claim_rank(occurrence, self.node, self.live)

    async def _look_around(self) -> None:
        """Read which nodes hold a valid lease (for `claim_delay`); a failure keeps the last."""
        try:
            live = await self._log.live_nodes()
        except OSError as exc:
            logger.debug("node %r could not read the live nodes: %s", self.node, exc)
            return
        self.live = tuple(sorted(set(live) | {self.node}))

    @property
    def interval_seconds(self) -> float:
        return self.lease.total_seconds() / 4

    async def _renew(self) -> bool:
        """Renew the lease; False when another live process holds this node name.

        A renewal that takes longer than a quarter of the lease is given up
        (``OSError``), so that `_watch_expiry` is not kept waiting on it.
        """
        sent = trio.current_time()
        with trio.move_on_after(self.interval_seconds):
            if not await self._log.renew_lease(self.node, self.instance, self.lease):
                return False
            self._valid_until = sent + self.lease.total_seconds()
            if self._fenced:
                logger.warning("node %r holds its lease again", self.node)
            self._fenced = False
            return True
        raise TimeoutError(f"renewing the lease took longer than {self.interval_seconds:g} s")

    async def take(self) -> None:
        """Take the lease when the scheduler starts. A lease under this node name that
        another process holds is waited for, in case that process is a crashed
        predecessor whose lease has yet to expire; `ConfigError` if it is renewed."""
        deadline = trio.current_time() + self.lease.total_seconds() * 1.5
        said = False
        while not await self._renew():
            if trio.current_time() > deadline:
                raise ConfigError(
                    f"node name {self.node!r} is in use by another scheduler process that "
                    f"keeps its lease; give each process its own node name "
                    f"(open_scheduler(node=...))"
                )
            if not said:
                logger.warning(
                    "node name %r holds a lease of another process; waiting up to %s for it "
                    "to expire (a process that stopped without giving it back)",
                    self.node,
                    self.lease * 1.5,
                )
                said = True
            await trio.sleep(self.interval_seconds)
        await self._look_around()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Keep the lease (`take` took it) and look for lost nodes, every quarter of
        the lease, until cancelled."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._watch_expiry)
            task_status.started()
            failing = False
            while True:
                await trio.sleep(self.interval_seconds)
                try:
                    renewed = await self._renew()
                except OSError as exc:
                    if not failing:
                        logger.warning("node %r cannot renew its lease: %s", self.node, exc)
                    failing = True
                    continue
                if not renewed:
                    self._fence()
                    raise ConfigError(
                        f"node name {self.node!r} was taken by another process while this one "
                        f"could not renew its lease; this scheduler stops"
                    )
                failing = False
                await self._look_around()
                try:
                    await self.settle_lost_runs()
                except OSError as exc:
                    logger.warning("node %r could not look for lost nodes: %s", self.node, exc)
                except ClaimConflict as exc:  # the log refused: settled otherwise meanwhile
                    logger.warning("node %r: %s", self.node, exc)
                except LogClosed:
                    # The scheduler is stopping: its writer takes no more
                    # records, but the lease is kept until it has stopped.
                    continue

    async def _watch_expiry(self) -> None:
        """Fence this node once its lease may expire within a quarter period."""
        while True:
            deadline = self._valid_until - self.interval_seconds
            if trio.current_time() < deadline:
                await trio.sleep_until(deadline)
                continue
            self._fence()
            await trio.sleep(self.interval_seconds)

    def _fence(self) -> None:
        """Cancel this node's runs: others may take it for lost soon, and retry them."""
        if self._fenced:
            return
        self._fenced = True
        count = sum(actor.cancel_runs(NODE_LOST) for actor in list(self._actors.values()))
        logger.warning(
            "node %r could not renew its lease for %s: its %d run(s) were cancelled, so that "
            "none still runs once other nodes take this one for lost",
            self.node,
            self.lease * 3 / 4,
            count,
        )

    async def release(self) -> None:
        """Give the lease back (a clean stop); a failure is only logged."""
        try:
            await self._log.release_lease(self.node, self.instance)
        except OSError as exc:
            logger.warning("node %r could not release its lease: %s", self.node, exc)

    async def settle_lost_runs(self) -> int:
        """Settle the runs of lost nodes (and this node's orphans); how many."""
        host = self._host
        if host is None:
            await trio.lowlevel.checkpoint()
            return 0
        running = host.state.running_attempts()
        others = sorted({started.node for started in running if started.node != self.node})
        lost = await self._log.lost_nodes(others)
        orphans = self._orphans(running)
        if not lost and not orphans:
            return 0
        now = host.clock.now()
        local = self._local_runs()

        def decide(state: State) -> list[Event]:
            return lost_run_events(
                state,
                lambda started: (
                    started.node in lost
                    or (
                        started.node == self.node
                        and (started.task, started.occurrence) not in local
                    )
                ),
                now,
            )

        records = await host.append_decided(decide)
        if records:
            self.lost_runs += len(records)
            logger.warning(
                "node %r settled %d run(s) of lost node(s) %s as %r",
                self.node,
                len(records),
                ", ".join(sorted(lost | ({self.node} if orphans else set()))),
                NODE_LOST,
            )
            for record in records:
                actor = self._actors.get(record.task)
                if actor is not None:
                    actor.notify()
        still_running = {started.node for started in host.state.running_attempts()}
        gone = sorted(node for node in lost if node not in still_running)
        if gone:
            await self._log.forget_nodes(gone)
        return len(records)

    def _local_runs(self) -> set[tuple[str, str]]:
        return {
            (name, occurrence) for name, actor in self._actors.items() for occurrence in actor.runs
        }

    def _orphans(self, running: list[Started]) -> list[Started]:
        """Runs the log says this node runs that no actor of this process runs."""
        local = self._local_runs()
        return [
            started
            for started in running
            if started.node == self.node and (started.task, started.occurrence) not in local
        ]


def claim_rank(occurrence: str, node: str, live: Sequence[str]) -> int:
    """Where ``node`` comes among ``live`` nodes in claiming ``occurrence``: 0 for the
    first. Pure; every node computes the same ranks (rendezvous hashing: a node
    joining or leaving moves only the occurrences it now ranks first for)."""

    def weight(name: str) -> bytes:
        return hashlib.blake2b(f"{occurrence}\0{name}".encode(), digest_size=8).digest()

    mine = weight(node)
    return sum(1 for other in set(live) if other != node and weight(other) < mine)


def lost_run_events(
    state: State, is_lost: Callable[[Started], bool], now: datetime
) -> list[Event]:
    """``Failed(error="node lost")`` for each running attempt whose ``Started`` is lost,
    with the retry its task's policy plans. Pure."""
    events: list[Event] = []
    for started in state.running_attempts():
        if not is_lost(started):
            continue
        policy = state.definition(started.task).policy
        retry_at = None
        if started.attempt < policy.retry.max_attempts:
            retry_at = now + policy.retry.delay_before(started.attempt + 1)
        events.append(
            Failed(
                task=started.task,
                at=now,
                occurrence=started.occurrence,
                attempt=started.attempt,
                duration=max(now - started.at, timedelta(0)),
                error=NODE_LOST,
                error_type="NodeLost",
                retry_at=retry_at,
            )
        )
    return events
