"""The log schema: every fact chronolog records, and its one codec.

Events are frozen msgspec Structs in one tagged union. The ``type`` tag is
written out explicitly on every class, so renaming a class can never orphan a
record already on disk. New fields must get defaults so old logs stay
readable; unknown fields are ignored on decode, so a newer minor version can
add fields without breaking an older reader.

A *record* is an event as stored: the log assigns ``seq`` (strictly
increasing) when it appends. An event that has not been appended yet has
``seq == 0``.
"""

from __future__ import annotations

import enum
import hashlib
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, Final

import msgspec

from ._policies import Policy
from ._triggers import Trigger

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = [
    "CHECKSUM_VERSION",
    "COMPACTED_LOG_VERSION",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "FULL_LOG_VERSION",
    "Completed",
    "Event",
    "EventBase",
    "Failed",
    "Header",
    "Scheduled",
    "SkipReason",
    "Skipped",
    "Started",
    "TaskDefined",
    "TaskPaused",
    "TaskRemoved",
    "TaskResumed",
    "decode_event",
    "decode_header",
    "decode_lines",
    "encode_event",
    "encode_header",
    "encode_lines",
    "encode_record_into",
    "event_to_builtins",
]

FORMAT_NAME: Final = "chronolog"
#: The newest format version this code reads, and the one it writes:
#:
#: 1. every record since seq 1, one per line after the header;
#: 2. a compacted log: the header names a base snapshot (the fold of the
#:    records up to ``base_seq``, which are gone) stored on the line after it;
#: 3. either of those, with a checksum chain: every record carries the CRC-32
#:    of the log up to it (see ``chronolog.log._checksum``), and a compacted
#:    log's header names the value the chain goes on from after its base.
#:
#: Logs of versions 1 and 2 are read as they are; opening one to write
#: upgrades it to version 3 first (see docs/reference/logs.md).
FORMAT_VERSION: Final = 3
#: The version of a log that holds every record since the first (no checksums).
FULL_LOG_VERSION: Final = 1
#: The version of a log that starts with a base snapshot (no checksums).
COMPACTED_LOG_VERSION: Final = 2
#: The first version whose records carry checksums: the one written today.
CHECKSUM_VERSION: Final = 3

#: A timezone-aware datetime; naive ones are rejected when a record is decoded.
AwareDatetime = Annotated[datetime, msgspec.Meta(tz=True)]


class SkipReason(enum.StrEnum):
    """Why an occurrence will not run."""

    OVERLAP = "overlap"
    PAUSED = "paused"
    MISSED = "missed"
    REMOVED = "removed"
    REDEFINED = "redefined"
    CANCELLED = "cancelled"
    """``cancel()`` (or ``remove()``, or ``REPLACE``) stopped a retry that was waiting."""


class EventBase(
    msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, tag_field="type", gc=False
):
    """Fields every event has. ``at`` is when it was recorded (UTC)."""

    seq: int = 0
    task: str
    at: AwareDatetime


class TaskDefined(EventBase, frozen=True, kw_only=True, tag="TaskDefined"):
    """A task was created, or its definition changed (``version`` counts changes)."""

    trigger: Trigger
    target: str
    policy: Policy = Policy()
    version: int = 1


class TaskRemoved(EventBase, frozen=True, kw_only=True, tag="TaskRemoved"):
    """The task was deleted; its pending occurrence is skipped. ``note``: why, and
    who asked (an agent's removals say ``mcp: ...``)."""

    note: str = ""


class TaskPaused(EventBase, frozen=True, kw_only=True, tag="TaskPaused"):
    """Nothing new is scheduled until ``TaskResumed``."""

    note: str = ""


class TaskResumed(EventBase, frozen=True, kw_only=True, tag="TaskResumed"):
    """Scheduling goes on from the resume, without catching up the pause."""

    note: str = ""


class Scheduled(EventBase, frozen=True, kw_only=True, tag="Scheduled"):
    """The task committed to an occurrence due at ``due``.

    ``content_hash`` is set for file-change occurrences: the hash of the
    content that triggered it, so a restart that finds the same content does
    not fire again.
    """

    occurrence: str
    due: AwareDatetime
    content_hash: str | None = None


class Started(EventBase, frozen=True, kw_only=True, tag="Started"):
    """A run began. This is the claim: written, and durable, before the run starts."""

    occurrence: str
    attempt: int
    node: str = ""


class Completed(EventBase, frozen=True, kw_only=True, tag="Completed"):
    """A run returned. ``result`` is its JSON-able value, cut to a configured size."""

    occurrence: str
    attempt: int
    duration: timedelta = timedelta(0)
    result: Any = None


class Failed(EventBase, frozen=True, kw_only=True, tag="Failed"):
    """A run raised, timed out, was cancelled or was interrupted.

    ``retry_at`` is set when another attempt is planned; without it the
    occurrence is settled.
    """

    occurrence: str
    attempt: int
    duration: timedelta = timedelta(0)
    error: str = ""
    error_type: str = ""
    traceback: str = ""
    retry_at: AwareDatetime | None = None


