"""Event logs: the one source of truth, and its backends.

Every backend implements `EventLog` and passes the same contract test-suite:

* `MemoryLog` -- a list in memory, for tests and simulations;
* `FileLog` -- one JSON Lines file with an exclusive lock: the embedded default;
* `SQLiteLog` -- one SQLite database in WAL mode, with the same lock.
"""

from ._base import EventLog as EventLog
from .file import FileLog as FileLog
from .memory import MemoryLog as MemoryLog
from .sqlite import SQLiteLog as SQLiteLog

__all__ = ["EventLog", "FileLog", "MemoryLog", "SQLiteLog"]
