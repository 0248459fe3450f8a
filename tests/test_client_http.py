"""runtime.client + runtime.calls over real HTTP: the real openai SDK against the scripted
TestServer on 127.0.0.1. tests/test_runtime.py pins the same behaviours with scripted models;
these prove them end to end (SDK error mapping, headers, timeouts, streams, sockets)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator

import pytest

from runtime.calls import call_model
from runtime.client import OpenAIModel
from runtime.config import LimitSettings, ModelSettings, RetrySettings, Settings
from runtime.context import RunContext
from runtime.errors import (
    CircuitOpenError,
    ConfigError,
    ModelError,
    RunCancelled,
    TransientModelError,
    UsageLimitExceeded,
)
from runtime.model import ModelRequest
from runtime.testserver import (
    Drop,
    Fault,
    MalformedToolCall,
    NoUsage,
    Slow,
    TestServer,
    Text,
    ToolCalls,
)
from runtime.testserver_replies import error_body
from tests.server_fixtures import TEST_API_KEY

HELLO = [{"role": "user", "content": "hello"}]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": name,
            "description": f"{name} a path",
            "parameters": {
                "type": "object",
                "properties": {"path": {"type": "string"}},
                "required": ["path"],
            },
        },
    }
    for name in ("read_file", "list_files")
]


def ask(stream: bool = False, **kw) -> ModelRequest:
    return ModelRequest(messages=HELLO, stream=stream, **kw)


@pytest.fixture
def make_ctx(workspace) -> Iterator[Callable[..., RunContext]]:
    """RunContext factory with fast retries; each context's log sink is closed afterwards."""
    made: list[RunContext] = []

    def make(retry: dict | None = None, **settings_kw) -> RunContext:
        fast = {"initial_delay_s": 0.01, "max_delay_s": 0.05, **(retry or {})}
        ctx = RunContext.create(workspace, Settings(retry=RetrySettings(**fast), **settings_kw))
        made.append(ctx)
        return ctx

    yield make
    for ctx in made:
        ctx.events.close()


@pytest.fixture(params=["chat", "responses"])
async def make_model(test_server: TestServer, request) -> AsyncIterator[Callable[..., OpenAIModel]]:
    """OpenAIModel factory pointed at the test server, once per API (one contract for both);
    each client is closed afterwards."""
    made: list[OpenAIModel] = []

    def make(
        name: str = "scripted", *, api_key: str | None = TEST_API_KEY, timeout_s: float = 5.0
    ) -> OpenAIModel:
        model = OpenAIModel(
            name, base_url=test_server.base_url, api_key=api_key, timeout_s=timeout_s, api=request.param
        )
        made.append(model)
        return model

    yield make
    for model in made:
        await model.close()


def events(ctx: RunContext) -> list[dict]:
    return [
        json.loads(line) for line in (ctx.workspace / ".shunter/logs/events.jsonl").read_text().splitlines()
    ]


def gaps(server: TestServer) -> list[float]:
    """Seconds between consecutive chat requests as the server received them."""
    times = [r.received_at for r in server.chat_requests]
    return [b - a for a, b in zip(times, times[1:], strict=False)]


# --- retries and Retry-After ----------------------------------------------------------------------


async def test_429_with_retry_after_1_waits_about_a_second_then_succeeds(test_server, make_ctx, make_model):
    ctx = make_ctx()
    test_server.enqueue(Fault(429, retry_after=1), Text("made it"))
    started = time.monotonic()
    resp = await call_model(ctx, make_model(), ask())
    elapsed = time.monotonic() - started
    assert resp.text == "made it"
    assert 0.9 <= elapsed <= 1.8
    assert len(test_server.chat_requests) == 2 and 0.9 <= gaps(test_server)[0] <= 1.8
    (retry,) = [e for e in events(ctx) if e["event"] == "model.retry"]
    assert retry["data"]["delay_s"] == pytest.approx(1.0) and "429" in retry["data"]["reason"]


async def test_retry_after_ms_is_honoured(test_server, make_ctx, make_model):
    test_server.enqueue(Fault(429, retry_after_ms=300), Text("ok"))
    resp = await call_model(make_ctx(), make_model(), ask())
    assert resp.text == "ok"
    # The backoff alone would be 0.01-0.05 s: a 0.3 s gap is the server's requested pause.
    assert 0.28 <= gaps(test_server)[0] <= 0.8


async def test_retry_after_above_the_cap_surfaces_at_once_without_sleeping(test_server, make_ctx, make_model):
    test_server.enqueue(Fault(429, retry_after=30), Text("never sent"))
    started = time.monotonic()
    with pytest.raises(ModelError, match="429") as err:
        await call_model(make_ctx(retry={"max_retry_after_s": 2}), make_model(), ask())
    assert time.monotonic() - started < 0.5
    assert len(test_server.chat_requests) == 1 and test_server.pending == 1
    assert "30 s" in str(err.value) and "max_retry_after_s" in str(err.value)  # says why it did not wait


