"""sed and awk for the command policy: a sed script or awk program is read-only only when
a scan of its text finds no command that writes files, reads other files or runs programs.
"""

from __future__ import annotations

import re

from tools.policy.danger import code_danger
from tools.policy.judge import Judge
from tools.policy.words import Cmd, long_match, option_values, scan_options, snip


def read_only_awk(a: Judge, c: Cmd, args: list[str]) -> list[str] | str:
    """The read-only checker for awk: known options only, and a program that passes `_awk_problem`."""
    program: str | None = None
    i = 0
    while i < len(args):
        t = args[i]
        if t == "--":
            i += 1
            break
        if t in ("-F", "-v", "--field-separator", "--assign"):
            i += 2
            continue
        if t.startswith(("-F", "-v", "--field-separator=", "--assign=")):
            i += 1
            continue
        if t in ("-S", "--sandbox", "-b", "--characters-as-bytes", "-P", "--posix", "-c", "--traditional"):
            i += 1
            continue
        if t.startswith("-") and len(t) > 1:
            return f"{snip(c.src)}: the awk option {t} can load code or write files."
        break
    if i >= len(args):
        return f"{snip(c.src)} gives awk no program."
    program, files = args[i], args[i + 1 :]
    if "/inet/" in program:
        a.deny(f"{snip(c.src)} opens a network socket from awk (/inet/), the way awk reverse shells do.")
        return f"{snip(c.src)} opens a network socket from awk."
    problem = _awk_problem(program)
    if problem:
        danger = code_danger(a, program)
        if danger:
            a.deny(f"{snip(c.src)} {danger}")
        return f"{snip(c.src)}: the awk program {problem}, so it is not provably read-only."
    return [f for f in files if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", f)]


_AWK_NOT_OPERAND = frozenset(
    {"print", "printf", "return", "in", "if", "while", "for", "do", "else", "delete", "case", "exit", "next",
     "nextfile", "function", "func", "BEGIN", "END", "BEGINFILE", "ENDFILE"}
)  # fmt: skip


def _awk_problem(prog: str) -> str | None:
    """Why an awk program is not provably read-only: system(), getline, pipes, output
    redirection or gawk directives. Strings, comments and regex literals are skipped."""
    i, n = 0, len(prog)
    depth = 0
    print_depth: int | None = None
    operand = False  # was the previous token a value (so `/` divides rather than starts a regex)?
    while i < n:
        ch = prog[i]
        if ch == '"':
            i += 1
            while i < n and prog[i] != '"':
                i += 2 if prog[i] == "\\" else 1
            i += 1
            operand = True
            continue
        if ch == "#":
            while i < n and prog[i] != "\n":
                i += 1
            continue
        if ch == "\\" and i + 1 < n and prog[i + 1] == "\n":
            i += 2
            continue
        if ch == "/" and not operand:
            i += 1
            bracket = False
            while i < n and (prog[i] != "/" or bracket):
                if prog[i] == "\\":
                    i += 2
                    continue
                if prog[i] == "\n":
                    return "has an unterminated regular expression"
                if prog[i] == "[":
                    bracket = True
                elif prog[i] == "]":
                    bracket = False
                i += 1
            i += 1
            operand = True
            continue
        if ch.isalpha() or ch == "_":
            j = i
            while j < n and (prog[j].isalnum() or prog[j] == "_"):
                j += 1
            ident = prog[i:j]
            i = j
            if ident in ("system", "getline"):
                return f"uses `{ident}`, which can run commands or read other files"
            if ident in ("ARGV", "ARGC"):
                # `BEGIN{ARGV[1]=".env"; ARGC=2}` changes which files awk reads; a plain read of
                # ARGV cannot be told from a write here (split, sub and for-in assign to it too).
                return f"uses `{ident}`, which can change the files it reads"
            if ident == "ENVIRON":
                return f"reads `{ident}`, which exposes the environment and its secrets"
            if ident in ("print", "printf"):
                print_depth = depth
            operand = ident not in _AWK_NOT_OPERAND
            continue
        if ch.isdigit():
            while i < n and (prog[i].isalnum() or prog[i] == "."):
                i += 1
            operand = True
            continue
        if ch == "|":
            if prog[i + 1 : i + 2] == "|":
                i += 2
                operand = False
                continue
            return "pipes to or from a command"
        if ch == ">" and print_depth is not None and depth == print_depth:
            return "redirects its output to a file"
        if ch == "@":
            return "uses a gawk @ directive or an indirect call"
        if ch == "(":
            depth += 1
            operand = False
        elif ch == ")":
            depth -= 1
            operand = True
        elif ch == "]":
            operand = True
        elif ch in ";\n{}":
            print_depth = None
            operand = False
        elif ch == "$":
            operand = False
        elif ch not in " \t\r":
            operand = ch in "+-" and prog[i - 1 : i] == ch  # x++ / 2
        i += 1
    return None


def read_only_sed(a: Judge, c: Cmd, args: list[str]) -> list[str] | str:
    """The read-only checker for sed: no -i, no script file, and scripts that pass `_sed_problem`."""
    opts, idx = scan_options(args, "efl", ("--expression", "--file", "--line-length"))
    scripts = option_values(opts, "e", ("--expression",))
    words = [c.args[i] for i in idx]
    if option_values(opts, "f", ("--file",)):
        return f"{snip(c.src)} reads its sed script from a file."
    if not scripts:
        if not words:
            return f"{snip(c.src)} gives sed no script."
        scripts = [words[0].text or words[0].approx]
        words = words[1:]
    if any(n == "-i" or long_match(n, ("--in-place",)) for n, _ in opts):
        a.writes(c, words, "edits in place")
        return f"{snip(c.src)} edits files in place (sed -i)."
    for script in scripts:
        problem = _sed_problem(script)
        if problem:
            return f"{snip(c.src)}: the sed script {problem}."
    return [w.text or w.approx for w in words]


_SED_SIMPLE = frozenset("pPdDnNgGhHxz=lLFqQ")
_SED_UNSAFE = {"w": "writes a file", "W": "writes a file", "r": "reads another file", "R": "reads another file",
               "e": "runs a command", "v": "is not checked"}  # fmt: skip


def _sed_problem(script: str) -> str | None:
    """Why a sed script is not read-only (w/W/r/R/e commands, s///w and s///e), or None."""
    i, n = 0, len(script)
    while True:
        while i < n and script[i] in " \t\n;":
            i += 1
        if i >= n:
            return None
        i, ok = _sed_address(script, i, False)
        if not ok:
            return "has an address that cannot be parsed"
        while i < n and script[i] in " \t":
            i += 1
        if i < n and script[i] == ",":
            i += 1
            while i < n and script[i] in " \t":
                i += 1
            i, ok = _sed_address(script, i, True)
            if not ok:
                return "has an address that cannot be parsed"
        while i < n and script[i] in " \t!":
            i += 1
        if i >= n:
            return "ends without a command"
        cmd = script[i]
        i += 1
        if cmd in "{}":
            continue
        if cmd == "#":
            while i < n and script[i] != "\n":
                i += 1
            continue
        if cmd in _SED_SIMPLE:
            while i < n and (script[i] in " \t" or script[i].isdigit()) and cmd in "lLqQ":
                i += 1
            continue
        if cmd in ":btT":
            while i < n and script[i] not in ";\n":
                i += 1
            continue
        if cmd in "aic":
            while i < n and script[i] != "\n":
                i += 2 if script[i] == "\\" else 1
            continue
        if cmd in "sy":
            if i >= n or script[i] in "\n\\":
                return f"has an incomplete {cmd} command"
            delim = script[i]
            i += 1
            for _ in range(2):
                while i < n and script[i] != delim:
                    i += 2 if script[i] == "\\" else 1
                if i >= n:
                    return f"has an unterminated {cmd} command"
                i += 1
            if cmd == "s":
                while i < n and script[i] in "gpiImM0123456789":
                    i += 1
                if i < n and script[i] in "ew":
                    return f"uses the s///{script[i]} flag, which {_SED_UNSAFE[script[i]]}"
            continue
        return f"uses the `{cmd}` command, which {_SED_UNSAFE.get(cmd, 'is not checked')}"


def _sed_address(s: str, i: int, second: bool) -> tuple[int, bool]:
    n = len(s)
    if i >= n:
        return i, True
    ch = s[i]
    if ch.isdigit() or (second and ch in "+~"):
        i += 1
        while i < n and (s[i].isdigit() or s[i] == "~"):
            i += 1
        return i, True
    if ch == "$":
        return i + 1, True
    if ch in "/\\":
        if ch == "\\":
            if i + 1 >= n:
                return i, False
            delim, i = s[i + 1], i + 2
        else:
            delim, i = "/", i + 1
        while i < n and s[i] != delim:
            i += 2 if s[i] == "\\" else 1
        if i >= n:
            return i, False
        i += 1
        while i < n and s[i] in "IM":
            i += 1
    return i, True
