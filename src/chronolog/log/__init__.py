"""Event logs: the one source of truth, and its backends.

Every backend implements `EventLog` and passes the same contract test-suite:

* `MemoryLog` -- a list in memory, for tests and simulations;
* `FileLog` -- one JSON Lines file with an exclusive lock: the embedded default;
* `SQLiteLog` -- one SQLite database in WAL mode, with the same lock;
* `PostgresLog` -- one PostgreSQL database, shared by several schedulers
  (needs the ``postgres`` extra: it is imported only when used).
"""

import typing as _typing

from ._base import EventLog as EventLog
from .file import FileLog as FileLog
from .memory import MemoryLog as MemoryLog
from .sqlite import SQLiteLog as SQLiteLog

__all__ = ["EventLog", "FileLog", "MemoryLog", "PostgresLog", "SQLiteLog"]


def __getattr__(name: str) -> _typing.Any:
    # Not cached in the module: `import chronolog.log` never needs psycopg.
    if name == "PostgresLog":
        from ._paths import postgres_log_class

        return postgres_log_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
