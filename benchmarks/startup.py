"""Start-up: wall time of a fresh `shunter --help` and `shunter check-command ls` process.

Each run is a new interpreter (cold for Python: nothing imported); the OS page cache is warm,
as it is for anyone who ran the command before. One discarded run first writes the .pyc files.
A bare `python -c pass` is measured too: the part no code of ours can remove. Target (issue 7):
under 400 ms. The slowest imports (`python -X importtime`, cumulative) are listed for each
command so a regression names its cause.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.common import REPO, median, python_bin, reps, say, table, write_result

NAME = "startup"
REPS = 9
TARGET_MS = 400.0


def shunter_bin() -> list[str]:
    exe = Path(python_bin()).parent / "shunter"
    return [str(exe)] if exe.exists() else [python_bin(), "-m", "shunter.cli"]


COMMANDS: dict[str, list[str]] = {
    "python -c pass": [python_bin(), "-c", "pass"],
    "shunter --help": [*shunter_bin(), "--help"],
    "shunter check-command ls": [*shunter_bin(), "check-command", "ls"],
}


INFO: dict[str, list[str]] = {
    "python: import runtime.tokens": [python_bin(), "-c", "import runtime.tokens"],
    "python: import runtime.tokens + first count_text": [
        python_bin(),
        "-c",
        "import runtime.tokens as t; t.count_text('x')",
    ],
}
"""Not targets: what a `plan` or `run` pays before its first request (the tokenizer tables)."""


def _env() -> dict[str, str]:
    env = dict(os.environ)
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "SHUNTER_MODEL"):
        env.pop(var, None)
    return env


def wall_ms(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    done = subprocess.run(
        cmd, cwd=REPO, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    ms = (time.perf_counter() - t0) * 1000
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {done.returncode}: {done.stderr.strip()[-300:]}")
    return ms


def plan_ms(n: int) -> float:
    """`shunter plan --json` end to end against the scripted server: start-up, tokenizer, one
    planner call, validation, estimate, output."""
    import json
    import tempfile

    from benchmarks.scripted_server import ScriptedServer

    plan = {
        "goal": "g",
        "subtasks": [
            {
                "id": "t1",
                "agent": "file",
                "instruction": "List the files.",
                "depends_on": [],
                "read_only": True,
            }
        ],
    }
    with (
        tempfile.TemporaryDirectory(prefix="shunter-bench-") as tmp,
        ScriptedServer(Path(tmp) / "plan.json") as server,
    ):
        server.plan(plan)
        ws = Path(tmp) / "ws"
        ws.mkdir()
        cmd = [*shunter_bin(), "plan", "List the files", "--json", "--workspace", str(ws)]
        env = {
            **_env(),
            "OPENAI_BASE_URL": server.base_url,
            "OPENAI_API_KEY": "sk-test-benchmark",
            "SHUNTER_MODEL": "scripted",
        }
        runs = []
        for i in range(n + 1):
            t0 = time.perf_counter()
            done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
            if done.returncode != 0 or "plan" not in json.loads(done.stdout or "{}"):
                raise RuntimeError(f"shunter plan failed ({done.returncode}): {done.stderr.strip()[-300:]}")
            if i:  # the first run is discarded
                runs.append((time.perf_counter() - t0) * 1000)
    return round(median(runs), 1)


def slowest_imports(args: list[str], top: int = 8) -> list[dict[str, Any]]:
    """Top-level imports by cumulative time, from `python -X importtime`."""
    code = f"import sys; sys.argv = {['shunter', *args]!r}; from shunter.cli import main; main()"
    done = subprocess.run(
        [python_bin(), "-X", "importtime", "-c", code],
        cwd=REPO,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    rows = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = line.removeprefix("import time:").split("|")
        if cumulative.strip().isdigit() and not name.startswith("  "):  # one space: top level; more: nested
            rows.append({"module": name.strip(), "cumulative_ms": round(int(cumulative) / 1000, 1)})
    return sorted(rows, key=lambda r: -r["cumulative_ms"])[:top]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    n = reps(REPS)
    say(f"{NAME}: fresh process wall time, median of {n} runs")
    results = {}
    for label, cmd in COMMANDS.items():
        wall_ms(cmd)  # writes .pyc files; discarded
        runs = [wall_ms(cmd) for _ in range(n)]
        results[label] = {
            "median_ms": round(median(runs), 1),
            "min_ms": round(min(runs), 1),
            "max_ms": round(max(runs), 1),
        }
        say(f"  {NAME}: {label:<26} {results[label]['median_ms']:.0f} ms")
    info = {}
    for label, cmd in INFO.items():
        wall_ms(cmd)
        info[label] = {"median_ms": round(median(wall_ms(cmd) for _ in range(max(1, n // 2))), 1)}
    info["shunter plan --json (scripted server, 0 ms latency)"] = {"median_ms": plan_ms(max(1, n // 2))}
    for label, v in info.items():
        say(f"  {NAME}: (info) {label:<50} {v['median_ms']:.0f} ms")
    imports = {
        "shunter --help": slowest_imports(["--help"]),
        "shunter check-command ls": slowest_imports(["check-command", "ls"]),
    }
    worst = max(v["median_ms"] for k, v in results.items() if k.startswith("shunter"))
    summary = {"worst_median_ms": worst, "target": f"< {TARGET_MS:.0f} ms", "target_met": worst < TARGET_MS}
    write_result(
        NAME,
        {"repetitions": n, "commands": results, "info": info, "slowest_imports": imports, "summary": summary},
    )
    say(
        table(
            ["command", "median ms", "min ms", "max ms"],
            [[k, v["median_ms"], v["min_ms"], v["max_ms"]] for k, v in results.items()]
            + [[f"(info) {k}", v["median_ms"], None, None] for k, v in info.items()],
        )
    )
    for label, rows in imports.items():
        say(
            f"slowest top-level imports of `{label}` (-X importtime, cumulative ms): "
            + ", ".join(f"{r['module']} {r['cumulative_ms']:.0f}" for r in rows)
        )
    say(f"worst {worst:.0f} ms (target < {TARGET_MS:.0f} ms: {'met' if summary['target_met'] else 'MISSED'})")
    return summary


if __name__ == "__main__":
    main(sys.argv[1:])
