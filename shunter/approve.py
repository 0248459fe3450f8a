"""The CLI's approval callbacks: interactive y/n/always, --yes, and refusal without a terminal."""

from __future__ import annotations

import asyncio
import contextlib
import re
import sys
import threading
from collections.abc import Callable

from runtime.context import ApprovalRequest, Approver, approve_all

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


def shown(text: str) -> str:
    """Model-written text made safe to print: control characters (ANSI escapes, carriage
    returns that hide part of a line, bidi overrides) are shown as escapes, never obeyed."""
    return _CONTROL.sub(lambda m: m.group(0).encode("unicode_escape").decode(), text)


class _Lines:
    """One reader of stdin for the whole run. A prompt that is abandoned (its subtask timed out
    or the run was cancelled) stops waiting without taking the next line, so an answer always
    goes to the prompt on screen."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[str] | None = None

    async def next(self) -> str:
        if self.queue is None:
            loop, queue = asyncio.get_running_loop(), asyncio.Queue[str]()
            self.queue = queue

            def pump() -> None:
                try:
                    for line in sys.stdin:
                        loop.call_soon_threadsafe(queue.put_nowait, line)
                    loop.call_soon_threadsafe(queue.put_nowait, "")  # end of input: no more answers
                except (RuntimeError, ValueError, OSError):
                    return  # the run is over (its loop is closed) or stdin went away

            threading.Thread(target=pump, name="shunter-stdin", daemon=True).start()
        line = await self.queue.get()
        if line == "":
            self.queue.put_nowait("")  # every later prompt sees the end of input too
        return line


class InteractiveApprover:
    """Asks y / n / always on the terminal. `pause` (set by the live display) stops redrawing
    while the question waits, so the prompt is not drawn over."""

    def __init__(self) -> None:
        self.always: set[str] = set()
        self.lines = _Lines()
        self.pause: Callable[[], contextlib.AbstractContextManager[None]] = contextlib.nullcontext

    async def __call__(self, request: ApprovalRequest) -> bool:
        if request.kind in self.always:
            return True
        with self.pause():
            return await self._ask(request)

    async def _ask(self, request: ApprovalRequest) -> bool:
        sys.stderr.write(question(request))
        sys.stderr.flush()
        return granted(await self.lines.next(), request, self.always)


def question(request: ApprovalRequest) -> str:
    """The prompt: what the call wants to do (model-written parts made safe), then y / n / always.
    The DBOS engine's follower asks with it too (shunter.engine.approvals)."""
    who = f"{request.subtask_id} · {request.agent}" if request.subtask_id else "tool"
    text = f"\n── approval needed ({who}) ── {request.tool}: {shown(request.summary)}\n"
    if request.detail:
        text += shown(request.detail.rstrip()) + "\n"
    return text + "Allow? [y]es / [n]o / [a]lways for this run: "


def granted(answer: str, request: ApprovalRequest, always: set[str]) -> bool:
    """The answer to `question`; 'always' approves this kind of call for the rest of the run."""
    answer = answer.strip().lower()
    if answer in ("a", "always"):
        always.add(request.kind)
        return True
    return answer in ("y", "yes")


def interactive_approver() -> InteractiveApprover:
    return InteractiveApprover()


def refusing_approver() -> Approver:
    told: set[str] = set()

    async def refuse(request: ApprovalRequest) -> bool:
        if request.kind not in told:
            told.add(request.kind)
            sys.stderr.write(
                f"Refused {request.tool} ({shown(request.summary)}): it needs approval and there is no terminal; "
                "re-run with --yes to approve what the policy allows.\n"
            )
        return False

    return refuse


def announcing_approver() -> Approver:
    """Approves everything and shows what it approved (the demo, so a new user sees the flow)."""

    async def announce(request: ApprovalRequest) -> bool:
        who = f"{request.subtask_id} · {request.agent}" if request.subtask_id else "tool"
        sys.stderr.write(
            f"── approval auto-granted for the demo ({who}) ── {request.tool}: {shown(request.summary)}\n"
        )
        if request.detail:
            sys.stderr.write(shown(request.detail.rstrip()) + "\n")
        return True

    return announce


def choose_approver(yes: bool) -> Approver:
    if yes:
        return approve_all
    if sys.stdin is not None and sys.stdin.isatty():
        return interactive_approver()
    return refusing_approver()
