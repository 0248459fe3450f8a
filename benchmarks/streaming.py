"""Streamed planning: how early work starts while the plan is still arriving, and the makespan
against the streamed ideal, next to the same run with the plan waited for (non-streamed).

Through the local OpenAI-compatible server with the real openai SDK: the planner's answer is
streamed *paced*, spread evenly over STREAM_S (a 1 s plan, as a real model writes ~800 tokens in
8-15 s), and every subtask and the synthesis is one model call of L seconds.

- first start fraction = (first subtask start - planner's first byte) / stream time; target <= 0.25.
- streamed ideal: subtask s's line of the plan is complete at T(s) (the share of the plan's text
  up to where the next subtask begins, times the stream time, after the first byte); it finishes
  at best at EF(s) = max(T(s), EF of its dependencies) + L; ideal = first byte + max EF + L
  (synthesis). Target: makespan <= 1.10 x that ideal.
- non-streamed ideal = first byte + stream time + CP x L + L.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import (
    PLANNER_PREFIX,
    Edges,
    bench_context,
    close_context,
    median,
    reps,
    say,
    subtask_id_of,
    table,
    worker_agents,
    write_result,
)

NAME = "streaming"
STREAM_S = 1.0
LATENCY_S = 0.25
REPS = 3


def shapes() -> dict[str, Edges]:
    wide = {f"t{i}": [] for i in range(1, 9)}
    fan = {
        "t1": [],
        "t2": [],
        "t3": ["t1"],
        "t4": ["t2"],
        "t5": [],
        "t6": ["t3", "t4"],
        "t7": ["t5"],
        "t8": [],
    }
    return {"wide 8": wide, "mixed 8": fan}


def plan_text(edges: Edges) -> str:
    subtasks = [
        {
            "id": s,
            "agent": "worker",
            "instruction": f"do {s}",
            "depends_on": d,
            "read_only": True,
            "call": None,
        }
        for s, d in edges.items()
    ]
    return json.dumps({"goal": "benchmark", "subtasks": subtasks, "answer": None})


def line_fractions(text: str, edges: Edges) -> dict[str, float]:
    """For each subtask, the share of the plan's text written when it is complete (the next
    subtask has begun, or for the last one, the key after the array)."""
    ids = list(edges)
    starts = [text.index(f'{{"id": "{s}"') for s in ids]
    ends = [*starts[1:], text.index('"answer"') + len('"answer": null')]
    return {s: min(e / len(text), 1.0) for s, e in zip(ids, ends, strict=True)}


def streamed_ideal(edges: Edges, fractions: dict[str, float]) -> float:
    ef: dict[str, float] = {}
    for s, deps in edges.items():
        ef[s] = max([fractions[s] * STREAM_S, *(ef[d] for d in deps)]) + LATENCY_S
    return max(ef.values()) + LATENCY_S


def critical_path(edges: Edges) -> int:
    depth: dict[str, int] = {}
    for s, deps in edges.items():
        depth[s] = 1 + max((depth[d] for d in deps), default=0)
    return max(depth.values())


async def one_run(server: Any, edges: Edges, streamed: bool) -> dict[str, float]:
    from router.planned import stream_plan_and_execute
    from router.run import execute, plan_request
    from runtime.client import OpenAIModel
    from runtime.testserver import Paced, Slow, Text
    from shunter.wiring import SingleModel

    text = plan_text(edges)

    def handler(body: dict[str, Any]):
        system = body["messages"][0]["content"]
        if system.startswith(PLANNER_PREFIX):
            return Paced(STREAM_S, Text(text)) if body.get("stream") else Slow(STREAM_S, Text(text))
        if "do t" in json.dumps(body["messages"][1:2]):
            return Slow(LATENCY_S, Text(f"result of {subtask_id_of(body['messages'])}"))
        return Slow(LATENCY_S, Text("done"))

    server.handler = handler
    with tempfile.TemporaryDirectory() as tmp:
        ctx = bench_context(Path(tmp), max_parallel=8)
        model = OpenAIModel("gpt-4.1-mini", base_url=server.base_url, api_key="bench")
        models, agents = SingleModel(model), worker_agents()
        try:
            t0 = time.time()
            if streamed:
                result = await stream_plan_and_execute("benchmark", ctx, agents, models)
            else:
                result = await execute(
                    await plan_request("benchmark", ctx, agents, models), ctx, agents, models
                )
            makespan = time.time() - t0
            events = [
                json.loads(x) for x in (Path(tmp) / ".shunter/logs/events.jsonl").read_text().splitlines()
            ]
        finally:
            await model.close()
            close_context(ctx)
    if result.status != "succeeded":
        raise RuntimeError(f"benchmark run {result.status}: {result.error}")
    planner_request = next(e["ts"] for e in events if e["event"] == "model.request")
    first_start = min(e["ts"] for e in events if e["event"] == "subtask.started")
    ready = next(e["ts"] for e in events if e["event"] == "plan.ready")
    streaming = [e["ts"] for e in events if e["event"] == "plan.streaming"]
    # The first byte: seen on the stream, or (not streamed) the server's pacing ends at plan.ready.
    first_byte = streaming[0] if streaming else ready - STREAM_S
    return {
        "makespan_s": makespan,
        "first_byte_s": first_byte - t0,
        "stream_s": ready - first_byte,
        "first_start_after_first_byte_s": first_start - first_byte,
        "planner_request_s": planner_request - t0,
    }


async def run(n_reps: int) -> list[dict[str, Any]]:
    from runtime.testserver import TestServer

    rows = []
    with TestServer() as server:
        server.stream_piece_chars = 16
        for shape, edges in shapes().items():
            fractions = line_fractions(plan_text(edges), edges)
            for streamed in (True, False):
                runs = [await one_run(server, edges, streamed) for _ in range(n_reps)]
                m = {k: median(r[k] for r in runs) for k in runs[0]}
                if streamed:
                    ideal = m["first_byte_s"] + streamed_ideal(edges, fractions)
                else:
                    ideal = m["first_byte_s"] + STREAM_S + (critical_path(edges) + 1) * LATENCY_S
                rows.append(
                    {
                        "shape": shape,
                        "planning": "streamed" if streamed else "whole plan first",
                        "makespan_s": round(m["makespan_s"], 3),
                        "ideal_s": round(ideal, 3),
                        "ratio_to_ideal": round(m["makespan_s"] / ideal, 3),
                        "first_start_fraction_of_stream": round(
                            m["first_start_after_first_byte_s"] / STREAM_S, 3
                        ),
                        "first_byte_s": round(m["first_byte_s"], 3),
                    }
                )
    return rows


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    streamed = [r for r in rows if r["planning"] == "streamed"]
    whole = {r["shape"]: r for r in rows if r["planning"] != "streamed"}
    worst_frac = max(r["first_start_fraction_of_stream"] for r in streamed)
    worst_ratio = max(r["ratio_to_ideal"] for r in streamed)
    return {
        "worst_first_start_fraction": worst_frac,
        "worst_ratio_to_streamed_ideal": worst_ratio,
        "speedup_vs_whole_plan": {
            r["shape"]: round(whole[r["shape"]]["makespan_s"] / r["makespan_s"], 3) for r in streamed
        },
        "target_met": worst_frac <= 0.25 and worst_ratio <= 1.10,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    n_reps = reps(REPS)
    say(f"{NAME}: plan streamed over {STREAM_S:g} s, {LATENCY_S * 1000:.0f} ms per call, median of {n_reps}")
    rows = asyncio.run(run(n_reps))
    summary = summarise(rows)
    write_result(NAME, {"stream_s": STREAM_S, "latency_s": LATENCY_S, "rows": rows, "summary": summary})
    say(
        table(
            ["shape", "planning", "makespan s", "ideal s", "x ideal", "first start / stream"],
            [
                [
                    r["shape"],
                    r["planning"],
                    r["makespan_s"],
                    r["ideal_s"],
                    r["ratio_to_ideal"],
                    r["first_start_fraction_of_stream"],
                ]
                for r in rows
            ],
        )
    )
    say(
        f"first subtask start: worst {summary['worst_first_start_fraction']:.3f} of the stream (target <= 0.25); "
        f"makespan worst {summary['worst_ratio_to_streamed_ideal']:.3f} x streamed ideal (target <= 1.10); "
        f"speed-up over waiting for the whole plan: {summary['speedup_vs_whole_plan']}"
    )
    return summary


if __name__ == "__main__":
    main(sys.argv[1:])
