"""`shunter agents` and `shunter tools`: what a run can use. Both connect to the configured MCP
servers (and stop them again) so that what they list is what a run would get."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from agents.mcp import mcp_tools
from agents.registry import AgentRegistry, default_agents, may_write, resolve_tools
from runtime.context import RunContext
from shunter.api import prepare
from tools.base import Tool
from tools.registry import default_registry


async def _catalog(ctx: RunContext) -> tuple[AgentRegistry, list[dict[str, Any]], list[dict[str, Any]]]:
    registry = default_agents(ctx.settings)
    async with mcp_tools(ctx, registry, every=True):
        agents: list[dict[str, Any]] = []
        users: dict[str, list[str]] = {}
        for a in registry:
            tools = resolve_tools(a, ctx.settings, ctx.tools)
            for t in tools:
                users.setdefault(t.name, []).append(a.name)
            agents.append(
                {
                    "name": a.name,
                    "description": a.description,
                    "tools": [t.name for t in tools],
                    "may_write": may_write(a, ctx.settings, ctx.tools),
                    "source": registry.sources.get(a.name, "built-in"),
                }
            )
        every: list[Tool] = list(ctx.tools or default_registry())
        rows = [
            {
                "name": t.name,
                "effect": t.effect,
                "read_only": t.read_only,
                "needs_approval": t.approval is not None,
                "source": _source(t.source, t.name),
                "agents": users.get(t.name, []),
                "description": t.description.split("\n")[0],
            }
            for t in sorted(every, key=lambda t: (t.source != "built-in", t.name))
        ]
    return registry, agents, rows


def _source(source: str, name: str) -> str:
    from tools.registry import builtin_tools

    if source == "built-in" and name not in {t.name for t in builtin_tools()}:
        return "plugin"
    return source


def _with_ctx(workspace: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    ctx = prepare(workspace)
    try:
        _, agents, tools = asyncio.run(_catalog(ctx))
    finally:
        ctx.close()
    return agents, tools


def agents_command(workspace: Path, as_json: bool) -> None:
    rows, _ = _with_ctx(workspace)
    if as_json:
        print(json.dumps({"agents": rows}))
        return
    for r in rows:
        print(
            f"{r['name']:<10} {'writes' if r['may_write'] else 'read-only':<9} [{r['source']}] {r['description']}"
        )
        print(f"{'':<10} tools: {', '.join(r['tools']) or 'none'}")


def tools_command(workspace: Path, as_json: bool) -> None:
    _, rows = _with_ctx(workspace)
    if as_json:
        print(json.dumps({"tools": rows}))
        return
    width = max((len(r["name"]) for r in rows), default=10)
    for r in rows:
        effect = r["effect"] + (", asks first" if r["needs_approval"] else "")
        agents = ", ".join(r["agents"]) or "no agent"
        print(f"{r['name']:<{width}}  {effect:<20} [{r['source']}] agents: {agents}")
        print(f"{'':<{width}}  {r['description']}")
