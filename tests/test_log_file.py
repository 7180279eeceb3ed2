"""FileLog: the shared contract, plus the file format, lock, repair and damage."""

# The tests prepare and inspect small files with plain blocking calls: blocking
# the test's own event loop for a moment is harmless, and it keeps them readable.
# ruff: noqa: ASYNC240

from __future__ import annotations

import errno
import logging
import os
import re
import subprocess
import sys
import textwrap
import threading
import zlib
from contextlib import aclosing, contextmanager
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec
import pytest
import trio
import trio.testing

from chronolog._errors import LogClosed, LogCorrupted, LogLocked, LogRepaired
from chronolog._events import Event, decode_event, encode_header, encode_lines
from chronolog.log import FileLog
from chronolog.log import _file_cursor as cursor_module
from chronolog.log._checksum import TAIL_BYTES, line_crc, unsealed

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

from .log_contract import (
    MakeLog,
    PersistentEventLogContract,
    collect,
    one_of_each_event,
    sample_events,
)

HEADER = encode_header(checksums=True)
#: The longest any test here waits for another thread, in seconds: a wait
#: that cannot end fails the test instead of hanging the suite.
PATIENCE = 30.0


class TestFileLog(PersistentEventLogContract):
    @pytest.fixture
    def make_log(self, tmp_path: Path) -> MakeLog:
        return lambda: FileLog(tmp_path / "jobs.jsonl", poll_interval=timedelta(milliseconds=10))


class TestFileLogWithoutFsync(PersistentEventLogContract):
    @pytest.fixture
    def make_log(self, tmp_path: Path) -> MakeLog:
        return lambda: FileLog(tmp_path / "jobs.jsonl", fsync=False)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "jobs.jsonl"


@pytest.fixture
def store_format_version(path: Path) -> Callable[[int], None]:
    """For the contract's version checks: rewrite the header with another version."""

    def store(version: int) -> None:
        lines = lines_of(path)
        lines[0] = b'{"format":"chronolog","version":%d}\n' % version
        write_lines(path, lines)

    return store


async def write_log(path: Path, *batches: int) -> list[Event]:
    """A log at ``path`` holding batches of sample events of the given sizes."""
    records: list[Event] = []
    async with FileLog(path) as log:
        for size in batches:
            records += await log.append(sample_events(size))
    return records


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def write_lines(path: Path, lines: list[bytes]) -> None:
    path.write_bytes(b"".join(lines))


# -- the file format ---------------------------------------------------------


async def test_a_new_log_holds_just_the_header(path: Path) -> None:
    async with FileLog(path):
        pass
    assert path.read_bytes() == HEADER == b'{"format":"chronolog","version":3}\n'


async def test_each_record_is_one_json_line_that_ends_with_its_checksum(path: Path) -> None:
    records = await write_log(path, 1, 1, 1)
    lines = lines_of(path)[1:]
    assert [unsealed(line) + b"\n" for line in lines] == [
        encode_lines([record]) for record in records
    ]
    assert [decode_event(line) for line in lines] == records
    # The checksum is the last field of the JSON object: jq and friends read it.
    assert all(re.fullmatch(rb'\{.*,"crc":"[0-9a-f]{8}"\}\n', line) for line in lines)
    # Each line's checksum is the CRC-32 of every record byte up to its own field.
    content = path.read_bytes()[len(HEADER) :]
    for line in lines:
        end = content.index(line) + len(line) - TAIL_BYTES
        assert line_crc(line) == zlib.crc32(content[:end])


async def test_a_batch_is_framed_by_leading_spaces(path: Path) -> None:
    """Every line of a batch but its last starts with a space: the batch goes on."""
    records = await write_log(path, 3)
    lines = lines_of(path)[1:]
    assert [unsealed(line) + b"\n" for line in lines] == [
        b" " + encode_lines([records[0]]),
        b" " + encode_lines([records[1]]),
        encode_lines([records[2]]),
    ]
    assert [decode_event(line) for line in lines] == records


