"""What every model (the OpenAI client, the scripted ones) takes and returns."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypedDict

RESPONSES_ITEMS_KEY = "_responses_items"
"""The assistant message key that carries a Responses API answer's output items (reasoning
with its encrypted content among them) to the next turn. Chat Completions drops it; the
conversation stays plain JSON, so persistence and resume carry it too."""


def public_message(message: dict[str, Any]) -> dict[str, Any]:
    """The message without private ('_'-prefixed) keys, as a server may see it."""
    if not any(k.startswith("_") for k in message):
        return message
    return {k: v for k, v in message.items() if not k.startswith("_")}


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: str
    """The raw JSON text the model sent; it may be malformed."""

    def to_message(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments},
        }


@dataclass
class ModelRequest:
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] | None = None
    response_format: dict[str, Any] | None = None
    """{"type": "json_schema", "json_schema": {...}} for structured output."""
    stream: bool = True
    on_text: Callable[[str], None] | None = None
    """Receives text deltas as they stream."""
    on_retry: Callable[[], None] | None = None
    """Called when a failed attempt is about to be sent again: streamed text starts over."""
    max_output_tokens: int | None = None
    parallel_tool_calls: bool = True
    api: str | None = None
    """"chat" or "responses" for a model that speaks both; None is the model's own choice."""


class TokenCounts(TypedDict):
    """The tokens of one model call, as usage accounting and the run store take them."""

    input_tokens: int
    cached_input_tokens: int
    output_tokens: int
    reasoning_tokens: int


@dataclass
class ModelResponse:
    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    reasoning_tokens: int = 0
    model: str = ""
    finish_reason: str | None = None
    usage_counted: bool = False
    """True when the server sent no usage and the tokens were counted locally."""
    output_items: list[dict[str, Any]] | None = None
    """The Responses API's output items, to send back next turn; None for Chat Completions."""

    def token_counts(self) -> TokenCounts:
        return {
            "input_tokens": self.input_tokens,
            "cached_input_tokens": self.cached_input_tokens,
            "output_tokens": self.output_tokens,
            "reasoning_tokens": self.reasoning_tokens,
        }

    def to_message(self) -> dict[str, Any]:
        """The assistant message to append to the conversation."""
        msg: dict[str, Any] = {"role": "assistant", "content": self.text or None}
        if self.tool_calls:
            msg["tool_calls"] = [c.to_message() for c in self.tool_calls]
        if self.output_items:
            msg[RESPONSES_ITEMS_KEY] = self.output_items
        return msg

    def json(self) -> Any:
        return json.loads(self.text)


class Model(Protocol):
    """One raw call to a chat model. Retries, limits, rate limits, cancellation and usage
    accounting are done around it by runtime.calls.call_model, once for every kind of model."""

    name: str

    async def complete(self, request: ModelRequest) -> ModelResponse: ...
