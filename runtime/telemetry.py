"""OpenTelemetry spans for a run, named and attributed after the GenAI semantic conventions.

Only `opentelemetry-api` is imported: without an SDK every span is a no-op that costs a
function call. The call sites hold one `with` or one decorator each; the names, attributes and
status rules live here. Tree of one run:

    invoke_workflow shunter            the run (root; resume makes a root of its own)
      plan planner                     planning
        chat {model}                   each model call (tokens, retries, cost)
      invoke_agent {agent}             one per subtask, linked to its dependencies' spans
        chat {model}
        execute_tool {name}
          approve {name}               waiting for the user's answer
      invoke_agent synthesis           the final answer

Prompts, tool arguments and results are recorded only with `[telemetry] capture_content = true`,
and pass the event log's redactor first. Errors and cancellation set the span status to ERROR
with `error.type` ("cancelled" for a cancelled run); success leaves it unset, as the
conventions ask of instrumentation.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, ParamSpec, TypeVar

from opentelemetry import trace
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode

from runtime.errors import RunCancelled

P = ParamSpec("P")
T = TypeVar("T")

_SUBTASK_SPANS: ContextVar[dict[str, Any] | None] = ContextVar("shunter_subtask_spans", default=None)
"""Within a run: subtask id -> its span's context. One dict for the whole run (every scheduler
of it: streamed, repaired, replanned), so a dependant links to a subtask another one ran."""

_TOOL_CALL_ID: ContextVar[str | None] = ContextVar("shunter_tool_call_id", default=None)

CONTENT_LIMIT = 64_000
"""Characters of one captured prompt or payload; the rest is cut (backends truncate anyway)."""


def tracer() -> trace.Tracer:
    # Asked for each time: the CLI (or the user) may install the SDK after this module loads.
    return trace.get_tracer("shunter")


def _clean(attributes: dict[str, Any] | None) -> dict[str, Any]:
    """OpenTelemetry takes str, bool, int, float and lists of one of them; None is dropped."""
    out: dict[str, Any] = {}
    for k, v in (attributes or {}).items():
        if v is None:
            continue
        out[k] = list(v) if isinstance(v, list | tuple) else v
    return out


@contextmanager
def span(
    name: str,
    attributes: dict[str, Any] | None = None,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    links: list[Link] | None = None,
) -> Iterator[Span]:
    """A span made current for the block; an exception leaving it sets the status."""
    with tracer().start_as_current_span(
        name,
        kind=kind,
        attributes=_clean(attributes),
        links=links,
        record_exception=False,
        set_status_on_exception=False,
    ) as sp:
        try:
            yield sp
        except BaseException as e:
            failed(sp, e)
            raise


def failed(sp: Span, e: BaseException) -> None:
    if isinstance(e, RunCancelled | asyncio.CancelledError | KeyboardInterrupt):
        sp.set_attribute("error.type", "cancelled")
        sp.set_status(Status(StatusCode.ERROR, f"cancelled: {e}" if str(e) else "cancelled"))
        return
    sp.record_exception(e)
    sp.set_attribute("error.type", type(e).__name__)
    sp.set_status(Status(StatusCode.ERROR, str(e)[:1000]))


def outcome(sp: Span, status: str, error: str | None = None, key: str = "shunter.status") -> None:
    """A Shunter status (succeeded, failed, cancelled, skipped, limit) on the span."""
    sp.set_attribute(key, status)
    if status == "succeeded":
        return
    sp.set_attribute("error.type", "cancelled" if status == "cancelled" else status)
    sp.set_status(Status(StatusCode.ERROR, (error or status)[:1000]))


def annotate(attributes: dict[str, Any]) -> None:
    """Add attributes to the current span (the model clients use it for what only they know)."""
    sp = trace.get_current_span()
    if sp.is_recording():
        sp.set_attributes(_clean(attributes))


def retried(retries: int, reason: str, delay_s: float) -> None:
    """A model call's attempt failed and is retried: counted and marked on the current span."""
    sp = trace.get_current_span()
    if sp.is_recording():
        sp.set_attribute("shunter.retries", retries)
        sp.add_event("retry", {"shunter.retry.reason": reason[:500], "shunter.retry.delay_s": delay_s})


# -- content, only when asked for ---------------------------------------------------------------


def capturing(ctx: Any) -> bool:
    tel = getattr(ctx.settings, "telemetry", None)
    return bool(tel is not None and tel.capture_content)


