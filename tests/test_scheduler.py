"""planner/ and router/: validation and repair, the DAG scheduler, failure policy, cancellation."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from agents.base import Agent
from agents.registry import AgentRegistry
from planner.models import Plan
from planner.planner import make_plan, parse_plan_text
from planner.validate import validate_plan, waves
from router.run import Planned, execute, plan_request
from runtime.errors import PlanError
from runtime.model import ModelRequest
from runtime.testing import FunctionModel, text
from shunter.wiring import SingleModel
from tools.base import tool
from tools.registry import ToolRegistry


@tool(effect="write")
def note(line: str) -> str:
    """Append a line to notes.

    Args:
        line: The line.
    """
    return "noted"


AGENTS = AgentRegistry(
    [
        Agent(name="reader", description="reads things"),
        Agent(name="writer", description="writes things", tools=("note",)),
    ]
)


def plan_of(*subtasks) -> Plan:
    return Plan.model_validate(
        {
            "goal": "g",
            "subtasks": [
                {"id": i, "agent": a, "instruction": f"do {i}", "depends_on": list(d), "read_only": ro}
                for i, a, d, ro in subtasks
            ],
        }
    )


def brain(plan: Plan | None = None, fail: set[str] = frozenset(), latency: dict[str, float] | None = None):
    """Planner answers `plan`; a subtask answers 'result of <id>' (after its latency), or fails."""

    async def answer(request: ModelRequest):
        system = request.messages[0]["content"]
        if system.startswith("You are the planner"):
            return text(plan.model_dump_json())
        if system.startswith("You write the final answer"):
            return text(
                "final: "
                + ", ".join(
                    sorted(
                        set(__import__("re").findall(r"result of (t\d+)", request.messages[-1]["content"]))
                    )
                )
            )
        sid = request.messages[1]["content"].split("do ")[1].split()[0]
        await asyncio.sleep((latency or {}).get(sid, 0.0))
        if sid in fail:
            raise __import__("runtime.errors", fromlist=["ModelError"]).ModelError(f"boom in {sid}")
        return text(f"result of {sid}; saw: {request.messages[1]['content']}")

    return FunctionModel(answer)


@pytest.fixture
def sched_ctx(ctx):
    ctx.tools = ToolRegistry([note])
    return ctx


async def run_plan(plan: Plan, ctx, model, **settings):
    for k, v in settings.items():
        setattr(ctx.settings, k, v)
    planned = Planned("req", type("O", (), {"plan": plan, "attempts": 1, "notes": []})(), {})
    return await execute(planned, ctx, AGENTS, SingleModel(model))


def spans(result) -> dict[str, tuple[float, float]]:
    return {s.id: (s_rec.started_at, s_rec.finished_at) for s in result.subtasks for s_rec in [s]}


def overlaps(a, b) -> bool:
    return a[0] < b[1] and b[0] < a[1]


async def test_independent_read_only_subtasks_overlap_and_dependants_wait(sched_ctx):
    plan = plan_of(
        ("t1", "reader", [], True),
        ("t2", "reader", [], True),
        ("t3", "reader", [], True),
        ("t4", "reader", ["t1", "t2", "t3"], True),
    )
    result = await run_plan(plan, sched_ctx, brain(latency={"t1": 0.3, "t2": 0.3, "t3": 0.3, "t4": 0.1}))
    assert result.status == "succeeded"
    s = spans(result)
    assert overlaps(s["t1"], s["t2"]) and overlaps(s["t2"], s["t3"])
    assert s["t4"][0] >= max(s["t1"][1], s["t2"][1], s["t3"][1])


async def test_upstream_results_reach_dependants_quoted_as_data(sched_ctx):
    plan = plan_of(("t1", "reader", [], True), ("t2", "reader", ["t1"], True))
    result = await run_plan(plan, sched_ctx, brain())
    t2 = result.subtasks[1].result
    assert '<subtask_result id="t1" agent="reader" status="succeeded" trust="untrusted-data">' in t2
    assert "result of t1" in t2


async def test_side_effecting_subtasks_never_overlap(sched_ctx):
    plan = plan_of(("t1", "writer", [], False), ("t2", "writer", [], False), ("t3", "writer", [], False))
    result = await run_plan(plan, sched_ctx, brain(latency={"t1": 0.15, "t2": 0.15, "t3": 0.15}))
    s = list(spans(result).values())
    assert result.status == "succeeded"
    assert not any(overlaps(a, b) for i, a in enumerate(s) for b in s[i + 1 :])


async def test_max_parallel_caps_concurrency(sched_ctx):
    plan = plan_of(*[(f"t{i}", "reader", [], True) for i in range(1, 7)])
    result = await run_plan(
        plan, sched_ctx, brain(latency={f"t{i}": 0.1 for i in range(1, 7)}), max_parallel=2
    )
    s = list(spans(result).values())
    peak = max(sum(1 for b in s if b[0] <= a[0] < b[1]) for a in s)
    assert peak == 2


async def test_a_failure_skips_exactly_its_dependants(sched_ctx):
    plan = plan_of(
        ("t1", "reader", [], True),
        ("t2", "reader", ["t1"], True),
        ("t3", "reader", ["t2"], True),
        ("t4", "reader", [], True),
        ("t5", "reader", ["t4"], True),
    )
    result = await run_plan(plan, sched_ctx, brain(fail={"t1"}))
    status = {s.id: s.status for s in result.subtasks}
    assert status == {"t1": "failed", "t2": "skipped", "t3": "skipped", "t4": "succeeded", "t5": "succeeded"}
    assert result.subtasks[1].error == "dependency t1 failed" and result.status == "failed"
    assert "result of t5" in result.answer or "t5" in result.answer


async def test_fail_fast_stops_everything(sched_ctx):
    plan = plan_of(("t1", "reader", [], True), ("t2", "reader", [], True), ("t3", "reader", ["t2"], True))
    result = await run_plan(plan, sched_ctx, brain(fail={"t1"}, latency={"t2": 0.2}), fail_fast=True)
    status = {s.id: s.status for s in result.subtasks}
    assert (
        status["t1"] == "failed" and status["t3"] == "skipped" and "--fail-fast" in result.subtasks[2].error
    )


async def test_cancellation_mid_run_stops_fast_and_keeps_finished_work(sched_ctx):
    plan = plan_of(("t1", "reader", [], True), ("t2", "reader", [], True), ("t3", "reader", ["t1"], True))
    task = asyncio.create_task(run_plan(plan, sched_ctx, brain(latency={"t1": 0.05, "t2": 30, "t3": 30})))
    await asyncio.sleep(0.4)
    started = time.monotonic()
    sched_ctx.cancel.cancel("test")
    result = await task
    assert time.monotonic() - started < 0.5
    status = {s.id: s.status for s in result.subtasks}
    assert result.status == "cancelled"
    assert status["t1"] == "succeeded" and status["t2"] == "cancelled" and status["t3"] == "cancelled"
    assert result.subtasks[0].result.startswith("result of t1") and result.usage["requests"] >= 1


async def test_subtask_timeout_fails_that_subtask(sched_ctx):
    plan = plan_of(("t1", "reader", [], True), ("t2", "reader", [], True))
    result = await run_plan(plan, sched_ctx, brain(latency={"t1": 5}), subtask_timeout_s=0.2)
    status = {s.id: s.status for s in result.subtasks}
    assert status == {"t1": "failed", "t2": "succeeded"} and "timed out" in result.subtasks[0].error


async def test_read_only_subtask_of_a_writer_gets_only_read_only_tools(sched_ctx):
    plan = plan_of(("t1", "writer", [], True))
    model = brain()
    await run_plan(plan, sched_ctx, model)
    assert model.requests[0].tools is None  # 'note' writes, so it was withheld


def test_validation_names_every_problem(sched_ctx):
    plan = plan_of(
        ("t1", "reader", ["t3"], True),
        ("t2", "ghost", [], True),
        ("t3", "reader", ["t1"], True),
        ("t1", "reader", ["t9"], True),
    )
    errors = validate_plan(plan, AGENTS, sched_ctx.settings)
    joined = " | ".join(errors)
    assert "'t1' is used more than once" in joined
    assert "agent 'ghost', which is not registered" in joined
    assert "depends on 't9', which does not exist" in joined
    assert "cycle: t1 -> t3 -> t1" in joined or "cycle: t3 -> t1 -> t3" in joined


def test_waves_group_what_runs_together():
    plan = plan_of(
        ("a", "reader", [], True),
        ("b", "reader", [], True),
        ("c", "reader", ["a"], True),
        ("d", "reader", ["b", "c"], True),
    )
    assert waves(plan) == [["a", "b"], ["c"], ["d"]]


def test_plans_parse_from_fenced_or_chatty_text():
    body = {
        "goal": "g",
        "subtasks": [
            {"id": "t1", "agent": "reader", "instruction": "x", "depends_on": [], "read_only": True}
        ],
    }
    assert parse_plan_text("Here you go:\n```json\n" + json.dumps(body) + "\n```").subtasks[0].id == "t1"
    assert parse_plan_text("Sure! " + json.dumps(body) + " Hope it helps").goal == "g"


async def test_an_invalid_plan_is_repaired_with_the_exact_errors(sched_ctx):
    bad = plan_of(("t1", "reader", ["t2"], True), ("t2", "reader", ["t1"], True))
    good = plan_of(("t1", "reader", [], True), ("t2", "reader", ["t1"], True))
    answers = [bad, good]
    model = FunctionModel(lambda r: text(answers.pop(0).model_dump_json()))
    outcome = await make_plan("do it", sched_ctx, model, AGENTS)
    assert outcome.attempts == 2 and "cycle" in outcome.repairs[0][0]
    assert "cycle" in model.requests[1].messages[-1]["content"]


async def test_a_plan_that_stays_invalid_is_refused_and_never_executed(sched_ctx):
    bad = plan_of(("t1", "ghost", [], True))
    model = FunctionModel(
        lambda r: (
            text(bad.model_dump_json())
            if r.messages[0]["content"].startswith("You are the planner")
            else text("EXECUTED")
        )
    )
    with pytest.raises(PlanError, match="not registered"):
        await plan_request("do it", sched_ctx, AGENTS, SingleModel(model))
    assert len(model.requests) == sched_ctx.settings.planner.repair_rounds + 1
    assert all(r.messages[0]["content"].startswith("You are the planner") for r in model.requests)


async def test_one_step_request_needs_no_synthesis_call(sched_ctx):
    plan = plan_of(("t1", "reader", [], True))
    model = brain(plan)
    planned = await plan_request("one thing", sched_ctx, AGENTS, SingleModel(model))
    result = await execute(planned, sched_ctx, AGENTS, SingleModel(model))
    assert result.answer.startswith("result of t1") and len(model.requests) == 2  # planner + t1


async def test_estimate_counts_tokens_and_reports_the_planner_exactly(sched_ctx):
    plan = plan_of(("t1", "reader", [], True), ("t2", "writer", ["t1"], False))
    model = brain(plan)
    planned = await plan_request("two things", sched_ctx, AGENTS, SingleModel(model))
    est = planned.estimate
    assert (
        est["planner"]["requests"] == 1
        and est["planner"]["input_tokens"] == sched_ctx.usage.total.input_tokens
    )
    assert est["low_usd"] <= est["expected_usd"] <= est["high_usd"]
    rows = {r["id"]: r for r in est["subtasks"]}
    assert rows["t2"]["input_tokens"] > rows["t1"]["input_tokens"]  # t2 carries t1's result and a tool schema


async def test_unpriced_model_estimate_says_unknown(sched_ctx):
    sched_ctx.settings.model.name = "my-local-model"
    plan = plan_of(("t1", "reader", [], True))
    planned = await plan_request(
        "x",
        sched_ctx,
        AGENTS,
        SingleModel(FunctionModel(lambda r: text(plan.model_dump_json()), name="my-local-model")),
    )
    assert planned.estimate["expected_usd"] is None and planned.estimate["unpriced_models"] == [
        "my-local-model"
    ]


def test_a_side_effecting_subtask_for_an_agent_that_cannot_change_anything_is_refused(sched_ctx):
    plan = plan_of(("t1", "reader", [], False))
    errors = validate_plan(plan, AGENTS, sched_ctx.settings, sched_ctx.tools)
    assert errors and "agent 'reader' cannot change anything" in errors[0]
    assert (
        validate_plan(plan_of(("t1", "writer", [], False)), AGENTS, sched_ctx.settings, sched_ctx.tools) == []
    )


def test_config_gives_a_specialist_extra_tools(sched_ctx):
    from agents.registry import resolve_tools
    from runtime.config import AgentOverride

    sched_ctx.settings.agents["reader"] = AgentOverride(extra_tools=["note"])
    assert [t.name for t in resolve_tools(AGENTS.get("reader"), sched_ctx.settings, sched_ctx.tools)] == [
        "note"
    ]
    sched_ctx.settings.agents["reader"] = AgentOverride(extra_tools=["no_such_tool"])
    with pytest.raises(Exception, match="not registered"):
        resolve_tools(AGENTS.get("reader"), sched_ctx.settings, sched_ctx.tools)


async def test_servers_without_structured_output_get_a_json_in_text_request(sched_ctx):
    from runtime.errors import ModelError

    good = plan_of(("t1", "reader", [], True))
    sched_ctx.settings.planner.repair_rounds = 0

    def server(request):
        if request.response_format is not None:
            return ModelError(
                "The model server refused the request (400): unknown field response_format", status=400
            )
        return text("Here it is: " + good.model_dump_json())

    model = FunctionModel(server)
    outcome = await make_plan("x", sched_ctx, model, AGENTS)
    assert outcome.plan.subtasks[0].id == "t1" and outcome.attempts == 1
    assert [r.response_format is None for r in model.requests] == [False, True]


async def test_planner_memory_goes_to_the_user_message_not_the_system_prompt(sched_ctx):
    from planner.planner import planner_messages

    messages = planner_messages("do x", AGENTS, sched_ctx, memory="<memory>run 42 wrote notes.md</memory>")
    assert "run 42" not in messages[0]["content"] and "run 42 wrote notes.md" in messages[1]["content"]
    assert messages[1]["content"].endswith("Request: do x")
