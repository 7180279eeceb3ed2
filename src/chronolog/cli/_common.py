"""What every ``chronolog`` command shares: exit codes, errors, the log argument, times.

Exit codes are part of the command line's contract (docs/reference/cli.md):

* 0 -- the command did what was asked;
* 1 -- it ran, and the answer is "no": ``verify`` found violations, or a
  command could not do its work (a file it cannot read, a failed control
  command);
* 2 -- usage: a bad option or argument, a log path with no log behind it, a
  task the log does not know, a time without a UTC offset;
* 3 -- the log itself stands in the way: it is corrupted, is not a chronolog
  log, or is locked by a writer.

Every error a user can cause ends in one line on stderr (``Error: ...``) and
one of these codes, never in a traceback. Commands raise chronolog's own
errors (or ``OSError``) and `translate_errors` maps them to `CommandError`
and its subclasses, so the mapping is
written once; control commands reuse it.
"""

from __future__ import annotations

import enum
import errno
import functools
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import click

from .._errors import (
    ChronologError,
    ConfigError,
    InvalidTrigger,
    LogCorrupted,
    LogLocked,
    UnknownTask,
)

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "BadUsage",
    "CommandError",
    "ExitCode",
    "UnusableLog",
    "instant_option",
    "json_option",
    "log_argument",
    "parse_instant",
    "translate_errors",
]

_P = ParamSpec("_P")
_R = TypeVar("_R")


class ExitCode(enum.IntEnum):
    """How a ``chronolog`` command ended (documented in docs/reference/cli.md)."""

    OK = 0
    FAILED = 1
    USAGE = 2
    LOG_UNUSABLE = 3


class CommandError(click.ClickException):
    """A one-line error (``Error: <message>`` on stderr); exit code 1."""

    exit_code = ExitCode.FAILED


class BadUsage(CommandError):
    """A bad argument or option, as a one-line error; exit code 2."""

    exit_code = ExitCode.USAGE


class UnusableLog(CommandError):
    """The log is corrupted, not a chronolog log, or locked; exit code 3."""

    exit_code = ExitCode.LOG_UNUSABLE


def _error_class_for(error: BaseException) -> type[CommandError]:
    if isinstance(error, LogCorrupted | LogLocked):
        return UnusableLog
    if isinstance(error, UnknownTask | InvalidTrigger | ConfigError):
        return BadUsage
    if isinstance(error, OSError) and error.errno in (errno.ENOENT, errno.EISDIR, errno.ENOTDIR):
        # The path names no log: the argument is wrong, as with a missing file
        # that click.Path(exists=True) would reject.
        return BadUsage
    return CommandError


def translate_errors(command: Callable[_P, _R]) -> Callable[_P, _R]:
    """Turn chronolog's errors and ``OSError`` raised by ``command`` into `CommandError`.

    The message is the error's own (they say what happened and what to do);
    the exit code follows the table in this module's docstring.
    """

    @functools.wraps(command)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return command(*args, **kwargs)
        except (ChronologError, OSError) as exc:
            raise _error_class_for(exc)(_one_line(exc)) from exc

    return wrapper


def _one_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return " ".join(text.split())


def log_argument(command: Callable[_P, _R]) -> Callable[_P, _R]:
    """The ``LOG`` argument every inspection command takes: the path of a log file."""
    return click.argument("log", type=click.Path(dir_okay=True, path_type=Path), metavar="LOG")(
        command
    )


def json_option(command: Callable[_P, _R]) -> Callable[_P, _R]:
    """``--json``: print one JSON document with stable field names instead of text."""
    return click.option(
        "--json",
        "as_json",
        is_flag=True,
        help="Print one JSON document (field names in docs/reference/cli.md).",
    )(command)


def parse_instant(text: str, option: str) -> datetime:
    """An ISO 8601 time with a UTC offset or ``Z``, as an aware UTC datetime.

    A time without an offset is refused, never guessed (as everywhere in
    chronolog); the message shows how to write it.
    """
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise BadUsage(
            f"{option} {text!r} is not an ISO 8601 time; write e.g. '2026-03-29T03:00:00+02:00' "
            f"or '2026-03-29T01:00Z'"
        ) from None
    if when.tzinfo is None or when.utcoffset() is None:
        example = text.strip() if "T" in text or " " in text else f"{text.strip()}T00:00"
        raise BadUsage(
            f"{option} {text!r} has no UTC offset, and chronolog never guesses one; "
            f"add an offset or Z, e.g. '{example}Z' or '{example}+02:00'"
        )
    return when.astimezone(UTC)


def instant_option(name: str, help_text: str) -> Callable[[Callable[_P, _R]], Callable[_P, _R]]:
    """An option holding a time (``--since``, ``--until``, ``--at``), parsed by `parse_instant`."""

    def parse(context: click.Context, parameter: click.Parameter, value: Any) -> datetime | None:
        return None if value is None else parse_instant(value, name)

    return click.option(name, metavar="TIME", callback=parse, help=help_text)
