"""A progress bar for the long reads: replaying or checking a large log.

The bar goes to stderr, so stdout stays clean for pipes, and only when
stderr is a terminal, the output is not ``--json`` and the log is large
enough for the wait to be noticed. Progress is measured in records: a
`FileLog` numbers its records 1, 2, 3, ..., so the seq of the last record
read against the log's last seq is the fraction done.

The bar costs nothing per record: records pass through in chunks that
``itertools`` walks in C, and the bar moves once per chunk.
"""

from __future__ import annotations

import contextlib
import itertools
import sys
from typing import TYPE_CHECKING, Final

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from .._events import Event

__all__ = ["MIN_RECORDS", "progress_over"]

#: Logs with fewer records than this are read without a bar (it would only flash).
MIN_RECORDS: Final = 200_000
_CHUNK: Final = 20_000


def _wanted(total: int, as_json: bool) -> bool:
    return not as_json and total >= MIN_RECORDS and sys.stderr.isatty()


@contextlib.contextmanager
def progress_over(
    records: Iterable[Event],
    *,
    total: int,
    description: str,
    as_json: bool,
    console: Console | None = None,
) -> Iterator[Iterator[Event]]:
    """``records``, with a transient progress bar on stderr while they are read.

    ``total`` is the seq the read ends at (usually the log's last seq). Pass
    ``console`` to draw the bar elsewhere than stderr whatever it is (tests
    do); otherwise the bar appears only when it helps (see the module
    docstring).
    """
    if console is None:
        if not _wanted(total, as_json):
            yield iter(records)
            return
        console = Console(stderr=True)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("records"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as progress:
        bar = progress.add_task(description, total=total)

        def chunks() -> Iterator[list[Event]]:
            iterator = iter(records)
            while chunk := list(itertools.islice(iterator, _CHUNK)):
                progress.update(bar, completed=chunk[-1].seq)
                yield chunk
            progress.update(bar, completed=total)

        yield itertools.chain.from_iterable(chunks())
