"""Occurrence ids: deterministic names for "this run of this task".

Two computations of the same occurrence -- before and after a restart, or on
two nodes -- must produce the same id, because the id is what de-duplication
compares. The separator after the task name tells the kind:

* ``task@2026-11-01T05:30:00Z`` -- a time-based occurrence (``Cron``, ``Every``,
  ``At``); the suffix is the due instant in UTC.
* ``task#<hash>`` -- a file change. The hash chains the previous change's id
  with the new content hash, so A->B->A->B fires three times (each link of the
  chain is new) while a restart that sees unchanged content fires never.
* ``task!<token>`` -- a manual run; the token is random, so an intentional
  repeat is never de-duplicated.
"""

from __future__ import annotations

import enum
import hashlib
import secrets
from datetime import UTC, datetime, timedelta

from ._errors import ConfigError, InvalidOccurrenceId

__all__ = [
    "OccurrenceKind",
    "canonical_occurrence",
    "content_hash",
    "content_hasher",
    "file_change_occurrence",
    "jitter_for",
    "manual_occurrence",
    "occurrence_kind",
    "time_occurrence",
    "validate_task_name",
]

_MAX_TASK_NAME = 200


class OccurrenceKind(enum.Enum):
    TIME = "@"
    FILE_CHANGE = "#"
    MANUAL = "!"


def validate_task_name(name: object) -> str:
    """Return ``name`` if it can name a task, else raise ``ConfigError`` saying why."""
    if not isinstance(name, str):
        raise ConfigError(f"a task name must be a string, got {type(name).__name__} {name!r}")
    if not name or name != name.strip():
        raise ConfigError(
            f"task name {name!r} is empty or has leading/trailing spaces; use e.g. 'backup'"
        )
    if len(name) > _MAX_TASK_NAME:
        raise ConfigError(
            f"task name is {len(name)} characters long; the limit is {_MAX_TASK_NAME}"
        )
    if not name.isprintable():
        raise ConfigError(f"task name {name!r} contains control characters; use printable text")
    return name


def _utc_iso(when: datetime) -> str:
    if when.tzinfo is not UTC:
        if when.tzinfo is None:
            raise ValueError(f"occurrence due time must be timezone-aware, got naive {when!r}")
        when = when.astimezone(UTC)
    # Due times are UTC almost always: cut "+00:00" rather than convert.
    return when.isoformat()[:-6] + "Z"


def time_occurrence(task: str, due: datetime) -> str:
    """The id of the time-based occurrence of ``task`` due at ``due`` (aware).

    ``"{task}@{due in UTC, ISO 8601}"``: every process that computes it for
    the same task and instant gets the same id, so the log recognises the
    occurrence whoever asks (public as `chronolog.occurrence_id`).
    """
    return f"{task}@{_utc_iso(due)}"


def content_hasher() -> hashlib._Hash:
    """A fresh hasher for :func:`content_hash`, to feed a large file chunk by chunk."""
    return hashlib.sha256()


def content_hash(content: bytes) -> str:
    """A stable hash of a file's content (hex SHA-256)."""
    hasher = content_hasher()
    hasher.update(content)
    return hasher.hexdigest()


def file_change_occurrence(task: str, previous: str | None, new_content_hash: str) -> str:
    """The id of a file change: a link in the chain of this task's changes.

    ``previous`` is the id of the task's previous file-change occurrence
    (``None`` for the first), so equal content seen again later is a new link.
    """
    link = hashlib.sha256(f"{previous or ''}\0{new_content_hash}".encode()).hexdigest()
    return f"{task}#{link[:24]}"


def manual_occurrence(task: str, token: str | None = None) -> str:
    """The id of a manual run; ``token`` defaults to a fresh random one."""
    return f"{task}!{token if token is not None else secrets.token_hex(8)}"


def occurrence_kind(task: str, occurrence: str) -> OccurrenceKind:
    """Which kind of occurrence ``occurrence`` (of ``task``) is.

    Task names may contain ``@``, ``#`` or ``!`` themselves, so the kind is
    read from the character right after the task name, not by searching.
    """
    if not occurrence.startswith(task) or len(occurrence) <= len(task):
        raise ValueError(f"occurrence {occurrence!r} does not belong to task {task!r}")
    return OccurrenceKind(occurrence[len(task)])


def jitter_for(occurrence: str, jitter: timedelta) -> timedelta:
    """A delay in ``[0, jitter)`` derived from the occurrence id.

    Spreads load like random jitter, yet a replay or a second node computes
    the same delay for the same occurrence: there is no hidden randomness.
    """
    if jitter <= timedelta(0):
        return timedelta(0)
    digest = hashlib.blake2b(occurrence.encode(), digest_size=8).digest()
    fraction = int.from_bytes(digest, "big") / 2**64
    microseconds = int(fraction * (jitter // timedelta(microseconds=1)))
    return timedelta(microseconds=microseconds)


def canonical_occurrence(task: str, occurrence: str) -> str:
    """``occurrence`` (an id of ``task``) spelled as the log spells it.

    A time-based id may be written with any ISO 8601 spelling of its due
    instant: ``backup@2026-03-29T01:00Z`` and ``backup@2026-03-29T03:00:00+02:00``
    both are ``backup@2026-03-29T01:00:00Z``. File-change (``#``) and manual
    (``!``) ids are kept as they are. Raises `InvalidOccurrenceId` for
    anything that is no id: a time that does not parse or has no UTC offset,
    nothing after the ``@``, ``#`` or ``!``.
    """
    mark, rest = occurrence[len(task)], occurrence[len(task) + 1 :]
    shape = (
        f"an occurrence id of {task!r} is {task}@ and its due time, an ISO 8601 time with a "
        f"UTC offset or Z (e.g. '{task}@2026-03-29T01:00:00Z'), {task}# and the hash of a file "
        f"change, or {task}! and the token of a manual run; list them with: chronolog "
        f"history LOG {task}"
    )
    if mark != "@":
        if not rest or not rest.isprintable() or any(char.isspace() for char in rest):
            raise InvalidOccurrenceId(f"{occurrence!r} is not an occurrence id: {shape}")
        return occurrence
    try:
        due = datetime.fromisoformat(rest)
    except ValueError:
        raise InvalidOccurrenceId(
            f"{occurrence!r} is not an occurrence id: {rest!r} is not a time; {shape}"
        ) from None
    if due.tzinfo is None or due.utcoffset() is None:
        raise InvalidOccurrenceId(
            f"{occurrence!r} is not an occurrence id: its time has no UTC offset, and "
            f"chronolog never guesses one; {shape}"
        )
    try:
        return time_occurrence(task, due)
    except OverflowError:
        raise InvalidOccurrenceId(
            f"{occurrence!r} is not an occurrence id: its time is outside the years 1-9999 "
            f"in UTC; {shape}"
        ) from None
