"""The job file: a TOML description of tasks for ``chronolog run``.

The file is read in two steps. cattrs structures the raw TOML into attrs
classes that mirror the file key for key (``forbid_extra_keys``, strict
scalar types), so a typo or a missing key is an error naming its path,
``jobs[2].cron``. Then each entry is resolved into a `Job`: a chronolog
trigger (whose own validation speaks for an invalid cron), a target, and a
`Policy`, with the ``[defaults]`` table filled in. Every problem found on the
way is collected, so one run of the validator reports them all.

The same resolution serves ``chronolog add``: its options form one job
entry, and its errors name the options (``--cron``) instead of paths.
"""

from __future__ import annotations

import functools
import math
import os
import re
import shutil
import tomllib
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import attrs
import cattrs
from cattrs.errors import ClassValidationError, ForbiddenExtraKeysError, IterableValidationError
from cattrs.gen import make_dict_structure_fn

from ._commands import CommandSpec
from ._errors import ConfigError, InvalidTrigger, closest_match
from ._ids import validate_task_name
from ._policies import CatchUp, Overlap, Policy, Retry
from ._targets import import_target
from ._triggers import At, Cron, Every, FileWatch, Manual, Trigger
from .log._postgres_names import is_dsn

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

__all__ = [
    "MAX_DURATION",
    "MAX_NUMBER",
    "HOOK_KEYS",
    "JOB_ENTRY",
    "TARGET_NAME",
    "CallSpec",
    "Hook",
    "Hooks",
    "Job",
    "JobFile",
    "NamedTarget",
    "Target",
    "duration_text",
    "load_job_file",
    "log_setting",
    "parse_duration",
    "parse_job_file",
    "policy_arguments",
    "resolve_job",
]

DEFAULT_SHUTDOWN_GRACE: Final = timedelta(seconds=30)
DEFAULT_RESULT_MAX_BYTES: Final = 8192
#: The keys that name a trigger; a job has exactly one of them.
TRIGGER_KEYS: Final = ("cron", "every", "at", "watch", "manual")
#: At most this many problems are listed in one error message.
_MAX_PROBLEMS: Final = 8
#: The longest duration a job file or an option may give (about 100 years):
#: longer ones mean "never" and would overflow the times they are added to.
MAX_DURATION: Final = timedelta(days=36_500)
#: The largest number a job file or an option may give (a count, a size, a factor).
MAX_NUMBER: Final = 1_000_000_000
#: The keys of a job (and of ``[defaults]``) that name a result hook.
HOOK_KEYS: Final = ("on_failure", "on_success", "on_finish")
#: How long a hook may run when its entry gives no ``timeout``.
DEFAULT_HOOK_TIMEOUT: Final = timedelta(seconds=30)
#: What a name in ``[targets]`` may look like (agents spell it).
TARGET_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", re.ASCII)

_UNITS: Final = {
    "ms": timedelta(milliseconds=1),
    "s": timedelta(seconds=1),
    "m": timedelta(minutes=1),
    "min": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
}
_DURATION_PART: Final = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|min|s|m|h|d)(?![a-z])", re.ASCII)
_EMPTY_TZ: Final = 'is empty; write an IANA time zone such as "Europe/Paris", or leave it out'
_EMPTY_CWD: Final = "is empty; give a directory, or leave it out for the job file's own"
_CALL_PATH: Final = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*", re.ASCII)
_TOML_POSITION: Final = re.compile(
    r"^(?P<problem>.*?)\s*"
    r"\(at (?:line (?P<line>\d+), column (?P<col>\d+)|(?P<end>end of document))\)$"
)


# -- durations and times ---------------------------------------------------------


def parse_duration(text: object, *, allow_zero: bool = False) -> timedelta:
    """``"90s"``, ``"5m"``, ``"1h30m"``, ``"1.5h"``, ``"500ms"``, ``"2d"`` as a timedelta.

    Raises ``ValueError`` with an example of the syntax when ``text`` is not one.
    """
    example = "write a number and a unit, e.g. '90s', '5m', '1h30m', '2d' (units: ms, s, m, h, d)"
    if not isinstance(text, str):
        raise ValueError(f"expected a duration string, got {_kind(text)} {text!r}; {example}")
    seconds = 0.0
    parts: list[tuple[float, timedelta]] = []
    position = 0
    stripped = text.strip()
    for match in _DURATION_PART.finditer(stripped):
        if match.start() != position:
            break
        number, unit = match.groups()
        parts.append((float(number), _UNITS[unit]))  # a number too long to read is inf
        seconds += parts[-1][0] * _UNITS[unit].total_seconds()
        position = match.end()
    if not stripped or position != len(stripped):
        raise ValueError(f"{text!r} is not a duration; {example}")
    check_duration_bound(seconds, text)
    total = sum((number * unit for number, unit in parts), timedelta(0))
    if total < timedelta(0) or (total == timedelta(0) and not allow_zero):
        raise ValueError(f"duration {text!r} must be longer than zero")
    return total


