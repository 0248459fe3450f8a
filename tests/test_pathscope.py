"""The workspace path scope: what it refuses, what it allows, and opening without following a
symlink swapped in after the check. Real files and symlinks in tmp_path."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from runtime.config import DEFAULT_SECRET_PATHS, Settings, ToolSettings
from runtime.context import RunContext
from runtime.errors import ConfigError, PathDenied, ToolDenied
from tools.pathscope import PathScope, ScopeVerdict, check_path, scope_for
from tools.secret_paths import is_secret, secret_match

CORPUS = Path(__file__).parent / "corpora" / "paths_traversal.txt"


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, Path]:
    """A workspace `ws` with files and symlinks, an `outside` folder beside it holding
    secret.txt, and a prefix-trap folder `ws_evil`."""
    ws, out = tmp_path / "ws", tmp_path / "outside"
    (ws / "src" / "deeper").mkdir(parents=True)
    (ws / "src" / "app.py").write_text("print('hi')\n")
    (ws / "README.md").write_text("# readme\n")
    (ws / ".git" / "hooks").mkdir(parents=True)
    (ws / ".git" / "config").write_text("[core]\n")
    out.mkdir()
    (out / "secret.txt").write_text("TOP SECRET\n")
    (tmp_path / "ws_evil").mkdir()
    (tmp_path / "ws_evil" / "secret.txt").write_text("evil\n")
    make_links(ws, out)
    return ws, out


def make_links(ws: Path, out: Path) -> None:
    links = {
        "out_dir": str(out),
        "out_rel": "../outside",
        "out_file": str(out / "secret.txt"),
        "dangling_out": str(out / "missing.txt"),
        "dangling_out_rel": "../outside/missing",
        "dangling_abs": "/nonexistent/x",
        "src/deeper/up": "../../..",
        "chain1": "chain2",
        "chain2": "out_dir",
        "loop_a": "loop_b",
        "loop_b": "loop_a",
        "proc_root": "/proc/self/root",
        "proc_cwd": "/proc/self/cwd",
        "src/escape": "../../outside",
        # inside the workspace: allowed
        "in_link": "src/app.py",
        "in_dir_link": "src",
        "abs_in_link": str(ws / "README.md"),
        "dangling_in": "src/not_yet.txt",
        "hooks_link": ".git/hooks",
    }
    for name, target in links.items():
        os.symlink(target, ws / name)


def corpus_lines(ws: Path, out: Path) -> list[str]:
    subs = {"{WSABS}": str(ws), "{WS}": ws.name, "{OUT}": str(out), "{NUL}": "\x00", "{TAB}": "\t"}
    lines = []
    for line in CORPUS.read_text(encoding="utf-8").splitlines():
        if not line or line.startswith("#"):
            continue
        for key, value in subs.items():
            line = line.replace(key, value)
        lines.append(line)
    return lines


def test_corpus_has_at_least_80_paths(tree):
    assert len(corpus_lines(*tree)) >= 80


def test_every_corpus_path_is_refused_for_reading_and_writing(tree):
    ws, out = tree
    scope = PathScope(ws)
    for path in corpus_lines(ws, out):
        for write in (False, True):
            verdict = scope.check(path, write=write)
            assert not verdict.allowed, f"{path!r} (write={write}) was allowed: {verdict.reason}"
            assert verdict.resolved is None
            assert verdict.reason.endswith("."), verdict.reason


BENIGN = {
    "README.md": "README.md",
    "./README.md": "README.md",
    "src/app.py": "src/app.py",
    "src//app.py": "src/app.py",
    "src\\app.py": "src/app.py",
    "src/../README.md": "README.md",
    "src/deeper/../app.py": "src/app.py",
    "src/": "src",
    ".": ".",
    "new/dir/file.txt": "new/dir/file.txt",
    "in_link": "src/app.py",
    "in_dir_link/app.py": "src/app.py",
    "abs_in_link": "README.md",
    "dangling_in": "src/not_yet.txt",
    ".git/config": ".git/config",
    "./~notes.txt": "~notes.txt",
    "100%25.txt": "100%25.txt",
    "50%off.txt": "50%off.txt",
    "a..b": "a..b",
    "..hidden": "..hidden",
    "name with spaces.txt": "name with spaces.txt",
    "ünïcødé.txt": "ünïcødé.txt",
    "src/app.py/../app.py": "src/app.py",
}


def test_benign_paths_are_allowed_and_resolved(tree):
    ws, _ = tree
    scope = PathScope(ws)
    for path, rel in BENIGN.items():
        verdict = scope.check(path)
        assert verdict.allowed, f"{path!r} was refused: {verdict.reason}"
        expected = ws.resolve() if rel == "." else ws.resolve() / rel
        assert verdict.resolved == str(expected), path


def test_absolute_path_inside_the_workspace_is_allowed(tree):
    ws, _ = tree
    verdict = PathScope(ws).check(str(ws / "src" / "app.py"))
    assert verdict.allowed and verdict.resolved == str(ws.resolve() / "src" / "app.py")


def test_the_workspace_itself(tree):
    ws, _ = tree
    assert PathScope(ws).check(".").to_dict() == {
        "allowed": True,
        "resolved": str(ws.resolve()),
        "reason": "It is the workspace itself.",
    }


def test_prefix_trap_compares_components(tree):
    ws, _ = tree
    verdict = PathScope(ws).check(f"{ws}_evil/secret.txt")
    assert not verdict.allowed
    assert "outside the workspace" in verdict.reason


def test_reasons_name_the_problem(tree):
    ws, _ = tree
    scope = PathScope(ws)
    assert "through '..'" in scope.check("../x").reason
    assert "outside the workspace" in scope.check("/etc/passwd").reason
    assert "symlink 'out_dir'" in scope.check("out_dir/secret.txt").reason
    assert "NUL" in scope.check("a\x00b").reason
    assert "empty" in scope.check("").reason
    assert "'~'" in scope.check("~/x").reason
    assert "decoded" in scope.check("%2e%2e/x").reason
    assert "UTF-8" in scope.check("..%c0%af..%c0%afetc").reason
    assert "loop" in scope.check("loop_a").reason


def test_protected_paths_refuse_writes_but_allow_reads(tree):
    ws, _ = tree
    scope = PathScope(ws)
    for path in [".git/hooks/pre-commit", ".git/config", ".shunter/config.toml", ".env", "src/../.env",
                 "./.git//hooks/x", ".git\\hooks\\x", "hooks_link/pre-commit"]:  # fmt: skip
        verdict = scope.check(path, write=True)
        assert not verdict.allowed, path
        assert "protected" in verdict.reason and "tools.protected_paths" in verdict.reason
        assert scope.check(path).allowed, path
    assert scope.check(".gitignore", write=True).allowed
    assert scope.check(".envrc", write=True).allowed


@pytest.mark.parametrize(
    "path",
    [".git", ".git/commondir", ".git/config.worktree", ".git/info/attributes", ".git/modules/x/config",
     "sub/.git/config", "sub/.git", "a/b/.git/hooks/post-checkout", ".GIT/config", ".Git/hooks/pre-commit",
     ".git./config", ".g\u200cit/config", "\uff0egit/config", "sub/../.git/HEAD"],
)  # fmt: skip
def test_any_git_component_is_protected_for_writes(tree, path):
    ws, _ = tree
    scope = PathScope(ws, protected=[])  # built in: holds even with an empty list
    verdict = scope.check(path, write=True)
    assert not verdict.allowed
    assert (
        "protected" in verdict.reason
        and "'.git'" in verdict.reason
        and "tools.protected_paths" in verdict.reason
    )
    with pytest.raises(PathDenied, match="protected"):
        scope.open_file(path, os.O_WRONLY | os.O_CREAT)


def test_git_protection_follows_symlinks_and_spares_look_alike_names(tree):
    ws, _ = tree
    (ws / "sub").mkdir()
    (ws / "sub" / ".git").write_text("gitdir: ../.git/worktrees/sub\n")  # a worktree's pointer file
    os.symlink(".git", ws / "git_link")
    scope = PathScope(ws, protected=[])
    assert not scope.check("sub/.git", write=True).allowed
    assert not scope.check("git_link/info/attributes", write=True).allowed
    assert (ws / "sub" / ".git").read_text().startswith("gitdir:")
    for fine in [".gitignore", ".gitattributes", ".github/workflows/ci.yml", "sub/.gitmodules", "git/config"]:
        assert scope.check(fine, write=True).allowed, fine
    assert scope.check(".git/config").allowed  # reading stays allowed


def test_configured_protected_paths_compare_case_insensitively(tree):
    ws, _ = tree
    scope = PathScope(ws)
    for path in [".ENV", ".Shunter/config.toml", ".env.", "\uff0eenv"]:
        verdict = scope.check(path, write=True)
        assert not verdict.allowed, path
        assert "under '.env'" in verdict.reason or "under '.shunter'" in verdict.reason
        assert "user config" in verdict.reason


@pytest.mark.parametrize(
    "path",
    [".env", ".env.local", "app/.env.production", ".ENV", "certs/server.pem", "tls/private.KEY",
     "home/.ssh/id_rsa", "id_ed25519", "keys/id_ecdsa_sk", ".netrc", ".pgpass", ".npmrc", ".pypirc",
     ".aws/credentials", "backup/.aws/credentials.old", "cert.p12", "cert.pfx", ".git-credentials",
     "sub/../.env"],
)  # fmt: skip
def test_default_secret_paths_match_secret_files(path):
    assert is_secret(path, DEFAULT_SECRET_PATHS)


@pytest.mark.parametrize(
    "path",
    [".env.example", ".env.sample", ".env.template", "id_rsa.pub", ".ssh/id_ed25519.pub", ".envrc",
     "env.py", "README.md", "credentials.md", "docs/keys.md", "src/key.py", ".env/lib/site.py", "."],
)  # fmt: skip
def test_default_secret_paths_spare_ordinary_files(path):
    assert not is_secret(path, DEFAULT_SECRET_PATHS)


def test_secret_globs_negation_folders_and_anchors():
    assert secret_match("a/.env", [".env", "!.env"]) is None  # the last match wins
    assert secret_match("a/.env", ["!.env", ".env"]) == ".env"
    assert is_secret("vault/deep/token.txt", ["vault/"]) and not is_secret("vault", ["vault/"])
    assert is_secret("top.txt", ["/top.txt"]) and not is_secret("sub/top.txt", ["/top.txt"])
    assert is_secret("sub\\.env", [".env"]) and not is_secret("x", ["", "/"])


def test_custom_protected_list_and_scope_for(tree):
    ws, _ = tree
    ctx = RunContext(workspace=ws, settings=Settings(tools=ToolSettings(protected_paths=["secrets"])))
    scope = scope_for(ctx)
    assert not scope.check("secrets/key.pem", write=True).allowed
    assert scope.check(".env", write=True).allowed


def test_resolve_returns_a_path_or_raises_path_denied(tree):
    ws, _ = tree
    scope = PathScope(ws)
    assert scope.resolve("in_dir_link/app.py") == ws.resolve() / "src" / "app.py"
    with pytest.raises(PathDenied) as info:
        scope.resolve("../outside/secret.txt")
    assert isinstance(info.value, ToolDenied)
    with pytest.raises(PathDenied, match="protected"):
        scope.resolve(".env", write=True)


def test_verdict_to_dict():
    verdict = ScopeVerdict(True, "/w/x", "x is inside the workspace.")
    assert verdict.to_dict() == {"allowed": True, "resolved": "/w/x", "reason": "x is inside the workspace."}


def test_check_path_contract(tree):
    ws, _ = tree
    assert check_path(ws, "README.md") == {
        "allowed": True,
        "resolved": str(ws.resolve() / "README.md"),
        "reason": "README.md is inside the workspace (a file).",
    }
    refused = check_path(str(ws), "../outside/secret.txt")
    assert refused["allowed"] is False and refused["resolved"] is None and refused["reason"]


def test_check_path_missing_workspace_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        check_path(tmp_path / "nope", "x")


# -- opening: descriptors, O_NOFOLLOW, and symlinks swapped in after the check -------------


def test_open_file_reads_and_creates_with_parents(tree):
    ws, _ = tree
    scope = PathScope(ws)
    fd = scope.open_file("in_dir_link/app.py", os.O_RDONLY)
    with os.fdopen(fd, "rb") as f:
        assert f.read() == b"print('hi')\n"
    fd = scope.open_file("made/on/the/way.txt", os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    os.write(fd, b"new")
    os.close(fd)
    assert (ws / "made" / "on" / "the" / "way.txt").read_bytes() == b"new"


def test_open_file_refuses_protected_writes_and_missing_files(tree):
    ws, _ = tree
    scope = PathScope(ws)
    with pytest.raises(PathDenied, match="protected"):
        scope.open_file(".git/hooks/pre-commit", os.O_WRONLY | os.O_CREAT)
    assert not (ws / ".git" / "hooks" / "pre-commit").exists()
    with pytest.raises(FileNotFoundError):
        scope.open_file("no/such/file.txt", os.O_RDONLY)
    fd = scope.open_file(".git/config", os.O_RDONLY)  # reading a protected file is fine
    os.close(fd)


def test_directory_swapped_for_symlink_after_check_is_not_followed(tree):
    ws, out = tree
    (ws / "sub").mkdir()
    (ws / "sub" / "secret.txt").write_text("inside\n")
    scope = PathScope(ws)
    assert scope.check("sub/secret.txt").allowed
    (ws / "sub").rename(ws / "sub_old")
    os.symlink(out, ws / "sub")  # the attacker's swap, between check and open
    with pytest.raises(PathDenied, match="points outside"):
        scope.open_file("sub/secret.txt", os.O_RDONLY)
    with pytest.raises(PathDenied):
        scope.open_file("sub/new.txt", os.O_WRONLY | os.O_CREAT)
    assert not (out / "new.txt").exists()


def test_file_swapped_for_symlink_after_check_is_not_followed(tree):
    ws, out = tree
    (ws / "note.txt").write_text("mine\n")
    scope = PathScope(ws)
    assert scope.check("note.txt", write=True).allowed
    (ws / "note.txt").unlink()
    os.symlink(out / "secret.txt", ws / "note.txt")
    with pytest.raises(PathDenied):
        scope.open_file("note.txt", os.O_WRONLY | os.O_TRUNC)
    assert (out / "secret.txt").read_text() == "TOP SECRET\n"


def test_open_is_anchored_to_the_directory_descriptor(tree):
    """Swapping a directory after it was resolved cannot redirect the open: the descriptor
    still points at the original directory."""
    ws, out = tree
    (ws / "sub").mkdir()
    (ws / "sub" / "secret.txt").write_text("inside\n")
    scope = PathScope(ws)
    with scope.locate("sub/secret.txt") as loc:
        (ws / "sub").rename(ws / "sub_old")
        os.symlink(out, ws / "sub")
        fd = loc.open(os.O_RDONLY)
        with os.fdopen(fd, "rb") as f:
            assert f.read() == b"inside\n"


def test_final_component_swapped_after_locate_is_refused_by_o_nofollow(tree):
    ws, out = tree
    (ws / "note.txt").write_text("mine\n")
    scope = PathScope(ws)
    with scope.locate("note.txt", write=True) as loc:
        (ws / "note.txt").unlink()
        os.symlink(out / "secret.txt", ws / "note.txt")
        with pytest.raises(PathDenied, match="turned into a symbolic link"):
            loc.open(os.O_WRONLY | os.O_TRUNC)
    assert (out / "secret.txt").read_text() == "TOP SECRET\n"


def test_locate_without_following_the_final_link(tree):
    ws, _ = tree
    with PathScope(ws).locate("out_file", follow_final=False) as loc:
        assert loc.kind == "link" and loc.rel == "out_file"


def test_no_descriptor_leaks(tree):
    fd_dir = Path("/proc/self/fd")
    if not fd_dir.is_dir():
        pytest.skip("/proc/self/fd is not available on this system")
    ws, out = tree
    scope = PathScope(ws)
    paths = corpus_lines(ws, out) + list(BENIGN)
    before = len(os.listdir(fd_dir))
    for _ in range(3):
        for path in paths:
            scope.check(path, write=True)
        os.close(scope.open_file("in_dir_link/app.py", os.O_RDONLY))
    assert len(os.listdir(fd_dir)) == before


def test_workspace_that_does_not_exist_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        PathScope(tmp_path / "missing")