@pytest.mark.parametrize("missing", [1, 2])
async def test_a_batch_without_its_last_lines_is_dropped_whole(path: Path, missing: int) -> None:
    """A crash between the lines of one write leaves complete lines of an
    unfinished batch: appends are atomic, so none of them is kept."""
    first = await write_log(path, 2, 1)
    async with FileLog(path) as log:
        await log.append(sample_events(3))
    lines = lines_of(path)
    kept_tail = b"".join(lines[-3:-missing])
    write_lines(path, lines[:-missing])
    assert list(FileLog(path).read()) == first  # readers never see half a batch
    with pytest.warns(LogRepaired, match="torn batch"):
        log = await FileLog(path).open()
    async with log:
        assert log.last_seq == first[-1].seq
        assert list(log.read()) == first
    (kept,) = path.parent.glob("jobs.jsonl.torn-*")
    assert kept.read_bytes() == kept_tail


async def test_the_log_is_private_to_its_owner(path: Path) -> None:
    async with FileLog(path):
        pass
    assert path.stat().st_mode & 0o077 == 0


async def test_last_seq_without_opening(path: Path) -> None:
    records = await write_log(path, 4)
    assert FileLog(path).last_seq == records[-1].seq
    path.write_bytes(path.read_bytes() + b'{"type":"Sta')  # a write in progress
    assert FileLog(path).last_seq == records[-1].seq


async def test_last_seq_of_an_empty_or_half_created_log(path: Path) -> None:
    path.write_bytes(b"")
    assert FileLog(path).last_seq == 0
    path.write_bytes(HEADER[:5])
    assert FileLog(path).last_seq == 0
    path.write_bytes(HEADER)
    assert FileLog(path).last_seq == 0


async def test_appending_before_opening_is_an_error(path: Path) -> None:
    with pytest.raises(LogClosed, match="not open for writing"):
        await FileLog(path).append(sample_events(1))


async def test_opening_twice_is_an_error(path: Path) -> None:
    async with FileLog(path) as log:
        with pytest.raises(RuntimeError, match="already open"):
            await log.open()
    with pytest.raises(LogClosed, match="create a new FileLog"):
        await log.open()


def test_poll_interval_must_be_positive(path: Path) -> None:
    with pytest.raises(ValueError, match="poll_interval must be a positive duration"):
        FileLog(path, poll_interval=timedelta(0))


# -- not a chronolog log -------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        b"hello\n",
        b"hello",
        b"\x00\x01\x02 binary",
        b"[1, 2]\n",
        b'{"format":"other","version":1}\n',
        b'{"format":"chronolog","version":0}\n',
        encode_lines(sample_events(1)),  # records without a header
        b"x" * 100_000,
    ],
)
async def test_a_file_that_is_not_a_log_is_refused(path: Path, content: bytes) -> None:
    path.write_bytes(content)
    with pytest.raises(LogCorrupted, match="is not a chronolog log"):
        await FileLog(path).open()
    with pytest.raises(LogCorrupted, match="is not a chronolog log"):
        list(FileLog(path).read())
    assert path.read_bytes() == content  # nothing "repaired"
    # ... and the failed open released the lock.
    assert not FileLog(path).lock_path.read_bytes()


async def test_a_newer_format_version_asks_for_an_upgrade(path: Path) -> None:
    path.write_bytes(b'{"format":"chronolog","version":4}\n')
    message = (
        "written by format version 4; this chronolog reads versions 1 to 3 -- upgrade chronolog"
    )
    with pytest.raises(LogCorrupted, match=message):
        await FileLog(path).open()
    with pytest.raises(LogCorrupted, match=message):
        list(FileLog(path).read())


# -- the lock ----------------------------------------------------------------


async def test_the_lock_file_names_the_writer(path: Path) -> None:
    async with FileLog(path) as log:
        holder = msgspec.json.decode(log.lock_path.read_bytes())
        assert holder["pid"] == os.getpid()
        assert holder["host"]
    assert log.lock_path.read_bytes() == b""


