"""The file specialist's read tools: read_file, list_files and search_files."""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator
from typing import BinaryIO

from runtime.context import RunContext
from runtime.errors import ToolFailed
from tools.base import tool
from tools.files.common import (
    READ_FLAGS,
    SNIFF_BYTES,
    is_binary,
    not_found,
    os_error,
    plural,
    read_located,
    secret_refusal,
)
from tools.files.walk import Entry, Walk, ancestor_rules, glob_matcher, relative_to, walk_tree
from tools.gitignore import Rule
from tools.pathscope import scope_for
from tools.secret_paths import secret_match

MAX_LIST_ENTRIES = 1000
MAX_COUNT = 100_000
MAX_MATCHES = 200
MAX_MATCH_LINE = 300


@tool(effect="read")
def read_file(ctx: RunContext, path: str, start_line: int = 1, end_line: int | None = None) -> str:
    """Read a text file in the workspace. Shows a header line `path (lines a-b of N)` followed
    by the text exactly as stored (no line numbers).

    Args:
        path: File path relative to the workspace.
        start_line: First line to show (1-based).
        end_line: Last line to show (inclusive); omit to read to the end.
    """
    if start_line < 1:
        raise ToolFailed("start_line must be 1 or more; lines are numbered from 1.")
    if end_line is not None and end_line < start_line:
        raise ToolFailed(
            f"end_line ({end_line}) is before start_line ({start_line}); give a range with end_line >= start_line."
        )
    scope = scope_for(ctx)
    try:
        with scope.locate(path) as loc:
            if not loc.exists:
                raise ToolFailed(not_found(path))
            if loc.kind == "dir":
                raise ToolFailed(f"{loc.rel} is a directory; use list_files to see what it contains.")
            refusal = secret_refusal(ctx, path, loc.rel)
            if refusal:
                raise ToolFailed(refusal)
            fd = loc.open(READ_FLAGS)
    except OSError as e:
        raise ToolFailed(os_error("read", path, e)) from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise ToolFailed(
                f"{loc.rel} is not a regular file (a device, socket or pipe); read_file reads regular files only."
            )
        if is_binary(f.read(SNIFF_BYTES)):
            raise ToolFailed(f"{loc.rel} is a binary file ({st.st_size} bytes); not shown.")
        f.seek(0)
        tools = ctx.settings.tools
        budget = max(1000, min(tools.max_read_bytes, tools.max_result_chars - 1000))
        return _read_lines(
            f, loc.rel, st.st_size, start_line, end_line, budget, count_all=st.st_size <= 8 * budget
        )


def _read_lines(
    f: BinaryIO, rel: str, size: int, start: int, end: int | None, budget: int, count_all: bool
) -> str:
    """The requested lines of `f` within `budget` bytes, under a header naming the range."""
    if size == 0:
        return f"{rel} (empty file)"
    chunks: list[bytes] = []
    used, resume_at, cut = 0, None, False
    total: int | None = 0
    for number, line in enumerate(f, 1):
        total = number
        wanted = number >= start and (end is None or number <= end) and resume_at is None
        if wanted and used + len(line) <= budget:
            chunks.append(line)
            used += len(line)
            continue
        if wanted and not chunks:  # one line longer than the whole budget: show its start
            chunks.append(line[:budget])
            used, cut, resume_at = budget, True, number + 1
            continue
        if wanted:
            resume_at = number
        if number >= start and not count_all:
            total = None  # past what we show, in a file too big to count through
            break
    if not chunks:
        raise ToolFailed(f"{rel} has {total} lines; start_line {start} is past the end.")
    last = start + len(chunks) - 1
    raw = b"".join(chunks)
    try:
        text, note = raw.decode("utf-8"), ""
    except UnicodeDecodeError:
        text, note = raw.decode("utf-8", "replace"), "; not valid UTF-8, undecodable bytes shown as \ufffd"
    of = f" of {total}" if total is not None else f"; file is {size} bytes"
    out = f"{rel} (lines {start}-{last}{of}{note})\n{text}"
    if cut:
        out += f"\n[... line {last} was cut at {budget} bytes]"
    if resume_at is not None:
        out += f"\n[... stopped after {used} bytes to keep the result small; continue with start_line={resume_at}]"
    return out


@tool(effect="read")
def list_files(ctx: RunContext, path: str = ".", pattern: str = "*", recursive: bool = True) -> str:
    """List files and folders in the workspace (folders end with '/'). Skips .git, virtualenvs,
    node_modules and cache folders; symlinks are shown as `link -> target` and not followed.

    Args:
        path: Folder to list, relative to the workspace.
        pattern: Glob to filter by: on names ('*.py') or, with a '/', on paths below `path` ('src/**/*.py').
        recursive: List sub-folders too.
    """
    scope = scope_for(ctx)
    matcher = glob_matcher(pattern)
    skipped: set[str] = set()
    shown: list[str] = []
    count = 0
    try:
        with scope.locate(path) as loc:
            if not loc.exists:
                raise ToolFailed(not_found(path))
            if loc.kind != "dir":
                raise ToolFailed(f"{loc.rel} is a file, not a folder; use read_file to read it.")
            fd = loc.open(os.O_RDONLY | os.O_DIRECTORY)
    except OSError as e:
        raise ToolFailed(os_error("list", path, e)) from None
    try:
        walk = walk_tree(fd, loc.rel, Walk(recursive=recursive, skipped=skipped))
        for entry in walk:
            if matcher and not matcher.fullmatch(relative_to(entry.rel, loc.rel)):
                continue
            count += 1
            if count <= MAX_LIST_ENTRIES:
                shown.append(_describe(entry))
            elif count >= MAX_COUNT:
                break
        walk.close()
    finally:
        os.close(fd)
    return _list_text(loc.rel, pattern, shown, count, skipped)


