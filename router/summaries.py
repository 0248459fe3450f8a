"""What `runs` and `show` print: the recent runs as `runs --json` rows, and one run as
`show --json` prints it (the `run --json` object plus when, where from, and the files it changed).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from router.lookup import find_run, record_from_row, shown_status
from router.records import RunResult
from runtime.store import Store


def iso(ts: float | None) -> str | None:
    """A stored timestamp as ISO 8601 UTC, to the second."""
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def run_summaries(store: Store, limit: int = 20) -> list[dict[str, Any]]:
    """The recent runs, newest first: the `runs --json` rows."""
    out = []
    for r in store.list_runs(limit):
        out.append(
            {
                "run_id": r["id"],
                "status": shown_status(store, r),
                "request": r["request"],
                "created_at": iso(r["created_at"]),
                "finished_at": iso(r["finished_at"]),
                "subtasks_done": r["subtasks_done"],
                "subtasks_total": r["subtasks_total"],
                "cost_usd": (r["usage"] or {}).get("cost_usd"),
                "conversation_id": r["conversation_id"],
                "parent_run_id": r["parent_run_id"],
                **_replanned(store, r),
            }
        )
    return out


def _replanned(store: Store, row: dict[str, Any]) -> dict[str, Any]:
    """For a replanned run: how many plans it had, and its subtask counts over the current plan."""
    history = store.plans(row["id"])
    if not history:
        return {}
    current = {s["id"] for s in (row["plan"] or {}).get("subtasks", [])}
    rows = [s for s in store.subtasks(row["id"]) if s["id"] in current]
    return {
        "plans": len(history),
        "subtasks_done": sum(1 for s in rows if s["status"] == "succeeded"),
        "subtasks_total": len(rows),
    }


def _in_plan_order(row: dict[str, Any], subtasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Subtask rows in the order of the stored plan (any the plan lacks last, as stored)."""
    order = {s["id"]: n for n, s in enumerate((row["plan"] or {}).get("subtasks", []))}
    return sorted(subtasks, key=lambda r: order.get(r["id"], len(order)))


def run_details(store: Store, ref: str) -> dict[str, Any]:
    """One run as `show --json` prints it: the `run --json` object plus when, where from, and files."""
    row = find_run(store, ref)
    subtasks = [record_from_row(r) for r in _in_plan_order(row, store.subtasks(row["id"]))]
    calls = {s["id"]: s.get("call") for s in (row["plan"] or {}).get("subtasks", [])}
    for rec in subtasks:
        rec.call = calls.get(rec.id)
    breakdown = row["usage_breakdown"] or {}
    result = RunResult(
        run_id=row["id"],
        status=row["status"],
        request=row["request"],
        answer=row["answer"] or "",
        plan=row["plan"],
        estimate=row["estimate"],
        subtasks=subtasks,
        usage=row["usage"] or {},
        usage_breakdown=breakdown,
        error=row["error"],
        seconds=row["seconds"] or 0.0,
    )
    history = store.plans(row["id"])
    if history:  # a replanned run: the subtasks of the current plan, each earlier plan in `plans`
        current = {s["id"] for s in (row["plan"] or {}).get("subtasks", [])}
        result.subtasks = [r for r in subtasks if r.id in current]
        result.plans = [
            {
                "round": h["round"],
                "replanned_because": h["reason"],
                "plan": h["plan"],
                "subtasks": h["subtasks"],
            }
            for h in history
        ]
    data = result.to_dict()
    data["status"] = shown_status(store, row)
    if data["status"] == "interrupted":  # what was running died with the process
        for s in data["subtasks"]:
            s["status"] = "interrupted" if s["status"] == "running" else s["status"]
    files = []
    for ch in store.file_changes(row["id"]):
        action = "created" if ch["before"] is None else "deleted" if ch["after"] is None else "modified"
        files.append({"path": ch["path"], "subtask_id": ch["subtask_id"], "action": action})
    data.update(
        created_at=iso(row["created_at"]),
        updated_at=iso(row["updated_at"]),
        finished_at=iso(row["finished_at"]),
        conversation_id=row["conversation_id"],
        parent_run_id=row["parent_run_id"],
        sessions=row["sessions"],
        undone_at=iso(row["undone_at"]),
        files=files,
    )
    return data
