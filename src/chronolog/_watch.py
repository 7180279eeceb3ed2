"""Watching one file for content changes, under Trio: the effects behind ``FileWatch``.

A ``FileWatch`` task fires when the *content* of its file changes. This module
observes the file and reports a :class:`FileSeen` for every change worth a
decision; the scheduler turns each reported content hash into an occurrence id
with :func:`chronolog._ids.file_change_occurrence`. Nothing here touches the
log: ``last_hash`` comes from the caller, who read it from the log.

What is reported (``watch_file``)
--------------------------------
The watch remembers the last content hash (starting at ``last_hash``) and the
problem it last reported (starting at none). Each look at the file gives:

* content whose hash differs from the last content hash: reported, and it
  becomes the last content hash. ``last_hash=None`` means "never seen", so an
  existing file is reported once at start; a restart with unchanged content
  reports nothing; A->B->A reports twice (B, then A).
* content with the last content hash: nothing, even after a problem. A file
  deleted and recreated with the same bytes, or briefly unreadable, did not
  change, so nothing should run.
* a problem (missing, unreadable, a directory, not a regular file): reported
  once, then again only when the problem's description changes or after the
  file was readable in between. The content hash is kept: a file that comes
  back with its old content reports nothing.

How it looks
------------
OS notifications (``watchfiles.awatch`` on the file's directory, filtered to
the file's name) wake the watch at once; a poll every ``poll`` is the safety
net for notifications that never come (network file systems, a watch limit
reached, a directory replaced). Either way the file is read and hashed in a
worker thread, in chunks, and a change is reported only once it has
*settled*: two looks :data:`SETTLE` apart agree. A burst of writes therefore
gives one report for the content it ends with; a writer slower than that can
show intermediate contents, each reported if it differs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from datetime import timedelta
from typing import TYPE_CHECKING, Final

import anyio
import attrs
import trio
from trio.lowlevel import RunVar
from watchfiles import awatch

from ._ids import content_hasher
from ._words import duration_text

if TYPE_CHECKING:
    from watchfiles import Change

    from ._clock import Clock

__all__ = ["MAX_NOTIFIED_FILES", "SETTLE", "FileSeen", "look", "watch_file"]

logger: Final = logging.getLogger("chronolog.watch")

#: A change is reported once two looks this far apart agree (or the poll
#: interval, when that is shorter).
SETTLE: Final = timedelta(milliseconds=50)
#: A file still changing after this many settle rounds is reported as last seen.
_SETTLE_ROUNDS: Final = 20
#: At most this many watches per ``trio.run`` use OS notifications; the rest
#: poll. ``watchfiles.awatch`` keeps one worker thread of Trio's default thread
#: limiter busy per watch, and that limiter (40 threads) is shared with the log
#: writer and with sync task functions.
MAX_NOTIFIED_FILES: Final = 16
#: Bytes read per chunk while hashing.
_CHUNK_BYTES = 1 << 20
#: Reads of a file that keeps changing under the reader before its last read counts.
_READ_ATTEMPTS: Final = 3
#: Concurrent file reads per ``trio.run``, in their own limiter so that big
#: files never starve the log writer of threads.
_READ_THREADS: Final = 8
#: watchfiles groups notifications: it reports once no new event came for
#: ``_STEP_MS``, or after ``_DEBOUNCE_MS`` of continuous events.
_STEP_MS: Final = 50
_DEBOUNCE_MS: Final = 1_600
#: How often (bounds, in seconds) the notifying side checks that the directory
#: it watches is still the one at the path, and waits for a missing one.
_RECHECK_MIN_SECONDS = 0.1
_RECHECK_MAX_SECONDS = 1.0

_OPEN_FLAGS: Final = (
    os.O_RDONLY
    | getattr(os, "O_BINARY", 0)  # Windows: no newline translation
    | getattr(os, "O_NONBLOCK", 0)  # a FIFO must not block the open
    | getattr(os, "O_NOCTTY", 0)  # a terminal must not become ours
)

_notify_slots: RunVar[trio.CapacityLimiter] = RunVar("chronolog.watch.notify_slots")
_read_threads: RunVar[trio.CapacityLimiter] = RunVar("chronolog.watch.read_threads")


@attrs.frozen
class FileSeen:
    """What one look at a watched file found: its content hash, or a problem.

    Exactly one of the two is set.

    Attributes:
      content_hash: ``chronolog._ids.content_hash`` of the whole file, or None
        when the file could not be read.
      problem: None when the file was read; else a sentence such as
        ``"file data/in.csv does not exist"``,
        ``"cannot read data/in.csv: permission denied"`` or
        ``"data/in.csv is a directory"``.
    """

    content_hash: str | None
    problem: str | None

    def __attrs_post_init__(self) -> None:
        if (self.content_hash is None) == (self.problem is None):
            raise ValueError(
                f"a FileSeen has either a content_hash or a problem, never both or neither; "
                f"got content_hash={self.content_hash!r}, problem={self.problem!r}"
            )


def look(path: str | os.PathLike[str]) -> FileSeen:
    """Read and hash ``path`` once (blocking): what a watch would see there now.

    Never raises for the file's sake: a missing, unreadable or odd file is a
    :class:`FileSeen` with a ``problem``. A file that changes while it is read
    is read again (a few times), so a concurrent rewrite gives the content
    before or after it rather than a torn mix, as far as the file's size and
    timestamps can tell.
    """
    shown = os.fspath(path)
    return _look(shown, shown)


def _look(path: str, shown: str) -> FileSeen:
    for _ in range(_READ_ATTEMPTS - 1):
        seen, consistent = _read_once(path, shown)
        if consistent:
            return seen
    return _read_once(path, shown)[0]  # still changing: the content as last read


def _read_once(path: str, shown: str) -> tuple[FileSeen, bool]:
    """One read: what it saw, and whether the file held still while it was read."""
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        return FileSeen(content_hash=None, problem=_describe(exc, path, shown)), True
    try:
        before = os.fstat(fd)
        if stat.S_ISDIR(before.st_mode):
            return FileSeen(content_hash=None, problem=f"{shown} is a directory"), True
        if not stat.S_ISREG(before.st_mode):
            return FileSeen(
                content_hash=None,
                problem=f"{shown} is not a regular file (a device, FIFO or socket); "
                f"FileWatch reads regular files only",
            ), True
        hasher = content_hasher()  # the same hash as _ids.content_hash, chunk by chunk
        size = 0
        while chunk := os.read(fd, _CHUNK_BYTES):
            hasher.update(chunk)
            size += len(chunk)
        after = os.fstat(fd)
    except OSError as exc:
        return FileSeen(content_hash=None, problem=_describe(exc, path, shown)), True
    finally:
        os.close(fd)
    consistent = size == after.st_size and _signature(before) == _signature(after)
    return FileSeen(content_hash=hasher.hexdigest(), problem=None), consistent


def _signature(status: os.stat_result) -> tuple[int, int, int]:
    return status.st_size, status.st_mtime_ns, status.st_ctime_ns


def _describe(exc: OSError, path: str, shown: str) -> str:
    """The problem sentence for an error met while opening or reading ``path``."""
    if isinstance(exc, FileNotFoundError):
        # The same sentence whether or not the directory exists: creating the
        # directory first and the file later is one problem, reported once.
        return f"file {shown} does not exist"
    if isinstance(exc, IsADirectoryError) or (
        isinstance(exc, PermissionError) and os.path.isdir(path)  # Windows opens no directory
    ):
        return f"{shown} is a directory"
    if isinstance(exc, PermissionError):
        return f"cannot read {shown}: permission denied"
    reason = exc.strerror or str(exc) or type(exc).__name__
    return f"cannot read {shown}: {reason[:1].lower()}{reason[1:]}"


def _limiter(var: RunVar[trio.CapacityLimiter], total_tokens: int) -> trio.CapacityLimiter:
    try:
        return var.get()
    except LookupError:
        limiter = trio.CapacityLimiter(total_tokens)
        var.set(limiter)
        return limiter


def _directory_identity(directory: str) -> tuple[int, int] | None:
    """(device, inode) of ``directory``, or None when there is no directory there."""
    try:
        status = os.stat(directory)
    except OSError:
        return None
    return (status.st_dev, status.st_ino) if stat.S_ISDIR(status.st_mode) else None


async def _identity_in_thread(directory: str) -> tuple[int, int] | None:
    return await trio.to_thread.run_sync(
        _directory_identity,
        directory,
        limiter=_limiter(_read_threads, _READ_THREADS),
        abandon_on_cancel=True,
    )


def _wake(wake_send: trio.MemorySendChannel[None]) -> None:
    """Ask the checker for a look soon; a look already asked for covers this one."""
    with contextlib.suppress(trio.WouldBlock):
        wake_send.send_nowait(None)


async def watch_file(
    path: str | os.PathLike[str],
    *,
    poll: timedelta,
    last_hash: str | None,
    clock: Clock | None = None,
    task_status: trio.TaskStatus[trio.MemoryReceiveChannel[FileSeen]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Watch ``path`` until cancelled, sending a :class:`FileSeen` for each change.

    Start it with ``nursery.start``; the start value is the channel the
    changes arrive on::

        changes = await nursery.start(
            functools.partial(watch_file, "data/in.csv", poll=trigger.poll, last_hash=logged)
        )
        async for seen in changes:
            ...

    When ``nursery.start`` returns, the file has been looked at once and OS
    notifications are set up: every later change is seen. What is sent, and
    when, is in the module docstring; in short, a content hash differing from
    the last one (starting from ``last_hash``; None means never seen), and a
    problem once when the file goes missing or unreadable.

    The channel is unbuffered: while the receiver is busy the watch waits, and
    then reports the file as it is by then (changes in between coalesce).
    Closing the receiving end stops the watch; stopping the watch closes the
    channel. A relative ``path`` is resolved against the working directory at
    start; problem sentences show it as given.

    Args:
      path: the file to watch.
      poll: how often to look at the file without being notified.
      last_hash: the content hash last acted on (from the log), or None.
      clock: the scheduler's clock; reads are done inside its ``hold_still``
        so that simulated time does not run on while a thread reads.
    """
    if not isinstance(poll, timedelta) or poll <= timedelta(0):
        raise ValueError(
            f"poll must be a positive timedelta such as timedelta(seconds=2), got {poll!r}"
        )
    shown = os.fspath(path)
    absolute = os.path.abspath(shown)  # noqa: ASYNC240 -- string work and getcwd(), no disk wait
    poll_seconds = poll.total_seconds()
    send, receive = trio.open_memory_channel[FileSeen](0)
    wake_send, wake_receive = trio.open_memory_channel[None](1)
    notifying = trio.Event()
    stop = anyio.Event()  # stops awatch's worker thread, which Trio cannot cancel
    checker = _Checker(absolute, shown, poll_seconds, clock, last_hash)
    async with send, wake_send, wake_receive, trio.open_nursery() as nursery:
        try:
            nursery.start_soon(_notify, absolute, shown, poll, wake_send, notifying, stop)
            await notifying.wait()
            first = await checker.look()
            task_status.started(receive)
            await checker.run(first, send, wake_receive)
        except trio.BrokenResourceError:
            nursery.cancel_scope.cancel()  # the receiver is gone: nobody wants the news
        finally:
            stop.set()


