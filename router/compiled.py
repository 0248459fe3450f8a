"""Running a compiled subtask: the planner's one tool call, with no model request.

It goes through `aexecute_tool` like any agent's call (schema validation, the agent's own
least-privilege tools, approvals, the command policy, the path scope, the sandbox, truncation,
the event log, usage, undo records); this module only fills in the references and turns the
tool's outcome into the subtask's status.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping

from agents.base import Agent
from agents.loop import AgentResult
from agents.registry import resolve_tools
from planner.calls import BadReference, substitute
from planner.models import Subtask
from runtime.context import RunContext
from runtime.errors import RunCancelled, UsageLimitExceeded
from runtime.usage import Usage
from tools.registry import NotApproved, ToolFailure, aexecute_tool


async def run_call(
    s: Subtask, agent: Agent, ctx: RunContext, results: Mapping[str, str], plan_ids: set[str]
) -> AgentResult:
    """Run `s.call` for `agent` (already least-privileged for the subtask) in the subtask's
    view `ctx`; `results` are the results of its finished dependencies."""
    assert s.call is not None
    started = time.monotonic()
    result = AgentResult(status="failed", text="")
    tools = {t.name: t for t in resolve_tools(agent, ctx.settings, ctx.tools)}
    tool = tools.get(s.call.tool)
    try:
        if tool is None:  # validation refuses this; a plan edited in the store must not get past it
            raise BadReference(f"{s.call.tool} is not a tool of this subtask's agent; it was not run.")
        arguments = substitute(tool, s.call.arguments, results, plan_ids)
        out = await aexecute_tool(s.call.tool, arguments, ctx, tools)
        result.tool_calls.append(
            {"tool": s.call.tool, "arguments": json.dumps(arguments)[:500], "result_chars": len(out)}
        )
        if isinstance(out, NotApproved):
            result.text, result.error = str(out), f"Not approved: {s.call.tool} ({out.summary})."
        elif isinstance(out, ToolFailure):
            result.text, result.error = str(out), str(out)
        else:
            result.status, result.text = "succeeded", out
    except BadReference as e:
        result.error = str(e)
        ctx.emit("call.refused", level="WARNING", tool=s.call.tool, reason=str(e))
    except RunCancelled as e:
        result.status, result.error = "cancelled", str(e)
    except UsageLimitExceeded as e:
        result.status, result.error = "limit", str(e)
    result.files_changed = ctx.file_changes.for_subtask(ctx.subtask_id)
    result.usage = ctx.usage.by_subtask.get(ctx.subtask_id or "", Usage())
    result.seconds = time.monotonic() - started
    return result  # the scheduler logs subtask.finished with the status and error