async def test_a_second_writer_in_the_same_process_is_refused(path: Path) -> None:
    async with FileLog(path) as log:
        records = await log.append(sample_events(1))
        with pytest.raises(LogLocked) as caught:
            await FileLog(path).open()
        assert f"jobs.jsonl is locked by process {os.getpid()} on host" in str(caught.value)
        assert "this process" in str(caught.value)
        # The refused writer changed nothing.
        assert list(log.read()) == records
    async with FileLog(path) as log:  # released on close
        assert log.last_seq == records[-1].seq


HOLDER_SCRIPT = textwrap.dedent(
    """
    import sys, trio
    from chronolog.log import FileLog

    async def main():
        async with FileLog(sys.argv[1]) as log:
            await log.append([])
            print("ready", flush=True)
            await trio.to_thread.run_sync(sys.stdin.read)

    trio.run(main)
    """
)


@contextmanager
def holder_process(path: Path) -> Iterator[subprocess.Popen[str]]:
    """Another Python process that holds ``path`` open for writing until stdin closes."""
    with subprocess.Popen(
        [sys.executable, "-c", HOLDER_SCRIPT, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as process:
        assert process.stdout is not None
        assert process.stdout.readline() == "ready\n"
        try:
            yield process
        finally:
            process.kill()


def try_open(path: Path) -> None:
    async def main() -> None:
        async with FileLog(path):
            pass

    trio.run(main)


def test_a_writer_in_another_process_is_named(path: Path) -> None:
    with holder_process(path) as holder:
        with pytest.raises(LogLocked, match=rf"locked by process {holder.pid} on host .*; stop"):
            try_open(path)
        assert FileLog(path).last_seq == 0  # reading needs no lock
        assert holder.stdin is not None
        holder.stdin.close()
        assert holder.wait(timeout=30) == 0
    try_open(path)


def test_the_lock_dies_with_its_process(path: Path) -> None:
    with holder_process(path) as holder:
        holder.kill()
        holder.wait(timeout=30)
        try_open(path)  # no stale lock to clean up


# -- torn final line -----------------------------------------------------------


async def test_a_torn_final_line_is_cut_and_kept(
    path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    records = await write_log(path, 3)
    intact = path.read_bytes()
    torn = encode_lines(sample_events(1))[:20]
    path.write_bytes(intact + torn)
    # A reader just stops before the torn bytes, and changes nothing.
    assert list(FileLog(path).read()) == records
    assert path.read_bytes() == intact + torn

    with (
        caplog.at_level(logging.WARNING, logger="chronolog.log"),
        pytest.warns(LogRepaired, match=rf"20 bytes after byte offset {len(intact)}"),
    ):
        log = await FileLog(path).open()
    async with log:
        assert path.read_bytes() == intact
        assert log.last_seq == records[-1].seq
        kept = path.with_name(f"jobs.jsonl.torn-{len(intact)}")
        assert kept.read_bytes() == torn
        assert str(kept) in caplog.text
        more = await log.append(sample_events(1))
        assert more[0].seq == records[-1].seq + 1
    assert list(FileLog(path).read()) == records + more


async def test_a_cut_at_any_byte_of_the_last_record_is_repaired(path: Path) -> None:
    records = await write_log(path, 2, 1)
    whole = path.read_bytes()
    last_start = whole.rindex(b"\n", 0, len(whole) - 1) + 1
    for cut in range(last_start, len(whole)):
        path.write_bytes(whole[:cut])
        if cut == last_start:
            log = await FileLog(path).open()  # ends at a line: nothing to repair
        else:
            with pytest.warns(LogRepaired):
                log = await FileLog(path).open()
        async with log:
            assert log.last_seq == records[-2].seq
            assert list(log.read()) == records[:-1]
            assert path.read_bytes() == whole[:last_start]
            assert (await log.append(sample_events(1)))[0].seq == records[-1].seq
        assert [r.seq for r in FileLog(path).read()] == [r.seq for r in records]


async def test_a_cut_inside_the_header_is_repaired(path: Path) -> None:
    for cut in range(len(HEADER)):
        path.write_bytes(HEADER[:cut])
        assert list(FileLog(path).read()) == []
        if cut == 0:
            log = await FileLog(path).open()
        else:
            with pytest.warns(LogRepaired, match=f"{cut} bytes after byte offset 0"):
                log = await FileLog(path).open()
        async with log:
            assert path.read_bytes() == HEADER
            assert log.last_seq == 0


async def test_records_merged_into_the_header_are_reported_not_dropped(path: Path) -> None:
    """Found by the corruption fuzzer: cutting the bytes from inside the header
    to inside the first record's seq leaves one line that decodes as a header
    (``{"format":"chronolog","version":1,"task":...}``) and no record at all."""
    await write_log(path, 1)
    intact = path.read_bytes()
    start = intact.index(b'":3}')  # after the header's "version" key
    end = intact.index(b'"seq"') + len(b'"seq')  # the first record's seq value follows
    damaged = intact[:start] + intact[end:]
    assert damaged.startswith(b'{"format":"chronolog","version":1,"task"')
    path.write_bytes(damaged)
    for read in (lambda: list(FileLog(path).read()), lambda: FileLog(path).load_state()):
        with pytest.raises(LogCorrupted, match=r"line 1 is a header with keys .*task"):
            read()
    with pytest.raises(LogCorrupted, match="records merged into its header"):
        await FileLog(path).open()
    assert path.read_bytes() == damaged


async def test_torn_bytes_never_overwrite_earlier_torn_bytes(path: Path) -> None:
    await write_log(path, 1)
    intact = path.read_bytes()
    for attempt in range(3):
        path.write_bytes(intact + b'{"type":' + str(attempt).encode())
        with pytest.warns(LogRepaired):
            await (await FileLog(path).open()).aclose()
    base = f"jobs.jsonl.torn-{len(intact)}"
    assert path.with_name(base).read_bytes() == b'{"type":0'
    assert path.with_name(base + ".1").read_bytes() == b'{"type":1'
    assert path.with_name(base + ".2").read_bytes() == b'{"type":2'


async def test_a_repair_warning_as_error_releases_the_lock(path: Path) -> None:
    await write_log(path, 1)
    path.write_bytes(path.read_bytes() + b"{")
    with pytest.raises(LogRepaired):
        await FileLog(path).open()  # warnings are errors in this test suite
    async with FileLog(path) as log:  # the lock was released; the repair was done
        assert log.last_seq == 1


# -- damage anywhere else --------------------------------------------------------


async def test_a_damaged_line_in_the_middle_is_named(path: Path) -> None:
    records = await write_log(path, 5)
    lines = lines_of(path)
    lines[3] = b'{"type":"Started","seq":3,"task":\n'
    write_lines(path, lines)
    read: list[Event] = []
    with pytest.raises(LogCorrupted, match=r"jobs.jsonl line 4 is not a valid record") as caught:
        read.extend(FileLog(path).read())
    assert isinstance(caught.value.__cause__, msgspec.DecodeError)
    assert "lines 1 to 3 are intact" in str(caught.value)
    # Records before the damage were yielded first.
    reader = FileLog(path).read()
    assert [next(reader), next(reader)] == records[:2]
    with pytest.raises(LogCorrupted):
        next(reader)


async def test_opening_checks_only_the_ends_of_the_file(path: Path) -> None:
    records = await write_log(path, 5)
    lines = lines_of(path)
    lines[2] = b"garbage\n"
    write_lines(path, lines)
    async with FileLog(path) as log:  # open stays O(1) in the size of the log ...
        assert log.last_seq == records[-1].seq
        with pytest.raises(LogCorrupted, match="line 3 is not a valid record"):
            list(log.read())  # ... and replay finds the damage.


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda lines: lines.insert(3, b"\n"), "line 4 is empty"),
        (lambda lines: lines.insert(3, b"   \n"), "line 4 is empty"),
        (lambda lines: lines.__setitem__(2, lines[2][:-1] + lines[3]), "line 3 is not a valid"),
        (
            lambda lines: lines.__setitem__(2, lines[2].replace(b",", b",\n", 1)),
            "line 3 is not a valid",
        ),
        (
            lambda lines: lines.insert(2, lines.pop(3)),
            r"line 3 has seq 3, but the record before it \(line 2\) has seq 1: the record "
            r"with seq 2 is missing",
        ),
        (
            lambda lines: lines.insert(3, lines[2]),
            r"line 4 has seq 2, but seqs must strictly increase: expected seq 3 after seq 2",
        ),
        (
            lambda lines: lines.__setitem__(1, lines[1].replace(b'"seq":1,', b'"seq":"1",')),
            r"line 2 is not a valid record: Expected `int`, got `str` - at `\$.seq`",
        ),
        (
            lambda lines: lines.__delitem__(3),
            r"line 4 has seq 4, but the record before it \(line 3\) has seq 2: the record "
            r"with seq 3 is missing",
        ),
        (
            lambda lines: lines.__delitem__(slice(2, 4)),
            r"the records with seqs 2 to 3 are missing",
        ),
        (
            lambda lines: lines.__setitem__(3, lines[3].replace(b'"attempt":1', b'"attempt":2')),
            r"line 4 does not match its checksum \(it carries [0-9a-f]{8}; its content and the "
            r"lines before it give [0-9a-f]{8}\): it was changed after it was written",
        ),
        (
            lambda lines: lines.__setitem__(2, lines[2][:-11] + b'00000000"}\n'),
            r"line 3 does not match its checksum \(it carries 00000000",
        ),
        (
            lambda lines: lines.__setitem__(2, lines[2][:-19] + b"}\n"),
            r"line 3 carries no checksum, but the header says its records all have one",
        ),
    ],
    ids=[
        "blank",
        "spaces",
        "two-on-one-line",
        "one-across-lines",
        "swapped",
        "repeated",
        "type",
        "deleted",
        "two-deleted",
        "edited",
        "checksum-edited",
        "checksum-removed",
    ],
)
async def test_each_kind_of_damage_is_named(path: Path, damage, message: str) -> None:  # type: ignore[no-untyped-def]
    await write_log(path, 5)
    lines = lines_of(path)
    damage(lines)
    write_lines(path, lines)
    with pytest.raises(LogCorrupted, match=message):
        list(FileLog(path).read())


