"""Command targets: real processes, their output tails, failures and cancellation.

These run real (tiny) programs on Trio's real clock; each takes milliseconds.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from typing import TYPE_CHECKING

import pytest
import trio

from chronolog._commands import CommandFailed, CommandSpec, _Gate, run_command
from chronolog._processes import ProcessKeeper
from chronolog._run_context import RunContext, enter_run, leave_run
from chronolog._targets import jsonable_result

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path


async def wait_until(condition: Callable[[], bool]) -> None:
    """Poll ``condition`` (another process changes what it looks at) for up to 5 s."""
    with trio.fail_after(5):
        while not condition():  # noqa: ASYNC110 - the change happens in another process
            await trio.sleep(0.005)


async def test_an_argument_list_runs_and_its_output_is_the_result(tmp_path: Path) -> None:
    result = await run_command(CommandSpec(argv=("echo", "hello", "world"), cwd=str(tmp_path)))
    assert result["exit_code"] == 0
    assert result["stdout"] == "hello world\n"
    assert result["stderr"] == ""
    assert (result["stdout_bytes"], result["stderr_bytes"]) == (12, 0)
    assert 0 <= result["duration_seconds"] < 10


async def test_a_shell_command_gets_its_cwd_and_env(tmp_path: Path) -> None:
    spec = CommandSpec(
        shell='echo "$GREETING from $(pwd)"; echo warning >&2',
        cwd=str(tmp_path),
        env=(("GREETING", "hi"),),
    )
    result = await run_command(spec)
    assert result["stdout"] == f"hi from {tmp_path}\n"
    assert result["stderr"] == "warning\n"


async def test_the_environment_of_chronolog_is_inherited(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CHRONOLOG_TEST_INHERITED", "yes")
    result = await run_command(
        CommandSpec(shell="echo $CHRONOLOG_TEST_INHERITED $EXTRA", env=(("EXTRA", "too"),))
    )
    assert result["stdout"] == "yes too\n"


async def test_a_non_zero_exit_fails_with_the_tail_of_stderr() -> None:
    spec = CommandSpec(shell="echo starting; echo 'disk full' >&2; exit 3")
    with pytest.raises(CommandFailed) as raised:
        await run_command(spec)
    message = str(raised.value)
    quoted = "'echo starting; echo '\"'\"'disk full'\"'\"' >&2; exit 3'"
    assert message.startswith(f"command {quoted} exited with status 3 after ")
    assert message.endswith(" s; stderr: disk full")


async def test_a_command_killed_by_a_signal_says_so() -> None:
    with pytest.raises(CommandFailed, match=r"was killed by SIGKILL after .* s$"):
        await run_command(CommandSpec(shell="kill -KILL $$"))


async def test_a_missing_program_fails_the_run() -> None:
    with pytest.raises(CommandFailed) as raised:
        await run_command(CommandSpec(argv=("/no/such/program", "x")))
    assert str(raised.value) == (
        "command '/no/such/program x' cannot start: No such file or directory (/no/such/program)"
    )


async def test_only_the_tail_of_a_large_output_is_kept_and_fits_the_result_size() -> None:
    # 20,000 numbered lines: far more than the 1 KiB the result may take.
    spec = CommandSpec(shell="seq 1 20000; seq 1 50 >&2")
    result = await run_command(spec, max_bytes=1024)
    assert jsonable_result(result, 1024) == result  # not cut to a preview by the scheduler
    assert result["stdout"].endswith("19999\n20000\n")
    assert result["stdout_bytes"] == sum(len(f"{n}\n") for n in range(1, 20001))
    assert result["stderr"].endswith("49\n50\n")
    assert len(result["stdout"]) < 1024


async def test_a_long_error_output_is_shortened_in_the_message() -> None:
    with pytest.raises(CommandFailed) as raised:
        await run_command(CommandSpec(shell="seq 1 5000 >&2; exit 1"))
    message = str(raised.value)
    assert "; stderr: ..." in message
    assert message.endswith("4999\n5000")
    assert len(message) < 600


async def test_cancelling_a_run_kills_the_whole_process_group(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    spec = CommandSpec(shell=f"sleep 60 & echo $! > {pids}; echo $$ >> {pids}; wait")
    with trio.move_on_after(10) as timeout, trio.CancelScope() as run:

        async def cancel_once_started() -> None:
            await wait_until(lambda: pids.exists() and len(pids.read_text().split()) == 2)
            run.cancel()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(cancel_once_started)
            await run_command(spec)
    assert not timeout.cancelled_caught
    assert run.cancelled_caught
    for pid in map(int, pids.read_text().split()):
        await wait_until(lambda pid=pid: not _alive(pid))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (killed, not yet reaped by its parent) is as good as gone.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


async def test_a_command_that_ignores_sigterm_is_killed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("chronolog._commands.KILL_AFTER_SECONDS", 0.05)
    ready = tmp_path / "ready"
    spec = CommandSpec(shell=f"trap '' TERM; touch {ready}; sleep 60")
    with trio.fail_after(10), trio.move_on_after(5) as run:

        async def cancel_once_ready() -> None:
            await wait_until(ready.exists)
            run.cancel()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(cancel_once_ready)
            await run_command(spec)
    assert run.cancelled_caught


async def test_a_background_child_holding_the_pipes_does_not_hold_the_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("chronolog._commands._DRAIN_SECONDS", 0.05)
    with trio.fail_after(10):
        result = await run_command(CommandSpec(shell="echo started; sleep 30 &"))
    assert result["stdout"] == "started\n"


def test_a_spec_has_one_canonical_json_text() -> None:
    spec = CommandSpec(argv=("backup.sh", "--full"), cwd="/srv", env=(("A", "1"), ("B", "2")))
    text = spec.to_json()
    assert text == '{"argv":["backup.sh","--full"],"cwd":"/srv","env":{"A":"1","B":"2"}}'
    assert CommandSpec.from_json(text) == spec
    shell = CommandSpec(shell="tar czf /tmp/x.tgz .")
    assert CommandSpec.from_json(shell.to_json()) == shell
    assert shell.describe() == "tar czf /tmp/x.tgz ."
    assert spec.describe() == "backup.sh --full"


@pytest.mark.parametrize(
    "text", ["{", "[]", '{"argv": ["x"], "what": 1}', '{"shell": "x", "env": 3}']
)
def test_a_text_that_is_no_command_spec(text: str) -> None:
    with pytest.raises(ValueError, match="not a command"):
        CommandSpec.from_json(text)


def test_a_spec_has_exactly_one_form() -> None:
    with pytest.raises(ValueError, match="exactly one of argv and shell"):
        CommandSpec()
    with pytest.raises(ValueError, match="exactly one of argv and shell"):
        CommandSpec(argv=("x",), shell="x")


# -- under a scheduler: the gate -------------------------------------------------------


class _Keeper(ProcessKeeper):
    """A keeper with a registry in a test directory. ``slow``: listing takes 0.2 s,
    and notes whether ``marker`` existed by then."""

    def __init__(self, registry: Path, *, marker: Path | None = None) -> None:
        super().__init__(registry)
        self.marker = marker
        self.listed: list[int] = []
        self.marker_before_listing: bool | None = None

    def started(self, pgid: int, *, task: str, occurrence: str, attempt: int) -> Path | None:
        if self.marker is not None:
            time.sleep(0.2)  # blocking on purpose: the scheduler is slow to list
            self.marker_before_listing = self.marker.exists()
        self.listed.append(pgid)
        return super().started(pgid, task=task, occurrence=occurrence, attempt=attempt)


@contextlib.contextmanager
def under_a_scheduler(keeper: ProcessKeeper) -> Iterator[None]:
    context = RunContext(
        task="t", occurrence="t@x", attempt=1, due=None, node="test:1", keeper=keeper
    )
    token = enter_run(context)
    try:
        yield
    finally:
        leave_run(token)
        keeper.close()


async def test_a_gated_command_behaves_as_a_bare_one(tmp_path: Path) -> None:
    keeper = _Keeper(tmp_path / "registry")
    spec = CommandSpec(
        shell='echo "$GREETING from $(pwd) $CHRONOLOG_OCCURRENCE"; cat; echo warn >&2',
        cwd=str(tmp_path),
        env=(("GREETING", "hi"),),
    )
    with under_a_scheduler(keeper):
        result = await run_command(spec)
        with pytest.raises(CommandFailed, match=r"exited with status 3 "):
            await run_command(CommandSpec(argv=("sh", "-c", "exit 3")))
        with pytest.raises(CommandFailed, match=r"was killed by SIGKILL after .* s$"):
            await run_command(CommandSpec(shell="kill -KILL $$"))
    # stdin is empty (cat ends at once): the gate's pipe is not the command's.
    assert result["stdout"] == f"hi from {tmp_path} t@x\n"
    assert result["stderr"] == "warn\n"
    assert len(keeper.listed) == 3
    assert not list((tmp_path / "registry").glob("*.json"))  # each unlisted as it ended


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("/no/such/program", "x"), "No such file or directory (/no/such/program)"),
        (("no-such-program-on-path",), "No such file or directory (no-such-program-on-path)"),
        (("/",), "Permission denied (/)"),
    ],
)
async def test_a_gated_program_that_cannot_start_says_so_as_exec_would(
    tmp_path: Path, argv: tuple[str, ...], message: str
) -> None:
    with under_a_scheduler(_Keeper(tmp_path / "registry")), pytest.raises(CommandFailed) as raised:
        await run_command(CommandSpec(argv=argv))
    assert str(raised.value).endswith(f"cannot start: {message}")


async def test_a_command_runs_only_once_it_is_listed(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    keeper = _Keeper(tmp_path / "registry", marker=marker)
    with under_a_scheduler(keeper):
        await run_command(CommandSpec(argv=("touch", str(marker))))
    assert keeper.marker_before_listing is False
    assert marker.exists()


@pytest.mark.parametrize("opened", [True, False])
def test_a_gate_whose_scheduler_died_runs_nothing(tmp_path: Path, opened: bool) -> None:
    """A scheduler that dies closes its end of the gate: the gate exits 125 and the
    program never starts. (Closing here stands in for the death.)"""
    marker = tmp_path / "ran"
    gate = _Gate()
    with subprocess.Popen(
        gate.wrap(["touch", str(marker)]), stdin=gate.read_fd, start_new_session=True
    ) as process:
        if opened:
            gate.let_through()
        else:
            gate.close()
        assert process.wait(timeout=10) == (0 if opened else 125)
    assert marker.exists() is opened
