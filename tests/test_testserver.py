"""The scripted server, driven over real HTTP by the real openai SDK."""

from __future__ import annotations

import asyncio
import json
import time

import openai
import pytest

from runtime.testserver import Drop, Fault, MalformedToolCall, NoUsage, Slow, TestServer, Text, ToolCalls
from runtime.tokens import count_messages, count_text

MESSAGES = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Say hello."}]
READ_TOOL = {
    "type": "function",
    "function": {
        "name": "read_file",
        "parameters": {"type": "object", "properties": {"path": {"type": "string"}}},
    },
}


async def ask(client: openai.AsyncOpenAI, **kwargs):
    return await client.chat.completions.create(
        model="gpt-4.1-mini", messages=kwargs.pop("messages", MESSAGES), **kwargs
    )


async def stream_chunks(client: openai.AsyncOpenAI, **kwargs) -> list:
    stream = await ask(client, stream=True, **kwargs)
    return [chunk async for chunk in stream]


def assemble_tool_calls(chunks) -> list[dict]:
    calls: dict[int, dict] = {}
    for chunk in chunks:
        for choice in chunk.choices:
            for delta in choice.delta.tool_calls or []:
                call = calls.setdefault(delta.index, {"id": None, "name": "", "arguments": ""})
                call["id"] = call["id"] or delta.id
                call["name"] += delta.function.name or ""
                call["arguments"] += delta.function.arguments or ""
    return [calls[i] for i in sorted(calls)]


async def test_text_reply_has_openai_shape_counted_usage_and_recorded_request(test_server, openai_client):
    test_server.enqueue(Text("Hello there."))

    completion = await ask(openai_client, tools=[READ_TOOL])

    assert completion.object == "chat.completion"
    assert completion.id and completion.created > 0
    assert completion.model == "gpt-4.1-mini"
    choice = completion.choices[0]
    assert (choice.message.role, choice.message.content, choice.finish_reason) == (
        "assistant",
        "Hello there.",
        "stop",
    )
    assert choice.message.tool_calls is None
    usage = completion.usage
    assert usage.prompt_tokens == count_messages(MESSAGES, [READ_TOOL], "gpt-4.1-mini")
    assert usage.completion_tokens == count_text("Hello there.")
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert usage.prompt_tokens_details.cached_tokens == 0
    assert usage.completion_tokens_details.reasoning_tokens == 0
    [request] = test_server.requests
    assert (request.method, request.path) == ("POST", "/v1/chat/completions")
    assert request.headers["authorization"] == f"Bearer {openai_client.api_key}"
    assert request.body["messages"] == MESSAGES


async def test_scripted_usage_tuple_sets_prompt_completion_cached_and_reasoning(test_server, openai_client):
    test_server.enqueue(Text("x", usage=(100, 20, 60, 5)))

    usage = (await ask(openai_client)).usage

    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (100, 20, 120)
    assert usage.prompt_tokens_details.cached_tokens == 60
    assert usage.completion_tokens_details.reasoning_tokens == 5


async def test_queue_is_fifo_then_defaults_to_ok(test_server, openai_client):
    test_server.enqueue("first", Text("second"))
    assert test_server.pending == 2

    answers = [(await ask(openai_client)).choices[0].message.content for _ in range(3)]

    assert answers == ["first", "second", "ok"]
    assert test_server.pending == 0
    with pytest.raises(TypeError, match="Not a test server reply"):
        test_server.enqueue({"content": "a dict is not a reply"})


async def test_two_parallel_tool_calls_are_parsed_by_the_sdk(test_server, openai_client):
    test_server.enqueue(ToolCalls([("read_file", {"path": "a.txt"}), ("list_files", '{"path": "."}')]))

    completion = await ask(openai_client, tools=[READ_TOOL])

    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    calls = choice.message.tool_calls
    assert [(c.type, c.function.name, json.loads(c.function.arguments)) for c in calls] == [
        ("function", "read_file", {"path": "a.txt"}),
        ("function", "list_files", {"path": "."}),
    ]
    assert all(c.id.startswith("call_") for c in calls) and calls[0].id != calls[1].id


