"""Live progress on stderr: a table redrawn in place on a terminal, one line per change otherwise."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from typing import Any

from router.records import SubtaskRecord
from runtime.usage import UsageTracker

_ICONS = {
    "pending": "·",
    "running": "▶",
    "succeeded": "✓",
    "failed": "✗",
    "skipped": "↷",
    "cancelled": "■",
    "limit": "!",
}


class Progress:
    def __init__(self, tracker: UsageTracker, subtasks: list[tuple[str, str]], live: bool | None = None):
        self.tracker = tracker
        self.rows = {sid: SubtaskRecord(sid, agent) for sid, agent in subtasks}
        self.live_enabled = sys.stderr.isatty() if live is None else live
        self._live: Any = None  # rich.live.Live, imported only when drawing
        self.latest: dict[str, str] = {}

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Stop redrawing while a prompt waits for an answer on the terminal."""
        if self._live is None:
            yield
            return
        self._live.stop()
        try:
            yield
        finally:
            self._live.start()

    def on_text(self, delta: str, subtask_id: str | None) -> None:
        """Streamed model text: the table shows the tail of each subtask's latest output."""
        if self._live is None or not subtask_id:
            return
        text = (self.latest.get(subtask_id, "") + delta).replace("\n", " ")
        self.latest[subtask_id] = text[-48:]
        self._live.update(self._table())

    def __enter__(self) -> Progress:
        if self.live_enabled:
            from rich.console import Console
            from rich.live import Live

            self._live = Live(
                get_renderable=self._table,
                console=Console(stderr=True),
                refresh_per_second=4,
                transient=False,
            )
            self._live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self._live is not None:
            self._live.update(self._table())
            self._live.__exit__(*exc)

    def __call__(self, rec: SubtaskRecord) -> None:
        self.rows[rec.id] = rec
        if self._live is not None:
            self._live.update(self._table())
            return
        extra = f" ({rec.seconds:.1f} s)" if rec.seconds is not None else ""
        why = f": {rec.error}" if rec.error and rec.status != "succeeded" else ""
        sys.stderr.write(f"{_ICONS.get(rec.status, '?')} {rec.id} {_who(rec)} {rec.status}{extra}{why}\n")

    def _table(self):
        from rich.table import Table

        total = self.tracker.total
        cost = "unknown" if total.cost_usd is None else f"${total.cost_usd:.4f}"
        table = Table(
            title=f"{total.total_tokens:,} tokens · {total.requests} requests · {cost}", title_justify="left"
        )
        for col in ("", "subtask", "agent", "status", "time", "tokens", "latest output"):
            table.add_column(col)
        now = time.time()
        for rec in self.rows.values():
            secs = (
                rec.seconds if rec.seconds is not None else (now - rec.started_at if rec.started_at else None)
            )
            used = self.tracker.by_subtask.get(rec.id)
            table.add_row(
                _ICONS.get(rec.status, "?"),
                rec.id,
                _who(rec),
                rec.status,
                f"{secs:.1f}s" if secs is not None else "",
                f"{used.total_tokens:,}" if used else "",
                self.latest.get(rec.id, "") if rec.status == "running" else "",
            )
        return table


def _who(rec: SubtaskRecord) -> str:
    """The agent, and for a compiled subtask the tool it calls with no model."""
    return f"{rec.agent} → {rec.call['tool']}" if rec.call else rec.agent
