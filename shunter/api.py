"""The public Python API: plan and run requests from code."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

from agents.mcp import mcp_tools
from agents.registry import AgentRegistry, default_agents
from planner.estimate import AgentStats
from router.calibration import history_stats
from router.conversations import FollowUp
from router.memory import comparable_runs, planner_memory
from router.planned import stream_plan_and_execute
from router.recall import Probe, embed_request
from router.recorder import RunRecorder
from router.records import RunResult
from router.replan import OnReplan
from router.run import Planned, execute, plan_request
from router.scheduler import Listener, ModelProvider
from runtime import telemetry
from runtime.config import Settings
from runtime.context import Approver, RunContext, deny_all
from runtime.embeddings import make_embedder
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


async def _probe(store: Store, request: str, ctx: RunContext, models: ModelProvider) -> Probe | None:
    """The request's embedding for memory ([memory] embedder). The server is asked only when the
    run's models are on it: a scripted model in-process has no endpoint behind it."""
    embedder = make_embedder(ctx.settings, ctx, server=isinstance(models, OpenAIProvider))
    if embedder is None:
        return None
    try:
        return await embed_request(store, request, embedder)
    except RunCancelled:
        return None  # planning sees the token next and ends the run as cancelled, keeping its record
    finally:
        await embedder.aclose()


@asynccontextmanager
async def _models(model: Model | ModelProvider | None, settings: Settings) -> AsyncIterator[ModelProvider]:
    """The provider for `model`; one made here (the OpenAI client) is closed on leaving."""
    provider = _provider(model, settings)
    try:
        yield provider
    finally:
        if model is None and isinstance(provider, OpenAIProvider):
            await provider.aclose()


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
    agents = agents or default_agents(ctx.settings)
    async with _models(model, ctx.settings) as models, mcp_tools(ctx, agents):
        memory, history = "", None
        if store is not None:
            probe = await _probe(store, request, ctx, models)
            memory = planner_memory(store, request, None, probe=probe)
            history = history_stats(store, comparable=comparable_runs(store, request, probe))
        return await plan_request(request, ctx, agents, models, memory=memory, history=history)


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
    stream_plan: bool = False,
) -> RunResult:
    """Plan and execute `request`. Side effects are refused unless `approve` says otherwise.

    `on_planned` sees the plan and estimate before anything runs and may return False to stop.
    `stream_plan=True` starts each subtask as soon as its part of the plan has streamed in (then
    no `on_planned`: it needs the whole plan before anything runs).
    A cancelled run returns status 'cancelled' with every finished subtask kept.

    With a store (`store=` or ctx.store) the run is recorded as it happens, so it can be resumed
    and undone by its run_id; the planner sees similar past requests and, with `follow`, the
    conversation so far; the estimate uses the calibrated history.
    """
    with _context(ctx, workspace) as ctx:
        if stream_plan and on_planned is not None:
            raise ConfigError(
                "on_planned needs the whole plan before anything runs, so it cannot be used with "
                "stream_plan=True; pass stream_plan=False."
            )
        with telemetry.run_span(ctx, request) as sp:
            result = await _run(
                request, ctx, model, agents, approve, listeners, on_planned, store, follow, stream_plan
            )
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
    stream_plan: bool = False,
) -> RunResult:
    if approve is not None:
        ctx.approve = approve
    agents = agents or default_agents(ctx.settings)
    async with _models(model, ctx.settings) as models, mcp_tools(ctx, agents):
        return await _record_and_run(
            request, ctx, models, agents, listeners, on_planned, store, follow, stream_plan
        )


async def _record_and_run(
    request: str,
    ctx: RunContext,
    models: ModelProvider,
    agents: AgentRegistry,
    listeners: list[Listener] | None,
    on_planned: Callable[[Planned], Awaitable[bool]] | None,
    store: Store | None,
    follow: FollowUp | None,
    stream_plan: bool,
) -> RunResult:
    store = store or ctx.store
    if store is None:
        if follow is not None and follow != FollowUp():
            raise ConfigError(
                "Following up on a conversation needs the run store; pass store=Store.open(workspace)."
            )
        return await _plan_and_execute(
            request, ctx, agents, models, listeners or [], on_planned, stream=stream_plan
        )
    recorder = RunRecorder.start(store, ctx, request, follow)
    try:
        probe = await _probe(store, request, ctx, models)
        result = await _plan_and_execute(
            request,
            ctx,
            agents,
            recorder.wrap(models),
            [recorder.on_subtask, *(listeners or [])],
            on_planned,
            memory=recorder.memory(request, probe),
            history=history_stats(store, comparable=comparable_runs(store, request, probe, [ctx.run_id])),
            after_plan=recorder.planned,
            stream=stream_plan,
            on_replan=recorder.replanned,
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
    stream: bool = False,
    on_replan: OnReplan | None = None,
) -> RunResult:
    if stream:
        return await stream_plan_and_execute(
            request,
            ctx,
            agents,
            models,
            memory=memory,
            history=history,
            listeners=listeners,
            after_plan=after_plan,
            on_replan=on_replan,
        )
    try:
        planned = await plan_request(request, ctx, agents, models, memory=memory, history=history)
    except RunCancelled:
        return _cancelled(ctx, request, "Cancelled while planning.")
    if after_plan is not None:
        after_plan(planned)
    if on_planned is not None and not await on_planned(planned):
        return _cancelled(ctx, request, "Stopped before execution.", planned)
    return await execute(planned, ctx, agents, models, listeners=listeners, on_replan=on_replan)


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
    given = store or (ctx.store if ctx is not None else None)
    store = given or Store.open(ws)
    owned_ctx = None
    try:
        row = resumable_run(store, run_id)
        if ctx is None:
            ctx = owned_ctx = prepare(ws, run_id=row["id"])
        elif ctx.run_id != row["id"]:
            raise ConfigError(
                f"The context is for run {ctx.run_id}, not {row['id']}; make it with prepare(..., run_id={row['id']!r})."
            )
        if approve is not None:
            ctx.approve = approve
        agents = agents or default_agents(ctx.settings)
        async with _models(model, ctx.settings) as models, mcp_tools(ctx, agents):
            embedder = make_embedder(ctx.settings, ctx, server=isinstance(models, OpenAIProvider))
            try:
                with telemetry.run_span(ctx, row["request"], resumed=True) as sp:
                    result = await resume_run(
                        store,
                        ctx,
                        agents,
                        models,
                        force=force,
                        listeners=listeners or [],
                        embedder=embedder,
                    )
                    telemetry.outcome(sp, result.status, result.error)
                    return result
            finally:
                if embedder is not None:
                    await embedder.aclose()
    finally:  # what this call opened, it closes: the log sink, the store, the HTTP client
        if owned_ctx is not None:
            owned_ctx.close()
        if given is None:
            store.close()


def run_sync(request: str, **kw: Any) -> RunResult:
    """`run` for synchronous code."""
    return asyncio.run(run(request, **kw))
