"""chronolog: a job scheduler for Trio programs in which the log is the truth."""

from ._errors import (
    ChronologError as ChronologError,
    ClaimConflict as ClaimConflict,
    ConfigError as ConfigError,
    DuplicateTask as DuplicateTask,
    InvalidTrigger as InvalidTrigger,
    LogClosed as LogClosed,
    LogCorrupted as LogCorrupted,
    LogLocked as LogLocked,
    LogRepaired as LogRepaired,
    UnknownTask as UnknownTask,
)
from ._policies import CatchUp as CatchUp, Overlap as Overlap, Policy as Policy, Retry as Retry
from ._triggers import (
    At as At,
    Cron as Cron,
    Every as Every,
    FileWatch as FileWatch,
    Manual as Manual,
    Trigger as Trigger,
)

__version__ = "0.1.0"
