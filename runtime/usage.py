"""Usage accounting shared by every agent of a run, with limits checked before each call."""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, field, fields

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


@dataclass(frozen=True)
class UsageLimits:
    max_tokens: int | None = None
    max_requests: int | None = None
    max_tool_calls: int | None = None
    max_iterations: int | None = None
    max_cost_usd: float | None = None
    max_seconds: float | None = None


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

    def check_before_request(self, input_tokens: int, model: str, max_output_tokens: int = 0) -> None:
        """Raise UsageLimitExceeded if the next call (with `input_tokens` counted) would break a limit."""
        lim, tot = self.limits, self.total
        if lim.max_requests is not None and tot.requests + 1 > lim.max_requests:
            raise UsageLimitExceeded("max_requests", tot.requests + 1, lim.max_requests)
        if lim.max_tokens is not None and tot.total_tokens + input_tokens > lim.max_tokens:
            raise UsageLimitExceeded("max_tokens", tot.total_tokens + input_tokens, lim.max_tokens)
        if lim.max_seconds is not None and self.wall_seconds > lim.max_seconds:
            raise UsageLimitExceeded("max_seconds", round(self.wall_seconds, 1), lim.max_seconds)
        if lim.max_cost_usd is not None:
            next_cost = self.prices.cost(model, input_tokens, 0, max_output_tokens)
            if tot.cost_usd is None or next_cost is None:
                raise UsageLimitExceeded(
                    "max_cost_usd",
                    float("nan"),
                    lim.max_cost_usd,
                    when=f"(cannot be enforced: model {model!r} has no price)",
                )
            if tot.cost_usd + next_cost > lim.max_cost_usd:
                raise UsageLimitExceeded("max_cost_usd", round(tot.cost_usd + next_cost, 6), lim.max_cost_usd)

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
