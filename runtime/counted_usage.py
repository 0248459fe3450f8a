"""Usage for a response whose server sent none: counted with the tokenizer, for both APIs."""

from __future__ import annotations

from runtime.model import ModelRequest, ModelResponse
from runtime.tokens import count_messages, count_text


def count_usage(resp: ModelResponse, request: ModelRequest) -> None:
    """The server sent no usage: count what we sent and what came back."""
    resp.usage_counted = True
    resp.input_tokens = count_messages(request.messages, request.tools, resp.model or "gpt-4.1")
    resp.output_tokens = count_text(resp.text) + sum(
        count_text(c.name + c.arguments) + 3 for c in resp.tool_calls
    )
