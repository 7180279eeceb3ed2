"""The log pages of the docs, run: every code block they show, every command they print.

Pages: how-to "Recover a damaged log", and the references "Logs",
"Snapshots and compaction" and "chronolog compact". Each page runs top to
bottom in a fresh directory, as a reader would follow it:

* every ```python block runs, in one namespace per page (a ``# docs-setup``
  block too); a ```text block right after one is what it prints;
* every ``$ command`` line of a ```console block runs -- ``chronolog`` through
  the command line in process, anything else (``sed``, ``head``,
  ``sqlite3``, ...) with ``bash`` -- and what it prints (stdout and stderr,
  as a terminal shows them) must be the lines under it; the few that are
  shown but not run are listed in ``NOT_RUN`` with the reason.
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from chronolog.cli import main as chronolog_command

from .test_docs_examples import Block

DOCS = Path(__file__).resolve().parent.parent / "docs"
PAGES = (
    "how-to/recover-a-damaged-log.md",
    "reference/logs.md",
    "reference/snapshots.md",
    "reference/cli-compact.md",
)
#: Commands the pages show that the tests do not run, and why.
NOT_RUN: dict[str, str] = {
    "chronolog compact LOG --keep DURATION [--json]": "the synopsis of the command",
}
#: What changes from one run to the next in the output of a command, and what
#: the page shows instead (the compaction reads the system clock).
VARYING = [
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z"), "2026-10-24T16:44:04.007352Z"),
]


def fenced_blocks(markdown: str) -> list[Block]:
    """The fenced code blocks of a page, in order, also those indented in a list
    item (their indentation removed)."""
    blocks: list[Block] = []
    opening: tuple[str, int, str] | None = None
    body: list[str] = []
    for number, line in enumerate(markdown.splitlines(), start=1):
        stripped = line.lstrip(" ")
        if opening is None:
            if stripped.startswith("```"):
                opening = (stripped[3:].strip(), number, line[: len(line) - len(stripped)])
                body = []
        elif stripped.startswith("```") and line.startswith(opening[2]):
            info, start, _ = opening
            blocks.append(Block(info, "".join(f"{text}\n" for text in body), start, number))
            opening = None
        else:
            body.append(line.removeprefix(opening[2]))
    assert opening is None, f"a code fence opened at line {opening[1]} is never closed"
    return blocks


def steps(page: str) -> list[Block]:
    return [block for block in fenced_blocks((DOCS / page).read_text()) if block.info]


def run_python(code: str, namespace: dict[str, object], name: str) -> str:
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, name, "exec"), namespace)
    return printed.getvalue()


def run_command(command: str) -> str:
    program, *arguments = shlex.split(command)
    if program == "chronolog":
        result = CliRunner().invoke(chronolog_command, arguments, catch_exceptions=False)
        return result.output
    done = subprocess.run(
        ["bash", "-c", command], capture_output=True, text=True, check=False, timeout=60
    )
    return done.stdout + done.stderr


def unvarying(text: str) -> str:
    for pattern, shown in VARYING:
        text = pattern.sub(shown, text)
    return text


@pytest.mark.parametrize("page", PAGES)
def test_the_page_runs_as_shown(
    page: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    blocks = steps(page)
    namespace: dict[str, object] = {"__name__": "__main__"}
    ran = 0
    for index, block in enumerate(blocks):
        if block.info == "python":
            printed = run_python(block.text, namespace, f"{page}:{block.line}")
            following = blocks[index + 1] if index + 1 < len(blocks) else None
            if (
                following is not None
                and following.info == "text"
                and (following.line == block.end + 2)
            ):
                assert printed == following.text, f"{page}:{block.line}"
            else:
                assert printed == "", f"{page}:{block.line} prints what the page does not show"
            ran += 1
        elif block.info == "console":
            for chunk in re.split(r"^\$ ", block.text, flags=re.MULTILINE)[1:]:
                command, _, shown = chunk.partition("\n")
                if command in NOT_RUN:
                    continue
                assert unvarying(run_command(command)) == shown, f"{page}: {command}"
                ran += 1
    assert ran, f"{page} has nothing to run"


@pytest.mark.parametrize("page", PAGES)
def test_every_block_of_the_page_is_run_or_shown_by_one_that_is(page: str) -> None:
    """A ```text or ```json block shows what the block before it printed (or, on
    the snapshots page, a file format); there is no code that is not run."""
    blocks = steps(page)
    for index, block in enumerate(blocks):
        assert block.info in ("python", "console", "text", "json"), f"{page}:{block.line}"
        if block.info == "python":
            assert block.text.startswith(("# docs-example:", "# docs-setup")), (
                f"{page}:{block.line}: mark the block as an example or a setup"
            )
        if block.info in ("text", "json"):
            before = blocks[index - 1] if index else None
            shows_output = before is not None and before.end + 2 == block.line
            assert shows_output or page in FORMATS_SHOWN, f"{page}:{block.line}"


#: Pages whose ```text blocks also show a file format, abbreviated with "..."
#: (the snapshot document and the head of the snapshot file: what they hold is
#: checked by tests/test_snapshot.py and tests/test_log_snapshots.py).
FORMATS_SHOWN = {"reference/snapshots.md"}
