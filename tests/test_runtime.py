"""runtime/: usage limits, prices, breaker, retries, cancellation, config, event log."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from runtime.calls import call_model
from runtime.cancel import CancellationToken
from runtime.config import RetrySettings, Settings, load_settings
from runtime.context import RunContext
from runtime.errors import (
    CircuitOpenError,
    ConfigError,
    ModelError,
    RunCancelled,
    TransientModelError,
    UsageLimitExceeded,
)
from runtime.model import ModelRequest
from runtime.prices import PriceTable
from runtime.retry import CircuitBreaker
from runtime.testing import FunctionModel, ScriptedModel, text
from runtime.usage import UsageLimits, UsageTracker

HELLO = ModelRequest(messages=[{"role": "user", "content": "hello"}], stream=False)


def make_ctx(workspace, **settings_kw) -> RunContext:
    fast_retry = RetrySettings(
        initial_delay_s=0.01,
        max_delay_s=0.05,
        breaker_threshold=3,
        breaker_cooldown_s=60,
        max_retry_after_s=5,
    )
    return RunContext.create(workspace, Settings(retry=fast_retry, **settings_kw))


async def test_cost_comes_from_the_price_table_and_is_none_when_unpriced():
    tracker = UsageTracker(prices=PriceTable.load())
    tracker.record_response(
        "gpt-4.1-mini", input_tokens=1_000_000, output_tokens=1_000_000, cached_input_tokens=500_000
    )
    assert tracker.total.cost_usd == pytest.approx(0.5 * 0.40 + 0.5 * 0.10 + 1.60)
    tracker.record_response("my-local-llama", input_tokens=10, output_tokens=10)
    assert tracker.total.cost_usd is None
    assert tracker.total.unpriced_models == ["my-local-llama"]
    assert tracker.by_model["gpt-4.1-mini"].cost_usd == pytest.approx(1.85)


def test_price_table_covers_the_openai_families_and_dated_snapshots():
    prices = PriceTable.load({"my-model": {"input": 1, "output": 2}})
    for family in ("gpt-4o", "gpt-4.1", "gpt-5"):
        for size in ("", "-mini", "-nano") if family != "gpt-4o" else ("", "-mini"):
            assert prices.get(family + size) is not None, family + size
    assert prices.get("gpt-4o-2024-08-06") == prices.get("gpt-4o")
    assert prices.cost("my-model", 1_000_000, 0, 1_000_000) == pytest.approx(3.0)


async def test_limit_stops_before_the_call_that_would_exceed_it(workspace):
    ctx = make_ctx(workspace)
    ctx.usage.limits = UsageLimits(max_tokens=30)
    model = ScriptedModel(["ok"])
    big = ModelRequest(messages=[{"role": "user", "content": "word " * 50}], stream=False)
    with pytest.raises(UsageLimitExceeded, match="max_tokens"):
        await call_model(ctx, model, big)
    assert model.requests == []  # the model was never called


async def test_request_limit_names_the_figures(workspace):
    ctx = make_ctx(workspace)
    ctx.usage.limits = UsageLimits(max_requests=1)
    model = ScriptedModel(["one", "two"])
    await call_model(ctx, model, HELLO)
    with pytest.raises(UsageLimitExceeded) as e:
        await call_model(ctx, model, HELLO)
    assert e.value.limit == "max_requests" and e.value.maximum == 1 and "2" in str(e.value)
    assert len(model.requests) == 1


async def test_cost_limit_on_an_unpriced_model_says_it_cannot_be_enforced(workspace):
    ctx = make_ctx(workspace)
    ctx.usage.limits = UsageLimits(max_cost_usd=1.0)
    with pytest.raises(UsageLimitExceeded, match="cannot be enforced"):
        await call_model(ctx, ScriptedModel(["x"], name="unpriced-model"), HELLO)


async def test_remaining_budget_is_what_is_left_not_a_fresh_one():
    tracker = UsageTracker(UsageLimits(max_requests=5, max_tokens=100))
    tracker.record_response("gpt-4.1", input_tokens=30, output_tokens=10)
    left = tracker.remaining()
    assert left.max_requests == 4 and left.max_tokens == 60


def test_tracker_is_safe_under_threads():
    import threading

    tracker = UsageTracker()

    def work():
        for _ in range(500):
            tracker.record_response("gpt-4.1", input_tokens=1, output_tokens=1, subtask="t", agent="a")
            tracker.record_tool_call("t", "a")

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert tracker.total.requests == 4000 and tracker.total.tool_calls == 4000
    assert tracker.by_subtask["t"].input_tokens == 4000


async def test_transient_errors_are_retried_then_succeed(workspace):
    ctx = make_ctx(workspace)
    model = ScriptedModel(
        [
            TransientModelError("500", status=500),
            TransientModelError("429", status=429, retry_after=0.05),
            "done",
        ]
    )
    resp = await call_model(ctx, model, HELLO)
    assert resp.text == "done" and len(model.requests) == 3
    events = [
        json.loads(line) for line in (workspace / ".shunter/logs/events.jsonl").read_text().splitlines()
    ]
    retries = [e for e in events if e["event"] == "model.retry"]
    assert len(retries) == 2 and retries[1]["data"]["delay_s"] == pytest.approx(0.05)
    assert "500" in retries[0]["data"]["reason"]


async def test_other_errors_are_not_retried(workspace):
    ctx = make_ctx(workspace)
    model = ScriptedModel([ModelError("The model server refused the request (400): bad"), "never"])
    with pytest.raises(ModelError, match="400"):
        await call_model(ctx, model, HELLO)
    assert len(model.requests) == 1


async def test_retry_after_above_the_cap_surfaces_instead_of_sleeping(workspace):
    ctx = make_ctx(workspace)
    model = ScriptedModel([TransientModelError("429", status=429, retry_after=3600), "never"])
    started = time.monotonic()
    with pytest.raises(ModelError):
        await call_model(ctx, model, HELLO)
    assert time.monotonic() - started < 1 and len(model.requests) == 1


def test_breaker_opens_fails_fast_and_lets_one_probe_through_when_half_open():
    now = [0.0]
    breaker = CircuitBreaker(threshold=3, cooldown_s=10, clock=lambda: now[0])
    for _ in range(3):
        breaker.before_call()
        breaker.on_failure()
    assert breaker.state == "open"
    with pytest.raises(CircuitOpenError, match="10.0 s"):
        breaker.before_call()
    now[0] = 11
    breaker.before_call()  # the probe
    with pytest.raises(CircuitOpenError):
        breaker.before_call()  # a second caller while the probe is out
    breaker.on_success()
    assert breaker.state == "closed"
    breaker.before_call()


async def test_breaker_is_shared_so_later_calls_fail_fast(workspace):
    ctx = make_ctx(workspace)
    failing = FunctionModel(lambda r: TransientModelError("server error", status=500))
    with pytest.raises(ModelError):
        await call_model(ctx, failing, HELLO)  # 3 failures open the breaker (threshold 3)
    calls_before = len(failing.requests)
    with pytest.raises(CircuitOpenError, match="paused"):
        await call_model(ctx, failing, HELLO)
    assert len(failing.requests) == calls_before == 3


async def test_pre_cancelled_token_makes_no_request(workspace):
    ctx = make_ctx(workspace)
    ctx.cancel.cancel("test")
    model = ScriptedModel(["never"])
    with pytest.raises(RunCancelled):
        await call_model(ctx, model, HELLO)
    assert model.requests == []


async def test_cancel_aborts_an_in_flight_call_promptly(workspace):
    ctx = make_ctx(workspace)
    model = ScriptedModel(["slow"], latency_s=30)
    task = asyncio.create_task(call_model(ctx, model, HELLO))
    await asyncio.sleep(0.05)
    started = time.monotonic()
    ctx.cancel.cancel("test")
    with pytest.raises(RunCancelled):
        await task
    assert time.monotonic() - started < 0.2


async def test_cancellation_token_is_idempotent_and_thread_safe():
    token = CancellationToken()
    loop = asyncio.get_running_loop()
    waiter = asyncio.create_task(token.wait())
    await asyncio.sleep(0)
    results = await asyncio.gather(*(loop.run_in_executor(None, token.cancel, "x") for _ in range(8)))
    assert results.count(True) == 1
    await asyncio.wait_for(waiter, 1)
    assert token.cancelled


def test_config_layers_and_bad_values(workspace):
    (workspace / ".shunter").mkdir()
    (workspace / ".shunter/config.toml").write_text('max_parallel = 3\n[model]\nname = "from-file"\n')
    s = load_settings(workspace, env={"SHUNTER_MODEL": "from-env"})
    assert s.max_parallel == 3 and s.model.name == "from-env"
    s = load_settings(workspace, {"model": {"name": "from-flag"}}, env={"SHUNTER_MODEL": "from-env"})
    assert s.model.name == "from-flag"
    (workspace / ".shunter/config.toml").write_text("max_parallel = 0\n")
    with pytest.raises(ConfigError, match="max_parallel"):
        load_settings(workspace, env={})
    (workspace / ".shunter/config.toml").write_text("max_parallel = [\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(workspace, env={})


def test_pyproject_tool_section_is_read(workspace):
    (workspace / "pyproject.toml").write_text("[tool.shunter]\nmax_parallel = 7\n")
    assert load_settings(workspace, env={}).max_parallel == 7


async def test_api_key_never_reaches_the_event_log(workspace):
    key = "sk-proj-ABCDEFGHIJKLMNOP1234567890"
    ctx = RunContext.create(workspace, load_settings(workspace, env={"OPENAI_API_KEY": key}))
    model = FunctionModel(lambda r: ModelError(f"401 for key {key} with Authorization: Bearer {key}"))
    with pytest.raises(ModelError):
        await call_model(ctx, model, HELLO)
    ctx.emit("debug", header=f"Authorization: Bearer {key}", key=key)
    log = (workspace / ".shunter/logs/events.jsonl").read_text()
    assert key not in log and "ABCDEFGHIJKLMNOP" not in log and "[REDACTED]" in log


async def test_rate_limiter_queues_requests(workspace):
    from runtime.config import RateLimit

    ctx = make_ctx(workspace, rate_limits={"*": RateLimit(requests_per_minute=600)})  # 10/s, burst 600
    ctx.rate_limiter._limits = {"*": RateLimit(requests_per_minute=60)}  # 1/s, burst 60
    ctx.rate_limiter._buckets.clear()
    bucket = ctx.rate_limiter._for("scripted")[0]
    bucket.level = 0  # empty bucket: the next call must wait about a second
    started = time.monotonic()
    await call_model(ctx, ScriptedModel([text("x")]), HELLO)
    assert 0.8 < time.monotonic() - started < 2.0


async def test_cost_limit_is_a_hard_cap_even_for_parallel_calls(workspace):
    from runtime.testing import FunctionModel

    ctx = make_ctx(workspace)
    ctx.usage.limits = UsageLimits(max_cost_usd=0.01)  # gpt-4.1-mini: $1.60 per 1M output tokens
    sent_caps = []

    async def long_answers(request):
        sent_caps.append(request.max_output_tokens)
        await asyncio.sleep(0.01)
        return text("word " * min(request.max_output_tokens, 5000))  # a model that uses its whole allowance

    model = FunctionModel(long_answers, name="gpt-4.1-mini")
    results = await asyncio.gather(*(call_model(ctx, model, HELLO) for _ in range(6)), return_exceptions=True)
    assert any(isinstance(r, UsageLimitExceeded) for r in results)
    assert ctx.usage.total.cost_usd <= 0.01
    assert all(cap is not None and cap <= 16384 for cap in sent_caps)


async def test_parallel_calls_wait_for_held_budget_instead_of_failing(workspace):
    ctx = make_ctx(workspace)
    ctx.usage.limits = UsageLimits(max_tokens=33000)  # two worst cases (16,384 each) fit, a third must wait
    model = ScriptedModel(["a", "b", "c", "d"], latency_s=0.05)
    results = await asyncio.gather(*(call_model(ctx, model, HELLO) for _ in range(4)))
    assert sorted(r.text for r in results) == ["a", "b", "c", "d"]


def test_token_counting_takes_any_text():
    from runtime.tokens import count_text

    assert count_text("a <|endoftext|> b") > 3  # special-token text in a file is just text
    assert count_text("word " * 300_000) >= 300_000  # longer than the tokenizer takes at once


async def test_calls_caught_in_a_blip_ride_out_the_breaker_instead_of_failing(workspace):
    retry = RetrySettings(
        initial_delay_s=0.02, max_delay_s=0.05, breaker_threshold=4, breaker_cooldown_s=0.2, attempts=10
    )
    ctx = RunContext.create(workspace, Settings(retry=retry))
    down_until = time.monotonic() + 0.15  # the server fails every call for 150 ms, then recovers

    def blip(request):
        return TransientModelError("500", status=500) if time.monotonic() < down_until else text("ok")

    model = FunctionModel(blip)
    results = await asyncio.gather(*(call_model(ctx, model, HELLO) for _ in range(4)))
    assert [r.text for r in results] == ["ok"] * 4
    assert ctx.breaker.state == "closed"
    new_call_while_open = FunctionModel(lambda r: TransientModelError("500", status=500))
    for _ in range(4):
        with pytest.raises(ModelError):
            await call_model(ctx, new_call_while_open, HELLO)
    with pytest.raises(CircuitOpenError):  # a new call still fails fast while the breaker is open
        await call_model(ctx, model, HELLO)


async def test_guard_does_not_leak_waiters():
    token = CancellationToken()

    async def quick():
        return 1

    for _ in range(2000):
        assert await token.guard(quick()) == 1
    await asyncio.sleep(0)  # let the last abandoned waiter run its cleanup
    assert len(token._waiters) == 0


def test_streamed_tool_calls_sent_whole_under_one_index_stay_separate():
    from runtime.client import _CallAssembler

    openai_style = _CallAssembler()
    openai_style.add(0, "call_1", "read_file", '{"pa')
    openai_style.add(0, None, None, 'th": "a"}')
    openai_style.add(1, "call_2", "read_file", '{"path": "b"}')
    ollama_style = _CallAssembler()
    ollama_style.add(0, "call_1", "read_file", '{"path": "a"}')
    ollama_style.add(0, "call_2", "read_file", '{"path": "b"}')
    no_ids = _CallAssembler()
    no_ids.add(None, None, "read_file", '{"path": "a"}')
    no_ids.add(None, None, "list_files", '{"path": "."}')
    for assembler in (openai_style, ollama_style):
        assert [(c.name, c.arguments) for c in assembler.result()] == [
            ("read_file", '{"path": "a"}'),
            ("read_file", '{"path": "b"}'),
        ]
    assert [c.name for c in no_ids.result()] == ["read_file", "list_files"]


async def test_execute_tool_works_from_async_code_too(workspace, monkeypatch):
    from tools.registry import execute_tool

    monkeypatch.chdir(workspace)
    assert "Successfully wrote" in execute_tool("write_file", {"path": "x.txt", "content": "hi\n"})
    assert execute_tool("read_file", {"path": "x.txt"}).rstrip().endswith("hi")


def test_state_files_never_follow_a_planted_symlink(workspace, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (workspace / ".shunter" / "logs").mkdir(parents=True)
    (workspace / ".shunter" / "logs" / "events.jsonl").symlink_to(victim)
    with pytest.raises(ConfigError, match="symbolic link"):
        RunContext.create(workspace, Settings())
    assert victim.read_text() == "precious\n"
