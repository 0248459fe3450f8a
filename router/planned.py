"""Streamed planning: the planner's answer streams in and each subtask goes to the scheduler the
moment its JSON is complete and checked, so work starts while the plan is still being written.

A problem found later (a subtask that fails validation, or the whole answer failing a check only
the whole plan can have, such as its `answer`) stops what has not started; what runs finishes
and is kept. The planner then gets the usual repair round with the plan so far, and the repaired
plan runs with every finished subtask it kept unchanged.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from agents.registry import AgentRegistry
from planner.estimate import AgentStats, estimate_plan
from planner.models import Plan
from planner.planner import PlanOutcome, PlanSession, planning_session
from planner.stream import PlanStream, check_streamed
from router.records import RunResult, SubtaskRecord
from router.replan import OnReplan
from router.run import Planned, conclude, execute, make_scheduler
from router.scheduler import Listener, ModelProvider, Scheduler
from runtime import telemetry
from runtime.context import RunContext
from runtime.errors import RunCancelled

STOPPED = "not started: the streamed plan was found invalid and sent back for repair"


class _Feed:
    """What arrives on the planner's stream, checked and handed to the scheduler."""

    def __init__(self, ctx: RunContext, agents: AgentRegistry, scheduler: Scheduler):
        self.ctx, self.agents, self.scheduler = ctx, agents, scheduler
        self.pctx = ctx.for_subtask("planner", "planner")
        self.stream = PlanStream()
        self.problems: list[str] = []
        self.notes: list[str] = []
        self.started = time.monotonic()
        self.first_byte: float | None = None

    def on_text(self, delta: str) -> None:
        if self.first_byte is None:
            self.first_byte = time.monotonic()
            self.ctx.emit("plan.streaming", after_s=round(self.first_byte - self.started, 4))
        if not self.problems:
            self.take(self.stream.feed(delta))

    def finish(self) -> None:
        if not self.problems:
            self.take(self.stream.finish())

    def take(self, subtasks: list) -> None:
        for sub in subtasks:
            notes, errors = check_streamed(sub, self.scheduler.plan.subtasks, self.agents, self.pctx)
            if errors:
                self.fail(errors)
                return
            self.notes += notes
            self.scheduler.add(sub)
            self.ctx.events.emit(
                "plan.subtask_added",
                subtask_id=sub.id,
                agent=sub.agent,
                depends_on=sub.depends_on,
                read_only=sub.read_only,
                call=sub.call.tool if sub.call else None,
                index=len(self.scheduler.plan.subtasks),
                after_s=round(time.monotonic() - self.started, 4),
            )
        if self.stream.errors:
            self.fail(self.stream.errors)

    def fail(self, errors: list[str]) -> None:
        if self.problems:
            return
        self.problems = list(errors)
        dropped = self.scheduler.drop_unstarted(STOPPED)
        self.ctx.emit("plan.stream_stopped", level="WARNING", errors=errors, dropped=dropped)


async def stream_plan_and_execute(
    request: str,
    ctx: RunContext,
    agents: AgentRegistry,
    models: ModelProvider,
    *,
    memory: str = "",
    history: dict[str, AgentStats] | None = None,
    listeners: list[Listener] | None = None,
    after_plan: Callable[[Planned], None] | None = None,
    on_replan: OnReplan | None = None,
) -> RunResult:
    """Plan `request` with the planner's answer streamed, running each subtask as it arrives."""
    started = time.monotonic()
    model = models(ctx.settings.planner.model or ctx.settings.model.name)
    session = planning_session(request, ctx, model, agents, memory)
    scheduler = make_scheduler(Plan(goal="", subtasks=[]), ctx, agents, models, listeners, streaming=True)
    feed = _Feed(ctx, agents, scheduler)
    ctx.emit("run.started", subtasks=0, streamed=True)
    runner = asyncio.create_task(scheduler.run())
    try:
        with telemetry.plan_span(streamed=True) as sp:
            text = await session.ask(on_text=feed.on_text, on_retry=feed.stream.restart)
            feed.finish()
            plan, notes, errors = session.check(text)
            if not feed.problems and plan is not None and not errors:
                streamed = [s.model_dump() for s in scheduler.plan.subtasks]
                if streamed != [s.model_dump() for s in plan.subtasks]:
                    errors = [
                        "The plan's subtasks could not all be read as they streamed; send the plan again."
                    ]
            if not feed.problems and plan is not None and not errors:
                scheduler.plan.goal, scheduler.plan.answer = plan.goal, plan.answer
                scheduler.close()
                outcome = session.outcome(scheduler.plan, [*feed.notes, *notes])
                # Recorded now, while subtasks still run: a run killed from here on resumes this plan.
                planned = Planned(
                    request, outcome, estimate_plan(outcome.plan, ctx, agents, outcome.usage, history)
                )
                telemetry.planned(sp, outcome, planned.estimate)
                if after_plan is not None:
                    after_plan(planned)
            else:
                feed.fail(errors)
                outcome = None
                telemetry.rejected(ctx, sp, feed.problems)
    except BaseException as e:
        scheduler.drop_unstarted("not started: planning stopped")
        if not isinstance(e, RunCancelled):
            runner.cancel()  # planning failed (or this task was cancelled): stop what runs too
        await asyncio.gather(runner, return_exceptions=True)
        if isinstance(e, RunCancelled):
            return await _cancelled_while_planning(request, scheduler, ctx, models, started)
        raise
    await runner
    if outcome is not None:
        return await conclude(planned, scheduler, ctx, models, started, agents, on_replan)
    return await _repair(
        request, session, scheduler, ctx, agents, models, feed, history, after_plan, started, on_replan
    )


async def _repair(
    request: str,
    session: PlanSession,
    scheduler: Scheduler,
    ctx: RunContext,
    agents: AgentRegistry,
    models: ModelProvider,
    feed: _Feed,
    history: dict[str, AgentStats] | None,
    after_plan: Callable[[Planned], None] | None,
    started: float,
    on_replan: OnReplan | None = None,
) -> RunResult:
    """Repair rounds with the plan so far; the repaired plan runs without streaming, keeping
    each finished subtask it repeats unchanged."""
    try:
        session.reject(feed.problems)
        with telemetry.plan_span(repair=True) as sp:
            outcome: PlanOutcome = await session.finish()
            telemetry.planned(sp, outcome)
    except RunCancelled:
        return await _cancelled_while_planning(request, scheduler, ctx, models, started)
    ran = {s.id: s for s in scheduler.plan.subtasks}
    kept: dict[str, SubtaskRecord] = {
        s.id: scheduler.records[s.id]
        for s in outcome.plan.subtasks
        if s.id in ran and ran[s.id] == s and scheduler.records[s.id].status == "succeeded"
    }
    ctx.emit("plan.repaired", kept=sorted(kept), subtasks=len(outcome.plan.subtasks))
    planned = Planned(request, outcome, estimate_plan(outcome.plan, ctx, agents, outcome.usage, history))
    if after_plan is not None:
        after_plan(planned)
    return await execute(
        planned, ctx, agents, models, listeners=scheduler.listeners, records=kept, on_replan=on_replan
    )


async def _cancelled_while_planning(
    request: str, scheduler: Scheduler, ctx: RunContext, models: ModelProvider, started: float
) -> RunResult:
    """Cancelled mid-stream: the subtasks that had arrived are the plan; finished ones are kept."""
    outcome = PlanOutcome(plan=scheduler.plan, attempts=0)
    return await conclude(Planned(request, outcome, {}), scheduler, ctx, models, started)
