"""Starting `shunter mcp` for tests: its environment (pointed at the local test server) and a
streamable HTTP server process on a free loopback port, stopped after the test."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio
import mcp_types as types
from mcp import Client

from runtime.testserver import Slow, ToolCalls
from tests.server_fixtures import TEST_API_KEY
from tests.test_cli import brain


def mcp_env(server) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "SHUNTER_"))}
    env.update(OPENAI_BASE_URL=server.base_url, OPENAI_API_KEY=TEST_API_KEY, SHUNTER_MODEL="scripted")
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def http_server(server, project: Path, *flags: str) -> Iterator[str]:
    """`shunter mcp --http 127.0.0.1:PORT` as a real process; yields its URL once it accepts."""
    port = free_port()
    args = [sys.executable, "-m", "shunter.cli", "mcp", "-w", str(project), "--http", f"127.0.0.1:{port}"]
    proc = subprocess.Popen(
        [*args, *flags],
        env=mcp_env(server),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"shunter mcp --http exited: {proc.stderr.read()}")  # type: ignore[union-attr]
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def answering(action: str, asked: list[str], **content):
    """An elicitation callback giving one answer, and keeping each question in `asked`."""

    async def elicit(context, params: types.ElicitRequestParams) -> types.ElicitResult:
        asked.append(params.message)
        return types.ElicitResult(action=action, content=content or None)

    return elicit


def slow_writer(body: dict):
    """The brain, except that writing summary.txt takes a minute: long enough to cancel it."""
    reply = brain(body)
    if isinstance(reply, ToolCalls) and "Write summary.txt" in body["messages"][1]["content"]:
        return Slow(60, reply)
    return reply


async def cancel_while_writing(c: Client) -> None:
    """Start the slow_writer run, cancel the call once t1 and t2 are done and t3 waits on its
    model, then check through `runs` and `show` that the run is recorded as cancelled with the
    finished subtasks' results kept."""
    progress: list[str] = []
    with anyio.CancelScope() as scope:

        async def on_progress(value: float, total: float | None, message: str | None) -> None:
            progress.append(message or "")
            if "t3 (file) running" in (message or ""):
                scope.cancel()

        with anyio.fail_after(60):
            await c.call_tool("run", {"request": "summarise a and b"}, progress_callback=on_progress)
    assert scope.cancelled_caught, progress
    run_id = progress[0].split()[1].rstrip(":")  # "run <id>: planning"
    with anyio.fail_after(30):  # the server records the cancelled run as the run stops
        while (runs := (await c.call_tool("runs", {})).structured_content["runs"])[0]["status"] == "running":
            await anyio.sleep(0.1)
    shown = (await c.call_tool("show", {"run_id": run_id})).structured_content
    assert runs[0]["run_id"] == run_id and runs[0]["status"] == "cancelled"
    by_id = {s["id"]: s for s in shown["subtasks"]}
    assert by_id["t1"]["status"] == by_id["t2"]["status"] == "succeeded"
    assert by_id["t1"]["result"] and by_id["t2"]["result"]
    assert by_id["t3"]["status"] == "cancelled"
