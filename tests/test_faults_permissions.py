"""Permissions: logs and directories a scheduler or a reader may not use.

Real file modes, no mocks: each check runs in a forked child process. Under
root (which ignores file modes) the child first drops to uid and gid 65534
("nobody"), so the modes apply to it; under any other user the modes set
here deny the owner too. The files live in a fresh directory under the
system's temporary directory, which the child can reach.

Every error must be an ``OSError`` of the right kind that names the path
and says what to check.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import trio

from chronolog import FileLog, SQLiteLog, open_scheduler

from .log_contract import sample_events

if TYPE_CHECKING:
    from collections.abc import Iterator

    from chronolog import EventLog

NOBODY = 65534
BACKENDS = ["jobs.jsonl", "jobs.sqlite"]
HINT = "check the permissions of the log and of its directory"


def log_at(path: Path) -> EventLog:
    return SQLiteLog(path) if path.suffix == ".sqlite" else FileLog(path)


@pytest.fixture
def place() -> Iterator[Path]:
    """A directory another user can reach (pytest's own are private to their owner)."""
    directory = Path(tempfile.mkdtemp(prefix="chronolog-permissions-"))
    directory.chmod(0o755)
    yield directory
    _open_up(directory)
    shutil.rmtree(directory)


def _open_up(directory: Path) -> None:
    """Give the owner back every folder, so that the clean-up may enter them."""
    directory.chmod(0o700)
    for entry in directory.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            _open_up(entry)


def make_log(path: Path) -> None:
    """A log with one batch, closed, without its (empty) lock file."""

    async def main() -> None:
        async with log_at(path) as log:
            await log.append(sample_events(2))

    path.parent.mkdir(parents=True, exist_ok=True)
    trio.run(main)
    log_at(path).lock_path.unlink()


def as_another_user(*operations: tuple[str, Path]) -> list[dict[str, object]]:
    """Run each ``(operation, path)`` in a child process that file modes apply to.

    Operations: ``"read"`` (read every record), ``"schedule"`` (open a
    scheduler on the log and leave). Returns what each did: ``{"ok": records}``
    or the error's type, errno and message.
    """
    reading, writing = os.pipe()
    with warnings.catch_warnings():
        # Python 3.12+ warns about forking a process with threads (Trio's
        # idle worker threads); the child only runs its own trio.run.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        os.close(reading)
        try:
            if os.geteuid() == 0:
                os.setgroups([])
                os.setgid(NOBODY)
                os.setuid(NOBODY)
            results = trio.run(_operate, operations)
        except BaseException as exc:
            results = [{"setup": f"{type(exc).__name__}: {exc}"}]
        os.write(writing, json.dumps(results).encode())
        os._exit(0)
    os.close(writing)
    with os.fdopen(reading, "rb") as pipe:
        output = pipe.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    results: list[dict[str, object]] = json.loads(output)
    if results and "setup" in results[0]:
        pytest.skip(f"cannot run as another user here: {results[0]['setup']}")
    return results


async def _operate(operations: tuple[tuple[str, Path], ...]) -> list[dict[str, object]]:
    results: list[dict[str, object]] = []
    for operation, path in operations:
        try:
            if operation == "read":
                count = len(list(log_at(path).read()))
            else:
                async with open_scheduler(path) as sched:
                    count = sched.statistics().log_seq
        except Exception as exc:
            results.append(
                {
                    "type": type(exc).__name__,
                    "errno": getattr(exc, "errno", None),
                    "message": str(exc),
                }
            )
        else:
            results.append({"ok": count})
    return results


def assert_denied(result: dict[str, object], message: str) -> None:
    assert result.get("type") == "PermissionError", result
    assert result["errno"] == errno.EACCES
    text = str(result["message"])
    assert message in text, text
    assert HINT in text or "check the permissions of" in text, text


@pytest.mark.parametrize("name", BACKENDS)
def test_a_log_nobody_may_read(place: Path, name: str) -> None:
    path = place / "logs" / name
    make_log(path)
    path.parent.chmod(0o777)
    path.chmod(0o000)
    read, schedule = as_another_user(("read", path), ("schedule", path))
    assert_denied(read, f"cannot read log {path}: Permission denied")
    assert_denied(schedule, f"cannot open log {path} for writing: Permission denied")


@pytest.mark.parametrize("name", BACKENDS)
def test_a_read_only_log_can_be_read_but_not_scheduled_on(place: Path, name: str) -> None:
    path = place / "logs" / name
    make_log(path)
    path.parent.chmod(0o777)
    path.chmod(0o444)
    read, schedule = as_another_user(("read", path), ("schedule", path))
    assert read == {"ok": 2}
    assert_denied(schedule, f"cannot open log {path} for writing: Permission denied")


@pytest.mark.parametrize("name", BACKENDS)
def test_a_directory_the_scheduler_may_not_write_to(place: Path, name: str) -> None:
    """The log itself is writable, but its lock file cannot be made beside it."""
    path = place / "logs" / name
    make_log(path)
    path.chmod(0o666)
    path.parent.chmod(0o555)
    read, schedule, new = as_another_user(
        ("read", path), ("schedule", path), ("schedule", path.with_name("new-" + name))
    )
    lock = log_at(path).lock_path
    assert_denied(schedule, f"cannot open lock file {lock} of log {path}: Permission denied")
    # A new log cannot be created there in the first place (the lock is on
    # the log file itself, so the log is made first).
    new_path = path.with_name("new-" + name)
    assert_denied(new, f"cannot open log {new_path} for writing: Permission denied")
    if path.suffix == ".sqlite":
        # SQLite's readers of a WAL database make a shared-memory file beside it.
        assert_denied(read, f"cannot read log {path}")
    else:
        assert read == {"ok": 2}


@pytest.mark.parametrize("name", BACKENDS)
def test_a_directory_that_may_not_be_searched(place: Path, name: str) -> None:
    inner = place / "closed" / "inner" / name
    make_log(inner)
    direct = place / "closed" / name
    make_log(direct)
    (place / "closed").chmod(0o700)  # the owner's only: no one else may search it
    if os.geteuid() != 0:
        (place / "closed").chmod(0o000)
    results = as_another_user(("read", direct), ("schedule", direct), ("schedule", inner))
    assert_denied(results[0], f"cannot read log {direct}: Permission denied")
    assert_denied(results[1], f"{direct}")  # its lock file or itself, as checked first
    # Before, checking that the directory exists let a bare PermissionError out.
    assert_denied(results[2], f"cannot open log {inner} for writing: Permission denied")


# -- the wrong kind of file -------------------------------------------------------------


@pytest.mark.parametrize("name", BACKENDS)
async def test_a_directory_where_the_lock_file_goes(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    log_at(path).lock_path.mkdir()
    with pytest.raises(IsADirectoryError, match=rf"cannot open lock file .*{name}.lock of log"):
        async with open_scheduler(path):
            pass


@pytest.mark.parametrize("name", BACKENDS)
async def test_open_scheduler_names_a_directory_in_place_of_the_log(
    tmp_path: Path, name: str
) -> None:
    (tmp_path / name).mkdir()
    with pytest.raises(IsADirectoryError, match=rf"cannot open log .*{name}"):
        async with open_scheduler(tmp_path / name):
            pass


@pytest.mark.parametrize("name", BACKENDS)
async def test_open_scheduler_names_a_missing_directory(tmp_path: Path, name: str) -> None:
    path = tmp_path / "not" / "there" / name
    with pytest.raises(FileNotFoundError, match=r"directory .*there does not exist; create it"):
        async with open_scheduler(path):
            pass
    assert not (tmp_path / "not").exists()  # nothing was created on the way
