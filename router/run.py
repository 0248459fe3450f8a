"""One run end to end: plan, estimate, execute the DAG, synthesise the answer."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from agents.registry import AgentRegistry
from planner.estimate import AgentStats, estimate_plan
from planner.models import Plan
from planner.planner import PlanOutcome, make_plan
from router.records import RunResult, SubtaskRecord
from router.scheduler import Listener, ModelProvider, Scheduler
from router.synthesis import SynthesisFailed, fallback_answer, synthesize
from runtime import telemetry
from runtime.context import RunContext
from runtime.errors import RunCancelled


@dataclass
class Planned:
    request: str
    outcome: PlanOutcome
    estimate: dict[str, Any]

    @property
    def plan(self) -> Plan:
        return self.outcome.plan


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
) -> RunResult:
    started = time.monotonic()
    s = ctx.settings
    scheduler = Scheduler(
        planned.plan,
        ctx,
        agents,
        models,
        max_parallel=s.max_parallel,
        fail_fast=s.fail_fast,
        subtask_timeout_s=s.subtask_timeout_s,
        listeners=listeners,
        records=records,
    )
    result = RunResult(
        run_id=ctx.run_id,
        status="running",
        request=planned.request,
        plan=planned.plan.model_dump(),
        estimate=planned.estimate,
    )
    ctx.emit("run.started", subtasks=len(planned.plan.subtasks))
    await scheduler.run()
    ordered = [scheduler.records[st.id] for st in planned.plan.subtasks]
    result.subtasks = ordered
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
    snap = ctx.usage.snapshot()
    result.usage = snap["total"]
    result.usage_breakdown = snap
    result.seconds = time.monotonic() - started
    ctx.emit("run.finished", status=result.status, usage=result.usage)
    return result
