"""Jobs of the command line on a scheduler: target strings, binding, and who owns a task."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from chronolog import (
    Completed,
    Every,
    Manual,
    MemoryLog,
    Policy,
    TaskDefined,
    TaskRemoved,
    check_invariants,
    open_scheduler,
    replay,
)
from chronolog._commands import CommandSpec
from chronolog._config import CallSpec, Job, JobFile
from chronolog._jobs import (
    JobTarget,
    declare,
    is_added,
    parse_target,
    reconcile,
    startup_events,
    target_text,
)
from chronolog._targets import target_path
from chronolog.testing import SimulatedClock

if TYPE_CHECKING:
    from trio.testing import MockClock

    from chronolog._config import Target

START = datetime(2026, 3, 27, 12, 0, tzinfo=UTC)
SHELL = CommandSpec(shell="echo hi", cwd="/srv")


@pytest.fixture
def sim(autojump_clock: MockClock) -> SimulatedClock:
    return SimulatedClock(START, mock_clock=autojump_clock)


def file_of(*jobs: Job) -> JobFile:
    return JobFile(
        path=None,
        log=None,
        shutdown_grace=timedelta(seconds=1),
        max_concurrent=None,
        result_max_bytes=8192,
        jobs=jobs,
    )


def job(name: str, target: Target, every: timedelta = timedelta(hours=1)) -> Job:
    return Job(name=name, trigger=Every(every), target=target, policy=Policy())


@pytest.mark.parametrize(
    ("target", "added", "text"),
    [
        (CallSpec("json:dumps"), False, "json:dumps"),
        (CallSpec("json:dumps"), True, "added:json:dumps"),
        (SHELL, False, 'command:{"cwd":"/srv","shell":"echo hi"}'),
        (
            CommandSpec(argv=("a", "b")),
            True,
            'added:command:{"argv":["a","b"]}',
        ),
    ],
)
def test_target_strings_say_what_runs_and_who_declared_it(
    target: Target, added: bool, text: str
) -> None:
    assert target_text(target, added=added) == text
    assert parse_target(text) == target
    assert is_added(text) is added
    bound = JobTarget(target, added=added, clock=SimulatedClock(START), result_max_bytes=100)
    assert target_path(bound) == text  # what the scheduler records


@pytest.mark.parametrize(
    "text", ["<lambda>", "mod:<locals>.f", "command:{not json", 'command:{"what":1}', "nocolon"]
)
def test_strings_that_name_no_job_of_the_command_line(text: str) -> None:
    assert parse_target(text) is None


async def test_a_call_target_calls_the_function(sim: SimulatedClock) -> None:
    bound = JobTarget(CallSpec("json:dumps"), added=False, clock=sim, result_max_bytes=100)
    with pytest.raises(TypeError, match="missing 1 required positional argument"):
        await bound()
    ok = JobTarget(CallSpec("builtins:list"), added=False, clock=sim, result_max_bytes=100)
    assert await ok() == []


async def test_a_command_target_runs_the_command() -> None:
    bound = JobTarget(
        CommandSpec(shell="echo hi"), added=True, clock=SimulatedClock(START), result_max_bytes=512
    )
    result = await bound()
    assert (result["exit_code"], result["stdout"]) == (0, "hi\n")


def test_a_call_target_that_cannot_be_imported() -> None:
    with pytest.raises(LookupError, match="cannot import module 'no_such_module_xyz'"):
        JobTarget(
            CallSpec("no_such_module_xyz:f"),
            added=False,
            clock=SimulatedClock(START),
            result_max_bytes=100,
        )


async def test_reconcile_removes_dropped_jobs_keeps_added_ones_and_declares_the_rest(
    sim: SimulatedClock, autojump_clock: MockClock
) -> None:
    log = MemoryLog()
    old = job("old", CallSpec("builtins:list"))
    stay = job("stay", CallSpec("builtins:list"))
    extra = job("extra", CallSpec("builtins:dict"), every=timedelta(minutes=30))
    async with open_scheduler(log, clock=sim) as sched:
        first = await reconcile(sched, file_of(old, stay), result_max_bytes=8192)
        assert (first.created, first.removed) == (("old", "stay"), ())
        added = await declare(sched, extra, added=True, result_max_bytes=8192)
        assert (added.change, added.version) == ("created", 1)
        again = await declare(sched, extra, added=True, result_max_bytes=8192)
        assert again.change == "unchanged"
        changed_stay = job("stay", CallSpec("builtins:tuple"))
        second = await reconcile(
            sched, file_of(changed_stay, job("new", SHELL)), result_max_bytes=8192
        )
        assert second.as_json() == {
            "created": ["new"],
            "changed": ["stay"],
            "unchanged": [],
            "removed": ["old"],
            "kept": ["extra"],
        }
        await sim.advance(timedelta(minutes=31))
        assert sched.state.task_names() == ["extra", "new", "stay"]
        assert sched.status("extra").run_count == 1
    assert check_invariants(log.read()) == []


async def test_start_up_records_bring_the_log_in_line_before_the_scheduler_opens(
    sim: SimulatedClock, autojump_clock: MockClock
) -> None:
    log = MemoryLog()
    async with open_scheduler(log, clock=sim) as sched:
        await reconcile(
            sched,
            file_of(job("old", CallSpec("builtins:list")), job("stay", CallSpec("builtins:list"))),
            result_max_bytes=8192,
        )
        await declare(
            sched, job("extra", CallSpec("builtins:dict")), added=True, result_max_bytes=8192
        )
        await sim.advance(timedelta(minutes=90))
    new_file = file_of(
        job("stay", CallSpec("builtins:list")), job("fresh", CallSpec("builtins:list"))
    )
    state = replay(log.read())
    events = startup_events(state, new_file, sim.now())
    assert [(type(e).__name__, e.task) for e in events if not hasattr(e, "occurrence")] == [
        ("TaskRemoved", "old"),
        ("TaskDefined", "fresh"),
    ]
    await log.append(events)
    seq = log.last_seq
    async with open_scheduler(log, clock=sim) as sched:
        result = await reconcile(sched, new_file, result_max_bytes=8192)
        assert result.kept == ("extra",)
        assert result.unchanged == ("stay", "fresh")  # in the order of the file
        # Everything was declared before the scheduler opened: nothing to define now.
        assert [
            r for r in log.read(after_seq=seq) if isinstance(r, TaskDefined | TaskRemoved)
        ] == []
        await sim.advance(timedelta(hours=1))
    runs = [r.task for r in log.read(after_seq=seq) if isinstance(r, Completed)]
    assert {"stay", "fresh", "extra"} <= set(runs)
    assert check_invariants(log.read()) == []


async def test_an_added_task_whose_target_is_gone_is_left_to_the_scheduler(
    sim: SimulatedClock, autojump_clock: MockClock
) -> None:
    log = MemoryLog(
        [
            TaskDefined(
                seq=1,
                task="gone",
                at=START,
                trigger=Manual(),
                target="added:no_such_module_xyz:run",
            ),
            TaskDefined(seq=2, task="odd", at=START, trigger=Manual(), target="added:<lambda>"),
        ]
    )
    async with open_scheduler(log, clock=sim) as sched:
        result = await reconcile(sched, file_of(), result_max_bytes=8192)
        assert result.kept == ("gone", "odd")
        await sim.advance(timedelta(minutes=1))
        # The scheduler pauses a task whose target cannot be imported, saying why.
        assert "no_such_module_xyz" in sched.status("gone").note
