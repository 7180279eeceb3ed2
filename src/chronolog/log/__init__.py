"""Event logs: the one source of truth, and its backends.

Every backend implements `EventLog` and passes the same contract test-suite:

* `MemoryLog` -- a list in memory, for tests and simulations;
* `FileLog` -- one JSON Lines file with an exclusive lock: the embedded default.
"""

from ._base import EventLog as EventLog
from .file import FileLog as FileLog
from .memory import MemoryLog as MemoryLog

__all__ = ["EventLog", "FileLog", "MemoryLog"]
