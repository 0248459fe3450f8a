"""Parallel efficiency: a run's makespan against the ideal for its plan shape.

Every model call (planner, each subtask, synthesis) takes the same scripted latency L, and each
subtask is exactly one call (the scripted worker answers at once, no tools). So the ideal
makespan of a whole run, with unlimited parallelism and zero overhead, is

    ideal = (1 planner call + CP + 1 synthesis call) x L

where CP is the number of subtasks on the longest dependency chain. With --max-parallel p, no
schedule can beat the capped bound (2 + max(CP, ceil(N / p))) x L, shown alongside. The target
(issue 7) is makespan <= 1.10 x ideal when parallelism is not capped.

"floor" is the same DAG driven by ten lines of bare asyncio (one task per subtask awaiting its
dependencies, then one model call) through the same transport: what any orchestrator pays for the
transport itself (asyncio timers in-process; the openai SDK, HTTP and the server over HTTP).

Measured in-process (FunctionModel, asyncio.sleep latency) for every shape and cap, and through
the local OpenAI-compatible HTTP server in its own process (real openai SDK, streaming) for two
shapes.
"""

from __future__ import annotations

import asyncio
import math
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.common import (
    SHAPES,
    Edges,
    critical_path,
    max_width,
    median,
    plan_dict,
    reps,
    say,
    shunter_run,
    table,
    worker_brain,
    write_result,
)

NAME = "parallel"
LATENCY_S = 0.05
CAPS: tuple[int | None, ...] = (1, 4, 16, None)
"""None: max_parallel = number of subtasks, i.e. not capped."""
HTTP_CELLS: list[tuple[str, int | None]] = [("wide", 4), ("wide", None), ("random50", 16), ("random50", None)]
SLOW_LATENCY_S = 0.25
"""One HTTP cell again at a latency closer to a real model's, to show what the fixed costs come to."""
SLOW_CELLS: list[tuple[str, int | None]] = [("wide", None)]
REPS = 3


def _cap_value(cap: int | None, n: int) -> int:
    return n if cap is None else cap


def _bounds(edges: Edges, cap: int | None, latency: float) -> tuple[float, float]:
    n, cp = len(edges), critical_path(edges)
    p = _cap_value(cap, n)
    return (cp + 2) * latency, (max(cp, math.ceil(n / p)) + 2) * latency


async def floor_run(edges: Edges, model: Any, cap: int, system_prompt: str) -> float:
    """The same DAG with no framework: planner call, one task per subtask, synthesis call."""
    import time

    from runtime.model import ModelRequest

    def request(system: str, user: str, stream: bool = True) -> ModelRequest:
        return ModelRequest(
            messages=[{"role": "system", "content": system}, {"role": "user", "content": user}], stream=stream
        )

    gate = asyncio.Semaphore(cap)
    tasks: dict[str, asyncio.Task[None]] = {}

    async def node(sid: str, deps: list[str]) -> None:
        await asyncio.gather(*(tasks[d] for d in deps))
        async with gate:
            await model.complete(request(system_prompt, f"Your subtask:\ndo {sid}"))

    t0 = time.perf_counter()
    await model.complete(request("You are the planner of a benchmark.", "benchmark request", stream=False))
    for sid, deps in edges.items():
        tasks[sid] = asyncio.create_task(node(sid, deps))
    await asyncio.gather(*tasks.values())
    await model.complete(request("You write the final answer of a benchmark.", "results"))
    return time.perf_counter() - t0


def _worker_system_prompt(workspace: Path) -> str:
    from agents.loop import first_messages
    from benchmarks.common import bench_context, close_context, worker_agents

    ctx = bench_context(workspace)
    try:
        return first_messages(worker_agents().get("worker"), ctx, [], "do t1", [])[0]["content"]
    finally:
        close_context(ctx)


async def _measure(
    model_for, edges: Edges, cap: int | None, ws: Path, n_reps: int, floor_prompt: str | None
) -> dict[str, Any]:
    plan = plan_dict(edges)
    p = _cap_value(cap, len(edges))
    times, floors, calls = [], [], 0
    for _ in range(n_reps):
        seconds, result = await shunter_run(plan, model_for(plan), ws, max_parallel=p)
        times.append(seconds)
        calls = result.usage["requests"]
        if floor_prompt is not None:
            floors.append(await floor_run(edges, model_for(plan), p, floor_prompt))
    return {"seconds": median(times), "floor": median(floors) if floors else None, "calls": calls}


async def run(n_reps: int) -> list[dict[str, Any]]:
    from runtime.testing import FunctionModel

    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="shunter-bench-") as tmp:
        ws = Path(tmp)
        prompt = _worker_system_prompt(ws)

        def in_process(plan):
            return FunctionModel(worker_brain(plan, delay=lambda _s: LATENCY_S, other_s=LATENCY_S))

        await _measure(in_process, SHAPES["diamond"](), None, ws, 1, prompt)  # warm-up, discarded
        for shape, make in SHAPES.items():
            edges = make()
            for cap in CAPS:
                m = await _measure(in_process, edges, cap, ws, n_reps, prompt if cap is None else None)
                rows.append(_row("in-process", shape, edges, cap, m, LATENCY_S))
                say(
                    f"  {NAME}: in-process {shape:<9} max_parallel={_cap_value(cap, len(edges))}: {m['seconds']:.3f} s"
                )
        rows += await _http_rows(ws, n_reps, prompt, LATENCY_S, HTTP_CELLS)
        rows += await _http_rows(ws, n_reps, prompt, SLOW_LATENCY_S, SLOW_CELLS)
    return rows


