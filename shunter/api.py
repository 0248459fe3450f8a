"""The public Python API: plan and run requests from code."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from agents.registry import AgentRegistry, default_agents
from planner.estimate import AgentStats
from router.calibration import history_stats
from router.conversations import FollowUp
from router.memory import planner_memory
from router.recorder import RunRecorder
from router.records import RunResult
from router.run import Planned, execute, plan_request
from router.scheduler import Listener, ModelProvider
from runtime import telemetry
from runtime.config import Settings
from runtime.context import Approver, RunContext, deny_all
from runtime.errors import ConfigError, RunCancelled
from runtime.model import Model
from runtime.store import Store
from shunter.wiring import OpenAIProvider, SingleModel, check_workspace, make_context, settings_for


def _provider(model: Model | ModelProvider | None, settings: Settings) -> ModelProvider:
    if model is None:
        return OpenAIProvider(settings)
    if callable(model) and not hasattr(model, "complete"):
        return model
    return SingleModel(model)  # type: ignore[arg-type]  # a Model: one for every agent


def prepare(
    workspace: str | Path = ".",
    settings: Settings | None = None,
    overrides: dict[str, Any] | None = None,
    approve: Approver = deny_all,
    **kw: Any,
) -> RunContext:
    """A RunContext for `workspace` with settings from its config, the environment and `overrides`."""
    ws = check_workspace(workspace)
    return make_context(ws, settings or settings_for(ws, overrides), approve, overrides=overrides or {}, **kw)


@contextmanager
def _context(ctx: RunContext | None, workspace: str | Path) -> Iterator[RunContext]:
    """`ctx` as given, or a new one for `workspace` that is closed on leaving the block."""
    if ctx is not None:
        yield ctx
        return
    owned = prepare(workspace)
    try:
        yield owned
    finally:
        owned.close()


async def plan(
    request: str,
    *,
    ctx: RunContext | None = None,
    workspace: str | Path = ".",
    model: Model | ModelProvider | None = None,
    agents: AgentRegistry | None = None,
    store: Store | None = None,
) -> Planned:
    """Plan only (the dry run): the validated plan and its cost estimate. With a store (`store=` or
    ctx.store) the planner sees similar past requests and the estimate uses the run history."""
    with _context(ctx, workspace) as ctx:
        return await _plan(request, ctx, model, agents, store or ctx.store)


async def _plan(
    request: str,
    ctx: RunContext,
    model: Model | ModelProvider | None,
    agents: AgentRegistry | None,
    store: Store | None,
) -> Planned:
    memory, history = (
        ("", None) if store is None else (planner_memory(store, request, None), history_stats(store))
    )
    models = _provider(model, ctx.settings)
    return await plan_request(
        request, ctx, agents or default_agents(), models, memory=memory, history=history
    )


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
    store: Store | None = None,
    follow: FollowUp | None = None,
) -> RunResult:
    """Plan and execute `request`. Side effects are refused unless `approve` says otherwise.

    `on_planned` sees the plan and estimate before anything runs and may return False to stop.
    A cancelled run returns status 'cancelled' with every finished subtask kept.

    With a store (`store=` or ctx.store) the run is recorded as it happens, so it can be resumed
    and undone by its run_id; the planner sees similar past requests and, with `follow`, the
    conversation so far; the estimate uses the calibrated history.
    """
    with _context(ctx, workspace) as ctx, telemetry.run_span(ctx, request) as sp:
        result = await _run(request, ctx, model, agents, approve, listeners, on_planned, store, follow)
        telemetry.outcome(sp, result.status, result.error)
        return result


async def _run(
    request: str,
    ctx: RunContext,
    model: Model | ModelProvider | None,
    agents: AgentRegistry | None,
    approve: Approver | None,
    listeners: list[Listener] | None,
    on_planned: Callable[[Planned], Awaitable[bool]] | None,
    store: Store | None,
    follow: FollowUp | None,
) -> RunResult:
    if approve is not None:
        ctx.approve = approve
    agents = agents or default_agents()
    models = _provider(model, ctx.settings)
    store = store or ctx.store
    if store is None:
        if follow is not None and follow != FollowUp():
            raise ConfigError(
                "Following up on a conversation needs the run store; pass store=Store.open(workspace)."
            )
        return await _plan_and_execute(request, ctx, agents, models, listeners or [], on_planned)
    recorder = RunRecorder.start(store, ctx, request, follow)
    try:
        result = await _plan_and_execute(
            request,
            ctx,
            agents,
            recorder.wrap(models),
            [recorder.on_subtask, *(listeners or [])],
            on_planned,
            memory=recorder.memory(request),
            history=history_stats(store),
            after_plan=recorder.planned,
        )
    except BaseException as e:
        recorder.abort(e)
        raise
    recorder.finish(result)
    return result


async def _plan_and_execute(
    request: str,
    ctx: RunContext,
    agents: AgentRegistry,
    models: ModelProvider,
    listeners: list[Listener],
    on_planned: Callable[[Planned], Awaitable[bool]] | None,
    memory: str = "",
    history: dict[str, AgentStats] | None = None,
    after_plan: Callable[[Planned], None] | None = None,
) -> RunResult:
    try:
        planned = await plan_request(request, ctx, agents, models, memory=memory, history=history)
    except RunCancelled:
        return _cancelled(ctx, request, "Cancelled while planning.")
    if after_plan is not None:
        after_plan(planned)
    if on_planned is not None and not await on_planned(planned):
        return _cancelled(ctx, request, "Stopped before execution.", planned)
    return await execute(planned, ctx, agents, models, listeners=listeners)


def _cancelled(ctx: RunContext, request: str, error: str, planned: Planned | None = None) -> RunResult:
    """A run stopped before anything ran: the usage so far, and the plan when there is one."""
    return RunResult(
        run_id=ctx.run_id,
        status="cancelled",
        request=request,
        plan=planned.plan.model_dump() if planned is not None else None,
        estimate=planned.estimate if planned is not None else None,
        error=error,
        usage=ctx.usage.snapshot()["total"],
    )


async def resume(
    run_id: str,
    *,
    ctx: RunContext | None = None,
    workspace: str | Path = ".",
    model: Model | ModelProvider | None = None,
    agents: AgentRegistry | None = None,
    approve: Approver | None = None,
    listeners: list[Listener] | None = None,
    store: Store | None = None,
    force: bool = False,
) -> RunResult:
    """Continue a run that was interrupted, cancelled or failed: its succeeded subtasks are kept
    and feed the rest, every other subtask runs again from its start. Refuses (RefusedError) when
    files those subtasks changed were modified since, unless `force`. `ctx`, when given, must carry
    the run's id: prepare(workspace, run_id=...)."""
    from router.resume import resumable_run
    from router.resume import resume as resume_run

    ws = ctx.workspace if ctx is not None else check_workspace(workspace)
    store = store or (ctx.store if ctx is not None else None) or Store.open(ws)
    row = resumable_run(store, run_id)
    if ctx is None:
        ctx = prepare(ws, run_id=row["id"])
    elif ctx.run_id != row["id"]:
        raise ConfigError(
            f"The context is for run {ctx.run_id}, not {row['id']}; make it with prepare(..., run_id={row['id']!r})."
        )
    if approve is not None:
        ctx.approve = approve
    with telemetry.run_span(ctx, row["request"], resumed=True) as sp:
        result = await resume_run(
            store,
            ctx,
            agents or default_agents(),
            _provider(model, ctx.settings),
            force=force,
            listeners=listeners or [],
        )
        telemetry.outcome(sp, result.status, result.error)
        return result


def run_sync(request: str, **kw: Any) -> RunResult:
    """`run` for synchronous code."""
    return asyncio.run(run(request, **kw))
