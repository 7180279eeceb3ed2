"""chronolog: a job scheduler for Trio programs in which the log is the truth.

Public names are re-exported here explicitly, and listed in ``__all__``; the
modules behind them are private. ``tests/test_public_api.py`` pins this
surface, so adding or removing a name is a visible decision. Errors and
functions say ``chronolog.Name`` in tracebacks and reprs, not the private
module they are defined in.
"""

import inspect as _inspect
import logging as _logging

from ._clock import Clock as Clock
from ._clock import SystemClock as SystemClock
from ._compaction import Compaction as Compaction
from ._errors import ChronologError as ChronologError
from ._errors import ClaimConflict as ClaimConflict
from ._errors import ConfigError as ConfigError
from ._errors import DuplicateTask as DuplicateTask
from ._errors import InvalidOccurrenceId as InvalidOccurrenceId
from ._errors import InvalidTrigger as InvalidTrigger
from ._errors import LogChanged as LogChanged
from ._errors import LogClosed as LogClosed
from ._errors import LogCorrupted as LogCorrupted
from ._errors import LogLocked as LogLocked
from ._errors import LogRepaired as LogRepaired
from ._errors import SnapshotIgnored as SnapshotIgnored
from ._errors import UnknownTask as UnknownTask
from ._events import Completed as Completed
from ._events import Event as Event
from ._events import Failed as Failed
from ._events import Scheduled as Scheduled
from ._events import Skipped as Skipped
from ._events import SkipReason as SkipReason
from ._events import Started as Started
from ._events import TaskDefined as TaskDefined
from ._events import TaskPaused as TaskPaused
from ._events import TaskRemoved as TaskRemoved
from ._events import TaskResumed as TaskResumed
from ._explain import Explanation as Explanation
from ._explain import Verdict as Verdict
from ._explain import explain as explain
from ._ids import time_occurrence as occurrence_id
from ._invariants import Rule as Rule
from ._invariants import Violation as Violation
from ._invariants import check_invariants as check_invariants
from ._occurrences import Attempt as Attempt
from ._occurrences import Occurrence as Occurrence
from ._policies import CatchUp as CatchUp
from ._policies import Overlap as Overlap
from ._policies import Policy as Policy
from ._policies import Retry as Retry
from ._projection import State as State
from ._projection import apply as apply
from ._projection import replay as replay
from ._run_context import RunContext as RunContext
from ._run_context import current_run as current_run
from ._scheduler import AddBatch as AddBatch
from ._scheduler import Scheduler as Scheduler
from ._scheduler import SchedulerStatistics as SchedulerStatistics
from ._scheduler import open_scheduler as open_scheduler
from ._scheduler import serve_scheduler as serve_scheduler
from ._triggers import At as At
from ._triggers import Cron as Cron
from ._triggers import Every as Every
from ._triggers import FileWatch as FileWatch
from ._triggers import Manual as Manual
from ._triggers import Trigger as Trigger
from ._views import OccurrenceState as OccurrenceState
from ._views import Outcome as Outcome
from ._views import Run as Run
from ._views import TaskStatus as TaskStatus
from .log import EventLog as EventLog
from .log import FileLog as FileLog
from .log import MemoryLog as MemoryLog
from .log import SQLiteLog as SQLiteLog

__version__ = "0.1.0"

__all__ = [
    "AddBatch",
    "At",
    "Attempt",
    "CatchUp",
    "ChronologError",
    "ClaimConflict",
    "Clock",
    "Compaction",
    "Completed",
    "ConfigError",
    "Cron",
    "DuplicateTask",
    "Event",
    "EventLog",
    "Every",
    "Explanation",
    "Failed",
    "FileLog",
    "FileWatch",
    "InvalidOccurrenceId",
    "InvalidTrigger",
    "LogChanged",
    "LogClosed",
    "LogCorrupted",
    "LogLocked",
    "LogRepaired",
    "Manual",
    "MemoryLog",
    "Occurrence",
    "OccurrenceState",
    "Outcome",
    "Overlap",
    "Policy",
    "Retry",
    "Rule",
    "Run",
    "RunContext",
    "SQLiteLog",
    "Scheduled",
    "Scheduler",
    "SchedulerStatistics",
    "SkipReason",
    "Skipped",
    "SnapshotIgnored",
    "Started",
    "State",
    "SystemClock",
    "TaskDefined",
    "TaskPaused",
    "TaskRemoved",
    "TaskResumed",
    "TaskStatus",
    "Trigger",
    "UnknownTask",
    "Verdict",
    "Violation",
    "apply",
    "check_invariants",
    "current_run",
    "explain",
    "occurrence_id",
    "open_scheduler",
    "replay",
    "serve_scheduler",
]


def _fix_module_metadata() -> None:
    # A traceback names an exception by its __module__: "chronolog.LogCorrupted",
    # not "chronolog._errors.LogCorrupted". Only errors and functions are
    # renamed: the annotations of a class are resolved in the module its
    # __module__ names (typing.get_type_hints, Hypothesis, cattrs), which must
    # stay the one that defines them.
    for name in __all__:
        value = globals()[name]
        renamable = isinstance(value, type) and issubclass(value, BaseException)
        if renamable or _inspect.isfunction(value):
            value.__module__ = __name__


_fix_module_metadata()

# A library's log lines are its user's to show: silent unless the
# application configures logging (then under the "chronolog" logger).
_logging.getLogger("chronolog").addHandler(_logging.NullHandler())
