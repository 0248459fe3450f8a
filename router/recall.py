"""Hybrid recall of past runs: full-text search (FTS5 bm25) and embeddings (nearest vectors),
fused by reciprocal rank. RRF needs no score calibration between the two lists: a run's score
is the sum over the lists it is in of 1 / (RRF_K + rank), so a run both find comes first, and
a paraphrase that shares no word still gets in on its semantic rank alone.

Two steps, so the ranking stays synchronous and the one network call is awaited: `embed_request`
embeds the request (and the newest runs that have no vector yet, BACKFILL of them, in the same
call, storing theirs), then `recall` ranks with that vector.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from runtime import vectors
from runtime.embeddings import Embedder
from runtime.store import Store, StoreError

RRF_K = 60
"""The usual constant from Cormack et al. (2009): damps the weight of the very first ranks."""
CANDIDATES = 20
"""How deep each list is read before fusing."""
BACKFILL = 32


@dataclass(frozen=True)
class Probe:
    """A request's embedding, in the vector space `key`."""

    key: str
    vector: list[float]
    max_distance: float


async def embed_request(store: Store, request: str, embedder: Embedder | None) -> Probe | None:
    """`request`'s vector (None without an embedder or when it is unavailable); stores the
    vectors of the runs that lacked one on the way."""
    if embedder is None or not vectors.anything_to_recall(store):
        return None  # a first run pays for no embedding: there is nothing to compare it with
    todo = vectors.missing(store, embedder.key, BACKFILL)
    got = await embedder.embed([request, *(text for _, text in todo)])
    if got is None:
        return None
    try:
        vectors.save(store, embedder.key, zip((run_id for run_id, _ in todo), got[1:], strict=True))
    except StoreError:
        pass  # a read-only or busy store: rank what is stored, embed the rest next time
    return Probe(embedder.key, got[0], embedder.max_distance)


def semantic(store: Store, probe: Probe, limit: int, exclude: set[str]) -> list[tuple[str, float]]:
    """(run_id, distance) of the runs nearest in meaning, within the probe's max_distance."""
    near = vectors.nearest(store, probe.key, probe.vector, limit, exclude)
    return [(run_id, d) for run_id, d in near if d <= probe.max_distance]


def recall(
    store: Store,
    request: str,
    limit: int,
    exclude: Iterable[str] = (),
    probe: Probe | None = None,
) -> list[dict[str, Any]]:
    """The `limit` past runs most like `request`, best first: stored run rows with the ranks
    that put them there (keyword_rank, semantic_rank, 1-based or None) and their fused score.
    Without a probe, full-text search alone."""
    skip = set(exclude)
    keyword = store.search_requests(request, CANDIDATES, skip)
    near = semantic(store, probe, CANDIDATES, skip) if probe is not None else []
    rows: dict[str, dict[str, Any]] = {}
    for rank, row in enumerate(keyword, 1):
        rows[row["id"]] = row | {"keyword_rank": rank, "semantic_rank": None, "score": 1 / (RRF_K + rank)}
    for rank, (run_id, distance) in enumerate(near, 1):
        found = rows.get(run_id) or store.get_run(run_id)
        if found is None:
            continue
        row = found
        row.setdefault("keyword_rank", None)
        row["semantic_rank"], row["distance"] = rank, round(distance, 4)
        row["score"] = row.get("score", 0.0) + 1 / (RRF_K + rank)
        rows[run_id] = row
    # Equal scores (keyword rank 1 against semantic rank 1, say): the closer in meaning first; a
    # run only full-text search found is at least max_distance away. Then keyword order.
    best = sorted(rows.values(), key=lambda r: (-r["score"], r.get("distance", math.inf)))
    return best[:limit]
