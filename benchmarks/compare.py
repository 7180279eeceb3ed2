"""chronolog side by side with APScheduler 3.11 and 4.0a6. Prints one JSON document.

Workloads (sizes of ``--size full``; ``--size smoke`` runs each in seconds):

* ``add``: add 10,000 idle tasks one after another, each call awaited (/s).
* ``dispatch``: 5,000 one-off no-op tasks all due at one instant: runs/s from
  the due time to the last run, and the due time to the first run (s).
* ``lateness_spread``: 200 tasks each due every second, phases spread over
  the second; ``lateness_burst``: 1,000 tasks every second, all due at the
  same instant. How late each run's body began (p50/p99/max, ms), and how
  many due times in the window never ran (missed).
* ``idle_memory_small`` / ``idle_memory_large``: memory held per idle task
  at 10,000 and 100,000 tasks (KiB of resident memory, RSS).
* chronolog only -- ``replay``: opening a 1,000,000-event ``FileLog`` for
  writing (lock, read, strict fold) without and with a snapshot, next to
  msgspec decoding the same records (the floor); ``restart``: 30 per-second
  tasks stopped for a 2-hour outage (simulated time, real log I/O) and
  restarted: what ran, what was skipped, duplicates (``assert_exactly_once``),
  what the restart wrote and how long it held up runs (real seconds), and
  that of a task that missed nothing (``unrelated_run_after_restart_s``).

Systems: ``chronolog-file`` (FileLog, fsync per write: durable),
``chronolog-sqlite`` (SQLiteLog: durable), ``chronolog-memory`` (MemoryLog),
``aps3-memory`` (APScheduler 3.11 ``AsyncIOScheduler``, memory job store),
``aps3-thread`` (its ``BackgroundScheduler``), ``aps4-memory`` and
``aps4-sqlite`` (APScheduler 4.0a6 ``AsyncScheduler`` on Trio, memory or
SQLite data store). Public APIs only (see the ``_compare_*.py`` modules).

Method: every measurement runs in a fresh interpreter (``compare.py
--worker``); APScheduler in its own virtual environment (``make compare``
makes ``.venv-aps3`` and ``.venv-aps4``; a system whose Python is missing is
reported as skipped). Each round measures every workload on every system,
the systems of a workload back to back (their order rotates from round to
round), so the ratios between systems are taken within a round -- on a
shared machine, speed drifts by tens of percent from minute to minute --
and the medians of the rounds are reported next to every round's figure.

Usage: python benchmarks/compare.py [--rounds N] [--only W[,W...]]
       [--systems S[,S...]] [--size smoke|full] [--plot PATH] [--load JSON]
       [--aps3-python PATH] [--aps4-python PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

SYSTEMS = {
    "chronolog-file": "chronolog, FileLog (JSON Lines, one fsync per group commit): durable",
    "chronolog-sqlite": "chronolog, SQLiteLog (WAL, synchronous=FULL): durable",
    "chronolog-memory": "chronolog, MemoryLog: not durable",
    "aps3-memory": (
        "APScheduler 3.11, AsyncIOScheduler, MemoryJobStore, async jobs on the event loop: "
        "not durable"
    ),
    "aps3-thread": (
        "APScheduler 3.11, BackgroundScheduler, MemoryJobStore, ThreadPoolExecutor(10): "
        "not durable"
    ),
    "aps4-memory": (
        "APScheduler 4.0a6, AsyncScheduler on Trio (AnyIO), MemoryDataStore: not durable"
    ),
    "aps4-sqlite": (
        "APScheduler 4.0a6, AsyncScheduler on asyncio (its SQL data store needs asyncio), "
        "SQLAlchemyDataStore on an SQLite file (aiosqlite, synchronous=FULL): durable"
    ),
}
CHRONOLOG = ("chronolog-file", "chronolog-sqlite", "chronolog-memory")
APSCHEDULER = ("aps3-memory", "aps3-thread", "aps4-memory", "aps4-sqlite")
#: The longest one measurement may take (a worker past it is stopped).
WORKER_TIMEOUT_S = 900


@dataclass(frozen=True)
class Workload:
    name: str
    what: str
    #: Metric name -> (unit, "higher" or "lower" is better); the ones compared.
    metrics: dict[str, tuple[str, str]]
    sizes: dict[str, dict[str, Any]]
    #: The systems measured unless ``--systems`` names others.
    systems: tuple[str, ...]
    #: The systems that can run it (``--systems`` picks among these).
    allowed: tuple[str, ...] = tuple(SYSTEMS)
    #: Full-size parameters changed for one system: a figure per task or per
    #: run from fewer of them, where the full count would take most of the
    #: run's time budget (the JSON gives each system's parameters).
    scaled: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Measurements (each its own interpreter) that make up one round of one
    #: system; their figures are merged, a part's keys prefixed by its name.
    parts: tuple[str, ...] = ()
    #: Ratios from one round's figures per system; the default compares each
    #: chronolog system with each APScheduler one, metric by metric.
    ratios: Callable[[Workload, dict[str, dict[str, Any]]], dict[str, float | None]] | None = (
        field(default=None)
    )


def _ratio(over: Any, under: Any) -> float | None:
    if not _is_number(over) or not _is_number(under) or under == 0:
        return None
    return round(over / under, 3)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value == value


def versus_apscheduler(
    workload: Workload, figures: dict[str, dict[str, Any]]
) -> dict[str, float | None]:
    """``metric: chronolog-X/aps-Y``: chronolog's figure over APScheduler's."""
    ratios: dict[str, float | None] = {}
    for metric in workload.metrics:
        for ours in (system for system in figures if system in CHRONOLOG):
            for theirs in (system for system in figures if system in APSCHEDULER):
                ratios[f"{metric}: {ours}/{theirs}"] = _ratio(
                    figures[ours].get(metric), figures[theirs].get(metric)
                )
    return ratios


def add_ratios(workload: Workload, figures: dict[str, dict[str, Any]]) -> dict[str, float | None]:
    """`versus_apscheduler`, and chronolog's fast path (``Scheduler.batch``) over
    APScheduler's add, which has no batch form."""
    ratios = versus_apscheduler(workload, figures)
    for ours in (system for system in figures if system in CHRONOLOG):
        for theirs in (system for system in figures if system in APSCHEDULER):
            ratios[f"fast_add_per_s: {ours}/{theirs}"] = _ratio(
                figures[ours].get("fast_add_per_s"),
                figures[theirs].get("fast_add_per_s", figures[theirs].get("add_per_s")),
            )
    return ratios