def check_duration_bound(seconds: float, text: str) -> None:
    """``ValueError`` when a duration of ``seconds`` (written ``text``) is longer than
    `MAX_DURATION`: the message names the longest one accepted."""
    if not seconds <= MAX_DURATION.total_seconds():
        raise ValueError(
            f"{text!r} is longer than {MAX_DURATION.days}d (100 years), the longest duration "
            f"chronolog accepts"
        )


def duration_text(delta: timedelta) -> str:
    """The shortest spelling `parse_duration` reads back as ``delta``."""
    micros = delta // timedelta(microseconds=1)
    if micros % 1000:
        return f"{micros / 1_000_000}s"
    parts: list[str] = []
    millis = micros // 1000
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        count, millis = divmod(millis, size)
        if count:
            parts.append(f"{count}{unit}")
    if millis:
        parts.append(f"{millis}ms")
    return "".join(parts) or "0s"


def _aware(value: object) -> datetime:
    example = "write e.g. 2026-05-01T09:00:00+02:00 or 2026-05-01T07:00:00Z"
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"{value!r} is not a date and time; {example}") from None
    if isinstance(value, time) or (isinstance(value, date) and not isinstance(value, datetime)):
        raise ValueError(f"{value} is not a date and time; {example}")
    if not isinstance(value, datetime):
        raise ValueError(f"expected a date and time, got {_kind(value)} {value!r}; {example}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(
            f"{value.isoformat()} has no UTC offset, and chronolog never guesses one; {example}"
        )
    return value


def _kind(value: object) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return names.get(type(value), type(value).__name__)


# -- the file as written ----------------------------------------------------------
#
# These classes mirror the TOML key for key; None means "not given". Keeping
# them apart from `Job` lets cattrs report unknown and missing keys by path
# before any meaning is attached to them.


@attrs.frozen(kw_only=True)
class _RetryEntry:
    max_attempts: int | None = None
    backoff: timedelta | None = None
    factor: float | None = None
    max_backoff: timedelta | None = None


@attrs.frozen(kw_only=True)
class _PolicyEntry:
    overlap: Overlap | None = None
    catch_up: CatchUp | None = None
    catch_up_limit: int | None = None
    misfire_grace: timedelta | None = None
    retry: _RetryEntry | None = None
    timeout: timedelta | None = None
    jitter: timedelta | None = None
    paused: bool | None = None
    max_runs: int | None = None


@attrs.frozen(kw_only=True)
class _HookEntry:
    """``on_failure = { command = "..." }``: what a result hook runs, and for how long."""

    command: str | list[str] | None = None
    call: str | None = None
    env: dict[str, str] | None = None
    cwd: str | None = None
    timeout: timedelta | None = None


@attrs.frozen(kw_only=True)
class _TargetEntry:
    """``[targets.NAME]``: a target the operator allows agents to schedule (``chronolog mcp``)."""

    command: str | list[str] | None = None
    call: str | None = None
    env: dict[str, str] | None = None
    cwd: str | None = None
    description: str | None = None


@attrs.frozen(kw_only=True)
class _DefaultsEntry(_PolicyEntry):
    tz: str | None = None
    env: dict[str, str] | None = None
    cwd: str | None = None
    on_failure: _HookEntry | None = None
    on_success: _HookEntry | None = None
    on_finish: _HookEntry | None = None


@attrs.frozen(kw_only=True)
class _JobEntry(_PolicyEntry):
    name: str
    cron: str | None = None
    tz: str | None = None
    every: timedelta | None = None
    at: datetime | None = None
    watch: str | None = None
    poll: timedelta | None = None
    manual: bool | None = None
    start: datetime | None = None
    end: datetime | None = None
    remove_after_run: bool | None = None
    command: str | list[str] | None = None
    call: str | None = None
    env: dict[str, str] | None = None
    cwd: str | None = None
    on_failure: _HookEntry | None = None
    on_success: _HookEntry | None = None
    on_finish: _HookEntry | None = None


#: The class a ``[[jobs]]`` entry is structured into: ``chronolog mcp`` derives the
#: JSON Schemas of its tools from it, so the tools and the job file cannot drift apart.
JOB_ENTRY: Final = _JobEntry


class _Grace(timedelta):
    """A duration that may be zero (``shutdown_grace = "0s"`` cancels runs at once)."""


@attrs.frozen(kw_only=True)
class _FileEntry:
    log: str | None = None
    node: str | None = None
    lease: timedelta | None = None
    shutdown_grace: _Grace | None = None
    max_concurrent: int | None = None
    result_max_bytes: int | None = None
    defaults: _DefaultsEntry = _DefaultsEntry()
    jobs: list[_JobEntry] = attrs.field(factory=list)
    targets: dict[str, _TargetEntry] = attrs.field(factory=dict)