async def test_an_invalid_complete_last_line_is_damage_not_a_torn_write(path: Path) -> None:
    await write_log(path, 3)
    path.write_bytes(path.read_bytes() + b'{"type":"Sta\n')
    with pytest.raises(LogCorrupted, match=r"line 5 \(the last one\) is not a valid record"):
        await FileLog(path).open()
    with pytest.raises(LogCorrupted, match="line 5 is not a valid record"):
        list(FileLog(path).read())
    assert not list(path.parent.glob("*.torn-*"))


async def test_damage_far_into_the_file_is_named(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cursor_module, "CHUNK_BYTES", 100)  # many chunks, lines span them
    records = await write_log(path, 30, 30)
    assert list(FileLog(path).read()) == records
    lines = lines_of(path)
    lines[45] = lines[45].replace(b'"type"', b'"tipe"')
    write_lines(path, lines)
    with pytest.raises(LogCorrupted, match="line 46 is not a valid record"):
        list(FileLog(path).read())


# -- reading -----------------------------------------------------------------------


@pytest.mark.parametrize("bisect_min_bytes", [0, 1000, 1 << 20])
async def test_read_after_seq_finds_its_place(
    path: Path, monkeypatch: pytest.MonkeyPatch, bisect_min_bytes: int
) -> None:
    monkeypatch.setattr(cursor_module, "_BISECT_MIN_BYTES", bisect_min_bytes)
    records = await write_log(path, 50, 1, 70)
    path.write_bytes(path.read_bytes() + b'{"type":"Start')  # and a write in progress
    log = FileLog(path)
    for after in range(len(records) + 2):
        assert list(log.read(after_seq=after)) == records[after:]
        expected = records[after:]
        assert await collect(log, len(expected), after_seq=after) == expected