@attrs.define
class _Checker:
    """Looks at the file when woken or polled, and decides what is news."""

    path: str
    shown: str
    poll_seconds: float
    clock: Clock | None
    last_content: str | None
    last_problem: str | None = None

    async def look(self) -> FileSeen:
        hold = contextlib.nullcontext() if self.clock is None else self.clock.hold_still()
        with hold:
            return await trio.to_thread.run_sync(
                _look,
                self.path,
                self.shown,
                limiter=_limiter(_read_threads, _READ_THREADS),
                abandon_on_cancel=True,
            )

    def is_news(self, seen: FileSeen) -> bool:
        if seen.problem is not None:
            return seen.problem != self.last_problem
        return seen.content_hash != self.last_content

    def remember(self, seen: FileSeen) -> None:
        if seen.problem is None:
            self.last_content = seen.content_hash
        self.last_problem = seen.problem

    async def settle(self, seen: FileSeen) -> FileSeen:
        """Look again until two looks agree: the file as it is once writes stop."""
        pause = min(SETTLE.total_seconds(), self.poll_seconds)
        for _ in range(_SETTLE_ROUNDS):
            await trio.sleep(pause)
            again = await self.look()
            if again == seen:
                break
            seen = again
        return seen

    async def run(
        self,
        seen: FileSeen,
        send: trio.MemorySendChannel[FileSeen],
        wake_receive: trio.MemoryReceiveChannel[None],
    ) -> None:
        while True:
            if self.is_news(seen):
                seen = await self.settle(seen)
                if self.is_news(seen):
                    await send.send(seen)
            # Also when it is no news: a file readable again with its old
            # content clears the problem, so that a later problem is news.
            self.remember(seen)
            with trio.move_on_after(self.poll_seconds):
                await wake_receive.receive()
            seen = await self.look()


