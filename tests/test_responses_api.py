"""What only the Responses API does, end to end through the real SDK and the test server:
request shapes (flat tools, text.format, store=false), reasoning carried to the next turn,
and how `api` is chosen. The shared contract (errors, retries, streams, cancellation) runs on
both APIs in tests/test_client_http.py."""

from __future__ import annotations

import json

import pytest

from runtime.calls import call_model
from runtime.client import OpenAIModel, resolve_api
from runtime.config import Settings, load_settings
from runtime.context import RunContext
from runtime.errors import ConfigError
from runtime.model import RESPONSES_ITEMS_KEY, ModelRequest
from runtime.testserver import Text, ToolCalls
from tests.server_fixtures import TEST_API_KEY

TOOL = {
    "type": "function",
    "function": {
        "name": "read_file",
        "description": "read",
        "parameters": {"type": "object", "properties": {}},
    },
}
FORMAT = {
    "type": "json_schema",
    "json_schema": {"name": "plan", "schema": {"type": "object"}, "strict": True},
}


@pytest.fixture
async def models(test_server):
    made = {
        api: OpenAIModel("gpt-5-mini", base_url=test_server.base_url, api_key=TEST_API_KEY, api=api)
        for api in ("chat", "responses")
    }
    yield made
    for m in made.values():
        await m.close()


@pytest.fixture
def run_ctx(workspace):
    ctx = RunContext.create(workspace, Settings())
    yield ctx
    ctx.events.close()


async def test_the_request_speaks_responses_shapes(test_server, models, run_ctx):
    request = ModelRequest(
        messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "plan"}],
        tools=[TOOL],
        response_format=FORMAT,
        stream=False,
        max_output_tokens=500,
    )
    await call_model(run_ctx, models["responses"], request)
    (sent,) = test_server.chat_requests
    body = sent.body
    assert sent.path == "/v1/responses"
    assert body["store"] is False and body["include"] == ["reasoning.encrypted_content"]
    assert body["tools"] == [
        {
            "type": "function",
            "name": "read_file",
            "description": "read",
            "parameters": {"type": "object", "properties": {}},
            "strict": False,
        }
    ]
    assert body["text"] == {
        "format": {"type": "json_schema", "name": "plan", "schema": {"type": "object"}, "strict": True}
    }
    assert body["max_output_tokens"] == 500 and "messages" not in body
    assert body["input"][0] == {"role": "system", "content": "be brief"}


@pytest.mark.parametrize("stream", [False, True])
async def test_reasoning_items_go_back_next_turn_and_chat_drops_them(test_server, models, run_ctx, stream):
    test_server.enqueue(ToolCalls([("read_file", {"path": "a"})], usage=(100, 40, 60, 25)), Text("done"))
    messages = [{"role": "user", "content": "read a"}]
    resp = await call_model(
        run_ctx, models["responses"], ModelRequest(messages=messages, tools=[TOOL], stream=stream)
    )
    assert (resp.reasoning_tokens, resp.cached_input_tokens, resp.output_tokens) == (25, 60, 40)
    msg = resp.to_message()
    kinds = [item["type"] for item in msg[RESPONSES_ITEMS_KEY]]
    assert kinds == ["reasoning", "function_call"]
    messages = json.loads(json.dumps([*messages, msg]))  # the conversation as the store keeps it
    call_id = resp.tool_calls[0].id
    messages.append({"role": "tool", "tool_call_id": call_id, "content": "contents of a"})
    await call_model(
        run_ctx, models["responses"], ModelRequest(messages=messages, tools=[TOOL], stream=stream)
    )
    second = test_server.chat_requests[1].body["input"]
    assert second[1]["type"] == "reasoning" and second[1]["encrypted_content"].startswith("enc:")
    assert second[2]["type"] == "function_call" and second[2]["call_id"] == call_id
    assert second[3] == {"type": "function_call_output", "call_id": call_id, "output": "contents of a"}
    assert run_ctx.usage.total.reasoning_tokens == 25

    # The same conversation over Chat Completions: the private key never reaches the server.
    await call_model(run_ctx, models["chat"], ModelRequest(messages=messages, tools=[TOOL], stream=stream))
    assert RESPONSES_ITEMS_KEY not in json.dumps(test_server.chat_requests[2].body)


