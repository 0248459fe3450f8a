"""OpenTelemetry spans of a real run (the openai client against the bundled test server): the
tree, the GenAI names and attributes, links for dependencies, status on cancel and error,
content only when asked for; and the CLI exporting them over OTLP/HTTP to a real receiver."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import threading
from collections import defaultdict
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from runtime.config import load_settings
from runtime.context import approve_all
from runtime.store import Store
from runtime.testserver import Fault, Reply, Slow, Text, ToolCalls
from shunter import api
from shunter.wiring import OpenAIProvider
from tests.server_fixtures import TEST_API_KEY

# --- one exporter for the process: the global TracerProvider can be set only once --------------

_EXPORTER = InMemorySpanExporter()


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    current = trace.get_tracer_provider()
    if not isinstance(current, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
        current = trace.get_tracer_provider()
    assert isinstance(current, TracerProvider)
    if not getattr(current, "_shunter_test_exporter", False):
        current.add_span_processor(SimpleSpanProcessor(_EXPORTER))
        current._shunter_test_exporter = True  # type: ignore[attr-defined]
    _EXPORTER.clear()
    yield _EXPORTER
    _EXPORTER.clear()


# --- a scripted model that plays planner, specialists and synthesis --------------------------------


def step(sid: str, instruction: str, deps: list[str] | None = None, read_only: bool = True) -> dict:
    return {
        "id": sid,
        "agent": "file",
        "instruction": f"[{sid}] {instruction}",
        "depends_on": deps or [],
        "read_only": read_only,
    }


PLAN = {
    "goal": "Read two files and write a third from them.",
    "subtasks": [
        step("t1", "Read a.txt."),
        step("t2", "Read b.txt."),
        step("t3", "Write c.txt from both.", deps=["t1", "t2"], read_only=False),
    ],
}
TOOLS = {
    "t1": [("read_file", {"path": "a.txt"})],
    "t2": [("read_file", {"path": "b.txt"})],
    "t3": [("write_file", {"path": "c.txt", "content": "a and b\n"})],
}


class Brain:
    """Answers each request from its messages; `overrides[who]` replaces a subtask's replies."""

    def __init__(self, overrides: dict[str, list[Reply]] | None = None):
        self.overrides = overrides or {}
        self._lock = threading.Lock()

    def __call__(self, body: dict[str, Any]) -> Reply:
        messages = body["messages"]
        system = messages[0]["content"]
        if system.startswith("You are the planner"):
            return Text(json.dumps(PLAN))
        if system.startswith("You write the final answer"):
            return Text("Wrote c.txt from a.txt and b.txt.")
        who = re.search(r"\[(t\d+)\]", messages[1]["content"]).group(1)  # type: ignore[union-attr]
        with self._lock:
            queued = self.overrides.get(who)
            if queued:
                return queued.pop(0)
        turns = sum(1 for m in messages if m["role"] == "assistant")
        calls = TOOLS[who]
        return ToolCalls([calls[turns]]) if turns < len(calls) else Text(f"result of {who}")


def make_workspace(ws: Path, config: str = "") -> Path:
    (ws / "a.txt").write_text(f"alpha; the key is {TEST_API_KEY}\n")
    (ws / "b.txt").write_text("beta\n")
    (ws / ".shunter").mkdir(exist_ok=True)
    settings = (
        '[tools]\nsandbox = "none"\n\n[retry]\nattempts = 2\ninitial_delay_s = 0.01\n\n'
        "[prices.scripted]\ninput = 1.0\noutput = 2.0\n"
    )
    (ws / ".shunter" / "config.toml").write_text(settings + config)
    return ws


async def run_once(ws: Path, server, *, cancel_when=None, user_config: str = "", monkeypatch=None):
    overrides = {"model": {"name": "scripted", "base_url": server.base_url, "api_key": TEST_API_KEY}}
    ctx = api.prepare(ws, overrides=overrides, approve=approve_all)
    provider = OpenAIProvider(ctx.settings)
    listeners = []
    if cancel_when is not None:
        listeners.append(lambda rec: ctx.cancel.cancel("test") if cancel_when(rec) else None)
    with Store.open(ws) as store:
        try:
            return await api.run(
                "read, then write", ctx=ctx, model=provider, store=store, listeners=listeners
            )
        finally:
            await provider.aclose()
            ctx.close()


