"""The DBOS engine on SQLite: worker processes share one engine database; runs finish, nothing
is lost or done twice, a worker killed with -9 has its runs finished by the others without a
model call or a write repeated, and `shunter cancel` stops a run another process executes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from runtime.testserver import Reply, TestServer
from tests.test_resume import Brain, cli_env, step

PLAN = {
    "goal": "read two files, then mark the workspace once",
    "subtasks": [
        step("t1", "read a.txt"),
        step("t2", "read b.txt"),
        step("t3", "append one line to marks.txt", deps=["t1", "t2"], read_only=False, agent="shell"),
    ],
}
TOOLS = {
    "t1": [("read_file", {"path": "a.txt"})],
    "t2": [("read_file", {"path": "b.txt"})],
    "t3": [("run_command", {"command": "echo once >> marks.txt"})],
}
MODEL_CALLS_PER_RUN = 8  # planner, 2 turns for each of 3 subtasks, synthesis

# Six subtasks: three parallel reads, then a command, a write and a read of what was written.
PLAN6 = {
    "goal": "read, mark once, summarise, check",
    "subtasks": [
        *PLAN["subtasks"][:2],
        step("t3", "list the files"),
        step("t4", "append one line to marks.txt", deps=["t1", "t2", "t3"], read_only=False, agent="shell"),
        step("t5", "write summary.txt", deps=["t4"], read_only=False),
        step("t6", "read summary.txt", deps=["t5"]),
    ],
}
TOOLS6 = {
    **{k: TOOLS[k] for k in ("t1", "t2")},
    "t3": [("list_files", {"path": "."})],
    "t4": [("run_command", {"command": "echo once >> marks.txt"})],
    "t5": [("write_file", {"path": "summary.txt", "content": "alpha and beta\n"})],
    "t6": [("read_file", {"path": "summary.txt"})],
}
CALLS6 = 14  # planner, 2 turns for each of 6 subtasks, synthesis


class Counted:
    """The brain, counting each distinct conversation it is sent: a repeated model call is
    the same messages sent twice."""

    def __init__(self, brain: Brain):
        self.brain, self.seen = brain, Counter[str]()
        self._lock = threading.Lock()

    def __call__(self, body: dict[str, Any]) -> Reply:
        key = _key(body)
        with self._lock:
            self.seen[key] += 1
        return self.brain(body)

    def repeated(self) -> int:
        return sum(n - 1 for n in self.seen.values())


def _key(body: dict[str, Any]) -> str:
    return json.dumps(body.get("messages"), sort_keys=True)


def workspaces(root: Path, n: int) -> list[Path]:
    out = []
    for i in range(n):
        ws = root / f"ws{i}"
        ws.mkdir(parents=True)
        (ws / "a.txt").write_text(f"alpha {i}\n")
        (ws / "b.txt").write_text(f"beta {i}\n")
        (ws / ".shunter").mkdir()
        (ws / ".shunter" / "config.toml").write_text("[retry]\nattempts = 1\n")
        out.append(ws)
    return out


class Worker:
    def __init__(self, server: TestServer, url: str, log: Path, concurrency: int = 4):
        self.log = log
        env = cli_env(server) | {"SHUNTER_ENGINE_URL": url}
        with open(log, "w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "shunter.cli", "worker", "--concurrency", str(concurrency)],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=err,
                start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while "Worker " not in log.read_text():
            assert self.proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the worker did not start"
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def postgres_url() -> str:
    """A new database on the PostgreSQL server .ci/run starts (SHUNTER_TEST_POSTGRES_URL names
    it); DBOS creates the database on first use."""
    base = os.environ.get("SHUNTER_TEST_POSTGRES_URL")
    if not base:
        pytest.skip("no PostgreSQL server: set SHUNTER_TEST_POSTGRES_URL (.ci/run starts one and sets it)")
    return base.rsplit("/", 1)[0] + f"/shunter_test_{uuid.uuid4().hex[:10]}"


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request, tmp_path, test_server):
    url = f"sqlite:///{tmp_path / 'engine.sqlite'}" if request.param == "sqlite" else postgres_url()
    started: list[Worker] = []

    def start(n: int, concurrency: int = 4) -> list[Worker]:
        new = [
            Worker(test_server, url, tmp_path / f"worker{len(started) + i}.log", concurrency)
            for i in range(n)
        ]
        started.extend(new)
        return new

    yield url, start
    for w in started:
        w.stop()
    if url.startswith("postgresql://"):
        _drop(url)


def _drop(url: str) -> None:
    import sqlalchemy as sa

    base, name = url.rsplit("/", 1)
    admin = sa.create_engine(
        base.replace("postgresql://", "postgresql+psycopg://") + "/postgres", isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as c:
        c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def shunter(server: TestServer, url: str, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    env = cli_env(server) | {"SHUNTER_ENGINE_URL": url}
    return subprocess.run(
        [sys.executable, "-m", "shunter.cli", *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def batch_file(tmp_path: Path, spaces: list[Path]) -> Path:
    f = tmp_path / "batch.jsonl"
    f.write_text(
        "".join(
            json.dumps({"request": f"job {i}", "workspace": str(ws)}) + "\n" for i, ws in enumerate(spaces)
        )
    )
    return f


def test_runs_spread_over_workers_finish_once_each(tmp_path, test_server, engine):
    url, start = engine
    counted = Counted(Brain(PLAN6, TOOLS6))
    test_server.handler = counted
    test_server.latency_s = 0.05
    start(3)
    spaces = workspaces(tmp_path, 30)
    out = shunter(
        test_server, url, "batch", str(batch_file(tmp_path, spaces)), "--yes", "--json", timeout=300
    )
    assert out.returncode == 0, out.stderr
    runs = json.loads(out.stdout)["runs"]
    assert [r["status"] for r in runs] == ["succeeded"] * 30
    assert all(r["usage"]["requests"] == CALLS6 and r["usage"]["tool_calls"] == 6 for r in runs)
    assert len(test_server.chat_requests) == 30 * CALLS6 and counted.repeated() == 0
    for ws in spaces:  # every write made once, in its own run's workspace
        assert (ws / "marks.txt").read_text() == "once\n"
        assert (ws / "summary.txt").read_text() == "alpha and beta\n"
    # `show` and `undo` read what the workers recorded in each workspace.
    shown = shunter(test_server, url, "show", runs[0]["run_id"], "--workspace", str(spaces[0]), "--json")
    data = json.loads(shown.stdout)
    assert data["status"] == "succeeded" and [s["status"] for s in data["subtasks"]] == ["succeeded"] * 6
    assert [s["id"] for s in data["subtasks"] if s["files_changed"]] == ["t5"]
    undone = shunter(test_server, url, "undo", runs[0]["run_id"], "--workspace", str(spaces[0]))
    assert undone.returncode == 0, undone.stderr
    assert not (spaces[0] / "summary.txt").exists()
    # Every worker took subtasks: the runs were spread over the processes.
    taken = [
        e["data"]["worker"]
        for ws in spaces
        for e in map(json.loads, (ws / ".shunter/logs/events.jsonl").read_text().splitlines())
        if e["event"] == "engine.subtask"
    ]
    assert len(taken) == 30 * 6 and len(set(taken)) == 3


def test_a_worker_killed_mid_run_has_its_runs_finished_by_the_others(tmp_path, test_server, engine):
    url, start = engine
    counted = Counted(Brain(PLAN, TOOLS))
    test_server.handler = counted
    test_server.latency_s = 0.4
    victim, *_ = start(3, concurrency=2)
    spaces = workspaces(tmp_path, 6)
    submitted = shunter(
        test_server, url, "batch", str(batch_file(tmp_path, spaces)), "--yes", "--detach", "--json"
    )
    assert submitted.returncode == 0, submitted.stderr
    run_ids = [r["run_id"] for r in json.loads(submitted.stdout)["runs"]]
    time.sleep(2.0)  # planners answered, subtasks in flight on every worker
    before = len(test_server.chat_requests)
    assert 0 < before < 6 * MODEL_CALLS_PER_RUN
    killed_at = time.monotonic()
    os.killpg(victim.proc.pid, signal.SIGKILL)
    victim.proc.wait(timeout=10)
    for run_id, ws in zip(run_ids, spaces, strict=True):
        data = _wait_for(test_server, url, run_id, ws, timeout=90)
        assert data["status"] == "succeeded", (data.get("error"), data.get("subtasks"))
        assert (ws / "marks.txt").read_text() == "once\n"  # the write, made once
    # No finished model call was made again. The only calls sent twice are those the victim was
    # waiting on when it died (the server takes 0.4 s to answer): their answers died with it, and
    # the worker that recovered the run asked again. At most one per workflow it was running.
    # (Finished = answered well before the kill; the slack covers a loaded machine's delay
    # between an answer and its step being recorded.)
    requests = test_server.requests
    repeats = [k for k, n in counted.seen.items() if n > 1]
    for key in repeats:
        first = next(i for i, r in enumerate(requests) if r.body and _key(r.body) == key)
        answered = test_server.finished_at.get(first)
        assert requests[first].received_at < killed_at
        assert answered is None or answered > killed_at - 2.0, (answered, killed_at)
    assert len(repeats) <= 4 and counted.repeated() == len(repeats)  # each at most twice
    assert len(test_server.chat_requests) == 6 * MODEL_CALLS_PER_RUN + len(repeats)
    logs = "".join(p.read_text() for p in tmp_path.glob("worker*.log"))
    assert "went silent: recovered" in logs
    recovered = [
        e["data"]
        for ws in spaces
        for e in map(json.loads, (ws / ".shunter/logs/events.jsonl").read_text().splitlines())
        if e["event"] == "engine.recovered"
    ]
    assert recovered and all(d["replayed_steps"] > 0 for d in recovered)  # recorded steps reused


def _wait_for(server: TestServer, url: str, run_id: str, ws: Path, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        out = shunter(server, url, "show", run_id, "--workspace", str(ws), "--json")
        data = json.loads(out.stdout or "{}")
        if data.get("status") in ("succeeded", "failed", "cancelled") or time.monotonic() > deadline:
            return data
        time.sleep(0.5)


def test_cancel_stops_a_run_another_process_executes(tmp_path, test_server, engine):
    url, start = engine
    brain = Brain(PLAN, TOOLS)
    brain.slow = {"t1", "t2"}  # the reads' model calls hang for a minute
    test_server.handler = brain
    start(1)
    (ws,) = workspaces(tmp_path, 1)
    submitted = shunter(
        test_server,
        url,
        "run",
        "read and mark",
        "--yes",
        "--engine",
        "dbos",
        "--detach",
        "--json",
        "--workspace",
        str(ws),
    )
    assert submitted.returncode == 0, submitted.stderr
    run_id = json.loads(submitted.stdout)["run_id"]
    deadline = time.monotonic() + 30
    while brain.calls["t1"] + brain.calls["t2"] < 2:
        assert time.monotonic() < deadline, "the subtasks never started"
        time.sleep(0.1)
    out = shunter(test_server, url, "cancel", run_id, "--workspace", str(ws), "--json")
    assert out.returncode == 0 and json.loads(out.stdout)["cancelled"] is True, out.stderr
    cancelled = time.monotonic()  # the command has returned: the workflows are cancelled in the engine
    stopped = _stored_status_after(ws, run_id, "cancelled", timeout=20) - cancelled
    data = _wait_for(test_server, url, run_id, ws, timeout=20)
    assert data["status"] == "cancelled", data
    assert {s["id"]: s["status"] for s in data["subtasks"]} == {
        "t1": "cancelled",
        "t2": "cancelled",
        "t3": "skipped",
    }
    assert not (ws / "marks.txt").exists()
    # The worker stopped the run, aborting the in-flight model calls (they would hang a minute),
    # and recorded it, within the 2 s of the cancellation.
    assert stopped < 2.0, stopped
    # What the worker recorded is a run like any other: `resume` finishes it here, locally.
    brain.slow = set()
    resumed = shunter(test_server, url, "resume", run_id, "--yes", "--json", "--workspace", str(ws))
    assert json.loads(resumed.stdout)["status"] == "succeeded", resumed.stderr
    assert (ws / "marks.txt").read_text() == "once\n"


def _stored_status_after(ws: Path, run_id: str, status: str, timeout: float) -> float:
    """When (time.monotonic()) the run's row in the workspace store first shows `status`."""
    from runtime.store import Store

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with Store.open(ws) as store:
            row = store.get_run(run_id)
        if row is not None and row["status"] == status:
            return time.monotonic()
        time.sleep(0.02)
    raise AssertionError(f"run {run_id} was not {status} within {timeout} s")


