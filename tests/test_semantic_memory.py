"""Semantic memory (issue 17): embeddings from the test server's /v1/embeddings through the real
openai client, stored in the real run store, fused with FTS5 by reciprocal rank; the fallback to
full-text search when the server has no endpoint; usage; forget; the memory CLI; the local model."""

from __future__ import annotations

import json
import math

import openai
import pytest
from loguru import logger

from router.calibration import history_stats
from router.memory import planner_memory, similar_requests
from router.recall import embed_request, recall
from runtime import vectors
from runtime.config import LimitSettings, ModelSettings, RetrySettings, Settings
from runtime.context import RunContext
from runtime.embeddings import ServerEmbedder, make_embedder
from runtime.errors import RunCancelled
from runtime.local_embeddings import LocalEmbedder
from runtime.notices import forget_notices
from runtime.store import Store
from runtime.testserver_embeddings import DIMENSIONS
from runtime.usage import UsageTracker
from tests.server_fixtures import TEST_API_KEY
from tests.test_cli import brain, shunter

PARAPHRASE = "sort the import statements"
KEYWORD = "tidy the garden shed"
UNRELATED = "deploy the website to production"
QUERY = "tidy the imports"


def settings_for(server, **memory) -> Settings:
    return Settings(
        model=ModelSettings(base_url=server.base_url, api_key=TEST_API_KEY, name="scripted"), memory=memory
    )


def add_runs(store: Store, *requests: str, status: str = "succeeded") -> list[str]:
    ids = []
    for n, request in enumerate(requests):
        run_id = f"r{len(store.list_runs(1000)) + 1}-{n}"
        store.create_run(
            run_id,
            request,
            conversation_id=run_id,
            parent_run_id=None,
            pid=1,
            host="h",
            new_conversation=run_id,
        )
        store.update_run(run_id, status=status, plan={"goal": request, "subtasks": []})
        ids.append(run_id)
    return ids


async def hybrid(store: Store, query: str, embedder, limit: int = 3) -> list[dict]:
    """What memory recalls for `query`: the query embedded by `embedder`, fused with full-text."""
    return recall(store, query, limit, probe=await embed_request(store, query, embedder))


@pytest.fixture
def project(workspace):
    (workspace / "a.txt").write_text("alpha\n")
    (workspace / "b.txt").write_text("beta\n")
    return workspace


def embedding_requests(server) -> list:
    return [r for r in server.requests if r.path.endswith("/embeddings")]


@pytest.fixture
def notices():
    forget_notices()
    said: list[str] = []
    sink = logger.add(lambda m: said.append(m.record["message"]), level="WARNING")
    yield said
    logger.remove(sink)


def test_the_test_server_embeds_deterministically_and_by_meaning_of_words(test_server):
    client = openai.OpenAI(base_url=test_server.base_url, api_key=TEST_API_KEY, max_retries=0)
    first = client.embeddings.create(model="m", input=[QUERY, PARAPHRASE, UNRELATED])
    again = client.embeddings.create(model="m", input=QUERY)
    q, para, other = (d.embedding for d in first.data)
    assert again.data[0].embedding == q and len(q) == DIMENSIONS
    assert math.isclose(sum(x * x for x in q), 1.0, rel_tol=1e-6)
    # "imports" and "import" share a stem: closer than a text with no word in common.
    assert vectors.cosine_distance(q, para) < 0.8 < vectors.cosine_distance(q, other)
    assert first.usage.prompt_tokens > 0


async def test_hybrid_recall_finds_what_full_text_misses_and_drops_the_unrelated(tmp_path, test_server):
    with Store(tmp_path / "state.db") as store:
        para, keyword, unrelated = add_runs(store, PARAPHRASE, KEYWORD, UNRELATED)
        assert [r["id"] for r in recall(store, QUERY, 3)] == [keyword]  # FTS5: only the word "tidy"
        embedder = ServerEmbedder(settings_for(test_server))
        found = await hybrid(store, QUERY, embedder)
        ids = [r["id"] for r in found]
        assert para in ids and keyword in ids and unrelated not in ids
        by_id = {r["id"]: r for r in found}
        assert by_id[para]["keyword_rank"] is None and by_id[para]["semantic_rank"] == 1
        assert by_id[keyword]["keyword_rank"] == 1
        # Every run got its vector in the one embedding call, stored as float32 blobs.
        assert len(embedding_requests(test_server)) == 1
        assert {run_id for run_id, _ in vectors.missing(store, embedder.key, 10)} == set()
        # A new embedder (another process) embeds only the query now.
        await hybrid(store, "tidy the garden", ServerEmbedder(settings_for(test_server)))
        assert embedding_requests(test_server)[-1].body["input"] == ["tidy the garden"]


