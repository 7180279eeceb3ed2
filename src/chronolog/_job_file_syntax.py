"""The job file as written: its TOML read, key for key, into attrs classes.

cattrs structures the raw TOML into classes that mirror the file
(``forbid_extra_keys``, strict scalar types, durations such as ``"1h30m"``),
so a typo or a missing key is an error naming its path, ``jobs[2].cron``,
before any meaning is attached to a value. `Problems` collects every problem
found, so one run of the validator reports them all. What the values mean --
triggers, targets, policies, ``[defaults]`` filled in -- is `_config`'s part.
"""

from __future__ import annotations

import math
import re
import tomllib
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, Final, TypeVar

import attrs
import cattrs
from cattrs.errors import ClassValidationError, ForbiddenExtraKeysError, IterableValidationError
from cattrs.gen import make_dict_structure_fn

from ._errors import ConfigError, closest_match
from ._policies import CatchUp, Overlap

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping
    from pathlib import Path

__all__ = [
    "HOOK_KEYS",
    "JOB_ENTRY",
    "MAX_DURATION",
    "MAX_NUMBER",
    "TRIGGER_KEYS",
    "DefaultsEntry",
    "FileEntry",
    "HookEntry",
    "JobEntry",
    "Problems",
    "RetryEntry",
    "TargetEntry",
    "check_duration_bound",
    "duration_spelling",
    "join",
    "parse_duration",
    "parse_toml",
    "read_job_file_text",
    "structure_file",
    "structure_job",
]

#: The keys that name a trigger; a job has exactly one of them.
TRIGGER_KEYS: Final = ("cron", "every", "at", "watch", "manual")
#: The keys of a job (and of ``[defaults]``) that name a result hook.
HOOK_KEYS: Final = ("on_failure", "on_success", "on_finish")
#: At most this many problems are listed in one error message.
_MAX_PROBLEMS: Final = 8
#: The longest duration a job file or an option may give (about 100 years):
#: longer ones mean "never" and would overflow the times they are added to.
MAX_DURATION: Final = timedelta(days=36_500)
#: The largest number a job file or an option may give (a count, a size, a factor).
MAX_NUMBER: Final = 1_000_000_000

_UNITS: Final = {
    "ms": timedelta(milliseconds=1),
    "s": timedelta(seconds=1),
    "m": timedelta(minutes=1),
    "min": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
}
_DURATION_PART: Final = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|min|s|m|h|d)(?![a-z])", re.ASCII)
_TOML_POSITION: Final = re.compile(
    r"^(?P<problem>.*?)\s*"
    r"\(at (?:line (?P<line>\d+), column (?P<col>\d+)|(?P<end>end of document))\)$"
)
_SECOND: Final = timedelta(seconds=1)


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


def duration_spelling(delta: timedelta) -> str:
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
class RetryEntry:
    max_attempts: int | None = None
    backoff: timedelta | None = None
    factor: float | None = None
    max_backoff: timedelta | None = None


@attrs.frozen(kw_only=True)
class PolicyEntry:
    overlap: Overlap | None = None
    catch_up: CatchUp | None = None
    catch_up_limit: int | None = None
    misfire_grace: timedelta | None = None
    retry: RetryEntry | None = None
    timeout: timedelta | None = None
    jitter: timedelta | None = None
    paused: bool | None = None
    max_runs: int | None = None


@attrs.frozen(kw_only=True)
class HookEntry:
    """``on_failure = { command = "..." }``: what a result hook runs, and for how long."""

    command: str | list[str] | None = None
    call: str | None = None
    env: dict[str, str] | None = None
    cwd: str | None = None
    timeout: timedelta | None = None


@attrs.frozen(kw_only=True)
class TargetEntry:
    """``[targets.NAME]``: a target the operator allows agents to schedule (``chronolog mcp``)."""

    command: str | list[str] | None = None
    call: str | None = None
    env: dict[str, str] | None = None
    cwd: str | None = None
    description: str | None = None


@attrs.frozen(kw_only=True)
class DefaultsEntry(PolicyEntry):
    tz: str | None = None
    env: dict[str, str] | None = None
    cwd: str | None = None
    on_failure: HookEntry | None = None
    on_success: HookEntry | None = None
    on_finish: HookEntry | None = None


@attrs.frozen(kw_only=True)
class JobEntry(PolicyEntry):
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
    on_failure: HookEntry | None = None
    on_success: HookEntry | None = None
    on_finish: HookEntry | None = None


#: The class a ``[[jobs]]`` entry is structured into: ``chronolog mcp`` derives the
#: JSON Schemas of its tools from it, so the tools and the job file cannot drift apart.
JOB_ENTRY: Final = JobEntry


