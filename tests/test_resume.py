"""Runs survive crashes: the CLI killed with SIGKILL mid-run is resumed without redoing finished
work; two runs share a workspace safely; `runs` / `show` / `resume` keep their JSON contracts."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from router.locks import RunLock
from router.lookup import RefusedError
from router.resume import resumable_run
from runtime.context import approve_all
from runtime.store import Store
from runtime.testserver import Reply, Slow, Text, ToolCalls
from shunter import api
from shunter.wiring import OpenAIProvider
from tests.server_fixtures import TEST_API_KEY

# --- a scripted model that plays planner, specialists and synthesis --------------------------------


def step(
    sid: str, instruction: str, *, deps: list[str] | None = None, read_only: bool = True, agent: str = "file"
) -> dict:
    return {
        "id": sid,
        "agent": agent,
        "instruction": f"[{sid}] {instruction}",
        "depends_on": deps or [],
        "read_only": read_only,
    }


class Brain:
    """Answers every request of a run from its messages: the planner gets `plan`; subtask tN
    first calls `tools[tN]` then answers "result of tN"; the synthesis answers `answer`.
    Counts requests per subtask and keeps what each was sent. Thread-safe (parallel requests)."""

    def __init__(self, plan: dict, tools: dict[str, list[tuple[str, dict]]], answer: str = "All done."):
        self.plan, self.tools, self.answer = plan, tools, answer
        self.slow: set[str] = set()
        self.calls: Counter[str] = Counter()
        self.seen: dict[str, list[list[dict]]] = defaultdict(list)
        self._lock = threading.Lock()

    @staticmethod
    def who(messages: list[dict]) -> str:
        system = messages[0]["content"]
        if system.startswith("You are the planner"):
            return "planner"
        if system.startswith("You write the final answer"):
            return "synthesis"
        found = re.search(r"\[(t\d+)\]", messages[1]["content"])
        return found.group(1) if found else "?"

    def __call__(self, body: dict[str, Any]) -> Reply:
        messages = body["messages"]
        who = self.who(messages)
        with self._lock:
            self.calls[who] += 1
            self.seen[who].append(messages)
        if who == "planner":
            return Text(json.dumps(self.plan))
        if who == "synthesis":
            return Text(self.answer)
        turns = sum(1 for m in messages if m["role"] == "assistant")
        calls = self.tools.get(who, [])
        reply: Reply = ToolCalls([calls[turns]]) if turns < len(calls) else Text(f"result of {who}")
        return Slow(60, reply) if who in self.slow else reply


def files_workspace(ws: Path) -> Path:
    for name in ("a", "b", "c"):
        (ws / f"{name}.txt").write_text(f"content of {name}\n")
    (ws / ".shunter").mkdir(exist_ok=True)
    # No OS sandbox: these runs use only file tools, and the test must not depend on bwrap.
    (ws / ".shunter" / "config.toml").write_text('[tools]\nsandbox = "none"\n\n[retry]\nattempts = 1\n')
    return ws


def server_env(server) -> dict[str, str]:
    return {"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": TEST_API_KEY, "SHUNTER_MODEL": "scripted"}


def cli_env(server) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "SHUNTER_"))}
    return env | server_env(server)


def cli_args(*args: str, ws: Path) -> list[str]:
    return [sys.executable, "-m", "shunter.cli", *args, "--workspace", str(ws)]


def cli(server, ws: Path, *args: str) -> subprocess.CompletedProcess:
    """The CLI in a process of its own."""
    return subprocess.run(
        cli_args(*args, ws=ws), env=cli_env(server), capture_output=True, text=True, timeout=90
    )


def invoke(server, ws: Path, *args: str):
    """The CLI in this process (typer's runner): fast, for commands that need no process of their own."""
    from runtime.events import configure_stderr
    from shunter.cli import app

    try:
        return CliRunner().invoke(app, [*args, "--workspace", str(ws)], env=server_env(server))
    finally:
        configure_stderr(0)  # the runner's stderr is gone; log to the real one again


def invoke_json(server, ws: Path, *args: str) -> dict:
    result = invoke(server, ws, *args, "--json")
    assert result.stdout.strip(), result.stderr
    return json.loads(result.stdout)


def in_process_ctx(ws: Path, server, **kw):
    overrides = {"model": {"name": "scripted", "base_url": server.base_url, "api_key": TEST_API_KEY}}
    return api.prepare(ws, overrides=overrides, approve=approve_all, **kw)


async def arun(ws: Path, server, request: str, **kw):
    """api.run with a store, the way a library user persists runs."""
    ctx = in_process_ctx(ws, server)
    provider = OpenAIProvider(ctx.settings)
    with Store.open(ws) as store:
        try:
            return await api.run(request, ctx=ctx, model=provider, store=store, **kw)
        finally:
            await provider.aclose()


def run_sync(ws: Path, server, request: str, **kw):
    return asyncio.run(arun(ws, server, request, **kw))


async def aresume(ws: Path, server, run_id: str, force: bool = False):
    ctx = in_process_ctx(ws, server, run_id=run_id)
    provider = OpenAIProvider(ctx.settings)
    with Store.open(ws) as store:
        try:
            return await api.resume(run_id, ctx=ctx, model=provider, store=store, force=force)
        finally:
            await provider.aclose()


def integrity(ws: Path) -> str:
    with Store.open(ws) as store:
        return store.integrity_check()


# --- the plan of the crash test ----------------------------------------------------------------

PLAN = {
    "goal": "Read three files, write one, combine two results.",
    "subtasks": [
        step("t1", "Read a.txt and report its content."),
        step("t2", "Read b.txt and report its content."),
        step("t3", "Read c.txt and report its content."),
        step("t4", "Write out.txt containing the line 'written once'.", read_only=False),
        step("t5", "Combine the results of t1 and t3.", deps=["t1", "t3"]),
    ],
}
TOOLS = {
    "t1": [("read_file", {"path": "a.txt"})],
    "t2": [("read_file", {"path": "b.txt"})],
    "t3": [("read_file", {"path": "c.txt"})],
    "t4": [("write_file", {"path": "out.txt", "content": "written once\n"})],
    "t5": [("list_files", {"path": "."})],
}


def _states(db: Path) -> tuple[str | None, dict[str, str]]:
    """(run id, subtask statuses) as another process sees the store right now."""
    if not db.exists():
        return None, {}
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as c:
            run = c.execute("SELECT id FROM runs").fetchone()
            rows = c.execute("SELECT id, status FROM subtasks").fetchall()
    except sqlite3.OperationalError:  # the tables are being created
        return None, {}
    return (run[0] if run else None), dict(rows)


def start_run(server, ws: Path, errors: Path, request: str) -> subprocess.Popen:
    """`shunter run --yes --json REQUEST` in a process of its own, its stderr kept in `errors`."""
    with errors.open("w") as err:
        return subprocess.Popen(
            cli_args("run", "--yes", "--json", request, ws=ws),
            env=cli_env(server),
            stdout=subprocess.DEVNULL,
            stderr=err,
        )


def wait_until(proc: subprocess.Popen, db: Path, ready, errors: Path) -> tuple[str, dict[str, str]]:
    # The run is another process: poll the store it writes (a short sleep between looks).
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        run_id, states = _states(db)
        if run_id and ready(states):
            return run_id, states
        if proc.poll() is not None:
            pytest.fail(f"The run ended before the expected state ({states}): {errors.read_text()}")
        time.sleep(0.02)
    proc.kill()
    pytest.fail(f"Timed out waiting for the run; last states {states}")


def test_sigkill_mid_run_then_resume_finishes_without_repeating_finished_work(
    workspace, test_server, tmp_path
):
    ws = files_workspace(workspace)
    brain = Brain(PLAN, TOOLS, answer="Read a, b and c; wrote out.txt.")
    brain.slow = {"t3"}  # t3 is still in flight when the process is killed
    test_server.handler = brain
    errors = tmp_path / "run-stderr.txt"
    proc = start_run(test_server, ws, errors, "read, write and combine")

    def mid_run(states: dict[str, str]) -> bool:
        return all(states.get(t) == "succeeded" for t in ("t1", "t2", "t4")) and states.get("t3") == "running"

    run_id, _ = wait_until(proc, ws / ".shunter" / "state.db", mid_run, errors)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=10) == -signal.SIGKILL
    before = Counter(brain.calls)

    listed = invoke_json(test_server, ws, "runs")["runs"]
    assert [(r["run_id"], r["status"]) for r in listed] == [(run_id, "interrupted")]
    shown = invoke_json(test_server, ws, "show", run_id)
    assert shown["status"] == "interrupted"
    assert {s["id"]: s["status"] for s in shown["subtasks"]} == {
        "t1": "succeeded",
        "t2": "succeeded",
        "t3": "interrupted",
        "t4": "succeeded",
        "t5": "pending",
    }

    brain.slow.clear()
    resumed = cli(test_server, ws, "resume", run_id, "--yes", "--json")
    data = json.loads(resumed.stdout or "{}")

    assert data.get("run_id") == run_id and data["status"] == "succeeded", resumed.stderr
    assert {s["id"]: s["status"] for s in data["subtasks"]} == dict.fromkeys(
        ["t1", "t2", "t3", "t4", "t5"], "succeeded"
    )
    assert data["answer"] == "Read a, b and c; wrote out.txt."
    # Finished subtasks were not asked again; t3 ran again from its start; t5 ran once.
    for t in ("t1", "t2", "t4"):
        assert brain.calls[t] == before[t] == 2, t
    assert before["t3"] == 1 and brain.calls["t3"] == 3
    assert brain.calls["t5"] == 2 and brain.calls["planner"] == 1
    # Usage covers both processes: every request that got an answer (not the one cut by the kill).
    assert data["usage"]["requests"] == sum(brain.calls.values()) - 1
    # The kept result of t1 fed t5 in the resumed process.
    assert "result of t1" in brain.seen["t5"][0][1]["content"]
    # The write happened once, and once only is recorded.
    assert (ws / "out.txt").read_text() == "written once\n"
    with Store.open(ws) as store:
        writes = [c for c in store.file_changes(run_id) if c["path"] == "out.txt"]
        assert len(writes) == 1 and writes[0]["subtask_id"] == "t4"
        assert store.get_run(run_id)["sessions"] == 2
        assert store.get_run(run_id)["status"] == "succeeded"
        assert store.integrity_check() == "ok"