def replay_ratios(_: Workload, figures: dict[str, dict[str, Any]]) -> dict[str, float | None]:
    file = figures.get("chronolog-file", {})
    return {
        # The foundation target: >= 0.5.
        "replay_to_decode": _ratio(file.get("open_events_per_s"), file.get("decode_events_per_s")),
        "open_without_over_with_snapshot": _ratio(
            file.get("open_open_s"), file.get("open_snapshot_open_s")
        ),
    }


def no_ratios(_: Workload, figures: dict[str, dict[str, Any]]) -> dict[str, float | None]:
    return {}


LATENESS_METRICS = {"p50_ms": ("ms", "lower"), "p99_ms": ("ms", "lower"), "missed": ("", "lower")}
# The defaults leave out aps3-thread: aps3-memory dispatches a burst faster
# and with a lower p99 lateness; aps3-thread starts a burst's first run
# sooner (docs/benchmarks.md). --systems adds it. aps4-sqlite manages
# about 50 runs/s on these machines: it cannot keep up with 200 runs/s, and
# holds a task in its database, not in memory.
EVERY_SYSTEM = (*CHRONOLOG, "aps3-memory", "aps4-memory", "aps4-sqlite")
LATENESS_SYSTEMS = ("chronolog-file", "chronolog-sqlite", "aps3-memory", "aps4-memory")
MEMORY_SYSTEMS = ("chronolog-file", "aps3-memory", "aps4-memory")


