"""Framework overhead: the time per subtask spent in Shunter itself.

A zero-latency scripted model plays planner, workers and synthesis; the run goes through the
public API (`shunter.api.run`) with the real event log (JSONL) and, where marked, the SQLite run
store. Shunter's time = wall time - time spent inside the model's `complete`, so it covers plan
parsing and validation, the estimate, scheduling, context and prompt building, token counting,
usage accounting, logging and persistence. Target (issue 7): under 2 ms per subtask, growing
linearly (the per-subtask time at 1,000 subtasks no more than ~1.5x the one at 100).
"""

from __future__ import annotations

import asyncio
import cProfile
import pstats
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import (
    SHAPES,
    TimedModel,
    bench_context,
    close_context,
    median,
    plan_dict,
    random_dag,
    reps,
    say,
    table,
    worker_agents,
    worker_brain,
    write_result,
)

NAME = "overhead"
SIZES = (10, 100, 1000)
REPS = {10: 7, 100: 5, 1000: 3}
CONFIGS = [("random", True), ("random", False), ("chain", True), ("wide", True)]
"""(shape, with the run store). random: each subtask needs 0-3 of the 12 before it."""
TARGET_MS = 2.0


def edges_for(shape: str, n: int) -> dict[str, list[str]]:
    if shape == "random":
        return random_dag(n)
    if shape == "wide":
        return SHAPES["wide"](n - 1)
    return SHAPES[shape](n)


def _store_class():
    try:
        from runtime.store import Store
    except ImportError:
        return None
    return Store


async def one_run(edges: dict[str, list[str]], workspace: Path, with_store: bool) -> dict[str, float]:
    from runtime.testing import FunctionModel
    from shunter import api

    plan = plan_dict(edges)
    model = TimedModel(FunctionModel(worker_brain(plan)))
    ctx = bench_context(workspace, max_parallel=16)
    store_cls = _store_class()
    store = store_cls.open(workspace) if with_store and store_cls else None
    marks: dict[str, float] = {}

    async def on_planned(_planned) -> bool:
        marks["planned"], marks["model_at_plan"] = time.perf_counter(), model.seconds
        return True

    kw: dict[str, Any] = {"store": store} if store is not None else {}
    try:
        t0 = time.perf_counter()
        result = await api.run(
            "benchmark request", ctx=ctx, model=model, agents=worker_agents(), on_planned=on_planned, **kw
        )
        wall = time.perf_counter() - t0
    finally:
        close_context(ctx)
        if store is not None:
            store.close()
    if result.status != "succeeded":
        raise RuntimeError(f"{result.status}: {result.error}")
    n = len(edges)
    planning = (marks["planned"] - t0) - marks["model_at_plan"]
    total = wall - model.seconds
    return {
        "total_ms": total * 1000 / n,
        "planning_ms": planning * 1000 / n,
        "execution_ms": (total - planning) * 1000 / n,
    }


async def measure(shape: str, with_store: bool, n: int, n_reps: int) -> dict[str, Any]:
    """A fresh workspace per cell: the store then holds only this cell's earlier repetitions, so
    the history it reads (planner memory, calibration) is the same size in every cell."""
    edges = edges_for(shape, n)
    runs = []
    try:
        with tempfile.TemporaryDirectory(prefix="shunter-bench-") as tmp:
            for _ in range(n_reps):
                runs.append(await one_run(edges, Path(tmp), with_store))
    except Exception as e:  # noqa: BLE001 - a failing configuration is a finding to report, not a crash
        return {
            "shape": shape,
            "store": with_store,
            "subtasks": n,
            "error": f"{type(e).__name__}: {str(e)[:200]}",
        }
    return {
        "shape": shape,
        "store": with_store,
        "subtasks": n,
        "ms_per_subtask": round(median(r["total_ms"] for r in runs), 3),
        "planning_ms_per_subtask": round(median(r["planning_ms"] for r in runs), 3),
        "execution_ms_per_subtask": round(median(r["execution_ms"] for r in runs), 3),
        "repetitions": n_reps,
    }


