"""``chronolog verify LOG``: check that a log keeps every rule.

Runs the invariant checker (`chronolog.check_invariants`) over the whole
log -- a compacted log from its base snapshot on: exit code 0 when every
rule holds, 1 with one line per violation when one does not (3 when the log
cannot even be read).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from .._invariants import Violation, check_invariants
from ._common import ExitCode, json_option, log_argument, translate_errors
from ._output import print_json, stdout_console
from ._progress import progress_over
from ._reading import Tally, after_base, open_log, tallied

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["verify_command", "violation_json"]


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


@click.command("verify")
@log_argument
@json_option
@translate_errors
def verify_command(log: Path, as_json: bool) -> None:
    """Check every rule on LOG: exit 1, one line per violation, if one is broken."""
    event_log = open_log(log)
    base = event_log.base_state()
    tally = Tally()
    records = tallied(after_base(event_log, base), tally)
    with progress_over(
        records, total=event_log.last_seq, description="verifying", as_json=as_json
    ) as stream:
        violations = check_invariants(stream, start=base)
    last_seq = tally.last.seq if tally.last is not None else base.seq
    if as_json:
        print_json(
            {
                "ok": not violations,
                "records": tally.count,
                "seq": last_seq,
                "violations": [violation_json(violation) for violation in violations],
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
    if violations:
        raise click.exceptions.Exit(ExitCode.FAILED)
