"""``chronolog timeline LOG --out FILE.html``: a picture of what ran when.

The page is self-contained: inline SVG and CSS, a few lines of inline
script, no network, no external file -- it opens from a mail attachment or
a CI artifact as well as from disk. One lane per task; each attempt is a bar
from its start to its end, coloured by outcome (completed, failed, failed and
retried, still running); skipped occurrences are diamonds at their due time,
coloured by reason; a failure that ended a run for good gets a red marker
above its bar. Daylight-saving changes of the tasks' cron time zones are
dashed vertical lines. Every mark carries its details (occurrence, attempt,
times, duration, error) in an SVG ``<title>`` -- a browser shows it on
hover -- and the inline script copies them into a details box.

Times on the axis are UTC, like every time the command line prints.
"""

from __future__ import annotations

import html
import importlib.resources
import string
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from zoneinfo import ZoneInfo

import attrs
import click

from .._errors import UnknownTask, closest_match
from .._events import SkipReason, TaskDefined
from .._occurrences import OccurrenceTracker
from .._projection import Outcome
from .._triggers import Cron
from .._zones import transitions_between
from ._common import (
    BadUsage,
    CommandError,
    instant_option,
    json_option,
    log_argument,
    translate_errors,
)
from ._log_names import DatabaseURL
from ._output import (
    date_text,
    describe_trigger,
    duration_text,
    instant_text,
    iso,
    print_json,
    result_text,
    show,
)
from ._progress import progress_over
from ._reading import after_base, known_records, open_log

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable

    from .._events import Event
    from .._occurrences import Attempt, RecordedOccurrence

__all__ = ["Timeline", "build_timeline", "render_timeline", "timeline_command"]

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)

# Layout, in SVG pixels.
_LABEL_WIDTH: Final = 230
_PLOT_WIDTH: Final = 1100
_RIGHT_MARGIN: Final = 60
_TOP: Final = 58  # room for DST labels and the axis above the lanes
_LANE_HEIGHT: Final = 38
_BAR_HEIGHT: Final = 16
_MIN_BAR_WIDTH: Final = 2.0
_BOTTOM: Final = 30

#: Tick spacings to choose from, so that about eight ticks span the window.
_TICK_STEPS: Final = tuple(
    timedelta(seconds=s)
    for s in (
        1, 2, 5, 10, 15, 30,
        60, 120, 300, 600, 900, 1800,
        3600, 2 * 3600, 3 * 3600, 6 * 3600, 12 * 3600,
        86_400, 2 * 86_400, 7 * 86_400, 14 * 86_400, 28 * 86_400,
        91 * 86_400, 182 * 86_400, 364 * 86_400,
    )
)  # fmt: skip

_LEGEND: Final = (
    ("completed", "#2f9e44", "completed"),
    ("retried", "#f08c00", "failed, retried"),
    ("failed", "#e03131", "failed for good"),
    ("running", "#74c0fc", "running at the end of the log"),
    ("overlap", "#868e96", "skipped: overlap"),
    ("paused", "#fab005", "skipped: paused"),
    ("missed", "#9c36b5", "skipped: missed while down"),
    ("removed", "#343a40", "skipped: redefined or removed"),
)


_COUNT_KEYS: Final = (
    "completed",
    "retried",
    "failed",
    "running",
    *(f"skipped_{reason}" for reason in SkipReason),
)


@attrs.frozen
class Bar:
    """One attempt, drawn from its start to its end."""

    occurrence: str
    attempt: int
    outcome: str
    """``completed``, ``failed`` (for good), ``retried`` (failed, retry planned) or ``running``."""
    start: datetime
    end: datetime
    title: str


@attrs.frozen
class SkipMark:
    """A skipped occurrence, drawn at its due time."""

    occurrence: str
    reason: str
    at: datetime
    title: str
    until: datetime | None = None
    """For due times missed in one outage, one record: the last of them
    (``at`` is the first); the mark is drawn as a band from ``at`` to here."""
    count: int = 1
    """How many due times the mark stands for."""


@attrs.define
class Lane:
    """One task's row."""

    task: str
    trigger: str
    zones: set[str] = attrs.field(factory=set)
    bars: list[Bar] = attrs.field(factory=list)
    skips: list[SkipMark] = attrs.field(factory=list)

    def counts(self) -> dict[str, int]:
        """Attempts by outcome and skips by reason; every key is always there."""
        counted = dict.fromkeys(_COUNT_KEYS, 0)
        for bar in self.bars:
            counted[bar.outcome] += 1
        for skip in self.skips:
            counted[f"skipped_{skip.reason}"] += skip.count  # due times, not records
        return counted


