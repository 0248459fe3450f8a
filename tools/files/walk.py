"""Walking a workspace tree through directory descriptors, for list_files and search_files:
symlinks are reported, never followed; tool, dependency and cache folders are skipped; and,
when asked, .gitignore rules are honoured."""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Generator
from dataclasses import dataclass

from runtime.errors import ToolDenied
from tools.files.common import READ_FLAGS
from tools.gitignore import Rule, glob_to_regex, is_ignored, parse_gitignore
from tools.pathscope import PathScope

# Folders of tools and dependencies: noise for a model, and often huge.
SKIP_DIRS = frozenset(
    {".git", ".hg", ".svn", ".venv", "venv", "node_modules", "__pycache__", ".mypy_cache", ".pytest_cache",
     ".ruff_cache", ".tox", ".nox", ".shunter"}
)  # fmt: skip
MAX_DEPTH = 64


def _read_small(dir_fd: int, name: str, limit: int = 1_000_000) -> str:
    try:
        fd = os.open(name, READ_FLAGS | os.O_NOFOLLOW, dir_fd=dir_fd)
    except OSError:
        return ""
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            return ""
        return f.read(limit).decode("utf-8", "replace")


def ancestor_rules(scope: PathScope, rel: str) -> list[Rule]:
    """The .gitignore rules that apply above `rel`: the root's (plus .git/info/exclude) and each
    parent folder's, outermost first so deeper files take precedence."""
    rules: list[Rule] = []
    dirs = [] if rel == "." else rel.split("/")
    files = [(".git/info/exclude", "")] + [
        ("/".join([*dirs[:d], ".gitignore"]), "/".join(dirs[:d])) for d in range(len(dirs))
    ]
    for name, base in files:
        try:
            with scope.locate(name) as loc:
                if loc.kind == "file":
                    rules += parse_gitignore(_read_small(loc.dir_fd(), loc.name), base)
        except (OSError, ToolDenied):
            continue  # an unreadable or out-of-scope ignore file is simply not used
    return rules


@dataclass
class Entry:
    rel: str
    """Workspace-relative path."""
    name: str
    kind: str
    """'file', 'dir', 'link' or 'other'."""
    size: int
    dir_fd: int
    """The open directory holding it (valid while the walk is at this entry)."""


@dataclass
class Walk:
    recursive: bool = True
    rules: list[Rule] | None = None
    """gitignore rules to honour; None ignores .gitignore files."""
    skipped: set[str] | None = None


def walk_tree(dir_fd: int, rel: str, opts: Walk, depth: int = 0) -> Generator[Entry, None, None]:
    """Entries below the open directory `dir_fd`, depth first, sorted by name. Symlinks are
    reported, never followed; tool and dependency folders are skipped."""
    rules = opts.rules
    if rules is not None:
        text = _read_small(dir_fd, ".gitignore")
        if text:
            rules = rules + parse_gitignore(text, "" if rel == "." else rel)
    with os.scandir(dir_fd) as it:
        entries = sorted(it, key=lambda e: e.name)
    for e in entries:
        child_rel = e.name if rel == "." else f"{rel}/{e.name}"
        try:
            st = e.stat(follow_symlinks=False)
        except OSError:
            continue
        kind = _kind(st.st_mode)
        if rules is not None and is_ignored(rules, child_rel, kind == "dir"):
            continue
        if kind != "dir":
            yield Entry(child_rel, e.name, kind, st.st_size, dir_fd)
            continue
        try:
            child = os.open(e.name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dir_fd)
        except OSError:
            continue  # swapped for a link since the scan, or unreadable: not followed
        try:
            if e.name in SKIP_DIRS or _is_virtualenv(child):
                if opts.skipped is not None:
                    opts.skipped.add(e.name)
                continue
            yield Entry(child_rel, e.name, kind, st.st_size, dir_fd)
            if opts.recursive and depth < MAX_DEPTH:
                yield from walk_tree(child, child_rel, Walk(opts.recursive, rules, opts.skipped), depth + 1)
        finally:
            os.close(child)


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISLNK(mode):
        return "link"
    return "file" if stat.S_ISREG(mode) else "other"


def _is_virtualenv(dir_fd: int) -> bool:
    """Any virtualenv, whatever its name, has a pyvenv.cfg at its top."""
    try:
        os.stat("pyvenv.cfg", dir_fd=dir_fd, follow_symlinks=False)
        return True
    except OSError:
        return False


def glob_matcher(pattern: str | None) -> re.Pattern[str] | None:
    """A glob for names (no '/') or for paths relative to the searched folder (with '/')."""
    if not pattern or pattern in ("*", "**", "**/*"):
        return None
    body = glob_to_regex(pattern.lstrip("/"))
    return re.compile(body if "/" in pattern else "(?:.*/)?" + body, re.DOTALL)


def relative_to(rel: str, base: str) -> str:
    return rel if base == "." else rel[len(base) + 1 :]
