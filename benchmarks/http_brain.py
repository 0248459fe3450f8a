"""A scripted brain (a function of the request, as FunctionModel takes) served by the local
test server over HTTP, on Chat Completions and on the Responses API alike: the request body is
turned back into chat messages, the brain's ModelResponse into a test-server reply."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

_ASSISTANT_ITEMS = {"function_call", "reasoning"}


def chat_messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The conversation of a Chat Completions or Responses request, as chat messages: the
    Responses items of one assistant turn (reasoning, text, calls) become one message."""
    if "messages" in body:
        return body["messages"]
    out: list[dict[str, Any]] = []
    for item in body.get("input") or []:
        kind, role = item.get("type"), item.get("role")
        if kind in _ASSISTANT_ITEMS or role == "assistant":
            if not out or out[-1]["role"] != "assistant":
                out.append({"role": "assistant", "content": "", "tool_calls": []})
            if kind == "function_call":
                out[-1]["tool_calls"].append({"id": item["call_id"], "function": {"name": item["name"]}})
            elif kind != "reasoning":
                out[-1]["content"] += _text(item.get("content"))
        elif kind == "function_call_output":
            out.append({"role": "tool", "tool_call_id": item["call_id"], "content": item.get("output", "")})
        else:
            out.append({"role": role or "user", "content": _text(item.get("content"))})
    return out


def _text(content: Any) -> str:
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return content or ""


def serve(brain: Callable[[Any], Any]) -> Callable[[dict[str, Any]], Any]:
    """A TestServer.handler that answers each request with `brain`'s answer."""
    from runtime.testserver import Text, ToolCalls

    def handle(body: dict[str, Any]):
        resp = brain(SimpleNamespace(messages=chat_messages(body)))
        if resp.tool_calls:
            return ToolCalls([(c.name, c.arguments) for c in resp.tool_calls])
        return Text(resp.text)

    return handle
