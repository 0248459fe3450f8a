"""The dry-run cost estimate: tokens counted with the real tokenizer over what each agent will
actually send, times the expected iterations; USD as low / expected / high."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agents.loop import first_messages
from agents.quoting import Upstream
from agents.registry import AgentRegistry, agent_model, least_privilege, resolve_tools
from planner.models import Plan
from prompts import render
from runtime.context import RunContext
from runtime.prices import PriceTable
from runtime.tokens import count_messages, count_text
from runtime.usage import Usage

TOOL_RESULT_TOKENS = 700
"""Typical tokens a tool result adds to the conversation per iteration (before history)."""
RESULT_TOKENS = 300
"""Typical tokens of a subtask's final result, quoted to dependants and to the synthesis."""
SYNTHESIS_OUTPUT = 350


@dataclass(frozen=True)
class AgentStats:
    """Observed behaviour of one agent (and model), from history or defaults."""

    iterations: float
    output_per_iteration: float
    growth_per_iteration: float
    """Input tokens added to the conversation by each iteration (assistant turn + tool results)."""
    result_tokens: float = RESULT_TOKENS
    runs: int = 0
    reasoning_per_iteration: float = 0.0
    """Hidden reasoning tokens per request, billed as output on top of output_per_iteration."""


def default_stats(iterations: float, output_hint: int, reasoning: float = 0.0) -> AgentStats:
    return AgentStats(
        iterations=iterations,
        output_per_iteration=output_hint,
        growth_per_iteration=output_hint + TOOL_RESULT_TOKENS,
        reasoning_per_iteration=reasoning,
    )


def _conversation_input(base: int, iterations: float, growth: float) -> float:
    # Iteration k (1-based) sends base + (k-1)*growth tokens.
    n = max(iterations, 1.0)
    return n * base + growth * n * (n - 1) / 2


def _usd(prices: PriceTable, model: str, inp: float, out: float) -> float | None:
    return prices.cost(model, int(inp), 0, int(out))


def _band(prices: PriceTable, model: str, base: int, stats: AgentStats, max_iter: int) -> dict[str, Any]:
    n = stats.iterations
    lo_n, hi_n = 1.0, min(max(n * 2, n + 2), float(max_iter))
    # Reasoning is output the answer does not show; it does not grow the conversation.
    per_out = stats.output_per_iteration + stats.reasoning_per_iteration
    exp_in = _conversation_input(base, n, stats.growth_per_iteration)
    exp_out = n * per_out
    lo_in, lo_out = (
        _conversation_input(base, lo_n, stats.growth_per_iteration / 2),
        lo_n * per_out / 2,
    )
    hi_in, hi_out = (
        _conversation_input(base, hi_n, stats.growth_per_iteration * 1.5),
        hi_n * per_out * 1.5,
    )
    return {
        "model": model,
        "iterations": round(n, 2),
        "input_tokens": int(exp_in),
        "output_tokens": int(exp_out),
        "reasoning_tokens": int(n * stats.reasoning_per_iteration),
        "low_usd": _usd(prices, model, lo_in, lo_out),
        "expected_usd": _usd(prices, model, exp_in, exp_out),
        "high_usd": _usd(prices, model, hi_in, hi_out),
        "_low_tokens": (lo_in, lo_out),
        "_high_tokens": (hi_in, hi_out),
    }


def _learned(history: dict[str, AgentStats], agent: str, model: str, read_only: bool) -> AgentStats | None:
    """The most specific history there is: agent and model and mode, down to the agent alone."""
    mode = "ro" if read_only else "rw"
    for key in (f"{agent}:{model}|{mode}", f"{agent}|{mode}", f"{agent}:{model}", agent):
        if key in history:
            return history[key]
    return None


def _call_row(sid: str, agent: str, tool: str) -> dict[str, Any]:
    """A compiled subtask: one tool call, no model, so no tokens and no cost."""
    return {
        "id": sid,
        "agent": agent,
        "call": tool,
        "model": None,
        "iterations": 0,
        "input_tokens": 0,
        "output_tokens": 0,
        "reasoning_tokens": 0,
        "tool_calls": 1,
        "low_usd": 0.0,
        "expected_usd": 0.0,
        "high_usd": 0.0,
    }


