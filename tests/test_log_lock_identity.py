"""One writer per log, whatever its name: the lock follows the file's identity.

Issue 14: a second ``chronolog run`` through a symlink was admitted, and
through a hard link to an SQLite log each name got its own write-ahead log --
acknowledged records were lost. Here every way of naming one log -- another
object on the same path, a relative path, a ``..`` spelling, a symlink, a
hard link, ``/proc/self/fd/N`` -- is refused with `LogLocked` naming the
holder, on both backends, from this process and from another one, and the
refused writer changes nothing.
"""

# The tests prepare and inspect small files with plain blocking calls.

from __future__ import annotations

import errno
import os
import subprocess
import sys
import textwrap
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import trio

from chronolog import LogLocked
from chronolog.log import FileLog, SQLiteLog
from chronolog.log._paths import log_at

from .log_contract import defined_runs, sample_events

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

BACKENDS = ["jobs.jsonl", "jobs.sqlite"]
HOLDER_SCRIPT = textwrap.dedent(
    """
    import sys, trio
    from chronolog.log._paths import log_at

    async def main():
        async with log_at(sys.argv[1]) as log:
            await log.append([])
            print("ready", flush=True)
            await trio.to_thread.run_sync(sys.stdin.read)

    trio.run(main)
    """
)


def spellings(path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Callable[[], Path]]:
    """Ways to name the log at ``path`` (made when asked: some need the file to exist)."""
    directory = path.parent
    (directory / "sub").mkdir(exist_ok=True)

    def relative() -> Path:
        monkeypatch.chdir(directory)
        return Path(path.name)

    def dotdot() -> Path:
        return directory / "sub" / ".." / path.name

    def symlink() -> Path:
        link = directory / "sub" / ("linked" + path.suffix)
        link.symlink_to(path)
        return link

    def hard_link() -> Path:
        link = directory / "sub" / ("hard" + path.suffix)
        os.link(path, link)
        return link

    return {
        "same path": lambda: path,
        "relative": relative,
        "dotdot": dotdot,
        "symlink": symlink,
        "hard link": hard_link,
    }


SPELLINGS = ["same path", "relative", "dotdot", "symlink", "hard link"]


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
            process.wait(timeout=30)


def contents(path: Path) -> list[object]:
    return list(log_at(path).read())


@pytest.mark.parametrize("name", BACKENDS)
@pytest.mark.parametrize("spelling", SPELLINGS)
async def test_a_second_writer_in_this_process_is_refused_by_any_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, spelling: str
) -> None:
    path = tmp_path / name
    async with log_at(path) as log:
        records = await log.append(defined_runs(4))
        other = spellings(path, monkeypatch)[spelling]()
        with pytest.raises(LogLocked) as caught:
            await log_at(other).open()
        message = str(caught.value)
        assert f"is locked by process {os.getpid()} on host" in message
        assert "this process" in message
        assert "the lock follows the file, whatever name it is opened by" in message
        assert list(log.read()) == records  # the refused writer changed nothing
        more = await log.append(sample_events(2))  # ... and the holder goes on
    assert contents(path) == records + more


@pytest.mark.parametrize("name", BACKENDS)
async def test_a_proc_fd_spelling_is_refused(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    async with log_at(path) as log:
        await log.append(defined_runs(2))
        fd = os.open(path, os.O_RDONLY)
        try:
            with pytest.raises(LogLocked, match="this process"):
                await log_at(Path(f"/proc/self/fd/{fd}")).open()
        finally:
            os.close(fd)


@pytest.mark.parametrize("name", BACKENDS)
@pytest.mark.parametrize("spelling", SPELLINGS)
def test_a_writer_in_another_process_is_named_by_any_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, spelling: str
) -> None:
    path = tmp_path / name

    async def first() -> None:
        async with log_at(path) as log:
            await log.append(defined_runs(3))

    trio.run(first)
    before = contents(path)
    with holder_process(path) as holder:
        # Made while the holder runs: a hard link to an SQLite log is refused
        # by any writer that opens it later (see below).
        other = spellings(path, monkeypatch)[spelling]()

        async def second() -> None:
            await log_at(other).open()

        with pytest.raises(LogLocked, match=rf"is locked by process {holder.pid} on host "):
            trio.run(second)
        if not (name.endswith(".sqlite") and spelling == "hard link"):
            assert contents(other) == before


@pytest.mark.parametrize("name", BACKENDS)
async def test_the_lock_file_lies_beside_the_real_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    path = tmp_path / name
    link = spellings(path, monkeypatch)["symlink"]
    async with log_at(path):
        pass
    linked = link()
    async with log_at(linked) as log:
        assert log.lock_path == path.with_name(name + ".lock")
        await log.append(defined_runs(2))
    assert linked.is_symlink()
    assert not (linked.parent / (linked.name + ".lock")).exists()


async def test_compacting_through_a_symlink_replaces_the_log_not_the_link(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "jobs.jsonl"
    async with FileLog(path) as log:
        records = await log.append(defined_runs(10))
    linked = spellings(path, monkeypatch)["symlink"]()
    async with FileLog(linked) as log:
        await log.compact(log.load_state())
        more = await log.append(sample_events(2))
        await log.save_snapshot(log.load_state())
    assert linked.is_symlink()
    assert FileLog(path).base_seq == records[-1].seq
    assert list(FileLog(path).read()) == list(FileLog(linked).read()) == more
    assert path.with_name("jobs.jsonl.snapshot").exists()


async def test_a_file_log_with_a_second_name_appends_but_is_not_rewritten(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Appends reach the one file under either name; a compaction would leave the
    other name on the old file, so it is refused and the log is unchanged."""
    path = tmp_path / "jobs.jsonl"
    async with FileLog(path) as log:
        records = await log.append(defined_runs(6))
    linked = spellings(path, monkeypatch)["hard link"]()
    async with FileLog(linked) as log:
        more = await log.append(sample_events(2))
        before = path.read_bytes()
        with pytest.raises(OSError, match="the file has 2 names") as caught:
            await log.compact(log.load_state())
        assert caught.value.errno == errno.EMLINK
        assert "the log is unchanged" in str(caught.value)
        assert path.read_bytes() == before
    assert list(FileLog(path).read()) == records + more


async def test_a_hard_link_made_while_a_sqlite_scheduler_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second name gets no write-ahead log of its own: its writer is refused
    while the first runs, and afterwards the database is refused by either name
    until the extra name is gone."""
    path = tmp_path / "jobs.sqlite"
    async with SQLiteLog(path) as log:
        records = await log.append(defined_runs(4))
        linked = spellings(path, monkeypatch)["hard link"]()
        with pytest.raises(LogLocked, match=rf"locked by process {os.getpid()}"):
            await SQLiteLog(linked).open()
        assert not linked.with_name(linked.name + "-wal").exists()
        more = await log.append(sample_events(2))
    for name in (path, linked):
        with pytest.raises(OSError, match=r"has 2 names \(hard links\)") as caught:
            await SQLiteLog(name).open()
        assert caught.value.errno == errno.EMLINK
        assert not linked.with_name(linked.name + "-wal").exists()
    linked.unlink()
    assert contents(path) == records + more
    async with SQLiteLog(path) as log:
        assert log.last_seq == more[-1].seq


def test_an_sqlite_log_with_a_second_name_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite"

    async def fill() -> None:
        async with SQLiteLog(path) as log:
            await log.append(defined_runs(2))

    trio.run(fill)
    os.link(path, tmp_path / "copy.sqlite")
    with pytest.raises(OSError, match="SQLite keeps the records not yet checkpointed beside"):
        trio.run(fill)