def test_run_follows_the_run_and_prints_the_run_json(tmp_path, test_server, engine):
    url, start = engine
    test_server.handler = Brain(PLAN, TOOLS)
    start(1)
    (ws,) = workspaces(tmp_path, 1)
    out = shunter(
        test_server,
        url,
        "run",
        "read and mark",
        "--yes",
        "--engine",
        "dbos",
        "--json",
        "--workspace",
        str(ws),
    )
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["status"] == "succeeded" and data["answer"] == "All done."
    assert data["usage"]["requests"] == MODEL_CALLS_PER_RUN and data["usage"]["tool_calls"] == 3
    assert [s["status"] for s in data["subtasks"]] == ["succeeded"] * 3


def test_runs_and_show_list_a_run_no_worker_has_taken_yet(tmp_path, test_server, engine):
    url, start = engine
    test_server.handler = Brain(PLAN, TOOLS)
    (ws,) = workspaces(tmp_path, 1)
    where = ("--workspace", str(ws))
    sub = shunter(
        test_server, url, "run", "read and mark", "--yes", "--engine", "dbos", "--detach", "--json", *where
    )
    assert sub.returncode == 0, sub.stderr
    run_id = json.loads(sub.stdout)["run_id"]
    # No worker yet: the run is only in the engine's database, and still listed.
    listed = json.loads(shunter(test_server, url, "runs", "--json", *where).stdout)["runs"]
    assert [(r["run_id"], r["status"], r["request"]) for r in listed] == [(run_id, "queued", "read and mark")]
    shown = shunter(test_server, url, "show", run_id[:8], "--json", *where)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["status"] == "queued"
    assert "queued" in shunter(test_server, url, "show", run_id, *where).stdout
    other = tmp_path / "elsewhere"
    other.mkdir()
    assert json.loads(shunter(test_server, url, "runs", "--json", "--workspace", str(other)).stdout) == {
        "runs": []
    }
    start(1)
    deadline = time.monotonic() + 60
    while True:  # once a worker has recorded it, the store's row is the one listed, once
        listed = json.loads(shunter(test_server, url, "runs", "--json", *where).stdout)["runs"]
        if listed[0]["status"] == "succeeded" or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert [(r["run_id"], r["status"]) for r in listed] == [(run_id, "succeeded")]


