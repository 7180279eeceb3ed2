"""``chronolog db``: the tables of a PostgreSQL log, and the nodes that use it.

``db init URL`` creates chronolog's tables in a database that has none (a
scheduler starting on an empty database does the same; ``init`` lets an
operator do it beforehand, with a role that may create tables, and run the
schedulers with one that may not). ``db upgrade URL`` migrates the tables of
an older chronolog to the schema this one writes: run it once every node
runs the new version (a scheduler refuses a schema older than it writes, and
every chronolog refuses one newer than it knows). ``db nodes URL`` lists the
schedulers' leases: which nodes are alive, and until when.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from ..log._paths import postgres_log_class
from ..log._postgres_schema import SCHEMA_VERSION
from ._common import BadUsage, json_option, translate_errors
from ._log_names import DatabaseURL, as_log_name
from ._output import instant_text, print_json

if TYPE_CHECKING:
    from ..log.postgres import PostgresLog

__all__ = ["db_command"]


def _database(url: object) -> PostgresLog:
    if not isinstance(url, DatabaseURL):
        raise BadUsage(
            f"{url} is not a PostgreSQL URL; `chronolog db` works on a log in PostgreSQL, "
            f"named like postgresql://user@host:5432/database"
        )
    return postgres_log_class()(url.dsn)


def _url_argument(command: Any) -> Any:
    return click.argument("url", metavar="URL", callback=as_log_name)(command)


@click.group("db")
def db_command() -> None:
    """Create, upgrade and inspect a log in PostgreSQL (URL: postgresql://...)."""


def _report(url: object, before: int, after: int, as_json: bool, sentence: str) -> None:
    if as_json:
        print_json({"log": str(url), "schema_before": before, "schema": after})
        return
    click.echo(sentence)


@db_command.command("init")
@_url_argument
@json_option
@translate_errors
def init_command(url: DatabaseURL, as_json: bool) -> None:
    """Create chronolog's tables in the database at URL, if it has none."""
    before, after = _database(url).schema(create=True)
    if before == 0:
        sentence = f"{url}: created chronolog's tables (schema {after})"
    elif after < SCHEMA_VERSION:
        sentence = (
            f"{url} already holds a chronolog log, at schema {after}; this chronolog writes "
            f"schema {SCHEMA_VERSION}: run `chronolog db upgrade` once every node runs it"
        )
    else:
        sentence = f"{url} already holds a chronolog log (schema {after}); nothing to do"
    _report(url, before, after, as_json, sentence)


@db_command.command("upgrade")
@_url_argument
@json_option
@translate_errors
def upgrade_command(url: DatabaseURL, as_json: bool) -> None:
    """Migrate the tables at URL to the schema this chronolog writes."""
    before, after = _database(url).schema(upgrade=True)
    if before == 0:
        raise BadUsage(
            f"database {url} holds no chronolog log; create one with `chronolog db init`"
        )
    if before == after:
        sentence = f"{url} is at schema {after} already; nothing to do"
    else:
        sentence = f"{url}: upgraded from schema {before} to {after}"
    _report(url, before, after, as_json, sentence)


@db_command.command("nodes")
@_url_argument
@json_option
@translate_errors
def nodes_command(url: DatabaseURL, as_json: bool) -> None:
    """List the schedulers (nodes) on the log at URL, and their leases."""
    holders = _database(url).nodes()
    if as_json:
        print_json(
            {
                "log": str(url),
                "nodes": [
                    {
                        "node": holder.node,
                        "alive": holder.alive,
                        "started_at": holder.started_at.isoformat(),
                        "renewed_at": holder.renewed_at.isoformat(),
                        "expires_at": holder.expires_at.isoformat(),
                    }
                    for holder in holders
                ],
            }
        )
        return
    if not holders:
        click.echo(f"{url}: no scheduler holds a lease")
        return
    for holder in holders:
        state = "alive" if holder.alive else "lease expired"
        click.echo(
            f"{holder.node}: {state} (lease until {instant_text(holder.expires_at)}, "
            f"since {instant_text(holder.started_at)})"
        )
