"""The reference pages' Python blocks, run: each page's blocks in order, in one namespace.

Pages whose examples are snippets of a larger program (an API's shape, a
line inside an ``async`` function) get a *preamble* here: the names the
snippet uses, set up as a reader would have them (a log, a state, a
nursery). A block with ``await`` or ``async for`` at its top level runs in
a Trio run, as a line of an async function would. The last test makes sure
every page of ``docs/`` that shows Python is run by some test.
"""

from __future__ import annotations

import ast
import contextlib
import io
import re
from pathlib import Path
from typing import Any

import pytest
import trio

DOCS = Path(__file__).resolve().parent.parent / "docs"
FENCE = re.compile(r"^```(?P<info>[^\n]*)\n(?P<body>.*?)^```$", re.M | re.S)

#: What each page's snippets need, run before its first block.
PREAMBLES: dict[str, str] = {
    "reference/projection.md": """
import trio
from datetime import UTC, datetime, timedelta
from chronolog import At, open_scheduler
from chronolog.testing import SimulatedClock

_sim = SimulatedClock(datetime(2026, 3, 1, tzinfo=UTC))

async def _backup():
    return {"files": 3}

async def _write_a_log():
    async with open_scheduler("jobs.jsonl", clock=_sim) as sched:
        await sched.add("backup", At(_sim.now() + timedelta(minutes=1)), _backup)
        await _sim.advance(timedelta(minutes=2))

trio.run(_write_a_log, clock=_sim.trio_clock)
""",
    "reference/events.md": """
from datetime import UTC, datetime
from chronolog import Started
event = Started(task="backup", at=datetime(2026, 3, 29, 1, tzinfo=UTC), seq=7,
                occurrence="backup@2026-03-29T01:00:00Z", attempt=1, node="web-1")
""",
    "reference/file-watch.md": """
import functools
from datetime import timedelta
from pathlib import Path
import trio
from chronolog import FileWatch
from chronolog._clock import SystemClock
from chronolog._ids import file_change_occurrence
from chronolog._watch import watch_file

Path("data").mkdir()
Path("data/input.csv").write_text("a,b\\n")
trigger = FileWatch("data/input.csv", poll=timedelta(milliseconds=20))
task, previous_occurrence, logged_hash = "import", None, None

async def _stop_when_seen(cancel_scope):
    # The page's loop runs forever, as a watch does: change the file, and end
    # the run once the loop has turned the change into an occurrence.
    await trio.sleep(0.05)
    Path("data/input.csv").write_text("a,b\\n1,2\\n")
    while "occurrence" not in globals():
        await trio.sleep(0.01)
    cancel_scope.cancel()
""",
    "reference/writer.md": """
from datetime import UTC, datetime
import trio
from chronolog import At, MemoryLog, Scheduled, Started, SystemClock, TaskDefined
_due = datetime(2026, 3, 29, 1, tzinfo=UTC)
log, clock = MemoryLog(), SystemClock()
log.append_nowait([
    TaskDefined(task="backup", at=_due, trigger=At(_due), target="jobs:backup"),
    Scheduled(task="backup", at=_due, occurrence="backup@2026-03-29T01:00:00Z", due=_due),
])
state = log.load_state()
event = Started(task="backup", at=datetime(2026, 3, 29, 1, tzinfo=UTC),
                occurrence="backup@2026-03-29T01:00:00Z", attempt=1, node="web-1")
""",
    "reference/clock.md": """
import trio
from datetime import UTC, datetime, timedelta
from chronolog.testing import SimulatedClock

def write_and_fsync():
    pass
""",
    "reference/testing.md": "",
}

#: Blocks that only declare something a test runner calls: run them, then this.
AFTERWARDS: dict[str, str] = {
    # The pytest-trio test the page shows, run as pytest-trio would.
    "reference/clock.md": """
_mock = trio.testing.MockClock(autojump_threshold=0)
trio.run(test_a_day_passes, _mock, clock=_mock)
""",
}


def python_blocks(page: str) -> list[str]:
    text = (DOCS / page).read_text(encoding="utf-8")
    return [m["body"] for m in FENCE.finditer(text) if m["info"].strip() == "python"]


def _has_top_level_await(source: str, name: str) -> bool:
    """Whether the block is lines of an async function (``await`` at its top level)."""
    try:
        compile(source, name, "exec")
    except SyntaxError as error:
        if "outside" in str(error) and ("await" in str(error) or "async" in str(error)):
            return True
        raise
    return False


async def _in_a_nursery(code: Any, namespace: dict[str, Any]) -> None:
    with trio.fail_after(10):  # a block that hangs fails the test instead
        async with trio.open_nursery() as nursery:
            namespace["nursery"] = nursery
            if "_stop_when_seen" in namespace:
                nursery.start_soon(namespace["_stop_when_seen"], nursery.cancel_scope)
            await eval(code, namespace)
            nursery.cancel_scope.cancel()  # a watch or a writer started by the block ends here


def run_block(source: str, namespace: dict[str, Any], name: str) -> None:
    if _has_top_level_await(source, name):
        code = compile(source, name, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        trio.run(_in_a_nursery, code, namespace)
    else:
        exec(compile(source, name, "exec"), namespace)


@pytest.mark.parametrize("page", sorted(PREAMBLES))
def test_the_page_runs(page: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {"__name__": "__docs__"}
    exec(PREAMBLES[page], namespace)
    blocks = python_blocks(page)
    assert blocks, f"{page} shows no Python"
    with contextlib.redirect_stdout(io.StringIO()):
        for number, block in enumerate(blocks, start=1):
            run_block(block, namespace, f"{page} block {number}")
        if page in AFTERWARDS:
            exec(AFTERWARDS[page], namespace)


#: Pages whose blocks are not Python run by a docs test, and why that is right.
NOT_RUN: dict[str, str] = {
    "index.md": "its block is the README's two make commands, which CI itself runs",
}


def test_every_page_that_shows_python_or_commands_is_run_by_a_test() -> None:
    """A page is run if a test names it (a docs test's page list, or a test that
    executes its example); otherwise it must say here why not."""
    shown = {
        str(path.relative_to(DOCS))
        for path in DOCS.rglob("*.md")
        if re.search(r"^```(python|console)\s*$", path.read_text(encoding="utf-8"), re.M)
    }
    tests = Path(__file__).resolve().parent
    named = "\n".join(path.read_text(encoding="utf-8") for path in tests.rglob("test_*.py"))
    unrun = sorted(
        page
        for page in shown
        if page not in NOT_RUN
        and f'"{page}"' not in named
        and f"'{page}'" not in named
        and f'/ "{page.split("/")[-1]}"' not in named
    )
    assert unrun == []
