"""Models for tests (ours and our users'): no server, no network, deterministic.

`ScriptedModel` answers from a queue; `FunctionModel` calls a function that sees exactly what
was sent. Both implement the same `Model` interface as the OpenAI client, and count tokens with
the real tokenizer so usage and cost look like a real run's.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import json
from collections.abc import Awaitable, Callable
from typing import Any

from runtime.model import ModelRequest, ModelResponse, ToolCall
from runtime.tokens import count_messages, count_text, truncate_tokens

_ids = itertools.count(1)


def text(content: str) -> ModelResponse:
    """A final text answer."""
    return ModelResponse(text=content, finish_reason="stop")


def tool_call(name: str, /, **arguments: Any) -> ModelResponse:
    """One tool call."""
    return calls((name, arguments))


def calls(*items: tuple[str, dict[str, Any] | str]) -> ModelResponse:
    """Several tool calls in one turn (parallel tool calls)."""
    out = []
    for name, args in items:
        raw = args if isinstance(args, str) else json.dumps(args)
        out.append(ToolCall(id=f"call_{next(_ids)}", name=name, arguments=raw))
    return ModelResponse(tool_calls=out, finish_reason="tool_calls")


Reply = ModelResponse | str | BaseException


def _snapshot(request: ModelRequest) -> ModelRequest:
    # The loop keeps appending to its message list; record what was sent at this moment.
    return ModelRequest(**{**request.__dict__, "messages": list(request.messages)})


def _finish(reply: Reply, request: ModelRequest, name: str) -> ModelResponse:
    if isinstance(reply, BaseException):
        raise reply
    resp = text(reply) if isinstance(reply, str) else ModelResponse(**reply.__dict__)
    resp.model = resp.model or name
    if not resp.input_tokens:
        resp.input_tokens = count_messages(request.messages, request.tools, "gpt-4.1")
    cap = request.max_output_tokens
    if cap and resp.text and not resp.output_tokens and count_text(resp.text) > cap:
        # Like a real server: the answer stops at max_completion_tokens.
        resp.text, resp.finish_reason = truncate_tokens(resp.text, cap), "length"
    if not resp.output_tokens:
        resp.output_tokens = max(
            1, count_text(resp.text) + sum(count_text(c.name + c.arguments) + 3 for c in resp.tool_calls)
        )
    return resp


async def _stream_text(resp: ModelResponse, request: ModelRequest) -> None:
    if request.on_text and resp.text:
        for i in range(0, len(resp.text), 16):
            request.on_text(resp.text[i : i + 16])


class ScriptedModel:
    """Answers each call with the next scripted reply: a ModelResponse (see `text`, `tool_call`,
    `calls`), a plain string, or an exception to raise (e.g. TransientModelError)."""

    def __init__(self, replies: list[Reply] | None = None, *, name: str = "scripted", latency_s: float = 0.0):
        self.name = name
        self.replies: list[Reply] = list(replies or [])
        self.latency_s = latency_s
        self.requests: list[ModelRequest] = []

    def add(self, *replies: Reply) -> ScriptedModel:
        self.replies.extend(replies)
        return self

    async def complete(self, request: ModelRequest) -> ModelResponse:
        self.requests.append(_snapshot(request))
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        if not self.replies:
            raise AssertionError(
                f"ScriptedModel {self.name!r} ran out of replies after {len(self.requests) - 1} calls."
            )
        resp = _finish(self.replies.pop(0), request, self.name)
        await _stream_text(resp, request)
        return resp


class FunctionModel:
    """Answers with `fn(request)` (sync or async), which may return a ModelResponse, a string,
    or raise. Use it when parallel agents call in an order a queue cannot predict."""

    def __init__(
        self,
        fn: Callable[[ModelRequest], Reply | Awaitable[Reply]],
        *,
        name: str = "scripted",
        latency_s: float = 0.0,
    ):
        self.name = name
        self.fn = fn
        self.latency_s = latency_s
        self.requests: list[ModelRequest] = []

    async def complete(self, request: ModelRequest) -> ModelResponse:
        self.requests.append(_snapshot(request))
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        reply = self.fn(request)
        if inspect.isawaitable(reply):
            reply = await reply
        resp = _finish(reply, request, self.name)
        await _stream_text(resp, request)
        return resp
