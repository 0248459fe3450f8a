"""`call_model`: every model call of a run goes through here, whatever the model is.

Order matters: cancellation, then the usage limits (with the input tokens counted), then the
rate limiter, then per attempt the circuit breaker and the call itself, raced against the
cancellation token so a cancelled run aborts its in-flight request (streams included).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time

from runtime import telemetry
from runtime.context import RunContext
from runtime.errors import CircuitOpenError, ModelError, RunCancelled, TransientModelError, UsageLimitExceeded
from runtime.model import Model, ModelRequest, ModelResponse
from runtime.retry import CircuitBreaker, verdict, with_retries
from runtime.tokens import count_messages


async def call_model(ctx: RunContext, model: Model, request: ModelRequest) -> ModelResponse:
    ctx.cancel.raise_if_cancelled()
    input_tokens = count_messages(request.messages, request.tools, model.name)
    try:  # the common case needs no waiting, and no guard task
        reservation = ctx.usage.reserve(input_tokens, model.name, request.max_output_tokens)
    except UsageLimitExceeded:
        reservation = await ctx.cancel.guard(
            ctx.usage.reserve_when_possible(input_tokens, model.name, request.max_output_tokens)
        )
    try:
        return await _call(ctx, model, request, input_tokens, reservation.output_cap)
    finally:
        ctx.usage.release(reservation)


async def _call(
    ctx: RunContext, model: Model, request: ModelRequest, input_tokens: int, output_cap: int | None
) -> ModelResponse:
    if output_cap is not None and output_cap != request.max_output_tokens:
        request = dataclasses.replace(request, max_output_tokens=output_cap)
    override = ctx.settings.agents.get(ctx.agent or "")
    if request.api is None and override is not None and override.api:
        # [agents.NAME] api: the provider is keyed by model name only, so the agent's choice rides on the request.
        request = dataclasses.replace(request, api=override.api)
    if ctx.rate_limiter is not None and ctx.rate_limiter.limits(model.name):
        with telemetry.span("shunter.rate_limit", {"gen_ai.request.model": model.name}):
            waited = await ctx.cancel.guard(ctx.rate_limiter.acquire(model.name, input_tokens))
        if waited:
            ctx.emit("model.rate_limited", model=model.name, waited_s=round(waited, 3))

    breaker: CircuitBreaker | None = ctx.breaker
    retries = 0

    tries = 0

    async def attempt() -> ModelResponse:
        nonlocal tries
        tries += 1
        if breaker is not None:
            try:
                breaker.before_call()
            except CircuitOpenError as e:
                # A new call fails fast. A call already in its retries (caught in the same blip
                # that opened the breaker) waits for the probe instead, within the retry budget.
                if tries == 1:
                    raise
                raise TransientModelError(str(e), retry_after=max(e.retry_after, 0.25)) from e
        with verdict(breaker):
            if ctx.durable is not None:  # a recorded step: a recovered run does not pay twice
                waited = await ctx.cancel.guard(ctx.durable.permit(model.name))
                if waited > 0.5:  # a permit takes a few polls; longer is the cluster's limit
                    ctx.emit("model.rate_limited", model=model.name, waited_s=round(waited, 3), cluster=True)
                return await ctx.cancel.guard(
                    ctx.durable.model_call(model.name, model.complete, request, input_tokens)
                )
            return await ctx.cancel.guard(model.complete(request))

    def on_retry(exc: BaseException, delay: float, attempt_no: int) -> None:
        nonlocal retries
        retries += 1
        telemetry.retried(retries, str(exc), delay)
        if request.on_text:  # text a failed stream already showed is about to come again
            request.on_text("\n[retrying] ")
        if request.on_retry:
            request.on_retry()
        ctx.emit(
            "model.retry",
            level="WARNING",
            model=model.name,
            attempt=attempt_no,
            reason=str(exc),
            delay_s=round(delay, 3),
        )

    async def sleep(seconds: float) -> None:
        await ctx.cancel.guard(asyncio.sleep(seconds))

    with telemetry.model_span(ctx, model.name, request) as sp:
        started = time.monotonic()
        ctx.emit(
            "model.request",
            model=model.name,
            input_tokens=input_tokens,
            messages=len(request.messages),
            tools=len(request.tools or []),
            stream=request.stream,
        )
        try:
            resp = await with_retries(attempt, ctx.settings.retry, on_retry, sleep)
        except (RunCancelled, CircuitOpenError):
            raise
        except TransientModelError as e:
            ctx.emit("model.error", level="ERROR", model=model.name, error=str(e), retries=retries)
            suffix = f" (after {retries + 1} attempts)" if retries else ""
            cap = ctx.settings.retry.max_retry_after_s
            if e.retry_after is not None and e.retry_after > cap:
                # Say why a retryable error was not retried, and which setting would change that.
                suffix += (
                    f"; the server asked to wait {e.retry_after:g} s, longer than "
                    f"retry.max_retry_after_s ({cap:g} s), so it was not retried"
                )
            raise ModelError(f"{e}{suffix}", status=e.status) from e
        except ModelError as e:
            ctx.emit("model.error", level="ERROR", model=model.name, error=str(e), retries=retries)
            raise
        delta = ctx.usage.record_response(
            model.name, **resp.token_counts(), subtask=ctx.subtask_id, agent=ctx.agent
        )
        ctx.emit(
            "model.response",
            model=model.name,
            input_tokens=resp.input_tokens,
            output_tokens=resp.output_tokens,
            cached_input_tokens=resp.cached_input_tokens,
            tool_calls=len(resp.tool_calls),
            retries=retries,
            latency_s=round(time.monotonic() - started, 4),
            cost_usd=delta.cost_usd,
            usage_counted=resp.usage_counted,
        )
        telemetry.model_done(ctx, sp, resp, retries, delta.cost_usd)
        ctx.usage.check_after()
        return resp
