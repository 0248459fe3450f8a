"""`shunter mcp`: Shunter as an MCP server (official `mcp` SDK v2), over stdio or streamable HTTP.

Four tools, each answering with the same object the matching CLI command prints with --json, as
structured content, plus a readable text rendering: `plan` (the dry run), `run`, `runs`, `show`.
The workspace is fixed when the server starts; a client cannot point a tool at another directory.
How `run` asks for approval, reports progress and is cancelled lives in shunter/mcp_run.py.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import Field

from router.summaries import run_details, run_summaries
from runtime.errors import ConfigError, ModelError, ShunterError
from shunter import render
from shunter.api import plan as api_plan
from shunter.api import prepare
from shunter.cli_state import _clip, _show_text, _store
from shunter.commands import _existing_store, _overrides, _plan_json
from shunter.mcp_run import RunTool
from shunter.wiring import check_workspace

INSTRUCTIONS = """Shunter plans a request into a graph of subtasks and runs them with specialist agents
(file, shell, research, writer) in the server's workspace. Call `plan` first to see the graph and its
cost estimate without running anything; `run` executes (side effects need the server's --yes or your
approval); `runs` lists recent runs and `show` gives one run in full."""

Request = Annotated[str, Field(description="What you want done, in plain words.")]


def text_and_data(text: str, data: dict[str, Any], error: bool = False) -> CallToolResult:
    """The MCP result: the text a person reads, and the --json object as structured content."""
    return CallToolResult(
        content=[TextContent(type="text", text=text)], structured_content=data, is_error=error
    )


def error_result(e: ShunterError) -> CallToolResult:
    """The --json error object of the CLI, as a tool error (one sentence, never a traceback)."""
    message = str(e)
    return text_and_data(message, {"status": "error", "error": message, "exit_code": e.exit_code}, True)


def usage_error(e: ModelError) -> ShunterError:
    """As the CLI does at planning: an unreachable server, wrong model or rejected key is a usage
    error; an overloaded or failing server (429, 5xx after the retries) is a failed call."""
    if e.status is not None and (e.status in (408, 409, 429) or e.status >= 500):
        return e
    return ConfigError(str(e))


def _need_request(request: str, verb: str) -> None:
    if not request.strip():
        raise ConfigError(
            f'No request given; say what you want done, e.g. {verb} with request "list the TODOs in src/".'
        )


class ShunterTools:
    """The tools, bound to one workspace and the server's side-effect setting."""

    def __init__(self, workspace: Path, yes: bool, model: str | None = None):
        self.workspace, self.yes, self.model = workspace, yes, model
        self.runner = RunTool(workspace, yes, model)

    async def plan(self, request: Request) -> CallToolResult:
        """Dry run: plan the request into a graph of subtasks, with its parallel waves and the cost
        estimate (tokens and USD low / expected / high). Calls only the planner; changes nothing."""
        try:
            _need_request(request, "plan")
            data, text = await self._plan(request)
        except ShunterError as e:
            return error_result(e)
        return text_and_data(text, data)

    async def _plan(self, request: str) -> tuple[dict[str, Any], str]:
        ctx = prepare(self.workspace, overrides=_overrides(self.model))
        ctx.store = _existing_store(ctx.workspace)  # memory and calibrated estimates, when there is history
        try:
            planned = await api_plan(request, ctx=ctx)
        except ModelError as e:
            raise usage_error(e) from None
        finally:
            if ctx.store is not None:
                ctx.store.close()
            ctx.close()
        text = render.plan_tree(planned.plan) + "\n\n" + render.estimate_table(planned.estimate)
        return _plan_json(planned), text

    async def run(
        self,
        request: Request,
        ctx: Context,
        max_cost_usd: Annotated[
            float | None,
            Field(description="Budget in USD: refuse to start above it, stop on reaching it."),
        ] = None,
        max_parallel: Annotated[int | None, Field(description="Subtasks running at once.")] = None,
    ) -> CallToolResult:
        """Plan and execute the request: the answer, usage and each subtask's result. Side effects
        (writing files, running commands) are refused unless the server was started with --yes, or
        you approve each one when asked. Progress is reported per subtask; cancelling this call
        cancels the run and keeps the subtasks that finished."""
        try:
            _need_request(request, "run")
            data, text = await self.runner(request, ctx, max_cost_usd, max_parallel)
        except ModelError as e:
            return error_result(usage_error(e))
        except ShunterError as e:
            return error_result(e)
        return text_and_data(text, data, error=data["status"] != "succeeded")

    async def runs(
        self, limit: Annotated[int, Field(description="How many runs to list.")] = 20
    ) -> CallToolResult:
        """Recent runs in this workspace, newest first: id, status, request, when, cost."""
        try:
            if limit < 1:
                raise ConfigError(f"limit must be at least 1, not {limit}.")
            _, store = _store(self.workspace, must_exist=False)
            rows = []
            if store is not None:  # listing creates nothing
                with store:
                    rows = run_summaries(store, limit)
        except ShunterError as e:
            return error_result(e)
        return text_and_data(_runs_text(rows, self.workspace), {"runs": rows})

    async def show(
        self,
        run_id: Annotated[
            str, Field(description="A run id, or a unique start of one, as `runs` lists them.")
        ],
    ) -> CallToolResult:
        """One run: the plan with each subtask's status, result, usage and timing; files changed."""
        try:
            _, store = _store(self.workspace)
            with store:
                data = run_details(store, run_id)
        except ShunterError as e:
            return error_result(e)
        return text_and_data(_show_text(data), data)


