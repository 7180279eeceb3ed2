"""Jobs of the command line on a scheduler: how their targets are named and bound.

A ``TaskDefined`` record names its target by a string. For jobs of the
command line that string says everything needed to bind the target again
after a restart, and who declared the task:

* ``pkg.mod:func`` -- a ``call`` target declared by the job file;
* ``command:{"argv":[...],"cwd":...,"env":{...}}`` -- a ``command`` target
  declared by the job file (canonical JSON, so an unchanged command is an
  unchanged definition);
* ``added:`` followed by either of them -- a task declared with
  ``chronolog add``;
* ``added-by-mcp:`` followed by either of them -- a task declared by an
  agent through ``chronolog mcp`` (a prefix no import path can begin with,
  so no job file's target is ever taken for an agent's).

The job file owns the tasks it declares: a task whose record says it came
from the job file, and which the file no longer has, is removed when
``chronolog run`` starts or reloads. Tasks declared with ``chronolog add``
are kept, as are those of agents; the last declaration of a name decides
who owns it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Final, Literal

import attrs

from ._command_rules import define_events, remove_events
from ._commands import CommandSpec, run_command
from ._config import CallSpec, Job, JobFile, Target, policy_arguments
from ._targets import import_target, invoke

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    from ._clock import Clock
    from ._command_rules import IfExists
    from ._events import Event
    from ._projection import State
    from ._scheduler import Scheduler

__all__ = [
    "Declared",
    "JobTarget",
    "Reconciled",
    "declare",
    "declared_by",
    "is_added",
    "parse_target",
    "reconcile",
    "startup_events",
    "target_text",
]

logger = logging.getLogger("chronolog.run")

ADDED_PREFIX: Final = "added:"
MCP_PREFIX: Final = "added-by-mcp:"
COMMAND_PREFIX: Final = "command:"

Change = Literal["created", "changed", "unchanged"]
#: Who declared a task that the job file does not own.
Source = Literal["add", "mcp"]
_PREFIXES: Final[dict[Source, str]] = {"add": ADDED_PREFIX, "mcp": MCP_PREFIX}


def target_text(target: Target, *, added: bool, source: Source = "add") -> str:
    """The string a ``TaskDefined`` record holds for ``target`` (``source``: who added it)."""
    text = target.path if isinstance(target, CallSpec) else COMMAND_PREFIX + target.to_json()
    return _PREFIXES[source] + text if added else text


def declared_by(text: str) -> Source | None:
    """Who declared a task with this target string: ``"add"``, ``"mcp"``, or None (the
    job file, or a program)."""
    for source, prefix in _PREFIXES.items():
        if text.startswith(prefix):
            return source
    return None


def is_added(text: str) -> bool:
    """Whether a target string was written by ``chronolog add`` (or an agent's ``mcp``)."""
    return declared_by(text) is not None


def parse_target(text: str) -> Target | None:
    """The target a record's string names, or None if it is no job of the command line."""
    source = declared_by(text)
    rest = text if source is None else text.removeprefix(_PREFIXES[source])
    if rest.startswith(COMMAND_PREFIX + "{"):
        try:
            return CommandSpec.from_json(rest.removeprefix(COMMAND_PREFIX))
        except ValueError:
            return None
    module, _, qualname = rest.partition(":")
    if module and qualname and "<" not in qualname and " " not in rest:
        return CallSpec(rest)
    return None


class JobTarget:
    """The callable that `Scheduler.add` gets for a job of the command line.

    It names itself (``__module__``/``__qualname__``) so that the scheduler
    records `target_text` for it, and runs a command or calls the function.
    """

    def __init__(
        self,
        target: Target,
        *,
        added: bool,
        clock: Clock,
        result_max_bytes: int,
        source: Source = "add",
    ) -> None:
        self.target = target
        self._clock = clock
        self._result_max_bytes = result_max_bytes
        self._function: Callable[[], Any] | None = None
        if isinstance(target, CallSpec):
            self._function = import_target(target.path)
        # What target_path() reads: "module:qualname" is the recorded string.
        module, _, qualname = target_text(target, added=added, source=source).partition(":")
        self.__module__ = module
        self.__qualname__ = qualname

    async def __call__(self) -> Any:
        if self._function is not None:
            return await invoke(self._function, self._clock)
        assert isinstance(self.target, CommandSpec)
        return await run_command(self.target, max_bytes=self._result_max_bytes)


@attrs.frozen
class Declared:
    """What declaring one task did."""

    task: str
    change: Change
    version: int


async def declare(
    scheduler: Scheduler,
    job: Job,
    *,
    added: bool,
    result_max_bytes: int,
    if_exists: IfExists = "update",
    source: Source = "add",
) -> Declared:
    """Declare ``job`` on a running scheduler (idempotent, like `Scheduler.add`)."""
    before = scheduler.state.definition(job.name).version if job.name in scheduler.state else None
    target = JobTarget(
        job.target,
        added=added,
        clock=scheduler.clock,
        result_max_bytes=result_max_bytes,
        source=source,
    )
    status = await scheduler.add(
        job.name, job.trigger, target, if_exists=if_exists, **policy_arguments(job.policy)
    )
    change: Change = (
        "created" if before is None else "unchanged" if status.version == before else "changed"
    )
    return Declared(job.name, change, status.version)


@attrs.frozen
class Reconciled:
    """What bringing a scheduler in line with a job file did, task by task."""

    created: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    kept: tuple[str, ...] = ()
    """Tasks declared with ``chronolog add``, which the job file does not own."""

    def as_json(self) -> dict[str, list[str]]:
        return {field: list(getattr(self, field)) for field in attrs.fields_dict(Reconciled)}


async def reconcile(
    scheduler: Scheduler, job_file: JobFile, *, result_max_bytes: int
) -> Reconciled:
    """Make the scheduler's tasks what ``job_file`` declares (start and reload).

    Tasks the file owns but no longer has are removed; tasks declared with
    ``chronolog add`` are kept and their targets bound; every job of the
    file is declared again (an unchanged one appends nothing).
    """
    wanted = {job.name for job in job_file.jobs}
    removed: list[str] = []
    kept: list[str] = []
    for name in scheduler.state.task_names():
        if name in wanted:
            continue
        definition = scheduler.state.definition(name)
        if not is_added(definition.target):
            logger.info("task %r is not in the job file any more: removing it", name)
            await scheduler.remove(name)
            removed.append(name)
            continue
        kept.append(name)
        await _bind_added(scheduler, name, result_max_bytes=result_max_bytes)
    results: dict[Change, list[str]] = {"created": [], "changed": [], "unchanged": []}
    for job in job_file.jobs:
        declared = await declare(scheduler, job, added=False, result_max_bytes=result_max_bytes)
        results[declared.change].append(job.name)
    return Reconciled(
        created=tuple(results["created"]),
        changed=tuple(results["changed"]),
        unchanged=tuple(results["unchanged"]),
        removed=tuple(removed),
        kept=tuple(kept),
    )


async def _bind_added(scheduler: Scheduler, name: str, *, result_max_bytes: int) -> None:
    """Give a task declared with ``chronolog add`` its callable again (appends nothing)."""
    definition = scheduler.state.definition(name)
    target = parse_target(definition.target)
    if target is None:
        logger.warning("task %r: cannot tell what to run from %r", name, definition.target)
        return
    try:
        job_target = JobTarget(
            target,
            added=True,
            clock=scheduler.clock,
            result_max_bytes=result_max_bytes,
            source=declared_by(definition.target) or "add",
        )
    except LookupError as exc:
        # The scheduler pauses the task with a note saying why, shortly.
        logger.warning("task %r: %s", name, exc)
        return
    await scheduler.add(
        name, definition.trigger, job_target, **policy_arguments(definition.policy)
    )


def startup_events(state: State, job_file: JobFile, now: datetime) -> list[Event]:
    """The records that bring a log in line with ``job_file`` before a scheduler opens it.

    The same changes `reconcile` makes, as records appended before any task
    actor starts: so no actor acts on a definition the file has changed, or
    on a task the file has dropped, in the moment between opening and
    declaring.
    """
    wanted = {job.name for job in job_file.jobs}
    events: list[Event] = []
    for name in state.task_names():
        if name not in wanted and not is_added(state.definition(name).target):
            logger.info("task %r is not in the job file any more: removing it", name)
            events += remove_events(state, name, now)
    for job in job_file.jobs:
        events += define_events(
            state,
            job.name,
            job.trigger,
            target_text(job.target, added=False),
            job.policy,
            now,
        )
    return events