async def test_a_run_found_by_both_lists_comes_first(tmp_path, test_server):
    with Store(tmp_path / "state.db") as store:
        both, only_words = add_runs(store, "tidy the imports in utils", "tidy the garden shed")
        found = await hybrid(store, QUERY, ServerEmbedder(settings_for(test_server)))
        assert [r["id"] for r in found][0] == both
        assert found[0]["keyword_rank"] and found[0]["semantic_rank"] == 1
        assert only_words in [r["id"] for r in found]


async def test_no_embeddings_endpoint_falls_back_to_full_text_with_one_notice(tmp_path, test_server, notices):
    test_server.embeddings = False  # answers 404, like most local chat-only servers
    with Store(tmp_path / "state.db") as store:
        _, keyword, _ = add_runs(store, PARAPHRASE, KEYWORD, UNRELATED)
        embedder = ServerEmbedder(settings_for(test_server))
        for _ in range(3):
            probe = await embed_request(store, QUERY, embedder)
            assert probe is None
            assert [r["id"] for r in similar_requests(store, QUERY, probe=probe)] == [keyword]
        # Another embedder on the same server in the same process says nothing more.
        assert [r["id"] for r in await hybrid(store, QUERY, ServerEmbedder(settings_for(test_server)))]
    said = [m for m in notices if "Semantic memory is off" in m]
    assert len(said) == 1 and "404" in said[0] and "full-text" in said[0]
    assert len(embedding_requests(test_server)) == 2  # one per embedder, then it stops asking


async def test_embedding_calls_count_in_usage_and_cost(tmp_path, test_server):
    usage = UsageTracker()
    with Store(tmp_path / "state.db") as store:
        add_runs(store, PARAPHRASE, KEYWORD)
        await hybrid(store, QUERY, ServerEmbedder(settings_for(test_server), usage))
    snap = usage.snapshot()
    assert snap["total"]["requests"] == 1 and snap["total"]["input_tokens"] > 0
    assert snap["by_agent"]["memory"]["requests"] == 1
    model = usage.by_model["text-embedding-3-small"]  # unrounded: a few tokens cost micro-cents
    assert model.cost_usd == pytest.approx(model.input_tokens * 0.02 / 1e6) and model.cost_usd > 0
    assert "text-embedding-3-small" not in snap["total"].get("unpriced_models", [])


async def test_forget_takes_a_run_out_of_both_searches_for_good(tmp_path, test_server):
    with Store(tmp_path / "state.db") as store:
        para, keyword = add_runs(store, PARAPHRASE, "tidy the imports of the garden")
        embedder = ServerEmbedder(settings_for(test_server))
        assert {r["id"] for r in await hybrid(store, QUERY, embedder)} == {para, keyword}
        assert vectors.forget(store, keyword) and not vectors.forget(store, "no-such-run")
        assert [r["id"] for r in await hybrid(store, QUERY, embedder)] == [para]
        assert [r["id"] for r in recall(store, QUERY, 3)] == []  # full-text too
        assert vectors.missing(store, embedder.key, 10) == []  # not embedded again
        assert store.get_run(keyword)["status"] == "succeeded"  # the run itself stays


def test_the_estimate_learns_first_from_comparable_runs(tmp_path, monkeypatch):
    import router.calibration as calibration

    with Store(tmp_path / "state.db") as store:
        like, unlike = add_runs(store, "tidy the imports", "render the charts")
        # The unlike run is newer and its subtasks took two model calls each; the like run's one.
        for run_id, calls, finished in ((like, 1, 1.0), (unlike, 2, 10.0)):
            for n in range(3):
                row = {
                    "id": f"t{n}",
                    "agent": "file",
                    "status": "succeeded",
                    "result": "ok",
                    "finished_at": finished,
                }
                store.save_subtask(run_id, row)
                for _ in range(calls):
                    store.add_model_call(
                        run_id, f"t{n}", "file", 1, "m", {"input_tokens": 50, "output_tokens": 5}, []
                    )
        monkeypatch.setattr(calibration, "RECENT_OBSERVATIONS", 3)  # room for one run's subtasks
        assert history_stats(store)["file"].iterations == 2.0  # the newest
        assert history_stats(store, comparable=[like])["file"].iterations == 1.0  # the comparable


def test_make_embedder_asks_no_server_for_a_scripted_model_or_when_off(test_server):
    assert make_embedder(settings_for(test_server), None, server=False) is None
    assert make_embedder(settings_for(test_server, embedder="off"), None, server=True) is None
    assert make_embedder(Settings(), None, server=True) is None  # no key for OpenAI: nothing to ask
    assert isinstance(make_embedder(settings_for(test_server), None, server=True), ServerEmbedder)
    assert isinstance(
        make_embedder(settings_for(test_server, embedder="local"), None, server=False), LocalEmbedder
    )


