"""The planner agent: request -> valid Plan, with structured output, a JSON-from-text fallback
and repair rounds that send the exact validation errors back."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from agents.registry import AgentRegistry, may_write, resolve_tools
from planner.models import Plan, plan_response_format
from planner.validate import validate_plan
from prompts import render
from runtime.calls import call_model
from runtime.context import RunContext
from runtime.errors import ModelError, PlanError
from runtime.model import Model, ModelRequest
from runtime.usage import Usage
from tools.base import Tool, strict_schema


@dataclass
class PlanOutcome:
    plan: Plan
    attempts: int
    usage: Usage = field(default_factory=Usage)
    repairs: list[list[str]] = field(default_factory=list)
    """The validation errors of each rejected attempt."""
    notes: list[str] = field(default_factory=list)


def describe_agents(agents: AgentRegistry, ctx: RunContext) -> str:
    lines = []
    for a in agents:
        tools = ", ".join(t.name for t in resolve_tools(a, ctx.settings, ctx.tools))
        writes = "can change files or run commands" if may_write(a, ctx.settings, ctx.tools) else "read-only"
        lines.append(f"- {a.name}: {a.description} Tools: {tools}. {writes}.")
    return "\n".join(lines)


def callable_tools(agents: AgentRegistry, ctx: RunContext) -> list[Tool]:
    """Every tool some agent has, in agent order: what a compiled subtask may call."""
    seen: dict[str, Tool] = {}
    for a in agents:
        for t in resolve_tools(a, ctx.settings, ctx.tools):
            seen.setdefault(t.name, t)
    return list(seen.values())


def _param(name: str, prop: dict[str, Any], field: Any) -> str:
    types = [o.get("type", "object") for o in prop["anyOf"]] if "anyOf" in prop else [prop.get("type", "any")]
    if not field.is_required() and field.default is not None:
        types = [t for t in types if t != "null"]  # strict mode's null means "the default"
    shown = f"{name}: {' | '.join(str(t) for t in types)}"
    return shown if field.is_required() else f"{shown} = {json.dumps(field.default)}"


def describe_tools(agents: AgentRegistry, ctx: RunContext) -> str:
    """One line per callable tool: signature (from its derived schema), effect, who has it,
    and which parameters may hold references."""
    lines = []
    has = {a.name: {t.name for t in resolve_tools(a, ctx.settings, ctx.tools)} for a in agents}
    for t in callable_tools(agents, ctx):
        props = strict_schema(t.args_model)["properties"]
        fields = t.args_model.model_fields
        sig = ", ".join(_param(n, props[n], fields[n]) for n in props)
        owners = ", ".join(name for name, names in has.items() if t.name in names)
        effect = "read-only" if t.read_only else "changes things"
        if t.read_only_mode:
            effect = "read-only subtasks may run only what the policy proves read-only"
        summary = t.description.split("\n\n")[0].replace("\n", " ").strip()
        data = f" References allowed in: {', '.join(sorted(t.data_params))}." if t.data_params else ""
        lines.append(f"- {t.name}({sig}) [{effect}; agents: {owners}] {summary}{data}")
    return "\n".join(lines)


def planner_messages(
    request: str, agents: AgentRegistry, ctx: RunContext, memory: str = ""
) -> list[dict[str, Any]]:
    system = render("planner", agents=describe_agents(agents, ctx), tools=describe_tools(agents, ctx))
    # Memory of past runs holds text that came from tools and models: it goes with the user
    # message, quoted as data by whoever made it, never into the system prompt.
    user = f"{memory.strip()}\n\nRequest: {request}" if memory.strip() else f"Request: {request}"
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


_FENCE = re.compile(r"```(?:json)?\s*(\{.*?\})\s*```", re.DOTALL)


def parse_plan_text(text: str) -> Plan:
    """Parse a plan from the model's text: bare JSON, fenced JSON, or the outermost {...}."""
    candidates = [text.strip()]
    candidates += _FENCE.findall(text)
    if "{" in text and "}" in text:
        candidates.append(text[text.find("{") : text.rfind("}") + 1])
    last: Exception | None = None
    for c in candidates:
        try:
            return Plan.model_validate(json.loads(c))
        except (json.JSONDecodeError, ValidationError) as e:
            last = e
    raise ValueError(
        f"the answer is not a plan JSON object ({str(last).splitlines()[0] if last else 'empty'})"
    )


