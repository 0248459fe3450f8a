"""The files a run changed, compared with the workspace now: what is there (read through the
workspace's PathScope) and which paths no longer hold what the run left. Resume checks this
before running a subtask again, undo before restoring.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from runtime.errors import ShunterError
from runtime.store import sha256
from tools.pathscope import PathScope


def read_current(scope: PathScope, rel: str) -> tuple[str | None, bytes | None]:
    """(kind, content) of a workspace file now: kind None when it is missing."""
    with scope.locate(rel, follow_final=False) as loc:
        if loc.kind != "file":
            return loc.kind, None
        fd = loc.open(os.O_RDONLY)
        with os.fdopen(fd, "rb") as f:
            return "file", f.read()


def _last_after(changes: list[dict[str, Any]]) -> dict[str, str | None]:
    last: dict[str, str | None] = {}
    for ch in changes:
        last[ch["path"]] = ch["after_hash"]
    return last


def changed_since(scope: PathScope, changes: list[dict[str, Any]], paths: Iterable[str]) -> list[str]:
    """Paths whose content now differs from what the run left there."""
    last = _last_after(changes)
    out = []
    for path in sorted(set(paths)):
        try:
            kind, data = read_current(scope, path)
        except (OSError, ShunterError):
            out.append(path)
            continue
        if kind not in (None, "file") or sha256(data) != last[path]:
            out.append(path)
    return out
