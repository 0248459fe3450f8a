"""The file specialist's tools: read, list, search, write, edit and delete inside the workspace.

Every open, create, rename and unlink goes through PathScope's descriptors (dir_fd calls with
O_NOFOLLOW), so no tool follows a symlink out of the workspace. Writes are atomic (temp file in
the same directory, fsync, rename), ask for approval with a diff, and are recorded in
ctx.file_changes so a run can be undone.

Files matching settings.tools.secret_paths (.env, keys, tokens) are never read back to the
model: read_file and edit_file refuse them and search_files skips them, so an agent that also
has a network tool cannot send them anywhere. list_files still shows their names.
"""

from __future__ import annotations

import difflib
import errno
import os
import re
import secrets
import stat
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from runtime.context import ApprovalRequest, FileChange, RunContext
from runtime.errors import ToolDenied
from tools.base import tool
from tools.gitignore import Rule, glob_to_regex, is_ignored, parse_gitignore
from tools.pathscope import Located, PathScope, scope_for, secret_match

# Folders of tools and dependencies: noise for a model, and often huge.
SKIP_DIRS = frozenset(
    {".git", ".hg", ".svn", ".venv", "venv", "node_modules", "__pycache__", ".mypy_cache", ".pytest_cache",
     ".ruff_cache", ".tox", ".nox", ".shunter"}
)  # fmt: skip
MAX_LIST_ENTRIES = 1000
MAX_COUNT = 100_000
MAX_MATCHES = 200
MAX_MATCH_LINE = 300
MAX_DIFF_LINES = 200
MAX_DEPTH = 64
SNIFF_BYTES = 8192
_READ = os.O_RDONLY | os.O_NONBLOCK  # O_NONBLOCK: opening a FIFO must not hang the tool


# -- small helpers -------------------------------------------------------------------------


def _not_found(path: str) -> str:
    return f"File not found: {path}. Use list_files to see what exists."


def _os_error(verb: str, path: str, e: OSError) -> str:
    if isinstance(e, FileNotFoundError):
        return _not_found(path)
    if isinstance(e, IsADirectoryError):
        return f"{path} is a directory; use list_files to see what it contains."
    if isinstance(e, NotADirectoryError):
        return f"Part of {path} is a file, not a directory; check the path with list_files."
    if isinstance(e, PermissionError):
        return f"Permission denied: cannot {verb} {path}; the file's permissions do not allow it."
    if e.errno == errno.ENAMETOOLONG:
        return f"Cannot {verb} {path}: a file name is too long; use a shorter name."
    return f"Cannot {verb} {path}: {e.strerror or e}."


def _secret_refusal(ctx: RunContext, path: str, rel: str) -> str | None:
    """The refusal for reading a secret file (by the name given or the one it resolves to)."""
    patterns = ctx.settings.tools.secret_paths
    glob = secret_match(rel, patterns) or secret_match(path, patterns)
    if glob is None:
        return None
    return (
        f"{rel} holds secrets, so Shunter does not read it; remove {glob!r} from tools.secret_paths "
        "(in ~/.config/shunter/config.toml) to allow it."
    )


