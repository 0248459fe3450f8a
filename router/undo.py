"""Undo: put every file a run changed back as it was before the run, through the workspace's
PathScope, refusing (and changing nothing) when a file was changed after the run.
"""

from __future__ import annotations

import os
import secrets
import stat
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from router.changes import changed_since, read_current
from router.lookup import RefusedError, find_run, shown_status
from router.summaries import iso
from runtime.errors import ShunterError
from runtime.store import Store, sha256
from tools.pathscope import DEFAULT_PROTECTED, Located, PathScope


def undo(
    store: Store,
    ref: str,
    workspace: str | Path,
    *,
    protected: Sequence[str] = DEFAULT_PROTECTED,
    force: bool = False,
    dry_run: bool = False,
) -> dict[str, Any]:
    """Put every file the run changed back as it was before the run (deleting the files it
    created). Refuses, changing nothing, when a file was changed after the run, unless `force`.
    Every path goes through the workspace's PathScope, so a record can never reach outside it.

    Returns {"run_id", "dry_run", "actions": [{"path", "action", "subtask_id"}], "conflicts", "done"};
    action is 'restore', 'delete' or 'none' (already as before).
    """
    row = find_run(store, ref)
    if shown_status(store, row) == "running":
        raise RefusedError(f"Run {row['id']} is still running; undo it once it has stopped.")
    if row.get("undone_at") and not force and not dry_run:
        raise RefusedError(
            f"Run {row['id']} was already undone at {iso(row['undone_at'])}; pass --force to restore again."
        )
    scope = PathScope(workspace, protected)
    changes = store.file_changes(row["id"])
    first: dict[str, dict[str, Any]] = {}
    for ch in changes:
        first.setdefault(ch["path"], ch)
    out_of_scope = [f"{p} ({v.reason})" for p in first if not (v := scope.check(p, write=True)).allowed]
    if out_of_scope:  # a tampered or foreign record: touch nothing, whatever --force says
        raise RefusedError(
            f"Cannot undo run {row['id']}: its record names paths undo may not write: "
            f"{'; '.join(out_of_scope)}. Nothing was changed."
        )
    conflicts = changed_since(scope, changes, first)
    actions = [_undo_action(scope, ch) for ch in first.values()]
    report = {
        "run_id": row["id"],
        "dry_run": dry_run,
        "actions": actions,
        "conflicts": conflicts,
        "done": False,
    }
    if dry_run:
        return report
    if conflicts and not force:
        raise RefusedError(
            f"Cannot undo run {row['id']}: {len(conflicts)} file(s) changed after the run: {', '.join(conflicts)}. "
            "Undo would lose those changes; pass --force to restore the pre-run contents anyway."
        )
    for action, ch in zip(actions, first.values(), strict=True):
        if action["action"] == "restore":
            _write_file(scope, ch["path"], ch["before"])
        elif action["action"] == "delete":
            _delete_file(scope, ch["path"])
    store.update_run(row["id"], undone_at=time.time())
    report["done"] = True
    return report


def _undo_action(scope: PathScope, first: dict[str, Any]) -> dict[str, Any]:
    try:
        kind, data = read_current(scope, first["path"])
    except (OSError, ShunterError):
        kind, data = "other", None
    if first["before"] is None:
        action = "delete" if kind is not None else "none"
    else:
        action = "none" if kind == "file" and sha256(data) == first["before_hash"] else "restore"
    return {"path": first["path"], "action": action, "subtask_id": first["subtask_id"]}


def _write_file(scope: PathScope, rel: str, data: bytes) -> None:
    """Write through the scope: a temp file beside the target, then rename over it."""
    with scope.locate(rel, write=True, create_parents=True) as loc:
        if loc.kind not in (None, "file"):
            raise RefusedError(
                f"Cannot restore {rel}: it is now a {loc.kind}, not a file; move it away and retry."
            )
        _replace(loc, data)


def _replace(loc: Located, data: bytes) -> None:
    assert loc.parent_fd is not None
    mode = stat.S_IMODE(os.stat(loc.name, dir_fd=loc.parent_fd).st_mode) if loc.kind == "file" else 0o644
    tmp = f".shunter-undo-{secrets.token_hex(6)}.tmp"
    fd = os.open(
        tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=loc.parent_fd
    )
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, loc.name, src_dir_fd=loc.parent_fd, dst_dir_fd=loc.parent_fd)
    except BaseException:
        try:
            os.unlink(tmp, dir_fd=loc.parent_fd)
        except OSError:
            pass
        raise


def _delete_file(scope: PathScope, rel: str) -> None:
    with scope.locate(rel, write=True, follow_final=False) as loc:
        if loc.kind == "file":
            os.unlink(loc.name, dir_fd=loc.parent_fd)
        elif loc.kind is not None:
            raise RefusedError(f"Cannot delete {rel}: it is now a {loc.kind}, not the file the run created.")