def normalise(plan: Plan, agents: AgentRegistry, ctx: RunContext) -> list[str]:
    """Fix what needs no model: a dependency listed twice; a call of a read-only tool marked as
    changing things (it cannot, and marking it read-only lets it run in parallel)."""
    notes = []
    tools = {t.name: t for t in callable_tools(agents, ctx)}
    for s in plan.subtasks:
        unique = list(dict.fromkeys(s.depends_on))
        if unique != s.depends_on:
            notes.append(f"{s.id}: a dependency listed twice was merged")
            s.depends_on = unique
        t = tools.get(s.call.tool) if s.call else None
        if t is not None and t.read_only and not s.read_only:
            notes.append(f"{s.id}: a call of the read-only tool {t.name} was marked read-only")
            s.read_only = True
    return notes


class PlanSession:
    """One conversation with the planner: each answer asked for, checked, and the repair rounds
    that send the exact validation errors back. `prepare` turns an answer into the plan that is
    validated (a replan: the finished subtasks with the new ones)."""

    def __init__(
        self,
        ctx: RunContext,
        model: Model,
        agents: AgentRegistry,
        messages: list[dict[str, Any]],
        prepare: Callable[[Plan], Plan] | None = None,
        extra: Callable[[Plan], list[str]] | None = None,
    ):
        self.ctx, self.model, self.agents, self.messages = ctx, model, agents, messages
        self.pctx = ctx.for_subtask("planner", "planner")
        self.response_format = plan_response_format(callable_tools(agents, self.pctx))
        self.prepare = prepare or (lambda plan: plan)
        self.extra = extra or (lambda plan: [])
        self.structured = True
        self.attempt = 0
        self.repairs: list[list[str]] = []

    @property
    def rounds_left(self) -> bool:
        return self.attempt < self.ctx.settings.planner.repair_rounds + 1

    async def ask(
        self, on_text: Callable[[str], None] | None = None, on_retry: Callable[[], None] | None = None
    ) -> str:
        """The planner's next answer; streamed to `on_text` when it is given."""
        while True:
            req = ModelRequest(
                messages=self.messages,
                response_format=self.response_format if self.structured else None,
                stream=on_text is not None,
                on_text=on_text,
                on_retry=on_retry,
            )
            try:
                resp = await call_model(self.pctx, self.model, req)
            except ModelError as e:
                if self.structured and e.status in (400, 422):
                    # A server without structured output refuses the request: ask for JSON in text
                    # instead (not counted as a repair round).
                    self.structured = False
                    self.ctx.emit("plan.structured_output_refused", level="WARNING", error=str(e))
                    continue
                raise
            self.attempt += 1
            self.messages.append({"role": "assistant", "content": resp.text})
            return resp.text

    def check(self, text: str) -> tuple[Plan | None, list[str], list[str]]:
        """(plan, notes, errors) for one answer; errors empty means the plan is valid."""
        try:
            plan = self.prepare(parse_plan_text(text))
            notes = normalise(plan, self.agents, self.pctx)
            errors = validate_plan(plan, self.agents, self.ctx.settings, self.ctx.tools) + self.extra(plan)
        except ValueError as e:
            return None, [], [f"Your answer could not be read: {e}. Answer with only the JSON object."]
        return plan, notes, errors

    def reject(self, errors: list[str]) -> None:
        """Send the errors back: the next `ask` is a repair round."""
        self.repairs.append(errors)
        self.ctx.emit("plan.invalid", level="WARNING", attempt=self.attempt, errors=errors)
        self.messages.append(
            {
                "role": "user",
                "content": "The plan is invalid:\n- "
                + "\n- ".join(errors)
                + "\nSend the corrected plan as JSON only.",
            }
        )

    def outcome(self, plan: Plan, notes: list[str]) -> PlanOutcome:
        self.ctx.emit("plan.ready", attempts=self.attempt, subtasks=len(plan.subtasks))
        usage = self.ctx.usage.by_subtask.get("planner", Usage())
        return PlanOutcome(plan=plan, attempts=self.attempt, usage=usage, repairs=self.repairs, notes=notes)

    async def finish(self) -> PlanOutcome:
        """Ask (and repair) until the plan is valid or the repair rounds run out."""
        while self.rounds_left:
            plan, notes, errors = self.check(await self.ask())
            if plan is not None and not errors:
                return self.outcome(plan, notes)
            self.reject(errors)
        last = self.repairs[-1] if self.repairs else []
        raise PlanError(
            f"The planner did not produce a valid plan after {self.attempt} attempts: {'; '.join(last)}",
            errors=last,
        )


def planning_session(
    request: str, ctx: RunContext, model: Model, agents: AgentRegistry, memory: str = ""
) -> PlanSession:
    if not request.strip():
        raise PlanError("The request is empty; say what you want done.")
    pctx = ctx.for_subtask("planner", "planner")
    return PlanSession(ctx, model, agents, planner_messages(request, agents, pctx, memory))


async def make_plan(
    request: str, ctx: RunContext, model: Model, agents: AgentRegistry, memory: str = ""
) -> PlanOutcome:
    return await planning_session(request, ctx, model, agents, memory).finish()
