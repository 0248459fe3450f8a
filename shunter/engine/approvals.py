"""Approvals asked on the terminal that started a run, answered on the worker that runs it.

A workflow that needs one publishes the request as a DBOS event (`approval-N` on its own
workflow) and waits for a message on the topic of the same name. The `shunter run --engine dbos`
that follows the run looks for such events on the run and its subtask workflows, asks on its
terminal, and sends the answer. Both sides are recorded by DBOS, so a run recovered on another
worker keeps the answers it was given and asks nothing twice.
"""

from __future__ import annotations

import dataclasses
import itertools
import select
import sys
from typing import Any

from runtime.context import ApprovalRequest

WAIT_S = 600.0
"""How long a workflow waits for an answer; then the call is refused, as with no terminal."""


def remote_approver(durable: Any) -> Any:
    """The Approver of a workflow whose run is followed on a terminal (`job["ask"]`)."""
    from dbos import DBOS

    numbers = itertools.count()  # the same on replay: the Nth request of this workflow

    async def ask(request: ApprovalRequest) -> bool:
        key = f"approval-{next(numbers)}"
        await durable.guarded(lambda: DBOS.set_event_async(key, dataclasses.asdict(request)))
        answer = await durable.guarded(lambda: DBOS.recv_async(key, timeout_seconds=WAIT_S))
        return answer is True

    return ask


class TerminalAnswers:
    """The follower's side: finds the requests its run's workflows published, asks, answers.
    'always' holds for the rest of the run, for every workflow of it, as in a local run."""

    def __init__(self, client: Any, run_id: str):
        self.c, self.run_id = client, run_id
        self.asked: dict[str, int] = {}
        """Workflow id -> how many of its requests are answered."""
        self.always: set[str] = set()

    def poll(self, still_running: Any) -> None:
        children = self.c.list_workflows(
            workflow_id_prefix=f"{self.run_id}-", status="PENDING", load_input=False, load_output=False
        )
        for wid in [self.run_id, *(w.workflow_id for w in children)]:
            n = self.asked.get(wid, 0)
            request = self.c.get_event(wid, f"approval-{n}", timeout_seconds=0)
            if request is None:
                continue
            ok = self._answer(request, still_running)
            if ok is None:  # the run ended while the question waited
                return
            self.c.send(wid, ok, topic=f"approval-{n}", idempotency_key=f"{wid}-approval-{n}")
            self.asked[wid] = n + 1

    def _answer(self, published: dict[str, Any], still_running: Any) -> bool | None:
        from shunter.approve import granted, question

        request = ApprovalRequest(**published)
        if request.kind in self.always:
            return True
        sys.stderr.write(question(request))
        sys.stderr.flush()
        line = _line(still_running)
        return None if line is None else granted(line, request, self.always)


def _line(still_running: Any) -> str | None:
    """A line from stdin, or None once the run is over; "" (refuse) at the end of input."""
    while still_running():
        ready, _, _ = select.select([sys.stdin], [], [], 0.25)
        if ready:
            return sys.stdin.readline()
    return None
