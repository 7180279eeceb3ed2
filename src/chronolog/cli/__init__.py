"""The ``chronolog`` command line: one click group, one module per command family.

Each command lives in its own module and is attached here with
``main.add_command``, so adding a command touches this file by one line.
"""

from __future__ import annotations

import click

from .demo import demo_command
from .next import next_command
from .status import status_command

__all__ = ["main"]


@click.group()
def main() -> None:
    """chronolog: a job scheduler for Trio programs in which the log is the truth."""


main.add_command(demo_command)
main.add_command(next_command)
main.add_command(status_command)
