"""The OS sandbox for shell commands: bubblewrap when it works here, otherwise none.

Inside the sandbox the whole filesystem is read-only, the workspace is writable except for
its protected paths (.git/hooks, .git/config, .shunter ...), /tmp is private, the home
directories are empty, /etc/shadow and the SSH host keys read as nothing, every namespace is
new (no network unless allowed) and all capabilities are dropped, so even root cannot
remount a read-only bind writable. A sandbox that is not in force is reported as such.
"""

from __future__ import annotations

import functools
import glob
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

DEFAULT_PROTECTED = (".git/hooks", ".git/config", ".shunter")
# Parts of a repository git reads configuration or runs code from. They are bound read-only
# when they exist; everything else in .git (objects, refs, index, HEAD) stays writable so an
# approved `git commit` works inside the sandbox.
GIT_PROTECTED = (
    ".git/hooks",
    ".git/config",
    ".git/config.worktree",
    ".git/commondir",
    ".git/info",
    ".git/modules",
)
# Directories that become mount points of their own: a mount point cannot be renamed
# (EBUSY), so a command cannot move `.git` aside and put a writable copy in its place, whose
# hooks and config the host's next git command would use. The workspace itself is a mount
# point too (its bind), so it cannot be renamed either.
PINNED = (".git", ".shunter")
# Files git does not create in a main repository but would obey if a command created them:
# `.git/commondir` names another directory whose (unprotected) config git then reads. They
# cannot be bound before they exist, so the shell tool removes them after each command.
GIT_REDIRECTS = (".git/commondir",)
# Toolchains people install into their home (pyenv, uv's pythons, rustup, nvm, pipx ...):
# bound back read-only over the empty home so commands still find their interpreters and
# compilers. Only program folders: never ~/.cargo as a whole (credentials.toml) nor uv's
# credentials, nor dotfiles such as ~/.gitconfig (credential helpers, tokens in URLs).
_TOOLCHAINS = (
    ".pyenv", ".local/share/uv/python", ".local/bin", ".local/pipx", ".local/share/pipx", ".cargo/bin", ".rustup",
    ".nvm", ".volta", ".bun/bin", ".deno/bin", "go/bin", ".sdkman/candidates", "miniconda3", "miniforge3",
    "anaconda3",
)  # fmt: skip
# Readable by root (the owner) even without capabilities, and never needed by a command.
_SECRET_FILES = ("/etc/shadow", "/etc/gshadow", "/etc/shadow-", "/etc/gshadow-")
_SECRET_GLOBS = ("/etc/ssh/ssh_host_*_key",)


@dataclass(frozen=True)
class SandboxInfo:
    """Which sandbox is in force for shell commands, and why (or why not)."""

    kind: Literal["bwrap", "none"]
    detail: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


@functools.cache
def probe_sandbox() -> SandboxInfo:
    """Find bubblewrap and prove it works by running `true` in the sandbox once per process."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return SandboxInfo("none", "bubblewrap (bwrap) is not installed; commands run without an OS sandbox.")
    argv = [bwrap, *_base_args(network=False), *_hide_homes(None), "--chdir", "/", "true"]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError) as e:
        return SandboxInfo(
            "none", f"bubblewrap at {bwrap} could not be started ({e}); commands run without an OS sandbox."
        )
    if done.returncode != 0:
        why = (done.stderr or done.stdout).strip().splitlines()
        reason = why[-1] if why else f"exit code {done.returncode}"
        return SandboxInfo(
            "none", f"bubblewrap at {bwrap} fails here ({reason}); commands run without an OS sandbox."
        )
    return SandboxInfo(
        "bwrap", f"bubblewrap at {bwrap}: read-only filesystem, writable workspace, new namespaces."
    )


def _base_args(*, network: bool) -> list[str]:
    args = [
        "--ro-bind", "/", "/",
        "--dev", "/dev",
        "--proc", "/proc",
        "--tmpfs", "/tmp",
        "--unshare-all",
        # Root inside bwrap keeps its capabilities unless dropped, and could then remount a
        # read-only bind as writable.
        "--cap-drop", "ALL",
        # A new session: the command cannot push keystrokes into our terminal (TIOCSTI).
        "--new-session",
        "--die-with-parent",
    ]  # fmt: skip
    if network:
        args.append("--share-net")
    for path in [*_SECRET_FILES, *(p for pattern in _SECRET_GLOBS for p in sorted(glob.glob(pattern)))]:
        if os.path.isfile(path):
            args += ["--ro-bind", "/dev/null", path]
    return args


def home_dirs() -> list[Path]:
    """The home directories hidden in the sandbox: $HOME, the user's home and /root."""
    found: list[Path] = []
    for raw in (os.environ.get("HOME"), os.path.expanduser("~"), "/root"):
        if not raw:
            continue
        path = Path(raw).resolve()
        if path != Path("/") and path.is_dir() and path not in found:
            found.append(path)
    return found