def _unencodable(text: str, what: str) -> str | None:
    """Why `text` cannot be stored as UTF-8 (lone surrogates from a broken JSON escape), or None."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        bad = f"U+{ord(text[e.start]):04X}"
        return (
            f"{what} contains a lone surrogate ({bad} at character {e.start}), which cannot be stored "
            "as UTF-8; replace it with the character you meant (a pair of surrogates, or the character itself)."
        )
    return None


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _line_count(text: str) -> int:
    return text.count("\n") + (1 if text and not text.endswith("\n") else 0)


def _read_located(loc: Located, limit: int = -1) -> bytes:
    """The content of the regular file `loc` points at (all of it unless `limit` is given)."""
    fd = loc.open(_READ)
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", loc.shown)
        return f.read(limit)


def _is_binary(head: bytes) -> bool:
    return b"\x00" in head[:SNIFF_BYTES]


def _write_atomic(loc: Located, data: bytes) -> None:
    """Write a temp file beside the target through the directory's descriptor, fsync, rename."""
    dir_fd = loc.dir_fd()
    mode = None
    if loc.exists:
        mode = stat.S_IMODE(os.stat(loc.name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    tmp = f".shunter-{secrets.token_hex(6)}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(tmp, flags, 0o666, dir_fd=dir_fd)
    try:
        with os.fdopen(fd, "wb") as f:
            if mode is not None:
                os.fchmod(f.fileno(), mode)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, loc.name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        try:
            os.unlink(tmp, dir_fd=dir_fd)
        except OSError:
            pass
        raise
    try:
        os.fsync(dir_fd)  # make the rename itself durable
    except OSError:
        pass


def _diff(rel: str, before: bytes | None, after: bytes | None) -> str:
    """A unified diff capped at MAX_DIFF_LINES, or a note when either side is binary."""
    old, new = before or b"", after or b""
    if _is_binary(old) or _is_binary(new):
        return f"binary content: {len(old)} bytes -> {len(new)} bytes"
    a = old.decode("utf-8", "replace").splitlines(keepends=True)
    b = new.decode("utf-8", "replace").splitlines(keepends=True)
    lines = list(
        difflib.unified_diff(
            a, b, "/dev/null" if before is None else f"a/{rel}", "/dev/null" if after is None else f"b/{rel}"
        )
    )
    lines = [line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines]
    if len(lines) > MAX_DIFF_LINES:
        more = len(lines) - MAX_DIFF_LINES
        lines = lines[:MAX_DIFF_LINES] + [f"... ({more} more diff lines not shown)\n"]
    return "".join(lines)


def _read_small(dir_fd: int, name: str, limit: int = 1_000_000) -> str:
    try:
        fd = os.open(name, _READ | os.O_NOFOLLOW, dir_fd=dir_fd)
    except OSError:
        return ""
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            return ""
        return f.read(limit).decode("utf-8", "replace")


def _ancestor_rules(scope: PathScope, rel: str) -> list[Rule]:
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


# -- walking a tree through descriptors ----------------------------------------------------


@dataclass
class _Entry:
    rel: str
    """Workspace-relative path."""
    name: str
    kind: str
    """'file', 'dir', 'link' or 'other'."""
    size: int
    dir_fd: int
    """The open directory holding it (valid while the walk is at this entry)."""


@dataclass
class _Walk:
    recursive: bool = True
    rules: list[Rule] | None = None
    """gitignore rules to honour; None ignores .gitignore files."""
    skipped: set[str] | None = None


def _walk(dir_fd: int, rel: str, opts: _Walk, depth: int = 0) -> Generator[_Entry, None, None]:
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
            yield _Entry(child_rel, e.name, kind, st.st_size, dir_fd)
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
            yield _Entry(child_rel, e.name, kind, st.st_size, dir_fd)
            if opts.recursive and depth < MAX_DEPTH:
                yield from _walk(child, child_rel, _Walk(opts.recursive, rules, opts.skipped), depth + 1)
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


def _matcher(pattern: str | None) -> re.Pattern[str] | None:
    """A glob for names (no '/') or for paths relative to the searched folder (with '/')."""
    if not pattern or pattern in ("*", "**", "**/*"):
        return None
    body = glob_to_regex(pattern.lstrip("/"))
    return re.compile(body if "/" in pattern else "(?:.*/)?" + body, re.DOTALL)


def _relative_to(rel: str, base: str) -> str:
    return rel if base == "." else rel[len(base) + 1 :]


# -- read tools ----------------------------------------------------------------------------


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
        return "start_line must be 1 or more; lines are numbered from 1."
    if end_line is not None and end_line < start_line:
        return f"end_line ({end_line}) is before start_line ({start_line}); give a range with end_line >= start_line."
    scope = scope_for(ctx)
    try:
        with scope.locate(path) as loc:
            if not loc.exists:
                return _not_found(path)
            if loc.kind == "dir":
                return f"{loc.rel} is a directory; use list_files to see what it contains."
            refusal = _secret_refusal(ctx, path, loc.rel)
            if refusal:
                return refusal
            fd = loc.open(_READ)
    except OSError as e:
        return _os_error("read", path, e)
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            return f"{loc.rel} is not a regular file (a device, socket or pipe); read_file reads regular files only."
        if _is_binary(f.read(SNIFF_BYTES)):
            return f"{loc.rel} is a binary file ({st.st_size} bytes); not shown."
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
        return f"{rel} has {total} lines; start_line {start} is past the end."
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
    matcher = _matcher(pattern)
    skipped: set[str] = set()
    shown: list[str] = []
    count = 0
    try:
        with scope.locate(path) as loc:
            if not loc.exists:
                return _not_found(path)
            if loc.kind != "dir":
                return f"{loc.rel} is a file, not a folder; use read_file to read it."
            fd = loc.open(os.O_RDONLY | os.O_DIRECTORY)
    except OSError as e:
        return _os_error("list", path, e)
    try:
        walk = _walk(fd, loc.rel, _Walk(recursive=recursive, skipped=skipped))
        for entry in walk:
            if matcher and not matcher.fullmatch(_relative_to(entry.rel, loc.rel)):
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


def _describe(entry: _Entry) -> str:
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
        return f"Invalid regular expression {pattern!r}: {e}. Escape special characters (for example \\( or \\.) and try again."
    scope = scope_for(ctx)
    limit = ctx.settings.tools.max_read_bytes
    try:
        with scope.locate(path) as loc:
            if not loc.exists:
                return _not_found(path)
            if loc.kind == "dir":
                fd = loc.open(os.O_RDONLY | os.O_DIRECTORY)
                rules = _ancestor_rules(scope, loc.rel)
                return _search_tree(ctx, fd, loc.rel, regex, _matcher(glob), rules, limit, pattern)
            refusal = _secret_refusal(ctx, path, loc.rel)
            if refusal:
                return refusal.replace("does not read it", "does not search it")
            data = _read_located(loc, limit)
    except OSError as e:
        return _os_error("search", path, e)
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
        walk = _walk(fd, rel, _Walk(rules=rules))
        for entry in walk:
            if entry.kind != "file" or (matcher and not matcher.fullmatch(_relative_to(entry.rel, rel))):
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
                fd_file = os.open(entry.name, _READ | os.O_NOFOLLOW, dir_fd=entry.dir_fd)
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
        note += f"; {_plural(secret, 'secret file')} (tools.secret_paths) skipped"
    if not out:
        return f"No matches for {pattern!r} in {where} ({files} files searched{note})."
    if len(out) > MAX_MATCHES:
        return (
            "\n".join(out[:MAX_MATCHES])
            + f"\n… more matches not shown; narrow the pattern, path or glob{note}."
        )
    return "\n".join(out) + (f"\n({note[2:]})" if note else "")


def _search_bytes(rel: str, data: bytes, regex: re.Pattern[str]) -> Iterator[str]:
    if _is_binary(data):
        return
    for number, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
        if regex.search(line):
            text = line if len(line) <= MAX_MATCH_LINE else line[:MAX_MATCH_LINE] + "…"
            yield f"{rel}:{number}: {text}"


def _more(found: int) -> str:
    if found <= MAX_MATCHES:
        return ""
    return f"\n… {found - MAX_MATCHES} more matches not shown; narrow the pattern."


# -- write tools: approval hooks -----------------------------------------------------------


def _current(
    scope: PathScope, path: str, *, follow_final: bool = True
) -> tuple[str, str | None, bytes | None]:
    """(resolved rel, kind, content or None) of a path about to be written. Raises ToolDenied
    (PathDenied) when it is out of scope or protected, so nothing is asked, and also when it
    cannot be read: a hook that cannot look must not wave the change through unasked."""
    try:
        with scope.locate(path, write=True, follow_final=follow_final) as loc:
            if loc.kind != "file":
                return loc.rel, loc.kind, None
            return loc.rel, loc.kind, _read_located(loc)
    except OSError as e:
        raise ToolDenied(_os_error("check", path, e)) from None


def _approve_write(ctx: RunContext, args: dict) -> ApprovalRequest | None:
    rel, kind, before = _current(scope_for(ctx), args["path"])
    if kind not in (None, "file") or _unencodable(args["content"], "content"):
        return None  # the tool refuses these without writing, so there is nothing to approve
    after = args["content"].encode("utf-8")
    lines = _line_count(args["content"])
    old_lines = _line_count((before or b"").decode("utf-8", "replace"))
    what = "new file" if kind is None else f"replacing {_plural(old_lines, 'line')}"
    return ApprovalRequest(
        kind="write",
        tool="write_file",
        summary=f"write {rel} ({_plural(lines, 'line')}, {what})",
        detail=_diff(rel, before, after),
        subtask_id=ctx.subtask_id,
        agent=ctx.agent,
    )


def _approve_edit(ctx: RunContext, args: dict) -> ApprovalRequest | None:
    rel, kind, before = _current(scope_for(ctx), args["path"])
    if before is None or _secret_refusal(ctx, args["path"], rel):
        return None
    planned = _plan_edit(before, args["old"], args["new"])
    if isinstance(planned, str):
        return None  # absent, ambiguous or not text: the tool says so without asking
    old_text, new_text = planned
    return ApprovalRequest(
        kind="write",
        tool="edit_file",
        summary=f"edit {rel} (-{_line_count(old_text)} +{_line_count(new_text)} lines)",
        detail=_diff(rel, before, _apply_edit(before, old_text, new_text)),
        subtask_id=ctx.subtask_id,
        agent=ctx.agent,
    )


def _approve_delete(ctx: RunContext, args: dict) -> ApprovalRequest | None:
    rel, kind, before = _current(scope_for(ctx), args["path"], follow_final=False)
    if kind != "file" or before is None:
        return None
    lines = _line_count(before.decode("utf-8", "replace"))
    return ApprovalRequest(
        kind="delete",
        tool="delete_file",
        summary=f"delete {rel} ({_plural(lines, 'line')}, {len(before)} bytes)",
        detail=_diff(rel, before, None),
        subtask_id=ctx.subtask_id,
        agent=ctx.agent,
    )


# -- write tools ---------------------------------------------------------------------------


@tool(effect="write", approval=_approve_write)
def write_file(ctx: RunContext, path: str, content: str) -> str:
    """Create or replace a file in the workspace with `content` (parent folders are created).

    Args:
        path: File path relative to the workspace.
        content: The complete new content of the file.
    """
    problem = _unencodable(content, "content")
    if problem:
        return f"Nothing was written to {path}: the {problem}"
    data = content.encode("utf-8")
    try:
        with scope_for(ctx).locate(path, write=True, create_parents=True) as loc:
            if loc.kind == "dir":
                return f"{loc.rel} is a directory; give a file path."
            if loc.kind == "other":
                return f"{loc.rel} is not a regular file; write_file writes regular files only."
            before = _read_located(loc) if loc.exists else None
            if before != data:
                _write_atomic(loc, data)
    except OSError as e:
        return _os_error("write", path, e)
    if before != data:
        ctx.file_changes.record(
            FileChange(path=loc.rel, before=before, after=data, subtask_id=ctx.subtask_id)
        )
    # Saying "already the same" about a secret file would confirm a guess of its content.
    same = before == data and not _secret_refusal(ctx, path, loc.rel)
    note = "; the content was already the same" if same else ""
    return (
        f"Successfully wrote {_plural(_line_count(content), 'line')} ({len(data)} bytes) to {loc.rel}{note}."
    )


def _plan_edit(before: bytes, old: str, new: str) -> tuple[str, str] | str:
    """The exact (old, new) to apply, or why the edit cannot be made. Tries CRLF line endings
    when the file uses them and the model sent plain newlines."""
    if not old:
        return "old must not be empty; to create or replace a whole file use write_file."
    if old == new:
        return "old and new are identical; nothing would change."
    for text, what in ((old, "old"), (new, "new")):
        problem = _unencodable(text, what)
        if problem:
            return problem
    try:
        text = before.decode("utf-8")
    except UnicodeDecodeError:
        return "is not valid UTF-8 text; edit_file edits text files only (use write_file to replace it)."
    count = text.count(old)
    if count == 0 and "\r\n" in text and "\r\n" not in old:
        old, new = old.replace("\n", "\r\n"), new.replace("\n", "\r\n")
        count = text.count(old)
    if count == 0:
        return "not found"
    if count > 1:
        return f"ambiguous:{count}"
    return old, new


def _apply_edit(before: bytes, old: str, new: str) -> bytes:
    return before.decode("utf-8").replace(old, new, 1).encode("utf-8")


@tool(effect="write", approval=_approve_edit)
def edit_file(ctx: RunContext, path: str, old: str, new: str) -> str:
    """Replace one exact snippet of a text file. `old` must appear exactly once, character for
    character (whitespace included); read the file first and copy the text.

    Args:
        path: File path relative to the workspace.
        old: The exact text to replace; include enough surrounding lines to make it unique.
        new: The text to put in its place.
    """
    try:
        with scope_for(ctx).locate(path, write=True) as loc:
            if not loc.exists:
                return _not_found(path)
            if loc.kind != "file":
                return f"{loc.rel} is not a file; edit_file edits text files."
            refusal = _secret_refusal(ctx, path, loc.rel)
            if refusal:  # edit_file's answers ("not found", "appears 2 times") would reveal the content
                return refusal.replace("does not read it", "does not read or edit it")
            before = _read_located(loc)
            planned = _plan_edit(before, old, new)
            if isinstance(planned, str):
                return _edit_problem(loc.rel, planned)
            after = _apply_edit(before, *planned)
            _write_atomic(loc, after)
    except OSError as e:
        return _os_error("edit", path, e)
    ctx.file_changes.record(FileChange(path=loc.rel, before=before, after=after, subtask_id=ctx.subtask_id))
    old_n, new_n = _line_count(planned[0]), _line_count(planned[1])
    return f"Successfully edited {loc.rel} (replaced {_plural(old_n, 'line')} with {_plural(new_n, 'line')})."


def _edit_problem(rel: str, problem: str) -> str:
    if problem == "not found":
        return f"old text not found in {rel}; read the file and copy the exact text (whitespace and indentation included)."
    if problem.startswith("ambiguous:"):
        n = problem.split(":")[1]
        return (
            f"old text appears {n} times in {rel}; include more surrounding lines so it matches exactly once."
        )
    if problem.startswith("is not"):
        return f"{rel} {problem}"
    return problem


@tool(effect="write", approval=_approve_delete)
def delete_file(ctx: RunContext, path: str) -> str:
    """Delete one file from the workspace (not folders).

    Args:
        path: File path relative to the workspace.
    """
    try:
        with scope_for(ctx).locate(path, write=True, follow_final=False) as loc:
            if not loc.exists:
                return _not_found(path)
            if loc.kind == "dir":
                return f"{loc.rel} is a directory; delete_file removes single files only."
            if loc.kind != "file":
                return (
                    f"{loc.rel} is a symbolic link or special file; delete_file removes regular files only."
                )
            before = _read_located(loc)
            os.unlink(loc.name, dir_fd=loc.dir_fd())
    except OSError as e:
        return _os_error("delete", path, e)
    ctx.file_changes.record(FileChange(path=loc.rel, before=before, after=None, subtask_id=ctx.subtask_id))
    return f"Deleted {loc.rel} ({len(before)} bytes)."


TOOLS = [read_file, list_files, search_files, write_file, edit_file, delete_file]
READ_ONLY_TOOLS = [read_file, list_files, search_files]
