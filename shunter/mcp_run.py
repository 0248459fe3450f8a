"""The MCP `run` tool: approvals through MCP elicitation, progress notifications from the run's
subtask events, and cancellation of the request turned into cancellation of the run.

Side effects follow the server's own setting, never the client's say-so: with `--yes` the server
approves what the policy allows (like `shunter run --yes`); without it each side effect is put to
the user through elicitation when the client can be asked, and refused otherwise. On the
2026-07-28 protocol the questions go out in rounds of the call instead (shunter/mcp_rounds.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import anyio
from mcp.server.mcpserver import Context
from mcp_types import InputRequiredResult
from pydantic import BaseModel, Field

from agents.registry import default_agents
from router.records import RunResult, SubtaskRecord
from router.run import Planned
from runtime.context import ApprovalRequest, RunContext
from runtime.errors import ConfigError
from runtime.store import Store
from shunter import render
from shunter.api import run as api_run
from shunter.approve import shown
from shunter.commands import flag_overrides
from shunter.mcp_rounds import QUESTION_TIMEOUT_S, LiveRun, LiveRuns, asks_in_rounds
from shunter.wiring import (
    OpenAIProvider,
    check_budget_can_be_enforced,
    check_workspace,
    make_context,
    settings_for,
)

_FINISHED = ("succeeded", "failed", "skipped", "cancelled", "limit")


class Approval(BaseModel):
    """What the user answers to one approval question (an elicitation form)."""

    approve: bool = Field(default=True, description="Allow this action.")
    always: bool = Field(
        default=False, description="Also allow every later action of this kind in this run without asking."
    )


class McpApprover:
    """The run's approval callback. Every decision is kept, so the result says what was refused."""

    def __init__(self, mcp: Context, yes: bool, run_id: str, live: LiveRun | None = None):
        self.mcp, self.yes, self.run_id, self.live = mcp, yes, run_id, live
        self.always: set[str] = set()
        self.decisions: list[dict[str, Any]] = []

    def can_ask(self) -> bool:
        """Elicitation needs a client that declared it and a channel that carries a server request
        during a call (the 2026-07-28 protocol forbids those; JSON-response HTTP has no back-channel)."""
        caps = self.mcp.client_capabilities
        return caps is not None and caps.elicitation is not None and self.mcp.session.can_send_request

    async def __call__(self, request: ApprovalRequest) -> bool:
        if self.yes:
            return self._note(request, True, "the server was started with --yes")
        if request.kind in self.always:
            return self._note(request, True, "approved for the rest of the run")
        if self.live is None and not self.can_ask():
            return self._note(
                request,
                False,
                "refused: the server was started without --yes and this client cannot be asked (no elicitation)",
            )
        try:
            action, data = await self._ask(self._question(request))
        except Exception as e:  # the client failed to answer: a side effect is never approved by default
            return self._note(request, False, f"refused: asking the client failed ({e})")
        if action != "accept" or data is None or not data.approve:
            return self._note(request, False, f"refused by the user ({action})")
        if data.always:
            self.always.add(request.kind)
        return self._note(request, True, "approved by the user")

    async def _ask(self, question: str) -> tuple[str, Approval | None]:
        if self.live is None:  # a server request during the call (handshake-era protocols)
            answer = await self.mcp.elicit(question, Approval)
            return answer.action, answer.data if answer.action == "accept" else None
        reply = await self.live.ask(question)  # in rounds of the call (2026-07-28)
        if reply is None:
            raise TimeoutError(f"no answer within {QUESTION_TIMEOUT_S:.0f} s")
        if reply.action != "accept":
            return reply.action, None
        return "accept", Approval.model_validate(reply.content or {})

    def _question(self, request: ApprovalRequest) -> str:
        who = f"subtask {request.subtask_id} ({request.agent})" if request.subtask_id else "a tool"
        text = f"Shunter run {self.run_id}: {who} wants {request.tool}: {shown(request.summary)}"
        if request.detail:
            text += "\n\n" + shown(request.detail.rstrip())[:4000]
        return text + "\n\nAllow it?"

    def _note(self, request: ApprovalRequest, approved: bool, why: str) -> bool:
        self.decisions.append(
            {
                "subtask_id": request.subtask_id,
                "tool": request.tool,
                "summary": request.summary,
                "approved": approved,
                "reason": why,
            }
        )
        return approved


class ProgressReporter:
    """Subtask events as MCP progress notifications, sent in order by one pump task. The progress
    value is the count of events so far (it must only grow); total is one event for the plan and
    two per subtask (started, finished), dropped if retries make more."""

    def __init__(self, mcp: Context, run_id: str):
        self.mcp, self.run_id = mcp, run_id
        self.queue: asyncio.Queue[tuple[str, int | None] | None] = asyncio.Queue()
        self.sent = 0
        self.total: int | None = None
        self.status: dict[str, str] = {}

    def say(self, message: str) -> None:
        self.queue.put_nowait((message, self.total))

    def planned(self, planned: Planned) -> None:
        n = len(planned.plan.subtasks)
        self.total = 1 + 2 * n
        self.say(
            f"run {self.run_id}: planned {n} subtask(s), expected {render.usd(planned.estimate['expected_usd'])}"
        )

    def __call__(self, rec: SubtaskRecord) -> None:
        if self.status.get(rec.id) == rec.status:
            return
        self.status[rec.id] = rec.status
        done = sum(1 for s in self.status.values() if s in _FINISHED)
        why = f": {rec.error}" if rec.error and rec.status != "succeeded" else ""
        self.say(f"run {self.run_id}: {rec.id} ({rec.agent}) {rec.status}{why} · {done} finished")

    async def pump(self) -> None:
        while (item := await self.queue.get()) is not None:
            message, total = item
            self.sent += 1
            with contextlib.suppress(Exception):  # a client that went away must not fail the run
                await self.mcp.report_progress(
                    self.sent, total if total is None or self.sent <= total else None, message
                )

    def close(self) -> None:
        self.queue.put_nowait(None)