@attrs.frozen
class DaylightChange:
    """A change of UTC offset in one of the tasks' time zones."""

    zone: str
    at: datetime
    before: str
    after: str


@attrs.frozen
class Timeline:
    """What the page shows: a window of time, lanes, daylight-saving changes."""

    since: datetime
    until: datetime
    log_end: datetime | None
    lanes: list[Lane]
    changes: list[DaylightChange]


def _offset_text(seconds: int) -> str:
    sign = "-" if seconds < 0 else "+"
    hours, rest = divmod(abs(seconds), 3600)
    return f"{sign}{hours:02d}:{rest // 60:02d}"


def _local(when: datetime, zones: set[str]) -> str:
    return "".join(
        f"\n  {date_text(local)} {local:%H:%M:%S %Z} in {zone}"
        for zone in sorted(zones)
        for local in [when.astimezone(ZoneInfo(zone))]
    )


def _bar(entry: RecordedOccurrence, attempt: Attempt, end: datetime, zones: set[str]) -> Bar:
    if attempt.outcome is Outcome.RUNNING:
        outcome = "running"
    elif attempt.outcome is Outcome.COMPLETED:
        outcome = "completed"
    else:
        outcome = "retried" if attempt.retry_at is not None else "failed"
    lines = [f"{entry.occurrence}", f"attempt {attempt.number}: {outcome}"]
    due = entry.due
    if due is not None:
        lines.append(f"due {instant_text(due)}{_local(due, zones)}")
    node = f" on {attempt.node}" if attempt.node else ""
    lines.append(f"started {instant_text(attempt.started)}{node}")
    if attempt.finished is None:
        lines.append("no end recorded: running at the end of the log")
    else:
        lines.append(
            f"finished {instant_text(attempt.finished)} after {duration_text(attempt.duration)}"
        )
    if attempt.error is not None:
        kind = f"{attempt.error_type}: " if attempt.error_type else ""
        lines.append(f"error: {kind}{attempt.error}")
    if attempt.retry_at is not None:
        lines.append(f"retry at {instant_text(attempt.retry_at)}")
    if attempt.outcome is Outcome.COMPLETED:
        lines.append(f"result: {result_text(attempt.result)}")
    return Bar(
        occurrence=entry.occurrence,
        attempt=attempt.number,
        outcome=outcome,
        start=attempt.started,
        end=attempt.finished if attempt.finished is not None else end,
        title="\n".join(lines),
    )


def _skip(entry: RecordedOccurrence, zones: set[str]) -> SkipMark:
    final = entry.last
    run = entry.run()
    reason = str(run.skip_reason)
    due = entry.due
    at = due if due is not None else final.at
    title = f"{entry.occurrence}\nskipped: {reason}\n"
    if run.last_due is not None:
        title += f"{run.count:,} due times, to {instant_text(run.last_due)}\n"
    if due is not None:
        title += f"due {instant_text(due)}{_local(due, zones)}\n"
    title += f"skipped at {instant_text(final.at)}"
    return SkipMark(
        occurrence=entry.occurrence,
        reason=reason,
        at=at,
        title=title,
        until=run.last_due,
        count=run.count,
    )