def _synthesis_row(plan: Plan, prices: PriceTable, model: str) -> dict[str, Any]:
    if plan.answer is not None:  # the plan names the answer: no synthesis request is made
        return {
            **_call_row("synthesis", "synthesis", ""),
            "call": None,
            "tool_calls": 0,
            "answer": plan.answer,
        }
    base = count_text(render("synthesis")) + count_text(plan.goal) + RESULT_TOKENS * len(plan.subtasks) + 20
    reasoning = prices.reasoning(model)
    synth = {
        "id": "synthesis",
        "agent": "synthesis",
        **_band(
            prices, model, base, AgentStats(1, SYNTHESIS_OUTPUT, 0, reasoning_per_iteration=reasoning), 1
        ),
        "tool_calls": 0,
    }
    synth["_high_tokens"] = (base * 1.5, (SYNTHESIS_OUTPUT + reasoning) * 2)
    synth["high_usd"] = _usd(prices, model, *synth["_high_tokens"])
    return synth


def estimate_plan(
    plan: Plan,
    ctx: RunContext,
    agents: AgentRegistry,
    planner_usage: Usage | None = None,
    history: dict[str, AgentStats] | None = None,
) -> dict[str, Any]:
    prices = ctx.usage.prices
    rows = []
    by_id = {s.id: s for s in plan.subtasks}
    for s in plan.subtasks:
        agent = agents.get(s.agent)
        if agent is None:
            continue
        if s.call is not None:
            rows.append(_call_row(s.id, s.agent, s.call.tool))
            continue
        model = agent_model(agent, ctx.settings)
        agent = least_privilege(agent, s.read_only, ctx.settings, ctx.tools)  # what it will really be offered
        tools = resolve_tools(agent, ctx.settings, ctx.tools)
        stats = _learned(history or {}, s.agent, model, s.read_only) or default_stats(
            agent.iterations_hint, agent.output_tokens_hint, prices.reasoning(model)
        )
        upstream = [
            Upstream(d, by_id[d].agent, "succeeded", "x " * int(stats.result_tokens)) for d in s.depends_on
        ]
        messages = first_messages(agent, ctx.for_subtask(s.id, s.agent), tools, s.instruction, upstream)
        base = count_messages(messages, [t.schema() for t in tools], model)
        override = ctx.settings.agents.get(agent.name)
        max_iter = (
            (override.max_iterations if override else None)
            or agent.max_iterations
            or ctx.settings.limits.agent_max_iterations
        )
        band = _band(prices, model, base, stats, max_iter)
        # Each iteration but the last (the answer) makes at least one tool call, when there are tools.
        band["tool_calls"] = round(max(stats.iterations - 1, 0.0), 2) if tools else 0
        rows.append({"id": s.id, "agent": s.agent, **band})

    synth = _synthesis_row(plan, prices, ctx.settings.model.name)

    planner = (planner_usage or Usage()).to_dict()
    parts = [*rows, synth]
    unpriced = sorted(
        {r["model"] for r in parts if r["expected_usd"] is None} | set(planner.get("unpriced_models", []))
    )

    def total(key: str) -> float | None:
        if unpriced:
            return None
        return round(sum(r[key] for r in parts) + (planner["cost_usd"] or 0.0), 6)

    for r in parts:
        r.pop("_low_tokens", None)
        r.pop("_high_tokens", None)
        for k in ("low_usd", "expected_usd", "high_usd"):
            r[k] = None if r[k] is None else round(r[k], 6)
    return {
        "input_tokens": sum(r["input_tokens"] for r in parts),
        "output_tokens": sum(r["output_tokens"] for r in parts),
        "reasoning_tokens": sum(r["reasoning_tokens"] for r in parts),
        "tool_calls": round(sum(r["tool_calls"] for r in parts), 2),
        "low_usd": total("low_usd"),
        "expected_usd": total("expected_usd"),
        "high_usd": total("high_usd"),
        "priced": not unpriced,
        "unpriced_models": unpriced,
        "planner": {k: planner[k] for k in ("input_tokens", "output_tokens", "requests", "cost_usd")},
        "subtasks": rows,
        "synthesis": synth,
    }
