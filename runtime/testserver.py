"""A scripted OpenAI-compatible HTTP server on 127.0.0.1, for tests (ours and our users').

It speaks real HTTP so the real `openai` SDK (and its connection pool, timeouts and error
mapping) is exercised end to end; no mocking library can reach inside the SDK's transport.

    with TestServer() as server:
        server.enqueue(Text("hello"), ToolCalls([("read_file", '{"path": "a.txt"}')]))
        client = openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)
        ...
        assert server.requests[0].body["model"] == "gpt-4.1"

Each request takes the next queued reply; when the queue is empty, `server.handler(body)` picks
one (for parallel requests whose order is not fixed); when neither is set the answer is "ok".
Stdlib only, so it can ship inside the package without adding a dependency.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from runtime.testserver_replies import (
    REPLY_TYPES,
    Answer,
    Drop,
    Fault,
    MalformedToolCall,
    NoUsage,
    Paced,
    Reply,
    Slow,
    Text,
    ToolCalls,
    cap_output,
    completion,
    error_body,
    fault_headers,
    response_events,
    response_object,
    stream_chunks,
    usage_dict,
)
from runtime.tokens import count_text

__all__ = [
    "Drop",
    "Fault",
    "MalformedToolCall",
    "NoUsage",
    "Paced",
    "RecordedRequest",
    "Reply",
    "Slow",
    "TestServer",
    "Text",
    "ToolCalls",
]


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    """Header names lower-cased, values as received (including Authorization)."""
    body: dict[str, Any] | None
    """The parsed JSON body; None for GET or a body that was not JSON."""
    received_at: float
    """time.monotonic() when the request was read, before any latency or delay."""
    client_port: int
    """The client's source port: the same port on two requests means a kept-alive connection."""


