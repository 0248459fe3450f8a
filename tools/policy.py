"""The shell command policy: `allow` what is provably read-only, `deny` what is destructive
however it is spelled, `ask` for everything else.

Modelled on Codex CLI's is_safe_command / command_safety. The command is parsed with
tree-sitter-bash, never matched as text, so quoting tricks (r''m, "rm", \\rm, $'\\x72m')
resolve to the word bash would actually run. The policy fails closed: a parse error, a
construct it does not know or a program it cannot prove read-only is at least `ask`.
Commands nested in `$( )`, `bash -c`, `xargs`, `find -exec`, `sudo`, `timeout`, `env` ... are
judged too, and the strictest verdict wins.

Layout: verdict and entry point; parsing; words (quote removal); paths (system, dotfile,
secret, critical); the tree walker `_Analyzer`; the per-program rules it dispatches to.
"""

from __future__ import annotations

import fnmatch
import posixpath
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

Decision = Literal["allow", "ask", "deny"]

_MAX_CHARS = 20_000
_MAX_DEPTH = 5


@dataclass(frozen=True)
class Verdict:
    """The policy's answer for one command: `decision` and one sentence saying why."""

    decision: Decision
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"decision": self.decision, "reason": self.reason}


def check_command(command: str, *, allow_network: bool = False) -> Verdict:
    """Judge a bash command line: `allow` only when every part is provably read-only,
    `deny` for destructive or hijacking commands, `ask` for everything else.

    `allow_network` only changes the wording: network commands are `ask` either way.
    """
    return _Analyzer(allow_network, depth=0, cwd="").run(command)


# --------------------------------------------------------------------------- parsing

_parser_lock = threading.Lock()
_parser_box: list[Any] = []


def _parse(source: bytes) -> Any:
    # One parser per process, made on first use; tree-sitter parsers are not thread-safe.
    with _parser_lock:
        if not _parser_box:
            import tree_sitter
            import tree_sitter_bash

            _parser_box.append(tree_sitter.Parser(tree_sitter.Language(tree_sitter_bash.language())))
        return _parser_box[0].parse(source)


def _text(node: Any) -> str:
    return node.text.decode("utf-8", errors="replace")


def _snip(text: str, limit: int = 70) -> str:
    flat = " ".join(text.split())
    if len(flat) > limit:
        flat = flat[: limit - 1] + "…"
    return f"`{flat}`"


# --------------------------------------------------------------------------- words

_DYN = "\x00"  # stands for the unknown value of an expansion in approximate text
_GLOB_CHARS = frozenset("*?[")
_BRACE_RE = re.compile(r"\{[^{}\s]*(?:,|\.\.)[^{}\s]*\}")


