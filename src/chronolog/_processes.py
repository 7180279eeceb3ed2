"""The processes that command targets start: none outlives its scheduler, none runs twice.

A command runs in a process group of its own (so a Ctrl-C in the terminal of
``chronolog run`` reaches the scheduler, not every child at once). Two
things keep such groups from outliving the scheduler that started them:

* **A lifeline.** The first command a scheduler starts also starts a small
  *reaper* process in a session of its own, whose standard input is a pipe
  the scheduler holds. The scheduler tells it each group it starts. When the
  scheduler ends -- cleanly, or killed with ``kill -9``, when the kernel
  closes the pipe -- the reaper sends the groups still alive SIGTERM, then
  SIGKILL after `KILL_AFTER_SECONDS`, and notes when it did in the registry.
* **A registry** next to the log (``<log>.commands/``): one small file per
  command under way, naming its task, occurrence, attempt and group. A
  scheduler that starts on the log reads it before anything else: a group
  of an interrupted attempt that is still alive (the reaper was slow, or
  killed too) is ended and waited for before the attempt is recorded as
  interrupted and its retry planned. So no second copy of an occurrence
  starts while the first one runs. The registry also says how long an
  interrupted attempt ran.

A `MemoryLog` has no place for a registry: its scheduler keeps the lifeline
only.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import attrs

__all__ = ["KILL_AFTER_SECONDS", "Leftover", "ProcessKeeper", "group_alive", "registry_of"]

logger = logging.getLogger("chronolog.scheduler")

#: Seconds between SIGTERM and SIGKILL when a command's group must end.
KILL_AFTER_SECONDS: Final = 5.0
#: How often the reaper looks for groups that ended by themselves.
_PRUNE_SECONDS: Final = 1.0

# The reaper: reads "PGID PATH" lines from the scheduler; when its input ends,
# ends every group still alive and writes the instant into its registry file.
# Run as `python -c _REAPER PRUNE_SECONDS KILL_AFTER_SECONDS`.
_REAPER: Final = r"""
import json, os, select, signal, sys, time
prune, kill_after = float(sys.argv[1]), float(sys.argv[2])
groups = {}
buffer = b""
stdin = sys.stdin.fileno()
while True:
    ready, _, _ = select.select([stdin], [], [], prune)
    if ready:
        chunk = os.read(stdin, 65536)
        if not chunk:
            break
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            pgid, _, path = line.decode().partition(" ")
            groups[int(pgid)] = path
    for pgid in list(groups):
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            del groups[pgid]
        except PermissionError:
            pass
def alive(pgid):
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
for sig, wait in ((signal.SIGTERM, kill_after), (signal.SIGKILL, 0.0)):
    for pgid in groups:
        try:
            os.killpg(pgid, sig)
        except OSError:
            pass
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and any(alive(pgid) for pgid in groups):
        time.sleep(0.02)
# The wall clock, not the scheduler's Clock: this watchdog acts only once
# its scheduler is gone, and the next one reads the instant as wall time.
ended = time.time()
for pgid, path in groups.items():
    try:
        with open(path) as file:
            document = json.load(file)
        document["ended"] = ended
        with open(path, "w") as file:
            json.dump(document, file)
    except (OSError, ValueError):
        pass
