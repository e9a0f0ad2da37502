"""The package's shape: layers import downwards only, no import cycles, small modules and functions.

Imports are read from the source (with `ast`), including those inside functions,
so a lazy import cannot hide a dependency; imports under `if TYPE_CHECKING:` do
not count (they never run).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "mesh_magic"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
FRONT_ENDS = ("mesh_magic.magics", "mesh_magic.widget_panel", "mesh_magic.api")
UI_PACKAGES = ("IPython", "ipywidgets")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _is_type_checking(node):
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        yield from _import_nodes(node)


def imports_of(name: str) -> set[str]:
    """Every module `name` imports when it runs (absolute names; submodules resolved)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in _import_nodes(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
            continue
        base = node.module or ""
        if node.level:
            anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
            base = ".".join(anchor + ([base] if base else []))
        found.add(base)
        found.update(f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in MODULES)
    return found


def _ancestor(package: str, name: str) -> bool:
    # Importing a submodule runs its parent packages first anyway: not a dependency edge.
    return name.startswith(package + ".")


GRAPH = {
    name: {m for m in imports_of(name) if m in MODULES and m != name and not _ancestor(m, name)}
    for name in MODULES
}


def _under(name: str, *prefixes: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def test_the_graph_is_read() -> None:
    # The checks below mean something only if imports are really found.
    assert "mesh_magic.core.settings" in GRAPH["mesh_magic.core.config"]
    assert "mesh_magic.core.engine.loop" in GRAPH["mesh_magic.core.catalog"]  # a lazy import


def test_no_import_cycles() -> None:
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(GRAPH[node]):
            if state.get(nxt) == 1:
                cycle = path[path.index(nxt) :] + [nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for name in sorted(GRAPH):
        if name not in state:
            visit(name)


@pytest.mark.parametrize("name", [m for m in MODULES if _under(m, "mesh_magic.core")])
def test_the_core_knows_nothing_above_it(name: str) -> None:
    above = [m for m in imports_of(name) if _under(m, *UI_PACKAGES, "mesh_magic.render", *FRONT_ENDS)]
    assert not above, f"{name} imports {above}"


@pytest.mark.parametrize("name", [m for m in MODULES if _under(m, "mesh_magic.render")])
def test_rendering_knows_no_front_end_and_no_http(name: str) -> None:
    wrong = [
        m for m in imports_of(name) if _under(m, *FRONT_ENDS, "ipywidgets", "httpx", "mesh_magic.core.http")
    ]
    assert not wrong, f"{name} imports {wrong}"


@pytest.mark.parametrize("front", FRONT_ENDS)
def test_front_ends_never_import_each_other(front: str) -> None:
    others = [f for f in FRONT_ENDS if f != front]
    for name in (m for m in MODULES if _under(m, front)):
        wrong = [m for m in imports_of(name) if _under(m, *others)]
        assert not wrong, f"{name} imports {wrong}"


def test_the_panel_holds_no_http_code() -> None:
    for name in (m for m in MODULES if _under(m, "mesh_magic.widget_panel")):
        wrong = [m for m in imports_of(name) if _under(m, "httpx", "mesh_magic.core.http")]
        assert not wrong, f"{name} imports {wrong}"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_modules_and_functions_fit_on_a_screen(name: str) -> None:
    text = MODULES[name].read_text()
    assert len(text.splitlines()) <= MAX_MODULE_LINES, f"{name} has {len(text.splitlines())} lines"
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            start = min([d.lineno for d in node.decorator_list] + [node.lineno])
            length = (node.end_lineno or node.lineno) - start + 1
            assert length <= MAX_FUNCTION_LINES, f"{name}.{node.name} has {length} lines"
