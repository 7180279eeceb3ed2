"""The public surface, pinned: adding or removing a name is a visible decision."""

from __future__ import annotations

import io
import pathlib
import tokenize
import typing

import msgspec

import chronolog
import chronolog.log
import chronolog.testing

CHRONOLOG = [
    "AddBatch",
    "At",
    "Attempt",
    "CatchUp",
    "ChronologError",
    "ClaimConflict",
    "Clock",
    "Compaction",
    "Completed",
    "ConfigError",
    "Cron",
    "DuplicateTask",
    "Event",
    "EventLog",
    "Every",
    "Explanation",
    "Failed",
    "FileLog",
    "FileWatch",
    "InvalidOccurrenceId",
    "InvalidTrigger",
    "LogChanged",
    "LogClosed",
    "LogCorrupted",
    "LogLocked",
    "LogRepaired",
    "Manual",
    "MemoryLog",
    "Occurrence",
    "OccurrenceState",
    "Outcome",
    "Overlap",
    "Policy",
    "Retry",
    "Rule",
    "Run",
    "RunContext",
    "SQLiteLog",
    "Scheduled",
    "Scheduler",
    "SchedulerStatistics",
    "SkipReason",
    "Skipped",
    "SnapshotIgnored",
    "Started",
    "State",
    "SystemClock",
    "TaskDefined",
    "TaskPaused",
    "TaskRemoved",
    "TaskResumed",
    "TaskStatus",
    "Trigger",
    "UnknownTask",
    "Verdict",
    "Violation",
    "apply",
    "check_invariants",
    "current_run",
    "explain",
    "occurrence_id",
    "open_scheduler",
    "replay",
    "serve_scheduler",
]


def public_names(module: object) -> list[str]:
    """Names a user can import, leaving out submodules (they are private)."""
    return sorted(
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and name != "annotations" and type(value).__name__ != "module"
    )


def test_chronolog_public_names() -> None:
    assert public_names(chronolog) == CHRONOLOG
    assert sorted(chronolog.__all__) == CHRONOLOG


def test_errors_and_functions_say_chronolog_in_tracebacks_and_reprs() -> None:
    assert repr(chronolog.InvalidTrigger) == "<class 'chronolog.InvalidTrigger'>"
    for name in CHRONOLOG:
        value = getattr(chronolog, name)
        if (isinstance(value, type) and issubclass(value, BaseException)) or (
            callable(value) and (type(value).__name__ == "function")
        ):
            assert value.__module__ == "chronolog", name


def test_the_annotations_of_the_log_schema_still_resolve() -> None:
    """Events, triggers and policies keep their defining module: resolving their
    annotations (Hypothesis's from_type, cattrs, msgspec.inspect) needs it."""
    structs = [
        value
        for value in map(vars(chronolog).get, CHRONOLOG)
        if isinstance(value, type) and issubclass(value, msgspec.Struct)
    ]
    assert len(structs) > 10
    for struct in structs:
        typing.get_type_hints(struct)


def test_chronolog_log_public_names() -> None:
    """``PostgresLog`` needs the ``postgres`` extra: it is imported only when used."""
    assert public_names(chronolog.log) == ["EventLog", "FileLog", "MemoryLog", "SQLiteLog"]
    assert sorted(chronolog.log.__all__) == [
        "EventLog",
        "FileLog",
        "MemoryLog",
        "PostgresLog",
        "SQLiteLog",
    ]
    assert chronolog.log.PostgresLog.__name__ == "PostgresLog"
    assert public_names(chronolog.log) == ["EventLog", "FileLog", "MemoryLog", "SQLiteLog"]


def test_chronolog_metrics_public_names() -> None:
    """``chronolog.metrics`` needs the ``metrics`` extra; it is imported only when used."""
    import chronolog.metrics

    assert public_names(chronolog.metrics) == ["SchedulerCollector", "serve_metrics"]
    assert sorted(chronolog.metrics.__all__) == ["SchedulerCollector", "serve_metrics"]


TESTING = [
    "Attempt",
    "ClockJump",
    "Crash",
    "FlakyTarget",
    "HangingTarget",
    "Note",
    "Occurrence",
    "Restart",
    "SimulatedClock",
    "Simulation",
    "SimulationError",
    "Timeline",
    "assert_exactly_once",
    "assert_fires",
    "assert_nothing_lost",
    "assert_replay_consistent",
    "simulate",
    "simulated_scheduler",
]
#: Loaded on first use, so that chronolog.testing imports without Hypothesis.
TESTING_WITH_HYPOTHESIS = [
    "SchedulerMachine",
    "TaskDefinition",
    "cron_expressions",
    "event_logs",
    "instants",
    "policies",
    "task_definitions",
    "time_zones",
    "triggers",
]


def test_chronolog_testing_public_names() -> None:
    assert public_names(chronolog.testing) == TESTING
    assert sorted(chronolog.testing.__all__) == sorted(TESTING + TESTING_WITH_HYPOTHESIS)
    for name in chronolog.testing.__all__:
        assert getattr(chronolog.testing, name) is not None
    assert public_names(chronolog.testing) == TESTING  # lazy names are not cached


def test_every_error_derives_from_the_root_and_a_builtin() -> None:
    errors = [
        chronolog.InvalidTrigger,
        chronolog.UnknownTask,
        chronolog.DuplicateTask,
        chronolog.LogCorrupted,
        chronolog.LogLocked,
        chronolog.LogClosed,
        chronolog.ClaimConflict,
        chronolog.ConfigError,
    ]
    for error in errors:
        assert issubclass(error, chronolog.ChronologError)
        assert len(error.__mro__) > 3, error  # also a builtin such as ValueError


def clock_reads(path: pathlib.Path) -> list[int]:
    """Lines of ``path`` whose code (not strings or comments) reads the clock."""
    names = [
        token
        for token in tokenize.generate_tokens(io.StringIO(path.read_text()).readline)
        if token.type in (tokenize.NAME, tokenize.OP)
    ]
    reads = {("datetime", "now"), ("datetime", "utcnow"), ("time", "time"), ("date", "today")}
    return [
        first.start[0]
        for first, dot, second in zip(names, names[1:], names[2:], strict=False)
        if dot.string == "." and (first.string, second.string) in reads
    ]


def test_nothing_in_src_reads_the_clock() -> None:
    """Time is injected: only the clock module may read it (DESIGN.md)."""
    source = pathlib.Path(chronolog.__file__).parent
    offenders = [
        f"{path.relative_to(source)}:{line}"
        for path in sorted(source.rglob("*.py"))
        if path.name != "_clock.py"
        for line in clock_reads(path)
    ]
    assert offenders == []
