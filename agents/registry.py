"""The specialist registry: built-ins, `@register_agent`, and the `shunter.agents` entry points."""

from __future__ import annotations

import dataclasses
import fnmatch
import functools
import re
import sys
from collections.abc import Iterable
from importlib.metadata import EntryPoint, entry_points

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


@functools.lru_cache(maxsize=4)
def _plugin_entry_points(path: tuple[str, ...]) -> tuple[EntryPoint, ...]:
    # Reading every installed distribution's metadata costs about 8 ms, and a DBOS worker builds
    # the agents for every subtask it takes; what is installed changes only with the path.
    return tuple(entry_points(group="shunter.agents"))


def _load_entry_points(registry: AgentRegistry) -> None:
    for ep in _plugin_entry_points(tuple(sys.path)):
        try:
            obj = ep.load()
            obj = obj() if callable(obj) and not isinstance(obj, Agent) else obj
            for agent in obj if isinstance(obj, list | tuple) else [obj]:
                registry.add(agent, source=f"plugin {ep.value}")
        except Exception as e:  # noqa: BLE001 - a broken plugin must not take the CLI down
            logger.bind(human=True).warning(f"Could not load the agent plugin {ep.name!r} ({ep.value}): {e}")


def default_agents(settings: Settings | None = None) -> AgentRegistry:
    """Built-ins, plugins, @register_agent, and with `settings` the specialists declared in
    config ([agents.NAME] with a description)."""
    from agents.builtin import BUILTIN_AGENTS

    registry = AgentRegistry(BUILTIN_AGENTS)
    _load_entry_points(registry)
    for agent in _REGISTERED:
        registry.add(agent, source="registered")
    if settings is not None:
        for agent in config_agents(settings, registry):
            registry.add(agent, source="config")
    return registry


def config_agents(settings: Settings, known: AgentRegistry) -> list[Agent]:
    """[agents.NAME] entries with a description and no agent of that name: specialists with no
    Python code, whose tools are their MCP servers' (`mcp = ["git"]`) and their extra_tools."""
    out = []
    for name, cfg in settings.agents.items():
        for server in cfg.mcp:
            if server not in settings.mcp.servers:
                raise ConfigError(
                    f"[agents.{name}] mcp names the server {server!r}, which is not in [mcp.servers]; "
                    f"add [mcp.servers.{server}] or fix the name."
                )
        if name in known or cfg.description is None:
            continue
        if not re.fullmatch(r"[a-z][a-z0-9_-]*", name):
            raise ConfigError(
                f"[agents.{name}]: an agent name is lower-case letters, digits, '_' and '-'; rename it."
            )
        out.append(Agent(name=name, description=cfg.description))
    return out


def _patterns(agent: Agent, settings: Settings) -> list[Tool | str]:
    cfg = None if agent.tools_final else settings.agents.get(agent.name)
    extra: list[Tool | str] = []
    if cfg is not None:
        extra = [*(f"{server}__*" for server in cfg.mcp), *cfg.extra_tools]
    return [*agent.tools, *extra]


def mcp_servers_used(agents: Iterable[Agent], settings: Settings) -> list[str]:
    """The MCP servers whose tools some agent may be given: only these are started for a run."""
    servers = list(settings.mcp.servers)
    used: set[str] = set()
    for agent in agents:
        for p in _patterns(agent, settings):
            if isinstance(p, str):
                used.update(s for s in servers if fnmatch.fnmatchcase(f"{s}__", p.split("__")[0] + "__"))
    return [s for s in servers if s in used]


def resolve_tools(agent: Agent, settings: Settings, tools: ToolRegistry | None = None) -> list[Tool]:
    """The agent's tools as Tool objects, plus any extra tools given to it in config."""
    tools = tools or default_registry()
    out: dict[str, Tool] = {}
    for t in _patterns(agent, settings):
        if isinstance(t, str) and _GLOB.search(t):
            # A glob ("git__*") takes what is there: an MCP server's tools are in the run's
            # registry once it is connected, and nothing before.
            matched = [tools.get(n) for n in tools.names() if fnmatch.fnmatchcase(n, t)]
            out.update((m.name, m) for m in matched if m is not None and m.name not in out)
            continue
        resolved = t if isinstance(t, Tool) else tools.get(t)
        if resolved is None:
            raise ConfigError(
                f"Agent {agent.name!r} names the tool {t!r}, which is not registered; check the name or install the plugin that provides it."
            )
        out.setdefault(resolved.name, resolved)
    return list(out.values())


_GLOB = re.compile(r"[*?\[]")


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