class RunTool:
    def __init__(self, workspace: Path, yes: bool, model: str | None):
        self.workspace, self.yes, self.model = workspace, yes, model
        self.live = LiveRuns()

    def _context(self, max_cost: float | None, max_parallel: int | None) -> RunContext:
        overrides = flag_overrides(self.model, max_parallel, max_cost)
        ws = check_workspace(self.workspace)
        settings = settings_for(ws, overrides)
        OpenAIProvider(settings)(settings.planner.model or settings.model.name)  # a missing key fails here
        check_budget_can_be_enforced(settings)
        ctx = make_context(ws, settings, overrides=overrides)
        ctx.store = Store.open(ctx.workspace)  # recorded as it happens: `runs`, `show`, resume, undo
        return ctx

    async def __call__(
        self, request: str, mcp: Context, max_cost: float | None, max_parallel: int | None
    ) -> tuple[dict[str, Any], str] | InputRequiredResult:
        live = self.live.find(mcp.request_state)
        if live is not None:  # the client answers our questions and calls again
            live.answer(mcp.input_responses)
            live.progress.mcp = mcp  # progress goes to the request that is waiting now
            return await self.live.round(live)
        ctx = self._context(max_cost, max_parallel)
        if not self.yes and asks_in_rounds(mcp):
            live = LiveRun(Approval, lambda: ctx.cancel.cancel("the MCP client cancelled the request"))
        approver = McpApprover(mcp, self.yes, ctx.run_id, live)
        progress = ProgressReporter(mcp, ctx.run_id)
        work = self._work(request, ctx, approver, progress, max_cost)
        if live is None:
            return await _cancel_with(ctx, work)
        live.progress = progress
        live.start(work)
        self.live.add(live)
        return await self.live.round(live)

    async def _work(
        self,
        request: str,
        ctx: RunContext,
        approver: McpApprover,
        progress: ProgressReporter,
        max_cost: float | None,
    ) -> tuple[dict[str, Any], str]:
        """The run, from planning to its result, closing what it opened."""
        provider = OpenAIProvider(ctx.settings)

        async def on_planned(planned: Planned) -> bool:
            _check_estimate(planned, max_cost)
            progress.planned(planned)
            return True

        progress.say(f"run {ctx.run_id}: planning")
        pump = asyncio.ensure_future(progress.pump())
        try:
            result = await api_run(
                request,
                ctx=ctx,
                model=provider,
                agents=default_agents(ctx.settings),
                approve=approver,
                listeners=[progress],
                on_planned=on_planned,
            )
        finally:
            progress.close()
            with anyio.CancelScope(shield=True):
                await pump
                await provider.aclose()
                if ctx.store is not None:
                    ctx.store.close()
                ctx.close()
        data = result.to_dict()
        data["approvals"] = approver.decisions
        return data, _run_text(result, data)


async def _cancel_with(ctx: RunContext, work: Any) -> tuple[dict[str, Any], str]:
    """Run `work` in its own task. When the MCP request is cancelled (the client's
    notifications/cancelled, or its connection closing), cancel the run through its token and wait,
    shielded, for it to stop: finished subtasks are kept and recorded, and the run shows as
    cancelled in `runs` and `show`. Then let the request's cancellation go on."""
    task = asyncio.ensure_future(work)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        ctx.cancel.cancel("the MCP client cancelled the request")
        with anyio.CancelScope(shield=True):
            with contextlib.suppress(Exception):
                await task
        raise


def _check_estimate(planned: Planned, max_cost: float | None) -> None:
    """Refuse to start when the high estimate is above the budget (a client cannot say --yes)."""
    high = planned.estimate["high_usd"]
    if max_cost is None:
        return
    if high is None:
        raise ConfigError(
            f"max_cost_usd cannot be enforced: no price is known for {', '.join(planned.estimate['unpriced_models'])}; "
            "add one under [prices] in .shunter/config.toml."
        )
    if high > max_cost:
        raise ConfigError(
            f"The high estimate {render.usd(high)} exceeds max_cost_usd {render.usd(max_cost)}; raise the budget "
            "to start this run."
        )


def _run_text(result: RunResult, data: dict[str, Any]) -> str:
    lines = [result.answer or "(no answer)", "", render.usage_summary(data)]
    if result.error:
        lines.append(f"{result.status}: {result.error}")
    refused = [d for d in data["approvals"] if not d["approved"]]
    for d in refused:
        lines.append(f"Refused {d['tool']} ({shown(d['summary'])}): {d['reason']}.")
    if refused and not any(d["reason"].startswith("refused by the user") for d in refused):
        lines.append(
            "To allow side effects, start `shunter mcp` with --yes, or use a client that supports elicitation."
        )
    lines.append(f"Run {result.run_id} {result.status}.")
    if any(r.files_changed for r in result.subtasks):
        lines.append(f"To put the files back as they were: shunter undo {result.run_id}")
    return "\n".join(lines)