def _strict(kind: type, name: str) -> Callable[[object, type], Any]:
    def structure(value: object, _: type) -> Any:
        # bool is an int in Python, but `retries = true` is a mistake in TOML.
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            if kind is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            else:
                raise ValueError(f"expected {name}, got {_kind(value)} {value!r}")
        if isinstance(value, str):
            _no_nul(value, "the string")
        elif isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"expected a finite number, got {value!r}")
        if isinstance(value, int | float) and not isinstance(value, bool) and value > MAX_NUMBER:
            raise ValueError(
                f"{value!r} is larger than {MAX_NUMBER}, the largest number chronolog accepts"
            )
        return value

    return structure


def _no_nul(text: str, what: str) -> None:
    """No string of a job file may hold a NUL: no path, command or name can."""
    if "\0" in text:
        raise ValueError(
            f"{what} {text!r} contains a NUL character (\\u0000), which no command, path "
            f"or name can hold; remove it"
        )


def _choice(enum_type: type[Overlap] | type[CatchUp]) -> Callable[[object, type], Any]:
    choices = [member.value for member in enum_type]

    def structure(value: object, _: type) -> Any:
        if isinstance(value, str) and value.lower() in choices:
            return enum_type(value.lower())
        raise ValueError(f"expected one of {', '.join(choices)}, got {_kind(value)} {value!r}")

    return structure


def _command(value: object, _: type) -> str | list[str]:
    if isinstance(value, str):
        if not value.strip():
            raise ValueError('the command is empty; write e.g. command = "backup.sh --full"')
        _no_nul(value, "the command")
        return value
    if isinstance(value, list):
        if not value:
            raise ValueError('the argument list is empty; write e.g. ["backup.sh", "--full"]')
        for index, item in enumerate(value):
            if not isinstance(item, str):
                raise ValueError(
                    f"argument {index} is {_kind(item)} {item!r}; every argument must be a string"
                )
            _no_nul(item, f"argument {index}")
        return list(value)
    raise ValueError(
        f"expected a shell command string or a list of arguments, got {_kind(value)} {value!r}"
    )


def _environment(value: object, _: type) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ValueError(f'expected a table such as {{ LANG = "C" }}, got {_kind(value)}')
    for key, item in value.items():
        if not key or "=" in key:
            raise ValueError(
                f"{key!r} cannot name an environment variable (it is empty or holds '=')"
            )
        _no_nul(key, "the variable name")
        if not isinstance(item, str):
            raise ValueError(f"{key} is {_kind(item)} {item!r}; environment values are strings")
        _no_nul(item, f"the value of {key}")
    return dict(value)


def _make_converter() -> cattrs.Converter:
    converter = cattrs.Converter(forbid_extra_keys=True)
    converter.register_structure_hook(str, _strict(str, "a string"))
    converter.register_structure_hook(int, _strict(int, "an integer"))
    converter.register_structure_hook(float, _strict(float, "a number"))
    converter.register_structure_hook(bool, _strict(bool, "true or false"))
    converter.register_structure_hook(timedelta, lambda value, _: parse_duration(value))
    converter.register_structure_hook(
        _Grace, lambda value, _: _Grace(seconds=parse_duration(value, allow_zero=True) / _SECOND)
    )
    converter.register_structure_hook(datetime, lambda value, _: _aware(value))
    converter.register_structure_hook(Overlap, _choice(Overlap))
    converter.register_structure_hook(CatchUp, _choice(CatchUp))
    # Fields typed exactly so (None means "not given"; TOML has no null).
    converter.register_structure_hook_func(lambda kind: kind == str | list[str] | None, _command)
    converter.register_structure_hook_func(lambda kind: kind == dict[str, str], _environment)
    for table, example in (
        (_HookEntry, '{ command = "notify.sh" }'),
        (_TargetEntry, "[targets.NAME]"),
    ):
        converter.register_structure_hook(table, _table(table, example, converter))
    return converter


def _table(
    kind: type[Any], example: str, converter: cattrs.Converter
) -> Callable[[object, type], Any]:
    """Structure ``kind`` from a TOML table, and say so when the value is not one."""
    structure = make_dict_structure_fn(kind, converter, _cattrs_forbid_extra_keys=True)

    def hook(value: object, _: type) -> Any:
        if not isinstance(value, dict):
            raise ValueError(f"expected a table such as {example}, got {_kind(value)} {value!r}")
        return structure(value, kind)

    return hook


_SECOND: Final = timedelta(seconds=1)
_converter: Final = _make_converter()


# -- the file as understood -------------------------------------------------------


@attrs.frozen
class CallSpec:
    """A Python callable named by its import path, ``"pkg.mod:func"``."""

    path: str

    def describe(self) -> str:
        return self.path


Target = CommandSpec | CallSpec


@attrs.frozen
class Hook:
    """A result hook: a command or a call run after a run's record is durable."""

    target: Target
    timeout: timedelta = DEFAULT_HOOK_TIMEOUT