class _Grace(timedelta):
    """A duration that may be zero (``shutdown_grace = "0s"`` cancels runs at once)."""


@attrs.frozen(kw_only=True)
class FileEntry:
    log: str | None = None
    node: str | None = None
    lease: timedelta | None = None
    shutdown_grace: _Grace | None = None
    max_concurrent: int | None = None
    result_max_bytes: int | None = None
    defaults: DefaultsEntry = DefaultsEntry()
    jobs: list[JobEntry] = attrs.field(factory=list)
    targets: dict[str, TargetEntry] = attrs.field(factory=dict)


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
        (HookEntry, '{ command = "notify.sh" }'),
        (TargetEntry, "[targets.NAME]"),
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


_Entry = TypeVar("_Entry", FileEntry, JobEntry)


_converter: Final = _make_converter()


class Problems:
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
    "": FileEntry,
    "defaults": DefaultsEntry,
    "defaults.retry": RetryEntry,
    "jobs[]": JobEntry,
    "jobs[].retry": RetryEntry,
    **{f"{where}.{key}": HookEntry for where in ("defaults", "jobs[]") for key in HOOK_KEYS},
}


def _known_keys(path: str) -> list[str]:
    generic = re.sub(r"\[\d+\]", "[]", path.removeprefix("$").removeprefix("."))
    generic = re.sub(r"^targets\.[^.]+$", "targets.*", generic)
    cls = _CLASSES_BY_PATH.get(generic, TargetEntry if generic == "targets.*" else None)
    return [] if cls is None else [field.name for field in attrs.fields(cls)]


def _dotted(path: str) -> str:
    return path.removeprefix("$").removeprefix(".")


def check_tables(raw: Mapping[str, Any], problems: Problems) -> None:
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
                check_job_tables(entry, problems, path=f"jobs[{index}]")
    defaults = raw.get("defaults", {})
    if not isinstance(defaults, dict):
        problems.add(
            "defaults",
            f"expected a table such as [defaults] with tz = ..., got {_kind(defaults)} "
            f"{defaults!r}",
        )
    else:
        check_job_tables(defaults, problems, path="defaults")


def check_job_tables(entry: Mapping[str, Any], problems: Problems, *, path: str) -> None:
    retry = entry.get("retry")
    if retry is not None and not isinstance(retry, dict):
        problems.add(
            join(path, "retry"),
            f'expected a table such as {{ max_attempts = 3, backoff = "10s" }}, got '
            f"{_kind(retry)} {retry!r}",
        )


def parse_toml(text: str, source: str) -> dict[str, Any]:
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


def read_job_file_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"job file {path} does not exist; check the path") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"job file {path} is not UTF-8 text ({exc.reason})") from None
    except OSError as exc:
        raise ConfigError(f"cannot read job file {path}: {exc.strerror or exc}") from None


def structure_file(raw: Mapping[str, Any], problems: Problems, source: str) -> FileEntry:
    """The whole file's TOML as a `FileEntry`; every problem found is added to
    ``problems``, which then raises them all (`ConfigError`)."""
    check_tables(raw, problems)
    problems.raise_if_any(source)
    return _structure(dict(raw), FileEntry, problems, source, _known_keys)


def structure_job(raw: Mapping[str, Any], problems: Problems, source: str) -> JobEntry:
    """One ``[[jobs]]`` entry (or ``chronolog add``'s options as one) as a `JobEntry`."""
    check_job_tables(raw, problems, path="")
    problems.raise_if_any(source)
    return _structure(dict(raw), JobEntry, problems, source, _known_job_keys)


def _structure(
    raw: dict[str, Any],
    kind: type[_Entry],
    problems: Problems,
    source: str,
    known: Callable[[str], list[str]],
) -> _Entry:
    try:
        return _converter.structure(raw, kind)
    except (ClassValidationError, IterableValidationError) as exc:
        for where, error in _structure_errors(exc, "$"):
            for key, problem in _describe_structure_error(where, error, known):
                problems.add(_dotted(key), problem)
        problems.raise_if_any(source)
        raise  # pragma: no cover - a cattrs error always has leaves


def _known_job_keys(path: str) -> list[str]:
    key = _dotted(path)
    cls = RetryEntry if key == "retry" else HookEntry if key in HOOK_KEYS else JobEntry
    return [field.name for field in attrs.fields(cls)]


def join(path: str, key: str) -> str:
    """``path.key`` (either may be empty)."""
    if not key:
        return path
    return f"{path}.{key}" if path else key