def test_a_workspace_config_cannot_choose_the_engine(tmp_path):
    from runtime.config import load_settings

    (ws,) = workspaces(tmp_path, 1)
    (ws / ".shunter" / "config.toml").write_text(
        '[engine]\nkind = "dbos"\nurl = "postgresql://evil.example/db"\n'
    )
    settings = load_settings(ws)
    assert settings.engine.kind == "local" and settings.engine.url is None
    assert any("engine" in w for w in settings.warnings)


def test_requests_per_minute_hold_across_all_workers(tmp_path, test_server, engine):
    url, start = engine
    # Every worker's own config: the limit is the cluster's, counted in the engine's database.
    config = Path(os.environ["XDG_CONFIG_HOME"]) / "shunter" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text('[rate_limits."scripted"]\nrequests_per_minute = 6\n')
    reads = {"goal": "g", "subtasks": [step("t1", "say a"), step("t2", "say b"), step("t3", "say c")]}
    test_server.handler = Brain(reads, {})  # 5 calls a run: planner, three subtasks, synthesis
    start(3, concurrency=2)
    spaces = workspaces(tmp_path, 2)
    out = shunter(test_server, url, "batch", str(batch_file(tmp_path, spaces)), "--yes", "--json")
    assert out.returncode == 0, out.stderr
    assert [r["status"] for r in json.loads(out.stdout)["runs"]] == ["succeeded"] * 2
    arrived = sorted(r.received_at for r in test_server.chat_requests)
    assert len(arrived) == 10
    # Never more than 6 in any minute at the server: the 7th comes a minute after the 1st.
    assert all(arrived[i + 6] - arrived[i] >= 59.5 for i in range(len(arrived) - 6)), " ".join(
        f"{t - arrived[0]:.2f}" for t in arrived
    )
    waits = [
        e
        for ws in spaces
        for e in map(json.loads, (ws / ".shunter/logs/events.jsonl").read_text().splitlines())
        if e["event"] == "model.rate_limited"
    ]
    assert waits and all(e["data"]["cluster"] for e in waits)


