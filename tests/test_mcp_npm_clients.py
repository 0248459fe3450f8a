"""`shunter mcp` against real clients other than our SDK's: the MCP inspector CLI over stdio and
streamable HTTP, and the official conformance suite (server mode) over streamable HTTP. Both are
npm programs that `python3 dev.py setup` installs into tests/npm-server/ with npm ci."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.mcp_fixtures import http_server, mcp_env
from tests.test_cli import PLAN, brain

NPM_DIR = Path(__file__).resolve().parent / "npm-server"
BIN = NPM_DIR / "node_modules" / ".bin"
INSPECTOR = BIN / "mcp-inspector-cli"
CONFORMANCE = BIN / "conformance"

# The server scenarios of the conformance suite that apply to Shunter's server (its four tools,
# no resources, prompts, logging or completions), each passing in full. The README says why the
# others do not apply.
CONFORMANCE_SCENARIOS = [
    "server-initialize",
    "ping",
    "tools-list",
    "resources-list",
    "prompts-list",
    "server-sse-multiple-streams",
    "dns-rebinding-protection",
]


def _node() -> str:
    node = shutil.which("node")
    if node is None or not INSPECTOR.exists() or not CONFORMANCE.exists():
        pytest.skip(
            "needs the npm test programs in tests/npm-server/node_modules: install node and npm, "
            "then run `python3 dev.py setup`"
        )
    return node


def inspector(target: list[str], *args: str, env: dict[str, str] | None = None) -> dict:
    """One inspector CLI call; its JSON answer. It looks for its own package.json relative to the
    working directory (a bug of 1.0.3), so it runs from its build directory."""
    out = subprocess.run(
        [_node(), str(INSPECTOR), "--cli", *target, *args],
        cwd=INSPECTOR.resolve().parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    return json.loads(out.stdout)


@pytest.fixture
def project(workspace: Path) -> Path:
    (workspace / "a.txt").write_text("alpha\n")
    (workspace / "b.txt").write_text("beta\n")
    return workspace


def test_inspector_over_stdio_lists_the_tools_and_calls_them(test_server, project):
    test_server.handler = brain
    target = [sys.executable, "-m", "shunter.cli", "mcp", "-w", str(project)]
    env = mcp_env(test_server)
    listed = inspector(target, "--method", "tools/list", env=env)
    runs = inspector(target, "--method", "tools/call", "--tool-name", "runs", env=env)
    planned = inspector(
        target,
        "--method",
        "tools/call",
        "--tool-name",
        "plan",
        "--tool-arg",
        "request=summarise a and b",
        env=env,
    )
    tools = {t["name"]: t for t in listed["tools"]}
    assert set(tools) == {"plan", "run", "runs", "show"}
    assert tools["run"]["inputSchema"]["required"] == ["request"]
    assert runs["structuredContent"] == {"runs": []} and runs["isError"] is False
    assert planned["isError"] is False and planned["structuredContent"]["plan"]["goal"] == PLAN["goal"]
    assert not (project / "summary.txt").exists()


def test_inspector_over_streamable_http_runs_a_request(test_server, project):
    test_server.handler = brain
    _node()
    with http_server(test_server, project, "--yes") as url:
        http = [url, "--transport", "http"]
        listed = inspector(http, "--method", "tools/list")
        ran = inspector(
            http, "--method", "tools/call", "--tool-name", "run", "--tool-arg", "request=summarise a and b"
        )
        run_id = ran["structuredContent"]["run_id"]
        shown = inspector(
            http, "--method", "tools/call", "--tool-name", "show", "--tool-arg", f"run_id={run_id}"
        )
    assert {t["name"] for t in listed["tools"]} == {"plan", "run", "runs", "show"}
    assert ran["isError"] is False and ran["structuredContent"]["status"] == "succeeded"
    assert (project / "summary.txt").read_text() == "a and b\n"
    assert [s["status"] for s in shown["structuredContent"]["subtasks"]] == ["succeeded"] * 3


def test_the_conformance_scenarios_that_apply_pass(test_server, project, tmp_path):
    node = _node()
    results = tmp_path / "conformance"
    with http_server(test_server, project) as url:
        for scenario in CONFORMANCE_SCENARIOS:
            out = subprocess.run(
                # node20-fs.mjs lets the suite load on Node 20 (it imports fs.globSync, Node 22+).
                [node, "--import", "./node20-fs.mjs", str(CONFORMANCE), "server", "--url", url]
                + ["--scenario", scenario, "-o", str(results / scenario)],
                cwd=NPM_DIR,
                capture_output=True,
                text=True,
                timeout=120,
                stdin=subprocess.DEVNULL,
            )
            assert out.returncode == 0, f"{scenario}:\n{out.stdout}\n{out.stderr}"
    for scenario in CONFORMANCE_SCENARIOS:
        (checks_file,) = (results / scenario).glob("*/checks.json")
        checks = [c for c in json.loads(checks_file.read_text()) if c["status"] != "INFO"]
        assert checks, scenario  # the scenario checked something
        assert {c["status"] for c in checks} == {"SUCCESS"}, (scenario, checks)
