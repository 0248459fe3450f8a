"""Recall@3 of the planner's memory: FTS5 alone against hybrid (FTS5 + embeddings, reciprocal
rank fusion), on a labelled set of request pairs.

benchmarks/memory_pairs.jsonl holds, per line, a new request (`query`), the past request that
asked for the same thing in other words (`target`) and a keyword trap: a past request that
shares the query's words but asks for something else (`trap`). Every target and trap is one
finished run in a real run store; a query scores a hit when its target is among the three runs
recalled for it (what the planner is shown). Modes:

- fts5: full-text search alone (Shunter's memory before issue 17, and `[memory] embedder = "off"`);
- hybrid, local: fused with all-MiniLM-L6-v2 on the CPU (`[memory] embedder = "local"`);
- embeddings alone (local), for reference: what the fusion gives up to keep exact keyword
  matches on top;
- hybrid, test server: fused with the bundled test server's hashed bag-of-words vectors. Those
  exist for plumbing tests; they match shared stems and word pieces, not meaning, and are
  reported to show that, not as a model of what a real embedding model does.

    .venv/bin/python -m benchmarks.memory_recall
"""

from __future__ import annotations

import asyncio
import json
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import say, table, write_result
from router.recall import Embedder, embed_request, recall, semantic
from runtime import vectors
from runtime.config import ModelSettings, Settings
from runtime.embeddings import ServerEmbedder
from runtime.local_embeddings import LocalEmbedder
from runtime.store import Store
from runtime.testserver import TestServer

PAIRS = Path(__file__).resolve().parent / "memory_pairs.jsonl"
K = 3


def load_pairs() -> list[dict[str, str]]:
    return [json.loads(line) for line in PAIRS.read_text().splitlines() if line.strip()]


def fill(store: Store, pairs: list[dict[str, str]]) -> dict[str, str]:
    """One finished run per target and per trap; request text -> run id."""
    ids: dict[str, str] = {}
    for n, text in enumerate([p[k] for p in pairs for k in ("target", "trap")]):
        run_id = f"run{n:03d}"
        store.create_run(
            run_id,
            text,
            conversation_id=run_id,
            parent_run_id=None,
            pid=1,
            host="bench",
            new_conversation=run_id,
        )
        store.update_run(run_id, status="succeeded", plan={"goal": text, "subtasks": []})
        ids[text] = run_id
    return ids


async def score(
    store: Store, pairs: list[dict[str, str]], ids: dict[str, str], embedder: Embedder | None, fuse: bool
) -> dict[str, Any]:
    hits, trap_first, ranks, misses = 0, 0, [], []
    started = time.perf_counter()
    for p in pairs:
        probe = await embed_request(store, p["query"], embedder) if embedder else None
        if embedder is not None and probe is None:
            raise SystemExit(f"{embedder.key} gave no embeddings; see the notice above.")
        if fuse:
            got = [r["id"] for r in recall(store, p["query"], K, probe=probe)]
        else:  # embeddings alone: what fusion gives up to keep exact keyword matches
            assert probe is not None
            got = [run_id for run_id, _ in semantic(store, probe, K, set())]
        target, trap = ids[p["target"]], ids[p["trap"]]
        rank = got.index(target) + 1 if target in got else None
        hits += rank is not None
        ranks.append(rank)
        if trap in got and (rank is None or got.index(trap) < rank - 1):
            trap_first += 1
        if rank is None:
            misses.append(p["query"])
    return {
        "recall_at_3": round(hits / len(pairs), 3),
        "mrr_at_3": round(sum(1 / r for r in ranks if r) / len(pairs), 3),
        "trap_ranked_above_target": trap_first,
        "ms_per_query": round((time.perf_counter() - started) * 1000 / len(pairs), 2),
        "misses": misses,
    }


def ranking_speed(runs: int = 2000, dim: int = 1536) -> dict[str, Any]:
    """Milliseconds to rank `runs` stored vectors of text-embedding-3-small's size: sqlite-vec
    (in the store, or through apsw in memory) against the pure-Python fallback, in one run."""
    rng = random.Random(17)
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "state.db") as store:
        fill(store, [{"target": f"request {n}", "trap": f"other {n}"} for n in range(runs // 2)])
        with store.snapshot() as c:
            ids = [r[0] for r in c.execute("SELECT id FROM runs")]
        vectors.save(store, "bench", ((i, [rng.gauss(0, 1) for _ in range(dim)]) for i in ids))
        query = [rng.gauss(0, 1) for _ in range(dim)]
        engine = vectors.sql_engine(store)
        timings: dict[str, float] = {}
        for name, use in ((f"sqlite-vec ({engine})", True), ("python", False)):
            if not use:
                vectors._engines[store] = None
            started = time.perf_counter()
            for _ in range(3):
                vectors.nearest(store, "bench", query, 20, set())
            timings[name] = round((time.perf_counter() - started) * 1000 / 3, 1)
    return {"runs": runs, "dim": dim, "ms_per_ranking": timings}


async def main() -> int:
    pairs = load_pairs()
    results: dict[str, Any] = {}
    server = TestServer().start()
    try:
        local = LocalEmbedder()
        test_server = ServerEmbedder(
            Settings(model=ModelSettings(base_url=server.base_url, api_key="bench", name="scripted"))
        )
        modes: dict[str, tuple[Embedder | None, bool]] = {
            "fts5": (None, True),
            "hybrid, local all-MiniLM-L6-v2": (local, True),
            "hybrid, test server hashed words": (test_server, True),
            "embeddings alone, local (for reference)": (local, False),
        }
        for name, (embedder, fuse) in modes.items():
            with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "state.db") as store:
                ids = fill(store, pairs)
                # Embed the whole corpus first (recall backfills BACKFILL runs per call): every
                # query then ranks against all of it, and the timing is per query only.
                while embedder is not None and vectors.missing(store, embedder.key, 1):
                    await embed_request(store, "warm up", embedder)
                results[name] = await score(store, pairs, ids, embedder, fuse)
        await test_server.aclose()
    finally:
        server.stop()
    say(
        f"Memory recall on {len(pairs)} labelled pairs ({2 * len(pairs)} past runs: targets and keyword traps)"
    )
    say(
        table(
            ["mode", f"recall@{K}", f"MRR@{K}", "trap above target", "ms / query"],
            [
                [n, r["recall_at_3"], r["mrr_at_3"], r["trap_ranked_above_target"], r["ms_per_query"]]
                for n, r in results.items()
            ],
        )
    )
    speed = ranking_speed()
    say(f"Ranking {speed['runs']} vectors of {speed['dim']} floats, ms: {speed['ms_per_ranking']}")
    write_result("memory_recall", {"pairs": len(pairs), "k": K, "modes": results, "ranking": speed})
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
