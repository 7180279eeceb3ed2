"""Watching a file: content hashes, problems, OS notifications and the polling safety net.

These tests use the real file system (``tmp_path``) and real time, kept tiny:
polls of 20 ms, and ``trio.fail_after`` guards that only a hang would reach.
"""

from __future__ import annotations

import errno
import functools
import itertools
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import attrs
import pytest
import trio

from chronolog import _watch
from chronolog._ids import content_hash
from chronolog._watch import FileSeen, look, watch_file

if TYPE_CHECKING:
    from pathlib import Path

POLL = timedelta(milliseconds=20)
NEVER = timedelta(hours=1)  # a poll that never comes during a test: only notifications can act
GUARD = 5  # seconds; reached only when something hangs
QUIET = 10  # looks at the file to wait through for a report that must not come

A, B, C = b"alpha\n", b"bravo bravo\n", b"charlie\n"


def write(path: Path, data: bytes) -> None:
    path.write_bytes(data)


def replace_atomically(path: Path, data: bytes) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


def changed(data: bytes) -> FileSeen:
    return FileSeen(content_hash=content_hash(data), problem=None)


def problem(sentence: str) -> FileSeen:
    return FileSeen(content_hash=None, problem=sentence)


class Looks:
    """Counts the watcher's looks at the file (it reads through ``_watch._look``)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        real = _watch._look

        def counted(path: str, shown: str) -> FileSeen:
            seen = real(path, shown)
            self.count += 1
            return seen

        monkeypatch.setattr(_watch, "_look", counted)


class Watch:
    """A running watch_file, with helpers that wait for its reports."""

    def __init__(self, changes: trio.MemoryReceiveChannel[FileSeen], looks: Looks) -> None:
        self.changes = changes
        self.looks = looks

    async def next(self) -> FileSeen:
        with trio.fail_after(GUARD):
            return await self.changes.receive()

    async def quiet(self, looks: int = QUIET) -> None:
        """Nothing is reported while the watcher looks at the file ``looks`` more
        times: counted, not timed, so a slow machine cannot make this pass."""
        target = self.looks.count + looks
        async with trio.open_nursery() as nursery:

            async def no_report() -> None:
                seen = await self.changes.receive()
                pytest.fail(f"nothing should have been reported, got {seen}")

            nursery.start_soon(no_report)
            with trio.fail_after(GUARD):
                # The count grows in the watcher's reading thread: poll it.
                while self.looks.count < target:  # noqa: ASYNC110
                    await trio.sleep(POLL.total_seconds() / 4)
            nursery.cancel_scope.cancel()


StartWatch = Callable[..., Awaitable[Watch]]


@pytest.fixture
async def watching(nursery: trio.Nursery, monkeypatch: pytest.MonkeyPatch) -> StartWatch:
    """``await watching(path, last_hash=..., poll=...)`` starts a watch in the test's nursery."""
    looks = Looks(monkeypatch)

    async def start(path: Path, *, last_hash: str | None, poll: timedelta = POLL) -> Watch:
        with trio.fail_after(GUARD):
            changes = await nursery.start(
                functools.partial(watch_file, path, poll=poll, last_hash=last_hash)
            )
        return Watch(changes, looks)

    return start


# --- look: one read, one hash -------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 5, 4096, 10_000])
def test_look_hashes_the_whole_file_like_content_hash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    monkeypatch.setattr(_watch, "_CHUNK_BYTES", 4096)  # several chunks for the big ones
    data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    write(tmp_path / "f", data)
    assert look(str(tmp_path / "f")) == changed(data)


def test_look_reports_a_missing_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert look("in.csv") == problem("file in.csv does not exist")


def test_look_reports_a_file_in_a_missing_directory_as_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert look("data/in.csv") == problem("file data/in.csv does not exist")


def test_look_reports_a_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    assert look("data") == problem("data is a directory")


