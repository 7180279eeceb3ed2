"""``chronolog verify LOG``: check that a log is whole and keeps every rule.

Reads the whole log -- a compacted log from its base snapshot on -- which
checks every record's checksum and that seqs run on without a gap, and runs
the invariant checker (`chronolog.check_invariants`) over it. Exit code 0
when every rule holds and the log ends with a whole batch; 1 with one line
per violation when a rule is broken, or when the log ends with a torn batch
(a write a crash interrupted, or bytes cut off the end) that no writer is
writing right now; 3 when the log cannot be read: damage, which the message
names (``--json`` says so in its error document, with how far it read).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from .._errors import LogCorrupted
from .._invariants import Violation, check_invariants
from .._strict import RECOVERY_GUIDE
from ..log.file import FileLog, TornTail
from ._common import ExitCode, UnusableLog, json_option, log_argument, translate_errors
from ._output import print_json, stdout_console
from ._progress import progress_over
from ._reading import Tally, after_base, open_log, tallied

if TYPE_CHECKING:
    from pathlib import Path

    from ..log import EventLog

__all__ = ["torn_tail_json", "verify_command", "violation_json"]


def violation_json(violation: Violation) -> dict[str, Any]:
    """One broken rule, for ``verify --json``."""
    return {
        "seq": violation.seq,
        "rule": str(violation.rule),
        "task": violation.task,
        "occurrence": violation.occurrence,
        "message": violation.message,
        "related": list(violation.related),
    }


def torn_tail_json(torn: TornTail) -> dict[str, int]:
    """A torn tail, for ``verify --json``."""
    return {"offset": torn.offset, "bytes": torn.length, "line": torn.line}


def _torn_tail(event_log: EventLog) -> TornTail | None:
    """The log's torn tail, unless a writer holds the log: then it is a batch
    being written right now, not a torn one."""
    if not isinstance(event_log, FileLog):
        return None  # SQLite and PostgreSQL keep or drop each transaction whole
    torn = event_log.torn_tail()
    if torn is None or event_log.writer() is not None:
        return None
    return torn


def _torn_sentence(torn: TornTail) -> str:
    return (
        f"torn tail: the log ends with {torn.length} bytes that are not a whole batch (from "
        f"byte {torn.offset}, line {torn.line}): what a crash in the middle of an append "
        f"leaves, or a cut; the next scheduler to open the log moves them aside (see "
        f"{RECOVERY_GUIDE})"
    )


@click.command("verify")
@log_argument
@json_option
@translate_errors
def verify_command(log: Path, as_json: bool) -> None:
    """Check LOG: every checksum, every rule, a whole last batch. Exit 1 if not."""
    event_log = open_log(log)
    base = event_log.base_state()
    tally = Tally()
    records = tallied(after_base(event_log, base), tally)
    try:
        with progress_over(
            records, total=event_log.last_seq, description="verifying", as_json=as_json
        ) as stream:
            violations = check_invariants(stream, start=base)
    except LogCorrupted as exc:
        # The --json error document says how far the log was read, too.
        raise UnusableLog(
            " ".join(str(exc).split()),
            details={
                "ok": False,
                "records": tally.count,
                "seq": tally.last.seq if tally.last is not None else base.seq,
                "violations": [],
            },
        ) from exc
    torn = _torn_tail(event_log)
    version = event_log.format_version
    last_seq = tally.last.seq if tally.last is not None else base.seq
    failed = bool(violations) or torn is not None
    if as_json:
        print_json(
            {
                "ok": not failed,
                "records": tally.count,
                "seq": last_seq,
                "violations": [violation_json(violation) for violation in violations],
                "torn_tail": torn_tail_json(torn) if torn is not None else None,
                "format_version": version,
            }
        )
    else:
        console = stdout_console()
        for violation in violations:
            console.print(str(violation))
        if violations:
            click.echo(f"{log}: {len(violations)} violation(s) in {tally.count} records", err=True)
        else:
            start = f" from its base at seq {base.seq}" if base.seq else ""
            console.print(
                f"{log}: {tally.count} records{start} up to seq {last_seq}, every rule holds"
            )
        if torn is not None:
            console.print(_torn_sentence(torn))
        if version is not None and version < 3:
            click.echo(
                f"{log}: format version {version}: its records carry no checksums, so an edited "
                f"value cannot be told from the original; the next write upgrades the log",
                err=True,
            )
    if failed:
        raise click.exceptions.Exit(ExitCode.FAILED)
