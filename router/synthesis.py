"""The final answer, written from the subtask results."""

from __future__ import annotations

from agents.quoting import Upstream, quote_upstream
from planner.models import Plan
from prompts import render
from router.records import SubtaskRecord
from runtime import telemetry
from runtime.calls import call_model
from runtime.context import RunContext
from runtime.errors import ModelError, RunCancelled, ShunterError
from runtime.model import Model, ModelRequest
from tools.truncate import truncate_result


def fallback_answer(records: list[SubtaskRecord], reason: str | None = None) -> str:
    """An answer without a model: what each subtask produced, for runs that stopped early."""
    lines = [reason] if reason else []
    for r in records:
        body = r.result or r.error or ""
        lines.append(f"[{r.id} · {r.agent} · {r.status}] {body}".strip())
    return "\n".join(lines)


class SynthesisFailed(ShunterError):
    """The final answer could not be written; `answer` holds the subtask results instead."""

    def __init__(self, message: str, answer: str):
        super().__init__(message)
        self.answer = answer


@telemetry.traced_synthesis
async def synthesize(
    request: str, plan: Plan, records: list[SubtaskRecord], ctx: RunContext, model: Model
) -> str:
    """One subtask that succeeded needs no synthesis: its result is the answer. Raises
    SynthesisFailed (carrying a fallback answer) when the model cannot write it."""
    if len(records) == 1 and records[0].status == "succeeded":
        return records[0].result
    quoted = quote_upstream(
        [
            Upstream(
                r.id,
                r.agent,
                r.status,
                truncate_result(
                    r.result or (r.error or ""), 12_000, ctx.state_dir / "outputs", f"result-{r.id}"
                ),
            )
            for r in records
        ]
    )
    instructions = "\n".join(f"- {s.id} ({s.agent}): {s.instruction}" for s in plan.subtasks)
    messages = [
        {"role": "system", "content": render("synthesis")},
        {"role": "user", "content": f"User's request: {request}\n\nThe plan:\n{instructions}\n\n{quoted}"},
    ]
    sctx = ctx.for_subtask("synthesis", "synthesis")
    try:
        stream_cb = ctx.on_text
        on_text = (lambda d: stream_cb(d, "synthesis")) if stream_cb else None
        resp = await call_model(
            sctx, model, ModelRequest(messages=messages, stream=ctx.settings.model.stream, on_text=on_text)
        )
    except RunCancelled:
        raise
    except (ModelError, ShunterError) as e:
        raise SynthesisFailed(
            f"The final answer could not be written: {e}",
            fallback_answer(
                records, f"The final answer could not be written ({e}); the subtask results were:"
            ),
        ) from e
    if resp.finish_reason == "length" or not resp.text.strip():
        why = (
            "it was cut off at the output token limit" if resp.text.strip() else "the model returned nothing"
        )
        raise SynthesisFailed(
            f"The final answer is incomplete: {why}.",
            (resp.text.strip() + "\n\n" if resp.text.strip() else "")
            + fallback_answer(records, "The subtask results:"),
        )
    return resp.text.strip()
