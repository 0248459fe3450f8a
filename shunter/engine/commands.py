"""The engine's CLI commands: `run --engine dbos`, `batch`, `cancel`, `worker`."""

from __future__ import annotations

import json
import signal
import sys
import uuid
from pathlib import Path
from typing import Any

from runtime.config import Settings
from runtime.errors import ConfigError
from shunter.engine import client as eng
from shunter.engine import engine_url, redacted
from shunter.engine.approvals import TerminalAnswers
from shunter.engine.ledger import create_budget
from shunter.wiring import check_budget_can_be_enforced, check_workspace, settings_for


def _err(text: str) -> None:
    print(text, file=sys.stderr)


def run_on_engine(
    request: str,
    ws: Path,
    settings: Settings,
    overrides: dict[str, Any],
    yes: bool,
    detach: bool,
    as_json: bool,
) -> int:
    url = engine_url(settings)
    c = eng.client(url)
    try:
        # Followed on a terminal without --yes: approvals are asked here, answered on the worker.
        ask = not yes and not detach and sys.stdin is not None and sys.stdin.isatty()
        j = eng.job(request, ws, overrides, yes, ask=ask)
        cap = settings.limits.max_cost_usd
        if cap is not None:  # one counter for the run's calls on every worker
            create_budget(url, j["run_id"], cap)
            j["budget"] = j["run_id"]
        run_id = eng.submit(c, j)
        if detach:
            out = {"run_id": run_id, "status": "enqueued", "workspace": str(ws)}
            print(json.dumps(out) if as_json else run_id)
            if not as_json:
                _err(
                    f"Enqueued on {redacted(url)}; follow with `shunter show {run_id}`, stop with `shunter cancel {run_id}`."
                )
            return 0
        _err(f"Run {run_id} enqueued on {redacted(url)}; Ctrl-C cancels it.")  # stderr, --json or not
        answers = TerminalAnswers(c, run_id) if ask else None
        return eng.print_result(_follow_cancelling_on_sigint(c, run_id, ws, as_json, url, answers), as_json)
    finally:
        c.destroy()


def _follow_cancelling_on_sigint(
    c: Any, run_id: str, ws: Path, quiet: bool, url: str, answers: Any = None
) -> dict[str, Any]:
    """Ctrl-C (or SIGTERM) on the process that started the run cancels the run wherever it runs;
    following goes on until the workers have stopped it, so what finished is reported."""

    def on_signal(*_: Any) -> None:
        _err("\nCancelling the run on its workers…")
        eng.cancel(c, run_id)

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        return eng.follow(c, run_id, ws, quiet, url, answers)
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def batch_command(
    file: Path, workspace: Path, yes: bool, detach: bool, as_json: bool, max_cost: float | None = None
) -> int:
    """One run per JSONL line ({"request": ..., "workspace": ...}); workspace defaults to
    --workspace. `max_cost` is one dollar cap shared by every run of the batch."""
    default_ws = workspace
    budget = f"batch-{uuid.uuid4().hex[:12]}" if max_cost is not None else None
    jobs: list[dict[str, Any]] = []
    try:
        lines = file.read_text().splitlines()
    except OSError as e:
        raise ConfigError(
            f"Cannot read the batch file {file}: {e.strerror}; pass a readable JSONL file."
        ) from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as e:
            raise ConfigError(f"{file} line {n} is not JSON ({e.msg}); write one object per line.") from None
        if not isinstance(item, dict) or not str(item.get("request", "")).strip():
            raise ConfigError(
                f'{file} line {n} has no "request"; write {{"request": "...", "workspace": "DIR"}}.'
            )
        ws = check_workspace(item.get("workspace") or default_ws)
        jobs.append(eng.job(str(item["request"]), ws, dict(item.get("overrides") or {}), yes, budget))
    if not jobs:
        raise ConfigError(f"{file} has no requests; write one JSON object per line.")
    settings = settings_for(check_workspace(default_ws))
    url = engine_url(settings)
    c = eng.client(url)
    try:
        if budget is not None and max_cost is not None:
            settings.limits.max_cost_usd = max_cost
            check_budget_can_be_enforced(settings)
            create_budget(url, budget, max_cost)
        for j in jobs:
            eng.submit(c, j)
        if not as_json:
            _err(f"Enqueued {len(jobs)} runs on {redacted(url)}.")
        if detach:
            out = [{"run_id": j["run_id"], "status": "enqueued", "workspace": j["workspace"]} for j in jobs]
        else:
            # Only the first run may say that no worker is there: one sentence, not one a run.
            out = [
                _summary(eng.follow(c, j["run_id"], Path(j["workspace"]), True, url if n == 0 else None))
                for n, j in enumerate(jobs)
            ]
    finally:
        c.destroy()
    if as_json:
        print(json.dumps({"runs": out}, default=str))
    else:
        for r in out:
            print(f"{r['run_id']}  {r['status']}")
    return 0 if all(r["status"] in ("succeeded", "enqueued") for r in out) else 1


def _summary(data: dict[str, Any]) -> dict[str, Any]:
    return {k: data.get(k) for k in ("run_id", "status", "answer", "usage", "error")}


def cancel_command(run_id: str, workspace: Path, as_json: bool) -> int:
    url = engine_url(settings_for(check_workspace(workspace)))
    c = eng.client(url)
    try:
        before = eng.cancel(c, run_id)
    finally:
        c.destroy()
    done = before in eng.TERMINAL
    out = {"run_id": run_id, "cancelled": not done, "status": before.lower()}
    if as_json:
        print(json.dumps(out))
    else:
        print(f"Run {run_id} had already ended ({before.lower()})." if done else f"Run {run_id} cancelled.")
    return 0


def workers_command(workspace: Path, as_json: bool) -> int:
    """The cluster at a glance: live workers, and what waits on or runs in the engine's queues."""
    from shunter.engine import RUN_QUEUE, SUBTASK_QUEUE
    from shunter.engine.worker import live_workers

    url = engine_url(settings_for(check_workspace(workspace)))
    c = eng.client(url)
    try:
        counts = {
            state: {
                kind: len(c.list_workflows(queue_name=q, status=status, load_input=False, load_output=False))
                for kind, q in (("runs", RUN_QUEUE), ("subtasks", SUBTASK_QUEUE))
            }
            for state, status in (("queued", "ENQUEUED"), ("running", "PENDING"))
        }
    finally:
        c.destroy()
    workers = live_workers(url)
    if as_json:
        print(json.dumps({"engine": redacted(url), "workers": workers, **counts}))
        return 0
    print(f"Engine {redacted(url)}: {len(workers)} worker(s).")
    for w in workers:
        print(
            f"  {w['executor_id']:<40} {w['status']:<7} last heartbeat {w['seconds_since_heartbeat']:.1f} s ago"
        )
    for state in ("queued", "running"):
        print(f"{state.capitalize()}: {counts[state]['runs']} runs, {counts[state]['subtasks']} subtasks.")
    return 0


def worker_command(workspace: Path, concurrency: int | None) -> int:
    from shunter.engine import require_dbos
    from shunter.engine.worker import serve

    require_dbos()
    settings = settings_for(check_workspace(workspace))
    serve(engine_url(settings), concurrency or settings.engine.concurrency, settings)
    return 0
