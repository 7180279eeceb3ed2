"""Whatever an agent sends, a bad argument is refused by name, and nothing reaches the log.

The schemas the agent reads and the checks its arguments meet come from
one source (the job file's classes), so they agree: for every key of
``schedule_add`` and every value of a JSON type its schema does not allow,
the JSON Schema rejects it *and* the tool refuses it with a message that
names the key -- the job file's message, under the argument's name. Keys
that would run something of the agent's choosing are refused by name
whatever their value; unknown keys too.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import jsonschema
import trio
from hypothesis import given
from hypothesis import strategies as st

from chronolog._config import CallSpec, NamedTarget
from chronolog.cli._schedule_tools import LEFT_OUT, AllowList, ScheduleTools, ToolError

_DIRECTORY = Path(tempfile.gettempdir())
#: No log exists here: a call that got past the checks would fail on reading it,
#: with a message that names no argument.
TOOLS = ScheduleTools(
    _DIRECTORY / "no-such-log-for-property-tests.jsonl",
    AllowList((NamedTarget("dump", CallSpec("json:dumps")),)),
)
ADD = next(spec for spec in TOOLS.specs() if spec.name == "schedule_add").input_schema
VALIDATOR = jsonschema.Draft202012Validator(ADD)
VALID = {"name": "agent-task", "every": "1h", "target": "dump"}

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**12), 10**12)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=6,
)


def _refusal(arguments: dict[str, Any]) -> str | None:
    async def attempt() -> str | None:
        try:
            await TOOLS.call("schedule_add", arguments)
        except ToolError as exc:
            return str(exc)
        return None

    return trio.run(attempt)


def _paths(schema: dict[str, Any], prefix: str = "") -> list[tuple[str, dict[str, Any]]]:
    """(dotted key, its schema) for every key of ``schedule_add``, nested ones too."""
    found: list[tuple[str, dict[str, Any]]] = []
    for key, value in schema["properties"].items():
        if key in ("name", "target"):
            continue
        found.append((prefix + key, value))
        if value.get("type") == "object" and "properties" in value:
            found += _paths(value, prefix + key + ".")
    return found


KEYS = _paths(ADD)


def _with(path: str, value: Any) -> dict[str, Any]:
    arguments: dict[str, Any] = dict(VALID)
    head, _, rest = path.partition(".")
    if rest:
        arguments[head] = {rest: value}
    else:
        arguments[head] = value
    return arguments


@given(st.sampled_from(KEYS), json_values)
def test_a_value_the_schema_refuses_is_refused_by_name(
    key: tuple[str, dict[str, Any]], value: Any
) -> None:
    path, _ = key
    arguments = _with(path, value)
    if VALIDATOR.is_valid(arguments):
        return  # a value of the right type: the next test's business
    message = _refusal(arguments)
    assert message is not None, arguments
    assert message.startswith("schedule_add: "), message
    assert path in message, (path, message)


@given(st.sampled_from(sorted(LEFT_OUT)), json_values)
def test_a_key_agents_may_not_give_is_refused_by_name_whatever_its_value(
    key: str, value: Any
) -> None:
    message = _refusal({**VALID, key: value})
    assert message is not None
    assert message.startswith(f"schedule_add: {key}: ")
    assert "--allow-command" in message


@given(
    st.text(min_size=1, max_size=30).filter(
        lambda key: key not in ADD["properties"] and key not in LEFT_OUT
    ),
    json_values,
)
def test_an_unknown_key_is_refused_by_name(key: str, value: Any) -> None:
    message = _refusal({**VALID, key: value})
    assert message is not None
    assert message.startswith(f"schedule_add: {key}: unknown key")


@given(st.text(max_size=40).filter(lambda name: name != "dump"))
def test_a_target_that_is_not_allowed_is_refused_whatever_its_name(target: str) -> None:
    message = _refusal({**VALID, "target": target})
    assert message is not None
    assert "is not a target the operator allows" in message
