"""Secret files: whether a workspace path matches settings.tools.secret_paths (keys, tokens,
.env files), which the file tools refuse to read or search."""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence

from tools.gitignore import glob_to_regex
from tools.pathnames import collapse, components, fold_name


def is_secret(rel_path: str, patterns: Sequence[str]) -> bool:
    """Whether the workspace-relative `rel_path` matches the secret globs `patterns`
    (settings.tools.secret_paths; see its docstring for the glob rules)."""
    return secret_match(rel_path, patterns) is not None


def secret_match(rel_path: str, patterns: Sequence[str]) -> str | None:
    """The glob of `patterns` that makes `rel_path` secret, or None. The last glob that matches
    decides, so '!glob' re-allows what an earlier glob matched."""
    parts = [fold_name(p) for p in collapse(components(rel_path.replace("\\", "/")))]
    if not parts:
        return None
    path = "/".join(parts)
    folders = ["/".join(parts[:i]) for i in range(1, len(parts))]
    hit = None
    for raw in patterns:
        negate = raw.startswith("!")
        body = raw[1:] if negate else raw
        regex = _secret_regex(body)
        if regex is None:
            continue
        # 'dir/' covers everything in such a folder; any other glob matches the path itself
        targets = folders if body.endswith("/") else [path]
        if any(regex.fullmatch(t) for t in targets):
            hit = None if negate else raw
    return hit


@functools.lru_cache(maxsize=256)
def _secret_regex(glob: str) -> re.Pattern[str] | None:
    body = "/".join(fold_name(p) for p in glob.strip().rstrip("/").split("/") if p) if glob.strip() else ""
    if not body:
        return None
    anchored = glob.startswith("/")
    return re.compile(("" if anchored else "(?:.*/)?") + glob_to_regex(body), re.DOTALL)