@dataclass(frozen=True)
class Word:
    """One shell word after quote removal.

    `text` is its exact value, or None when it depends on an expansion. `approx` is a best
    effort for deny checks: static parts kept, $HOME as ~, other expansions as _DYN.
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


def _word(node: Any) -> Word:
    parts: list[tuple[str | None, str]] = []  # (exact, approx) of each piece
    flags = {"glob": False, "subst": False}
    skeleton: list[str] = []  # the unquoted text, to spot brace expansion across pieces
    _word_parts(node, parts, flags, skeleton)
    exact: str | None = "".join(p[0] for p in parts) if all(p[0] is not None for p in parts) else None
    approx = "".join(p[1] for p in parts)
    brace = "{" in "".join(skeleton) and bool(_BRACE_RE.search("".join(skeleton)))
    return Word(exact, approx, _text(node), flags["glob"], brace, flags["subst"])


def _word_parts(node: Any, parts: list, flags: dict, skeleton: list[str]) -> None:
    t = node.type
    if t == "word" or t == "number" or (t == "extglob_pattern"):
        raw = _text(node)
        value, glob = _unescape_unquoted(raw)
        flags["glob"] |= glob
        parts.append((value, value))
        skeleton.append(re.sub(r"\\.", "E", raw))
    elif t == "concatenation":
        for child in node.children:
            _word_parts(child, parts, flags, skeleton)
    elif t == "raw_string":
        raw = _text(node)[1:-1]
        parts.append((raw, raw))
        skeleton.append("Q")
    elif t == "ansi_c_string":
        value = _ansi_c(_text(node)[2:-1])
        parts.append((value, value))
        skeleton.append("Q")
    elif t in ("string", "translated_string"):
        skeleton.append("Q")
        for child in node.children:
            ct = child.type
            if ct == '"' or ct == '$"':
                continue
            if ct == "string_content":
                value = _unescape_double(_text(child))
                parts.append((value, value))
            elif not child.is_named:
                parts.append((_text(child), _text(child)))
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
        skeleton.append(_text(node))
        parts.append((_text(node), _text(node)))
    elif t == "command_name":
        for child in node.children:
            _word_parts(child, parts, flags, skeleton)
    else:
        # Anything else in a word position is treated as an unknown run-time value.
        skeleton.append("$")
        parts.append((None, _DYN))


def _expansion_part(node: Any, parts: list, flags: dict) -> None:
    t = node.type
    if t in ("command_substitution", "process_substitution"):
        flags["subst"] = True
        parts.append((None, _DYN))
        return
    if t in ("simple_expansion", "expansion"):
        names = [c for c in node.named_children if c.type in ("variable_name", "special_variable_name")]
        plain = len(node.named_children) == 1 and names
        if plain and _text(names[0]) in _HOME_VARS:
            parts.append((None, "~"))
            return
        if b"$(" in node.text or b"`" in node.text:
            flags["subst"] = True
    parts.append((None, _DYN))


def _unescape_unquoted(raw: str) -> tuple[str, bool]:
    if "\\" not in raw:
        return raw, any(c in _GLOB_CHARS for c in raw)
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
        glob |= c in _GLOB_CHARS
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


# --------------------------------------------------------------------------- paths

_HOME = "/~"  # the home directory in normalised paths, whoever's it is
_HOME_PREFIX_RE = re.compile(r"^(?:/root|/home/[^/]+)(?=/|$)")
_SYSTEM_DIRS = (
    "/etc",
    "/boot",
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/var",
    "/sys",
    "/proc",
)
_TOP_DIRS = frozenset(
    d[1:]
    for d in (
        *_SYSTEM_DIRS,
        "/home",
        "/root",
        "/opt",
        "/srv",
        "/mnt",
        "/media",
        "/dev",
        "/run",
        "/snap",
        "/tmp",
    )
)
_DISK_RE = re.compile(r"^/dev/(?:sd|hd|vd|xvd|nvme|mmcblk|md|dm-|sr|loop|disk/|mapper/|mem$|kmem$|port$)")
_HARMLESS_DEVICES = frozenset(
    {
        "/dev/null",
        "/dev/stdout",
        "/dev/stderr",
        "/dev/tty",
        "/dev/fd/1",
        "/dev/fd/2",
        "/proc/self/fd/1",
        "/proc/self/fd/2",
    }
)


def _normalise(path: str, cwd: str | None) -> str:
    """An absolute or cwd-relative normalised path; every home directory becomes /~."""
    if path.startswith(_DYN):
        return path  # `$DIR/` must stay distinguishable from `$DIR`
    if path.startswith("~"):
        slash = path.find("/")
        path = _HOME + (path[slash:] if slash >= 0 else "")
    elif path.startswith("/"):
        path = _HOME_PREFIX_RE.sub(_HOME, path, count=1)
    elif cwd:
        path = posixpath.join(cwd, path)
    norm = posixpath.normpath(path) if path else "."
    if norm.startswith("//"):
        norm = "/" + norm.lstrip("/")
    return norm


def _top_component_matches(path: str, names: Iterable[str]) -> str | None:
    """For an absolute path whose first component is a glob, the top directory it can hit."""
    first = path[1:].split("/", 1)[0]
    if not any(c in _GLOB_CHARS for c in first):
        return None
    for name in names:
        if fnmatch.fnmatchcase(name, first):
            return "/" + name
    return None


def _system_area(path: str) -> str | None:
    """The protected system directory a normalised path lies in, if any."""
    if path == "/":
        return "/"
    if _DISK_RE.match(path):
        return path
    for d in _SYSTEM_DIRS:
        if path == d or path.startswith(d + "/"):
            if path == "/var/tmp" or path.startswith("/var/tmp/"):
                return None
            return d
    if path.startswith("/"):
        return _top_component_matches(path, (d[1:] for d in _SYSTEM_DIRS))
    return None


def _write_problem(path: str) -> str | None:
    """Why writing to this normalised path is denied, or None."""
    if path in _HARMLESS_DEVICES:
        return None
    if _DISK_RE.match(path):
        return f"{path} is a disk or memory device"
    area = _system_area(path)
    if area == "/":
        return "/ is the root of the filesystem"
    if area:
        return f"{area} is a system directory"
    if path.startswith(_HOME + "/"):
        first = path[len(_HOME) + 1 :].split("/", 1)[0]
        if first.startswith("."):
            return f"~/{first} is a dotfile in the home directory (shell startup, ssh keys, config)"
    return None


def _critical_target(path: str) -> str | None:
    """What a recursive delete (or chmod -R) of this normalised path would wipe, if critical."""
    if path.startswith(_DYN):
        rest = path[1:]
        return (
            "whatever the variable holds, from the root (it could be empty)" if rest in ("/", "/*") else None
        )
    if path in ("/", "/*", "/.*"):
        return "the root filesystem"
    if path in (_HOME, _HOME + "/*", _HOME + "/.*", "/home", "/home/*"):
        return "the home directory"
    if path in (".", "*", ".*", "./*"):
        return "the whole working directory"
    parts = path.split("/")
    if all(p in ("..", "*", ".*") for p in parts):
        return "a parent of the working directory"
    if path.startswith("/") and len(parts) <= 3 and parts[-1] in ("*", ".*", ""):
        path = "/".join(parts[:-1]) or "/"
    if path.startswith("/") and path.count("/") == 1:
        top = path[1:]
        if top in _TOP_DIRS:
            return path
        hit = _top_component_matches(path, _TOP_DIRS)
        if hit:
            return f"{hit} (matched by {path})"
    area = _system_area(path)
    if area and area != "/":
        return f"{path} under the system directory {area}"
    return None


_SECRET_NAMES = frozenset(
    {
        ".ssh", ".gnupg", ".aws", ".azure", ".kube", ".docker", ".password-store", ".netrc", ".pgpass",
        ".git-credentials", ".npmrc", ".pypirc", ".vault-token", ".bash_history", ".zsh_history",
        ".python_history", ".psql_history", ".mysql_history", ".env", ".envrc", "id_rsa", "id_dsa",
        "id_ecdsa", "id_ed25519", "credentials", "credentials.json", ".htpasswd", "shadow", "gshadow",
    }
)  # fmt: skip
_SECRET_GLOBS = (
    ".env.*",
    "id_rsa*",
    "id_dsa*",
    "id_ecdsa*",
    "id_ed25519*",
    "*.pem",
    "*.key",
    "*.p12",
    "*.pfx",
    "*.kdbx",
)
_SECRET_SUBPATHS = (
    ".config/gh/",
    ".config/gcloud/",
    ".config/hub",
    ".local/share/keyrings",
    ".docker/config.json",
)
_SECRET_TEMPLATE_RE = re.compile(
    r"\.env\.(?:example|sample|template|dist|defaults)\b"
)  # checked-in templates
_SECRET_PATHS = (
    "/etc/shadow",
    "/etc/gshadow",
    "/etc/sudoers",
    "/etc/shadow-",
    "/proc/self/environ",
    "/proc/1/environ",
)
_SECRET_PATH_GLOBS = (
    "/etc/sudoers.d/*",
    "/etc/ssh/ssh_host_*key",
    "/proc/*/environ",
    "/proc/*/mem",
    "/proc/kcore",
)
_SECRET_HINT = re.compile(r"ssh|gnupg|aws|azure|kube|docker|password|netrc|pgpass|credential|npmrc|pypirc|vault|history|env|id_|htpasswd|shadow|sudoers|environ|/mem|kcore|\.pem|\.key|\.p12|\.pfx|\.kdbx|\.config/|/dev/|keyrings|[*?\[]")  # fmt: skip


def _shown(path: str) -> str:
    """A normalised path as the user would write it (/~ back to ~)."""
    return "~" + path[len(_HOME) :] if path == _HOME or path.startswith(_HOME + "/") else path


def _secret(path: str) -> str | None:
    """Names an obvious secret a normalised path points at (or a glob in it could match)."""
    if not _SECRET_HINT.search(path):
        return None
    parts = path.split("/")
    for k, comp in enumerate(parts):
        if not comp:
            continue
        hit = False
        if any(c in _GLOB_CHARS for c in comp):
            if not comp.strip("*?[]"):
                continue  # a bare `*` is not aimed at anything in particular
            hit = any(
                (comp.startswith(".") or not name.startswith(".")) and fnmatch.fnmatchcase(name, comp)
                for name in _SECRET_NAMES
            )
        elif comp in _SECRET_NAMES or (
            any(fnmatch.fnmatchcase(comp, g) for g in _SECRET_GLOBS) and not _SECRET_TEMPLATE_RE.match(comp)
        ):
            # /etc/shadow, also as /proc/1/root/etc/shadow; a file merely named shadow is fine.
            hit = comp not in ("shadow", "gshadow") or (k > 0 and parts[k - 1] == "etc")
        elif comp.startswith(("shadow", "gshadow")) and k > 0 and parts[k - 1] == "etc":
            hit = True
        if hit:
            return _shown("/".join(parts[: k + 1]))
    if any(sub in path for sub in _SECRET_SUBPATHS):
        return _shown(path)
    if path.startswith("/"):
        if _DISK_RE.match(path):
            return f"the raw device {path}"
        if any(fnmatch.fnmatchcase(path, g) for g in _SECRET_PATH_GLOBS):
            return path
        if any(c in _GLOB_CHARS for c in path) and any(fnmatch.fnmatchcase(s, path) for s in _SECRET_PATHS):
            return path
    return None


# --------------------------------------------------------------------------- options


def _scan(
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
            if not eq and name in long_values and i + 1 < len(args):
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


def _long_match(name: str, forbidden: Iterable[str]) -> str | None:
    """GNU getopt accepts unambiguous prefixes (`--out` for `--output`): match them too."""
    if not name.startswith("--") or len(name) < 4:
        return None
    for f in forbidden:
        if f.startswith(name) or name.startswith(f):
            return f
    return None


def _has(opts: Sequence[tuple[str, str | None]], short: str = "", long: Iterable[str] = ()) -> str | None:
    longs = tuple(long)
    for name, _ in opts:
        if len(name) == 2 and name[1] in short:
            return name
        if longs and _long_match(name, longs):
            return name
    return None


# --------------------------------------------------------------------------- program tables

_SHELLS = frozenset(
    {"sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "fish", "csh", "tcsh", "rbash", "yash", "posh"}
)
_PLAIN_SHELLS = frozenset({"sh", "bash", "dash"})  # no startup files for `-c`
_INTERPRETER_RE = re.compile(
    r"^(?:python[0-9.]*|pypy[0-9.]*|perl[0-9.]*|ruby[0-9.]*|irb|node|nodejs|deno|bun|php[0-9.]*|lua[0-9.]*|luajit"
    r"|tclsh[0-9.]*|wish|Rscript|R|pwsh|powershell|osascript|expect|jshell|guile|racket|sbcl|julia)$"
)
_NETWORK = frozenset(
    {"curl", "wget", "nc", "ncat", "netcat", "socat", "telnet", "ssh", "scp", "sftp", "ftp", "tftp", "lftp", "aria2c",
     "http", "https", "xh", "httpie", "smbclient", "rsync", "nmap", "openssl", "whois", "dig", "nslookup", "host",
     "ping", "traceroute", "git-remote", "ssh-copy-id", "sshpass", "ab", "finger", "mosh"}
)  # fmt: skip
_DISK_DESTROYERS = frozenset(
    {"fdisk", "sfdisk", "cfdisk", "gdisk", "sgdisk", "parted", "wipefs", "shred", "mkswap", "blkdiscard", "mke2fs",
     "srm"}
)  # fmt: skip
_POWER = frozenset({"shutdown", "reboot", "halt", "poweroff"})
_HISTORY_VARS = frozenset({"HISTFILE", "HISTSIZE", "HISTFILESIZE", "HISTCONTROL", "HISTIGNORE"})
_SAFE_ENV = frozenset(
    {"LANG", "LANGUAGE", "TZ", "NO_COLOR", "COLUMNS", "LINES", "TERM", "CLICOLOR", "GREP_COLORS"}
)
_PAGER_VARS = frozenset({"PAGER", "GIT_PAGER"})
_STD_DIRS = frozenset({"/bin", "/usr/bin"})
# Programs whose options are all harmless, so a glob (`*` may expand to `-x`) or arguments
# appended by xargs cannot turn them into writers or executors.
_HARMLESS_OPTIONS = frozenset(
    {"ls", "cat", "wc", "grep", "egrep", "fgrep", "head", "du", "df", "stat", "diff", "cmp", "md5sum", "sha1sum",
     "sha224sum", "sha256sum", "sha384sum", "sha512sum", "b2sum", "cksum", "sum", "nl", "tac", "rev", "cut",
     "strings", "od", "hexdump", "column", "comm", "basename", "dirname", "realpath", "readlink", "echo", "printf",
     "which", "zcat", "paste", "fold", "expand", "unexpand", "base64", "base32"}
)  # fmt: skip


# --------------------------------------------------------------------------- the walker


class _Analyzer:
    """Walks one parsed command, collecting the first deny and the first ask reason."""

    def __init__(self, allow_network: bool, depth: int, cwd: str | None):
        self.allow_network = allow_network
        self.depth = depth
        self.cwd: str | None = cwd
        self.denied: str | None = None
        self.asked: str | None = None
        self.programs: list[str] = []
        self.tags: set[str] = set()
        self.pipeline: str | None = None  # source of the pipeline being walked, for reasons
        self.words: list[str] = []  # every literal word, for checks across commands

    # ---- results

    def deny(self, reason: str) -> None:
        if self.denied is None:
            self.denied = reason

    def ask(self, reason: str) -> None:
        if self.asked is None:
            self.asked = reason

    def run(self, command: str) -> Verdict:
        if not command.strip():
            return Verdict("ask", "The command is empty, so there is nothing to check.")
        if len(command) > _MAX_CHARS:
            return Verdict("ask", f"The command is longer than {_MAX_CHARS} characters, too long to check.")
        if "\x00" in command:
            return Verdict("ask", "The command contains a NUL byte, which bash would not run as written.")
        self._raw_checks(command)
        root = _parse(command.encode("utf-8", errors="surrogateescape")).root_node
        if root.has_error:
            self.ask(f"Part of the command could not be parsed as bash ({_snip(_error_text(root))}).")
        self.visit(root, None)
        self._combination_checks(command)
        return self.verdict()

    def verdict(self) -> Verdict:
        if self.denied:
            return Verdict("deny", self.denied)
        if self.asked:
            return Verdict("ask", self.asked)
        if not self.programs:
            return Verdict("ask", "The command runs no program that could be checked.")
        names = ", ".join(dict.fromkeys(self.programs))
        return Verdict(
            "allow", f"Read-only: every command ({names}) is a known read-only program with safe options."
        )

    def sub(self, code: str, where: str) -> Verdict:
        """Judge code run by an inner shell (`bash -c`, `su -c`, heredoc); merge its verdict."""
        if self.depth >= _MAX_DEPTH:
            self.ask(f"{where} nests commands too deeply to check.")
            return Verdict("ask", "")
        inner = _Analyzer(self.allow_network, self.depth + 1, self.cwd)
        v = inner.run(code)
        if v.decision == "deny":
            self.deny(f"{where} runs code that is denied: {v.reason}")
        elif v.decision == "ask":
            self.ask(v.reason)
        else:
            self.programs.extend(inner.programs)
        self.tags |= inner.tags
        return v

    def sub_deny_only(self, code: str) -> str | None:
        if self.depth >= _MAX_DEPTH or not code.strip():
            return None
        v = _Analyzer(self.allow_network, self.depth + 1, self.cwd).run(code)
        return v.reason if v.decision == "deny" else None

    # ---- whole-text checks

    def _raw_checks(self, command: str) -> None:
        if "/dev/tcp/" in command or "/dev/udp/" in command:
            self.deny(
                "The command opens a network socket through /dev/tcp or /dev/udp, the classic reverse shell."
            )

    def _combination_checks(self, command: str) -> None:
        if "xargs" in self.tags and not self.denied:
            # `echo ~/.ssh/id_rsa | xargs cat`, `echo -r / | xargs grep x`: the file names travel
            # as data, so every literal token is checked, and trees full of secrets count too.
            for token in (t for word in self.words for t in word.split()):
                path = _normalise(token, self.cwd)
                secret = _secret(path) or (_shown(path) if path in _SECRET_ROOTS else None)
                if secret:
                    self.ask(
                        f"{_snip(command)} hands {secret}, which holds secrets, to another command through xargs."
                    )
                    break
        if "net" in self.tags and ({"shell_stdin", "fifo"} & self.tags):
            self.deny(
                f"{_snip(command)} wires a shell or a named pipe to a network connection (a reverse or bind shell)."
            )

    # ---- tree

    def visit(self, node: Any, fed: Any) -> None:
        handler = _HANDLERS.get(node.type)
        if handler is not None:
            handler(self, node, fed)
        elif node.type in _WORD_TYPES:
            self.nested(node)
        else:
            self.ask(
                f"{_snip(_text(node))} uses a shell construct ({node.type.replace('_', ' ')}) that is not checked."
            )
            for child in node.named_children:
                self.visit(child, None)

    def nested(self, node: Any) -> None:
        """Judge the commands inside substitutions found anywhere under a word."""
        raw = node.text
        if b"$(" not in raw and b"`" not in raw and b"<(" not in raw and b">(" not in raw:
            return
        stack = [node]
        while stack:
            n = stack.pop()
            if n.type in ("command_substitution", "process_substitution"):
                self.visit(n, None)
            else:
                stack.extend(n.children)

    def v_sequence(self, node: Any, fed: Any) -> None:
        for child in node.children:
            if child.is_named and child.type in _WORD_TYPES:
                # A bare word where a command should be: the parser recovered from something.
                self.ask(f"{_snip(_text(child))} is not a command the policy understands.")
                self.nested(child)
            elif child.is_named:
                self.visit(child, fed)
            elif child.type == "&":
                self.ask(
                    f"{_snip(_text(node))} starts a command in the background, which outlives the check."
                )
            elif child.type not in ("&&", "||", ";", "\n"):
                self.ask(f"{_snip(_text(node))} uses the operator `{child.type}`, which is not checked.")

    def v_pipeline(self, node: Any, fed: Any, *, tail: bool = False) -> None:
        outer, self.pipeline = self.pipeline, _text(node.parent if tail else node)
        first = not tail
        for child in node.children:
            if not child.is_named:
                if child.type not in ("|", "|&"):
                    self.ask(f"{_snip(_text(node))} uses the operator `{child.type}`, which is not checked.")
                continue
            self.visit(child, fed if first else "pipe")
            first = False
        self.pipeline = outer

    def v_isolated(self, node: Any, fed: Any) -> None:
        # Subshells and substitutions: a `cd` inside does not move the commands after them.
        saved = self.cwd
        kind = node.type.replace("_", " ")
        if node.type in ("command_substitution", "process_substitution"):
            self.ask(
                f"{_snip(_text(node))} runs a nested command ({kind}); only plain literal words are provably safe."
            )
            if node.children and node.children[0].type == ">(":
                fed = "pipe"
            else:
                fed = None
        else:
            self.ask(
                f"{_snip(_text(node))} uses a {kind}; only simple commands joined by && || ; | are allowed."
            )
        for child in node.named_children:
            self.visit(child, fed)
        self.cwd = saved

    def v_compound(self, node: Any, fed: Any) -> None:
        self.ask(
            f"{_snip(_text(node))} uses a command group or control flow ({node.type.replace('_', ' ')})."
        )
        for child in node.children:
            if child.is_named:
                self.visit(child, fed)
            elif child.type == "&":
                self.ask(
                    f"{_snip(_text(node))} starts a command in the background, which outlives the check."
                )

    def v_function(self, node: Any, fed: Any) -> None:
        name_node = node.child_by_field_name("name")
        body = node.child_by_field_name("body")
        name = _text(name_node) if name_node is not None else ""
        self.ask(f"{_snip(_text(node))} defines a shell function.")
        # A function that starts copies of itself in a pipe or the background multiplies.
        if (
            body is not None
            and name
            and _calls_itself(body, name)
            and (b"|" in body.text or b"&" in body.text)
        ):
            self.deny(
                f"{_snip(_text(node))} is a fork bomb: the function `{name}` starts copies of itself until the system stalls."
            )
        for child in node.named_children:
            if child is not name_node:
                self.visit(child, None)

    def v_assignment(self, node: Any, fed: Any) -> None:
        name_node = node.child_by_field_name("name")
        name = _text(name_node) if name_node is not None else _text(node)
        if name in _HISTORY_VARS:
            self.ask(f"{_snip(_text(node))} tampers with the shell history settings.")
        else:
            self.ask(f"{_snip(_text(node))} sets the shell variable {name}.")
        self.nested(node)

    def v_declaration(self, node: Any, fed: Any) -> None:
        text = _text(node)
        if any(v in text for v in _HISTORY_VARS) or "history" in text:
            self.ask(f"{_snip(text)} tampers with the shell history settings.")
        else:
            self.ask(f"{_snip(text)} changes shell variables ({text.split()[0]}).")
        self.nested(node)

    def v_test(self, node: Any, fed: Any) -> None:
        # `[ -f x ]` and `[[ ... ]]` only test; with literal words nothing else can happen.
        if b"$" in node.text or b"`" in node.text:
            self.ask(f"{_snip(_text(node))} tests a value expanded at run time.")
            self.nested(node)
        else:
            self.programs.append("test")

    def v_error(self, node: Any, fed: Any) -> None:
        self.ask(f"Part of the command could not be parsed as bash ({_snip(_text(node))}).")
        # tree-sitter cannot parse `{rm,-rf,/}` as a command, but bash expands it to `rm -rf /`.
        for m in _BRACE_COMMAND_RE.finditer(_text(node)):
            reason = self.sub_deny_only(" ".join(m.group(1).split(",")))
            if reason:
                self.deny(f"{_snip(m.group(0))} is brace expansion that spells a denied command: {reason}")
        for child in node.named_children:
            self.visit(child, fed)

    def v_negated(self, node: Any, fed: Any) -> None:
        for child in node.named_children:
            self.visit(child, fed)

    def v_comment(self, node: Any, fed: Any) -> None:
        return

    def v_redirected(self, node: Any, fed: Any) -> None:
        body = node.child_by_field_name("body")
        redirects = [c for c in node.named_children if c.type in _REDIRECT_TYPES]
        if body is None:
            self.ask(f"{_snip(_text(node))} is only a redirection, which creates or truncates a file.")
            for r in redirects:
                self.redirect(r, node)
            return
        if body.type == "command":
            self.command(body, fed, redirects)
            return
        self.visit(body, _input_kind(redirects) or fed)
        for r in redirects:
            self.redirect(r, node)

    # ---- simple commands

    def command(self, node: Any, fed: Any, extra_redirects: Sequence[Any] = ()) -> None:
        redirects = [c for c in node.named_children if c.type in _REDIRECT_TYPES]
        redirects.extend(extra_redirects)
        stmt = node.parent if extra_redirects and node.parent is not None else node
        name_node = node.child_by_field_name("name")
        for child in node.named_children:
            if child.type == "variable_assignment":
                self.prefix_assignment(child)
        if name_node is None:
            self.ask(f"{_snip(_text(node))} only sets variables or redirects.")
            for r in redirects:
                self.redirect(r, stmt)
            return
        arg_nodes = node.children_by_field_name("argument")
        words = [_word(name_node), *(_word(a) for a in arg_nodes)]
        self.words.extend(w.text for w in words[1:] if w.text)
        self.nested(name_node)
        for a in arg_nodes:
            self.nested(a)
        self.judge(words, _input_kind(redirects) or fed, _text(node))
        for r in redirects:
            self.redirect(r, stmt)

    def prefix_assignment(self, node: Any) -> None:
        name_node = node.child_by_field_name("name")
        value = node.child_by_field_name("value")
        self.nested(node)
        name = _text(name_node) if name_node is not None else ""
        self.env_assignment(name, _word(value) if value is not None else Word("", "", ""), _text(node))

    def env_assignment(self, name: str, value: Word, src: str) -> None:
        """An environment variable set for one command: only a few harmless ones stay allowable."""
        if name in _HISTORY_VARS:
            self.ask(f"{_snip(src)} tampers with the shell history settings.")
        elif name in _SAFE_ENV or name.startswith("LC_"):
            if value.text is None:
                self.ask(f"{_snip(src)} sets {name} from an expansion.")
        elif not (name in _PAGER_VARS and value.text in ("cat", "")):
            self.ask(f"{_snip(src)} sets {name} for the command, which can change what it runs.")

    def redirect(self, node: Any, stmt: Any) -> None:
        t = node.type
        if t == "heredoc_redirect":
            self._heredoc_tail(node)
            return
        if t == "herestring_redirect":
            self.nested(node)
            return
        if t != "file_redirect":
            self.ask(f"{_snip(_text(node))} is a redirection that is not checked.")
            return
        op = next((c.type for c in node.children if not c.is_named), "")
        dest = node.child_by_field_name("destination")
        if op in (">&-", "<&-"):
            return
        if dest is None:
            self.ask(f"{_snip(_text(node))} is a redirection that is not checked.")
            return
        self.nested(dest)
        w = _word(dest)
        if op in (">&", "<&") and (w.text == "-" or (w.text or "").isdigit()):
            return  # duplicating a descriptor (2>&1) touches no file
        where = _snip(_text(stmt))
        if "/dev/tcp/" in w.approx or "/dev/udp/" in w.approx:
            self.deny(f"{where} opens a network socket through /dev/tcp, the classic reverse shell.")
            return
        if op == "<":
            if w.text is None:
                self.ask(f"{where} reads from a file named by an expansion.")
                return
            secret = _secret(_normalise(w.text, self.cwd))
            if secret:
                self.ask(f"{where} reads {secret}, which holds secrets.")
            return
        # Everything else writes: >, >>, >|, &>, &>>, <>, >& file.
        if w.text in _HARMLESS_DEVICES:
            return
        problem = _write_problem(_normalise(w.approx, self.cwd))
        if problem:
            self.deny(f"{where} writes to {w.src}: {problem}.")
        elif w.text is None:
            self.ask(f"{where} writes to a file named by an expansion.")
        else:
            self.ask(f"{where} writes to the file {w.src}.")

    def _heredoc_tail(self, node: Any) -> None:
        # tree-sitter hangs whatever follows `<<EOF` on the same line under the redirect.
        for child in node.children:
            if child.type == "heredoc_body":
                self.nested(child)
            elif child.type == "pipeline":
                self.v_pipeline(child, None, tail=True)
            elif child.type in _REDIRECT_TYPES:
                self.redirect(child, node.parent or node)
            elif child.is_named and child.type not in ("heredoc_start", "heredoc_end"):
                self.visit(child, None)
            elif child.type == "&":
                self.ask(
                    f"{_snip(_text(node))} starts a command in the background, which outlives the check."
                )

    # ---- programs

    def judge(self, words: Sequence[Word], fed: Any, src: str, via: str = "") -> None:
        """Judge one command given as words: wrappers recurse, programs have rules."""
        if not words:
            return
        name = words[0]
        for w in words:
            if "/dev/tcp/" in w.approx or "/dev/udp/" in w.approx:
                self.deny(f"{_snip(src)} opens a network socket through /dev/tcp, the classic reverse shell.")
        if name.text is None:
            self.deny(
                f"{_snip(src)} runs a command whose name is computed at run time ({name.src}), so it cannot be checked."
            )
            return
        if name.glob or name.brace:
            self.deny(f"{_snip(src)} uses a pattern as the command name ({name.src}), which hides what runs.")
            return
        prog = name.text
        base = prog.rsplit("/", 1)[-1] if "/" in prog else prog
        std = "/" not in prog or prog.rsplit("/", 1)[0] in _STD_DIRS
        rule = _RULES.get(base)
        if rule is None:
            if base.startswith("mkfs") or base.startswith("mke2fs"):
                rule = _r_disk
            elif _INTERPRETER_RE.match(base):
                rule = _r_interpreter
        if rule is not None:
            rule(self, _Cmd(base, prog, std, list(words[1:]), fed, src, via))
            return
        if base in _READ_ONLY:
            self._read_only(_Cmd(base, prog, std, list(words[1:]), fed, src, via))
            return
        self.ask(_unknown_reason(prog, base, src))

    def _read_only(self, c: _Cmd) -> None:
        # The checker runs first, on approximate text, so deny rules (sort -o /etc/x) still fire
        # for words that are not literal.
        result = _READ_ONLY[c.base](self, c, c.texts())
        if isinstance(result, str):
            self.ask(result)
            return
        for w in c.args:
            if w.text is None:
                self.ask(
                    f"{_snip(c.src)} has a word expanded at run time ({w.src}), so it cannot be proven read-only."
                )
                return
            if w.brace:
                self.ask(f"{_snip(c.src)} uses brace expansion ({w.src}), so its words cannot be proven.")
                return
        if c.base not in _HARMLESS_OPTIONS:
            risky = _option_like_glob(c.args)
            if risky:
                self.ask(
                    f"{_snip(c.src)} passes the glob {risky} to `{c.base}`, and a file named like an option "
                    f"could change what it does; write ./{risky} or put -- before it."
                )
                return
        for path in result:
            secret = _secret(_normalise(path, self.cwd))
            if secret:
                self.ask(f"{_snip(c.src)} reads {secret}, which holds secrets.")
                return
        if not c.std:
            self.ask(f"{_snip(c.src)} runs {c.prog} by a path outside /bin and /usr/bin.")
            return
        self.programs.append(c.base)

    def writes(self, c: _Cmd, targets: Iterable[Word | str], verb: str = "writes to") -> None:
        """Deny writes into system directories and home dotfiles."""
        for t in targets:
            approx = t if isinstance(t, str) else t.approx
            src = t if isinstance(t, str) else t.src
            problem = _write_problem(_normalise(approx, self.cwd))
            if problem:
                self.deny(f"{_snip(c.src)} {verb} {src}: {problem}.")
                return

    def network(self, c: _Cmd) -> None:
        self.tags.add("net")
        for w in c.args:
            secret = (
                _secret(_normalise(w.approx.lstrip("@<").split("=", 1)[-1], self.cwd)) if w.approx else None
            )
            if secret and not w.approx.startswith("-"):
                self.deny(f"{_snip(c.src)} sends {secret}, which holds secrets, over the network.")
                return
        if isinstance(c.fed, tuple) and c.fed[0] == "file" and c.fed[1]:
            secret = _secret(_normalise(c.fed[1], self.cwd))
            if secret:
                self.deny(f"{_snip(c.src)} sends {secret}, which holds secrets, over the network.")
                return
        where = "" if self.allow_network else " (and the sandbox blocks the network for commands)"
        self.ask(f"{_snip(c.src)} uses the network through `{c.base}`{where}.")


@dataclass
class _Cmd:
    base: str
    prog: str
    std: bool
    args: list[Word]
    fed: Any
    src: str
    via: str = ""
    """"xargs" or "find" when the command's arguments are completed at run time."""

    def texts(self) -> list[str]:
        return [w.text if w.text is not None else w.approx for w in self.args]


