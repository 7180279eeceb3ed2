"""Command targets: a job that runs a program instead of a Python function.

A command runs with ``trio.run_process`` in a session of its own, so a
Ctrl-C in the terminal of ``chronolog run`` reaches the scheduler (which
gives runs their shutdown grace) and not every child at once; cancelling a
run (timeout, ``chronolog cancel``, shutdown) terminates the command's whole
process group: SIGTERM, then SIGKILL to whatever of the group is still there
after `KILL_AFTER_SECONDS`. The scheduler's `ProcessKeeper` sees to it that
no group outlives the scheduler, even one killed with ``kill -9``, and that
a restarted scheduler retries nothing while a group of it still runs.

Under a scheduler, a command starts behind a gate: a ``/bin/sh`` that waits
on a pipe and runs (``exec``) the program only once the scheduler has listed its
process group with its `ProcessKeeper`. A scheduler killed between starting
the process and listing it closes the pipe by dying, and the gate exits
(125) without running anything: no command ever runs unlisted.

The command gets the run's context in its environment (``CHRONOLOG_TASK``,
``CHRONOLOG_OCCURRENCE``, ``CHRONOLOG_ATTEMPT``, ``CHRONOLOG_DUE``): the
occurrence id is a key that makes its effects idempotent.

Output is read as it comes and only its tail is kept, so a chatty command
costs bounded memory. The run's result holds the exit code, the duration and
both tails, sized so that the whole result fits the scheduler's
``result_max_bytes`` (the scheduler would otherwise cut it to a preview). A
non-zero exit fails the run with `CommandFailed`, whose message ends with
the tail of stderr.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import os
import shlex
import shutil
import signal
import subprocess
from typing import TYPE_CHECKING, Any, Final

import attrs
import trio

from ._processes import KILL_AFTER_SECONDS, group_alive
from ._run_context import run_context_or_none

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["KILL_AFTER_SECONDS", "CommandFailed", "CommandSpec", "run_command"]
#: How long the pipes may stay open after the command exited (a background
#: child can hold them); the tails are taken as they are then.
_DRAIN_SECONDS: Final = 1.0
#: How much of stderr a failure's message quotes.
_ERROR_TAIL_CHARS: Final = 400
_READ_BYTES: Final = 65536
#: The gate (see the module's docstring): read "go" from stdin (the gate's
#: pipe), give the program /dev/null as stdin, run it. EOF (the scheduler died
#: first) runs nothing. stdin, because sh redirects only fds 0-9.
_GATE: Final = 'IFS= read -r go && [ "$go" = go ] || exit 125; exec </dev/null; exec "$@"'


@attrs.frozen(kw_only=True)
class CommandSpec:
    """A program to run: an argument list or a shell command, with cwd and extra env.

    Exactly one of ``argv`` and ``shell`` is set. ``env`` adds to (or
    overrides) the environment of ``chronolog run`` itself.
    """

    argv: tuple[str, ...] | None = None
    shell: str | None = None
    cwd: str | None = None
    env: tuple[tuple[str, str], ...] = ()

    def __attrs_post_init__(self) -> None:
        if (self.argv is None) == (self.shell is None):
            raise ValueError("a CommandSpec has exactly one of argv and shell")

    def describe(self) -> str:
        """The command as a person would type it."""
        if self.shell is not None:
            return self.shell
        assert self.argv is not None
        return shlex.join(self.argv)

    def to_json(self) -> str:
        """A canonical JSON text: equal specs give equal texts (the log compares them)."""
        document: dict[str, Any] = (
            {"argv": list(self.argv)} if self.argv is not None else {"shell": self.shell}
        )
        if self.cwd is not None:
            document["cwd"] = self.cwd
        if self.env:
            document["env"] = dict(self.env)
        return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> CommandSpec:
        """The spec `to_json` wrote; ``ValueError`` if ``text`` is not one."""
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not a command (invalid JSON: {exc})") from None
        if not isinstance(document, dict) or not (
            set(document) <= {"argv", "shell", "cwd", "env"}
        ):
            raise ValueError(f"not a command: {text!r}")
        argv = document.get("argv")
        env = document.get("env", {})
        if not isinstance(env, dict):
            raise ValueError(f"not a command (env is not a table): {text!r}")
        return cls(
            argv=None if argv is None else tuple(str(item) for item in argv),
            shell=document.get("shell"),
            cwd=document.get("cwd"),
            env=tuple(sorted((str(key), str(value)) for key, value in env.items())),
        )


class CommandFailed(Exception):
    """A command exited with a non-zero status or was killed by a signal."""


class _Tail:
    """The last ``limit`` bytes of a stream, and how many bytes it had in all."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.data = bytearray()
        self.total = 0

    async def drain(self, stream: trio.abc.ReceiveStream) -> None:
        while chunk := await stream.receive_some(_READ_BYTES):
            self.total += len(chunk)
            self.data += chunk
            if len(self.data) > self.limit:
                del self.data[: len(self.data) - self.limit]

    def text(self) -> str:
        return self.data.decode("utf-8", "replace")


