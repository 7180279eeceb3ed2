"""benchmarks/compare.py at its smoke size, and the blocks of docs/benchmarks.md.

compare.py measures each workload in fresh interpreters, round after round,
and prints one JSON document. The tests run it on chronolog only: the
APScheduler environments are made by ``make compare``, not by the tests, so
``--aps3-python`` points at an interpreter that does not exist, which must
be reported as skipped, never crash the run. Nothing here asserts a timing:
only the shape of the document, and the facts a machine's speed does not
change (every run ran, nothing ran twice, what a restart skipped).
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from benchmarks.compare import WORKLOADS as ALL_WORKLOADS
from benchmarks.compare import versus_apscheduler

from .test_docs_examples import console_commands, fenced_blocks

ROOT = Path(__file__).resolve().parent.parent
COMPARE = ROOT / "benchmarks" / "compare.py"
PAGE = "benchmarks.md"
WORKLOADS = ("add", "dispatch", "lateness_burst", "idle_memory_small", "replay", "restart")
ROUNDS = 2


def compare(*arguments: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(COMPARE), *arguments],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        check=False,
    )


@pytest.fixture(scope="module")
def missing_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("nowhere") / "bin" / "python"


@pytest.fixture(scope="module")
def document(missing_python: Path) -> dict[str, Any]:
    done = compare(
        "--size",
        "smoke",
        "--rounds",
        str(ROUNDS),
        "--systems",
        "chronolog-file,aps3-memory",
        "--only",
        ",".join(WORKLOADS),
        "--aps3-python",
        str(missing_python),
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_the_document_says_what_machine_and_code_it_measured(document: dict[str, Any]) -> None:
    machine = document["machine"]
    assert machine["cpus"] >= 1
    assert machine["python"] == ".".join(map(str, sys.version_info[:3]))
    assert {"platform", "chronolog_commit", "load_average_at_start", "load_average_at_end"} <= set(
        machine
    )
    assert document["size"] == "smoke"
    assert document["rounds"] == ROUNDS
    assert document["systems"]["chronolog-file"]["chronolog"]


def test_a_system_without_its_python_is_skipped_not_a_crash(
    document: dict[str, Any], missing_python: Path
) -> None:
    assert str(missing_python) in document["systems"]["aps3-memory"]["skipped"]
    for name in ("add", "dispatch", "lateness_burst", "idle_memory_small"):
        workload = document["workloads"][name]
        assert set(workload["systems"]["aps3-memory"]) == {"skipped"}
        # No figures to compare with: no ratio is made up.
        assert workload["ratios"] == {}


def test_every_measured_system_has_every_round_and_medians(document: dict[str, Any]) -> None:
    assert list(document["workloads"]) == list(WORKLOADS)
    for name, workload in document["workloads"].items():
        figures = workload["systems"]["chronolog-file"]
        assert len(figures["rounds"]) == ROUNDS, name
        for figure in figures["rounds"]:
            assert "error" not in figure, (name, figure)
        assert set(workload["metrics"]) <= set(figures["median"]), name


def test_figures_that_do_not_depend_on_the_machine(document: dict[str, Any]) -> None:
    workloads = document["workloads"]
    for figure in workloads["dispatch"]["systems"]["chronolog-file"]["rounds"]:
        assert figure["ran"] == figure["runs"]
    for figure in workloads["lateness_burst"]["systems"]["chronolog-file"]["rounds"]:
        assert figure["duplicates"] == 0
    params = workloads["replay"]["params"]
    for figure in workloads["replay"]["systems"]["chronolog-file"]["rounds"]:
        assert figure["open_events"] == figure["open_snapshot_events"] == params["events"]
        assert figure["decode_events"] == params["events"]
    tasks = workloads["restart"]["params"]["tasks"]
    for figure in workloads["restart"]["systems"]["chronolog-file"]["rounds"]:
        assert figure["duplicates"] == "none"
        # catch_up=LATEST: each task runs its latest missed due time once.
        assert figure["catch_up_runs"] == tasks
        assert figure["skipped"]["missed"] > 0


def test_ratios_are_taken_per_round_then_their_median(document: dict[str, Any]) -> None:
    ratios = document["workloads"]["replay"]["ratios"]
    assert set(ratios) == {"replay_to_decode", "open_without_over_with_snapshot"}
    for name, ratio in ratios.items():
        assert len(ratio["rounds"]) == ROUNDS, name
        assert ratio["median"] is not None
        low, high = min(ratio["rounds"]), max(ratio["rounds"])
        assert low <= ratio["median"] <= high


def test_chronolog_and_apscheduler_are_compared_round_by_round() -> None:
    # The ratio of two systems' figures from the same round, for each metric.
    figures = {
        "chronolog-file": {"runs_per_s": 3000.0, "first_run_s": 0.4},
        "aps3-memory": {"runs_per_s": 6000.0, "first_run_s": 0.1},
        "aps4-memory": {"error": "timed out"},
    }
    assert versus_apscheduler(ALL_WORKLOADS["dispatch"], figures) == {
        "runs_per_s: chronolog-file/aps3-memory": 0.5,
        "runs_per_s: chronolog-file/aps4-memory": None,
        "first_run_s: chronolog-file/aps3-memory": 4.0,
        "first_run_s: chronolog-file/aps4-memory": None,
    }


def test_unknown_names_are_usage_errors() -> None:
    done = compare("--only", "dispatch,nope")
    assert done.returncode == 2
    assert "no workload 'nope'" in done.stderr
    done = compare("--systems", "aps5")
    assert done.returncode == 2
    assert "no system 'aps5'" in done.stderr


def test_the_plot_is_drawn_from_a_saved_document(document: dict[str, Any], tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    saved = tmp_path / "compare.json"
    saved.write_text(json.dumps(document))
    done = compare("--load", str(saved), "--plot", str(tmp_path / "compare.png"))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "compare.png").read_bytes().startswith(b"\x89PNG")


# -- docs/benchmarks.md --------------------------------------------------------

#: Commands the page shows that the tests do not run, and why.
NOT_RUN = {
    "make compare": (
        "it takes about 11 minutes; the page quotes one run, and the smoke "
        "run above covers the script"
    ),
    'make compare COMPARE_ARGS="--only dispatch --rounds 5"': "the same, for one workload",
    (
        ".venv/bin/python benchmarks/compare.py --load .venv/compare.json"
        " --plot docs/benchmarks.png"
    ): ("it needs a full run's JSON; test_the_plot_is_drawn_from_a_saved_document draws one"),
}


def test_every_command_of_the_page_runs_or_says_why_not() -> None:
    ran = 0
    for command, _ in console_commands(PAGE):
        if command in NOT_RUN:
            continue
        program, script, *arguments = shlex.split(command)
        assert (program, script) == (".venv/bin/python", "benchmarks/compare.py"), command
        assert "--size smoke" in " ".join(arguments), f"a full run in a test: {command}"
        done = compare(*arguments)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["size"] == "smoke"
        ran += 1
    assert ran


def test_the_json_the_page_shows_has_the_shape_compare_prints(document: dict[str, Any]) -> None:
    blocks = fenced_blocks((ROOT / "docs" / PAGE).read_text())
    assert {block.info for block in blocks} <= {"console", "json"}
    (shown,) = [json.loads(block.text) for block in blocks if block.info == "json"]
    workload = document["workloads"]["dispatch"]
    assert set(shown) == {"dispatch"}
    # A full run also says which systems ran fewer tasks (params_per_system).
    assert set(workload) <= set(shown["dispatch"]) <= {*workload, "params_per_system"}
    figures = shown["dispatch"]["systems"]["chronolog-file"]
    assert set(figures) == {"rounds", "median"}
    assert set(figures["median"]) <= set(workload["systems"]["chronolog-file"]["median"])
