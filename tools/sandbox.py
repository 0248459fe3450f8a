"""The OS sandbox for shell commands: bubblewrap when it works here, otherwise none.

Inside the sandbox the whole filesystem is read-only, the workspace is writable except for
its protected paths (.git/hooks, .git/config, .shunter ...), /tmp is private, every namespace
is new (no network unless allowed) and all capabilities are dropped, so even root cannot
remount a read-only bind writable. A sandbox that is not in force is reported as such.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

DEFAULT_PROTECTED = (".git/hooks", ".git/config", ".shunter")


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
    argv = [bwrap, *_base_args(network=False), "--chdir", "/", "true"]
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
    return args


def sandbox_argv(
    argv: list[str],
    *,
    workspace: Path,
    network: bool,
    protected: Iterable[str] = DEFAULT_PROTECTED,
    bwrap: str | None = None,
) -> list[str]:
    """The bubblewrap command line that runs `argv` in `workspace`.

    `protected` are workspace-relative paths bound read-only again on top of the writable
    workspace (settings.tools.protected_paths); only those that exist and stay inside the
    workspace are bound.
    """
    ws = Path(workspace).resolve()
    args = [bwrap or shutil.which("bwrap") or "bwrap", *_base_args(network=network)]
    # The workspace bind comes after --tmpfs /tmp, so a workspace under /tmp stays visible.
    args += ["--bind", str(ws), str(ws)]
    for rel in protected:
        path = _protected_path(ws, rel)
        if path is not None:
            args += ["--ro-bind", str(path), str(path)]
    args += ["--chdir", str(ws), "--", *argv]
    return args


def _protected_path(ws: Path, rel: str) -> Path | None:
    candidate = ws / rel
    if not candidate.exists():
        return None
    resolved = candidate.resolve()
    # A protected path that is a symlink out of the workspace is already read-only there.
    if resolved != ws and ws not in resolved.parents:
        return None
    return resolved
