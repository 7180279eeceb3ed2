"""The outcome rule of one attempt (`chronolog._attempts`), without a scheduler."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import trio
import trio.testing

from chronolog import Completed, Failed, Policy, Retry
from chronolog._attempts import attempt_outcome, call_job
from chronolog._run_context import RunContext
from chronolog.testing import SimulatedClock

START = datetime(2026, 3, 29, 1, 59, tzinfo=UTC)
RETRY_TWICE = Policy(retry=Retry(max_attempts=3, backoff=timedelta(seconds=10)))


def outcome(policy: Policy = RETRY_TWICE, attempt: int = 1, **changes: Any) -> Completed | Failed:
    fields: dict[str, Any] = {
        "task": "t",
        "occurrence": "t@x",
        "attempt": attempt,
        "policy": policy,
        "started": START,
        "ended": START + timedelta(seconds=2),
        "result": None,
        "error": None,
        "cancelled": False,
        "cancel_reason": None,
        "result_max_bytes": 1024,
    }
    fields.update(changes)
    return attempt_outcome(**fields)


def test_a_clean_return_completes_with_its_result_and_duration() -> None:
    record = outcome(result={"rows": 3})
    assert isinstance(record, Completed)
    assert record.result == {"rows": 3}
    assert record.duration == timedelta(seconds=2)
    assert record.at == START + timedelta(seconds=2)


def test_a_clock_that_stepped_back_gives_a_zero_duration_not_a_negative_one() -> None:
    record = outcome(ended=START - timedelta(seconds=5))
    assert record.duration == timedelta(0)


def test_an_error_is_retried_after_the_backoff_until_the_last_attempt() -> None:
    error = ("boom", "ValueError", "trace")
    first = outcome(error=error, attempt=1)
    assert isinstance(first, Failed)
    assert first.retry_at == START + timedelta(seconds=12)
    last = outcome(error=error, attempt=3)
    assert isinstance(last, Failed)
    assert last.retry_at is None


def test_a_scope_cancelled_without_a_reason_timed_out_and_is_retried() -> None:
    policy = Policy(timeout=timedelta(minutes=5), retry=RETRY_TWICE.retry)
    record = outcome(policy=policy, cancelled=True)
    assert isinstance(record, Failed)
    assert (record.error, record.error_type) == ("timed out after 5 min", "TimeoutError")
    assert record.retry_at is not None


@pytest.mark.parametrize(
    ("reason", "retried"),
    [("shutdown", True), ("cancelled by cancel()", False), ("replaced", False)],
)
def test_only_a_shutdown_cancel_leaves_a_retry(reason: str, retried: bool) -> None:
    record = outcome(cancelled=True, cancel_reason=reason)
    assert isinstance(record, Failed)
    assert (record.error, record.error_type) == (reason, "Cancelled")
    assert (record.retry_at is not None) is retried


async def test_call_job_turns_base_exceptions_into_errors_but_lets_cancellation_through(
    autojump_clock: trio.testing.MockClock,
) -> None:
    clock = SimulatedClock(START, mock_clock=autojump_clock)
    context = RunContext(task="t", occurrence="t@x", attempt=1, due=START, node="test:1")

    async def exits() -> None:
        raise SystemExit(3)

    result, error = await call_job(exits, clock, context)
    assert result is None
    assert error is not None
    assert error[1] == "SystemExit"

    async def sleeps() -> str:
        await trio.sleep(60)
        return "done"

    with trio.move_on_after(1) as scope:
        await call_job(sleeps, clock, context)
    assert scope.cancelled_caught  # the caller's scope saw its own cancel
