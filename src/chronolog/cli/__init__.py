"""The ``chronolog`` command line: one click group, one module per command family.

Each command lives in its own module and is attached here with
``main.add_command``, so adding a command touches this file by one line.
"""

from __future__ import annotations

import click

from ._common import ChronologGroup
from .compact import compact_command
from .control import (
    add_command,
    cancel_command,
    pause_command,
    reload_command,
    remove_command,
    resume_command,
    run_now_command,
)
from .db import db_command
from .demo import demo_command
from .history import history_command
from .mcp import mcp_command
from .next import next_command
from .replay import replay_command
from .run import run_command
from .status import status_command
from .tail import tail_command
from .timeline import timeline_command
from .verify import verify_command
from .why import why_command

__all__ = ["main"]


@click.group(cls=ChronologGroup)
def main() -> None:
    """chronolog: a job scheduler for Trio programs in which the log is the truth."""


main.add_command(demo_command)
main.add_command(next_command)
main.add_command(status_command)
main.add_command(history_command)
main.add_command(tail_command)
main.add_command(replay_command)
main.add_command(verify_command)
main.add_command(why_command)
main.add_command(timeline_command)
main.add_command(run_command)
main.add_command(reload_command)
main.add_command(pause_command)
main.add_command(resume_command)
main.add_command(run_now_command)
main.add_command(cancel_command)
main.add_command(remove_command)
main.add_command(add_command)
main.add_command(compact_command)
main.add_command(mcp_command)
main.add_command(db_command)