def _lateness(
    tasks: int, seconds: int, *, burst: bool, lead: float, warmup: float, drain: float = 1.0
) -> dict[str, Any]:
    return {
        "tasks": tasks,
        "seconds": seconds,
        "burst": burst,
        "lead_s": lead,
        "warmup_s": warmup,
        "drain_s": drain,
    }


WORKLOADS = {
    workload.name: workload
    for workload in (
        Workload(
            "add",
            "add idle tasks one after another, each call awaited (add_per_s); and "
            "through the documented fast path, where a system has one (fast_add_per_s: "
            "chronolog's Scheduler.batch(), one write for all; APScheduler has no batch "
            "form of add, so its fast path is its add)",
            {"add_per_s": ("/s", "higher"), "fast_add_per_s": ("/s", "higher")},
            {"full": {"tasks": 10_000}, "smoke": {"tasks": 100}},
            EVERY_SYSTEM,
            scaled={"aps4-sqlite": {"tasks": 1_000}},
            ratios=add_ratios,
        ),
        Workload(
            "dispatch",
            "one-off no-op tasks all due at one instant: due time to the last run's "
            "start (runs/s) and to the first run's start (s)",
            {"runs_per_s": ("/s", "higher"), "first_run_s": ("s", "lower")},
            {"full": {"runs": 5_000, "lead_s": 1.0}, "smoke": {"runs": 100, "lead_s": 0.2}},
            EVERY_SYSTEM,
            scaled={"aps4-sqlite": {"runs": 500}},
        ),
        Workload(
            "lateness_spread",
            "tasks due every second, phases spread evenly over the second: how late "
            "each run began",
            LATENESS_METRICS,
            {
                "full": _lateness(200, 5, burst=False, lead=2.0, warmup=2.0),
                "smoke": _lateness(10, 1, burst=False, lead=0.3, warmup=0.0, drain=0.3),
            },
            LATENESS_SYSTEMS,
        ),
        Workload(
            "lateness_burst",
            "tasks due every second, all at the same instant: how late each run began",
            LATENESS_METRICS,
            {
                "full": _lateness(1_000, 5, burst=True, lead=2.0, warmup=2.0),
                "smoke": _lateness(20, 1, burst=True, lead=0.3, warmup=0.0, drain=0.3),
            },
            LATENESS_SYSTEMS,
        ),
        Workload(
            "idle_memory_small",
            "memory held per idle task (resident memory, RSS), all tasks added and asleep",
            {"kib_per_task": ("KiB", "lower")},
            {"full": {"tasks": 10_000}, "smoke": {"tasks": 100}},
            MEMORY_SYSTEMS,
        ),
        Workload(
            "idle_memory_large",
            "memory held per idle task (resident memory, RSS), all tasks added and asleep",
            {"kib_per_task": ("KiB", "lower")},
            {"full": {"tasks": 100_000}, "smoke": {"tasks": 300}},
            MEMORY_SYSTEMS,
        ),
        Workload(
            "replay",
            "a FileLog of per-minute runs of 20 tasks (100 records per write), opened for "
            "writing as open_scheduler does (lock, read, strict fold), without and with a "
            "snapshot at its end; and msgspec decoding its records (the floor)",
            {
                "open_open_s": ("s", "lower"),
                "open_snapshot_open_s": ("s", "lower"),
                "decode_decode_s": ("s", "lower"),
            },
            {"full": {"events": 1_000_000}, "smoke": {"events": 2_000}},
            ("chronolog-file",),
            allowed=("chronolog-file",),
            parts=("decode", "open", "open_snapshot"),
            ratios=replay_ratios,
        ),
        Workload(
            "restart",
            "per-second tasks run, stop, stay down (simulated time, real log I/O), restart "
            "and run on (catch_up=LATEST, the default): what ran, what was skipped, "
            "duplicates, what the restart wrote, real seconds until runs resumed and "
            "until a task that missed nothing ran",
            {
                "records_written_on_restart": ("", "lower"),
                "first_run_after_restart_s": ("s", "lower"),
                "every_task_ran_after_restart_s": ("s", "lower"),
                "unrelated_run_after_restart_s": ("s", "lower"),
            },
            {
                "full": {"tasks": 30, "before_s": 60, "outage_s": 7_200, "after_s": 60},
                "smoke": {"tasks": 3, "before_s": 5, "outage_s": 600, "after_s": 5},
            },
            ("chronolog-file",),
            allowed=CHRONOLOG,
            ratios=no_ratios,
        ),
    )
}


