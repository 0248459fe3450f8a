"""Replanning: what the planner is shown when subtasks failed, and the check that a replanned
plan gains no privilege. This is the one place untrusted results reach the planner, so a new
plan may use only the agents and tools the first plan was granted, and may not make an agent
that only read change things.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from agents.quoting import Upstream, quote_upstream
from agents.registry import AgentRegistry, least_privilege, resolve_tools
from planner.models import Plan, Subtask
from prompts import render
from runtime.config import Settings

if TYPE_CHECKING:
    from tools.registry import ToolRegistry

RESULT_CHARS = 2_000
"""Characters of each subtask's result shown to the planner (the tail, where errors are)."""


@dataclass
class Grants:
    """What the first plan was allowed: the tools of each agent, and the agents that write."""

    tools: set[tuple[str, str]] = field(default_factory=set)
    writers: set[str] = field(default_factory=set)


def _offered(s: Subtask, agents: AgentRegistry, settings: Settings, tools: ToolRegistry | None) -> set[str]:
    if s.call is not None:
        return {s.call.tool}
    agent = agents.get(s.agent)
    if agent is None:
        return set()
    reduced = least_privilege(agent, s.read_only, settings, tools)
    return {t.name for t in resolve_tools(reduced, settings, tools)}


def grants_of(plan: Plan, agents: AgentRegistry, settings: Settings, tools: ToolRegistry | None) -> Grants:
    g = Grants()
    for s in plan.subtasks:
        g.tools |= {(s.agent, t) for t in _offered(s, agents, settings, tools)}
        if not s.read_only:
            g.writers.add(s.agent)
    return g


def escalations(
    new: list[Subtask], grants: Grants, agents: AgentRegistry, settings: Settings, tools: ToolRegistry | None
) -> list[str]:
    """Why the new subtasks would have more privilege than the first plan: empty means none."""
    out = []
    granted_agents = {a for a, _ in grants.tools}
    for s in new:
        if s.agent not in granted_agents:
            out.append(f"subtask {s.id} uses agent {s.agent!r}, which the first plan did not use")
            continue
        if not s.read_only and s.agent not in grants.writers:
            out.append(
                f"subtask {s.id} makes agent {s.agent!r} change things; in the first plan it only read"
            )
        extra = sorted(t for t in _offered(s, agents, settings, tools) if (s.agent, t) not in grants.tools)
        if extra:
            out.append(
                f"subtask {s.id} would give {s.agent!r} tools the first plan did not: {', '.join(extra)}"
            )
    return out


def replan_message(request: str, plan: Plan, statuses: list[Upstream], used: list[str]) -> str:
    """The user message of a replan: the request, the plan, and each subtask's status and result
    quoted as untrusted data."""
    shown = [Upstream(u.id, u.agent, u.status, u.text[-RESULT_CHARS:]) for u in statuses]
    kept = [u.id for u in statuses if u.status == "succeeded"]
    return render(
        "replan",
        request=request,
        plan=json.dumps(plan.model_dump(), indent=1),
        results=quote_upstream(shown),
        kept=", ".join(kept) or "none",
        used=", ".join(used),
    )
