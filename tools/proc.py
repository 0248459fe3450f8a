"""Child processes for tools: a scrubbed environment, capped output, and a kill that reaches
the whole process tree on timeout, on the run's cancellation token and on task cancellation."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from runtime.cancel import CancellationToken

# Variables a child always keeps, whatever their names look like.
_KEEP = frozenset(
    {"PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TERM", "TZ", "TMPDIR", "PWD", "COLUMNS",
     "LINES", "NO_COLOR", "COLORTERM", "VIRTUAL_ENV", "PYTHONIOENCODING"}
)  # fmt: skip
# Names that carry credentials, and names that change what a shell runs before the command
# (BASH_ENV, exported functions), which would undo the command policy.
_SECRET_NAME = re.compile(
    r"API_?KEY|TOKEN|SECRET|PASSW(?:OR)?D|PASSPHRASE|CREDENTIAL|PRIVATE|_KEY$|^KEY$|AUTH(?!OR)|COOKIE|SESSION|"
    r"^AWS_|^AZURE_|^GOOGLE_APPLICATION|^GCP_|^OPENAI_|^ANTHROPIC_|^HF_|^HUGGING|DATABASE_URL|_DSN$|"
    r"^SSH_AUTH_SOCK$|^GPG_AGENT|^KRB5|^VAULT_",
    re.IGNORECASE,
)
_SHELL_HIJACK = re.compile(
    r"^(?:BASH_ENV|ENV|BASH_FUNC_.*|SHELLOPTS|BASHOPTS|PROMPT_COMMAND|PS4|IFS|CDPATH|GLOBIGNORE|LD_PRELOAD|LD_AUDIT|"
    r"LD_LIBRARY_PATH)$"
)
_URL_WITH_PASSWORD = re.compile(r"://[^/\s:@]+:[^/\s@]+@")


def scrubbed_env(base: Mapping[str, str] | None = None, *, secrets: Iterable[str] = ()) -> dict[str, str]:
    """The environment for a child process: secrets and shell-startup hooks removed.

    Drops names that look like credentials (OPENAI_API_KEY, *_TOKEN, *SECRET*, AWS_* ...),
    values that embed a password (`postgres://u:p@host`) or equal a known secret, and
    variables that run code before the command (BASH_ENV, BASH_FUNC_*, LD_PRELOAD).
    """
    source = dict(os.environ if base is None else base)
    known = {s for s in secrets if s}
    out: dict[str, str] = {}
    for name, value in source.items():
        keep = name in _KEEP or name.startswith("LC_")
        if not keep:
            if _SECRET_NAME.search(name) or _SHELL_HIJACK.match(name):
                continue
            if _URL_WITH_PASSWORD.search(value):
                continue
        if value in known or any(s in value for s in known if len(s) >= 8):
            continue
        out[name] = value
    out.setdefault("PATH", os.defpath)
    return out


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
) -> ProcResult:
    """Run `argv` with stdin closed and output capped; kill its whole process group when it
    times out, when `cancel` fires or when the awaiting task is cancelled.

    The child leads a new session, so the group holds everything it starts; whatever is
    still running in that group when the command ends is killed too.
    """
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
