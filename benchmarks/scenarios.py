"""Scripted multi-step scenarios shared by the token and estimate benchmarks.

A scenario is a workspace (files), a request, the plan the planner answers, and for each subtask
the turns its specialist takes: tool calls, then a final text. The same tool calls and texts,
replayed in order by one agent holding every tool, are the single-agent (ReAct) baseline.
Everything is deterministic: the texts are fixed, the tools are the real ones over real files.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Turn = list[tuple[str, dict[str, Any]]] | str
"""Tool calls made in one turn (several run in parallel when read-only), or the final text."""


@dataclass
class Step:
    id: str
    agent: str
    instruction: str
    turns: list[Turn]
    depends_on: list[str] = field(default_factory=list)
    read_only: bool = True
    call: dict[str, Any] | None = None
    """A compiled step: this tool call, run with no model (its `turns` are empty)."""


@dataclass
class Scenario:
    name: str
    request: str
    files: dict[str, str]
    steps: list[Step]
    answer: str
    """What the synthesis (and the single agent, at the end) answers."""
    answer_id: str | None = None
    """The step whose result is the answer (no synthesis), in a compiled plan."""

    def plan(self) -> dict[str, Any]:
        return {
            "goal": self.request,
            "subtasks": [
                {
                    "id": s.id,
                    "agent": s.agent,
                    "instruction": s.instruction,
                    "depends_on": s.depends_on,
                    "read_only": s.read_only,
                    "call": s.call,
                }
                for s in self.steps
            ],
            "answer": self.answer_id,
        }

    def make_workspace(self, root: Path) -> None:
        for rel, content in self.files.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)


# --- the brains ----------------------------------------------------------------------------------


def _reply(turn: Turn):
    from runtime.testing import calls, text

    return text(turn) if isinstance(turn, str) else calls(*turn)


def shunter_brain(sc: Scenario) -> Callable[[Any], Any]:
    """Planner -> the plan; a specialist -> its next scripted turn; synthesis -> the answer."""
    from benchmarks.common import role_of
    from runtime.testing import text

    plan_json = json.dumps(sc.plan())

    def answer(request):
        role = role_of(request.messages)
        if role == "planner":
            return text(plan_json)
        if role == "synthesis":
            return text(sc.answer)
        user = request.messages[1]["content"].split("\n", 1)[1]
        step = next(s for s in sc.steps if user.startswith(s.instruction))
        turn = sum(1 for m in request.messages if m["role"] == "assistant")
        return _reply(step.turns[min(turn, len(step.turns) - 1)])

    return answer


def react_turns(sc: Scenario, batched: bool) -> list[Turn]:
    """The single agent's script: every tool call of the plan in plan order, then the answer.
    Sequential: one call per turn (the ReAct loop the LLMCompiler paper compares with). Batched:
    all calls of a wave of independent steps in one turn (parallel tool calls)."""
    if not batched:
        return [[c] for s in sc.steps for t in s.turns if not isinstance(t, str) for c in t] + [sc.answer]
    from benchmarks.common import Edges

    edges: Edges = {s.id: s.depends_on for s in sc.steps}
    level: dict[str, int] = {}
    for sid, deps in edges.items():
        level[sid] = 1 + max((level[d] for d in deps), default=0)
    turns: list[Turn] = []
    for lv in sorted(set(level.values())):
        wave = [s for s in sc.steps if level[s.id] == lv]
        depth = max(sum(1 for t in s.turns if not isinstance(t, str)) for s in wave)
        for k in range(depth):
            batch = [
                c
                for s in wave
                for t in [s.turns[k]]
                if k < len(s.turns) and not isinstance(t, str)
                for c in t
            ]
            if batch:
                turns.append(batch)
    return [*turns, sc.answer]


def react_brain(turns: list[Turn]) -> Callable[[Any], Any]:
    def answer(request):
        turn = sum(1 for m in request.messages if m["role"] == "assistant")
        return _reply(turns[min(turn, len(turns) - 1)])

    return answer


REACT_DESCRIPTION = (
    "A general assistant that does the whole request alone: reads, searches, writes and edits files in the "
    "workspace and runs shell commands under the command policy."
)
REACT_TOOLS = (
    "read_file",
    "list_files",
    "search_files",
    "write_file",
    "edit_file",
    "delete_file",
    "run_command",
)


# --- workspace content ---------------------------------------------------------------------------


def _module(name: str, topic: str, functions: int) -> str:
    """A plausible Python module of `functions` small functions (deterministic)."""
    parts = [
        f'"""{topic.capitalize()} for the shop: {name}."""\n\nfrom __future__ import annotations\n\nimport math\n'
    ]
    for i in range(functions):
        parts.append(
            textwrap.dedent(f'''
            def {name}_{topic.split()[0]}_{i}(items: list[dict], rate: float = 0.{i % 9 + 1}) -> float:
                """Return the {topic} of `items` at `rate`, rounded to cents (rule {i})."""
                total = 0.0
                for item in items:
                    price = float(item.get("price", 0)) * int(item.get("qty", 1))
                    if price > {100 + 10 * i}:
                        price -= price * rate
                    total += price
                return math.floor(total * 100 + 0.5) / 100
        ''')
        )
    return "".join(parts)


SUMMARIES = {
    "cart": "cart.py keeps the shopping cart: it sums line prices (price x qty), applies a per-rule discount "
    "above a threshold and rounds to cents. The functions are near-duplicates that differ only in the "
    "threshold and rate; they could be one function with parameters.",
    "pricing": "pricing.py computes prices: each function totals the items, discounts expensive lines at a "
    "fixed rate and rounds half up to cents. Same pattern repeated per rule; no input validation, so a "
    "missing price silently counts as 0.",
    "inventory": "inventory.py values the stock: totals price x quantity per item with a discount above a "
    "threshold, rounded to cents. Like the other modules it repeats one function per rule, and a "
    "negative quantity is not rejected.",
}


def review_scenario(functions: int = 4, name: str = "review") -> Scenario:
    """Three reads (in parallel), a command, a write that uses all four results."""
    files = {
        "src/shop/cart.py": _module("cart", "cart total", functions),
        "src/shop/pricing.py": _module("pricing", "price with discount", functions),
        "src/shop/inventory.py": _module("inventory", "stock value", functions),
        "README.md": "# shop\n\nA toy shop used by the Shunter benchmarks.\n",
    }
    lines = sum(c.count("\n") for p, c in files.items() if p.endswith(".py"))
    review = (
        "# Review of src/shop\n\n"
        + "\n".join(f"## {m}.py\n\n{SUMMARIES[m]}\n" for m in ("cart", "pricing", "inventory"))
        + f"\n## Size\n\n{lines} lines of Python in src/shop.\n\n## Recommendation\n\nMerge the per-rule "
        "functions into one parameterised function per module and validate prices and quantities.\n"
    )
    read = lambda m: Step(  # noqa: E731
        f"t{['cart', 'pricing', 'inventory'].index(m) + 1}",
        "file",
        f"Read src/shop/{m}.py and summarise what it does and any problem you see, in two or three sentences.",
        [[("read_file", {"path": f"src/shop/{m}.py"})], SUMMARIES[m]],
    )
    steps = [
        read("cart"),
        read("pricing"),
        read("inventory"),
        Step(
            "t4",
            "shell",
            "Count the lines of the Python files in src/shop with wc -l and report the total.",
            [
                [("run_command", {"command": "wc -l src/shop/*.py"})],
                f"src/shop holds {lines} lines of Python in 3 files.",
            ],
        ),
        Step(
            "t5",
            "file",
            "Write REVIEW.md: a section per module with its summary, the total line count, and one recommendation.",
            [
                [("write_file", {"path": "REVIEW.md", "content": review})],
                "Wrote REVIEW.md with a section per module, the line count and a recommendation.",
            ],
            depends_on=["t1", "t2", "t3", "t4"],
            read_only=False,
        ),
    ]
    answer = (
        f"I reviewed the three modules in src/shop ({lines} lines of Python) and wrote REVIEW.md. All three repeat "
        "one discount-and-round function per rule; the recommendation is to merge them into one parameterised "
        "function per module and to validate prices and quantities."
    )
    return Scenario(
        name,
        "Review the modules in src/shop, count their lines of Python, and write REVIEW.md with a "
        "summary per module, the line count and a recommendation.",
        files,
        steps,
        answer,
    )


def compiled_review_scenario(functions: int = 4, name: str = "review-compiled") -> Scenario:
    """The review as a compiled plan: the reads and the count are calls the planner writes; a
    writer (no tools) composes REVIEW.md from their results; a call writes it and is the answer.
    Same files, same tool calls, the same REVIEW.md."""
    base = review_scenario(functions, name)
    reads, count, write = base.steps[:3], base.steps[3], base.steps[4]
    tool_of = lambda st: st.turns[0][0]  # noqa: E731 - (name, arguments) of a step's one call
    review = tool_of(write)[1]["content"]
    compiled = [
        Step(st.id, st.agent, st.instruction, [], call={"tool": tool_of(st)[0], "arguments": tool_of(st)[1]})
        for st in (*reads, count)
    ]
    compiled.append(
        Step(
            "t5",
            "writer",
            "Write the content of REVIEW.md: a section per module summarising what it does and any problem, "
            "the total line count, and one recommendation.",
            [review],
            depends_on=["t1", "t2", "t3", "t4"],
        )
    )
    compiled.append(
        Step(
            "t6",
            "file",
            "Write REVIEW.md with the review.",
            [],
            depends_on=["t5"],
            read_only=False,
            call={"tool": "write_file", "arguments": {"path": "REVIEW.md", "content": "{{t5}}\n"}},
        )
    )
    return Scenario(name, base.request, base.files, compiled, base.answer, answer_id="t6")


# --- more scenarios, for the estimate benchmark ---------------------------------------------------

_WORDS = (
    "the module reads validates parses config values function returns list result error handling path file "
    "caller default option because when each line total count test case retry timeout cache request response "
    "user input output format check missing rule data record field name update write change keeps uses"
).split()


def prose(seed: str, words: int) -> str:
    """Deterministic filler prose of `words` words: stands in for a model's answer of that length."""
    import random

    rng = random.Random(seed)
    out, sentence = [], []
    for _ in range(words):
        sentence.append(rng.choice(_WORDS))
        if len(sentence) >= rng.randint(8, 16):
            out.append(" ".join(sentence).capitalize() + ".")
            sentence = []
    if sentence:
        out.append(" ".join(sentence).capitalize() + ".")
    return " ".join(out)


