"""Snapshots: a `State` as a versioned, self-describing JSON document, and back.

A snapshot lets a log be opened without folding its whole history: the
newest snapshot plus the records after it replay to the same `State` as
every record from the first. It is also the *base* of a compacted log, whose
records before the snapshot are gone.

The document holds everything the fold keeps -- per task the definition in
force, pause state, origin, watermark, the occurrences skipped ahead of time,
the open occurrences (in order), the window of settled runs, the counters,
the last start and finish, the file-change chain -- plus the retired tasks,
the ``seq`` and the history limit. Records inside it use the log's own codec,
so the document is as readable as the log without user code::

    {"format": "chronolog-snapshot", "version": 1, "seq": 1042,
     "history_limit": 100, "tasks": [...], "retired": [...]}

``decode_state(encode_state(state)) == state`` for every state the fold can
reach; a property test checks it at every prefix of generated logs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import msgspec

from ._events import AwareDatetime, Completed, Event, Failed, Scheduled, Started, TaskDefined
from ._projection import RetiredMemory, State, StateMemory, TaskMemory

if TYPE_CHECKING:
    from ._views import OccurrenceRecords, SettledRecords

__all__ = [
    "SNAPSHOT_FORMAT",
    "SNAPSHOT_VERSION",
    "SnapshotInfo",
    "SnapshotInvalid",
    "decode_state",
    "encode_state",
    "snapshot_info",
]

SNAPSHOT_FORMAT: Final = "chronolog-snapshot"
#: The newest document version this code writes and reads.
SNAPSHOT_VERSION: Final = 1


class SnapshotInvalid(ValueError):
    """Bytes that are not a snapshot document this version can read.

    Not a public error: a log that meets a damaged snapshot ignores it (with
    a `SnapshotIgnored` warning) or, for the base of a compacted log, raises
    `LogCorrupted`.
    """


class _Entry(msgspec.Struct, frozen=True, omit_defaults=True, forbid_unknown_fields=True):
    """An open occurrence, or the open part of a settled one.

    ``last`` is left out when it is the latest of ``first_start`` and
    ``scheduled`` -- the common case -- so a run costs each record once.
    """

    scheduled: Scheduled | None = None
    first_start: Started | None = None
    last: Event | None = None


class _OpenDocument(msgspec.Struct, frozen=True, omit_defaults=True, forbid_unknown_fields=True):
    occurrence: str
    entry: _Entry


class _SettledDocument(
    msgspec.Struct, frozen=True, omit_defaults=True, forbid_unknown_fields=True
):
    occurrence: str
    final: Event
    entry: _Entry | None = None


class _TaskDocument(msgspec.Struct, frozen=True, omit_defaults=True, forbid_unknown_fields=True):
    definition: TaskDefined
    origin: AwareDatetime
    paused: bool = False
    note: str = ""
    watermark: AwareDatetime | None = None
    ahead: dict[str, AwareDatetime] = {}
    open: list[_OpenDocument] = []
    history: list[_SettledDocument] = []
    run_count: int = 0
    error_count: int = 0
    skip_count: int = 0
    last_start: Started | None = None
    last_finish: Completed | Failed | None = None
    last_change: str | None = None
    last_content_hash: str | None = None


class _Retired(msgspec.Struct, frozen=True, omit_defaults=True, forbid_unknown_fields=True):
    task: str
    watermark: AwareDatetime | None = None
    ahead: dict[str, AwareDatetime] = {}
    last_change: str | None = None
    last_content_hash: str | None = None


class _Document(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    format: str
    version: int
    seq: int
    history_limit: int
    tasks: list[_TaskDocument]
    retired: list[_Retired]


class SnapshotInfo(msgspec.Struct, frozen=True):
    """The first fields of any snapshot document, of any version."""

    format: str
    version: int
    seq: int = 0
    history_limit: int = 0


_encoder: Final = msgspec.json.Encoder()
_decoder: Final = msgspec.json.Decoder(_Document)
_info_decoder: Final = msgspec.json.Decoder(SnapshotInfo)


def _entry_document(entry: OccurrenceRecords) -> _Entry:
    scheduled, first_start, last = entry
    implied = first_start if first_start is not None else scheduled
    return _Entry(
        scheduled=scheduled, first_start=first_start, last=None if last == implied else last
    )


def _entry(document: _Entry) -> OccurrenceRecords:
    scheduled, first_start = document.scheduled, document.first_start
    last = document.last
    if last is None:
        last = first_start if first_start is not None else scheduled
        if last is None:
            raise SnapshotInvalid("an occurrence in the snapshot has no record at all")
    return (scheduled, first_start, last)


def encode_state(state: State) -> bytes:
    """``state`` as one JSON document (no newline inside, none at the end)."""
    memory = state.memory()
    tasks = [
        _TaskDocument(
            definition=task.definition,
            origin=task.origin,
            paused=task.paused,
            note=task.note,
            watermark=task.watermark,
            ahead=dict(task.ahead),
            open=[
                _OpenDocument(occurrence, _entry_document(entry))
                for occurrence, entry in task.open.items()
            ],
            history=[_settled_document(item) for item in task.history],
            run_count=task.run_count,
            error_count=task.error_count,
            skip_count=task.skip_count,
            last_start=task.last_start,
            last_finish=task.last_finish,
            last_change=task.last_change,
            last_content_hash=task.last_content_hash,
        )
        for task in memory.tasks
    ]
    retired = [
        _Retired(
            task=kept.task,
            watermark=kept.watermark,
            ahead=dict(kept.ahead),
            last_change=kept.last_change,
            last_content_hash=kept.last_content_hash,
        )
        for kept in memory.retired
    ]
    document = _Document(
        format=SNAPSHOT_FORMAT,
        version=SNAPSHOT_VERSION,
        seq=memory.seq,
        history_limit=memory.history_limit,
        tasks=tasks,
        retired=retired,
    )
    return _encoder.encode(document)


def _settled_document(item: SettledRecords) -> _SettledDocument:
    occurrence, entry, final = item
    return _SettledDocument(
        occurrence=occurrence,
        final=final,
        entry=_entry_document(entry) if entry is not None else None,
    )


def snapshot_info(data: bytes) -> SnapshotInfo:
    """The format, version, ``seq`` and history limit of snapshot ``data``.

    Cheap next to `decode_state` (it skips the tasks); raises
    `SnapshotInvalid` when ``data`` is not a snapshot document of a version
    this code reads.
    """
    try:
        info = _info_decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise SnapshotInvalid(f"not a snapshot document ({exc})") from exc
    if info.format != SNAPSHOT_FORMAT:
        raise SnapshotInvalid(f"not a snapshot document (format {info.format!r})")
    if info.version > SNAPSHOT_VERSION or info.version < 1:
        raise SnapshotInvalid(
            f"snapshot document version {info.version}; this chronolog reads version "
            f"{SNAPSHOT_VERSION} -- upgrade chronolog to read it"
        )
    return info


def decode_state(
    data: bytes, *, history_limit: int | None = None, whole_history: bool = True
) -> State:
    """The `State` that `encode_state` wrote into ``data``.

    ``history_limit`` (default: the snapshot's own) may be lower than the
    snapshot's: each task keeps the newest runs of its window, exactly what
    a replay with that limit keeps. A higher one raises `SnapshotInvalid`
    -- the older runs it would need are not in the snapshot -- unless
    ``whole_history=False`` accepts a shorter window (the base of a
    compacted log, whose older runs are gone anyway). Raises
    `SnapshotInvalid` for anything that is not a snapshot document this
    version reads.
    """
    snapshot_info(data)
    try:
        document = _decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise SnapshotInvalid(f"damaged snapshot document ({exc})") from exc
    if document.history_limit < 1 or document.seq < 0:
        raise SnapshotInvalid(
            f"damaged snapshot document (seq {document.seq}, history limit "
            f"{document.history_limit})"
        )
    limit = document.history_limit if history_limit is None else history_limit
    if limit > document.history_limit and whole_history:
        raise SnapshotInvalid(
            f"the snapshot keeps {document.history_limit} runs per task, fewer than the "
            f"{limit} asked for"
        )
    memory = StateMemory(
        seq=document.seq,
        history_limit=document.history_limit,
        tasks=[_task_memory(task) for task in document.tasks],
        retired=[
            RetiredMemory(
                kept.task, kept.watermark, kept.ahead, kept.last_change, kept.last_content_hash
            )
            for kept in document.retired
        ],
    )
    try:
        return State.from_memory(memory, history_limit=limit)
    except ValueError as exc:
        raise SnapshotInvalid(f"damaged snapshot document ({exc})") from None


def _task_memory(document: _TaskDocument) -> TaskMemory:
    return TaskMemory(
        definition=document.definition,
        origin=document.origin,
        paused=document.paused,
        note=document.note,
        watermark=document.watermark,
        ahead=document.ahead,
        open={item.occurrence: _entry(item.entry) for item in document.open},
        history=[
            (item.occurrence, _entry(item.entry) if item.entry is not None else None, item.final)
            for item in document.history
        ],
        run_count=document.run_count,
        error_count=document.error_count,
        skip_count=document.skip_count,
        last_start=document.last_start,
        last_finish=document.last_finish,
        last_change=document.last_change,
        last_content_hash=document.last_content_hash,
    )
