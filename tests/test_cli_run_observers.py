"""``chronolog run`` with result hooks and ``--metrics``: real processes, scraped over HTTP.

The processes are started by the project's own command (``python -m
chronolog run``, see `tests.test_cli_run.Process`) and run on real time, so
the tests wait for conditions, each with a timeout, never for fixed times.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import sys
import urllib.error
import urllib.request
from typing import TYPE_CHECKING

import pytest
from prometheus_client.parser import text_string_to_metric_families

from chronolog import Failed, check_invariants

from .test_cli_run import Process, job_file, processes, run, start, wait_until

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["processes"]  # the fixture, imported for these tests

METRICS_LINE = re.compile(r"serving metrics on http://(\S+)/metrics")


def metrics_url(process: Process) -> str:
    found = wait_until(lambda: METRICS_LINE.search(process.stderr), "the metrics endpoint")
    return f"http://{found[1]}/metrics"


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def sample(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def test_hooks_run_for_real_commands_and_calls_and_metrics_are_scraped(
    tmp_path: Path, processes: list[Process]
) -> None:
    (tmp_path / "hooks_for_chronolog_test.py").write_text(
        "import json, chronolog\n"
        "def work():\n    return {'worked': True}\n"
        "def noted(record):\n"
        "    run = chronolog.current_run()\n"
        "    with open('success.json', 'w') as out:\n"
        "        json.dump({'record': record, 'occurrence': run.occurrence}, out)\n"
    )
    job_file(
        tmp_path,
        f"""
log = "jobs.jsonl"

[defaults.on_failure]
command = "cat > failure.json; echo $CHRONOLOG_TASK $CHRONOLOG_ATTEMPT > failure.env"

[[jobs]]
name = "breaks"
manual = true
command = ["{sys.executable}", "-c", "raise SystemExit(3)"]

[[jobs]]
name = "works"
manual = true
call = "hooks_for_chronolog_test:work"
on_success = {{ call = "hooks_for_chronolog_test:noted" }}
""",
    )
    process = start(processes, tmp_path, "--metrics", "127.0.0.1:0")
    url = metrics_url(process)
    failed = process.control("run-now", "breaks")["occurrence"]
    worked = process.control("run-now", "works")["occurrence"]
    wait_until(lambda: (tmp_path / "failure.env").exists(), "the failure hook")
    wait_until(lambda: (tmp_path / "success.json").exists(), "the success hook")
    wait_until(lambda: (tmp_path / "failure.env").read_text(), "the failure hook's output")
    assert (tmp_path / "failure.env").read_text() == "breaks 1\n"
    record = json.loads((tmp_path / "failure.json").read_text())
    assert (record["type"], record["occurrence"]) == ("Failed", failed)
    assert "exited with status 3" in record["error"]
    noted = json.loads((tmp_path / "success.json").read_text())
    assert noted["occurrence"] == worked
    assert noted["record"]["result"] == {"worked": True}

    samples = wait_until(
        lambda: (
            found
            if sample(
                found := scrape(url), "chronolog_runs_total", task="works", outcome="completed"
            )
            else None
        ),
        "the metrics to count the run",
    )
    assert sample(samples, "chronolog_runs_total", task="breaks", outcome="failed") == 1
    assert sample(samples, "chronolog_runs_total", task="works", outcome="completed") == 1
    assert sample(samples, "chronolog_last_failure_timestamp_seconds", task="breaks")
    assert sample(samples, "chronolog_last_success_timestamp_seconds", task="works")
    assert sample(samples, "chronolog_tasks") == 2
    assert sample(samples, "chronolog_log_seq")

    process.signal(signal.SIGTERM)
    assert process.wait_exit() == 0
    assert check_invariants(process.records()) == []


def test_the_endpoint_answers_while_the_scheduler_shuts_down(
    tmp_path: Path, processes: list[Process]
) -> None:
    job_file(
        tmp_path,
        """
log = "jobs.jsonl"
shutdown_grace = "60s"

[[jobs]]
name = "long"
manual = true
command = "sleep 60"
on_failure = { command = "cat > cancelled.json" }
""",
    )
    process = start(processes, tmp_path, "--metrics", "127.0.0.1:0")
    url = metrics_url(process)
    process.control("run-now", "long")
    wait_until(lambda: sample(scrape(url), "chronolog_runs_in_progress", task="long"), "the run")
    process.signal(signal.SIGTERM)
    wait_until(lambda: "SIGTERM: stopping" in process.stderr, "the stop to begin")
    # The run has its grace; the endpoint still answers, and says the run goes on.
    assert sample(scrape(url), "chronolog_runs_in_progress", task="long") == 1
    process.signal(signal.SIGTERM)  # cancel it
    assert process.wait_exit() == 0
    (failed,) = [r for r in process.records() if isinstance(r, Failed)]
    assert failed.error == "cancelled"
    # The cancelled run's record came during the shutdown: its hook ran before the exit.
    assert json.loads((tmp_path / "cancelled.json").read_text())["seq"] == failed.seq
    with pytest.raises(urllib.error.URLError):
        scrape(url)


def test_a_metrics_port_that_is_taken_starts_nothing(tmp_path: Path) -> None:
    job_file(
        tmp_path, 'log = "jobs.jsonl"\n[[jobs]]\nname = "a"\nmanual = true\ncall = "json:dumps"\n'
    )
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, _, err = run("run", str(tmp_path / "jobs.toml"), "--metrics", f"127.0.0.1:{port}")
    assert code == 2
    assert f"cannot serve metrics on 127.0.0.1:{port}: the port is in use" in err
    assert not (tmp_path / "jobs.jsonl").exists()


@pytest.mark.parametrize("address", ["9464", "localhost:http", "[::1]"])
def test_a_metrics_address_that_is_not_one_says_how_to_write_it(
    tmp_path: Path, address: str
) -> None:
    job_file(
        tmp_path, 'log = "jobs.jsonl"\n[[jobs]]\nname = "a"\nmanual = true\ncall = "json:dumps"\n'
    )
    code, _, err = run("run", str(tmp_path / "jobs.toml"), "--metrics", address)
    assert code == 2
    assert "--metrics: metrics address" in err
    assert "HOST:PORT" in err
    assert not (tmp_path / "jobs.jsonl").exists()


def test_check_refuses_the_metrics_address_run_would_refuse(tmp_path: Path) -> None:
    """``run --check`` passes exactly when ``run`` would start: the metrics
    address is read, and its port is tried, without writing the log."""
    job_file(
        tmp_path, 'log = "jobs.jsonl"\n[[jobs]]\nname = "a"\nmanual = true\ncall = "json:dumps"\n'
    )
    jobs = str(tmp_path / "jobs.toml")
    code, _, err = run("run", jobs, "--check", "--metrics", "9464")
    assert code == 2
    assert "--metrics: metrics address" in err
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, _, err = run("run", jobs, "--check", "--metrics", f"127.0.0.1:{port}")
        assert code == 2
        assert f"cannot serve metrics on 127.0.0.1:{port}: the port is in use" in err
        code, out, err = run("run", jobs, "--check", "--json", "--metrics", f"127.0.0.1:{port}")
        assert code == 2
        assert json.loads(out)["error"]["exit_code"] == 2
    code, out, _ = run("run", jobs, "--check", "--metrics", "127.0.0.1:0")
    assert code == 0, out
    assert not (tmp_path / "jobs.jsonl").exists()