def test_a_shared_dollar_budget_stops_every_workers_runs_at_the_cap(tmp_path, test_server, engine):
    url, start = engine
    config = Path(os.environ["XDG_CONFIG_HOME"]) / "shunter" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    # Input tokens priced, output free: each call's worst case is then exactly known.
    config.write_text('[prices."scripted"]\ninput = 100.0\noutput = 0.0\n')
    test_server.handler = Brain(PLAN, TOOLS)
    start(3, concurrency=2)
    one = shunter(
        test_server,
        url,
        "batch",
        str(batch_file(tmp_path, workspaces(tmp_path / "one", 1))),
        "--yes",
        "--json",
    )
    cost_of_a_run = json.loads(one.stdout)["runs"][0]["usage"]["cost_usd"]
    assert cost_of_a_run > 0, one.stderr
    cap = 2.5 * cost_of_a_run
    spaces = workspaces(tmp_path, 6)
    out = shunter(
        test_server,
        url,
        "batch",
        str(batch_file(tmp_path, spaces)),
        "--yes",
        "--json",
        "--max-cost",
        str(cap),
    )
    runs = json.loads(out.stdout)["runs"]
    assert out.returncode == 1 and len(runs) == 6, out.stderr
    spent = sum(r["usage"]["cost_usd"] for r in runs)  # every run says what it spent, stopped ones too
    assert spent <= cap + 1e-9, (spent, cap)  # never over, summed over every worker's calls
    assert spent > 1.5 * cost_of_a_run  # and the budget was used, not refused up front
    stopped = [r for r in runs if r["status"] != "succeeded"]
    assert stopped and all(r["status"] == "failed" and "max_cost_usd" in (r["error"] or "") for r in stopped)