def build_timeline(
    records: Iterable[Event],
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    tasks: Collection[str] = (),
) -> Timeline:
    """Read ``records`` into lanes of bars and skip marks within ``[since, until]``.

    Without ``since``/``until`` the window spans the whole log. Raises
    `UnknownTask` for a name in ``tasks`` that the log never defines.
    """
    lanes: dict[str, Lane] = {}
    tracker = OccurrenceTracker()
    first_at: datetime | None = None
    last_at: datetime | None = None
    wanted = set(tasks)
    for record in records:
        if first_at is None:
            first_at = record.at
        last_at = record.at
        if type(record) is TaskDefined:
            lane = lanes.get(record.task)
            if lane is None:
                lane = lanes[record.task] = Lane(record.task, "")
            lane.trigger = describe_trigger(record.trigger)
            if isinstance(record.trigger, Cron) and record.trigger.tz != "UTC":
                lane.zones.add(record.trigger.tz)
            continue
        if wanted and record.task not in wanted:
            continue
        entry = tracker.feed(record)
        if entry is not None and entry.task in lanes:
            # Drawn as soon as it settles: memory holds marks, not records.
            _place(lanes[entry.task], entry, since, until, entry.last.at)
    for name in sorted(wanted - set(lanes)):
        hint = closest_match(name, sorted(lanes))
        suggestion = f"; did you mean {hint!r}?" if hint else ""
        known = ", ".join(sorted(lanes)[:10]) or "none"
        raise UnknownTask(f"no task named {name!r} in this log{suggestion} (tasks: {known})")
    start = since if since is not None else first_at
    end = until if until is not None else last_at
    if start is None or end is None:
        raise CommandError("the log has no records yet: there is nothing to draw")
    if end <= start:
        if since is not None and until is not None:
            raise BadUsage(f"--until {iso(until)} is not after --since {iso(since)}")
        # One record, or --since at the end of the log: a minute's window.
        end = start + timedelta(minutes=1)
    for entry in tracker.still_open():
        if entry.task in lanes:  # records of an undefined task: verify reports them
            _place(lanes[entry.task], entry, start, end, max(last_at or end, entry.last.at))
    shown = [lanes[name] for name in sorted(lanes) if not wanted or name in wanted]
    return Timeline(
        since=start,
        until=end,
        log_end=last_at,
        lanes=shown,
        changes=_daylight_changes(shown, start, end),
    )


def _place(
    lane: Lane,
    entry: RecordedOccurrence,
    since: datetime | None,
    until: datetime | None,
    log_end: datetime,
) -> None:
    """Add the bars and skip mark of ``entry`` that fall in ``[since, until]``
    (unbounded where None); a running attempt's bar reaches ``log_end``."""
    if entry.run().outcome is Outcome.SKIPPED:
        mark = _skip(entry, lane.zones)
        if (since is None or mark.at >= since) and (until is None or mark.at <= until):
            lane.skips.append(mark)
    for attempt in entry.attempts():
        bar = _bar(entry, attempt, max(log_end, attempt.started), lane.zones)
        if (since is None or bar.end >= since) and (until is None or bar.start <= until):
            lane.bars.append(bar)


def _seconds(when: datetime) -> int:
    return int((when - _EPOCH).total_seconds())


def _daylight_changes(lanes: list[Lane], since: datetime, until: datetime) -> list[DaylightChange]:
    zones = sorted({zone for lane in lanes for zone in lane.zones})
    changes: list[DaylightChange] = []
    for zone in zones:
        info = ZoneInfo(zone)
        for change in transitions_between(zone, _seconds(since), _seconds(until) + 1):
            at = _EPOCH + timedelta(seconds=change.at)
            before = (at - timedelta(seconds=1)).astimezone(info).tzname() or ""
            after = at.astimezone(info).tzname() or ""
            changes.append(
                DaylightChange(
                    zone=zone,
                    at=at,
                    before=f"{before} {_offset_text(change.before)}",
                    after=f"{after} {_offset_text(change.after)}",
                )
            )
    return changes


# -- drawing -----------------------------------------------------------------------


class _Scale:
    def __init__(self, since: datetime, until: datetime) -> None:
        self.since = since
        self.span = (until - since).total_seconds()

    def x(self, when: datetime) -> float:
        fraction = (when - self.since).total_seconds() / self.span
        return _LABEL_WIDTH + min(max(fraction, 0.0), 1.0) * _PLOT_WIDTH