async def test_streamed_text_deltas_assemble_to_the_scripted_text(test_server, openai_client):
    text = "Streaming arrives in several small pieces, like OpenAI's."
    test_server.enqueue(Text(text))

    chunks = await stream_chunks(openai_client)

    assert all(c.object == "chat.completion.chunk" and c.model == "gpt-4.1-mini" for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(pieces) > 5
    assert "".join(pieces) == text
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert [c.choices[0].finish_reason for c in chunks[:-1]] == [None] * (len(chunks) - 1)


async def test_streamed_tool_call_deltas_match_the_non_streamed_calls(test_server, openai_client):
    script = ToolCalls([("read_file", {"path": "docs/a long file name.md"}), ("list_files", {"path": "src"})])
    test_server.enqueue(script, script)

    message = (await ask(openai_client)).choices[0].message
    chunks = await stream_chunks(openai_client)

    streamed = assemble_tool_calls(chunks)
    assert [(c["name"], c["arguments"]) for c in streamed] == [
        (c.function.name, c.function.arguments) for c in message.tool_calls
    ]
    assert all(c["id"].startswith("call_") for c in streamed)
    deltas = [d for c in chunks for d in (c.choices[0].delta.tool_calls or [])]
    heads = [d for d in deltas if d.id]
    assert [(d.index, d.type, d.function.name) for d in heads] == [
        (0, "function", "read_file"),
        (1, "function", "list_files"),
    ]
    fragments = [d for d in deltas if not d.id]
    assert fragments and all(d.function.name is None and d.function.arguments for d in fragments)
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


async def test_usage_chunk_comes_last_with_include_usage(test_server, openai_client):
    test_server.enqueue(Text("counted"))

    chunks = await stream_chunks(openai_client, stream_options={"include_usage": True})

    assert chunks[-1].choices == []
    assert chunks[-1].usage.completion_tokens == count_text("counted")
    assert all(c.usage is None for c in chunks[:-1])


async def test_no_usage_omits_the_usage_chunk_and_field(test_server, openai_client):
    test_server.enqueue(NoUsage(Text("uncounted")), NoUsage(Text("uncounted")))

    chunks = await stream_chunks(openai_client, stream_options={"include_usage": True})
    completion = await ask(openai_client)

    assert all(c.usage is None and c.choices for c in chunks)
    assert completion.usage is None


async def test_stream_without_include_usage_sends_no_usage_chunk(test_server, openai_client):
    chunks = await stream_chunks(openai_client)

    assert all(c.choices and c.usage is None for c in chunks)


async def test_rate_limit_surfaces_with_retry_after_headers(test_server, openai_client):
    test_server.enqueue(Fault(429, retry_after=1.5, retry_after_ms=1500))

    with pytest.raises(openai.RateLimitError) as caught:
        await ask(openai_client)

    assert caught.value.response.headers["retry-after"] == "1.5"
    assert caught.value.response.headers["retry-after-ms"] == "1500"
    assert caught.value.code == "rate_limit_exceeded"


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, openai.BadRequestError),
        (401, openai.AuthenticationError),
        (404, openai.NotFoundError),
        (500, openai.InternalServerError),
    ],
)
async def test_fault_status_maps_to_the_sdk_error(test_server, openai_client, status, error):
    test_server.enqueue(Fault(status))

    with pytest.raises(error) as caught:
        await ask(openai_client, stream=True)

    assert caught.value.status_code == status
    assert caught.value.body["type"]  # OpenAI-style {"error": {...}}, unwrapped by the SDK


async def test_fault_with_custom_body_is_sent_verbatim(test_server, openai_client):
    test_server.enqueue(
        Fault(
            429,
            body={"error": {"message": "quota", "type": "insufficient_quota", "code": "insufficient_quota"}},
        )
    )

    with pytest.raises(openai.RateLimitError) as caught:
        await ask(openai_client)

    assert caught.value.code == "insufficient_quota"


async def test_drop_surfaces_as_connection_error(test_server, openai_client):
    test_server.enqueue(Drop())

    with pytest.raises(openai.APIConnectionError) as caught:
        await ask(openai_client)

    assert not isinstance(caught.value, openai.APITimeoutError)


async def test_slow_reply_past_the_client_timeout_times_out_and_stop_does_not_wait(
    test_server, openai_client
):
    test_server.enqueue(Slow(30, Text("too late")))
    started = time.monotonic()

    with pytest.raises(openai.APITimeoutError):
        await ask(openai_client, timeout=0.2)
    test_server.stop()

    assert time.monotonic() - started < 1.5