async def test_400_is_not_retried(test_server, make_ctx, make_model):
    test_server.enqueue(Fault(400), Text("never sent"))
    with pytest.raises(ModelError, match=r"refused the request \(400\)") as err:
        await call_model(make_ctx(), make_model(), ask())
    assert not isinstance(err.value, TransientModelError)
    assert len(test_server.chat_requests) == 1 and test_server.pending == 1


@pytest.mark.parametrize(
    "body",
    [
        {  # OpenAI, both APIs
            "error": {
                "message": "This model's maximum context length is 128000 tokens. However, your messages "
                "resulted in 130512 tokens.",
                "type": "invalid_request_error",
                "param": "messages",
                "code": "context_length_exceeded",
            }
        },
        {"object": "error", "message": "This model's maximum context length is 8192 tokens.", "code": 400},
        {
            "error": {
                "code": 400,
                "message": "request exceeds the available context size",
                "type": "exceed_context_size_error",
            }
        },
    ],
    ids=["openai", "vllm", "llama.cpp"],
)
async def test_context_too_long_says_how_to_shorten_it(test_server, make_ctx, make_model, body):
    test_server.enqueue(Fault(400, body=body), Text("never sent"))
    with pytest.raises(ModelError) as err:
        await call_model(make_ctx(), make_model(), ask())
    message = str(err.value)
    assert "no longer fits the context window of model" in message and "tools.max_result_chars" in message
    assert not isinstance(err.value, TransientModelError)
    assert len(test_server.chat_requests) == 1 and test_server.pending == 1  # not retried


async def test_401_says_the_api_key_was_rejected(test_server, make_ctx, make_model):
    test_server.enqueue(Fault(401))
    with pytest.raises(ModelError) as err:
        await call_model(make_ctx(), make_model(), ask())
    assert "rejected the API key (401); check OPENAI_API_KEY" in str(err.value)
    assert len(test_server.chat_requests) == 1


async def test_404_says_the_model_was_not_found(test_server, make_ctx, make_model):
    test_server.enqueue(Fault(404))
    with pytest.raises(ModelError) as err:
        await call_model(make_ctx(), make_model("no-such-model"), ask())
    message = str(err.value)
    assert "Model 'no-such-model' was not found" in message and "SHUNTER_MODEL" in message
    assert len(test_server.chat_requests) == 1


async def test_connection_drop_is_retried_then_succeeds(test_server, make_ctx, make_model):
    ctx = make_ctx()
    test_server.enqueue(Drop(), Text("after the drop"))
    resp = await call_model(ctx, make_model(), ask())
    assert resp.text == "after the drop" and len(test_server.chat_requests) == 2
    (retry,) = [e for e in events(ctx) if e["event"] == "model.retry"]
    assert retry["data"]["reason"].startswith("The connection to the model server")


async def test_reply_slower_than_the_client_timeout_is_retried_then_succeeds(
    test_server, make_ctx, make_model
):
    ctx = make_ctx()
    test_server.enqueue(Slow(3.0, Text("too late")), Text("in time"))
    started = time.monotonic()
    resp = await call_model(ctx, make_model(timeout_s=0.3), ask())
    assert resp.text == "in time" and len(test_server.chat_requests) == 2
    assert time.monotonic() - started < 1.5  # gave up on the slow reply at the timeout
    assert any("timed out" in e["data"]["reason"] for e in events(ctx) if e["event"] == "model.retry")


async def test_429_storm_under_parallel_calls_all_succeed(test_server, make_ctx, make_model):
    ctx = make_ctx(retry={"breaker_threshold": 10})
    model = make_model()
    test_server.enqueue(*[Fault(429, retry_after=0.1)] * 4)  # then the default "ok"
    results = await asyncio.wait_for(asyncio.gather(*(call_model(ctx, model, ask()) for _ in range(4))), 5)
    assert [r.text for r in results] == ["ok"] * 4
    assert len(test_server.chat_requests) == 8
    assert ctx.usage.total.requests == 4
    assert len([e for e in events(ctx) if e["event"] == "model.retry"]) == 4


# --- circuit breaker ------------------------------------------------------------------------------


