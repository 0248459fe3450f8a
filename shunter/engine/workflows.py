"""The two workflows a worker runs: a whole run, and one subtask of it.

Both rebuild their context from the job (workspace path, flags, approval) and the worker's own
settings (its config and environment: the model endpoint, the key). The job never carries a
secret: it is stored in the engine's database.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import os
import socket
import time
from pathlib import Path
from typing import Any

from dbos import DBOS

from agents.mcp import mcp_tools
from agents.registry import default_agents
from planner.models import Plan, Subtask
from router.locks import RunLock
from router.recorder import RunRecorder
from router.records import RunResult, SubtaskRecord
from router.scheduler import Scheduler
from runtime import telemetry
from runtime.context import RunContext, approve_all, deny_all
from runtime.durable import DurableSteps
from runtime.errors import ShunterError
from runtime.store import Store
from runtime.usage import Usage, UsageLimits
from shunter import api
from shunter.engine import PERMIT_WORKFLOW, RUN_WORKFLOW, SUBTASK_QUEUE, SUBTASK_WORKFLOW, rate_queues
from shunter.engine.approvals import remote_approver
from shunter.engine.ledger import Budget

ENGINE_URL: list[str] = []
"""The engine database this worker serves (set by shunter.engine.worker.launch)."""

CANCEL_POLL_S = 0.25
"""How often a running workflow looks whether it was cancelled (`shunter cancel`, Ctrl-C)."""


def _context(job: dict[str, Any], wid: str) -> RunContext:
    ws = Path(job["workspace"])
    if not ws.is_dir():
        raise ShunterError(
            f"Worker {socket.gethostname()} (pid {os.getpid()}) cannot see the workspace {ws}; run "
            "workers where that path exists (the same machine or a shared filesystem)."
        )
    ctx = api.prepare(ws, overrides=job["overrides"], run_id=job["run_id"])
    ctx.durable = DurableSteps(wid, job, SUBTASK_QUEUE, subtask_workflow)
    # --yes approves; a run followed on a terminal asks there; otherwise side effects are refused.
    ctx.approve = approve_all if job["yes"] else remote_approver(ctx.durable) if job.get("ask") else deny_all
    ctx.durable.rate_queues = {model: q[0] for model, q in rate_queues(ctx.settings).items()}
    ctx.durable.permit_workflow = permit_workflow
    if job.get("budget"):
        ctx.durable.budget = Budget(ENGINE_URL[0], job["budget"], ctx.usage.prices)
    return ctx


async def _watch_cancel(wid: str, ctx: RunContext) -> None:
    """Turns the workflow's cancellation in the engine into the run's own token, so in-flight
    HTTP requests and commands stop now, not at the next step."""
    while not ctx.cancel.cancelled:
        await asyncio.sleep(CANCEL_POLL_S)
        status = await DBOS.get_workflow_status_async(wid)
        if status is not None and status.status == "CANCELLED":
            ctx.cancel.cancel("cancelled with shunter cancel")


@contextlib.asynccontextmanager
async def _watched(wid: str, ctx: RunContext):
    # In a context of its own: inside the workflow's, DBOS would record each status read as a
    # step, and their number depends on timing, which breaks the replay of a recovered run.
    watcher = asyncio.create_task(_watch_cancel(wid, ctx), context=contextvars.Context())
    try:
        yield
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)


@DBOS.workflow(name=PERMIT_WORKFLOW)
async def permit_workflow() -> None:
    """Nothing: its start, which the queue's limiter paces, is the permit."""


@DBOS.workflow(name=RUN_WORKFLOW)
async def run_workflow(job: dict[str, Any]) -> dict[str, Any]:
    """Plan, then the DAG (router.durable), then the answer; recorded in the workspace's store
    as a local run is, so `runs`, `show` and `undo` read it."""
    wid = DBOS.workflow_id or job["run_id"]
    try:
        ctx = _context(job, wid)
    except ShunterError as e:
        return _failed(job, str(e))
    store = Store.open(ctx.workspace)
    try:
        async with _watched(wid, ctx):
            result = await api.run(job["request"], ctx=ctx, store=store, stream_plan=False)
        _say_replayed(ctx)
        return result.to_dict()
    except ShunterError as e:  # e.g. the planner's call refused by the shared budget
        return _failed(job, str(e), ctx.usage.snapshot()["total"])
    finally:
        store.close()
        ctx.close()


@DBOS.workflow(name=SUBTASK_WORKFLOW)
async def subtask_workflow(job: dict[str, Any]) -> dict[str, Any]:
    """One subtask on whichever worker took it: the local scheduler's own `_run_one`, with the
    upstream results it was given, recording its rows in the workspace's store."""
    wid = DBOS.workflow_id or job["run_id"]
    s = Subtask.model_validate(job["subtask"])
    try:
        ctx = _context(job, wid)
    except ShunterError as e:
        return {"record": SubtaskRecord(s.id, s.agent, "failed", error=str(e)), "usage": []}
    ctx.usage.limits = UsageLimits.model_validate(job["limits"])
    ctx.emit("engine.subtask", subtask=s.id, workflow_id=wid, worker=f"{socket.gethostname()}:{os.getpid()}")
    store = Store.open(ctx.workspace)
    recorder = RunRecorder(store, ctx, 1, RunLock(ctx.state_dir, wid))
    try:
        agents = default_agents(ctx.settings)
        async with api._models(None, ctx.settings) as models, mcp_tools(ctx, agents), _watched(wid, ctx):
            sched = Scheduler(
                Plan.model_validate(job["plan"]),
                ctx,
                agents,
                recorder.wrap(models),
                subtask_timeout_s=job["timeout_s"],
                listeners=[recorder.on_subtask],
                records=job["upstream"],
            )
            await telemetry.traced_subtask(sched._run_one(sched.by_id[s.id]), ctx, s, sched.spans)
        rec = sched.records[s.id]
        _say_replayed(ctx)
        rec.finished_at = time.time()  # _run_one leaves it to the loop, which is the run's
        return {"record": rec, "usage": _usage(ctx, s.id), "limit_hit": sched.limit_hit}
    finally:
        store.close()
        ctx.close()


def _say_replayed(ctx: RunContext) -> None:
    """A recovered workflow says how many recorded steps it did not make again."""
    if ctx.durable.replayed:
        ctx.emit("engine.recovered", replayed_steps=ctx.durable.replayed, workflow_id=ctx.durable.workflow_id)


def _usage(ctx: RunContext, sid: str) -> list[tuple[str | None, Usage]]:
    """The subtask's usage as (model, usage) parts the run's tracker takes back: one per model,
    and the tool calls and iterations, which belong to no model."""
    tracker = ctx.usage
    total = tracker.by_subtask.get(sid, Usage())
    parts: list[tuple[str | None, Usage]] = list(tracker.by_model.items())
    parts.append((None, Usage(tool_calls=total.tool_calls, iterations=total.iterations)))
    return parts


def _failed(job: dict[str, Any], error: str, usage: dict[str, Any] | None = None) -> dict[str, Any]:
    """The `run --json` object of a run that ended before its DAG: its usage so far, or none."""
    result = RunResult(
        run_id=job["run_id"],
        status="failed",
        request=job["request"],
        error=error,
        usage=usage or Usage().to_dict(),
    )
    return result.to_dict()
