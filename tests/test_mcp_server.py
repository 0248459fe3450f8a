"""`shunter mcp` driven by the official SDK's own client over stdio, against the local test server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters

from tests.server_fixtures import TEST_API_KEY
from tests.test_cli import PLAN, brain


def _env(server) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "SHUNTER_"))}
    env.update(OPENAI_BASE_URL=server.base_url, OPENAI_API_KEY=TEST_API_KEY, SHUNTER_MODEL="scripted")
    return env


def _client(server, project: Path, *flags: str, **kw) -> Client:
    args = ["-m", "shunter.cli", "mcp", "-w", str(project), *flags]
    return Client(StdioServerParameters(command=sys.executable, args=args, env=_env(server)), **kw)


@pytest.fixture
def project(workspace: Path) -> Path:
    (workspace / "a.txt").write_text("alpha\n")
    (workspace / "b.txt").write_text("beta\n")
    (workspace / ".shunter").mkdir()
    (workspace / ".shunter/config.toml").write_text(
        "[retry]\nattempts = 3\ninitial_delay_s = 0.01\nmax_delay_s = 0.05\n"
    )
    return workspace


async def test_tools_are_listed_with_their_effects(test_server, project):
    async with _client(test_server, project) as c:
        tools = {t.name: t for t in (await c.list_tools()).tools}
    assert set(tools) == {"plan", "run", "runs", "show"}
    assert tools["run"].annotations.read_only_hint is False
    assert all(tools[n].annotations.read_only_hint for n in ("plan", "runs", "show"))


async def test_plan_is_the_dry_run_with_the_plan_json_shape(test_server, project):
    test_server.handler = brain
    async with _client(test_server, project) as c:
        r = await c.call_tool("plan", {"request": "summarise a and b"})
    assert not r.is_error
    data = r.structured_content
    assert set(data) >= {"plan", "estimate", "waves"}
    assert data["plan"]["goal"] == PLAN["goal"] and data["waves"] == [["t1", "t2"], ["t3"]]
    assert "Wave 1" in r.content[0].text
    assert len(test_server.chat_requests) == 1  # the planner alone
    assert not (project / "summary.txt").exists()


async def test_run_without_yes_refuses_side_effects(test_server, project):
    test_server.handler = brain
    async with _client(test_server, project) as c:
        r = await c.call_tool("run", {"request": "summarise a and b"})
    data = r.structured_content
    assert {"run_id", "status", "answer", "usage", "subtasks"} <= set(data)
    refused = [d for d in data["approvals"] if not d["approved"]]
    assert refused and refused[0]["tool"] == "write_file"
    assert not (project / "summary.txt").exists()
    assert "--yes" in r.content[0].text


async def test_run_with_yes_writes_reports_progress_and_is_listed(test_server, project):
    test_server.handler = brain
    seen: list[tuple[float, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, message))

    async with _client(test_server, project, "--yes") as c:
        r = await c.call_tool("run", {"request": "summarise a and b"}, progress_callback=on_progress)
        data = r.structured_content
        runs = (await c.call_tool("runs", {})).structured_content["runs"]
        shown = (await c.call_tool("show", {"run_id": data["run_id"]})).structured_content
    assert data["status"] == "succeeded", data
    assert (project / "summary.txt").read_text() == "a and b\n"
    assert [s["status"] for s in data["subtasks"]] == ["succeeded"] * 3
    assert any(m and "t3 (file) succeeded" in m for _, m in seen)
    assert [p for p, _ in seen] == sorted({p for p, _ in seen})  # strictly growing
    assert runs[0]["run_id"] == data["run_id"] and runs[0]["status"] == "succeeded"
    assert shown["run_id"] == data["run_id"] and [s["id"] for s in shown["subtasks"]] == ["t1", "t2", "t3"]


def test_a_non_loopback_http_host_is_refused_in_one_sentence(project):
    out = subprocess.run(
        [sys.executable, "-m", "shunter.cli", "mcp", "-w", str(project), "--http", "0.0.0.0:8765"],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert out.returncode == 2
    assert "--allow-remote" in out.stderr and "Traceback" not in out.stderr
