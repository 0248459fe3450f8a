"""The run store: one SQLite file per workspace, `<workspace>/.shunter/state.db`.

Why it is shaped like this:
- WAL mode, because several processes share the file (two runs at once, `shunter runs` while a
  run is going): readers never wait for the writer, and a process killed mid-write leaves the
  file consistent (the unfinished transaction is simply not there).
- Every state change is one short transaction, committed when it happens, so a crash loses at
  most the change being made. Writers start with BEGIN IMMEDIATE: they take the write lock up
  front (waiting up to `busy_timeout`) instead of failing when a read lock cannot be upgraded.
- `schema_version` holds the schema version; the MIGRATIONS of runtime/store_schema.py bring
  an older file up to date, in order, each in the same transaction as the version bump, so two
  processes opening an old file at once migrate it exactly once.

This module knows rows and columns, not runs or plans: the router's run modules give them meaning
(router/recorder.py, resume.py, undo.py, summaries.py, memory.py, calibration.py).

One concern: the rows of state.db, through one connection and its transactions (the schema
is in runtime/store_schema.py); it is long because every read and write of its tables is a
method of the one Store class all callers hold.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from runtime.errors import ConfigError, ShunterError
from runtime.store_schema import LATEST, MIGRATIONS, create_fts

STATE_FILE = "state.db"
BUSY_TIMEOUT_S = 15.0
"""How long a writer waits for another process's transaction before giving up."""

_JSON_COLUMNS = {
    "plan",
    "estimate",
    "usage",
    "usage_breakdown",
    "files_changed",
    "content",
    "overrides",
    "subtasks",
}


class StoreError(ShunterError):
    """The store could not be written (held by another process past the timeout, disk full...)."""


class DuplicateRunError(StoreError):
    """create_run was given the id of a run the store already holds."""


def sha256(data: bytes | None) -> str | None:
    return None if data is None else hashlib.sha256(data).hexdigest()


# --- the store -----------------------------------------------------------------------------------