def _unknown_reason(prog: str, base: str, src: str) -> str:
    if "/" in prog and not prog.startswith("/"):
        return f"{_snip(src)} runs the local program {prog}, which could do anything."
    return f"{_snip(src)}: `{base}` is not a known read-only program."


def _error_text(root: Any) -> str:
    stack = [root]
    while stack:
        n = stack.pop()
        if n.type == "ERROR" or n.is_missing:
            return _text(n) or _text(n.parent or root)
        stack.extend(reversed(n.children))
    return _text(root)


def _input_kind(redirects: Sequence[Any]) -> Any:
    """What feeds a command's stdin through its redirections: None, "pipe" (another command),
    ("text", code or None, from_command) for here-strings and heredocs, or ("file", path, False)."""
    kind: Any = None
    for r in redirects:
        if r.type == "herestring_redirect":
            value = next(iter(r.named_children), None)
            w = _word(value) if value is not None else Word("", "", "")
            kind = ("text", w.text, w.subst)
        elif r.type == "heredoc_redirect":
            body = next((c for c in r.named_children if c.type == "heredoc_body"), None)
            if body is None:
                kind = ("text", "", False)
            else:
                dynamic = any(c.type != "heredoc_content" for c in body.named_children)
                subst = b"$(" in body.text or b"`" in body.text
                kind = ("text", None if dynamic else _text(body), subst and dynamic)
        elif r.type == "file_redirect":
            op = next((c.type for c in r.children if not c.is_named), "")
            fd = r.child_by_field_name("descriptor")
            if op in ("<", "<&", "<>") and (fd is None or _text(fd) == "0"):
                dest = r.child_by_field_name("destination")
                if dest is not None and dest.type == "process_substitution":
                    kind = "pipe"
                else:
                    kind = ("file", _word(dest).text if dest is not None else None, False)
    return kind