READS = {
    "goal": "Read two files.",
    "subtasks": [step("t1", "Read a.txt and report it."), step("t2", "Read b.txt and report it.")],
}
READ_TOOLS = {"t1": [("read_file", {"path": "a.txt"})], "t2": [("read_file", {"path": "b.txt"})]}


def test_two_runs_at_once_in_one_workspace_both_complete_and_are_recorded(workspace, test_server):
    ws = files_workspace(workspace)
    test_server.handler = Brain(READS, READ_TOOLS)
    test_server.latency_s = 0.05  # long enough for the two runs to overlap
    env = cli_env(test_server)
    procs = [
        subprocess.Popen(
            cli_args("run", "--yes", "--json", request, ws=ws),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for request in ("first request", "second request")
    ]
    results = [json.loads(p.communicate(timeout=90)[0]) for p in procs]

    assert [r["status"] for r in results] == ["succeeded", "succeeded"]
    ids = {r["run_id"] for r in results}
    assert len(ids) == 2
    listed = invoke_json(test_server, ws, "runs")["runs"]
    assert {r["run_id"] for r in listed} == ids
    assert all(r["status"] == "succeeded" and r["subtasks_done"] == r["subtasks_total"] == 2 for r in listed)
    with Store.open(ws) as store:
        for rid in ids:
            assert [s["status"] for s in store.subtasks(rid)] == ["succeeded", "succeeded"]
            assert store.get_run(rid)["answer"] == "All done."
        assert store.integrity_check() == "ok"


def test_runs_json_lists_newest_first_with_the_contract_fields(workspace, test_server):
    ws = files_workspace(workspace)
    test_server.handler = Brain(READS, READ_TOOLS)
    first = run_sync(ws, test_server, "the first request")
    second = run_sync(ws, test_server, "the second request")

    runs = invoke_json(test_server, ws, "runs")["runs"]

    assert [r["run_id"] for r in runs] == [second.run_id, first.run_id]
    for r in runs:
        assert {
            "run_id",
            "status",
            "request",
            "created_at",
            "subtasks_done",
            "subtasks_total",
            "cost_usd",
        } <= r.keys()
    assert runs[1]["request"] == "the first request" and runs[1]["status"] == "succeeded"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", runs[0]["created_at"])


def test_show_json_is_the_run_object_plus_its_history(workspace, test_server):
    ws = files_workspace(workspace)
    test_server.handler = Brain(PLAN, TOOLS)
    result = run_sync(ws, test_server, "read, write and combine")

    shown = invoke_json(test_server, ws, "show", result.run_id[:6])

    expected = json.loads(json.dumps(result.to_dict(), default=str))
    for key in ("run_id", "status", "request", "answer", "plan", "estimate", "usage"):
        assert shown[key] == expected[key], key
    assert [s["id"] for s in shown["subtasks"]] == ["t1", "t2", "t3", "t4", "t5"]
    assert shown["subtasks"][3]["files_changed"] == ["out.txt"]
    assert shown["files"] == [{"path": "out.txt", "subtask_id": "t4", "action": "created"}]
    assert shown["created_at"] and shown["conversation_id"] and shown["sessions"] == 1
    text = invoke(test_server, ws, "show", result.run_id).stdout
    assert "t4" in text and "out.txt" in text and "succeeded" in text


def test_resume_json_prints_the_run_json_object(workspace, test_server):
    ws = files_workspace(workspace)
    brain = Brain(READS, READ_TOOLS)
    test_server.handler = brain
    ran = run_sync(ws, test_server, "read two files").to_dict()  # what `run --json` prints
    with Store.open(ws) as store:  # as if t2 had been cancelled
        store.update_run(ran["run_id"], status="cancelled")
        row = store.subtasks(ran["run_id"])[1]
        store.save_subtask(ran["run_id"], {**row, "status": "cancelled"})

    resumed = invoke_json(test_server, ws, "resume", ran["run_id"], "--yes")

    assert resumed.keys() == ran.keys() and resumed["run_id"] == ran["run_id"]
    assert resumed["status"] == "succeeded" and brain.calls["t1"] == 2 and brain.calls["t2"] == 4


async def test_resume_refuses_when_files_of_an_unfinished_subtask_changed_and_force_overrides(
    workspace, test_server
):
    ws = files_workspace(workspace)
    brain = Brain(PLAN, TOOLS)
    test_server.handler = brain
    result = await arun(ws, test_server, "read, write and combine")
    with Store.open(ws) as store:  # as if the process had died while t4 was still going
        store.update_run(result.run_id, status="running")
        row = next(r for r in store.subtasks(result.run_id) if r["id"] == "t4")
        store.save_subtask(result.run_id, {**row, "status": "running"})
    (ws / "out.txt").write_text("edited by hand\n")

    with pytest.raises(RefusedError) as refused:
        await aresume(ws, test_server, result.run_id)
    assert "out.txt" in str(refused.value) and "t4" in str(refused.value) and "--force" in str(refused.value)
    assert (ws / "out.txt").read_text() == "edited by hand\n"
    assert brain.calls["t4"] == 2

    resumed = await aresume(ws, test_server, result.run_id, force=True)

    assert resumed.status == "succeeded" and brain.calls["t4"] == 4
    assert brain.calls["t1"] == 2  # succeeded subtasks stay done
    assert (ws / "out.txt").read_text() == "written once\n"


async def test_resume_refuses_a_run_that_is_still_running_or_already_succeeded(workspace, test_server):
    ws = files_workspace(workspace)
    test_server.handler = Brain(READS, READ_TOOLS)
    result = await arun(ws, test_server, "read two files")
    with Store.open(ws) as store:
        with pytest.raises(RefusedError, match="already succeeded"):
            resumable_run(store, result.run_id)
        store.update_run(result.run_id, status="running")
        holder = RunLock(ws / ".shunter", result.run_id)
        assert holder.acquire()  # a live process works on it
        try:
            with pytest.raises(RefusedError, match="still running"):
                resumable_run(store, result.run_id)
        finally:
            holder.release()
        assert resumable_run(store, result.run_id)["id"] == result.run_id  # now interrupted


async def test_a_cancelled_run_is_recorded_and_resumes(workspace, test_server):
    ws = files_workspace(workspace)
    plan = {
        **PLAN,
        "subtasks": [
            *PLAN["subtasks"][:4],
            step("t5", "Combine all results.", deps=["t1", "t2", "t3", "t4"]),
        ],
    }
    brain = Brain(plan, TOOLS)
    test_server.handler = brain
    ctx = in_process_ctx(ws, test_server)
    provider = OpenAIProvider(ctx.settings)

    def cancel_at_t5(rec) -> None:
        if rec.id == "t5" and rec.status == "running":
            ctx.cancel.cancel("test")

    with Store.open(ws) as store:
        try:
            first = await api.run(
                "read, write and combine", ctx=ctx, model=provider, store=store, listeners=[cancel_at_t5]
            )
        finally:
            await provider.aclose()
        assert first.status == "cancelled"
        assert store.get_run(first.run_id)["status"] == "cancelled"

    resumed = await aresume(ws, test_server, first.run_id)

    assert resumed.status == "succeeded"
    assert [brain.calls[t] for t in ("t1", "t2", "t3", "t4", "t5")] == [2, 2, 2, 2, 2]
    assert integrity(ws) == "ok"


async def test_resume_with_nothing_given_closes_what_it_opened(workspace, test_server, monkeypatch):
    """api.resume(run_id, workspace=...) makes its own context, store and model client: all three
    are closed when it returns (no log sink, database handle or HTTP client left behind)."""
    from loguru import logger

    ws = files_workspace(workspace)
    brain = Brain(PLAN, TOOLS)
    brain.slow = {"t3"}
    test_server.handler = brain
    ctx = in_process_ctx(ws, test_server)
    provider = OpenAIProvider(ctx.settings)

    def cancel_at_t3(rec) -> None:
        if rec.id == "t3" and rec.status == "running":
            ctx.cancel.cancel("test")

    with Store.open(ws) as store:
        try:
            first = await api.run(
                "read and write", ctx=ctx, model=provider, store=store, listeners=[cancel_at_t3]
            )
        finally:
            await provider.aclose()
    ctx.close()
    brain.slow.clear()
    monkeypatch.setenv("OPENAI_BASE_URL", test_server.base_url)
    monkeypatch.setenv("SHUNTER_MODEL", "scripted")
    sinks = len(logger._core.handlers)  # type: ignore[attr-defined]
    closed: list[str] = []
    real_close, real_aclose = Store.close, OpenAIProvider.aclose
    monkeypatch.setattr(Store, "close", lambda self: (closed.append("store"), real_close(self))[1])

    async def aclose(self) -> None:
        closed.append("client")
        await real_aclose(self)

    monkeypatch.setattr(OpenAIProvider, "aclose", aclose)

    resumed = await api.resume(first.run_id, workspace=ws, approve=approve_all)

    assert first.status == "cancelled" and resumed.status == "succeeded"
    assert len(logger._core.handlers) == sinks  # type: ignore[attr-defined]
    assert "client" in closed and "store" in closed


# --- a resumed run keeps its settings, its clock and its record ----------------------------------


def flagged_ctx(ws: Path, server, flags: dict, **kw):
    """A context made the way `shunter run` makes one: `flags` are the CLI overrides, kept on ctx."""
    from router.overrides import merge_overrides

    base = {"model": {"name": "scripted", "base_url": server.base_url, "api_key": TEST_API_KEY}}
    ctx = api.prepare(ws, overrides=merge_overrides(base, flags), approve=approve_all, **kw)
    ctx.overrides = flags
    return ctx


async def run_with(ctx, request: str, **kw):
    provider = OpenAIProvider(ctx.settings)
    with Store.open(ctx.workspace) as store:
        try:
            return await api.run(request, ctx=ctx, model=provider, store=store, **kw)
        finally:
            await provider.aclose()


def mark_unfinished(ws: Path, run_id: str, sid: str, **run_fields) -> None:
    """As if subtask `sid` had failed and the run had stopped there."""
    with Store.open(ws) as store:
        store.update_run(run_id, status="failed", **run_fields)
        row = next(r for r in store.subtasks(run_id) if r["id"] == sid)
        store.save_subtask(run_id, {**row, "status": "failed"})


def priced(ws: Path) -> Path:
    # The scripted model costs $0.001 a token, so a budget can stop a run part way.
    with open(ws / ".shunter" / "config.toml", "a") as f:
        f.write("\n[prices.scripted]\ninput = 1000.0\ncached_input = 1000.0\noutput = 1000.0\n")
    return ws


async def test_resume_reapplies_the_flags_the_run_was_started_with(workspace, test_server):
    ws = files_workspace(workspace)
    brain = Brain(READS, READ_TOOLS)
    models: list[str] = []
    test_server.handler = lambda body: (models.append(body["model"]), brain(body))[1]
    flags = {"model": {"name": "scripted-big"}, "max_parallel": 1, "fail_fast": True}
    flags["limits"] = {"max_tokens": 900_000}
    ctx = flagged_ctx(ws, test_server, flags)
    ctx.overrides = {**flags, "model": {"name": "scripted-big", "api_key": TEST_API_KEY}}
    first = await run_with(ctx, "read two files")
    mark_unfinished(ws, first.run_id, "t2")
    with Store.open(ws) as store:
        assert store.get_run(first.run_id)["overrides"] == flags  # the key is never stored
    models.clear()

    again = flagged_ctx(ws, test_server, {}, run_id=first.run_id)  # `resume` with no flags
    provider = OpenAIProvider(again.settings)
    with Store.open(ws) as store:
        try:
            resumed = await api.resume(first.run_id, ctx=again, model=provider, store=store)
        finally:
            await provider.aclose()

    assert resumed.status == "succeeded" and brain.calls["t2"] == 4
    assert set(models) == {"scripted-big"}
    assert again.settings.model.name == "scripted-big" and again.settings.max_parallel == 1
    assert again.settings.fail_fast is True and again.usage.limits.max_tokens == 900_000


def test_a_budget_covers_the_whole_run_across_resumes_and_a_new_max_cost_replaces_it(
    workspace, tmp_path, test_server
):
    # What each step costs, from the same run in a workspace of its own.
    (tmp_path / "probe").mkdir()
    probe = priced(files_workspace(tmp_path / "probe"))
    test_server.handler = Brain(READS, READ_TOOLS)
    cost = {
        k: v["cost_usd"]
        for k, v in run_sync(probe, test_server, "read two files").usage_breakdown["by_subtask"].items()
    }
    budget = round(cost["planner"] + cost["t1"] + cost["t2"] / 4, 4)  # t2 cannot start
    ws = priced(files_workspace(workspace))
    brain = Brain(READS, READ_TOOLS)
    test_server.handler = brain
    ctx = flagged_ctx(ws, test_server, {"max_parallel": 1, "limits": {"max_cost_usd": budget}})

    first = asyncio.run(run_with(ctx, "read two files"))
    assert first.status != "succeeded" and first.usage["cost_usd"] <= budget and brain.calls["t2"] == 0

    again = invoke_json(test_server, ws, "resume", first.run_id, "--yes")  # the saved budget still holds
    assert again["status"] != "succeeded" and brain.calls["t2"] == 0
    assert again["usage"]["cost_usd"] <= budget

    raised = invoke_json(test_server, ws, "resume", first.run_id, "--yes", "--max-cost", "100")
    assert raised["status"] == "succeeded" and brain.calls["t2"] == 2
    assert budget < raised["usage"]["cost_usd"] <= 100
    with Store.open(ws) as store:
        assert store.get_run(first.run_id)["overrides"] == {
            "max_parallel": 1,
            "limits": {"max_cost_usd": 100.0},
        }


async def test_resume_counts_the_seconds_spent_before_towards_max_seconds(workspace, test_server):
    ws = files_workspace(workspace)
    brain = Brain(READS, READ_TOOLS)
    test_server.handler = brain
    first = await run_with(flagged_ctx(ws, test_server, {"limits": {"max_seconds": 50}}), "read two files")
    mark_unfinished(ws, first.run_id, "t2", seconds=120.0)  # it had already run for two minutes

    resumed = await aresume(ws, test_server, first.run_id)

    assert resumed.status != "succeeded" and brain.calls["t2"] == 2  # no new call for t2
    assert "max_seconds" in (resumed.subtasks[1].error or "")
    with Store.open(ws) as store:
        assert store.get_run(first.run_id)["seconds"] >= 120.0


async def test_reusing_a_context_for_a_second_run_is_a_clear_error(workspace, test_server):
    from runtime.errors import ShunterError

    ws = files_workspace(workspace)
    test_server.handler = Brain(READS, READ_TOOLS)
    ctx = in_process_ctx(ws, test_server)
    first = await run_with(ctx, "read two files")

    with pytest.raises(ShunterError) as reused:
        await run_with(ctx, "read two files again")

    assert str(reused.value) == (
        f"Run id {first.run_id} was already used; make a new context with prepare() for each run."
    )
    with Store.open(ws) as store:
        assert store.get_run(first.run_id)["request"] == "read two files"
        assert store.get_run(first.run_id)["status"] == "succeeded"


async def test_cancelling_the_run_task_leaves_no_subtask_running_and_show_keeps_plan_order(
    workspace, test_server
):
    ws = files_workspace(workspace)
    brain = Brain(PLAN, TOOLS)
    brain.slow = {"t2"}
    test_server.handler = brain
    ctx = in_process_ctx(ws, test_server)
    t2_started = asyncio.Event()

    def watch(rec) -> None:
        if rec.id == "t2" and rec.status == "running":
            t2_started.set()

    task = asyncio.create_task(run_with(ctx, "read, write and combine", listeners=[watch]))
    await t2_started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    shown = invoke_json(test_server, ws, "show", ctx.run_id)
    assert shown["status"] == "cancelled"
    assert [s["id"] for s in shown["subtasks"]] == ["t1", "t2", "t3", "t4", "t5"]
    statuses = {s["id"]: s["status"] for s in shown["subtasks"]}
    assert statuses["t2"] == "cancelled"  # it was running when the task was cancelled
    assert not {"running", "pending"} & set(statuses.values())


def test_abort_marks_the_subtasks_left_pending_or_running_as_cancelled(workspace):
    from router.recorder import RunRecorder

    ctx = api.prepare(files_workspace(workspace))
    with Store.open(workspace) as store:
        recorder = RunRecorder.start(store, ctx, "a request")
        for sid, status in (("t1", "succeeded"), ("t2", "running"), ("t3", "pending")):
            store.save_subtask(ctx.run_id, {"id": sid, "agent": "file", "status": status})

        recorder.abort(asyncio.CancelledError())

        assert store.get_run(ctx.run_id)["status"] == "cancelled"
        assert [(r["id"], r["status"]) for r in store.subtasks(ctx.run_id)] == [
            ("t1", "succeeded"),
            ("t2", "cancelled"),
            ("t3", "cancelled"),
        ]
    ctx.close()
