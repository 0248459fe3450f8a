"""A queue's limits hold when workers claim from it at the same moment.

DBOS counts a queue's recent starts, then claims; on SQLite that count was read outside the
claim's transaction, so three workers could each see room for six (CI once saw eight model calls
in one second under a limit of six a minute). Here each worker's count is slowed down to make
every claim overlap the others, and the limiter must still start no more than its limit."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from shunter.engine import PERMIT_WORKFLOW
from tests.test_engine import _drop, postgres_url

WORKER = textwrap.dedent(
    """
    import sys, time
    import sqlalchemy as sa
    from runtime.config import RateLimit, Settings
    from shunter.engine.worker import launch

    url, executor = sys.argv[1], sys.argv[2]
    launch(url, executor, 4, Settings(rate_limits={"m": RateLimit(requests_per_minute=6)}))
    from dbos._dbos import _get_dbos_instance

    # Widen the window between the limiter's count and the claim that follows it.
    @sa.event.listens_for(_get_dbos_instance()._sys_db.engine, "after_cursor_execute")
    def slow(conn, cursor, statement, *args):
        if "rate_limited" in statement and "count(" in statement.lower():
            time.sleep(0.2)

    print("ready", flush=True)
    time.sleep(float(sys.argv[3]))
    """
)


@pytest.fixture(params=["sqlite", "postgres"])
def url(request, tmp_path):
    url = f"sqlite:///{tmp_path / 'engine.sqlite'}" if request.param == "sqlite" else postgres_url()
    yield url
    if url.startswith("postgresql://"):
        _drop(url)


def test_rate_limit_holds_when_three_workers_claim_at_once(tmp_path, url):
    from dbos import DBOS, DBOSClient

    DBOS.migrate(url)
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    workers = [
        subprocess.Popen([sys.executable, str(script), url, f"w{i}", "8"], stdout=subprocess.PIPE, text=True)
        for i in range(3)
    ]
    try:
        for w in workers:
            assert w.stdout is not None and w.stdout.readline().strip() == "ready"
        client = DBOSClient(system_database_url=url)
        for _ in range(20):  # all at once: every worker finds work on its next poll
            client.enqueue({"queue_name": "shunter-rate-m", "workflow_name": PERMIT_WORKFLOW})
        for w in workers:
            w.wait(timeout=60)
        import sqlalchemy as sa

        engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
        table = "workflow_status" if url.startswith("sqlite") else "dbos.workflow_status"
        with engine.connect() as c:
            started = c.execute(
                sa.text(f"SELECT count(*) FROM {table} WHERE started_at_epoch_ms IS NOT NULL")
            ).scalar()
        engine.dispose()
        client.destroy()
        assert started == 6
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
                w.wait()