def _calls_itself(body: Any, name: str) -> bool:
    stack = [body]
    while stack:
        n = stack.pop()
        if n.type == "command_name" and _text(n) == name:
            return True
        stack.extend(n.children)
    return False


def _option_like_glob(words: Sequence[Word]) -> str | None:
    """A glob that could expand to a file name starting with `-` (before any `--`)."""
    for w in words:
        if w.text == "--":
            return None
        if w.glob and w.text is not None and (w.text[:1] in _GLOB_CHARS or w.text.startswith("-")):
            return w.text
    return None


_BRACE_COMMAND_RE = re.compile(r"(?:^|[;&|(\s])\{([^{}\s]*,[^{}\s]*)\}")
_REDIRECT_TYPES = frozenset({"file_redirect", "heredoc_redirect", "herestring_redirect"})
_WORD_TYPES = frozenset(
    {"word", "string", "raw_string", "concatenation", "ansi_c_string", "translated_string", "number",
     "simple_expansion", "expansion", "arithmetic_expansion", "brace_expression", "string_content", "variable_name",
     "special_variable_name", "heredoc_body", "heredoc_content", "regex", "extglob_pattern", "command_name",
     "file_descriptor", "test_operator", "array", "binary_expression", "unary_expression", "ternary_expression",
     "parenthesized_expression", "postfix_expression", "subscript", "heredoc_start", "heredoc_end"}
)  # fmt: skip

_HANDLERS: dict[str, Callable[[_Analyzer, Any, Any], None]] = {
    "program": _Analyzer.v_sequence,
    "list": _Analyzer.v_sequence,
    "pipeline": _Analyzer.v_pipeline,
    "command": lambda self, node, fed: self.command(node, fed),
    "redirected_statement": _Analyzer.v_redirected,
    "negated_command": _Analyzer.v_negated,
    "comment": _Analyzer.v_comment,
    "subshell": _Analyzer.v_isolated,
    "command_substitution": _Analyzer.v_isolated,
    "process_substitution": _Analyzer.v_isolated,
    "compound_statement": _Analyzer.v_compound,
    "if_statement": _Analyzer.v_compound,
    "elif_clause": _Analyzer.v_compound,
    "else_clause": _Analyzer.v_compound,
    "while_statement": _Analyzer.v_compound,
    "for_statement": _Analyzer.v_compound,
    "c_style_for_statement": _Analyzer.v_compound,
    "case_statement": _Analyzer.v_compound,
    "case_item": _Analyzer.v_compound,
    "do_group": _Analyzer.v_compound,
    "function_definition": _Analyzer.v_function,
    "variable_assignment": _Analyzer.v_assignment,
    "variable_assignments": _Analyzer.v_sequence,
    "declaration_command": _Analyzer.v_declaration,
    "unset_command": _Analyzer.v_declaration,
    "test_command": _Analyzer.v_test,
    "ERROR": _Analyzer.v_error,
}


# --------------------------------------------------------------------------- helpers for rules


def _opt_words(c: _Cmd, value_short: str = "", value_long: Iterable[str] = ()) -> tuple[list, list[Word]]:
    opts, idx = _scan(c.texts(), value_short, value_long)
    return opts, [c.args[i] for i in idx]


def _values(opts: Sequence[tuple[str, str | None]], short: str = "", long: Iterable[str] = ()) -> list[str]:
    longs = tuple(long)
    out = []
    for name, val in opts:
        if val is None:
            continue
        if (len(name) == 2 and name[1] in short) or (longs and _long_match(name, longs)):
            out.append(val)
    return out


def _skip_options(texts: Sequence[str], value_short: str = "", value_long: Iterable[str] = ()) -> int:
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


def _run_inner(a: _Analyzer, c: _Cmd, start: int, floor: str | None = None) -> None:
    """Judge the command a wrapper runs; the wrapper never makes it safer."""
    if floor:
        a.ask(floor)
    if not c.std:
        a.ask(f"{_snip(c.src)} runs {c.prog} by a path outside /bin and /usr/bin.")
    inner = c.args[start:]
    if not inner:
        a.ask(f"{_snip(c.src)}: `{c.base}` is given no command to run.")
        return
    a.judge(inner, c.fed, c.src, c.via)


def _literal(text: str) -> Word:
    return Word(text, text, text)


# --------------------------------------------------------------------------- wrappers


_SUDO_VALUES = {"sudo": "ugCDhprtUT", "doas": "Cu", "pkexec": "", "run0": "uDg"}
_SUDO_LONG = frozenset({"--user", "--group", "--close-from", "--chdir", "--host", "--prompt", "--role", "--type",
                        "--other-user", "--command-timeout", "--chroot"})  # fmt: skip


def _r_privilege(a: _Analyzer, c: _Cmd) -> None:
    a.ask(f"{_snip(c.src)} runs a command with other privileges through `{c.base}`.")
    texts = c.texts()
    value_short = _SUDO_VALUES.get(c.base, "")
    i = 0
    while i < len(texts):
        t = texts[i]
        if t == "--":
            i += 1
            break
        if not t.startswith("-") or t == "-":
            break
        if t.startswith("--"):
            i += 2 if ("=" not in t and t in _SUDO_LONG) else 1
            continue
        for j in range(1, len(t)):
            if t[j] in value_short:
                if j == len(t) - 1:
                    i += 1
                break
        i += 1
    if i < len(c.args):
        a.judge(c.args[i:], c.fed, c.src, c.via)


def _r_su(a: _Analyzer, c: _Cmd) -> None:
    a.ask(f"{_snip(c.src)} runs a command as another user through `{c.base}`.")
    args = c.args
    for i, w in enumerate(args):
        t = w.text or ""
        clustered = t.startswith("-") and not t.startswith("--") and t.endswith("c")  # su -lc CODE
        if (t in ("--command", "--session-command") or clustered) and i + 1 < len(args):
            _shell_code(a, c, args[i + 1], f"`{c.base} -c`")
        elif t.startswith(("--command=", "--session-command=")):
            code = t.split("=", 1)[1]
            _shell_code(a, c, _literal(code), f"`{c.base} -c`")


def _r_timeout(a: _Analyzer, c: _Cmd) -> None:
    start = _skip_options(c.texts(), "sk", ("--signal", "--kill-after"))
    _run_inner(a, c, start + 1)  # the duration comes first


