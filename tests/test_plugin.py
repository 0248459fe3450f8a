"""The example plugin package is installed for real, discovered, listed, planned for and used."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agents.loop import run_agent
from agents.registry import default_agents
from planner.planner import describe_agents
from runtime.testing import ScriptedModel, text, tool_call

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory) -> Path:
    site = tmp_path_factory.mktemp("site")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            str(site),
            str(ROOT / "examples" / "shunter-git"),
        ],
        check=True,
        capture_output=True,
    )
    return site


@pytest.fixture
def with_plugin(plugin_site, monkeypatch):
    monkeypatch.syspath_prepend(str(plugin_site))
    return plugin_site


def test_cli_lists_the_installed_plugin(plugin_site, workspace):
    env = {**os.environ, "PYTHONPATH": str(plugin_site)}
    out = subprocess.run(
        [sys.executable, "-m", "shunter.cli", "agents", "--json", "-w", str(workspace)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    agents = {a["name"]: a for a in json.loads(out.stdout)["agents"]}
    assert {"file", "shell", "research", "git"} <= set(agents)
    assert agents["git"]["source"].startswith("plugin") and agents["git"]["may_write"] is False
    assert agents["git"]["tools"] == ["git_status", "git_log", "git_diff", "git_show"]


def test_planner_sees_the_plugin_and_the_agent_runs(with_plugin, ctx, workspace):
    registry = default_agents()
    assert "git" in registry
    assert "- git: Answers questions about the repository" in describe_agents(registry, ctx)
    git = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@e",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@e",
    }
    env = {**os.environ, **git}
    subprocess.run(["git", "init", "-q"], cwd=workspace, check=True, env=env)
    (workspace / "a.txt").write_text("a\n")
    subprocess.run(["git", "add", "a.txt"], cwd=workspace, check=True, env=env)
    subprocess.run(
        ["git", "commit", "-qm", "first commit of the plugin test"], cwd=workspace, check=True, env=env
    )
    model = ScriptedModel(
        [tool_call("git_log", max_count=5), text("One commit: first commit of the plugin test.")]
    )
    result = asyncio_run(
        run_agent(registry.get("git"), "What is the latest commit?", ctx.for_subtask("t1", "git"), model)
    )
    assert result.status == "succeeded"
    assert "first commit of the plugin test" in model.requests[1].messages[-1]["content"]


def asyncio_run(coro):
    import asyncio

    return asyncio.run(coro)
