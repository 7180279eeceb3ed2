"""The command-line reference pages, run: every block marked ``<!-- docs-test -->``.

The pages (docs/reference/cli.md, cli-run.md, job-file.md) show output of
the realistic log the command-line tests share (``cli_logs.py``). A block
right after an HTML comment -- invisible on the rendered page -- is run:

* ``<!-- docs-test -->`` before a ``console`` block: every ``$ chronolog ...``
  line runs in process, in a directory holding that log as ``jobs.jsonl``
  and a shopping list as ``notes.txt``, and what it prints (stdout, then
  stderr, as a terminal shows an error after a ``--json`` document) must be
  the lines under it;
* ``<!-- docs-test: file NAME -->`` before a block: its text is written to
  ``NAME`` first;
* ``<!-- docs-test: locked by process 4242 on host db1 -->``: the commands
  run while the log's lock is held, the lock file naming that process.

The how-to "Choose a log backend" shows the `LogLocked` a second writer
gets; the last test makes a second writer get it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shlex
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec
import pytest
import trio
from click.testing import CliRunner

from chronolog import LogLocked, SQLiteLog
from chronolog.cli import control as control_module
from chronolog.cli import main
from chronolog.log import _lock

from .cli_logs import scenario_log

if TYPE_CHECKING:
    from collections.abc import Iterator

DOCS = Path(__file__).resolve().parent.parent / "docs"
PAGES = ("reference/cli.md", "reference/cli-run.md", "reference/job-file.md")
MARK = re.compile(r"<!-- docs-test(?:: (?P<what>.*?))? -->")


def marked_blocks(page: str) -> list[tuple[str, str, str, int]]:
    """``(what the mark says, the block's info string, its text, its line)`` for each
    fenced block right after a docs-test mark."""
    lines = (DOCS / page).read_text().splitlines()
    found = []
    for number, line in enumerate(lines):
        mark = MARK.fullmatch(line.strip())
        if mark is None:
            continue
        fence = lines[number + 1]
        assert fence.startswith("```"), f"{page}:{number + 1}: a docs-test mark needs a block"
        end = lines.index("```", number + 2)
        text = "".join(f"{body}\n" for body in lines[number + 2 : end])
        found.append((mark["what"] or "", fence[3:].strip(), text, number + 2))
    return found


def commands(text: str) -> list[tuple[str, str]]:
    """The ``$ command`` lines of a console block and the output under each."""
    runs: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if line.startswith("$ "):
            runs.append((line[2:], []))
        else:
            runs[-1][1].append(line)
    return [(command, "".join(f"{out}\n" for out in shown)) for command, shown in runs]


@contextlib.contextmanager
def locked_by_another_process(
    log: Path, monkeypatch: pytest.MonkeyPatch, *, host: str = "db1"
) -> Iterator[None]:
    """Hold the log's lock as process 4242 on ``host`` would (the kernel's lock table,
    which would name this process, is left out)."""
    monkeypatch.setattr(_lock, "_lock_table_pid", lambda identity: None)
    monkeypatch.setattr(control_module, "LOCKED_WAIT_SECONDS", 0.05)
    identity = log.stat()
    holder = {"pid": 4242, "host": host, "dev": identity.st_dev, "ino": identity.st_ino}
    log_fd = os.open(log, os.O_RDONLY)
    sidecar = os.open(_lock.lock_path_of(log), os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(log_fd, fcntl.LOCK_EX)
        fcntl.flock(sidecar, fcntl.LOCK_EX)
        os.write(sidecar, msgspec.json.encode(holder) + b"\n")
        yield
    finally:
        os.close(sidecar)
        os.close(log_fd)


def run_console(text: str) -> None:
    for command, shown in commands(text):
        arguments = shlex.split(command)
        assert arguments[0] == "chronolog", f"only chronolog commands are run: {command}"
        result = CliRunner().invoke(main, arguments[1:])
        assert result.exception is None or isinstance(result.exception, SystemExit), command
        assert result.stdout + result.stderr == shown, command


@pytest.mark.parametrize("page", PAGES)
def test_the_marked_blocks_print_what_the_page_shows(
    page: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    log = scenario_log(tmp_path)
    (tmp_path / "notes.txt").write_text("shopping: milk, eggs\n")
    blocks = marked_blocks(page)
    assert any(info == "console" for _, info, _, _ in blocks)
    for what, info, text, _ in blocks:
        if what.startswith("file "):
            (tmp_path / what.removeprefix("file ")).write_text(text)
        elif what == "locked by process 4242 on host db1":
            with monkeypatch.context() as patched, locked_by_another_process(log, patched):
                run_console(text)
        else:
            assert (what, info) == ("", "console")
            run_console(text)


def test_the_lock_message_of_the_log_backend_how_to(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    page = (DOCS / "how-to/choose-a-log-backend.md").read_text()
    shown = re.search(r"```text\n(LogLocked: .*?)```", page, re.DOTALL)
    assert shown is not None
    monkeypatch.chdir(tmp_path)

    async def create() -> None:
        async with SQLiteLog("jobs.sqlite"):
            pass

    async def second_writer() -> str:
        with pytest.raises(LogLocked) as refused:
            await SQLiteLog("jobs.sqlite").open()
        return f"LogLocked: {refused.value}"

    trio.run(create)
    with locked_by_another_process(Path("jobs.sqlite"), monkeypatch, host="web-1"):
        message = trio.run(second_writer)
    assert " ".join(shown[1].split()) == message
