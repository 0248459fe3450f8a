"""Noticing git configuration that would run programs, written by a command Shunter ran.

The sandbox keeps an existing `.git/config` read-only, and Shunter's own git commands run
with hooks and program-running settings switched off. What is left: a command that creates a
repository (`git init`, `git clone` into the workspace) can write a config that your own git,
outside Shunter, would later obey. Shunter does not undo that work; it reports it plainly.
"""

from __future__ import annotations

import re
from pathlib import Path

CONFIG_FILES = (".git/config", ".git/config.worktree")

# (section, key) pairs whose value git runs as a program or uses to find more config.
_RUNS_PROGRAMS = {
    ("core", "fsmonitor"), ("core", "hookspath"), ("core", "sshcommand"), ("core", "pager"),
    ("core", "editor"), ("core", "askpass"), ("core", "gitproxy"), ("diff", "external"),
    ("diff", "textconv"), ("diff", "command"), ("filter", "clean"), ("filter", "smudge"),
    ("filter", "process"), ("merge", "driver"), ("credential", "helper"), ("gpg", "program"),
    ("sequence", "editor"), ("include", "path"), ("includeif", "path"),
    ("uploadpack", "packobjectshook"),
}  # fmt: skip
_SECTION = re.compile(r'^\s*\[\s*([A-Za-z0-9.-]+)(?:\s+"[^"]*")?\s*\]')
_ENTRY = re.compile(r"^\s*([A-Za-z][A-Za-z0-9-]*)\s*(?:=\s*(.*))?$")


def snapshot(workspace: Path) -> dict[str, bytes | None]:
    out: dict[str, bytes | None] = {}
    for rel in CONFIG_FILES:
        path = workspace / rel
        try:
            out[rel] = path.read_bytes() if path.is_file() and not path.is_symlink() else None
        except OSError:
            out[rel] = None
    return out


def risky_settings(text: str) -> set[str]:
    """The settings in a git config file that make git run a program or read more config."""
    found: set[str] = set()
    section = ""
    for line in text.splitlines():
        line = line.split("#", 1)[0].split(";", 1)[0] if not line.lstrip().startswith("[") else line
        head = _SECTION.match(line)
        if head:
            section = head.group(1).lower()
            continue
        entry = _ENTRY.match(line)
        if not entry:
            continue
        key, value = entry.group(1).lower(), (entry.group(2) or "").strip()
        if (
            (section, key) in _RUNS_PROGRAMS
            or section == "pager"
            or (section == "alias" and value.startswith("!"))
        ):
            found.add(f"{section}.{key}")
    return found


def new_risky_settings(workspace: Path, before: dict[str, bytes | None]) -> list[str]:
    """Program-running settings a command added to the workspace's git config files."""
    added: list[str] = []
    after = snapshot(workspace)
    for rel, data in after.items():
        if data is None or data == before.get(rel):
            continue
        old = risky_settings((before.get(rel) or b"").decode("utf-8", "replace"))
        new = risky_settings(data.decode("utf-8", "replace")) - old
        added += [f"{rel}: {name}" for name in sorted(new)]
    return added
