"""The specialist registry: built-ins, `@register_agent`, and the `shunter.agents` entry points."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from importlib.metadata import entry_points

from loguru import logger

from agents.base import Agent
from runtime.config import Settings
from runtime.errors import ConfigError
from tools.base import Tool
from tools.registry import ToolRegistry, default_registry

_REGISTERED: list[Agent] = []


def register_agent(agent: Agent) -> Agent:
    """Add a specialist to every registry made after this call (use at import time of a plugin)."""
    if not isinstance(agent, Agent):
        raise TypeError(f"register_agent expects an Agent, got {type(agent).__name__}.")
    _REGISTERED.append(agent)
    return agent


class AgentRegistry:
    def __init__(self, agents: Iterable[Agent] = (), sources: dict[str, str] | None = None):
        self._agents: dict[str, Agent] = {}
        self.sources: dict[str, str] = dict(sources or {})
        for a in agents:
            self.add(a)

    def add(self, agent: Agent, source: str = "built-in") -> None:
        self._agents[agent.name] = agent
        self.sources.setdefault(agent.name, source)

    def get(self, name: str) -> Agent | None:
        return self._agents.get(name)

    def names(self) -> list[str]:
        return list(self._agents)

    def __iter__(self):
        return iter(self._agents.values())

    def __contains__(self, name: str) -> bool:
        return name in self._agents


def _load_entry_points(registry: AgentRegistry) -> None:
    for ep in entry_points(group="shunter.agents"):
        try:
            obj = ep.load()
            obj = obj() if callable(obj) and not isinstance(obj, Agent) else obj
            for agent in obj if isinstance(obj, list | tuple) else [obj]:
                registry.add(agent, source=f"plugin {ep.value}")
        except Exception as e:  # noqa: BLE001 - a broken plugin must not take the CLI down
            logger.bind(human=True).warning(f"Could not load the agent plugin {ep.name!r} ({ep.value}): {e}")


def default_agents() -> AgentRegistry:
    from agents.builtin import BUILTIN_AGENTS

    registry = AgentRegistry(BUILTIN_AGENTS)
    _load_entry_points(registry)
    for agent in _REGISTERED:
        registry.add(agent, source="registered")
    return registry


def resolve_tools(agent: Agent, settings: Settings, tools: ToolRegistry | None = None) -> list[Tool]:
    """The agent's tools as Tool objects, plus any extra tools given to it in config."""
    tools = tools or default_registry()
    out: list[Tool] = []
    extra = None if agent.tools_final else settings.agents.get(agent.name)
    for t in [*agent.tools, *(extra.extra_tools if extra else [])]:
        resolved = t if isinstance(t, Tool) else tools.get(t)
        if resolved is None:
            raise ConfigError(
                f"Agent {agent.name!r} names the tool {t!r}, which is not registered; check the name or install the plugin that provides it."
            )
        if resolved.name not in {o.name for o in out}:
            out.append(resolved)
    return out


def agent_model(agent: Agent, settings: Settings) -> str:
    override = settings.agents.get(agent.name)
    return (override.model if override and override.model else None) or agent.model or settings.model.name


def may_write(agent: Agent, settings: Settings, tools: ToolRegistry | None = None) -> bool:
    return any(not t.read_only for t in resolve_tools(agent, settings, tools))


def least_privilege(
    agent: Agent, read_only: bool, settings: Settings, tools: ToolRegistry | None = None
) -> Agent:
    """A read-only subtask gets only its agent's read-only tools (and tools with a read-only
    mode, such as run_command limited to commands the policy proves read-only)."""
    if not read_only:
        return agent
    kept = tuple(t for t in resolve_tools(agent, settings, tools) if t.read_only or t.read_only_mode)
    return dataclasses.replace(agent, tools=kept, tools_final=True)
