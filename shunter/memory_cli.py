"""`shunter memory search` and `shunter memory forget`: what the planner recalls of past runs,
and taking a run out of that memory. Registered on the main app by shunter/cli.py."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from shunter.cli_options import JsonFlag, Workspace

if TYPE_CHECKING:
    from router.recall import Probe
    from runtime.embeddings import Embedder
    from runtime.store import Store


def register(app: typer.Typer, guard, fail) -> None:
    memory = typer.Typer(no_args_is_help=True, help="The planner's memory of past runs in this workspace.")
    app.add_typer(memory, name="memory")

    @memory.command()
    def search(
        query: Annotated[str, typer.Argument(help="A request, as you would give it to `shunter run`.")],
        workspace: Workspace = Path("."),
        as_json: JsonFlag = False,
    ) -> None:
        """The similar past requests the planner would be shown for QUERY, best first."""
        guard(lambda: search_command(query, workspace, as_json), as_json)

    @memory.command()
    def forget(
        run_id: Annotated[str, typer.Argument(help="A run id (or a unique start of one).")],
        workspace: Workspace = Path("."),
        as_json: JsonFlag = False,
    ) -> None:
        """Never recall RUN_ID again as a similar past request; the run itself stays (runs, show, undo)."""
        guard(lambda: forget_command(run_id, workspace, as_json), as_json)


def _open(workspace: Path):
    from runtime.store import STATE_FILE, Store
    from shunter.wiring import check_workspace

    ws = check_workspace(workspace)
    return ws, (Store.open(ws) if (ws / ".shunter" / STATE_FILE).exists() else None)


def search_data(query: str, workspace: Path) -> dict[str, Any]:
    """The `memory search --json` object: the runs recalled, how, and the block the planner gets."""
    from router.memory import SIMILAR_REQUESTS, similar_memory, similar_requests
    from runtime.embeddings import make_embedder
    from runtime.prices import PriceTable
    from runtime.usage import UsageTracker
    from shunter.wiring import settings_for

    ws, store = _open(workspace)
    if not query.strip():
        from runtime.errors import ConfigError

        raise ConfigError(
            'Nothing to search for; give a request, e.g. shunter memory search "sort the imports".'
        )
    settings = settings_for(ws)
    usage = UsageTracker(prices=PriceTable.load(settings.prices))
    found: list[dict[str, Any]] = []
    probe = None
    if store is not None:
        with store:
            probe = asyncio.run(_embed(store, query, make_embedder(settings, usage, server=True)))
            found = similar_requests(store, query, SIMILAR_REQUESTS, probe=probe)
    return {
        "query": query,
        "mode": "hybrid" if probe is not None else "full-text",
        "embedder": probe.key if probe is not None else None,
        "results": [
            {
                "run_id": r["id"],
                "request": r["request"],
                "status": r["status"],
                "keyword_rank": r.get("keyword_rank"),
                "semantic_rank": r.get("semantic_rank"),
                "distance": r.get("distance"),
                "score": round(r.get("score", 0.0), 6),
            }
            for r in found
        ],
        "memory": similar_memory(found),
        "usage": usage.snapshot()["total"],
    }


async def _embed(store: Store, query: str, embedder: Embedder | None) -> Probe | None:
    from router.recall import embed_request

    if embedder is None:
        return None
    try:
        return await embed_request(store, query, embedder)
    finally:
        await embedder.aclose()


def search_command(query: str, workspace: Path, as_json: bool) -> None:
    data = search_data(query, workspace)
    if as_json:
        print(json.dumps(data))
        return
    how = f"full-text and embeddings ({data['embedder']})" if data["mode"] == "hybrid" else "full-text search"
    sys.stderr.write(f"Recalled by {how}: {len(data['results'])} past run(s).\n")
    print(data["memory"] or "Nothing in memory is like that request.")


def forget_command(ref: str, workspace: Path, as_json: bool) -> None:
    from router.lookup import find_run
    from runtime import vectors
    from runtime.errors import ConfigError

    ws, store = _open(workspace)
    if store is None:
        raise ConfigError(f"No runs are recorded in {ws}; there is nothing to forget.")
    with store:
        run_id = find_run(store, ref)["id"]
        vectors.forget(store, run_id)
    if as_json:
        print(json.dumps({"status": "ok", "run_id": run_id, "forgotten": True}))
    else:
        print(f"Forgot run {run_id}: the planner will not be shown it again (it stays in `shunter runs`).")
