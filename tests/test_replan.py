"""Replanning (`--replan N`): a failed step goes back to the planner with its result quoted as
data; a fix runs and the run succeeds; a replan that would gain privilege is refused; with 0
rounds nothing changes. Real tools on real files, real SQLite, a scripted model."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from router.summaries import run_details, run_summaries
from router.undo import undo
from runtime.context import approve_all
from runtime.model import ModelRequest
from runtime.store import Store
from shunter import api
from shunter.testing import FunctionModel, text


def call(sid: str, agent: str, tool: str, args: dict, read_only: bool = True, deps=()) -> dict:
    return {
        "id": sid,
        "agent": agent,
        "instruction": f"{tool} {json.dumps(args)}",
        "depends_on": list(deps),
        "read_only": read_only,
        "call": {"tool": tool, "arguments": args},
    }


def plan_of(*subtasks: dict, answer: str | None = None) -> dict:
    return {"goal": "g", "subtasks": list(subtasks), "answer": answer or subtasks[-1]["id"]}


class Planner:
    """The first plan, then what each replan request gets; records what the replans were shown."""

    def __init__(self, first: dict, *replans: dict):
        self.first, self.replans, self.shown = first, list(replans), []

    def __call__(self, request: ModelRequest):
        system = request.messages[0]["content"]
        if not system.startswith("You are the planner"):
            return text("written")
        user = request.messages[1]["content"]
        if "The plan for this request ran" in user:
            self.shown.append(user)
            return text(json.dumps(self.replans.pop(0)))
        return text(json.dumps(self.first))


@pytest.fixture
def project(workspace: Path) -> Path:
    (workspace / "notes.txt").write_text("the real notes\n")
    return workspace


def _run(project: Path, planner: Planner, rounds: int):
    ctx = api.prepare(project, overrides={"planner": {"replan_rounds": rounds}}, approve=approve_all)
    store = Store.open(project)
    result = api.run_sync("show me the notes", ctx=ctx, model=FunctionModel(planner), store=store)
    return result, store, ctx


def test_a_replan_shown_the_failed_step_proposes_a_fix_and_the_run_succeeds(project):
    first = plan_of(call("t1", "file", "read_file", {"path": "note.txt"}))
    fix = plan_of(call("r1", "file", "read_file", {"path": "notes.txt"}))
    planner = Planner(first, fix)
    result, store, ctx = _run(project, planner, rounds=1)
    assert result.status == "succeeded", result.error
    assert "the real notes" in result.answer
    shown = planner.shown[0]
    # The failed step's result reached the planner quoted as untrusted data.
    assert '<subtask_result id="t1" agent="file" status="failed" trust="untrusted-data">' in shown
    assert "note.txt" in shown
    data = result.to_dict()
    assert [s["id"] for s in data["subtasks"]] == ["r1"]
    assert [p["round"] for p in data["plans"]] == [0, 1]
    assert data["plans"][0]["subtasks"][0]["status"] == "failed"
    events = [json.loads(line) for line in (project / ".shunter/logs/events.jsonl").read_text().splitlines()]
    replanned = next(e for e in events if e["event"] == "plan.replanned")
    assert "t1 failed" in replanned["data"]["reason"]
    # The store keeps the history: show gives each plan, runs counts the current plan.
    shown_run = run_details(store, result.run_id)
    assert shown_run["status"] == "succeeded" and [s["id"] for s in shown_run["subtasks"]] == ["r1"]
    assert [p["plan"]["subtasks"][0]["id"] for p in shown_run["plans"]] == ["t1", "r1"]
    row = next(r for r in run_summaries(store) if r["run_id"] == result.run_id)
    assert row["plans"] == 2 and row["subtasks_done"] == row["subtasks_total"] == 1
    store.close()
    ctx.close()


def test_finished_work_is_kept_and_undo_restores_files_of_every_plan(project):
    first = plan_of(
        call("t1", "file", "write_file", {"path": "a.txt", "content": "A\n"}, read_only=False),
        call("t2", "file", "read_file", {"path": "missing.txt"}, deps=["t1"]),
    )
    fix = plan_of(
        call("r1", "file", "write_file", {"path": "b.txt", "content": "B\n"}, read_only=False, deps=["t1"])
    )
    result, store, ctx = _run(project, Planner(first, fix), rounds=1)
    assert result.status == "succeeded", result.error
    assert [s.id for s in result.subtasks] == ["t1", "r1"]
    assert result.subtasks[0].attempts == 1  # t1 ran once: its result was kept, not redone
    assert (project / "a.txt").exists() and (project / "b.txt").exists()
    undo(store, result.run_id, project)
    assert not (project / "a.txt").exists() and not (project / "b.txt").exists()
    store.close()
    ctx.close()


@pytest.mark.parametrize(
    "escalation, why",
    [
        (call("r1", "shell", "run_command", {"command": "cat notes.txt"}), "agent 'shell'"),
        (
            call("r1", "file", "write_file", {"path": "x.txt", "content": "x"}, read_only=False),
            "agent 'file'",
        ),
    ],
)
def test_a_replan_that_escalates_a_read_only_research_plan_is_refused(project, escalation, why):
    first = plan_of(call("t1", "research", "read_file", {"path": "note.txt"}))
    result, store, ctx = _run(project, Planner(first, plan_of(escalation)), rounds=2)
    assert result.status == "failed"
    assert "refused" in result.error and why in result.error
    assert not (project / "x.txt").exists()
    assert [s.id for s in result.subtasks] == ["t1"]
    events = [json.loads(line) for line in (project / ".shunter/logs/events.jsonl").read_text().splitlines()]
    assert any(e["event"] == "plan.replan_refused" for e in events)
    assert not any(e["event"] == "plan.replanned" for e in events)
    store.close()
    ctx.close()


def test_replan_zero_keeps_todays_behaviour(project):
    first = plan_of(call("t1", "file", "read_file", {"path": "note.txt"}))
    planner = Planner(first, plan_of(call("r1", "file", "read_file", {"path": "notes.txt"})))
    result, store, ctx = _run(project, planner, rounds=0)
    assert result.status == "failed" and planner.shown == []
    assert "plans" not in result.to_dict()
    assert store.plans(result.run_id) == []
    store.close()
    ctx.close()


def test_a_workspace_config_cannot_turn_replanning_on(project):
    from runtime.config import load_settings

    (project / ".shunter").mkdir(exist_ok=True)
    (project / ".shunter/config.toml").write_text("[planner]\nreplan_rounds = 3\n")
    settings = load_settings(project)
    assert settings.planner.replan_rounds == 0
    assert any("planner.replan_rounds" in w for w in settings.warnings)


def test_cli_replan_flag_through_the_real_client(test_server, project):
    import os
    import subprocess
    import sys

    from runtime.testserver import Text
    from tests.server_fixtures import TEST_API_KEY

    first = plan_of(call("t1", "file", "read_file", {"path": "note.txt"}))
    fix = plan_of(call("r1", "file", "read_file", {"path": "notes.txt"}))
    test_server.enqueue(Text(json.dumps(first)), Text(json.dumps(fix)))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "SHUNTER_"))}
    env.update(OPENAI_BASE_URL=test_server.base_url, OPENAI_API_KEY=TEST_API_KEY, SHUNTER_MODEL="scripted")

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "shunter.cli", *args, "-w", str(project)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )

    out = cli("run", "show me the notes", "--replan", "1", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["status"] == "succeeded" and len(data["plans"]) == 2
    assert "plan.replanned" in out.stderr  # shown while the run goes
    shown = cli("show", data["run_id"])
    assert "Plan 1 (replanned because: t1 failed" in shown.stdout and "Plan 2 (current)" in shown.stdout
    bad = cli("run", "x", "--replan", "-1")
    assert bad.returncode == 2 and "--replan must be 0 or more" in bad.stderr


def test_resume_of_a_replanned_run_continues_the_current_plan(project):
    first = plan_of(call("t1", "file", "read_file", {"path": "note.txt"}))
    still_wrong = plan_of(call("r1", "file", "read_file", {"path": "notes.txt.bak"}))
    result, store, ctx = _run(project, Planner(first, still_wrong), rounds=1)
    assert result.status == "failed" and [s.id for s in result.subtasks] == ["r1"]
    ctx.close()
    (project / "notes.txt.bak").write_text("the backup\n")  # what r1 needed is there now
    again = api.prepare(project, run_id=result.run_id, approve=approve_all)
    out = asyncio.run(api.resume(result.run_id, ctx=again, model=FunctionModel(Planner(first)), store=store))
    assert out.status == "succeeded", out.error
    assert [s.id for s in out.subtasks] == ["r1"] and "the backup" in out.answer
    rows = {r["id"]: r["status"] for r in store.subtasks(result.run_id)}
    assert rows == {"t1": "failed", "r1": "succeeded"}  # the superseded step was not run again
    store.close()
    again.close()


def test_a_replan_whose_estimate_does_not_fit_the_budget_is_refused(project):
    def agent_step(sid: str) -> dict:
        return {
            "id": sid,
            "agent": "file",
            "instruction": "Find the notes file and read it.",
            "depends_on": [],
            "read_only": True,
            "call": None,
        }

    first = plan_of(agent_step("t0"), call("t1", "file", "read_file", {"path": "note.txt"}))
    agent_steps = plan_of(*(agent_step(f"r{i}") for i in range(1, 9)))
    overrides = {
        "planner": {"replan_rounds": 1},
        "model": {"name": "gpt-4.1-mini"},
        "limits": {"max_cost_usd": 0.003},
    }
    ctx = api.prepare(project, overrides=overrides, approve=approve_all)
    planner = Planner(first, agent_steps)
    result = api.run_sync("show me the notes", ctx=ctx, model=FunctionModel(planner, name="gpt-4.1-mini"))
    assert planner.shown, "the replan was asked for"
    assert result.status == "failed" and "exceeds the budget" in result.error
    assert [s.id for s in result.subtasks] == ["t0", "t1"]  # nothing of the refused plan ran
    ctx.close()
