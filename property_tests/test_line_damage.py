"""Any single-line deletion, edit, duplication or swap of a valid log is refused (issue 14).

Refused by opening the log to write (``open()`` then the strict
``load_state()``, as ``open_scheduler`` does), by ``chronolog verify`` and by
``chronolog compact`` -- never accepted, never "repaired" (``compact``
leaves the log byte for byte as it was) -- on a `FileLog` line and on an
`SQLiteLog` row.

One damage is no damage at all and is left out: deleting the last line. A
crash before that line's append left the very same file (or a batch whose
last line never landed, which opening cuts off as a torn tail and reports),
so a log cannot tell it from a crash; what it leaves is a sound, shorter
log.

The second half checks the rules rather than the bytes: a valid log whose
records were changed -- one deleted, repeated, moved or edited -- and then
renumbered and sealed with fresh checksums, as a writer with a bug would
leave it. Opening it to write refuses it exactly when ``check_invariants``
finds a broken rule, naming the first one (the strict fold watches the
projection and asks the checker, see ``chronolog._strict``).
"""

from __future__ import annotations

import contextlib
import sqlite3
import tempfile
from pathlib import Path
from typing import Any, Literal, NamedTuple

import msgspec
import trio
from click.testing import CliRunner
from hypothesis import assume, event, given, note
from hypothesis import strategies as st

from chronolog import Event, FileLog, LogCorrupted, SQLiteLog, check_invariants, replay
from chronolog.cli import main
from chronolog.log.file import encode_sealed

from .log_model import valid_logs

Kind = Literal["delete", "edit", "duplicate", "swap"]


class LineDamage(NamedTuple):
    kind: Kind
    at: int
    """Index of the damaged line among the record lines (0-based)."""
    other: int = 0
    """Where a duplicate goes (it is inserted before this index), or the other
    line of a swap."""
    key: str = ""
    """The field an edit changes."""


def edited_value(value: Any) -> Any:
    """Another value of the same JSON kind (or a different kind for null)."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value + 0.5
    if isinstance(value, str):
        return value + "x" if value else "x"
    if isinstance(value, list):
        return [*value, 1]
    if isinstance(value, dict):
        return {**value, "edited": True}
    return 1


def edit_line(line: bytes, key: str) -> bytes:
    """The line with one field's value changed, its checksum field kept as it was."""
    prefix = line[: len(line) - len(line.lstrip(b" "))]
    document = msgspec.json.decode(line)
    document[key] = edited_value(document[key])
    return prefix + msgspec.json.encode(document) + b"\n"


@st.composite
def line_damages(draw: st.DrawFn, lines: list[bytes]) -> LineDamage:
    count = len(lines)
    kind: Kind = draw(st.sampled_from(["delete", "edit", "duplicate", "swap"]))
    if kind == "delete":
        return LineDamage("delete", draw(st.integers(0, count - 2)))
    at = draw(st.integers(0, count - 1))
    if kind == "edit":
        keys = [key for key in msgspec.json.decode(lines[at]) if key != "crc"]
        return LineDamage("edit", at, key=draw(st.sampled_from([*keys, "crc"])))
    if kind == "duplicate":
        return LineDamage("duplicate", at, other=draw(st.integers(at + 1, count)))
    other = draw(st.integers(0, count - 1).filter(lambda index: lines[index] != lines[at]))
    return LineDamage("swap", at, other=other)


def damaged_lines(lines: list[bytes], damage: LineDamage) -> list[bytes]:
    result = list(lines)
    if damage.kind == "delete":
        del result[damage.at]
    elif damage.kind == "edit":
        result[damage.at] = edit_line(lines[damage.at], damage.key)
    elif damage.kind == "duplicate":
        result.insert(damage.other, lines[damage.at])
    else:
        result[damage.at], result[damage.other] = lines[damage.other], lines[damage.at]
    return result


def append_in_batches(log: FileLog | SQLiteLog, batches: list[list[Event]]) -> None:
    async def main() -> None:
        async with log:
            for batch in batches:
                await log.append(batch)

    trio.run(main)


def opening_refuses(log_path: Path, make: type[FileLog | SQLiteLog]) -> LogCorrupted:
    """Open the log to write and load its state, as open_scheduler does: it must refuse."""

    async def main() -> None:
        async with make(log_path) as log:
            log.load_state()

    try:
        trio.run(main)
    except LogCorrupted as error:
        return error
    raise AssertionError("opening to write accepted a damaged log")


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def assert_refused_by_verify_and_compact(path: Path, contents: Any) -> None:
    before = contents()
    code, output = run("verify", str(path))
    assert code in (1, 3), f"verify accepted a damaged log: {output}"
    code, output = run("compact", str(path), "--keep", "0")
    assert code == 3, f"compact did not refuse a damaged log (exit {code}): {output}"
    assert contents() == before, "compact changed a log it refused"


@st.composite
def batched(draw: st.DrawFn, log: list[Event]) -> list[list[Event]]:
    events = [msgspec.structs.replace(record, seq=0) for record in log]
    batches: list[list[Event]] = []
    while events:
        size = draw(st.integers(1, min(4, len(events))), label="batch size")
        batches.append(events[:size])
        del events[:size]
    return batches