# -- the worker: one measurement in this interpreter ---------------------------


def worker(options: argparse.Namespace) -> None:
    params = json.loads(options.params)
    system = options.system
    if system.startswith("chronolog-"):
        import _compare_chronolog as module
    elif system.startswith("aps3-"):
        import _compare_aps3 as module  # type: ignore[no-redef]
    else:
        import _compare_aps4 as module  # type: ignore[no-redef]
    result = module.run(options.worker, system, Path(options.data), params)
    result["peak_rss_mib"] = round(_peak_rss_kib() / 1024, 1)
    print(json.dumps(result))


def _peak_rss_kib() -> int:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


# -- the parent: rounds of fresh interpreters ----------------------------------


def measure(
    python: str, workload: str, system: str, params: dict[str, Any], data: Path
) -> dict[str, Any]:
    """Run one measurement in a fresh interpreter; its figures (or an error)."""
    command = [
        python,
        str(HERE / "compare.py"),
        "--worker",
        workload,
        "--system",
        system,
        "--params",
        json.dumps(params),
        "--data",
        str(data),
    ]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=WORKER_TIMEOUT_S, cwd=ROOT
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {WORKER_TIMEOUT_S} s"}
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = done.stderr.strip().splitlines()[-3:]
        return {"error": f"exit {done.returncode}: " + " | ".join(tail)}
    try:
        result: dict[str, Any] = json.loads(lines[-1])
    except json.JSONDecodeError:
        return {"error": f"not JSON: {lines[-1][:200]}"}
    return result


def measure_with_retry(
    python: str, workload: str, system: str, params: dict[str, Any], data: Path
) -> dict[str, Any]:
    """A burst whose set-up ran past its due time is measured again, once,
    with four times the margin (the machine slowed down mid-set-up)."""
    result = measure(python, workload, system, params, data)
    if str(result.get("error", "")).startswith("set-up overran"):
        shutil.rmtree(data, ignore_errors=True)
        data.mkdir(parents=True)
        params = params | {"margin_factor": 4 * params.get("margin_factor", 2.0)}
        result = measure(python, workload, system, params, data) | {"retried": True}
    return result


def _python_facts(python: str) -> dict[str, Any]:
    """Version facts of an interpreter (its packages of interest), or why not."""
    if not Path(python).exists():
        return {"skipped": f"no interpreter at {python} (make compare creates it)"}
    probe = (
        "import importlib.metadata as m, json, platform\n"
        "def version(name):\n"
        "    try:\n"
        "        return m.version(name)\n"
        "    except m.PackageNotFoundError:\n"
        "        return None\n"
        "names = ['apscheduler', 'chronolog', 'trio', 'anyio', 'sqlalchemy', 'msgspec']\n"
        "facts = {'python': platform.python_version(),\n"
        "    **{name: version(name) for name in names if version(name)}}\n"
        "if 'chronolog' in facts:\n"
        "    import importlib.util, os\n"
        "    origin = importlib.util.find_spec('chronolog').origin\n"
        "    facts['chronolog_imported_from'] = os.path.dirname(origin)\n"
        "print(json.dumps(facts))\n"
    )
    try:
        done = subprocess.run(
            [python, "-c", probe], capture_output=True, text=True, timeout=60, check=True
        )
    except (OSError, subprocess.SubprocessError) as error:
        return {"skipped": f"{python} does not run: {error}"}
    facts: dict[str, Any] = json.loads(done.stdout)
    facts["executable"] = python
    return facts