def _hide_homes(homes: Iterable[Path] | None) -> list[str]:
    # An empty tmpfs over each home: dotfiles, SSH keys, cloud credentials and tokens vanish.
    # It comes before the workspace bind, so a workspace inside a home is bound back on top
    # (bwrap applies its arguments in order and creates the mount point in the tmpfs).
    hidden = home_dirs() if homes is None else [Path(h) for h in homes]
    args: list[str] = []
    for home in hidden:
        args += ["--tmpfs", str(home)]
    keep = [home / rel for home in hidden for rel in _TOOLCHAINS]
    # The interpreter running Shunter (a virtualenv's base Python may live under ~/.pyenv or
    # elsewhere in the home), so `python` in the workspace's venv still starts.
    keep += [Path(sys.base_prefix), Path(sys.prefix)]
    bound: set[Path] = set()
    for path in keep:
        if path.is_dir() and path not in bound and any(h == path or h in path.parents for h in hidden):
            bound.add(path)
            args += ["--ro-bind", str(path), str(path)]
    return args


def sandbox_argv(
    argv: list[str],
    *,
    workspace: Path,
    network: bool,
    protected: Iterable[str] = DEFAULT_PROTECTED,
    bwrap: str | None = None,
    homes: Iterable[Path] | None = None,
) -> list[str]:
    """The bubblewrap command line that runs `argv` in `workspace`.

    `protected` are workspace-relative paths bound read-only again on top of the writable
    workspace (settings.tools.protected_paths), together with the git files of GIT_PROTECTED;
    only those that exist and stay inside the workspace are bound. `.git` and `.shunter` are
    bound onto themselves first so they cannot be renamed. `homes` are hidden behind empty
    tmpfs mounts (default: home_dirs()).

    When `.git` is a folder without `hooks`, the empty `hooks` folder is created on the host
    (git creates it anyway) so that a command cannot add hooks to it.
    """
    ws = Path(workspace).resolve()
    args = [bwrap or shutil.which("bwrap") or "bwrap", *_base_args(network=network), *_hide_homes(homes)]
    # The workspace bind comes after --tmpfs /tmp and the homes, so a workspace there stays visible.
    args += ["--bind", str(ws), str(ws)]
    for rel in PINNED:
        path = _inside(ws, rel)
        if path is not None:
            args += ["--bind", str(path), str(path)]
    _ensure_hooks_dir(ws)
    bound: list[Path] = []
    for rel in [*protected, *GIT_PROTECTED]:
        path = _inside(ws, rel)
        if path is not None and path not in bound:
            bound.append(path)
            args += ["--ro-bind", str(path), str(path)]
    args += ["--chdir", str(ws), "--", *argv]
    return args


def _ensure_hooks_dir(ws: Path) -> None:
    git = ws / ".git"
    if git.is_dir() and not git.is_symlink() and not os.path.lexists(git / "hooks"):
        try:
            (git / "hooks").mkdir()
        except OSError:
            pass  # a read-only .git cannot gain hooks from the sandbox either


def _inside(ws: Path, rel: str) -> Path | None:
    """`ws / rel` resolved, if it exists and stays inside the workspace."""
    candidate = ws / rel
    if not candidate.exists():
        return None
    resolved = candidate.resolve()
    # A protected path that is a symlink out of the workspace is already read-only there.
    if resolved != ws and ws not in resolved.parents:
        return None
    return resolved


def absent_redirects(workspace: Path) -> list[Path]:
    """The GIT_REDIRECTS files missing from the workspace's `.git` folder, to check after a command."""
    ws = Path(workspace)
    if not (ws / ".git").is_dir():
        return []
    return [ws / rel for rel in GIT_REDIRECTS if not os.path.lexists(ws / rel)]


def remove_new_redirects(watched: Iterable[Path]) -> list[str]:
    """Remove the watched files a command created; return their names for the tool's output."""
    removed: list[str] = []
    for path in watched:
        if os.path.lexists(path) and not path.is_dir():
            try:
                path.unlink()
            except OSError:
                continue
            removed.append(f"{path.parent.name}/{path.name}")
    return removed
