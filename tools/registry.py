"""The tool registry and `execute_tool`: validate, approve, run, count, log, truncate."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import time
from collections.abc import Iterable, Mapping
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from runtime import telemetry
from runtime.config import load_settings
from runtime.context import RunContext, approve_all
from runtime.errors import RunCancelled, ShunterError, ToolDenied, ToolFailed, UsageLimitExceeded
from tools.base import Tool, drop_nulls_for_defaults
from tools.jsonschema_args import check_json_schema
from tools.truncate import truncate_result


class ToolFailure(str):
    """The text of a call that did not do what was asked (unknown tool, invalid arguments, a
    refusal, an error). The model reads it like any result; a compiled subtask that gets one
    fails. Plain `str` results are successes."""


class NotApproved(ToolFailure):
    """The text a refused call returns to the model; `summary` says what was refused."""

    def __new__(cls, text: str, summary: str) -> NotApproved:
        obj = super().__new__(cls, text)
        obj.summary = summary
        return obj

    summary: str


class ToolRegistry:
    def __init__(self, tools: Iterable[Tool] = ()):
        self._tools: dict[str, Tool] = {}
        for t in tools:
            self.add(t)

    def add(self, t: Tool) -> Tool:
        if not isinstance(t, Tool):
            raise TypeError(f"{t!r} is not a Tool; decorate the function with @tool first.")
        self._tools[t.name] = t
        return t

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def names(self) -> list[str]:
        return sorted(self._tools)

    def __contains__(self, name: str) -> bool:
        return name in self._tools

    def __iter__(self):
        return iter(self._tools.values())


def builtin_tools() -> list[Tool]:
    from tools import files, research, shell

    return [*files.TOOLS, *shell.TOOLS, *research.TOOLS]


_DEFAULT: list[ToolRegistry] = []


def default_registry() -> ToolRegistry:
    """Built-in tools plus those of the `shunter.tools` entry-point group and @register_tool."""
    if not _DEFAULT:
        reg = ToolRegistry(builtin_tools())
        for ep in entry_points(group="shunter.tools"):
            obj = ep.load()
            for t in obj if isinstance(obj, list | tuple) else [obj]:
                reg.add(t)
        _DEFAULT.append(reg)
    return _DEFAULT[0]


def register_tool(t: Tool) -> Tool:
    """Decorator (under @tool) that adds a custom tool to the default registry."""
    return default_registry().add(t)


def format_validation(name: str, err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "arguments"
        parts.append(f"{loc}: {e['msg']}")
    return (
        f"Invalid arguments for {name}: " + "; ".join(parts) + ". Fix the arguments and call the tool again."
    )


def validate_arguments(t: Tool, args: dict[str, Any]) -> Any:
    """The parsed arguments, or raises ValidationError (see format_validation)."""
    if t.parameters is not None:
        return check_json_schema(t, args)
    return t.args_model.model_validate(drop_nulls_for_defaults(t.args_model, args))


@telemetry.traced_tool(lambda result: isinstance(result, ToolFailure))
async def aexecute_tool(
    name: str, args: dict[str, Any] | str, ctx: RunContext, allowed: Mapping[str, Tool] | None = None
) -> str:
    """Run one tool call, for an agent's loop and for a compiled subtask alike: validation,
    approval, the tool's own policy and scope checks, usage, the event log and truncation all
    happen here and nowhere else. `allowed` is the caller's own tools: nothing else can run.
    Every failure comes back as a ToolFailure text; only cancellation and usage limits
    propagate, because they end the run, not the call."""
    if allowed is not None:
        t = allowed.get(name)
        have = ", ".join(sorted(allowed))
    else:
        registry: ToolRegistry = ctx.tools or default_registry()
        t = registry.get(name)
        have = ", ".join(registry.names())
    if t is None:
        ctx.emit("policy.unknown_tool", level="WARNING", tool=name)
        return ToolFailure(
            f"Tool {name!r} is not available to this agent; it was not run. Available tools: {have}."
        )
    if isinstance(args, str):
        try:
            args = json.loads(args or "{}")
        except json.JSONDecodeError as e:
            return ToolFailure(f"Invalid arguments for {name}: not valid JSON ({e.msg}). Send a JSON object.")
    if not isinstance(args, dict):
        return ToolFailure(f"Invalid arguments for {name}: expected a JSON object.")
    try:
        parsed = validate_arguments(t, args)
    except ValidationError as e:
        return ToolFailure(format_validation(name, e))

    ctx.cancel.raise_if_cancelled()
    ctx.usage.record_tool_call(ctx.subtask_id, ctx.agent)
    started = time.monotonic()
    ctx.emit("tool.call", tool=name, args=_short_args(args))
    try:
        if t.approval is not None:
            request = t.approval(ctx, parsed.model_dump())
            if request is not None and not await _ask(ctx, request):
                ctx.emit("tool.refused", tool=name, reason="not approved")
                return NotApproved(
                    f"{name} was not approved by the user; it was not run. Do not retry it; report what you could not do.",
                    request.summary,
                )
        if t.effect == "read":
            ctx.workspace_readers.add(ctx.subtask_id)
        if ctx.durable is not None and not t.read_only:  # a recorded step: never written twice
            result = await ctx.cancel.guard(ctx.durable.tool_call(name, ctx, lambda: t.invoke(ctx, parsed)))
        else:
            result = await ctx.cancel.guard(t.invoke(ctx, parsed))
        text = result if isinstance(result, str) else json.dumps(result, default=str)
    except (RunCancelled, UsageLimitExceeded):
        raise
    except ToolDenied as e:
        ctx.emit("tool.denied", level="WARNING", tool=name, reason=str(e))
        return ToolFailure(f"{name} was refused: {e}")
    except ToolFailed as e:
        text = ToolFailure(str(e))
    except asyncio.CancelledError:
        raise
    except Exception as e:  # noqa: BLE001 - a tool bug must reach the model as text, not crash the run
        ctx.emit("tool.error", level="WARNING", tool=name, error=f"{type(e).__name__}: {e}")
        text = ToolFailure(f"{name} failed: {type(e).__name__}: {e}")
    out = truncate_result(text, ctx.settings.tools.max_result_chars, ctx.state_dir / "outputs", label=name)
    failed = isinstance(text, ToolFailure)
    ctx.emit(
        "tool.result",
        tool=name,
        chars=len(text),
        truncated=len(out) != len(text),
        ok=not failed,
        seconds=round(time.monotonic() - started, 4),
        # The report shows why a call failed; the head is enough and keeps the log small.
        **({"error": str(text)[:300]} if failed else {}),
    )
    return ToolFailure(out) if isinstance(text, ToolFailure) else out


async def _ask(ctx: RunContext, request: Any) -> bool:
    # Parallel subtasks ask one at a time: prompts are queued, never interleaved.
    asked = time.monotonic()
    with telemetry.approval_span(ctx, request) as sp:
        async with ctx.approval_lock:
            # A cancelled run must not wait for someone to answer a prompt.
            ok = await ctx.cancel.guard(ctx.approve(request))
        sp.set_attribute("shunter.approval.granted", ok)
    waited = round(time.monotonic() - asked, 4)  # the report shows the wait for an answer
    ctx.emit("approval", tool=request.tool, summary=request.summary, approved=ok, waited_s=waited)
    return ok


def _short_args(args: dict[str, Any]) -> dict[str, Any]:
    return {k: (v[:200] + "…" if isinstance(v, str) and len(v) > 200 else v) for k, v in args.items()}


def execute_tool(name: str, args: dict[str, Any] | str, ctx: RunContext | None = None) -> str:
    """Run one tool by name and return its result as text; errors come back as text too.

    Without `ctx`, the tool runs in the current directory as a direct call by you, so side
    effects are approved (the policy's `deny` still holds).
    """
    if ctx is None:
        try:
            settings = load_settings(Path.cwd())
        except ShunterError as e:
            return f"{name} was not run: {e}"
        ctx = RunContext(workspace=Path.cwd(), settings=settings, approve=approve_all)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(aexecute_tool(name, args, ctx))
    # Called from async code: run it on a loop of its own in a worker thread (prefer awaiting
    # aexecute_tool there, which does not block the caller's loop).
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, aexecute_tool(name, args, ctx)).result()