async def test_slow_reply_does_not_block_other_requests(test_server, openai_client):
    test_server.handler = lambda body: (
        Slow(30, Text("slow")) if body["messages"][-1]["content"] == "slow" else Text("fast")
    )
    slow = asyncio.create_task(ask(openai_client, messages=[{"role": "user", "content": "slow"}]))

    fast = await asyncio.wait_for(ask(openai_client, messages=[{"role": "user", "content": "fast"}]), 2)

    assert fast.choices[0].message.content == "fast"
    slow.cancel()
    with pytest.raises(asyncio.CancelledError):
        await slow


async def test_malformed_tool_call_arguments_arrive_unparseable(test_server, openai_client):
    test_server.enqueue(MalformedToolCall("read_file", '{"path": "a.txt"'))

    [call] = (await ask(openai_client)).choices[0].message.tool_calls

    assert (call.function.name, call.function.arguments) == ("read_file", '{"path": "a.txt"')
    with pytest.raises(json.JSONDecodeError):
        json.loads(call.function.arguments)


async def test_handler_chooses_each_reply_from_the_request_body(test_server, openai_client):
    test_server.handler = lambda body: Text(f"echo: {body['messages'][-1]['content']}")
    schema = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}

    words = ["alpha", "beta", "gamma", "delta"]
    completions = await asyncio.gather(
        *(
            ask(openai_client, messages=[{"role": "user", "content": w}], response_format=schema)
            for w in words
        )
    )

    assert [c.choices[0].message.content for c in completions] == [f"echo: {w}" for w in words]
    assert all(r.body["response_format"] == schema for r in test_server.requests)


async def test_failing_handler_answers_500_and_keeps_the_error(test_server, openai_client):
    test_server.handler = lambda body: 1 / 0

    with pytest.raises(openai.InternalServerError, match="ZeroDivisionError"):
        await ask(openai_client)

    assert isinstance(test_server.errors[0], ZeroDivisionError)


async def test_parallel_requests_are_served_concurrently(test_server, openai_client):
    test_server.latency_s = 0.2
    started = time.monotonic()

    completions = await asyncio.gather(*(ask(openai_client) for _ in range(8)))

    assert time.monotonic() - started < 1.0  # served one at a time this would take 1.6 s
    assert [c.choices[0].message.content for c in completions] == ["ok"] * 8
    assert len(test_server.requests) == 8


async def test_models_endpoint_lists_scripted(openai_client):
    models = await openai_client.models.list()

    assert [m.id for m in models.data] == ["scripted"]


async def test_one_kept_alive_connection_serves_replies_streams_and_faults(test_server, openai_client):
    test_server.enqueue(
        Text("a"), Text("streamed " * 20), Fault(429, retry_after=1), Text("cut " * 50), Text("b")
    )

    assert (await ask(openai_client)).choices[0].message.content == "a"
    assert len(await stream_chunks(openai_client)) > 5
    with pytest.raises(openai.RateLimitError):
        await ask(openai_client)
    stream = await ask(openai_client, stream=True)
    await stream.__anext__()
    await stream.close()  # abandoned after its first chunk
    assert (await ask(openai_client)).choices[0].message.content == "b"

    ports = [r.client_port for r in test_server.requests]
    # Every answer is framed right if one connection carried them all; the abandoned stream's
    # connection cannot be reused (its body was never read), as against OpenAI.
    assert ports[0] == ports[1] == ports[2] == ports[3]
    assert len(ports) == 5


async def test_stop_mid_stream_returns_promptly_and_breaks_the_stream(test_server, openai_client):
    test_server.stream_chunk_delay_s = 0.5
    test_server.enqueue(Text("word " * 100))
    stream = await ask(openai_client, stream=True)
    first = await stream.__anext__()
    assert first.choices[0].delta.role == "assistant"

    started = time.monotonic()
    await asyncio.to_thread(test_server.stop)
    stopped_in = time.monotonic() - started

    with pytest.raises(openai.APIConnectionError):
        async for _ in stream:
            pass
    assert stopped_in < 1.0


def test_base_url_needs_a_running_server():
    server = TestServer()
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.base_url
    with server:
        assert server.base_url == f"http://127.0.0.1:{server.port}/v1" and server.port > 0
