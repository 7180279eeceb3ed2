"""Waiting for appends to a `PostgresLog`: ``LISTEN``, and a wait in Trio itself.

Every append notifies `NOTIFY_CHANNEL` with its last seq, delivered when it
commits. A follower keeps one connection that listens, and waits for its
socket to become readable with ``trio.lowlevel.wait_readable`` -- no worker
thread, so the wait is cancelled like any Trio wait -- then reads what
arrived with libpq's own calls (``consume_input``, ``notifies``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import psycopg
import trio

from ._postgres_connection import connect, postgres_error
from ._postgres_schema import NOTIFY_CHANNEL

if TYPE_CHECKING:
    from .postgres import PostgresLog

__all__ = ["Notifications"]


class Notifications:
    """A connection that ``LISTEN``s for appends to one log, waited on in Trio.

    `wait` returns when an append past a seq was notified, when the timeout
    passes, or at once after the connection was (re)made -- notifications
    sent while it was not listening are lost, so the caller reads again.
    """

    def __init__(self, log: PostgresLog) -> None:
        self._log = log
        self._connection: psycopg.Connection[Any] | None = None
        self._highest = 0

    async def wait(self, after_seq: int, seconds: float) -> None:
        """Wait up to ``seconds`` for an append past ``after_seq``; ``OSError`` if the
        database cannot be reached (after waiting out the timeout)."""
        if self._highest > after_seq:
            self._highest = 0
            await trio.lowlevel.checkpoint()
            return
        connection = self._connection
        if connection is None or connection.closed or connection.broken:
            self.close()
            try:
                self._connection = await trio.to_thread.run_sync(self._listen)
            except OSError:
                await trio.sleep(seconds)
                raise
            return  # new: whatever was sent before is read by the caller
        with trio.move_on_after(seconds):
            while True:
                await trio.lowlevel.wait_readable(connection.pgconn.socket)
                try:
                    connection.pgconn.consume_input()
                except psycopg.Error as exc:
                    self.close()
                    raise postgres_error(
                        exc, self._log.dsn, f"stopped listening to {self._log.shown}"
                    ) from exc
                while (notify := connection.pgconn.notifies()) is not None:
                    try:
                        self._highest = max(self._highest, int(notify.extra))
                    except ValueError:
                        continue
                if self._highest > after_seq:
                    self._highest = 0
                    return

    def _listen(self) -> psycopg.Connection[Any]:
        log = self._log
        what = f"cannot listen for appends to {log.shown}"
        connection = connect(
            log.dsn, application_name=f"{log.application_name} (listening)", what=what
        )
        try:
            connection.execute(f"LISTEN {NOTIFY_CHANNEL}")
        except psycopg.Error as exc:
            connection.close()
            raise postgres_error(exc, log.dsn, what) from exc
        return connection

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()
