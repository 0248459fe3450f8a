"""The price table: bundled data file, extended by user config. Unknown is None, never 0."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from importlib import resources


@dataclass(frozen=True)
class Price:
    input: float
    cached_input: float
    output: float
    reasoning: int = 0
    """Typical reasoning tokens per request (a reasoning model's hidden output), for the estimate."""

    def cost(self, input_tokens: int, cached_input_tokens: int, output_tokens: int) -> float:
        """USD for one call; cached tokens are part of input_tokens, billed at the cached rate."""
        fresh = max(input_tokens - cached_input_tokens, 0)
        return (
            fresh * self.input + cached_input_tokens * self.cached_input + output_tokens * self.output
        ) / 1e6


_SNAPSHOT = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{4})$")


class PriceTable:
    def __init__(self, prices: dict[str, Price]):
        self._prices = dict(prices)

    @classmethod
    def load(cls, overrides: dict[str, dict[str, float]] | None = None) -> PriceTable:
        raw = tomllib.loads(resources.files("runtime.data").joinpath("prices.toml").read_text())
        for name, given in (overrides or {}).items():
            # A new price keeps the bundled reasoning figure: that is about the model, not its price.
            bundled = raw.get(name, {})
            raw[name] = {"reasoning": bundled.get("reasoning", 0), **given}
        prices = {}
        for name, p in raw.items():
            prices[name] = Price(
                input=float(p["input"]),
                cached_input=float(p.get("cached_input", p["input"])),
                output=float(p["output"]),
                reasoning=int(p.get("reasoning", 0)),
            )
        return cls(prices)

    def get(self, model: str) -> Price | None:
        """The price of `model`, trying the name without a provider prefix or date suffix."""
        for candidate in (model, model.split("/")[-1], _SNAPSHOT.sub("", model.split("/")[-1])):
            if candidate in self._prices:
                return self._prices[candidate]
        return None

    def cost(
        self, model: str, input_tokens: int, cached_input_tokens: int, output_tokens: int
    ) -> float | None:
        price = self.get(model)
        return None if price is None else price.cost(input_tokens, cached_input_tokens, output_tokens)

    def reasoning(self, model: str) -> int:
        price = self.get(model)
        return price.reasoning if price else 0
