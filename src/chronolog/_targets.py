"""Task targets: naming a callable for the log, finding it again, calling it.

A log must explain itself without user code, so a ``TaskDefined`` records a
target's import path (``"pkg.mod:func"``) when it has one, else its qualified
name. After a restart the scheduler imports targets by that path; a target
that cannot be imported pauses its task with a note instead of crashing.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import sys
import traceback
from typing import TYPE_CHECKING, Any, Final

import msgspec
import trio

if TYPE_CHECKING:
    from collections.abc import Callable

    from ._clock import Clock

__all__ = [
    "MISSING_TARGET_NOTES",
    "describe_error",
    "import_target",
    "invoke",
    "jsonable_result",
    "missing_target_note",
    "target_path",
]

#: How much of a traceback a ``Failed`` record keeps.
TRACEBACK_MAX_CHARS: Final = 4000
#: How the note of a task paused because its target cannot be found begins.
_MISSING_TARGET: Final = "its target cannot be found: "
#: How such notes begin (earlier versions wrote the import error alone).
MISSING_TARGET_NOTES: Final = (_MISSING_TARGET, "cannot import", "target ", "module ")


def missing_target_note(problem: str) -> str:
    """The note of a task chronolog pauses because its target cannot be imported."""
    return _MISSING_TARGET + problem


def target_path(target: Callable[..., Any]) -> str:
    """``"module:qualname"`` for a callable; partials name the wrapped function.

    A callable object, or a method bound to one, is named ``"module:<Class
    object>"``: its class's path would import the class (or the unbound
    method), and calling that is not calling the object. Such a path is not
    importable, so after a restart the task waits for ``add`` to give the
    object again instead of running something else.
    """
    inner: Any = target
    while isinstance(inner, functools.partial):
        inner = inner.func
    module = getattr(inner, "__module__", None) or "?"
    qualname = getattr(inner, "__qualname__", None)
    if qualname is None:
        qualname = f"<{type(inner).__qualname__} object>"
    elif inspect.ismethod(inner) and not inspect.isclass(inner.__self__):
        qualname = f"<{qualname} of a {type(inner.__self__).__qualname__} object>"
    return sys.intern(f"{module}:{qualname}")  # many tasks share a target: one string


def import_target(path: str) -> Callable[..., Any]:
    """The callable that ``path`` names; raises ``LookupError`` saying why not."""
    module_name, _, qualname = path.partition(":")
    if not module_name or not qualname or "<" in qualname:
        raise LookupError(
            f"target {path!r} is not importable (a lambda, a function defined inside "
            f"another one or a callable object has no import path); add() the task again "
            f"with the callable"
        )
    try:
        obj: Any = importlib.import_module(module_name)
    except Exception as exc:  # any import-time error of user code
        raise LookupError(
            f"cannot import module {module_name!r} of target {path!r}: {exc}"
        ) from exc
    for part in qualname.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError as exc:
            raise LookupError(
                f"module {module_name!r} has no {qualname!r} (target {path!r})"
            ) from exc
    if not callable(obj):
        raise LookupError(f"target {path!r} is a {type(obj).__name__}, not a callable")
    return obj  # type: ignore[no-any-return]


#: Worker threads for sync targets, apart from Trio's default limiter: the
#: logs write in threads from that one, and sync targets that hang (or were
#: abandoned after a timeout but still run) must never starve the log.
SYNC_TARGET_THREADS = 40
_LIMITER: trio.lowlevel.RunVar[trio.CapacityLimiter] = trio.lowlevel.RunVar("chronolog_sync")


def _sync_target_threads() -> trio.CapacityLimiter:
    try:
        return _LIMITER.get()
    except LookupError:
        limiter = trio.CapacityLimiter(SYNC_TARGET_THREADS)
        _LIMITER.set(limiter)
        return limiter


async def invoke(target: Callable[[], Any], clock: Clock) -> Any:
    """Call ``target``: async functions in this task, sync ones in a worker thread.

    Cancelling a sync target (timeout, REPLACE, shutdown) abandons its thread:
    the run is recorded as failed at once, but Python cannot stop the thread,
    which runs to its end in the background and its result is dropped.

    While a sync target runs, the clock holds still: on simulated time a
    thread takes no time at all (its real duration says nothing about the
    simulated world), so simulations stay deterministic. On simulated time a
    sync target therefore cannot time out.
    """
    if _is_async(target):
        return await target()
    with clock.hold_still():
        result = await trio.to_thread.run_sync(
            target, abandon_on_cancel=True, limiter=_sync_target_threads()
        )
    if inspect.isawaitable(result):
        return await result
    return result


def _is_async(target: Callable[..., Any]) -> bool:
    inner: Any = target
    while isinstance(inner, functools.partial):
        inner = inner.func
    return inspect.iscoroutinefunction(inner) or inspect.iscoroutinefunction(
        getattr(inner, "__call__", None)  # noqa: B004 - callable objects with async __call__
    )


def jsonable_result(value: Any, max_bytes: int) -> Any:
    """``value`` as JSON-able data of at most ``max_bytes`` encoded bytes.

    Values that are not JSON-able are kept as their ``repr``; values that are
    too big are cut, with a marker saying so and how big they were.
    """
    if value is None:
        return None  # what most targets return: no encoding round trip
    try:
        encoded = msgspec.json.encode(value)
    except (TypeError, msgspec.EncodeError, OverflowError):
        encoded = msgspec.json.encode(repr(value))
    if len(encoded) <= max_bytes:
        return msgspec.json.decode(encoded)
    preview = encoded[:max_bytes].decode("utf-8", "ignore")
    return {"truncated": True, "bytes": len(encoded), "preview": preview}


def describe_error(exc: BaseException) -> tuple[str, str, str]:
    """(message, type name, a short traceback) for a ``Failed`` record."""
    text = "".join(traceback.format_exception(exc))
    if len(text) > TRACEBACK_MAX_CHARS:
        text = "...\n" + text[-TRACEBACK_MAX_CHARS:]
    message = str(exc) or type(exc).__name__
    return message, type(exc).__qualname__, text
