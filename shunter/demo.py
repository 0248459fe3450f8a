"""`shunter demo`: a complete run offline. A scripted model plays the planner, the specialists
and the synthesis; the tools, files, policy, scheduler and accounting are all real."""

from __future__ import annotations

import json
import re
from pathlib import Path

from runtime.errors import ConfigError
from runtime.model import ModelRequest, ModelResponse
from runtime.testing import FunctionModel, calls, text, tool_call

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
            "instruction": "Find every TODO comment in the files under src/app/ and list each as path:line: text.",
            "depends_on": [],
            "read_only": True,
        },
        {
            "id": "t2",
            "agent": "file",
            "instruction": "Find every TODO comment in the files under src/db/ and list each as path:line: text.",
            "depends_on": [],
            "read_only": True,
        },
        {
            "id": "t3",
            "agent": "shell",
            "instruction": "Count the TODO comments in the Python files under src/ with grep and report the number.",
            "depends_on": [],
            "read_only": True,
        },
        {
            "id": "t4",
            "agent": "file",
            "instruction": "Write TODO.md: a '# TODO' title, then one '## <module>' section per module (app, db) listing its TODOs as '- path:line: text', then a line with the total count.",
            "depends_on": ["t1", "t2", "t3"],
            "read_only": False,
        },
    ],
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
    user = request.messages[1]["content"]
    last = request.messages[-1]
    instruction = user.split("\n", 1)[1]
    if '"shell" specialist' in system:
        if last["role"] == "user":
            return tool_call("run_command", command="grep -rn TODO src --include=*.py | wc -l")
        count = re.search(r"^\s*(\d+)\s*$", last["content"], re.MULTILINE)
        return text(
            f"There are {count.group(1) if count else 'an unknown number of'} TODO comments in the Python files under src/."
        )
    if "Write TODO.md" in instruction:
        if last["role"] == "user":
            found = _todos(user)
            total = re.search(r"There are (\d+) TODO", user)
            body = ["# TODO", ""]
            for module in ("app", "db"):
                body += (
                    [f"## {module}", ""]
                    + [f"- {p}:{n}: {t}" for p, n, t in found if p.startswith(f"src/{module}/")]
                    + [""]
                )
            body.append(f"Total: {total.group(1) if total else len(found)} TODOs.")
            return tool_call("write_file", path="TODO.md", content="\n".join(body) + "\n")
        return text("Wrote TODO.md with the TODOs grouped under app and db, and the total.")
    folder = "src/app" if "src/app" in instruction else "src/db"
    if last["role"] == "user":
        # Two independent reads in one turn: the loop runs them in parallel.
        return calls(("list_files", {"path": folder}), ("search_files", {"pattern": "TODO", "path": folder}))
    found = _todos(last["content"])
    return text("\n".join(f"{p}:{n}: TODO: {t}" for p, n, t in found) or f"No TODOs under {folder}.")


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
