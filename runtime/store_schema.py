"""The run store's schema: MIGRATIONS, in order, each bringing a state.db one version up.

`schema_version` holds the version of a file; runtime/store.py runs the migrations it lacks,
each in the same transaction as the version bump, so two processes opening an old file at once
migrate it exactly once. A released migration is never edited: it is the record of what that
version wrote (tests build old files with it). A change to the schema is a new migration.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable


def _script(c: sqlite3.Connection, sql: str) -> None:
    # Not executescript(): it commits first, and a migration must stay inside its transaction.
    for statement in sql.split(";"):
        if statement.strip():
            c.execute(statement)


def _v1(c: sqlite3.Connection) -> None:
    """Runs, their subtasks, the files they changed and the agents' messages."""
    _script(
        c,
        """
        CREATE TABLE runs (
            id TEXT PRIMARY KEY, request TEXT NOT NULL, status TEXT NOT NULL,
            created_at REAL NOT NULL, updated_at REAL NOT NULL, finished_at REAL,
            plan TEXT, estimate TEXT, answer TEXT, error TEXT, usage TEXT, seconds REAL);
        CREATE TABLE subtasks (
            run_id TEXT NOT NULL, id TEXT NOT NULL, agent TEXT NOT NULL, status TEXT NOT NULL,
            result TEXT, error TEXT, files_changed TEXT, tool_calls INTEGER, iterations INTEGER,
            usage TEXT, started_at REAL, finished_at REAL, attempts INTEGER,
            PRIMARY KEY (run_id, id));
        CREATE TABLE file_changes (
            seq INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL, subtask_id TEXT,
            path TEXT NOT NULL, before BLOB, after BLOB, before_hash TEXT, after_hash TEXT, at REAL NOT NULL);
        CREATE INDEX file_changes_run ON file_changes (run_id, seq);
        CREATE TABLE messages (
            seq INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL, subtask_id TEXT,
            role TEXT, content TEXT, at REAL NOT NULL);
        CREATE INDEX messages_run ON messages (run_id, seq);
        """,
    )


def _v2(c: sqlite3.Connection) -> None:
    """Resume (process, sessions, per-call usage), conversations and request search."""
    for column in (
        "pid INTEGER",
        "host TEXT",
        "sessions INTEGER NOT NULL DEFAULT 1",
        "usage_breakdown TEXT",
        "undone_at REAL",
        "conversation_id TEXT",
        "parent_run_id TEXT",
    ):
        c.execute(f"ALTER TABLE runs ADD COLUMN {column}")
    c.execute("ALTER TABLE subtasks ADD COLUMN session INTEGER NOT NULL DEFAULT 1")
    c.execute("ALTER TABLE messages ADD COLUMN session INTEGER NOT NULL DEFAULT 1")
    _script(
        c,
        """
        CREATE INDEX runs_created ON runs (created_at);
        CREATE INDEX runs_conversation ON runs (conversation_id, created_at);
        CREATE INDEX subtasks_finished ON subtasks (finished_at);
        CREATE TABLE model_calls (
            seq INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL, subtask_id TEXT, agent TEXT,
            session INTEGER NOT NULL, model TEXT, input_tokens INTEGER, cached_input_tokens INTEGER,
            output_tokens INTEGER, reasoning_tokens INTEGER, at REAL NOT NULL);
        CREATE INDEX model_calls_run ON model_calls (run_id, subtask_id, session);
        CREATE TABLE conversations (id TEXT PRIMARY KEY, created_at REAL NOT NULL, branched_from TEXT);
        """,
    )
    # Every run stored before conversations existed becomes a conversation of its own.
    c.execute("UPDATE runs SET conversation_id = id WHERE conversation_id IS NULL")
    c.execute("INSERT OR IGNORE INTO conversations (id, created_at) SELECT id, created_at FROM runs")
    create_fts(c)


def create_fts(c: sqlite3.Connection) -> bool:
    """The full-text index of requests, filled from existing runs. False when this SQLite was
    built without FTS5; search then falls back to LIKE."""
    try:
        c.execute("CREATE VIRTUAL TABLE IF NOT EXISTS runs_fts USING fts5(request, run_id UNINDEXED)")
    except sqlite3.OperationalError:
        return False
    c.execute("DELETE FROM runs_fts")
    c.execute("INSERT INTO runs_fts (request, run_id) SELECT request, id FROM runs")
    return True


def _v3(c: sqlite3.Connection) -> None:
    """The settings a run was started with (its CLI flags, as JSON), so `resume` keeps them."""
    c.execute("ALTER TABLE runs ADD COLUMN overrides TEXT")


def _v4(c: sqlite3.Connection) -> None:
    """The plan history of a replanned run: round 0 is the first plan, each replan one more."""
    c.execute(
        "CREATE TABLE plans (run_id TEXT NOT NULL, round INTEGER NOT NULL, reason TEXT, plan TEXT NOT NULL,"
        " subtasks TEXT, at REAL NOT NULL, PRIMARY KEY (run_id, round))"
    )


MIGRATIONS: list[tuple[int, Callable[[sqlite3.Connection], None]]] = [
    (1, _v1),
    (2, _v2),
    (3, _v3),
    (4, _v4),
]
LATEST = MIGRATIONS[-1][0]
