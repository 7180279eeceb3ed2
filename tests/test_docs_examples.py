"""The runtime's docs pages, run: every example they show, every command they print.

A ```python block whose first line is ``# docs-example: NAME`` is an example.
It runs as a script (``__name__ == "__main__"``) in a fresh directory, after
the page's ``# docs-setup`` block, if any. When a ```text block follows it
directly, the page claims that this is what it prints, and the test holds
the page to it. Examples run on simulated time, so a whole day of schedules
takes milliseconds.

Lines ``$ chronolog next ...`` of ```console blocks are run through the
command line, and their output must be what the page shows (an output that
starts with ``Error:`` is a command that must fail with exit code 2); the few
commands that are shown but not run are listed in ``NOT_RUN``, each with the
reason.

The tutorial runs programs on the real clock, so it is walked through as a
reader would, on a simulated wall clock standing in for the system one.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import io
import re
import shlex
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import pytest
import trio
from click.testing import CliRunner

import chronolog._scheduler
from chronolog import Completed, Failed, FileLog, Started, check_invariants
from chronolog.cli import main as chronolog_command
from chronolog.testing import SimulatedClock

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

DOCS = Path(__file__).resolve().parent.parent / "docs"
PAGES = (
    "tutorial.md",  # first: it is walked through by test_the_tutorial
    "reference/scheduler.md",
    "how-to/exactly-once-across-restarts.md",
    "how-to/daylight-saving-time.md",
    "how-to/choose-policies.md",
    "how-to/run-at-high-rates.md",
    "reference/triggers.md",
)
EXAMPLE_MARK = "# docs-example:"
SETUP_MARK = "# docs-setup"


@attrs.frozen
class Block:
    info: str
    text: str
    line: int
    """Line number of the opening fence (1-based)."""
    end: int
    """Line number of the closing fence."""


@attrs.frozen
class Example:
    page: str
    name: str
    code: str
    setup: str
    output: str | None
    line: int

    @property
    def id(self) -> str:
        return f"{self.page}:{self.name}"


def fenced_blocks(markdown: str) -> list[Block]:
    """The top-level fenced code blocks of a page, in order."""
    blocks: list[Block] = []
    lines = markdown.splitlines()
    opening: tuple[str, int] | None = None
    body: list[str] = []
    for number, line in enumerate(lines, start=1):
        if opening is None:
            if line.startswith("```"):
                opening = (line[3:].strip(), number)
                body = []
        elif line.startswith("```"):
            info, start = opening
            blocks.append(Block(info, "".join(f"{text}\n" for text in body), start, number))
            opening = None
        else:
            body.append(line)
    assert opening is None, f"a code fence opened at line {opening[1]} is never closed"
    return blocks


def page_examples(page: str) -> list[Example]:
    blocks = fenced_blocks((DOCS / page).read_text())
    setup = "".join(
        block.text
        for block in blocks
        if block.info == "python" and block.text.startswith(SETUP_MARK)
    )
    examples: list[Example] = []
    for index, block in enumerate(blocks):
        if block.info != "python" or not block.text.startswith(EXAMPLE_MARK):
            continue
        name = block.text.splitlines()[0].removeprefix(EXAMPLE_MARK).strip()
        following = blocks[index + 1] if index + 1 < len(blocks) else None
        output = None
        if following is not None and following.info == "text" and following.line == block.end + 2:
            output = following.text
        examples.append(Example(page, name, block.text, setup, output, block.line))
    return examples


def console_commands(page: str) -> list[tuple[str, str]]:
    """(command, output shown) for every ``$`` line of the page's console blocks."""
    commands: list[tuple[str, str]] = []
    for block in fenced_blocks((DOCS / page).read_text()):
        if block.info != "console":
            continue
        for chunk in re.split(r"^\$ ", block.text, flags=re.MULTILINE)[1:]:
            command, _, output = chunk.partition("\n")
            commands.append((command, output))
    return commands


