"""Run embeddings in the store and nearest-neighbour search over them.

Vectors are float32 blobs in `memory_vectors`, the layout sqlite-vec reads, one per run and
embedding model. Ranking is sqlite-vec's `vec_distance_cosine` in SQL: loaded into the store's
own sqlite3 connection where this Python allows extensions, else into an in-memory apsw
database the newest vectors are copied into. Where neither can load it, the same blobs are
ranked in Python (after one notice), so semantic memory still works, only slower.
"""

from __future__ import annotations

import math
import struct
import threading
import time
import weakref
from collections.abc import Iterable, Sequence
from typing import Any

from runtime.notices import notice_once
from runtime.store import Store

FINISHED = "r.status IN ('succeeded', 'failed', 'cancelled')"
SCAN_LIMIT = 5000
"""Vectors ranked outside the store (sqlite-vec in memory, or Python): the most recent ones only."""

_engines: weakref.WeakKeyDictionary[Store, tuple[str, Any] | None] = weakref.WeakKeyDictionary()


def pack(vector: Sequence[float]) -> bytes:
    return struct.pack(f"<{len(vector)}f", *vector)


def unpack(blob: bytes) -> list[float]:
    return list(struct.unpack(f"<{len(blob) // 4}f", blob))


def _in_store(store: Store) -> None:
    """sqlite-vec loaded into the store's own connection (Pythons whose sqlite3 loads extensions)."""
    import sqlite_vec as vec

    with store.snapshot() as c:
        c.enable_load_extension(True)  # AttributeError where sqlite3 was built without it
        try:
            vec.load(c)
        finally:
            c.enable_load_extension(False)


class _MemoryVec:
    """sqlite-vec in an in-memory apsw database, for Pythons whose sqlite3 cannot load
    extensions (pyenv's, some distributions'). Never the store's file: a second SQLite library
    with the same file open in one process breaks SQLite's POSIX locks and can corrupt it."""

    def __init__(self) -> None:
        import apsw
        import sqlite_vec as vec

        self.conn = apsw.Connection(":memory:")
        self.conn.enable_load_extension(True)
        self.conn.load_extension(vec.loadable_path())
        self.conn.enable_load_extension(False)
        self.conn.execute("CREATE TABLE candidates (n INTEGER, run_id TEXT, embedding BLOB)")
        self.lock = threading.Lock()

    def rank(self, rows: list[tuple[str, bytes]], vector: bytes, limit: int) -> list[tuple[str, float]]:
        with self.lock:
            self.conn.execute("DELETE FROM candidates")
            self.conn.executemany(
                "INSERT INTO candidates VALUES (?, ?, ?)", [(n, r[0], r[1]) for n, r in enumerate(rows)]
            )
            got = self.conn.execute(
                "SELECT run_id, vec_distance_cosine(embedding, ?) AS d FROM candidates ORDER BY d, n LIMIT ?",
                (vector, limit),
            )
            return [(r[0], float(r[1])) for r in got]


def sql_engine(store: Store) -> str | None:
    """Where sqlite-vec ranks `store`'s vectors: "sqlite3" (in the store, over all of them),
    "apsw" (in memory, over the newest SCAN_LIMIT), or None when it cannot be loaded here (then
    they are ranked in Python, after one notice). Tried once per store."""
    found = _engine(store)
    return found[0] if found else None


def sqlite_vec(store: Store) -> bool:
    """Whether sqlite-vec ranks `store`'s vectors."""
    return _engine(store) is not None


def _engine(store: Store) -> tuple[str, Any] | None:
    if store in _engines:
        return _engines[store]
    reasons = []
    found: tuple[str, Any] | None = None
    try:
        _in_store(store)
        found = ("sqlite3", None)
    except ImportError as e:
        reasons.append(f"the {e.name} package is not installed")
    except AttributeError:
        reasons.append("this Python's sqlite3 was built without extension loading")
    except Exception as e:  # sqlite3.Error: the extension would not load
        reasons.append(str(e))
    if found is None:
        try:
            found = ("apsw", _MemoryVec())
        except ImportError as e:
            reasons.append(f"the {e.name} package is not installed")
        except Exception as e:  # apsw.Error
            reasons.append(f"apsw: {e}")
    _engines[store] = found
    if found is None:
        notice_once(
            "sqlite-vec",
            f"sqlite-vec could not be loaded ({'; '.join(reasons)}); semantic memory ranks its vectors in Python instead.",
        )
    return found


