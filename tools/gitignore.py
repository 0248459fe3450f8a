"""A reasonable subset of .gitignore matching for search_files."""

from __future__ import annotations

import re
from dataclasses import dataclass


def glob_to_regex(pattern: str) -> str:
    """Translate a gitignore-style glob: `*` and `?` stay inside one component, `**` crosses them."""
    out, i, n = [], 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "*":
            if pattern.startswith("**", i):
                if i + 2 < n and pattern[i + 2] == "/":
                    out.append("(?:.*/)?")
                    i += 3
                else:
                    out.append(".*")
                    i += 2
                continue
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = pattern.find("]", i + 2 if pattern[i + 1 : i + 2] in ("!", "^", "]") else i + 1)
            if end == -1:
                out.append(re.escape(c))
            else:
                body = pattern[i + 1 : end]
                if body[:1] in ("!", "^"):
                    body = "^" + body[1:]
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = end
        elif c == "\\" and i + 1 < n:
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


@dataclass(frozen=True)
class Rule:
    base: str
    """Directory of the .gitignore, workspace-relative ('' for the root)."""
    regex: re.Pattern[str]
    negate: bool
    dir_only: bool


def parse_gitignore(text: str, base: str = "") -> list[Rule]:
    """Patterns, `#` comments, `!` negation, trailing `/` (directories only), a leading or
    inner `/` (anchored to the .gitignore's folder), `**`, and `\\` escapes."""
    rules = []
    for raw in text.splitlines():
        line = raw.rstrip("\r")
        if not line.strip() or line.startswith("#"):
            continue
        if not line.endswith("\\ "):
            line = line.rstrip(" ")
        negate = line.startswith("!")
        if negate:
            line = line[1:]
        elif line.startswith(("\\!", "\\#")):
            line = line[1:]
        dir_only = line.endswith("/")
        line = line.rstrip("/")
        if not line:
            continue
        anchored = "/" in line
        line = line.lstrip("/")
        body = glob_to_regex(line)
        regex = re.compile(body if anchored else "(?:.*/)?" + body, re.DOTALL)
        rules.append(Rule(base, regex, negate, dir_only))
    return rules


def is_ignored(rules: list[Rule], rel: str, is_dir: bool) -> bool:
    """Whether the workspace-relative `rel` is ignored: the last matching rule decides."""
    ignored = False
    for rule in rules:
        if rule.dir_only and not is_dir:
            continue
        if rule.base:
            if not rel.startswith(rule.base + "/"):
                continue
            sub = rel[len(rule.base) + 1 :]
        else:
            sub = rel
        if rule.regex.fullmatch(sub):
            ignored = not rule.negate
    return ignored
