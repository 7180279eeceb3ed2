"""The control socket: how control commands reach a running ``chronolog run``.

A Unix stream socket next to the log, ``<log>.sock`` -- beside the log file
itself, as its lock file is (`sidecar_of`), so every name of the log (a
symlink, another spelling of its path) finds the same socket. It is created
owner-only with no window in which anyone else could connect: it is bound
inside a fresh private directory (mode 0700), made 0600, then renamed into
place -- which also replaces, atomically, a stale socket a crashed scheduler
left (the scheduler holds the log's lock, so nobody else serves that log).
On top of the permissions, the server asks the kernel who is connecting
(``SO_PEERCRED``) and answers only its own user.

The protocol is one JSON object per line, one request and one response per
connection::

    -> {"command": "pause", "task": "backup", "note": "disk full"}
    <- {"ok": true, "result": {"command": "pause", "task": "backup", ...}}
    <- {"ok": false, "kind": "UnknownTask", "error": "no task named 'bakup'; ..."}
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import stat
import struct
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import trio

from ._errors import ChronologError, ConfigError
from .log._lock import sidecar_of

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

__all__ = [
    "ControlError",
    "check_peer",
    "check_socket_path",
    "request",
    "serve_control",
    "socket_path",
]

logger = logging.getLogger("chronolog.control")

#: The longest path a Unix socket address can hold (108 bytes with its NUL).
MAX_SOCKET_PATH_BYTES: Final = 107
#: A request or response longer than this is refused (requests are tiny).
MAX_MESSAGE_BYTES: Final = 1 << 20
#: How long a client waits for the scheduler's answer.
RESPONSE_TIMEOUT_SECONDS: Final = 60.0
#: How long the server waits for a connected client to send its request.
REQUEST_TIMEOUT_SECONDS: Final = 10.0
_PEERCRED: Final = getattr(socket, "SO_PEERCRED", None)
_UCRED: Final = struct.Struct("3i")


class ControlError(ChronologError, RuntimeError):
    """A running scheduler refused or failed a control request; ``kind`` says how."""

    def __init__(self, message: str, kind: str = "Failed") -> None:
        super().__init__(message)
        self.kind = kind


def socket_path(log_path: Path) -> Path:
    """Where the control socket of the scheduler running ``log_path`` is.

    Beside the log file itself, whatever name the log is given by: a command
    through a symlink to the log of a running ``chronolog run`` reaches it.
    """
    return sidecar_of(log_path, ".sock")


def check_socket_path(path: Path) -> None:
    """`ConfigError` if a scheduler could not put its control socket at ``path``:
    the path is too long for a Unix socket's address, or another file is there."""
    _check_length(path)
    _check_free(path)


def _check_free(path: Path) -> None:
    try:
        existing = path.lstat()
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(existing.st_mode):
        raise ConfigError(
            f"{path} exists and is not a socket; chronolog puts the control socket of "
            f"the log there: move that file away"
        )


def _check_length(path: Path) -> None:
    size = len(os.fsencode(path))
    if size > MAX_SOCKET_PATH_BYTES:
        raise ConfigError(
            f"the control socket path {path} is {size} bytes long, and a Unix socket path "
            f"holds at most {MAX_SOCKET_PATH_BYTES}; put the log in a directory with a "
            f"shorter path"
        )


def check_peer(peer_uid: int, own_uid: int) -> str | None:
    """Why a peer with ``peer_uid`` may not control this scheduler, or None if it may."""
    if peer_uid == own_uid:
        return None
    return (
        f"refused: this scheduler's control socket answers only its owner (uid {own_uid}), "
        f"and the request came from uid {peer_uid}"
    )


def _peer_uid(stream: trio.SocketStream) -> int | None:
    if _PEERCRED is None:
        return None  # no SO_PEERCRED here: the 0600 permissions alone guard the socket
    credentials = stream.getsockopt(socket.SOL_SOCKET, _PEERCRED, _UCRED.size)
    _, uid, _ = _UCRED.unpack(credentials)
    return int(uid)


def _make_room(path: Path) -> Path:
    """A fresh private directory beside ``path`` to bind the socket in, after checks."""
    check_socket_path(path)
    private = Path(tempfile.mkdtemp(prefix=".cl", dir=path.parent))  # mode 0700
    try:
        _check_length(private / "s")
    except BaseException:
        private.rmdir()
        raise
    return private


def _publish(private: Path, path: Path) -> os.stat_result:
    """Make the bound socket owner-only and move it to ``path``; its identity there."""
    temporary = private / "s"
    os.chmod(temporary, 0o600)
    os.replace(temporary, path)
    return path.lstat()