@pytest.mark.parametrize("checksums", [True, False])
async def test_a_batch_of_many_chunks_is_decoded_once(
    path: Path, monkeypatch: pytest.MonkeyPatch, checksums: bool
) -> None:
    """Reading a batch larger than a chunk is linear in its size: its lines are
    decoded (and walked) once, when the chunk that ends it is read, not again at
    every chunk. Counted, not timed: bytes handed to the decoder and lines looked
    at by the walk for a batch's end."""
    monkeypatch.setattr(cursor_module, "CHUNK_BYTES", 1024)  # the batch spans ~150 chunks
    records = await write_log(path, 3, 1000, 2, 500)
    if not checksums:
        # A version-2 log: the same lines without their checksums.
        lines = lines_of(path)
        header = encode_header(checksums=False)
        write_lines(path, [header, *(unsealed(line) + b"\n" for line in lines[1:])])
    decoded: list[int] = []
    walked: list[int] = []
    decode_lines, ends_batch = cursor_module.decode_lines, cursor_module._ends_batch

    def counting_decode(lines: bytes) -> list[Event]:
        decoded.append(len(lines))
        return decode_lines(lines)

    def counting_ends(data: bytes, cut: int) -> bool:
        walked.append(data.count(b"\n", 0, cut))
        return ends_batch(data, cut)

    monkeypatch.setattr(cursor_module, "decode_lines", counting_decode)
    monkeypatch.setattr(cursor_module, "_ends_batch", counting_ends)
    assert list(FileLog(path).read()) == records
    size = path.stat().st_size
    assert size > 100 * 1024
    # Each byte once, give or take a line cut at the edge of a chunk.
    assert sum(decoded) <= size + len(decoded) * 1024
    assert sum(walked) <= 2 * len(records)


