"""How a PostgreSQL log is named: a URL, told apart from a path without psycopg.

Kept apart from ``_postgres_connection`` so that every entry point can ask
"is this a DSN?" without importing psycopg (an optional dependency).
"""

from __future__ import annotations

from typing import Final
from urllib.parse import urlsplit, urlunsplit

__all__ = ["POSTGRES_SCHEMES", "describe_dsn", "is_dsn"]

#: How a DSN that names a PostgreSQL log begins (libpq accepts both).
POSTGRES_SCHEMES: Final = ("postgresql://", "postgres://")


def is_dsn(text: object) -> bool:
    """Whether ``text`` is a PostgreSQL URL (``postgresql://...`` or ``postgres://...``)."""
    return isinstance(text, str) and text.startswith(POSTGRES_SCHEMES)


def describe_dsn(dsn: str) -> str:
    """``dsn`` as messages may show it: the same URL without its password (in the
    user part or as a ``password=`` parameter), so no output ever carries it."""
    parts = urlsplit(dsn)
    userinfo, at, hostport = parts.netloc.rpartition("@")
    netloc = f"{userinfo.split(':', 1)[0]}@{hostport}" if at else parts.netloc
    query = "&".join(
        item
        for item in parts.query.split("&")
        if item and not item.lower().startswith("password=")
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))
