"""`shunter mcp --http` (streamable HTTP) driven by the official SDK's own client, as a real process."""

from __future__ import annotations

from pathlib import Path

import pytest
from mcp import Client

from tests.mcp_fixtures import answering, cancel_while_writing, http_server, slow_writer
from tests.test_cli import PLAN, brain, shunter


@pytest.fixture
def project(workspace: Path) -> Path:
    (workspace / "a.txt").write_text("alpha\n")
    (workspace / "b.txt").write_text("beta\n")
    return workspace


async def test_plan_run_runs_and_show_over_streamable_http(test_server, project):
    test_server.handler = brain
    seen: list[str] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(message or "")

    with http_server(test_server, project, "--yes") as url:
        async with Client(url) as c:
            tools = {t.name for t in (await c.list_tools()).tools}
            planned = await c.call_tool("plan", {"request": "summarise a and b"})
            assert not (project / "summary.txt").exists()  # the dry run changes nothing
            ran = await c.call_tool("run", {"request": "summarise a and b"}, progress_callback=on_progress)
            runs = (await c.call_tool("runs", {"limit": 5})).structured_content["runs"]
            shown = await c.call_tool("show", {"run_id": ran.structured_content["run_id"][:8]})
    assert tools == {"plan", "run", "runs", "show"}
    assert not planned.is_error and planned.structured_content["plan"]["goal"] == PLAN["goal"]
    assert planned.structured_content["waves"] == [["t1", "t2"], ["t3"]]
    data = ran.structured_content
    assert not ran.is_error and data["status"] == "succeeded", data
    assert (project / "summary.txt").read_text() == "a and b\n"
    assert any("t3 (file) succeeded" in m for m in seen)
    assert [r["run_id"] for r in runs] == [data["run_id"]] and runs[0]["status"] == "succeeded"
    assert shown.structured_content["run_id"] == data["run_id"]
    assert [s["status"] for s in shown.structured_content["subtasks"]] == ["succeeded"] * 3
    assert "t3" in shown.content[0].text


async def test_http_errors_are_tool_errors_in_one_sentence(test_server, project):
    with http_server(test_server, project) as url:
        async with Client(url) as c:
            empty = await c.call_tool("runs", {})
            missing = await c.call_tool("show", {"run_id": "nope"})
            blank = await c.call_tool("plan", {"request": "  "})
    assert not empty.is_error and empty.structured_content == {"runs": []}
    assert "No runs recorded" in empty.content[0].text
    assert not (project / ".shunter").exists()  # listing creates nothing
    for r in (missing, blank):
        assert r.is_error and r.structured_content["status"] == "error"
        assert "Traceback" not in r.content[0].text and r.content[0].text.endswith(".")
    assert "plan with request" in blank.content[0].text


@pytest.mark.parametrize("mode", ["legacy", "auto"])  # a server request, or rounds of the call
async def test_elicitation_over_http_asks_and_the_answer_decides(test_server, project, mode):
    test_server.handler = brain
    asked: list[str] = []
    with http_server(test_server, project) as url:
        elicit = answering("accept", asked, approve=True, always=False)
        async with Client(url, mode=mode, elicitation_callback=elicit) as c:
            r = await c.call_tool("run", {"request": "summarise a and b"})
    assert r.structured_content["status"] == "succeeded", r.structured_content
    assert len(asked) == 1 and "write_file" in asked[0]
    assert (project / "summary.txt").read_text() == "a and b\n"


async def test_cancelling_an_http_request_cancels_the_run_and_keeps_finished_subtasks(test_server, project):
    test_server.handler = slow_writer
    with http_server(test_server, project, "--yes") as url:
        async with Client(url) as c:
            await cancel_while_writing(c)
    assert not (project / "summary.txt").exists()


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "[::]", "example.org"])
def test_a_host_other_machines_can_reach_needs_allow_remote(project, host):
    out = shunter(["mcp", "-w", str(project), "--http", f"{host}:8765"])
    assert out.returncode == 2, out.stderr
    message = out.stderr.strip()
    assert message.count(". ") == 0 and message.endswith(".")  # one sentence
    assert "--allow-remote" in message and "127.0.0.1" in message and "Traceback" not in message


def test_a_malformed_http_address_is_one_sentence(project):
    out = shunter(["mcp", "-w", str(project), "--http", "8765"])
    assert out.returncode == 2
    assert "HOST:PORT" in out.stderr and "Traceback" not in out.stderr
