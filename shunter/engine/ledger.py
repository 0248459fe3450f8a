"""A dollar budget shared by every worker: one row in the engine's database.

Each model call reserves its worst case (input at the price, plus its output cap) before it is
made, with one conditional UPDATE, so two workers cannot both take the last dollars; when the
whole worst case does not fit, the call gets what is left as a smaller output cap, or is refused.
After the call the reservation becomes what the call really cost. A worker killed mid-call
leaves its reservation held: the budget errs on the side of spending less, never more.
"""

from __future__ import annotations

import threading
from typing import Any

from runtime.errors import UsageLimitExceeded
from runtime.prices import PriceTable
from runtime.usage import MIN_OUTPUT

_TABLE = """CREATE TABLE IF NOT EXISTS shunter_budgets (
    key TEXT PRIMARY KEY, cap_usd DOUBLE PRECISION NOT NULL,
    spent_usd DOUBLE PRECISION NOT NULL DEFAULT 0, reserved_usd DOUBLE PRECISION NOT NULL DEFAULT 0)"""
_ENGINES: dict[str, Any] = {}
_LOCK = threading.Lock()


def sql_engine(url: str) -> Any:
    """One SQLAlchemy engine per database and process (the heartbeat's and the budgets')."""
    import sqlalchemy as sa

    with _LOCK:
        if url not in _ENGINES:
            _ENGINES[url] = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
        return _ENGINES[url]


def create_budget(url: str, key: str, cap_usd: float) -> None:
    import sqlalchemy as sa

    with sql_engine(url).begin() as c:
        c.execute(sa.text(_TABLE))
        c.execute(sa.text("DELETE FROM shunter_budgets WHERE key = :k"), {"k": key})
        c.execute(
            sa.text("INSERT INTO shunter_budgets (key, cap_usd) VALUES (:k, :cap)"),
            {"k": key, "cap": cap_usd},
        )


class Budget:
    """The shared budget `key`, as the calls of a workflow use it."""

    def __init__(self, url: str, key: str, prices: PriceTable):
        import sqlalchemy as sa

        self.sa, self.engine, self.key, self.prices = sa, sql_engine(url), key, prices

    def reserve(self, model: str, input_tokens: int, max_output: int | None) -> tuple[float, int | None]:
        """Reserve for one call; returns (the amount held, the output cap to send). Raises
        UsageLimitExceeded when not even a short answer fits what is left."""
        cap_out = max_output or 16384
        full = self._cost(model, input_tokens, cap_out)
        for _ in range(5):  # another worker may take the last of it between the read and the update
            if self._take(full):
                return full, cap_out
            left, cap = self._left()
            per_token = self._cost(model, 0, 1_000_000) / 1_000_000
            fits = int((left - self._cost(model, input_tokens, 0)) / per_token) if per_token else cap_out
            if fits < MIN_OUTPUT:
                raise UsageLimitExceeded("max_cost_usd", round(cap - left + full, 6), cap)
            amount = self._cost(model, input_tokens, fits)
            if self._take(amount):
                return amount, fits
        left, cap = self._left()
        raise UsageLimitExceeded("max_cost_usd", round(cap - left + full, 6), cap)

    def cost_of(self, model: str, resp: Any) -> float:
        cost = self.prices.cost(model, resp.input_tokens, resp.cached_input_tokens, resp.output_tokens)
        return 0.0 if cost is None else cost

    def settle(self, held: float, spent: float) -> None:
        with self.engine.begin() as c:
            c.execute(
                self.sa.text(
                    "UPDATE shunter_budgets SET reserved_usd = reserved_usd - :h, spent_usd = spent_usd + :s WHERE key = :k"
                ),
                {"h": held, "s": spent, "k": self.key},
            )

    def _take(self, amount: float) -> bool:
        with self.engine.begin() as c:
            won = c.execute(
                self.sa.text(
                    "UPDATE shunter_budgets SET reserved_usd = reserved_usd + :a "
                    "WHERE key = :k AND spent_usd + reserved_usd + :a <= cap_usd"
                ),
                {"a": amount, "k": self.key},
            ).rowcount
        return won == 1

    def _left(self) -> tuple[float, float]:
        with self.engine.begin() as c:
            row = c.execute(
                self.sa.text(
                    "SELECT cap_usd - spent_usd - reserved_usd, cap_usd FROM shunter_budgets WHERE key = :k"
                ),
                {"k": self.key},
            ).one()
        return float(row[0]), float(row[1])

    def _cost(self, model: str, input_tokens: int, output_tokens: int) -> float:
        cost = self.prices.cost(model, input_tokens, 0, output_tokens)
        if cost is None:  # the submitter checked its prices; this worker has none for the model
            raise UsageLimitExceeded(
                "max_cost_usd",
                float("nan"),
                self._left()[1],
                when=f"cannot be held: this worker knows no price for {model}",
            )
        return cost
