"""Durable steps (the DBOS engine): a model call and a side-effecting tool call are DBOS steps.

DBOS records each step's outcome in its database as the step ends. When a worker dies and
another recovers the run, the workflow runs again from its start, and every step already done
returns its recorded outcome instead of happening again: no model call is paid twice and no
write is made twice. Read-only tools are not steps; running them again is harmless and cheaper
than recording their (possibly large) output.

Outcomes are stored as plain tuples rather than pickled exceptions: our exceptions take keyword
arguments that pickle does not restore, and a recorded outcome must load on any worker.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from runtime.context import FileChange, RunContext
from runtime.errors import (
    ConfigError,
    ModelError,
    RunCancelled,
    ToolDenied,
    ToolFailed,
    TransientModelError,
    UsageLimitExceeded,
)
from runtime.model import ModelRequest, ModelResponse

T = TypeVar("T")

PERMIT_POLL_S = 0.02
"""How often a call waiting for its permit looks whether it has started: the delay between a
permit and its request, which the limiter's window must cover (shunter.engine.rate_queues)."""


class DurableSteps:
    """`ctx.durable` inside a DBOS workflow. `scheduler_rounds` numbers the schedulers a run
    makes (replanning makes more), so their child workflows get distinct, replayable ids."""

    def __init__(
        self, workflow_id: str, job: dict[str, Any], queue_name: str = "", subtask_workflow: Any = None
    ):
        self.workflow_id = workflow_id
        self.job = job
        """What every subtask of the run is given with it: run id, workspace, flags, approval."""
        self.queue_name, self.subtask_workflow = queue_name, subtask_workflow
        self.rate_queues: dict[str, str] = {}
        """Model name ('*' for any other) -> the queue whose DBOS limiter holds its
        requests_per_minute for every worker at once."""
        self.permit_workflow: Any = None
        self.budget: Any = None
        """shunter.engine.ledger.Budget when the run's dollar cap is shared in the engine's database."""
        self.scheduler_rounds = 0
        self.replayed = 0
        """Steps whose recorded outcome was returned instead of running them (recovery)."""

    async def guarded(self, make: Callable[[], Awaitable[T]]) -> T:
        """A DBOS operation of the workflow. Once the workflow is cancelled (`shunter cancel`, or
        Ctrl-C where it was started), DBOS refuses every further operation with an error of its
        own; the run sees that as what it is, a cancellation, and keeps what finished."""
        try:
            return await make()
        except BaseException as e:  # DBOS's cancellation and ownership errors are BaseExceptions
            if type(e).__module__.startswith("dbos") and await self.cancelled():
                raise RunCancelled("The run was cancelled with shunter cancel.") from None
            raise

    async def cancelled(self) -> bool:
        from dbos import DBOS

        # Outside the workflow's context: inside it, DBOS would record the read as a step.
        read = asyncio.create_task(
            DBOS.get_workflow_status_async(self.workflow_id), context=contextvars.Context()
        )
        status = await read
        return status is not None and status.status == "CANCELLED"

    async def permit(self, model: str) -> float:
        """Wait for the cluster-wide rate limit of `model`: a permit is a tiny workflow on the
        model's rate-limited queue, and DBOS starts no more of them per period than the limit,
        counted across every worker. Returns the seconds waited (0 on replay: recorded)."""
        from dbos import DBOS

        name = self.rate_queues.get(model) or self.rate_queues.get("*")
        if name is None:
            return 0.0
        started = time.monotonic()
        queue = await self.guarded(lambda: DBOS.retrieve_queue_async(name))
        if queue is None:  # registered at the worker's start from these same settings
            raise ConfigError(f"The rate-limit queue {name} is not registered; restart the worker.")
        handle = await self.guarded(lambda: queue.enqueue_async(self.permit_workflow))
        await self.guarded(lambda: handle.get_result(polling_interval_sec=PERMIT_POLL_S))
        return time.monotonic() - started

    async def model_call(
        self,
        name: str,
        complete: Callable[[ModelRequest], Awaitable[ModelResponse]],
        request: ModelRequest,
        input_tokens: int,
    ) -> ModelResponse:
        from dbos import DBOS

        async def step() -> tuple[Any, ...]:
            held, resp = 0.0, None
            try:
                if self.budget is not None:  # the shared budget: reserved in the engine's database
                    held, cap = await asyncio.to_thread(
                        self.budget.reserve, name, input_tokens, request.max_output_tokens
                    )
                    if cap != request.max_output_tokens:
                        request.max_output_tokens = cap
                resp = await complete(request)
                return ("ok", resp)
            except UsageLimitExceeded as e:
                return ("limit", e.limit, e.value, e.maximum, str(e))
            except TransientModelError as e:
                return ("transient", str(e), e.status, e.retry_after)
            except ModelError as e:
                return ("error", str(e), e.status)
            finally:
                if held:
                    spent = self.budget.cost_of(name, resp) if resp is not None else 0.0
                    await asyncio.to_thread(self.budget.settle, held, spent)

        ran = _Ran(step)
        out = await self.guarded(lambda: DBOS.run_step_async({"name": f"model {name}"}, ran.step))
        self.replayed += not ran.ran
        if out[0] == "ok":
            return out[1]
        if out[0] == "limit":
            err = UsageLimitExceeded(out[1], out[2], out[3])
            err.args = (out[4],)
            raise err
        if out[0] == "transient":
            raise TransientModelError(out[1], status=out[2], retry_after=out[3])
        raise ModelError(out[1], status=out[2])

    async def tool_call(self, name: str, ctx: RunContext, call: Callable[[], Awaitable[Any]]) -> Any:
        """One side-effecting call. The file changes it made come back with its outcome: a
        recovered run knows them (for `files_changed` and undo) without making them again."""
        from dbos import DBOS

        async def step() -> tuple[Any, ...]:
            before = len(ctx.file_changes.changes)
            try:
                out: tuple[Any, ...] = ("ok", await call())
            except ToolDenied as e:
                out = ("denied", str(e))
            except ToolFailed as e:
                out = ("failed", str(e))
            except Exception as e:  # noqa: BLE001 - recorded, then raised again as the same kind
                out = ("error", type(e).__name__, str(e))
            changes = [c for c in ctx.file_changes.changes[before:] if c.subtask_id == ctx.subtask_id]
            return (*out, changes)

        ran = _Ran(step)
        *out, changes = await self.guarded(lambda: DBOS.run_step_async({"name": f"tool {name}"}, ran.step))
        if not ran.ran:
            self.replayed += 1
            replay_changes(ctx, changes)
        if out[0] == "ok":
            return out[1]
        if out[0] == "denied":
            raise ToolDenied(out[1])
        if out[0] == "failed":
            raise ToolFailed(out[1])
        raise type(out[1], (Exception,), {})(out[2])


def replay_changes(ctx: RunContext, changes: list[FileChange]) -> None:
    """File changes a recorded step made: known to this run again, not stored again (the worker
    that made them stored them as they happened)."""
    with ctx.file_changes._lock:
        ctx.file_changes.changes.extend(changes)


class _Ran:
    """The step's function (`.step`, a coroutine function as DBOS wants), noting whether it
    really ran here; when it did not, DBOS returned its recorded outcome."""

    def __init__(self, fn: Callable[[], Awaitable[Any]]):
        self.ran = False

        async def step() -> Any:
            self.ran = True
            return await fn()

        self.step = step
