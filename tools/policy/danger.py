"""Programs that change the system or reach the network: never `allow`, and `deny` for the
destructive forms (rm -rf /, dd onto a disk, mkfs, kill -1, chmod -R on system trees, writes
into system directories, remote shells, secrets sent over the network). Also the scan of
program text (python -c, awk, perl -e) for reverse shells, fork bombs and deletes.
"""

from __future__ import annotations

import re

from tools.policy.judge import Judge, Rule
from tools.policy.paths import HARMLESS_DEVICES, critical_target, normalise, secret_in
from tools.policy.words import (
    DYN,
    Cmd,
    has_option,
    literal,
    long_match,
    option_values,
    option_words,
    scan_options,
    snip,
)

# --------------------------------------------------------------------------- destructive programs

_DISK_DESTROYERS = frozenset(
    {"fdisk", "sfdisk", "cfdisk", "gdisk", "sgdisk", "parted", "wipefs", "shred", "mkswap", "blkdiscard", "mke2fs",
     "srm"}
)  # fmt: skip
_POWER = frozenset({"shutdown", "reboot", "halt", "poweroff"})


def _r_rm(a: Judge, c: Cmd) -> None:
    opts, targets = option_words(c)
    if any(long_match(n, ("--no-preserve-root",)) for n, _ in opts):
        a.deny(f"{snip(c.src)} uses --no-preserve-root, which exists only to let rm delete /.")
        return
    recursive = c.base == "rm" and has_option(opts, "rR", ("--recursive",))
    for w in targets:
        critical = critical_target(normalise(w.approx, a.cwd)) if recursive else None
        if critical:
            a.deny(f"{snip(c.src)} deletes {critical} recursively.")
            return
        a.writes(c, [w], "deletes")
    a.ask(f"{snip(c.src)} deletes files.")


def disk_rule(a: Judge, c: Cmd) -> None:
    if c.base == "shred":
        a.deny(f"{snip(c.src)}: `shred` overwrites files so they can never be recovered.")
    else:
        a.deny(f"{snip(c.src)}: `{c.base}` formats, wipes or repartitions disks.")


def _r_dd(a: Judge, c: Cmd) -> None:
    for w in c.args:
        if w.approx.startswith("of="):
            path = normalise(w.approx[3:], a.cwd)
            if path.startswith("/dev/") and path not in HARMLESS_DEVICES:
                a.deny(f"{snip(c.src)} writes raw data onto the device {path}.")
                return
            a.writes(c, [w.approx[3:]])
    a.ask(f"{snip(c.src)} copies raw data with dd.")


def _r_power(a: Judge, c: Cmd) -> None:
    a.deny(f"{snip(c.src)} shuts down or restarts the machine.")


def _r_init(a: Judge, c: Cmd) -> None:
    if c.args and (c.args[0].text or "") in ("0", "6", "1", "s", "S", "single"):
        a.deny(f"{snip(c.src)} changes the runlevel, shutting down or restarting the machine.")
    else:
        a.ask(f"{snip(c.src)} talks to the init system.")


def _r_systemctl(a: Judge, c: Cmd) -> None:
    stops = {"poweroff", "reboot", "halt", "kexec", "emergency", "rescue", "soft-reboot"}
    if any((w.text or "") in stops for w in c.args):
        a.deny(f"{snip(c.src)} shuts down or restarts the machine.")
    else:
        a.ask(f"{snip(c.src)} manages system services.")


def _r_kill(a: Judge, c: Cmd) -> None:
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
        a.deny(f"{snip(c.src)} signals every process the user can reach (`kill -1`).")
    elif "1" in pids:
        a.deny(f"{snip(c.src)} signals process 1 (init), which takes the whole system down.")
    else:
        a.ask(f"{snip(c.src)} sends a signal to processes.")


def _r_killall5(a: Judge, c: Cmd) -> None:
    a.deny(f"{snip(c.src)}: `killall5` signals every process on the system.")


def _r_crontab(a: Judge, c: Cmd) -> None:
    opts, _ = scan_options(c.texts(), "u")
    if has_option(opts, "r"):
        a.deny(f"{snip(c.src)} removes every scheduled cron job of the user.")
    else:
        a.ask(f"{snip(c.src)} changes scheduled cron jobs.")


def _r_history(a: Judge, c: Cmd) -> None:
    a.ask(f"{snip(c.src)} tampers with the shell history.")