def by_name(finished: list[ReadableSpan]) -> dict[str, list[ReadableSpan]]:
    out: dict[str, list[ReadableSpan]] = defaultdict(list)
    for s in finished:
        out[s.name].append(s)
    return out


def parent_of(s: ReadableSpan, finished: list[ReadableSpan]) -> ReadableSpan | None:
    ids = {x.context.span_id: x for x in finished}
    return ids.get(s.parent.span_id) if s.parent else None


def subtask_span(finished: list[ReadableSpan], sid: str) -> ReadableSpan:
    (found,) = [
        s
        for s in finished
        if s.attributes.get("shunter.subtask.id") == sid and s.name.startswith("invoke_agent")
    ]
    return found


# --- the tree of a run ---------------------------------------------------------------------------


def test_a_run_is_one_trace_shaped_like_the_plan(workspace, test_server, spans):
    test_server.handler = Brain()
    result = asyncio.run(run_once(make_workspace(workspace), test_server))
    assert result.status == "succeeded", result.error
    finished = list(spans.get_finished_spans())
    names = by_name(finished)

    (root,) = names["invoke_workflow shunter"]
    assert root.parent is None and root.attributes["gen_ai.operation.name"] == "invoke_workflow"
    assert root.attributes["shunter.run_id"] == result.run_id
    assert root.attributes["shunter.status"] == "succeeded" and root.status.status_code == StatusCode.UNSET
    assert {s.context.trace_id for s in finished} == {root.context.trace_id}

    (plan,) = names["plan planner"]
    assert parent_of(plan, finished) is root and plan.attributes["gen_ai.operation.name"] == "plan"
    assert plan.attributes["shunter.plan.subtasks"] == 3

    agents = names["invoke_agent file"]
    assert len(agents) == 3 and all(parent_of(a, finished) is root for a in agents)
    t1, t2, t3 = (subtask_span(finished, sid) for sid in ("t1", "t2", "t3"))
    assert (
        t1.attributes["shunter.subtask.read_only"] is True
        and t3.attributes["shunter.subtask.read_only"] is False
    )
    assert (
        t3.attributes["gen_ai.agent.name"] == "file"
        and t3.attributes["shunter.subtask.status"] == "succeeded"
    )
    # The dependencies are links, so a backend can jump from t3 to what it waited for.
    assert {link.context.span_id for link in t3.links} == {t1.context.span_id, t2.context.span_id}
    assert not t1.links and tuple(t3.attributes["shunter.subtask.depends_on"]) == ("t1", "t2")
    # t1 and t2 ran at the same time; t3 started after both had finished.
    assert t1.start_time < t2.end_time and t2.start_time < t1.end_time
    assert t3.start_time >= max(t1.end_time, t2.end_time)

    chats = names["chat scripted"]
    assert len(chats) == 1 + 2 * 3 + 1  # planner, two turns per subtask, synthesis
    assert {parent_of(c, finished).name for c in chats} == {  # type: ignore[union-attr]
        "plan planner",
        "invoke_agent file",
        "invoke_agent synthesis",
    }
    for c in chats:
        a = c.attributes
        assert c.kind == trace.SpanKind.CLIENT and a["gen_ai.operation.name"] == "chat"
        assert a["gen_ai.request.model"] == "scripted" and a["gen_ai.provider.name"] == "openai"
        assert a["gen_ai.usage.input_tokens"] > 0 and a["gen_ai.usage.output_tokens"] > 0
        assert a["shunter.retries"] == 0 and a["shunter.cost_usd"] > 0
        assert a["server.address"] == "127.0.0.1" and a["server.port"] == test_server.port
        assert a["gen_ai.response.id"]

    (read1,) = [s for s in names["execute_tool read_file"] if parent_of(s, finished) is t1]
    assert (
        read1.attributes["gen_ai.tool.name"] == "read_file"
        and read1.attributes["gen_ai.operation.name"] == "execute_tool"
    )
    (write,) = names["execute_tool write_file"]
    assert parent_of(write, finished) is t3
    (approval,) = names["approve write_file"]
    assert parent_of(approval, finished) is write and approval.attributes["shunter.approval.granted"] is True
    (synthesis,) = names["invoke_agent synthesis"]
    assert parent_of(synthesis, finished) is root

    # Nothing of the prompts or files without capture_content.
    for s in finished:
        for key, value in s.attributes.items():
            assert "gen_ai.input.messages" != key and "alpha" not in str(value), (s.name, key)


