"""The CLI through real subprocesses and the real openai client against the local test server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from runtime.testserver import Fault, Text, ToolCalls
from tests.server_fixtures import TEST_API_KEY

PLAN = {
    "goal": "Read a.txt and b.txt, then write summary.txt",
    "subtasks": [
        {"id": "t1", "agent": "file", "instruction": "Read a.txt", "depends_on": [], "read_only": True},
        {"id": "t2", "agent": "file", "instruction": "Read b.txt", "depends_on": [], "read_only": True},
        {
            "id": "t3",
            "agent": "file",
            "instruction": "Write summary.txt",
            "depends_on": ["t1", "t2"],
            "read_only": False,
        },
    ],
}


def brain(body: dict):
    """Plays planner, specialists and synthesis from what each request contains."""
    messages = body["messages"]
    system, last = messages[0]["content"], messages[-1]
    if system.startswith("You are the planner"):
        return Text(json.dumps(PLAN))
    if system.startswith("You write the final answer"):
        return Text("Summary written from a and b.")
    instruction = messages[1]["content"]
    if last["role"] == "user":
        for name in ("a.txt", "b.txt"):
            if f"Read {name}" in instruction:
                return ToolCalls([("read_file", {"path": name})])
        return ToolCalls([("write_file", {"path": "summary.txt", "content": "a and b\n"})])
    return Text("done: " + last["content"][-40:])


def shunter(
    args: list[str], server=None, env_extra: dict | None = None, timeout: float = 60
) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "SHUNTER_"))}
    if server is not None:
        env.update(OPENAI_BASE_URL=server.base_url, OPENAI_API_KEY=TEST_API_KEY, SHUNTER_MODEL="scripted")
    env.update(env_extra or {})
    return subprocess.run(
        [sys.executable, "-m", "shunter.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture
def project(workspace: Path) -> Path:
    (workspace / "a.txt").write_text("alpha\n")
    (workspace / "b.txt").write_text("beta\n")
    (workspace / ".shunter").mkdir()
    # Fast retries so fault tests stay quick.
    (workspace / ".shunter/config.toml").write_text(
        "[retry]\nattempts = 3\ninitial_delay_s = 0.01\nmax_delay_s = 0.05\n"
    )
    return workspace


def test_help_lists_the_commands():
    out = shunter(["--help"])
    for command in (
        "plan",
        "run",
        "resume",
        "runs",
        "show",
        "undo",
        "agents",
        "check-command",
        "check-path",
        "demo",
    ):
        assert command in out.stdout


def test_plan_json_follows_the_contract_and_calls_only_the_planner(test_server, project):
    test_server.handler = brain
    out = shunter(["plan", "summarise a and b", "--json", "-w", str(project)], test_server)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["plan"]["goal"] == PLAN["goal"]
    assert [
        set(s) >= {"id", "agent", "instruction", "depends_on", "read_only"} for s in data["plan"]["subtasks"]
    ] == [True] * 3
    est = data["estimate"]
    assert {"input_tokens", "output_tokens", "low_usd", "expected_usd", "high_usd", "subtasks"} <= set(est)
    assert [r["id"] for r in est["subtasks"]] == ["t1", "t2", "t3"]
    assert data["waves"] == [["t1", "t2"], ["t3"]]
    assert len(test_server.chat_requests) == 1  # the planner alone
    assert not (project / "summary.txt").exists()


def test_plan_mermaid_and_tree(test_server, project):
    test_server.handler = brain
    out = shunter(["plan", "summarise", "--format", "mermaid", "-w", str(project)], test_server)
    assert out.stdout.startswith("graph TD") and "t1 --> t3" in out.stdout
    out = shunter(["plan", "summarise", "-w", str(project)], test_server)
    assert "Wave 1 (run together):" in out.stdout and "Total:" in out.stdout


def test_run_json_under_injected_429s(test_server, project):
    test_server.enqueue(Fault(429, retry_after=0.05), Fault(500))
    test_server.handler = brain
    out = shunter(
        ["run", "summarise a and b into summary.txt", "--yes", "--json", "-w", str(project)], test_server
    )
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert (
        data["status"] == "succeeded" and data["run_id"] and data["answer"] == "Summary written from a and b."
    )
    assert {"input_tokens", "output_tokens", "requests", "tool_calls", "cost_usd"} <= set(data["usage"])
    assert data["usage"]["tool_calls"] == 3 and data["usage"]["cost_usd"] > 0
    assert [(s["id"], s["agent"], s["status"]) for s in data["subtasks"]] == [
        ("t1", "file", "succeeded"),
        ("t2", "file", "succeeded"),
        ("t3", "file", "succeeded"),
    ]
    assert "alpha" in data["subtasks"][0]["result"]
    assert (project / "summary.txt").read_text() == "a and b\n"
    log = (project / ".shunter/logs/events.jsonl").read_text()
    assert log.count('"model.retry"') == 2 and TEST_API_KEY not in log


def test_run_without_a_terminal_or_yes_refuses_side_effects(test_server, project):
    test_server.handler = brain
    out = shunter(["run", "summarise", "--json", "-w", str(project)], test_server)
    assert "re-run with --yes" in out.stderr
    assert not (project / "summary.txt").exists()
    data = json.loads(out.stdout)
    assert out.returncode == 1 and data["status"] == "failed"
    assert (
        data["subtasks"][2]["status"] == "failed"
        and "Not approved: write_file" in data["subtasks"][2]["error"]
    )


@pytest.mark.parametrize(
    "args, env, needle",
    [
        (["run", ""], {}, "No request given"),
        (["plan", "   "], {}, "No request given"),
        (["run", "x", "-w", "/no/such/dir"], {}, "does not exist"),
        (["run", "x", "--max-cost", "0"], {}, "budget of zero"),
        (["run", "x"], {}, "OPENAI_BASE_URL"),  # no key, default endpoint
        (["run", "x", "--max-parallel", "0"], {}, "--max-parallel"),
    ],
)
def test_bad_input_is_one_sentence_and_exit_2(args, env, needle, workspace):
    if "-w" not in args:
        args = [*args, "-w", str(workspace)]
    out = shunter(args, env_extra=env)
    assert out.returncode == 2, out.stderr
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in out.stderr
    assert not (workspace / ".shunter" / "state.db").exists()


def test_unreachable_server_is_exit_2(project):
    out = shunter(
        ["run", "x", "-w", str(project)],
        env_extra={"OPENAI_BASE_URL": "http://127.0.0.1:9/v1", "OPENAI_API_KEY": "k"},
    )
    assert (
        out.returncode == 2
        and "connection to the model server" in out.stderr
        and "Traceback" not in out.stderr
    )


def test_wrong_model_name_is_exit_2(test_server, project):
    test_server.enqueue(Fault(404))
    out = shunter(["plan", "x", "-w", str(project)], test_server)
    assert out.returncode == 2 and "was not found" in out.stderr and "SHUNTER_MODEL" in out.stderr


def test_bad_input_with_json_still_prints_one_json_object(workspace):
    out = shunter(["run", "", "--json", "-w", str(workspace)])
    assert out.returncode == 2 and json.loads(out.stdout)["status"] == "error"


def test_check_command_and_check_path_json(workspace):
    deny = json.loads(shunter(["check-command", "--json", "rm -r -f /"]).stdout)
    allow = json.loads(shunter(["check-command", "--json", "ls -la"]).stdout)
    assert deny["decision"] == "deny" and allow["decision"] == "allow" and deny["reason"]
    out = json.loads(shunter(["check-path", "--json", "--workspace", str(workspace), "../etc/passwd"]).stdout)
    assert out["allowed"] is False and out["reason"]
    inside = json.loads(shunter(["check-path", "--json", "--workspace", str(workspace), "src/x.py"]).stdout)
    assert inside["allowed"] is True and inside["resolved"] == str(workspace / "src" / "x.py")


def test_agents_lists_the_built_ins(workspace):
    data = json.loads(shunter(["agents", "--json", "-w", str(workspace)]).stdout)
    names = {a["name"]: a for a in data["agents"]}
    assert {"file", "shell", "research"} <= set(names)
    assert names["research"]["may_write"] is False and "run_command" in names["shell"]["tools"]


def test_demo_runs_offline_end_to_end():
    out = shunter(
        ["demo", "--json", "--latency", "0.02"], env_extra={"OPENAI_BASE_URL": "http://127.0.0.1:9/v1"}
    )
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["status"] == "succeeded" and [s["status"] for s in data["subtasks"]] == ["succeeded"] * 4
    assert "Found 6 TODOs" in data["answer"] and "app: 3" in data["answer"]
    # t1-t3 are compiled calls (no model); the file agent's write is the fourth tool call.
    assert data["usage"]["tool_calls"] == 4 and data["usage"]["requests"] == 4
    assert [s["call"]["tool"] if s["call"] else None for s in data["subtasks"]] == [
        "search_files",
        "search_files",
        "run_command",
        None,
    ]
    assert data["usage"]["cost_usd"] > 0


def test_max_cost_refuses_to_start_above_the_high_estimate(test_server, project):
    test_server.handler = brain
    out = shunter(["run", "summarise", "--max-cost", "0.002", "--json", "-w", str(project)], test_server)
    assert out.returncode == 2 and "exceeds --max-cost" in out.stderr
    assert len(test_server.chat_requests) == 1 and not (project / "summary.txt").exists()


def test_max_cost_stops_cleanly_when_spend_reaches_it(test_server, project):
    test_server.handler = brain
    # --yes starts despite the estimate; the budget covers the planner and a few calls, not the run.
    out = shunter(
        ["run", "summarise", "--max-cost", "0.0012", "--yes", "--json", "-w", str(project)], test_server
    )
    data = json.loads(out.stdout)
    assert out.returncode == 1 and data["status"] == "failed" and "max_cost_usd" in data["error"]
    assert data["usage"]["cost_usd"] <= 0.0012
    assert any(s["status"] == "succeeded" for s in data["subtasks"]) or data["usage"]["requests"] >= 1


def test_sigint_cancels_gracefully_and_keeps_finished_work(test_server, project):
    import signal
    import time

    def slow_brain(body):
        reply = brain(body)
        if "Read b.txt" in body["messages"][1]["content"] if len(body["messages"]) > 1 else False:
            time.sleep(30)  # t2 hangs in its model call until the run is cancelled
        return reply

    test_server.handler = slow_brain
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "SHUNTER_"))}
    env.update(OPENAI_BASE_URL=test_server.base_url, OPENAI_API_KEY=TEST_API_KEY, SHUNTER_MODEL="scripted")
    proc = subprocess.Popen(
        [sys.executable, "-m", "shunter.cli", "run", "summarise", "--yes", "--json", "-w", str(project)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    log = project / ".shunter/logs/events.jsonl"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # another process: poll its event log until t1 has finished
        if (
            log.exists()
            and '"subtask_id": "t1", "agent": "file", "event": "subtask.finished"' in log.read_text()
        ):
            break
        time.sleep(0.05)
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=10)
    assert time.monotonic() - sent < 2.0
    assert proc.returncode == 130, stderr
    data = json.loads(stdout)
    status = {s["id"]: s["status"] for s in data["subtasks"]}
    assert data["status"] == "cancelled" and status["t1"] == "succeeded" and status["t2"] == "cancelled"
    assert "alpha" in data["subtasks"][0]["result"]


def test_demo_in_a_given_workspace_is_kept_and_recorded(tmp_path):
    ws = tmp_path / "demo"
    out = shunter(["demo", "--json", "--latency", "0", "--workspace", str(ws)])
    assert out.returncode == 0, out.stderr
    run_id = json.loads(out.stdout)["run_id"]
    assert "## app" in (ws / "TODO.md").read_text()
    assert (ws / ".shunter/.gitignore").read_text().strip().endswith("*")
    runs = json.loads(shunter(["runs", "--json", "-w", str(ws)]).stdout)["runs"]
    assert runs[0]["run_id"] == run_id and runs[0]["status"] == "succeeded"
    again = shunter(["demo", "--workspace", str(ws)])
    assert again.returncode == 2 and "already has" in again.stderr


def test_a_server_failing_after_the_retries_is_a_failed_run_not_bad_usage(test_server, project):
    test_server.handler = lambda body: Fault(503)
    out = shunter(["plan", "x", "--json", "-w", str(project)], test_server)
    assert out.returncode == 1 and json.loads(out.stdout)["exit_code"] == 1 and "503" in out.stderr
