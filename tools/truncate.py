"""Tool result size limit: keep head and tail, save the full text, say where."""

from __future__ import annotations

import uuid
from pathlib import Path


def truncate_result(text: str, limit: int, save_dir: Path | None, label: str = "output") -> str:
    """Return `text` unchanged when it fits; otherwise its head and tail around a marker that
    says how many lines were left out and where the full text was saved."""
    if len(text) <= limit:
        return text
    saved = ""
    if save_dir is not None:
        try:
            save_dir.mkdir(parents=True, exist_ok=True)
            path = save_dir / f"{label}-{uuid.uuid4().hex[:10]}.txt"
            path.write_text(text, encoding="utf-8", errors="replace")
            saved = f"; full output saved to {path}"
        except OSError as e:
            saved = f"; the full output could not be saved ({e.strerror})"
    keep = max(limit - 200, 100)
    head, tail = text[: keep // 2], text[-(keep // 2) :]
    # Cut at line boundaries so the model never sees half a line.
    if "\n" in head:
        head = head[: head.rfind("\n") + 1]
    if "\n" in tail:
        tail = tail[tail.find("\n") + 1 :]
    omitted = text[len(head) : len(text) - len(tail)]
    lines = omitted.count("\n") + (0 if omitted.endswith("\n") else 1)
    marker = f"\n[... {lines} lines ({len(omitted)} characters) truncated{saved} ...]\n"
    return head + marker + tail
