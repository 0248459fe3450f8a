"""`shunter demo`: a complete run offline. A scripted model plays the planner, the specialist
and the synthesis; the tools, files, policy, scheduler and accounting are all real. The plan is
compiled where it can be: the searches and the count are tool calls the planner wrote, run with
no model; the file agent writes TODO.md from their results."""

from __future__ import annotations

import json
import re
from pathlib import Path

from runtime.errors import ConfigError
from runtime.model import ModelRequest, ModelResponse
from runtime.testing import FunctionModel, text, tool_call

DEMO_REQUEST = "Find every TODO under src/, group them by module, count them, and write TODO.md"

FILES = {
    "src/app/main.py": "def main():\n    # TODO: parse command-line flags\n    run()\n\n\ndef run():\n    pass  # TODO: handle SIGTERM\n",
    "src/app/util.py": "def slug(s):\n    # TODO: strip accents\n    return s.lower().replace(' ', '-')\n",
    "src/db/models.py": "class User:\n    # TODO: add an index on email\n    email: str\n",
    "src/db/migrate.py": "def migrate():\n    # TODO: make migrations reversible\n    # TODO: lock the table while migrating\n    ...\n",
    "README.md": "# tiny-app\n\nA small app used by the Shunter demo.\n",
}

PLAN = {
    "goal": "List the TODOs under src/ grouped by module, count them, and write them to TODO.md.",
    "subtasks": [
        {
            "id": "t1",
            "agent": "file",
            "instruction": "Find every TODO comment in the files under src/app/.",
            "depends_on": [],
            "read_only": True,
            "call": {"tool": "search_files", "arguments": {"pattern": "TODO", "path": "src/app"}},
        },
        {
            "id": "t2",
            "agent": "file",
            "instruction": "Find every TODO comment in the files under src/db/.",
            "depends_on": [],
            "read_only": True,
            "call": {"tool": "search_files", "arguments": {"pattern": "TODO", "path": "src/db"}},
        },
        {
            "id": "t3",
            "agent": "shell",
            "instruction": "Count the TODO comments in the Python files under src/ with grep.",
            "depends_on": [],
            "read_only": True,
            "call": {
                "tool": "run_command",
                "arguments": {"command": "grep -rn TODO src --include=*.py | wc -l"},
            },
        },
        {
            "id": "t4",
            "agent": "file",
            "instruction": "Write TODO.md: a '# TODO' title, then one '## <module>' section per module (app, db) listing its TODOs as '- path:line: text', then a line with the total count.",
            "depends_on": ["t1", "t2", "t3"],
            "read_only": False,
        },
    ],
    "answer": None,
}

_TODO_LINE = re.compile(r"(src/[\w/]+\.py):(\d+):\s*(?:#\s*)?(?:.*?)TODO:?\s*(.*)")


def make_workspace(root: Path) -> None:
    clashes = [rel for rel in [*FILES, "TODO.md"] if (root / rel).exists()]
    if clashes:
        raise ConfigError(
            f"{root} already has {', '.join(clashes)}; run the demo in an empty directory (or without --workspace)."
        )
    for rel, content in FILES.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)


def _todos(text_: str) -> list[tuple[str, str, str]]:
    seen, out = set(), []
    for m in _TODO_LINE.finditer(text_):
        key = (m.group(1), m.group(2))
        if key not in seen:
            seen.add(key)
            out.append((m.group(1), m.group(2), m.group(3).strip().rstrip("\\n")))
    return out


def _specialist(request: ModelRequest, system: str) -> ModelResponse:
    # t1-t3 are calls the planner wrote (no model); the file agent writes TODO.md from them.
    user = request.messages[1]["content"]
    last = request.messages[-1]
    if last["role"] == "user":
        found = _todos(user)
        count = re.search(r'id="t3".*?stdout:\n\s*(\d+)', user, re.DOTALL)
        body = ["# TODO", ""]
        for module in ("app", "db"):
            body += (
                [f"## {module}", ""]
                + [f"- {p}:{n}: {t}" for p, n, t in found if p.startswith(f"src/{module}/")]
                + [""]
            )
        body.append(f"Total: {count.group(1) if count else len(found)} TODOs.")
        return tool_call("write_file", path="TODO.md", content="\n".join(body) + "\n")
    return text("Wrote TODO.md with the TODOs grouped under app and db, and the total.")


def demo_brain(request: ModelRequest) -> ModelResponse:
    system = request.messages[0]["content"]
    if system.startswith("You are the planner"):
        return text(json.dumps(PLAN))
    if system.startswith("You write the final answer"):
        user = request.messages[-1]["content"]
        found = _todos(user)
        modules = sorted({p.split("/")[1] for p, _, _ in found})
        per = ", ".join(f"{m}: {sum(1 for p, _, _ in found if p.split('/')[1] == m)}" for m in modules)
        return text(
            f"Found {len(found)} TODOs under src/ ({per}) and wrote them, grouped by module, to TODO.md."
        )
    return _specialist(request, system)


def demo_model(latency_s: float = 0.25) -> FunctionModel:
    return FunctionModel(demo_brain, name="scripted", latency_s=latency_s)