def content(ctx: Any, sp: Span, key: str, value: Any) -> None:
    """Record a prompt or payload, scrubbed like the event log, only under capture_content."""
    if not capturing(ctx) or not sp.is_recording():
        return
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    sp.set_attribute(key, ctx.events.redact(text)[:CONTENT_LIMIT])


def _parts(message: dict[str, Any]) -> list[dict[str, Any]]:
    """A Chat Completions message as the conventions' message parts."""
    parts: list[dict[str, Any]] = []
    body = message.get("content")
    if isinstance(body, list):
        body = " ".join(p.get("text", "") for p in body if isinstance(p, dict))
    if message.get("role") == "tool":
        return [{"type": "tool_call_response", "id": message.get("tool_call_id"), "response": body}]
    if body:
        parts.append({"type": "text", "content": body})
    for call in message.get("tool_calls") or []:
        fn = call.get("function", {})
        parts.append(
            {
                "type": "tool_call",
                "id": call.get("id"),
                "name": fn.get("name"),
                "arguments": fn.get("arguments"),
            }
        )
    return parts


def model_content(ctx: Any, sp: Span, messages: list[dict[str, Any]], response: Any = None) -> None:
    if not capturing(ctx):
        return
    if response is None:
        system = [
            {"type": "text", "content": m.get("content")} for m in messages if m.get("role") == "system"
        ]
        content(ctx, sp, "gen_ai.system_instructions", system)
        rest = [{"role": m.get("role"), "parts": _parts(m)} for m in messages if m.get("role") != "system"]
        content(ctx, sp, "gen_ai.input.messages", rest)
        return
    out = {
        "role": "assistant",
        "parts": _parts(response.to_message()),
        "finish_reason": response.finish_reason,
    }
    content(ctx, sp, "gen_ai.output.messages", [out])


# -- the spans of a run -------------------------------------------------------------------------


@contextmanager
def run_span(ctx: Any, request: str, resumed: bool = False) -> Iterator[Span]:
    attrs = {
        "gen_ai.operation.name": "invoke_workflow",
        "gen_ai.workflow.name": "shunter",
        "shunter.run_id": ctx.run_id,
        "shunter.resumed": resumed,
    }
    token = _SUBTASK_SPANS.set({})
    try:
        with span("invoke_workflow shunter", attrs) as sp:
            content(ctx, sp, "shunter.request", request)
            yield sp
    finally:
        _SUBTASK_SPANS.reset(token)


@contextmanager
def plan_span(*, streamed: bool = False, repair: bool = False, round_: int = 0) -> Iterator[Span]:
    """`plan planner`: one planning (its model calls are its children). A streamed plan's
    subtasks start while it is open; their spans are its siblings, children of the run."""
    attrs = {
        "gen_ai.operation.name": "plan",
        "gen_ai.agent.name": "planner",
        "shunter.plan.streamed": streamed,
        "shunter.plan.repair": repair or None,
        "shunter.plan.round": round_ or None,
    }
    with span("plan planner", attrs) as sp:
        yield sp


def planned(sp: Span, outcome: Any, estimate: dict[str, Any] | None = None) -> None:
    """What planning produced, on its span (a PlanOutcome, and the estimate when made)."""
    sp.set_attribute("shunter.plan.subtasks", len(outcome.plan.subtasks))
    sp.set_attribute("shunter.plan.attempts", outcome.attempts)
    expected = (estimate or {}).get("expected_usd")
    if isinstance(expected, int | float):
        sp.set_attribute("shunter.estimate.expected_usd", float(expected))


def rejected(ctx: Any, sp: Span, problems: list[str]) -> None:
    """A plan sent back to the planner (the repair round that follows has its own span)."""
    sp.set_attribute("error.type", "invalid_plan")
    sp.set_attribute("shunter.plan.problems", len(problems))
    sp.set_status(Status(StatusCode.ERROR, ctx.events.redact("; ".join(problems))[:1000]))


