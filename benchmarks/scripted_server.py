"""The local OpenAI-compatible test server in its own process, for benchmarks.

In-process, the server's threads would share the GIL with the client they serve and bill their
CPU to Shunter's makespan; a real server never does. The planner's answer is read from a file
the benchmark rewrites before each run, so one server serves every plan shape.

    python -m benchmarks.scripted_server --plan-file P --latency 0.05 [--chunk-delay 0] [--piece 4]

prints its base URL on the first line of stdout, then serves until stdin closes.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchmarks.common import REPO, python_bin, role_of, subtask_id_of


def make_handler(plan_file: Path, long_text: int):
    from runtime.testserver import Text, ToolCalls

    def handle(body: dict[str, Any]):
        messages = body["messages"]
        role = role_of(messages)
        if role == "planner":
            return Text(plan_file.read_text())
        if role == "synthesis":
            return Text("done")
        system = messages[0]["content"] or ""
        if '"shell" specialist' in system and messages[-1]["role"] == "user":
            # cancel_latency: a shell subtask starts a long child process
            return ToolCalls([("run_command", {"command": "sleep 30"})])
        if long_text and messages[-1]["role"] == "user":
            return Text("streaming " * long_text)  # cancel_latency: a slow stream
        user = messages[1]["content"] or ""
        return Text(f"result of {subtask_id_of(messages)}" if "do " in user else "finished")

    return handle


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--plan-file", type=Path, required=True)
    ap.add_argument("--latency", type=float, default=0.0)
    ap.add_argument("--chunk-delay", type=float, default=0.0)
    ap.add_argument("--piece", type=int, default=4)
    ap.add_argument("--long-text", type=int, default=0, help="worker answers this many words, streamed")
    args = ap.parse_args()
    from runtime.testserver import TestServer

    server = TestServer().start()
    server.latency_s, server.stream_chunk_delay_s, server.stream_piece_chars = (
        args.latency,
        args.chunk_delay,
        args.piece,
    )
    server.handler = make_handler(args.plan_file, args.long_text)
    print(server.base_url, flush=True)
    sys.stdin.read()  # the parent closes our stdin to stop us
    server.stop()


class ScriptedServer:
    """Context manager: starts the server process, exposes base_url and plan(), stops it."""

    def __init__(
        self,
        plan_file: Path,
        latency: float = 0.0,
        chunk_delay: float = 0.0,
        piece: int = 4,
        long_text: int = 0,
    ):
        self.plan_file = plan_file
        self.args = [
            "--plan-file",
            str(plan_file),
            "--latency",
            str(latency),
            "--chunk-delay",
            str(chunk_delay),
            "--piece",
            str(piece),
            "--long-text",
            str(long_text),
        ]
        self.proc: subprocess.Popen[str] | None = None
        self.base_url = ""

    def plan(self, plan: dict[str, Any]) -> None:
        self.plan_file.write_text(json.dumps(plan))

    def __enter__(self) -> ScriptedServer:
        if not self.plan_file.exists():
            self.plan_file.write_text("{}")
        self.proc = subprocess.Popen(
            [python_bin(), "-m", "benchmarks.scripted_server", *self.args],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.base_url = self.proc.stdout.readline().strip()
        if not self.base_url.startswith("http"):
            self.__exit__()
            raise RuntimeError("the scripted server did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            if self.proc.stdin:
                self.proc.stdin.close()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None


if __name__ == "__main__":
    main()
