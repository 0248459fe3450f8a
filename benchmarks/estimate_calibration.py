"""Estimate error before and after calibration on run history.

A scripted file agent works through generated scenarios in a temp workspace with the real file
tools: each subtask reads 2-6 files of 200-1,200 words (a line of commentary with each call),
then answers in 80-300 words; the last subtask of a scenario reads one file and writes a
report. Token counts come from the real tokenizer and prices from the bundled table
(gpt-4.1-mini), so "actual" is what such a run would cost.

Three families of scenarios differ in how many files a subtask reads (1-2, 2-6, 6-10; the
built-in defaults assume 3 iterations). Per family, training: the runs of the training scenarios are recorded in a store, and history_stats() learns
from them. Evaluation, on different scenarios (another seed): each is run once; its plan is
estimated twice, with the built-in defaults ("before") and with the learned history ("after"),
and each estimate's `expected` is compared with what the run used. Reported: the median absolute
percentage error of expected_usd for the whole run (planner as spent + subtasks + synthesis),
and of the subtasks' tokens alone (what history changes).

    .venv/bin/python -m benchmarks.estimate_calibration [--train N] [--test N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.common import bench_context, close_context, median, reps, say, table, write_result

MODEL = "gpt-4.1-mini"
WORDS = "alpha beta gamma delta module function parser config handler request cache token graph".split()


@dataclass
class Step:
    sid: str
    reads: list[str]
    note_words: int
    answer_words: int
    writes: bool = False
    deps: list[str] = field(default_factory=list)


def _words(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def make_files(ws: Path, rng: random.Random, n: int = 16) -> list[str]:
    names = []
    for i in range(n):
        name = f"doc{i}.txt"
        (ws / name).write_text(_words(rng, rng.randint(200, 1200)) + "\n")
        names.append(name)
    return names


FAMILIES = {"short": (1, 2), "typical": (2, 6), "long": (6, 10)}
"""Files each reading subtask reads, by scenario family (the defaults assume 3 iterations)."""


def scenario(rng: random.Random, files: list[str], reads: tuple[int, int]) -> list[Step]:
    n = rng.randint(1, 3)
    steps = [
        Step(f"t{i}", rng.sample(files, rng.randint(*reads)), rng.randint(20, 60), rng.randint(80, 300))
        for i in range(1, n + 1)
    ]
    steps.append(
        Step(
            f"t{n + 1}",
            [rng.choice(files)],
            rng.randint(20, 60),
            rng.randint(40, 120),
            writes=True,
            deps=[s.sid for s in steps],
        )
    )
    return steps


def plan_of(steps: list[Step]) -> dict[str, Any]:
    return {
        "goal": "Summarise documents and write a report.",
        "subtasks": [
            {
                "id": s.sid,
                "agent": "file",
                "depends_on": s.deps,
                "read_only": not s.writes,
                "instruction": f"[{s.sid}] "
                + ("Write report.md from the results." if s.writes else f"Summarise {', '.join(s.reads)}."),
            }
            for s in steps
        ],
    }


def brain(steps: list[Step], seed: int):
    """The scripted model: plan, then per subtask its reads (and write), then its answer."""
    from runtime.model import ModelResponse, ToolCall
    from runtime.testing import text

    by_id = {s.sid: s for s in steps}
    plan_json = json.dumps(plan_of(steps))

    def answer(request):
        system = request.messages[0]["content"]
        if system.startswith("You are the planner"):
            return text(plan_json)
        if system.startswith("You write the final answer"):
            return text(_words(random.Random(seed), 150))
        step = by_id[re.search(r"\[(t\d+)\]", request.messages[1]["content"]).group(1)]
        turn = sum(1 for m in request.messages if m["role"] == "assistant")
        rng = random.Random(f"{seed}-{step.sid}-{turn}")
        calls = [("read_file", {"path": p}) for p in step.reads]
        if step.writes:
            calls.append(("write_file", {"path": "report.md", "content": _words(rng, step.answer_words)}))
        if turn < len(calls):
            name, args = calls[turn]
            return ModelResponse(
                text=_words(rng, step.note_words),
                finish_reason="tool_calls",
                tool_calls=[ToolCall(id=f"c{turn}", name=name, arguments=json.dumps(args))],
            )
        return text(_words(rng, step.answer_words))

    return answer


async def run_scenario(ws: Path, steps: list[Step], seed: int, store: Any) -> Any:
    from runtime.testing import FunctionModel
    from shunter import api

    ctx = bench_context(ws, model_name=MODEL, tools=None)
    try:
        result = await api.run(
            "summarise and report", ctx=ctx, model=FunctionModel(brain(steps, seed), name=MODEL), store=store
        )
    finally:
        close_context(ctx)
    if result.status != "succeeded":
        raise RuntimeError(f"scenario run {result.status}: {result.error}")
    return result


def estimate(result: Any, ws: Path, history: Any) -> dict[str, Any]:
    from agents.registry import default_agents
    from planner.estimate import estimate_plan
    from planner.models import Plan
    from runtime.usage import Usage

    planner = result.usage_breakdown["by_subtask"]["planner"]
    usage = Usage(**{k: v for k, v in planner.items() if k != "total_tokens"})
    ctx = bench_context(ws, model_name=MODEL, tools=None)
    try:
        return estimate_plan(Plan.model_validate(result.plan), ctx, default_agents(), usage, history)
    finally:
        close_context(ctx)


def errors(est: dict[str, Any], result: Any) -> tuple[float, float]:
    """(|expected_usd - cost| / cost of the run, same for the subtasks' tokens)."""
    cost = result.usage["cost_usd"]
    spent = sum(r.usage["input_tokens"] + r.usage["output_tokens"] for r in result.subtasks)
    guessed = sum(r["input_tokens"] + r["output_tokens"] for r in est["subtasks"])
    return abs(est["expected_usd"] - cost) / cost, abs(guessed - spent) / spent


async def family(name: str, train: int, test: int) -> dict[str, Any]:
    from router.calibration import history_stats
    from runtime.store import Store

    reads = FAMILIES[name]
    with tempfile.TemporaryDirectory(prefix="shunter-calib-") as tmp:
        ws = Path(tmp)
        files = make_files(ws, random.Random(1))
        with Store.open(ws) as store:
            rng = random.Random(f"train-{name}")
            for i in range(train):
                await run_scenario(ws, scenario(rng, files, reads), 1000 + i, store)
            history = history_stats(store)
        before, after = [], []
        rng = random.Random(f"test-{name}")
        for i in range(test):
            steps = scenario(rng, files, reads)
            with Store(ws / ".shunter" / f"eval-{i}.db") as scratch:  # kept out of the training history
                result = await run_scenario(ws, steps, 5000 + i, scratch)
            before.append(errors(estimate(result, ws, None), result))
            after.append(errors(estimate(result, ws, history), result))
    learned = history.get(f"file:{MODEL}")
    return {
        "files_read_per_subtask": list(reads),
        "learned": None
        if learned is None
        else {
            "iterations": round(learned.iterations, 2),
            "output_per_iteration": round(learned.output_per_iteration, 1),
            "growth_per_iteration": round(learned.growth_per_iteration, 1),
            "result_tokens": round(learned.result_tokens, 1),
            "observations": learned.runs,
        },
        "median_error_expected_usd": {
            "before": median(e[0] for e in before),
            "after": median(e[0] for e in after),
        },
        "median_error_subtask_tokens": {
            "before": median(e[1] for e in before),
            "after": median(e[1] for e in after),
        },
    }


async def main(train: int, test: int) -> dict[str, Any]:
    families = {name: await family(name, train, test) for name in FAMILIES}
    return {"train_scenarios": train, "test_scenarios": test, "model": MODEL, "families": families}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=max(reps(12), 3))
    parser.add_argument("--test", type=int, default=max(reps(12), 3))
    args = parser.parse_args()
    data = asyncio.run(main(args.train, args.test))
    rows = []
    for name, f in data["families"].items():
        usd, tok = f["median_error_expected_usd"], f["median_error_subtask_tokens"]
        learned = f["learned"] or {}
        rows.append(
            [
                name,
                "-".join(map(str, f["files_read_per_subtask"])),
                learned.get("iterations"),
                f"{usd['before']:.1%}",
                f"{usd['after']:.1%}",
                f"{tok['before']:.1%}",
                f"{tok['after']:.1%}",
            ]
        )
    say(
        f"{args.train} training and {args.test} evaluation scenarios per family, {MODEL} prices; "
        "median absolute error of the estimate's expected value:\n"
    )
    say(
        table(
            [
                "family",
                "reads",
                "learned iterations",
                "run $ before",
                "run $ after",
                "subtask tokens before",
                "subtask tokens after",
            ],
            rows,
        )
    )
    say(f"\nresults: {write_result('estimate_calibration', data)}")
