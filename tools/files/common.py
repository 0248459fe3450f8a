"""What the file tools share: their error sentences, the secret-file refusal and reading a
located file (see tools/files/__init__.py for the rules every file tool keeps)."""

from __future__ import annotations

import errno
import os
import stat

from runtime.context import RunContext
from tools.pathscope import Located
from tools.secret_paths import secret_match

SNIFF_BYTES = 8192
READ_FLAGS = os.O_RDONLY | os.O_NONBLOCK  # O_NONBLOCK: opening a FIFO must not hang the tool


def not_found(path: str) -> str:
    return f"File not found: {path}. Use list_files to see what exists."


def os_error(verb: str, path: str, e: OSError) -> str:
    if isinstance(e, FileNotFoundError):
        return not_found(path)
    if isinstance(e, IsADirectoryError):
        return f"{path} is a directory; use list_files to see what it contains."
    if isinstance(e, NotADirectoryError):
        return f"Part of {path} is a file, not a directory; check the path with list_files."
    if isinstance(e, PermissionError):
        return f"Permission denied: cannot {verb} {path}; the file's permissions do not allow it."
    if e.errno == errno.ENAMETOOLONG:
        return f"Cannot {verb} {path}: a file name is too long; use a shorter name."
    return f"Cannot {verb} {path}: {e.strerror or e}."


def secret_refusal(ctx: RunContext, path: str, rel: str) -> str | None:
    """The refusal for reading a secret file (by the name given or the one it resolves to)."""
    patterns = ctx.settings.tools.secret_paths
    glob = secret_match(rel, patterns) or secret_match(path, patterns)
    if glob is None:
        return None
    return (
        f"{rel} holds secrets, so Shunter does not read it; remove {glob!r} from tools.secret_paths "
        "(in ~/.config/shunter/config.toml) to allow it."
    )


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def read_located(loc: Located, limit: int = -1) -> bytes:
    """The content of the regular file `loc` points at (all of it unless `limit` is given)."""
    fd = loc.open(READ_FLAGS)
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", loc.shown)
        return f.read(limit)


def is_binary(head: bytes) -> bool:
    return b"\x00" in head[:SNIFF_BYTES]
