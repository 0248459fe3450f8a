"""Runs the engine holds that no worker has recorded in their workspace yet, for `runs` and
`show`: a run enqueued with `--detach` or `batch` is in the engine's database until a worker
takes it, and only then in the workspace's store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from loguru import logger

from router.summaries import iso
from runtime.config import Settings
from runtime.errors import ConfigError
from shunter.engine import RUN_WORKFLOW, engine_url, redacted

WAITING = {"ENQUEUED": "queued", "PENDING": "running"}


def waiting_runs(settings: Settings, workspace: Path) -> list[dict[str, Any]]:
    """`runs --json` rows, newest first, for the workspace's runs that are queued or just taken
    on the engine (the caller asks only when [engine] kind or url, or SHUNTER_ENGINE_URL, names
    one: the local engine never reads the engine's database)."""
    url = engine_url(settings)
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return []  # no run was ever enqueued there; reading must not create the database
    try:
        import dbos  # noqa: F401
    except ImportError:
        return []
    from shunter.engine.client import client

    try:
        c = client(url)
    except ConfigError as e:  # the store's runs are still worth listing
        logger.bind(human=True).warning(f"{e} Runs still queued there are not listed.")
        return []
    try:
        found = c.list_workflows(
            name=RUN_WORKFLOW, status=list(WAITING), load_input=True, load_output=False, sort_desc=True
        )
    except Exception as e:  # noqa: BLE001 - one sentence, and the store's runs still listed
        logger.bind(human=True).warning(f"Cannot read the engine database {redacted(url)} ({e}).")
        return []
    finally:
        c.destroy()
    rows = []
    for w in found:
        job = _job(w)
        if job is None or job.get("workspace") != str(workspace):
            continue
        rows.append(
            {
                "run_id": w.workflow_id,
                "status": WAITING[w.status],
                "request": job.get("request", ""),
                "created_at": iso(w.created_at / 1000 if w.created_at else None),
                "finished_at": None,
                "subtasks_done": 0,
                "subtasks_total": 0,
                "cost_usd": None,
                "conversation_id": None,
                "parent_run_id": None,
                "engine": "dbos",
            }
        )
    return rows


def _job(w: Any) -> dict[str, Any] | None:
    args = (w.input or {}).get("args") or ()
    return args[0] if args and isinstance(args[0], dict) else None


def merged(stored: list[dict[str, Any]], waiting: list[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    """The store's rows and the engine's not yet recorded ones, newest first."""
    seen = {r["run_id"] for r in stored}
    rows = stored + [r for r in waiting if r["run_id"] not in seen]
    rows.sort(key=lambda r: r["created_at"] or "", reverse=True)
    return rows[:limit]


def waiting_details(row: dict[str, Any]) -> dict[str, Any]:
    """`show --json` for a run no worker has recorded yet: the `run --json` keys, nothing spent."""
    from router.records import RunResult
    from runtime.usage import Usage

    result = RunResult(
        run_id=row["run_id"], status="running", request=row["request"], usage=Usage().to_dict()
    )
    return {
        **result.to_dict(),
        "status": row["status"],
        "created_at": row["created_at"],
        **dict.fromkeys(("updated_at", "finished_at", "conversation_id", "parent_run_id", "undone_at")),
        "sessions": 0,
        "files": [],
        "engine": "dbos",
    }
