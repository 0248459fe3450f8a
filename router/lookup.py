"""Finding a stored run and saying what state it is in: by id or id prefix, with a 'running'
run that no live process holds shown as 'interrupted', and its subtask rows read back as
records. RefusedError is how resume and undo decline a run in the wrong state.
"""

from __future__ import annotations

from typing import Any

from router.locks import is_live
from router.records import SubtaskRecord
from runtime.errors import ConfigError, ShunterError
from runtime.store import Store


class RefusedError(ShunterError):
    """Resume or undo would be unsafe (files changed since, run still going); nothing was done."""


def shown_status(store: Store, row: dict[str, Any]) -> str:
    """The stored status, or 'interrupted' for a 'running' run no live process holds."""
    if row["status"] == "running" and not is_live(store.path.parent, row["id"]):
        return "interrupted"
    return row["status"]


def find_run(store: Store, ref: str) -> dict[str, Any]:
    """A run by id or unique id prefix."""
    row = store.get_run(ref)
    if row is not None:
        return row
    ids = store.find_runs(ref) if ref else []
    if len(ids) == 1:
        return store.get_run(ids[0])  # type: ignore[return-value]
    if ids:
        raise ConfigError(f"Run id {ref!r} is ambiguous ({', '.join(ids)}); give more of it.")
    raise ConfigError(f"No run {ref!r} in this workspace; `shunter runs` lists the runs.")


def record_from_row(row: dict[str, Any]) -> SubtaskRecord:
    """A stored subtask row as the record the scheduler and `run --json` use."""
    return SubtaskRecord(
        id=row["id"],
        agent=row["agent"],
        status=row["status"],
        result=row["result"] or "",
        error=row["error"],
        files_changed=row["files_changed"] or [],
        tool_calls=row["tool_calls"] or 0,
        iterations=row["iterations"] or 0,
        usage=row["usage"] or {},
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        attempts=row["attempts"] or 0,
    )