def test_a_real_run_shows_the_planner_a_paraphrase_and_counts_the_embedding_call(test_server, project):
    test_server.handler = brain
    first = shunter(["run", PARAPHRASE, "--yes", "--json", "-w", str(project)], test_server)
    assert first.returncode == 0, first.stderr
    second = shunter(["run", QUERY, "--yes", "--json", "-w", str(project)], test_server)
    assert second.returncode == 0, second.stderr
    planner = [
        r
        for r in test_server.chat_requests
        if r.body["messages"][0]["content"].startswith("You are the planner")
    ]
    shown = json.dumps(planner[-1].body["messages"])
    assert f"Request: {PARAPHRASE}" in shown  # no word in common with "tidy the imports" but a stem
    data = json.loads(second.stdout)
    with Store.open(project) as store:
        usage = store.get_run(data["run_id"])["usage_breakdown"]
    assert usage["by_agent"]["memory"]["requests"] == 1
    embedding = usage["by_model"]["text-embedding-3-small"]
    # Priced (an unknown price would be None); a few tokens at $0.02/1M round to $0.000000 here.
    assert embedding["input_tokens"] > 0 and embedding["cost_usd"] is not None
    assert data["usage"]["requests"] == sum(m["requests"] for m in usage["by_model"].values())


def test_memory_search_cli_shows_what_the_planner_sees_and_forget_removes_it(test_server, project):
    test_server.handler = brain
    run = shunter(["run", PARAPHRASE, "--yes", "--json", "-w", str(project)], test_server)
    run_id = json.loads(run.stdout)["run_id"]
    out = shunter(["memory", "search", QUERY, "--json", "-w", str(project)], test_server)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["mode"] == "hybrid" and data["embedder"] == "server:text-embedding-3-small"
    assert [r["run_id"] for r in data["results"]] == [run_id] and data["results"][0]["semantic_rank"] == 1
    assert f"Request: {PARAPHRASE}" in data["memory"] and data["usage"]["requests"] == 1
    text = shunter(["memory", "search", QUERY, "-w", str(project)], test_server)
    assert f"Request: {PARAPHRASE}" in text.stdout and "embeddings" in text.stderr
    test_server.embeddings = False
    flat = shunter(["memory", "search", PARAPHRASE, "--json", "-w", str(project)], test_server)
    assert json.loads(flat.stdout)["mode"] == "full-text" and "Semantic memory is off" in flat.stderr
    test_server.embeddings = True
    gone = shunter(["memory", "forget", run_id[:6], "-w", str(project)], test_server)
    assert gone.returncode == 0 and run_id in gone.stdout
    after = json.loads(shunter(["memory", "search", QUERY, "--json", "-w", str(project)], test_server).stdout)
    assert after["results"] == [] and after["memory"] == ""
    bad = shunter(["memory", "forget", "nope", "--json", "-w", str(project)], test_server)
    assert bad.returncode != 0 and "No run 'nope'" in json.loads(bad.stdout)["error"]


async def test_the_local_model_ranks_a_paraphrase_above_a_keyword_match(tmp_path):
    with Store(tmp_path / "state.db") as store:
        para, keyword, fixtures = add_runs(store, PARAPHRASE, KEYWORD, "tidy the test fixtures")
        words = [r["id"] for r in recall(store, QUERY, 3)]
        assert para not in words and words[0] in (keyword, fixtures)
        fused = [r["id"] for r in await hybrid(store, QUERY, LocalEmbedder())]
        assert fused[0] == para and set(fused) == {para, keyword, fixtures}
        memory = planner_memory(store, QUERY, None, probe=await embed_request(store, QUERY, LocalEmbedder()))
        assert memory.index(PARAPHRASE) < memory.index(KEYWORD)


def run_context(tmp_path, server, **limits) -> RunContext:
    settings = settings_for(server)
    settings.limits = LimitSettings(**limits)
    (tmp_path / "ws").mkdir(exist_ok=True)
    return RunContext.create(tmp_path / "ws", settings)


async def test_a_transient_embedding_failure_is_retried_by_the_one_retry_layer(tmp_path, test_server):
    test_server.embedding_failures = [503]
    ctx = run_context(tmp_path, test_server)
    with Store(tmp_path / "state.db") as store:
        (para,) = add_runs(store, PARAPHRASE)
        found = await hybrid(store, QUERY, ServerEmbedder(ctx.settings, ctx=ctx))
    assert [r["id"] for r in found] == [para]
    assert len(embedding_requests(test_server)) == 2  # the 503, then the retry
    assert ctx.usage.by_agent["memory"].requests == 1 and ctx.breaker.failures == 0
    events = [json.loads(line) for line in (ctx.state_dir / "logs" / "events.jsonl").read_text().splitlines()]
    names = [(e["event"], e.get("agent")) for e in events if e["event"].startswith("model.")]
    assert names == [("model.request", "memory"), ("model.retry", "memory"), ("model.response", "memory")]
    ctx.close()


