"""The import boundary of DESIGN.md §7b: agents, training and the library never import the referee.

The check walks the package's import graph (module-level and function-level imports, relative and
absolute, with `ast`, so nothing is executed) and follows it transitively: an agent-side module
that imports `online` (the arena, which imports the referee) breaks the boundary too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import salesman_utils

PACKAGE = "salesman_utils"
AGENT_SIDE = (
    "doga",
    "intents",
    "library",
    "training",
    "rewards",
    "bayes",
    "llm",
    "chat",
    "models",
    "corpus",
    "factcheck",
    "config",
    "parts",
    "stats",
)
REFEREE_SIDE = (
    "referee",
    "audit",
    "evaluation",
    "judge",
    "judge_model",
    "judge_checks",
    "judge_validation",
    "metrics",
    "rubric",
    "tokenprobs",
    "humaneval",
)


def _modules(root: Path, package: str) -> dict[str, Path]:
    """module name -> file, for every .py under the package folder `root`."""
    out = {}
    for f in root.rglob("*.py"):
        parts = list(f.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join([package, *parts])] = f
    return out


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The package modules `name` imports anywhere in its file (resolved, relative or absolute)."""
    is_pkg = path.name == "__init__.py"
    here = name.split(".") if is_pkg else name.split(".")[:-1]
    found: set[str] = set()

    def add(mod: str) -> None:
        # importing a.b.c runs a, a.b and a.b.c
        bits = mod.split(".")
        for i in range(1, len(bits) + 1):
            if ".".join(bits[:i]) in known:
                found.add(".".join(bits[:i]))

    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            add(mod)
            for alias in node.names:  # `from . import x` / `from .pkg import submodule`
                add(f"{mod}.{alias.name}")
    found.discard(name)
    return found


def boundary_violations(
    root: Path, package: str, agent_side: tuple[str, ...], referee_side: tuple[str, ...]
) -> list[str]:
    """Each agent-side module that reaches a referee-side module, with the import chain."""
    mods = _modules(root, package)
    graph = {m: _imports(m, f, set(mods)) for m, f in mods.items()}
    forbidden = tuple(f"{package}.{r}" for r in referee_side)

    def is_referee(m: str) -> bool:
        return any(m == f or m.startswith(f + ".") for f in forbidden)

    out = []
    for a in agent_side:
        start = f"{package}.{a}"
        if start not in graph:
            continue
        seen, stack = {start: [start]}, [start]
        while stack:
            cur = stack.pop()
            for nxt in sorted(graph[cur]):
                if nxt in seen:
                    continue
                seen[nxt] = [*seen[cur], nxt]
                if is_referee(nxt):
                    out.append(" -> ".join(seen[nxt]))
                    continue
                stack.append(nxt)
    return out


def test_agent_side_never_imports_the_referee():
    root = Path(salesman_utils.__file__).parent
    assert (root / "referee" / "__init__.py").exists()
    assert boundary_violations(root, PACKAGE, AGENT_SIDE, REFEREE_SIDE) == []


def test_the_check_can_fail(tmp_path):
    pkg = tmp_path / "fakepkg"
    (pkg / "referee").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "referee" / "__init__.py").write_text("")
    (pkg / "referee" / "ears.py").write_text("X = 1\n")
    (pkg / "arena.py").write_text("def play():\n    from .referee.ears import X\n    return X\n")
    (pkg / "agent.py").write_text("import fakepkg.helper\n")
    (pkg / "helper.py").write_text("def f():\n    from . import arena\n")
    (pkg / "clean.py").write_text("from fakepkg import helper2\n")
    (pkg / "helper2.py").write_text("import os\n")
    found = boundary_violations(pkg, "fakepkg", ("agent", "clean"), ("referee",))
    chain = "fakepkg.agent -> fakepkg.helper -> fakepkg.arena -> fakepkg.referee"
    assert found and all(f.startswith(chain) for f in found), found  # clean is not reported
    (pkg / "clean.py").write_text("from .referee import ears\n")
    found = boundary_violations(pkg, "fakepkg", ("clean",), ("referee",))
    assert found and all(f.startswith("fakepkg.clean -> fakepkg.referee") for f in found)
