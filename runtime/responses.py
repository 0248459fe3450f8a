"""The Responses API (`client.responses`) under the same Model interface as Chat Completions.

The conversation stays in Chat Completions' shape (what the agents, the store and resume
know); it is turned into Responses input items per request. An answer's output items ride
along in the assistant message (RESPONSES_ITEMS_KEY) and go back verbatim next turn: with
store=false that is the only way the model sees its earlier reasoning (encrypted content).
runtime/client.py maps the SDK's errors for both APIs.
"""

from __future__ import annotations

from typing import Any

import httpx2
import openai

from runtime import telemetry
from runtime.counted_usage import count_usage
from runtime.model import RESPONSES_ITEMS_KEY, ModelRequest, ModelResponse, ToolCall


def to_input(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Chat Completions messages as Responses input items."""
    items: list[dict[str, Any]] = []
    for m in messages:
        role = m.get("role")
        carried = m.get(RESPONSES_ITEMS_KEY)
        if role == "assistant" and carried:
            items.extend(carried)  # reasoning, text and calls exactly as the model produced them
        elif role == "assistant":
            if m.get("content"):
                items.append({"role": "assistant", "content": m["content"]})
            for call in m.get("tool_calls") or []:
                fn = call.get("function", {})
                items.append(
                    {
                        "type": "function_call",
                        "call_id": call["id"],
                        "name": fn.get("name", ""),
                        "arguments": fn.get("arguments", ""),
                    }
                )
        elif role == "tool":
            content = m.get("content")
            output = content if isinstance(content, str) else _text_of(content)
            items.append({"type": "function_call_output", "call_id": m["tool_call_id"], "output": output})
        else:
            items.append({"role": role, "content": m.get("content") or ""})
    return items


def _text_of(content: Any) -> str:
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return "" if content is None else str(content)


def to_tools(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Chat's nested {"type": "function", "function": {...}} as Responses' flat tools. strict
    defaults to true in Responses; our schemas are not written for strict mode, so it is off
    unless a schema asks for it."""
    out = []
    for t in tools:
        fn = t.get("function", t)
        out.append(
            {
                "type": "function",
                "name": fn["name"],
                "description": fn.get("description", ""),
                "parameters": fn.get("parameters") or {"type": "object", "properties": {}},
                "strict": bool(fn.get("strict", False)),
            }
        )
    return out


def to_text_format(response_format: dict[str, Any]) -> dict[str, Any]:
    """Chat's response_format as Responses' text.format."""
    if response_format.get("type") != "json_schema":
        return {"format": {"type": response_format.get("type", "text")}}
    spec = response_format.get("json_schema", {})
    fmt: dict[str, Any] = {
        "type": "json_schema",
        "name": spec.get("name", "answer"),
        "schema": spec["schema"],
    }
    if "strict" in spec:
        fmt["strict"] = spec["strict"]
    return {"format": fmt}


def request_kwargs(name: str, request: ModelRequest) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "model": name,
        "input": to_input(request.messages),
        # Nothing kept on OpenAI's side: the reasoning comes back encrypted and we resend it.
        "store": False,
        "include": ["reasoning.encrypted_content"],
    }
    if request.tools:
        kwargs["tools"] = to_tools(request.tools)
        kwargs["parallel_tool_calls"] = request.parallel_tool_calls
    if request.response_format:
        kwargs["text"] = to_text_format(request.response_format)
    if request.max_output_tokens:
        kwargs["max_output_tokens"] = request.max_output_tokens
    return kwargs


async def complete(client: openai.AsyncOpenAI, name: str, request: ModelRequest) -> ModelResponse:
    kwargs = request_kwargs(name, request)
    if not request.stream:
        return _parse(await client.responses.create(**kwargs), name, request)
    stream = await client.responses.create(**kwargs, stream=True)
    final = None
    async with stream:
        async for event in stream:
            kind = event.type
            if kind == "response.output_text.delta" and request.on_text:
                request.on_text(event.delta)
            elif kind in ("response.completed", "response.incomplete"):
                final = event.response
            elif kind in ("response.failed", "error"):
                raise _stream_error(event)
    if final is None:
        # The stream ended without its last event: a dropped connection, worth retrying.
        raise openai.APIConnectionError(
            message="The Responses stream ended before response.completed.",
            request=stream.response.request,
        )
    # The completed event carries the whole response: the deltas were for showing it live.
    return _parse(final, name, request)


def _stream_error(event: Any) -> openai.APIStatusError:
    """A failure reported inside a 200 stream, as the status error it would have been."""
    err = getattr(event, "response", None)
    err = getattr(err, "error", None) or event
    code = getattr(err, "code", None)
    message = getattr(err, "message", None) or "The model failed while streaming."
    status = 429 if code in ("rate_limit_exceeded", "insufficient_quota") else 500
    if code in ("context_length_exceeded", "invalid_prompt"):
        status = 400
    response = httpx2.Response(status, request=httpx2.Request("POST", "https://responses.invalid/"))
    body = {"error": {"message": message, "code": code}}
    return openai.APIStatusError(message, response=response, body=body)


def _parse(response: Any, name: str, request: ModelRequest) -> ModelResponse:
    items = [item.model_dump(mode="json", exclude_none=True) for item in response.output or []]
    text: list[str] = []
    calls: list[ToolCall] = []
    for item in items:
        if item.get("type") == "message":
            text += [p.get("text", "") for p in item.get("content", []) if p.get("type") == "output_text"]
        elif item.get("type") == "function_call":
            calls.append(
                ToolCall(item.get("call_id") or item.get("id", ""), item["name"], item.get("arguments", ""))
            )
    resp = ModelResponse(
        text="".join(text),
        tool_calls=calls,
        model=response.model or name,
        finish_reason=_finish_reason(response, calls),
        output_items=items or None,
    )
    telemetry.annotate({"gen_ai.response.id": getattr(response, "id", None)})
    usage = response.usage
    if usage is None:
        count_usage(resp, request)
    else:
        resp.input_tokens = usage.input_tokens or 0
        resp.output_tokens = usage.output_tokens or 0  # reasoning included, priced as output
        in_details, out_details = usage.input_tokens_details, usage.output_tokens_details
        resp.cached_input_tokens = (getattr(in_details, "cached_tokens", 0) or 0) if in_details else 0
        resp.reasoning_tokens = (getattr(out_details, "reasoning_tokens", 0) or 0) if out_details else 0
    return resp


def _finish_reason(response: Any, calls: list[ToolCall]) -> str:
    """Chat Completions' finish_reason, which the agents read."""
    if calls:
        return "tool_calls"
    details = getattr(response, "incomplete_details", None)
    if response.status == "incomplete" and getattr(details, "reason", None) == "max_output_tokens":
        return "length"
    return "stop"
