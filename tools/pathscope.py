"""Workspace path scope: which paths a tool may touch, and opening them safely.

Rules (each refusal comes with one sentence naming the problem; the ones about the path string
itself, such as '..', encodings, '~', URLs and drives, are in tools/pathnames.py):

- Symlinks are resolved by us, one component at a time, from a descriptor of the workspace:
  a link (file or directory, dangling or not, at any depth) is followed only while it stays
  inside the workspace. `/proc/self/root`, `/proc/<pid>/cwd` and friends are just absolute
  paths outside the workspace.
- Writes to a protected path (settings.tools.protected_paths) or anything under it are refused,
  whether named directly or reached through a symlink, and so are writes to any path with a
  component named `.git` (nested repositories, the `.git` file of a worktree, `.git/commondir`).
  Names are compared case-insensitively, after NFKC and with invisible format characters
  removed, because case-insensitive file systems (macOS) open `.GIT/config` as `.git/config`.

Opening never lets the kernel follow a symlink: every directory is opened with O_NOFOLLOW
relative to the descriptor of its parent, and the final component with O_NOFOLLOW, so a symlink
swapped in after `check` is either re-checked or refused, never followed blindly. Hard links
are not detected (a hard link to a file outside is indistinguishable from a regular file).
POSIX only (dir_fd support).
"""

from __future__ import annotations

import errno
import os
import stat
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runtime.errors import ConfigError, PathDenied
from tools.pathnames import collapse, components, fold_name, parse_path, strip_root

if TYPE_CHECKING:
    from runtime.context import RunContext

DEFAULT_PROTECTED = (".git/hooks", ".git/config", ".shunter", ".env")

_MAX_LINKS = 40
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | _CLOEXEC
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
# Why opening a directory on the way can fail without it being our business to raise:
# a symlink (ELOOP/EMLINK under O_NOFOLLOW), a file (ENOTDIR), unreadable or impossibly long.
_NOT_A_WAY_IN = (errno.ELOOP, errno.EMLINK, errno.ENOTDIR, errno.EACCES, errno.ENAMETOOLONG)


@dataclass(frozen=True)
class ScopeVerdict:
    allowed: bool
    resolved: str | None
    """Absolute path of what the path leads to (symlinks inside resolved); None when refused."""
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"allowed": self.allowed, "resolved": self.resolved, "reason": self.reason}


