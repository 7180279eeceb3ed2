"""How the command line names a log: a path, or a ``postgresql://`` URL.

A URL is kept as a `DatabaseURL`: a string whose value is the URL *without
its password* (what every message, ``--json`` field and progress line
shows), carrying the full URL in ``.dsn`` for the one place that connects.
A password given on the command line is therefore never printed back.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..log._postgres_names import describe_dsn, is_dsn

if TYPE_CHECKING:
    import click

__all__ = ["DatabaseURL", "LogName", "as_log_name", "log_name"]


class DatabaseURL(str):
    """A PostgreSQL log's URL, shown without its password; ``.dsn`` is the whole URL."""

    dsn: str

    def __new__(cls, dsn: str) -> DatabaseURL:
        shown = super().__new__(cls, describe_dsn(dsn))
        shown.dsn = dsn
        return shown

    @property
    def name(self) -> str:
        """What names the log in a title (a file's name, for a path)."""
        return str(self)


LogName = Path | DatabaseURL


def log_name(value: str | Path) -> LogName:
    """``value`` as a log's name: a `DatabaseURL` for a ``postgresql://`` URL, else a path."""
    if isinstance(value, DatabaseURL | Path):
        return value
    if is_dsn(value):
        return DatabaseURL(value)
    return Path(value)


def as_log_name(context: click.Context, parameter: click.Parameter, value: Any) -> Any:
    """The click callback of a ``LOG`` argument or ``--log`` option: `log_name`."""
    return None if value is None else log_name(value)
