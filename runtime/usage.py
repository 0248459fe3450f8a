"""Usage accounting shared by every agent of a run, with limits checked before each call."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import asdict, dataclass, field, fields

from pydantic import ConfigDict

from runtime.config import LimitSettings, RunLimits
from runtime.errors import UsageLimitExceeded
from runtime.prices import PriceTable


@dataclass
class Usage:
    input_tokens: int = 0
    cached_input_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    requests: int = 0
    tool_calls: int = 0
    iterations: int = 0
    cost_usd: float | None = 0.0
    """None once any call was made to a model without a price: the total is then unknown."""
    unpriced_models: list[str] = field(default_factory=list)

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def add(self, other: Usage) -> None:
        for f in fields(self):
            if f.name in ("cost_usd", "unpriced_models"):
                continue
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))
        self.cost_usd = (
            None if self.cost_usd is None or other.cost_usd is None else self.cost_usd + other.cost_usd
        )
        for m in other.unpriced_models:
            if m not in self.unpriced_models:
                self.unpriced_models.append(m)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["total_tokens"] = self.total_tokens
        if d["cost_usd"] is not None:
            d["cost_usd"] = round(d["cost_usd"], 6)
        return d


PER_CALL_OUTPUT = 16384
"""Output cap of one call while a token or cost limit is set, so parallel calls share the budget."""
MIN_OUTPUT = 16
"""A call that could not answer even this many tokens within the limits is not made."""


@dataclass
class Reservation:
    """What one call in flight may still use, held against the limits until it returns."""

    requests: int = 0
    tokens: int = 0
    cost: float = 0.0
    output_cap: int | None = None
    """max_completion_tokens to send, when a limit requires one."""


class UsageLimits(RunLimits):
    """The run-wide limits a tracker enforces (the fields of RunLimits), frozen."""

    model_config = ConfigDict(frozen=True)

    @classmethod
    def from_settings(cls, lim: LimitSettings) -> UsageLimits:
        """The run-wide limits of `[limits]` in the settings."""
        return cls(**{name: getattr(lim, name) for name in RunLimits.model_fields})


class UsageTracker:
    """Totals plus breakdowns per subtask, agent and model. Thread-safe (tools run in threads)."""

    def __init__(self, limits: UsageLimits | None = None, prices: PriceTable | None = None):
        self.limits = limits or UsageLimits()
        self.prices = prices or PriceTable.load()
        self.total = Usage()
        self.by_subtask: dict[str, Usage] = {}
        self.by_agent: dict[str, Usage] = {}
        self.by_model: dict[str, Usage] = {}
        self.started = time.monotonic()
        self.elapsed_offset = 0.0
        """Seconds spent in earlier processes of the same run (resume)."""
        self._lock = threading.Lock()
        self._held = Reservation()
        """The worst cases of the calls in flight."""
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    @property
    def wall_seconds(self) -> float:
        return self.elapsed_offset + time.monotonic() - self.started

    def _record(self, delta: Usage, subtask: str | None, agent: str | None, model: str | None) -> None:
        with self._lock:
            self.total.add(delta)
            for key, book in ((subtask, self.by_subtask), (agent, self.by_agent), (model, self.by_model)):
                if key:
                    book.setdefault(key, Usage()).add(delta)

    # --- checks -------------------------------------------------------------------------

    def reserve(
        self, input_tokens: int, model: str, max_output_tokens: int | None = None, min_output: int = 1
    ) -> Reservation:
        """Check the limits for the next call and hold its worst case until `release`.

        With a token or cost limit, the call's output is capped (Reservation.output_cap) so that
        even its longest answer cannot break the limit, and calls in flight at once hold their
        worst cases together: the limits are hard caps, not after-the-fact reports.
        """
        lim = self.limits
        with self._lock:
            tot, held = self.total, self._held
            if lim.max_requests is not None and tot.requests + held.requests + 1 > lim.max_requests:
                raise UsageLimitExceeded("max_requests", tot.requests + held.requests + 1, lim.max_requests)
            if lim.max_seconds is not None and self.wall_seconds > lim.max_seconds:
                raise UsageLimitExceeded("max_seconds", round(self.wall_seconds, 1), lim.max_seconds)
            cap = max_output_tokens
            if lim.max_tokens is not None:
                used = tot.total_tokens + held.tokens + input_tokens
                cap = self._capped(
                    cap, lim.max_tokens - used, "max_tokens", used + min_output, lim.max_tokens, min_output
                )
            price = self.prices.get(model)
            if lim.max_cost_usd is not None:
                if tot.cost_usd is None or price is None:
                    raise UsageLimitExceeded(
                        "max_cost_usd",
                        float("nan"),
                        lim.max_cost_usd,
                        when=f"(cannot be enforced: model {model!r} has no price)",
                    )
                spent = tot.cost_usd + held.cost + price.cost(input_tokens, 0, 0)
                room = (
                    int((lim.max_cost_usd - spent) * 1e6 / price.output) if price.output else PER_CALL_OUTPUT
                )
                worst = spent + price.cost(0, 0, min_output)
                cap = self._capped(cap, room, "max_cost_usd", round(worst, 6), lim.max_cost_usd, min_output)
            r = Reservation(
                requests=1,
                tokens=input_tokens + (cap or 0),
                cost=price.cost(input_tokens, 0, cap or 0) if price else 0.0,
                output_cap=cap,
            )
            held.requests += r.requests
            held.tokens += r.tokens
            held.cost += r.cost
            return r

    @staticmethod
    def _capped(cap: int | None, room: int, limit: str, value: float, maximum: float, min_output: int) -> int:
        if room < max(min_output, MIN_OUTPUT):
            raise UsageLimitExceeded(limit, value, maximum)
        return min(cap or PER_CALL_OUTPUT, room)

    def release(self, r: Reservation) -> None:
        with self._lock:
            self._held.requests -= r.requests
            self._held.tokens -= r.tokens
            self._held.cost -= r.cost
            waiters, self._waiters = self._waiters, []
        for loop, fut in waiters:
            if not loop.is_closed():
                loop.call_soon_threadsafe(_wake, fut)

    async def reserve_when_possible(
        self, input_tokens: int, model: str, max_output_tokens: int | None = None
    ) -> Reservation:
        """`reserve`, but while calls in flight hold part of the budget, wait for them to return
        (they usually use far less than their worst case) instead of failing at once."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                return self.reserve(input_tokens, model, max_output_tokens)
            except UsageLimitExceeded:
                with self._lock:
                    if self._held.requests == 0:
                        raise
                    fut: asyncio.Future[None] = loop.create_future()
                    self._waiters.append((loop, fut))
                await fut

    def check_after(self) -> None:
        """Raise if the totals now exceed a limit (a response was bigger than expected)."""
        lim, tot = self.limits, self.total
        checks = (
            ("max_tokens", tot.total_tokens, lim.max_tokens),
            ("max_requests", tot.requests, lim.max_requests),
            ("max_cost_usd", tot.cost_usd or 0.0, lim.max_cost_usd),
            ("max_tool_calls", tot.tool_calls, lim.max_tool_calls),
            ("max_iterations", tot.iterations, lim.max_iterations),
        )
        for name, value, maximum in checks:
            if maximum is not None and value > maximum:
                raise UsageLimitExceeded(name, value, maximum, when="after the call")

    def remaining(self) -> UsageLimits:
        """The budget left, for a sub-agent that must not get a fresh one."""
        lim, tot = self.limits, self.total

        def left(maximum, used):
            return None if maximum is None else max(maximum - used, 0)

        return UsageLimits(
            max_tokens=left(lim.max_tokens, tot.total_tokens),
            max_requests=left(lim.max_requests, tot.requests),
            max_tool_calls=left(lim.max_tool_calls, tot.tool_calls),
            max_iterations=left(lim.max_iterations, tot.iterations),
            max_cost_usd=left(lim.max_cost_usd, tot.cost_usd or 0.0),
            max_seconds=left(lim.max_seconds, self.wall_seconds),
        )

    # --- recording ----------------------------------------------------------------------

    def record_response(
        self,
        model: str,
        *,
        input_tokens: int,
        output_tokens: int,
        cached_input_tokens: int = 0,
        reasoning_tokens: int = 0,
        subtask: str | None = None,
        agent: str | None = None,
    ) -> Usage:
        cost = self.prices.cost(model, input_tokens, cached_input_tokens, output_tokens)
        delta = Usage(
            input_tokens=input_tokens,
            cached_input_tokens=cached_input_tokens,
            output_tokens=output_tokens,
            reasoning_tokens=reasoning_tokens,
            requests=1,
            cost_usd=cost,
            unpriced_models=[] if cost is not None else [model],
        )
        self._record(delta, subtask, agent, model)
        return delta

    def record_tool_call(self, subtask: str | None = None, agent: str | None = None) -> None:
        lim = self.limits
        with self._lock:
            if lim.max_tool_calls is not None and self.total.tool_calls + 1 > lim.max_tool_calls:
                raise UsageLimitExceeded("max_tool_calls", self.total.tool_calls + 1, lim.max_tool_calls)
        self._record(Usage(tool_calls=1), subtask, agent, None)

    def record_iteration(self, subtask: str | None = None, agent: str | None = None) -> None:
        lim = self.limits
        with self._lock:
            if lim.max_iterations is not None and self.total.iterations + 1 > lim.max_iterations:
                raise UsageLimitExceeded("max_iterations", self.total.iterations + 1, lim.max_iterations)
        self._record(Usage(iterations=1), subtask, agent, None)

    def restore(self, subtask: str | None, agent: str | None, model: str | None, usage: Usage) -> None:
        """Add usage recorded by an earlier process of the same run (resume)."""
        self._record(usage, subtask, agent, model)

    def snapshot(self) -> dict:
        with self._lock:
            return {
                "total": self.total.to_dict() | {"wall_seconds": round(self.wall_seconds, 3)},
                "by_subtask": {k: v.to_dict() for k, v in self.by_subtask.items()},
                "by_agent": {k: v.to_dict() for k, v in self.by_agent.items()},
                "by_model": {k: v.to_dict() for k, v in self.by_model.items()},
            }


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)
