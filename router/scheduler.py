"""Event-driven DAG execution: a subtask starts the moment its dependencies succeed.

Read-only subtasks run in parallel up to `max_parallel`; side-effecting subtasks never run at
the same time as each other. A failure skips exactly its dependants (or, with fail_fast,
everything); cancellation stops what runs and keeps what finished.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from agents.loop import AgentResult, run_agent
from agents.quoting import Upstream
from agents.registry import AgentRegistry, agent_model, least_privilege
from planner.models import Plan, Subtask
from planner.validate import graph
from router.compiled import run_call
from router.records import SubtaskRecord
from runtime import telemetry
from runtime.context import RunContext
from runtime.model import Model
from tools.truncate import truncate_result

ModelProvider = Callable[[str], Model]
Listener = Callable[[SubtaskRecord], None]

UPSTREAM_LIMIT = 12_000
"""Characters of one upstream result handed to a dependant (head and tail kept beyond it)."""


class Scheduler:
    def __init__(
        self,
        plan: Plan,
        ctx: RunContext,
        agents: AgentRegistry,
        models: ModelProvider,
        *,
        max_parallel: int = 4,
        fail_fast: bool = False,
        subtask_timeout_s: float | None = None,
        listeners: list[Listener] | None = None,
        records: dict[str, SubtaskRecord] | None = None,
        streaming: bool = False,
    ):
        self.plan, self.ctx, self.agents, self.models = plan, ctx, agents, models
        self.max_parallel, self.fail_fast, self.timeout = max(1, max_parallel), fail_fast, subtask_timeout_s
        self.listeners = listeners or []
        self.g = graph(plan)
        self.records = {s.id: SubtaskRecord(s.id, s.agent, call=_call_of(s)) for s in plan.subtasks}
        self.plan_ids = set(self.records)
        for sid, rec in (records or {}).items():  # resume: finished work is kept as it was
            if sid in self.records and rec.status == "succeeded":
                rec.call = self.records[sid].call  # the store keeps the call in the plan, not the row
                self.records[sid] = rec
        self.stop_reason: str | None = None
        self.spans: dict[str, object] = {}  # subtask id -> its span's context, linked from dependants
        self.limit_hit: str | None = None
        # Event-driven readiness: a count of unfinished dependencies per subtask; a subtask joins
        # `ready` (in plan order) when its count reaches zero. O(edges) for the whole run.
        self.by_id = {s.id: s for s in plan.subtasks}
        self.order = {s.id: i for i, s in enumerate(plan.subtasks)}
        self.dependants: dict[str, list[str]] = {s.id: [] for s in plan.subtasks}
        self.waiting: dict[str, int] = {}
        for st in plan.subtasks:
            for d in st.depends_on:
                self.dependants[d].append(st.id)
            self.waiting[st.id] = sum(1 for d in st.depends_on if self.records[d].status != "succeeded")
        self.ready: list[str] = [
            st.id
            for st in plan.subtasks
            if self.waiting[st.id] == 0 and self.records[st.id].status == "pending"
        ]
        # Streamed planning: subtasks keep arriving (`add`) until `close`; `run` waits for them.
        self.kept = {sid: rec for sid, rec in (records or {}).items() if rec.status == "succeeded"}
        self.open = streaming
        self._wake = asyncio.Event()

    # -- subtasks arriving while the plan streams in

    def add(self, s: Subtask) -> SubtaskRecord:
        """One more subtask, already validated against those before it (its dependencies are
        known). It starts as soon as they have succeeded; listeners see it appear as pending."""
        if not self.open:
            raise RuntimeError("Scheduler.add after close(): the plan is complete.")
        self.plan.subtasks.append(s)
        rec = SubtaskRecord(s.id, s.agent, call=_call_of(s))
        kept = self.kept.get(s.id)
        if kept is not None:
            kept.call = rec.call
            rec = kept
        self.records[s.id], self.by_id[s.id], self.order[s.id] = rec, s, len(self.order)
        self.plan_ids.add(s.id)
        self.g.add_node(s.id)
        self.dependants[s.id] = []
        for d in s.depends_on:
            self.g.add_edge(d, s.id)
            self.dependants[d].append(s.id)
        self.waiting[s.id] = sum(1 for d in s.depends_on if self.records[d].status != "succeeded")
        broken = [
            d for d in s.depends_on if self.records[d].status not in ("pending", "running", "succeeded")
        ]
        if rec.status == "pending":
            if self.stop_reason or self.ctx.cancel.cancelled:
                rec.status, rec.error = "skipped", self.stop_reason or "not started: the run was cancelled"
            elif broken:
                rec.status, rec.error = "skipped", f"dependency {broken[0]} {self.records[broken[0]].status}"
            elif self.waiting[s.id] == 0:
                self.ready.append(s.id)
        self._notify(rec)
        self._wake.set()
        return rec

    def close(self) -> None:
        """No more subtasks are coming: `run` returns once what there is has finished."""
        self.open = False
        self._wake.set()

    def drop_unstarted(self, reason: str) -> list[str]:
        """Stop what has not started (it is skipped with `reason`); what runs finishes, and no
        more subtasks are taken. Returns the ids dropped."""
        dropped = [sid for sid, rec in self.records.items() if rec.status == "pending"]
        self._skip_all_pending(reason)
        self.close()
        return dropped

    def _notify(self, rec: SubtaskRecord) -> None:
        for listener in self.listeners:
            listener(rec)

    def _release_dependants(self, sid: str) -> None:
        for d in self.dependants[sid]:
            self.waiting[d] -= 1
            if self.waiting[d] == 0 and self.records[d].status == "pending":
                self.ready.append(d)
        self.ready.sort(key=self.order.__getitem__)

    def _start_ready(self, running: dict[asyncio.Task[AgentResult], Subtask], writer_busy: bool) -> bool:
        """Start what may start now; returns whether a side-effecting subtask is running."""
        waiting: list[str] = []
        for sid in self.ready:
            s = self.by_id[sid]
            if len(running) >= self.max_parallel or (not s.read_only and writer_busy):
                waiting.append(sid)
                continue
            writer_busy = writer_busy or not s.read_only
            work = telemetry.traced_subtask(self._run_one(s), self.ctx, s, self.spans)
            running[asyncio.create_task(work)] = s
        self.ready = waiting
        return writer_busy

    def _skip_dependants(self, sid: str, reason: str) -> None:
        import networkx as nx

        for dep in nx.descendants(self.g, sid):
            rec = self.records[dep]
            if rec.status == "pending":
                rec.status, rec.error = "skipped", reason
                self._notify(rec)

    def _skip_all_pending(self, reason: str) -> None:
        for rec in self.records.values():
            if rec.status == "pending":
                rec.status, rec.error = "skipped", reason
                self._notify(rec)
        self.ready = []

    async def run(self) -> dict[str, SubtaskRecord]:
        running: dict[asyncio.Task[AgentResult], Subtask] = {}
        writer_busy = False
        wake: asyncio.Task[bool] | None = None
        try:
            while True:
                if not (self.ctx.cancel.cancelled or self.stop_reason):
                    writer_busy = self._start_ready(running, writer_busy)
                if not running and not (self.open and not self.ctx.cancel.cancelled):
                    break
                if self.open and wake is None:
                    self._wake.clear()
                    wake = asyncio.create_task(self._wake.wait())
                waiters: set[asyncio.Future] = {*running, *([wake] if wake is not None else [])}
                done, _ = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
                if wake is not None and wake in done:
                    wake = None
                for task in done:
                    if task not in running:
                        continue
                    s = running.pop(task)
                    if not s.read_only:
                        writer_busy = False
                    self._settle(s, task)
        except asyncio.CancelledError:
            if wake is not None:
                wake.cancel()
            # The run's own task was cancelled (wait_for, a task group): stop the subtasks and
            # leave every record in a final state, told to the listeners (the store).
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)
            for rec in self.records.values():
                if rec.status == "running":
                    rec.status, rec.error, rec.finished_at = "cancelled", "the run was cancelled", time.time()
                    self._notify(rec)
            self._skip_all_pending("not started: the run was cancelled")
            raise
        if wake is not None:
            wake.cancel()
        if self.ctx.cancel.cancelled:
            for rec in self.records.values():
                if rec.status == "running":
                    rec.status = "cancelled"
            self._skip_all_pending("not started: the run was cancelled")
        elif self.stop_reason:
            self._skip_all_pending(self.stop_reason)
        return self.records

    def _settle(self, s: Subtask, task: asyncio.Task[AgentResult]) -> None:
        rec = self.records[s.id]
        exc = task.exception() if not task.cancelled() else None
        if task.cancelled() or exc is not None:
            rec.status, rec.error = "failed", f"{type(exc).__name__}: {exc}" if exc else "cancelled"
        rec.finished_at = time.time()
        self._notify(rec)
        if rec.status == "cancelled" and self.ctx.cancel.cancelled:
            return  # the whole run is stopping; run() settles what is left
        if rec.status == "succeeded":
            self._release_dependants(s.id)
        else:
            if self.limit_hit:
                self.stop_reason = f"the run stopped: {self.limit_hit}"
            elif self.fail_fast:
                self.stop_reason = f"--fail-fast: subtask {s.id} {rec.status}"
            self._skip_dependants(s.id, f"dependency {s.id} {rec.status}")

    def _upstream(self, s: Subtask) -> list[Upstream]:
        out = []
        for d in s.depends_on:
            rec = self.records[d]
            text = truncate_result(
                rec.result, UPSTREAM_LIMIT, self.ctx.state_dir / "outputs", label=f"result-{d}"
            )
            out.append(Upstream(d, rec.agent, rec.status, text))
        return out

    async def _run_one(self, s: Subtask) -> AgentResult:
        rec = self.records[s.id]
        rec.status, rec.started_at, rec.error = "running", time.time(), None
        rec.attempts += 1
        self._notify(rec)
        agent = self.agents.get(s.agent)
        sctx = self.ctx.for_subtask(s.id, s.agent, read_only=s.read_only)
        if agent is None:
            result = AgentResult(status="failed", text="", error=f"Agent {s.agent!r} is not registered.")
        else:
            agent = least_privilege(agent, s.read_only, sctx.settings, sctx.tools)
            if s.call is not None:
                sctx.emit("subtask.started", read_only=s.read_only, call=s.call.tool)
                results = {d: self.records[d].result for d in s.depends_on}
                coro = run_call(s, agent, sctx, results, self.plan_ids)
            else:
                model = self.models(agent_model(agent, sctx.settings))
                sctx.emit("subtask.started", read_only=s.read_only, model=model.name)
                coro = run_agent(agent, s.instruction, sctx, model, self._upstream(s))
            try:
                if self.timeout:
                    async with asyncio.timeout(self.timeout):
                        result = await coro
                else:
                    result = await coro
            except TimeoutError:
                result = AgentResult(
                    status="failed", text="", error=f"Subtask {s.id} timed out after {self.timeout:g} s."
                )
                result.files_changed = sctx.file_changes.for_subtask(s.id)
        rec.status = result.status
        rec.result, rec.error = result.text, result.error
        rec.files_changed, rec.tool_calls, rec.iterations = (
            result.files_changed,
            len(result.tool_calls),
            result.iterations,
        )
        used = self.ctx.usage.by_subtask.get(s.id)
        rec.usage = used.to_dict() if used is not None else {}
        if result.status == "limit" and result.error and result.error.startswith("Usage limit"):
            self.limit_hit = result.error
        sctx.emit(
            "subtask.finished",
            status=rec.status,
            error=rec.error,
            seconds=round(time.time() - (rec.started_at or 0), 3),
        )
        return result


def _call_of(s: Subtask) -> dict | None:
    return s.call.model_dump() if s.call is not None else None