def _runs_text(rows: list[dict[str, Any]], workspace: Path) -> str:
    if not rows:
        return f"No runs recorded in {workspace} yet."
    lines = []
    for r in rows:
        cost = "-" if r["cost_usd"] is None else render.usd(r["cost_usd"])
        done = f"{r['subtasks_done']}/{r['subtasks_total']}"
        lines.append(
            f"{r['run_id']}  {r['created_at']}  {r['status']:<10} {done:>5}  {cost}  {_clip(r['request'], 70)}"
        )
    return "\n".join(lines)


def build_server(workspace: str | Path, yes: bool = False, model: str | None = None) -> MCPServer:
    """The MCP server for `workspace`. `yes` approves the side effects the policy allows."""
    tools = ShunterTools(check_workspace(workspace), yes, model)
    server = MCPServer("shunter", instructions=INSTRUCTIONS, version=_version())
    read = ToolAnnotations(
        read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False
    )
    server.add_tool(tools.plan, title="Plan (dry run)", annotations=ToolAnnotations(read_only_hint=True))
    server.add_tool(
        tools.run,
        title="Run a request",
        annotations=ToolAnnotations(read_only_hint=False, destructive_hint=True, open_world_hint=True),
    )
    server.add_tool(tools.runs, title="Recent runs", annotations=read)
    server.add_tool(tools.show, title="Show one run", annotations=read)
    return server


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("shunter")
    except PackageNotFoundError:
        return "0"


def parse_http(address: str, allow_remote: bool) -> tuple[str, int]:
    """HOST:PORT for --http; a host other machines can reach needs --allow-remote."""
    host, sep, port = address.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"--http wants HOST:PORT, e.g. 127.0.0.1:8765, not {address!r}.")
    if not allow_remote and not _is_loopback(host):
        raise ConfigError(
            f"Refusing to serve on {host}, which other machines may reach (anyone who can connect could run "
            "requests in this workspace); use 127.0.0.1, or pass --allow-remote to do it on purpose."
        )
    return host, int(port)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(
    workspace: Path,
    http: str | None = None,
    yes: bool = False,
    allow_remote: bool = False,
    model: str | None = None,
) -> None:
    """Serve until the client goes away (stdio) or the process is stopped (HTTP)."""
    address = parse_http(http, allow_remote) if http else None
    server = build_server(workspace, yes, model)
    if address is None:
        server.run("stdio")
        return
    import sys

    from mcp.server.transport_security import TransportSecuritySettings

    host, port = address
    # The SDK guards loopback hosts against DNS rebinding by itself; a remote host was asked for.
    security = (
        None if _is_loopback(host) else TransportSecuritySettings(enable_dns_rebinding_protection=False)
    )
    sys.stderr.write(f"shunter mcp: serving {workspace} on http://{host}:{port}/mcp\n")
    server.run("streamable-http", host=host, port=port, transport_security=security)