def _r_chmod(a: Judge, c: Cmd) -> None:
    opts, words = option_words(c, "", ("--reference",))
    recursive = has_option(opts, "R", ("--recursive",))
    reference = option_values(opts, "", ("--reference",))
    targets = words if reference else words[1:]
    for w in targets:
        path = normalise(w.approx, a.cwd)
        critical = critical_target(path) if recursive and path.startswith(("/", DYN)) else None
        if critical:
            a.deny(f"{snip(c.src)} changes the ownership or permissions of {critical} recursively.")
            return
    a.writes(c, targets, "changes the permissions of")
    a.ask(f"{snip(c.src)} changes file permissions or ownership.")


def _r_attrs(a: Judge, c: Cmd) -> None:
    _, words = option_words(c, "mMxX")
    a.writes(c, words[1:] if c.base == "chattr" else words, "changes the attributes of")
    a.ask(f"{snip(c.src)} changes file attributes.")


_COPY_VALUES = {"cp": "tS", "mv": "tS", "ln": "tS", "install": "tSmog", "rsync": "eBfMT"}
_COPY_LONG = ("--target-directory", "--suffix")


def _r_copy(a: Judge, c: Cmd) -> None:
    opts, words = option_words(
        c, _COPY_VALUES.get(c.base, ""), (*_COPY_LONG, "--rsh", "--filter", "--exclude", "--include")
    )
    directory = option_values(opts, "t", ("--target-directory",))
    if c.base == "rsync":
        remote = [w for w in words if ":" in w.approx.split("/", 1)[0]]
        if remote:
            _r_network(a, c)
        targets = words[-1:] if len(words) >= 2 else []
        if any(long_match(n, ("--delete", "--remove-source-files")) for n, _ in opts) and targets:
            critical = critical_target(normalise(targets[0].approx, a.cwd))
            if critical:
                a.deny(f"{snip(c.src)} mirrors into {critical} and deletes everything else there.")
                return
    elif c.base == "install" and has_option(opts, "d", ("--directory",)):
        targets = words
    elif directory:
        targets = [literal(d) for d in directory]
    elif c.base == "ln" and len(words) == 1:
        targets = []
    else:
        targets = words[-1:] if len(words) >= 2 else []
    if c.base == "mv":
        targets = [*targets, *words]  # moving a file away deletes it from its old place
    a.writes(c, targets)
    verb = {"cp": "copies", "mv": "moves", "ln": "links", "install": "installs", "rsync": "copies"}[c.base]
    a.ask(f"{snip(c.src)} {verb} files.")


def _r_write_all(a: Judge, c: Cmd) -> None:
    # tee, touch, mkdir, truncate: every operand is written.
    _, words = option_words(c, {"touch": "drt", "mkdir": "m", "truncate": "sro"}.get(c.base, ""))
    a.writes(c, words)
    if c.base == "tee":
        a.ask(f"{snip(c.src)} writes its input to files with tee.")
    else:
        a.ask(f"{snip(c.src)} creates or changes files ({c.base}).")


def _r_tar(a: Judge, c: Cmd) -> None:
    texts = c.texts()
    first = texts[0] if texts else ""
    opts, _ = scan_options(texts, "CfbHIKLNTVX", ("--directory", "--file"))
    extract = ("x" in first and not first.startswith("-")) or has_option(opts, "x", ("--extract", "--get"))
    create = ("c" in first and not first.startswith("-")) or has_option(
        opts, "crAu", ("--create", "--append", "--update")
    )
    if extract:
        a.writes(c, option_values(opts, "C", ("--directory",)) or ["."], "extracts into")
    if create:
        archive = option_values(opts, "f", ("--file",))
        if not archive and first and not first.startswith("-") and "f" in first:
            idx = 1
            archive = texts[idx : idx + 1]
        a.writes(c, archive)
    a.ask(f"{snip(c.src)} reads or writes archives with tar.")


def _r_unzip(a: Judge, c: Cmd) -> None:
    opts, _ = scan_options(c.texts(), "dxP")
    a.writes(c, option_values(opts, "d") or ["."], "extracts into")
    a.ask(f"{snip(c.src)} extracts an archive.")


def _r_fifo(a: Judge, c: Cmd) -> None:
    a.tags.add("fifo")
    _, words = option_words(c, "mZ")
    a.writes(c, words[:1])
    a.ask(f"{snip(c.src)} creates a named pipe or device node.")


# --------------------------------------------------------------------------- network