async def test_500s_open_the_breaker_and_later_calls_fail_fast_without_a_request(
    test_server, make_ctx, make_model
):
    ctx = make_ctx(retry={"breaker_threshold": 3, "breaker_cooldown_s": 60, "max_retry_after_s": 5})
    model = make_model()
    test_server.enqueue(*[Fault(500)] * 3)
    with pytest.raises(ModelError):
        await call_model(ctx, model, ask())
    assert len(test_server.chat_requests) == 3 and ctx.breaker.state == "open"
    for _ in range(2):
        started = time.monotonic()
        with pytest.raises(CircuitOpenError, match=r"next attempt is allowed in \d+\.\d s"):
            await call_model(ctx, model, ask())
        assert time.monotonic() - started < 0.1
    assert len(test_server.chat_requests) == 3  # nothing more reached the server


# --- limits and cancellation ----------------------------------------------------------------------


async def test_limit_stops_before_the_call_that_would_exceed_it(test_server, make_ctx, make_model):
    ctx = make_ctx(limits=LimitSettings(max_requests=1))
    model = make_model()
    await call_model(ctx, model, ask())
    with pytest.raises(UsageLimitExceeded, match="max_requests"):
        await call_model(ctx, model, ask())
    assert len(test_server.chat_requests) == 1

    small = make_ctx(limits=LimitSettings(max_tokens=20))
    big = ModelRequest(messages=[{"role": "user", "content": "word " * 100}], stream=False)
    with pytest.raises(UsageLimitExceeded, match="max_tokens"):
        await call_model(small, model, big)
    assert len(test_server.chat_requests) == 1  # the counted input alone was over: no request


async def test_pre_cancelled_token_makes_no_request(test_server, make_ctx, make_model):
    ctx = make_ctx()
    ctx.cancel.cancel("user pressed Ctrl-C")
    with pytest.raises(RunCancelled):
        await call_model(ctx, make_model(), ask(stream=True))
    assert test_server.requests == []


def open_connections(server: TestServer) -> int:
    # TestServer has no public view of its sockets; each one is dropped when its handler ends.
    with server._lock:
        return len(server._connections)


async def test_cancel_mid_stream_ends_the_request_promptly_and_closes_the_connection(
    test_server, make_ctx, make_model
):
    ctx = make_ctx()
    test_server.stream_chunk_delay_s = 0.05
    test_server.enqueue(Text("x" * 400))  # 100 chunks of 4 characters: about 5 s of streaming
    streaming = asyncio.Event()
    deltas: list[str] = []

    def on_text(delta: str) -> None:
        deltas.append(delta)
        streaming.set()

    task = asyncio.create_task(call_model(ctx, make_model(), ask(stream=True, on_text=on_text)))
    await asyncio.wait_for(streaming.wait(), 2)
    cancelled_at = time.monotonic()
    ctx.cancel.cancel("test")
    with pytest.raises(RunCancelled):
        await task
    assert time.monotonic() - cancelled_at < 0.2
    assert 0 < len(deltas) < 20

    deadline = time.monotonic() + 1.0  # the server notices on its next write or two (50 ms apart)
    while open_connections(test_server) and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert open_connections(test_server) == 0
    assert len(test_server.chat_requests) == 1


# --- responses: tool calls, usage, cost -----------------------------------------------------------


async def test_streaming_and_non_streaming_assemble_the_same_tool_calls_and_usage(
    test_server, make_ctx, make_model
):
    calls = [("read_file", {"path": "src/app.py"}), ("list_files", {"path": "docs/guides"})]
    test_server.enqueue(ToolCalls(calls, usage=(120, 30, 64, 8)), ToolCalls(calls, usage=(120, 30, 64, 8)))
    ctx, model = make_ctx(), make_model()
    plain = await call_model(ctx, model, ask(stream=False, tools=TOOLS))
    streamed = await call_model(ctx, model, ask(stream=True, tools=TOOLS))

    expected = [(name, json.dumps(args)) for name, args in calls]
    for resp in (plain, streamed):
        assert [(c.name, c.arguments) for c in resp.tool_calls] == expected
        assert all(c.id.startswith("call_") for c in resp.tool_calls)
        assert resp.finish_reason == "tool_calls"
        usage = (resp.input_tokens, resp.output_tokens, resp.cached_input_tokens, resp.reasoning_tokens)
        assert usage == (120, 30, 64, 8) and not resp.usage_counted
    plain_body, streamed_body = (r.body for r in test_server.chat_requests)
    assert plain_body["parallel_tool_calls"] is True and "stream" not in plain_body
    assert streamed_body["stream"] is True
    if model.api == "chat":  # Responses streams carry usage in response.completed unasked
        assert streamed_body["stream_options"] == {"include_usage": True}
    assert ctx.usage.total.input_tokens == 240 and ctx.usage.total.output_tokens == 60


