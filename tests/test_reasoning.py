"""Reasoning tokens (issue 14): priced as output, shown in usage, expected by the estimate from
the price table's typical figure, then learned per model from the run history."""

from __future__ import annotations

import dataclasses
from typing import Any

from router.calibration import history_stats
from runtime.context import approve_all
from runtime.prices import PriceTable
from runtime.store import Store
from runtime.testserver import Text, ToolCalls
from runtime.tokens import count_messages, count_text
from shunter import api
from shunter.render import estimate_table, usage_summary
from shunter.wiring import OpenAIProvider
from tests.server_fixtures import TEST_API_KEY
from tests.test_memory import LONG_READ, LONG_READ_TOOLS
from tests.test_resume import Brain, arun, files_workspace

REASONING = 200
"""Hidden reasoning tokens the scripted model reports for every request."""


class ReasoningBrain(Brain):
    """The Brain's answers, each reported with REASONING reasoning tokens on top of its text."""

    def __call__(self, body: dict[str, Any]):
        reply = super().__call__(body)
        assert isinstance(reply, Text | ToolCalls)
        prompt = count_messages(body["messages"], body.get("tools"), "gpt-4.1")
        shown = count_text(getattr(reply, "content", "") or "") + (
            sum(count_text(str(c)) for c in reply.calls) if isinstance(reply, ToolCalls) else 0
        )
        return dataclasses.replace(reply, usage=(prompt, shown + REASONING, 0, REASONING))


async def _estimate_row(ws, server, model: str, store: Store | None = None) -> dict:
    overrides = {"model": {"name": model, "base_url": server.base_url, "api_key": TEST_API_KEY}}
    ctx = api.prepare(ws, overrides=overrides, approve=approve_all)
    provider = OpenAIProvider(ctx.settings)
    try:
        planned = await api.plan("read four files", ctx=ctx, model=provider, store=store)
    finally:
        await provider.aclose()
    return planned.estimate


def test_a_price_override_keeps_the_models_reasoning_figure():
    bundled = PriceTable.load()
    assert bundled.reasoning("gpt-5-mini") > 0 and bundled.reasoning("gpt-4.1") == 0
    assert bundled.reasoning("gpt-5-mini-2025-08-07") == bundled.reasoning("gpt-5-mini")  # snapshots too
    repriced = PriceTable.load({"gpt-5-mini": {"input": 1.0, "output": 4.0}})
    assert repriced.reasoning("gpt-5-mini") == bundled.reasoning("gpt-5-mini")
    assert (
        PriceTable.load({"gpt-5-mini": {"input": 1, "output": 4, "reasoning": 0}}).reasoning("gpt-5-mini")
        == 0
    )


async def test_the_estimate_expects_a_reasoning_models_hidden_output(workspace, test_server):
    ws = files_workspace(workspace)
    test_server.handler = Brain(LONG_READ, LONG_READ_TOOLS)
    plain = await _estimate_row(ws, test_server, "gpt-4.1-mini")
    thinking = await _estimate_row(ws, test_server, "gpt-5-mini")
    per_request = PriceTable.load().reasoning("gpt-5-mini")

    row, plain_row = thinking["subtasks"][0], plain["subtasks"][0]
    assert plain_row["reasoning_tokens"] == 0 and plain["reasoning_tokens"] == 0
    assert row["reasoning_tokens"] == int(row["iterations"] * per_request)
    assert row["output_tokens"] == plain_row["output_tokens"] + row["reasoning_tokens"]
    assert thinking["synthesis"]["reasoning_tokens"] == per_request
    assert thinking["reasoning_tokens"] == row["reasoning_tokens"] + per_request
    assert f"out includes {thinking['reasoning_tokens']:,} reasoning" in estimate_table(thinking)
    assert "reasoning" not in estimate_table(plain)


async def test_history_learns_a_models_reasoning_and_usage_shows_it(workspace, test_server):
    ws = files_workspace(workspace)
    test_server.handler = ReasoningBrain(LONG_READ, LONG_READ_TOOLS)
    before = (await _estimate_row(ws, test_server, "scripted"))["subtasks"][0]
    results = [await arun(ws, test_server, "read four files") for _ in range(3)]

    usage = results[-1].to_dict()["usage"]
    assert usage["reasoning_tokens"] == REASONING * usage["requests"]
    assert f"({usage['reasoning_tokens']:,} reasoning)" in usage_summary(results[-1].to_dict())

    with Store.open(ws) as store:
        learned = history_stats(store)["file:scripted"]
        after = (await _estimate_row(ws, test_server, "scripted", store))["subtasks"][0]
    assert before["reasoning_tokens"] == 0  # the scripted model has no reasoning figure
    assert learned.reasoning_per_iteration == REASONING
    assert after["reasoning_tokens"] == after["iterations"] * REASONING == 5 * REASONING
    actual = results[-1].subtasks[0].usage
    assert abs(after["output_tokens"] - actual["output_tokens"]) <= 1