def profile_top(ws: Path, n: int = 1000, top: int = 12) -> list[dict[str, Any]]:
    """Where the time goes in the biggest run (random, with the store), by own time."""
    prof = cProfile.Profile()
    prof.enable()
    asyncio.run(one_run(edges_for("random", n), ws, True))
    prof.disable()
    stats = pstats.Stats(prof)
    rows = sorted(stats.stats.items(), key=lambda kv: kv[1][2], reverse=True)[:top]  # type: ignore[attr-defined]
    out = []
    for (file, line, fn), (_cc, calls, tottime, cumtime, _callers) in rows:
        short = file.split("/site-packages/")[-1].replace(
            str(Path(__file__).resolve().parent.parent) + "/", ""
        )
        out.append(
            {
                "function": f"{short}:{line}({fn})",
                "calls": calls,
                "own_s": round(tottime, 4),
                "cumulative_s": round(cumtime, 4),
            }
        )
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    say(f"{NAME}: zero-latency model, ms of Shunter time per subtask (wall - time inside the model)")
    asyncio.run(measure("random", True, 10, 1))  # warm-up: imports, tokenizer, pydantic
    rows = []
    for shape, with_store in CONFIGS:
        for n in SIZES:
            row = asyncio.run(measure(shape, with_store, n, reps(REPS[n])))
            rows.append(row)
            say(
                f"  {NAME}: {shape:<6} store={'on ' if with_store else 'off'} N={n:<5} "
                + (f"{row['ms_per_subtask']:.3f} ms/subtask" if "error" not in row else row["error"])
            )
    with tempfile.TemporaryDirectory(prefix="shunter-bench-") as tmp:
        top = profile_top(Path(tmp))
    store_present = _store_class() is not None
    for shape, with_store in CONFIGS:
        per = {
            r["subtasks"]: r.get("ms_per_subtask")
            for r in rows
            if r["shape"] == shape and r["store"] == with_store
        }
        for r in rows:
            if (
                r["shape"] == shape
                and r["store"] == with_store
                and r["subtasks"] == 1000
                and per.get(100)
                and per.get(1000)
            ):
                r["growth_100_to_1000"] = round(per[1000] / per[100], 2)
    ok = [r for r in rows if "error" not in r]
    worst = max(r["ms_per_subtask"] for r in ok)
    growth = max(r.get("growth_100_to_1000", 0) for r in ok)
    summary = {
        "worst_ms_per_subtask": worst,
        "worst_growth_100_to_1000": growth,
        "target": f"< {TARGET_MS} ms per subtask, linear",
        "numbers_within_target": worst < TARGET_MS and growth <= 1.5,
        "target_met": worst < TARGET_MS and growth <= 1.5 and not any("error" in r for r in rows),
        "store_present": store_present,
        "failures": [f"{r['shape']} N={r['subtasks']}: {r['error']}" for r in rows if "error" in r],
    }
    write_result(
        NAME,
        {
            "repetitions": {str(k): reps(v) for k, v in REPS.items()},
            "rows": rows,
            "profile_top_own_time_random_1000_store": top,
            "summary": summary,
        },
    )
    say(
        table(
            [
                "shape",
                "store",
                "N",
                "ms/subtask",
                "planning ms/subtask",
                "execution ms/subtask",
                "growth 100->1000",
            ],
            [
                [
                    r["shape"],
                    "on" if r["store"] else "off",
                    r["subtasks"],
                    r.get("ms_per_subtask", r.get("error", "")[:40]),
                    r.get("planning_ms_per_subtask"),
                    r.get("execution_ms_per_subtask"),
                    r.get("growth_100_to_1000"),
                ]
                for r in rows
            ],
        )
    )
    say("top own time, random N=1000 with the store (cProfile):")
    say(
        table(
            ["function", "calls", "own s", "cumulative s"],
            [[t["function"], t["calls"], t["own_s"], t["cumulative_s"]] for t in top],
        )
    )
    say(
        f"worst {worst:.3f} ms/subtask, worst growth 100->1000 x{growth:.2f} (target < {TARGET_MS} ms, linear: "
        f"{'met' if summary['target_met'] else 'MISSED'})"
    )
    return summary


if __name__ == "__main__":
    main(sys.argv[1:])