def _r_nice(a: _Analyzer, c: _Cmd) -> None:
    _run_inner(a, c, _skip_options(c.texts(), "n", ("--adjustment",)))


def _r_ionice(a: _Analyzer, c: _Cmd) -> None:
    texts = c.texts()
    if any(t.startswith("-p") or t == "--pid" for t in texts):
        a.ask(f"{_snip(c.src)} changes the I/O priority of running processes.")
        return
    _run_inner(a, c, _skip_options(texts, "cnP", ("--class", "--classdata")))


def _r_nohup(a: _Analyzer, c: _Cmd) -> None:
    _run_inner(a, c, 0, f"{_snip(c.src)} keeps a command running after the shell exits (nohup).")


def _r_time(a: _Analyzer, c: _Cmd) -> None:
    texts = c.texts()
    start = _skip_options(texts, "fo", ("--format", "--output"))
    opts, _ = _scan(texts[:start], "fo", ("--format", "--output"))
    out = _values(opts, "o", ("--output",))
    if out:
        a.writes(c, out)
        a.ask(f"{_snip(c.src)} writes timing results to {out[0]}.")
    _run_inner(a, c, start)


def _r_stdbuf(a: _Analyzer, c: _Cmd) -> None:
    _run_inner(a, c, _skip_options(c.texts(), "ioe", ("--input", "--output", "--error")))


def _r_builtin(a: _Analyzer, c: _Cmd) -> None:
    _run_inner(a, c, 0)


def _r_command(a: _Analyzer, c: _Cmd) -> None:
    texts = c.texts()
    i = 0
    lookup = False
    while i < len(texts) and texts[i].startswith("-") and len(texts[i]) > 1:
        if texts[i] == "--":
            i += 1
            break
        if not set(texts[i][1:]) <= set("pvV"):
            a.ask(f"{_snip(c.src)} uses an option of `command` that is not checked.")
            return
        lookup |= "v" in texts[i] or "V" in texts[i]
        i += 1
    if lookup:
        a.programs.append("command -v")  # only prints where each name is found
        return
    _run_inner(a, c, i)


def _r_env(a: _Analyzer, c: _Cmd) -> None:
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
            a.ask(f"{_snip(c.src)} splits a string into a command with `env -S`.")
            _shell_code(a, c, _literal(f"{code} {rest}".strip()), "`env -S`")
            return
        elif t.startswith("-"):
            a.ask(f"{_snip(c.src)} uses the env option {t}, which is not checked.")
            i += 1
            if t in ("-C", "--chdir"):
                i += 1
        elif "=" in t and not t.startswith("="):
            name, _, value = t.partition("=")
            a.env_assignment(name, _literal(value) if w.text is not None else Word(None, _DYN, w.src), w.src)
            i += 1
        else:
            break
    if i >= len(texts):
        a.ask(f"{_snip(c.src)}: `env` without a command prints the whole environment.")
        return
    _run_inner(a, c, i)


_XARGS_VALUE = "adEILnPs"
_XARGS_LONG = frozenset({"--arg-file", "--delimiter", "--max-lines", "--max-args", "--max-procs", "--max-chars",
                         "--process-slot-var", "--eof", "--replace"})  # fmt: skip


def _r_xargs(a: _Analyzer, c: _Cmd) -> None:
    texts = c.texts()
    i = 0
    interactive = False
    while i < len(texts):
        t = texts[i]
        if t == "--":
            i += 1
            break
        if not t.startswith("-") or t == "-":
            break
        if t.startswith("--"):
            interactive |= t in ("--interactive", "--open-tty")
            i += 2 if ("=" not in t and t in _XARGS_LONG and t != "--replace") else 1
            continue
        consumed = False
        for j in range(1, len(t)):
            ch = t[j]
            interactive |= ch in "po"
            if ch in _XARGS_VALUE:
                consumed = j == len(t) - 1
                break
            if ch in "eil":  # optional value, attached only
                break
        i += 2 if consumed else 1
    if interactive:
        a.ask(f"{_snip(c.src)} makes xargs prompt on the terminal.")
    if not c.std:
        a.ask(f"{_snip(c.src)} runs {c.prog} by a path outside /bin and /usr/bin.")
    inner = c.args[i:] or [_literal("echo")]
    a.tags.add("xargs")
    a.judge(inner, None, c.src, "xargs")
    head = inner[0].text or ""
    base = head.rsplit("/", 1)[-1]
    if base not in _HARMLESS_OPTIONS:
        a.ask(f"{_snip(c.src)}: xargs appends input words to `{base}`, where they could act as options.")


def _r_busybox(a: _Analyzer, c: _Cmd) -> None:
    _run_inner(a, c, 0, f"{_snip(c.src)} runs a {c.base} applet.")


def _r_session(a: _Analyzer, c: _Cmd) -> None:
    # setsid, unbuffer, strace, ltrace, chroot, flock: run another command in a changed setting.
    texts = c.texts()
    floor = f"{_snip(c.src)} runs a command under `{c.base}`."
    if c.base in ("flock",):
        for i, t in enumerate(texts):
            if t in ("-c", "--command") and i + 1 < len(c.args):
                a.ask(floor)
                _shell_code(a, c, c.args[i + 1], "`flock -c`")
                return
    start = _skip_options(texts, {"strace": "eopsuEPIXaSOb", "ltrace": "eopsuEnaAlL"}.get(c.base, ""))
    if c.base in ("chroot", "flock"):
        start += 1
    _run_inner(a, c, start, floor)


def _r_watch(a: _Analyzer, c: _Cmd) -> None:
    texts = c.texts()
    start = _skip_options(texts, "nq", ("--interval",))
    a.ask(f"{_snip(c.src)} runs a command repeatedly with `watch`.")
    if start < len(texts):
        if any(t in ("-x", "--exec") for t in texts[:start]):
            a.judge(c.args[start:], None, c.src)
        else:
            _shell_code(a, c, _literal(" ".join(texts[start:])), "`watch`")


def _r_coproc(a: _Analyzer, c: _Cmd) -> None:
    _run_inner(a, c, 0, f"{_snip(c.src)} starts a coprocess that runs in the background.")


def _r_exec(a: _Analyzer, c: _Cmd) -> None:
    a.deny(
        f"{_snip(c.src)}: `exec` replaces the shell or rewires its file descriptors, which cannot be checked."
    )


def _r_eval(a: _Analyzer, c: _Cmd) -> None:
    a.deny(f"{_snip(c.src)}: `eval` runs a string as shell code, which cannot be checked before it runs.")


def _r_source(a: _Analyzer, c: _Cmd) -> None:
    if not c.args:
        a.ask(f"{_snip(c.src)}: `{c.base}` is given no file.")
        return
    w = c.args[0]
    if w.subst:
        a.deny(f"{_snip(c.src)} sources shell code produced by another command ({w.src}).")
    elif w.text is None:
        a.ask(f"{_snip(c.src)} sources a file named by an expansion ({w.src}).")
    elif w.text.startswith(("/dev/", "/proc/")):
        a.deny(f"{_snip(c.src)} sources shell code from {w.text}, text that was never checked.")
    else:
        a.ask(f"{_snip(c.src)} runs the commands in {w.src} inside this shell.")


# --------------------------------------------------------------------------- shells and interpreters


def _shell_code(a: _Analyzer, c: _Cmd, word: Word, where: str) -> None:
    """Judge code handed to an inner shell as a string (`bash -c CODE`)."""
    if word.subst:
        a.deny(f"{_snip(c.src)} runs shell code produced by another command ({_snip(word.src, 40)}).")
        return
    if word.text is None:
        a.ask(f"{_snip(c.src)} runs shell code built from expansions ({_snip(word.src, 40)}).")
        reason = a.sub_deny_only(word.approx.replace(_DYN, "$V"))
        if reason:
            a.deny(f"{where} runs code that is denied: {reason}")
        return
    a.sub(word.text, where)


def _fed_code(a: _Analyzer, c: _Cmd, lang: str, is_shell: bool) -> bool:
    """A shell or interpreter that reads its program from stdin: deny when another command
    feeds it, check the text of heredocs. Returns True when it handled the command."""
    fed = c.fed
    if fed is not None or a.pipeline:
        a.tags.add("shell_stdin")  # a shell wired to other commands, as reverse shells are
    if fed == "pipe":
        a.deny(f"{_snip(a.pipeline or c.src)} pipes text into {lang}, which runs it as code.")
        return True
    if isinstance(fed, tuple) and fed[0] == "text":
        if fed[2]:
            a.deny(f"{_snip(c.src)} feeds {lang} code produced by another command.")
            return True
        a.ask(f"{_snip(c.src)} feeds {lang} a script on standard input.")
        if fed[1] is not None:
            if is_shell:
                a.sub(fed[1], f"The script fed to `{c.base}`")
            else:
                _inline_code(a, c, _literal(fed[1]))
        return True
    if isinstance(fed, tuple) and fed[0] == "file":
        a.ask(f"{_snip(c.src)} runs the script read from {fed[1] or 'a file'} with {lang}.")
        return True
    if c.via == "xargs":
        a.ask(f"{_snip(c.src)} runs {lang} on file names read from input.")
        return True
    a.ask(f"{_snip(c.src)} starts an interactive {lang}.")
    return True


def _r_shell(a: _Analyzer, c: _Cmd) -> None:
    texts = c.texts()
    has_c = read_stdin = interactive = False
    risky: list[str] = []
    i = 0
    while i < len(texts):
        t = texts[i]
        if t == "-":
            read_stdin = True
            i += 1
            break
        if t == "--":
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
                a.deny(f"{_snip(c.src)} runs text read from input as {name} code.")
            else:
                a.ask(f"{_snip(c.src)}: `{name} -c` is given no code.")
            return
        if interactive or risky or name not in _PLAIN_SHELLS or not c.std:
            a.ask(f"{_snip(c.src)} starts {name} with options or startup files that are not checked.")
        if c.via:
            a.ask(
                f"{_snip(c.src)} runs a shell for each input item, which can splice the input into the code."
            )
        _shell_code(a, c, operands[0], f"`{name} -c`")
        return
    if read_stdin or not operands:
        _fed_code(a, c, name, True)
        return
    script = operands[0]
    if script.subst:
        a.deny(f"{_snip(c.src)} runs a script produced by another command ({script.src}).")
    elif script.text in ("/dev/stdin", "/dev/fd/0", "/proc/self/fd/0") and c.fed:
        a.deny(f"{_snip(a.pipeline or c.src)} pipes text into {name}, which runs it as code.")
    else:
        a.ask(f"{_snip(c.src)} runs the script {script.src} with {name}.")


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


