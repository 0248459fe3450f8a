"""Token efficiency: Shunter (planner + parallel specialists + synthesis) against one agent that
holds every tool (the single ReAct-style loop the LLMCompiler paper compares with).

Scenario (benchmarks/scenarios.py, `review`): read three modules, count their lines with `wc -l`,
write REVIEW.md from all four results. Both sides are scripted to make the same tool calls with
the same texts, over the same files, with the real tools; tokens are counted by the usage tracker
with the real tokenizer (o200k), tool schemas included.

- Shunter: 1 planner call; t1-t3 (file, read-only) and t4 (shell) in parallel, each a tool call
  then a summary; t5 (file) writes REVIEW.md from the quoted results; 1 synthesis call.
- ReAct, sequential: one agent, all seven file and shell tools, one tool call per turn, its whole
  history resent each turn, then the answer.
- ReAct, batched: the same agent, but independent calls in one turn (parallel tool calls).
- Shunter compiled: the plan a planner writes when it may emit tool calls itself (issue 11): the
  three reads and the count are calls run with no model, a writer (no tools) composes REVIEW.md
  from their results in one request, a call writes it and is the answer (no synthesis).

Run at two sizes: small files (~45 lines each) and large ones (~330 lines each), since Shunter's
fixed cost (a planner call, a system prompt per specialist, the synthesis) and the single agent's
growing context pull in opposite directions. Wall time is at a scripted 100 ms per model call.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.common import bench_context, close_context, say, shunter_run, table, write_result
from benchmarks.scenarios import (
    REACT_DESCRIPTION,
    REACT_TOOLS,
    Scenario,
    compiled_review_scenario,
    react_brain,
    react_turns,
    review_scenario,
    shunter_brain,
)

NAME = "tokens"
LATENCY_S = 0.1
SIZES = {"small": 4, "large": 30}
"""Functions per module: ~45 and ~330 lines per file."""


async def run_shunter(sc: Scenario, who: str = "Shunter", model: Any = None) -> dict[str, Any]:
    from agents.registry import default_agents
    from runtime.testing import FunctionModel

    with tempfile.TemporaryDirectory(prefix="shunter-bench-") as tmp:
        ws = Path(tmp)
        sc.make_workspace(ws)
        model = model or FunctionModel(shunter_brain(sc), latency_s=LATENCY_S)
        seconds, result = await shunter_run(
            sc.plan(), model, ws, max_parallel=4, agents=default_agents(), tools=None, request=sc.request
        )
        review = (ws / "REVIEW.md").read_text()
    failed = [f"{s.id}: {s.error}" for s in result.subtasks if s.status != "succeeded"]
    return _row(who, result.usage, seconds, review, failed)


async def run_react(sc: Scenario, batched: bool, model: Any = None) -> dict[str, Any]:
    import time

    from agents.base import Agent
    from agents.loop import run_agent
    from runtime.testing import FunctionModel

    agent = Agent(name="assistant", description=REACT_DESCRIPTION, tools=REACT_TOOLS, max_iterations=30)
    with tempfile.TemporaryDirectory(prefix="shunter-bench-") as tmp:
        ws = Path(tmp)
        sc.make_workspace(ws)
        ctx = bench_context(ws, tools=None)
        model = model or FunctionModel(react_brain(react_turns(sc, batched)), latency_s=LATENCY_S)
        try:
            t0 = time.perf_counter()
            res = await run_agent(agent, sc.request, ctx.for_subtask("task", agent.name), model)
            seconds = time.perf_counter() - t0
        finally:
            close_context(ctx)
        review = (ws / "REVIEW.md").read_text() if (ws / "REVIEW.md").exists() else ""
    failed = [] if res.status == "succeeded" else [f"{res.status}: {res.error}"]
    return _row(
        "ReAct batched" if batched else "ReAct sequential",
        ctx.usage.snapshot()["total"],
        seconds,
        review,
        failed,
    )


def _row(who: str, usage: dict[str, Any], seconds: float, review: str, failed: list[str]) -> dict[str, Any]:
    return {
        "system": who,
        "input_tokens": usage["input_tokens"],
        "output_tokens": usage["output_tokens"],
        "requests": usage["requests"],
        "tool_calls": usage["tool_calls"],
        "cost_usd": usage["cost_usd"],
        "wall_s": round(seconds, 3),
        "review_bytes": len(review.encode()),
        "failures": failed,
    }


async def run() -> list[dict[str, Any]]:
    from runtime.tokens import count_text

    count_text("warm up")  # loads the tokenizer (~0.5 s) before anything is timed
    await run_shunter(review_scenario(2, "warm-up"))  # and the tool registry, policy parser, sandbox probe
    rows = []
    for size, functions in SIZES.items():
        sc = review_scenario(functions, f"review-{size}")
        lines = sum(c.count("\n") for p, c in sc.files.items() if p.endswith(".py"))
        compiled = compiled_review_scenario(functions, f"review-{size}-compiled")
        for who in (
            run_shunter(sc),
            run_shunter(compiled, "Shunter compiled"),
            run_react(sc, False),
            run_react(sc, True),
        ):
            row = {"scenario": size, "python_lines": lines, **(await who)}
            rows.append(row)
            say(
                f"  {NAME}: {size:<5} {row['system']:<17} in {row['input_tokens']:>6} out {row['output_tokens']:>5} "
                f"requests {row['requests']:>2} wall {row['wall_s']:.2f} s"
            )
    return rows


async def run_apis() -> list[dict[str, Any]]:
    """The small scenario again, over HTTP to the local server, once per API: everything above
    the model is the same code, so tokens and requests must match; wall time shows each API's
    cost in the SDK and on the wire."""
    from benchmarks.http_brain import serve
    from runtime.client import OpenAIModel
    from runtime.testserver import TestServer

    sc = review_scenario(SIZES["small"], "review-small")
    compiled = compiled_review_scenario(SIZES["small"], "review-small-compiled")
    rows = []
    for api in ("chat", "responses"):
        with TestServer() as server:
            server.latency_s = LATENCY_S
            runs = (
                ("Shunter", shunter_brain(sc), lambda m: run_shunter(sc, "Shunter", m)),
                (
                    "Shunter compiled",
                    shunter_brain(compiled),
                    lambda m: run_shunter(compiled, "Shunter compiled", m),
                ),
                ("ReAct sequential", react_brain(react_turns(sc, False)), lambda m: run_react(sc, False, m)),
            )
            for _who, brain, go in runs:
                server.handler = serve(brain)
                model = OpenAIModel("scripted", base_url=server.base_url, api=api)
                try:
                    row = {"scenario": "small", "api": api, **(await go(model))}
                finally:
                    await model.close()
                rows.append(row)
                say(
                    f"  {NAME}: http {api:<9} {row['system']:<17} in {row['input_tokens']:>6} "
                    f"out {row['output_tokens']:>5} requests {row['requests']:>2} wall {row['wall_s']:.2f} s"
                )
    return rows


def api_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    by = {(r["api"], r["system"]): r for r in rows}
    out: dict[str, Any] = {}
    for who in sorted({r["system"] for r in rows}):
        chat, resp = by[("chat", who)], by[("responses", who)]
        out[who] = {
            "requests": [chat["requests"], resp["requests"]],
            "input_tokens": [chat["input_tokens"], resp["input_tokens"]],
            "output_tokens": [chat["output_tokens"], resp["output_tokens"]],
            "responses_wall_over_chat": round(resp["wall_s"] / chat["wall_s"], 3),
        }
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    say(
        f"{NAME}: scripted `review` scenario, real tools and tokenizer, {LATENCY_S * 1000:.0f} ms per model call"
    )
    rows = asyncio.run(run())
    api_rows = asyncio.run(run_apis())
    problems = [f"{r['scenario']} {r['system']}: {f}" for r in rows for f in r["failures"]]
    expected = sum(len(t) for s in review_scenario().steps for t in s.turns if not isinstance(t, str))
    problems += [
        f"{r['scenario']} {r['system']}: {r['tool_calls']} tool calls ran, the script makes {expected} "
        "(a tool was refused or not offered; see the warnings above)"
        for r in rows
        if r["tool_calls"] != expected
    ]
    problems += [f"http {r['api']} {r['system']}: {f}" for r in api_rows for f in r["failures"]]
    sizes = {r["review_bytes"] for r in rows + api_rows}
    if len(sizes) != 1:
        problems.append(f"the runs wrote different REVIEW.md files ({sorted(sizes)} bytes)")
    summary: dict[str, Any] = {"problems": problems, "apis": api_summary(api_rows)}
    for size in SIZES:
        by = {r["system"]: r for r in rows if r["scenario"] == size}
        sh, seq, bat, comp = (
            by["Shunter"],
            by["ReAct sequential"],
            by["ReAct batched"],
            by["Shunter compiled"],
        )
        summary[size] = {
            "shunter_input_over_react_sequential": round(sh["input_tokens"] / seq["input_tokens"], 3),
            "shunter_output_over_react_sequential": round(sh["output_tokens"] / seq["output_tokens"], 3),
            "shunter_wall_over_react_sequential": round(sh["wall_s"] / seq["wall_s"], 3),
            "compiled_requests": comp["requests"],
            "react_batched_requests": bat["requests"],
            "compiled_input_over_react_batched": round(comp["input_tokens"] / bat["input_tokens"], 3),
            "compiled_wall_over_react_batched": round(comp["wall_s"] / bat["wall_s"], 3),
        }
    write_result(
        NAME,
        {
            "latency_s": LATENCY_S,
            "repetitions": 1,
            "note": "deterministic: one run per cell",
            "rows": rows,
            "api_rows": api_rows,
            "summary": summary,
        },
    )
    say(
        table(
            [
                "files",
                "Python lines",
                "system",
                "input tokens",
                "output tokens",
                "requests",
                "tool calls",
                "cost USD",
                "wall s",
            ],
            [
                [
                    r["scenario"],
                    r["python_lines"],
                    r["system"],
                    r["input_tokens"],
                    r["output_tokens"],
                    r["requests"],
                    r["tool_calls"],
                    f"{r['cost_usd']:.5f}" if r["cost_usd"] is not None else None,
                    r["wall_s"],
                ]
                for r in rows
            ],
        )
    )
    for size in SIZES:
        s = summary[size]
        say(
            f"{size}: Shunter / ReAct sequential: input x{s['shunter_input_over_react_sequential']}, "
            f"output x{s['shunter_output_over_react_sequential']}, wall x{s['shunter_wall_over_react_sequential']}"
        )
        say(
            f"{size}: Shunter compiled / ReAct batched: requests {s['compiled_requests']} vs "
            f"{s['react_batched_requests']}, input x{s['compiled_input_over_react_batched']}, "
            f"wall x{s['compiled_wall_over_react_batched']}"
        )
    for who, a in summary["apis"].items():
        say(
            f"http, chat / responses, {who}: requests {a['requests'][0]} / {a['requests'][1]}, input "
            f"{a['input_tokens'][0]:,} / {a['input_tokens'][1]:,}, output {a['output_tokens'][0]:,} / "
            f"{a['output_tokens'][1]:,}, wall responses / chat x{a['responses_wall_over_chat']}"
        )
    for p in problems:
        say(f"PROBLEM: {p}")
    return summary


if __name__ == "__main__":
    main(sys.argv[1:])