async def test_streamed_text_arrives_as_deltas(test_server, models, run_ctx):
    test_server.enqueue(Text("streamed over responses"))
    deltas: list[str] = []
    resp = await call_model(
        run_ctx,
        models["responses"],
        ModelRequest(messages=[{"role": "user", "content": "hi"}], on_text=deltas.append),
    )
    assert resp.text == "streamed over responses" and "".join(deltas) == resp.text and len(deltas) > 1


async def test_a_capped_answer_finishes_with_length(test_server, models, run_ctx):
    test_server.enqueue(Text("word " * 200))
    resp = await call_model(
        run_ctx,
        models["responses"],
        ModelRequest(messages=[{"role": "user", "content": "hi"}], max_output_tokens=20),
    )
    assert resp.finish_reason == "length" and len(resp.text) < 200


def test_auto_is_responses_on_openai_and_chat_elsewhere():
    assert resolve_api("auto", None) == "responses"
    assert resolve_api("auto", "https://api.openai.com/v1/") == "responses"
    assert resolve_api("auto", "http://localhost:11434/v1") == "chat"
    with pytest.raises(ConfigError, match="use 'chat', 'responses' or 'auto'"):
        resolve_api("grpc", None)


def test_api_comes_from_config_env_and_agents(workspace):
    (workspace / ".shunter").mkdir()
    (workspace / ".shunter/config.toml").write_text(
        '[model]\napi = "chat"\n[agents.coder]\napi = "responses"\n'
    )
    settings = load_settings(workspace, env={})
    assert settings.model.api == "chat" and settings.agents["coder"].api == "responses"
    assert load_settings(workspace, env={"SHUNTER_API": "responses"}).model.api == "responses"
    with pytest.raises(ConfigError, match=r"Invalid setting model\.api"):
        load_settings(workspace, env={"SHUNTER_API": "grpc"})


async def test_an_agents_api_override_reaches_the_request(test_server, models, workspace):
    from runtime.config import AgentOverride

    ctx = RunContext.create(workspace, Settings(agents={"coder": AgentOverride(api="responses")}))
    try:
        await call_model(
            ctx.for_subtask("s1", "coder"),
            models["chat"],
            ModelRequest(messages=[{"role": "user", "content": "hi"}]),
        )
        await call_model(
            ctx.for_subtask("s2", "writer"),
            models["chat"],
            ModelRequest(messages=[{"role": "user", "content": "hi"}]),
        )
    finally:
        ctx.events.close()
    assert [r.path for r in test_server.chat_requests] == ["/v1/responses", "/v1/chat/completions"]


@pytest.mark.parametrize("room", [20, 10])
async def test_a_tight_budget_never_asks_responses_for_fewer_than_16_output_tokens(
    test_server, models, workspace, room
):
    """The Responses API refuses max_output_tokens below 16: a call the budget leaves less room
    for is not made (a limit stop), one with 16 or more asks for exactly what is left."""
    from runtime.config import LimitSettings
    from runtime.errors import UsageLimitExceeded
    from runtime.tokens import count_messages

    request = ModelRequest(messages=[{"role": "user", "content": "hello"}], stream=False)
    sent = count_messages(request.messages, None, "gpt-5-mini")
    ctx = RunContext.create(workspace, Settings(limits=LimitSettings(max_tokens=sent + room)))
    try:
        test_server.enqueue(Text("hi"))
        if room < 16:
            with pytest.raises(UsageLimitExceeded):
                await call_model(ctx, models["responses"], request)
            assert test_server.requests == []
        else:
            await call_model(ctx, models["responses"], request)
            assert test_server.requests[-1].body["max_output_tokens"] == room
    finally:
        ctx.events.close()
