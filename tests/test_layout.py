"""The shape of the code: no import circle, sibling packages meet through their `__init__`, and
the two distributions depend one way, the core on the exporters' public modules only."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.helpers.processes import ROOT

SOURCES = {"sdk_telemetry": ROOT / "src" / "sdk_telemetry", "sdk_telemetry_exporters": ROOT / "exporters" / "src"}


def _modules() -> dict[str, Path]:
    """Every module of both distributions, by dotted name (a package by its own name)."""
    found: dict[str, Path] = {}
    for root in (ROOT / "src", ROOT / "exporters" / "src"):
        for path in root.rglob("*.py"):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_time_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """The imports a module runs when it is imported: module level, not under `if TYPE_CHECKING`."""
    found: list[ast.Import | ast.ImportFrom] = []
    pending: list[ast.stmt] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        elif isinstance(node, ast.If) and not _is_type_checking(node):
            pending.extend(node.body + node.orelse)
        elif isinstance(node, ast.Try):
            pending.extend(node.body + node.orelse + node.finalbody)
            for handler in node.handlers:
                pending.extend(handler.body)
    return found


def _targets(node: ast.Import | ast.ImportFrom) -> list[str]:
    """The modules of ours that an import statement loads (a `from package import module` names both)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names if alias.name in MODULES]
    base = node.module or ""
    submodules = [f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in MODULES]
    if base in MODULES and len(submodules) < len(node.names):  # a name defined by `base` itself
        submodules.append(base)
    return submodules


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(), str(path))
        graph[name] = {target for node in _import_time_imports(tree) for target in _targets(node)} - {name}
    return graph


GRAPH = _graph()


def test_no_module_imports_itself_back_through_a_circle() -> None:
    circles: list[list[str]] = []
    state: dict[str, int] = {}  # 1 on the current path, 2 done

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for target in sorted(GRAPH[name]):
            if state.get(target) == 1:
                circles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target, [*path, target])
        state[name] = 2

    for name in sorted(GRAPH):
        if name not in state:
            visit(name, [name])
    assert circles == [], "import circles: " + "; ".join(" -> ".join(circle) for circle in circles)


def _subpackage(name: str) -> str | None:
    """`sdk_telemetry.X` for a module inside the subpackage X of the core, else None."""
    parts = name.split(".")
    if parts[0] != "sdk_telemetry" or len(parts) < 2:
        return None
    package = ".".join(parts[:2])
    return package if (SOURCES["sdk_telemetry"] / parts[1]).is_dir() else None


def test_sibling_packages_import_each_other_only_through_their_init() -> None:
    crossings = []
    for name, targets in GRAPH.items():
        source = _subpackage(name)
        for target in targets:
            package = _subpackage(target)
            if package is not None and package != source and target != package:
                crossings.append(f"{name} imports {target} (use {package})")
    assert crossings == [], "\n".join(sorted(crossings))


def test_the_core_uses_only_public_modules_of_the_exporters_and_never_the_reverse() -> None:
    wrong = []
    for name, targets in GRAPH.items():
        for target in targets:
            if name.startswith("sdk_telemetry_exporters") and target.split(".")[0] == "sdk_telemetry":
                wrong.append(f"{name} imports the core module {target}")
            private = any(part.startswith("_") for part in target.split(".")[1:])
            if name.split(".")[0] == "sdk_telemetry" and target.startswith("sdk_telemetry_exporters.") and private:
                wrong.append(f"{name} imports the private {target}")
    assert wrong == [], "\n".join(sorted(wrong))


def test_every_subpackage_says_what_lives_there() -> None:
    for path in sorted(SOURCES["sdk_telemetry"].glob("*/__init__.py")):
        docstring = ast.get_docstring(ast.parse(path.read_text()))
        assert docstring and len(docstring) > 40, f"{path.parent.name}/__init__.py needs a docstring"