@attrs.frozen
class Hooks:
    """The result hooks of a job (``None``: that hook is not set)."""

    on_failure: Hook | None = None
    on_success: Hook | None = None
    on_finish: Hook | None = None

    def over(self, defaults: Hooks) -> Hooks:
        """These hooks, each unset one taken from ``defaults``."""
        return Hooks(
            on_failure=self.on_failure or defaults.on_failure,
            on_success=self.on_success or defaults.on_success,
            on_finish=self.on_finish or defaults.on_finish,
        )


@attrs.frozen
class NamedTarget:
    """A target of the ``[targets]`` table: one an agent may schedule by its name."""

    name: str
    target: Target
    description: str = ""


@attrs.frozen
class Job:
    """One task of a job file: what `Scheduler.add` needs, resolved and checked."""

    name: str
    trigger: Trigger
    target: Target
    policy: Policy
    hooks: Hooks = attrs.Factory(Hooks)
    """The job's own hooks; `JobFile.hooks_for` adds the ``[defaults]`` ones."""


@attrs.frozen
class JobFile:
    """A validated job file."""

    path: Path | None
    log: Path | str | None
    """The log path, relative paths taken from the job file's directory; or a
    ``postgresql://`` URL (a `str`), for a log several schedulers share."""
    shutdown_grace: timedelta
    max_concurrent: int | None
    result_max_bytes: int
    jobs: tuple[Job, ...]
    default_hooks: Hooks = attrs.Factory(Hooks)
    """The hooks of ``[defaults]``: of every task the file has no hook of its own for."""
    targets: tuple[NamedTarget, ...] = ()
    """The ``[targets]`` table, in the file's order."""
    node: str | None = None
    """This scheduler's node name (``open_scheduler(node=...)``); None: host:pid."""
    lease: timedelta | None = None
    """On a ``postgresql://`` log: the node's lease period (None: `PostgresLog`'s default)."""

    def hooks_for(self, task: str) -> Hooks:
        """The hooks of ``task``: its job's, with ``[defaults]`` for the ones it has not
        (a task the file does not declare, e.g. one added with ``chronolog add``, gets
        the ``[defaults]`` ones)."""
        for job in self.jobs:
            if job.name == task:
                return job.hooks.over(self.default_hooks)
        return self.default_hooks


def policy_arguments(policy: Policy) -> dict[str, Any]:
    """``policy`` as keyword arguments of `Scheduler.add`."""
    return {field: getattr(policy, field) for field in policy.__struct_fields__}


class _Problems:
    """Problems found while reading a job file, each with the path it concerns.

    ``where`` turns a key path into what a message calls it (``jobs[2].cron``
    in a file, ``--cron`` for ``chronolog add``); ``term`` does the same for
    a key named inside a sentence.
    """

    def __init__(
        self, where: Callable[[str], str], term: Callable[[str], str] = lambda key: key
    ) -> None:
        self.where = where
        self.term = term
        self.found: list[str] = []

    def add(self, path: str, problem: str) -> None:
        self.found.append(f"{self.where(path)}: {problem}" if path else problem)

    def raise_if_any(self, source: str) -> None:
        if not self.found:
            return
        if len(self.found) == 1:
            raise ConfigError(f"{source}: {self.found[0]}")
        shown = self.found[:_MAX_PROBLEMS]
        more = len(self.found) - len(shown)
        lines = [f"{source}: {len(self.found)} problems:", *(f"  {line}" for line in shown)]
        if more:
            lines.append(f"  ... and {more} more")
        raise ConfigError("\n".join(lines))


def _structure_errors(error: BaseException, path: str) -> Iterator[tuple[str, BaseException]]:
    """(path, error) for every leaf of a cattrs validation error tree."""
    if isinstance(error, ClassValidationError | IterableValidationError):
        with_notes, without = error.group_exceptions()
        for sub, note in with_notes:
            name = getattr(note, "name", None)
            if name is None and isinstance(note.index, str):
                name = note.index  # a key of a table such as [targets]
            step = f"[{note.index}]" if name is None else f".{name}"
            yield from _structure_errors(sub, path + step)
        for sub in without:
            yield from _structure_errors(sub, path)
    else:
        yield path, error


def _describe_structure_error(
    path: str, error: BaseException, known: Callable[[str], list[str]]
) -> list[tuple[str, str]]:
    """One or more (path, problem) pairs for a leaf of a cattrs error."""
    if isinstance(error, ForbiddenExtraKeysError):
        pairs = []
        for key in sorted(error.extra_fields):
            hint = closest_match(key, known(path))
            suggestion = f"; did you mean {hint!r}?" if hint else ""
            pairs.append((f"{path}.{key}", f"unknown key{suggestion}"))
        return pairs
    if isinstance(error, KeyError):
        return [(path, "missing (this key is required)")]
    if isinstance(error, ValueError | TypeError):
        return [(path, str(error))]
    return [(path, f"{type(error).__name__}: {error}")]


_CLASSES_BY_PATH: Final = {
    "": _FileEntry,
    "defaults": _DefaultsEntry,
    "defaults.retry": _RetryEntry,
    "jobs[]": _JobEntry,
    "jobs[].retry": _RetryEntry,
    **{f"{where}.{key}": _HookEntry for where in ("defaults", "jobs[]") for key in HOOK_KEYS},
}


