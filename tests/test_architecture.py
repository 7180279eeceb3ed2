"""The layers of docs/explanation/architecture.md, held true: imports only go down.

The page's layer table is the rule. Every module of ``src/chronolog`` must be
in exactly one layer, and may import (at run time or for type checking) only
modules of the layers its row allows.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "chronolog"
PAGE = ROOT / "docs" / "explanation" / "architecture.md"


def layer_table() -> dict[str, tuple[list[str], set[str]]]:
    """Layer name -> (module patterns, layers it may import), from the page."""
    layers: dict[str, tuple[list[str], set[str]]] = {}
    text = PAGE.read_text(encoding="utf-8")
    section = text.split("| Layer | Modules | May import |", 1)[1].split("\n\n", 1)[0]
    for line in section.strip().splitlines()[1:]:
        name, modules, allowed = (cell.strip() for cell in line.strip("|").split("|"))
        patterns = re.findall(r"`([^`]+)`", modules)
        may = {word.strip() for word in allowed.split(",")}
        layers[name] = (patterns, may)
    return layers


def module_names() -> dict[str, Path]:
    names: dict[str, Path] = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts) or "chronolog"] = path
    return names


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The package modules ``name`` imports, by their names relative to the package."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name.split(".") if path.name == "__init__.py" and name != "chronolog" else []
    if path.name != "__init__.py":
        package = name.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
                module = ".".join([*base, *([node.module] if node.module else [])])
            elif node.module and node.module.startswith("chronolog"):
                module = node.module.removeprefix("chronolog").lstrip(".")
            else:
                continue
            targets = [module, *(f"{module}.{alias.name}".lstrip(".") for alias in node.names)]
        elif isinstance(node, ast.Import):
            targets = [
                alias.name.removeprefix("chronolog").lstrip(".")
                for alias in node.names
                if alias.name.startswith("chronolog")
            ]
        for target in targets:
            target = target or "chronolog"
            if target in known and target != name:
                found.add(target)
    return found


def layer_of(module: str, layers: dict[str, tuple[list[str], set[str]]]) -> list[str]:
    def matches(pattern: str) -> bool:
        if pattern.endswith(".*"):
            return module.startswith(pattern[:-1])
        return module == pattern

    return [name for name, (patterns, _) in layers.items() if any(map(matches, patterns))]


def test_every_module_is_in_exactly_one_layer() -> None:
    layers = layer_table()
    assert set(layers) == {"core", "logs", "queries", "runtime", "surfaces", "tools"}
    misplaced = {
        module: layer_of(module, layers)
        for module in module_names()
        if len(layer_of(module, layers)) != 1
    }
    assert misplaced == {}, (
        "add each module to one row of the layer table in docs/explanation/architecture.md"
    )


@pytest.mark.parametrize("layer", ["core", "logs", "queries", "runtime", "surfaces"])
def test_a_layer_imports_only_the_layers_below_it(layer: str) -> None:
    layers = layer_table()
    modules = module_names()
    allowed = layers[layer][1]
    wrong = []
    for module, path in modules.items():
        if layer_of(module, layers) != [layer]:
            continue
        for imported in imports_of(module, path, set(modules)):
            (imported_layer,) = layer_of(imported, layers)
            if imported_layer not in allowed:
                wrong.append(f"{module} imports {imported} ({imported_layer})")
    assert wrong == []


def test_the_core_imports_no_trio_and_does_no_io() -> None:
    layers = layer_table()
    forbidden = {"trio", "anyio", "socket", "subprocess", "sqlite3"}
    wrong = []
    for module, path in module_names().items():
        if layer_of(module, layers) != ["core"]:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                names = [node.module]
            wrong += [f"{module} imports {n}" for n in names if n.split(".")[0] in forbidden]
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "open":
                wrong.append(f"{module} calls open()")
    assert wrong == []


def test_the_checker_sees_a_wrong_import(tmp_path: Path) -> None:
    """The rule can fail: a core module importing the writer is caught."""
    bad = tmp_path / "_events.py"
    bad.write_text("from ._writer import LogWriter\n", encoding="utf-8")
    found = imports_of("_events", bad, set(module_names()))
    assert found == {"_writer"}
    assert layer_of("_writer", layer_table()) == ["runtime"]
