"""Path classification for the command policy: system directories, disk devices, home
dotfiles, recursive-delete targets and obvious secrets. Paths are normalised first, with
every home directory written /~.
"""

from __future__ import annotations

import fnmatch
import posixpath
import re
from collections.abc import Iterable

from tools.policy.words import DYN, GLOB_CHARS

HOME = "/~"  # the home directory in normalised paths, whoever's it is
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
HARMLESS_DEVICES = frozenset(
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


def normalise(path: str, cwd: str | None) -> str:
    """An absolute or cwd-relative normalised path; every home directory becomes /~."""
    if path.startswith(DYN):
        return path  # `$DIR/` must stay distinguishable from `$DIR`
    if path.startswith("~"):
        slash = path.find("/")
        path = HOME + (path[slash:] if slash >= 0 else "")
    elif path.startswith("/"):
        path = _HOME_PREFIX_RE.sub(HOME, path, count=1)
    elif cwd:
        path = posixpath.join(cwd, path)
    norm = posixpath.normpath(path) if path else "."
    if norm.startswith("//"):
        norm = "/" + norm.lstrip("/")
    return norm


def _top_component_matches(path: str, names: Iterable[str]) -> str | None:
    """For an absolute path whose first component is a glob, the top directory it can hit."""
    first = path[1:].split("/", 1)[0]
    if not any(c in GLOB_CHARS for c in first):
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


def write_problem(path: str) -> str | None:
    """Why writing to this normalised path is denied, or None."""
    if path in HARMLESS_DEVICES:
        return None
    if _DISK_RE.match(path):
        return f"{path} is a disk or memory device"
    area = _system_area(path)
    if area == "/":
        return "/ is the root of the filesystem"
    if area:
        return f"{area} is a system directory"
    if path.startswith(HOME + "/"):
        first = path[len(HOME) + 1 :].split("/", 1)[0]
        if first.startswith("."):
            return f"~/{first} is a dotfile in the home directory (shell startup, ssh keys, config)"
    return None


def critical_target(path: str) -> str | None:
    """What a recursive delete (or chmod -R) of this normalised path would wipe, if critical."""
    if path.startswith(DYN):
        rest = path[1:]
        return (
            "whatever the variable holds, from the root (it could be empty)" if rest in ("/", "/*") else None
        )
    if path in ("/", "/*", "/.*"):
        return "the root filesystem"
    if path in (HOME, HOME + "/*", HOME + "/.*", "/home", "/home/*"):
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
        "id_ecdsa", "id_ed25519", "credentials", "credentials.json", "credentials.toml", ".htpasswd", "shadow",
        "gshadow", ".my.cnf",
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
    ".cache/huggingface/",
    ".cargo/credentials",
)
# Directories that hold nothing but secrets (Docker and Kubernetes secrets, TLS private keys).
_SECRET_DIRS = ("/run/secrets", "/var/run/secrets", "/etc/ssl/private")
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
_SECRET_HINT = re.compile(r"ssh|gnupg|aws|azure|kube|docker|password|netrc|pgpass|credential|npmrc|pypirc|vault|history|env|id_|htpasswd|shadow|sudoers|environ|/mem|kcore|huggingface|my\.cnf|cargo|secrets|ssl/private|\.pem|\.key|\.p12|\.pfx|\.kdbx|\.config/|/dev/|keyrings|[*?\[]")  # fmt: skip


def shown(path: str) -> str:
    """A normalised path as the user would write it (/~ back to ~)."""
    return "~" + path[len(HOME) :] if path == HOME or path.startswith(HOME + "/") else path


def secret_in(path: str) -> str | None:
    """Names an obvious secret a normalised path points at (or a glob in it could match)."""
    if not _SECRET_HINT.search(path):
        return None
    parts = path.split("/")
    for k, comp in enumerate(parts):
        if not comp:
            continue
        hit = False
        if any(c in GLOB_CHARS for c in comp):
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
            return shown("/".join(parts[: k + 1]))
    if any(sub in path for sub in _SECRET_SUBPATHS):
        return shown(path)
    if path.startswith("/"):
        if _DISK_RE.match(path):
            return f"the raw device {path}"
        if any(fnmatch.fnmatchcase(path, g) for g in _SECRET_PATH_GLOBS):
            return path
        for d in _SECRET_DIRS:
            if path == d or path.startswith(d + "/"):
                return path
        if any(c in GLOB_CHARS for c in path) and any(fnmatch.fnmatchcase(s, path) for s in _SECRET_PATHS):
            return path
    return None


# Trees whose contents hold secrets: searching them recursively (grep -r x /) or handing them
# to another command through xargs reads ~/.ssh, /etc/shadow and the like along the way.
SECRET_ROOTS = frozenset({"/", HOME, "/home", "/etc", "/proc", "/root", "/var", "/run", "/*", HOME + "/*"})