def _ticks(since: datetime, until: datetime) -> tuple[list[datetime], str]:
    span = until - since
    step = next((s for s in _TICK_STEPS if span / s <= 10), _TICK_STEPS[-1])
    step_seconds = int(step.total_seconds())
    first = -(-_seconds(since) // step_seconds) * step_seconds
    ticks = []
    second = first
    while second <= _seconds(until):
        ticks.append(_EPOCH + timedelta(seconds=second))
        second += step_seconds
    if step >= timedelta(days=1):
        pattern = "{year:04d}-%m-%d"
    elif step >= timedelta(minutes=1):
        pattern = "%m-%d %H:%M"
    else:
        pattern = "%H:%M:%S"
    return ticks, pattern


def _text(value: str) -> str:
    return html.escape(value, quote=True)


def _svg(timeline: Timeline) -> str:
    scale = _Scale(timeline.since, timeline.until)
    height = _TOP + _LANE_HEIGHT * max(len(timeline.lanes), 1) + _BOTTOM
    width = _LABEL_WIDTH + _PLOT_WIDTH + _RIGHT_MARGIN
    bottom = _TOP + _LANE_HEIGHT * len(timeline.lanes)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="timeline">'
    ]
    ticks, pattern = _ticks(timeline.since, timeline.until)
    for tick in ticks:
        x = scale.x(tick)
        parts.append(
            f'<line class="grid" x1="{x:.1f}" y1="{_TOP - 4}" x2="{x:.1f}" y2="{bottom}"/>'
            f'<text class="tick" x="{x:.1f}" y="{_TOP - 8}" text-anchor="middle">'
            f"{_text(tick.strftime(pattern.format(year=tick.year)))}</text>"
        )
    for index, lane in enumerate(timeline.lanes):
        parts.append(_lane(lane, index, scale))
    for change in timeline.changes:
        x = scale.x(change.at)
        label = f"{change.zone}: {change.before} \u2192 {change.after}"
        parts.append(
            f'<g class="dst-change" data-zone="{_text(change.zone)}">'
            f"<title>{_text(label)} at {_text(instant_text(change.at))}</title>"
            f'<line class="dst" x1="{x:.1f}" y1="12" x2="{x:.1f}" y2="{bottom}"/>'
            f'<text class="dst-label" x="{x + 3:.1f}" y="20">{_text(label)}</text></g>'
        )
    if timeline.log_end is not None and timeline.since <= timeline.log_end <= timeline.until:
        x = scale.x(timeline.log_end)
        parts.append(
            f'<line class="end" x1="{x:.1f}" y1="{_TOP}" x2="{x:.1f}" y2="{bottom}"/>'
            f'<text class="end-label" x="{x:.1f}" y="{bottom + 14}" text-anchor="end">'
            f"end of log {_text(instant_text(timeline.log_end))}</text>"
        )
    if not timeline.lanes:
        parts.append(f'<text x="{_LABEL_WIDTH}" y="{_TOP + 20}">no tasks in this window</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def _lane(lane: Lane, index: int, scale: _Scale) -> str:
    top = _TOP + index * _LANE_HEIGHT
    counts = lane.counts()
    runs = counts.get("completed", 0) + counts.get("failed", 0) + counts.get("running", 0)
    skips = sum(value for key, value in counts.items() if key.startswith("skipped_"))
    sub = f"{runs} run{'' if runs == 1 else 's'} · {counts['failed']} failed · {skips} skipped"
    parts = [f'<g class="lane" data-task="{_text(lane.task)}">']
    if index % 2 == 0:
        parts.append(
            f'<rect class="stripe" x="0" y="{top}" width="{_LABEL_WIDTH + _PLOT_WIDTH}" '
            f'height="{_LANE_HEIGHT}"/>'
        )
    parts.append(
        f'<text class="task" x="6" y="{top + 16}">{_text(lane.task)}<title>'
        f"{_text(lane.task)}: {_text(lane.trigger)}</title></text>"
        f'<text class="sub" x="6" y="{top + 30}">{_text(sub)}</text>'
    )
    bar_top = top + (_LANE_HEIGHT - _BAR_HEIGHT) / 2
    for bar in lane.bars:
        x = scale.x(bar.start)
        width = max(scale.x(bar.end) - x, _MIN_BAR_WIDTH)
        parts.append(
            f'<rect class="attempt {bar.outcome}" data-occurrence="{_text(bar.occurrence)}" '
            f'data-attempt="{bar.attempt}" x="{x:.1f}" y="{bar_top:.1f}" width="{width:.1f}" '
            f'height="{_BAR_HEIGHT}"><title>{_text(bar.title)}</title></rect>'
        )
        if bar.outcome == "failed":
            tip = x + width
            parts.append(
                f'<path class="failure" d="M{tip - 4:.1f},{bar_top - 7:.1f} h8 l-4,6 z"/>'
            )
    middle = top + _LANE_HEIGHT / 2
    for skip in lane.skips:
        x = scale.x(skip.at)
        if skip.until is not None:
            # A range missed in one outage: a band under its diamond.
            width = max(scale.x(skip.until) - x, _MIN_BAR_WIDTH)
            parts.append(
                f'<rect class="skip {skip.reason}" x="{x:.1f}" y="{middle - 2:.1f}" '
                f'width="{width:.1f}" height="4"><title>{_text(skip.title)}</title></rect>'
            )
        parts.append(
            f'<path class="skip {skip.reason}" data-occurrence="{_text(skip.occurrence)}" '
            f'd="M{x:.1f},{middle - 6:.1f} l6,6 l-6,6 l-6,-6 z">'
            f"<title>{_text(skip.title)}</title></path>"
        )
    parts.append("</g>")
    return "".join(parts)


def render_timeline(timeline: Timeline, *, source: str) -> str:
    """The whole page for ``timeline`` (``source`` names the log in its title)."""
    template = string.Template(
        importlib.resources.files(__package__).joinpath("timeline.html").read_text("utf-8")
    )
    bars = sum(len(lane.bars) for lane in timeline.lanes)
    skips = sum(skip.count for lane in timeline.lanes for skip in lane.skips)
    summary = (
        f"{len(timeline.lanes)} tasks, {bars} attempts, {skips} skips, from "
        f"{instant_text(timeline.since)} to {instant_text(timeline.until)} (UTC)"
    )
    if timeline.changes:
        summary += f"; {len(timeline.changes)} daylight-saving change(s) shown as dashed lines"
    legend = "".join(
        f'<span><i style="background:{colour}"></i>{_text(label)}</span>'
        for _, colour, label in _LEGEND
    )
    return template.substitute(
        title=_text(f"chronolog timeline: {source}"),
        summary=_text(summary),
        legend=legend,
        svg=_svg(timeline),
    )


def timeline_json(timeline: Timeline, out: Path) -> dict[str, Any]:
    """``timeline --json``: where the page went and what it shows."""
    return {
        "out": str(out),
        "since": iso(timeline.since),
        "until": iso(timeline.until),
        "log_end": iso(timeline.log_end),
        "tasks": [
            {"task": lane.task, "trigger": lane.trigger, "counts": lane.counts()}
            for lane in timeline.lanes
        ],
        "daylight_changes": [
            {"zone": c.zone, "at": iso(c.at), "before": c.before, "after": c.after}
            for c in timeline.changes
        ],
    }


def _check_out(out: Path, log: Path | DatabaseURL) -> None:
    """`BadUsage` unless ``out`` can be the page: a file in a directory that exists,
    and not the log itself (the page would replace it)."""
    if out.is_dir():
        raise BadUsage(f"--out {out} is a directory; give the HTML file to write, e.g. week.html")
    if not out.parent.is_dir():
        raise BadUsage(
            f"--out {out}: directory {out.parent} does not exist; create it first, or write "
            f"the page elsewhere"
        )
    if out.exists() and not isinstance(log, DatabaseURL) and out.samefile(log):
        raise BadUsage(
            f"--out {out} is the log itself, and the page would replace it; give another "
            f"file, e.g. week.html"
        )


@click.command("timeline")
@log_argument
@click.option(
    "--out",
    required=True,
    type=click.Path(readable=False, path_type=Path),
    help="The HTML file to write (self-contained: open it in any browser).",
)
@instant_option("--since", "Start of the window (default: the first record).")
@instant_option("--until", "End of the window (default: the last record).")
@click.option(
    "--task",
    "tasks",
    multiple=True,
    help="Only this task (repeat the option for several; default: every task).",
)
@json_option
@translate_errors
def timeline_command(
    log: Path,
    out: Path,
    since: datetime | None,
    until: datetime | None,
    tasks: tuple[str, ...],
    as_json: bool,
) -> None:
    """Draw LOG as an HTML page: one lane per task, a bar per run, skips and DST marked."""
    event_log = open_log(log)
    _check_out(out, log)
    base = event_log.base_state()
    if base.seq and since is None:
        # The records the base keeps reach back to each task's definition: left
        # alone, the window would span years of nothing. It starts where the
        # log's own records do; an earlier --since shows the runs the base keeps.
        first = next(after_base(event_log, base), None)
        since = first.at if first is not None else None
    with progress_over(
        known_records(event_log, base),
        total=event_log.last_seq,
        description="reading",
        as_json=as_json,
    ) as records:
        timeline = build_timeline(records, since=since, until=until, tasks=tasks)
    out.write_text(render_timeline(timeline, source=log.name), encoding="utf-8")
    if as_json:
        print_json(timeline_json(timeline, out))
        return
    bars = sum(len(lane.bars) for lane in timeline.lanes)
    show(
        f"wrote {out}: {len(timeline.lanes)} tasks, {bars} attempts, from "
        f"{instant_text(timeline.since)} to {instant_text(timeline.until)}"
    )
