"""`shunter mcp` driven by the official SDK's own client over stdio, against the local test server."""

from __future__ import annotations

import sys
from pathlib import Path

import anyio
import mcp_types as types
import pytest
from mcp import Client, StdioServerParameters

from tests.mcp_fixtures import answering, cancel_while_writing, mcp_env, slow_writer
from tests.test_cli import PLAN, brain


def _client(server, project: Path, *flags: str, **kw) -> Client:
    args = ["-m", "shunter.cli", "mcp", "-w", str(project), *flags]
    return Client(StdioServerParameters(command=sys.executable, args=args, env=mcp_env(server)), **kw)


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


# legacy: the handshake-era protocols, asked by a server request during the call; auto: the SDK
# client's default, the 2026-07-28 protocol, asked in rounds of the call (shunter/mcp_rounds.py).
BOTH_WAYS = pytest.mark.parametrize("mode", ["legacy", "auto"])


@BOTH_WAYS
async def test_an_accepted_elicitation_approves_the_side_effect(test_server, project, mode):
    test_server.handler = brain
    asked: list[str] = []
    elicit = answering("accept", asked, approve=True, always=False)
    async with _client(test_server, project, mode=mode, elicitation_callback=elicit) as c:
        r = await c.call_tool("run", {"request": "summarise a and b"})
        version = c.protocol_version
    assert (version >= "2026-07-28") == (mode == "auto")  # both protocol eras are exercised
    data = r.structured_content
    assert not r.is_error and data["status"] == "succeeded", data
    assert (project / "summary.txt").read_text() == "a and b\n"
    assert len(asked) == 1 and "write_file" in asked[0] and "summary.txt" in asked[0]
    assert [(d["tool"], d["approved"], d["reason"]) for d in data["approvals"]] == [
        ("write_file", True, "approved by the user")
    ]


@BOTH_WAYS
@pytest.mark.parametrize("answer", [{"action": "decline"}, {"action": "accept", "approve": False}])
async def test_a_declined_elicitation_refuses_the_side_effect(test_server, project, answer, mode):
    test_server.handler = brain
    asked: list[str] = []
    answer = dict(answer)  # the parameter is shared between runs of the test
    elicit = answering(answer.pop("action"), asked, **answer)
    async with _client(test_server, project, mode=mode, elicitation_callback=elicit) as c:
        r = await c.call_tool("run", {"request": "summarise a and b"})
    data = r.structured_content
    assert len(asked) == 1
    assert not (project / "summary.txt").exists()
    refused = [d for d in data["approvals"] if not d["approved"]]
    assert [d["tool"] for d in refused] == ["write_file"]
    assert refused[0]["reason"].startswith("refused by the user")
    assert "--yes" not in r.content[0].text  # the user said no; no hint to go around them


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_a_client_without_elicitation_is_refused_side_effects(test_server, project, mode):
    test_server.handler = brain
    async with _client(test_server, project, mode=mode) as c:
        r = await c.call_tool("run", {"request": "summarise a and b"})
    data = r.structured_content
    assert not (project / "summary.txt").exists()
    (refused,) = [d for d in data["approvals"] if not d["approved"]]
    assert refused["tool"] == "write_file" and "cannot be asked" in refused["reason"]
    assert "start `shunter mcp` with --yes" in r.content[0].text


@pytest.mark.parametrize("asks", [False, True])  # --yes, or approvals asked in rounds of the call
async def test_cancelling_the_request_cancels_the_run_and_keeps_finished_subtasks(test_server, project, asks):
    test_server.handler = slow_writer
    flags = () if asks else ("--yes",)
    elicit = answering("accept", [], approve=True) if asks else None
    async with _client(test_server, project, *flags, elicitation_callback=elicit) as c:
        await cancel_while_writing(c)
    assert not (project / "summary.txt").exists()


async def test_a_question_left_unanswered_is_refused_and_the_run_goes_on(test_server, project, monkeypatch):
    """In rounds (2026-07-28), a client that does not answer in time must not hold the run: the
    side effect is refused after the timeout and the run finishes and is recorded."""
    from shunter import mcp_rounds
    from shunter.mcp_server import build_server

    monkeypatch.setattr(mcp_rounds, "QUESTION_TIMEOUT_S", 0.2)
    for k, v in mcp_env(test_server).items():
        monkeypatch.setenv(k, v)
    test_server.handler = brain

    async def late(context, params):
        await anyio.sleep(1)  # the server stopped waiting at 0.2 s
        return types.ElicitResult(action="accept", content={"approve": True, "always": False})

    async with Client(build_server(project), elicitation_callback=late) as c:  # in-process
        r = await c.call_tool("run", {"request": "summarise a and b"})
        runs = (await c.call_tool("runs", {})).structured_content["runs"]
    data = r.structured_content
    (refused,) = [d for d in data["approvals"] if not d["approved"]]
    assert refused["tool"] == "write_file" and "no answer within" in refused["reason"]
    assert not (project / "summary.txt").exists()
    assert runs[0]["run_id"] == data["run_id"] and runs[0]["status"] == data["status"]
