"""Approval questions for clients on the 2026-07-28 protocol, which forbids a server request in the
middle of a call: the call returns an `InputRequiredResult` with the open questions, and the client
answers by calling `run` again with its responses and the `request_state` we gave it.

So the run goes on in the background between rounds, found again by that state (a random token,
so no other client can guess it). A question nobody answers is refused after QUESTION_TIMEOUT_S,
and the run carries on and is recorded; cancelling a round's request cancels the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Callable, Coroutine
from typing import Any

import anyio
from mcp.server.elicitation import render_elicitation_schema
from mcp.server.mcpserver import Context
from mcp_types import ElicitRequest, ElicitRequestFormParams, ElicitResult, InputRequiredResult
from mcp_types.version import is_version_at_least
from pydantic import BaseModel

from runtime.errors import ConfigError

QUESTION_TIMEOUT_S = 600.0  # how long a question waits for its answer
KEEP_FINISHED_S = 600.0  # how long a finished run waits for the client to collect its result

Finished = tuple[dict[str, Any], str]


def asks_in_rounds(mcp: Context) -> bool:
    """A client on the 2026-07-28 protocol (or later) that declared elicitation."""
    version, caps = mcp.protocol_version, mcp.client_capabilities
    modern = version is not None and is_version_at_least(version, "2026-07-28")
    return modern and caps is not None and caps.elicitation is not None


class LiveRun:
    """One run of the `run` tool whose approvals go to the client between rounds of the call."""

    def __init__(self, schema: type[BaseModel], cancel_run: Callable[[], object]):
        self.token = secrets.token_urlsafe(18)
        self.schema = render_elicitation_schema(schema)
        self.cancel_run = cancel_run
        self.task: asyncio.Task[Finished] | None = None
        self.open: dict[str, tuple[str, asyncio.Future[ElicitResult]]] = {}
        self.changed = asyncio.Event()
        self.asked = 0
        self.progress: Any = None  # the run's ProgressReporter, pointed at each round's request

    def start(self, work: Coroutine[Any, Any, Finished]) -> None:
        self.task = asyncio.ensure_future(work)

    async def ask(self, message: str) -> ElicitResult | None:
        """Called by the run's approver: the client's answer, or None if none came in time."""
        self.asked += 1
        key = f"approval-{self.asked}"
        answer: asyncio.Future[ElicitResult] = asyncio.get_running_loop().create_future()
        self.open[key] = (message, answer)
        self.changed.set()
        try:
            return await asyncio.wait_for(answer, QUESTION_TIMEOUT_S)
        except TimeoutError:
            return None
        finally:
            self.open.pop(key, None)

    def answer(self, responses: dict[str, Any] | None) -> None:
        for key, response in (responses or {}).items():
            asked = self.open.get(key)
            if asked and not asked[1].done() and isinstance(response, ElicitResult):
                asked[1].set_result(response)

    async def round(self) -> Finished | InputRequiredResult:
        """Wait until the run finishes (its result) or has questions nobody answered yet (put to
        the client). The request being cancelled cancels the run and waits for it to stop."""
        assert self.task is not None
        while True:
            await asyncio.sleep(0)  # let answered approvers take their answers first
            questions = {key: message for key, (message, answer) in self.open.items() if not answer.done()}
            if questions:
                return InputRequiredResult(
                    input_requests={
                        key: ElicitRequest(
                            params=ElicitRequestFormParams(message=m, requested_schema=self.schema)
                        )
                        for key, m in questions.items()
                    },
                    request_state=self.token,
                )
            if self.task.done():
                return self.task.result()
            self.changed.clear()
            changed = asyncio.ensure_future(self.changed.wait())
            try:
                await asyncio.wait({self.task, changed}, return_when=asyncio.FIRST_COMPLETED)
            except asyncio.CancelledError:
                self.cancel_run()
                with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                    await self.task
                raise
            finally:
                changed.cancel()


class LiveRuns:
    """The runs waiting between rounds, by their token. A finished run stays until its result is
    handed over, or for KEEP_FINISHED_S when no client comes back for it (it is recorded anyway)."""

    def __init__(self) -> None:
        self.runs: dict[str, LiveRun] = {}

    def find(self, request_state: str | None) -> LiveRun | None:
        if request_state is None:
            return None
        live = self.runs.get(request_state)
        if live is None:
            raise ConfigError(
                "This answer is for a run that is no longer waiting (it finished, or its question was "
                "not answered in time); see `runs` and `show`, or call run again."
            )
        return live

    def add(self, live: LiveRun) -> None:
        assert live.task is not None
        self.runs[live.token] = live

        def forget(_: object) -> None:
            asyncio.get_running_loop().call_later(KEEP_FINISHED_S, self.runs.pop, live.token, None)

        live.task.add_done_callback(forget)

    async def round(self, live: LiveRun) -> Finished | InputRequiredResult:
        try:
            out = await live.round()
        except BaseException:
            self.runs.pop(live.token, None)
            raise
        if not isinstance(out, InputRequiredResult):
            self.runs.pop(live.token, None)
        return out