class Store:
    """A connection to one state.db. Thread-safe: tools record file changes from worker threads."""

    def __init__(self, path: str | Path, *, busy_timeout_s: float = BUSY_TIMEOUT_S, fts: bool | None = None):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._c = sqlite3.connect(
            str(self.path), timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
        )
        self._c.row_factory = sqlite3.Row
        try:
            self._c.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
            self._use_wal(time.monotonic() + busy_timeout_s)
            # NORMAL in WAL mode: a killed process loses nothing committed; only a power cut can
            # drop the last transactions, and never corrupts the file.
            self._c.execute("PRAGMA synchronous = NORMAL")
            self._migrate()
        except (sqlite3.DatabaseError, StoreError) as e:
            self._c.close()
            raise ConfigError(
                f"{self.path} is not a usable Shunter store ({e.__cause__ or e}); move it away to start a fresh one."
            ) from None
        except BaseException:
            self._c.close()
            raise
        has_table = self._has_table("runs_fts")
        self._index_fts = has_table
        self.fts = has_table and fts is not False
        """Whether similar-request search ranks with FTS5 (else LIKE)."""

    def _use_wal(self, deadline: float) -> None:
        # Switching a file to WAL needs it to itself, and SQLite reports "locked" at once rather
        # than waiting (busy_timeout does not apply), so wait here while another process opens it.
        while True:
            try:
                self._c.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) or time.monotonic() > deadline:
                    raise
                time.sleep(0.005)

    @classmethod
    def open(cls, workspace: str | Path, **kw: Any) -> Store:
        return cls(Path(workspace) / ".shunter" / STATE_FILE, **kw)

    def close(self) -> None:
        with self._lock:
            self._c.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transactions

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """A write transaction, committed on leaving the block (rolled back on an exception)."""
        with self._lock:
            try:
                self._c.execute("BEGIN IMMEDIATE")
                try:
                    yield self._c
                    self._c.execute("COMMIT")
                except BaseException:
                    if self._c.in_transaction:
                        self._c.execute("ROLLBACK")
                    raise
            except sqlite3.Error as e:
                raise StoreError(_write_error(self.path, e)) from e

    @contextmanager
    def snapshot(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: several queries see one consistent state."""
        with self._lock:
            self._c.execute("BEGIN DEFERRED")
            try:
                yield self._c
            finally:
                self._c.execute("COMMIT")

    def _migrate(self) -> None:
        with self.tx() as c:
            c.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = c.execute("SELECT max(version) FROM schema_version").fetchone()
            current = row[0] or 0
            if current > LATEST:
                raise ConfigError(
                    f"{self.path} was written by a newer Shunter (schema version {current}; this one knows up to "
                    f"{LATEST}); upgrade shunter to use it."
                )
            for version, step in MIGRATIONS:
                if version > current:
                    step(c)
            if current < LATEST:
                c.execute("DELETE FROM schema_version")
                c.execute("INSERT INTO schema_version (version) VALUES (?)", (LATEST,))
            if not self._has_table("runs_fts", c):
                create_fts(c)  # this SQLite may have FTS5 where the one that migrated had not

    def _has_table(self, name: str, c: sqlite3.Connection | None = None) -> bool:
        with self._lock:
            row = (c or self._c).execute("SELECT 1 FROM sqlite_master WHERE name = ?", (name,)).fetchone()
        return row is not None

    def schema_version(self) -> int:
        with self._lock:
            return int(self._c.execute("SELECT max(version) FROM schema_version").fetchone()[0])

    def integrity_check(self) -> str:
        with self._lock:
            return self._c.execute("PRAGMA integrity_check").fetchone()[0]

    # -- runs

    def create_run(
        self,
        run_id: str,
        request: str,
        *,
        conversation_id: str,
        parent_run_id: str | None,
        pid: int,
        host: str,
        new_conversation: str | None = None,
        branched_from: str | None = None,
        overrides: dict[str, Any] | None = None,
    ) -> None:
        """Raises DuplicateRunError, writing nothing, when `run_id` is already stored."""
        now = time.time()
        with self.tx() as c:
            # Checked inside the write transaction, so two processes cannot both pass it.
            if c.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone() is not None:
                raise DuplicateRunError(f"Run id {run_id} is already in the store {self.path}.")
            if new_conversation:
                c.execute(
                    "INSERT INTO conversations (id, created_at, branched_from) VALUES (?, ?, ?)",
                    (new_conversation, now, branched_from),
                )
            c.execute(
                "INSERT INTO runs (id, request, status, created_at, updated_at, pid, host, conversation_id, parent_run_id,"
                " overrides) VALUES (?, ?, 'running', ?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    request,
                    now,
                    now,
                    pid,
                    host,
                    conversation_id,
                    parent_run_id,
                    _encode(overrides or {}),
                ),
            )
            if self._index_fts:
                c.execute("INSERT INTO runs_fts (request, run_id) VALUES (?, ?)", (request, run_id))

    def update_run(self, run_id: str, **fields: Any) -> None:
        fields["updated_at"] = time.time()
        cols = ", ".join(f"{k} = ?" for k in fields)
        with self.tx() as c:
            c.execute(f"UPDATE runs SET {cols} WHERE id = ?", [*map(_encode, fields.values()), run_id])

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._c.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        return _decode(row)

    def find_runs(self, prefix: str) -> list[str]:
        """Ids of runs starting with `prefix` (at most a few)."""
        pattern = _like_escape(prefix) + "%"
        with self._lock:
            rows = self._c.execute(
                "SELECT id FROM runs WHERE id LIKE ? ESCAPE '\\' LIMIT 5", (pattern,)
            ).fetchall()
        return [r[0] for r in rows]

    def list_runs(self, limit: int = 20) -> list[dict[str, Any]]:
        """Newest first, with subtask counts."""
        with self._lock:
            rows = self._c.execute(
                """SELECT r.*, (SELECT count(*) FROM subtasks s WHERE s.run_id = r.id) AS subtasks_total,
                          (SELECT count(*) FROM subtasks s WHERE s.run_id = r.id AND s.status = 'succeeded') AS subtasks_done
                   FROM runs r ORDER BY r.created_at DESC, r.rowid DESC LIMIT ?""",
                (limit,),
            ).fetchall()
        return [_decode(r) for r in rows]  # type: ignore[misc]

    def latest_run(
        self, conversation_id: str | None = None, exclude: str | None = None
    ) -> dict[str, Any] | None:
        sql, args = "SELECT * FROM runs WHERE id IS NOT ?", [exclude]
        if conversation_id is not None:
            sql, args = sql + " AND conversation_id = ?", [*args, conversation_id]
        with self._lock:
            row = self._c.execute(sql + " ORDER BY created_at DESC, rowid DESC LIMIT 1", args).fetchone()
        return _decode(row)

    def has_conversation(self, conversation_id: str) -> bool:
        with self._lock:
            return (
                self._c.execute("SELECT 1 FROM conversations WHERE id = ?", (conversation_id,)).fetchone()
                is not None
            )

    def line(self, run_id: str, limit: int) -> list[dict[str, Any]]:
        """`run_id` and its ancestors (parent_run_id links), at most `limit`, oldest first."""
        with self._lock:
            rows = self._c.execute(
                """WITH RECURSIVE line(id, parent, depth) AS (
                       SELECT id, parent_run_id, 0 FROM runs WHERE id = ?
                       UNION ALL
                       SELECT r.id, r.parent_run_id, line.depth + 1 FROM runs r JOIN line ON r.id = line.parent
                       WHERE line.depth + 1 < ?)
                   SELECT runs.* FROM line JOIN runs ON runs.id = line.id ORDER BY line.depth DESC""",
                (run_id, limit),
            ).fetchall()
        return [_decode(r) for r in rows]  # type: ignore[misc]

    def search_requests(self, text: str, limit: int, exclude: set[str]) -> list[dict[str, Any]]:
        """Finished runs whose requests share words with `text`, best first."""
        words = search_words(text)
        if not words:
            return []
        skip = list(exclude) or [""]
        marks = ",".join("?" * len(skip))
        finished = "r.status IN ('succeeded', 'failed', 'cancelled')"
        with self._lock:
            if self.fts:
                query = " OR ".join(f'"{w}"' for w in words)
                rows = self._c.execute(
                    f"""SELECT r.* FROM runs_fts JOIN runs r ON r.id = runs_fts.run_id
                        WHERE runs_fts MATCH ? AND {finished} AND r.id NOT IN ({marks})
                        ORDER BY bm25(runs_fts), r.created_at DESC LIMIT ?""",
                    [query, *skip, limit],
                ).fetchall()
            else:
                score = " + ".join("(lower(r.request) LIKE ? ESCAPE '\\')" for _ in words)
                rows = self._c.execute(
                    f"""SELECT r.*, ({score}) AS score FROM runs r WHERE {finished} AND r.id NOT IN ({marks})
                        AND score > 0 ORDER BY score DESC, r.created_at DESC LIMIT ?""",
                    [*(f"%{_like_escape(w)}%" for w in words), *skip, limit],
                ).fetchall()
        return [_decode(r) for r in rows]  # type: ignore[misc]

    # -- subtasks

    def save_subtask(self, run_id: str, row: dict[str, Any]) -> None:
        """Insert one subtask of a run, or update the columns `row` names (as `subtasks` returns
        them, or fewer). An upsert, not INSERT OR REPLACE: the row keeps its rowid, so subtasks
        keep the order they were first written in."""
        row = {k: v for k, v in row.items() if k != "run_id"}
        cols = ["run_id", *row]
        updates = ", ".join(f"{k} = excluded.{k}" for k in row if k != "id")
        with self.tx() as c:
            c.execute(
                f"INSERT INTO subtasks ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
                f" ON CONFLICT (run_id, id) DO UPDATE SET {updates}",
                [run_id, *map(_encode, row.values())],
            )
            c.execute("UPDATE runs SET updated_at = ? WHERE id = ?", (time.time(), run_id))

    def cancel_unfinished(self, run_id: str) -> int:
        """Mark the run's subtasks still 'pending' or 'running' as 'cancelled'; how many there were."""
        now = time.time()
        with self.tx() as c:
            cur = c.execute(
                "UPDATE subtasks SET status = 'cancelled', finished_at = CASE WHEN started_at IS NULL"
                " THEN finished_at ELSE coalesce(finished_at, ?) END"
                " WHERE run_id = ? AND status IN ('pending', 'running')",
                (now, run_id),
            )
            c.execute("UPDATE runs SET updated_at = ? WHERE id = ?", (now, run_id))
        return cur.rowcount

    def subtasks(self, run_id: str) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._c.execute(
                "SELECT * FROM subtasks WHERE run_id = ? ORDER BY rowid", (run_id,)
            ).fetchall()
        return [_decode(r) for r in rows]  # type: ignore[misc]

    def calibration_rows(self, limit: int = 500) -> list[dict[str, Any]]:
        """The model calls of the `limit` most recent subtasks that ran to an end, one row per call
        (subtasks newest first, calls in order), from the session in which each subtask ended."""
        with self._lock:
            rows = self._c.execute(
                """SELECT s.run_id, s.id AS subtask_id, s.agent, s.result, m.model, m.input_tokens, m.output_tokens,
                          m.reasoning_tokens
                   FROM (SELECT * FROM subtasks WHERE status IN ('succeeded', 'failed', 'limit')
                         ORDER BY finished_at DESC LIMIT ?) s
                   JOIN model_calls m ON m.run_id = s.run_id AND m.subtask_id = s.id AND m.session = s.session
                   ORDER BY s.finished_at DESC, s.run_id, s.id, m.seq""",
                (limit,),
            ).fetchall()
        return [dict(r) for r in rows]

    # -- file changes

    def add_file_change(
        self, run_id: str, subtask_id: str | None, path: str, before: bytes | None, after: bytes | None
    ) -> None:
        with self.tx() as c:
            c.execute(
                "INSERT INTO file_changes (run_id, subtask_id, path, before, after, before_hash, after_hash, at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, subtask_id, path, before, after, sha256(before), sha256(after), time.time()),
            )

    def file_changes(self, run_id: str) -> list[dict[str, Any]]:
        """In the order they happened."""
        with self._lock:
            rows = self._c.execute(
                "SELECT * FROM file_changes WHERE run_id = ? ORDER BY seq", (run_id,)
            ).fetchall()
        return [dict(r) for r in rows]

    # -- model calls and messages

    def add_model_call(
        self,
        run_id: str,
        subtask_id: str | None,
        agent: str | None,
        session: int,
        model: str,
        usage: dict[str, int],
        messages: list[tuple[str | None, str]],
    ) -> None:
        """One completed model call: its token usage and the messages it added, as (role, JSON text)."""
        now = time.time()
        with self.tx() as c:
            c.execute(
                "INSERT INTO model_calls (run_id, subtask_id, agent, session, model, input_tokens, cached_input_tokens,"
                " output_tokens, reasoning_tokens, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    subtask_id,
                    agent,
                    session,
                    model,
                    usage.get("input_tokens", 0),
                    usage.get("cached_input_tokens", 0),
                    usage.get("output_tokens", 0),
                    usage.get("reasoning_tokens", 0),
                    now,
                ),
            )
            c.executemany(
                "INSERT INTO messages (run_id, subtask_id, session, role, content, at) VALUES (?, ?, ?, ?, ?, ?)",
                [(run_id, subtask_id, session, role, text, now) for role, text in messages],
            )

    def model_calls(
        self, run_id: str, subtask_id: str | None = None, session: int | None = None
    ) -> list[dict[str, Any]]:
        sql, args = "SELECT * FROM model_calls WHERE run_id = ?", [run_id]  # type: tuple[str, list[Any]]
        if subtask_id is not None:
            sql, args = sql + " AND subtask_id = ?", [*args, subtask_id]
        if session is not None:
            sql, args = sql + " AND session = ?", [*args, session]
        with self._lock:
            return [dict(r) for r in self._c.execute(sql + " ORDER BY seq", args).fetchall()]

    # -- plan history (replanned runs)

    def save_plan(
        self,
        run_id: str,
        round_: int,
        plan: dict[str, Any],
        reason: str | None,
        subtasks: list[dict[str, Any]],
    ) -> None:
        """One plan of the run's history, with the final status of each of its subtasks."""
        with self.tx() as c:
            c.execute(
                "INSERT OR REPLACE INTO plans (run_id, round, reason, plan, subtasks, at) VALUES (?, ?, ?, ?, ?, ?)",
                (run_id, round_, reason, _encode(plan), _encode(subtasks), time.time()),
            )

    def plans(self, run_id: str) -> list[dict[str, Any]]:
        """The run's plan history, first plan first; empty for a run that was never replanned."""
        with self._lock:
            rows = self._c.execute(
                "SELECT round, reason, plan, subtasks, at FROM plans WHERE run_id = ? ORDER BY round",
                (run_id,),
            ).fetchall()
        return [_decode(r) for r in rows]  # type: ignore[misc]

    def messages(self, run_id: str, subtask_id: str | None = None) -> list[dict[str, Any]]:
        sql, args = "SELECT * FROM messages WHERE run_id = ?", [run_id]
        if subtask_id is not None:
            sql, args = sql + " AND subtask_id = ?", [*args, subtask_id]
        with self._lock:
            rows = self._c.execute(sql + " ORDER BY seq", args).fetchall()
        return [_decode(r) for r in rows]  # type: ignore[misc]