class _Gate:
    """The pipe a gated command waits on; each end is closed once, whatever happens."""

    def __init__(self) -> None:
        self.read_fd, self._write_fd = os.pipe()
        self._open: set[int] = {self.read_fd, self._write_fd}

    def wrap(self, program: list[str]) -> tuple[str, ...]:
        return ("/bin/sh", "-c", _GATE, "chronolog-gate", *program)

    def let_through(self) -> None:
        """Open the gate (the child has its own copy of the read end)."""
        self._close(self.read_fd)
        with contextlib.suppress(OSError):
            os.write(self._write_fd, b"go\n")
        self.close()

    def close(self) -> None:
        for fd in list(self._open):
            self._close(fd)

    def _close(self, fd: int) -> None:
        if fd in self._open:
            self._open.discard(fd)
            with contextlib.suppress(OSError):
                os.close(fd)


async def _terminate_group(process: trio.Process) -> None:
    """Cancel a command: SIGTERM to its process group, SIGKILL to what lingers.

    The group is done when no process of it is left, not only its leader: a
    child that ignores SIGTERM must not run on beside the next attempt.
    """
    for sig, wait in ((signal.SIGTERM, KILL_AFTER_SECONDS), (signal.SIGKILL, None)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        if wait is None:
            return
        with trio.move_on_after(wait):
            await process.wait()
            # No event says when the last of a group is gone: poll for it.
            while group_alive(process.pid):  # noqa: ASYNC110
                await trio.sleep(0.02)
            return


def _fit(result: dict[str, Any], max_bytes: int) -> dict[str, Any]:
    """Shorten the output tails (from their start) until ``result`` encodes in ``max_bytes``."""
    while True:
        size = len(json.dumps(result, ensure_ascii=False, separators=(",", ":")).encode())
        excess = size - max_bytes
        if excess <= 0:
            return result
        longer = max(("stdout", "stderr"), key=lambda key: len(result[key]))
        text: str = result[longer]
        if not text:
            return result  # nothing left to cut; the scheduler will preview it
        result[longer] = text[max(excess, len(text) // 8, 1) :]


def _check_can_start(program: str, env: Mapping[str, str] | None, cwd: str | None) -> None:
    """Raise the `OSError` ``exec`` would for ``program``: a gated command is
    started by ``/bin/sh``, which would only report it as exit 127."""
    if os.sep not in program:
        search = (env if env is not None else os.environ).get("PATH", os.defpath)
        if shutil.which(program, path=search) is None:
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), program)
        return
    path = os.path.join(cwd or os.getcwd(), program)
    if not os.path.exists(path):
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), program)
    if os.path.isdir(path) or not os.access(path, os.X_OK):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), program)


def _environment(extra: Mapping[str, str], run: Mapping[str, str]) -> dict[str, str] | None:
    if not extra and not run:
        return None  # inherit
    return {**os.environ, **extra, **run}