def test_capture_content_records_prompts_and_payloads_without_the_key(
    workspace, test_server, spans, monkeypatch, tmp_path
):
    user = tmp_path / "user.toml"
    user.write_text("[telemetry]\ncapture_content = true\n")
    monkeypatch.setenv("SHUNTER_CONFIG", str(user))
    test_server.handler = Brain()
    result = asyncio.run(run_once(make_workspace(workspace), test_server))
    assert result.status == "succeeded", result.error
    finished = list(spans.get_finished_spans())
    names = by_name(finished)
    (read1,) = [
        s for s in names["execute_tool read_file"] if "a.txt" in s.attributes["gen_ai.tool.call.arguments"]
    ]
    assert "alpha" in read1.attributes["gen_ai.tool.call.result"]
    chat = next(c for c in names["chat scripted"] if parent_of(c, finished).name == "plan planner")  # type: ignore[union-attr]
    assert json.loads(chat.attributes["gen_ai.input.messages"])[0]["role"] == "user"
    assert "planner" in chat.attributes["gen_ai.system_instructions"]
    assert json.loads(chat.attributes["gen_ai.output.messages"])[0]["parts"][0]["type"] == "text"
    everything = json.dumps([dict(s.attributes) for s in finished], default=str)
    assert TEST_API_KEY not in everything and "[REDACTED]" in everything


def test_a_workspace_config_cannot_turn_content_capture_on(workspace):
    (workspace / ".shunter").mkdir()
    (workspace / ".shunter" / "config.toml").write_text("[telemetry]\ncapture_content = true\n")
    settings = load_settings(workspace)
    assert settings.telemetry.capture_content is False
    assert any("telemetry.capture_content" in w for w in settings.warnings)


# --- status on error and on cancellation ---------------------------------------------------------


def test_a_retried_call_and_a_failed_subtask_show_in_the_status(workspace, test_server, spans):
    # t1's first call is retried once (500), then answers; t2's call is refused (400) for good.
    test_server.handler = Brain({"t1": [Fault(500)], "t2": [Fault(400)]})
    result = asyncio.run(run_once(make_workspace(workspace), test_server))
    assert result.status == "failed"
    finished = list(spans.get_finished_spans())
    t1, t2 = (subtask_span(finished, sid) for sid in ("t1", "t2"))
    retried = [c for c in finished if c.name == "chat scripted" and parent_of(c, finished) is t1][0]
    assert retried.attributes["shunter.retries"] == 1 and [e.name for e in retried.events] == ["retry"]
    assert retried.status.status_code == StatusCode.UNSET
    refused = [c for c in finished if c.name == "chat scripted" and parent_of(c, finished) is t2][0]
    assert refused.status.status_code == StatusCode.ERROR and refused.attributes["error.type"] == "ModelError"
    assert t2.status.status_code == StatusCode.ERROR and t2.attributes["shunter.subtask.status"] == "failed"
    assert t1.status.status_code == StatusCode.UNSET
    assert not [s for s in finished if s.attributes.get("shunter.subtask.id") == "t3"]  # skipped, never run
    (root,) = by_name(finished)["invoke_workflow shunter"]
    assert root.status.status_code == StatusCode.ERROR and root.attributes["shunter.status"] == "failed"