# --- helpers -------------------------------------------------------------------------------------

_STOP = {
    "the",
    "and",
    "for",
    "with",
    "all",
    "from",
    "this",
    "that",
    "into",
    "then",
    "now",
    "what",
    "are",
    "its",
}


def search_words(text: str, limit: int = 16) -> list[str]:
    """Distinct lower-case words worth matching (short and very common words dropped)."""
    out: list[str] = []
    for w in re.findall(r"\w+", text.lower()):
        if len(w) >= 3 and w not in _STOP and w not in out:
            out.append(w)
    return out[:limit]


def _write_error(path: Path, e: sqlite3.Error) -> str:
    """One sentence for a failed write: blame a lock or the disk only when SQLite did."""
    text = str(e).lower()
    if isinstance(e, sqlite3.OperationalError) and ("locked" in text or "busy" in text):
        return (
            f"The run store {path} could not be written ({e}): another process held it too long. Try again."
        )
    if isinstance(e, sqlite3.OperationalError) and ("disk" in text or "full" in text):
        return f"The run store {path} could not be written ({e}): the disk is full or failing. Free space and try again."
    return f"The run store {path} rejected a write ({type(e).__name__}: {e}); this is a bug in Shunter, please report it."


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _encode(value: Any) -> Any:
    return json.dumps(value, default=str) if isinstance(value, dict | list) else value


def _decode(row: sqlite3.Row | None) -> dict[str, Any] | None:
    if row is None:
        return None
    out = dict(row)
    for key in _JSON_COLUMNS & out.keys():
        if isinstance(out[key], str):
            out[key] = json.loads(out[key])
    return out
