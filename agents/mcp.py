"""Giving a run the tools of the MCP servers its agents use ([mcp.servers], `extra_tools =
["git__*"]`, `[agents.NAME] mcp = ["git"]`).

The servers start when the run begins planning, because the planner must see their tools (to
choose agents, to write compiled calls, to check read-only subtasks); servers no agent uses never
start. They stop when the run ends, however it ends.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from agents.registry import AgentRegistry, mcp_servers_used
from runtime.context import RunContext
from tools.mcp.hub import McpHub
from tools.registry import ToolRegistry, default_registry


@asynccontextmanager
async def mcp_tools(
    ctx: RunContext, agents: AgentRegistry, every: bool = False
) -> AsyncIterator[McpHub | None]:
    """While inside, `ctx.tools` holds the registry plus the MCP tools of the servers `agents`
    use (of every configured server with `every`, for `shunter tools`)."""
    servers = list(ctx.settings.mcp.servers) if every else mcp_servers_used(agents, ctx.settings)
    if not servers:
        yield None
        return
    hub = McpHub(
        {s: ctx.settings.mcp.servers[s] for s in servers}, log_dir=ctx.state_dir / "mcp", emit=ctx.emit
    )
    previous = ctx.tools
    try:
        listed = await ctx.cancel.guard(asyncio.gather(*(hub.tools(s) for s in servers)))
        registry = ToolRegistry(list(previous or default_registry()))
        for tools in listed:
            for t in tools:
                registry.add(t)
        ctx.tools = registry
        yield hub
    finally:
        ctx.tools = previous
        await hub.aclose()