def run_script(code: str, name: str) -> str:
    """Run ``code`` as a script; what it printed."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, name, "exec"), {"__name__": "__main__"})
    return printed.getvalue()


def run_command(command: str, *, fails: bool = False) -> str:
    """Run a ``chronolog ...`` command line; what it printed (it must succeed, or fail
    with a usage error when ``fails``)."""
    program, *arguments = shlex.split(command)
    assert Path(program).name == "chronolog", command
    result = CliRunner().invoke(chronolog_command, arguments, catch_exceptions=False)
    assert result.exit_code == (2 if fails else 0), result.output
    return result.output


@pytest.fixture
def restore_gc() -> Iterator[None]:
    """Examples may tune the garbage collector: give the test process its own back."""
    thresholds = gc.get_threshold()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)


#: Commands the pages show that the tests do not run, and why.
NOT_RUN = {
    "make demo": "the demo runs for 20 real seconds; tests/test_cli_demo.py covers it",
    ".venv/bin/chronolog status demo-log/jobs.jsonl": "it reads the demo's log",
    "source .venv/bin/activate": "the test runs in the project's environment already",
    'cd "$(mktemp -d)"': "the test runs in a fresh temporary directory",
    ".venv/bin/python benchmarks/runtime.py": (
        "it takes minutes; the page quotes the figures of one run"
    ),
}
#: Everything but the tutorial, which is walked through in order (below).
EXAMPLES = [example for page in PAGES[1:] for example in page_examples(page)]


def test_every_page_has_examples_that_say_what_they_print() -> None:
    names = [example.id for example in EXAMPLES]
    assert len(names) == len(set(names)), "two examples share a name"
    assert {example.page for example in EXAMPLES} == set(PAGES[1:])
    assert [example.id for example in EXAMPLES if example.output is None] == []


@pytest.mark.parametrize("example", EXAMPLES, ids=[example.id for example in EXAMPLES])
def test_an_example_prints_what_its_page_shows(
    example: Example,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    restore_gc: None,
) -> None:
    monkeypatch.chdir(tmp_path)
    printed = run_script(example.setup + example.code, f"{example.page}:{example.line}")
    assert printed == example.output


def test_every_command_of_the_other_pages_prints_what_they_show() -> None:
    checked = 0
    for page in PAGES[1:]:
        for command, shown in console_commands(page):
            if command in NOT_RUN:
                continue
            assert command.startswith("chronolog next "), f"{page}: cannot check {command!r}"
            assert run_command(command, fails=shown.startswith("Error:")) == shown, command
            checked += 1
    assert checked


# -- the tutorial --------------------------------------------------------------

#: Tutorial programs on the system clock: what they print is compared without
#: its timestamps (the page shows a real run).
REAL_CLOCK_PROGRAMS = {"first_scheduler.py"}
#: From the end of one run of the tutorial's program to the start of the next,
#: as in the real session the page shows ("wait half a minute", and the
#: commands in between).
TUTORIAL_PAUSE = timedelta(seconds=31.5)
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?Z")
#: A record's checksum covers its timestamps, so it differs as they do.
CHECKSUM = re.compile(r'"crc":"[0-9a-f]+"')
RULE = re.compile("─+")


def loosely(text: str) -> list[str]:
    """Lines without their timestamps, column padding and rule lengths: a real
    run's output differs from a simulated one only in when it happened."""
    return [
        " ".join(
            RULE.sub("─", CHECKSUM.sub('"crc":"<crc>"', TIMESTAMP.sub("<time>", line))).split()
        )
        for line in text.splitlines()
    ]


class WallClock:
    """The system clock, simulated: each ``trio.run`` gets a SimulatedClock that
    starts where the previous run's clock stopped."""

    def __init__(self, start: datetime) -> None:
        self.now = start
        self.current: SimulatedClock | None = None

    def make(self) -> SimulatedClock:
        assert self.current is not None, "a scheduler opened outside trio.run"
        return self.current

    def run(
        self, original: Callable[..., Any], main: Callable[..., Any], *args: Any, **options: Any
    ) -> Any:
        if "clock" in options:  # a program on simulated time of its own
            return original(main, *args, **options)
        self.current = SimulatedClock(self.now)
        try:
            return original(main, *args, clock=self.current.trio_clock)
        finally:
            self.now = self.current.now()
            self.current = None


