"""Resume: take over an interrupted, cancelled or failed run and finish it. Its succeeded
subtasks are kept and feed the rest; every other subtask runs again from its start, once the
files it changed are checked to be as it left them. The usage and time of earlier processes
count towards the run's totals and limits, and the settings it was started with apply again.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from typing import Any

from agents.registry import AgentRegistry
from planner.models import Plan
from planner.planner import PlanOutcome
from router.calibration import history_stats
from router.changes import changed_since
from router.locks import RunLock
from router.lookup import RefusedError, find_run, record_from_row, shown_status
from router.overrides import apply_saved_overrides, without_secrets
from router.recorder import RunRecorder
from router.records import RunResult, SubtaskRecord
from router.run import Planned, execute, plan_request
from router.scheduler import Listener, ModelProvider
from runtime.context import RunContext
from runtime.store import Store
from runtime.usage import Usage
from tools.pathscope import PathScope


def resumable_run(store: Store, ref: str) -> dict[str, Any]:
    """The run `ref` names, if it can be resumed; else a sentence saying why not."""
    row = find_run(store, ref)
    if shown_status(store, row) == "running":
        raise RefusedError(
            f"Run {row['id']} is still running (process {row['pid']}); wait for it or stop it first."
        )
    return _not_succeeded(row)


def _not_succeeded(row: dict[str, Any]) -> dict[str, Any]:
    if row["status"] == "succeeded":
        raise RefusedError(f"Run {row['id']} already succeeded; there is nothing to resume.")
    return row


def _check_redo_files(store: Store, row: dict[str, Any], redo: list[str], scope: PathScope) -> None:
    changes = store.file_changes(row["id"])
    touched = [c["path"] for c in changes if c["subtask_id"] in redo]
    changed = changed_since(scope, changes, touched)
    if changed:
        who = sorted({c["subtask_id"] for c in changes if c["path"] in changed and c["subtask_id"] in redo})
        raise RefusedError(
            f"Cannot resume run {row['id']}: files that subtask {', '.join(who)} changed were modified since it "
            f"stopped: {', '.join(changed)}. Check them, then pass --force to run the subtask again from its start anyway."
        )


def _previous_seconds(row: dict[str, Any]) -> float:
    """Wall seconds the run spent before this process. A process that ends the run stores its
    total; one that died in the run's first session stored none, so its span is the row's own."""
    if row["seconds"] is not None:
        return float(row["seconds"])
    return max(0.0, (row["updated_at"] or 0.0) - (row["created_at"] or 0.0))


def _restore_usage(
    store: Store, ctx: RunContext, row: dict[str, Any], done: dict[str, SubtaskRecord]
) -> None:
    """Usage and time spent by earlier processes of the run count towards its totals and limits."""
    run_id = row["id"]
    ctx.usage.elapsed_offset = _previous_seconds(row)
    prices = ctx.usage.prices
    for call in store.model_calls(run_id):
        cost = prices.cost(
            call["model"], call["input_tokens"], call["cached_input_tokens"], call["output_tokens"]
        )
        usage = Usage(
            input_tokens=call["input_tokens"],
            cached_input_tokens=call["cached_input_tokens"],
            output_tokens=call["output_tokens"],
            reasoning_tokens=call["reasoning_tokens"],
            requests=1,
            cost_usd=cost,
            unpriced_models=[] if cost is not None else [call["model"]],
        )
        ctx.usage.restore(call["subtask_id"], call["agent"], call["model"], usage)
    for rec in done.values():
        ctx.usage.restore(
            rec.id, rec.agent, None, Usage(tool_calls=rec.tool_calls, iterations=rec.iterations)
        )


def reopen(
    store: Store, ctx: RunContext, *, force: bool = False
) -> tuple[RunRecorder, dict[str, Any], dict[str, SubtaskRecord]]:
    """Take over an interrupted, cancelled or failed run: lock it, check the files of the subtasks
    that will run again, and mark it running. Returns the recorder, the run row and the
    subtasks that succeeded (kept as they are)."""
    lock = RunLock(ctx.state_dir, ctx.run_id)
    if not lock.acquire():
        raise RefusedError(
            f"Run {ctx.run_id} is still running in another process; wait for it or stop it first."
        )
    try:
        row = _not_succeeded(find_run(store, ctx.run_id))  # read again now that no one else can change it
        records = {r["id"]: record_from_row(r) for r in store.subtasks(row["id"])}
        done = {sid: rec for sid, rec in records.items() if rec.status == "succeeded"}
        # A replanned run's earlier plans are history: only the current plan's subtasks run again.
        current = {s["id"] for s in (row["plan"] or {}).get("subtasks", [])} if row["plan"] else None
        redo = [sid for sid in records if sid not in done and (current is None or sid in current)]
        if not force:
            _check_redo_files(store, row, redo, PathScope(ctx.workspace, ()))
        overrides = apply_saved_overrides(ctx, row["overrides"])
        _restore_usage(store, ctx, row, done)
        session = (row["sessions"] or 1) + 1
        store.update_run(
            row["id"],
            status="running",
            pid=os.getpid(),
            host=socket.gethostname(),
            sessions=session,
            error=None,
            finished_at=None,
            # Stored now, so a process dying in this session still leaves the earlier total.
            seconds=ctx.usage.elapsed_offset,
            overrides=without_secrets(overrides),
        )
    except BaseException:
        lock.release()
        raise
    recorder = RunRecorder(store, ctx, session, lock, restored=done)
    recorder.parent_run_id = row["parent_run_id"]
    recorder.seconds_before = ctx.usage.elapsed_offset
    for sid in redo:
        recorder.mark_pending(sid, records[sid].agent)
    return recorder, row, done


async def resume(
    store: Store,
    ctx: RunContext,
    agents: AgentRegistry,
    models: ModelProvider,
    *,
    force: bool = False,
    listeners: Sequence[Listener] = (),
) -> RunResult:
    """Continue the run `ctx.run_id`: succeeded subtasks are kept and feed the rest; every other
    subtask runs again from its start. Make ctx with the run's id (prepare(..., run_id=...))."""
    recorder, row, done = reopen(store, ctx, force=force)
    models = recorder.wrap(models)
    try:
        if row["plan"] is None:  # the process died while planning: plan again
            planned = await plan_request(
                row["request"],
                ctx,
                agents,
                models,
                memory=recorder.memory(row["request"]),
                history=history_stats(store),
            )
            recorder.planned(planned)
        else:
            recorder.plan_restored()
            outcome = PlanOutcome(plan=Plan.model_validate(row["plan"]), attempts=0)
            planned = Planned(row["request"], outcome, row["estimate"] or {})
        # A run that died while its plan streamed in is planned again from scratch: the new plan's
        # ids need not mean what the old ones did, so nothing it had finished is reused.
        kept = done if row["plan"] is not None else {}
        history = store.plans(row["id"])
        result = await execute(
            planned,
            ctx,
            agents,
            models,
            listeners=[recorder.on_subtask, *listeners],
            records=kept,
            on_replan=recorder.replanned,
            replans_done=max(len(history) - 1, 0),
            first_plan=Plan.model_validate(history[0]["plan"]) if history else None,
        )
    except BaseException as e:
        recorder.abort(e)
        raise
    recorder.finish(result)
    return result
