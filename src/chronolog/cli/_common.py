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

A file the command may not read or write (the log, its lock file, an output
file: permissions, a read-only file system, a full disk) is 1, whatever the
system call said: the command could not do its work. A path that names no
log at all (nothing there, a directory) is found before anything is opened,
and is 2.

Every error a user can cause ends in one line on stderr (``Error: ...``) and
one of these codes, never in a traceback. Commands raise chronolog's own
errors (or ``OSError``) and `translate_errors` maps them to `CommandError`
and its subclasses, so the mapping is
written once; control commands reuse it.

With ``--json`` the same error is also a JSON document on stdout, one line
(`error_document`), so a script reading stdout learns what went wrong
without parsing stderr: ``{"error": {"type": "UnknownTask", "message":
"...", "exit_code": 2}}``. `ChronologGroup` prints it for every command.
"""

from __future__ import annotations

import contextlib
import enum
import functools
import json
import os
import sys
import warnings
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, ParamSpec, TypeVar

import click

from .._control import ControlError
from .._errors import (
    ChronologError,
    ConfigError,
    DuplicateTask,
    InvalidOccurrenceId,
    InvalidTrigger,
    LogCorrupted,
    LogLocked,
    LogRepaired,
    SnapshotIgnored,
    UnknownTask,
)
from ._log_names import as_log_name

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

__all__ = [
    "BadUsage",
    "ChronologGroup",
    "CommandError",
    "ExitCode",
    "UnusableLog",
    "error_document",
    "error_type",
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
    """A one-line error (``Error: <message>`` on stderr); exit code 1.

    ``details`` are fields the ``--json`` error document carries beside
    ``error`` (``verify`` says how far it read); ``kind`` names the error in
    that document when the error it was raised from does not (`error_type`).
    """

    exit_code = ExitCode.FAILED
    #: The ``type`` of the ``--json`` error document when nothing more precise is known.
    default_type = "Failed"

    def __init__(
        self, message: str, *, kind: str | None = None, details: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.details = dict(details or {})


class BadUsage(CommandError):
    """A bad argument or option, as a one-line error; exit code 2."""

    exit_code = ExitCode.USAGE
    default_type = "UsageError"


class UnusableLog(CommandError):
    """The log is corrupted, not a chronolog log, or locked; exit code 3."""

    exit_code = ExitCode.LOG_UNUSABLE
    default_type = "LogCorrupted"


def _error_class_for(error: BaseException) -> type[CommandError]:
    if isinstance(error, LogCorrupted | LogLocked):
        return UnusableLog
    if isinstance(
        error, UnknownTask | InvalidTrigger | ConfigError | DuplicateTask | InvalidOccurrenceId
    ):
        return BadUsage
    # Anything else -- an OSError above all: a file the command may not read
    # or write -- is a command that could not do its work. Paths that name no
    # log are refused before anything is opened (open_log), as usage errors.
    return CommandError


def error_type(error: click.ClickException) -> str:
    """The ``type`` of ``error`` in a ``--json`` error document.

    chronolog's own error class (``UnknownTask``, ``LogLocked``, ...), the
    kind a running scheduler answered with (``ShuttingDown``, ...), the
    ``OSError`` subclass (``PermissionError``), ``UsageError`` for a bad
    option or argument, else ``Failed``.
    """
    if isinstance(error, CommandError) and error.kind is not None:
        return error.kind
    cause = error.__cause__
    if isinstance(cause, ControlError):
        return cause.kind
    if isinstance(cause, ChronologError | OSError):
        return type(cause).__name__
    if isinstance(error, CommandError):
        return error.default_type
    if isinstance(error, click.UsageError):
        return "UsageError"
    return "Failed"


def error_document(error: click.ClickException) -> dict[str, Any]:
    """The ``--json`` document of ``error``: ``{"error": {"type", "message", "exit_code"}}``.

    The message is the one stderr shows after ``Error:``; a command may add
    fields of its own beside ``error`` (`CommandError.details`).
    """
    details = error.details if isinstance(error, CommandError) else {}
    return {
        **details,
        "error": {
            "type": error_type(error),
            "message": error.format_message(),
            "exit_code": error.exit_code,
        },
    }


#: Where the ``--json`` flag of the command being run is noted (`Context.meta`
#: is shared by a command's context and its group's).
_JSON_FLAG: Final = "chronolog.as_json"
_RAW_ARGS: Final = "chronolog.raw_args"


def _wants_json(context: click.Context) -> bool:
    """Whether the command asked for ``--json``: as parsed, or -- when parsing
    stopped before the flag was read -- as written before any ``--``."""
    flag = context.meta.get(_JSON_FLAG)
    if flag is not None:
        return bool(flag)
    arguments: list[str] = context.meta.get(_RAW_ARGS, [])
    if "--" in arguments:
        arguments = arguments[: arguments.index("--")]
    return "--json" in arguments[1:]


#: Warnings chronolog also logs: a command shows each once, as one line.
_CHRONOLOG_WARNINGS: Final = (LogRepaired, SnapshotIgnored)


@contextlib.contextmanager
def _warnings_as_lines() -> Iterator[None]:
    """chronolog's warnings (a torn tail repaired, a snapshot passed over) as one
    line each on stderr, ``Warning: ...``: no source line, no repeat. Other
    warnings are left to Python's settings."""
    with warnings.catch_warnings():
        for category in _CHRONOLOG_WARNINGS:
            warnings.filterwarnings("always", category=category)
        shown = warnings.showwarning

        def show(
            message: Warning | str,
            category: type[Warning],
            filename: str,
            lineno: int,
            file: Any = None,
            line: str | None = None,
        ) -> None:
            if issubclass(category, _CHRONOLOG_WARNINGS):
                click.echo(f"Warning: {message}", err=True)
            else:
                shown(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        yield


def warnings_logged_instead() -> None:
    """For a command that logs (``run``): chronolog's warnings are in its log lines
    already, so Python's copy of them is left out."""
    for category in _CHRONOLOG_WARNINGS:
        warnings.filterwarnings("ignore", category=category)


class ChronologGroup(click.Group):
    """The ``chronolog`` group: what every command shares when it ends or warns.

    An error with ``--json`` is also printed as `error_document` on stdout,
    one line (also for commands whose output is JSON Lines), with the exit
    code unchanged; chronolog's warnings are one line each on stderr.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta[_RAW_ARGS] = list(args)
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        with _warnings_as_lines():
            try:
                return super().invoke(ctx)
            except click.ClickException as exc:
                if _wants_json(ctx):
                    sys.stdout.write(json.dumps(error_document(exc), ensure_ascii=False) + "\n")
                    sys.stdout.flush()
                raise
            except BrokenPipeError:
                # `chronolog next ... | head`: the reader has what it wanted. End
                # as Python advises, without a message: stdout goes nowhere now,
                # so that flushing it at exit cannot fail a second time.
                with contextlib.suppress(OSError, ValueError):
                    devnull = os.open(os.devnull, os.O_WRONLY)
                    os.dup2(devnull, sys.stdout.fileno())
                raise click.exceptions.Exit(ExitCode.FAILED) from None


def translate_errors(command: Callable[_P, _R]) -> Callable[_P, _R]:
    """Turn chronolog's errors and ``OSError`` raised by ``command`` into `CommandError`.

    The message is the error's own (they say what happened and what to do);
    the exit code follows the table in this module's docstring.
    """

    @functools.wraps(command)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return command(*args, **kwargs)
        except BrokenPipeError:
            raise  # the reader of stdout went away (`| head`): ChronologGroup ends quietly
        except (ChronologError, OSError) as exc:
            raise _error_class_for(exc)(_one_line(exc)) from exc

    return wrapper


def _one_line(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        # "[Errno 13] ..." says nothing to a reader; strerror is the sentence
        # (chronolog's own OSErrors keep theirs there, naming the file).
        text = error.strerror
        if error.filename is not None and str(error.filename) not in text:
            text += f": {error.filename}"
    else:
        text = str(error).strip() or type(error).__name__
    return " ".join(text.split())


def log_argument(command: Callable[_P, _R]) -> Callable[_P, _R]:
    """The ``LOG`` argument every inspection command takes: the path of a log file,
    or a ``postgresql://`` URL (a `DatabaseURL`, shown without its password).

    Not checked by click (``readable=False``): a missing log or a directory
    is a usage error the command words itself (`open_log`), and a log it may
    not read is exit code 1, as any file it may not read.
    """
    return click.argument(
        "log",
        type=click.Path(dir_okay=True, readable=False),
        callback=as_log_name,
        metavar="LOG",
    )(command)


def _note_json_flag(context: click.Context, parameter: click.Parameter, value: bool) -> bool:
    context.meta[_JSON_FLAG] = value
    return value


def json_option(command: Callable[_P, _R]) -> Callable[_P, _R]:
    """``--json``: print one JSON document with stable field names instead of text.

    Errors too: `ChronologGroup` prints them as `error_document`.
    """
    return click.option(
        "--json",
        "as_json",
        is_flag=True,
        callback=_note_json_flag,
        help="Print JSON (field names in docs/reference/cli.md); errors too.",
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
    try:
        return when.astimezone(UTC)
    except OverflowError:
        raise BadUsage(
            f"{option} {text!r} is outside the years 1-9999 in UTC; give a time inside them"
        ) from None


def instant_option(name: str, help_text: str) -> Callable[[Callable[_P, _R]], Callable[_P, _R]]:
    """An option holding a time (``--since``, ``--until``, ``--at``), parsed by `parse_instant`."""

    def parse(context: click.Context, parameter: click.Parameter, value: Any) -> datetime | None:
        return None if value is None else parse_instant(value, name)

    return click.option(name, metavar="TIME", callback=parse, help=help_text)