def explain_scenario() -> Scenario:
    """One subtask: read a module and explain it at length."""
    files = {"src/shop/pricing.py": _module("pricing", "price with discount", 12)}
    text = prose("explain", 220)
    steps = [
        Step(
            "t1",
            "file",
            "Read src/shop/pricing.py and explain what it does, function by function.",
            [[("read_file", {"path": "src/shop/pricing.py"})], text],
        )
    ]
    return Scenario("explain", "Explain what src/shop/pricing.py does.", files, steps, text)


def hunt_scenario() -> Scenario:
    """One subtask, four iterations: search, read two hits, answer."""
    files = {f"src/shop/{m}.py": _module(m, "stock value", 6) for m in ("cart", "inventory", "orders")}
    steps = [
        Step(
            "t1",
            "file",
            "Find where the stock value rules are defined and say which rule has the highest threshold.",
            [
                [("search_files", {"pattern": "def .*_stock_", "path": "src"})],
                [("read_file", {"path": "src/shop/inventory.py"})],
                [("read_file", {"path": "src/shop/orders.py"})],
                prose("hunt", 90),
            ],
        )
    ]
    return Scenario(
        "hunt", "Which stock value rule has the highest threshold?", files, steps, prose("hunt", 90)
    )


def wide_scenario(n: int = 8) -> Scenario:
    """n parallel read-and-summarise subtasks and a writer that joins them."""
    names = [f"mod{i}" for i in range(n)]
    files = {f"src/pkg/{m}.py": _module(m, "cart total", 3 + i % 4) for i, m in enumerate(names)}
    steps = [
        Step(
            f"t{i + 1}",
            "file",
            f"Read src/pkg/{m}.py and summarise it in two sentences.",
            [[("read_file", {"path": f"src/pkg/{m}.py"})], prose(m, 45)],
        )
        for i, m in enumerate(names)
    ]
    doc = "# Modules\n\n" + "\n".join(f"- {m}: {prose(m, 45)}" for m in names) + "\n"
    steps.append(
        Step(
            f"t{n + 1}",
            "file",
            "Write MODULES.md listing every module with its summary.",
            [[("write_file", {"path": "MODULES.md", "content": doc})], "Wrote MODULES.md."],
            depends_on=[f"t{i + 1}" for i in range(n)],
            read_only=False,
        )
    )
    return Scenario(
        "wide8", "Summarise every module under src/pkg into MODULES.md.", files, steps, prose("wide", 60)
    )


