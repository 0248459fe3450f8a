"""Streamed planning: subtasks start while the plan is still arriving, a later invalid subtask
stops what has not started and goes to repair, and the CLI falls back where the whole plan is
needed first. Real openai client against the local test server, real files, real SQLite."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from planner.stream import PlanStream
from runtime.store import Store
from runtime.testserver import Paced, Text, ToolCalls
from shunter import api
from tests.server_fixtures import TEST_API_KEY


def sub(sid: str, path: str, deps: list[str] | None = None, **kw) -> dict:
    return {
        "id": sid,
        "agent": "file",
        "instruction": f"Read {path}",
        "depends_on": deps or [],
        "read_only": True,
        "call": None,
        **kw,
    }


PLAN = {"goal": "read a and b", "subtasks": [sub("t1", "a.txt"), sub("t2", "b.txt")], "answer": None}


def planner_text(plan: dict) -> str:
    return json.dumps(plan)


class Brain:
    """Plays planner (paced, so the plan takes a while to arrive), specialists and synthesis."""

    def __init__(self, *plans: dict, pace_s: float = 0.6):
        self.plans, self.pace_s, self.planner_calls = list(plans), pace_s, 0

    def __call__(self, body: dict):
        messages = body["messages"]
        system, last = messages[0]["content"], messages[-1]
        if system.startswith("You are the planner"):
            plan = self.plans[min(self.planner_calls, len(self.plans) - 1)]
            self.planner_calls += 1
            reply = Text(planner_text(plan))
            return Paced(self.pace_s, reply) if body.get("stream") else reply
        if system.startswith("You write the final answer"):
            return Text("a and b were read.")
        instruction = messages[1]["content"]
        if last["role"] == "user":
            for name in ("a.txt", "b.txt", "c.txt"):
                if f"Read {name}" in instruction:
                    return ToolCalls([("read_file", {"path": name})])
        return Text("done: " + str(last["content"])[-30:])


@pytest.fixture
def project(workspace: Path) -> Path:
    for name in ("a.txt", "b.txt", "c.txt"):
        (workspace / name).write_text(name[0] * 3 + "\n")
    (workspace / ".shunter").mkdir(exist_ok=True)
    return workspace


def _ctx(server, workspace: Path, **planner):
    overrides = {"model": {"name": "scripted", "base_url": server.base_url, "api_key": TEST_API_KEY}}
    if planner:
        overrides["planner"] = planner
    return api.prepare(workspace, overrides=overrides)


def _events(workspace: Path) -> list[dict]:
    lines = (workspace / ".shunter/logs/events.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_the_first_subtask_starts_before_the_plan_has_finished_streaming(test_server, project):
    test_server.stream_piece_chars = 8
    test_server.handler = Brain(PLAN, pace_s=1.0)
    ctx = _ctx(test_server, project)
    result = api.run_sync("read a and b", ctx=ctx, stream_plan=True)
    assert result.status == "succeeded", result.error
    assert [s.id for s in result.subtasks] == ["t1", "t2"]
    requests = test_server.chat_requests
    planner = next(i for i, r in enumerate(requests) if r.body and r.body.get("response_format"))
    assert requests[planner].body["stream"] is True
    stream_end = test_server.finished_at[test_server.requests.index(requests[planner])]
    # Seen by the server: t1's specialist asked the model while the planner's stream was still going.
    t1 = next(r for r in requests if "Read a.txt" in json.dumps(r.body["messages"][1:2]))
    assert t1.received_at < stream_end
    names = [e["event"] for e in _events(project)]
    added = [e["subtask_id"] for e in _events(project) if e["event"] == "plan.subtask_added"]
    assert added == ["t1", "t2"]
    assert names.index("subtask.started") < names.index("plan.ready")
    ctx.close()


def test_a_later_invalid_subtask_stops_unstarted_work_and_is_repaired(test_server, project):
    bad = {
        "goal": "g",
        "subtasks": [sub("t1", "a.txt"), sub("t2", "b.txt", ["t9"]), sub("t3", "c.txt")],
        "answer": None,
    }
    fixed = {"goal": "g", "subtasks": [sub("t1", "a.txt"), sub("t2", "b.txt", ["t1"])], "answer": None}
    brain = Brain(bad, fixed, pace_s=0.3)
    test_server.handler = brain
    ctx = _ctx(test_server, project)
    result = api.run_sync("read", ctx=ctx, store=Store.open(project), stream_plan=True)
    assert result.status == "succeeded", result.error
    assert brain.planner_calls == 2
    events = _events(project)
    stopped = next(e for e in events if e["event"] == "plan.stream_stopped")
    assert "t9" in " ".join(stopped["data"]["errors"])
    # t3 came after the error: it was never taken, never run.
    assert [e["subtask_id"] for e in events if e["event"] == "plan.subtask_added"] == ["t1"]
    reads = [
        r
        for r in test_server.chat_requests
        if "Read a.txt" in json.dumps(r.body["messages"][1:2])
        and "b.txt" not in json.dumps(r.body["messages"][1:2])
    ]
    # t1 ran once, while streaming; the repaired plan kept its result.
    assert len([r for r in reads if r.body["messages"][-1]["role"] == "user"]) == 1
    repair = next(r for r in test_server.chat_requests if "The plan is invalid" in json.dumps(r.body))
    assert "t9" in json.dumps(repair.body["messages"][-1])
    assert not any("Read c.txt" in json.dumps(r.body["messages"][1:2]) for r in test_server.chat_requests)
    ctx.close()


def test_plan_stream_parser_completes_a_subtask_only_when_the_next_begins():
    stream = PlanStream()
    text = planner_text(PLAN)
    cut = text.index('{"id": "t2"')
    got = [s.id for s in stream.feed(text[: cut - 2])]
    assert got == []  # t1 is written but the array may still grow it... it is complete only now:
    assert [s.id for s in stream.feed(text[cut - 2 : cut + 1])] == ["t1"]
    assert [s.id for s in stream.feed(text[cut + 1 :])] == ["t2"]  # "answer" follows: the array closed
    assert stream.finish() == []


def test_a_retried_stream_does_not_emit_twice_and_a_changed_subtask_is_an_error():
    text = planner_text(PLAN)
    stream = PlanStream()
    assert [s.id for s in stream.feed(text[: text.index('{"id": "t2"') + 1])] == ["t1"]
    stream.restart()
    assert [s.id for s in stream.feed(text)] == ["t2"]
    changed = PlanStream()
    changed.feed(text[: text.index('{"id": "t2"') + 1])
    changed.restart()
    changed.feed(text.replace("Read a.txt", "Read c.txt"))
    assert changed.errors and "t1" in changed.errors[0]


def shunter_cli(args: list[str], server) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "SHUNTER_"))}
    env.update(OPENAI_BASE_URL=server.base_url, OPENAI_API_KEY=TEST_API_KEY, SHUNTER_MODEL="scripted")
    return subprocess.run(
        [sys.executable, "-m", "shunter.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def _planner_streamed(server) -> bool:
    return next(r for r in server.chat_requests if r.body.get("response_format")).body.get("stream") is True


def test_cli_streams_by_default_and_not_with_no_stream_plan(test_server, project):
    test_server.handler = Brain(PLAN, pace_s=0.2)
    out = shunter_cli(["run", "read a and b", "--json", "-w", str(project)], test_server)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["status"] == "succeeded"
    assert _planner_streamed(test_server)
    assert any(e["event"] == "plan.subtask_added" for e in _events(project))
    with test_server.__class__() as other:
        other.handler = Brain(PLAN)
        out = shunter_cli(["run", "read", "--json", "--no-stream-plan", "-w", str(project)], other)
        assert out.returncode == 0, out.stderr
        assert not _planner_streamed(other)


def test_cli_does_not_stream_with_max_cost(test_server, project):
    test_server.handler = Brain(PLAN)
    out = shunter_cli(
        ["run", "read", "--json", "--yes", "--model", "gpt-4.1-mini", "--max-cost", "5", "-w", str(project)],
        test_server,
    )
    assert out.returncode == 0, out.stderr
    assert not _planner_streamed(test_server)


def test_help_says_when_planning_is_not_streamed():
    from typer.testing import CliRunner

    from shunter.cli import app

    out = CliRunner().invoke(app, ["run", "--help"], env={"COLUMNS": "200"})
    assert "--no-stream-plan" in out.output and "not streamed" in out.output