def test_cancellation_marks_the_running_spans_cancelled(workspace, test_server, spans):
    # t2's model call hangs; cancelling when t1 finishes stops it mid-request.
    test_server.handler = Brain({"t2": [Slow(60, Text("never"))]})
    result = asyncio.run(
        run_once(
            make_workspace(workspace),
            test_server,
            cancel_when=lambda rec: rec.id == "t1" and rec.status == "succeeded",
        )
    )
    assert result.status == "cancelled"
    finished = list(spans.get_finished_spans())
    t2 = subtask_span(finished, "t2")
    assert t2.status.status_code == StatusCode.ERROR and t2.attributes["error.type"] == "cancelled"
    hung = [c for c in finished if c.name == "chat scripted" and parent_of(c, finished) is t2][-1]
    assert hung.status.status_code == StatusCode.ERROR and hung.attributes["error.type"] == "cancelled"
    assert subtask_span(finished, "t1").status.status_code == StatusCode.UNSET
    (root,) = by_name(finished)["invoke_workflow shunter"]
    assert root.attributes["error.type"] == "cancelled" and root.status.status_code == StatusCode.ERROR


# --- the CLI exports over OTLP/HTTP to a real receiver --------------------------------------------


class _Receiver(ThreadingHTTPServer):
    """A tiny OTLP/HTTP trace receiver: decodes each protobuf ExportTraceServiceRequest."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _ReceiverHandler)
        self.requests: list[ExportTraceServiceRequest] = []
        self.paths: list[tuple[str, str]] = []


class _ReceiverHandler(BaseHTTPRequestHandler):
    server: _Receiver

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        message = ExportTraceServiceRequest()
        message.ParseFromString(body)
        self.server.paths.append((self.path, self.headers.get("Content-Type", "")))
        self.server.requests.append(message)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture
def receiver() -> Iterator[_Receiver]:
    server = _Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_the_cli_exports_the_run_over_otlp_http(workspace, test_server, receiver):
    test_server.handler = Brain()
    ws = make_workspace(workspace)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "SHUNTER_", "OTEL_"))}
    env |= {
        "OPENAI_BASE_URL": test_server.base_url,
        "OPENAI_API_KEY": TEST_API_KEY,
        "SHUNTER_MODEL": "scripted",
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{receiver.server_address[1]}",
        "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=test",
    }
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "shunter.cli",
            "run",
            "--yes",
            "--json",
            "read, then write",
            "--workspace",
            str(ws),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert proc.returncode == 0, proc.stderr
    run_id = json.loads(proc.stdout)["run_id"]
    # The batch is flushed when the CLI exits: everything has arrived by now.
    assert receiver.paths and all(p == ("/v1/traces", "application/x-protobuf") for p in receiver.paths)
    received: list[Any] = []
    resources = []
    for message in receiver.requests:
        for rs in message.resource_spans:
            resources.append({kv.key: kv.value.string_value for kv in rs.resource.attributes})
            for ss in rs.scope_spans:
                assert ss.scope.name == "shunter"
                received.extend(ss.spans)
    assert all(r["service.name"] == "shunter" and r["deployment.environment"] == "test" for r in resources)
    names = [s.name for s in received]
    assert names.count("invoke_workflow shunter") == 1 and names.count("invoke_agent file") == 3
    assert {"plan planner", "chat scripted", "execute_tool read_file", "approve write_file"} <= set(names)
    (root,) = [s for s in received if s.name == "invoke_workflow shunter"]
    attrs = {kv.key: kv.value for kv in root.attributes}
    assert attrs["shunter.run_id"].string_value == run_id and not root.parent_span_id
    assert {s.trace_id for s in received} == {root.trace_id}
    chat = next(s for s in received if s.name == "chat scripted")
    chat_attrs = {kv.key: kv.value for kv in chat.attributes}
    assert (
        chat_attrs["gen_ai.usage.input_tokens"].int_value > 0
        and chat_attrs["shunter.cost_usd"].double_value > 0
    )
    by_id = {s.span_id: s for s in received}
    t3 = next(
        s
        for s in received
        if any(kv.key == "shunter.subtask.id" and kv.value.string_value == "t3" for kv in s.attributes)
        and s.name.startswith("invoke_agent")
    )
    assert len(t3.links) == 2 and all(link.span_id in by_id for link in t3.links)
