"""The import boundary of docs/DESIGN.md §1, read from the package's folders: `salesman_utils/world`,
`agent`, `arena`, `referee`, `judge` and `report` are the sides, the top-level modules are
infrastructure. The agent never reaches the referee, the judge, the arena or the report.

The check walks the package's import graph (module-level and function-level imports, relative and
absolute, with `ast`, so nothing is executed). For `world/`, `agent/` and infrastructure it follows
the graph transitively: an agent module that imports a helper that imports the arena breaks the
boundary too. The other sides are checked edge by edge against `MAY_IMPORT`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import salesman_utils

PACKAGE = "salesman_utils"
SIDES = ("world", "agent", "arena", "referee", "judge", "report")
INFRASTRUCTURE = "infrastructure"  # the package's top-level modules: config, models, llm, stats...
# side -> the other sides it may import (infrastructure is open to every side)
MAY_IMPORT = {
    INFRASTRUCTURE: set(),
    "world": set(),
    "agent": {"world"},
    "referee": {"world", "agent"},  # it scores agents: their prompts, fallback line, taggers' code
    "judge": {"world", "agent", "referee"},
    "arena": {"world", "agent", "referee", "judge"},  # where the sides meet
    "report": set(SIDES),
}
# edges allowed outside `MAY_IMPORT`, each with its reason
EXCEPTIONS = {
    ("salesman_utils.run", "report"): "the runner refreshes the README after a tutorial run",
}
TRANSITIVE = (INFRASTRUCTURE, "world", "agent")  # checked along whole import chains


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


def side_of(module: str, package: str = PACKAGE) -> str:
    """The side of a module: its folder under the package, or infrastructure at the top level."""
    bits = module.split(".")[1:]
    return bits[0] if len(bits) > 1 or (bits and bits[0] in SIDES) else INFRASTRUCTURE


def boundary_violations(root: Path, package: str = PACKAGE) -> list[str]:
    """Every import chain from a module to a side its own side may not import (`MAY_IMPORT`)."""
    mods = _modules(root, package)
    graph = {m: _imports(m, f, set(mods)) for m, f in mods.items()}

    def allowed(start: str, target: str) -> bool:
        a, b = side_of(start, package), side_of(target, package)
        return a == b or b == INFRASTRUCTURE or b in MAY_IMPORT[a]

    out = []
    for start in sorted(graph):
        transitive = side_of(start, package) in TRANSITIVE
        seen, stack = {start: [start]}, [start]
        while stack:
            cur = stack.pop()
            for nxt in sorted(graph[cur]):
                if nxt in seen or nxt == package:
                    continue
                seen[nxt] = [*seen[cur], nxt]
                if cur == start and (start, side_of(nxt, package)) in EXCEPTIONS:
                    continue  # a documented exception of this module itself, not followed
                if not allowed(start, nxt):  # judged from `start`: agent -> run -> report fails
                    out.append(" -> ".join(seen[nxt]))
                elif transitive:
                    stack.append(nxt)
    return out


def test_the_package_lists_its_sides_as_folders():
    root = Path(salesman_utils.__file__).parent
    folders = {p.name for p in root.iterdir() if (p / "__init__.py").exists()}
    assert folders == set(SIDES)
    for side in SIDES:  # each side's __init__ says what it is and what it may import
        doc = ast.get_docstring(ast.parse((root / side / "__init__.py").read_text())) or ""
        assert "Imports:" in doc, side


def test_no_side_imports_what_it_may_not():
    root = Path(salesman_utils.__file__).parent
    assert boundary_violations(root) == []


def test_every_exception_is_still_needed():
    root = Path(salesman_utils.__file__).parent
    mods = _modules(root, PACKAGE)
    for module, side in EXCEPTIONS:
        imported = _imports(module, mods[module], set(mods))
        assert any(side_of(m) == side for m in imported), (module, side)


def _fake(tmp_path: Path, files: dict[str, str]) -> Path:
    """A package `salesman_utils` under tmp_path with the sides' folders and `files`."""
    pkg = tmp_path / PACKAGE
    for side in SIDES:
        (pkg / side).mkdir(parents=True, exist_ok=True)
        (pkg / side / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    for name, text in files.items():
        (pkg / name).write_text(text)
    return pkg


def test_the_check_can_fail(tmp_path):
    # agent -> infrastructure helper -> arena -> referee: caught along the chain
    pkg = _fake(
        tmp_path,
        {
            "referee/ears.py": "X = 1\n",
            "arena/play.py": "def play():\n    from ..referee.ears import X\n    return X\n",
            "agent/doga.py": "import salesman_utils.helper\n",
            "helper.py": "def f():\n    from .arena import play\n",
            "agent/clean.py": "from salesman_utils import helper2\n",
            "helper2.py": "import os\n",
        },
    )
    found = boundary_violations(pkg)
    chain = "salesman_utils.agent.doga -> salesman_utils.helper -> salesman_utils.arena"
    assert any(f.startswith(chain) for f in found), found
    assert "salesman_utils.helper -> salesman_utils.arena" in found  # infrastructure too
    assert not any(f.startswith("salesman_utils.agent.clean") for f in found)
    assert not any(f.startswith("salesman_utils.arena") for f in found)  # the arena may
    # a direct relative import of the referee from the agent side, and world -> agent
    (pkg / "agent" / "clean.py").write_text("from ..referee import ears\n")
    (pkg / "world" / "sim.py").write_text("from salesman_utils.agent.clean import y\n")
    found = boundary_violations(pkg)
    assert "salesman_utils.agent.clean -> salesman_utils.referee" in found, found
    assert any(f.startswith("salesman_utils.world.sim -> salesman_utils.agent") for f in found)


def test_the_runners_exception_is_its_own(tmp_path):
    """`run` may import `report/` (EXCEPTIONS); a module that imports `run` is not excused."""
    pkg = _fake(
        tmp_path,
        {
            "report/pages.py": "X = 1\n",
            "run.py": "def go():\n    from salesman_utils.report import pages\n",
            "agent/cli.py": "from salesman_utils import run\n",
        },
    )
    found = boundary_violations(pkg)
    assert not any(f.startswith("salesman_utils.run ") for f in found), found
    assert any(
        f.startswith("salesman_utils.agent.cli -> salesman_utils.run -> salesman_utils.report")
        for f in found
    ), found


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
    (
        "agent.intents",
        "agent_examples",
    ): "the expert column, read only by IntentClassifier.evaluate",
    ("agent.library", "source_quality"): "EVALUATION ONLY: hidden quality of the library's sources",
    ("agent.bayes", "hidden_quality"): "EVALUATION ONLY: the posterior's validation target",
    ("agent.datasets", "build_eval_dataset"): "evaluation-only expert columns of held-out contexts",
    ("agent.rewards", "score_replies"): "held-out scores: similarity to the hidden expert reply",
    (
        "world.corpus",
        "realize_with_llm",
    ): "the corpus writer keeps the template text beside the LLM's",
    ("world.corpus", "_hidden_record"): "the corpus writer: ground truth goes to *.hidden.jsonl",
    ("world.corpus", "turn_frame"): "notebook 01's table of turns with their hidden columns",
    ("banks", "check_simulator_banks"): "checks every bank's format at load, held-out one included",
}


def agent_side(root: Path) -> tuple[str, ...]:
    """The modules the name check reads: all of `agent/`, the world modules the agent calls as
    tools (the knowledge base, the fact check, and the corpus, whose visible views strip the
    hidden fields: its three writers are allowed below), and infrastructure. Only the simulator,
    which IS the hidden truth, names hidden fields freely."""
    mods = _modules(root, PACKAGE)
    agent = sorted(
        m[len(PACKAGE) + 1 :]
        for m in mods
        if side_of(m) in ("agent", INFRASTRUCTURE) and m != PACKAGE
    )
    return (*agent, "world.knowledge", "world.factcheck", "world.corpus")


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
    assert forbidden_names(root, PACKAGE, agent_side(root), ALLOWED) == []


def test_every_allowance_is_still_needed():
    """An allowance nobody uses any more is removed (the list must not grow stale)."""
    root = Path(salesman_utils.__file__).parent
    found = forbidden_names(root, PACKAGE, agent_side(root), {})
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
