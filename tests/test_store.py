"""The SQLite store: WAL, versioned schema with migrations, safe with several processes, search."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from router.summaries import run_summaries
from runtime.errors import ConfigError
from runtime.store import DuplicateRunError, Store, StoreError
from runtime.store_schema import LATEST, MIGRATIONS
from tests.test_resume import Brain, files_workspace, invoke_json, run_sync, step

V1_ROWS = """
INSERT INTO runs VALUES ('oldrun000001', 'count the TODO comments in src', 'succeeded', 1700000000, 1700000060,
    1700000060, '{"goal": "g", "subtasks": []}', NULL, 'There are 7.', NULL, '{"cost_usd": 0.01}', 60.0);
INSERT INTO subtasks VALUES ('oldrun000001', 't1', 'file', 'succeeded', 'found 7', NULL, '[]', 1, 2,
    '{}', 1700000001, 1700000050, 1);
INSERT INTO file_changes (run_id, subtask_id, path, before, after, at) VALUES ('oldrun000001', 't1', 'x.txt', NULL, X'61', 1700000010);
"""


def v1_store(path: Path) -> Path:
    """A state.db as the first schema version wrote it (its migration, which is never edited once
    released), holding one finished run."""
    version, create_v1 = MIGRATIONS[0]
    assert version == 1
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as c:
        c.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        c.execute("INSERT INTO schema_version VALUES (1)")
        create_v1(c)
        c.executescript(V1_ROWS)
    c.close()
    return path


def test_a_new_store_is_wal_at_the_latest_schema_version(tmp_path):
    with Store.open(tmp_path) as store:
        assert store.path == tmp_path / ".shunter" / "state.db"
        assert store.schema_version() == LATEST
        assert store._c.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store._c.execute("PRAGMA busy_timeout").fetchone()[0] >= 10_000
        assert store.integrity_check() == "ok"


def test_a_v1_store_is_migrated_and_keeps_its_runs(tmp_path):
    v1_store(tmp_path / ".shunter" / "state.db")

    with Store.open(tmp_path) as store:
        assert store.schema_version() == LATEST
        run = store.get_run("oldrun000001")
        assert run["answer"] == "There are 7." and run["plan"] == {"goal": "g", "subtasks": []}
        assert (
            run["conversation_id"] == "oldrun000001" and run["sessions"] == 1 and run["parent_run_id"] is None
        )
        assert store.subtasks("oldrun000001")[0]["session"] == 1
        assert store.file_changes("oldrun000001")[0]["path"] == "x.txt"
        assert store.has_conversation("oldrun000001")
        # What v2 added works on the old rows: search, conversations, per-call usage.
        assert [r["id"] for r in store.search_requests("count TODO comments in tests", 3, set())] == [
            "oldrun000001"
        ]
        store.add_model_call(
            "oldrun000001", "t1", "file", 1, "m", {"input_tokens": 5}, [("user", '{"role": "user"}')]
        )
        assert store.model_calls("oldrun000001")[0]["input_tokens"] == 5
        assert run_summaries(store)[0]["run_id"] == "oldrun000001"
        # v3: the run's flags; a run stored before them has none.
        assert LATEST >= 3 and run["overrides"] is None
        store.update_run("oldrun000001", overrides={"max_parallel": 2})
        assert store.get_run("oldrun000001")["overrides"] == {"max_parallel": 2}
        assert store.integrity_check() == "ok"

    with Store.open(tmp_path) as again:  # opening a migrated file changes nothing
        assert again.schema_version() == LATEST and again.get_run("oldrun000001")["answer"] == "There are 7."


def test_a_store_from_a_newer_shunter_is_refused(tmp_path):
    path = tmp_path / ".shunter" / "state.db"
    path.parent.mkdir()
    with sqlite3.connect(path) as c:
        c.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        c.execute("INSERT INTO schema_version VALUES (99)")
    c.close()

    with pytest.raises(ConfigError, match="newer Shunter"):
        Store.open(tmp_path)


WRITER = textwrap.dedent(
    """
    import sys
    from runtime.store import Store

    name, n = sys.argv[1], int(sys.argv[2])
    with Store.open(sys.argv[3]) as store:
        store.create_run(name, f"request of {name}", conversation_id=name, parent_run_id=None, pid=0, host="h",
                         new_conversation=name)
        for i in range(n):
            store.save_subtask(name, {"id": f"t{i}", "agent": "file", "status": "succeeded", "result": "r" * 200})
            store.add_file_change(name, f"t{i}", f"{name}/{i}.txt", None, b"x" * 500)
        store.update_run(name, status="succeeded")
    """
)


def test_processes_migrating_and_writing_at_once_lose_nothing(tmp_path):
    v1_store(tmp_path / ".shunter" / "state.db")  # each process finds an old file to migrate
    names = ["writer-a", "writer-b", "writer-c", "writer-d"]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, name, "200", str(tmp_path)], stderr=subprocess.PIPE, text=True
        )
        for name in names
    ]
    for p in procs:
        assert p.wait(timeout=60) == 0, p.stderr.read()

    with Store.open(tmp_path) as store:
        assert store.schema_version() == LATEST
        for name in names:
            assert store.get_run(name)["status"] == "succeeded"
            assert len(store.subtasks(name)) == 200 and len(store.file_changes(name)) == 200
        assert store.get_run("oldrun000001") is not None
        assert store.integrity_check() == "ok"


def _runs(store: Store, requests: list[tuple[str, str]]) -> None:
    for rid, request in requests:
        store.create_run(
            rid, request, conversation_id=rid, parent_run_id=None, pid=0, host="h", new_conversation=rid
        )
        store.update_run(rid, status="succeeded")


@pytest.mark.parametrize("fts", [True, False], ids=["fts5", "like"])
def test_similar_requests_rank_by_shared_words_with_fts_or_like(tmp_path, fts):
    with Store.open(tmp_path, fts=fts) as store:
        assert store.fts is fts
        _runs(
            store,
            [
                ("r1", "list the TODO comments in src"),
                ("r2", "count the TODO comments in src and write TODO.md"),
                ("r3", "fetch the weather for Paris"),
                ("r4", "count TODO comments in docs"),
            ],
        )
        # Still running: not a past outcome.
        store.create_run(
            "r5",
            "count TODO comments everywhere",
            conversation_id="r5",
            parent_run_id=None,
            pid=0,
            host="h",
            new_conversation="r5",
        )

        found = [r["id"] for r in store.search_requests("count the TODO comments in tests", 3, {"r4"})]

    assert found[:2] == ["r2", "r1"] and "r3" not in found and "r4" not in found and "r5" not in found


def test_the_run_row_is_written_before_planning_finishes(workspace, test_server):
    ws = files_workspace(workspace)
    brain = Brain(
        {"goal": "Read.", "subtasks": [step("t1", "Read a.txt.")]}, {"t1": [("read_file", {"path": "a.txt"})]}
    )
    seen_while_planning: list[tuple] = []

    def handler(body):
        # Look at the store from outside while the planner is asked, as another process would.
        if Brain.who(body["messages"]) == "planner":
            with sqlite3.connect(ws / ".shunter" / "state.db") as c:
                seen_while_planning.extend(c.execute("SELECT request, status, plan FROM runs").fetchall())
            c.close()
        return brain(body)

    test_server.handler = handler
    result = run_sync(ws, test_server, "read a please")

    assert seen_while_planning == [("read a please", "running", None)]
    with Store.open(ws) as store:
        run = store.get_run(result.run_id)
        assert run["status"] == "succeeded" and run["plan"]["subtasks"][0]["id"] == "t1"
        roles = [m["role"] for m in store.messages(result.run_id, "t1")]
        assert roles == ["system", "user", "assistant", "tool", "assistant"]
        assert {m["subtask_id"] for m in store.messages(result.run_id)} == {"planner", "t1"}
        calls = store.model_calls(result.run_id)
        assert [c["subtask_id"] for c in calls] == ["planner", "t1", "t1"] and all(
            c["input_tokens"] > 0 for c in calls
        )


def test_a_file_that_is_not_a_store_is_a_clear_usage_error(tmp_path):
    (tmp_path / ".shunter").mkdir()
    (tmp_path / ".shunter" / "state.db").write_bytes(b"this is not sqlite at all" * 100)

    with pytest.raises(ConfigError, match="not a usable Shunter store.*move it away"):
        Store.open(tmp_path)


def test_listing_runs_of_a_fresh_workspace_creates_nothing(workspace, test_server):
    assert invoke_json(test_server, workspace, "runs") == {"runs": []}
    assert not (workspace / ".shunter").exists()


def _new_run(store: Store, run_id: str = "r1") -> None:
    store.create_run(
        run_id,
        "a request",
        conversation_id=run_id,
        parent_run_id=None,
        pid=0,
        host="h",
        new_conversation=run_id,
    )


def test_a_run_id_stored_once_cannot_be_created_again(tmp_path):
    with Store.open(tmp_path) as store:
        _new_run(store)
        store.update_run("r1", status="succeeded")

        with pytest.raises(DuplicateRunError, match="already in the store"):
            _new_run(store)

        assert store.get_run("r1")["status"] == "succeeded" and len(store.list_runs()) == 1


def test_a_rejected_write_does_not_blame_the_disk_or_another_process(tmp_path):
    with Store.open(tmp_path) as store:
        _new_run(store)
        with pytest.raises(StoreError) as rejected:
            with store.tx() as c:
                c.execute(
                    "INSERT INTO runs (id, request, status, created_at, updated_at) VALUES ('r1', 'x', 's', 0, 0)"
                )

    message = str(rejected.value)
    assert "UNIQUE constraint failed" in message
    assert "disk" not in message and "another process" not in message


def test_a_write_blocked_by_another_process_past_the_timeout_says_so(tmp_path):
    with Store.open(tmp_path, busy_timeout_s=0.05) as store:
        holder = sqlite3.connect(store.path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # another writer that does not let go
        try:
            with pytest.raises(StoreError) as blocked:
                _new_run(store)
        finally:
            holder.execute("ROLLBACK")
            holder.close()

    assert "another process held it too long" in str(blocked.value) and "disk" not in str(blocked.value)


def test_subtasks_keep_their_order_when_updated_and_unfinished_ones_can_be_cancelled(tmp_path):
    with Store.open(tmp_path) as store:
        _new_run(store)
        for sid in ("t1", "t2", "t3"):
            store.save_subtask("r1", {"id": sid, "agent": "file", "status": "pending"})
        store.save_subtask("r1", {"id": "t2", "agent": "file", "status": "running", "started_at": 5.0})
        store.save_subtask("r1", {"id": "t1", "agent": "file", "status": "succeeded", "result": "done"})

        assert store.cancel_unfinished("r1") == 2

        rows = store.subtasks("r1")
    assert [(r["id"], r["status"]) for r in rows] == [
        ("t1", "succeeded"),
        ("t2", "cancelled"),
        ("t3", "cancelled"),
    ]
    assert (
        rows[0]["result"] == "done" and rows[1]["finished_at"] is not None and rows[2]["finished_at"] is None
    )
