"""An MCP server's tool as a Shunter Tool: its name, its effect, its schema and its results.

Names are `SERVER__TOOL` (letters, digits, `_` and `-` only, at most 64 characters, as OpenAI
tool names must be). A tool is read-only only when the server annotates it readOnlyHint and your
config does not say otherwise: an MCP annotation is the server's claim, so the safe default for
an unannotated tool is to ask first, like write_file.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

import mcp_types as types

from runtime.config import McpServer
from runtime.context import ApprovalRequest, RunContext
from runtime.errors import ToolFailed
from tools.base import AnyArguments, Effect, Tool

MAX_NAME = 64
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")

Caller = Callable[[RunContext, str, dict[str, Any]], Awaitable[types.CallToolResult]]


def tool_name(server: str, tool: str) -> str:
    """`git` + `git_log` → `git__git_log`; unsafe characters become `_`; a name over 64
    characters keeps its start and gets a short hash, so two long names stay apart."""
    name = f"{server}__{_UNSAFE.sub('_', tool)}"
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha256(tool.encode()).hexdigest()[:8]
    return f"{name[: MAX_NAME - 9]}_{digest}"


def effect_of(tool: types.Tool, config: McpServer) -> Effect | None:
    """ "read" or "network" (read-only), "write" (asks first), or None (denied in config)."""
    chosen = config.effects.get(tool.name)
    if chosen == "deny":
        return None
    notes = tool.annotations
    read_only = chosen == "read" or (chosen is None and notes is not None and notes.read_only_hint is True)
    if not read_only:
        return "write"
    # openWorldHint defaults to true: only a tool that says it stays local counts as a reader of
    # local data (which makes sending data out later ask first); the others reach the outside.
    return "read" if notes is not None and notes.open_world_hint is False else "network"


def describe(tool: types.Tool, effect: Effect) -> str:
    text = (tool.description or tool.title or tool.name).strip()
    notes = tool.annotations
    if effect == "write" and notes is not None and notes.destructive_hint:
        text += " (destructive)"
    return text


def input_schema(tool: types.Tool) -> dict[str, Any]:
    schema = dict(tool.input_schema or {})
    schema.setdefault("type", "object")
    schema.setdefault("properties", {})
    return schema


def make_mcp_tool(server: str, tool: types.Tool, config: McpServer, call: Caller) -> Tool | None:
    effect = effect_of(tool, config)
    if effect is None:
        return None
    name = tool_name(server, tool.name)
    destructive = bool(tool.annotations and tool.annotations.destructive_hint)

    async def run(ctx: RunContext, arguments: dict[str, Any]) -> str:
        return result_text(await call(ctx, tool.name, arguments))

    def approval(ctx: RunContext, arguments: dict[str, Any]) -> ApprovalRequest:
        shown = json.dumps(arguments, ensure_ascii=False)
        return ApprovalRequest(
            kind="other",
            tool=name,
            summary=f"{name} {shown[:300]}",
            detail=f"MCP server {server!r}, tool {tool.name!r}" + (" (destructive)" if destructive else ""),
        )

    return Tool(
        name=name,
        description=describe(tool, effect),
        fn=run,
        args_model=AnyArguments,
        effect=effect,
        read_only=effect in ("read", "network"),
        takes_ctx=True,
        approval=None if effect in ("read", "network") else approval,
        parameters=input_schema(tool),
        source=f"mcp {server}",
    )


def result_text(result: types.CallToolResult) -> str:
    """The call's content as text, its structured content kept as JSON after it. A result the
    server marks isError becomes a failure the model (or a compiled subtask) sees as one."""
    parts = [_content_text(c) for c in result.content]
    text = "\n".join(p for p in parts if p)
    structured = result.structured_content
    if structured is not None:
        as_json = json.dumps(structured, ensure_ascii=False, default=str)
        if not _same_json(text, structured):
            text = f"{text}\n\nStructured content: {as_json}" if text else as_json
    if result.is_error:
        raise ToolFailed(f"The MCP tool reported an error: {text or 'no details given'}")
    return text


def _same_json(text: str, structured: Any) -> bool:
    try:
        return json.loads(text) == structured
    except ValueError:
        return False


def _content_text(c: Any) -> str:
    if isinstance(c, types.TextContent):
        return c.text
    if isinstance(c, types.ImageContent | types.AudioContent):
        size = len(c.data) * 3 // 4
        return f"[{c.type}: {c.mime_type}, about {size} bytes, not shown]"
    if isinstance(c, types.ResourceLink):
        return f"[resource link: {c.uri}" + (f" ({c.description})" if c.description else "") + "]"
    if isinstance(c, types.EmbeddedResource):
        res = c.resource
        if isinstance(res, types.TextResourceContents):
            return f"[resource {res.uri}]\n{res.text}"
        return f"[resource {res.uri}: binary, not shown]"
    return f"[{getattr(c, 'type', 'content')}: not shown]"