def _r_interpreter(a: _Analyzer, c: _Cmd) -> None:
    family, lang = _lang_of(c.base)
    texts = c.texts()
    if len(texts) == 1 and (
        texts[0] == "--version" or (family in ("python", "pypy") and texts[0] in ("-V", "-VV"))
    ):
        if c.std:
            a.programs.append(c.base)
        else:
            a.ask(f"{_snip(c.src)} runs {c.prog} by a path outside /bin and /usr/bin.")
        return
    codes: list[Word] = []
    module = inplace = stdin_script = False
    i = 0
    while i < len(texts):
        t = texts[i]
        if t == "-":
            stdin_script = True
            i += 1
            break
        if t == "--":
            i += 1
            break
        if t.startswith("--") or (family in ("pwsh", "powershell") and t.startswith("-") and len(t) > 2):
            name, eq, val = t.partition("=")
            if name in lang.long_code:
                if eq:
                    codes.append(_literal(val) if c.args[i].text is not None else c.args[i])
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
                        codes.append(_literal(rest) if c.args[i].text is not None else c.args[i])
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
        a.ask(f"{_snip(c.src)} runs inline code with `{c.base}`.")
        for w in codes:
            _inline_code(a, c, w)
        if inplace:
            a.writes(c, operands, "edits in place")
        return
    if module:
        a.ask(f"{_snip(c.src)} runs a {family} module.")
        return
    if stdin_script or not operands:
        _fed_code(a, c, c.base, False)
        return
    script = operands[0]
    if script.subst:
        a.deny(f"{_snip(c.src)} runs a script produced by another command ({script.src}).")
    elif script.text in ("/dev/stdin", "/dev/fd/0", "/proc/self/fd/0") and c.fed:
        a.deny(f"{_snip(a.pipeline or c.src)} pipes text into {c.base}, which runs it as code.")
    else:
        a.ask(f"{_snip(c.src)} runs the script {script.src} with {c.base}.")


_NET_CODE_RE = re.compile(
    r"socket|fsockopen|TCPServer|TCPListener|net\.connect|createConnection|/inet/(?:tcp|udp)|s_client|stream_socket",
    re.IGNORECASE,
)
_EXEC_CODE_RE = re.compile(
    r"/bin/(?:ba|z|da|k|c|tc|fi)?sh\b|\b(?:ba)?sh\s+-i|subprocess|pty\.spawn|os\.dup2|\bexec|\bsystem\s*\(|popen"
    r"|child_process|spawn|os\.execute|proc_open|shell_exec|passthru|cmd\.exe|\$stdin\.reopen|\bgetline|\|&"
)
_FORK_CODE_RE = re.compile(
    r"fork\s+while\s+fork|(?:while\s*\(?\s*(?:1|true|True)\s*\)?|for\s*\(\s*;\s*;\s*\))\s*[:{]?\s*(?:os\.)?fork\s*\("
)
_RMTREE_RE = re.compile(r"(?:rmtree|rm_rf|rm_r|rmSync|rimraf|remove_tree|rmdir)\s*\(\s*(['\"])(.*?)\1")
_STRING_RE = re.compile(r"'((?:[^'\\\n]|\\.){1,400})'|\"((?:[^\"\\\n]|\\.){1,400})\"")
_LIST_RE = re.compile(r"\[([^\[\]]{3,400})\]")
_COMMANDISH_RE = re.compile(r"\s*(?:sudo\s+)?[A-Za-z/.:][\w./:+-]*(?:\s|$)")


def _code_danger(a: _Analyzer, code: str) -> str | None:
    """Deny-worthy patterns in program text (python -c, awk, perl -e ...): reverse shells,
    fork bombs, rmtree of critical paths and embedded shell commands that are denied."""
    code = code[:20_000]
    if _NET_CODE_RE.search(code) and _EXEC_CODE_RE.search(code):
        return "opens a network connection and runs a shell or process over it (a reverse or bind shell)."
    if _FORK_CODE_RE.search(code):
        return "is a fork bomb: it starts processes in an endless loop."
    for m in _RMTREE_RE.finditer(code):
        target = _critical_target(_normalise(m.group(2), a.cwd))
        if target:
            return f"deletes {target} recursively."
    strings = [m.group(1) or m.group(2) or "" for m in _STRING_RE.finditer(code)]
    for s in strings:
        # Only strings that start like a command line (`rm -rf /`), not code between quotes.
        if (" " in s or "/" in s) and _COMMANDISH_RE.match(s):
            reason = a.sub_deny_only(s)
            if reason:
                return f"embeds a shell command that is denied: {reason}"
    for m in _LIST_RE.finditer(code):
        items = [x.group(1) or x.group(2) or "" for x in _STRING_RE.finditer(m.group(1))]
        if len(items) >= 2:
            import shlex

            reason = a.sub_deny_only(" ".join(shlex.quote(x) for x in items))
            if reason:
                return f"embeds a command that is denied: {reason}"
    return None


def _inline_code(a: _Analyzer, c: _Cmd, word: Word) -> None:
    if word.subst:
        a.deny(f"{_snip(c.src)} runs code produced by another command ({_snip(word.src, 40)}).")
        return
    code = word.text if word.text is not None else word.approx.replace(_DYN, "$V")
    reason = _code_danger(a, code)
    if reason:
        a.deny(f"{_snip(c.src)} {reason}")


# --------------------------------------------------------------------------- destructive programs


def _r_rm(a: _Analyzer, c: _Cmd) -> None:
    opts, targets = _opt_words(c)
    if any(_long_match(n, ("--no-preserve-root",)) for n, _ in opts):
        a.deny(f"{_snip(c.src)} uses --no-preserve-root, which exists only to let rm delete /.")
        return
    recursive = c.base == "rm" and _has(opts, "rR", ("--recursive",))
    for w in targets:
        path = _normalise(w.approx, a.cwd)
        if recursive:
            critical = _critical_target(path)
            if critical:
                a.deny(f"{_snip(c.src)} deletes {critical} recursively.")
                return
        problem = _write_problem(path)
        if problem:
            a.deny(f"{_snip(c.src)} deletes {w.src}: {problem}.")
            return
    a.ask(f"{_snip(c.src)} deletes files.")


def _r_disk(a: _Analyzer, c: _Cmd) -> None:
    if c.base == "shred":
        a.deny(f"{_snip(c.src)}: `shred` overwrites files so they can never be recovered.")
    else:
        a.deny(f"{_snip(c.src)}: `{c.base}` formats, wipes or repartitions disks.")


def _r_dd(a: _Analyzer, c: _Cmd) -> None:
    for w in c.args:
        if w.approx.startswith("of="):
            path = _normalise(w.approx[3:], a.cwd)
            if path.startswith("/dev/") and path not in _HARMLESS_DEVICES:
                a.deny(f"{_snip(c.src)} writes raw data onto the device {path}.")
                return
            problem = _write_problem(path)
            if problem:
                a.deny(f"{_snip(c.src)} writes to {w.approx[3:]}: {problem}.")
                return
    a.ask(f"{_snip(c.src)} copies raw data with dd.")


def _r_power(a: _Analyzer, c: _Cmd) -> None:
    a.deny(f"{_snip(c.src)} shuts down or restarts the machine.")


def _r_init(a: _Analyzer, c: _Cmd) -> None:
    if c.args and (c.args[0].text or "") in ("0", "6", "1", "s", "S", "single"):
        a.deny(f"{_snip(c.src)} changes the runlevel, shutting down or restarting the machine.")
    else:
        a.ask(f"{_snip(c.src)} talks to the init system.")


def _r_systemctl(a: _Analyzer, c: _Cmd) -> None:
    stops = {"poweroff", "reboot", "halt", "kexec", "emergency", "rescue", "soft-reboot"}
    if any((w.text or "") in stops for w in c.args):
        a.deny(f"{_snip(c.src)} shuts down or restarts the machine.")
    else:
        a.ask(f"{_snip(c.src)} manages system services.")


def _r_kill(a: _Analyzer, c: _Cmd) -> None:
    texts = c.texts()
    pids: list[str] = []
    i = 0
    while i < len(texts):
        t = texts[i]
        if t == "--":
            pids.extend(texts[i + 1 :])
            break
        if t in ("-s", "-n", "--signal"):
            i += 2
            continue
        if t.startswith("-") and i == 0 and len(texts) > 1:
            i += 1
            continue
        pids.append(t)
        i += 1
    if "-1" in pids:
        a.deny(f"{_snip(c.src)} signals every process the user can reach (`kill -1`).")
    elif "1" in pids:
        a.deny(f"{_snip(c.src)} signals process 1 (init), which takes the whole system down.")
    else:
        a.ask(f"{_snip(c.src)} sends a signal to processes.")


def _r_killall5(a: _Analyzer, c: _Cmd) -> None:
    a.deny(f"{_snip(c.src)}: `killall5` signals every process on the system.")


def _r_crontab(a: _Analyzer, c: _Cmd) -> None:
    opts, _ = _scan(c.texts(), "u")
    if _has(opts, "r"):
        a.deny(f"{_snip(c.src)} removes every scheduled cron job of the user.")
    else:
        a.ask(f"{_snip(c.src)} changes scheduled cron jobs.")


def _r_history(a: _Analyzer, c: _Cmd) -> None:
    a.ask(f"{_snip(c.src)} tampers with the shell history.")


def _r_chmod(a: _Analyzer, c: _Cmd) -> None:
    opts, words = _opt_words(c, "", ("--reference",))
    recursive = _has(opts, "R", ("--recursive",))
    reference = _values(opts, "", ("--reference",))
    targets = words if reference else words[1:]
    for w in targets:
        path = _normalise(w.approx, a.cwd)
        critical = _critical_target(path) if recursive and path.startswith(("/", _DYN)) else None
        if critical:
            a.deny(f"{_snip(c.src)} changes the ownership or permissions of {critical} recursively.")
            return
    a.writes(c, targets, "changes the permissions of")
    a.ask(f"{_snip(c.src)} changes file permissions or ownership.")


def _r_attrs(a: _Analyzer, c: _Cmd) -> None:
    _, words = _opt_words(c, "mMxX")
    a.writes(c, words[1:] if c.base == "chattr" else words, "changes the attributes of")
    a.ask(f"{_snip(c.src)} changes file attributes.")


_COPY_VALUES = {"cp": "tS", "mv": "tS", "ln": "tS", "install": "tSmog", "rsync": "eBfMT"}
_COPY_LONG = ("--target-directory", "--suffix")


def _r_copy(a: _Analyzer, c: _Cmd) -> None:
    opts, words = _opt_words(
        c, _COPY_VALUES.get(c.base, ""), (*_COPY_LONG, "--rsh", "--filter", "--exclude", "--include")
    )
    directory = _values(opts, "t", ("--target-directory",))
    if c.base == "rsync":
        remote = [w for w in words if ":" in w.approx.split("/", 1)[0]]
        if remote:
            a.network(c)
        targets = words[-1:] if len(words) >= 2 else []
        if any(_long_match(n, ("--delete", "--remove-source-files")) for n, _ in opts) and targets:
            critical = _critical_target(_normalise(targets[0].approx, a.cwd))
            if critical:
                a.deny(f"{_snip(c.src)} mirrors into {critical} and deletes everything else there.")
                return
    elif c.base == "install" and _has(opts, "d", ("--directory",)):
        targets = words
    elif directory:
        targets = [_literal(d) for d in directory]
    elif c.base == "ln" and len(words) == 1:
        targets = []
    else:
        targets = words[-1:] if len(words) >= 2 else []
    if c.base == "mv":
        targets = [*targets, *words]  # moving a file away deletes it from its old place
    a.writes(c, targets)
    verb = {"cp": "copies", "mv": "moves", "ln": "links", "install": "installs", "rsync": "copies"}[c.base]
    a.ask(f"{_snip(c.src)} {verb} files.")


