"""What a run is made of before it runs: the planned request, and its scheduler."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agents.registry import AgentRegistry
from planner.models import Plan
from planner.planner import PlanOutcome
from router.records import SubtaskRecord
from router.scheduler import Listener, ModelProvider, Scheduler
from runtime.context import RunContext


@dataclass
class Planned:
    request: str
    outcome: PlanOutcome
    estimate: dict[str, Any]

    @property
    def plan(self) -> Plan:
        return self.outcome.plan


def make_scheduler(
    plan: Plan,
    ctx: RunContext,
    agents: AgentRegistry,
    models: ModelProvider,
    listeners: list[Listener] | None = None,
    records: dict[str, SubtaskRecord] | None = None,
    streaming: bool = False,
) -> Scheduler:
    s = ctx.settings
    # Late import: router.durable builds on the scheduler module, as this one does.
    from router.durable import DurableScheduler

    kind = DurableScheduler if ctx.durable is not None else Scheduler
    return kind(
        plan,
        ctx,
        agents,
        models,
        max_parallel=s.max_parallel,
        fail_fast=s.fail_fast,
        subtask_timeout_s=s.subtask_timeout_s,
        listeners=listeners,
        records=records,
        streaming=streaming,
    )
