"""The test server's scripted replies (Text, ToolCalls, Fault, Drop, Slow, ...) and the OpenAI
chat-completion JSON each one becomes: whole completions, streamed chunks, error bodies and
headers, token usage. runtime/testserver.py serves them over HTTP and is the module to import
them from. Stdlib only (and our tokenizer), like the server.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from runtime.tokens import count_messages, count_text, truncate_tokens

# --- scripted replies -------------------------------------------------------------------------


@dataclass(frozen=True)
class Text:
    """An assistant message with text content."""

    content: str
    usage: tuple[int, ...] | None = None
    """(prompt_tokens, completion_tokens[, cached_tokens[, reasoning_tokens]]); None counts them."""
    finish_reason: str = "stop"
    """"length" imitates an answer cut off by max_tokens."""


@dataclass(frozen=True)
class ToolCalls:
    """One assistant message calling tools; several calls are parallel tool calls."""

    calls: list[tuple[str, str | dict[str, Any]]]
    """(name, arguments) pairs; a str is sent verbatim, a dict is JSON-encoded."""
    content: str | None = None
    usage: tuple[int, ...] | None = None


@dataclass(frozen=True)
class MalformedToolCall:
    """A single tool call whose arguments are not valid JSON."""

    name: str
    raw_arguments: str


@dataclass(frozen=True)
class Fault:
    """An HTTP error with an OpenAI-style body, e.g. 429 with Retry-After, 500, 400, 401, 404."""

    status: int
    retry_after: float | None = None
    """Sent as the Retry-After header, in seconds."""
    retry_after_ms: int | None = None
    """Sent as the retry-after-ms header (the OpenAI SDK reads it first)."""
    body: dict[str, Any] | None = None
    """The whole JSON body; None sends {"error": {"message", "type", "param", "code"}} for the status."""


@dataclass(frozen=True)
class Drop:
    """Close the connection without sending any response."""


@dataclass(frozen=True)
class Slow:
    """Wait `seconds` before answering with `reply`; ends early when the server stops."""

    seconds: float
    reply: Reply


@dataclass(frozen=True)
class Paced:
    """Stream `reply` spread evenly over `seconds` (a plan that takes a second to arrive)."""

    seconds: float
    reply: Reply


@dataclass(frozen=True)
class NoUsage:
    """Answer `reply` without token usage (no usage field, no usage chunk)."""

    reply: Reply


Reply = Text | ToolCalls | MalformedToolCall | Fault | Drop | Slow | NoUsage | Paced
REPLY_TYPES = (Text, ToolCalls, MalformedToolCall, Fault, Drop, Slow, NoUsage, Paced)


# --- building response payloads ---------------------------------------------------------------

_FAULT_DEFAULTS = {
    400: ("invalid_request_error", "invalid_request", "The request was invalid (scripted fault)."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided (scripted fault)."),
    403: ("invalid_request_error", "permission_denied", "You are not allowed to do this (scripted fault)."),
    404: ("invalid_request_error", "model_not_found", "The model does not exist (scripted fault)."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests (scripted fault)."),
}


def error_body(status: int, message: str | None = None) -> dict[str, Any]:
    kind, code, default = _FAULT_DEFAULTS.get(
        status, ("server_error", None, "The server had an error (scripted fault).")
    )
    return {"error": {"message": message or default, "type": kind, "param": None, "code": code}}


def fault_headers(fault: Fault) -> dict[str, str]:
    headers = {}
    if fault.retry_after is not None:
        headers["Retry-After"] = f"{fault.retry_after:g}"
    if fault.retry_after_ms is not None:
        headers["retry-after-ms"] = str(fault.retry_after_ms)
    return headers


@dataclass
class Answer:
    """A Text or ToolCalls reply resolved into what goes on the wire."""

    content: str | None
    calls: list[tuple[str, str, str]]  # (id, name, arguments)
    finish_reason: str
    usage: dict[str, Any] | None


def cap_output(reply: Text | ToolCalls, body: dict[str, Any]) -> Text | ToolCalls:
    """Honour max_completion_tokens (or max_tokens) like a real server: cut the output, finish "length"."""
    cap = body.get("max_completion_tokens") or body.get("max_tokens") or body.get("max_output_tokens")
    if not isinstance(cap, int) or reply.usage is not None:
        return reply
    model = str(body.get("model") or "gpt-4.1")
    if isinstance(reply, Text):
        cut = truncate_tokens(reply.content or "", cap, model)
        return reply if cut == reply.content else Text(cut, finish_reason="length")
    used, calls = 0, []  # type: tuple[int, list[tuple[str, str | dict[str, Any]]]]
    for name, args in reply.calls:
        raw = args if isinstance(args, str) else json.dumps(args)
        room = max(cap - used - count_text(name, model), 0)
        calls.append((name, truncate_tokens(raw, room, model)))
        used += count_text(name, model) + count_text(str(calls[-1][1]), model)
    return ToolCalls(calls, content=reply.content)


def usage_dict(
    reply: Text | ToolCalls, body: dict[str, Any], calls: list[tuple[str, str, str]]
) -> dict[str, Any]:
    if reply.usage is not None:
        prompt, completion, cached, reasoning = (*reply.usage, 0, 0)[:4]
    else:
        model = str(body.get("model") or "gpt-4.1")
        raw = body.get("messages") if "input" not in body else _input_as_messages(body["input"])
        messages: list[dict[str, Any]] = raw if isinstance(raw, list) else []
        prompt = count_messages(messages, body.get("tools") or None, model)
        completion = count_text(reply.content or "", model) + sum(
            count_text(n + a, model) for _, n, a in calls
        )
        cached = reasoning = 0
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": reasoning, "audio_tokens": 0},
    }


def _input_as_messages(items: Any) -> list[dict[str, Any]]:
    """Responses input, counted as the chat messages it stands for."""
    if isinstance(items, str):
        return [{"role": "user", "content": items}]
    out = []
    for item in items if isinstance(items, list) else []:
        text = item.get("content") or item.get("output") or item.get("arguments") or ""
        if isinstance(text, list):
            text = " ".join(p.get("text", "") for p in text if isinstance(p, dict))
        out.append({"role": item.get("role", "assistant"), "content": str(text)})
    return out


def completion(answer: Answer, model: str, completion_id: str) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": answer.content, "refusal": None}
    if answer.calls:
        message["tool_calls"] = [
            {"id": cid, "type": "function", "function": {"name": name, "arguments": args}}
            for cid, name, args in answer.calls
        ]
    data: dict[str, Any] = {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": "fp_scripted",
        "choices": [
            {"index": 0, "message": message, "logprobs": None, "finish_reason": answer.finish_reason}
        ],
    }
    if answer.usage is not None:
        data["usage"] = answer.usage
    return data


def _pieces(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def stream_chunks(
    answer: Answer, model: str, completion_id: str, piece_chars: int, include_usage: bool
) -> list[dict]:
    """The chunk objects OpenAI streams for one answer, in order (without the final [DONE])."""
    created = int(time.time())
    # With include_usage OpenAI sends "usage": null on every chunk but the last.
    extra = {"usage": None} if include_usage else {}

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": "fp_scripted",
            "choices": [choice],
            **extra,
        }

    first_content = "" if answer.content is not None else None
    chunks = [chunk({"role": "assistant", "content": first_content, "refusal": None})]
    chunks += [chunk({"content": p}) for p in _pieces(answer.content or "", piece_chars)]
    for index, (cid, name, args) in enumerate(answer.calls):
        fragments = _pieces(args, piece_chars) or [""]
        head = {
            "index": index,
            "id": cid,
            "type": "function",
            "function": {"name": name, "arguments": fragments[0]},
        }
        chunks.append(chunk({"tool_calls": [head]}))
        chunks += [
            chunk({"tool_calls": [{"index": index, "function": {"arguments": f}}]}) for f in fragments[1:]
        ]
    chunks.append(chunk({}, answer.finish_reason))
    if include_usage and answer.usage is not None:
        last = chunk({})
        last["choices"] = []
        last["usage"] = answer.usage
        chunks.append(last)
    return chunks


# --- the Responses API (/v1/responses) --------------------------------------------------------


def responses_usage(usage: dict[str, Any] | None) -> dict[str, Any] | None:
    """Chat usage as the Responses API names it."""
    if usage is None:
        return None
    return {
        "input_tokens": usage["prompt_tokens"],
        "input_tokens_details": {"cached_tokens": usage["prompt_tokens_details"]["cached_tokens"]},
        "output_tokens": usage["completion_tokens"],
        "output_tokens_details": {"reasoning_tokens": usage["completion_tokens_details"]["reasoning_tokens"]},
        "total_tokens": usage["total_tokens"],
    }


def response_items(answer: Answer, response_id: str) -> list[dict[str, Any]]:
    """The output items: an encrypted reasoning item when reasoning tokens were scripted, then
    the message, then one function_call per call."""
    items: list[dict[str, Any]] = []
    usage = answer.usage or {}
    if (usage.get("completion_tokens_details") or {}).get("reasoning_tokens"):
        items.append(
            {
                "type": "reasoning",
                "id": f"rs_{response_id}",
                "summary": [],
                "encrypted_content": f"enc:{response_id}",
            }
        )
    if answer.content:
        items.append(
            {
                "type": "message",
                "id": f"msg_{response_id}",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": answer.content, "annotations": []}],
            }
        )
    for cid, name, args in answer.calls:
        items.append(
            {
                "type": "function_call",
                "id": f"fc_{cid}",
                "call_id": cid,
                "name": name,
                "arguments": args,
                "status": "completed",
            }
        )
    return items


def response_object(answer: Answer, model: str, response_id: str, done: bool = True) -> dict[str, Any]:
    length = answer.finish_reason == "length"
    return {
        "id": response_id,
        "object": "response",
        "created_at": int(time.time()),
        "model": model,
        "status": ("incomplete" if length else "completed") if done else "in_progress",
        "incomplete_details": {"reason": "max_output_tokens"} if length and done else None,
        "output": response_items(answer, response_id) if done else [],
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": responses_usage(answer.usage) if done else None,
    }


def response_events(answer: Answer, model: str, response_id: str, piece_chars: int) -> list[dict[str, Any]]:
    """The typed events OpenAI streams for one response, in order."""
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": response_object(answer, model, response_id, done=False)}
    ]
    for index, item in enumerate(response_items(answer, response_id)):
        opened = {**item, "status": "in_progress"}
        if item["type"] == "message":
            opened["content"] = []
        if item["type"] == "function_call":
            opened["arguments"] = ""
        events.append({"type": "response.output_item.added", "output_index": index, "item": opened})
        if item["type"] == "message":
            events += [
                {
                    "type": "response.output_text.delta",
                    "item_id": item["id"],
                    "output_index": index,
                    "content_index": 0,
                    "delta": p,
                    "logprobs": [],
                }
                for p in _pieces(answer.content or "", piece_chars)
            ]
        if item["type"] == "function_call":
            events += [
                {
                    "type": "response.function_call_arguments.delta",
                    "item_id": item["id"],
                    "output_index": index,
                    "delta": p,
                }
                for p in _pieces(item["arguments"], piece_chars)
            ]
        events.append({"type": "response.output_item.done", "output_index": index, "item": item})
    final = response_object(answer, model, response_id)
    events.append(
        {
            "type": "response.incomplete" if final["status"] == "incomplete" else "response.completed",
            "response": final,
        }
    )
    return [{**e, "sequence_number": i} for i, e in enumerate(events)]