@dataclass
class Located:
    """A path resolved beneath the workspace: the open directory that holds its last component.

    Use it as a context manager; it closes `parent_fd`. `parent_fd` is None when a directory on
    the way does not exist (or is not a directory), so the path cannot exist either.
    """

    parent_fd: int | None
    name: str
    """The last component ('.' for the workspace itself); never a symlink unless kind == 'link'."""
    rel: str
    """Workspace-relative path after resolving symlinks ('.' for the workspace itself)."""
    kind: str | None
    """'file', 'dir', 'link' (only when not following the last link), 'other', or None (missing)."""
    shown: str
    """The path as the caller gave it, for messages."""
    missing_errno: int = errno.ENOENT
    """Why `parent_fd` is None: ENOENT (a folder is missing) or ENOTDIR (a file is in the way)."""

    @property
    def exists(self) -> bool:
        return self.kind is not None

    def dir_fd(self) -> int:
        """The descriptor of the directory holding the last component, or the OSError saying
        why there is none (a folder on the way is missing, or is a file)."""
        if self.parent_fd is None:
            code = self.missing_errno
            raise (NotADirectoryError if code == errno.ENOTDIR else FileNotFoundError)(
                code, os.strerror(code), self.shown
            )
        return self.parent_fd

    def open(self, flags: int, mode: int = 0o644) -> int:
        """Open the last component relative to its directory, never following a symlink."""
        try:
            return os.open(self.name, flags | os.O_NOFOLLOW | _CLOEXEC, mode, dir_fd=self.dir_fd())
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise PathDenied(
                    f"{self.shown!r} turned into a symbolic link while being opened; refused."
                ) from None
            raise

    def close(self) -> None:
        if self.parent_fd is not None:
            os.close(self.parent_fd)
            self.parent_fd = None

    def __enter__(self) -> Located:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class PathScope:
    """The paths tools may use: inside `workspace`, and for writes not under `protected`."""

    def __init__(self, workspace: str | Path, protected: Sequence[str] = DEFAULT_PROTECTED):
        root = Path(workspace)
        if not root.is_dir():
            raise ConfigError(
                f"The workspace {root} does not exist or is not a directory; pass an existing folder."
            )
        self.root = root.resolve()
        self._roots = [components(str(self.root))]
        alias = components(os.path.abspath(root))
        if alias != self._roots[0]:
            self._roots.append(alias)  # the spelling the user gave (e.g. /tmp vs /private/tmp)
        self._protected = [p for p in (_protected_parts(e) for e in protected) if p]

    # -- public API ------------------------------------------------------------------------

    def check(self, path: str, *, write: bool = False) -> ScopeVerdict:
        try:
            with self.locate(path, write=write) as loc:
                pass
        except PathDenied as e:
            return ScopeVerdict(False, None, str(e))
        except OSError as e:
            return ScopeVerdict(False, None, f"{path!r} could not be checked ({e.strerror}); refused.")
        if loc.rel == ".":
            return ScopeVerdict(True, str(self.root), "It is the workspace itself.")
        state = {None: "does not exist yet", "dir": "a directory", "file": "a file"}.get(loc.kind, "exists")
        return ScopeVerdict(True, str(self.root / loc.rel), f"{loc.rel} is inside the workspace ({state}).")

    def resolve(self, path: str, *, write: bool = False) -> Path:
        """The absolute path `path` leads to; raises PathDenied when it is out of scope."""
        verdict = self.check(path, write=write)
        if not verdict.allowed:
            raise PathDenied(verdict.reason)
        return Path(verdict.resolved or self.root)

    def open_file(self, path: str, flags: int, mode: int = 0o644) -> int:
        """Open `path` beneath the workspace and return the descriptor.

        Writing flags (O_WRONLY, O_RDWR, O_CREAT, O_TRUNC, O_APPEND) apply the protected list;
        O_CREAT also creates missing parent directories inside the workspace.
        """
        write = bool(flags & _WRITE_FLAGS)
        with self.locate(path, write=write, create_parents=bool(flags & os.O_CREAT)) as loc:
            return loc.open(flags, mode)

    def locate(
        self, path: str, *, write: bool = False, create_parents: bool = False, follow_final: bool = True
    ) -> Located:
        """Resolve `path` beneath the workspace; raises PathDenied when it is out of scope.

        `follow_final=False` stops at a final symlink instead of following it (to delete the
        link itself). `create_parents` makes missing directories on the way.
        """
        parts = parse_path(path, self._roots, self.root)
        if write:
            self._refuse_protected(collapse(parts), path)
        loc = self._walk_checked(parts, path, write=write, create=False, follow_final=follow_final)
        if create_parents and loc.parent_fd is None:
            # Create only the real ancestors of the resolved target: walk its collapsed path.
            loc.close()
            loc = self._walk_checked(
                loc.rel.split("/"), path, write=write, create=True, follow_final=follow_final
            )
        return loc

    def _walk_checked(
        self, parts: list[str], shown: str, *, write: bool, create: bool, follow_final: bool
    ) -> Located:
        """`_walk`, then for a write the protected check again on where the walk ended (a
        symlink may have led somewhere protected); closes what it opened when refusing."""
        loc = self._walk(parts, shown, create=create, follow_final=follow_final)
        if write:
            try:
                self._refuse_protected(loc.rel.split("/"), shown)
            except PathDenied:
                loc.close()
                raise
        return loc

    def _refuse_protected(self, rel_parts: list[str], shown: str) -> None:
        folded = [fold_name(p) for p in rel_parts]
        if ".git" in folded:
            raise PathDenied(
                f"{shown!r} is protected (it is git's own '.git' folder or file, or inside one), so tools may "
                "not write or delete it; this rule is built in, and the other protected paths are listed in "
                "tools.protected_paths in your user config (~/.config/shunter/config.toml)."
            )
        for entry in self._protected:
            if folded[: len(entry)] == entry:
                name = "/".join(entry)
                raise PathDenied(
                    f"{shown!r} is protected (under {name!r}), so tools may not write or delete it; to allow "
                    f"it, remove {name!r} from tools.protected_paths in your user config "
                    "(~/.config/shunter/config.toml); a workspace config can only add entries."
                )

    # -- the walk --------------------------------------------------------------------------

    def _walk(self, parts: list[str], shown: str, *, create: bool, follow_final: bool) -> Located:
        """Resolve `parts` from a descriptor of the workspace, one component at a time.

        Directories are opened with O_NOFOLLOW relative to their parent; a symlink is read with
        readlink and its target walked the same way, refused once it would leave the workspace.
        """
        root_fd = os.open(self.root, _DIR_FLAGS)
        stack: list[tuple[str, int | None]] = []  # (name, fd or None when missing) below the root
        queue = deque(p for p in parts if p not in ("", "."))
        links = 0
        last_link: tuple[str, str] | None = None
        final: tuple[str, str | None] | None = None
        created = 0
        missing_errno = errno.ENOENT

        def current() -> int | None:
            return stack[-1][1] if stack else root_fd

        def rel_of(name: str) -> str:
            return "/".join([n for n, _ in stack] + [name])

        def follow(name: str, fd: int) -> None:
            nonlocal links, last_link, stack
            links += 1
            if links > _MAX_LINKS:
                raise PathDenied(f"{shown!r} goes through too many symbolic links (a loop?); refused.")
            target = os.readlink(name, dir_fd=fd)
            last_link = (rel_of(name), target)
            target_parts = [p for p in components(target) if p != "."]
            if target.startswith("/"):
                rest = strip_root(target_parts, self._roots)
                if rest is None:
                    raise PathDenied(
                        f"{shown!r} goes through the symlink {last_link[0]!r} -> {target!r}, "
                        "which points outside the workspace; refused."
                    )
                _close_all(stack)
                stack = []
                target_parts = rest
            queue.extendleft(reversed(target_parts))

        try:
            while queue:
                name = queue.popleft()
                if name == "..":
                    if not stack:
                        if last_link:
                            raise PathDenied(
                                f"{shown!r} goes through the symlink {last_link[0]!r} -> {last_link[1]!r}, "
                                "which points outside the workspace; refused."
                            )
                        raise PathDenied(f"{shown!r} leads outside the workspace through '..'; refused.")
                    _, fd = stack.pop()
                    if fd is not None:
                        os.close(fd)
                    continue
                fd = current()
                if not queue:  # the last component: look, follow a link, but do not descend
                    kind = None if fd is None else _kind_at(name, fd)
                    if kind == "link" and follow_final:
                        follow(name, fd)  # type: ignore[arg-type]
                        continue
                    final = (name, kind)
                    break
                if fd is None:  # below a missing directory everything is missing
                    stack.append((name, None))
                    continue
                try:
                    stack.append((name, os.open(name, _DIR_FLAGS, dir_fd=fd)))
                    continue
                except FileNotFoundError:
                    if create and created < 256:
                        created += 1
                        try:
                            os.mkdir(name, 0o777, dir_fd=fd)
                        except FileExistsError:
                            pass  # someone else made it (maybe a link): look again
                        queue.appendleft(name)
                        continue
                    stack.append((name, None))
                except OSError as e:
                    if e.errno not in _NOT_A_WAY_IN:
                        raise
                    kind = _kind_at(name, fd)
                    if kind == "link":
                        follow(name, fd)
                    else:  # a file or an unreadable directory: nothing below it can be reached
                        if kind in ("file", "other"):
                            missing_errno = errno.ENOTDIR
                        stack.append((name, None))
            if final is None:  # the path ends at a directory on the stack (or the workspace)
                if stack:
                    name, fd = stack.pop()
                    if fd is not None:
                        os.close(fd)
                    final = (name, "dir" if fd is not None else None)
                else:
                    final = (".", "dir")
            name, kind = final
            rel = rel_of(name) if name != "." else "."
            # Hand over the descriptor of the final component's directory; close the others.
            if stack:
                keep = stack.pop()[1]
                os.close(root_fd)
            else:
                keep = root_fd
            return Located(keep, name, rel, kind, shown, missing_errno)
        except BaseException:
            os.close(root_fd)
            raise
        finally:
            _close_all(stack)