def _describe(entry: Entry) -> str:
    if entry.kind == "dir":
        return entry.rel + "/"
    if entry.kind == "link":
        try:
            return f"{entry.rel} -> {os.readlink(entry.name, dir_fd=entry.dir_fd)}"
        except OSError:
            return f"{entry.rel} -> ?"
    return f"{entry.rel} ({entry.size} bytes)" if entry.kind == "file" else f"{entry.rel} (special file)"


def _list_text(rel: str, pattern: str, shown: list[str], count: int, skipped: set[str]) -> str:
    where = "the workspace" if rel == "." else rel
    if not shown:
        text = (
            f"No entries match {pattern!r} in {where}." if pattern not in ("*", "") else f"{where} is empty."
        )
    else:
        text = "\n".join(shown)
        if count > len(shown):
            more = f"{count - len(shown)}" if count < MAX_COUNT else f"over {MAX_COUNT - len(shown)}"
            text += f"\n… {more} more entries not shown; narrow the path or the pattern."
    if skipped:
        text += f"\n(not listed: {', '.join(sorted(skipped))} — tool, dependency and cache folders)"
    return text


@tool(effect="read")
def search_files(
    ctx: RunContext, pattern: str, path: str = ".", glob: str | None = None, ignore_case: bool = False
) -> str:
    """Search text files in the workspace for a Python regular expression; prints `path:line: text`.
    Skips binary files, files listed in .gitignore, and tool, dependency and cache folders.

    Args:
        pattern: Python regular expression, matched against each line.
        path: Folder (or single file) to search, relative to the workspace.
        glob: Only search files matching this glob ('*.py', 'src/**/*.ts').
        ignore_case: Match regardless of case.
    """
    try:
        regex = re.compile(pattern, re.IGNORECASE if ignore_case else 0)
    except re.error as e:
        raise ToolFailed(
            f"Invalid regular expression {pattern!r}: {e}. Escape special characters (for example \\( or \\.) and try again."
        ) from None
    scope = scope_for(ctx)
    limit = ctx.settings.tools.max_read_bytes
    try:
        with scope.locate(path) as loc:
            if not loc.exists:
                raise ToolFailed(not_found(path))
            if loc.kind == "dir":
                fd = loc.open(os.O_RDONLY | os.O_DIRECTORY)
                rules = ancestor_rules(scope, loc.rel)
                return _search_tree(ctx, fd, loc.rel, regex, glob_matcher(glob), rules, limit, pattern)
            refusal = secret_refusal(ctx, path, loc.rel)
            if refusal:
                raise ToolFailed(refusal.replace("does not read it", "does not search it"))
            data = read_located(loc, limit)
    except OSError as e:
        raise ToolFailed(os_error("search", path, e)) from None
    matches = list(_search_bytes(loc.rel, data, regex))
    if not matches:
        return f"No matches for {pattern!r} in {loc.rel}."
    return "\n".join(matches[:MAX_MATCHES]) + _more(len(matches))


def _search_tree(
    ctx: RunContext,
    fd: int,
    rel: str,
    regex: re.Pattern[str],
    matcher: re.Pattern[str] | None,
    rules: list[Rule],
    limit: int,
    pattern: str,
) -> str:
    out: list[str] = []
    files = large = secret = 0
    secret_globs = ctx.settings.tools.secret_paths
    try:
        walk = walk_tree(fd, rel, Walk(rules=rules))
        for entry in walk:
            if entry.kind != "file" or (matcher and not matcher.fullmatch(relative_to(entry.rel, rel))):
                continue
            if ctx.cancel.cancelled:
                break
            if secret_match(entry.rel, secret_globs):
                secret += 1
                continue
            if entry.size > limit:
                large += 1
                continue
            try:
                fd_file = os.open(entry.name, READ_FLAGS | os.O_NOFOLLOW, dir_fd=entry.dir_fd)
            except OSError:
                continue
            with os.fdopen(fd_file, "rb") as f:
                data = f.read(limit)
            files += 1
            for hit in _search_bytes(entry.rel, data, regex):
                out.append(hit)
                if len(out) > MAX_MATCHES:
                    break
            if len(out) > MAX_MATCHES:
                break
        walk.close()
    finally:
        os.close(fd)
    where = "the workspace" if rel == "." else rel
    note = f"; {large} files over {limit} bytes skipped" if large else ""
    if secret:
        note += f"; {plural(secret, 'secret file')} (tools.secret_paths) skipped"
    if not out:
        return f"No matches for {pattern!r} in {where} ({files} files searched{note})."
    if len(out) > MAX_MATCHES:
        return (
            "\n".join(out[:MAX_MATCHES])
            + f"\n… more matches not shown; narrow the pattern, path or glob{note}."
        )
    return "\n".join(out) + (f"\n({note[2:]})" if note else "")


def _search_bytes(rel: str, data: bytes, regex: re.Pattern[str]) -> Iterator[str]:
    if is_binary(data):
        return
    for number, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
        if regex.search(line):
            text = line if len(line) <= MAX_MATCH_LINE else line[:MAX_MATCH_LINE] + "…"
            yield f"{rel}:{number}: {text}"


def _more(found: int) -> str:
    if found <= MAX_MATCHES:
        return ""
    return f"\n… {found - MAX_MATCHES} more matches not shown; narrow the pattern."
