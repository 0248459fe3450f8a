"""One run end to end: plan, estimate, execute the DAG, synthesise the answer."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from agents.registry import AgentRegistry
from planner.estimate import AgentStats, estimate_plan
from planner.models import Plan
from planner.planner import make_plan
from router.records import RunResult, SubtaskRecord
from router.replan import replan_until_done
from router.runparts import Planned, make_scheduler
from router.scheduler import Listener, ModelProvider, Scheduler
from router.synthesis import SynthesisFailed, fallback_answer, synthesize
from runtime import telemetry
from runtime.context import RunContext
from runtime.errors import RunCancelled


@telemetry.traced_plan
async def plan_request(
    request: str,
    ctx: RunContext,
    agents: AgentRegistry,
    models: ModelProvider,
    memory: str = "",
    history: dict[str, AgentStats] | None = None,
) -> Planned:
    model = models(ctx.settings.planner.model or ctx.settings.model.name)
    outcome = await make_plan(request, ctx, model, agents, memory=memory)
    return Planned(request, outcome, estimate_plan(outcome.plan, ctx, agents, outcome.usage, history))


async def execute(
    planned: Planned,
    ctx: RunContext,
    agents: AgentRegistry,
    models: ModelProvider,
    *,
    listeners: list[Listener] | None = None,
    records: dict[str, SubtaskRecord] | None = None,
    before_start: Callable[[], Awaitable[None]] | None = None,
    on_replan: Any = None,
    replans_done: int = 0,
    first_plan: Plan | None = None,
) -> RunResult:
    started = time.monotonic()
    scheduler = make_scheduler(planned.plan, ctx, agents, models, listeners, records)
    ctx.emit("run.started", subtasks=len(planned.plan.subtasks))
    await scheduler.run()
    return await conclude(
        planned, scheduler, ctx, models, started, agents, on_replan, replans_done, first_plan
    )


async def conclude(
    planned: Planned,
    scheduler: Scheduler,
    ctx: RunContext,
    models: ModelProvider,
    started: float,
    agents: AgentRegistry | None = None,
    on_replan: Any = None,
    replans_done: int = 0,
    first_plan: Plan | None = None,
) -> RunResult:
    """The run's result once the scheduler has finished: replanning rounds when configured (and
    subtasks failed), then status, answer (synthesis when the plan names none) and usage."""
    note: str | None = None
    history: list[dict[str, Any]] = []
    if agents is not None and ctx.settings.planner.replan_rounds > replans_done:
        rp = await replan_until_done(
            planned, scheduler, ctx, agents, models, first=first_plan, done=replans_done, on_replan=on_replan
        )
        planned, scheduler, note, history = rp.planned, rp.scheduler, rp.note, rp.history
    result = RunResult(
        run_id=ctx.run_id,
        status="running",
        request=planned.request,
        plan=planned.plan.model_dump(),
        estimate=planned.estimate,
        plans=history,
    )
    ordered = [scheduler.records[st.id] for st in planned.plan.subtasks]
    result.subtasks = ordered
    if history:  # every plan, the current one last, as `show` gives them
        current = [{"id": r.id, "agent": r.agent, "status": r.status, "error": r.error} for r in ordered]
        history.append(
            {"round": len(history), "plan": result.plan, "subtasks": current, "replanned_because": None}
        )
    if ctx.cancel.cancelled:
        result.status = "cancelled"
        result.error = f"The run was cancelled ({ctx.cancel.reason}); finished subtasks are kept."
        result.answer = fallback_answer(
            [r for r in ordered if r.status == "succeeded"], "Cancelled. Finished so far:"
        )
    else:
        failed = [r for r in ordered if r.status != "succeeded"]
        result.status = "failed" if failed else "succeeded"
        answer_id = planned.plan.answer
        if scheduler.limit_hit:
            result.error = scheduler.limit_hit
            result.answer = fallback_answer(ordered, f"The run stopped early: {scheduler.limit_hit}")
        elif answer_id is not None:
            # The plan named the subtask whose result answers the request: no synthesis call.
            if failed:
                result.error = "; ".join(f"{r.id} {r.status}: {r.error}" for r in failed)
                result.answer = fallback_answer(ordered, "The run did not finish; the subtask results:")
            else:
                result.answer = scheduler.records[answer_id].result
        else:
            if failed:
                result.error = "; ".join(f"{r.id} {r.status}: {r.error}" for r in failed)
            try:
                result.answer = await synthesize(
                    planned.request, planned.plan, ordered, ctx, models(ctx.settings.model.name)
                )
            except SynthesisFailed as e:
                result.status, result.answer = "failed", e.answer
                result.error = f"{result.error}; {e}" if result.error else str(e)
            except RunCancelled:
                result.status = "cancelled"
                result.answer = fallback_answer(
                    ordered, "Cancelled while writing the answer. Finished so far:"
                )
    if note and result.status != "succeeded":
        result.error = f"{result.error}; {note}" if result.error else note
    snap = ctx.usage.snapshot()
    result.usage = snap["total"]
    result.usage_breakdown = snap
    result.seconds = time.monotonic() - started
    ctx.emit("run.finished", status=result.status, usage=result.usage)
    return result