def test_the_tutorial(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    wall = WallClock(datetime(2026, 3, 27, 12, 0, 0, tzinfo=UTC))
    monkeypatch.setattr(chronolog._scheduler, "SystemClock", wall.make)
    monkeypatch.setattr(trio, "run", functools.partial(wall.run, trio.run))
    programs = {example.name: example for example in page_examples("tutorial.md")}
    ran: list[str] = []
    for command, shown in console_commands("tutorial.md"):
        if command in NOT_RUN:
            continue
        program, *arguments = shlex.split(command)
        exact = True
        if program == "python":
            (script,) = arguments
            if script in ran:
                wall.now += TUTORIAL_PAUSE
            printed = run_script(programs[script.removesuffix(".py")].code, script)
            ran.append(script)
            exact = script not in REAL_CLOCK_PROGRAMS
        elif program == "head":
            count, path = arguments[1], arguments[2]
            assert arguments[0] == "-n", command
            lines = Path(path).read_text().splitlines(keepends=True)
            printed = "".join(lines[: int(count)])
            exact = False
        else:
            printed = run_command(command)
            exact = not command.startswith("chronolog status")
        if exact:
            assert printed == shown, command
        else:
            assert loosely(printed) == loosely(shown), command
    assert sorted(set(ran)) == sorted(f"{name}.py" for name in programs)


# -- pages that are programs, test modules and shell sessions -----------------


def python_blocks(page: str) -> list[Block]:
    return [block for block in fenced_blocks((DOCS / page).read_text()) if block.info == "python"]


def output_after(page: str, block: Block) -> str:
    """The ```text block right after ``block``."""
    blocks = fenced_blocks((DOCS / page).read_text())
    following = blocks[blocks.index(block) + 1]
    assert following.info == "text", page
    assert following.line == block.end + 2, page
    return following.text


def deterministic_trio_scheduling(monkeypatch: pytest.MonkeyPatch | None = None) -> None:
    """The same task order in every run, so that pages can show exact seqs.

    Under Hypothesis (installed with the tests) Trio orders each batch of
    ready tasks by a shuffle from its own generator; seeding it makes the
    order that of the run the page shows. A log file is written in worker
    threads, and how many batches of ready tasks run while a thread works
    depends on the machine (each batch draws from that generator): with
    ``monkeypatch``, worker-thread calls run inline instead, one checkpoint
    each, so that count is the same on every machine.
    """
    trio._core._run._r.seed(0)
    if monkeypatch is not None:

        async def run_inline(function: Callable[..., Any], *args: Any, **_: Any) -> Any:
            await trio.lowlevel.checkpoint()
            return function(*args)

        monkeypatch.setattr(trio.to_thread, "run_sync", run_inline)


def test_the_testing_how_to_is_a_test_module_that_passes(tmp_path: Path) -> None:
    """Its code blocks, in order, are one pytest module; the timeline block
    prints what the page shows."""
    page = "how-to/prove-your-jobs-behave.md"
    blocks = python_blocks(page)
    module, rendering = blocks[0], blocks[1]
    assert "timeline.render" in rendering.text
    printed = run_script(module.text + rendering.text, page)
    assert printed == output_after(page, rendering)
    tests = [module, *blocks[2:]]
    path = tmp_path / "test_from_the_page.py"
    path.write_text("\n".join(block.text for block in tests))
    # Without the project's configuration: as a user's suite would run it
    # (no trio_mode, the chronolog pytest plugin registered by its entry point).
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", path.name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"\b5 passed\b", result.stdout), result.stdout


def test_the_debugging_how_to_shows_what_its_log_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The page's program writes jobs.jsonl; each command then prints what the
    page shows (where it shows ``...``, the lines before it are left out)."""
    page = "how-to/debug-what-your-scheduler-did.md"
    monkeypatch.chdir(tmp_path)
    (program,) = python_blocks(page)
    deterministic_trio_scheduling(monkeypatch)
    run_script(program.text, page)
    monkeypatch.undo()  # the commands below run as they do for users
    monkeypatch.chdir(tmp_path)
    checked = 0
    for command, shown in console_commands(page):
        if command.startswith("chronolog tail -f"):
            continue  # follows the log until interrupted
        printed = run_command(command)
        if shown.startswith("...\n"):
            assert printed.endswith(shown.removeprefix("...\n")), command
        elif shown or not printed:
            assert printed == shown, command
        checked += 1
    assert checked >= 10


def test_the_log_backend_how_to_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    page = "how-to/choose-a-log-backend.md"
    monkeypatch.chdir(tmp_path)
    for example in page_examples(page):
        assert run_script(example.setup + example.code, f"{page}:{example.line}") == example.output
    (query,) = [b for b in fenced_blocks((DOCS / page).read_text()) if b.info == "sql"]
    with contextlib.closing(sqlite3.connect("jobs.sqlite")) as database:
        rows = database.execute(query.text).fetchall()
    assert rows
    assert {row[2] for row in rows} == {"backup"}


def test_the_embedded_service_stops_gracefully_on_sigterm(tmp_path: Path) -> None:
    """The how-to's service, as a real process: SIGTERM while a report runs."""
    (program,) = python_blocks("how-to/embed-in-a-trio-service.md")
    (tmp_path / "service.py").write_text(program.text)
    stderr_path = tmp_path / "stderr.txt"
    log = tmp_path / "jobs.jsonl"

    def report_running() -> bool:
        if not log.exists():
            return False
        records = list(FileLog(log).read())
        started = {r.occurrence for r in records if isinstance(r, Started) and r.task == "report"}
        ended = {r.occurrence for r in records if isinstance(r, Completed | Failed)}
        return bool(started - ended)

    with stderr_path.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "service.py"], cwd=tmp_path, stderr=stderr, text=True
        )
    try:
        deadline = time.monotonic() + 60
        while not report_running():
            assert process.poll() is None, stderr_path.read_text()
            assert time.monotonic() < deadline, "no report run started"
            time.sleep(0.01)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0, stderr_path.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    output = stderr_path.read_text()
    assert "heartbeat: next run at 20" in output  # add() answered with the planned run
    assert "SIGTERM: stopping" in output
    assert output.rstrip().endswith("INFO service: stopped")
    records = list(FileLog(log).read())
    assert check_invariants(records) == []
    # The report under way when SIGTERM came finished within the grace.
    started = [r for r in records if isinstance(r, Started)]
    completed = {(r.occurrence, r.attempt) for r in records if isinstance(r, Completed)}
    assert {(r.occurrence, r.attempt) for r in started} == completed
    assert not [r for r in records if isinstance(r, Failed)]


def test_the_embedded_service_type_checks(tmp_path: Path) -> None:
    """The how-to's service passes ``mypy --strict``: the embedding API is typed."""
    (program,) = python_blocks("how-to/embed-in-a-trio-service.md")
    (tmp_path / "service.py").write_text(program.text)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--cache-dir",
            str(tmp_path / ".mypy_cache"),
            "service.py",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
