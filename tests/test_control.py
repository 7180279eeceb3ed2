"""The control socket: owner-only from its first moment, one JSON request per connection."""

# Tests look at the files they made with plain pathlib calls; blocking is fine here.
# ruff: noqa: ASYNC240

from __future__ import annotations

import json
import os
import socket
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import trio

from chronolog import ConfigError, UnknownTask
from chronolog._control import (
    MAX_SOCKET_PATH_BYTES,
    ControlError,
    check_peer,
    request,
    serve_control,
    socket_path,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


async def echo(message: dict[str, Any]) -> dict[str, Any]:
    if message.get("command") == "fail":
        raise UnknownTask("no task named 'bakup'; did you mean 'backup'?")
    if message.get("command") == "oops":
        raise ControlError("the scheduler is shutting down", "ShuttingDown")
    if message.get("command") == "bug":
        raise ZeroDivisionError("division by zero")
    return {"echo": message}


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Path]:
    path = socket_path(tmp_path / "jobs.jsonl")
    async with trio.open_nursery() as nursery:
        await nursery.start(serve_control, path, echo)
        yield path
        nursery.cancel_scope.cancel()
    assert not path.exists()  # removed on the way out


def test_the_socket_lives_next_to_the_log() -> None:
    assert socket_path(Path("/srv/jobs.jsonl")) == Path("/srv/jobs.jsonl.sock")


async def test_the_socket_is_owner_only(served: Path) -> None:
    mode = served.lstat().st_mode
    assert stat.S_ISSOCK(mode)
    assert stat.S_IMODE(mode) == 0o600
    # The private directory it was bound in is gone.
    assert sorted(p.name for p in served.parent.iterdir()) == ["jobs.jsonl.sock"]


async def test_a_request_gets_its_result(served: Path) -> None:
    assert await request(served, {"command": "pause", "task": "x"}) == {
        "echo": {"command": "pause", "task": "x"}
    }


async def test_an_error_comes_back_with_its_kind(served: Path) -> None:
    with pytest.raises(ControlError) as raised:
        await request(served, {"command": "fail"})
    assert raised.value.kind == "UnknownTask"
    assert str(raised.value) == "no task named 'bakup'; did you mean 'backup'?"
    with pytest.raises(ControlError) as shutting:
        await request(served, {"command": "oops"})
    assert shutting.value.kind == "ShuttingDown"


async def test_a_bug_in_a_handler_fails_the_request_not_the_server(
    served: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(ControlError) as raised:
        await request(served, {"command": "bug"})
    assert raised.value.kind == "Failed"
    assert str(raised.value) == (
        "the scheduler could not carry out the request: ZeroDivisionError('division by zero')"
    )
    assert "the request {'command': 'bug'} failed" in caplog.text
    assert await request(served, {"command": "x"}) == {"echo": {"command": "x"}}


async def raw_exchange(path: Path, data: bytes) -> bytes:
    stream = await trio.open_unix_socket(os.fspath(path))
    async with stream:
        await stream.send_all(data)
        await stream.send_eof()
        answer = b""
        while chunk := await stream.receive_some(65536):
            answer += chunk
    return answer


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"not json\n", "not a JSON line: b'not json'"),
        (b"[1, 2]\n", "expected a JSON object, got list"),
        (b"", "not a JSON line: b''"),
    ],
)
async def test_a_bad_request_is_answered_not_crashed_on(
    served: Path, data: bytes, problem: str
) -> None:
    answer = await raw_exchange(served, data)
    assert answer.endswith(b"\n")
    assert json.loads(answer) == {"ok": False, "kind": "BadRequest", "error": problem}
    assert await request(served, {"still": "serving"}) == {"echo": {"still": "serving"}}


async def test_a_stale_socket_is_replaced(tmp_path: Path) -> None:
    path = socket_path(tmp_path / "jobs.jsonl")
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(os.fspath(path))
    stale.close()  # what a crashed scheduler leaves behind
    with pytest.raises(ConnectionRefusedError):
        await request(path, {"command": "x"})
    async with trio.open_nursery() as nursery:
        await nursery.start(serve_control, path, echo)
        assert await request(path, {"command": "x"}) == {"echo": {"command": "x"}}
        nursery.cancel_scope.cancel()


async def test_a_file_in_the_way_is_not_replaced(tmp_path: Path) -> None:
    path = socket_path(tmp_path / "jobs.jsonl")
    path.write_text("mine")
    with pytest.raises(ConfigError, match="exists and is not a socket"):
        await serve_control(path, echo)
    assert path.read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["jobs.jsonl.sock"]


async def test_a_path_too_long_for_a_socket_is_refused(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * (MAX_SOCKET_PATH_BYTES - len(os.fsencode(tmp_path))))
    deep.mkdir()
    path = socket_path(deep / "jobs.jsonl")
    with pytest.raises(ConfigError, match=r"control socket path .* bytes long"):
        await serve_control(path, echo)
    with pytest.raises(ConfigError, match=r"control socket path .* bytes long"):
        await request(path, {})
    assert list(deep.iterdir()) == []


async def test_a_socket_taken_over_by_another_server_is_left_alone(tmp_path: Path) -> None:
    path = socket_path(tmp_path / "jobs.jsonl")
    first, first_done = trio.CancelScope(), trio.Event()

    async def first_server(task_status: trio.TaskStatus[None]) -> None:
        with first:
            await serve_control(path, echo, task_status=task_status)
        first_done.set()

    async with trio.open_nursery() as nursery:
        await nursery.start(first_server)
        await nursery.start(serve_control, path, echo)  # a successor replaces the socket
        successor = path.lstat().st_ino
        first.cancel()
        await first_done.wait()
        assert path.lstat().st_ino == successor  # the first server left it in place
        assert await request(path, {"command": "x"}) == {"echo": {"command": "x"}}
        nursery.cancel_scope.cancel()


def test_only_the_owner_may_control_the_scheduler() -> None:
    assert check_peer(1000, 1000) is None
    assert check_peer(0, 1000) == (
        "refused: this scheduler's control socket answers only its owner (uid 1000), and the "
        "request came from uid 0"
    )
    assert check_peer(1001, 1000) is not None


async def test_the_server_checks_who_connects(
    served: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As root we cannot connect as someone else; pretend the server runs as another user.
    monkeypatch.setattr(os, "geteuid", lambda: 4242)
    with pytest.raises(ControlError) as raised:
        await request(served, {"command": "pause", "task": "x"})
    assert raised.value.kind == "Refused"
    assert "answers only its owner (uid 4242)" in str(raised.value)


async def test_nobody_serving_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        await request(socket_path(tmp_path / "jobs.jsonl"), {})
