"""Side by side with LangGraph: the same DAGs, the same per-node latency, both makespans.

LangGraph side: a StateGraph with one async node per subtask (sleep for the subtask's latency,
then write its result into a dict merged by a reducer), edges from START to the roots, a waiting
edge from all of a node's dependencies to it (`add_edge([deps...], node)`), and a synthesis node
after every sink that sleeps one latency. Shunter side: the same plan executed by the scheduler
(no planner call, since the LangGraph graph is written by hand), each subtask one scripted model
call with the same latency, then the synthesis call. Both uncapped (max_parallel = N; LangGraph's
default max_concurrency).

Two latency profiles: uniform (every call 50 ms) and jittered (each subtask 10-90 ms, fixed seed).
LangGraph runs in supersteps (Pregel/BSP): a step ends when its slowest node does, so with
jittered latencies a node can wait for unrelated nodes; Shunter starts a subtask the moment its
own dependencies finish. ideal = weighted critical path + one synthesis latency.

LangGraph is installed only with the `bench` extra (pip install -e '.[bench]'); without it the
benchmark says so and records only Shunter's side.
"""

from __future__ import annotations

import asyncio
import operator
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any, TypedDict

from benchmarks.common import (
    SHAPES,
    Edges,
    critical_path,
    median,
    plan_dict,
    reps,
    say,
    shunter_run,
    table,
    worker_brain,
    write_result,
)

NAME = "langgraph_compare"
LATENCY_S = 0.05
REPS = 3
PROFILES = ("uniform", "jittered")


def delay_for(profile: str, seed: int = 11):
    if profile == "uniform":
        return lambda _sid: LATENCY_S
    return lambda sid: random.Random(f"{seed}-{sid}").uniform(0.2 * LATENCY_S, 1.8 * LATENCY_S)


def langgraph_version() -> str | None:
    try:
        from importlib.metadata import version

        import langgraph  # noqa: F401
    except ImportError:
        return None
    return version("langgraph")


class _State(TypedDict):
    results: Annotated[dict[str, str], lambda a, b: {**a, **b}]
    answer: Annotated[str, operator.add]


def build_graph(edges: Edges, delay, synthesis_s: float):
    from langgraph.graph import END, START, StateGraph

    def node(sid: str):
        async def run(state: _State) -> dict[str, Any]:
            await asyncio.sleep(delay(sid))
            return {"results": {sid: f"result of {sid}"}}

        return run

    async def synthesis(state: _State) -> dict[str, Any]:
        await asyncio.sleep(synthesis_s)
        return {"answer": "done"}

    g = StateGraph(_State)
    for sid in edges:
        g.add_node(sid, node(sid))
    g.add_node("synthesis", synthesis)
    for sid, deps in edges.items():
        if not deps:
            g.add_edge(START, sid)
        elif len(deps) == 1:
            g.add_edge(deps[0], sid)
        else:
            g.add_edge(deps, sid)  # a waiting edge: runs once all of deps have finished
    needed = {d for deps in edges.values() for d in deps}
    sinks = [sid for sid in edges if sid not in needed]
    g.add_edge(sinks if len(sinks) > 1 else sinks[0], "synthesis")
    g.add_edge("synthesis", END)
    return g.compile()


async def langgraph_run(edges: Edges, delay) -> float:
    graph = build_graph(edges, delay, LATENCY_S)
    t0 = time.perf_counter()
    out = await graph.ainvoke({"results": {}, "answer": ""}, config={"recursion_limit": 10_000})
    seconds = time.perf_counter() - t0
    if len(out["results"]) != len(edges) or out["answer"] != "done":
        raise RuntimeError("the LangGraph run did not execute every node")
    return seconds


async def run(n_reps: int, with_langgraph: bool) -> list[dict[str, Any]]:
    from runtime.testing import FunctionModel

    rows = []
    with tempfile.TemporaryDirectory(prefix="shunter-bench-") as tmp:
        ws = Path(tmp)
        for profile in PROFILES:
            delay = delay_for(profile)
            for shape, make in SHAPES.items():
                edges = make()
                plan = plan_dict(edges)
                shunter_t, lg_t = [], []
                for i in range(n_reps + 1):  # the first of each pair is a warm-up, discarded
                    model = FunctionModel(worker_brain(plan, delay=delay, other_s=LATENCY_S))
                    s, _ = await shunter_run(plan, model, ws, max_parallel=len(edges), plan_it=False)
                    lg = await langgraph_run(edges, delay) if with_langgraph else None
                    if i:
                        shunter_t.append(s)
                        if lg is not None:
                            lg_t.append(lg)
                ideal = critical_path(edges, delay) + LATENCY_S
                sh, lgm = median(shunter_t), (median(lg_t) if lg_t else None)
                rows.append(
                    {
                        "profile": profile,
                        "shape": shape,
                        "subtasks": len(edges),
                        "ideal_s": round(ideal, 4),
                        "shunter_s": round(sh, 4),
                        "langgraph_s": None if lgm is None else round(lgm, 4),
                        "shunter_x_ideal": round(sh / ideal, 3),
                        "langgraph_x_ideal": None if lgm is None else round(lgm / ideal, 3),
                        "shunter_over_langgraph": None if lgm is None else round(sh / lgm, 3),
                    }
                )
                say(
                    f"  {NAME}: {profile:<8} {shape:<9} shunter {sh:.3f} s"
                    + (f", langgraph {lgm:.3f} s" if lgm is not None else "")
                )
    return rows


def main(argv: list[str] | None = None) -> dict[str, Any]:
    version = langgraph_version()
    n_reps = reps(REPS)
    if version is None:
        say(
            f"{NAME}: LangGraph is NOT INSTALLED; install the bench extra (pip install -e '.[bench]') to compare. "
            "Measuring Shunter's side only."
        )
    else:
        say(
            f"{NAME}: langgraph {version}, per-call latency {LATENCY_S * 1000:.0f} ms, median of {n_reps} runs"
        )
    rows = asyncio.run(run(n_reps, version is not None))
    ratios = [r["shunter_over_langgraph"] for r in rows if r["shunter_over_langgraph"] is not None]
    summary = {
        "langgraph_installed": version is not None,
        "langgraph_version": version,
        "median_shunter_over_langgraph": median(ratios) if ratios else None,
        "by_profile": {p: [r["shunter_over_langgraph"] for r in rows if r["profile"] == p] for p in PROFILES},
    }
    write_result(NAME, {"latency_s": LATENCY_S, "repetitions": n_reps, "rows": rows, "summary": summary})
    say(
        table(
            [
                "latency",
                "shape",
                "N",
                "ideal s",
                "Shunter s",
                "LangGraph s",
                "Shunter x ideal",
                "LangGraph x ideal",
                "Shunter / LangGraph",
            ],
            [
                [
                    r["profile"],
                    r["shape"],
                    r["subtasks"],
                    r["ideal_s"],
                    r["shunter_s"],
                    r["langgraph_s"],
                    r["shunter_x_ideal"],
                    r["langgraph_x_ideal"],
                    r["shunter_over_langgraph"],
                ]
                for r in rows
            ],
        )
    )
    if version is None:
        say("LangGraph not installed: no comparison was made.")
    return summary


if __name__ == "__main__":
    main(sys.argv[1:])