@given(valid_logs(max_steps=15), st.data())
def test_a_damaged_line_of_a_file_log_is_refused(log: list[Event], data: st.DataObject) -> None:
    assume(len(log) >= 2)
    batches = data.draw(batched(log))
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "jobs.jsonl"
        append_in_batches(FileLog(path), batches)
        header, *lines = path.read_bytes().splitlines(keepends=True)
        damage = data.draw(line_damages(lines), label="damage")
        event(f"line damage: {damage.kind}")
        path.write_bytes(header + b"".join(damaged_lines(lines, damage)))
        before = path.read_bytes()
        error = opening_refuses(path, FileLog)
        note(str(error))
        assert path.read_bytes() == before
        assert not list(Path(directory).glob("*.torn-*")), "a damaged line was cut as torn"
        assert_refused_by_verify_and_compact(path, path.read_bytes)


def sqlite_rows(path: Path) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(path)) as connection:
        return connection.execute("SELECT * FROM chronolog_records ORDER BY seq").fetchall()


@given(valid_logs(max_steps=15), st.data())
def test_a_damaged_row_of_a_sqlite_log_is_refused(log: list[Event], data: st.DataObject) -> None:
    """The SQLite equivalents: a row deleted (not the last), its record edited,
    a record repeated at another seq, two records swapped."""
    assume(len(log) >= 2)
    batches = data.draw(batched(log))
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "jobs.sqlite"
        append_in_batches(SQLiteLog(path), batches)
        texts = [row[1].encode() + b"\n" for row in sqlite_rows(path)]
        damage = data.draw(line_damages(texts), label="damage")
        event(f"row damage: {damage.kind}")
        seqs = [row[0] for row in sqlite_rows(path)]
        with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as connection:
            update = "UPDATE chronolog_records SET record = ? WHERE seq = ?"
            if damage.kind == "delete":
                connection.execute(
                    "DELETE FROM chronolog_records WHERE seq = ?", (seqs[damage.at],)
                )
            elif damage.kind == "edit":
                key = damage.key if damage.key != "crc" else "seq"
                edited = edit_line(texts[damage.at], key)[:-1].decode()
                connection.execute(update, (edited, seqs[damage.at]))
            elif damage.kind == "duplicate":
                # The record again, as the next row (a claim of its own is not
                # what is tested here: SQLite refuses a second claim anyway).
                connection.execute(
                    "INSERT INTO chronolog_records (seq, record, crc) "
                    "SELECT ?, record, crc FROM chronolog_records WHERE seq = ?",
                    (seqs[-1] + 1, seqs[damage.at]),
                )
            else:
                first, second = seqs[damage.at], seqs[damage.other]
                connection.execute(update, (texts[damage.other][:-1].decode(), first))
                connection.execute(update, (texts[damage.at][:-1].decode(), second))
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        before = sqlite_rows(path)
        note(str(opening_refuses(path, SQLiteLog)))
        assert sqlite_rows(path) == before
        assert_refused_by_verify_and_compact(path, lambda: sqlite_rows(path))


# -- sound checksums, broken rules ---------------------------------------------------


class RecordDamage(NamedTuple):
    kind: Kind
    at: int
    other: int = 0
    key: str = ""


@st.composite
def record_damages(draw: st.DrawFn, log: list[Event]) -> RecordDamage:
    count = len(log)
    kind: Kind = draw(st.sampled_from(["delete", "edit", "duplicate", "swap"]))
    at = draw(st.integers(0, count - 1))
    if kind == "delete":
        return RecordDamage("delete", at)
    if kind == "edit":
        fields = [
            name
            for name in msgspec.structs.fields(log[at])
            if name.name in ("attempt", "occurrence", "task", "version", "reason")
        ]
        assume(fields)
        return RecordDamage("edit", at, key=draw(st.sampled_from(fields)).name)
    if kind == "duplicate":
        return RecordDamage("duplicate", at, other=draw(st.integers(at + 1, count)))
    return RecordDamage("swap", at, other=draw(st.integers(0, count - 1)))


def changed_records(log: list[Event], damage: RecordDamage) -> list[Event]:
    records = list(log)
    if damage.kind == "delete":
        del records[damage.at]
    elif damage.kind == "duplicate":
        records.insert(damage.other, log[damage.at])
    elif damage.kind == "swap":
        records[damage.at], records[damage.other] = log[damage.other], log[damage.at]
    else:
        record = log[damage.at]
        value = getattr(record, damage.key)
        if damage.key == "reason":
            changed: Any = "overlap" if value != "overlap" else "missed"
        else:
            changed = edited_value(value)
        records[damage.at] = msgspec.structs.replace(record, **{damage.key: changed})
    return [msgspec.structs.replace(r, seq=n) for n, r in enumerate(records, start=1)]


@given(valid_logs(max_steps=20), st.data())
def test_a_sealed_log_is_refused_exactly_when_it_breaks_a_rule(
    log: list[Event], data: st.DataObject
) -> None:
    assume(log)
    damage = data.draw(record_damages(log), label="damage")
    records = changed_records(log, damage)
    violations = check_invariants(records)
    event(f"{damage.kind}: {'breaks ' + str(violations[0].rule) if violations else 'sound'}")
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "jobs.jsonl"
        path.write_bytes(encode_sealed(records))
        assert list(FileLog(path).read()) == records  # every checksum holds
        if not violations:
            assert FileLog(path).load_state() == replay(records)
            return
        first = violations[0]
        error = opening_refuses(path, FileLog)
        assert f"breaks the rule {first.rule} at seq {first.seq}: " in str(error), (
            f"{error} (expected {first})"
        )
        assert_refused_by_verify_and_compact(path, path.read_bytes)
