"""What every benchmark shares: machine facts, medians, tables, result files, plan shapes, a
scripted brain and a run context that touches nothing outside a temp workspace."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"

PLANNER_PREFIX = "You are the planner"
SYNTHESIS_PREFIX = "You write the final answer"

Edges = dict[str, list[str]]
"""A plan shape: subtask id -> the ids it depends on, in plan order."""


# --- reporting ---------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    return {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        # Other work on the machine skews every timing: compare this with the core count.
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


def median(xs: Iterable[float]) -> float:
    return statistics.median(list(xs))


def results_dir() -> Path:
    """benchmarks/results; a quick smoke run writes to a temp folder so it never replaces the
    committed results."""
    if os.environ.get("SHUNTER_BENCH_QUICK"):
        import tempfile

        return Path(tempfile.gettempdir()) / "shunter-bench-quick"
    return RESULTS


def write_result(name: str, data: dict[str, Any]) -> Path:
    folder = results_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    path.write_text(json.dumps({"benchmark": name, "machine": machine(), **data}, indent=2) + "\n")
    say(f"wrote {path}")
    return path


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A GitHub-markdown table, so the same text goes to the terminal and the README."""
    cells = [[_fmt(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |"  # noqa: E731
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(headers), sep, *(line(r) for r in cells)])


def _fmt(c: Any) -> str:
    if c is None:
        return "–"
    if isinstance(c, float):
        return f"{c:.3f}" if abs(c) < 10 else f"{c:.1f}" if abs(c) < 1000 else f"{c:.0f}"
    return str(c)


def say(*parts: Any) -> None:
    print(*parts, flush=True)


def reps(default: int) -> int:
    """Repetitions per measurement; SHUNTER_BENCH_QUICK=1 makes every benchmark a one-shot smoke run."""
    return 1 if os.environ.get("SHUNTER_BENCH_QUICK") else default


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


# --- plan shapes -------------------------------------------------------------------------------


def wide(n: int = 16) -> Edges:
    """n independent subtasks and one join that depends on all of them."""
    edges: Edges = {f"t{i}": [] for i in range(1, n + 1)}
    edges[f"t{n + 1}"] = [f"t{i}" for i in range(1, n + 1)]
    return edges


def chain(n: int = 8) -> Edges:
    return {f"t{i}": ([f"t{i - 1}"] if i > 1 else []) for i in range(1, n + 1)}


def diamond(width: int = 4) -> Edges:
    """One root, `width` branches that each need it, one join of all the branches."""
    edges: Edges = {"t1": []}
    for i in range(2, width + 2):
        edges[f"t{i}"] = ["t1"]
    edges[f"t{width + 2}"] = [f"t{i}" for i in range(2, width + 2)]
    return edges


def random_dag(n: int = 50, seed: int = 7) -> Edges:
    """Each subtask depends on 0-3 of the 12 before it (fixed seed): many short branches."""
    rng = random.Random(seed)
    edges: Edges = {}
    for i in range(1, n + 1):
        window = [f"t{j}" for j in range(max(1, i - 12), i)]
        k = min(len(window), rng.choice([0, 0, 1, 1, 1, 2, 2, 3]))
        edges[f"t{i}"] = sorted(rng.sample(window, k), key=lambda s: int(s[1:]))
    return edges


SHAPES: dict[str, Callable[[], Edges]] = {
    "wide": wide,
    "chain": chain,
    "diamond": diamond,
    "random50": random_dag,
}


def critical_path(edges: Edges, weight: Callable[[str], float] = lambda _s: 1.0) -> float:
    """Longest path through the DAG, summing `weight` of each subtask on it (nodes, not edges)."""
    longest: dict[str, float] = {}
    for sid, deps in edges.items():  # plan order is topological for every shape above
        longest[sid] = weight(sid) + max((longest[d] for d in deps), default=0.0)
    return max(longest.values(), default=0.0)


def max_width(edges: Edges) -> int:
    """Subtasks in the widest wave (topological generation)."""
    level: dict[str, int] = {}
    for sid, deps in edges.items():
        level[sid] = 1 + max((level[d] for d in deps), default=0)
    counts: dict[int, int] = {}
    for lv in level.values():
        counts[lv] = counts.get(lv, 0) + 1
    return max(counts.values(), default=0)


def plan_dict(edges: Edges, agent: str = "worker", goal: str = "benchmark") -> dict[str, Any]:
    return {
        "goal": goal,
        "subtasks": [
            {"id": sid, "agent": agent, "instruction": f"do {sid}", "depends_on": deps, "read_only": True}
            for sid, deps in edges.items()
        ],
    }


# --- a Shunter run with a scripted model ------------------------------------------------------


def worker_agents():
    """One tool-less specialist: the benchmarks measure scheduling, not tools."""
    from agents.base import Agent
    from agents.registry import AgentRegistry

    return AgentRegistry([Agent(name="worker", description="Does one scripted step of a benchmark plan.")])


def bench_context(
    workspace: Path, *, model_name: str = "scripted", max_parallel: int = 4, tools: Any = "none", **kw: Any
):
    """A RunContext over `workspace` with the real event log, side effects approved and no
    sandbox probe. tools="none" gives an empty tool registry (tool-less agents); None means the
    default registry."""
    from runtime.config import Settings
    from runtime.context import RunContext, approve_all
    from tools.registry import ToolRegistry

    settings = Settings.model_validate(
        {
            "model": {"name": model_name, "api_key": "unused"},
            "max_parallel": max_parallel,
            "planner": {"max_subtasks": 5000},
        }
    )
    ctx = RunContext.create(workspace, settings, approve=approve_all, **kw)
    ctx.tools = ToolRegistry([]) if tools == "none" else tools
    return ctx


def subtask_id_of(request_messages: list[dict[str, Any]]) -> str:
    """The worker's user message reads 'Your subtask:\\ndo tN ...'."""
    return request_messages[1]["content"].split("do ", 1)[1].split()[0]


def role_of(messages: list[dict[str, Any]]) -> str:
    system = messages[0]["content"] or ""
    if system.startswith(PLANNER_PREFIX):
        return "planner"
    if system.startswith(SYNTHESIS_PREFIX):
        return "synthesis"
    return "worker"


def worker_brain(plan: dict[str, Any], delay: Callable[[str], float] | None = None, other_s: float = 0.0):
    """planner -> the plan; worker tN -> 'result of tN' after delay(tN) seconds; synthesis ->
    'done'; planner and synthesis take other_s seconds. Each is a single model call, so a subtask
    costs exactly one call."""
    import asyncio

    from runtime.testing import text

    plan_json = json.dumps(plan)

    async def answer(request):
        role = role_of(request.messages)
        wait = (delay(subtask_id_of(request.messages)) if delay else 0.0) if role == "worker" else other_s
        if wait:
            await asyncio.sleep(wait)
        if role == "planner":
            return text(plan_json)
        if role == "synthesis":
            return text("done")
        return text(f"result of {subtask_id_of(request.messages)}")

    return answer


class TimedModel:
    """Wraps a model and adds up the seconds spent inside it, so what is left of a run's wall
    time is Shunter's own."""

    def __init__(self, inner: Any):
        self.inner, self.name, self.seconds, self.calls = inner, inner.name, 0.0, 0

    async def complete(self, request):
        t0 = time.perf_counter()
        try:
            return await self.inner.complete(request)
        finally:
            self.seconds += time.perf_counter() - t0
            self.calls += 1


async def shunter_run(
    plan: dict[str, Any],
    model: Any,
    workspace: Path,
    *,
    max_parallel: int,
    plan_it: bool = True,
    agents: Any = None,
    tools: Any = "none",
    request: str = "benchmark request",
):
    """One Shunter run of `plan` with `model` playing every role. plan_it=True goes through the
    planner (parse, repair, validate, estimate); False executes the plan as given. Returns
    (wall seconds, RunResult)."""
    from planner.models import Plan
    from planner.planner import PlanOutcome
    from router.run import Planned, execute, plan_request
    from shunter.wiring import SingleModel

    agents = agents or worker_agents()
    ctx = bench_context(workspace, max_parallel=max_parallel, tools=tools)
    models = SingleModel(model)
    try:
        t0 = time.perf_counter()
        if plan_it:
            planned = await plan_request(request, ctx, agents, models)
        else:
            planned = Planned(request, PlanOutcome(plan=Plan.model_validate(plan), attempts=1), {})
        result = await execute(planned, ctx, agents, models)
        seconds = time.perf_counter() - t0
    finally:
        close_context(ctx)
    if result.status != "succeeded":
        raise RuntimeError(f"benchmark run {result.status}: {result.error}")
    return seconds, result


def close_context(ctx: Any) -> None:
    """Close the run's log sink: loguru keeps every sink ever added, and a benchmark makes many runs."""
    ctx.events.close()


def python_bin() -> str:
    venv = REPO / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable
