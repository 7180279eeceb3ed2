"""Per-task policies: what to do on overlap, after downtime, on failure.

Policies are persisted inside every ``TaskDefined`` record, so they are
msgspec Structs like the events: a log explains itself without user code.
"""

from __future__ import annotations

import enum
from datetime import timedelta

import msgspec

from ._errors import ConfigError

__all__ = ["CatchUp", "Overlap", "Policy", "Retry"]


class Overlap(enum.StrEnum):
    """What happens when an occurrence comes due while the previous run still runs."""

    SKIP = "skip"
    """Record ``Skipped(reason="overlap")`` for the new occurrence (the default)."""
    QUEUE = "queue"
    """Keep one waiting occurrence; further ones are skipped."""
    ALLOW = "allow"
    """Run concurrently."""
    REPLACE = "replace"
    """Cancel the running one (it ends ``Failed``, error "replaced") and start the new one."""


class CatchUp(enum.StrEnum):
    """What happens to due times missed while the scheduler was down."""

    LATEST = "latest"
    """Run the most recent missed occurrence, skip the others as ``missed`` (the default)."""
    ALL = "all"
    """Run every missed occurrence in order (capped by ``Policy.catch_up_limit``)."""
    NONE = "none"
    """Skip every missed occurrence."""


def _check_positive(name: str, value: timedelta | None) -> None:
    if value is not None and value <= timedelta(0):
        raise ConfigError(f"{name} must be a positive duration, got {value!r}")


class Retry(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=False):
    """Retries with exponential backoff, capped at ``max_backoff``.

    Attempt ``n`` (2 is the first retry) waits ``backoff * factor**(n-2)``
    after attempt ``n-1`` failed: ``backoff`` before the first retry, then
    ``backoff * factor``, and so on.
    """

    max_attempts: int = 1
    backoff: timedelta = timedelta(seconds=1)
    factor: float = 2.0
    max_backoff: timedelta = timedelta(hours=1)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ConfigError(
                f"Retry.max_attempts must be at least 1 (1 means no retry), "
                f"got {self.max_attempts}"
            )
        _check_positive("Retry.backoff", self.backoff)
        _check_positive("Retry.max_backoff", self.max_backoff)
        if not self.factor >= 1:  # also refuses nan
            raise ConfigError(f"Retry.factor must be at least 1.0, got {self.factor}")

    def delay_before(self, attempt: int) -> timedelta:
        """How long to wait before ``attempt`` (2 is the first retry)."""
        if attempt < 2:
            return timedelta(0)
        # Cap the exponent so a large attempt count cannot overflow a float,
        # and compare in seconds: a delay past max_backoff may be past what a
        # timedelta holds (2**64 s with the default factor).
        exponent = min(attempt - 2, 64)
        try:
            seconds = self.backoff.total_seconds() * self.factor**exponent
        except OverflowError:
            return self.max_backoff
        if not seconds < self.max_backoff.total_seconds():
            return self.max_backoff
        return timedelta(seconds=seconds)


class Policy(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Every per-task rule, persisted in ``TaskDefined``."""

    overlap: Overlap = Overlap.SKIP
    catch_up: CatchUp = CatchUp.LATEST
    catch_up_limit: int = 100
    misfire_grace: timedelta | None = None
    retry: Retry = Retry()
    timeout: timedelta | None = None
    jitter: timedelta | None = None
    paused: bool = False
    max_runs: int | None = None
    remove_after_run: bool = False

    def __post_init__(self) -> None:
        _check_positive("misfire_grace", self.misfire_grace)
        _check_positive("timeout", self.timeout)
        _check_positive("jitter", self.jitter)
        if self.catch_up_limit < 1:
            raise ConfigError(f"catch_up_limit must be at least 1, got {self.catch_up_limit}")
        if self.max_runs is not None and self.max_runs < 1:
            raise ConfigError(f"max_runs must be at least 1 when given, got {self.max_runs}")
