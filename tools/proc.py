"""Child processes for tools: a scrubbed environment, capped output, and a kill that reaches
the whole process tree on timeout, on the run's cancellation token and on task cancellation."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from runtime.cancel import CancellationToken

GUARD = Path(__file__).with_name("guard.py")

# The environment a child gets: an allowlist, because credentials hide under any name
# (GITHUB_PAT, MYSQL_PWD, CI_JOB_JWT, REDIS_URL=redis://:pw@host ...). These name the user,
# the locale, the terminal and the active virtualenv; none carries a secret or changes what
# a shell runs. Anything else must be named in settings.tools.env_passthrough.
_ALLOWED = frozenset(
    {"PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TERM", "TZ", "TMPDIR", "PWD", "COLUMNS",
     "LINES", "NO_COLOR", "COLORTERM", "VIRTUAL_ENV", "PYTHONIOENCODING"}
)  # fmt: skip
# Variables that run code before the command (a startup file, exported functions, a preloaded
# library), which would undo the command policy: dropped even when passed through.
_SHELL_HIJACK = re.compile(
    r"^(?:BASH_ENV|ENV|BASH_FUNC_.*|SHELLOPTS|BASHOPTS|PROMPT_COMMAND|PS4|IFS|CDPATH|GLOBIGNORE|LD_PRELOAD|LD_AUDIT|"
    r"LD_LIBRARY_PATH)$"
)


def scrubbed_env(
    base: Mapping[str, str] | None = None, *, secrets: Iterable[str] = (), passthrough: Iterable[str] = ()
) -> dict[str, str]:
    """The environment for a child process: only the allowlisted variables (PATH, HOME, USER,
    LANG, LC_*, TERM, TZ ...) and the names in `passthrough` (settings.tools.env_passthrough).

    Variables that run code before the command (BASH_ENV, BASH_FUNC_*, LD_PRELOAD) are dropped
    even when passed through, and so is any value that is or contains a known secret.
    """
    source = dict(os.environ if base is None else base)
    allowed = _ALLOWED | {name for name in passthrough if name}
    known = {s for s in secrets if s}
    out: dict[str, str] = {}
    for name, value in source.items():
        if not (name in allowed or name.startswith("LC_")) or _SHELL_HIJACK.match(name):
            continue
        if value in known or any(s in value for s in known if len(s) >= 8):
            continue
        out[name] = value
    out.setdefault("PATH", os.defpath)
    return out


# Configuration that makes read-only git commands run programs: core.fsmonitor runs on
# `git status`, hooks on `git commit`, log.showSignature and *.gpgSign run gpg.program. The
# workspace's own .git/config is read-only in the sandbox, but not without one, and a nested
# repository's config never is. Git applies GIT_CONFIG_KEY_n/VALUE_n over every config file.
# Hooks are therefore disabled for every git command Shunter runs. Not covered here: an
# external diff (diff.external; an empty override breaks `git diff` instead of disabling
# it) and per-driver filters or textconv; those need the config itself to be protected.
_GIT_OVERRIDES = (
    ("core.fsmonitor", "false"),
    ("core.hooksPath", "/dev/null"),
    ("core.pager", "cat"),
    ("log.showSignature", "false"),
    ("commit.gpgSign", "false"),
    ("tag.gpgSign", "false"),
)
_GIT_ENV = {
    # No editor, pager or password prompt can wait on a terminal that is not there.
    "GIT_EDITOR": "true",
    "GIT_SEQUENCE_EDITOR": "true",
    "GIT_PAGER": "cat",
    "GIT_TERMINAL_PROMPT": "0",
}


def git_safe_env(base: Mapping[str, str]) -> dict[str, str]:
    """`base` plus the variables that stop git from running programs named in repository config
    (fsmonitor, hooks, signing) or waiting on an editor, pager or prompt."""
    env = {k: v for k, v in base.items() if not k.startswith(("GIT_CONFIG_KEY_", "GIT_CONFIG_VALUE_"))}
    env.update(_GIT_ENV)
    env["GIT_CONFIG_COUNT"] = str(len(_GIT_OVERRIDES))
    for i, (key, value) in enumerate(_GIT_OVERRIDES):
        env[f"GIT_CONFIG_KEY_{i}"] = key
        env[f"GIT_CONFIG_VALUE_{i}"] = value
    return env


@dataclass
class ProcResult:
    """How a child process ended and what it printed (each stream decoded as UTF-8)."""

    exit_code: int | None
    stdout: str
    stderr: str
    timed_out: bool = False
    cancelled: bool = False
    truncated: bool = False
    duration_s: float = 0.0


class _Capture:
    """Both streams share one byte budget; past it we keep reading (so the child never blocks
    on a full pipe) but stop storing."""

    def __init__(self, limit: int):
        self.remaining = max(limit, 0)
        self.truncated = False

    async def drain(self, stream: asyncio.StreamReader | None, into: bytearray) -> None:
        if stream is None:
            return
        while chunk := await stream.read(65536):
            keep = chunk[: self.remaining]
            if keep:
                into += keep
                self.remaining -= len(keep)
            if len(keep) < len(chunk):
                self.truncated = True


def dying_with_us(
    argv: Sequence[str], env: Mapping[str, str], *, group: bool
) -> tuple[list[str], dict[str, str]]:
    """`argv` and `env` for a child that dies with this process even on kill -9 (Linux; elsewhere
    unchanged): run through tools/guard.py. `group` keeps the program in the guard's process
    group (commands, whose group the caller kills); otherwise the guard gives it its own (servers).
    """
    if not sys.platform.startswith("linux"):
        return list(argv), dict(env)
    mode = ["--group"] if group else []
    return [sys.executable, "-I", "-S", str(GUARD), *mode, *argv], {
        **env,
        "SHUNTER_GUARD_PARENT": str(os.getpid()),
    }


class _ExitProtocol(asyncio.subprocess.SubprocessStreamProtocol):
    """Resolves `exited` the moment the child exits. Process.wait() also waits until every
    pipe is closed, which a background grandchild holding stdout can delay forever."""

    def __init__(self, limit: int, loop: asyncio.AbstractEventLoop):
        super().__init__(limit=limit, loop=loop)
        self.exited: asyncio.Future[None] = loop.create_future()

    def process_exited(self) -> None:
        super().process_exited()
        if not self.exited.done():
            self.exited.set_result(None)


_KILL_GRACE_S = 0.5
_DRAIN_AFTER_EXIT_S = 1.0


async def run_process(
    argv: Sequence[str],
    *,
    cwd: Path | str,
    env: Mapping[str, str],
    timeout_s: float | None,
    max_output_bytes: int,
    cancel: CancellationToken | None = None,
    guard: bool = True,
) -> ProcResult:
    """Run `argv` with stdin closed and output capped; kill its whole process group when it
    times out, when `cancel` fires or when the awaiting task is cancelled.

    The child leads a new session, so the group holds everything it starts; whatever is
    still running in that group when the command ends is killed too. With `guard` (the
    default) the group is killed as well when this process dies, even of kill -9.
    """
    if guard:
        argv, env = dying_with_us(argv, env, group=True)
    started = time.monotonic()
    loop = asyncio.get_running_loop()
    spawn = asyncio.ensure_future(
        loop.subprocess_exec(
            lambda: _ExitProtocol(2**16, loop),
            *argv,
            cwd=str(cwd),
            env=dict(env),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
    )
    try:
        transport, protocol = await asyncio.shield(spawn)
    except asyncio.CancelledError:
        # Cancelled while the pipes were still connecting: the child is already running (and
        # may have started others), and asyncio would kill only the child itself.
        transport, _ = await spawn
        _kill_group(transport.get_pid(), signal.SIGKILL)
        raise
    proc = asyncio.subprocess.Process(transport, protocol, loop)
    capture = _Capture(max_output_bytes)
    out, err = bytearray(), bytearray()
    readers = [
        asyncio.ensure_future(capture.drain(proc.stdout, out)),
        asyncio.ensure_future(capture.drain(proc.stderr, err)),
    ]
    waiter = protocol.exited
    cancel_waiter = asyncio.ensure_future(cancel.wait()) if cancel is not None else None
    timed_out = cancelled = False
    try:
        watch = {waiter} if cancel_waiter is None else {waiter, cancel_waiter}
        done, _ = await asyncio.wait(watch, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
        if waiter not in done:
            timed_out = not done
            cancelled = bool(done)
            await _terminate(proc.pid, protocol.exited)
        else:
            _kill_group(proc.pid, signal.SIGKILL)  # leftovers started in the background
        await _finish_readers(readers)
    except asyncio.CancelledError:
        # The registry runs tools under the token's guard, which cancels this task: the
        # children must not outlive it. Kill at once; the event loop's watcher reaps them.
        _kill_group(proc.pid, signal.SIGKILL)
        for task in readers:
            task.cancel()
        raise
    finally:
        if cancel_waiter is not None:
            cancel_waiter.cancel()
        if protocol.exited.done():
            transport.close()  # the pipes, even if something outside the group still holds them
    return ProcResult(
        exit_code=transport.get_returncode(),
        stdout=out.decode("utf-8", errors="replace"),
        stderr=err.decode("utf-8", errors="replace"),
        timed_out=timed_out,
        cancelled=cancelled,
        truncated=capture.truncated,
        duration_s=round(time.monotonic() - started, 3),
    )


async def _terminate(pid: int, exited: asyncio.Future[None]) -> None:
    """SIGTERM the group, give it a moment, then SIGKILL whatever is left."""
    _kill_group(pid, signal.SIGTERM)
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(asyncio.shield(exited), _KILL_GRACE_S)
    _kill_group(pid, signal.SIGKILL)
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(asyncio.shield(exited), _KILL_GRACE_S)


async def _finish_readers(readers: Sequence[asyncio.Future[None]]) -> None:
    # A process that left the group (setsid) may still hold the pipes: stop waiting for it.
    _, pending = await asyncio.wait(readers, timeout=_DRAIN_AFTER_EXIT_S)
    for task in pending:
        task.cancel()


def _kill_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
