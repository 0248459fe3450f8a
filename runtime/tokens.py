"""Offline token counting (bpe-openai ships the o200k and cl100k data; tiktoken downloads)."""

from __future__ import annotations

import functools
import json
from typing import Any

# Chat formatting overhead per message and per request, as OpenAI's cookbook counts it.
_PER_MESSAGE = 3
_PER_REQUEST = 3


@functools.cache
def _encoding(name: str):
    import bpe_openai

    return bpe_openai.get_encoding(name)


def encoding_name(model: str) -> str:
    m = model.split("/")[-1]
    return (
        "cl100k_base"
        if m.startswith(("gpt-4-", "gpt-3.5", "gpt-4")) and not m.startswith(("gpt-4o", "gpt-4.1"))
        else "o200k_base"
    )


_PIECE = 100_000
"""Characters encoded at a time: the tokenizer refuses very long inputs."""


def _tokens(text: str, model: str) -> list[int]:
    # encode_ordinary: text from files and web pages may contain "<|endoftext|>"; it is text here.
    enc = _encoding(encoding_name(model))
    if len(text) <= _PIECE:
        return enc.encode_ordinary(text)
    out: list[int] = []
    for i in range(0, len(text), _PIECE):
        out += enc.encode_ordinary(text[i : i + _PIECE])
    return out


def count_text(text: str, model: str = "gpt-4.1") -> int:
    if not text:
        return 0
    return len(_tokens(text, model))


def count_messages(
    messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None, model: str = "gpt-4.1"
) -> int:
    """Input tokens of a chat request: message contents, tool calls and tool schemas."""
    total = _PER_REQUEST
    for m in messages:
        total += _PER_MESSAGE
        content = m.get("content")
        if isinstance(content, list):
            content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
        total += count_text(content or "", model)
        for call in m.get("tool_calls") or []:
            fn = call.get("function", {})
            total += count_text(fn.get("name", "") + fn.get("arguments", ""), model) + 3
    if tools:
        total += count_text(json.dumps(tools, separators=(",", ":")), model)
    return total


def truncate_tokens(text: str, limit: int, model: str = "gpt-4.1") -> str:
    """The first `limit` tokens of `text`."""
    tokens = _tokens(text, model)
    return text if len(tokens) <= limit else _encoding(encoding_name(model)).decode(tokens[:limit])
