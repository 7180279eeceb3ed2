"""The job file as understood: a TOML description of tasks for ``chronolog run``.

The file is read in two steps. `_job_file_syntax` structures the raw TOML
into classes that mirror the file key for key, so a typo or a missing key is
an error naming its path, ``jobs[2].cron``. Here each entry is then resolved
into a `Job`: a chronolog trigger (whose own validation speaks for an
invalid cron), a target, and a `Policy`, with the ``[defaults]`` table
filled in. Every problem found on the way is collected, so one run of the
validator reports them all.

The same resolution serves ``chronolog add``: its options form one job
entry, and its errors name the options (``--cron``) instead of paths.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import attrs

from ._commands import CommandSpec
from ._errors import ConfigError, InvalidTrigger
from ._ids import validate_task_name
from ._job_file_syntax import (
    HOOK_KEYS,
    JOB_ENTRY,
    TRIGGER_KEYS,
    DefaultsEntry,
    FileEntry,
    HookEntry,
    JobEntry,
    Problems,
    RetryEntry,
    TargetEntry,
    duration_spelling,
    join,
    parse_toml,
    read_job_file_text,
    structure_file,
    structure_job,
)
from ._policies import Policy, Retry
from ._targets import import_target
from ._triggers import At, Cron, Every, FileWatch, Manual, Trigger
from .log._postgres_names import is_dsn

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = [
    "JOB_ENTRY",
    "TARGET_NAME",
    "CallSpec",
    "Hook",
    "Hooks",
    "Job",
    "JobFile",
    "NamedTarget",
    "Target",
    "load_job_file",
    "log_setting",
    "parse_job_file",
    "policy_arguments",
    "resolve_job",
]

DEFAULT_SHUTDOWN_GRACE: Final = timedelta(seconds=30)
DEFAULT_RESULT_MAX_BYTES: Final = 8192
#: How long a hook may run when its entry gives no ``timeout``.
DEFAULT_HOOK_TIMEOUT: Final = timedelta(seconds=30)
#: What a name in ``[targets]`` may look like (agents spell it).
TARGET_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", re.ASCII)

_EMPTY_TZ: Final = 'is empty; write an IANA time zone such as "Europe/Paris", or leave it out'
_EMPTY_CWD: Final = "is empty; give a directory, or leave it out for the job file's own"
_CALL_PATH: Final = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*", re.ASCII)


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


def parse_job_file(text: str, *, path: Path | None = None) -> JobFile:
    """Validate the TOML ``text`` of a job file (read from ``path``, if given).

    Relative paths in it are taken from the job file's directory (the
    current directory without ``path``). Raises `ConfigError` listing every
    problem, each with its key path.
    """
    source = "job file" if path is None else str(path)
    raw = parse_toml(text, source)
    problems = Problems(lambda key: key + _job_label(raw, key))
    entry = structure_file(raw, problems, source)
    base = Path.cwd() if path is None else path.resolve().parent
    return _resolve_file(entry, problems, path=path, base=base)


def load_job_file(path: Path) -> JobFile:
    """Read and validate the job file at ``path`` (`ConfigError` saying why not)."""
    return parse_job_file(read_job_file_text(path), path=path)


def log_setting(path: Path) -> Path | str | None:
    """The log a job file names, without validating the rest (no target is imported):
    a path, or a ``postgresql://`` URL."""
    raw = parse_toml(read_job_file_text(path), str(path))
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
    entry: FileEntry, problems: Problems, *, path: Path | None, base: Path
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
        problems.add("lease", f"must be at least 1s, got {duration_spelling(entry.lease)}")
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
    problems = Problems(
        where if where is not None else lambda key: key,
        term if term is not None else lambda key: key,
    )
    entry = structure_job(raw, problems, source)
    job = _resolve_job(
        entry, DefaultsEntry(), problems, path="", base=base, check_imports=check_imports
    )
    problems.raise_if_any(source)
    assert job is not None
    return job


def _resolve_job(
    entry: JobEntry,
    defaults: DefaultsEntry,
    problems: Problems,
    *,
    path: str,
    base: Path,
    check_imports: bool = True,
) -> Job | None:
    count = len(problems.found)
    at = functools.partial(join, path)
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
    entry: JobEntry | DefaultsEntry,
    problems: Problems,
    *,
    at: str,
    base: Path,
    check_imports: bool = True,
) -> Hooks:
    """The hooks an entry gives itself (a hook with a problem is left out, and said)."""
    hooks: dict[str, Hook] = {}
    for key in HOOK_KEYS:
        hook: HookEntry | None = getattr(entry, key)
        if hook is None:
            continue
        # A hook names its target as a job does; it gets no [defaults] env or cwd.
        as_job = JobEntry(
            name=key, command=hook.command, call=hook.call, env=hook.env, cwd=hook.cwd
        )
        target = _resolve_target(
            as_job,
            DefaultsEntry(),
            problems,
            at=functools.partial(join, join(at, key)),
            base=base,
            check_imports=check_imports,
        )
        if target is not None:
            hooks[key] = Hook(target, hook.timeout or DEFAULT_HOOK_TIMEOUT)
    return Hooks(**hooks)


def _resolve_named_targets(
    entries: Mapping[str, TargetEntry], problems: Problems, *, base: Path
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
        as_job = JobEntry(
            name=name, command=entry.command, call=entry.call, env=entry.env, cwd=entry.cwd
        )
        at = functools.partial(join, where)
        target = _resolve_target(
            as_job, DefaultsEntry(), problems, at=at, base=base, check_imports=True
        )
        if target is not None:
            named.append(NamedTarget(name, target, (entry.description or "").strip()))
    return tuple(named)


def _resolve_trigger(
    entry: JobEntry,
    defaults: DefaultsEntry,
    problems: Problems,
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
    entry: JobEntry,
    defaults: DefaultsEntry,
    problems: Problems,
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
    text: str, problems: Problems, *, at: Callable[[str], str], check_imports: bool
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
    entry: JobEntry, defaults: DefaultsEntry, problems: Problems, *, at: Callable[[str], str]
) -> Policy | None:
    def pick(key: str) -> Any:
        value = getattr(entry, key)
        return value if value is not None else getattr(defaults, key)

    retry_entry = entry.retry if entry.retry is not None else defaults.retry
    retry = Retry()
    if retry_entry is not None:
        given = {
            field.name: getattr(retry_entry, field.name)
            for field in attrs.fields(RetryEntry)
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
