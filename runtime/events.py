"""Structured event log: one JSON object per line in <workspace>/.shunter/logs/events.jsonl.

Built on loguru. Each EventLog binds its own id to its records, and one loguru sink per process
writes each record to the file of the log whose id it carries, so two runs in one process never
write into each other's files. Secrets are scrubbed before anything is written.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any, TextIO

from loguru import logger

_KEY_PATTERNS = [
    re.compile(r"sk-[A-Za-z0-9_\-]{8,}"),
    re.compile(r"(?i)(authorization|api[-_]?key|x-api-key)(\"?\s*[:=]\s*\"?)(bearer\s+)?[^\s\",}]+"),
]


_URL_USERINFO = re.compile(r"(\w+://)[^/\s:@\"]+:[^/\s@\"]+@")


class Redactor:
    def __init__(self, secrets: list[str] | None = None):
        self.secrets = [s for s in (secrets or []) if s and len(s) >= 4]

    def __call__(self, text: str) -> str:
        for s in self.secrets:
            text = text.replace(s, "[REDACTED]")
        text = _KEY_PATTERNS[0].sub("[REDACTED]", text)
        text = _URL_USERINFO.sub(r"\1[REDACTED]@", text)
        return _KEY_PATTERNS[1].sub(lambda m: f"{m.group(1)}{m.group(2)}[REDACTED]", text)


class EventLog:
    """Writes events for one run (or one CLI invocation) to a JSONL file."""

    def __init__(self, path: Path | None, run_id: str = "", secrets: list[str] | None = None):
        self.path = path
        self.run_id = run_id
        self.redact = Redactor(secrets)
        self._id = uuid.uuid4().hex
        _replace_default_sink()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            with _FILES_LOCK:
                _FILES[self._id] = open(path, "a", buffering=1, encoding="utf8")  # noqa: SIM115 - closed by close()
                _ensure_file_sink()
        self._log = logger.bind(_shunter_log=self._id)

    def emit(
        self,
        event: str,
        *,
        subtask_id: str | None = None,
        agent: str | None = None,
        level: str = "INFO",
        **data: Any,
    ) -> None:
        record = {
            "ts": round(time.time(), 6),
            "run_id": self.run_id,
            "subtask_id": subtask_id,
            "agent": agent,
            "event": event,
            "data": data,
        }
        line = self.redact(json.dumps(record, default=str, ensure_ascii=False))
        # loguru treats braces in the message as format fields only when args are passed; none are.
        self._log.opt(depth=1).log(level, line)
        if level in ("WARNING", "ERROR"):
            logger.bind(human=True).log(level, f"{event}: {self.redact(json.dumps(data, default=str))[:300]}")

    def close(self) -> None:
        with _FILES_LOCK:
            f = _FILES.pop(self._id, None)
        if f is not None:
            f.close()


# One sink for every event log of the process: adding a loguru sink costs about 6 ms (it builds
# an exception formatter), and a DBOS worker makes a log for every subtask it takes.
_FILES: dict[str, TextIO] = {}
_FILES_LOCK = threading.Lock()
_FILE_SINK: list[int] = []


def _write(message: Any) -> None:
    with _FILES_LOCK:
        f = _FILES.get(message.record["extra"].get("_shunter_log"))
        if f is not None:
            f.write(message)


def _ensure_file_sink() -> None:
    if not _FILE_SINK:
        _FILE_SINK.append(
            logger.add(
                _write,
                format="{message}",
                filter=lambda r: "_shunter_log" in r["extra"],
                level="DEBUG",
                catch=True,
            )
        )


def _replace_default_sink() -> None:
    """loguru starts with a catch-all stderr sink (id 0); events belong in the JSONL file, so
    swap it for the human-readable one the first time an EventLog is made."""
    try:
        logger.remove(0)
    except ValueError:
        return
    configure_stderr(0, remove_all=False)


def configure_stderr(verbosity: int, remove_all: bool = True) -> None:
    """Human-readable stderr sink for warnings and errors; -v shows more, -q shows only errors."""
    if remove_all:
        logger.remove()
        _FILE_SINK.clear()
        with _FILES_LOCK:
            if _FILES:
                _ensure_file_sink()
    level = {-1: "ERROR", 0: "WARNING", 1: "INFO", 2: "DEBUG"}.get(max(-1, min(verbosity, 2)), "WARNING")
    logger.add(
        sys.stderr,
        level=level,
        format="<level>{level: <7}</level> {message}",
        filter=lambda r: r["extra"].get("human"),
    )
