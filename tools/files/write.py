"""The file specialist's write tools: write_file, edit_file and delete_file, and the approval
each asks first (a summary line and a diff of the change). Writes are atomic (temp file in the
same directory, fsync, rename) and recorded in ctx.file_changes so a run can be undone."""

from __future__ import annotations

import difflib
import os
import secrets
import stat
from typing import Literal

from runtime.context import ApprovalRequest, FileChange, RunContext
from runtime.errors import ToolDenied, ToolFailed
from tools.base import tool
from tools.files.common import is_binary, not_found, os_error, plural, read_located, secret_refusal
from tools.pathscope import Located, PathScope, scope_for

MAX_DIFF_LINES = 200


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


def _line_count(text: str) -> int:
    return text.count("\n") + (1 if text and not text.endswith("\n") else 0)


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
    if is_binary(old) or is_binary(new):
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


# -- approval hooks: what each write shows before it is made ---------------------------------


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
            return loc.rel, loc.kind, read_located(loc)
    except OSError as e:
        raise ToolDenied(os_error("check", path, e)) from None


def _approve_write(ctx: RunContext, args: dict) -> ApprovalRequest | None:
    rel, kind, before = _current(scope_for(ctx), args["path"])
    if kind not in (None, "file") or _unencodable(args["content"], "content"):
        return None  # the tool refuses these without writing, so there is nothing to approve
    after = args["content"].encode("utf-8")
    lines = _line_count(args["content"])
    old_lines = _line_count((before or b"").decode("utf-8", "replace"))
    what = "new file" if kind is None else f"replacing {plural(old_lines, 'line')}"
    summary = f"write {rel} ({plural(lines, 'line')}, {what})"
    return _asking(ctx, "write", "write_file", summary, rel, before, after)


def _approve_edit(ctx: RunContext, args: dict) -> ApprovalRequest | None:
    rel, kind, before = _current(scope_for(ctx), args["path"])
    if before is None or secret_refusal(ctx, args["path"], rel):
        return None
    planned = _plan_edit(before, args["old"], args["new"])
    if isinstance(planned, str):
        return None  # absent, ambiguous or not text: the tool says so without asking
    old_text, new_text = planned
    summary = f"edit {rel} (-{_line_count(old_text)} +{_line_count(new_text)} lines)"
    return _asking(ctx, "write", "edit_file", summary, rel, before, _apply_edit(before, old_text, new_text))


def _approve_delete(ctx: RunContext, args: dict) -> ApprovalRequest | None:
    rel, kind, before = _current(scope_for(ctx), args["path"], follow_final=False)
    if kind != "file" or before is None:
        return None
    lines = _line_count(before.decode("utf-8", "replace"))
    summary = f"delete {rel} ({plural(lines, 'line')}, {len(before)} bytes)"
    return _asking(ctx, "delete", "delete_file", summary, rel, before, None)


def _asking(
    ctx: RunContext,
    kind: Literal["write", "delete"],
    tool_name: str,
    summary: str,
    rel: str,
    before: bytes | None,
    after: bytes | None,
) -> ApprovalRequest:
    """The request a hook returns: its summary line, with the diff of the change as the detail."""
    return ApprovalRequest(
        kind=kind,
        tool=tool_name,
        summary=summary,
        detail=_diff(rel, before, after),
        subtask_id=ctx.subtask_id,
        agent=ctx.agent,
    )


# -- the tools ---------------------------------------------------------------------------------


@tool(effect="write", approval=_approve_write, data_params=("content",))
def write_file(ctx: RunContext, path: str, content: str) -> str:
    """Create or replace a file in the workspace with `content` (parent folders are created).

    Args:
        path: File path relative to the workspace.
        content: The complete new content of the file.
    """
    problem = _unencodable(content, "content")
    if problem:
        raise ToolFailed(f"Nothing was written to {path}: the {problem}")
    data = content.encode("utf-8")
    try:
        with scope_for(ctx).locate(path, write=True, create_parents=True) as loc:
            if loc.kind == "dir":
                raise ToolFailed(f"{loc.rel} is a directory; give a file path.")
            if loc.kind == "other":
                raise ToolFailed(f"{loc.rel} is not a regular file; write_file writes regular files only.")
            before = read_located(loc) if loc.exists else None
            if before != data:
                _write_atomic(loc, data)
    except OSError as e:
        raise ToolFailed(os_error("write", path, e)) from None
    if before != data:
        ctx.file_changes.record(
            FileChange(path=loc.rel, before=before, after=data, subtask_id=ctx.subtask_id)
        )
    # Saying "already the same" about a secret file would confirm a guess of its content.
    same = before == data and not secret_refusal(ctx, path, loc.rel)
    note = "; the content was already the same" if same else ""
    return (
        f"Successfully wrote {plural(_line_count(content), 'line')} ({len(data)} bytes) to {loc.rel}{note}."
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


@tool(effect="write", approval=_approve_edit, data_params=("new",))
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
                raise ToolFailed(not_found(path))
            if loc.kind != "file":
                raise ToolFailed(f"{loc.rel} is not a file; edit_file edits text files.")
            refusal = secret_refusal(ctx, path, loc.rel)
            if refusal:  # edit_file's answers ("not found", "appears 2 times") would reveal the content
                raise ToolFailed(refusal.replace("does not read it", "does not read or edit it"))
            before = read_located(loc)
            planned = _plan_edit(before, old, new)
            if isinstance(planned, str):
                raise ToolFailed(_edit_problem(loc.rel, planned))
            after = _apply_edit(before, *planned)
            _write_atomic(loc, after)
    except OSError as e:
        raise ToolFailed(os_error("edit", path, e)) from None
    ctx.file_changes.record(FileChange(path=loc.rel, before=before, after=after, subtask_id=ctx.subtask_id))
    old_n, new_n = _line_count(planned[0]), _line_count(planned[1])
    return f"Successfully edited {loc.rel} (replaced {plural(old_n, 'line')} with {plural(new_n, 'line')})."


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
                raise ToolFailed(not_found(path))
            if loc.kind == "dir":
                raise ToolFailed(f"{loc.rel} is a directory; delete_file removes single files only.")
            if loc.kind != "file":
                raise ToolFailed(
                    f"{loc.rel} is a symbolic link or special file; delete_file removes regular files only."
                )
            before = read_located(loc)
            os.unlink(loc.name, dir_fd=loc.dir_fd())
    except OSError as e:
        raise ToolFailed(os_error("delete", path, e)) from None
    ctx.file_changes.record(FileChange(path=loc.rel, before=before, after=None, subtask_id=ctx.subtask_id))
    return f"Deleted {loc.rel} ({len(before)} bytes)."
