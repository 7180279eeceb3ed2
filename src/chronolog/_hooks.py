"""Result hooks: a command or a call run when a run ends, once its record is durable.

A job (or the ``[defaults]`` table) of a job file may name ``on_failure``,
``on_success`` and ``on_finish`` hooks. They are not part of the scheduler:
`run_hooks` is an observer that follows the log, so a hook runs only for a
record that is already in the log (durable), and nothing a hook does can
change a run's outcome -- the record is written before the hook starts.

When a hook runs:

* ``on_success`` and ``on_finish`` for a ``Completed`` record;
* ``on_failure`` and ``on_finish`` for a ``Failed`` record that settles its
  occurrence (no ``retry_at``): an attempt that will be retried is not the
  end of the run, so it fires nothing.

What a hook gets: the record, as the log stores it (the JSON of ``chronolog
tail --json``), on stdin for a command and as the one argument of a call;
and the run's context -- ``CHRONOLOG_TASK``, ``CHRONOLOG_OCCURRENCE``,
``CHRONOLOG_ATTEMPT``, ``CHRONOLOG_DUE``, plus ``CHRONOLOG_HOOK`` (which
hook) and ``CHRONOLOG_OUTCOME`` (``completed`` or ``failed``) -- in a
command's environment, and from `chronolog.current_run` in a call.

A hook is bounded: it runs for at most its ``timeout`` (a command's whole
process group is then killed; a sync call's thread is abandoned), its output
is read but only the tail kept, and at most `MAX_CONCURRENT_HOOKS` run at
once -- beyond that the observer waits, and reads the log further only when
a hook ends (the log keeps the records meanwhile). A hook that fails, hangs
or cannot start is logged (logger ``chronolog.hooks``) and forgotten: hooks
are notifications, run at most once, never retried, and not recorded in the
log.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import shlex
import signal
import subprocess
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

import trio

from ._config import CallSpec
from ._events import Completed, Failed, Scheduled, Skipped, event_to_builtins
from ._run_context import RunContext, enter_run, leave_run
from ._targets import import_target, invoke

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Callable

    from ._clock import Clock
    from ._commands import CommandSpec
    from ._config import Hook, Hooks
    from ._events import Event

__all__ = ["MAX_CONCURRENT_HOOKS", "hooks_to_run", "run_hook", "run_hooks"]

logger = logging.getLogger("chronolog.hooks")

#: At most this many hooks run at the same time.
MAX_CONCURRENT_HOOKS: Final = 8
#: How much of a hook command's output is kept (for the log line that reports it).
OUTPUT_TAIL_BYTES: Final = 2048
#: After the timeout, how long a command's group has between SIGTERM and SIGKILL.
_KILL_AFTER_SECONDS: Final = 2.0
_READ_BYTES: Final = 65536


def hooks_to_run(record: Event, hooks: Hooks) -> list[tuple[str, Hook]]:
    """The hooks that ``record`` fires, as (key, hook): the rule in the module docstring."""
    if isinstance(record, Completed):
        keys = ("on_success", "on_finish")
    elif isinstance(record, Failed) and record.retry_at is None:
        keys = ("on_failure", "on_finish")
    else:
        return []
    return [(key, hook) for key in keys if (hook := getattr(hooks, key)) is not None]


class _DueTimes:
    """When the occurrences the observer has seen planned are due (for ``CHRONOLOG_DUE``)."""

    def __init__(self) -> None:
        self._due: dict[str, datetime] = {}

    def note(self, record: Event) -> None:
        if isinstance(record, Scheduled):
            self._due[record.occurrence] = record.due
        elif isinstance(record, Skipped) or (
            isinstance(record, Completed | Failed) and getattr(record, "retry_at", None) is None
        ):
            self._due.pop(record.occurrence, None)

    def of(self, record: Completed | Failed) -> datetime | None:
        due = self._due.get(record.occurrence)
        if due is not None:
            return due
        # Planned before the observer started: a time-based id says when.
        prefix = record.task + "@"
        if not record.occurrence.startswith(prefix):
            return None
        try:
            due = datetime.fromisoformat(record.occurrence[len(prefix) :])
        except ValueError:
            return None
        return due if due.tzinfo is not None else None


async def run_hooks(
    records: AsyncGenerator[Event, None],
    hooks_for: Callable[[str], Hooks],
    *,
    clock: Clock,
    max_concurrent: int = MAX_CONCURRENT_HOOKS,
    drain: Callable[[], timedelta] | None = None,
) -> None:
    """Run the hooks each of ``records`` fires, until ``records`` ends (the log closes).

    ``hooks_for(task)`` says which hooks a task has, asked at each record
    (so a reloaded job file counts from its reload on). Returns once the
    hooks it started have ended, each within its timeout -- or, with
    ``drain``, within ``drain()`` of the end of ``records`` (a stopping
    ``chronolog run`` gives its hooks its shutdown grace), when the ones
    still running are stopped.
    """
    slots = trio.CapacityLimiter(max_concurrent)
    due_times = _DueTimes()
    running = 0
    async with trio.open_nursery() as nursery, contextlib.aclosing(records):
        async for record in records:
            due_times.note(record)
            if not isinstance(record, Completed | Failed):
                continue
            for key, hook in hooks_to_run(record, hooks_for(record.task)):
                slot = object()
                await slots.acquire_on_behalf_of(slot)
                nursery.start_soon(
                    _one_hook, key, hook, record, due_times.of(record), clock, slots, slot
                )
        if drain is not None:
            nursery.cancel_scope.deadline = trio.current_time() + drain().total_seconds()
            running = slots.borrowed_tokens
    if nursery.cancel_scope.cancelled_caught:
        logger.warning(
            "%d hook(s) still running when the log closed did not end within %s s and were "
            "stopped",
            running,
            f"{drain().total_seconds():g}" if drain is not None else "?",
        )


async def _one_hook(
    key: str,
    hook: Hook,
    record: Completed | Failed,
    due: datetime | None,
    clock: Clock,
    slots: trio.CapacityLimiter,
    slot: object,
) -> None:
    try:
        await run_hook(key, hook, record, due=due, clock=clock)
    finally:
        slots.release_on_behalf_of(slot)


async def run_hook(
    key: str, hook: Hook, record: Completed | Failed, *, due: datetime | None, clock: Clock
) -> bool:
    """Run one hook for ``record``; whether it succeeded. It never raises: it logs."""
    what = f"{key} hook of task {record.task!r} ({record.occurrence}, attempt {record.attempt})"
    context = RunContext(
        task=record.task, occurrence=record.occurrence, attempt=record.attempt, due=due, node=""
    )
    began = trio.current_time()
    with trio.move_on_after(hook.timeout.total_seconds()) as waited:
        try:
            if isinstance(hook.target, CallSpec):
                await _call(hook.target, record, context, clock)
            else:
                await _run_command(hook.target, key, record, context)
        except Exception as exc:
            logger.warning("%s failed: %s", what, _describe(exc))
            return False
    if waited.cancelled_caught:
        logger.warning(
            "%s did not end within its timeout of %s s and was stopped",
            what,
            f"{hook.timeout.total_seconds():g}",
        )
        return False
    logger.debug("%s ran in %.3g s", what, trio.current_time() - began)
    return True


def _describe(exc: Exception) -> str:
    return str(exc) or type(exc).__name__


def _payload(record: Completed | Failed) -> dict[str, Any]:
    return event_to_builtins(record)


async def _call(
    target: CallSpec, record: Completed | Failed, context: RunContext, clock: Clock
) -> None:
    function = import_target(target.path)
    token = enter_run(context)
    try:
        await invoke(functools.partial(function, _payload(record)), clock)
    finally:
        leave_run(token)


class HookFailed(Exception):
    """A hook command exited with a non-zero status."""


async def _run_command(
    spec: CommandSpec, key: str, record: Completed | Failed, context: RunContext
) -> None:
    outcome = "completed" if isinstance(record, Completed) else "failed"
    environment = {
        **os.environ,
        **dict(spec.env),
        **context.environment(),
        "CHRONOLOG_HOOK": key,
        "CHRONOLOG_OUTCOME": outcome,
    }
    stdin = json.dumps(_payload(record), ensure_ascii=False).encode() + b"\n"
    command: str | tuple[str, ...] = spec.shell if spec.shell is not None else spec.argv or ()
    output = _Tail(OUTPUT_TAIL_BYTES)
    cannot_start: OSError | None = None
    async with trio.open_nursery() as nursery:
        try:
            process: trio.Process = await nursery.start(
                functools.partial(
                    trio.run_process,
                    command,
                    shell=spec.shell is not None,
                    cwd=spec.cwd,
                    env=environment,
                    stdin=stdin,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    check=False,
                    start_new_session=True,
                    deliver_cancel=_kill_group,
                )
            )
        except OSError as exc:
            # Raised after the nursery, so that it is not wrapped in a group.
            cannot_start = exc
        else:
            assert process.stdout is not None
            nursery.start_soon(output.drain, process.stdout)
    if cannot_start is not None:
        raise HookFailed(
            f"command {shlex.quote(spec.describe())} cannot start: "
            f"{cannot_start.strerror or cannot_start}"
        ) from cannot_start
    code = process.returncode
    if code:
        how = f"exited with status {code}" if code > 0 else f"was killed by signal {-code}"
        tail = output.text().strip()
        raise HookFailed(
            f"command {shlex.quote(spec.describe())} {how}" + (f"; output: {tail}" if tail else "")
        )


class _Tail:
    """The last ``limit`` bytes of a stream (a hook that floods its output costs no memory)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.data = bytearray()

    async def drain(self, stream: trio.abc.ReceiveStream) -> None:
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            while chunk := await stream.receive_some(_READ_BYTES):
                self.data += chunk
                if len(self.data) > self.limit:
                    del self.data[: len(self.data) - self.limit]

    def text(self) -> str:
        return self.data.decode("utf-8", "replace")


async def _kill_group(process: trio.Process) -> None:
    """Stop a hook command that ran out of time: its whole process group."""
    for sig, wait in ((signal.SIGTERM, _KILL_AFTER_SECONDS), (signal.SIGKILL, None)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        if wait is None:
            return
        with trio.move_on_after(wait):
            await process.wait()
            return