# --- HTTP plumbing -----------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 keeps connections alive, as the SDK's pool expects; every response is framed
    # (Content-Length, or chunked for streams) so the connection can be reused.
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle on, delayed ACKs add ~40 ms to each.
    disable_nagle_algorithm = True
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        pass  # tests stay quiet; requests are recorded on the TestServer instead

    def do_GET(self) -> None:
        self.server.owner._record(self, None)
        if self.path.rstrip("/") == "/v1/models":
            model = {"id": "scripted", "object": "model", "created": 0, "owned_by": "shunter"}
            self.send_json(200, {"object": "list", "data": [model]})
        else:
            self.send_json(404, error_body(404, f"No route for GET {self.path}."))

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        owner = self.server.owner
        index = owner._record(self, body)
        if self.path.rstrip("/") not in ("/v1/chat/completions", "/v1/responses"):
            self.send_json(404, error_body(404, f"No route for POST {self.path}."))
        elif not isinstance(body, dict):
            self.send_json(400, error_body(400, "The request body is not a JSON object."))
        else:
            owner._answer(self, body)
            with owner._lock:
                owner.finished_at[index] = time.monotonic()

    def send_json(self, status: int, data: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        payload = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def start_stream(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def send_event(self, data: str, last: bool = False, name: str | None = None) -> None:
        # wfile is unbuffered, so each event reaches the client as soon as it is written.
        # The Responses API names each event (event: response.output_text.delta) as well.
        event = (f"event: {name}\n" if name else "").encode() + f"data: {data}\n\n".encode()
        # The last event and the end of the chunked body share one write, as OpenAI's do: a
        # client that stops reading at [DONE] has then seen the whole body and can reuse the connection.
        end = b"0\r\n\r\n" if last else b""
        self.wfile.write(b"%x\r\n%s\r\n%s" % (len(event), event, end))

    def drop(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default backlog of 5 drops connects when many agents start at once

    def __init__(self, owner: TestServer, address: tuple[str, int]):
        self.owner = owner
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        # Track the socket here (in the accept loop) so stop() sees every accepted connection.
        thread = threading.Thread(target=self._serve, args=(request, client_address), daemon=True)
        self.owner._open(request, thread)
        thread.start()

    def _serve(self, request: Any, client_address: Any) -> None:
        try:
            self.process_request_thread(request, client_address)
        finally:
            self.owner._close(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client hanging up (timeouts, cancelled streams) is normal here, not worth a traceback


# --- the server --------------------------------------------------------------------------------


class TestServer:
    """A scripted OpenAI-compatible server on 127.0.0.1 in a background thread. Thread-safe."""

    __test__ = False  # not a pytest test class, despite the name

    def __init__(self, port: int = 0):
        self.port = port
        self.latency_s = 0.0
        """Added to every chat completion before it is answered."""
        self.stream_chunk_delay_s = 0.0
        """Pause between streamed chunks, so tests can cancel mid-stream."""
        self.stream_piece_chars = 4
        """Characters of content (or of tool arguments) per streamed chunk."""
        self.handler: Callable[[dict[str, Any]], Reply] | None = None
        """Chooses the reply from the request body when the queue is empty."""
        self.errors: list[BaseException] = []
        """Exceptions raised while answering (a failing handler, a bad reply); each was sent as a 500."""
        self.finished_at: dict[int, float] = {}
        """time.monotonic() when the answer to requests[i] was fully sent (the end of a stream)."""
        self._queue: deque[Reply] = deque()
        self._requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._counter = 0
        self._stopping = threading.Event()
        self._pace = threading.local()  # a Paced reply's seconds, for the thread answering it
        self._connections: dict[Any, threading.Thread] = {}
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle

    def start(self) -> TestServer:
        if self._httpd is not None:
            return self
        count_text("warm up")  # loads the tokenizer once (~0.5 s) before any timed request
        self._stopping.clear()
        self._httpd = _HTTPServer(self, ("127.0.0.1", self.port))
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, name="TestServer", daemon=True
        )
        self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        """Stop accepting, cut open connections (ending slow replies and streams), and wait."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stopping.set()
        httpd.shutdown()
        with self._lock:
            open_connections = dict(self._connections)
        for sock in open_connections:
            try:
                sock.shutdown(socket.SHUT_RDWR)  # wakes a thread blocked reading a kept-alive connection
            except OSError:
                pass
        httpd.server_close()
        deadline = time.monotonic() + timeout
        for thread in [self._thread, *open_connections.values()]:
            if thread is not None and thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))

    def __enter__(self) -> TestServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("The TestServer is not running: call start() or use it as a context manager.")
        return f"http://127.0.0.1:{self.port}/v1"

    # -- script and record

    def enqueue(self, *replies: Reply | str) -> None:
        """Queue replies, answered first in, first out; a str is shorthand for Text(str)."""
        queued = [Text(r) if isinstance(r, str) else r for r in replies]
        for reply in queued:
            if not isinstance(reply, REPLY_TYPES):
                raise TypeError(
                    f"Not a test server reply: {reply!r}; use Text, ToolCalls, Fault, Drop, Slow, ..."
                )
        with self._lock:
            self._queue.extend(queued)

    @property
    def pending(self) -> int:
        """Queued replies not yet used."""
        with self._lock:
            return len(self._queue)

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request received so far, in arrival order."""
        with self._lock:
            return list(self._requests)

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        """Only the model requests: POST /v1/chat/completions and /v1/responses."""
        return [r for r in self.requests if r.path.rstrip("/").endswith(("/chat/completions", "/responses"))]

    # -- used by the handler threads

    def _open(self, sock: Any, thread: threading.Thread) -> None:
        with self._lock:
            self._connections[sock] = thread

    def _close(self, sock: Any) -> None:
        with self._lock:
            self._connections.pop(sock, None)

    def _record(self, handler: _Handler, body: Any) -> int:
        headers = {k.lower(): v for k, v in handler.headers.items()}
        path = handler.path.split("?", 1)[0]
        record = RecordedRequest(
            handler.command,
            path,
            headers,
            body if isinstance(body, dict) else None,
            time.monotonic(),
            handler.client_address[1],
        )
        with self._lock:
            self._requests.append(record)
            return len(self._requests) - 1

    def _next_id(self) -> int:
        with self._lock:
            self._counter += 1
            return self._counter

    def _next_reply(self, body: dict[str, Any]) -> Reply:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
        if self.handler is not None:
            return self.handler(body)
        return Text("ok")

    def _wait(self, seconds: float) -> bool:
        """Sleep without blocking other requests; False when the server is stopping."""
        if seconds <= 0:
            return not self._stopping.is_set()
        return not self._stopping.wait(seconds)

    def _answer(self, handler: _Handler, body: dict[str, Any]) -> None:
        try:
            reply = self._next_reply(body)
            self._deliver(handler, body, reply)
        except OSError:
            handler.close_connection = True  # the client went away mid-answer
        except Exception as exc:  # reported to the client and kept for the test to see
            with self._lock:
                self.errors.append(exc)
            handler.send_json(500, error_body(500, f"The test server failed: {exc!r}"))

    def _deliver(self, handler: _Handler, body: dict[str, Any], reply: Reply) -> None:
        responses = handler.path.rstrip("/").endswith("/responses")
        delay, with_usage, self._pace.value = self.latency_s, True, 0.0
        while isinstance(reply, Slow | NoUsage | Paced):
            if isinstance(reply, Paced):
                self._pace.value = reply.seconds
            elif isinstance(reply, Slow):
                delay += reply.seconds
            else:
                with_usage = False
            reply = reply.reply
        if not self._wait(delay):
            handler.drop()
            return
        if isinstance(reply, Drop):
            handler.drop()
        elif isinstance(reply, Fault):
            handler.send_json(reply.status, reply.body or error_body(reply.status), fault_headers(reply))
        elif isinstance(reply, Text | ToolCalls | MalformedToolCall):
            answer = self._resolve(reply, body, with_usage)
            model = str(body.get("model") or "scripted")
            if responses:
                self._respond(handler, body, answer, model)
                return
            completion_id = f"chatcmpl-scripted-{self._next_id()}"
            if body.get("stream"):
                include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
                self._stream(
                    handler,
                    stream_chunks(answer, model, completion_id, self.stream_piece_chars, include_usage),
                )
            else:
                handler.send_json(200, completion(answer, model, completion_id))
        else:
            raise TypeError(f"Not a test server reply: {reply!r}")

    def _resolve(
        self, reply: Text | ToolCalls | MalformedToolCall, body: dict[str, Any], with_usage: bool
    ) -> Answer:
        if isinstance(reply, MalformedToolCall):
            reply = ToolCalls([(reply.name, reply.raw_arguments)])
        reply = cap_output(reply, body)
        if isinstance(reply, Text):
            calls: list[tuple[str, str, str]] = []
            finish = reply.finish_reason
        else:
            calls = [
                (f"call_{self._next_id()}", name, args if isinstance(args, str) else json.dumps(args))
                for name, args in reply.calls
            ]
            finish = "tool_calls"
        usage = usage_dict(reply, body, calls) if with_usage else None
        return Answer(reply.content, calls, finish, usage)

    def _respond(self, handler: _Handler, body: dict[str, Any], answer: Answer, model: str) -> None:
        response_id = f"resp_scripted_{self._next_id()}"
        if not body.get("stream"):
            handler.send_json(200, response_object(answer, model, response_id))
            return
        events = response_events(answer, model, response_id, self.stream_piece_chars)
        handler.start_stream()
        gap = self._gap(len(events))
        for i, event in enumerate(events):
            if i and not self._wait(gap):
                handler.drop()
                return
            # No [DONE]: a Responses stream ends with its completed event.
            handler.send_event(json.dumps(event), last=i == len(events) - 1, name=event["type"])

    def _gap(self, count: int) -> float:
        """The pause between streamed events: a Paced reply spreads its events over its seconds."""
        pace = getattr(self._pace, "value", 0.0)
        return max(self.stream_chunk_delay_s, pace / max(count - 1, 1)) if pace else self.stream_chunk_delay_s

    def _stream(self, handler: _Handler, chunks: list[dict[str, Any]]) -> None:
        handler.start_stream()
        gap = self._gap(len(chunks))
        for i, chunk in enumerate(chunks):
            if i and not self._wait(gap):
                handler.drop()  # stopping: leave the stream unterminated, as a dying server would
                return
            handler.send_event(json.dumps(chunk))
        handler.send_event("[DONE]", last=True)