@pytest.fixture
def follower(test_server):
    """`shunter run --engine dbos` in a process of its own, killed after the test if still there."""
    procs: list[subprocess.Popen] = []

    def start(url: str, ws: Path, err: Path) -> subprocess.Popen:
        env = cli_env(test_server) | {"SHUNTER_ENGINE_URL": url}
        args = ["run", "read and mark", "--yes", "--engine", "dbos", "--json", "--workspace", str(ws)]
        with open(err, "w") as f:
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "shunter.cli", *args],
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=f,
                    text=True,
                )
            )
        return procs[-1]

    yield start
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_ctrl_c_on_the_submitting_process_cancels_the_run_on_its_worker(
    tmp_path, test_server, engine, follower
):
    url, start = engine
    brain = Brain(PLAN, TOOLS)
    brain.slow = {"t1", "t2"}
    test_server.handler = brain
    start(1)
    (ws,) = workspaces(tmp_path, 1)
    proc = follower(url, ws, tmp_path / "follower.err")
    deadline = time.monotonic() + 30
    while brain.calls["t1"] + brain.calls["t2"] < 2:
        assert time.monotonic() < deadline and proc.poll() is None, (tmp_path / "follower.err").read_text()
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    data = json.loads(out)
    assert proc.returncode == 130 and data["status"] == "cancelled", data
    assert [s["status"] for s in data["subtasks"]] == ["cancelled", "cancelled", "skipped"]


def test_a_worker_that_cannot_see_the_workspace_fails_the_run_clearly(
    tmp_path, test_server, engine, follower
):
    url, start = engine
    test_server.handler = Brain(PLAN, TOOLS)
    (ws,) = workspaces(tmp_path, 1)
    err = tmp_path / "follower.err"
    proc = follower(url, ws, err)  # no worker yet: the run waits in the queue
    deadline = time.monotonic() + 30
    while "enqueued" not in err.read_text():
        assert time.monotonic() < deadline and proc.poll() is None, err.read_text()
        time.sleep(0.05)
    while "No worker is running" not in err.read_text():  # said once the run has waited 3 s
        assert time.monotonic() < deadline and proc.poll() is None, err.read_text()
        time.sleep(0.1)
    assert "start one with `shunter worker`" in err.read_text()
    ws.rename(tmp_path / "moved")  # the path the run names is gone where the worker runs
    start(1)
    out, _ = proc.communicate(timeout=60)
    data = json.loads(out)
    assert proc.returncode == 1 and data["status"] == "failed"
    assert "cannot see the workspace" in data["error"] and str(ws) in data["error"]
    assert len(test_server.chat_requests) == 0


