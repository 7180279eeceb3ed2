"""Every error chronolog raises on purpose, under one root.

Each class also derives from the builtin it resembles, so callers who already
catch ``ValueError`` or ``KeyError`` keep working, and each message says what
happened, the offending value, and what to do about it.
"""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = [
    "ChronologError",
    "ClaimConflict",
    "ConfigError",
    "DuplicateTask",
    "InvalidOccurrenceId",
    "InvalidTrigger",
    "LogChanged",
    "LogClosed",
    "LogCorrupted",
    "LogLocked",
    "LogRepaired",
    "SnapshotIgnored",
    "UnknownTask",
    "closest_match",
]


class ChronologError(Exception):
    """Root of every error chronolog raises on purpose."""


class InvalidTrigger(ChronologError, ValueError):
    """A trigger was given an expression, time zone or bound that cannot work."""


class UnknownTask(ChronologError, KeyError):
    """A task name that the scheduler or log does not know."""

    def __str__(self) -> str:
        # KeyError quotes its argument; a sentence reads better unquoted.
        return str(self.args[0]) if self.args else ""


class DuplicateTask(ChronologError, ValueError):
    """A task was added with ``if_exists="error"`` under a name already in use."""


class LogCorrupted(ChronologError, ValueError):
    """A log holds bytes that are not a valid record where a record must be (or
    that do not match their checksum, or a record is missing) -- or, for a
    writer, records that break a rule of the log."""


class LogLocked(ChronologError, RuntimeError):
    """Another process holds the log open for writing."""


class LogClosed(ChronologError, RuntimeError):
    """An append or read reached a log that has already been closed."""


class ClaimConflict(ChronologError, RuntimeError):
    """A ``Started`` record for an (occurrence, attempt) that already has one."""


class ConfigError(ChronologError, ValueError):
    """A job file or command-line option that cannot be turned into a task."""


class InvalidOccurrenceId(ChronologError, ValueError):
    """Text that is not the id of an occurrence of the task it names (says why)."""


class LogChanged(ChronologError, RuntimeError):
    """A log was compacted while it was being read: read it again."""


class LogRepaired(UserWarning):
    """A torn final record was cut off a log on open (and kept beside it)."""


class SnapshotIgnored(UserWarning):
    """A log's snapshot was damaged or belongs to another log, so it was not used:
    the log was replayed from its base instead (slower, never a wrong state)."""


def closest_match(word: str, choices: Iterable[str]) -> str | None:
    """The choice that looks most like ``word``, for "did you mean" hints."""
    candidates = list(choices)
    matches = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    if not matches:
        lowered = {choice.lower(): choice for choice in candidates}
        matches = [
            lowered[m] for m in difflib.get_close_matches(word.lower(), lowered, n=1, cutoff=0.6)
        ]
    return matches[0] if matches else None
