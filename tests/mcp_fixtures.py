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

from tests.server_fixtures import TEST_API_KEY


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
