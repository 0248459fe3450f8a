"""Submitting runs to the engine, following them, and cancelling them (`run --engine dbos`,
`batch`, `cancel`). A submitter needs no model key: workers make the calls."""

from __future__ import annotations

import contextlib
import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from runtime.errors import ConfigError
from shunter.engine import RUN_QUEUE, RUN_WORKFLOW, app_version, redacted, require_dbos

FOLLOW_POLL_S = 0.2
NO_WORKER_S = 3.0
"""How long a followed run may wait in the queue before the follower looks for a live worker."""
SETTLE_S = 10.0
"""How long a follower waits for the worker to record a cancelled run's final state."""
TERMINAL = ("SUCCESS", "ERROR", "CANCELLED", "MAX_RECOVERY_ATTEMPTS_EXCEEDED")


def client(url: str) -> Any:
    require_dbos()
    import logging

    from dbos import DBOS, DBOSClient

    logging.getLogger("dbos").setLevel(logging.WARNING)  # not a line per migration on stderr
    try:
        # The client never creates the schema; a submitter may come before any worker has.
        DBOS.migrate(url)
        return DBOSClient(system_database_url=url)
    except Exception as e:  # noqa: BLE001 - the database's own words, in one sentence
        raise ConfigError(
            f"Cannot open the engine database {redacted(url)} ({type(e).__name__}: {str(e)[:200]}); "
            "check [engine] url or SHUNTER_ENGINE_URL."
        ) from None


def job(
    request: str,
    workspace: Path,
    overrides: dict[str, Any],
    yes: bool,
    budget: str | None = None,
    ask: bool = False,
) -> dict[str, Any]:
    """One run as a worker takes it: no secrets (the engine's database keeps it). `budget` is
    the key of a dollar cap in the engine's database that its calls reserve against; `ask`,
    that approvals are asked on the terminal following the run (shunter.engine.approvals)."""
    return {
        "run_id": uuid.uuid4().hex[:12],
        "request": request,
        "workspace": str(workspace),
        "overrides": overrides,
        "yes": yes,
        "budget": budget,
        "ask": ask,
    }


def submit(c: Any, j: dict[str, Any]) -> str:
    c.enqueue(
        {
            "queue_name": RUN_QUEUE,
            "workflow_name": RUN_WORKFLOW,
            "workflow_id": j["run_id"],
            "app_version": app_version(),
        },
        j,
    )
    return j["run_id"]


def cancel(c: Any, run_id: str) -> str:
    """Cancel the run's workflow and every child, wherever they run. Returns its status before."""
    try:
        status = c.retrieve_workflow(run_id).get_status().status
    except Exception:  # noqa: BLE001 - DBOS's "does not exist", said our way
        raise ConfigError(
            f"No run {run_id!r} in the engine database; `shunter runs --workspace DIR` lists the runs."
        ) from None
    if status not in TERMINAL:
        c.cancel_workflow(run_id, cancel_children=True)
        # Children already enqueued but not yet linked to the parent are cancelled by their id.
        children = c.list_workflows(workflow_id_prefix=f"{run_id}-", load_input=False, load_output=False)
        active = [w.workflow_id for w in children if w.status not in TERMINAL]
        if active:
            c.cancel_workflows(active)
    return status


def follow(
    c: Any, run_id: str, workspace: Path, quiet: bool, url: str | None = None, answers: Any = None
) -> dict[str, Any]:
    """Wait for the run to end, telling subtask changes on stderr; its `run --json` object.
    With `url`, says once on stderr when the run waits and no worker is alive to take it; with
    `answers` (shunter.engine.approvals.TerminalAnswers), asks the run's approvals here."""
    from router.summaries import run_details
    from runtime.store import Store

    handle = c.retrieve_workflow(run_id)
    seen: dict[str, str] = {}
    asked_at = time.monotonic() + NO_WORKER_S if url else None
    while True:
        status = handle.get_status()
        if not quiet:
            _progress(workspace, run_id, seen)
        if status.status in TERMINAL:
            break
        if answers is not None:
            answers.poll(lambda: handle.get_status().status not in TERMINAL)
        if url and asked_at is not None and status.status == "ENQUEUED" and time.monotonic() > asked_at:
            asked_at = None
            _say_if_no_worker(url)
        time.sleep(FOLLOW_POLL_S)
    if status.status == "SUCCESS" and isinstance(status.output, dict):
        return status.output
    # Cancelled in the engine at once; the worker then stops the run and records what finished.
    deadline = time.monotonic() + SETTLE_S
    while True:
        with contextlib.closing(Store.open(workspace)) as store:
            try:
                data = run_details(store, run_id)
            except ConfigError:
                data = {"run_id": run_id, "status": "failed", "answer": "", "subtasks": [], "usage": {}}
        if data["status"] != "running" or time.monotonic() > deadline:
            break
        time.sleep(FOLLOW_POLL_S)
    if status.status == "CANCELLED":
        data["status"] = "cancelled"
        data["error"] = data.get("error") or "The run was cancelled; finished subtasks are kept."
    else:
        data["status"] = "failed"
        data["error"] = f"The run's workflow ended {status.status}: {str(status.error)[:300]}"
    return data


def _say_if_no_worker(url: str) -> None:
    from shunter.engine.worker import live_workers

    if not any(w["status"] == "alive" for w in live_workers(url)):
        print(
            f"No worker is running on {redacted(url)}, so the run waits in the queue; start one with "
            "`shunter worker` (same engine URL), or press Ctrl-C to cancel the run.",
            file=sys.stderr,
        )


def _progress(workspace: Path, run_id: str, seen: dict[str, str]) -> None:
    from runtime.store import STATE_FILE, Store

    if not (workspace / ".shunter" / STATE_FILE).exists():
        return
    with contextlib.closing(Store.open(workspace)) as store:
        for row in store.subtasks(run_id):
            if seen.get(row["id"]) != row["status"]:
                seen[row["id"]] = row["status"]
                print(f"  {row['id']:<6} {row['agent']:<10} {row['status']}", file=sys.stderr)


def print_result(data: dict[str, Any], as_json: bool) -> int:
    from shunter import render

    if as_json:
        print(json.dumps(data, default=str))
    else:
        print(data.get("answer", ""))
        if data.get("usage"):
            print("\n" + render.usage_summary(data), file=sys.stderr)
        if data.get("error"):
            print(f"{data['status']}: {data['error']}", file=sys.stderr)
        print(f"Run {data['run_id']} {data['status']}.", file=sys.stderr)
    return {"succeeded": 0, "cancelled": 130}.get(data["status"], 1)
