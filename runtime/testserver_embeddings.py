"""Deterministic embeddings for the test server's /v1/embeddings: hashed bag-of-words vectors.

Each word is lower-cased and cut to a rough stem (imports, importing -> import), and the stem
and its character trigrams are hashed into DIMENSIONS buckets; the vector is L2-normalised.
Texts that share stems or word pieces come out close, unrelated texts near-orthogonal, the same
text always the same vector: offline, fast, and meaningful enough to test ranking with.
"""

from __future__ import annotations

import hashlib
import math
import re
from typing import Any

DIMENSIONS = 256
_STOP = {
    "the",
    "a",
    "an",
    "and",
    "or",
    "of",
    "to",
    "in",
    "on",
    "for",
    "with",
    "is",
    "it",
    "this",
    "that",
    "all",
}
_SUFFIXES = ("ations", "ation", "ments", "ment", "ings", "ing", "ies", "ed", "es", "s")


def stem(word: str) -> str:
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def _bucket(feature: str) -> tuple[int, float]:
    digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
    n = int.from_bytes(digest, "big")
    return n % DIMENSIONS, 1.0 if (n >> 63) & 1 else -1.0


def embed_text(text: str) -> list[float]:
    vector = [0.0] * DIMENSIONS
    for word in re.findall(r"\w+", text.lower()):
        if word in _STOP:
            continue
        s = stem(word)
        features = [(f"w:{s}", 1.0)] + [(f"t:{s[i : i + 3]}", 0.3) for i in range(max(len(s) - 2, 0))]
        for feature, weight in features:
            index, sign = _bucket(feature)
            vector[index] += sign * weight
    norm = math.sqrt(sum(x * x for x in vector)) or 1.0
    return [x / norm for x in vector]


def embeddings_reply(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """(status, JSON body) for one POST /v1/embeddings, shaped like OpenAI's."""
    texts = body.get("input")
    if isinstance(texts, str):
        texts = [texts]
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts) or not texts:
        return 400, {
            "error": {
                "message": "input must be a string or a list of strings.",
                "type": "invalid_request_error",
            }
        }
    tokens = sum(len(re.findall(r"\w+|[^\w\s]", t)) for t in texts)
    return 200, {
        "object": "list",
        "model": body.get("model") or "scripted-embedding",
        "data": [
            {"object": "embedding", "index": i, "embedding": embed_text(t)} for i, t in enumerate(texts)
        ],
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