def system_pythons(options: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """For each system: the interpreter that measures it and its versions, or
    ``{"skipped": reason}``."""
    chronolog = _python_facts(sys.executable)
    if "skipped" not in chronolog and "chronolog" not in chronolog:
        chronolog = {"skipped": f"chronolog is not installed for {sys.executable}"}
    aps3 = _python_facts(options.aps3_python)
    if "skipped" not in aps3 and not str(aps3.get("apscheduler", "")).startswith("3."):
        aps3 = {"skipped": f"{options.aps3_python} has no APScheduler 3 (make compare)"}
    aps4 = _python_facts(options.aps4_python)
    if "skipped" not in aps4 and not str(aps4.get("apscheduler", "")).startswith("4."):
        aps4 = {"skipped": f"{options.aps4_python} has no APScheduler 4 (make compare)"}
    aps4_sqlite = aps4
    if "skipped" not in aps4 and "sqlalchemy" not in aps4:
        aps4_sqlite = {"skipped": f"{options.aps4_python} has no SQLAlchemy (make compare)"}
    return {
        "chronolog-file": chronolog,
        "chronolog-sqlite": chronolog,
        "chronolog-memory": chronolog,
        "aps3-memory": aps3,
        "aps3-thread": aps3,
        "aps4-memory": aps4,
        "aps4-sqlite": aps4_sqlite,
    }


def machine_facts() -> dict[str, Any]:
    facts: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "processor": _cpu_model(),
        "python": platform.python_version(),
        "load_average_at_start": [round(load, 2) for load in os.getloadavg()],
    }
    facts.update(_git_facts())
    return facts


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor()


def _git_facts() -> dict[str, Any]:
    def git(*arguments: str) -> str:
        return subprocess.run(
            ["git", *arguments], capture_output=True, text=True, cwd=ROOT, check=True
        ).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        changed = git("status", "--porcelain", "--untracked-files=no", "--", "src")
    except (OSError, subprocess.CalledProcessError):
        return {"chronolog_commit": None}
    # The repository's commit, and whether src/ has uncommitted changes (the
    # systems' facts say where chronolog was imported from: with PYTHONPATH
    # set to an exported commit's src/, that is what was measured).
    return {"chronolog_commit": commit, "chronolog_src_modified": bool(changed)}


