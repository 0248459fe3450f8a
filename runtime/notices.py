"""Notices said once per process: a missing optional part (an embeddings endpoint, sqlite-vec)
is worth one line on stderr, not one per run or per call."""

from __future__ import annotations

import threading

from loguru import logger

_said: set[str] = set()
_lock = threading.Lock()


def notice_once(key: str, text: str) -> bool:
    """Log `text` as a warning the first time `key` is seen; True when it was logged now."""
    with _lock:
        if key in _said:
            return False
        _said.add(key)
    logger.bind(human=True).warning(text)
    return True


def forget_notices() -> None:
    """Tests: let every notice be said again."""
    with _lock:
        _said.clear()
