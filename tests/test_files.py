"""The file tools on real files in tmp_path, called the way agents and users call them:
through execute_tool, with a RunContext or (plainly) in the current directory."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from runtime.config import Settings, ToolSettings
from runtime.context import ApprovalRequest, RunContext, approve_all
from tools.files import READ_ONLY_TOOLS, TOOLS
from tools.gitignore import is_ignored, parse_gitignore
from tools.registry import execute_tool


@pytest.fixture
def ctx(tmp_path: Path) -> RunContext:
    return RunContext(workspace=tmp_path, approve=approve_all)


class Recorder:
    """An approver that records what it was asked and answers `answer`."""

    def __init__(self, answer: bool):
        self.answer = answer
        self.requests: list[ApprovalRequest] = []

    async def __call__(self, request: ApprovalRequest) -> bool:
        self.requests.append(request)
        return self.answer


def asking(tmp_path: Path, answer: bool) -> tuple[RunContext, Recorder]:
    recorder = Recorder(answer)
    ctx = RunContext(workspace=tmp_path, approve=recorder).for_subtask("t1", "file")
    return ctx, recorder


def small(tmp_path: Path, **tools: object) -> RunContext:
    return RunContext(workspace=tmp_path, settings=Settings(tools=ToolSettings(**tools)), approve=approve_all)


# -- the seed's checks ---------------------------------------------------------------------


def test_write_creates_nested_file(tmp_path, ctx):
    result = execute_tool("write_file", {"path": "deep/nested/file.txt", "content": "hello\n"}, ctx)
    assert "Successfully wrote" in result
    assert (tmp_path / "deep" / "nested" / "file.txt").read_text() == "hello\n"


def test_read_missing_file(ctx):
    assert "File not found: nope.txt" in execute_tool("read_file", {"path": "nope.txt"}, ctx)


def test_plain_execute_tool_uses_the_current_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = execute_tool("write_file", {"path": "deep/nested/file.txt", "content": "a\nb\n"})
    assert "Successfully wrote 2 lines (4 bytes) to deep/nested/file.txt" in result
    assert (tmp_path / "deep" / "nested" / "file.txt").read_text() == "a\nb\n"
    assert "File not found" in execute_tool("read_file", {"path": "missing.txt"})
    assert "a\nb\n" in execute_tool("read_file", {"path": "deep/nested/file.txt"})


def test_tool_lists_and_contract_names():
    assert [t.name for t in TOOLS] == [
        "read_file", "list_files", "search_files", "write_file", "edit_file", "delete_file"
    ]  # fmt: skip
    assert [t.name for t in READ_ONLY_TOOLS] == ["read_file", "list_files", "search_files"]
    assert all(t.read_only for t in READ_ONLY_TOOLS)
    assert not any(t.read_only for t in TOOLS if t not in READ_ONLY_TOOLS)
    assert all(t.approval is not None for t in TOOLS if t not in READ_ONLY_TOOLS)
    required = {t.name: set(t.args_model.model_fields) for t in TOOLS}
    assert {"path"} <= required["read_file"] and {"path"} <= required["list_files"]
    assert {"pattern", "path"} <= required["search_files"]
    assert {"path", "content"} <= required["write_file"]
    assert {"path", "old", "new"} <= required["edit_file"] and {"path"} <= required["delete_file"]


# -- read_file -----------------------------------------------------------------------------


def test_read_shows_header_and_exact_text(tmp_path, ctx):
    (tmp_path / "a.txt").write_text("one\ntwo\nthree\n")
    assert execute_tool("read_file", {"path": "a.txt"}, ctx) == "a.txt (lines 1-3 of 3)\none\ntwo\nthree\n"


def test_read_line_range(tmp_path, ctx):
    (tmp_path / "a.txt").write_text("".join(f"line {i}\n" for i in range(1, 11)))
    result = execute_tool("read_file", {"path": "a.txt", "start_line": 3, "end_line": 4}, ctx)
    assert result == "a.txt (lines 3-4 of 10)\nline 3\nline 4\n"
    assert "past the end" in execute_tool("read_file", {"path": "a.txt", "start_line": 50}, ctx)
    assert "end_line" in execute_tool("read_file", {"path": "a.txt", "start_line": 5, "end_line": 2}, ctx)
    assert "1 or more" in execute_tool("read_file", {"path": "a.txt", "start_line": 0}, ctx)


def test_read_stops_at_the_size_budget_and_says_where_to_continue(tmp_path):
    ctx = small(tmp_path, max_read_bytes=1000)
    (tmp_path / "big.txt").write_text("".join(f"{i:09d}\n" for i in range(500)))  # 10 bytes a line
    result = execute_tool("read_file", {"path": "big.txt"}, ctx)
    assert result.startswith("big.txt (lines 1-100 of 500)\n")
    assert "continue with start_line=101" in result
    assert "000000099\n" in result and "000000100" not in result


def test_read_binary_empty_directory_and_non_utf8(tmp_path, ctx):
    (tmp_path / "img.bin").write_bytes(b"\x89PNG\x00\x00\x01" * 10)
    assert (
        execute_tool("read_file", {"path": "img.bin"}, ctx)
        == "img.bin is a binary file (70 bytes); not shown."
    )
    (tmp_path / "empty.txt").write_bytes(b"")
    assert execute_tool("read_file", {"path": "empty.txt"}, ctx) == "empty.txt (empty file)"
    (tmp_path / "folder").mkdir()
    assert "use list_files" in execute_tool("read_file", {"path": "folder"}, ctx)
    (tmp_path / "latin1.txt").write_bytes("café\n".encode("latin-1"))
    result = execute_tool("read_file", {"path": "latin1.txt"}, ctx)
    assert "not valid UTF-8" in result and "caf\ufffd" in result


def test_read_a_fifo_does_not_hang(tmp_path, ctx):
    os.mkfifo(tmp_path / "pipe")
    assert "not a regular file" in execute_tool("read_file", {"path": "pipe"}, ctx)


def test_read_outside_the_workspace_is_refused(tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    (tmp_path / "secret.txt").write_text("TOP SECRET")
    os.symlink(tmp_path / "secret.txt", ws / "link.txt")
    ctx = RunContext(workspace=ws, approve=approve_all)
    for path in ["../secret.txt", str(tmp_path / "secret.txt"), "link.txt", "..\\secret.txt"]:
        result = execute_tool("read_file", {"path": path}, ctx)
        assert result.startswith("read_file was refused:"), result
        assert "TOP SECRET" not in result


# -- list_files ----------------------------------------------------------------------------


def size(rel: str) -> int:
    return len(f"content of {rel}\n")


def make_project(root: Path) -> None:
    for rel in ["src/app.py", "src/util/helpers.py", "README.md", "docs/guide.md", ".git/HEAD",
                "node_modules/pkg/index.js", "src/__pycache__/app.cpython-311.pyc", "env/pyvenv.cfg",
                "env/lib/site.py", ".shunter/store.db", ".pytest_cache/x"]:  # fmt: skip
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(f"content of {rel}\n")


def test_list_recursive_skips_tool_and_dependency_folders(tmp_path, ctx):
    make_project(tmp_path)
    result = execute_tool("list_files", {}, ctx)
    lines = result.splitlines()
    assert "src/" in lines and "src/util/" in lines
    assert f"src/app.py ({size('src/app.py')} bytes)" in lines
    assert f"README.md ({size('README.md')} bytes)" in lines
    for hidden in [".git", "node_modules", "__pycache__", "env/", ".shunter", ".pytest_cache"]:
        assert not any(line.startswith(hidden) or f"/{hidden}" in line for line in lines[:-1]), hidden
    assert lines[-1].startswith("(not listed: ") and "node_modules" in lines[-1] and "env" in lines[-1]


def test_list_patterns_and_non_recursive(tmp_path, ctx):
    make_project(tmp_path)
    app, helpers = (
        f"src/app.py ({size('src/app.py')} bytes)",
        f"src/util/helpers.py ({size('src/util/helpers.py')} bytes)",
    )
    assert execute_tool("list_files", {"pattern": "*.py"}, ctx).splitlines()[:2] == [app, helpers]
    assert execute_tool("list_files", {"pattern": "util/*.py", "path": "src"}, ctx).splitlines()[0] == helpers
    top = execute_tool("list_files", {"path": ".", "recursive": False}, ctx).splitlines()
    assert "src/" in top and f"README.md ({size('README.md')} bytes)" in top and app not in top
    assert "No entries match" in execute_tool("list_files", {"pattern": "*.rs"}, ctx)


def test_list_errors(tmp_path, ctx):
    (tmp_path / "a.txt").write_text("x")
    assert "File not found: nowhere" in execute_tool("list_files", {"path": "nowhere"}, ctx)
    assert "use read_file" in execute_tool("list_files", {"path": "a.txt"}, ctx)
    assert execute_tool("list_files", {"path": "../"}, ctx).startswith("list_files was refused:")


def test_list_is_capped(tmp_path, ctx):
    (tmp_path / "many").mkdir()
    for i in range(1005):
        (tmp_path / "many" / f"f{i:04d}.txt").write_text("")
    lines = execute_tool("list_files", {"path": "many"}, ctx).splitlines()
    assert len(lines) == 1001
    assert lines[-1].startswith("… 5 more entries not shown")


def test_list_does_not_follow_symlinked_directories_out(tmp_path):
    ws, out = tmp_path / "ws", tmp_path / "outside"
    ws.mkdir()
    out.mkdir()
    (out / "secret.txt").write_text("TOP SECRET")
    os.symlink(out, ws / "escape")
    result = execute_tool("list_files", {}, RunContext(workspace=ws, approve=approve_all))
    assert result == f"escape -> {out}"
    refused = execute_tool("list_files", {"path": "escape"}, RunContext(workspace=ws, approve=approve_all))
    assert refused.startswith("list_files was refused:")


# -- search_files --------------------------------------------------------------------------


def test_search_finds_lines(tmp_path, ctx):
    make_project(tmp_path)
    (tmp_path / "src" / "app.py").write_text("import os\n\ndef main():\n    return Main()\n")
    assert execute_tool("search_files", {"pattern": r"def \w+\("}, ctx) == "src/app.py:3: def main():"
    result = execute_tool("search_files", {"pattern": "main", "ignore_case": True, "path": "src"}, ctx)
    assert result.splitlines() == ["src/app.py:3: def main():", "src/app.py:4:     return Main()"]
    assert "node_modules" not in execute_tool("search_files", {"pattern": "content of"}, ctx)


def test_search_glob_single_file_and_no_match(tmp_path, ctx):
    make_project(tmp_path)
    assert execute_tool("search_files", {"pattern": "content", "glob": "*.md"}, ctx).splitlines() == [
        "README.md:1: content of README.md",
        "docs/guide.md:1: content of docs/guide.md",
    ]
    assert execute_tool("search_files", {"pattern": "content", "path": "README.md"}, ctx) == (
        "README.md:1: content of README.md"
    )
    assert "No matches for 'zebra'" in execute_tool("search_files", {"pattern": "zebra"}, ctx)


def test_search_invalid_regex_is_explained(ctx):
    result = execute_tool("search_files", {"pattern": "foo("}, ctx)
    assert result.startswith("Invalid regular expression 'foo('") and "Escape special characters" in result


def test_search_skips_binaries_and_caps_matches(tmp_path, ctx):
    (tmp_path / "blob.bin").write_bytes(b"needle\x00\x01needle")
    (tmp_path / "many.txt").write_text("needle\n" * 250)
    result = execute_tool("search_files", {"pattern": "needle"}, ctx).splitlines()
    assert not any(line.startswith("blob.bin") for line in result)
    assert len(result) == 201 and result[-1].startswith("… more matches not shown")


def test_search_respects_gitignore(tmp_path, ctx):
    files = {
        ".gitignore": "*.log\n!keep.log\nbuild/\n/root_only.txt\ndocs/**/draft.md\n",
        "app.log": "needle",
        "keep.log": "needle",
        "build/out.txt": "needle",
        "root_only.txt": "needle",
        "sub/root_only.txt": "needle",
        "docs/a/b/draft.md": "needle",
        "docs/final.md": "needle",
        "sub/.gitignore": "local.txt\n",
        "sub/local.txt": "needle",
        "sub/debug.log": "needle",
        "local.txt": "needle",
    }
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    found = {
        line.split(":")[0] for line in execute_tool("search_files", {"pattern": "needle"}, ctx).splitlines()
    }
    assert found == {"keep.log", "sub/root_only.txt", "docs/final.md", "local.txt"}
    # Searching below the root still honours the root's rules (and the folder's own).
    assert (
        execute_tool("search_files", {"pattern": "needle", "path": "sub"}, ctx)
        == "sub/root_only.txt:1: needle"
    )
    # A folder named explicitly is searched even when ignored, as ripgrep does.
    assert (
        execute_tool("search_files", {"pattern": "needle", "path": "build"}, ctx) == "build/out.txt:1: needle"
    )


def test_gitignore_subset():
    rules = parse_gitignore(
        "# comment\n\n*.pyc\n!important.pyc\nout/\n/top\na/**/z\n**/deep\n\\#hash\nsp\\ \n"
    )
    assert is_ignored(rules, "x/y/m.pyc", False) and not is_ignored(rules, "x/important.pyc", False)
    assert is_ignored(rules, "out", True) and not is_ignored(rules, "out", False)
    assert is_ignored(rules, "top", False) and not is_ignored(rules, "x/top", False)
    assert is_ignored(rules, "a/z", False) and is_ignored(rules, "a/b/c/z", False)
    assert is_ignored(rules, "deep", True) and is_ignored(rules, "p/q/deep", False)
    assert is_ignored(rules, "#hash", False) and is_ignored(rules, "sp ", False)
    nested = parse_gitignore("*.tmp\n", base="pkg")
    assert is_ignored(nested, "pkg/x/a.tmp", False) and not is_ignored(nested, "a.tmp", False)


# -- write_file ----------------------------------------------------------------------------


def test_write_overwrite_records_undo_and_keeps_mode(tmp_path, ctx):
    target = tmp_path / "run.sh"
    target.write_text("old\n")
    target.chmod(0o755)
    result = execute_tool("write_file", {"path": "run.sh", "content": "new\ncontent\n"}, ctx)
    assert result == "Successfully wrote 2 lines (12 bytes) to run.sh."
    assert target.read_text() == "new\ncontent\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o755
    change = ctx.file_changes.changes[-1]
    assert (change.path, change.before, change.after) == ("run.sh", b"old\n", b"new\ncontent\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.sh"]  # no temp file left behind


def test_write_new_file_records_before_none_with_subtask(tmp_path):
    ctx = RunContext(workspace=tmp_path, approve=approve_all).for_subtask("t7", "file")
    execute_tool("write_file", {"path": "x/y.txt", "content": "hi"}, ctx)
    change = ctx.file_changes.changes[-1]
    assert (change.path, change.before, change.after, change.subtask_id) == ("x/y.txt", None, b"hi", "t7")


def test_write_errors(tmp_path, ctx):
    (tmp_path / "folder").mkdir()
    assert "is a directory" in execute_tool("write_file", {"path": "folder", "content": "x"}, ctx)
    refused = execute_tool("write_file", {"path": ".git/hooks/pre-commit", "content": "rm -rf /"}, ctx)
    assert refused.startswith("write_file was refused:") and "protected" in refused
    assert not (tmp_path / ".git").exists()
    assert execute_tool("write_file", {"path": "../escape.txt", "content": "x"}, ctx).startswith(
        "write_file was refused:"
    )
    assert not (tmp_path.parent / "escape.txt").exists()
    assert ctx.file_changes.changes == []


def test_write_below_a_file_says_so(tmp_path, ctx):
    (tmp_path / "a.txt").write_text("x")
    result = execute_tool("write_file", {"path": "a.txt/b.txt", "content": "y"}, ctx)
    assert result == "Part of a.txt/b.txt is a file, not a directory; check the path with list_files."
    assert (tmp_path / "a.txt").read_text() == "x"


def test_write_through_a_symlinked_dir_out_is_refused(tmp_path):
    ws, out = tmp_path / "ws", tmp_path / "outside"
    ws.mkdir()
    out.mkdir()
    os.symlink(out, ws / "escape")
    ctx = RunContext(workspace=ws, approve=approve_all)
    result = execute_tool("write_file", {"path": "escape/new/file.txt", "content": "x"}, ctx)
    assert result.startswith("write_file was refused:")
    assert list(out.iterdir()) == []


# -- edit_file -----------------------------------------------------------------------------


def test_edit_replaces_unique_snippet_and_records(tmp_path, ctx):
    (tmp_path / "a.py").write_text("x = 1\ny = 2\n")
    result = execute_tool("edit_file", {"path": "a.py", "old": "y = 2", "new": "y = 3\nz = 4"}, ctx)
    assert result == "Successfully edited a.py (replaced 1 line with 2 lines)."
    assert (tmp_path / "a.py").read_text() == "x = 1\ny = 3\nz = 4\n"
    change = ctx.file_changes.changes[-1]
    assert (change.before, change.after) == (b"x = 1\ny = 2\n", b"x = 1\ny = 3\nz = 4\n")


def test_edit_absent_ambiguous_and_other_errors(tmp_path, ctx):
    (tmp_path / "a.py").write_text("pass\npass\npass\n")
    absent = execute_tool("edit_file", {"path": "a.py", "old": "return", "new": "x"}, ctx)
    assert absent.startswith("old text not found in a.py; read the file and copy the exact text")
    ambiguous = execute_tool("edit_file", {"path": "a.py", "old": "pass", "new": "x"}, ctx)
    assert ambiguous.startswith("old text appears 3 times in a.py; include more surrounding lines")
    assert "must not be empty" in execute_tool("edit_file", {"path": "a.py", "old": "", "new": "x"}, ctx)
    assert "identical" in execute_tool("edit_file", {"path": "a.py", "old": "pass", "new": "pass"}, ctx)
    assert "File not found: b.py" in execute_tool("edit_file", {"path": "b.py", "old": "a", "new": "b"}, ctx)
    (tmp_path / "l1.txt").write_bytes("café".encode("latin-1"))
    assert "not valid UTF-8" in execute_tool("edit_file", {"path": "l1.txt", "old": "caf", "new": "x"}, ctx)
    assert (tmp_path / "a.py").read_text() == "pass\npass\npass\n"
    assert ctx.file_changes.changes == []


def test_edit_matches_crlf_files(tmp_path, ctx):
    (tmp_path / "win.txt").write_bytes(b"first\r\nsecond\r\nthird\r\n")
    result = execute_tool("edit_file", {"path": "win.txt", "old": "first\nsecond", "new": "one\ntwo"}, ctx)
    assert result.startswith("Successfully edited")
    assert (tmp_path / "win.txt").read_bytes() == b"one\r\ntwo\r\nthird\r\n"


# -- delete_file ---------------------------------------------------------------------------


def test_delete_file_records_undo(tmp_path, ctx):
    (tmp_path / "gone.txt").write_text("bye\n")
    assert execute_tool("delete_file", {"path": "gone.txt"}, ctx) == "Deleted gone.txt (4 bytes)."
    assert not (tmp_path / "gone.txt").exists()
    change = ctx.file_changes.changes[-1]
    assert (change.path, change.before, change.after) == ("gone.txt", b"bye\n", None)


def test_delete_errors(tmp_path, ctx):
    (tmp_path / "folder").mkdir()
    (tmp_path / "target.txt").write_text("keep")
    os.symlink("target.txt", tmp_path / "link.txt")
    assert "File not found: nope.txt" in execute_tool("delete_file", {"path": "nope.txt"}, ctx)
    assert "is a directory" in execute_tool("delete_file", {"path": "folder"}, ctx)
    assert "symbolic link" in execute_tool("delete_file", {"path": "link.txt"}, ctx)
    assert (tmp_path / "target.txt").read_text() == "keep" and (tmp_path / "link.txt").is_symlink()
    (tmp_path / ".env").write_text("KEY=1")
    assert "protected" in execute_tool("delete_file", {"path": ".env"}, ctx)
    assert (tmp_path / ".env").exists() and ctx.file_changes.changes == []


# -- approvals -----------------------------------------------------------------------------


def test_refused_write_asks_with_a_diff_and_leaves_the_file(tmp_path):
    ctx, recorder = asking(tmp_path, answer=False)
    (tmp_path / "a.txt").write_text("one\ntwo\n")
    result = execute_tool("write_file", {"path": "a.txt", "content": "one\nTWO\nthree\n"}, ctx)
    assert "not approved" in result
    assert (tmp_path / "a.txt").read_text() == "one\ntwo\n"
    (request,) = recorder.requests
    assert (request.kind, request.tool, request.subtask_id, request.agent) == (
        "write",
        "write_file",
        "t1",
        "file",
    )
    assert request.summary == "write a.txt (3 lines, replacing 2 lines)"
    assert "--- a/a.txt\n+++ b/a.txt\n" in request.detail
    assert "-two\n" in request.detail and "+TWO\n" in request.detail and "+three\n" in request.detail
    assert ctx.file_changes.changes == []


def test_new_file_approval_summary(tmp_path):
    ctx, recorder = asking(tmp_path, answer=True)
    execute_tool("write_file", {"path": "deep/x.txt", "content": "a\nb\nc\n"}, ctx)
    assert recorder.requests[0].summary == "write deep/x.txt (3 lines, new file)"
    assert "--- /dev/null" in recorder.requests[0].detail
    assert (tmp_path / "deep" / "x.txt").exists()


def test_refused_edit_and_delete_leave_the_file(tmp_path):
    ctx, recorder = asking(tmp_path, answer=False)
    (tmp_path / "a.txt").write_text("alpha\nbeta\n")
    assert "not approved" in execute_tool("edit_file", {"path": "a.txt", "old": "beta", "new": "gamma"}, ctx)
    assert "not approved" in execute_tool("delete_file", {"path": "a.txt"}, ctx)
    assert (tmp_path / "a.txt").read_text() == "alpha\nbeta\n"
    edit, delete = recorder.requests
    assert (edit.kind, edit.summary) == ("write", "edit a.txt (-1 +1 lines)")
    assert "-beta\n" in edit.detail and "+gamma\n" in edit.detail
    assert (delete.kind, delete.tool, delete.summary) == (
        "delete",
        "delete_file",
        "delete a.txt (2 lines, 11 bytes)",
    )
    assert "+++ /dev/null" in delete.detail


def test_nothing_is_asked_for_out_of_scope_protected_or_impossible_calls(tmp_path):
    ctx, recorder = asking(tmp_path, answer=True)
    (tmp_path / "a.txt").write_text("same\nsame\n")
    assert "refused" in execute_tool("write_file", {"path": "/etc/passwd", "content": "x"}, ctx)
    assert "protected" in execute_tool("write_file", {"path": ".shunter/config.toml", "content": "x"}, ctx)
    assert "refused" in execute_tool("delete_file", {"path": "../a.txt"}, ctx)
    assert "appears 2 times" in execute_tool("edit_file", {"path": "a.txt", "old": "same", "new": "x"}, ctx)
    assert "not found" in execute_tool("edit_file", {"path": "a.txt", "old": "other", "new": "x"}, ctx)
    assert "File not found" in execute_tool("delete_file", {"path": "missing.txt"}, ctx)
    assert recorder.requests == []


def test_diff_in_approval_is_capped(tmp_path):
    ctx, recorder = asking(tmp_path, answer=False)
    execute_tool("write_file", {"path": "big.txt", "content": "".join(f"{i}\n" for i in range(1000))}, ctx)
    detail = recorder.requests[0].detail
    assert len(detail.splitlines()) == 201 and "more diff lines not shown" in detail.splitlines()[-1]


# -- secret files ----------------------------------------------------------------------------


def secrets_tree(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("API_KEY=sk-live-123\n")
    (tmp_path / ".env.example").write_text("API_KEY=changeme\n")
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "server.pem").write_text("-----BEGIN PRIVATE KEY----- sk-live-123\n")
    (tmp_path / "app.py").write_text("key = os.environ['API_KEY']  # sk-live-123 lives in .env\n")
    os.symlink(".env", tmp_path / "notes.txt")


def test_read_file_refuses_secret_files_by_name_or_through_a_link(tmp_path, ctx):
    secrets_tree(tmp_path)
    for path in [".env", "./.env", "certs/server.pem", "notes.txt", "CERTS/../.env"]:
        result = execute_tool("read_file", {"path": path}, ctx)
        assert "holds secrets, so Shunter does not read it" in result, path
        assert "tools.secret_paths" in result and "sk-live" not in result
    assert "changeme" in execute_tool("read_file", {"path": ".env.example"}, ctx)


def test_search_skips_secret_files_and_refuses_one_by_name(tmp_path, ctx):
    secrets_tree(tmp_path)
    result = execute_tool("search_files", {"pattern": "sk-live"}, ctx)
    assert result.startswith("app.py:1:") and ".env:" not in result and "server.pem" not in result
    assert "2 secret files (tools.secret_paths) skipped" in result
    one = execute_tool("search_files", {"pattern": "sk", "path": "certs/server.pem"}, ctx)
    assert "holds secrets" in one and "sk-live" not in one
    assert "API_KEY=changeme" in execute_tool("search_files", {"pattern": "API_KEY", "glob": ".env*"}, ctx)


def test_list_files_still_shows_secret_names(tmp_path, ctx):
    secrets_tree(tmp_path)
    listing = execute_tool("list_files", {"path": "."}, ctx)
    assert ".env (" in listing and "certs/server.pem" in listing and "sk-live" not in listing


def test_edit_file_refuses_secret_files_so_it_cannot_probe_them(tmp_path):
    secrets_tree(tmp_path)
    (tmp_path / "prod.key").write_text("TOKEN=abc\n")
    ctx, recorder = asking(tmp_path, True)
    result = execute_tool("edit_file", {"path": "prod.key", "old": "TOKEN=a", "new": "TOKEN=z"}, ctx)
    assert "holds secrets" in result and "edit" in result
    assert recorder.requests == [] and (tmp_path / "prod.key").read_text() == "TOKEN=abc\n"


def test_secret_paths_are_configurable(tmp_path):
    secrets_tree(tmp_path)
    (tmp_path / "vault").mkdir()
    (tmp_path / "vault" / "token.txt").write_text("tok-999\n")
    relaxed = small(tmp_path, secret_paths=["vault/"])
    assert "sk-live-123" in execute_tool("read_file", {"path": ".env"}, relaxed)
    assert "holds secrets" in execute_tool("read_file", {"path": "vault/token.txt"}, relaxed)
    allow_env = small(tmp_path, secret_paths=[".env*", "!.env"])
    assert "sk-live-123" in execute_tool("read_file", {"path": ".env"}, allow_env)


def test_rewriting_a_secret_file_does_not_confirm_its_content(tmp_path, ctx):
    (tmp_path / "db.key").write_text("hunter2")
    result = execute_tool("write_file", {"path": "db.key", "content": "hunter2"}, ctx)
    assert result.startswith("Successfully wrote") and "already the same" not in result


# -- text that cannot be stored --------------------------------------------------------------


def test_write_with_a_lone_surrogate_says_so_in_one_sentence(tmp_path):
    ctx, recorder = asking(tmp_path, True)
    result = execute_tool("write_file", '{"path": "a.txt", "content": "ok \\ud800 there"}', ctx)
    assert result.startswith("Nothing was written to a.txt") and "U+D800" in result
    assert "UnicodeEncodeError" not in result and "failed" not in result
    assert recorder.requests == [] and not (tmp_path / "a.txt").exists()


def test_edit_with_a_lone_surrogate_says_so(tmp_path, ctx):
    (tmp_path / "a.txt").write_text("hello\n")
    result = execute_tool("edit_file", '{"path": "a.txt", "old": "hello", "new": "\\udfff"}', ctx)
    assert "lone surrogate (U+DFFF" in result and "UnicodeEncodeError" not in result
    assert (tmp_path / "a.txt").read_text() == "hello\n"
