"""The CLI's approval callbacks: interactive y/n/always, --yes, and refusal without a terminal."""

from __future__ import annotations

import asyncio
import sys

from runtime.context import ApprovalRequest, Approver, approve_all


def interactive_approver() -> Approver:
    always: set[str] = set()

    async def ask(request: ApprovalRequest) -> bool:
        if request.kind in always:
            return True
        who = f"{request.subtask_id} · {request.agent}" if request.subtask_id else "tool"
        err = sys.stderr
        err.write(f"\n── approval needed ({who}) ── {request.tool}: {request.summary}\n")
        if request.detail:
            err.write(request.detail.rstrip() + "\n")
        err.write("Allow? [y]es / [n]o / [a]lways for this run: ")
        err.flush()
        answer = (await asyncio.to_thread(sys.stdin.readline)).strip().lower()
        if answer in ("a", "always"):
            always.add(request.kind)
            return True
        return answer in ("y", "yes")

    return ask


def refusing_approver() -> Approver:
    told: set[str] = set()

    async def refuse(request: ApprovalRequest) -> bool:
        if request.kind not in told:
            told.add(request.kind)
            sys.stderr.write(
                f"Refused {request.tool} ({request.summary}): it needs approval and there is no terminal; "
                "re-run with --yes to approve what the policy allows.\n"
            )
        return False

    return refuse


def announcing_approver() -> Approver:
    """Approves everything and shows what it approved (the demo, so a new user sees the flow)."""

    async def announce(request: ApprovalRequest) -> bool:
        who = f"{request.subtask_id} · {request.agent}" if request.subtask_id else "tool"
        sys.stderr.write(
            f"── approval auto-granted for the demo ({who}) ── {request.tool}: {request.summary}\n"
        )
        if request.detail:
            sys.stderr.write(request.detail.rstrip() + "\n")
        return True

    return announce


def choose_approver(yes: bool) -> Approver:
    if yes:
        return approve_all
    if sys.stdin is not None and sys.stdin.isatty():
        return interactive_approver()
    return refusing_approver()
