"""Embedders for semantic memory: the model server's /v1/embeddings (through the openai SDK) or
sentence-transformers on this machine (runtime/local_embeddings.py). Either may be unavailable
(no endpoint, no package, a usage limit reached): it then says so once and answers None, and
memory keeps to full-text search. Memory never fails a run.

A server embedding call takes the same path as a model call: the usage limits are checked
before it, it is retried by the one retry layer (runtime/retry.py, the SDK's own retries off)
under the run's circuit breaker, raced against the run's cancellation token, logged as
model.request / model.response events and counted in the run's usage under agent "memory".
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable
from typing import Protocol, TypeVar

import openai

from runtime.client import async_openai, retry_after
from runtime.config import OPENAI_DEFAULT_BASE_URL, Settings
from runtime.context import RunContext
from runtime.errors import CircuitOpenError, ModelError, TransientModelError, UsageLimitExceeded
from runtime.events import Redactor
from runtime.local_embeddings import LocalEmbedder
from runtime.notices import notice_once
from runtime.retry import CircuitBreaker, verdict, with_retries
from runtime.tokens import count_text
from runtime.usage import UsageTracker

EMBED_TIMEOUT_S = 30.0
SERVER_MAX_DISTANCE = 0.75
MEMORY_AGENT = "memory"
"""The usage breakdown key embedding calls are counted under."""
_TRANSIENT_STATUS = {408, 409, 429}


class Embedder(Protocol):
    key: str
    """Names the vector space; stored with each vector, so a change of model re-embeds."""
    max_distance: float
    """Cosine distance beyond which a past request is not similar (`[memory] max_distance`)."""

    async def embed(self, texts: list[str]) -> list[list[float]] | None:
        """One vector per text, or None when this embedder cannot answer (said once)."""
        ...

    async def aclose(self) -> None: ...


class ServerEmbedder:
    """`[memory] embedding_model` on the configured OpenAI-compatible endpoint. `ctx` is the
    run's context (its limits, breaker, token and event log); without one (`shunter memory
    search`) the call is still retried and counted in `usage`."""

    def __init__(self, settings: Settings, usage: UsageTracker | None = None, ctx: RunContext | None = None):
        m = settings.model
        self.settings, self.ctx = settings, ctx
        self.usage = ctx.usage if ctx is not None else usage
        self.model = settings.memory.embedding_model
        self.key = f"server:{self.model}"
        self.max_distance = settings.memory.max_distance or SERVER_MAX_DISTANCE
        self.base_url = (m.base_url or OPENAI_DEFAULT_BASE_URL).rstrip("/")
        self.shown_url = re.sub(r"//[^/@]*@", "//", self.base_url)  # never show a user:password@ part
        self.available = True
        self._cache: dict[str, list[float]] = {}
        key = m.api_key.get_secret_value() if m.api_key else "not-needed"  # local servers ignore it
        self._redact = Redactor([key])
        self._client = async_openai(self.base_url, key, min(m.timeout_s, EMBED_TIMEOUT_S))

    async def embed(self, texts: list[str]) -> list[list[float]] | None:
        if not self.available:
            return None
        todo = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if todo:
            got = await self._call(todo)
            if got is None:
                return None
            self._cache.update(zip(todo, got, strict=True))
        return [self._cache[t] for t in texts]

    async def _call(self, texts: list[str]) -> list[list[float]] | None:
        if self.ctx is not None:
            self.ctx.cancel.raise_if_cancelled()  # a cancelled run makes no new call
        tokens = sum(count_text(t) for t in texts)
        try:
            reservation = self.usage.reserve(tokens, self.model, 0, min_output=0) if self.usage else None
        except UsageLimitExceeded as e:
            self._off(
                f"Semantic memory is off for now: embedding the request ({tokens} tokens) would pass "
                f"the run's usage limit ({e}); memory uses full-text search.",
                key="limit",
            )
            return None
        try:
            return await self._retried(texts, tokens)
        except (CircuitOpenError, ModelError) as e:
            self._off(
                f"Semantic memory is off for now: the model server at {self.shown_url} gave no "
                f"embeddings ({e}); memory uses full-text search. Set [memory] embedding_model to a "
                'model it serves, or embedder = "local" or "off".'
            )
            return None
        finally:
            if reservation is not None and self.usage is not None:
                self.usage.release(reservation)

    async def _retried(self, texts: list[str], tokens: int) -> list[list[float]]:
        breaker: CircuitBreaker | None = self.ctx.breaker if self.ctx else None
        guard = self.ctx.cancel.guard if self.ctx else _unguarded

        async def attempt() -> list[list[float]]:
            if breaker is not None:
                breaker.before_call()
            with verdict(breaker):
                try:
                    resp = await guard(self._client.embeddings.create(model=self.model, input=texts))
                except openai.APIError as e:
                    raise self._mapped(e) from e
            self._count(resp, tokens)
            return [list(d.embedding) for d in sorted(resp.data, key=lambda d: d.index)]

        def on_retry(exc: BaseException, delay: float, attempt_no: int) -> None:
            self._emit(
                "model.retry", level="WARNING", attempt=attempt_no, reason=str(exc), delay_s=round(delay, 3)
            )

        async def sleep(seconds: float) -> None:
            await guard(asyncio.sleep(seconds))

        self._emit("model.request", input_tokens=tokens, embeddings=len(texts))
        return await with_retries(attempt, self.settings.retry, on_retry, sleep)

    def _count(self, resp: object, estimate: int) -> None:
        used = getattr(resp, "usage", None)
        tokens = used.prompt_tokens if used is not None else estimate  # a server that omits usage: our count
        delta = (
            self.usage.record_response(self.model, input_tokens=tokens, output_tokens=0, agent=MEMORY_AGENT)
            if self.usage is not None
            else None
        )
        self._emit(
            "model.response",
            input_tokens=tokens,
            output_tokens=0,
            cost_usd=delta.cost_usd if delta is not None else None,
            usage_counted=used is None,
        )

    def _mapped(self, e: openai.APIError) -> ModelError:
        if isinstance(e, openai.APITimeoutError):
            return TransientModelError("the embeddings request timed out")
        if isinstance(e, openai.APIStatusError):
            status = e.status_code
            detail = self._redact(str(e.message))
            if status in _TRANSIENT_STATUS or status >= 500:
                return TransientModelError(
                    f"it answered {status} to /embeddings: {detail}",
                    status=status,
                    retry_after=retry_after(e.response.headers),
                )
            return ModelError(f"it answered {status} to /embeddings for {self.model!r}", status=status)
        return TransientModelError(f"the embeddings request could not reach it ({e.__cause__ or e})")

    def _off(self, text: str, key: str = "server") -> None:
        """No more embedding calls from this embedder; `text` said once per process."""
        self.available = False
        self._emit("memory.embeddings_off", level="WARNING", reason=text)
        notice_once(f"embeddings:{key}:{self.shown_url}:{self.model}", text)

    def _emit(self, event: str, level: str = "INFO", **data: object) -> None:
        if self.ctx is not None:
            self.ctx.events.emit(
                event, subtask_id=None, agent=MEMORY_AGENT, level=level, model=self.model, **data
            )

    async def aclose(self) -> None:
        await self._client.close()


T = TypeVar("T")


async def _unguarded(awaitable: Awaitable[T]) -> T:
    return await awaitable


def make_embedder(settings: Settings, ctx: RunContext | UsageTracker | None, server: bool) -> Embedder | None:
    """The embedder `[memory] embedder` asks for, or None for full-text search only. `server` is
    False when the run's models are not the configured endpoint (a scripted model): there is
    then no server to ask for embeddings."""
    which = settings.memory.embedder
    if which == "local":
        return LocalEmbedder(settings.memory.local_model, settings.memory.max_distance)
    if which == "off" or not server:
        return None
    m = settings.model
    if m.api_key is None and (m.base_url is None or m.base_url.rstrip("/") == OPENAI_DEFAULT_BASE_URL):
        return None  # no key for OpenAI: the model client says so, memory need not
    if isinstance(ctx, RunContext):
        return ServerEmbedder(settings, ctx=ctx)
    return ServerEmbedder(settings, usage=ctx)
