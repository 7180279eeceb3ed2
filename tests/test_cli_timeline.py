"""``chronolog timeline``: a self-contained page, checked in a real browser.

The browser test renders the page in headless Chromium (Debian's
``chromium`` package; ``.ci/run`` installs it when missing) and reads the
DOM the browser built: lanes, bars per outcome, the hover script's work, and
no script error in the browser's console.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner

from chronolog import FileLog
from chronolog.cli import main
from chronolog.cli.timeline import build_timeline, render_timeline

from .cli_logs import scenario_log

if TYPE_CHECKING:
    from pathlib import Path

BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return scenario_log(tmp_path_factory.mktemp("timeline"))


def test_lanes_bars_skips_and_the_dst_change(log: Path) -> None:
    timeline = build_timeline(FileLog(log).read())
    assert [lane.task for lane in timeline.lanes] == [
        "backup",
        "flaky",
        "old-task",
        "reindex",
        "report",
        "sync",
    ]
    backup = timeline.lanes[0]
    assert backup.counts()["completed"] == 4
    assert backup.counts()["retried"] == 1
    flaky = timeline.lanes[1].counts()
    assert (flaky["failed"], flaky["retried"]) == (10, 20)
    assert timeline.lanes[4].counts()["running"] == 1
    sync = timeline.lanes[5].counts()
    assert (sync["skipped_paused"], sync["skipped_missed"]) == (1, 23)
    (change,) = timeline.changes
    assert (change.zone, change.at) == ("Europe/Berlin", datetime(2026, 3, 29, 1, tzinfo=UTC))
    assert (change.before, change.after) == ("CET +01:00", "CEST +02:00")
    failed = next(bar for bar in timeline.lanes[1].bars if bar.outcome == "failed")
    assert "attempt 3: failed" in failed.title
    assert "error: ConnectionError: the service did not answer" in failed.title
    assert "after 20 s" in failed.title


def test_a_window_and_a_task_filter(log: Path) -> None:
    since = datetime(2026, 3, 29, 10, tzinfo=UTC)
    until = datetime(2026, 3, 29, 20, tzinfo=UTC)
    timeline = build_timeline(FileLog(log).read(), since=since, until=until, tasks=["report"])
    (lane,) = timeline.lanes
    assert all(bar.end >= since and bar.start <= until for bar in lane.bars)
    assert {bar.outcome for bar in lane.bars} == {"completed", "failed"}
    assert all(since <= skip.at <= until for skip in lane.skips)
    assert timeline.changes == []


def test_the_page_is_self_contained(log: Path) -> None:
    page = render_timeline(build_timeline(FileLog(log).read()), source="jobs.jsonl")
    assert page.startswith("<!DOCTYPE html>")
    # The only URL is the SVG namespace, which names and fetches nothing.
    assert re.findall(r"https?://[^\s\"'<>]+", page) == ["http://www.w3.org/2000/svg"]
    assert not re.search(r"<(link|img|iframe)\b|\bsrc=|@import|url\(", page)


def test_the_command_writes_the_page_and_reports_in_json(log: Path, tmp_path: Path) -> None:
    out = tmp_path / "page.html"
    result = CliRunner().invoke(main, ["timeline", str(log), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["out"] == str(out)
    assert (document["since"], document["until"]) == (
        "2026-03-27T12:00:00Z",
        document["log_end"],
    )
    assert [task["task"] for task in document["tasks"]][:2] == ["backup", "flaky"]
    assert set(document["tasks"][0]["counts"]) == {
        "completed",
        "retried",
        "failed",
        "running",
        "skipped_overlap",
        "skipped_paused",
        "skipped_missed",
        "skipped_removed",
        "skipped_redefined",
        "skipped_cancelled",
    }
    assert document["daylight_changes"] == [
        {
            "zone": "Europe/Berlin",
            "at": "2026-03-29T01:00:00Z",
            "before": "CET +01:00",
            "after": "CEST +02:00",
        }
    ]
    assert out.read_text().count('class="lane"') == 6
    text = CliRunner().invoke(main, ["timeline", str(log), "--out", str(out), "--task", "sync"])
    assert text.stdout.startswith(f"wrote {out}: 1 tasks, ")


def test_bad_windows_and_tasks(log: Path, tmp_path: Path) -> None:
    out = str(tmp_path / "page.html")
    window = ["--since", "2026-03-29T00:00Z", "--until", "2026-03-28T00:00Z"]
    backwards = CliRunner().invoke(main, ["timeline", str(log), "--out", out, *window])
    assert (backwards.exit_code, backwards.stderr) == (
        2,
        "Error: --until 2026-03-28T00:00:00Z is not after --since 2026-03-29T00:00:00Z\n",
    )
    unknown = CliRunner().invoke(main, ["timeline", str(log), "--out", out, "--task", "synk"])
    assert unknown.exit_code == 2
    assert "did you mean 'sync'?" in unknown.stderr
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    nothing = CliRunner().invoke(main, ["timeline", str(empty), "--out", out])
    assert (nothing.exit_code, nothing.stderr) == (
        1,
        "Error: the log has no records yet: there is nothing to draw\n",
    )


#: Appended to a copy of the page: point at the first failed bar, as a mouse would.
_HOVER = """<script>
document.querySelector(".attempt.failed").dispatchEvent(new MouseEvent("mouseenter"));
document.documentElement.setAttribute("data-hovered", "yes");
</script></body>"""


def _render_in_browser(page: Path) -> tuple[str, str]:
    """The DOM Chromium built from ``page``, and what it logged."""
    assert BROWSER is not None
    completed = subprocess.run(
        [
            BROWSER,
            "--headless",
            "--no-sandbox",  # tests may run as root, where the sandbox refuses to start
            "--disable-gpu",
            "--enable-logging=stderr",
            "--v=0",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return completed.stdout, completed.stderr


@pytest.mark.skipif(
    BROWSER is None,
    reason="chromium is not installed (apt-get install chromium; .ci/run does it in CI)",
)
def test_a_real_browser_renders_lanes_bars_and_runs_the_script(log: Path, tmp_path: Path) -> None:
    page = tmp_path / "page.html"
    result = CliRunner().invoke(main, ["timeline", str(log), "--out", str(page)])
    assert result.exit_code == 0
    hovered = tmp_path / "hovered.html"
    hovered.write_text(page.read_text().replace("</body>", _HOVER))
    dom, console = _render_in_browser(hovered)
    assert "Uncaught" not in console, console
    assert 'data-timeline="ready"' in dom  # the page's own script ran to its end
    assert 'data-hovered="yes"' in dom
    assert len(re.findall(r'<g class="lane" data-task="', dom)) == 6
    timeline = build_timeline(FileLog(log).read())
    for outcome in ("completed", "retried", "failed", "running"):
        expected = sum(lane.counts()[outcome] for lane in timeline.lanes)
        assert len(re.findall(rf'<rect class="attempt {outcome}"', dom)) == expected, outcome
    skips = sum(len(lane.skips) for lane in timeline.lanes)
    assert len(re.findall(r'<path class="skip ', dom)) == skips
    assert len(re.findall(r'<g class="dst-change" data-zone="Europe/Berlin"', dom)) == 1
    details = re.search(r'<div id="details">(.*?)</div>', dom, re.S)
    assert details is not None
    assert "attempt " in details.group(1)
    assert "error: " in details.group(1)  # the hover copied the failed bar's details
