"""Compiled plans against agent-only plans on the parallel benchmark's wide shape (issue 11).

The wide shape is 16 independent subtasks and one join. Agent-only, each is a specialist call
(the parallel benchmark's scripted worker, one model call per subtask), so the critical path is
4 model calls: planner, a subtask, the join, the synthesis. Compiled, the planner writes the 16
read_file calls and a write_file call that joins their results through `{{ID}}` references and
is the answer: one model call (the planner), then the tools alone. So the ideal is

    ideal = 1 planner call x L + one round of the same tool calls with no framework

the tool round measured in the same run by awaiting the same calls directly (16 reads
concurrently, then the write) through `aexecute_tool`. Everything real: files, tools, event log.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import (
    bench_context,
    close_context,
    median,
    plan_dict,
    reps,
    say,
    shunter_run,
    table,
    wide,
    worker_brain,
    write_result,
)

NAME = "compiled"
LATENCIES_S = (0.05, 0.25)
N = 16
REPS = 5


def _workspace(root: Path) -> None:
    (root / "src").mkdir()
    for i in range(1, N + 1):
        body = "".join(f"def f{i}_{k}(x):\n    return x * {k}\n\n" for k in range(12))
        (root / "src" / f"mod{i}.py").write_text(f'"""Module {i}."""\n\n{body}')


def compiled_plan() -> dict[str, Any]:
    reads = [
        {
            "id": f"t{i}",
            "agent": "file",
            "instruction": f"Read src/mod{i}.py.",
            "depends_on": [],
            "read_only": True,
            "call": {"tool": "read_file", "arguments": {"path": f"src/mod{i}.py"}},
        }
        for i in range(1, N + 1)
    ]
    join = {
        "id": f"t{N + 1}",
        "agent": "file",
        "instruction": "Write ALL.md with every module's text.",
        "depends_on": [r["id"] for r in reads],
        "read_only": False,
        "call": {
            "tool": "write_file",
            "arguments": {"path": "ALL.md", "content": "\n".join(f"{{{{{r['id']}}}}}" for r in reads)},
        },
    }
    return {"goal": "Collect every module into ALL.md.", "subtasks": [*reads, join], "answer": join["id"]}


async def _tool_round(ws: Path) -> float:
    """The same calls with no planner, scheduler or records: the floor of the tool round."""
    from tools.registry import aexecute_tool

    ctx = bench_context(ws, tools=None)
    try:
        t0 = time.perf_counter()
        texts = await asyncio.gather(
            *(
                aexecute_tool("read_file", {"path": f"src/mod{i}.py"}, ctx.for_subtask(f"t{i}", "file"))
                for i in range(1, N + 1)
            )
        )
        await aexecute_tool(
            "write_file", {"path": "ALL.md", "content": "\n".join(texts)}, ctx.for_subtask("j", "file")
        )
        return time.perf_counter() - t0
    finally:
        close_context(ctx)


async def _compiled_once(latency: float) -> tuple[float, float, int]:
    from agents.registry import default_agents
    from runtime.testing import FunctionModel, text

    plan = compiled_plan()
    import json

    plan_json = json.dumps(plan)
    with tempfile.TemporaryDirectory(prefix="shunter-bench-") as tmp:
        ws = Path(tmp)
        _workspace(ws)
        floor = await _tool_round(ws)
        (ws / "ALL.md").unlink()
        model = FunctionModel(lambda _r: text(plan_json), latency_s=latency)
        seconds, result = await shunter_run(
            plan, model, ws, max_parallel=N + 1, agents=default_agents(), tools=None, request="collect"
        )
        if result.status != "succeeded" or not (ws / "ALL.md").exists():
            raise RuntimeError(f"the compiled run failed: {result.error}")
        return seconds, floor, result.usage["requests"]


async def _agents_once(latency: float) -> tuple[float, int]:
    edges = wide(N)
    plan = plan_dict(edges)
    with tempfile.TemporaryDirectory(prefix="shunter-bench-") as tmp:
        model = __import__("runtime.testing", fromlist=["FunctionModel"]).FunctionModel(
            worker_brain(plan), latency_s=latency
        )
        seconds, result = await shunter_run(plan, model, Path(tmp), max_parallel=N + 1)
        return seconds, result.usage["requests"]


async def run() -> list[dict[str, Any]]:
    from runtime.tokens import count_text

    count_text("warm up")
    await _compiled_once(0.0)  # tool registry, tokenizer, policy parser: loaded before timing
    rows = []
    for latency in LATENCIES_S:
        comp = [await _compiled_once(latency) for _ in range(reps(REPS))]
        agent = [await _agents_once(latency) for _ in range(reps(REPS))]
        makespan, floor = median(c[0] for c in comp), median(c[1] for c in comp)
        ideal = latency + floor
        agent_makespan = median(a[0] for a in agent)
        rows.append(
            {
                "latency_s": latency,
                "compiled_s": round(makespan, 4),
                "tool_round_s": round(floor, 4),
                "ideal_s": round(ideal, 4),
                "compiled_over_ideal": round(makespan / ideal, 3),
                "compiled_requests": comp[0][2],
                "agent_only_s": round(agent_makespan, 4),
                "agent_only_ideal_s": round(4 * latency, 4),
                "agent_only_requests": agent[0][1],
                "compiled_over_agent_only": round(makespan / agent_makespan, 3),
            }
        )
        r = rows[-1]
        say(
            f"  {NAME}: L={latency * 1000:.0f} ms compiled {r['compiled_s']:.3f} s (ideal {r['ideal_s']:.3f}, "
            f"x{r['compiled_over_ideal']}), agent-only {r['agent_only_s']:.3f} s"
        )
    return rows


def main(argv: list[str] | None = None) -> dict[str, Any]:
    say(f"{NAME}: the wide plan ({N} reads + a join), compiled vs agent-only, real tools")
    rows = asyncio.run(run())
    summary = {
        "worst_compiled_over_ideal": max(r["compiled_over_ideal"] for r in rows),
        "rows": rows,
    }
    write_result(NAME, {"repetitions": reps(REPS), "rows": rows, "summary": summary})
    say(
        table(
            [
                "ms/call",
                "compiled s",
                "ideal s",
                "x ideal",
                "requests",
                "agent-only s",
                "requests",
                "compiled / agent-only",
            ],
            [
                [
                    int(r["latency_s"] * 1000),
                    r["compiled_s"],
                    r["ideal_s"],
                    r["compiled_over_ideal"],
                    r["compiled_requests"],
                    r["agent_only_s"],
                    r["agent_only_requests"],
                    r["compiled_over_agent_only"],
                ]
                for r in rows
            ],
        )
    )
    return summary


if __name__ == "__main__":
    main(sys.argv[1:])
