"""Compiled plans: subtasks that are one tool call run with no model request, `{{ID}}` references
fill data parameters only, and `answer` names the result that answers the request.

The CLI tests run the real CLI in a process of its own, with the real openai client, against
the local OpenAI-compatible test server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from agents.registry import default_agents, least_privilege, resolve_tools
from planner.calls import BadReference, references, substitute
from planner.models import Plan, plan_response_format
from planner.validate import validate_plan
from runtime.config import AgentOverride, Settings
from runtime.errors import ToolFailed
from runtime.store import Store
from runtime.testing import FunctionModel, text
from runtime.testserver import Reply, Text
from shunter import api
from shunter.render import plan_mermaid, plan_tree
from tests.test_resume import cli, files_workspace, invoke_json, start_run, wait_until
from tools.base import tool
from tools.registry import ToolRegistry, builtin_tools, default_registry


def call(
    sid: str,
    tool_name: str,
    deps: list[str] | None = None,
    read_only: bool = True,
    agent: str = "file",
    **args,
):
    return {
        "id": sid,
        "agent": agent,
        "instruction": f"[{sid}] {tool_name}",
        "depends_on": deps or [],
        "read_only": read_only,
        "call": {"tool": tool_name, "arguments": args},
    }


class Planner:
    """A server handler that answers the planner with `plans` in turn (the last one repeats),
    any specialist with `specialist`, the synthesis with "synthesised"; counts who asked."""

    def __init__(self, *plans: dict, specialist: Reply | None = None):
        self.plans = list(plans)
        self.specialist = specialist or Text("specialist answer")
        self.calls: Counter[str] = Counter()
        self.planner_messages: list[list[dict]] = []

    def __call__(self, body: dict[str, Any]) -> Reply:
        system = body["messages"][0]["content"]
        if system.startswith("You are the planner"):
            self.calls["planner"] += 1
            self.planner_messages.append(body["messages"])
            return Text(json.dumps(self.plans[min(self.calls["planner"], len(self.plans)) - 1]))
        if system.startswith("You write the final answer"):
            self.calls["synthesis"] += 1
            return Text("synthesised")
        self.calls["specialist"] += 1
        return self.specialist


def notes_workspace(ws: Path) -> Path:
    files_workspace(ws)
    (ws / "notes").mkdir()
    (ws / "notes" / "a.txt").write_text("alpha\n")
    (ws / "notes" / "b.txt").write_text("beta\n")
    return ws


def run_json(server, ws: Path, *args: str) -> tuple[subprocess.CompletedProcess, dict]:
    out = cli(server, ws, "run", *args, "--json")
    return out, json.loads(out.stdout or "{}")


COMPILED = {
    "goal": "Copy both notes into both.txt",
    "subtasks": [
        call("t1", "read_file", path="notes/a.txt"),
        call("t2", "read_file", path="notes/b.txt"),
        call("t3", "write_file", ["t1", "t2"], False, path="both.txt", content="A:\n{{t1}}\nB:\n{{t2}}\n"),
    ],
    "answer": "t3",
}


# --- the CLI, end to end ---------------------------------------------------------------------


def test_a_fully_compiled_plan_makes_one_planner_request_and_results_flow_into_the_written_file(
    workspace, test_server
):
    ws = notes_workspace(workspace)
    brain = Planner(COMPILED)
    test_server.handler = brain
    out, data = run_json(test_server, ws, "copy the notes", "--yes")
    assert out.returncode == 0, out.stderr
    assert brain.calls == Counter({"planner": 1})  # no specialist, no synthesis
    assert len(test_server.chat_requests) == 1
    assert data["usage"]["requests"] == 1 and data["usage"]["tool_calls"] == 3
    written = (ws / "both.txt").read_text()
    assert "A:\nnotes/a.txt (lines 1-1 of 1)\nalpha\n" in written and "beta" in written
    assert data["answer"] == data["subtasks"][2]["result"] and "both.txt" in data["answer"]
    assert [s["call"]["tool"] for s in data["subtasks"]] == ["read_file", "read_file", "write_file"]
    assert data["subtasks"][2]["call"]["arguments"]["content"].startswith("A:\n{{t1}}")  # as planned
    assert data["subtasks"][2]["files_changed"] == ["both.txt"]
    log = (ws / ".shunter/logs/events.jsonl").read_text()
    assert log.count('"event": "tool.call"') == 3 or log.count('"tool.call"') == 3


def test_the_planner_request_offers_calls_with_each_tools_schema_and_lists_the_tools(workspace, test_server):
    ws = notes_workspace(workspace)
    test_server.handler = Planner(COMPILED)
    out = cli(test_server, ws, "plan", "copy the notes", "--json")
    assert out.returncode == 0, out.stderr
    body = test_server.chat_requests[0].body
    schema = body["response_format"]["json_schema"]["schema"]
    branches = schema["properties"]["subtasks"]["items"]["properties"]["call"]["anyOf"]
    by_tool = {b["properties"]["tool"]["enum"][0]: b for b in branches if b.get("type") == "object"}
    assert {"read_file", "write_file", "run_command", "fetch_url"} <= set(by_tool)
    assert by_tool["write_file"]["properties"]["arguments"]["required"] == ["path", "content"]
    assert {"type": "null"} in branches and "answer" in schema["required"]
    system = body["messages"][0]["content"]
    assert "write_file(path: string, content: string)" in system
    assert "References allowed in: content" in system and "{{t1}}" in system


def test_plan_json_gives_call_subtasks_no_tokens_and_no_synthesis_when_the_answer_is_named(
    workspace, test_server
):
    ws = notes_workspace(workspace)
    test_server.handler = Planner(COMPILED)
    data = json.loads(cli(test_server, ws, "plan", "copy the notes", "--json").stdout)
    assert data["plan"]["subtasks"][0]["call"] == {"tool": "read_file", "arguments": {"path": "notes/a.txt"}}
    assert data["plan"]["answer"] == "t3"
    rows = data["estimate"]["subtasks"]
    assert [(r["input_tokens"], r["output_tokens"], r["expected_usd"], r["tool_calls"]) for r in rows] == [
        (0, 0, 0.0, 1)
    ] * 3
    synth = data["estimate"]["synthesis"]
    assert synth["input_tokens"] == 0 and synth["high_usd"] == 0.0 and synth["answer"] == "t3"
    # The whole estimate is the planner's spend alone.
    assert data["estimate"]["expected_usd"] == data["estimate"]["planner"]["cost_usd"]
    assert data["estimate"]["tool_calls"] == 3


@pytest.mark.parametrize(
    "bad, needle",
    [
        (call("t3", "run_command", ["t1"], agent="shell", command="cat {{t1}}"), "run_command.command"),
        (call("t3", "write_file", ["t1"], False, path="{{t1}}", content="x"), "write_file.path"),
    ],
)
def test_a_reference_that_would_choose_a_command_or_path_is_refused_and_repaired(
    workspace, test_server, bad, needle
):
    ws = notes_workspace(workspace)
    invalid = {"goal": "g", "subtasks": [call("t1", "read_file", path="notes/a.txt"), bad], "answer": None}
    brain = Planner(invalid, COMPILED)
    test_server.handler = brain
    out, data = run_json(test_server, ws, "copy", "--yes")
    assert out.returncode == 0, out.stderr
    assert brain.calls["planner"] == 2
    repair = brain.planner_messages[1][-1]["content"]
    assert "The plan is invalid" in repair and needle in repair and "data parameter" in repair
    assert data["plan"] == Plan.model_validate(COMPILED).model_dump()
    assert not (ws / "{{t1}}").exists() and (ws / "both.txt").exists()


def test_a_read_only_subtask_calling_write_file_is_refused_at_validation(workspace, test_server):
    ws = notes_workspace(workspace)
    sneaky = {"goal": "g", "subtasks": [call("t1", "write_file", read_only=True, path="x.txt", content="x")]}
    test_server.handler = Planner(sneaky)
    out = cli(test_server, ws, "plan", "write x", "--json")
    assert out.returncode == 1, out.stderr
    assert "is read-only but calls write_file, which changes things" in json.loads(out.stdout)["error"]
    assert len(test_server.chat_requests) == 3  # the first answer and two repair rounds
    assert not (ws / "x.txt").exists()


def test_a_compiled_ask_command_without_approval_is_refused_and_fails_its_subtask(workspace, test_server):
    ws = notes_workspace(workspace)
    plan = {
        "goal": "g",
        "subtasks": [
            call("t1", "run_command", read_only=False, agent="shell", command="touch made-by-command")
        ],
        "answer": "t1",
    }
    test_server.handler = Planner(plan)
    out, data = run_json(test_server, ws, "touch it")  # no terminal, no --yes
    assert out.returncode == 1 and data["status"] == "failed"
    sub = data["subtasks"][0]
    assert sub["status"] == "failed" and sub["error"].startswith("Not approved: run_command")
    assert not (ws / "made-by-command").exists()
    assert len(test_server.chat_requests) == 1  # refused: no model is asked to work around it


def test_a_compiled_read_only_command_runs_only_what_the_policy_allows(workspace, test_server):
    ws = notes_workspace(workspace)
    plan = {
        "goal": "g",
        "subtasks": [
            call("t1", "run_command", agent="shell", command="wc -l notes/a.txt"),
            call("t2", "run_command", agent="shell", command="rm -f notes/b.txt"),
        ],
        "answer": None,
    }
    test_server.handler = Planner(plan)
    out, data = run_json(test_server, ws, "count", "--yes")
    by_id = {s["id"]: s for s in data["subtasks"]}
    assert by_id["t1"]["status"] == "succeeded" and "1 notes/a.txt" in by_id["t1"]["result"]
    assert by_id["t2"]["status"] == "failed" and "read-only" in by_id["t2"]["error"]
    assert (ws / "notes/b.txt").exists()


def test_a_failed_call_skips_its_dependants_and_keeps_the_tool_message(workspace, test_server):
    ws = notes_workspace(workspace)
    plan = {
        "goal": "g",
        "subtasks": [
            call("t1", "read_file", path="notes/missing.txt"),
            call("t2", "write_file", ["t1"], False, path="copy.txt", content="{{t1}}"),
        ],
        "answer": "t2",
    }
    test_server.handler = Planner(plan)
    out, data = run_json(test_server, ws, "copy", "--yes")
    assert out.returncode == 1
    t1, t2 = data["subtasks"]
    assert t1["status"] == "failed" and t1["error"].startswith("File not found: notes/missing.txt")
    assert t2["status"] == "skipped" and not (ws / "copy.txt").exists()
    assert len(test_server.chat_requests) == 1  # the named answer: no synthesis even on failure
    assert "File not found" in data["answer"]


def test_sigkill_during_a_compiled_plan_then_resume_reruns_nothing_that_finished(
    workspace, test_server, tmp_path
):
    ws = notes_workspace(workspace)
    plan = {
        "goal": "g",
        "subtasks": [
            call("t1", "read_file", path="notes/a.txt"),
            call("t2", "write_file", ["t1"], False, path="copy.txt", content="{{t1}}"),
            # Still running when the process is killed: a sleep, then a record that it ran.
            call("t3", "run_command", ["t2"], False, agent="shell", command="sleep 4 && echo ran >> ran.txt"),
        ],
        "answer": "t3",
    }
    test_server.handler = Planner(plan)
    errors = tmp_path / "stderr.txt"
    proc = start_run(test_server, ws, errors, "copy and wait")

    def mid_run(states: dict[str, str]) -> bool:
        return states.get("t2") == "succeeded" and states.get("t3") == "running"

    run_id, _ = wait_until(proc, ws / ".shunter" / "state.db", mid_run, errors)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=10) == -signal.SIGKILL
    assert not (ws / "ran.txt").exists()

    resumed = cli(test_server, ws, "resume", run_id, "--yes", "--json")
    data = json.loads(resumed.stdout or "{}")
    assert data.get("status") == "succeeded", resumed.stderr
    assert (ws / "ran.txt").read_text() == "ran\n"  # t3, cut off, ran again from its start, once
    assert [s["call"]["tool"] for s in data["subtasks"]] == ["read_file", "write_file", "run_command"]
    assert len(test_server.chat_requests) == 1  # the planner, once: nothing asked a model
    log = [json.loads(line) for line in (ws / ".shunter/logs/events.jsonl").read_text().splitlines()]
    calls = Counter(e.get("subtask_id") for e in log if e.get("event") == "tool.call")
    assert calls == Counter({"t1": 1, "t2": 1, "t3": 2})
    with Store.open(ws) as store:
        writes = [c for c in store.file_changes(run_id) if c["path"] == "copy.txt"]
        assert len(writes) == 1 and writes[0]["subtask_id"] == "t2"
    shown = invoke_json(test_server, ws, "show", run_id)
    assert [s["call"]["tool"] for s in shown["subtasks"]] == ["read_file", "write_file", "run_command"]


def test_undo_restores_a_file_a_compiled_call_wrote(workspace, test_server):
    ws = notes_workspace(workspace)
    (ws / "both.txt").write_text("before\n")
    test_server.handler = Planner(COMPILED)
    out, data = run_json(test_server, ws, "copy", "--yes")
    assert out.returncode == 0 and "alpha" in (ws / "both.txt").read_text()
    undone = cli(test_server, ws, "undo", data["run_id"])
    assert undone.returncode == 0, undone.stderr
    assert (ws / "both.txt").read_text() == "before\n"


def test_compiled_subtasks_teach_the_estimate_history_nothing(workspace, test_server):
    from router.calibration import history_stats

    ws = notes_workspace(workspace)
    test_server.handler = Planner(COMPILED)
    for _ in range(3):
        (ws / "both.txt").unlink(missing_ok=True)
        assert run_json(test_server, ws, "copy", "--yes")[0].returncode == 0
    with Store.open(ws) as store:
        # No model call was made for them: an agent's iterations are learned from agent subtasks only.
        assert not [k for k in history_stats(store, min_observations=1) if k.startswith("file")]


# --- the parts, in process --------------------------------------------------------------------


def _validate(plan: dict, settings: Settings | None = None, tools: ToolRegistry | None = None) -> list[str]:
    return validate_plan(Plan.model_validate(plan), default_agents(), settings or Settings(), tools)


def test_validation_names_each_problem_of_a_call():
    plan = {
        "goal": "g",
        "subtasks": [
            call("t1", "read_file", path="a.txt"),
            call("t2", "write_file", [], False, path="x.txt", content="{{t1}}"),  # t1 not a dependency
            call("t3", "fetch_url", url="http://x"),  # the file agent has no fetch_url
            call("t4", "read_file", start_line=2),  # no path
        ],
        "answer": "t9",
    }
    errors = " | ".join(_validate(plan))
    assert "refers to {{t1}}, which is not in its depends_on" in errors
    assert "calls 'fetch_url', which agent 'file' does not have" in errors
    assert "Invalid arguments for read_file: path: Field required" in errors
    assert "answer names 't9', which is not a subtask" in errors


def test_a_writer_subtask_cannot_be_planned_as_changing_things():
    plan = {
        "goal": "g",
        "subtasks": [{"id": "t1", "agent": "writer", "instruction": "x", "read_only": False}],
    }
    assert any("cannot change anything" in e for e in _validate(plan))


def test_references_exact_spaced_and_literal():
    ids = {"t1", "t2"}
    assert references("a {{t1}} b {{ t2 }} {{ name }} {{x}}", ids) == ["t1", "t2", "x"]
    assert references({"k": ["{{t2}}"]}, ids) == ["t2"]


def test_substitution_is_one_pass_and_refuses_references_outside_data_parameters():
    write = default_registry().get("write_file")
    out = substitute(
        write, {"path": "o.txt", "content": "[{{t1}}] {{ name }}"}, {"t1": "has {{t2}}"}, {"t1", "t2"}
    )
    assert out == {"path": "o.txt", "content": "[has {{t2}}] {{ name }}"}
    with pytest.raises(BadReference, match="only data parameters"):
        substitute(write, {"path": "{{t1}}", "content": ""}, {"t1": "/etc/passwd"}, {"t1"})
    with pytest.raises(BadReference, match="not a finished dependency"):
        substitute(write, {"path": "o.txt", "content": "{{t2}}"}, {"t1": "x"}, {"t1", "t2"})


def test_builtin_tools_declare_only_content_parameters_as_data():
    data = {t.name: set(t.data_params) for t in builtin_tools() if t.data_params}
    assert data == {"write_file": {"content"}, "edit_file": {"new"}}


def test_a_data_parameter_must_be_a_string_parameter_of_the_tool():
    with pytest.raises(TypeError, match="not one of its parameters"):

        @tool(data_params=("body",))
        def post(text: str) -> str:
            """Post."""
            return text

    with pytest.raises(TypeError, match="must be a str"):

        @tool(data_params=("count",))
        def repeat(count: int) -> str:
            """Repeat."""
            return "x" * count


def test_a_plugin_tool_declares_its_own_data_parameters_and_plans_may_fill_them(ctx):
    @tool(effect="write", data_params=("body",))
    def post_note(title: str, body: str) -> str:
        """Post a note.

        Args:
            title: Its title.
            body: Its text.
        """
        return f"posted {title}: {body}"

    registry = ToolRegistry([*builtin_tools(), post_note])
    settings = Settings(agents={"file": AgentOverride(extra_tools=["post_note"])})
    ok = {
        "goal": "g",
        "subtasks": [
            call("t1", "read_file", path="a"),
            call("t2", "post_note", ["t1"], False, title="n", body="{{t1}}"),
        ],
    }
    assert _validate(ok, settings, registry) == []
    bad = {
        "goal": "g",
        "subtasks": [
            call("t1", "read_file", path="a"),
            call("t2", "post_note", ["t1"], False, title="{{t1}}", body=""),
        ],
    }
    assert any("post_note.title" in e for e in _validate(bad, settings, registry))


def test_least_privilege_keeps_config_extra_write_tools_away_from_read_only_subtasks():
    settings = Settings(agents={"shell": AgentOverride(extra_tools=["write_file"])})
    shell = default_agents().get("shell")
    assert "write_file" in {t.name for t in resolve_tools(shell, settings)}
    reduced = least_privilege(shell, True, settings)
    assert "write_file" not in {t.name for t in resolve_tools(reduced, settings)}


def test_a_tool_raising_tool_failed_fails_the_compiled_subtask_with_its_message(ctx):
    @tool
    def flaky(x: str) -> str:
        """Fail on purpose.

        Args:
            x: Anything.
        """
        raise ToolFailed(f"no {x} today")

    registry = ToolRegistry([*builtin_tools(), flaky])
    ctx.tools = registry
    ctx.settings.agents["file"] = AgentOverride(extra_tools=["flaky"])
    plan = {"goal": "g", "subtasks": [call("t1", "flaky", x="luck")], "answer": "t1"}
    result = api.run_sync("x", ctx=ctx, model=FunctionModel(lambda r: text(json.dumps(plan))))
    assert result.status == "failed"
    assert result.subtasks[0].error == "no luck today" and result.usage["requests"] == 1


def test_a_call_of_a_read_only_tool_marked_as_changing_things_is_made_read_only(ctx):
    plan = {"goal": "g", "subtasks": [call("t1", "list_files", read_only=False, path=".")], "answer": "t1"}
    planned = api.run_sync("x", ctx=ctx, model=FunctionModel(lambda r: text(json.dumps(plan))))
    assert planned.plan["subtasks"][0]["read_only"] is True and planned.status == "succeeded"


def test_an_agent_subtask_reads_a_compiled_result_quoted_as_data_and_writer_answers_in_one_request(ctx):
    (ctx.workspace / "a.txt").write_text("alpha\n")
    plan = {
        "goal": "g",
        "subtasks": [
            call("t1", "read_file", path="a.txt"),
            {
                "id": "t2",
                "agent": "writer",
                "instruction": "Summarise t1.",
                "depends_on": ["t1"],
                "read_only": True,
            },
            call("t3", "write_file", ["t2"], False, path="summary.md", content="# Summary\n\n{{t2}}\n"),
        ],
        "answer": "t2",
    }
    seen: list[Any] = []

    def brain(request):
        seen.append(request)
        if request.messages[0]["content"].startswith("You are the planner"):
            return text(json.dumps(plan))
        return text("It says alpha.")

    result = api.run_sync("summarise a", ctx=ctx, model=FunctionModel(brain))
    assert result.status == "succeeded" and result.answer == "It says alpha."
    assert (ctx.workspace / "summary.md").read_text() == "# Summary\n\nIt says alpha.\n"
    writer = seen[1]
    assert not writer.tools and 'trust="untrusted-data"' in writer.messages[1]["content"]
    assert "alpha" in writer.messages[1]["content"]
    assert result.usage["requests"] == 2  # planner + writer; no synthesis


def test_plan_renderings_show_calls():
    plan = Plan.model_validate(COMPILED)
    tree = plan_tree(plan)
    assert "[read-only call, no model]" in tree and '→ read_file(path="notes/a.txt")' in tree
    assert "  | A:" in tree and "Answer: the result of t3 (no synthesis call)" in tree
    mermaid = plan_mermaid(plan)
    assert 't1(["t1 · file<br/>read_file(path=' in mermaid and "t3{{" in mermaid


def test_the_response_format_without_tools_still_allows_a_null_call():
    schema = plan_response_format([])["json_schema"]["schema"]
    assert schema["properties"]["subtasks"]["items"]["properties"]["call"] == {"anyOf": [{"type": "null"}]}
