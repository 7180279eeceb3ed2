"""Triggers: pure rules that say when a task is next due.

Every trigger is a frozen msgspec Struct in one tagged union (``kind``), so a
``TaskDefined`` record carries its trigger and a log explains itself.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec

__all__ = ["At", "Cron", "Every", "FileWatch", "Manual", "Trigger"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Cron(msgspec.Struct, frozen=True, tag="cron", tag_field="kind", omit_defaults=True):
    expr: str
    tz: str = "UTC"
    start: datetime | None = None
    end: datetime | None = None

    def next_after(self, t: datetime) -> datetime | None:
        raise NotImplementedError


class Every(msgspec.Struct, frozen=True, tag="every", tag_field="kind", omit_defaults=True):
    interval: timedelta
    anchor: datetime | None = None
    start: datetime | None = None
    end: datetime | None = None

    def next_after(self, t: datetime) -> datetime | None:
        raise NotImplementedError


class At(msgspec.Struct, frozen=True, tag="at", tag_field="kind"):
    when: datetime

    def next_after(self, t: datetime) -> datetime | None:
        raise NotImplementedError


class FileWatch(msgspec.Struct, frozen=True, tag="file_watch", tag_field="kind"):
    path: str
    poll: timedelta = timedelta(seconds=2)

    def next_after(self, t: datetime) -> datetime | None:
        return None


class Manual(msgspec.Struct, frozen=True, tag="manual", tag_field="kind"):
    def next_after(self, t: datetime) -> datetime | None:
        return None


Trigger = Cron | Every | At | FileWatch | Manual