@pytest.fixture
def unreadable(monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """Paths added to this set raise PermissionError on open.

    Tests run as root here, and root reads a chmod 000 file, so opening is
    refused by hand, as the OS refuses it to everyone else.
    """
    refused: set[str] = set()
    real_open = os.open

    def open_or_refuse(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if os.path.abspath(path) in refused:
            raise PermissionError(errno.EACCES, "Permission denied", path)
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", open_or_refuse)
    return refused


def test_look_reports_an_unreadable_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, unreadable: set[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "in.csv", A)
    (tmp_path / "in.csv").chmod(0)
    unreadable.add(str(tmp_path / "in.csv"))
    assert look("in.csv") == problem("cannot read in.csv: permission denied")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are a POSIX thing")
def test_look_does_not_block_on_a_fifo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    os.mkfifo(tmp_path / "pipe")
    seen = look("pipe")
    assert seen.content_hash is None
    assert seen.problem is not None
    assert seen.problem.startswith("pipe is not a regular file")


def test_look_reads_again_when_the_file_changes_while_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "f"
    write(path, A)
    real_read = os.read
    reads = 0

    def read_while_someone_appends(fd: int, count: int) -> bytes:
        nonlocal reads
        reads += 1
        if reads == 1:
            with path.open("ab") as file:
                file.write(B)
        return real_read(fd, count)

    monkeypatch.setattr(os, "read", read_while_someone_appends)
    assert look(str(path)) == changed(A + B)
    assert reads > 2  # the first read was torn and done again


def test_file_seen_has_a_hash_or_a_problem() -> None:
    with pytest.raises(ValueError, match="either a content_hash or a problem"):
        FileSeen(content_hash=None, problem=None)
    with pytest.raises(ValueError, match="either a content_hash or a problem"):
        FileSeen(content_hash="ab", problem="gone")
    assert attrs.has(FileSeen)


# --- watch_file: what is reported ---------------------------------------------------------------


async def test_a_to_b_to_a_reports_two_changes(tmp_path: Path, watching: StartWatch) -> None:
    path = tmp_path / "in.csv"
    write(path, A)
    watch = await watching(path, last_hash=content_hash(A))
    write(path, B)
    assert await watch.next() == changed(B)
    write(path, A)
    assert await watch.next() == changed(A)
    await watch.quiet()


async def test_unchanged_content_reports_nothing(tmp_path: Path, watching: StartWatch) -> None:
    path = tmp_path / "in.csv"
    write(path, A)
    watch = await watching(path, last_hash=content_hash(A))
    os.utime(path)  # touch
    write(path, A)  # the same bytes again
    replace_atomically(path, A)  # a new file, the same bytes
    await watch.quiet()


async def test_a_restart_with_the_logged_hash_reports_nothing(
    tmp_path: Path, watching: StartWatch
) -> None:
    path = tmp_path / "in.csv"
    write(path, A)
    watch = await watching(path, last_hash=content_hash(A))
    await watch.quiet()


async def test_no_last_hash_reports_the_file_as_first_seen(
    tmp_path: Path, watching: StartWatch
) -> None:
    path = tmp_path / "in.csv"
    write(path, A)
    watch = await watching(path, last_hash=None)
    assert await watch.next() == changed(A)
    await watch.quiet()


async def test_content_changed_while_down_is_reported_at_start(
    tmp_path: Path, watching: StartWatch
) -> None:
    path = tmp_path / "in.csv"
    write(path, B)
    watch = await watching(path, last_hash=content_hash(A))
    assert await watch.next() == changed(B)
    await watch.quiet()


async def test_a_deleted_file_is_a_problem_until_it_comes_back_changed(
    tmp_path: Path, watching: StartWatch
) -> None:
    path = tmp_path / "in.csv"
    write(path, A)
    watch = await watching(path, last_hash=content_hash(A))
    path.unlink()
    assert await watch.next() == problem(f"file {path} does not exist")
    await watch.quiet()  # reported once, not at every poll
    write(path, B)
    assert await watch.next() == changed(B)


async def test_a_file_recreated_with_the_same_content_reports_nothing(
    tmp_path: Path, watching: StartWatch
) -> None:
    path = tmp_path / "in.csv"
    write(path, A)
    watch = await watching(path, last_hash=content_hash(A))
    path.unlink()
    assert await watch.next() == problem(f"file {path} does not exist")
    write(path, A)
    await watch.quiet()
    path.unlink()  # the problem cleared when A came back, so it is news again
    assert await watch.next() == problem(f"file {path} does not exist")


async def test_a_missing_directory_is_a_problem_until_the_file_appears(
    tmp_path: Path, watching: StartWatch
) -> None:
    path = tmp_path / "data" / "in.csv"
    watch = await watching(path, last_hash=None)
    assert await watch.next() == problem(f"file {path} does not exist")
    path.parent.mkdir()
    await watch.quiet()  # still missing, and said so already
    write(path, A)
    assert await watch.next() == changed(A)


async def test_an_atomic_replace_is_seen(tmp_path: Path, watching: StartWatch) -> None:
    path = tmp_path / "in.csv"
    write(path, A)
    watch = await watching(path, last_hash=content_hash(A))
    replace_atomically(path, B)
    assert await watch.next() == changed(B)
    replace_atomically(path, C)
    assert await watch.next() == changed(C)


async def test_a_burst_of_writes_reports_the_content_it_ends_with(
    tmp_path: Path, watching: StartWatch
) -> None:
    path = tmp_path / "in.csv"
    write(path, A)
    watch = await watching(path, last_hash=content_hash(A))
    for count in range(1, 21):
        write(path, B * count)
    seen = [await watch.next()]
    while seen[-1] != changed(B * 20):
        seen.append(await watch.next())
    assert len(seen) <= 20
    assert all(earlier != later for earlier, later in itertools.pairwise(seen))
    await watch.quiet()


async def test_a_file_rewritten_under_the_reader_never_breaks_the_watch(
    tmp_path: Path, watching: StartWatch
) -> None:
    path = tmp_path / "in.csv"
    write(path, A)
    watch = await watching(path, last_hash=content_hash(A))

    def rewrite_many_times() -> None:
        for count in range(120):
            write(path, C * (count % 17 + 1) * 1000)  # truncate, then grow again
        write(path, B)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.to_thread.run_sync, rewrite_many_times)
        with trio.fail_after(GUARD):
            while await watch.next() != changed(B):
                pass
    await watch.quiet()


async def test_a_directory_at_the_path_is_a_problem(tmp_path: Path, watching: StartWatch) -> None:
    path = tmp_path / "in.csv"
    path.mkdir()
    watch = await watching(path, last_hash=None)
    assert await watch.next() == problem(f"{path} is a directory")
    path.rmdir()
    write(path, A)
    assert await watch.next() == changed(A)


async def test_an_unreadable_file_is_a_problem(
    tmp_path: Path, watching: StartWatch, unreadable: set[str]
) -> None:
    path = tmp_path / "in.csv"
    write(path, A)
    watch = await watching(path, last_hash=content_hash(A))
    path.chmod(0)
    unreadable.add(str(path))
    assert await watch.next() == problem(f"cannot read {path}: permission denied")
    path.chmod(0o644)
    unreadable.clear()
    write(path, B)
    assert await watch.next() == changed(B)


# --- how it looks: notifications, polling, fallbacks --------------------------------------------


async def test_os_notifications_report_at_once_without_polling(
    tmp_path: Path, watching: StartWatch
) -> None:
    path = tmp_path / "in.csv"
    write(path, A)
    watch = await watching(path, last_hash=content_hash(A), poll=NEVER)
    write(path, B)
    assert await watch.next() == changed(B)
    replace_atomically(path, C)
    assert await watch.next() == changed(C)


async def test_notifications_resume_when_the_directory_is_recreated(
    tmp_path: Path, watching: StartWatch, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_watch, "_RECHECK_MAX_SECONDS", 0.05)
    path = tmp_path / "data" / "in.csv"
    path.parent.mkdir()
    write(path, A)
    watch = await watching(path, last_hash=content_hash(A), poll=NEVER)
    path.unlink()
    path.parent.rmdir()
    assert (await watch.next()).problem is not None
    path.parent.mkdir()
    write(path, B)
    assert await watch.next() == changed(B)
    write(path, C)
    assert await watch.next() == changed(C)


def fail_to_start(*args: object, **kwargs: object) -> Any:
    raise OSError(errno.ENOSPC, "OS file watch limit reached")


async def test_polling_alone_when_notifications_cannot_start(
    tmp_path: Path,
    watching: StartWatch,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(_watch, "awatch", fail_to_start)
    path = tmp_path / "in.csv"
    write(path, A)
    with caplog.at_level(logging.WARNING, logger="chronolog.watch"):
        watch = await watching(path, last_hash=content_hash(A))
        write(path, B)
        assert await watch.next() == changed(B)
        path.unlink()
        assert await watch.next() == problem(f"file {path} does not exist")
    [record] = [r for r in caplog.records if r.name == "chronolog.watch"]
    assert record.levelno == logging.WARNING
    assert f"cannot watch {path} with OS file notifications" in record.getMessage()
    assert "OS file watch limit reached" in record.getMessage()
    assert "polling only" in record.getMessage()


async def test_watches_beyond_the_notification_cap_poll(
    tmp_path: Path,
    watching: StartWatch,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(_watch, "MAX_NOTIFIED_FILES", 1)
    first, second = tmp_path / "first", tmp_path / "second"
    write(first, A)
    write(second, A)
    with caplog.at_level(logging.WARNING, logger="chronolog.watch"):
        first_watch = await watching(first, last_hash=content_hash(A), poll=NEVER)
        second_watch = await watching(second, last_hash=content_hash(A))
    [record] = [r for r in caplog.records if r.name == "chronolog.watch"]
    assert f"{second} is checked by polling only" in record.getMessage()
    write(first, B)
    write(second, C)
    assert await first_watch.next() == changed(B)
    assert await second_watch.next() == changed(C)


async def test_closing_the_channel_stops_the_watch(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    write(path, A)
    with trio.fail_after(GUARD):
        async with trio.open_nursery() as nursery:
            changes = await nursery.start(
                functools.partial(watch_file, path, poll=POLL, last_hash=None)
            )
            await changes.aclose()  # the watch ends, and so does the nursery


async def test_cancelling_the_watch_ends_it_and_closes_the_channel(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    write(path, A)
    with trio.fail_after(GUARD):
        async with trio.open_nursery() as nursery:
            changes = await nursery.start(
                functools.partial(watch_file, path, poll=NEVER, last_hash=content_hash(A))
            )
            nursery.cancel_scope.cancel()
        assert [seen async for seen in changes] == []


async def test_a_bad_poll_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="poll must be a positive timedelta"):
        await watch_file(tmp_path / "in.csv", poll=timedelta(0), last_hash=None)


@pytest.mark.skipif(sys.platform == "win32", reason="relative to the working directory")
async def test_a_relative_path_is_shown_as_given(
    tmp_path: Path, watching: StartWatch, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    watch = await watching("data/in.csv", last_hash=None)
    assert await watch.next() == problem("file data/in.csv does not exist")
