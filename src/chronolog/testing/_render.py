"""Tables for the harness: ``str(timeline)`` and the lists in assertion messages.

The words themselves (instants, triggers, records) are the core's
(`chronolog._words`), the same as the command line's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

__all__ = ["seq_list", "table"]


def seq_list(seqs: Sequence[int], limit: int = 6) -> str:
    """``3,7,8`` -- or the first few and a count when there are many."""
    if len(seqs) <= limit:
        return ",".join(map(str, seqs))
    head = ",".join(map(str, seqs[: limit - 1]))
    return f"{head},…{seqs[-1]} ({len(seqs)})"


def table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Left-aligned columns, two spaces apart; trailing spaces trimmed."""
    materialised = [list(headers), *(list(row) for row in rows)]
    widths = [max(len(row[column]) for row in materialised) for column in range(len(headers))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in materialised
    ]
    return "\n".join(lines)