def _known_keys(path: str) -> list[str]:
    generic = re.sub(r"\[\d+\]", "[]", path.removeprefix("$").removeprefix("."))
    generic = re.sub(r"^targets\.[^.]+$", "targets.*", generic)
    cls = _CLASSES_BY_PATH.get(generic, _TargetEntry if generic == "targets.*" else None)
    return [] if cls is None else [field.name for field in attrs.fields(cls)]


def _dotted(path: str) -> str:
    return path.removeprefix("$").removeprefix(".")


def parse_job_file(text: str, *, path: Path | None = None) -> JobFile:
    """Validate the TOML ``text`` of a job file (read from ``path``, if given).

    Relative paths in it are taken from the job file's directory (the
    current directory without ``path``). Raises `ConfigError` listing every
    problem, each with its key path.
    """
    source = "job file" if path is None else str(path)
    raw = _parse_toml(text, source)
    problems = _Problems(lambda key: key + _job_label(raw, key))
    _check_tables(raw, problems)
    problems.raise_if_any(source)
    try:
        entry = _converter.structure(raw, _FileEntry)
    except (ClassValidationError, IterableValidationError) as exc:
        for where, error in _structure_errors(exc, "$"):
            for key, problem in _describe_structure_error(where, error, _known_keys):
                problems.add(_dotted(key), problem)
        problems.raise_if_any(source)
        raise  # pragma: no cover - a cattrs error always has leaves
    base = Path.cwd() if path is None else path.resolve().parent
    return _resolve_file(entry, problems, path=path, base=base)


def _check_tables(raw: Mapping[str, Any], problems: _Problems) -> None:
    """Say where a job file has a value where a table or an array of tables belongs
    (``jobs = 5``), before the structure is read and such a value makes no sense."""
    jobs = raw.get("jobs", [])
    if not isinstance(jobs, list):
        problems.add(
            "jobs",
            f"expected an array of tables, one [[jobs]] entry per job, got {_kind(jobs)} {jobs!r}",
        )
    else:
        for index, entry in enumerate(jobs):
            if not isinstance(entry, dict):
                problems.add(
                    f"jobs[{index}]",
                    f"expected a table (a [[jobs]] entry with name = ...), got {_kind(entry)} "
                    f"{entry!r}",
                )
            else:
                _check_job_tables(entry, problems, path=f"jobs[{index}]")
    defaults = raw.get("defaults", {})
    if not isinstance(defaults, dict):
        problems.add(
            "defaults",
            f"expected a table such as [defaults] with tz = ..., got {_kind(defaults)} "
            f"{defaults!r}",
        )
    else:
        _check_job_tables(defaults, problems, path="defaults")


def _check_job_tables(entry: Mapping[str, Any], problems: _Problems, *, path: str) -> None:
    retry = entry.get("retry")
    if retry is not None and not isinstance(retry, dict):
        problems.add(
            _join(path, "retry"),
            f'expected a table such as {{ max_attempts = 3, backoff = "10s" }}, got '
            f"{_kind(retry)} {retry!r}",
        )


def _parse_toml(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        position = _TOML_POSITION.match(message)
        if position is not None:
            problem = position["problem"][:1].lower() + position["problem"][1:]
            where = (
                "at the end of the file"
                if position["end"]
                else f"line {position['line']}, column {position['col']}"
            )
            message = f"{where}: {problem}"
        raise ConfigError(f"{source} is not valid TOML: {message}") from None


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"job file {path} does not exist; check the path") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"job file {path} is not UTF-8 text ({exc.reason})") from None
    except OSError as exc:
        raise ConfigError(f"cannot read job file {path}: {exc.strerror or exc}") from None


def load_job_file(path: Path) -> JobFile:
    """Read and validate the job file at ``path`` (`ConfigError` saying why not)."""
    return parse_job_file(_read(path), path=path)


def log_setting(path: Path) -> Path | str | None:
    """The log a job file names, without validating the rest (no target is imported):
    a path, or a ``postgresql://`` URL."""
    raw = _parse_toml(_read(path), str(path))
    log = raw.get("log")
    if log is None:
        return None
    if not isinstance(log, str) or not log.strip():
        raise ConfigError(f'{path}: log: expected a path such as "jobs.jsonl", got {log!r}')
    return _log_of(log, path.resolve().parent)


def _log_of(log: str, base: Path) -> Path | str:
    """A job file's ``log``: a ``postgresql://`` URL as it is, a path from ``base``."""
    return log if is_dsn(log) else base / log


def _job_label(raw: Mapping[str, Any], path: str) -> str:
    """`` (job 'backup')`` for a path inside ``jobs[i]`` whose entry has a name."""
    match = re.match(r"jobs\[(\d+)\]", path)
    jobs = raw.get("jobs")
    if match is None or not isinstance(jobs, list):
        return ""
    index = int(match[1])
    entry = jobs[index] if index < len(jobs) else None
    name = entry.get("name") if isinstance(entry, dict) else None
    return f" (job {name!r})" if isinstance(name, str) else ""