class Skipped(EventBase, frozen=True, kw_only=True, tag="Skipped"):
    """The occurrence will not run. ``due`` is given when it was never ``Scheduled``.

    One record may stand for a *range* of due times missed in one outage:
    ``occurrence`` is the first of them, ``due`` when it was due,
    ``last_due`` the last due time of the range and ``count`` how many due
    times of the trigger from ``due`` through ``last_due`` it settles (those
    that were neither open nor settled when it was written). A single skip
    has neither (``count`` is 1), so older records, and logs written before
    ranges existed, read as they always did: both fields are omitted when
    they hold their defaults.
    """

    occurrence: str
    reason: SkipReason
    due: AwareDatetime | None = None
    last_due: AwareDatetime | None = None
    count: int = 1

    @property
    def is_range(self) -> bool:
        """Whether this record stands for more than its first occurrence."""
        return self.last_due is not None


Event = (
    TaskDefined
    | TaskRemoved
    | TaskPaused
    | TaskResumed
    | Scheduled
    | Started
    | Completed
    | Failed
    | Skipped
)


class Header(msgspec.Struct, frozen=True, omit_defaults=True):
    """The first line of a JSON Lines log: which format, which version.

    A compacted log also names its base snapshot: the records up to
    ``base_seq`` are folded into it, and it fills the ``base_bytes`` bytes
    (newline included) after the header line, with SHA-256 ``base_sha256``.
    In version 3, ``chain`` is the running checksum (8 hex digits) that the
    first record after the base goes on from; absent, it is 0.
    """

    format: str
    version: int
    base_seq: int = 0
    base_bytes: int = 0
    base_sha256: str = ""
    chain: str = ""

    @property
    def checksums(self) -> bool:
        """Whether the records after this header carry checksums."""
        return self.version >= CHECKSUM_VERSION


_encoder: Final = msgspec.json.Encoder()
_event_decoder: Final[msgspec.json.Decoder[Event]] = msgspec.json.Decoder(Event)
_header_decoder: Final = msgspec.json.Decoder(Header)


def encode_event(event: Event) -> bytes:
    """One event as compact JSON (no trailing newline)."""
    return _encoder.encode(event)


def encode_lines(events: Iterable[Event]) -> bytes:
    """Events as JSON Lines, each terminated by a newline: one buffer, one write."""
    buffer = bytearray()
    for event in events:
        _encoder.encode_into(event, buffer, -1)
        buffer.extend(b"\n")
    return bytes(buffer)


def decode_lines(lines: bytes) -> list[Event]:
    """Decode complete JSON Lines at once (blank lines are skipped)."""
    try:
        return _event_decoder.decode_lines(lines)
    except UnicodeDecodeError as exc:
        raise _not_utf8(exc) from exc


def decode_event(line: bytes | str) -> Event:
    """Decode one record; raises ``msgspec.ValidationError``/``DecodeError`` when it is not one."""
    try:
        return _event_decoder.decode(line)
    except UnicodeDecodeError as exc:
        raise _not_utf8(exc) from exc


def _not_utf8(exc: UnicodeDecodeError) -> msgspec.DecodeError:
    # msgspec reports bytes that are not UTF-8 inside a string this way, not
    # as a DecodeError: readers must see it as the damage it is.
    return msgspec.DecodeError(f"JSON is malformed: {exc}")


def encode_header(
    *, checksums: bool = False, base_seq: int = 0, base: bytes = b"", chain: int = 0
) -> bytes:
    """The header line (with newline) that starts a JSON Lines log.

    With ``checksums`` (what `FileLog` writes), version 3: its records carry
    the checksum chain. Without, the header of a log whose records carry
    none: version 1, or version 2 for a compacted one (tests and tools that
    write such a file by hand use it; `FileLog` upgrades it when it opens
    it to write).

    With ``base``, the header of a compacted log whose base snapshot line
    (newline included) is ``base``, folding the records up to ``base_seq``;
    ``chain`` (version 3) is the running checksum the records after the base
    go on from.
    """
    if checksums:
        version = CHECKSUM_VERSION
    else:
        version = COMPACTED_LOG_VERSION if base else FULL_LOG_VERSION
    if not base:
        return _encoder.encode(Header(FORMAT_NAME, version)) + b"\n"
    header = Header(
        FORMAT_NAME,
        version,
        base_seq=base_seq,
        base_bytes=len(base),
        base_sha256=hashlib.sha256(base).hexdigest(),
        chain=f"{chain:08x}" if checksums else "",
    )
    return _encoder.encode(header) + b"\n"


def encode_record_into(event: Event, buffer: bytearray) -> None:
    """Append ``event``'s compact JSON to ``buffer`` (no newline)."""
    _encoder.encode_into(event, buffer, -1)


def decode_header(line: bytes | str) -> Header:
    """Decode a header line; raises ``msgspec`` errors when it is not one."""
    try:
        return _header_decoder.decode(line)
    except UnicodeDecodeError as exc:
        raise _not_utf8(exc) from exc


def event_to_builtins(event: Event) -> dict[str, Any]:
    """A record as plain JSON-able builtins (for ``--json`` output)."""
    result: dict[str, Any] = msgspec.to_builtins(event)
    return result