def traced_plan(fn: Callable[P, Awaitable[T]]) -> Callable[P, Coroutine[Any, Any, T]]:
    """`plan planner` around the planning function (request, ctx, ...) -> Planned."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        with plan_span() as sp:
            result: Any = await fn(*args, **kwargs)
            planned(sp, result.outcome, result.estimate)
            return result

    return wrapper


def traced_synthesis(fn: Callable[P, Awaitable[T]]) -> Callable[P, Coroutine[Any, Any, T]]:
    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        attrs = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "synthesis"}
        with span("invoke_agent synthesis", attrs):
            return await fn(*args, **kwargs)

    return wrapper


async def traced_subtask(work: Awaitable[T], ctx: Any, subtask: Any, spans: dict[str, Any]) -> T:
    """Run one subtask's coroutine in `invoke_agent {agent}`, linked to the spans of the subtasks
    it depends on. `spans` (the scheduler's) serves when there is no run span around."""
    run_spans = _SUBTASK_SPANS.get()
    if run_spans is not None:
        spans = run_spans
    links = [Link(spans[d]) for d in subtask.depends_on if d in spans]
    attrs = {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.name": subtask.agent,
        "shunter.subtask.id": subtask.id,
        "shunter.subtask.read_only": subtask.read_only,
        "shunter.subtask.depends_on": list(subtask.depends_on),
        "shunter.subtask.call": subtask.call.tool if getattr(subtask, "call", None) else None,
    }
    with span(f"invoke_agent {subtask.agent}", attrs, links=links) as sp:
        spans[subtask.id] = sp.get_span_context()
        content(ctx, sp, "shunter.subtask.instruction", subtask.instruction)
        result: Any = await work
        outcome(sp, result.status, result.error, key="shunter.subtask.status")
        content(ctx, sp, "shunter.subtask.result", result.text)
        return result


@contextmanager
def model_span(ctx: Any, model: str, request: Any) -> Iterator[Span]:
    attrs = {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": model,
        "gen_ai.agent.name": ctx.agent,
        "gen_ai.request.max_tokens": request.max_output_tokens,
        "gen_ai.output.type": "json" if request.response_format else "text",
        "shunter.subtask.id": ctx.subtask_id,
        "shunter.stream": request.stream,
    }
    with span(f"chat {model}", attrs, kind=SpanKind.CLIENT) as sp:
        model_content(ctx, sp, request.messages)
        yield sp


def model_done(ctx: Any, sp: Span, response: Any, retries: int, cost_usd: float | None) -> None:
    sp.set_attributes(
        _clean(
            {
                "gen_ai.response.model": response.model or None,
                "gen_ai.response.finish_reasons": [response.finish_reason]
                if response.finish_reason
                else None,
                "gen_ai.usage.input_tokens": response.input_tokens,
                "gen_ai.usage.output_tokens": response.output_tokens,
                "gen_ai.usage.cache_read.input_tokens": response.cached_input_tokens,
                "shunter.usage.reasoning_tokens": response.reasoning_tokens,
                "shunter.usage.counted_locally": response.usage_counted,
                "shunter.retries": retries,
                "shunter.cost_usd": cost_usd,
                "shunter.tool_calls": len(response.tool_calls),
            }
        )
    )
    model_content(ctx, sp, [], response)


def traced_tool(
    failed_result: Callable[[Any], bool],
) -> Callable[[Callable[..., Awaitable[str]]], Callable[..., Coroutine[Any, Any, str]]]:
    """`execute_tool {name}` around aexecute_tool(name, args, ctx, ...); a result for which
    `failed_result` is true (a refusal, an error text) sets the status to ERROR."""

    def decorate(fn: Callable[..., Awaitable[str]]) -> Callable[..., Coroutine[Any, Any, str]]:
        @functools.wraps(fn)
        async def wrapper(name: str, args: Any, ctx: Any, *rest: Any, **kw: Any) -> str:
            attrs = {
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": name,
                "gen_ai.tool.type": "function",
                "gen_ai.tool.call.id": _TOOL_CALL_ID.get(),
                "gen_ai.agent.name": ctx.agent,
                "shunter.subtask.id": ctx.subtask_id,
            }
            with span(f"execute_tool {name}", attrs) as sp:
                content(ctx, sp, "gen_ai.tool.call.arguments", args)
                result = await fn(name, args, ctx, *rest, **kw)
                if failed_result(result):
                    sp.set_attribute("error.type", "tool_error")
                    sp.set_status(Status(StatusCode.ERROR, ctx.events.redact(str(result))[:300]))
                content(ctx, sp, "gen_ai.tool.call.result", str(result))
                return result

        return wrapper

    return decorate


async def tool_call(call_id: str | None, work: Awaitable[T]) -> T:
    """Await one of the model's tool calls with its id known to the `execute_tool` span inside
    (set here, in the coroutine that runs it, so calls gathered in parallel keep their own)."""
    token = _TOOL_CALL_ID.set(call_id)
    try:
        return await work
    finally:
        _TOOL_CALL_ID.reset(token)


@contextmanager
def approval_span(ctx: Any, request: Any) -> Iterator[Span]:
    attrs = {"shunter.approval.tool": request.tool, "shunter.approval.kind": request.kind}
    with span(f"approve {request.tool}", attrs) as sp:
        content(ctx, sp, "shunter.approval.summary", request.summary)
        yield sp
