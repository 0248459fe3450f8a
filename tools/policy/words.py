"""Shell words for the command policy: the tree-sitter parser, quote removal (what bash
would pass a program) and GNU-style option scanning.

The bottom of the policy package (it imports nothing of ours): shared by the tree walker
(tools/policy/walker.py) and the per-program rules.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

# --------------------------------------------------------------------------- parsing

_parser_lock = threading.Lock()
_parser_box: list[Any] = []


def parse(source: bytes) -> Any:
    """The tree-sitter-bash tree of a command line."""
    # One parser per process, made on first use; tree-sitter parsers are not thread-safe.
    with _parser_lock:
        if not _parser_box:
            import tree_sitter
            import tree_sitter_bash

            _parser_box.append(tree_sitter.Parser(tree_sitter.Language(tree_sitter_bash.language())))
        return _parser_box[0].parse(source)


def node_text(node: Any) -> str:
    """The source text of a tree-sitter node."""
    return node.text.decode("utf-8", errors="replace")


def snip(text: str, limit: int = 70) -> str:
    """Source text quoted on one line, shortened, for a reason."""
    flat = " ".join(text.split())
    if len(flat) > limit:
        flat = flat[: limit - 1] + "…"
    return f"`{flat}`"


# --------------------------------------------------------------------------- words

DYN = "\x00"  # stands for the unknown value of an expansion in approximate text
GLOB_CHARS = frozenset("*?[")
_BRACE_RE = re.compile(r"\{[^{}\s]*(?:,|\.\.)[^{}\s]*\}")


@dataclass(frozen=True)
class Word:
    """One shell word after quote removal.

    `text` is its exact value, or None when it depends on an expansion. `approx` is a best
    effort for deny checks: static parts kept, $HOME as ~, other expansions as DYN.
    """

    text: str | None
    approx: str
    src: str
    glob: bool = False
    """An unquoted * ? or [ : pathname expansion."""
    brace: bool = False
    """Unquoted {a,b} or {1..3}: brace expansion makes several words of one."""
    subst: bool = False
    """Part of it is the output of another command."""


_HOME_VARS = frozenset({"HOME"})


def word_of(node: Any) -> Word:
    """The word bash makes of a tree-sitter word node."""
    parts: list[tuple[str | None, str]] = []  # (exact, approx) of each piece
    flags = {"glob": False, "subst": False}
    skeleton: list[str] = []  # the unquoted text, to spot brace expansion across pieces
    _word_parts(node, parts, flags, skeleton)
    pieces = [p[0] for p in parts]
    exact: str | None = (
        None if any(p is None for p in pieces) else "".join(p for p in pieces if p is not None)
    )
    approx = "".join(p[1] for p in parts)
    brace = "{" in "".join(skeleton) and bool(_BRACE_RE.search("".join(skeleton)))
    return Word(exact, approx, node_text(node), flags["glob"], brace, flags["subst"])


def _word_parts(node: Any, parts: list, flags: dict, skeleton: list[str]) -> None:
    t = node.type
    if t == "word" or t == "number" or (t == "extglob_pattern"):
        raw = node_text(node)
        value, glob = _unescape_unquoted(raw)
        flags["glob"] |= glob
        parts.append((value, value))
        skeleton.append(re.sub(r"\\.", "E", raw))
    elif t == "concatenation":
        for child in node.children:
            _word_parts(child, parts, flags, skeleton)
    elif t == "raw_string":
        raw = node_text(node)[1:-1]
        parts.append((raw, raw))
        skeleton.append("Q")
    elif t == "ansi_c_string":
        value = _ansi_c(node_text(node)[2:-1])
        parts.append((value, value))
        skeleton.append("Q")
    elif t in ("string", "translated_string"):
        skeleton.append("Q")
        for child in node.children:
            ct = child.type
            if ct == '"' or ct == '$"':
                continue
            if ct == "string_content":
                value = _unescape_double(node_text(child))
                parts.append((value, value))
            elif not child.is_named:
                parts.append((node_text(child), node_text(child)))
            else:
                _expansion_part(child, parts, flags)
    elif t in (
        "simple_expansion",
        "expansion",
        "command_substitution",
        "process_substitution",
        "arithmetic_expansion",
    ):
        skeleton.append("$")
        _expansion_part(node, parts, flags)
    elif t == "brace_expression":
        skeleton.append(node_text(node))
        parts.append((node_text(node), node_text(node)))
    elif t == "command_name":
        for child in node.children:
            _word_parts(child, parts, flags, skeleton)
    else:
        # Anything else in a word position is treated as an unknown run-time value.
        skeleton.append("$")
        parts.append((None, DYN))


def _expansion_part(node: Any, parts: list, flags: dict) -> None:
    t = node.type
    if t in ("command_substitution", "process_substitution"):
        flags["subst"] = True
        parts.append((None, DYN))
        return
    if t in ("simple_expansion", "expansion"):
        names = [c for c in node.named_children if c.type in ("variable_name", "special_variable_name")]
        plain = len(node.named_children) == 1 and names
        if plain and node_text(names[0]) in _HOME_VARS:
            parts.append((None, "~"))
            return
        if b"$(" in node.text or b"`" in node.text:
            flags["subst"] = True
    parts.append((None, DYN))


def _unescape_unquoted(raw: str) -> tuple[str, bool]:
    if "\\" not in raw:
        return raw, any(c in GLOB_CHARS for c in raw)
    out: list[str] = []
    glob = False
    i = 0
    while i < len(raw):
        c = raw[i]
        if c == "\\" and i + 1 < len(raw):
            if raw[i + 1] != "\n":
                out.append(raw[i + 1])
            i += 2
            continue
        glob |= c in GLOB_CHARS
        out.append(c)
        i += 1
    return "".join(out), glob


def _unescape_double(raw: str) -> str:
    if "\\" not in raw:
        return raw
    return re.sub(r'\\([$`"\\\n])', lambda m: "" if m.group(1) == "\n" else m.group(1), raw)


_ANSI_SIMPLE = {
    "n": "\n",
    "t": "\t",
    "r": "\r",
    "a": "\a",
    "b": "\b",
    "e": "\x1b",
    "E": "\x1b",
    "f": "\f",
    "v": "\v",
}
_ANSI_RE = re.compile(r"\\(x[0-9a-fA-F]{1,2}|u[0-9a-fA-F]{1,4}|U[0-9a-fA-F]{1,8}|[0-7]{1,3}|c.|.)", re.S)


def _ansi_c(body: str) -> str:
    """Decode the inside of $'...' the way bash does (enough to see `rm` in $'\\x72m')."""

    def sub(m: re.Match[str]) -> str:
        s = m.group(1)
        if s[0] in "xuU" and len(s) > 1:
            try:
                return chr(int(s[1:], 16))
            except (ValueError, OverflowError):
                return ""
        if s[0] in "01234567":
            return chr(int(s, 8) & 0xFF)
        if s[0] == "c" and len(s) == 2:
            return chr(ord(s[1]) & 0x1F)
        return _ANSI_SIMPLE.get(s, s)

    return _ANSI_RE.sub(sub, body)


# --------------------------------------------------------------------------- options


def scan_options(
    args: Sequence[str], value_short: str = "", value_long: Iterable[str] = ()
) -> tuple[list[tuple[str, str | None]], list[int]]:
    """Split GNU-style arguments into (option, value) pairs and the indexes of the operands.

    Options may follow operands (GNU permutes them); `--` ends the options.
    """
    long_values = frozenset(value_long)
    opts: list[tuple[str, str | None]] = []
    operands: list[int] = []
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--":
            operands.extend(range(i + 1, len(args)))
            break
        if a.startswith("--"):
            name, eq, val = a.partition("=")
            if not eq and _takes_value(name, long_values) and i + 1 < len(args):
                i += 1
                val, eq = args[i], "="
            opts.append((name, val if eq else None))
        elif a.startswith("-") and len(a) > 1:
            for j in range(1, len(a)):
                ch = a[j]
                if ch in value_short:
                    val = a[j + 1 :]
                    if not val and i + 1 < len(args):
                        i += 1
                        val = args[i]
                    opts.append(("-" + ch, val))
                    break
                opts.append(("-" + ch, None))
        else:
            operands.append(i)
        i += 1
    return opts, operands


def _takes_value(name: str, long_values: frozenset[str]) -> bool:
    # `sort --o FILE`: an abbreviation of a value option takes the next word as its value too.
    return name in long_values or (len(name) > 2 and any(v.startswith(name) for v in long_values))


def long_match(name: str, forbidden: Iterable[str]) -> str | None:
    """GNU getopt accepts every unambiguous prefix, down to one letter (`--o` for `--output`):
    match them all. An ambiguous prefix makes the program fail, so matching it costs nothing."""
    if not name.startswith("--") or len(name) < 3:
        return None
    for f in forbidden:
        if f.startswith(name) or name.startswith(f):
            return f
    return None


def has_option(
    opts: Sequence[tuple[str, str | None]], short: str = "", long: Iterable[str] = ()
) -> str | None:
    """The first of the named options that was given, as written."""
    longs = tuple(long)
    for name, _ in opts:
        if len(name) == 2 and name[1] in short:
            return name
        if longs and long_match(name, longs):
            return name
    return None


def option_words(c: Cmd, value_short: str = "", value_long: Iterable[str] = ()) -> tuple[list, list[Word]]:
    """`scan_options` on a command's arguments, with the operands as words."""
    opts, idx = scan_options(c.texts(), value_short, value_long)
    return opts, [c.args[i] for i in idx]


def option_values(
    opts: Sequence[tuple[str, str | None]], short: str = "", long: Iterable[str] = ()
) -> list[str]:
    """The values given to the named options."""
    longs = tuple(long)
    out = []
    for name, val in opts:
        if val is None:
            continue
        if (len(name) == 2 and name[1] in short) or (longs and long_match(name, longs)):
            out.append(val)
    return out


def skip_options(texts: Sequence[str], value_short: str = "", value_long: Iterable[str] = ()) -> int:
    """Index of the first operand of a wrapper (`nice -n 5 CMD`): options end at the first
    word that does not start with `-`."""
    long_values = frozenset(value_long)
    i = 0
    while i < len(texts):
        t = texts[i]
        if t == "--":
            return i + 1
        if t.startswith("--"):
            i += 2 if ("=" not in t and t in long_values) else 1
            continue
        if t.startswith("-") and len(t) > 1:
            for j in range(1, len(t)):
                if t[j] in value_short:
                    if j == len(t) - 1:
                        i += 1
                    break
            i += 1
            continue
        return i
    return i


# --------------------------------------------------------------------------- one simple command


@dataclass
class Cmd:
    """One simple command as the per-program rules see it."""

    base: str
    """The program's name without its directory."""
    prog: str
    """The program as written (`/usr/bin/ls`, `./x`)."""
    std: bool
    """Named bare or from /bin or /usr/bin."""
    args: list[Word]
    fed: Any
    """What feeds its stdin: None, "pipe" or a tuple (see `_input_kind` in tools/policy/walker.py)."""
    src: str
    """The command's source text, for reasons."""
    via: str = ""
    """"xargs" or "find" when the command's arguments are completed at run time."""

    def texts(self) -> list[str]:
        return [w.text if w.text is not None else w.approx for w in self.args]

    def outside_std_reason(self) -> str:
        return f"{snip(self.src)} runs {self.prog} by a path outside /bin and /usr/bin."


def literal(text: str) -> Word:
    """A word whose value is known."""
    return Word(text, text, text)