def _resolve_file(
    entry: _FileEntry, problems: _Problems, *, path: Path | None, base: Path
) -> JobFile:
    if entry.max_concurrent is not None and entry.max_concurrent < 1:
        problems.add("max_concurrent", f"must be at least 1, got {entry.max_concurrent}")
    if entry.result_max_bytes is not None and entry.result_max_bytes < 64:
        problems.add("result_max_bytes", f"must be at least 64, got {entry.result_max_bytes}")
    if entry.log is not None and not entry.log.strip():
        problems.add("log", 'is empty; write e.g. log = "jobs.jsonl"')
    if entry.node is not None and not entry.node.strip():
        problems.add("node", 'is empty; write e.g. node = "web-1", or leave it out (host:pid)')
    if entry.lease is not None and entry.lease < timedelta(seconds=1):
        problems.add("lease", f"must be at least 1s, got {duration_text(entry.lease)}")
    if entry.lease is not None and (entry.log is None or not is_dsn(entry.log)):
        problems.add("lease", "applies to a postgresql:// log only (several schedulers)")
    if entry.defaults.tz is not None and not entry.defaults.tz.strip():
        problems.add("defaults.tz", _EMPTY_TZ)
    if entry.defaults.cwd is not None and not entry.defaults.cwd.strip():
        problems.add("defaults.cwd", _EMPTY_CWD)
    jobs: list[Job] = []
    first_index: dict[str, int] = {}
    for index, job_entry in enumerate(entry.jobs):
        key = f"jobs[{index}]"
        earlier = first_index.setdefault(job_entry.name, index)
        if earlier != index:
            problems.add(f"{key}.name", f"{job_entry.name!r} is also the name of jobs[{earlier}]")
            continue
        job = _resolve_job(job_entry, entry.defaults, problems, path=key, base=base)
        if job is not None:
            jobs.append(job)
    default_hooks = _resolve_hooks(entry.defaults, problems, at="defaults", base=base)
    targets = _resolve_named_targets(entry.targets, problems, base=base)
    problems.raise_if_any("job file" if path is None else str(path))
    result_max_bytes = entry.result_max_bytes or DEFAULT_RESULT_MAX_BYTES
    return JobFile(
        path=path,
        log=None if entry.log is None else _log_of(entry.log, base),
        node=entry.node,
        lease=entry.lease,
        shutdown_grace=(
            DEFAULT_SHUTDOWN_GRACE
            if entry.shutdown_grace is None
            else timedelta(seconds=entry.shutdown_grace.total_seconds())
        ),
        max_concurrent=entry.max_concurrent,
        result_max_bytes=result_max_bytes,
        jobs=tuple(jobs),
        default_hooks=default_hooks,
        targets=targets,
    )


def resolve_job(
    raw: Mapping[str, Any],
    *,
    base: Path,
    source: str = "invalid task",
    where: Callable[[str], str] | None = None,
    term: Callable[[str], str] | None = None,
    check_imports: bool = True,
) -> Job:
    """One job from a mapping shaped like a ``[[jobs]]`` entry (used by ``chronolog add``).

    ``where`` turns a key path (``cron``, ``retry.max_attempts``) into the
    words an error message uses for it, e.g. an option name; ``term`` names
    a key inside a sentence (``--manual`` for ``manual = true``). With
    ``check_imports=False`` a ``call`` target is checked for its form only,
    for a process that will not be the one importing it.
    """
    problems = _Problems(
        where if where is not None else lambda key: key,
        term if term is not None else lambda key: key,
    )
    _check_job_tables(raw, problems, path="")
    problems.raise_if_any(source)
    try:
        entry = _converter.structure(dict(raw), _JobEntry)
    except (ClassValidationError, IterableValidationError) as exc:
        for path, error in _structure_errors(exc, "$"):
            for key, problem in _describe_structure_error(path, error, _known_job_keys):
                problems.add(_dotted(key), problem)
        problems.raise_if_any(source)
        raise  # pragma: no cover - a cattrs error always has leaves
    job = _resolve_job(
        entry, _DefaultsEntry(), problems, path="", base=base, check_imports=check_imports
    )
    problems.raise_if_any(source)
    assert job is not None
    return job


def _known_job_keys(path: str) -> list[str]:
    key = _dotted(path)
    cls = _RetryEntry if key == "retry" else _HookEntry if key in HOOK_KEYS else _JobEntry
    return [field.name for field in attrs.fields(cls)]


def _join(path: str, key: str) -> str:
    if not key:
        return path
    return f"{path}.{key}" if path else key