def anything_to_recall(store: Store) -> bool:
    """Whether any finished run is remembered: with none, there is nothing to embed a request against."""
    with store.snapshot() as c:
        row = c.execute(
            f"SELECT 1 FROM runs r WHERE {FINISHED} AND r.forgotten_at IS NULL LIMIT 1"
        ).fetchone()
    return row is not None


def missing(store: Store, model: str, limit: int) -> list[tuple[str, str]]:
    """(run_id, request) of the newest runs remembered without a vector from `model`."""
    with store.snapshot() as c:
        rows = c.execute(
            """SELECT r.id, r.request FROM runs r WHERE r.forgotten_at IS NULL AND NOT EXISTS
               (SELECT 1 FROM memory_vectors v WHERE v.run_id = r.id AND v.model = ?)
               ORDER BY r.created_at DESC LIMIT ?""",
            (model, limit),
        ).fetchall()
    return [(r[0], r[1]) for r in rows]


def save(store: Store, model: str, vectors: Iterable[tuple[str, Sequence[float]]]) -> None:
    rows = [(run_id, model, len(v), pack(v)) for run_id, v in vectors]
    with store.tx() as c:
        # A run forgotten meanwhile stays forgotten.
        c.executemany(
            """INSERT OR REPLACE INTO memory_vectors (run_id, model, dim, embedding)
               SELECT ?1, ?2, ?3, ?4 WHERE EXISTS (SELECT 1 FROM runs WHERE id = ?1 AND forgotten_at IS NULL)""",
            rows,
        )


def nearest(
    store: Store, model: str, vector: Sequence[float], limit: int, exclude: set[str]
) -> list[tuple[str, float]]:
    """(run_id, cosine distance) of the finished, remembered runs closest to `vector`."""
    skip = list(exclude) or [""]
    marks = ",".join("?" * len(skip))
    where = f"v.model = ? AND v.dim = ? AND {FINISHED} AND r.forgotten_at IS NULL AND r.id NOT IN ({marks})"
    args = [model, len(vector), *skip]
    engine = _engine(store)
    if engine is not None and engine[0] == "sqlite3":
        with store.snapshot() as c:
            rows = c.execute(
                f"""SELECT v.run_id, vec_distance_cosine(v.embedding, ?) AS d FROM memory_vectors v
                    JOIN runs r ON r.id = v.run_id WHERE {where} ORDER BY d, r.created_at DESC LIMIT ?""",
                [pack(vector), *args, limit],
            ).fetchall()
        return [(r[0], float(r[1])) for r in rows]
    with store.snapshot() as c:
        rows = c.execute(
            f"""SELECT v.run_id, v.embedding FROM memory_vectors v JOIN runs r ON r.id = v.run_id
                WHERE {where} ORDER BY r.created_at DESC LIMIT ?""",
            [*args, SCAN_LIMIT],
        ).fetchall()
    if engine is not None:
        return engine[1].rank([(r[0], r[1]) for r in rows], pack(vector), limit)
    scored = [(r[0], cosine_distance(vector, unpack(r[1]))) for r in rows]
    scored.sort(key=lambda pair: pair[1])  # stable: ties keep the newest first
    return scored[:limit]


def cosine_distance(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return 1.0 - dot / norm if norm else 1.0


def forget(store: Store, run_id: str) -> bool:
    """Take a run out of memory (its vectors, its full-text entry); False when no such run.
    The run itself stays, for status, undo and resume."""
    with store.tx() as c:
        if c.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone() is None:
            return False
        c.execute(
            "UPDATE runs SET forgotten_at = coalesce(forgotten_at, ?) WHERE id = ?", (time.time(), run_id)
        )
        c.execute("DELETE FROM memory_vectors WHERE run_id = ?", (run_id,))
        if c.execute("SELECT 1 FROM sqlite_master WHERE name = 'runs_fts'").fetchone():
            c.execute("DELETE FROM runs_fts WHERE run_id = ?", (run_id,))
    return True
