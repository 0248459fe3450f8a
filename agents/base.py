"""`Agent`: a declarative specialist. Per-run state lives in the run, never here, so one
Agent serves many subtasks at once."""

from __future__ import annotations

from dataclasses import dataclass, field

from tools.base import Tool


@dataclass(frozen=True)
class Agent:
    name: str
    """What plans and `shunter agents` call it; lower-case, no spaces."""
    description: str
    """What the planner reads to choose it: what it is good at, what it cannot do."""
    tools: tuple[Tool | str, ...] = ()
    """Tools it may call: Tool objects or names in the tool registry. Nothing else is offered."""
    prompt: str = "specialist"
    """Name of a template in prompts/ ($name, $description, $workspace, $tools, $rules, $sandbox)."""
    prompt_template: str | None = None
    """Inline template text instead of a named one (handy for plugins)."""
    model: str | None = None
    """Model override; config [agents.NAME] model wins over it."""
    max_iterations: int | None = None
    """Loop iterations per subtask; None means settings.limits.agent_max_iterations."""
    output_tokens_hint: int = field(default=400)
    """Typical output tokens per iteration, for the cost estimate before history exists."""
    iterations_hint: float = field(default=3.0)
    """Typical iterations per subtask, for the cost estimate before history exists."""
    tools_final: bool = field(default=False, repr=False)
    """Set by least_privilege: `tools` already is the whole, filtered set (config's extra tools
    included), so they are not added again."""