def _resolve_job(
    entry: _JobEntry,
    defaults: _DefaultsEntry,
    problems: _Problems,
    *,
    path: str,
    base: Path,
    check_imports: bool = True,
) -> Job | None:
    count = len(problems.found)
    at = functools.partial(_join, path)
    try:
        validate_task_name(entry.name)
    except ConfigError as exc:
        problems.add(at("name"), str(exc))
    trigger = _resolve_trigger(entry, defaults, problems, at=at, base=base)
    target = _resolve_target(
        entry, defaults, problems, at=at, base=base, check_imports=check_imports
    )
    policy = _resolve_policy(entry, defaults, problems, at=at)
    hooks = _resolve_hooks(entry, problems, at=path, base=base, check_imports=check_imports)
    if len(problems.found) > count or trigger is None or target is None or policy is None:
        return None
    return Job(name=entry.name, trigger=trigger, target=target, policy=policy, hooks=hooks)


def _resolve_hooks(
    entry: _JobEntry | _DefaultsEntry,
    problems: _Problems,
    *,
    at: str,
    base: Path,
    check_imports: bool = True,
) -> Hooks:
    """The hooks an entry gives itself (a hook with a problem is left out, and said)."""
    hooks: dict[str, Hook] = {}
    for key in HOOK_KEYS:
        hook: _HookEntry | None = getattr(entry, key)
        if hook is None:
            continue
        # A hook names its target as a job does; it gets no [defaults] env or cwd.
        as_job = _JobEntry(
            name=key, command=hook.command, call=hook.call, env=hook.env, cwd=hook.cwd
        )
        target = _resolve_target(
            as_job,
            _DefaultsEntry(),
            problems,
            at=functools.partial(_join, _join(at, key)),
            base=base,
            check_imports=check_imports,
        )
        if target is not None:
            hooks[key] = Hook(target, hook.timeout or DEFAULT_HOOK_TIMEOUT)
    return Hooks(**hooks)


def _resolve_named_targets(
    entries: Mapping[str, _TargetEntry], problems: _Problems, *, base: Path
) -> tuple[NamedTarget, ...]:
    """The ``[targets]`` table: each name checked, each target resolved as a job's."""
    named: list[NamedTarget] = []
    for name, entry in entries.items():
        where = f"targets.{name}"
        if not TARGET_NAME.fullmatch(name):
            problems.add(
                where,
                "a target's name is 1 to 64 letters, digits, '_', '.' or '-', starting with "
                "a letter or digit (agents spell it); e.g. [targets.send-report]",
            )
            continue
        as_job = _JobEntry(
            name=name, command=entry.command, call=entry.call, env=entry.env, cwd=entry.cwd
        )
        at = functools.partial(_join, where)
        target = _resolve_target(
            as_job, _DefaultsEntry(), problems, at=at, base=base, check_imports=True
        )
        if target is not None:
            named.append(NamedTarget(name, target, (entry.description or "").strip()))
    return tuple(named)


def _resolve_trigger(
    entry: _JobEntry,
    defaults: _DefaultsEntry,
    problems: _Problems,
    *,
    at: Callable[[str], str],
    base: Path,
) -> Trigger | None:
    given = [key for key in TRIGGER_KEYS if getattr(entry, key) is not None]
    term = problems.term
    if not given:
        choices = ", ".join(term(key) for key in TRIGGER_KEYS[:-1])
        problems.add(
            at(""), f"no trigger; give exactly one of {choices} or {term('manual = true')}"
        )
        return None
    if len(given) > 1:
        problems.add(
            at(given[1]),
            f"a job has exactly one trigger, and this one also has {term(given[0])}",
        )
        return None
    kind = given[0]
    misplaced = {
        "tz": kind == "cron",
        "start": kind in ("cron", "every"),
        "end": kind in ("cron", "every"),
        "poll": kind == "watch",
        "remove_after_run": kind == "at",
    }
    for key, allowed in misplaced.items():
        if getattr(entry, key) is not None and not allowed:
            owners = {
                "tz": "cron jobs (at, start and end take a UTC offset instead)",
                "start": "cron and every jobs",
                "end": "cron and every jobs",
                "poll": "watch jobs",
                "remove_after_run": "at jobs",
            }[key]
            problems.add(at(key), f"applies only to {owners}, and this job uses {term(kind)}")
    try:
        if kind == "cron":
            assert entry.cron is not None
            if entry.tz is not None and not entry.tz.strip():
                problems.add(at("tz"), _EMPTY_TZ)
                return None
            tz = entry.tz or defaults.tz or "UTC"
            # Bound to the job's name as the scheduler will bind it, so that an
            # H the name makes impossible (H(29-31) in February) is found here.
            return Cron(entry.cron, tz=tz, start=entry.start, end=entry.end).for_task(entry.name)
        if kind == "every":
            assert entry.every is not None
            return Every(entry.every, start=entry.start, end=entry.end)
        if kind == "at":
            assert entry.at is not None
            return At(entry.at)
        if kind == "watch":
            assert entry.watch is not None
            if not entry.watch.strip():
                problems.add(at("watch"), 'is empty; write the path of a file, e.g. "inbox.csv"')
                return None
            poll = entry.poll if entry.poll is not None else timedelta(seconds=2)
            return FileWatch(str(base / entry.watch), poll=poll)
        if entry.manual is not True:
            problems.add(
                at("manual"), f"manual = false names no trigger; write {term('manual = true')}"
            )
            return None
        return Manual()
    except InvalidTrigger as exc:
        message = str(exc)
        key = kind
        for bound in ("start", "end"):
            # "Cron start 9999-12-31T23:59:59-05:00 is outside ...": the bound's fault.
            if getattr(entry, bound) is not None and re.match(rf"\w+ {bound} ", message):
                key = bound
        if kind == "cron" and "zone" in message.lower() and entry.tz:
            key = "tz"
        problems.add(at(key), message)
        return None