"""


def registry_of(log_path: Path) -> Path:
    """The directory beside ``log_path`` where the commands under way are listed."""
    return log_path.with_name(log_path.name + ".commands")


@attrs.frozen
class Leftover:
    """A command of an interrupted attempt, found in the registry at start."""

    task: str
    occurrence: str
    attempt: int
    ended: datetime | None
    """When its group was ended (by the reaper, or now), if known."""


class ProcessKeeper:
    """The command process groups of one scheduler: lifeline, registry, leftovers."""

    def __init__(self, registry: Path | None) -> None:
        self.registry = registry
        self._lifeline: subprocess.Popen[bytes] | None = None
        self._closed = False

    def __repr__(self) -> str:
        return f"<ProcessKeeper registry={self.registry}>"

    # -- commands of this scheduler ------------------------------------------------

    def started(self, pgid: int, *, task: str, occurrence: str, attempt: int) -> Path | None:
        """A command's process group ``pgid`` is under way: list it, tell the reaper.

        Returns its registry file (to pass to `ended`), if there is a registry.
        """
        entry: Path | None = None
        if self.registry is not None:
            document = {
                "task": task,
                "occurrence": occurrence,
                "attempt": attempt,
                "pgid": pgid,
                "leader_start": _start_ticks(pgid),
                "boot": _boot_id(),
            }
            entry = self.registry / f"{pgid}.json"
            try:
                self.registry.mkdir(mode=0o700, exist_ok=True)
                entry.write_text(json.dumps(document))
            except OSError as exc:
                # The command runs all the same; a restart cannot check on it.
                logger.warning("cannot list command group %d in %s: %s", pgid, self.registry, exc)
                entry = None
        self._tell_reaper(pgid, entry)
        return entry

    def ended(self, entry: Path | None) -> None:
        """The command whose registry file is ``entry`` has ended."""
        if entry is not None:
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()

    def close(self) -> None:
        """The scheduler ends: its reaper ends whatever is left of its commands."""
        self._closed = True
        lifeline, self._lifeline = self._lifeline, None
        if lifeline is not None and lifeline.stdin is not None:
            with contextlib.suppress(OSError):
                lifeline.stdin.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                lifeline.wait(timeout=KILL_AFTER_SECONDS + 2)

    def _tell_reaper(self, pgid: int, entry: Path | None) -> None:
        if self._closed:
            return
        lifeline = self._lifeline
        if lifeline is None or lifeline.poll() is not None:
            try:
                lifeline = self._lifeline = subprocess.Popen(
                    [
                        sys.executable,
                        "-I",
                        "-S",
                        "-c",
                        _REAPER,
                        str(_PRUNE_SECONDS),
                        str(KILL_AFTER_SECONDS),
                    ],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                    close_fds=True,
                )
            except OSError as exc:
                logger.warning(
                    "cannot start the process that ends commands if the scheduler dies: %s", exc
                )
                return
        assert lifeline.stdin is not None
        line = f"{pgid} {'' if entry is None else entry}\n".encode()
        try:
            lifeline.stdin.write(line)
            lifeline.stdin.flush()
        except OSError as exc:
            logger.warning("cannot reach the process that ends commands: %s", exc)

    # -- commands of an earlier scheduler ----------------------------------------

    def end_leftovers(self, now: datetime) -> list[Leftover]:
        """End every command group an earlier scheduler on this log left listed.

        Blocking (run it in a thread): a group still alive gets SIGTERM, then
        SIGKILL after `KILL_AFTER_SECONDS`, and is waited for. Returns what
        was listed, so that the interrupted attempts can say how long they
        ran: until the reaper ended them, or until ``now`` for one ended here.
        """
        if self.registry is None or not self.registry.is_dir():
            return []
        leftovers: list[Leftover] = []
        for entry in sorted(self.registry.glob("*.json")):
            try:
                document: dict[str, Any] = json.loads(entry.read_text())
                pgid = int(document["pgid"])
                task, occurrence = str(document["task"]), str(document["occurrence"])
                attempt = int(document["attempt"])
            except (OSError, ValueError, KeyError, TypeError):
                logger.warning("ignoring %s: not a command entry chronolog wrote", entry)
                continue
            ended = document.get("ended")  # when the reaper ended it (seconds since 1970)
            when = (
                datetime.fromtimestamp(float(ended), UTC)
                if isinstance(ended, int | float)
                else None
            )
            if _ours_and_alive(pgid, document):
                logger.warning(
                    "ending command group %d of %s (attempt %d), left by an earlier scheduler",
                    pgid,
                    occurrence,
                    attempt,
                )
                _end_group(pgid)
                when = now
            leftovers.append(Leftover(task, occurrence, attempt, when))
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()
        return leftovers


def _ours_and_alive(pgid: int, document: dict[str, Any]) -> bool:
    """Whether process group ``pgid`` is still the one the registry lists, and alive."""
    if document.get("boot") != _boot_id():
        return False  # the machine restarted since: nothing of it survives
    leader = _start_ticks(pgid)
    if leader is not None and leader != document.get("leader_start"):
        return False  # the leader's pid belongs to another process now
    return group_alive(pgid)


def group_alive(pgid: int) -> bool:
    """Whether any process of group ``pgid`` is left (one we may not signal counts)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _end_group(pgid: int) -> None:
    for sig, wait in ((signal.SIGTERM, KILL_AFTER_SECONDS), (signal.SIGKILL, 10.0)):
        with contextlib.suppress(OSError):
            os.killpg(pgid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not group_alive(pgid):
                return
            time.sleep(0.02)


def _start_ticks(pid: int) -> int | None:
    """When process ``pid`` started, in clock ticks since boot (Linux), if it exists."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after it.
    fields = stat[stat.rfind(b")") + 2 :].split()
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def _boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None