def median_of(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """The median of every numeric figure over the rounds that measured it."""
    medians: dict[str, Any] = {}
    keys = dict.fromkeys(key for figures in rounds for key in figures)
    for key in keys:
        values = [figures[key] for figures in rounds if _is_number(figures.get(key))]
        if values and key != "peak_rss_mib":
            medians[key] = round(statistics.median(values), 4)
    return medians


def run_rounds(options: argparse.Namespace) -> dict[str, Any]:
    pythons = system_pythons(options)
    interpreter = {
        system: sys.executable
        if system in CHRONOLOG
        else options.aps3_python
        if system.startswith("aps3-")
        else options.aps4_python
        for system in SYSTEMS
    }
    chosen = options.systems.split(",") if options.systems else None
    workloads = (
        [WORKLOADS[name] for name in options.only.split(",")]
        if options.only
        else list(WORKLOADS.values())
    )
    document: dict[str, Any] = {
        "benchmark": "compare",
        "size": options.size,
        "rounds": options.rounds,
        "machine": machine_facts(),
        "systems": {system: {"what": SYSTEMS[system], **pythons[system]} for system in SYSTEMS},
        "workloads": {},
    }
    plan: dict[str, list[str]] = {}
    for workload in workloads:
        wanted = (
            [system for system in workload.allowed if system in chosen]
            if chosen
            else [system for system in workload.systems]
        )
        entry: dict[str, Any] = {
            "what": workload.what,
            "params": workload.sizes[options.size],
            **(
                {"params_per_system": workload.scaled}
                if options.size == "full" and workload.scaled
                else {}
            ),
            "metrics": {
                name: {"unit": unit, "better": better}
                for name, (unit, better) in workload.metrics.items()
            },
            "systems": {},
            "ratios": {},
        }
        for system in wanted:
            skipped = pythons[system].get("skipped")
            entry["systems"][system] = {"skipped": skipped} if skipped else {"rounds": []}
        plan[workload.name] = [system for system in wanted if "skipped" not in pythons[system]]
        document["workloads"][workload.name] = entry
    with tempfile.TemporaryDirectory(prefix="chronolog-compare-") as scratch:
        shared = Path(scratch) / "shared"
        shared.mkdir()
        if "chronolog-file" in plan.get("replay", []):
            _progress("replay: building the log")
            built = measure(
                interpreter["chronolog-file"],
                "replay_build",
                "chronolog-file",
                WORKLOADS["replay"].sizes[options.size],
                shared,
            )
            document["workloads"]["replay"]["log"] = built
            if "error" in built:
                plan["replay"] = []
                document["workloads"]["replay"]["systems"]["chronolog-file"] = {
                    "skipped": f"the log could not be built: {built['error']}"
                }
        for round_number in range(options.rounds):
            for workload in workloads:
                _run_round(
                    workload,
                    plan[workload.name],
                    round_number,
                    options,
                    interpreter,
                    document["workloads"][workload.name],
                    Path(scratch),
                    shared,
                )
    for workload in workloads:
        entry = document["workloads"][workload.name]
        for figures in entry["systems"].values():
            if "rounds" in figures:
                figures["median"] = median_of(figures["rounds"])
        for ratio in entry["ratios"].values():
            values = [value for value in ratio["rounds"] if value is not None]
            ratio["median"] = round(statistics.median(values), 3) if values else None
    document["machine"]["load_average_at_end"] = [round(load, 2) for load in os.getloadavg()]
    return document


def _run_round(
    workload: Workload,
    systems: list[str],
    round_number: int,
    options: argparse.Namespace,
    interpreter: dict[str, str],
    entry: dict[str, Any],
    scratch: Path,
    shared: Path,
) -> None:
    if not systems:
        return
    shift = round_number % len(systems)
    order = systems[shift:] + systems[:shift]
    figures: dict[str, dict[str, Any]] = {}
    for system in order:
        merged: dict[str, Any] = {}
        for part in workload.parts or ("",):
            params = dict(workload.sizes[options.size])
            if options.size == "full":
                params.update(workload.scaled.get(system, {}))
            if part:
                params["part"] = part
                data = shared
            else:
                data = scratch / f"{workload.name}-{system}-{round_number}"
                data.mkdir()
            started = time.perf_counter()
            result = measure_with_retry(interpreter[system], workload.name, system, params, data)
            if not part:
                shutil.rmtree(data, ignore_errors=True)
            _progress(
                f"round {round_number + 1}/{options.rounds} {workload.name} {system} {part} "
                f"{time.perf_counter() - started:.1f}s: {_brief(workload, result, part)}"
            )
            merged.update(
                {f"{part}_{key}" if part else key: value for key, value in result.items()}
            )
        figures[system] = merged
        entry["systems"][system]["rounds"].append(merged)
    ratio = (workload.ratios or versus_apscheduler)(workload, figures)
    for name, value in ratio.items():
        entry["ratios"].setdefault(name, {"rounds": []})["rounds"].append(value)


def _brief(workload: Workload, result: dict[str, Any], part: str) -> str:
    if "error" in result:
        return f"error: {result['error']}"
    shown = [
        f"{key}={result[key]}"
        for key in result
        if key in workload.metrics or f"{part}_{key}" in workload.metrics
    ]
    return ", ".join(shown) or "done"


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


# -- the plot --------------------------------------------------------------------

#: (workload, metric, title) of each panel of the plot.
PANELS = (
    ("add", "add_per_s", "add (tasks/s, higher is better)"),
    ("dispatch", "runs_per_s", "dispatch a burst (runs/s, higher is better)"),
    ("dispatch", "first_run_s", "burst: due to first run (s, lower is better)"),
    ("lateness_spread", "p99_ms", "lateness p99, spread (ms, lower is better)"),
    ("lateness_burst", "p99_ms", "lateness p99, burst (ms, lower is better)"),
    ("idle_memory_large", "kib_per_task", "memory per idle task (KiB, lower is better)"),
)


def plot(document: dict[str, Any], path: Path) -> None:
    """A bar chart of the medians, one panel per headline figure (a log scale
    where the systems differ by more than 20 times)."""
    try:
        import matplotlib
    except ImportError:
        raise SystemExit(
            "--plot needs matplotlib: pip install matplotlib (make compare installs it)"
        ) from None

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, NullFormatter

    panels = [
        (workload, metric, title)
        for workload, metric, title in PANELS
        if workload in document["workloads"]
    ]
    if not panels:
        raise SystemExit("--plot: none of the plotted workloads was measured")
    columns = min(3, len(panels))
    rows = (len(panels) + columns - 1) // columns
    figure, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.3 * rows), squeeze=False)
    colours = {system: f"C{index}" for index, system in enumerate(SYSTEMS)}
    short = FuncFormatter(lambda value, _: figure_text(value))
    for axis, (workload, metric, title) in zip(axes.flat, panels, strict=False):
        names, values = [], []
        for system, figures in document["workloads"][workload]["systems"].items():
            value = figures.get("median", {}).get(metric)
            if _is_number(value) and value > 0:
                names.append(system)
                values.append(value)
        axis.bar(range(len(names)), values, color=[colours[name] for name in names])
        axis.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=7)
        if values and max(values) / min(values) > 20:
            axis.set_yscale("log")
        axis.yaxis.set_major_formatter(short)
        axis.yaxis.set_minor_formatter(NullFormatter())
        axis.set_title(title, fontsize=8)
        axis.tick_params(axis="y", labelsize=7)
        for index, value in enumerate(values):
            axis.annotate(figure_text(value), (index, value), ha="center", va="bottom", fontsize=7)
    for axis in list(axes.flat)[len(panels) :]:
        axis.set_visible(False)
    machine = document["machine"]
    figure.suptitle(
        f"chronolog and APScheduler: medians of {document['rounds']} rounds, "
        f"{machine['cpus']} CPUs, Python {machine['python']}",
        fontsize=9,
    )
    figure.tight_layout()
    figure.savefig(path, dpi=72)
    plt.close(figure)


