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
    "pricing",
    "stats",
    "planner",
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


# ---------------------------------------------------------------- forbidden names

# What an agent-side module must not name: the held-out rep bank and the referee's paraphrase bank
# (files), the simulator's expert and by-the-book moves and its personalization rule (methods), a
# turn's `hidden` ground truth and the merchant's latent fields (attributes), and the held-out
# realizer switch (`heldout=True`).
FORBIDDEN_STRINGS = ("agent_templates_heldout", "perception_paraphrases", "pushy_merchants")
FORBIDDEN_ATTRS = (
    "hidden",
    "expert_intent",
    "script_intent",
    "personalization_due",
    "expert_text",
    "pain_points",
    "budget_sensitivity",
    "decision_style",
    "objection_repertoire",
    "initial_interest",
    "patience",
)
FORBIDDEN_KEYS = ("expert_intent", "expert_text", "script_intent")  # keys of `Turn.hidden`
FORBIDDEN_KEYWORDS = ("heldout",)
# (module, function) -> why it may name one of them: evaluation-only readers, each documented as
# such in its docstring, and the corpus writer itself. Nothing here feeds a model or an agent turn.
ALLOWED = {
    ("intents", "agent_examples"): "the expert column, read only by IntentClassifier.evaluate",
    ("library", "source_quality"): "EVALUATION ONLY: hidden quality of the library's sources",
    ("bayes", "hidden_quality"): "EVALUATION ONLY: the posterior's validation target",
    ("rewards", "build_eval_dataset"): "evaluation-only expert columns of held-out contexts",
    ("rewards", "score_replies"): "held-out scores: similarity to the hidden expert reply",
    ("corpus", "realize_with_llm"): "the corpus writer keeps the template text beside the LLM's",
    ("corpus", "_hidden_record"): "the corpus writer: ground truth goes to *.hidden.jsonl",
    ("corpus", "turn_frame"): "notebook 01's table of turns with their hidden columns",
}


def _named(node: ast.AST) -> list[str]:
    """The forbidden names one AST node uses."""
    out = []
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        out += [s for s in FORBIDDEN_STRINGS if s in node.value]
        out += [node.value] if node.value in FORBIDDEN_KEYS else []  # hidden-record keys
    elif isinstance(node, ast.Attribute) and node.attr in FORBIDDEN_ATTRS:
        out.append(f".{node.attr}")
    elif isinstance(node, ast.keyword) and node.arg in FORBIDDEN_KEYWORDS:
        out.append(f"{node.arg}=")
    return out


def forbidden_names(
    root: Path, package: str, agent_side: tuple[str, ...], allowed: dict | None = None
) -> list[str]:
    """'module:function: name' for each forbidden name an agent-side module's code uses outside
    the `allowed` (module, function) pairs (docstrings are prose, not reads: skipped)."""
    mods = _modules(root, package)
    allowed = allowed or {}
    out = []
    for a in agent_side:
        path = mods.get(f"{package}.{a}")
        if path is None:
            continue
        tree = ast.parse(path.read_text())
        docs = {
            id(n.body[0].value)
            for n in ast.walk(tree)
            if isinstance(n, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
            and n.body
            and isinstance(n.body[0], ast.Expr)
            and isinstance(n.body[0].value, ast.Constant)
        }

        stack: list[tuple[ast.AST, str]] = [(tree, "<module>")]
        while stack:
            node, where = stack.pop()
            for child in ast.iter_child_nodes(node):
                here = where
                if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                    here = child.name if where == "<module>" else where
                if id(child) not in docs and (a, here) not in allowed:
                    out.extend(f"{a}:{here}: {n}" for n in _named(child))
                stack.append((child, here))
    return out


def test_agent_side_names_no_simulator_internals():
    root = Path(salesman_utils.__file__).parent
    assert forbidden_names(root, PACKAGE, AGENT_SIDE, ALLOWED) == []


def test_every_allowance_is_still_needed():
    """An allowance nobody uses any more is removed (the list must not grow stale)."""
    root = Path(salesman_utils.__file__).parent
    found = forbidden_names(root, PACKAGE, AGENT_SIDE, {})
    used = {tuple(f.split(":")[:2]) for f in found}
    assert set(ALLOWED) <= used, set(ALLOWED) - used


def test_the_name_check_can_fail(tmp_path):
    pkg = tmp_path / "fakepkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "agent.py").write_text(
        '"""Never reads agent_templates_heldout.yaml (a docstring is prose)."""\n'
        "def move(sim, turn, m, real):\n"
        "    bank = open('data/agent_templates_heldout.yaml')\n"
        "    style = m.decision_style\n"
        "    line = real.agent_text('Opening', True, True, None, heldout=True)\n"
        "    return sim.expert_intent(), turn.hidden['quality'], bank, style, line\n"
    )
    (pkg / "clean.py").write_text("def move(turn):\n    return turn.text\n")
    found = forbidden_names(pkg, "fakepkg", ("agent", "clean"))
    names = {f.split(": ")[1] for f in found}
    assert names == {
        "agent_templates_heldout",
        ".decision_style",
        "heldout=",
        ".expert_intent",
        ".hidden",
    }, found
    assert all(f.startswith("agent:move:") for f in found)
    assert forbidden_names(pkg, "fakepkg", ("agent",), {("agent", "move"): "test"}) == []
