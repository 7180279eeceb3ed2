"""Control without a scheduler: which log a path names.

When no scheduler holds a log, ``chronolog pause`` (and the other control
commands) open the log as its only writer, replay it, and append the records
that `chronolog._command_rules` builds for the command -- the same records a
running `Scheduler` appends for it. No task actor starts, so nothing due is
run by accident.
"""

from __future__ import annotations

from .log._paths import log_at as event_log_at

__all__ = ["event_log_at"]
