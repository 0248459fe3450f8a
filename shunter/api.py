"""The public Python API: plan and run requests from code."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from agents.registry import AgentRegistry, default_agents
from router.records import RunResult
from router.run import Planned, execute, plan_request
from router.scheduler import Listener, ModelProvider
from runtime.config import Settings
from runtime.context import Approver, RunContext, deny_all
from runtime.errors import RunCancelled
from runtime.model import Model
from shunter.wiring import OpenAIProvider, SingleModel, check_workspace, make_context, settings_for


def _provider(model: Model | ModelProvider | None, settings: Settings) -> ModelProvider:
    if model is None:
        return OpenAIProvider(settings)
    if hasattr(model, "complete"):
        return SingleModel(model)  # type: ignore[arg-type]
    return model  # type: ignore[return-value]


def prepare(
    workspace: str | Path = ".",
    settings: Settings | None = None,
    overrides: dict[str, Any] | None = None,
    approve: Approver = deny_all,
    **kw: Any,
) -> RunContext:
    """A RunContext for `workspace` with settings from its config, the environment and `overrides`."""
    ws = check_workspace(workspace)
    return make_context(ws, settings or settings_for(ws, overrides), approve, **kw)


async def plan(
    request: str,
    *,
    ctx: RunContext | None = None,
    workspace: str | Path = ".",
    model: Model | ModelProvider | None = None,
    agents: AgentRegistry | None = None,
) -> Planned:
    """Plan only (the dry run): the validated plan and its cost estimate."""
    ctx = ctx or prepare(workspace)
    return await plan_request(request, ctx, agents or default_agents(), _provider(model, ctx.settings))


async def run(
    request: str,
    *,
    ctx: RunContext | None = None,
    workspace: str | Path = ".",
    model: Model | ModelProvider | None = None,
    agents: AgentRegistry | None = None,
    approve: Approver | None = None,
    listeners: list[Listener] | None = None,
    on_planned: Callable[[Planned], Awaitable[bool]] | None = None,
) -> RunResult:
    """Plan and execute `request`. Side effects are refused unless `approve` says otherwise.

    `on_planned` sees the plan and estimate before anything runs and may return False to stop.
    A cancelled run returns status 'cancelled' with every finished subtask kept.
    """
    ctx = ctx or prepare(workspace)
    if approve is not None:
        ctx.approve = approve
    agents = agents or default_agents()
    models = _provider(model, ctx.settings)
    try:
        planned = await plan_request(request, ctx, agents, models)
    except RunCancelled:
        return RunResult(run_id=ctx.run_id, status="cancelled", request=request, error="Cancelled while planning.",
                         usage=ctx.usage.snapshot()["total"])
    if on_planned is not None and not await on_planned(planned):
        return RunResult(run_id=ctx.run_id, status="cancelled", request=request, plan=planned.plan.model_dump(),
                         estimate=planned.estimate, error="Stopped before execution.", usage=ctx.usage.snapshot()["total"])
    return await execute(planned, ctx, agents, models, listeners=listeners)


def run_sync(request: str, **kw: Any) -> RunResult:
    """`run` for synchronous code."""
    return asyncio.run(run(request, **kw))
