"""Read-only programs for the command policy: `READ_ONLY` maps each program that may be
`allow`ed to a checker of its arguments (grep, rg, find, sort, git ...; sed and awk are in
tools/policy/sed_awk.py), and `read_only_rule` is the rule the walker runs for all of them.

A checker returns the operands the program reads as files (for the secret check) when its
options are provably read-only, or a sentence saying why not. It may also call a.deny for
the destructive forms (sort -o /etc/passwd). The module is over 400 lines because it is the
allow-list, one concern: every checker answers the same question (are these arguments
read-only?) for one program, and each is as long as that program's options demand; git, with
its subcommands, is the longest.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from tools.policy.judge import Judge, ReadOnlyChecker
from tools.policy.paths import HOME, SECRET_ROOTS, critical_target, normalise, secret_in, shown
from tools.policy.sed_awk import read_only_awk, read_only_sed
from tools.policy.words import (
    GLOB_CHARS,
    Cmd,
    Word,
    has_option,
    literal,
    long_match,
    option_values,
    scan_options,
    snip,
)

# Programs whose options are all harmless, so a glob (`*` may expand to `-x`) or arguments
# appended by xargs cannot turn them into writers or executors.
HARMLESS_OPTIONS = frozenset(
    {"ls", "cat", "wc", "grep", "egrep", "fgrep", "head", "du", "df", "stat", "diff", "cmp", "md5sum", "sha1sum",
     "sha224sum", "sha256sum", "sha384sum", "sha512sum", "b2sum", "cksum", "sum", "nl", "tac", "rev", "cut",
     "strings", "od", "hexdump", "column", "comm", "basename", "dirname", "realpath", "readlink", "echo", "printf",
     "which", "zcat", "paste", "fold", "expand", "unexpand", "base64", "base32"}
)  # fmt: skip


# --------------------------------------------------------------------------- checkers


def _ro(
    value_short: str = "",
    value_long: Iterable[str] = (),
    forbid_short: str = "",
    forbid_long: Iterable[str] = (),
    *,
    files: bool = True,
    skip: int = 0,
    why: str = "can write files or run other programs",
) -> ReadOnlyChecker:
    """A checker for a program whose only risky parts are a few named options."""
    longs, forbidden = tuple(value_long), tuple(forbid_long)

    def check(a: Judge, c: Cmd, args: list[str]) -> list[str] | str:
        opts, idx = scan_options(args, value_short, longs)
        bad = has_option(opts, forbid_short, forbidden)
        if bad:
            return f"{snip(c.src)}: `{c.base} {bad}` {why}."
        if c.base == "diff" and has_option(opts, "r", ("--recursive",)):
            problem = _recursive_secret_root(a, c, [args[i] for i in idx])
            if problem:
                return problem
        # Option values are checked too: `wc --files0-from=/etc/shadow` echoes what it reads.
        values = [v for _, v in opts if v]
        return ([args[i] for i in idx[skip:]] if files else []) + values

    return check


def _ro_grep(a: Judge, c: Cmd, args: list[str]) -> list[str] | str:
    opts, idx = scan_options(
        args,
        "efABCmdD",
        ("--regexp", "--file", "--after-context", "--before-context", "--context", "--max-count", "--devices",
         "--directories", "--label", "--include", "--exclude", "--exclude-dir", "--exclude-from", "--binary-files"),
    )  # fmt: skip
    files = _searched_files(opts, idx, args)
    recursive = has_option(
        opts, "rR", ("--recursive", "--dereference-recursive")
    ) or "recurse" in option_values(opts, "d", ("--directories",))
    if recursive:
        problem = _recursive_secret_root(a, c, files)
        if problem:
            return problem
    return files + option_values(opts, "f", ("--file", "--exclude-from"))


def _searched_files(opts: list[tuple[str, str | None]], idx: list[int], args: list[str]) -> list[str]:
    """The operands grep and rg read: all of them when -e or -f gives the pattern, else all but
    the first."""
    pattern_given = has_option(opts, "ef", ("--regexp", "--file"))
    return [args[i] for i in (idx if pattern_given else idx[1:])]


def _recursive_secret_root(a: Judge, c: Cmd, operands: list[str]) -> str | None:
    """A recursive content search of /, the home directory or a parent of the working
    directory reads ~/.ssh, /etc/shadow and the like along the way."""
    for op in operands:
        path = normalise(op, a.cwd)
        if path in SECRET_ROOTS or path == ".." or path.startswith(("../", "/proc/")):
            return f"{snip(c.src)} searches the contents of {shown(path)}, a tree that holds secrets."
    return None


def _ro_rg(a: Judge, c: Cmd, args: list[str]) -> list[str] | str:
    opts, idx = scan_options(
        args,
        "eAfBCgjmMtTErd",
        ("--regexp", "--file", "--glob", "--iglob", "--type", "--type-not", "--max-count", "--max-depth", "--replace",
         "--encoding", "--context", "--after-context", "--before-context", "--threads", "--max-columns", "--type-add",
         "--ignore-file", "--sort", "--sortr", "--colors", "--color", "--path-separator", "--pre-glob", "--engine",
         "--max-filesize", "--context-separator", "--field-match-separator", "--field-context-separator"),
    )  # fmt: skip
    bad = has_option(opts, "", ("--pre", "--hostname-bin"))
    if bad:
        return f"{snip(c.src)}: `rg {bad}` runs another program on every file."
    files = _searched_files(opts, idx, args)
    problem = _recursive_secret_root(a, c, files)
    if problem:
        return problem
    return files + option_values(opts, "f", ("--file", "--ignore-file"))


_FIND_EXEC = frozenset({"-exec", "-execdir", "-ok", "-okdir"})
_FIND_WRITES = frozenset({"-fprint", "-fprint0", "-fprintf", "-fls"})
_FIND_FILTERS = frozenset(
    {"-name", "-iname", "-path", "-ipath", "-wholename", "-iwholename", "-regex", "-iregex", "-newer", "-mtime",
     "-mmin", "-atime", "-amin", "-ctime", "-cmin", "-size", "-user", "-group", "-perm", "-links", "-inum",
     "-samefile", "-empty", "-lname", "-ilname", "-uid", "-gid", "-nouser", "-nogroup", "-used", "-newermt",
     "-newerct", "-newerat", "-newermm"}
)  # fmt: skip
# Programs that delete the file they are given: run by `find -exec` on every file found, they do
# what `find -delete` does. (shred and srm, which wipe files too, are denied by their own rule.)
DELETERS = frozenset({"rm", "unlink", "rmdir"})
# Commands that run the command after them (`sudo rm`, `env X=1 nice -n 5 rm`): what the
# finder hands each file to is that inner command. Options that take a value skip it too.
_WRAPPERS = frozenset({"sudo", "doas", "pkexec", "run0", "env", "nice", "nohup", "ionice", "command", "exec",
                       "stdbuf", "timeout", "chrt", "taskset", "setsid", "time", "busybox"})  # fmt: skip
_WRAPPER_VALUES = frozenset(
    {"-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-U", "-T", "-n", "-c", "-s", "-k"}
)


def find_starts(args: list[str]) -> tuple[list[int], bool]:
    """The indexes of find's starting points in its arguments, and whether a filter (`-name`)
    narrows what it finds."""
    i = 0
    while i < len(args) and (args[i] in ("-H", "-L", "-P", "-D") or args[i].startswith("-O")):
        i += 2 if args[i] == "-D" else 1
    starts: list[int] = []
    while i < len(args) and not (args[i].startswith("-") or args[i] in ("(", "!", ")", ",")):
        starts.append(i)
        i += 1
    return starts, any(t in _FIND_FILTERS for t in args[i:])


def _ro_find(a: Judge, c: Cmd, args: list[str]) -> list[str] | str:
    starts, filtered = find_starts(args)
    start_words = [c.args[k] for k in starts] or [literal(".")]
    i = (starts[-1] + 1) if starts else 0
    reason: str | None = None
    j = i
    while j < len(args):
        t = args[j]
        if t in _FIND_EXEC:
            k = j + 1
            while k < len(args) and args[k] not in (";", "+"):
                k += 1
            _find_exec(a, c, t, c.args[j + 1 : k], start_words, filtered)
            reason = reason or f"{snip(c.src)}: `find {t}` runs another command for each file it finds."
            j = k + 1
            continue
        if t == "-delete":
            find_deletes(a, c, start_words, filtered, "find -delete")
            reason = reason or f"{snip(c.src)}: `find -delete` deletes the files it finds."
        elif t in _FIND_WRITES:
            if j + 1 < len(args):
                a.writes(c, [c.args[j + 1]])
            reason = reason or f"{snip(c.src)}: `find {t}` writes to a file."
        j += 1
    return reason or [w.text or w.approx for w in start_words]


def _find_exec(a: Judge, c: Cmd, action: str, inner: list[Word], starts: list[Word], filtered: bool) -> None:
    """`find -exec CMD ;` and the like run CMD on each file found. CMD is judged as written; a
    deleter (`-exec rm {} +`) deletes what it finds, the act of `find -delete`, and gets its
    verdict."""
    if not inner:
        return
    base = command_base([w.text or w.approx for w in inner])
    if base in DELETERS:
        find_deletes(a, c, starts, filtered, f"find {action} {base}")
    a.judge(inner, None, c.src, "find")


def command_base(words: list[str]) -> str:
    """The program a command line runs once wrappers are peeled: `sudo -u root rm -rf {}` is rm."""
    i = 0
    while i < len(words):
        base = words[i].rsplit("/", 1)[-1]
        if base not in _WRAPPERS:
            return base
        i += 1
        while i < len(words) and (words[i].startswith("-") or "=" in words[i] or words[i][:1].isdigit()):
            i += 2 if words[i] in _WRAPPER_VALUES else 1
    return ""


def find_deletes(a: Judge, c: Cmd, starts: list[Word], filtered: bool, how: str) -> None:
    """Deleting everything found under the starting points: unfiltered, what `rm -rf` of them
    gets; a filter (`-name '*.pyc'`) spares the working and home directories from a deny."""
    for w in starts:
        path = normalise(w.approx, a.cwd)
        critical = critical_target(path)
        if not critical:
            a.writes(c, [w], "deletes files under")
            continue
        if not filtered or path.startswith("/") and not path.startswith(HOME):
            a.deny(f"{snip(c.src)} deletes {critical} (`{how}`).")
            return


def _ro_sort(a: Judge, c: Cmd, args: list[str]) -> list[str] | str:
    longs = ("--key", "--output", "--field-separator", "--temporary-directory", "--buffer-size", "--files0-from",
             "--batch-size", "--parallel", "--random-source", "--compress-program")  # fmt: skip
    opts, idx = scan_options(args, "koStT", longs)
    out = _output_option(a, c, opts)
    if out:
        return out
    if has_option(opts, "", ("--compress-program",)):
        return f"{snip(c.src)}: `sort --compress-program` runs another program."
    return [args[i] for i in idx]


def _output_option(a: Judge, c: Cmd, opts: list[tuple[str, str | None]], what: str = "output") -> str | None:
    """`sort -o FILE` and the like: deny a system path, else the reason to ask."""
    out = option_values(opts, "o", ("--output",))
    if not out:
        return None
    a.writes(c, out)
    return f"{snip(c.src)} writes its {what} to {out[0]} ({c.base} -o)."


def _ro_second_file_output(value_short: str, value_long: Iterable[str] = ()) -> ReadOnlyChecker:
    """A checker for uniq and xxd, which write their output to a second file operand."""
    longs = tuple(value_long)

    def check(a: Judge, c: Cmd, args: list[str]) -> list[str] | str:
        _, idx = scan_options(args, value_short, longs)
        if len(idx) > 1:
            a.writes(c, [c.args[idx[1]]])
            return f"{snip(c.src)} writes its output to {args[idx[1]]} (the second file of {c.base})."
        return [args[i] for i in idx]

    return check


def _ro_tree(a: Judge, c: Cmd, args: list[str]) -> list[str] | str:
    opts, idx = scan_options(
        args, "LPIHTo", ("--charset", "--filelimit", "--timefmt", "--sort", "--hintro", "--houtro")
    )
    out = _output_option(a, c, opts, "listing")
    if out:
        return out
    if has_option(opts, "R"):
        return f"{snip(c.src)}: `tree -R` writes an HTML file into every directory."
    return [args[i] for i in idx]


def _ro_shuf(a: Judge, c: Cmd, args: list[str]) -> list[str] | str:
    opts, idx = scan_options(args, "inoe", ("--input-range", "--head-count", "--output", "--random-source"))
    out = _output_option(a, c, opts)
    if out:
        return out
    if has_option(opts, "e", ("--echo",)):
        return []
    return [args[i] for i in idx]


def _ro_cd(a: Judge, c: Cmd, args: list[str]) -> list[str] | str:
    _, idx = scan_options(args)
    if len(idx) > 1:
        return f"{snip(c.src)} gives cd more than one directory."
    target = args[idx[0]] if idx else "~"
    if target == "-":
        a.cwd = None
        return []
    path = normalise(target, a.cwd)
    a.cwd = path
    secret = secret_in(path)
    if secret:
        return f"{snip(c.src)} enters {secret}, which holds secrets."
    return []


def _ro_hostname(a: Judge, c: Cmd, args: list[str]) -> list[str] | str:
    allowed = {"-f", "-s", "-i", "-I", "-d", "-A", "-a", "--fqdn", "--long", "--short", "--domain", "--ip-address",
               "--all-ip-addresses", "--all-fqdns", "--alias"}  # fmt: skip
    if all(t in allowed for t in args):
        return []
    return f"{snip(c.src)} can change the host name."


def _ro_jq(a: Judge, c: Cmd, args: list[str]) -> list[str] | str:
    files: list[str] = []
    operands: list[str] = []
    from_file = False
    i = 0
    while i < len(args):
        t = args[i]
        if t in ("--arg", "--argjson"):
            i += 3
            continue
        if t in ("--slurpfile", "--rawfile"):
            files.extend(args[i + 2 : i + 3])
            i += 3
            continue
        if t in ("-f", "--from-file"):
            files.extend(args[i + 1 : i + 2])
            from_file = True
            i += 2
            continue
        if t in ("-L", "--indent"):
            i += 2
            continue
        if t in ("--args", "--jsonargs"):
            break
        if not t.startswith("-") or t == "-":
            operands.append(t)
        i += 1
    return files + (operands if from_file else operands[1:])


def _ro_printf(a: Judge, c: Cmd, args: list[str]) -> list[str] | str:
    if args and args[0].startswith("-v"):
        return f"{snip(c.src)}: `printf -v` assigns a shell variable."
    return []


def _ro_test(a: Judge, c: Cmd, args: list[str]) -> list[str] | str:
    # bash evaluates the subscript of `test -v 'a[$(cmd)]'` as arithmetic, running cmd, and a
    # name in the subscript is evaluated recursively from the environment; -R likewise names a
    # variable. An operand with `[` and `$` or a backquote is refused in every position, in case
    # another bash version evaluates it too.
    for t in args:
        if t in ("-v", "-R"):
            return (
                f"{snip(c.src)}: `test {t}` evaluates a variable name, whose subscript bash can run as code."
            )
        if "[" in t and ("$" in t or "`" in t):
            return (
                f"{snip(c.src)} tests an array subscript with an expansion ({t}), which bash can run as code."
            )
    return []


def _ro_date(a: Judge, c: Cmd, args: list[str]) -> list[str] | str:
    # `date 010100002030` (MMDDhhmm[[CC]YY][.ss]) sets the clock like `date -s`: an operand
    # that is not a +FORMAT is a new date.
    # -I takes an optional value, attached only (-Iseconds): cut it off so it is not read as -s.
    args = [t[: t.index("I") + 1] if t[:2] != "--" and t[:1] == "-" and "I" in t else t for t in args]
    opts, idx = scan_options(args, "dfrs", ("--date", "--file", "--reference", "--set", "--rfc-3339"))
    bad = has_option(opts, "s", ("--set",))
    if bad:
        return f"{snip(c.src)}: `date {bad}` sets the system clock."
    for i in idx:
        if not args[i].startswith("+"):
            return f"{snip(c.src)}: `date {args[i]}` sets the system clock (only +FORMAT operands are read-only)."
    return [v for _, v in opts if v]


# --------------------------------------------------------------------------- git


_GIT_READ = frozenset(
    {"status", "log", "diff", "show", "blame", "annotate", "ls-files", "ls-tree", "rev-parse", "shortlog", "describe",
     "rev-list", "merge-base", "show-ref", "cat-file", "grep", "whatchanged", "count-objects", "name-rev", "branch",
     "tag", "remote", "stash", "reflog", "config", "diff-tree", "diff-files", "diff-index", "for-each-ref",
     "show-branch", "check-ignore", "check-attr", "version", "worktree"}
)  # fmt: skip
_GIT_GLOBAL_OK = frozenset({"--no-pager", "-P", "--no-optional-locks", "--literal-pathspecs", "--glob-pathspecs",
                            "--noglob-pathspecs", "--icase-pathspecs", "--no-replace-objects", "--no-advice"})  # fmt: skip
_GIT_FORBIDDEN = ("--output", "--ext-diff", "--textconv", "--open-files-in-pager", "--exec", "--upload-pack",
                  "--receive-pack", "--run", "--edit-description")  # fmt: skip
_GIT_LISTING = ("-l", "--list", "--contains", "--no-contains", "--merged", "--no-merged", "--points-at")
_GIT_BRANCH_OK = frozenset({"-a", "--all", "-r", "--remotes", "-v", "-vv", "--verbose", "--show-current", "-i",
                            "--ignore-case", "--no-color", "--color", "--no-column", "--column", "--no-abbrev",
                            "-n", *_GIT_LISTING})  # fmt: skip


def _ro_git(a: Judge, c: Cmd, args: list[str]) -> list[str] | str:
    i = 0
    while i < len(args) and args[i].startswith("-"):
        if args[i] in ("--version", "--help") and i == len(args) - 1:
            return []
        if args[i] not in _GIT_GLOBAL_OK:
            return f"{snip(c.src)} uses the git option {args[i]}, which can point git at other configuration or code."
        i += 1
    if i >= len(args):
        return f"{snip(c.src)} runs git without a subcommand."
    sub, rest = args[i], args[i + 1 :]
    if sub not in _GIT_READ:
        return _git_change_reason(c, sub, rest)
    for t in rest:
        if t == "--":
            break
        name = t.split("=", 1)[0]
        if name.startswith("--") and long_match(name, _GIT_FORBIDDEN):
            return f"{snip(c.src)}: `git {sub} {name}` can write files or run other programs."
        if sub == "grep" and t.startswith("-O"):
            return f"{snip(c.src)}: `git grep -O` opens files in a pager program."
    problem = _git_subcommand_problem(sub, rest)
    if problem:
        return f"{snip(c.src)} {problem}"
    operands = [t.split(":", 1)[-1] for t in rest if not t.startswith("-")]
    if sub == "diff" and "--no-index" in rest:
        # `git diff --no-index /etc x` compares two directories file by file.
        problem = _recursive_secret_root(a, c, operands)
        if problem:
            return problem
    # `git show HEAD:.env` reads files too, and so do option values (`git blame --contents=.env`).
    values = [t.split("=", 1)[1] for t in rest if t.startswith("-") and "=" in t]
    return operands + values


def _git_subcommand_problem(sub: str, rest: list[str]) -> str | None:
    opts = [t.split("=", 1)[0] for t in rest if t.startswith("-")]
    positionals = [t for t in rest if not t.startswith("-")]
    if sub in ("branch", "tag"):
        allowed = _GIT_BRANCH_OK | {"--sort", "--format", "--points-at"}
        bad = [o for o in opts if o not in allowed and not re.fullmatch(r"-n\d*", o)]
        if bad:
            return f"changes branches or tags (`git {sub} {bad[0]}`)."
        if positionals and not any(o in _GIT_LISTING for o in opts):
            return f"creates a {sub} (`git {sub} {positionals[0]}`)."
        return None
    if sub == "remote":
        if rest and not (set(rest) <= {"-v", "--verbose"} or rest[0] == "get-url"):
            return "changes or contacts remotes (`git remote " + rest[0] + "`)."
        return None
    if sub == "stash" and not (positionals and positionals[0] in ("list", "show")):
        return "changes the stash."
    if sub == "reflog" and positionals and positionals[0] in ("expire", "delete", "drop"):
        return "rewrites the reflog."
    if sub == "worktree" and not (positionals and positionals[0] == "list"):
        return "changes worktrees."
    if sub == "config":
        if any(o == "-f" or long_match(o, ("--file", "--blob")) for o in opts):
            return "reads git configuration from another file (`git config --file`)."
        reads = {"--get", "--get-all", "--get-regexp", "--list", "-l", "--get-urlmatch", "--get-color"}
        writes = {"--add", "--unset", "--unset-all", "--replace-all", "--edit", "-e", "--rename-section",
                  "--remove-section", "set", "unset", "edit", "rename-section", "remove-section"}  # fmt: skip
        if writes & set(rest) or not (
            reads & set(opts) or (positionals and positionals[0] in ("get", "list"))
        ):
            return "changes git configuration."
    return None


def _git_change_reason(c: Cmd, sub: str, rest: list[str]) -> str:
    if sub == "push" and any(t in ("-f", "--force", "--force-with-lease", "--force-if-includes", "--mirror")
                             or t.startswith(("+", "--force")) for t in rest):  # fmt: skip
        return f"{snip(c.src)} force-pushes, rewriting history on the remote."
    if (sub == "reset" and "--hard" in rest) or (
        sub == "clean" and any(t.startswith("-") and "f" in t for t in rest)
    ):
        return f"{snip(c.src)} discards uncommitted work."
    if sub in ("checkout", "restore") and ("--" in rest or "." in rest):
        return f"{snip(c.src)} discards uncommitted changes to files."
    if sub in ("push", "pull", "fetch", "clone", "ls-remote", "submodule"):
        return f"{snip(c.src)} uses the network and changes the repository (`git {sub}`)."
    return f"{snip(c.src)}: `git {sub}` changes the repository or is not known to be read-only."


# --------------------------------------------------------------------------- the table

_ANY = _ro()
_NO_FILES = _ro(files=False)

READ_ONLY: dict[str, ReadOnlyChecker] = {
    "ls": _ro("ITw", ("--hide", "--ignore", "--tabsize", "--width", "--block-size")),
    "cat": _ANY,
    "head": _ro("nc", ("--lines", "--bytes")),
    "tail": _ro(
        "ncs",
        ("--lines", "--bytes", "--sleep-interval", "--pid", "--max-unchanged-stats"),
        "fF",
        ("--follow",),
        why="follows the file and never finishes",
    ),
    "wc": _ANY,
    "grep": _ro_grep,
    "egrep": _ro_grep,
    "fgrep": _ro_grep,
    "rg": _ro_rg,
    "find": _ro_find,
    "stat": _ro("c", ("--format", "--printf")),
    "pwd": _NO_FILES,
    "echo": _NO_FILES,
    "printf": _ro_printf,
    "sort": _ro_sort,
    "uniq": _ro_second_file_output("fsw", ("--skip-fields", "--skip-chars", "--check-chars")),
    "cut": _ro("bcdf", ("--bytes", "--characters", "--delimiter", "--fields", "--output-delimiter")),
    "diff": _ro(
        "CUxXIFWLDS",
        (
            "--context",
            "--unified",
            "--exclude",
            "--exclude-from",
            "--ignore-matching-lines",
            "--show-function-line",
            "--width",
            "--label",
            "--ifdef",
            "--starting-file",
            "--horizon-lines",
            "--tabsize",
        ),
    ),  # fmt: skip
    "du": _ro(
        "dBXt", ("--max-depth", "--block-size", "--exclude-from", "--exclude", "--threshold", "--time-style")
    ),
    "df": _ro("Btx", ("--block-size", "--type", "--exclude-type", "--output")),
    "file": _ro(
        "mfFeP",
        ("--magic-file", "--files-from", "--separator", "--exclude", "--parameter"),
        "C",
        ("--compile",),
        why="writes a compiled magic file",
    ),
    "which": _NO_FILES,
    "tree": _ro_tree,
    "git": _ro_git,
    "sed": read_only_sed,
    "awk": read_only_awk,
    "gawk": read_only_awk,
    "mawk": read_only_awk,
    "nawk": read_only_awk,
    "basename": _NO_FILES,
    "dirname": _NO_FILES,
    "realpath": _NO_FILES,
    "readlink": _NO_FILES,
    "date": _ro_date,
    "true": _NO_FILES,
    "false": _NO_FILES,
    ":": _NO_FILES,
    "test": _ro_test,
    "[": _ro_test,
    "nl": _ro("bdfhilnsvw"),
    "tac": _ro("s", ("--separator",)),
    "rev": _ANY,
    "column": _ro("cstoNWRdEOH"),
    "jq": _ro_jq,
    "md5sum": _ANY,
    "sha1sum": _ANY,
    "sha224sum": _ANY,
    "sha256sum": _ANY,
    "sha384sum": _ANY,
    "sha512sum": _ANY,
    "b2sum": _ANY,
    "cksum": _ANY,
    "sum": _ANY,
    "xxd": _ro_second_file_output("cglosnC"),
    "od": _ro(
        "AjNtSw", ("--address-radix", "--skip-bytes", "--read-bytes", "--format", "--strings", "--width")
    ),
    "hexdump": _ro("efns"),
    "strings": _ro("nteT", ("--bytes", "--radix", "--encoding", "--target")),
    "cmp": _ro("in", ("--ignore-initial", "--bytes")),
    "comm": _ANY,
    "join": _ro("ajoetv12"),
    "paste": _ro("d", ("--delimiters",)),
    "fold": _ro("w", ("--width",)),
    "fmt": _ro("wpg", ("--width", "--prefix", "--goal")),
    "expand": _ro("t", ("--tabs",)),
    "unexpand": _ro("t", ("--tabs",)),
    "tr": _NO_FILES,
    "seq": _NO_FILES,
    "expr": _NO_FILES,
    "base64": _ro("w", ("--wrap",)),
    "base32": _ro("w", ("--wrap",)),
    "zcat": _ANY,
    "bzcat": _ANY,
    "xzcat": _ANY,
    "shuf": _ro_shuf,
    "whoami": _NO_FILES,
    "id": _NO_FILES,
    "groups": _NO_FILES,
    "uname": _NO_FILES,
    "nproc": _NO_FILES,
    "arch": _NO_FILES,
    "uptime": _NO_FILES,
    "logname": _NO_FILES,
    "tty": _NO_FILES,
    "hostname": _ro_hostname,
    "printenv": _NO_FILES,
    "locale": _NO_FILES,
    "free": _NO_FILES,
    "lscpu": _NO_FILES,
    "type": _NO_FILES,
    "whereis": _NO_FILES,
    "cd": _ro_cd,
}


# --------------------------------------------------------------------------- the rule


def read_only_rule(a: Judge, c: Cmd) -> None:
    """The rule of every program in `READ_ONLY`: `allow` (by naming it in `a.programs`) only
    when its checker passes and every word is literal, unglobbed where that matters, and no
    secret."""
    # The checker runs first, on approximate text, so deny rules (sort -o /etc/x) still fire
    # for words that are not literal.
    result = READ_ONLY[c.base](a, c, c.texts())
    if isinstance(result, str):
        a.ask(result)
        return
    for w in c.args:
        if w.text is None:
            a.ask(
                f"{snip(c.src)} has a word expanded at run time ({w.src}), so it cannot be proven read-only."
            )
            return
        if w.brace:
            a.ask(f"{snip(c.src)} uses brace expansion ({w.src}), so its words cannot be proven.")
            return
    if c.base not in HARMLESS_OPTIONS:
        risky = _option_like_glob(c.args)
        if risky:
            a.ask(
                f"{snip(c.src)} passes the glob {risky} to `{c.base}`, and a file named like an option "
                f"could change what it does; write ./{risky} or put -- before it."
            )
            return
    for path in result:
        secret = secret_in(normalise(path, a.cwd))
        if secret:
            a.ask(f"{snip(c.src)} reads {secret}, which holds secrets.")
            return
    if not c.std:
        a.ask(c.outside_std_reason())
        return
    a.programs.append(c.base)


def _option_like_glob(words: Sequence[Word]) -> str | None:
    """A glob that could expand to a file name starting with `-` (before any `--`)."""
    for w in words:
        if w.text == "--":
            return None
        if w.glob and w.text is not None and (w.text[:1] in GLOB_CHARS or w.text.startswith("-")):
            return w.text
    return None