def _close_all(stack: list[tuple[str, int | None]]) -> None:
    while stack:
        _, fd = stack.pop()
        if fd is not None:
            os.close(fd)


def _kind_at(name: str, dir_fd: int) -> str | None:
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.ENOTDIR, errno.ENAMETOOLONG, errno.EACCES):
            return None  # cannot exist, or cannot be reached by anyone going through us
        raise
    if stat.S_ISLNK(st.st_mode):
        return "link"
    if stat.S_ISDIR(st.st_mode):
        return "dir"
    return "file" if stat.S_ISREG(st.st_mode) else "other"


def _protected_parts(entry: str) -> list[str]:
    return [fold_name(p) for p in collapse(components(entry.replace("\\", "/")))]


def check_path(workspace: str | Path, path: str, *, write: bool = False) -> dict[str, Any]:
    """The verdict for `shunter check-path`: {"allowed", "resolved", "reason"}."""
    ws = Path(workspace)
    if not ws.is_dir():
        raise ConfigError(
            f"The workspace {ws} does not exist or is not a directory; pass an existing folder with --workspace."
        )
    return PathScope(ws).check(path, write=write).to_dict()


def scope_for(ctx: RunContext) -> PathScope:
    """The path scope of a run: its workspace and its protected paths."""
    return PathScope(ctx.workspace, ctx.settings.tools.protected_paths)