async def test_a_usage_limit_is_checked_before_the_embedding_call(tmp_path, test_server, notices):
    ctx = run_context(tmp_path, test_server, max_requests=1)
    ctx.usage.record_response("scripted", input_tokens=10, output_tokens=1)  # the one request is spent
    with Store(tmp_path / "state.db") as store:
        _, keyword = add_runs(store, PARAPHRASE, KEYWORD)
        probe = await embed_request(store, QUERY, ServerEmbedder(ctx.settings, ctx=ctx))
        assert probe is None and [r["id"] for r in recall(store, QUERY, 3)] == [keyword]
    assert embedding_requests(test_server) == [] and ctx.usage.total.requests == 1
    assert any("usage limit" in m and "full-text" in m for m in notices)
    ctx.close()


async def test_a_cancelled_run_asks_for_no_embedding(tmp_path, test_server):
    ctx = run_context(tmp_path, test_server)
    ctx.cancel.cancel()
    with Store(tmp_path / "state.db") as store:
        add_runs(store, PARAPHRASE)
        with pytest.raises(RunCancelled):
            await embed_request(store, QUERY, ServerEmbedder(ctx.settings, ctx=ctx))
    assert embedding_requests(test_server) == []
    ctx.close()


async def test_sqlite_vec_ranks_in_sql_as_the_python_fallback_does(tmp_path, test_server, monkeypatch):
    with Store(tmp_path / "state.db") as store:
        add_runs(store, PARAPHRASE, KEYWORD, UNRELATED, "tidy the imports in utils")
        probe = await embed_request(store, QUERY, ServerEmbedder(settings_for(test_server)))
        # This Python's sqlite3 may not load extensions (pyenv's does not): then apsw in memory does.
        assert probe is not None and vectors.sql_engine(store) in ("sqlite3", "apsw")
        in_sql = vectors.nearest(store, probe.key, probe.vector, 10, set())
        monkeypatch.setitem(vectors._engines, store, None)
        in_python = vectors.nearest(store, probe.key, probe.vector, 10, set())
    assert [r for r, _ in in_sql] == [r for r, _ in in_python] and len(in_sql) == 4
    assert all(math.isclose(a, b, abs_tol=1e-5) for (_, a), (_, b) in zip(in_sql, in_python, strict=True))


def test_memory_config_picks_the_embedder_for_memory_search(test_server, project):
    test_server.handler = brain
    run = shunter(["run", PARAPHRASE, "--yes", "--json", "-w", str(project)], test_server)
    run_id = json.loads(run.stdout)["run_id"]
    config = project / ".shunter" / "config.toml"
    config.write_text('[memory]\nembedder = "off"\n')
    before = len(embedding_requests(test_server))
    off = json.loads(shunter(["memory", "search", QUERY, "--json", "-w", str(project)], test_server).stdout)
    assert off["mode"] == "full-text" and off["results"] == []  # no word in common
    assert len(embedding_requests(test_server)) == before
    config.write_text('[memory]\nembedder = "local"\n')
    local = json.loads(shunter(["memory", "search", QUERY, "--json", "-w", str(project)], test_server).stdout)
    assert local["mode"] == "hybrid" and local["embedder"] == "local:all-MiniLM-L6-v2"
    assert [r["run_id"] for r in local["results"]] == [run_id] and local["usage"]["requests"] == 0
    assert len(embedding_requests(test_server)) == before  # the local model asks no server


async def test_a_server_failing_past_its_retries_leaves_memory_on_full_text(tmp_path, test_server, notices):
    test_server.embedding_failures = [503, 503, 503]
    ctx = run_context(tmp_path, test_server)
    ctx.settings.retry = RetrySettings(attempts=2)
    embedder = ServerEmbedder(ctx.settings, ctx=ctx)
    with Store(tmp_path / "state.db") as store:
        _, keyword = add_runs(store, PARAPHRASE, KEYWORD)
        assert await embed_request(store, QUERY, embedder) is None
        assert await embed_request(store, QUERY, embedder) is None  # off for this run: no third call
        assert [r["id"] for r in recall(store, QUERY, 3)] == [keyword]
    assert len(embedding_requests(test_server)) == 2 and ctx.usage.total.requests == 0
    said = [m for m in notices if m.startswith("Semantic memory is off")]  # not the event log's lines
    assert len(said) == 1 and "503" in said[0] and TEST_API_KEY not in said[0]
    await embedder.aclose()
    ctx.close()


async def test_a_first_run_pays_for_no_embedding(tmp_path, test_server):
    with Store(tmp_path / "state.db") as store:
        add_runs(store, PARAPHRASE, status="running")  # not finished: nothing to recall yet
        assert await embed_request(store, QUERY, ServerEmbedder(settings_for(test_server))) is None
    assert embedding_requests(test_server) == []