def _r_write_all(a: _Analyzer, c: _Cmd) -> None:
    # tee, touch, mkdir, truncate: every operand is written.
    _, words = _opt_words(c, {"touch": "drt", "mkdir": "m", "truncate": "sro"}.get(c.base, ""))
    a.writes(c, words)
    if c.base == "tee":
        a.ask(f"{_snip(c.src)} writes its input to files with tee.")
    else:
        a.ask(f"{_snip(c.src)} creates or changes files ({c.base}).")


def _r_tar(a: _Analyzer, c: _Cmd) -> None:
    texts = c.texts()
    first = texts[0] if texts else ""
    opts, _ = _scan(texts, "CfbHIKLNTVX", ("--directory", "--file"))
    extract = ("x" in first and not first.startswith("-")) or _has(opts, "x", ("--extract", "--get"))
    create = ("c" in first and not first.startswith("-")) or _has(
        opts, "crAu", ("--create", "--append", "--update")
    )
    if extract:
        a.writes(c, _values(opts, "C", ("--directory",)) or ["."], "extracts into")
    if create:
        archive = _values(opts, "f", ("--file",))
        if not archive and first and not first.startswith("-") and "f" in first:
            idx = 1
            archive = texts[idx : idx + 1]
        a.writes(c, archive)
    a.ask(f"{_snip(c.src)} reads or writes archives with tar.")


def _r_unzip(a: _Analyzer, c: _Cmd) -> None:
    opts, _ = _scan(c.texts(), "dxP")
    a.writes(c, _values(opts, "d") or ["."], "extracts into")
    a.ask(f"{_snip(c.src)} extracts an archive.")


def _r_fifo(a: _Analyzer, c: _Cmd) -> None:
    a.tags.add("fifo")
    _, words = _opt_words(c, "mZ")
    a.writes(c, words[:1])
    a.ask(f"{_snip(c.src)} creates a named pipe or device node.")


# --------------------------------------------------------------------------- network


_CURL_VALUES = "AbcCdDeEFHKmoPQrtTuUwxXyYz"
_CURL_OUT = ("--output", "--dump-header", "--cookie-jar", "--output-dir", "--trace", "--trace-ascii", "--stderr",
             "--libcurl", "--etag-save", "--hsts", "--alt-svc")  # fmt: skip
_WGET_VALUES = "oaeiBOPtTwQlARDIXU"
_WGET_OUT = ("--output-document", "--output-file", "--append-output", "--directory-prefix", "--save-cookies",
             "--warc-file")  # fmt: skip


def _r_download(a: _Analyzer, c: _Cmd) -> None:
    texts = c.texts()
    if c.base == "curl":
        opts, _ = _scan(texts, _CURL_VALUES, _CURL_OUT)
        out = _values(opts, "oDc", _CURL_OUT)
    else:
        opts, _ = _scan(texts, _WGET_VALUES, _WGET_OUT)
        out = _values(opts, "oaOP", _WGET_OUT)
    out = [o for o in out if o != "-"]
    a.writes(c, out, "downloads into")
    a.network(c)


def _r_netcat(a: _Analyzer, c: _Cmd) -> None:
    for t in c.texts():
        if t.startswith("--") and _long_match(t.split("=", 1)[0], ("--exec", "--sh-exec", "--lua-exec")):
            a.deny(f"{_snip(c.src)} attaches a program to a network connection (a remote shell).")
            return
        if t.startswith("-") and not t.startswith("--") and ("e" in t[1:] or "c" in t[1:]):
            a.deny(f"{_snip(c.src)} attaches a program to a network connection (a remote shell).")
            return
    a.network(c)


def _r_socat(a: _Analyzer, c: _Cmd) -> None:
    for t in c.texts():
        low = t.lower()
        if "exec:" in low or "system:" in low or low.startswith(("exec,", "system,")):
            a.deny(f"{_snip(c.src)} attaches a program to a socat connection (a remote shell).")
            return
    a.network(c)


def _r_openssl(a: _Analyzer, c: _Cmd) -> None:
    if c.args and (c.args[0].text or "") in ("s_client", "s_server", "s_time"):
        a.network(c)
    else:
        a.ask(f"{_snip(c.src)} runs openssl, which can read and write files.")


def _r_network(a: _Analyzer, c: _Cmd) -> None:
    a.network(c)


# --------------------------------------------------------------------------- read-only programs
#
# A checker returns the operands the program reads as files (for the secret check) when its
# options are provably read-only, or a sentence saying why not. It may also call a.deny for
# the destructive forms (sort -o /etc/passwd).

ReadOnlyChecker = Callable[[_Analyzer, _Cmd, list[str]], "list[str] | str"]


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

    def check(a: _Analyzer, c: _Cmd, args: list[str]) -> list[str] | str:
        opts, idx = _scan(args, value_short, longs)
        bad = _has(opts, forbid_short, forbidden)
        if bad:
            return f"{_snip(c.src)}: `{c.base} {bad}` {why}."
        if c.base == "diff" and _has(opts, "r", ("--recursive",)):
            problem = _recursive_secret_root(a, c, [args[i] for i in idx])
            if problem:
                return problem
        # Option values are checked too: `wc --files0-from=/etc/shadow` echoes what it reads.
        values = [v for _, v in opts if v]
        return ([args[i] for i in idx[skip:]] if files else []) + values

    return check


def _ro_grep(a: _Analyzer, c: _Cmd, args: list[str]) -> list[str] | str:
    opts, idx = _scan(
        args,
        "efABCmdD",
        ("--regexp", "--file", "--after-context", "--before-context", "--context", "--max-count", "--devices",
         "--directories", "--label", "--include", "--exclude", "--exclude-dir", "--exclude-from", "--binary-files"),
    )  # fmt: skip
    pattern_given = _has(opts, "ef", ("--regexp", "--file"))
    files = [args[i] for i in (idx if pattern_given else idx[1:])]
    recursive = _has(opts, "rR", ("--recursive", "--dereference-recursive")) or "recurse" in _values(
        opts, "d", ("--directories",)
    )
    if recursive:
        problem = _recursive_secret_root(a, c, files)
        if problem:
            return problem
    return files + _values(opts, "f", ("--file", "--exclude-from"))


_SECRET_ROOTS = frozenset({"/", _HOME, "/home", "/etc", "/proc", "/root", "/var", "/*", _HOME + "/*"})


def _recursive_secret_root(a: _Analyzer, c: _Cmd, operands: list[str]) -> str | None:
    """A recursive content search of /, the home directory or a parent of the working
    directory reads ~/.ssh, /etc/shadow and the like along the way."""
    for op in operands:
        path = _normalise(op, a.cwd)
        if path in _SECRET_ROOTS or path == ".." or path.startswith(("../", "/proc/")):
            return f"{_snip(c.src)} searches the contents of {_shown(path)}, a tree that holds secrets."
    return None


def _ro_rg(a: _Analyzer, c: _Cmd, args: list[str]) -> list[str] | str:
    opts, idx = _scan(
        args,
        "eAfBCgjmMtTErd",
        ("--regexp", "--file", "--glob", "--iglob", "--type", "--type-not", "--max-count", "--max-depth", "--replace",
         "--encoding", "--context", "--after-context", "--before-context", "--threads", "--max-columns", "--type-add",
         "--ignore-file", "--sort", "--sortr", "--colors", "--color", "--path-separator", "--pre-glob", "--engine",
         "--max-filesize", "--context-separator", "--field-match-separator", "--field-context-separator"),
    )  # fmt: skip
    bad = _has(opts, "", ("--pre", "--hostname-bin"))
    if bad:
        return f"{_snip(c.src)}: `rg {bad}` runs another program on every file."
    pattern_given = _has(opts, "ef", ("--regexp", "--file"))
    files = [args[i] for i in (idx if pattern_given else idx[1:])]
    problem = _recursive_secret_root(a, c, files)
    if problem:
        return problem
    return files + _values(opts, "f", ("--file", "--ignore-file"))


_FIND_EXEC = frozenset({"-exec", "-execdir", "-ok", "-okdir"})
_FIND_WRITES = frozenset({"-fprint", "-fprint0", "-fprintf", "-fls"})
_FIND_FILTERS = frozenset(
    {"-name", "-iname", "-path", "-ipath", "-wholename", "-iwholename", "-regex", "-iregex", "-newer", "-mtime",
     "-mmin", "-atime", "-amin", "-ctime", "-cmin", "-size", "-user", "-group", "-perm", "-links", "-inum",
     "-samefile", "-empty", "-lname", "-ilname", "-uid", "-gid", "-nouser", "-nogroup", "-used", "-newermt",
     "-newerct", "-newerat", "-newermm"}
)  # fmt: skip
_DELETERS = frozenset({"rm", "shred", "unlink", "rmdir", "srm"})


def _ro_find(a: _Analyzer, c: _Cmd, args: list[str]) -> list[str] | str:
    i = 0
    while i < len(args) and (args[i] in ("-H", "-L", "-P", "-D") or args[i].startswith("-O")):
        i += 2 if args[i] == "-D" else 1
    starts: list[int] = []
    while i < len(args) and not (args[i].startswith("-") or args[i] in ("(", "!", ")", ",")):
        starts.append(i)
        i += 1
    start_words = [c.args[k] for k in starts] or [_literal(".")]
    filtered = any(t in _FIND_FILTERS for t in args[i:])
    reason: str | None = None
    j = i
    while j < len(args):
        t = args[j]
        if t in _FIND_EXEC:
            k = j + 1
            while k < len(args) and args[k] not in (";", "+"):
                k += 1
            _find_exec(a, c, t, c.args[j + 1 : k])
            reason = reason or f"{_snip(c.src)}: `find {t}` runs another command for each file it finds."
            j = k + 1
            continue
        if t == "-delete":
            _find_delete(a, c, start_words, filtered)
            reason = reason or f"{_snip(c.src)}: `find -delete` deletes the files it finds."
        elif t in _FIND_WRITES:
            if j + 1 < len(args):
                a.writes(c, [c.args[j + 1]])
            reason = reason or f"{_snip(c.src)}: `find {t}` writes to a file."
        j += 1
    return reason or [w.text or w.approx for w in start_words]


def _find_exec(a: _Analyzer, c: _Cmd, action: str, inner: list[Word]) -> None:
    if not inner:
        return
    base = (inner[0].text or inner[0].approx).rsplit("/", 1)[-1]
    if base in _DELETERS:
        a.deny(
            f"{_snip(c.src)} deletes every file it matches through `find {action} {base}`; "
            "list the files first and delete them by name."
        )
        return
    a.judge(inner, None, c.src, "find")


