"""The tool-calling loop one specialist runs for one subtask."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from agents.base import Agent
from agents.quoting import Upstream, quote_tool_result, quote_upstream
from agents.registry import resolve_tools
from prompts import load, render, render_text
from runtime import telemetry
from runtime.calls import call_model
from runtime.context import RunContext
from runtime.errors import ModelError, RunCancelled, ShunterError, UsageLimitExceeded
from runtime.model import Model, ModelRequest, ModelResponse, ToolCall
from runtime.usage import Usage
from tools.base import Tool
from tools.registry import NotApproved, aexecute_tool

Status = Literal["succeeded", "failed", "cancelled", "limit"]


@dataclass
class AgentResult:
    status: Status
    text: str
    files_changed: list[str] = field(default_factory=list)
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    error: str | None = None
    iterations: int = 0
    seconds: float = 0.0
    messages: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "text": self.text,
            "files_changed": self.files_changed,
            "tool_calls": self.tool_calls,
            "usage": self.usage.to_dict(),
            "error": self.error,
            "iterations": self.iterations,
            "seconds": round(self.seconds, 3),
        }


def system_prompt(agent: Agent, ctx: RunContext, tools: list[Tool]) -> str:
    sandbox = getattr(ctx.sandbox, "kind", None)
    values = {
        "name": agent.name,
        "description": agent.description,
        "workspace": str(ctx.workspace),
        "tools": ", ".join(t.name for t in tools) or "none",
        "rules": load("rules").strip(),
        "sandbox": f"inside the {sandbox} sandbox"
        if sandbox and sandbox != "none"
        else "with no OS sandbox in force",
    }
    if agent.prompt_template is not None:
        return render_text(agent.prompt_template, agent.name, **values)
    return render(agent.prompt, **values)


def first_messages(
    agent: Agent, ctx: RunContext, tools: list[Tool], instruction: str, upstream: list[Upstream]
) -> list[dict[str, Any]]:
    user = f"Your subtask:\n{instruction}"
    quoted = quote_upstream(upstream)
    if quoted:
        user += "\n\n" + quoted
    return [
        {"role": "system", "content": system_prompt(agent, ctx, tools)},
        {"role": "user", "content": user},
    ]


async def run_agent(
    agent: Agent,
    instruction: str,
    ctx: RunContext,
    model: Model,
    upstream: list[Upstream] | None = None,
    messages: list[dict[str, Any]] | None = None,
) -> AgentResult:
    """Run `agent` on one subtask until it answers, hits max_iterations or a limit, fails, or is
    cancelled. `ctx` should already be the subtask's view (ctx.for_subtask)."""
    started = time.monotonic()
    tools = resolve_tools(agent, ctx.settings, ctx.tools)
    by_name = {t.name: t for t in tools}
    schemas = [t.schema() for t in tools]
    messages = messages or first_messages(agent, ctx, tools, instruction, upstream or [])
    override = ctx.settings.agents.get(agent.name)
    max_iter = (
        (override.max_iterations if override else None)
        or agent.max_iterations
        or ctx.settings.limits.agent_max_iterations
    )
    result = AgentResult(status="failed", text="", messages=messages)
    refused: list[str] = []

    def finish(status: Status, text: str, error: str | None = None) -> AgentResult:
        result.status, result.text, result.error = status, text, error
        result.files_changed = ctx.file_changes.for_subtask(ctx.subtask_id)
        result.usage = ctx.usage.by_subtask.get(ctx.subtask_id or "", Usage()) if ctx.subtask_id else Usage()
        result.seconds = time.monotonic() - started
        ctx.emit("agent.finished", status=status, iterations=result.iterations, error=error)
        return result

    stream_cb = ctx.on_text
    on_text = (lambda delta: stream_cb(delta, ctx.subtask_id)) if stream_cb else None
    try:
        for _ in range(max_iter):
            ctx.cancel.raise_if_cancelled()
            ctx.usage.record_iteration(ctx.subtask_id, ctx.agent)
            result.iterations += 1
            request = ModelRequest(
                messages=messages, tools=schemas or None, stream=ctx.settings.model.stream, on_text=on_text
            )
            resp = await call_model(ctx, model, request)
            messages.append(resp.to_message())
            if not resp.tool_calls:
                if refused:  # the user said no: the side effects this subtask exists for did not happen
                    return finish("failed", resp.text.strip(), "Not approved: " + "; ".join(refused) + ".")
                return _final(resp, finish)
            outputs = await _run_calls(resp.tool_calls, by_name, ctx)
            for call, out in zip(resp.tool_calls, outputs, strict=True):
                if isinstance(out, NotApproved):
                    refused.append(f"{call.name} ({out.summary})")
                result.tool_calls.append(
                    {"tool": call.name, "arguments": call.arguments[:500], "result_chars": len(out)}
                )
                messages.append(
                    {"role": "tool", "tool_call_id": call.id, "content": quote_tool_result(call.name, out)}
                )
        last = next(
            (m.get("content") for m in reversed(messages) if m["role"] == "assistant" and m.get("content")),
            "",
        )
        return finish(
            "limit",
            last or "",
            f"The agent reached its limit of {max_iter} iterations without a final answer.",
        )
    except RunCancelled as e:
        return finish("cancelled", "", str(e))
    except UsageLimitExceeded as e:
        return finish("limit", "", str(e))
    except (ModelError, ShunterError) as e:
        return finish("failed", "", str(e))


def _final(resp: ModelResponse, finish: Callable[..., AgentResult]) -> AgentResult:
    """A turn without tool calls ends the loop; only a whole, non-empty answer is a success."""
    text = resp.text.strip()
    if resp.finish_reason == "length":
        return finish(
            "limit", text, "The answer was cut off at the output token limit; the result is incomplete."
        )
    if not text:
        why = f" (finish_reason {resp.finish_reason})" if resp.finish_reason not in (None, "stop") else ""
        return finish("failed", "", f"The model ended without an answer{why}.")
    return finish("succeeded", text)


async def _run_calls(calls: list[ToolCall], tools: dict[str, Tool], ctx: RunContext) -> list[str]:
    """One turn's calls: concurrently when every one is a known read-only tool, else in order."""
    if all(c.name in tools and tools[c.name].read_only for c in calls) and len(calls) > 1:
        return list(await asyncio.gather(*(_one_call(c, tools, ctx) for c in calls)))
    return [await _one_call(c, tools, ctx) for c in calls]


def _one_call(c: ToolCall, tools: dict[str, Tool], ctx: RunContext) -> Awaitable[str]:
    return telemetry.tool_call(c.id, aexecute_tool(c.name, c.arguments, ctx, tools))