async def run_command(spec: CommandSpec, *, max_bytes: int = 8192) -> dict[str, Any]:
    """Run ``spec`` to its end; its result, or `CommandFailed` for a non-zero exit.

    The result: ``{"exit_code", "duration_seconds", "stdout", "stderr",
    "stdout_bytes", "stderr_bytes"}`` -- the two texts are the ends of the
    streams, the byte counts their full lengths.
    """
    limit = max(max_bytes, 64)
    stdout, stderr = _Tail(limit), _Tail(limit)
    command: str | tuple[str, ...] = spec.shell if spec.shell is not None else spec.argv or ()
    run = run_context_or_none()
    keeper = run.keeper if run is not None else None
    env = _environment(dict(spec.env), run.environment() if run else {})
    began = trio.current_time()
    cannot_start: OSError | None = None
    gate: _Gate | None = None
    async with contextlib.AsyncExitStack() as cleanup, trio.open_nursery() as nursery:
        try:
            if keeper is not None:
                program = (
                    ["/bin/sh", "-c", spec.shell] if spec.shell is not None else list(command)
                )
                _check_can_start(program[0], env, spec.cwd)
                gate = _Gate()
                cleanup.callback(gate.close)
                command = gate.wrap(program)
            process: trio.Process = await nursery.start(
                functools.partial(
                    trio.run_process,
                    command,
                    shell=spec.shell is not None and gate is None,
                    cwd=spec.cwd,
                    env=env,
                    stdin=gate.read_fd if gate is not None else subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    check=False,
                    start_new_session=True,
                    deliver_cancel=_terminate_group,
                )
            )
        except OSError as exc:
            # Raised here rather than inside the nursery, so it is not wrapped in a group.
            cannot_start = exc
        else:
            entry = (
                keeper.started(
                    process.pid, task=run.task, occurrence=run.occurrence, attempt=run.attempt
                )
                if keeper is not None and run is not None
                else None
            )
            if gate is not None:
                gate.let_through()  # listed (or the listing failed, and said so)
            readers = trio.CancelScope()

            async def read_output() -> None:
                assert process.stdout is not None
                assert process.stderr is not None
                with readers:
                    async with trio.open_nursery() as streams:
                        streams.start_soon(stdout.drain, process.stdout)
                        streams.start_soon(stderr.drain, process.stderr)

            try:
                nursery.start_soon(read_output)
                await process.wait()
                readers.deadline = trio.current_time() + _DRAIN_SECONDS
            finally:
                if keeper is not None:
                    keeper.ended(entry)
    if cannot_start is not None:
        reason = cannot_start.strerror or str(cannot_start)
        raise CommandFailed(
            f"command {shlex.quote(spec.describe())} cannot start: {reason}"
            + (f" ({cannot_start.filename})" if cannot_start.filename else "")
        ) from cannot_start
    duration = trio.current_time() - began
    code = process.returncode
    assert code is not None
    result = _fit(
        {
            "exit_code": code,
            "duration_seconds": round(duration, 6),
            "stdout": stdout.text(),
            "stderr": stderr.text(),
            "stdout_bytes": stdout.total,
            "stderr_bytes": stderr.total,
        },
        max_bytes,
    )
    if code != 0:
        raise CommandFailed(_failure(spec, code, duration, stderr.text()))
    return result


def _failure(spec: CommandSpec, code: int, duration: float, error_output: str) -> str:
    if code < 0:
        try:
            how = f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            how = f"was killed by signal {-code}"
    else:
        how = f"exited with status {code}"
    message = f"command {shlex.quote(spec.describe())} {how} after {duration:.3g} s"
    tail = error_output.strip()
    if tail:
        if len(tail) > _ERROR_TAIL_CHARS:
            tail = "..." + tail[-_ERROR_TAIL_CHARS:]
        message += f"; stderr: {tail}"
    return message
