"""Estimate accuracy: the dry-run estimate of a plan against the actual usage of the same run.

Each scripted scenario (benchmarks/scenarios.py, plus the bundled `shunter demo`) runs through
`shunter.api.run` with the real tools; the estimate is the one `shunter plan` would show
(RunResult.estimate, computed after planning, before execution). Reported per run: low /
expected / high USD against the actual USD (both include the planner call, which the estimate
knows exactly), and the input / output tokens of the execution (planner excluded) against the
estimate's. Summary: the share of runs whose actual cost lies inside [low, high] and the median
error of `expected` ((expected - actual) / actual).

Two passes: without history (the agents' built-in hints: iterations_hint, output_tokens_hint),
and with a run store that already holds one run of every scenario (the estimate then uses the
observed per-agent statistics). The scripted answers stand in for a model's; their lengths are
chosen to be typical (summaries of 40-100 words, explanations of ~200), but a real model's
iterations and lengths vary more, so read these as a check of the estimator's arithmetic and
calibration path more than as a forecast of real-model error.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.common import bench_context, close_context, median, say, table, write_result
from benchmarks.scenarios import (
    Scenario,
    chain_scenario,
    explain_scenario,
    hunt_scenario,
    review_scenario,
    shunter_brain,
    wide_scenario,
)

NAME = "estimate_accuracy"


@dataclass
class Case:
    name: str
    request: str
    files: dict[str, str]
    brain: Callable[[], Callable[[Any], Any]]


def from_scenario(sc: Scenario) -> Case:
    return Case(sc.name, sc.request, sc.files, lambda: shunter_brain(sc))


def demo_case() -> Case | None:
    try:
        from shunter.demo import DEMO_REQUEST, FILES, demo_brain
    except ImportError:
        return None
    return Case("demo", DEMO_REQUEST, FILES, lambda: demo_brain)


def cases() -> list[Case]:
    out = [
        from_scenario(s)
        for s in (
            review_scenario(4, "review-small"),
            review_scenario(30, "review-large"),
            explain_scenario(),
            hunt_scenario(),
            wide_scenario(),
            chain_scenario(),
        )
    ]
    demo = demo_case()
    return [*out, demo] if demo else out


async def run_case(case: Case, store: Any = None) -> dict[str, Any]:
    from agents.registry import default_agents
    from runtime.testing import FunctionModel
    from shunter import api

    with tempfile.TemporaryDirectory(prefix="shunter-bench-") as tmp:
        ws = Path(tmp)
        for rel, content in case.files.items():
            (ws / rel).parent.mkdir(parents=True, exist_ok=True)
            (ws / rel).write_text(content)
        ctx = bench_context(ws, tools=None)
        model = FunctionModel(case.brain(), name=ctx.settings.model.name)
        kw = {"store": store} if store is not None else {}
        try:
            result = await api.run(case.request, ctx=ctx, model=model, agents=default_agents(), **kw)
        finally:
            close_context(ctx)
    est, usage = result.estimate or {}, result.usage
    planner = est.get("planner", {})
    actual = usage["cost_usd"]
    row = {
        "scenario": case.name,
        "status": result.status,
        "subtasks": len(result.subtasks),
        "requests": usage["requests"],
        "low_usd": est.get("low_usd"),
        "expected_usd": est.get("expected_usd"),
        "high_usd": est.get("high_usd"),
        "actual_usd": actual,
        "est_input_tokens": est.get("input_tokens"),
        "actual_input_tokens": usage["input_tokens"] - planner.get("input_tokens", 0),
        "est_output_tokens": est.get("output_tokens"),
        "actual_output_tokens": usage["output_tokens"] - planner.get("output_tokens", 0),
    }
    if None not in (actual, row["low_usd"], row["high_usd"], row["expected_usd"]) and actual:
        row["inside"] = row["low_usd"] <= actual <= row["high_usd"]
        row["expected_error"] = round((row["expected_usd"] - actual) / actual, 3)
        row["position"] = (
            "below low" if actual < row["low_usd"] else "above high" if actual > row["high_usd"] else "inside"
        )
    return row


async def run() -> dict[str, list[dict[str, Any]]]:
    from runtime.tokens import count_text

    count_text("warm up")
    passes: dict[str, list[dict[str, Any]]] = {"no history": [], "with history": []}
    for case in cases():
        passes["no history"].append(await run_case(case))
    try:
        from runtime.store import Store
    except ImportError:
        say(f"  {NAME}: no run store (runtime/store.py) - the 'with history' pass is skipped")
        return passes
    with tempfile.TemporaryDirectory(prefix="shunter-bench-store-") as tmp:
        store = Store.open(tmp)
        try:
            for case in cases():  # one recorded run of each scenario: the history
                await run_case(case, store)
            for case in cases():
                passes["with history"].append(await run_case(case, store))
        finally:
            store.close()
    return passes


def _summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    judged = [r for r in rows if "inside" in r]
    if not judged:
        return {"runs": 0}
    return {
        "runs": len(judged),
        "inside_share": round(sum(r["inside"] for r in judged) / len(judged), 3),
        "median_abs_expected_error": round(median(abs(r["expected_error"]) for r in judged), 3),
        "median_expected_error": round(median(r["expected_error"] for r in judged), 3),
        "below_low": [r["scenario"] for r in judged if r["position"] == "below low"],
        "above_high": [r["scenario"] for r in judged if r["position"] == "above high"],
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    say(
        f"{NAME}: plan estimate vs actual usage of the same run, scripted scenarios (deterministic: one run each)"
    )
    passes = asyncio.run(run())
    summary = {name: _summary(rows) for name, rows in passes.items()}
    write_result(
        NAME,
        {
            "repetitions": 1,
            "note": "deterministic scenarios: one run per scenario and pass",
            "passes": passes,
            "summary": summary,
        },
    )
    for name, rows in passes.items():
        if not rows:
            continue
        say(f"\n{name}:")
        say(
            table(
                [
                    "scenario",
                    "status",
                    "requests",
                    "low $",
                    "expected $",
                    "high $",
                    "actual $",
                    "where",
                    "expected error",
                    "tokens in est/actual",
                    "tokens out est/actual",
                ],
                [
                    [
                        r["scenario"],
                        r["status"],
                        r["requests"],
                        _usd(r["low_usd"]),
                        _usd(r["expected_usd"]),
                        _usd(r["high_usd"]),
                        _usd(r["actual_usd"]),
                        r.get("position"),
                        r.get("expected_error"),
                        f"{r['est_input_tokens']}/{r['actual_input_tokens']}",
                        f"{r['est_output_tokens']}/{r['actual_output_tokens']}",
                    ]
                    for r in rows
                ],
            )
        )
        s = summary[name]
        if s.get("runs"):
            say(
                f"{name}: {s['inside_share']:.0%} of runs inside [low, high]; median |error| of expected "
                f"{s['median_abs_expected_error']:.0%} (signed median {s['median_expected_error']:+.0%})"
            )
    return summary


def _usd(x: float | None) -> str | None:
    return None if x is None else f"{x:.5f}"


if __name__ == "__main__":
    main(sys.argv[1:])
