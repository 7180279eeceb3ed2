"""One node of benchmarks/cluster.py: a scheduler process on a shared log.

``python _cluster_node.py LOG --node NAME --tasks N --due ISO [--lease S] [--failover]``

Adds N one-off no-op tasks due at ``--due`` (identical on every node, so only
the first node's definitions are written), runs until every one has run on
some node, then prints one JSON line: the node's name, the runs it started
and the claims it lost. With ``--failover`` it adds one task instead whose
run lasts a minute (retried once) and runs until it is killed.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from datetime import datetime, timedelta

import trio

from chronolog import At, Retry, open_scheduler
from chronolog.log.postgres import PostgresLog


class Refusals(logging.Handler):
    """Counts the claims this node lost to another (the actor says so at DEBUG)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "already claimed" in record.getMessage():
            self.count += 1


async def noop() -> None:
    await trio.lowlevel.checkpoint()


async def long_run() -> None:
    await trio.sleep(60)


async def main(options: argparse.Namespace) -> None:
    refusals = Refusals()
    scheduler_logger = logging.getLogger("chronolog.scheduler")
    scheduler_logger.addHandler(refusals)
    scheduler_logger.setLevel(logging.DEBUG)
    scheduler_logger.propagate = False
    due = datetime.fromisoformat(options.due)
    log = (
        PostgresLog(options.log, lease=timedelta(seconds=options.lease))
        if options.log.startswith("postgresql://")
        else options.log
    )
    async with open_scheduler(log, node=options.node) as scheduler:
        if options.failover:
            retry = Retry(max_attempts=2, backoff=timedelta(milliseconds=100))
            await scheduler.add("long", At(due), long_run, retry=retry)
            await trio.sleep_forever()
        names = [f"run-{n}" for n in range(options.tasks)]
        for name in names:
            await scheduler.add(name, At(due), noop)
        print(json.dumps({"ready": options.node}), flush=True)
        with trio.move_on_after(options.patience):
            waiting = names
            while waiting:
                await trio.sleep(0.1)
                waiting = [name for name in waiting if scheduler.status(name).run_count == 0]
            # The last outcomes reach this node through the log.
            while True:
                await trio.sleep(0.05)
                if not scheduler.state.running_attempts():
                    break
    print(json.dumps({"node": options.node, "claims_lost": refusals.count}), flush=True)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("log")
    parser.add_argument("--node", required=True)
    parser.add_argument("--tasks", type=int, default=1)
    parser.add_argument("--due", required=True)
    parser.add_argument("--lease", type=float, default=10.0)
    parser.add_argument("--patience", type=float, default=120.0)
    parser.add_argument("--failover", action="store_true")
    return parser.parse_args(argv)


if __name__ == "__main__":
    trio.run(main, parse(sys.argv[1:]))
