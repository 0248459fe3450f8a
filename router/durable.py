"""The DAG on DBOS: each subtask is a child workflow on a queue, run by whichever worker is free.

The rules are the local scheduler's (dependencies first, at most max_parallel at once, writers
one at a time, a failure skips its dependants), and so is the bookkeeping, inherited. What
differs is the loop: a workflow recovered on another worker runs again from its start, and DBOS
matches its operations to the recorded ones by their order. So the loop is sequential and makes
its decisions only from recorded outcomes: it enqueues in plan order, waits for the first child
to finish (DBOS records which one), takes its result (recorded too), and goes on. Replayed, it
makes the same moves and re-attaches to the same child workflows by their ids.
"""

from __future__ import annotations

import time
from typing import Any

from planner.models import Subtask
from router.records import SubtaskRecord
from router.scheduler import Scheduler
from runtime.errors import RunCancelled

POLL_S = 0.05
"""How often a waiting workflow looks at its children's state in the engine's database."""


def child_id(run_id: str, round_: int, subtask_id: str) -> str:
    """A subtask's workflow id: fixed, so a replayed run finds the child it started before."""
    return f"{run_id}-r{round_}-{subtask_id}"


class DurableScheduler(Scheduler):
    """Runs inside the run's workflow; `ctx.durable` names the child workflow and its queue."""

    async def run(self) -> dict[str, SubtaskRecord]:
        from dbos import DBOS

        durable = self.ctx.durable
        round_ = durable.scheduler_rounds
        durable.scheduler_rounds += 1
        queue = await durable.guarded(lambda: DBOS.retrieve_queue_async(durable.queue_name))
        running: dict[str, tuple[Any, Subtask]] = {}
        writer_busy = False
        try:
            while True:
                if not (self.ctx.cancel.cancelled or self.stop_reason):
                    writer_busy = await self._enqueue_ready(queue, round_, running, writer_busy)
                if not running:
                    break
                handles = [h for h, _ in running.values()]
                first = await self.ctx.cancel.guard(
                    durable.guarded(lambda hs=handles: DBOS.wait_first_async(hs, polling_interval_sec=POLL_S))
                )
                _, s = running.pop(first.workflow_id)
                if not s.read_only:
                    writer_busy = False
                self._take(s, await durable.guarded(first.get_result))
        except RunCancelled:
            self.ctx.cancel.cancel("cancelled with shunter cancel")
            await self._cancel_children([wid for wid in running])
            for rec in self.records.values():
                if rec.status == "running":
                    rec.status, rec.error, rec.finished_at = "cancelled", "the run was cancelled", time.time()
                    self._notify(rec)
        if self.ctx.cancel.cancelled:
            self._skip_all_pending("not started: the run was cancelled")
        elif self.stop_reason:
            self._skip_all_pending(self.stop_reason)
        return self.records

    async def _enqueue_ready(
        self, queue: Any, round_: int, running: dict[str, tuple[Any, Subtask]], writer_busy: bool
    ) -> bool:
        from dbos import SetWorkflowID

        waiting: list[str] = []
        for sid in self.ready:
            s = self.by_id[sid]
            if len(running) >= self.max_parallel or (not s.read_only and writer_busy):
                waiting.append(sid)
                continue
            writer_busy = writer_busy or not s.read_only
            rec = self.records[sid]
            rec.status, rec.started_at, rec.error = "running", time.time(), None
            rec.attempts += 1
            self._notify(rec)
            wid = child_id(self.ctx.run_id, round_, sid)
            job = self._job(s)
            with SetWorkflowID(wid):
                handle = await self.ctx.durable.guarded(
                    lambda j=job: queue.enqueue_async(self.ctx.durable.subtask_workflow, j)
                )
            running[wid] = (handle, s)
        self.ready = waiting
        return writer_busy

    def _job(self, s: Subtask) -> dict[str, Any]:
        """What the worker that takes the subtask needs: the subtask, the results it depends
        on, and the budget the run has left (the worker's tracker starts from it)."""
        return {
            **self.ctx.durable.job,
            "plan": self.plan.model_dump(),
            "subtask": s.model_dump(),
            "upstream": {d: self.records[d] for d in s.depends_on},
            "plan_ids": sorted(self.plan_ids),
            "limits": self.ctx.usage.remaining().model_dump(),
            "timeout_s": self.timeout,
        }

    def _take(self, s: Subtask, out: dict[str, Any]) -> None:
        """A child's outcome: its record, and its usage added to the run's tracker."""
        rec: SubtaskRecord = out["record"]
        rec.call = self.records[s.id].call
        self.records[s.id] = rec
        for model, used in out["usage"]:
            self.ctx.usage.restore(s.id, rec.agent, model, used)
        if out.get("limit_hit"):
            self.limit_hit = out["limit_hit"]
        if rec.status == "succeeded":
            self._notify(rec)
            self._release_dependants(s.id)
            return
        self._notify(rec)
        if self.limit_hit:
            self.stop_reason = f"the run stopped: {self.limit_hit}"
        elif self.fail_fast:
            self.stop_reason = f"--fail-fast: subtask {s.id} {rec.status}"
        self._skip_dependants(s.id, f"dependency {s.id} {rec.status}")

    async def _cancel_children(self, ids: list[str]) -> None:
        from dbos import DBOS

        for wid in ids:
            try:
                await DBOS.cancel_workflow_async(wid)
            except BaseException as e:  # DBOS refuses operations of a cancelled workflow
                if not type(e).__module__.startswith("dbos"):
                    raise
