"""The MCP sessions of one run: each server is connected on first use, shared by every subtask
(calls in parallel go over the same session), and closed when the run ends, is cancelled or
fails, so no server process outlives the run.

Each connection lives in a task of its own: the SDK's transports are anyio context managers that
must be left in the task that entered them, while tool calls come from the subtasks' tasks.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any, TextIO

import mcp_types as types
from mcp import Client, MCPError, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from runtime.config import McpServer
from runtime.context import RunContext
from runtime.errors import McpServerError, ToolFailed
from tools.base import Tool
from tools.mcp.convert import make_mcp_tool
from tools.proc import dying_with_us

CLOSE_TIMEOUT_S = 10.0


def _unwrap(e: BaseException) -> BaseException:
    while isinstance(e, BaseExceptionGroup) and len(e.exceptions) == 1:
        e = e.exceptions[0]
    return e


def _reason(e: BaseException) -> str:
    e = _unwrap(e)
    if isinstance(e, FileNotFoundError):
        return f"its program was not found ({e.filename or e})"
    if isinstance(e, OSError):
        return e.strerror or str(e)
    if isinstance(e, MCPError):
        return e.error.message
    return str(e) or type(e).__name__


class _Connection:
    def __init__(self, name: str, config: McpServer, log_dir: Path | None):
        self.name = name
        self.config = config
        self.log_dir = log_dir
        self.client: Client | None = None
        self.tools: list[types.Tool] = []
        self.pid: int | None = None
        self._ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._closing = asyncio.Event()
        self._task = asyncio.create_task(self._serve(), name=f"mcp {name}")

    def _target(self, errlog: TextIO) -> Any:
        c = self.config
        if c.url is not None:
            http = create_mcp_http_client(headers=dict(c.headers) or None)
            return streamable_http_client(c.url, http_client=http), http
        command, args = c.command or "", list(c.args)
        env = dict(c.env)
        argv, env = dying_with_us([command, *args], env, group=False)  # even on kill -9
        command, args = argv[0], argv[1:]
        return StdioServerParameters(command=command, args=args, env=env, cwd=c.cwd), None

    def _errlog(self) -> TextIO:
        if self.log_dir is None:
            return open(os.devnull, "w")  # noqa: SIM115 - closed in _serve
        self.log_dir.mkdir(parents=True, exist_ok=True)
        return open(self.log_dir / f"{self.name}.log", "w", encoding="utf-8")  # noqa: SIM115

    async def _serve(self) -> None:
        errlog = self._errlog()
        try:
            target, http = self._target(errlog)
            if isinstance(target, StdioServerParameters):
                from mcp.client.stdio import stdio_client

                target = stdio_client(target, errlog=errlog)
            async with Client(target, client_info=_INFO) as client:
                self.client = client
                self.tools = await _list_all(client)
                self._ready.set_result(None)
                await self._closing.wait()
            if http is not None:
                await http.aclose()
        except BaseException as e:
            if not self._ready.done():
                self._ready.set_exception(e)
            elif not isinstance(e, asyncio.CancelledError):
                raise
        finally:
            self.client = None
            errlog.close()

    async def ready(self) -> None:
        timeout = self.config.startup_timeout_s
        try:
            await asyncio.wait_for(asyncio.shield(self._ready), timeout)
        except TimeoutError:
            await self.close()
            raise McpServerError(
                f"The MCP server {self.name!r} did not answer within {timeout:g} s; check "
                f"[mcp.servers.{self.name}] (or raise its startup_timeout_s){self._log_hint()}."
            ) from None
        except asyncio.CancelledError:
            raise
        except BaseException as e:  # noqa: BLE001 - whatever the transport raised, say it once
            said = self._last_log_line()
            raise McpServerError(
                f"The MCP server {self.name!r} could not be started: {_reason(e)}"
                + (f" (it said: {said})" if said else "")
                + "; check "
                f"[mcp.servers.{self.name}] in your config{self._log_hint()}."
            ) from None

    def _last_log_line(self) -> str:
        if self.log_dir is None:
            return ""
        try:
            lines = (self.log_dir / f"{self.name}.log").read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return lines[-1].strip()[:300] if lines else ""

    def _log_hint(self) -> str:
        if self.log_dir is None or self.config.command is None:
            return ""
        return f" and its log {self.log_dir / (self.name + '.log')}"

    async def close(self) -> None:
        self._closing.set()
        if not self._ready.done():
            self._task.cancel()
        with suppress(BaseException):
            # Shielded: a cancelled run still waits for its servers to stop (bounded by the SDK).
            await asyncio.shield(asyncio.wait_for(self._task, CLOSE_TIMEOUT_S))


async def _list_all(client: Client) -> list[types.Tool]:
    tools: list[types.Tool] = []
    cursor: str | None = None
    for _ in range(100):
        page = await client.list_tools(cursor=cursor)
        tools += page.tools
        cursor = page.next_cursor
        if cursor is None:
            break
    return tools


_INFO = types.Implementation(name="shunter", version="0.1.0")


class McpHub:
    """The run's MCP servers ([mcp.servers]); `await hub.tools(name)` connects on first use."""

    def __init__(
        self,
        servers: dict[str, McpServer],
        log_dir: Path | None = None,
        emit: Callable[..., None] | None = None,
    ):
        self.servers = servers
        self.log_dir = log_dir
        self._emit = emit or (lambda *a, **k: None)
        self._connections: dict[str, _Connection] = {}

    async def connect(self, name: str) -> _Connection:
        if name not in self.servers:
            raise McpServerError(
                f"There is no MCP server {name!r}; add [mcp.servers.{name}] to your config or fix the name."
            )
        conn = self._connections.get(name)
        if conn is None:  # no await before it is stored: parallel first uses share one connection
            conn = self._connections[name] = _Connection(name, self.servers[name], self.log_dir)
            started = asyncio.get_running_loop().time()
            await conn.ready()
            seconds = round(asyncio.get_running_loop().time() - started, 3)
            self._emit("mcp.connected", server=name, tools=len(conn.tools), seconds=seconds)
        await conn.ready()
        return conn

    async def tools(self, name: str) -> list[Tool]:
        """The server's tools as Shunter tools (listed once per run), without the denied ones."""
        conn = await self.connect(name)

        async def call(ctx: RunContext, tool: str, arguments: dict[str, Any]) -> types.CallToolResult:
            return await self.call(name, tool, arguments)

        made = (make_mcp_tool(name, t, conn.config, call) for t in conn.tools)
        return [t for t in made if t is not None]

    async def call(self, server: str, tool: str, arguments: dict[str, Any]) -> types.CallToolResult:
        conn = await self.connect(server)
        client = conn.client
        if client is None:
            raise ToolFailed(f"The MCP server {server!r} has stopped; {tool} was not run.")
        timeout = conn.config.call_timeout_s
        try:
            return await client.call_tool(tool, arguments, read_timeout_seconds=timeout)
        except MCPError as e:
            raise ToolFailed(f"The MCP server {server!r} refused the call: {e.error.message}") from None
        except TimeoutError:
            raise ToolFailed(
                f"The MCP server {server!r} did not answer {tool} within {timeout:g} s."
            ) from None
        except anyio_closed_errors() as e:
            raise ToolFailed(f"The MCP server {server!r} closed the connection ({_reason(e)}).") from None

    async def aclose(self) -> None:
        conns = list(self._connections.values())
        self._connections.clear()
        await asyncio.gather(*(c.close() for c in conns))
        for c in conns:
            self._emit("mcp.closed", server=c.name)


def anyio_closed_errors() -> tuple[type[BaseException], ...]:
    import anyio

    return (anyio.ClosedResourceError, anyio.BrokenResourceError, anyio.EndOfStream, ConnectionError)