async def _http_rows(ws: Path, n_reps: int, prompt: str, latency: float, cells) -> list[dict[str, Any]]:
    from benchmarks.scripted_server import ScriptedServer
    from runtime.client import OpenAIModel

    rows = []
    with ScriptedServer(ws / "plan.json", latency=latency) as server:
        model = OpenAIModel("scripted", base_url=server.base_url, api_key="x")

        def over_http(plan):
            server.plan(plan)
            return model

        try:
            await _measure(
                over_http, SHAPES["diamond"](), None, ws, 1, prompt
            )  # warm-up: connections, tokenizer
            for shape, cap in cells:
                edges = SHAPES[shape]()
                m = await _measure(over_http, edges, cap, ws, n_reps, prompt)
                rows.append(_row("http", shape, edges, cap, m, latency))
                say(
                    f"  {NAME}: http       {shape:<9} max_parallel={_cap_value(cap, len(edges))}: {m['seconds']:.3f} s"
                )
        finally:
            await model.close()
    return rows


def _row(
    transport: str, shape: str, edges: Edges, cap: int | None, m: dict[str, Any], latency: float
) -> dict[str, Any]:
    ideal, capped = _bounds(edges, cap, latency)
    seconds, floor = m["seconds"], m["floor"]
    return {
        "transport": transport,
        "latency_ms": round(latency * 1000),
        "shape": shape,
        "subtasks": len(edges),
        "critical_path": int(critical_path(edges)),
        "widest_wave": max_width(edges),
        "max_parallel": _cap_value(cap, len(edges)),
        "capped": cap is not None and cap < max_width(edges),
        "model_calls": m["calls"],
        "makespan_s": round(seconds, 4),
        "ideal_s": round(ideal, 4),
        "capped_bound_s": round(capped, 4),
        "ratio_to_ideal": round(seconds / ideal, 3),
        "ratio_to_capped_bound": round(seconds / capped, 3),
        "excess_ms": round((seconds - capped) * 1000, 1),
        "floor_s": None if floor is None else round(floor, 4),
        "floor_ratio_to_ideal": None if floor is None else round(floor / ideal, 3),
        "shunter_over_floor_ms": None if floor is None else round((seconds - floor) * 1000, 1),
        "shunter_over_floor_ms_per_call": None
        if floor is None
        else round((seconds - floor) * 1000 / m["calls"], 2),
    }


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    def worst(transport: str) -> float:
        return max(
            r["ratio_to_ideal"]
            for r in rows
            if r["transport"] == transport and not r["capped"] and r["latency_ms"] == 50
        )

    def floors(transport: str, key: str) -> list[float]:
        return [
            r[key]
            for r in rows
            if r["transport"] == transport and r["floor_s"] and r["latency_ms"] == 50 and not r["capped"]
        ]

    return {
        "worst_uncapped_ratio_in_process": worst("in-process"),
        "worst_uncapped_floor_ratio_in_process": max(floors("in-process", "floor_ratio_to_ideal")),
        "shunter_ms_per_call_over_floor_in_process": floors("in-process", "shunter_over_floor_ms_per_call"),
        "shunter_ms_per_call_over_floor_http": floors("http", "shunter_over_floor_ms_per_call"),
        "worst_uncapped_ratio_http": worst("http"),
        "worst_uncapped_floor_ratio_http": max(floors("http", "floor_ratio_to_ideal")),
        "http_at_250ms": [r["ratio_to_ideal"] for r in rows if r["latency_ms"] == 250],
        "target": "makespan <= 1.10 x ideal when parallelism is not capped",
        "target_met_in_process": worst("in-process") <= 1.10,
        "target_met_http": worst("http") <= 1.10,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    n_reps = reps(REPS)
    say(
        f"{NAME}: per-call latency {LATENCY_S * 1000:.0f} ms (one cell at {SLOW_LATENCY_S * 1000:.0f} ms), median of {n_reps} runs"
    )
    rows = asyncio.run(run(n_reps))
    summary = summarise(rows)
    write_result(
        NAME,
        {
            "latency_s": LATENCY_S,
            "slow_latency_s": SLOW_LATENCY_S,
            "repetitions": n_reps,
            "ideal_definition": "(1 planner call + critical-path subtasks + 1 synthesis call) x latency; "
            "capped bound: (2 + max(CP, ceil(N / max_parallel))) x latency; each subtask is one model call",
            "floor_definition": "the same DAG run by bare asyncio tasks (one model call per subtask) over the same transport",
            "rows": rows,
            "summary": summary,
        },
    )
    say(
        table(
            [
                "transport",
                "latency ms",
                "shape",
                "N",
                "CP",
                "max_parallel",
                "calls",
                "makespan s",
                "ideal s",
                "x ideal",
                "x capped bound",
                "floor x ideal",
                "Shunter over floor ms",
            ],
            [
                [
                    r["transport"],
                    r["latency_ms"],
                    r["shape"],
                    r["subtasks"],
                    r["critical_path"],
                    r["max_parallel"],
                    r["model_calls"],
                    r["makespan_s"],
                    r["ideal_s"],
                    r["ratio_to_ideal"],
                    r["ratio_to_capped_bound"],
                    r["floor_ratio_to_ideal"],
                    r["shunter_over_floor_ms"],
                ]
                for r in rows
            ],
        )
    )
    for transport in ("in_process", "http"):
        ratio = summary[f"worst_uncapped_ratio_{transport}"]
        say(
            f"worst x ideal where not capped ({transport}, 50 ms): {ratio:.3f} (target <= 1.10: "
            f"{'met' if ratio <= 1.10 else 'MISSED'})"
        )
    return summary


if __name__ == "__main__":
    main(sys.argv[1:])
