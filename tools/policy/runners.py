"""Programs that run other commands or code, for the command policy: wrappers (sudo,
timeout, env, xargs ...), whose inner command is judged in turn, and shells and interpreters
(bash -c, python -c, code piped into them), whose code is checked where it can be.

It is over 400 lines as one concern: each rule here finds the command or the program text
another program will run and hands it back to the `Judge`. The two halves lean on each other:
wrappers that take code as a string (su -c, env -S, flock -c, watch) go through the shells'
`_shell_code`; xargs, the longest rule, reads the pipeline that feeds it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tools.policy.danger import code_danger
from tools.policy.judge import Judge, Rule
from tools.policy.readonly import DELETERS, HARMLESS_OPTIONS, command_base, find_deletes, find_starts
from tools.policy.words import (
    DYN,
    Cmd,
    Word,
    literal,
    long_match,
    option_values,
    scan_options,
    skip_options,
    snip,
)

# --------------------------------------------------------------------------- wrappers


def _run_inner(a: Judge, c: Cmd, start: int, floor: str | None = None) -> None:
    """Judge the command a wrapper runs; the wrapper never makes it safer."""
    if floor:
        a.ask(floor)
    if not c.std:
        a.ask(c.outside_std_reason())
    inner = c.args[start:]
    if not inner:
        a.ask(f"{snip(c.src)}: `{c.base}` is given no command to run.")
        return
    a.judge(inner, c.fed, c.src, c.via)


_SUDO_VALUES = {"sudo": "ugCDhprtUT", "doas": "Cu", "pkexec": "", "run0": "uDg"}
_SUDO_LONG = frozenset({"--user", "--group", "--close-from", "--chdir", "--host", "--prompt", "--role", "--type",
                        "--other-user", "--command-timeout", "--chroot"})  # fmt: skip


def _r_privilege(a: Judge, c: Cmd) -> None:
    a.ask(f"{snip(c.src)} runs a command with other privileges through `{c.base}`.")
    i = skip_options(c.texts(), _SUDO_VALUES.get(c.base, ""), _SUDO_LONG)
    if i < len(c.args):
        a.judge(c.args[i:], c.fed, c.src, c.via)


def _r_su(a: Judge, c: Cmd) -> None:
    a.ask(f"{snip(c.src)} runs a command as another user through `{c.base}`.")
    args = c.args
    for i, w in enumerate(args):
        t = w.text or ""
        clustered = t.startswith("-") and not t.startswith("--") and t.endswith("c")  # su -lc CODE
        if (t in ("--command", "--session-command") or clustered) and i + 1 < len(args):
            _shell_code(a, c, args[i + 1], f"`{c.base} -c`")
        elif t.startswith(("--command=", "--session-command=")):
            code = t.split("=", 1)[1]
            _shell_code(a, c, literal(code), f"`{c.base} -c`")


def _r_timeout(a: Judge, c: Cmd) -> None:
    start = skip_options(c.texts(), "sk", ("--signal", "--kill-after"))
    _run_inner(a, c, start + 1)  # the duration comes first


def _r_nice(a: Judge, c: Cmd) -> None:
    _run_inner(a, c, skip_options(c.texts(), "n", ("--adjustment",)))


def _r_ionice(a: Judge, c: Cmd) -> None:
    texts = c.texts()
    if any(t.startswith("-p") or t == "--pid" for t in texts):
        a.ask(f"{snip(c.src)} changes the I/O priority of running processes.")
        return
    _run_inner(a, c, skip_options(texts, "cnP", ("--class", "--classdata")))


def _r_nohup(a: Judge, c: Cmd) -> None:
    _run_inner(a, c, 0, f"{snip(c.src)} keeps a command running after the shell exits (nohup).")


def _r_time(a: Judge, c: Cmd) -> None:
    texts = c.texts()
    start = skip_options(texts, "fo", ("--format", "--output"))
    opts, _ = scan_options(texts[:start], "fo", ("--format", "--output"))
    out = option_values(opts, "o", ("--output",))
    if out:
        a.writes(c, out)
        a.ask(f"{snip(c.src)} writes timing results to {out[0]}.")
    _run_inner(a, c, start)


def _r_stdbuf(a: Judge, c: Cmd) -> None:
    _run_inner(a, c, skip_options(c.texts(), "ioe", ("--input", "--output", "--error")))


def _r_builtin(a: Judge, c: Cmd) -> None:
    _run_inner(a, c, 0)


def _r_command(a: Judge, c: Cmd) -> None:
    texts = c.texts()
    i = 0
    lookup = False
    while i < len(texts) and texts[i].startswith("-") and len(texts[i]) > 1:
        if texts[i] == "--":
            i += 1
            break
        if not set(texts[i][1:]) <= set("pvV"):
            a.ask(f"{snip(c.src)} uses an option of `command` that is not checked.")
            return
        lookup |= "v" in texts[i] or "V" in texts[i]
        i += 1
    if lookup:
        a.programs.append("command -v")  # only prints where each name is found
        return
    _run_inner(a, c, i)


def _r_env(a: Judge, c: Cmd) -> None:
    texts = c.texts()
    i = 0
    while i < len(texts):
        t, w = texts[i], c.args[i]
        if t == "--":
            i += 1
            break
        if t in ("-i", "--ignore-environment", "-0", "--null", "-", "-v", "--debug"):
            i += 1
        elif t in ("-u", "--unset"):
            i += 2
        elif t.startswith(("--unset=", "-u")):
            i += 1
        elif t.startswith(("-S", "--split-string")):
            code = t.split("=", 1)[1] if t.startswith("--split-string=") else t[2:]
            if not code and i + 1 < len(texts):
                code = texts[i + 1]
                i += 1
            rest = " ".join(texts[i + 1 :])
            a.ask(f"{snip(c.src)} splits a string into a command with `env -S`.")
            _shell_code(a, c, literal(f"{code} {rest}".strip()), "`env -S`")
            return
        elif t.startswith("-"):
            a.ask(f"{snip(c.src)} uses the env option {t}, which is not checked.")
            i += 1
            if t in ("-C", "--chdir"):
                i += 1
        elif "=" in t and not t.startswith("="):
            name, _, value = t.partition("=")
            a.env_assignment(name, literal(value) if w.text is not None else Word(None, DYN, w.src), w.src)
            i += 1
        else:
            break
    if i >= len(texts):
        a.ask(f"{snip(c.src)}: `env` without a command prints the whole environment.")
        return
    _run_inner(a, c, i)


_XARGS_VALUE = "adEILnPs"
_XARGS_LONG = frozenset({"--arg-file", "--delimiter", "--max-lines", "--max-args", "--max-procs", "--max-chars",
                         "--process-slot-var", "--eof", "--replace"})  # fmt: skip


def _r_xargs(a: Judge, c: Cmd) -> None:
    texts = c.texts()
    i = 0
    interactive = arg_file = False
    while i < len(texts):
        t = texts[i]
        if t == "--":
            i += 1
            break
        if not t.startswith("-") or t == "-":
            break
        if t.startswith("--"):
            name = t.split("=", 1)[0]
            interactive |= bool(long_match(name, ("--interactive", "--open-tty")))
            arg_file |= bool(long_match(name, ("--arg-file",)))
            full = long_match(name, _XARGS_LONG)
            i += 2 if ("=" not in t and full and full != "--replace") else 1
            continue
        consumed = False
        for j in range(1, len(t)):
            ch = t[j]
            interactive |= ch in "po"
            arg_file |= ch == "a"
            if ch in _XARGS_VALUE:
                consumed = j == len(t) - 1
                break
            if ch in "eil":  # optional value, attached only
                break
        i += 2 if consumed else 1
    if interactive:
        a.ask(f"{snip(c.src)} makes xargs prompt on the terminal.")
    if not c.std:
        a.ask(c.outside_std_reason())
    inner = c.args[i:] or [literal("echo")]
    a.tags.add("xargs")
    a.judge(inner, None, c.src, "xargs")
    head = inner[0].text or ""
    base = head.rsplit("/", 1)[-1]
    deleter = command_base([w.text or w.approx for w in inner])
    if deleter in DELETERS:
        _deletes_found(a, c, deleter)
    if base not in HARMLESS_OPTIONS:
        a.ask(f"{snip(c.src)}: xargs appends input words to `{base}`, where they could act as options.")
    if base not in _NAMES_ONLY and (arg_file or not _names_from_listing(a, c)):
        # `xargs cat < list`: the file names are data nobody has checked (.env, ~/.ssh/id_rsa).
        a.ask(f"{snip(c.src)}: `{base}` reads files whose names xargs takes from data that is not checked.")


def _deletes_found(a: Judge, c: Cmd, base: str) -> None:
    """`find / | xargs rm -rf` deletes what find lists: the verdict of `find / -delete`."""
    first = a.first_stage if c.fed == "pipe" else None
    if not first or (first[0].text or "").rsplit("/", 1)[-1] != "find":
        return
    args = first[1:]
    starts, filtered = find_starts([w.text or w.approx for w in args])
    find_deletes(a, c, [args[k] for k in starts] or [literal(".")], filtered, f"find | xargs {base}")


# Programs that look at file names or metadata, never contents, so any name is harmless.
_NAMES_ONLY = frozenset({"echo", "printf", "basename", "dirname", "realpath", "readlink", "ls", "stat", "du",
                         "which", "true", "false", "test", "[", "seq", "expr"})  # fmt: skip
# Programs that print file names (or literal words, checked as tokens) rather than file contents.
_LISTERS = frozenset({"find", "ls", "echo", "printf", "fd", "fdfind", "locate"})
_GIT_LISTING = frozenset({"ls-files", "ls-tree", "diff", "status", "grep"})
# Filters that pass the names on: fine between a lister and xargs, reading only their input.
_FILTERS = frozenset({"sort", "uniq", "head", "tail", "grep", "egrep", "fgrep", "sed", "awk", "tr", "rev",
                      "tac", "shuf"})  # fmt: skip
_SCRIPTED = frozenset({"grep", "egrep", "fgrep", "sed", "awk"})


def _names_from_listing(a: Judge, c: Cmd) -> bool:
    """Whether xargs reads its words from a pipeline that lists file names (`find . | sort |
    xargs grep x`) rather than from a file, a heredoc or the contents of files."""
    if c.fed != "pipe" or not a.upstream or a.upstream[0] is None:
        return False
    first = a.upstream[0]
    base = first[0].rsplit("/", 1)[-1]
    listing = (
        base in _LISTERS
        or (base == "git" and len(first) > 1 and first[1] in _GIT_LISTING)
        or (base in ("grep", "egrep", "fgrep", "rg") and _lists_names(first[1:]))
    )
    if not listing:
        return False
    # Filters in between must read only their input: an operand could be a file of names.
    return all(_reads_only_input(stage) for stage in a.upstream[1:])


def _reads_only_input(stage: list[str] | None) -> bool:
    """A filter given no file operand: numbers (head -n 5) and the pattern of grep, sed or awk
    are the only words allowed besides options."""
    if stage is None:
        return False
    base = stage[0].rsplit("/", 1)[-1]
    if base not in _FILTERS:
        return False
    if base == "tr":
        return True
    words = [t for t in stage[1:] if not t.startswith("-") and not t.isdigit()]
    script_in_option = any(
        t.startswith(("-e", "-f", "--regexp", "--expression", "--file")) for t in stage[1:]
    )
    return not words or (len(words) == 1 and base in _SCRIPTED and not script_in_option)


def _lists_names(args: list[str]) -> bool:
    return any(
        t in ("--files", "--files-with-matches", "--files-without-match", "--count")
        or (t.startswith("-") and not t.startswith("--") and ("l" in t or "L" in t))
        for t in args
    )


def _r_busybox(a: Judge, c: Cmd) -> None:
    _run_inner(a, c, 0, f"{snip(c.src)} runs a {c.base} applet.")


def _r_session(a: Judge, c: Cmd) -> None:
    # setsid, unbuffer, strace, ltrace, chroot, flock: run another command in a changed setting.
    texts = c.texts()
    floor = f"{snip(c.src)} runs a command under `{c.base}`."
    if c.base in ("flock",):
        for i, t in enumerate(texts):
            if t in ("-c", "--command") and i + 1 < len(c.args):
                a.ask(floor)
                _shell_code(a, c, c.args[i + 1], "`flock -c`")
                return
    start = skip_options(texts, {"strace": "eopsuEPIXaSOb", "ltrace": "eopsuEnaAlL"}.get(c.base, ""))
    if c.base in ("chroot", "flock"):
        start += 1
    _run_inner(a, c, start, floor)


def _r_watch(a: Judge, c: Cmd) -> None:
    texts = c.texts()
    start = skip_options(texts, "nq", ("--interval",))
    a.ask(f"{snip(c.src)} runs a command repeatedly with `watch`.")
    if start < len(texts):
        if any(t in ("-x", "--exec") for t in texts[:start]):
            a.judge(c.args[start:], None, c.src)
        else:
            _shell_code(a, c, literal(" ".join(texts[start:])), "`watch`")


def _r_coproc(a: Judge, c: Cmd) -> None:
    _run_inner(a, c, 0, f"{snip(c.src)} starts a coprocess that runs in the background.")


def _r_exec(a: Judge, c: Cmd) -> None:
    a.deny(
        f"{snip(c.src)}: `exec` replaces the shell or rewires its file descriptors, which cannot be checked."
    )


def _r_eval(a: Judge, c: Cmd) -> None:
    a.deny(f"{snip(c.src)}: `eval` runs a string as shell code, which cannot be checked before it runs.")


def _r_source(a: Judge, c: Cmd) -> None:
    if not c.args:
        a.ask(f"{snip(c.src)}: `{c.base}` is given no file.")
        return
    w = c.args[0]
    if w.subst:
        a.deny(f"{snip(c.src)} sources shell code produced by another command ({w.src}).")
    elif w.text is None:
        a.ask(f"{snip(c.src)} sources a file named by an expansion ({w.src}).")
    elif w.text.startswith(("/dev/", "/proc/")):
        a.deny(f"{snip(c.src)} sources shell code from {w.text}, text that was never checked.")
    else:
        a.ask(f"{snip(c.src)} runs the commands in {w.src} inside this shell.")


# --------------------------------------------------------------------------- shells and interpreters

_SHELLS = frozenset(
    {"sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "fish", "csh", "tcsh", "rbash", "yash", "posh"}
)
_PLAIN_SHELLS = frozenset({"sh", "bash", "dash"})  # no startup files for `-c`
# The words that end the options of a shell or interpreter: does the program come from stdin?
_END_OF_OPTIONS = {"-": True, "--": False}
INTERPRETER_RE = re.compile(
    r"^(?:python[0-9.]*|pypy[0-9.]*|perl[0-9.]*|ruby[0-9.]*|irb|node|nodejs|deno|bun|php[0-9.]*|lua[0-9.]*|luajit"
    r"|tclsh[0-9.]*|wish|Rscript|R|pwsh|powershell|osascript|expect|jshell|guile|racket|sbcl|julia)$"
)


def _shell_code(a: Judge, c: Cmd, word: Word, where: str) -> None:
    """Judge code handed to an inner shell as a string (`bash -c CODE`)."""
    if word.subst:
        a.deny(f"{snip(c.src)} runs shell code produced by another command ({snip(word.src, 40)}).")
        return
    if word.text is None:
        a.ask(f"{snip(c.src)} runs shell code built from expansions ({snip(word.src, 40)}).")
        reason = a.sub_deny_only(word.approx.replace(DYN, "$V"))
        if reason:
            a.deny(f"{where} runs code that is denied: {reason}")
        return
    a.sub(word.text, where)


def _run_program(a: Judge, c: Cmd, operands: list[Word], from_stdin: bool, *, is_shell: bool) -> None:
    """A shell or interpreter given no inline code runs a script file or reads its program
    from stdin."""
    if from_stdin or not operands:
        _fed_code(a, c, is_shell)
        return
    script = operands[0]
    if script.subst:
        a.deny(f"{snip(c.src)} runs a script produced by another command ({script.src}).")
    elif script.text in ("/dev/stdin", "/dev/fd/0", "/proc/self/fd/0") and c.fed:
        a.deny(f"{snip(a.pipeline or c.src)} pipes text into {c.base}, which runs it as code.")
    else:
        a.ask(f"{snip(c.src)} runs the script {script.src} with {c.base}.")


def _fed_code(a: Judge, c: Cmd, is_shell: bool) -> None:
    """A shell or interpreter that reads its program from stdin: deny when another command
    feeds it, check the text of heredocs."""
    fed, lang = c.fed, c.base
    if fed is not None or a.pipeline:
        a.tags.add("shell_stdin")  # a shell wired to other commands, as reverse shells are
    if fed == "pipe":
        a.deny(f"{snip(a.pipeline or c.src)} pipes text into {lang}, which runs it as code.")
    elif isinstance(fed, tuple) and fed[0] == "text":
        if fed[2]:
            a.deny(f"{snip(c.src)} feeds {lang} code produced by another command.")
            return
        a.ask(f"{snip(c.src)} feeds {lang} a script on standard input.")
        if fed[1] is not None:
            if is_shell:
                a.sub(fed[1], f"The script fed to `{c.base}`")
            else:
                _inline_code(a, c, literal(fed[1]))
    elif isinstance(fed, tuple) and fed[0] == "file":
        a.ask(f"{snip(c.src)} runs the script read from {fed[1] or 'a file'} with {lang}.")
    elif c.via == "xargs":
        a.ask(f"{snip(c.src)} runs {lang} on file names read from input.")
    else:
        a.ask(f"{snip(c.src)} starts an interactive {lang}.")


def _r_shell(a: Judge, c: Cmd) -> None:
    texts = c.texts()
    has_c = read_stdin = interactive = False
    risky: list[str] = []
    i = 0
    while i < len(texts):
        t = texts[i]
        if t in _END_OF_OPTIONS:
            read_stdin |= _END_OF_OPTIONS[t]
            i += 1
            break
        if t.startswith("--"):
            if t in ("--rcfile", "--init-file"):
                i += 1
            if t not in ("--norc", "--noprofile", "--posix", "--noediting"):
                risky.append(t)
            i += 1
            continue
        if t[:1] in "-+" and len(t) > 1:
            take = 0
            for ch in t[1:]:
                if ch == "c":
                    has_c = True
                elif ch == "s":
                    read_stdin = True
                elif ch == "i":
                    interactive = True
                elif ch in "oO":
                    take += 1
                elif ch not in "eEuxvnfhaBbCHkmPTr":
                    risky.append(t)
            i += 1 + take
            continue
        break
    operands = c.args[i:]
    name = c.base
    if has_c:
        if not operands:
            if c.via == "xargs":
                a.deny(f"{snip(c.src)} runs text read from input as {name} code.")
            else:
                a.ask(f"{snip(c.src)}: `{name} -c` is given no code.")
            return
        if interactive or risky or name not in _PLAIN_SHELLS or not c.std:
            a.ask(f"{snip(c.src)} starts {name} with options or startup files that are not checked.")
        if c.via:
            a.ask(
                f"{snip(c.src)} runs a shell for each input item, which can splice the input into the code."
            )
        _shell_code(a, c, operands[0], f"`{name} -c`")
        return
    _run_program(a, c, operands, read_stdin, is_shell=True)


@dataclass(frozen=True)
class _Lang:
    code: str  # short flags whose value is program text
    values: str  # other short flags that take a value
    long_code: tuple[str, ...] = ()
    long_values: tuple[str, ...] = ()


_LANGS = {
    "python": _Lang("c", "WXQ"),
    "pypy": _Lang("c", "WXQ"),
    "perl": _Lang("eE", ""),
    "ruby": _Lang("e", "rICEFx"),
    "irb": _Lang("", "rI"),
    "node": _Lang("ep", "rC", ("--eval", "--print"), ("--require", "--import", "--loader", "--conditions")),
    "nodejs": _Lang("ep", "rC", ("--eval", "--print"), ("--require", "--import", "--loader")),
    "deno": _Lang("", ""),
    "bun": _Lang("e", "r", ("--eval", "--print")),
    "php": _Lang("rBRE", "cdfzt"),
    "lua": _Lang("e", "l"),
    "luajit": _Lang("e", "lbj"),
    "Rscript": _Lang("e", ""),
    "R": _Lang("e", ""),
    "expect": _Lang("c", "f"),
    "osascript": _Lang("e", "l"),
    "guile": _Lang("c", "lLe"),
    "julia": _Lang("eE", "LJ"),
    "pwsh": _Lang("c", "f", ("-Command", "-command", "-EncodedCommand")),
    "powershell": _Lang("c", "f", ("-Command", "-command", "-EncodedCommand")),
}


def _lang_of(base: str) -> tuple[str, _Lang]:
    family = re.sub(r"[0-9.]+$", "", base)
    return family, _LANGS.get(family, _Lang("ce", ""))


def interpreter_rule(a: Judge, c: Cmd) -> None:
    family, lang = _lang_of(c.base)
    texts = c.texts()
    if len(texts) == 1 and (
        texts[0] == "--version" or (family in ("python", "pypy") and texts[0] in ("-V", "-VV"))
    ):
        if c.std:
            a.programs.append(c.base)
        else:
            a.ask(c.outside_std_reason())
        return
    codes: list[Word] = []
    module = inplace = stdin_script = False
    i = 0
    while i < len(texts):
        t = texts[i]
        if t in _END_OF_OPTIONS:
            stdin_script |= _END_OF_OPTIONS[t]
            i += 1
            break
        if t.startswith("--") or (family in ("pwsh", "powershell") and t.startswith("-") and len(t) > 2):
            name, eq, val = t.partition("=")
            if name in lang.long_code:
                if eq:
                    codes.append(literal(val) if c.args[i].text is not None else c.args[i])
                elif i + 1 < len(texts):
                    codes.append(c.args[i + 1])
                    i += 1
            elif name in lang.long_values and not eq:
                i += 1
            i += 1
            continue
        if t.startswith("-") and len(t) > 1:
            for j in range(1, len(t)):
                ch = t[j]
                if ch in lang.code:
                    rest = t[j + 1 :]
                    if rest:
                        codes.append(literal(rest) if c.args[i].text is not None else c.args[i])
                    elif i + 1 < len(texts):
                        codes.append(c.args[i + 1])
                        i += 1
                    break
                if ch in lang.values:
                    if j == len(t) - 1:
                        i += 1
                    break
                if family in ("python", "pypy") and ch == "m":
                    module = True
                    break
                if family == "perl" and ch == "i":
                    inplace = True
                    break
            i += 1
            if module or (codes and family in ("python", "pypy")):
                break
            continue
        break
    operands = c.args[i:]
    if codes:
        a.ask(f"{snip(c.src)} runs inline code with `{c.base}`.")
        for w in codes:
            _inline_code(a, c, w)
        if inplace:
            a.writes(c, operands, "edits in place")
        return
    if module:
        a.ask(f"{snip(c.src)} runs a {family} module.")
        return
    _run_program(a, c, operands, stdin_script, is_shell=False)


def _inline_code(a: Judge, c: Cmd, word: Word) -> None:
    if word.subst:
        a.deny(f"{snip(c.src)} runs code produced by another command ({snip(word.src, 40)}).")
        return
    code = word.text if word.text is not None else word.approx.replace(DYN, "$V")
    reason = code_danger(a, code)
    if reason:
        a.deny(f"{snip(c.src)} {reason}")


RULES: dict[str, Rule] = {
    **{name: _r_privilege for name in ("sudo", "doas", "pkexec", "run0")},
    **{name: _r_su for name in ("su", "runuser")},
    "timeout": _r_timeout,
    "nice": _r_nice,
    "ionice": _r_ionice,
    "nohup": _r_nohup,
    "time": _r_time,
    "stdbuf": _r_stdbuf,
    "builtin": _r_builtin,
    "command": _r_command,
    "env": _r_env,
    "xargs": _r_xargs,
    **{name: _r_busybox for name in ("busybox", "toybox")},
    **{name: _r_session for name in ("setsid", "unbuffer", "strace", "ltrace", "chroot", "flock")},
    "watch": _r_watch,
    "exec": _r_exec,
    "coproc": _r_coproc,
    "eval": _r_eval,
    "source": _r_source,
    ".": _r_source,
    **{name: _r_shell for name in _SHELLS},
}
