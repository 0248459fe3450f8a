"""Replanning rounds (`--replan N`): when subtasks failed or were skipped because of a failure,
the planner sees the request, the plan and each subtask's status and result (quoted as untrusted
data) and plans what remains. Finished subtasks keep their results and may be depended on; new
subtasks get new ids. A replanned plan passes the same validation, runs under the same budget
and approvals, and is refused when it would use an agent or tool the first plan did not, or
make a read-only agent write. Each replan is logged (`plan.replanned`, with the reason).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agents.quoting import Upstream
from agents.registry import AgentRegistry
from planner.estimate import estimate_plan
from planner.models import Plan
from planner.planner import PlanOutcome, PlanSession, describe_agents, describe_tools
from planner.replan import escalations, grants_of, replan_message
from prompts import render
from router.runparts import Planned, make_scheduler
from router.scheduler import ModelProvider, Scheduler
from runtime import telemetry
from runtime.context import RunContext
from runtime.errors import PlanError

OnReplan = Callable[[Planned, int, str, list[dict[str, Any]]], None]
"""Told of each replan: the new plan, its round, the reason and the old plan's subtask statuses."""


@dataclass
class Replanned:
    planned: Planned
    scheduler: Scheduler
    history: list[dict[str, Any]] = field(default_factory=list)
    """Each plan that ran before the last: round, reason, plan, and its subtasks' final statuses."""
    note: str | None = None
    """Why replanning stopped early (a refused or invalid replan)."""


def _statuses(plan: Plan, scheduler: Scheduler) -> list[dict[str, Any]]:
    return [
        {
            k: v
            for k, v in scheduler.records[s.id].to_dict().items()
            if k in ("id", "agent", "status", "error")
        }
        for s in plan.subtasks
    ]


async def replan_until_done(
    planned: Planned,
    scheduler: Scheduler,
    ctx: RunContext,
    agents: AgentRegistry,
    models: ModelProvider,
    *,
    first: Plan | None = None,
    done: int = 0,
    on_replan: OnReplan | None = None,
) -> Replanned:
    """Replan while subtasks failed and rounds remain (`done` were used by earlier processes)."""
    out = Replanned(planned, scheduler)
    first = first or planned.plan
    grants = grants_of(first, agents, ctx.settings, ctx.tools)
    used: list[str] = [*scheduler.records]
    round_ = done
    while round_ < ctx.settings.planner.replan_rounds:
        plan, sched = out.planned.plan, out.scheduler
        failed = [sched.records[s.id] for s in plan.subtasks if sched.records[s.id].status != "succeeded"]
        if not failed or ctx.cancel.cancelled or sched.limit_hit:
            break
        reason = "; ".join(f"{r.id} {r.status}: {r.error}" for r in failed[:5])
        kept = {s.id: sched.records[s.id] for s in plan.subtasks if sched.records[s.id].status == "succeeded"}
        try:
            with telemetry.plan_span(round_=round_ + 1) as sp:
                telemetry.content(ctx, sp, "shunter.replan.reason", reason)
                outcome = await _ask(planned.request, plan, sched, ctx, agents, models, first, used, kept)
                telemetry.planned(sp, outcome)
        except PlanError as e:
            out.note = f"replanning failed: {e}"
            ctx.emit("plan.replan_failed", level="WARNING", error=str(e))
            break
        new = [s for s in outcome.plan.subtasks if s.id not in kept]
        refused = escalations(new, grants, agents, ctx.settings, ctx.tools)
        if refused:
            out.note = "the replanned plan was refused: " + "; ".join(refused)
            ctx.emit("plan.replan_refused", level="WARNING", reasons=refused, reason=reason)
            break
        estimate = estimate_plan(outcome.plan, ctx, agents, outcome.usage)
        over = _over_budget(ctx, estimate)
        if over:
            out.note = f"the replanned plan was refused: {over}"
            ctx.emit("plan.replan_refused", level="WARNING", reasons=[over], reason=reason)
            break
        round_ += 1
        ctx.emit(
            "plan.replanned",
            level="WARNING",  # shown on stderr: untrusted results have reached the planner
            round=round_,
            reason=reason,
            kept=sorted(kept),
            subtasks=[s.id for s in new],
        )
        statuses = _statuses(plan, sched)
        out.history.append(
            {
                "round": round_ - 1,
                "plan": plan.model_dump(),
                "subtasks": statuses,
                "replanned_because": reason,
            }
        )
        out.planned = Planned(planned.request, outcome, estimate)
        if on_replan is not None:
            on_replan(out.planned, round_, reason, statuses)
        used += [s.id for s in new]
        out.scheduler = make_scheduler(outcome.plan, ctx, agents, models, sched.listeners, records=kept)
        ctx.emit("run.started", subtasks=len(new), round=round_)
        await out.scheduler.run()
    return out


def _over_budget(ctx: RunContext, estimate: dict[str, Any]) -> str | None:
    """The same budget as the first plan: what was spent plus the new plan's high estimate must
    fit `max_cost_usd` (the cap itself still holds while it runs)."""
    cap, high, spent = ctx.settings.limits.max_cost_usd, estimate.get("high_usd"), ctx.usage.total.cost_usd
    if cap is None or high is None or spent is None or spent + high <= cap:
        return None
    return f"its high estimate ${high:.4f} on top of ${spent:.4f} spent exceeds the budget of ${cap:g}"


async def _ask(
    request: str,
    plan: Plan,
    sched: Scheduler,
    ctx: RunContext,
    agents: AgentRegistry,
    models: ModelProvider,
    first: Plan,
    used: list[str],
    kept: dict[str, Any],
) -> PlanOutcome:
    # The planner is told only of the agents the first plan used: the ones it may use now.
    names = {s.agent for s in first.subtasks}
    allowed = AgentRegistry([a for a in agents if a.name in names])
    pctx = ctx.for_subtask("planner", "planner")
    system = render("planner", agents=describe_agents(allowed, pctx), tools=describe_tools(allowed, pctx))
    records = [sched.records[s.id] for s in plan.subtasks]
    statuses = [Upstream(r.id, r.agent, r.status, r.result or r.error or "") for r in records]
    user = replan_message(request, plan, statuses, used)
    kept_subtasks = [s for s in plan.subtasks if s.id in kept]

    def combine(new: Plan) -> Plan:
        return Plan(
            goal=new.goal,
            subtasks=[*(s.model_copy(deep=True) for s in kept_subtasks), *new.subtasks],
            answer=new.answer,
        )

    def reused(p: Plan) -> list[str]:
        return [
            f"Subtask id {s.id!r} was used by the plan that ran; give every new subtask a new id."
            for s in p.subtasks
            if s.id in used and s.id not in kept
        ]

    messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
    model = models(ctx.settings.planner.model or ctx.settings.model.name)
    return await PlanSession(ctx, model, agents, messages, prepare=combine, extra=reused).finish()