async def _notify(
    path: str,
    shown: str,
    poll: timedelta,
    wake_send: trio.MemorySendChannel[None],
    notifying: trio.Event,
    stop: anyio.Event,
) -> None:
    """Wake the checker whenever the OS reports an event on ``path``.

    Sets ``notifying`` once notifications are set up, or known to be unavailable.
    When they cannot be had, it logs a warning and returns: the checker polls
    on. Otherwise it returns once ``stop`` is set.
    """
    slots = _limiter(_notify_slots, MAX_NOTIFIED_FILES)
    try:
        slots.acquire_nowait()
    except trio.WouldBlock:
        logger.warning(
            "%d files are watched with OS notifications already, the most at once; "
            "%s is checked by polling only, every %s",
            MAX_NOTIFIED_FILES,
            shown,
            duration_text(poll),
        )
        notifying.set()
        return
    try:
        await _notify_until_stopped(path, shown, poll, wake_send, notifying, stop)
    finally:
        notifying.set()
        slots.release()


async def _notify_until_stopped(
    path: str,
    shown: str,
    poll: timedelta,
    wake_send: trio.MemorySendChannel[None],
    notifying: trio.Event,
    stop: anyio.Event,
) -> None:
    directory, name = os.path.split(path)
    recheck = min(max(poll.total_seconds(), _RECHECK_MIN_SECONDS), _RECHECK_MAX_SECONDS)
    while not stop.is_set():
        identity = await _identity_in_thread(directory)
        if identity is None:
            # No directory to watch (yet): the checker reports the file as
            # missing; come back when the directory may be there.
            notifying.set()
            await trio.sleep(recheck)
            continue
        try:
            await _notify_session(directory, name, identity, recheck, wake_send, notifying, stop)
        except Exception as exc:
            if await _identity_in_thread(directory) == identity:
                logger.warning(
                    "cannot watch %s with OS file notifications (%s: %s); "
                    "it is checked by polling only, every %s",
                    shown,
                    type(exc).__name__,
                    exc,
                    duration_text(poll),
                )
                return
            # The directory went away or was replaced while being watched:
            # watch the new one, if any.
        _wake(wake_send)


