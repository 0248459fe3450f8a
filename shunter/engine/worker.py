"""`shunter worker`: one process that takes runs and subtasks from the engine's queues.

Open-source DBOS recovers a dead process's workflows only when a process with the same executor
id starts again. Workers here come and go (kill -9, a deploy, a lost machine), so each one
writes a heartbeat to a table of ours in the engine's database, and every live worker looks for
workers whose heartbeat stopped: the first to claim a silent worker (one UPDATE, so one winner)
recovers its workflows, which then continue from their last recorded step.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time
import uuid
from typing import Any

from runtime.config import Settings
from shunter.engine import POLL_S, RUN_QUEUE, SUBTASK_QUEUE, app_version, rate_queues, redacted

HEARTBEAT_S = 1.0
SILENT_S = 5.0
"""A worker that has not written its heartbeat for this long is taken for dead."""

_TABLE = """CREATE TABLE IF NOT EXISTS shunter_workers (
    executor_id TEXT PRIMARY KEY, host TEXT, pid INTEGER, last_seen DOUBLE PRECISION,
    recovered_by TEXT)"""


def launch(url: str, executor_id: str, concurrency: int, settings: Settings) -> None:
    """Start DBOS in this process as a worker on `url`, taking from both queues."""
    from dbos import DBOS

    from shunter.engine import workflows  # registers the workflows with DBOS

    workflows.ENGINE_URL[:] = [url]
    if url.startswith("sqlite:"):
        from shunter.engine.sqlitefix import serialize_sqlite_dequeue

        serialize_sqlite_dequeue()

    DBOS(
        config={
            "name": "shunter",
            "system_database_url": url,
            "executor_id": executor_id,
            "application_version": app_version(),
            "log_level": "WARNING",  # its INFO lines (migrations, queues) drown the worker's own
        }
    )
    DBOS.launch()
    # Separate queues: a run waiting for its subtasks must never hold the slot they need.
    DBOS.register_queue(RUN_QUEUE, worker_concurrency=concurrency, polling_interval_sec=POLL_S)
    DBOS.register_queue(SUBTASK_QUEUE, worker_concurrency=concurrency, polling_interval_sec=POLL_S)
    for name, limit, period in rate_queues(settings).values():
        DBOS.register_queue(name, limiter={"limit": limit, "period": period}, polling_interval_sec=POLL_S)


class Heartbeat:
    """This worker's row in shunter_workers, and the recovery of silent workers."""

    def __init__(self, url: str, executor_id: str):
        import sqlalchemy as sa

        self.sa, self.id = sa, executor_id
        self.engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
        with self.engine.begin() as c:
            c.execute(sa.text(_TABLE))
            c.execute(
                sa.text("DELETE FROM shunter_workers WHERE executor_id = :id"),
                {"id": executor_id},
            )
            c.execute(
                sa.text(
                    "INSERT INTO shunter_workers (executor_id, host, pid, last_seen) VALUES (:id, :h, :p, :t)"
                ),
                {"id": executor_id, "h": socket.gethostname(), "p": os.getpid(), "t": time.time()},
            )

    def beat(self) -> bool:
        """False when another worker has taken this one for dead and recovered its workflows."""
        with self.engine.begin() as c:
            alive = c.execute(
                self.sa.text(
                    "UPDATE shunter_workers SET last_seen = :t WHERE executor_id = :id AND recovered_by IS NULL"
                ),
                {"t": time.time(), "id": self.id},
            ).rowcount
        return alive == 1

    def claim_silent(self) -> list[str]:
        """Workers gone silent that this one claimed (each is claimed by exactly one worker)."""
        sa = self.sa
        with self.engine.begin() as c:
            rows = c.execute(
                sa.text(
                    "SELECT executor_id FROM shunter_workers WHERE last_seen < :t AND recovered_by IS NULL"
                ),
                {"t": time.time() - SILENT_S},
            ).fetchall()
        claimed = []
        for (eid,) in rows:
            with self.engine.begin() as c:
                won = c.execute(
                    sa.text(
                        "UPDATE shunter_workers SET recovered_by = :me "
                        "WHERE executor_id = :id AND recovered_by IS NULL"
                    ),
                    {"me": self.id, "id": eid},
                ).rowcount
            if won == 1:
                claimed.append(eid)
        return claimed

    def leave(self) -> None:
        """A clean stop: marked silent at once, so another worker recovers what this one held."""
        with self.engine.begin() as c:
            c.execute(
                self.sa.text("UPDATE shunter_workers SET last_seen = 0 WHERE executor_id = :id"),
                {"id": self.id},
            )
        self.engine.dispose()


def live_workers(url: str) -> list[dict[str, Any]]:
    """The workers whose heartbeat is in the engine's database and who neither stopped nor were
    recovered: `alive`, or `silent` (about to be taken for dead). Stopped ones are history."""
    import sqlalchemy as sa

    from shunter.engine.ledger import sql_engine

    now = time.time()
    try:
        with sql_engine(url).begin() as c:
            rows = c.execute(
                sa.text(
                    "SELECT executor_id, host, pid, last_seen FROM shunter_workers "
                    "WHERE recovered_by IS NULL AND last_seen > 0 ORDER BY host, executor_id"
                )
            ).fetchall()
    except sa.exc.DBAPIError:  # no worker ever started here: the table is not there yet
        return []
    return [
        {
            "executor_id": eid,
            "host": host,
            "pid": pid,
            "seconds_since_heartbeat": round(now - seen, 1),
            "status": "alive" if now - seen <= SILENT_S else "silent",
        }
        for eid, host, pid, seen in rows
    ]


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def serve(
    url: str, concurrency: int, settings: Settings, stop: threading.Event | None = None, ready: Any = None
) -> None:
    """Run a worker until SIGTERM or SIGINT (or `stop`)."""
    from dbos import DBOS

    executor_id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    stop = stop or threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    launch(url, executor_id, concurrency, settings)
    heart = Heartbeat(url, executor_id)
    say(f"Worker {executor_id} on {redacted(url)}, {concurrency} runs and subtasks at a time.")
    if ready is not None:
        ready()
    try:
        while not stop.wait(HEARTBEAT_S):
            if not heart.beat():
                # Starved past SILENT_S (a frozen VM, a stopped process): another worker now runs
                # this one's workflows. Going on would make their calls and writes twice.
                say(
                    f"Worker {executor_id} was taken for dead after {SILENT_S:.0f} s without a heartbeat "
                    "and its runs were recovered elsewhere; it stops now so that none runs twice."
                )
                os._exit(75)
            for dead in heart.claim_silent():
                handles = DBOS._recover_pending_workflows([dead])
                say(f"Worker {dead} went silent: recovered its {len(handles)} workflows here.")
    finally:
        heart.leave()
        DBOS.destroy(workflow_completion_timeout_sec=0)