def _clear_room(private: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        (private / "s").unlink()
    private.rmdir()


def _remove_if_ours(path: Path, identity: os.stat_result) -> None:
    with contextlib.suppress(FileNotFoundError):
        now = path.lstat()
        # A scheduler that took over the log may have put its own socket here.
        if (now.st_dev, now.st_ino) == (identity.st_dev, identity.st_ino):
            path.unlink()


async def _bind_private(path: Path) -> tuple[trio.socket.SocketType, os.stat_result]:
    """A listening socket at ``path``, reachable by its owner only from the first moment."""
    private = _make_room(path)
    try:
        sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            await sock.bind(os.fspath(private / "s"))
            sock.listen()
            identity = _publish(private, path)
        except BaseException:
            sock.close()
            raise
    finally:
        _clear_room(private)
    return sock, identity


async def serve_control(
    path: Path,
    handle: Callable[[dict[str, Any]], Awaitable[dict[str, Any]]],
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Answer control requests on ``path`` with ``handle`` until cancelled.

    ``handle`` gets a request and returns the result, or raises: a
    `ChronologError` (or ``OSError``) becomes an error response naming its
    class. The socket file is removed on the way out (if it is still ours).
    """
    sock, identity = await _bind_private(path)
    listener = trio.SocketListener(sock)
    try:
        async with trio.open_nursery() as nursery:
            task_status.started()
            while True:
                stream = await listener.accept()
                nursery.start_soon(_answer, stream, handle)
    finally:
        with trio.CancelScope(shield=True):
            await listener.aclose()
        _remove_if_ours(path, identity)


async def _answer(
    stream: trio.SocketStream,
    handle: Callable[[dict[str, Any]], Awaitable[dict[str, Any]]],
) -> None:
    async with stream:
        try:
            peer = _peer_uid(stream)
            refusal = None if peer is None else check_peer(peer, os.geteuid())
            if refusal is not None:
                logger.warning("control socket: %s", refusal)
                response = _error_response(refusal, "Refused")
            else:
                message: dict[str, Any] | str = "no request within the time allowed"
                with trio.move_on_after(REQUEST_TIMEOUT_SECONDS):
                    message = await _read_message(stream)
                response = await _respond(message, handle)
            await stream.send_all(_encode(response))
        except (trio.BrokenResourceError, trio.ClosedResourceError, ConnectionError):
            pass  # the client went away; it gets no answer, the log has the truth


async def _respond(
    message: dict[str, Any] | str,
    handle: Callable[[dict[str, Any]], Awaitable[dict[str, Any]]],
) -> dict[str, Any]:
    if isinstance(message, str):
        return _error_response(message, "BadRequest")
    try:
        return {"ok": True, "result": await handle(message)}
    except ControlError as exc:
        return _error_response(str(exc), exc.kind)
    except (ChronologError, OSError) as exc:
        return _error_response(str(exc), type(exc).__name__)
    except Exception as exc:
        # A request must never take the scheduler down with it.
        logger.exception("control socket: the request %r failed", message)
        return _error_response(f"the scheduler could not carry out the request: {exc!r}", "Failed")


def _error_response(message: str, kind: str) -> dict[str, Any]:
    return {"ok": False, "kind": kind, "error": message}


def _encode(document: dict[str, Any]) -> bytes:
    return json.dumps(document, ensure_ascii=False).encode() + b"\n"


async def _read_message(stream: trio.SocketStream) -> dict[str, Any] | str:
    """The JSON object on the stream's first line, or a sentence saying why there is none."""
    data = bytearray()
    while b"\n" not in data:
        if len(data) > MAX_MESSAGE_BYTES:
            return f"message longer than {MAX_MESSAGE_BYTES} bytes"
        chunk = await stream.receive_some(65536)
        if not chunk:
            break
        data += chunk
    line = bytes(data).split(b"\n", 1)[0]
    try:
        message = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return f"not a JSON line: {line[:80]!r}"
    if not isinstance(message, dict):
        return f"expected a JSON object, got {type(message).__name__}"
    return message


async def request(path: Path, message: dict[str, Any]) -> dict[str, Any]:
    """Send ``message`` to the scheduler serving ``path``; its result.

    Raises ``OSError`` when nobody serves the socket (``FileNotFoundError``,
    ``ConnectionRefusedError``), and `ControlError` when the scheduler
    answers with an error.
    """
    _check_length(path)
    stream = await trio.open_unix_socket(os.fspath(path))
    async with stream:
        await stream.send_all(_encode(message))
        with trio.move_on_after(RESPONSE_TIMEOUT_SECONDS) as waited:
            response = await _read_message(stream)
        if waited.cancelled_caught:
            raise ControlError(
                f"the scheduler at {path} did not answer within "
                f"{RESPONSE_TIMEOUT_SECONDS:.0f} s; its log shows whether the command was applied"
            )
    if isinstance(response, str):
        raise ControlError(f"the scheduler at {path} gave no valid answer ({response})")
    if response.get("ok") is not True:
        raise ControlError(
            str(response.get("error") or "the scheduler refused the request"),
            str(response.get("kind") or "Failed"),
        )
    result = response.get("result")
    if not isinstance(result, dict):
        raise ControlError(f"the scheduler at {path} answered without a result")
    return result
