"""Requests- and tokens-per-minute limits shared by a run, so parallel agents queue instead of
stampeding into 429s."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


class _Bucket:
    def __init__(self, per_minute: float):
        self.capacity = per_minute
        self.level = per_minute
        self.rate = per_minute / 60.0
        self.updated = time.monotonic()

    def wait_for(self, amount: float) -> float:
        now = time.monotonic()
        self.level = min(self.capacity, self.level + (now - self.updated) * self.rate)
        self.updated = now
        amount = min(amount, self.capacity)  # a request bigger than a minute's budget waits for a full bucket
        return 0.0 if self.level >= amount else (amount - self.level) / self.rate

    def take(self, amount: float) -> None:
        self.level -= min(amount, self.capacity)


class RateLimiter:
    """Token buckets per model ('*' applies to every model without its own entry)."""

    def __init__(self, limits: dict | None = None):
        self._limits = limits or {}
        self._buckets: dict[str, tuple[_Bucket | None, _Bucket | None]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def _for(self, model: str) -> tuple[_Bucket | None, _Bucket | None]:
        if model not in self._buckets:
            lim = self._limits.get(model) or self._limits.get("*")
            rpm = getattr(lim, "requests_per_minute", None) if lim else None
            tpm = getattr(lim, "tokens_per_minute", None) if lim else None
            self._buckets[model] = (_Bucket(rpm) if rpm else None, _Bucket(tpm) if tpm else None)
        return self._buckets[model]

    def limits(self, model: str) -> bool:
        """Whether any limit applies to `model`."""
        req, tok = self._for(model)
        return req is not None or tok is not None

    async def acquire(
        self, model: str, tokens: int, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    ) -> float:
        """Wait until one request of `tokens` fits; returns the seconds waited. FIFO per model."""
        req, tok = self._for(model)
        if req is None and tok is None:
            return 0.0
        lock = self._locks.setdefault(model, asyncio.Lock())
        waited = 0.0
        async with lock:
            while True:
                delay = max(req.wait_for(1) if req else 0.0, tok.wait_for(tokens) if tok else 0.0)
                if delay <= 0:
                    break
                await sleep(delay)
                waited += delay
            if req:
                req.take(1)
            if tok:
                tok.take(tokens)
        return waited