def chain_scenario() -> Scenario:
    """Read, then edit, then check with a command: three dependent steps."""
    files = {
        "config/settings.toml": "[server]\nport = 8080\nworkers = 2\ntimeout = 30\n",
        "src/shop/cart.py": _module("cart", "cart total", 5),
    }
    steps = [
        Step(
            "t1",
            "file",
            "Read config/settings.toml and report the server settings.",
            [
                [("read_file", {"path": "config/settings.toml"})],
                "The server listens on port 8080 with 2 workers and a 30 s timeout.",
            ],
        ),
        Step(
            "t2",
            "file",
            "Raise the number of workers in config/settings.toml from 2 to 4.",
            [
                [("edit_file", {"path": "config/settings.toml", "old": "workers = 2", "new": "workers = 4"})],
                "Changed workers from 2 to 4 in config/settings.toml.",
            ],
            depends_on=["t1"],
            read_only=False,
        ),
        Step(
            "t3",
            "shell",
            "Show the [server] section of config/settings.toml with grep to confirm the change.",
            [
                [("run_command", {"command": "grep -A3 server config/settings.toml"})],
                "The file now says workers = 4.",
            ],
            depends_on=["t2"],
            read_only=True,
        ),
    ]
    return Scenario(
        "chain-edit",
        "Raise the server workers to 4 and confirm it.",
        files,
        steps,
        "The server now runs 4 workers (config/settings.toml), confirmed with grep.",
    )
