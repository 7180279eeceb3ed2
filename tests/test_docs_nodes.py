"""The pages about several nodes, run: how-to "Run several nodes" and reference "PostgreSQL log".

Each page runs top to bottom against a fresh database, as a reader would
follow it, with the test database standing in for the pages' URL
(``postgresql://scheduler@db.internal:5432/jobs``):

* every ```console line ``$ chronolog ...`` runs through the command line in
  process, and prints the lines under it (the database's URL shown as the
  page's); the few commands shown but not run are in `NOT_RUN`, each with
  the test that covers it;
* every ```python block is a ``# docs-example``: it runs as a script, and a
  ```text block right after it is what it prints;
* every ```toml block is a job file that must load;
* any other ```text block is a picture (the how-to's diagram).
"""

from __future__ import annotations

import contextlib
import io
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from chronolog._config import load_job_file
from chronolog.cli import main as chronolog_command
from chronolog.log._postgres_names import describe_dsn

from .test_docs_logs import fenced_blocks

DOCS = Path(__file__).resolve().parent.parent / "docs"
PAGES = ("how-to/run-several-nodes.md", "reference/postgres.md")
URL = "postgresql://scheduler@db.internal:5432/jobs"
NOT_RUN: dict[str, str] = {
    # tests/test_cluster_processes.py runs three of them on one database.
    "chronolog run jobs.toml": "a scheduler that runs until it is stopped",
    # Measured, not tested: it takes minutes and needs the cores to itself.
    "python benchmarks/cluster.py --tasks 2000 --lease 2": "the benchmark",
}


def run_command(command: str, dsn: str) -> str:
    program, *arguments = shlex.split(command.replace(URL, dsn))
    assert program == "chronolog", f"only chronolog commands run here: {command}"
    result = CliRunner().invoke(chronolog_command, arguments, catch_exceptions=False)
    return result.output.replace(describe_dsn(dsn), URL)


@pytest.mark.parametrize("page", PAGES)
def test_the_page_runs_as_shown(
    page: str, postgres_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    blocks = [block for block in fenced_blocks((DOCS / page).read_text()) if block.info]
    ran = 0
    for index, block in enumerate(blocks):
        following = blocks[index + 1] if index + 1 < len(blocks) else None
        shown = following if following and following.line == block.end + 2 else None
        where = f"{page}:{block.line}"
        if block.info == "console":
            for chunk in block.text.split("$ ")[1:]:
                command, _, output = chunk.partition("\n")
                if command in NOT_RUN:
                    continue
                assert run_command(command, postgres_dsn) == output, f"{where}: {command}"
                ran += 1
        elif block.info == "python":
            assert block.text.startswith("# docs-example:"), where
            printed = io.StringIO()
            with contextlib.redirect_stdout(printed):
                code = compile(block.text.replace(URL, postgres_dsn), where, "exec")
                exec(code, {"__name__": "__main__"})
            assert shown is not None, f"{where} prints nothing shown"
            assert shown.info == "text", where
            assert printed.getvalue() == shown.text, where
            ran += 1
        elif block.info == "toml":
            (tmp_path / "jobs.toml").write_text(block.text)
            assert load_job_file(tmp_path / "jobs.toml").log == URL
            ran += 1
        else:
            assert block.info == "text", f"{where}: a {block.info} block nothing checks"
    assert ran, f"{page} has nothing to run"
