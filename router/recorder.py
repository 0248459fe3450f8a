"""Recording a run as it happens. A RunRecorder writes the run row before planning, each subtask
change (as the scheduler's listener), each file change (as ctx.file_changes.on_change, from the
tool's thread) and each model call with the messages it added (through the models `wrap`
returns), each in its own transaction, and holds the run's lock until the run ends. A run whose
process died is left 'running' in the store with its lock free: router.lookup shows it as
'interrupted' and router.resume can take it over.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import os
import socket
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from router.conversations import FollowUp, resolve_follow_up
from router.locks import RunLock
from router.memory import planner_memory
from router.overrides import run_overrides, without_secrets
from router.recall import Probe
from router.records import RunResult, SubtaskRecord
from router.scheduler import ModelProvider
from runtime.context import FileChange, RunContext
from runtime.errors import ConfigError, RunCancelled
from runtime.model import Model, ModelRequest, ModelResponse
from runtime.store import DuplicateRunError, Store, StoreError

if TYPE_CHECKING:
    from router.run import Planned

# Which subtask the current asyncio task works on: set by the recorder's listener, which the
# scheduler calls from inside the subtask's own task when it starts; model calls made in that
# task (and only there) then see it. Planner and synthesis calls run outside any subtask task.
_SUBTASK: contextvars.ContextVar[tuple[object, str, str] | None] = contextvars.ContextVar(
    "shunter_subtask", default=None
)


class RunRecorder:
    """Writes one run to the store as it happens. Make it with `start` (a new run) or `reopen`."""

    def __init__(
        self, store: Store, ctx: RunContext, session: int, lock: RunLock, restored: Iterable[str] = ()
    ):
        self.store, self.ctx, self.run_id, self.session = store, ctx, ctx.run_id, session
        self.parent_run_id: str | None = None
        self._lock = lock
        self._token = object()
        self._planned = False
        self._restored = set(restored)
        self._sent: dict[str, int] = {}
        self._plan: dict[str, Any] | None = None
        self._replanned = 0
        self._known: set[str] = set()  # subtasks whose rows this process wrote (streamed plans)
        self.seconds_before = 0.0
        """Wall seconds the run spent in earlier processes (resume): stored totals include them."""
        self._started = time.monotonic()
        previous = ctx.file_changes.on_change

        def on_change(change: FileChange) -> None:
            self.on_file_change(change)
            if previous is not None:
                previous(change)

        ctx.file_changes.on_change = on_change
        ctx.store = store

    @classmethod
    def start(
        cls, store: Store, ctx: RunContext, request: str, follow: FollowUp | None = None
    ) -> RunRecorder:
        """Record a new run (status 'running') before anything else happens."""
        line = resolve_follow_up(store, follow)
        lock = RunLock(ctx.state_dir, ctx.run_id)
        if not lock.acquire():
            raise ConfigError(
                f"Run id {ctx.run_id} is in use by another run; make a new context with prepare() for each run."
            )
        try:
            store.create_run(
                ctx.run_id,
                request,
                conversation_id=line.conversation_id,
                parent_run_id=line.parent_run_id,
                pid=os.getpid(),
                host=socket.gethostname(),
                new_conversation=line.new_conversation,
                branched_from=line.branched_from,
                overrides=without_secrets(run_overrides(ctx)),
            )
        except DuplicateRunError:
            if ctx.durable is not None:  # a DBOS run recovered on another worker: the row is its own
                return cls(store, ctx, 1, lock)
            lock.release()
            raise ConfigError(
                f"Run id {ctx.run_id} was already used; make a new context with prepare() for each run."
            ) from None
        except BaseException:
            lock.release()
            raise
        recorder = cls(store, ctx, 1, lock)
        recorder.parent_run_id = line.parent_run_id
        return recorder

    def memory(self, request: str, probe: Probe | None = None) -> str:
        return planner_memory(self.store, request, self.parent_run_id, exclude=[self.run_id], probe=probe)

    # -- the hooks

    def planned(self, planned: Planned) -> None:
        self._planned = True
        self._plan = planned.plan.model_dump()
        self._write(
            self.store.update_run, self.run_id, plan=planned.plan.model_dump(), estimate=planned.estimate
        )
        for s in planned.plan.subtasks:
            if s.id not in self._known:  # a streamed subtask already has its row, maybe finished
                self.mark_pending(s.id, s.agent)

    def replanned(self, planned: Planned, round_: int, reason: str, statuses: list[dict[str, Any]]) -> None:
        """A replan: the plan that ran goes to the history with its subtasks' statuses, the new one
        becomes the run's plan."""
        self._write(self.store.save_plan, self.run_id, round_ - 1, self._plan or {}, reason, statuses)
        self._replanned = round_
        self.planned(planned)

    def plan_restored(self) -> None:
        """The plan was stored by an earlier process (resume): from now on, a model call made
        outside any subtask is synthesis, not planning."""
        self._planned = True

    def mark_pending(self, subtask_id: str, agent: str) -> None:
        """Record the subtask as pending, nothing done yet (planned, or to run again on resume)."""
        self._write(self.store.save_subtask, self.run_id, self._row(SubtaskRecord(subtask_id, agent)))

    def on_subtask(self, rec: SubtaskRecord) -> None:
        """The scheduler's listener."""
        self._known.add(rec.id)
        if rec.status == "running":
            _SUBTASK.set((self._token, rec.id, rec.agent))
            self._sent.pop(rec.id, None)
        self._write(self.store.save_subtask, self.run_id, self._row(rec))

    def on_file_change(self, change: FileChange) -> None:
        self._write(
            self.store.add_file_change,
            self.run_id,
            change.subtask_id,
            change.path,
            change.before,
            change.after,
        )

    def on_model_call(self, request: ModelRequest, resp: ModelResponse, model: str) -> None:
        current = _SUBTASK.get()
        if current is not None and current[0] is self._token:
            sid, agent = current[1], current[2]
        else:
            sid = agent = "synthesis" if self._planned else "planner"
        start = self._sent.get(sid, 0)
        new = [*request.messages[start:], resp.to_message()]
        self._sent[sid] = len(request.messages) + 1
        redact = self.ctx.events.redact
        messages = [(m.get("role"), redact(json.dumps(m, default=str, ensure_ascii=False))) for m in new]
        usage = resp.token_counts()
        self._write(self.store.add_model_call, self.run_id, sid, agent, self.session, model, usage, messages)

    def wrap(self, models: ModelProvider) -> ModelProvider:
        """The same models, each call recorded."""
        return _RecordingProvider(models, self)

    # -- the end

    def finish(self, result: RunResult) -> None:
        self._write(
            self.store.update_run,
            self.run_id,
            status=result.status,
            answer=result.answer,
            error=result.error,
            usage=result.usage,
            usage_breakdown=result.usage_breakdown,
            seconds=self.seconds_before + result.seconds,
            finished_at=time.time(),
            plan=result.plan,
            estimate=result.estimate,
        )
        if self._replanned and result.plan is not None:  # the last plan closes the history
            statuses = [
                {"id": r.id, "agent": r.agent, "status": r.status, "error": r.error} for r in result.subtasks
            ]
            self._write(self.store.save_plan, self.run_id, self._replanned, result.plan, None, statuses)
        for rec in result.subtasks:  # the scheduler marks cancelled ones without telling listeners
            if rec.id not in self._restored:
                self._write(self.store.save_subtask, self.run_id, self._row(rec))
        self.close()

    def abort(self, exc: BaseException) -> None:
        """An exception ended the run before it had a result (the task running it was cancelled,
        or something failed): subtasks it left pending or running will not finish in this process."""
        cancelled = isinstance(exc, RunCancelled | KeyboardInterrupt | asyncio.CancelledError)
        self._write(self.store.cancel_unfinished, self.run_id)
        self._write(
            self.store.update_run,
            self.run_id,
            status="cancelled" if cancelled else "failed",
            error=str(exc) or type(exc).__name__,
            finished_at=time.time(),
            seconds=self.seconds_before + time.monotonic() - self._started,
        )
        self.close()

    def close(self) -> None:
        self._lock.release()

    # -- helpers

    def _row(self, rec: SubtaskRecord) -> dict[str, Any]:
        return {
            "id": rec.id,
            "agent": rec.agent,
            "status": rec.status,
            "result": rec.result,
            "error": rec.error,
            "files_changed": rec.files_changed,
            "tool_calls": rec.tool_calls,
            "iterations": rec.iterations,
            "usage": rec.usage,
            "started_at": rec.started_at,
            "finished_at": rec.finished_at,
            "attempts": rec.attempts,
            "session": self.session,
        }

    def _write(self, fn: Any, *args: Any, **kw: Any) -> None:
        # A store that cannot be written (disk full, locked past the timeout) must not stop the
        # work itself: the run goes on and says, loudly, what was not recorded.
        try:
            fn(*args, **kw)
        except StoreError as e:
            self.ctx.emit("store.error", level="WARNING", error=str(e), what=fn.__name__)


class _RecordingModel:
    def __init__(self, inner: Model, recorder: RunRecorder):
        self.inner, self.recorder = inner, recorder

    @property
    def name(self) -> str:
        return self.inner.name

    def __getattr__(self, item: str) -> Any:
        return getattr(self.inner, item)

    async def complete(self, request: ModelRequest) -> ModelResponse:
        resp = await self.inner.complete(request)
        self.recorder.on_model_call(request, resp, self.inner.name)
        return resp


class _RecordingProvider:
    def __init__(self, inner: ModelProvider, recorder: RunRecorder):
        self.inner, self.recorder = inner, recorder
        self._models: dict[str, _RecordingModel] = {}

    def __call__(self, name: str) -> Model:
        if name not in self._models:
            self._models[name] = _RecordingModel(self.inner(name), self.recorder)
        return self._models[name]  # type: ignore[return-value]

    async def aclose(self) -> None:
        if hasattr(self.inner, "aclose"):
            await self.inner.aclose()
