"""Plain-text renderings of plans, estimates and usage for the terminal."""

from __future__ import annotations

import json
import textwrap
from typing import Any

from planner.models import Call, Plan
from planner.validate import waves


def usd(value: float | None) -> str:
    if value is None:
        return "unknown (unpriced model)"
    return f"${value:.4f}" if value < 1 else f"${value:.2f}"


def plan_tree(plan: Plan) -> str:
    lines = [f"Goal: {plan.goal}", ""]
    for n, wave in enumerate(waves(plan), 1):
        together = " (run together)" if len(wave) > 1 else ""
        lines.append(f"Wave {n}{together}:")
        for sid in wave:
            s = plan.get(sid)
            mode = "read-only" if s.read_only else "writes"
            after = f" after {', '.join(s.depends_on)}" if s.depends_on else ""
            compiled = " call, no model" if s.call else ""
            lines.append(f"  {s.id:<4} {s.agent:<9} [{mode}{compiled}]{after}")
            lines += ["         " + t for t in textwrap.wrap(s.instruction, 88)[:4]]
            if s.call:
                lines += ["         " + t for t in call_lines(s.call)]
    if plan.answer:
        lines += ["", f"Answer: the result of {plan.answer} (no synthesis call)"]
    return "\n".join(lines)


def call_text(call: Call, limit: int = 60) -> str:
    """`tool(arg=value, ...)` on one line, long values cut."""

    def short(v: object) -> str:
        text = json.dumps(v, ensure_ascii=False)
        return text if len(text) <= limit else text[: limit - 1] + '…"'

    return f"{call.tool}(" + ", ".join(f"{k}={short(v)}" for k, v in call.arguments.items()) + ")"


def call_lines(call: Call) -> list[str]:
    """The call as `→ tool(...)`, with each multi-line argument shown under it (up to 6 lines)."""
    lines = [f"→ {call_text(call)}"]
    for key, value in call.arguments.items():
        if isinstance(value, str) and "\n" in value:
            body = value.splitlines()
            lines.append(f"  {key}:")
            lines += ["  | " + ln for ln in body[:6]]
            if len(body) > 6:
                lines.append(f"  | … {len(body) - 6} more lines")
    return lines


def plan_mermaid(plan: Plan) -> str:
    lines = ["graph TD"]
    for s in plan.subtasks:
        label = s.instruction.replace('"', "'")
        label = label[:60] + ("…" if len(label) > 60 else "")
        if s.call:  # a compiled call: stadium when read-only, hexagon when it changes things
            shape = ("([", "])") if s.read_only else ("{{", "}}")
            label = call_text(s.call, 30).replace('"', "'")
        else:
            shape = ("[", "]") if s.read_only else ("[[", "]]")
        lines.append(f'    {s.id}{shape[0]}"{s.id} · {s.agent}<br/>{label}"{shape[1]}')
    for s in plan.subtasks:
        for d in s.depends_on:
            lines.append(f"    {d} --> {s.id}")
    return "\n".join(lines)


def estimate_table(est: dict[str, Any]) -> str:
    lines = ["Estimate (tokens counted with the model's tokenizer; USD low / expected / high):"]
    for r in [*est["subtasks"], est["synthesis"]]:
        if r.get("call") or r.get("answer"):
            what = (
                f"call {r['call']}, no model"
                if r.get("call")
                else f"none: the answer is {r['answer']}'s result"
            )
            lines.append(f"  {r['id']:<10} {r['agent']:<9} {what}  $0")
            continue
        lines.append(
            f"  {r['id']:<10} {r['agent']:<9} {r['model']:<14} ~{r['iterations']:>4} iter  in {r['input_tokens']:>7,}  "
            f"out {r['output_tokens']:>6,}  {usd(r['low_usd'])} / {usd(r['expected_usd'])} / {usd(r['high_usd'])}"
            + _reasoning(r)
        )
    p = est["planner"]
    lines.append(
        f"  {'planner':<10} (spent)   in {p['input_tokens']:>7,}  out {p['output_tokens']:>6,}  {usd(p['cost_usd'])}"
    )
    lines.append(
        f"  Total: in {est['input_tokens']:,}  out {est['output_tokens']:,}  "
        f"{usd(est['low_usd'])} / {usd(est['expected_usd'])} / {usd(est['high_usd'])}" + _reasoning(est)
    )
    if est["unpriced_models"]:
        lines.append(
            f"  No price is known for {', '.join(est['unpriced_models'])}: add one under [prices] in .shunter/config.toml."
        )
    return "\n".join(lines)


def _reasoning(row: dict[str, Any]) -> str:
    """Reasoning tokens are part of the output; say how much, where a reasoning model writes any."""
    n = row.get("reasoning_tokens") or 0
    return f"  (out includes {n:,} reasoning)" if n else ""


def usage_summary(result: dict[str, Any]) -> str:
    u = result["usage"]
    reasoning = f" ({u['reasoning_tokens']:,} reasoning)" if u.get("reasoning_tokens") else ""
    lines = [
        f"Usage: {u['input_tokens']:,} input tokens ({u['cached_input_tokens']:,} cached), {u['output_tokens']:,} output{reasoning}, "
        f"{u['requests']} requests, {u['tool_calls']} tool calls, {usd(u['cost_usd'])}, {u.get('wall_seconds', 0):.1f} s",
    ]
    for name, a in result.get("usage_by_agent", {}).items():
        lines.append(
            f"  {name:<10} {a['requests']:>3} req  in {a['input_tokens']:>7,}  out {a['output_tokens']:>6,}  {a['tool_calls']:>3} tools  {usd(a['cost_usd'])}"
        )
    return "\n".join(lines)