def figure_text(value: float) -> str:
    """A figure as a table shows it: 16,532 / 994 / 13.2 / 0.81 / 0.0201."""
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


# -- the command -------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every measurement")
    parser.add_argument(
        "--only", help="workloads to run, comma-separated: " + ", ".join(WORKLOADS)
    )
    parser.add_argument(
        "--systems",
        help="systems to measure, comma-separated (default: each workload's own): "
        + ", ".join(SYSTEMS),
    )
    parser.add_argument("--size", choices=("smoke", "full"), default="full")
    parser.add_argument("--plot", type=Path, help="write a bar chart of the medians (matplotlib)")
    parser.add_argument(
        "--load", type=Path, help="measure nothing: plot the document a previous run printed"
    )
    parser.add_argument("--aps3-python", default=str(ROOT / ".venv-aps3" / "bin" / "python"))
    parser.add_argument("--aps4-python", default=str(ROOT / ".venv-aps4" / "bin" / "python"))
    # The worker's side (internal).
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--system", help=argparse.SUPPRESS)
    parser.add_argument("--params", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.worker:
        worker(options)
        return
    for name in (options.only or "").split(",") if options.only else ():
        if name not in WORKLOADS:
            parser.error(f"--only: no workload {name!r}; there are {', '.join(WORKLOADS)}")
    for name in options.systems.split(",") if options.systems else ():
        if name not in SYSTEMS:
            parser.error(f"--systems: no system {name!r}; there are {', '.join(SYSTEMS)}")
    if options.rounds < 1:
        parser.error("--rounds must be at least 1")
    if options.load:
        document = json.loads(options.load.read_text())
    else:
        document = run_rounds(options)
        print(json.dumps(document, indent=2))
    if options.plot:
        plot(document, options.plot)
        _progress(f"plot written to {options.plot}")


if __name__ == "__main__":
    main()
