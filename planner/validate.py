"""Plan validation before anything runs, and the parallel waves of a valid plan."""

from __future__ import annotations

from typing import TYPE_CHECKING

import networkx as nx

from agents.registry import AgentRegistry, least_privilege, may_write, resolve_tools
from planner.calls import call_errors
from planner.models import Plan, Subtask
from runtime.config import Settings

if TYPE_CHECKING:
    from tools.base import Tool
    from tools.registry import ToolRegistry


def graph(plan: Plan) -> nx.DiGraph:
    g = nx.DiGraph()
    for s in plan.subtasks:
        g.add_node(s.id)
    for s in plan.subtasks:
        for dep in s.depends_on:
            if dep in g:
                g.add_edge(dep, s.id)
    return g


def validate_plan(
    plan: Plan, agents: AgentRegistry, settings: Settings, tools: ToolRegistry | None = None
) -> list[str]:
    """Every problem, each as one sentence the planner can act on. Empty means valid."""
    errors: list[str] = []
    limits = settings.planner
    if not plan.subtasks:
        errors.append("The plan has no subtasks; give at least one.")
    if len(plan.subtasks) > limits.max_subtasks:
        errors.append(
            f"The plan has {len(plan.subtasks)} subtasks; the limit is {limits.max_subtasks}. Merge related steps."
        )
    ids = [s.id for s in plan.subtasks]
    for dup in sorted({i for i in ids if ids.count(i) > 1}):
        errors.append(f"Subtask id {dup!r} is used more than once; ids must be unique.")
    known = set(ids)
    offered_cache: dict[tuple[str, bool], tuple[dict[str, Tool], dict[str, Tool]]] = {}
    for s in plan.subtasks:
        if not s.id.strip():
            errors.append("A subtask has an empty id.")
        if not s.instruction.strip():
            errors.append(f"Subtask {s.id!r} has an empty instruction.")
        if len(s.instruction) > limits.max_instruction_chars:
            errors.append(
                f"Subtask {s.id!r} has an instruction of {len(s.instruction)} characters; the limit is {limits.max_instruction_chars}."
            )
        agent = agents.get(s.agent)
        if agent is not None and not s.read_only and not may_write(agent, settings, tools):
            errors.append(
                f"Subtask {s.id!r} changes things (read_only is false) but agent {s.agent!r} cannot change "
                "anything; give it to an agent that can, or set read_only to true if it only reads."
            )
        if agent is None:
            errors.append(
                f"Subtask {s.id!r} uses agent {s.agent!r}, which is not registered; use one of: {', '.join(agents.names())}."
            )
        for dep in s.depends_on:
            if dep == s.id:
                errors.append(f"Subtask {s.id!r} depends on itself.")
            elif dep not in known:
                errors.append(f"Subtask {s.id!r} depends on {dep!r}, which does not exist.")
        if agent is not None and s.call is not None:
            errors += _call_problems(s, plan, agents, settings, tools, offered_cache)
    if plan.answer is not None and plan.answer not in known:
        errors.append(
            f"The plan's answer names {plan.answer!r}, which is not a subtask; name the subtask whose result "
            "answers the request, or set answer to null to have the results summarised."
        )
    g = graph(plan)
    if nx.is_directed_acyclic_graph(g):  # fast path: find_cycle is slow on big acyclic graphs
        return errors
    try:
        cycle = nx.find_cycle(g)
        path = " -> ".join([a for a, _ in cycle] + [cycle[0][0]])
        errors.append(f"The dependencies form a cycle: {path}. Remove one of these dependencies.")
    except nx.NetworkXNoCycle:
        pass
    return errors


def _call_problems(
    s: Subtask,
    plan: Plan,
    agents: AgentRegistry,
    settings: Settings,
    tools: ToolRegistry | None,
    cache: dict[tuple[str, bool], tuple[dict[str, Tool], dict[str, Tool]]],
) -> list[str]:
    key = (s.agent, s.read_only)
    if key not in cache:
        agent = agents.get(s.agent)
        assert agent is not None
        every = {t.name: t for t in resolve_tools(agent, settings, tools)}
        # The same least privilege the router applies: what the subtask will really be given.
        reduced = least_privilege(agent, s.read_only, settings, tools)
        cache[key] = ({t.name: t for t in resolve_tools(reduced, settings, tools)}, every)
    offered, every = cache[key]
    return call_errors(s, plan, offered, every)


def waves(plan: Plan) -> list[list[str]]:
    """Subtasks grouped by the earliest wave they can start in (topological generations)."""
    return [
        sorted(gen, key=[s.id for s in plan.subtasks].index)
        for gen in nx.topological_generations(graph(plan))
    ]