async def _notify_session(
    directory: str,
    name: str,
    identity: tuple[int, int],
    recheck: float,
    wake_send: trio.MemorySendChannel[None],
    notifying: trio.Event,
    stop: anyio.Event,
) -> None:
    """Watch ``directory`` until it may have been removed or replaced, or ``stop`` is set."""

    def about_the_file(change: Change, changed: str) -> bool:
        # Events on the directory itself too: its removal ends this session.
        return changed == directory or os.path.basename(changed) == name

    batches = awatch(
        directory,
        watch_filter=about_the_file,
        debounce=_DEBOUNCE_MS,
        step=_STEP_MS,
        stop_event=stop,
        rust_timeout=max(int(recheck * 1000), _STEP_MS),
        yield_on_timeout=True,
        recursive=False,
    )
    async with contextlib.aclosing(batches):
        # awatch sets up the OS watch on its first step, before it first waits
        # (in a worker thread); the task that waits for ``notifying`` runs only
        # then. The look that follows covers anything earlier.
        notifying.set()
        _wake(wake_send)
        async for changes in batches:
            if changes:
                _wake(wake_send)
            # An event on the directory itself (removed, renamed) may leave the
            # OS watch dead. So may a replaced directory whose event was
            # missed; inode numbers are reused, so that check alone is weak.
            if any(changed == directory for _, changed in changes):
                return
            if await _identity_in_thread(directory) != identity:
                return