_NETWORK = frozenset(
    {"curl", "wget", "nc", "ncat", "netcat", "socat", "telnet", "ssh", "scp", "sftp", "ftp", "tftp", "lftp", "aria2c",
     "http", "https", "xh", "httpie", "smbclient", "rsync", "nmap", "openssl", "whois", "dig", "nslookup", "host",
     "ping", "traceroute", "git-remote", "ssh-copy-id", "sshpass", "ab", "finger", "mosh"}
)  # fmt: skip
_CURL_VALUES = "AbcCdDeEFHKmoPQrtTuUwxXyYz"
_CURL_OUT = ("--output", "--dump-header", "--cookie-jar", "--output-dir", "--trace", "--trace-ascii", "--stderr",
             "--libcurl", "--etag-save", "--hsts", "--alt-svc")  # fmt: skip
_WGET_VALUES = "oaeiBOPtTwQlARDIXU"
_WGET_OUT = ("--output-document", "--output-file", "--append-output", "--directory-prefix", "--save-cookies",
             "--warc-file")  # fmt: skip


def _r_download(a: Judge, c: Cmd) -> None:
    texts = c.texts()
    if c.base == "curl":
        opts, _ = scan_options(texts, _CURL_VALUES, _CURL_OUT)
        out = option_values(opts, "oDc", _CURL_OUT)
    else:
        opts, _ = scan_options(texts, _WGET_VALUES, _WGET_OUT)
        out = option_values(opts, "oaOP", _WGET_OUT)
    out = [o for o in out if o != "-"]
    a.writes(c, out, "downloads into")
    _r_network(a, c)


def _r_netcat(a: Judge, c: Cmd) -> None:
    for t in c.texts():
        if t.startswith("--"):
            attaches = long_match(t.split("=", 1)[0], ("--exec", "--sh-exec", "--lua-exec")) is not None
        else:
            attaches = t.startswith("-") and ("e" in t[1:] or "c" in t[1:])
        if attaches:
            a.deny(f"{snip(c.src)} attaches a program to a network connection (a remote shell).")
            return
    _r_network(a, c)


def _r_socat(a: Judge, c: Cmd) -> None:
    for t in c.texts():
        low = t.lower()
        if "exec:" in low or "system:" in low or low.startswith(("exec,", "system,")):
            a.deny(f"{snip(c.src)} attaches a program to a socat connection (a remote shell).")
            return
    _r_network(a, c)


def _r_openssl(a: Judge, c: Cmd) -> None:
    if c.args and (c.args[0].text or "") in ("s_client", "s_server", "s_time"):
        _r_network(a, c)
    else:
        a.ask(f"{snip(c.src)} runs openssl, which can read and write files.")


def _r_network(a: Judge, c: Cmd) -> None:
    """A program that uses the network: ask, and deny when it is handed a secret to send."""
    a.tags.add("net")
    for w in c.args:
        secret = secret_in(normalise(w.approx.lstrip("@<").split("=", 1)[-1], a.cwd)) if w.approx else None
        if secret and not w.approx.startswith("-"):
            a.deny(f"{snip(c.src)} sends {secret}, which holds secrets, over the network.")
            return
    if isinstance(c.fed, tuple) and c.fed[0] == "file" and c.fed[1]:
        secret = secret_in(normalise(c.fed[1], a.cwd))
        if secret:
            a.deny(f"{snip(c.src)} sends {secret}, which holds secrets, over the network.")
            return
    where = "" if a.allow_network else " (and the sandbox blocks the network for commands)"
    a.ask(f"{snip(c.src)} uses the network through `{c.base}`{where}.")


# --------------------------------------------------------------------------- program text

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


def code_danger(a: Judge, code: str) -> str | None:
    """Deny-worthy patterns in program text (python -c, awk, perl -e ...): reverse shells,
    fork bombs, rmtree of critical paths and embedded shell commands that are denied."""
    code = code[:20_000]
    if _NET_CODE_RE.search(code) and _EXEC_CODE_RE.search(code):
        return "opens a network connection and runs a shell or process over it (a reverse or bind shell)."
    if _FORK_CODE_RE.search(code):
        return "is a fork bomb: it starts processes in an endless loop."
    for m in _RMTREE_RE.finditer(code):
        target = critical_target(normalise(m.group(2), a.cwd))
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


RULES: dict[str, Rule] = {
    **{name: _r_rm for name in ("rm", "rmdir", "unlink")},
    **{name: disk_rule for name in _DISK_DESTROYERS},
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
