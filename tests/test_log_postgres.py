"""PostgresLog: the shared contract, plus the database layout, order, claims and outcomes."""

# The tests prepare and inspect databases with plain blocking calls: blocking
# the test's own event loop for a moment is harmless, and it keeps them readable.

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import psycopg
import pytest

from chronolog.log.postgres import PostgresLog

from .log_contract import MakeLog, PersistentEventLogContract

if TYPE_CHECKING:
    from collections.abc import Callable


class TestPostgresLog(PersistentEventLogContract):
    @pytest.fixture
    def make_log(self, postgres_dsn: str) -> MakeLog:
        return lambda: PostgresLog(postgres_dsn, poll_interval=timedelta(milliseconds=50))


@pytest.fixture
def store_format_version(postgres_dsn: str) -> Callable[[int], None]:
    """For the contract's version checks: write another version into chronolog_meta."""

    def store(version: int) -> None:
        with psycopg.connect(postgres_dsn, autocommit=True) as connection:
            connection.execute(
                "UPDATE chronolog_meta SET value = %s WHERE key = 'version'", (str(version),)
            )

    return store
