"""Runs a program so that it dies with Shunter, even when Shunter is killed with -9.

Started as `python -I -S guard.py [--group] PROGRAM ARGS...` (the standard library only, so it
starts in a few milliseconds). On Linux it asks the kernel for a signal when its parent dies
(PR_SET_PDEATHSIG) and then stops everything the program started. Stdin, stdout and stderr are
the program's own: the guard never touches them.

Two shapes, because the two callers own process groups differently:
- default (MCP servers): the program leads a group of its own, which the guard stops with
  SIGTERM then SIGKILL when Shunter dies or asks the guard to stop, so `npx` and whatever it
  spawned go too.
- `--group` (shell commands): the program stays in the guard's group, which the caller already
  made a new session and kills as a whole on timeout or cancellation. The guard only adds the
  case the caller cannot handle, its own death: then the guard kills every process below it
  (bwrap's sandbox included, which is a session of its own) and then its group.
"""

import os
import signal
import sys
import time

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
PARENT_ENV = "SHUNTER_GUARD_PARENT"
# A signal nothing else sends us, so "the parent died" cannot be mixed up with a caller's SIGTERM.
PARENT_DIED = signal.SIGUSR2


def _exit_like(code: int) -> int:
    """Return the child's exit code, or die of the child's signal so the caller sees it too."""
    if code < 0:
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
        return 128 - code
    return code


def _prctl(option: int, value: int) -> None:
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(option, value)


def _watch_parent() -> bool:
    """Ask for PARENT_DIED when the parent goes; False if it is already gone."""
    parent = int(os.environ.pop(PARENT_ENV, "0") or 0)
    _prctl(PR_SET_PDEATHSIG, PARENT_DIED)
    return not (parent and os.getppid() != parent)  # the parent may have died before the request


def _server(argv: list[str]) -> int:
    # Imported here, not above: a command's guard starts faster without it.
    import subprocess

    def stop(child: subprocess.Popen[bytes]) -> None:
        for sig, grace in ((signal.SIGTERM, 2.0), (signal.SIGKILL, 0.0)):
            try:
                os.killpg(child.pid, sig)
            except OSError:
                return
            deadline = time.monotonic() + grace
            while child.poll() is None and time.monotonic() < deadline:
                time.sleep(0.02)
            if child.poll() is not None:
                return

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Shunter itself decides when a server stops
    try:
        child = subprocess.Popen(argv, start_new_session=True)
    except OSError as e:
        print(f"could not start {argv[0]}: {e.strerror}", file=sys.stderr)
        return 127

    def on_signal(signum: int, frame: object) -> None:
        stop(child)
        os._exit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGHUP, PARENT_DIED):
        signal.signal(sig, on_signal)
    code = child.wait()
    stop(child)  # what the program left behind in its group (npx's node, say)
    return _exit_like(code)


def _living_descendants() -> list[int]:
    """Every process below the guard that is not a zombie, from /proc's parent links."""
    children: dict[int, list[int]] = {}
    zombies = set()
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                state, ppid = f.read().rsplit(b")", 1)[1].split()[:2]
        except (OSError, ValueError):
            continue  # gone meanwhile
        children.setdefault(int(ppid), []).append(int(name))
        if state in (b"Z", b"X"):
            zombies.add(int(name))
    found, todo = [], [os.getpid()]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return [pid for pid in found if pid not in zombies]


def _kill_tree() -> None:
    """Kill everything below the guard, also what left its process group (bwrap's sandbox is a
    new session). Orphans come to the guard as their subreaper, so a process whose parent was
    killed first is found on the next look."""
    for _ in range(100):
        tree = _living_descendants()
        if not tree:
            return
        for pid in tree:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        try:
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass
        except ChildProcessError:
            pass
        time.sleep(0.01)


def _command(argv: list[str]) -> int:
    def parent_died(signum: int, frame: object) -> None:
        _kill_tree()
        os.killpg(0, signal.SIGKILL)

    signal.signal(PARENT_DIED, parent_died)
    _prctl(PR_SET_CHILD_SUBREAPER, 1)
    # The caller's SIGTERM to the group is for the command, which may take its grace period;
    # the guard waits for it. A handler, unlike SIG_IGN, is reset by exec: the command keeps
    # the default. (fork and exec rather than subprocess: a command is often a few milliseconds,
    # and subprocess's imports would double the guard's start.)
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    pid = os.fork()
    if pid == 0:
        try:
            os.execvp(argv[0], argv)
        except OSError as e:
            print(f"could not start {argv[0]}: {e.strerror}", file=sys.stderr)
        os._exit(127)
    _, status = os.waitpid(pid, 0)
    return _exit_like(os.waitstatus_to_exitcode(status))


def main() -> int:
    argv = sys.argv[1:]
    group = bool(argv) and argv[0] == "--group"
    argv = argv[1:] if group else argv
    if not argv:
        print("usage: guard.py [--group] PROGRAM [ARGS...]", file=sys.stderr)
        return 2
    if not _watch_parent():
        return 1
    return _command(argv) if group else _server(argv)


if __name__ == "__main__":
    sys.exit(main())
