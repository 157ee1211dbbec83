"""The package's import graph (read with `ast`, nothing imported) has no cycle: a module that needs
another's names at import time must not be needed by it in turn. Imports inside functions count
too, so that a cycle cannot hide behind a lazy import."""

from __future__ import annotations

import ast
from pathlib import Path

import salesman_utils

PACKAGE = Path(salesman_utils.__file__).parent


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(root: Path) -> dict[str, set[str]]:
    """{module: the package's own modules it imports}, e.g. {"pkg.a": {"pkg.b"}}."""
    modules = {_module_name(p, root): p for p in root.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        is_pkg = path.name == "__init__.py"
        here = name.split(".") if is_pkg else name.split(".")[:-1]
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = here[: len(here) - node.level + 1] if node.level else []
                mod = ".".join([*base, *([node.module] if node.module else [])])
                targets = [mod] + [f"{mod}.{a.name}" for a in node.names]
            else:
                continue
            deps |= {t for t in targets if t in modules and t != name}
        # a package's __init__ is not an edge of its own submodules' graph
        graph[name] = {d for d in deps if not (modules[d].name == "__init__.py")}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as [a, b, ..., a], or None (depth-first search with three colours)."""
    colour = dict.fromkeys(graph, 0)
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        colour[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if colour.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if colour.get(nxt) == 0 and (found := visit(nxt)):
                return found
        stack.pop()
        colour[node] = 2
        return None

    for node in sorted(graph):
        if colour[node] == 0 and (found := visit(node)):
            return found
    return None


def test_package_has_no_import_cycle():
    graph = import_graph(PACKAGE)
    assert len(graph) > 20 and "salesman_utils.agent.doga" in graph
    assert "salesman_utils.config" in graph["salesman_utils.run"], "the graph misses imports"
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_a_fake_package_with_a_cycle_is_caught(tmp_path):
    pkg = tmp_path / "fakepkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .sub import c\n")
    (pkg / "sub" / "c.py").write_text("def f():\n    from ..b import g\n    return g\n")
    (pkg / "b.py").write_text("import fakepkg.a\n")
    (pkg / "d.py").write_text("from . import a\n")  # d -> a is fine: nothing imports d
    graph = import_graph(pkg)
    assert graph["fakepkg.d"] == {"fakepkg.a"}
    cycle = find_cycle(graph)
    assert cycle is not None and set(cycle) == {"fakepkg.a", "fakepkg.sub.c", "fakepkg.b"}
    (pkg / "b.py").write_text("import os\n")
    assert find_cycle(import_graph(pkg)) is None


def test_a_long_module_says_why_it_is_one_module():
    """Over 600 lines, a module's docstring says why it is still one module (issue 26)."""
    long = {
        str(p.relative_to(PACKAGE)): ast.get_docstring(ast.parse(p.read_text())) or ""
        for p in PACKAGE.rglob("*.py")
        if len(p.read_text().splitlines()) > 600
    }
    assert all("One module although long:" in doc for doc in long.values()), [
        name for name, doc in long.items() if "One module although long:" not in doc
    ]