@pytest.mark.parametrize("stream", [False, True])
async def test_missing_usage_is_counted_locally(test_server, make_ctx, make_model, stream):
    ctx = make_ctx()
    test_server.enqueue(NoUsage(Text("The answer is forty-two.")))
    resp = await call_model(ctx, make_model(), ask(stream=stream))
    assert resp.text == "The answer is forty-two."
    assert resp.usage_counted is True and resp.input_tokens > 0 and resp.output_tokens > 0
    assert ctx.usage.total.output_tokens == resp.output_tokens
    (logged,) = [e["data"] for e in events(ctx) if e["event"] == "model.response"]
    assert logged["usage_counted"] is True


@pytest.mark.parametrize("stream", [False, True])
async def test_malformed_tool_call_reaches_the_caller_as_the_raw_arguments(
    test_server, make_ctx, make_model, stream
):
    raw = '{"path": "a.txt", "mode": '
    test_server.enqueue(MalformedToolCall("read_file", raw))
    resp = await call_model(make_ctx(), make_model(), ask(stream=stream, tools=TOOLS))
    (call,) = resp.tool_calls
    assert (call.name, call.arguments) == ("read_file", raw)  # the agent loop reports the bad JSON


async def test_cost_comes_from_the_price_table_for_a_priced_model_and_is_none_otherwise(
    test_server, make_ctx, make_model
):
    priced = make_ctx()
    test_server.enqueue(Text("priced", usage=(1000, 500, 400)))
    await call_model(priced, make_model("gpt-4.1-mini"), ask())
    # gpt-4.1-mini: $0.40 input, $0.10 cached input, $1.60 output per 1M tokens.
    expected = (600 * 0.40 + 400 * 0.10 + 500 * 1.60) / 1e6
    assert priced.usage.total.cost_usd == pytest.approx(expected)
    assert [e["data"]["cost_usd"] for e in events(priced) if e["event"] == "model.response"] == [
        pytest.approx(expected)
    ]
    assert test_server.chat_requests[0].body["model"] == "gpt-4.1-mini"

    unpriced = make_ctx()
    test_server.enqueue(Text("unpriced", usage=(1000, 500)))
    await call_model(unpriced, make_model("my-local-llama"), ask())
    assert unpriced.usage.total.cost_usd is None
    assert unpriced.usage.total.unpriced_models == ["my-local-llama"]


# --- keys and configuration -----------------------------------------------------------------------


async def test_no_api_key_appears_in_the_event_log(test_server, make_ctx, make_model):
    key = "sk-proj-Q7vRt2LmXw9KpZs4NbYc8HdJf3GaUe6T"
    ctx = make_ctx(model=ModelSettings(api_key=key))
    model = make_model(api_key=key)
    echo = {"error": {"message": f"Incorrect API key provided: {key}.", "type": "invalid_request_error"}}
    test_server.enqueue(
        Fault(429, retry_after=0.01, body=error_body(429, f"Slow down, {key}")),  # retried: reason logged
        Text("ok"),
        Fault(401, body=echo),
        Fault(400, body=error_body(400, f"Bad header Authorization: Bearer {key}")),
    )
    assert (await call_model(ctx, model, ask())).text == "ok"
    for _ in range(2):
        with pytest.raises(ModelError):
            await call_model(ctx, model, ask())

    # The key was really sent, so a leak would have had something to leak.
    assert all(r.headers["authorization"] == f"Bearer {key}" for r in test_server.chat_requests)
    log = (ctx.workspace / ".shunter/logs/events.jsonl").read_text()
    kinds = [e["event"] for e in events(ctx)]
    assert kinds.count("model.retry") == 1 and kinds.count("model.error") == 2
    assert key not in log and key[8:20] not in log
    assert "[REDACTED]" in log


def test_missing_key_for_the_default_endpoint_is_a_clear_config_error():
    with pytest.raises(ConfigError, match="OPENAI_BASE_URL") as err:
        OpenAIModel("gpt-4.1", base_url=None, api_key=None)
    assert "OPENAI_API_KEY" in str(err.value) and "\n" not in str(err.value)


async def test_a_local_server_needs_no_key(test_server, make_ctx, make_model):
    resp = await call_model(make_ctx(), make_model(api_key=None), ask())
    assert resp.text == "ok" and len(test_server.chat_requests) == 1


async def test_an_exhausted_quota_is_not_retried(test_server, make_ctx, make_model):
    from runtime.testserver import Fault
    from runtime.testserver_replies import error_body

    body = error_body(429, "You exceeded your current quota")
    body["error"]["code"] = "insufficient_quota"
    test_server.enqueue(Fault(429, body=body), "never")
    with pytest.raises(ModelError, match="no quota left"):
        await call_model(
            make_ctx(), make_model(), ModelRequest(messages=[{"role": "user", "content": "hi"}], stream=False)
        )
    assert len(test_server.chat_requests) == 1
