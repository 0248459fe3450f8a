"""Reading a path string before anything touches the disk: the lexical half of the path scope
(tools/pathscope.py resolves what passes on disk).

Rules (each refusal comes with one sentence naming the problem):

- Relative paths are relative to the workspace; absolute paths must lie inside it. Paths are
  compared component by component, so `/srv/app_evil` is not inside `/srv/app`.
- `\\` is read as a path separator, so `..\\..\\etc\\passwd` climbs like `../../etc/passwd`
  (a file literally named `a\\b` is therefore out of reach).
- `..` may move around inside the workspace but never above it, not even to come back.
- Percent-encoding is checked decoded as well: `%XX` and `%uXXXX` are decoded up to four times
  (double encoding, `%%32%65`), and NFKC lookalikes (fullwidth `．．／`) are folded; if any
  decoded form leaves the workspace, or decodes to invalid UTF-8 (overlong `%c0%af`) or a NUL,
  the path is refused. Slash lookalikes NFKC keeps (division slash U+2215, fraction slash
  U+2044, ...) count as separators in those decoded forms. The file opened is always the literal name.
- `~` is not expanded: a path starting with `~` is refused (write `./~name` for a file
  literally named so). URLs (`file://...`), Windows drives (`C:\\`), control characters, NUL
  and names made only of dots and spaces (`...`, `.. `) are refused too.

Names are also folded here as a case-insensitive file system sees them (`fold_name`), for the
protected paths and the secret globs.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import unquote_to_bytes

from runtime.errors import PathDenied

_MAX_PATH = 4096
_DECODE_ROUNDS = 4
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")
_DRIVE = re.compile(r"^[A-Za-z]:([\\/]|$)")
_SLASH_LOOKALIKES = str.maketrans(
    {c: "/" for c in "\u2215\u2044\u29f8\u2571"} | {c: "\\" for c in "\u2216\u29f5\u29f9\u2572"}
)
_PERCENT_U = re.compile(r"%u([0-9a-fA-F]{4})")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def parse_path(path: str, roots: Sequence[list[str]], root: Path) -> list[str]:
    """Everything that can be refused without touching the disk; returns the workspace-relative
    components. `roots` are the workspace's absolute spellings, as components; `root` is the one
    refusals name."""
    if not isinstance(path, str) or not path.strip():
        raise PathDenied("The path is empty; give a file path relative to the workspace.")
    if len(path) > _MAX_PATH:
        raise PathDenied(f"The path is {len(path)} characters long, over the limit of {_MAX_PATH}.")
    if "\x00" in path:
        raise PathDenied(f"{path!r} contains a NUL byte, which no file name can hold; remove it.")
    if _CONTROL.search(path):
        raise PathDenied(f"{path!r} contains a control character; give a plain file path.")
    if path.startswith("~"):
        raise PathDenied(
            f"{path!r} starts with '~', which is not expanded (home folders are outside the workspace); "
            "give a path relative to the workspace, or './~name' for a file literally named so."
        )
    if _URL.match(path):
        raise PathDenied(f"{path!r} is a URL, not a file path; give a path relative to the workspace.")
    if _DRIVE.match(path):
        raise PathDenied(f"{path!r} is a Windows drive path; give a path relative to the workspace.")
    parts, problem = _lexical(path, roots)
    if problem:
        raise PathDenied(f"{path!r} {problem}; give a path inside the workspace {root}.")
    for form in _decoded_forms(path):
        _, problem = _lexical(form, roots)
        if problem:
            raise PathDenied(
                f"{path!r} reads as {form!r} once decoded, which {problem}; encoded paths are checked "
                "decoded too, so give a plain path inside the workspace."
            )
    return parts


def _lexical(text: str, roots: Sequence[list[str]]) -> tuple[list[str], str | None]:
    """Split on '/' and '\\'; return workspace-relative components or what is wrong."""
    if "\x00" in text:
        return [], "contains a NUL byte"
    text = text.replace("\\", "/")
    parts = components(text)
    if text.startswith("/"):
        rest = strip_root(parts, roots)
        if rest is None:
            return [], "is outside the workspace"
        parts = rest
    depth = 0
    for part in parts:
        depth += -1 if part == ".." else 1
        if depth < 0:
            return [], "leads outside the workspace through '..'"
    odd = next((p for p in parts if p != ".." and not p.strip(". ")), None)
    if odd is not None:
        return (
            [],
            f"has a component made only of dots and spaces ({odd!r}), which some systems read as '..'",
        )
    return parts, None


def strip_root(parts: list[str], roots: Sequence[list[str]]) -> list[str] | None:
    """`parts` of an absolute path below the workspace, relative to it; None when outside."""
    for root in roots:
        if parts[: len(root)] == root:
            return parts[len(root) :]
    return None


def components(text: str) -> list[str]:
    return [p for p in text.split("/") if p not in ("", ".")]


def collapse(parts: list[str]) -> list[str]:
    out: list[str] = []
    for p in parts:
        if p == "..":
            if out:
                out.pop()
        else:
            out.append(p)
    return out


def fold_name(name: str) -> str:
    """A file name as a case-insensitive file system may see it: NFKC, without invisible format
    characters (HFS+ ignores U+200C and friends: CVE-2014-9390), casefolded, and without the
    trailing dots and spaces Windows drops."""
    text = "".join(c for c in unicodedata.normalize("NFKC", name) if unicodedata.category(c) != "Cf")
    return text.casefold().rstrip(". ") or text


def _decoded_forms(path: str) -> list[str]:
    """Other readings of `path`: percent-decoded (repeatedly) and NFKC-folded."""
    seen = {path}
    frontier = [path]
    forms: list[str] = []
    for _ in range(_DECODE_ROUNDS):
        found = []
        for text in frontier:
            for form in (_percent_decode(text), _fold(text)):
                if form not in seen:
                    seen.add(form)
                    found.append(form)
        forms.extend(found)
        frontier = found
        if not frontier:
            break
    return forms


def _fold(text: str) -> str:
    """NFKC (fullwidth '．．／' -> '../') plus the slash lookalikes NFKC keeps (IIS read %u2215 as '/')."""
    return unicodedata.normalize("NFKC", text).translate(_SLASH_LOOKALIKES)


def _percent_decode(text: str) -> str:
    if "%" not in text:
        return text
    text = _PERCENT_U.sub(lambda m: chr(int(m.group(1), 16)), text)
    raw = unquote_to_bytes(text)
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise PathDenied(
            f"{text!r} percent-decodes to bytes that are not valid UTF-8 (overlong encodings such as "
            "%c0%af are a traversal trick); give a plain path."
        ) from None
    if "\x00" in decoded:
        raise PathDenied(f"{text!r} percent-decodes to a NUL byte (%00); give a plain path.")
    return decoded