def _resolve_target(
    entry: _JobEntry,
    defaults: _DefaultsEntry,
    problems: _Problems,
    *,
    at: Callable[[str], str],
    base: Path,
    check_imports: bool,
) -> Target | None:
    term = problems.term
    if entry.command is None and entry.call is None:
        problems.add(
            at(""),
            f"no target; give {term('command')} (a shell command or a list of arguments) "
            f"or {term('call')} (an import path such as 'mypackage.jobs:backup')",
        )
        return None
    if entry.command is not None and entry.call is not None:
        problems.add(at("call"), f"a job has one target, and this one also has {term('command')}")
        return None
    if entry.call is not None:
        for key in ("env", "cwd"):
            if getattr(entry, key) is not None:
                problems.add(
                    at(key), f"applies only to command targets, and this job has {term('call')}"
                )
        return _resolve_call(entry.call, problems, at=at, check_imports=check_imports)
    assert entry.command is not None
    # Commands run in the job file's directory unless cwd says otherwise, as
    # relative paths in the file are read from there.
    cwd = base
    if entry.cwd is not None and not entry.cwd.strip():
        problems.add(at("cwd"), _EMPTY_CWD)
        return None
    if entry.cwd is not None or defaults.cwd is not None:
        cwd = base / (entry.cwd if entry.cwd is not None else defaults.cwd or "")
        if not cwd.is_dir():
            key = at("cwd") if entry.cwd is not None else "defaults.cwd"
            problems.add(key, f"directory {cwd} does not exist")
            return None
    env = tuple(sorted({**(defaults.env or {}), **(entry.env or {})}.items()))
    if isinstance(entry.command, str):
        return CommandSpec(shell=entry.command, cwd=str(cwd), env=env)
    program = entry.command[0]
    if "/" in program:
        found = (cwd / program).is_file() and os.access(cwd / program, os.X_OK)
        where = f"(looked for {cwd / program})"
    else:
        search = dict(env).get("PATH", os.environ.get("PATH", os.defpath))
        found = shutil.which(program, path=search) is not None
        where = "on PATH"
    if not found:
        problems.add(
            at("command"),
            f"program {program!r} is not an executable file {where}; give its path, "
            f"or write the command as a shell string",
        )
        return None
    return CommandSpec(argv=tuple(entry.command), cwd=str(cwd), env=env)


def _resolve_call(
    text: str, problems: _Problems, *, at: Callable[[str], str], check_imports: bool
) -> CallSpec | None:
    if not _CALL_PATH.fullmatch(text):
        problems.add(
            at("call"), f"{text!r} is not an import path; write e.g. 'mypackage.jobs:backup'"
        )
        return None
    try:
        if check_imports:
            import_target(text)
    except LookupError as exc:
        problems.add(at("call"), str(exc))
        return None
    return CallSpec(text)


def _resolve_policy(
    entry: _JobEntry, defaults: _DefaultsEntry, problems: _Problems, *, at: Callable[[str], str]
) -> Policy | None:
    def pick(key: str) -> Any:
        value = getattr(entry, key)
        return value if value is not None else getattr(defaults, key)

    retry_entry = entry.retry if entry.retry is not None else defaults.retry
    retry = Retry()
    if retry_entry is not None:
        given = {
            field.name: getattr(retry_entry, field.name)
            for field in attrs.fields(_RetryEntry)
            if getattr(retry_entry, field.name) is not None
        }
        try:
            retry = Retry(**given)
        except ConfigError as exc:
            problems.add(at("retry") if entry.retry is not None else "defaults.retry", str(exc))
            return None
    arguments = {
        key: pick(key)
        for key in (
            "overlap",
            "catch_up",
            "catch_up_limit",
            "misfire_grace",
            "timeout",
            "jitter",
            "paused",
            "max_runs",
        )
        if pick(key) is not None
    }
    if entry.remove_after_run is not None:
        arguments["remove_after_run"] = entry.remove_after_run
    try:
        return Policy(retry=retry, **arguments)
    except ConfigError as exc:
        # Policy's messages start with the name of the field they are about.
        field = str(exc).split(maxsplit=1)[0]
        problems.add(at(field) if field in arguments else at(""), str(exc))
        return None
