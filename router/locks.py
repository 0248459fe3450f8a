"""Which process holds a run: an flock on `.shunter/locks/<run_id>.lock`, taken by the process
that works on the run for as long as it does. The kernel drops the lock when the process dies, so
a run whose lock is free is not being worked on, whatever its stored status says.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


class RunLock:
    """An exclusive flock on `.shunter/locks/<run_id>.lock`, held while a process works on the run."""

    def __init__(self, state_dir: Path, run_id: str):
        self.path = state_dir / "locks" / f"{run_id}.lock"
        self._fd: int | None = None

    def acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return True

    def release(self) -> None:
        # The file stays: unlinking a lock file others may be opening would let two holders in.
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def is_live(state_dir: Path, run_id: str) -> bool:
    """True while some process holds the run's lock."""
    try:
        fd = os.open(state_dir / "locks" / f"{run_id}.lock", os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