def _find_delete(a: _Analyzer, c: _Cmd, starts: list[Word], filtered: bool) -> None:
    for w in starts:
        path = _normalise(w.approx, a.cwd)
        critical = _critical_target(path)
        if not critical:
            problem = _write_problem(path)
            if problem:
                a.deny(f"{_snip(c.src)} deletes files under {w.src}: {problem}.")
                return
            continue
        if not filtered or path.startswith("/") and not path.startswith(_HOME):
            a.deny(f"{_snip(c.src)} deletes {critical} (`find -delete`).")
            return


def _ro_sort(a: _Analyzer, c: _Cmd, args: list[str]) -> list[str] | str:
    longs = ("--key", "--output", "--field-separator", "--temporary-directory", "--buffer-size", "--files0-from",
             "--batch-size", "--parallel", "--random-source", "--compress-program")  # fmt: skip
    opts, idx = _scan(args, "koStT", longs)
    out = _values(opts, "o", ("--output",))
    if out:
        a.writes(c, out)
        return f"{_snip(c.src)} writes its output to {out[0]} (sort -o)."
    if _has(opts, "", ("--compress-program",)):
        return f"{_snip(c.src)}: `sort --compress-program` runs another program."
    return [args[i] for i in idx]


def _ro_uniq(a: _Analyzer, c: _Cmd, args: list[str]) -> list[str] | str:
    _, idx = _scan(args, "fsw", ("--skip-fields", "--skip-chars", "--check-chars"))
    if len(idx) > 1:
        a.writes(c, [c.args[idx[1]]])
        return f"{_snip(c.src)} writes its output to {args[idx[1]]} (the second file of uniq)."
    return [args[i] for i in idx]


def _ro_xxd(a: _Analyzer, c: _Cmd, args: list[str]) -> list[str] | str:
    _, idx = _scan(args, "cglosnC")
    if len(idx) > 1:
        a.writes(c, [c.args[idx[1]]])
        return f"{_snip(c.src)} writes its output to {args[idx[1]]} (the second file of xxd)."
    return [args[i] for i in idx]


def _ro_tree(a: _Analyzer, c: _Cmd, args: list[str]) -> list[str] | str:
    opts, idx = _scan(
        args, "LPIHTo", ("--charset", "--filelimit", "--timefmt", "--sort", "--hintro", "--houtro")
    )
    out = _values(opts, "o", ("--output",))
    if out:
        a.writes(c, out)
        return f"{_snip(c.src)} writes its listing to {out[0]} (tree -o)."
    if _has(opts, "R"):
        return f"{_snip(c.src)}: `tree -R` writes an HTML file into every directory."
    return [args[i] for i in idx]


def _ro_shuf(a: _Analyzer, c: _Cmd, args: list[str]) -> list[str] | str:
    opts, idx = _scan(args, "inoe", ("--input-range", "--head-count", "--output", "--random-source"))
    out = _values(opts, "o", ("--output",))
    if out:
        a.writes(c, out)
        return f"{_snip(c.src)} writes its output to {out[0]} (shuf -o)."
    if _has(opts, "e", ("--echo",)):
        return []
    return [args[i] for i in idx]


def _ro_cd(a: _Analyzer, c: _Cmd, args: list[str]) -> list[str] | str:
    _, idx = _scan(args)
    if len(idx) > 1:
        return f"{_snip(c.src)} gives cd more than one directory."
    target = args[idx[0]] if idx else "~"
    if target == "-":
        a.cwd = None
        return []
    path = _normalise(target, a.cwd)
    a.cwd = path
    secret = _secret(path)
    if secret:
        return f"{_snip(c.src)} enters {secret}, which holds secrets."
    return []


def _ro_hostname(a: _Analyzer, c: _Cmd, args: list[str]) -> list[str] | str:
    allowed = {"-f", "-s", "-i", "-I", "-d", "-A", "-a", "--fqdn", "--long", "--short", "--domain", "--ip-address",
               "--all-ip-addresses", "--all-fqdns", "--alias"}  # fmt: skip
    if all(t in allowed for t in args):
        return []
    return f"{_snip(c.src)} can change the host name."


def _ro_jq(a: _Analyzer, c: _Cmd, args: list[str]) -> list[str] | str:
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


def _ro_printf(a: _Analyzer, c: _Cmd, args: list[str]) -> list[str] | str:
    if args and args[0].startswith("-v"):
        return f"{_snip(c.src)}: `printf -v` assigns a shell variable."
    return []


def _ro_test(a: _Analyzer, c: _Cmd, args: list[str]) -> list[str] | str:
    return []


def _ro_awk(a: _Analyzer, c: _Cmd, args: list[str]) -> list[str] | str:
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
            return f"{_snip(c.src)}: the awk option {t} can load code or write files."
        break
    if i >= len(args):
        return f"{_snip(c.src)} gives awk no program."
    program, files = args[i], args[i + 1 :]
    if "/inet/" in program:
        a.deny(f"{_snip(c.src)} opens a network socket from awk (/inet/), the way awk reverse shells do.")
        return f"{_snip(c.src)} opens a network socket from awk."
    problem = _awk_problem(program)
    if problem:
        danger = _code_danger(a, program)
        if danger:
            a.deny(f"{_snip(c.src)} {danger}")
        return f"{_snip(c.src)}: the awk program {problem}, so it is not provably read-only."
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


def _ro_sed(a: _Analyzer, c: _Cmd, args: list[str]) -> list[str] | str:
    opts, idx = _scan(args, "efl", ("--expression", "--file", "--line-length"))
    scripts = _values(opts, "e", ("--expression",))
    words = [c.args[i] for i in idx]
    if _values(opts, "f", ("--file",)):
        return f"{_snip(c.src)} reads its sed script from a file."
    if not scripts:
        if not words:
            return f"{_snip(c.src)} gives sed no script."
        scripts = [words[0].text or words[0].approx]
        words = words[1:]
    if any(n == "-i" or _long_match(n, ("--in-place",)) for n, _ in opts):
        a.writes(c, words, "edits in place")
        return f"{_snip(c.src)} edits files in place (sed -i)."
    for script in scripts:
        problem = _sed_problem(script)
        if problem:
            return f"{_snip(c.src)}: the sed script {problem}."
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


def _ro_git(a: _Analyzer, c: _Cmd, args: list[str]) -> list[str] | str:
    i = 0
    while i < len(args) and args[i].startswith("-"):
        if args[i] in ("--version", "--help") and i == len(args) - 1:
            return []
        if args[i] not in _GIT_GLOBAL_OK:
            return f"{_snip(c.src)} uses the git option {args[i]}, which can point git at other configuration or code."
        i += 1
    if i >= len(args):
        return f"{_snip(c.src)} runs git without a subcommand."
    sub, rest = args[i], args[i + 1 :]
    if sub not in _GIT_READ:
        return _git_change_reason(c, sub, rest)
    for t in rest:
        if t == "--":
            break
        name = t.split("=", 1)[0]
        if name.startswith("--") and _long_match(name, _GIT_FORBIDDEN):
            return f"{_snip(c.src)}: `git {sub} {name}` can write files or run other programs."
        if sub == "grep" and t.startswith("-O"):
            return f"{_snip(c.src)}: `git grep -O` opens files in a pager program."
    problem = _git_subcommand_problem(sub, rest)
    if problem:
        return f"{_snip(c.src)} {problem}"
    # `git diff --no-index /etc/shadow x` and `git show HEAD:.env` read files too.
    return [t.split(":", 1)[-1] for t in rest if not t.startswith("-")]


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
        reads = {"--get", "--get-all", "--get-regexp", "--list", "-l", "--get-urlmatch", "--get-color"}
        writes = {"--add", "--unset", "--unset-all", "--replace-all", "--edit", "-e", "--rename-section",
                  "--remove-section", "set", "unset", "edit", "rename-section", "remove-section"}  # fmt: skip
        if writes & set(rest) or not (
            reads & set(opts) or (positionals and positionals[0] in ("get", "list"))
        ):
            return "changes git configuration."
    return None


def _git_change_reason(c: _Cmd, sub: str, rest: list[str]) -> str:
    if sub == "push" and any(t in ("-f", "--force", "--force-with-lease", "--force-if-includes", "--mirror")
                             or t.startswith(("+", "--force")) for t in rest):  # fmt: skip
        return f"{_snip(c.src)} force-pushes, rewriting history on the remote."
    if (sub == "reset" and "--hard" in rest) or (
        sub == "clean" and any(t.startswith("-") and "f" in t for t in rest)
    ):
        return f"{_snip(c.src)} discards uncommitted work."
    if sub in ("checkout", "restore") and ("--" in rest or "." in rest):
        return f"{_snip(c.src)} discards uncommitted changes to files."
    if sub in ("push", "pull", "fetch", "clone", "ls-remote", "submodule"):
        return f"{_snip(c.src)} uses the network and changes the repository (`git {sub}`)."
    return f"{_snip(c.src)}: `git {sub}` changes the repository or is not known to be read-only."


# --------------------------------------------------------------------------- tables

_ANY = _ro()
_NO_FILES = _ro(files=False)

_READ_ONLY: dict[str, ReadOnlyChecker] = {
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
    "uniq": _ro_uniq,
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
    "sed": _ro_sed,
    "awk": _ro_awk,
    "gawk": _ro_awk,
    "mawk": _ro_awk,
    "nawk": _ro_awk,
    "basename": _NO_FILES,
    "dirname": _NO_FILES,
    "realpath": _NO_FILES,
    "readlink": _NO_FILES,
    "date": _ro(
        "dfr", ("--date", "--file", "--reference"), "s", ("--set",), files=False, why="sets the system clock"
    ),
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
    "xxd": _ro_xxd,
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

_RULES: dict[str, Callable[[_Analyzer, _Cmd], None]] = {
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
    **{name: _r_rm for name in ("rm", "rmdir", "unlink")},
    **{name: _r_disk for name in _DISK_DESTROYERS},
    "dd": _r_dd,
    **{name: _r_power for name in _POWER},
    **{name: _r_init for name in ("init", "telinit")},
    "systemctl": _r_systemctl,
    "kill": _r_kill,
    "killall5": _r_killall5,
    "crontab": _r_crontab,
    "history": _r_history,
    **{name: _r_chmod for name in ("chmod", "chown", "chgrp")},
    **{name: _r_attrs for name in ("chattr", "setfacl")},
    **{name: _r_copy for name in ("cp", "mv", "ln", "install", "rsync")},
    **{name: _r_write_all for name in ("tee", "touch", "mkdir", "truncate")},
    "tar": _r_tar,
    "unzip": _r_unzip,
    **{name: _r_fifo for name in ("mkfifo", "mknod")},
    **{name: _r_download for name in ("curl", "wget")},
    **{name: _r_netcat for name in ("nc", "ncat", "netcat")},
    "socat": _r_socat,
    "openssl": _r_openssl,
    **{
        name: _r_network
        for name in _NETWORK - {"curl", "wget", "nc", "ncat", "netcat", "socat", "openssl", "rsync"}
    },
}