async def test_reading_long_records(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cursor_module, "CHUNK_BYTES", 64)
    async with FileLog(path) as log:
        records = await log.append(one_of_each_event())
        records += await log.append(sample_events(3))
    assert list(FileLog(path).read()) == records


async def test_a_reader_never_sees_half_a_line(path: Path) -> None:
    """A reader thread keeps reading while the writer appends: every read is a prefix."""
    stop = threading.Event()
    seen: list[int] = []

    def reader() -> None:
        while True:
            # Read once more after the writer is done: a read that began before
            # its last append returned may rightly miss that batch.
            stopping = stop.is_set()
            seqs = [record.seq for record in FileLog(path).read()]
            assert seqs == list(range(1, len(seqs) + 1))
            seen.append(len(seqs))
            if stopping:
                return

    async with FileLog(path, fsync=False) as log, trio.open_nursery() as nursery:
        nursery.start_soon(trio.to_thread.run_sync, reader)
        for _ in range(300):
            await log.append(one_of_each_event())
        stop.set()
    assert seen == sorted(seen)
    assert seen[-1] == 300 * len(one_of_each_event())


async def test_the_writing_object_reads_only_whole_batches(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While a batch is written but not yet fsynced, the writer's own readers skip it."""
    views: dict[str, list[int]] = {}
    real_fsync = os.fsync

    async with FileLog(path) as log:
        first = await log.append(sample_events(2))

        def fsync_and_look(fd: int) -> None:
            views["writer"] = [record.seq for record in log.read()]
            views["other"] = [record.seq for record in FileLog(path).read()]
            real_fsync(fd)

        monkeypatch.setattr(os, "fsync", fsync_and_look)
        second = await log.append(sample_events(3))
    assert views["writer"] == [record.seq for record in first]
    assert views["other"] == [record.seq for record in first + second]


async def test_follow_sees_another_writer(
    path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    records = await write_log(path, 1)
    reader = FileLog(path, poll_interval=timedelta(seconds=1))
    received: list[Event] = []
    async with trio.open_nursery() as nursery:

        async def follower() -> None:
            received.extend(await collect(reader, 3))

        nursery.start_soon(follower)
        await trio.testing.wait_all_tasks_blocked()
        assert received == []
        async with FileLog(path) as writer:
            records += await writer.append(sample_events(2))
        start = trio.current_time()
    assert received == records
    assert trio.current_time() - start <= 1  # seen at the next poll


async def test_follow_notices_a_log_cut_under_it(
    path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    await write_log(path, 3)
    async with aclosing(FileLog(path).follow()) as records:
        for _ in range(3):
            await anext(records)
        write_lines(path, lines_of(path)[:2])
        with pytest.raises(LogCorrupted, match="shrank to"):
            await anext(records)


async def test_closing_a_reader_ends_its_followers(
    path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    records = await write_log(path, 2)
    reader = FileLog(path)
    async with trio.open_nursery() as nursery:
        received: list[Event] = []

        async def follower() -> None:
            received.extend(await collect(reader, 10))

        nursery.start_soon(follower)
        await trio.testing.wait_all_tasks_blocked()
        await reader.aclose()
    assert received == records


# -- environment errors -----------------------------------------------------------


async def test_a_missing_directory_is_named(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "jobs.jsonl"
    with pytest.raises(FileNotFoundError, match=r"directory .*nowhere does not exist; create"):
        await FileLog(path).open()


def test_reading_a_missing_log_is_a_clear_error(path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"log .*jobs.jsonl does not exist") as caught:
        list(FileLog(path).read())
    assert isinstance(caught.value.__cause__, FileNotFoundError)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        FileLog(path).last_seq  # noqa: B018


async def test_a_directory_is_not_a_log(tmp_path: Path) -> None:
    with pytest.raises(IsADirectoryError, match="it is a directory"):
        list(FileLog(tmp_path).read())
    (tmp_path / "dir.jsonl").mkdir()
    with pytest.raises(IsADirectoryError, match=r"cannot open log .*dir.jsonl for writing"):
        await FileLog(tmp_path / "dir.jsonl").open()


def deny(monkeypatch: pytest.MonkeyPatch, denied: Path) -> None:
    """Make ``os.open`` of ``denied`` fail as a file without permission would."""
    real_open = os.open

    def open_(file: str | os.PathLike[str], flags: int, *args: int, **kwargs: int) -> int:
        if Path(file) == denied:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(file))
        return real_open(file, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", open_)


async def test_an_unreadable_log_is_a_clear_error(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await write_log(path, 1)
    deny(monkeypatch, path)
    with pytest.raises(PermissionError, match=r"cannot read log .*jobs.jsonl: Permission denied"):
        list(FileLog(path).read())
    with pytest.raises(PermissionError, match=r"cannot open log .*jobs.jsonl for writing"):
        await FileLog(path).open()
    monkeypatch.undo()
    async with FileLog(path) as log:  # the failed open released the lock
        assert log.last_seq == 1


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
async def test_a_log_without_read_permission(path: Path) -> None:
    await write_log(path, 1)
    path.chmod(0)
    with pytest.raises(PermissionError, match="cannot read log"):
        list(FileLog(path).read())


# -- the write path ---------------------------------------------------------------------


class Counter:
    def __init__(self, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
        self.calls = 0
        real = getattr(os, name)

        def counted(*args: object) -> object:
            self.calls += 1
            return real(*args)

        monkeypatch.setattr(os, name, counted)


async def test_one_write_and_one_fsync_per_batch(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with FileLog(path) as log:
        writes, fsyncs = Counter(monkeypatch, "write"), Counter(monkeypatch, "fsync")
        for size in (1, 5, 20):
            await log.append(sample_events(size))
        await log.append([])
        assert (writes.calls, fsyncs.calls) == (3, 3)


async def test_without_fsync_only_close_flushes(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = await FileLog(path, fsync=False).open()
    fsyncs = Counter(monkeypatch, "fsync")
    for _ in range(3):
        await log.append(sample_events(2))
    assert fsyncs.calls == 0
    await log.aclose()
    assert fsyncs.calls == 1


async def test_short_writes_are_completed(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_write = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: real_write(fd, bytes(data[:7])))
    async with FileLog(path) as log:
        records = await log.append(one_of_each_event())
    assert list(FileLog(path).read()) == records


@pytest.mark.parametrize("failing", ["write", "fsync"])
async def test_a_failed_append_leaves_no_trace(
    path: Path, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    async with FileLog(path) as log:
        records = await log.append(sample_events(2))
        size = path.stat().st_size
        real_write, real_fsync = os.write, os.fsync
        failed: list[int] = []

        def write(fd: int, data: bytes) -> int:
            if failing == "write":
                real_write(fd, bytes(data[: len(data) // 2]))  # half a batch, then the disk fills
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return real_write(fd, data)

        def fsync(fd: int) -> None:
            if failing == "fsync" and not failed:
                failed.append(fd)  # fail once: the undo's own fsync works
                raise OSError(errno.EIO, os.strerror(errno.EIO))
            real_fsync(fd)

        monkeypatch.setattr(os, "write", write)
        monkeypatch.setattr(os, "fsync", fsync)
        with pytest.raises(OSError, match=r"could not append to log .*nothing of this batch") as e:
            await log.append(sample_events(3))
        assert isinstance(e.value.__cause__, OSError)
        assert e.value.errno == e.value.__cause__.errno
        assert path.stat().st_size == size
        assert log.last_seq == records[-1].seq
        monkeypatch.undo()
        more = await log.append(sample_events(1))  # the log is still usable
    assert list(FileLog(path).read()) == records + more


async def test_a_failed_append_that_cannot_be_undone_stops_appends(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with FileLog(path) as log:
        await log.append(sample_events(1))

        def fail(*args: object) -> None:
            raise OSError(errno.EIO, os.strerror(errno.EIO))

        monkeypatch.setattr(os, "fsync", fail)
        monkeypatch.setattr(os, "ftruncate", fail)
        with pytest.raises(OSError, match="part of this batch may remain"):
            await log.append(sample_events(1))
        monkeypatch.undo()
        with pytest.raises(LogClosed, match="accepts no more appends"):
            await log.append(sample_events(1))


async def test_an_append_cancelled_during_its_write_completes(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once the write has started, cancelling the caller cannot un-append it: the
    append finishes and returns its records, and the cancellation is delivered
    at the caller's next checkpoint."""
    in_fsync, release = threading.Event(), threading.Event()
    real_fsync = os.fsync
    returned: list[Event] = []

    def slow_fsync(fd: int) -> None:
        in_fsync.set()
        assert release.wait(PATIENCE), "the test never released the fsync"
        real_fsync(fd)

    async with FileLog(path) as log:
        monkeypatch.setattr(os, "fsync", slow_fsync)
        async with trio.open_nursery() as nursery:
            scope = trio.CancelScope()

            async def append() -> None:
                with scope:
                    returned.extend(await log.append(sample_events(2)))
                    await trio.lowlevel.checkpoint()
                    raise AssertionError("the cancellation is delivered here")

            nursery.start_soon(append)
            # Bounded: without an fsync to wait in, this must fail, not hang.
            assert await trio.to_thread.run_sync(in_fsync.wait, PATIENCE), "no fsync began"
            scope.cancel()
            release.set()
        assert scope.cancelled_caught
        assert [record.seq for record in returned] == [1, 2]
        assert log.last_seq == 2
        assert list(log.read()) == returned
