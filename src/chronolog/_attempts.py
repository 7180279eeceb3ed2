"""One attempt of a run: calling the job, and the record that says how it ended.

`call_job` runs a target inside its run context and turns whatever it raises
into the ``(message, type, traceback)`` of a failure; `attempt_outcome` is
the pure rule that makes that a ``Completed`` or ``Failed`` record and says
whether and when the attempt is retried. The actor owns the cancel scope
around the call (its timeout and `cancel()`), and passes what became of it.

The rules:

* Whatever a job raises -- ``SystemExit`` and ``KeyboardInterrupt`` included
  -- fails that attempt only. Trio's cancellation is not the job's: it
  propagates, so the run's scope (a timeout, a cancel, a shutdown) sees it.
* A scope cancelled with no reason ran out of time (``TimeoutError``).
* An attempt cut off by shutdown is retried like one cut off by a crash
  (the next start retries it, if the retry policy allows); one ended by
  ``cancel()``, ``remove()`` or the REPLACE overlap policy is not.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

import trio

from ._events import Completed, Failed
from ._run_context import RunContext, enter_run, leave_run
from ._targets import describe_error, invoke, jsonable_result
from ._words import duration_text

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    from ._clock import Clock
    from ._policies import Policy

__all__ = ["ErrorFields", "attempt_outcome", "call_job"]

#: How a failure is recorded: ``(message, error type, traceback)``.
ErrorFields = tuple[str, str, str]


@trio.lowlevel.enable_ki_protection
async def _protected_call(target: Callable[[], Any], clock: Clock, context: RunContext) -> Any:
    """Run a job in its run context, with Ctrl-C protection.

    ``context`` is what `chronolog.current_run` answers inside the job (and
    in the tasks and threads it starts). The protection means a real Ctrl-C
    never lands in job code: Trio raises a Ctrl-C's KeyboardInterrupt inside
    whatever unprotected code is running, where it would read as the job's
    own exception and fail that one run. Protected, it goes to the main task
    (the application, or `chronolog run`'s signal handling) and stops the
    program as it should, while a ``KeyboardInterrupt`` the job raises
    itself is its own.
    """
    token = enter_run(context)
    try:
        return await invoke(target, clock)
    finally:
        leave_run(token)


async def call_job(
    target: Callable[[], Any], clock: Clock, context: RunContext
) -> tuple[Any, ErrorFields | None]:
    """Run ``target`` once: its result and None, or None and how it failed.

    Re-raises Trio's cancellation, alone or inside a group: the caller's
    cancel scope must see it.
    """
    try:
        return await _protected_call(target, clock, context), None
    except Exception as exc:
        return None, describe_error(exc)
    except BaseException as exc:
        if isinstance(exc, trio.Cancelled):
            raise
        if isinstance(exc, BaseExceptionGroup):
            cancelled, _ = exc.split(trio.Cancelled)
            if cancelled is not None:
                raise cancelled from None
        return None, describe_error(exc)


def attempt_outcome(
    *,
    task: str,
    occurrence: str,
    attempt: int,
    policy: Policy,
    started: datetime,
    ended: datetime,
    result: Any,
    error: ErrorFields | None,
    cancelled: bool,
    cancel_reason: str | None,
    result_max_bytes: int,
) -> Completed | Failed:
    """The record of an attempt that ran from ``started`` to ``ended``.

    ``cancelled``: the attempt's scope was cancelled (``cancel_reason`` says
    why; None means its timeout). A ``Failed`` carries ``retry_at`` when the
    retry policy gives the occurrence another attempt.
    """
    duration = max(ended - started, timedelta(0))
    retryable = True
    if cancelled:
        if cancel_reason is None:
            error = (f"timed out after {duration_text(policy.timeout)}", "TimeoutError", "")
        else:
            error = (cancel_reason, "Cancelled", "")
            retryable = cancel_reason == "shutdown"
    if error is None:
        return Completed(
            task=task,
            at=ended,
            occurrence=occurrence,
            attempt=attempt,
            duration=duration,
            result=jsonable_result(result, result_max_bytes),
        )
    retry_at = None
    if retryable and attempt < policy.retry.max_attempts:
        retry_at = ended + policy.retry.delay_before(attempt + 1)
    message, error_type, trace = error
    return Failed(
        task=task,
        at=ended,
        occurrence=occurrence,
        attempt=attempt,
        duration=duration,
        error=message,
        error_type=error_type,
        traceback=trace,
        retry_at=retry_at,
    )
