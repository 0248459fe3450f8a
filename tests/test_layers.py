"""The floors of the code (README, Architecture): runtime at the bottom, then tools and prompts,
agents, planner, router, and the CLI and API on top. A module imports only from its own floor or
below, and no import circle exists, not even through imports made inside functions."""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

ROOT = Path(__file__).resolve().parent.parent
FLOORS = {"runtime": 0, "tools": 1, "prompts": 1, "agents": 2, "planner": 3, "router": 4, "shunter": 5}


def _modules() -> dict[str, Path]:
    mods = {}
    for pkg in FLOORS:
        for f in (ROOT / pkg).rglob("*.py"):
            name = ".".join(f.relative_to(ROOT).with_suffix("").parts)
            mods[name.removesuffix(".__init__")] = f
    return mods


def _imports(mods: dict[str, Path]) -> nx.DiGraph:
    """Module -> module it imports, for every import statement (top level, in functions, and
    under TYPE_CHECKING alike)."""

    def known(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    g = nx.DiGraph()
    for name, path in mods.items():
        g.add_node(name)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # `from tools import files` imports the module tools.files
                subs = [f"{node.module}.{a.name}" for a in node.names]
                targets = [t for t in subs if t in mods] or [node.module]
            else:
                continue
            for t in targets:
                found = known(t)
                if found and found != name:
                    g.add_edge(name, found)
    return g


def test_no_module_imports_a_higher_floor():
    g = _imports(_modules())
    upward = [(a, b) for a, b in g.edges if FLOORS[b.split(".")[0]] > FLOORS[a.split(".")[0]]]
    assert upward == []


def test_there_is_no_import_circle():
    g = _imports(_modules())
    assert list(nx.simple_cycles(g)) == []
    assert len(g) > 60  # the walk saw the project, not an empty folder
