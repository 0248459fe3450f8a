"""DBOS's queue claim on SQLite, made atomic across worker processes.

DBOS counts a queue's recent starts (its rate limiter) and running workflows (its concurrency),
then claims that many rows, all in one SQLAlchemy transaction. On Postgres that transaction is
REPEATABLE READ with row locks. On SQLite, pysqlite opens the real transaction only at the first
UPDATE, so the counts are read outside it: two workers can both see room for six and start
twelve between them (seen in CI: eight model calls in one second under a limit of six a minute).
Taking SQLite's write lock first (BEGIN IMMEDIATE) makes count and claim one step, as they are
on Postgres. SQLite has a single writer anyway, so this costs the claim nothing it had.
"""

from __future__ import annotations

from collections.abc import Generator
from contextlib import contextmanager
from typing import Any


def serialize_sqlite_dequeue() -> None:
    from dbos._sys_db_sqlite import SQLiteSystemDatabase

    if getattr(SQLiteSystemDatabase, "_shunter_immediate", False):
        return

    @contextmanager
    def _begin(self: Any, isolation: str | None) -> Generator[Any, None, None]:
        with self.engine.connect() as c, c.begin():
            c.exec_driver_sql("BEGIN IMMEDIATE")
            yield c

    SQLiteSystemDatabase._begin = _begin  # type: ignore[method-assign]
    SQLiteSystemDatabase._shunter_immediate = True  # type: ignore[attr-defined]