def test_a_worker_taken_for_dead_stops_rather_than_run_its_workflows_twice(tmp_path, engine):
    import sqlalchemy as sa

    url, start = engine
    (w,) = start(1)
    executor = w.log.read_text().split("Worker ", 1)[1].split(" ", 1)[0]
    db = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with db.begin() as c:  # what a peer does when this worker's heartbeat was silent too long
        c.execute(
            sa.text("UPDATE shunter_workers SET recovered_by = 'a-peer' WHERE executor_id = :id"),
            {"id": executor},
        )
    db.dispose()
    assert w.proc.wait(timeout=10) == 75
    assert "taken for dead" in w.log.read_text() and "stops now" in w.log.read_text()


def test_workers_lists_the_live_workers_and_the_queues(tmp_path, test_server, engine):
    url, start = engine
    test_server.handler = Brain(PLAN, TOOLS)
    (ws,) = workspaces(tmp_path, 1)
    sub = shunter(
        test_server, url, "run", "r", "--yes", "--engine", "dbos", "--detach", "--workspace", str(ws)
    )
    assert sub.returncode == 0, sub.stderr
    before = json.loads(shunter(test_server, url, "workers", "--json").stdout)
    assert (
        before["workers"] == [] and before["queued"]["runs"] == 1 and "shunter-test" not in before["engine"]
    )
    first, second = start(2)
    deadline = time.monotonic() + 60
    while (
        json.loads(shunter(test_server, url, "runs", "--json", "--workspace", str(ws)).stdout)["runs"][0][
            "status"
        ]
        != "succeeded"
    ):
        assert time.monotonic() < deadline, "the run did not finish"
        time.sleep(0.5)
    during = json.loads(shunter(test_server, url, "workers", "--json").stdout)
    assert [w["status"] for w in during["workers"]] == ["alive", "alive"]
    assert {w["pid"] for w in during["workers"]} == {first.proc.pid, second.proc.pid}
    assert during["queued"] == {"runs": 0, "subtasks": 0} and during["running"] == {"runs": 0, "subtasks": 0}
    second.stop()  # a clean stop leaves the list at once
    after = json.loads(shunter(test_server, url, "workers", "--json").stdout)
    assert [w["pid"] for w in after["workers"]] == [first.proc.pid]
    text = shunter(test_server, url, "workers")
    assert text.returncode == 0 and "1 worker(s)" in text.stdout and "Queued: 0 runs" in text.stdout


@pytest.mark.parametrize("answer", ["y", "n"])
def test_approvals_are_asked_on_the_terminal_that_follows_the_run(tmp_path, test_server, engine, answer):
    import pty

    url, start = engine
    test_server.handler = Brain(PLAN, TOOLS)
    start(1)
    (ws,) = workspaces(tmp_path, 1)
    err = tmp_path / "follower.err"
    terminal, follower_tty = pty.openpty()  # the follower's stdin is a terminal, and no --yes
    env = cli_env(test_server) | {"SHUNTER_ENGINE_URL": url}
    args = ["run", "read and mark", "--engine", "dbos", "--json", "--workspace", str(ws)]
    with open(err, "w") as f:
        proc = subprocess.Popen(
            [sys.executable, "-m", "shunter.cli", *args],
            env=env,
            stdin=follower_tty,
            stdout=subprocess.PIPE,
            stderr=f,
            text=True,
        )
    os.close(follower_tty)
    try:
        deadline = time.monotonic() + 60
        while "Allow?" not in err.read_text():
            assert time.monotonic() < deadline and proc.poll() is None, err.read_text()
            time.sleep(0.05)
        assert "run_command: echo once >> marks.txt" in err.read_text()
        assert not (ws / "marks.txt").exists()  # the worker waits for the answer
        os.write(terminal, f"{answer}\n".encode())
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(terminal)
    data = json.loads(out)
    t3 = data["subtasks"][2]
    if answer == "y":
        assert data["status"] == "succeeded" and proc.returncode == 0
        assert (ws / "marks.txt").read_text() == "once\n"
    else:  # as in a local run: the refused side effect fails its subtask, and nothing is written
        assert data["status"] == "failed" and proc.returncode == 1
        assert t3["status"] == "failed" and "Not approved: run_command" in t3["error"]
        assert not (ws / "marks.txt").exists()
    assert err.read_text().count("Allow?") == 1
