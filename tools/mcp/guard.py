"""Runs an MCP server program so that it dies with Shunter, even when Shunter is killed with -9.

Started as `python -I -S guard.py PROGRAM ARGS...` (the standard library only, so it starts in a
few milliseconds). On Linux it asks the kernel for SIGTERM when its parent dies
(PR_SET_PDEATHSIG) and then stops the program's whole process group, so `npx` and whatever it
spawned go too. Stdin and stdout are the program's own: the guard never touches the protocol.
"""

import ctypes
import os
import signal
import subprocess
import sys
import time

PR_SET_PDEATHSIG = 1


def _stop(child: subprocess.Popen) -> None:
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


def main() -> int:
    argv = sys.argv[1:]
    if not argv:
        print("usage: guard.py PROGRAM [ARGS...]", file=sys.stderr)
        return 2
    parent = int(os.environ.pop("SHUNTER_MCP_PARENT", "0") or 0)
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if parent and os.getppid() != parent:
        return 1  # the parent died before the request above took effect
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Shunter itself decides when a server stops
    try:
        child = subprocess.Popen(argv, start_new_session=True)
    except OSError as e:
        print(f"could not start {argv[0]}: {e.strerror}", file=sys.stderr)
        return 127

    def on_signal(signum: int, frame: object) -> None:
        _stop(child)
        os._exit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    code = child.wait()
    _stop(child)  # what the program left behind in its group (npx's node, say)
    return code


if __name__ == "__main__":
    sys.exit(main())
