"""Wiring the parts together for one run: settings, context, models, agents."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from runtime.client import OpenAIModel
from runtime.config import Settings, load_settings
from runtime.context import Approver, RunContext, deny_all
from runtime.errors import ConfigError
from runtime.model import Model
from runtime.notices import notice_once


def check_workspace(workspace: str | Path) -> Path:
    path = Path(workspace).expanduser()
    if not path.exists():
        raise ConfigError(
            f"The workspace {str(path)!r} does not exist; create it or pass an existing --workspace."
        )
    if not path.is_dir():
        raise ConfigError(f"The workspace {str(path)!r} is not a directory; pass a directory as --workspace.")
    return path.resolve()


def settings_for(workspace: Path, overrides: dict[str, Any] | None = None) -> Settings:
    settings = load_settings(workspace, overrides)
    for warning in settings.warnings:  # a workspace config tried to loosen security: say so
        # once per workspace and process: a DBOS worker loads the settings for every subtask
        notice_once(f"{workspace}\0{warning}", warning)
    return settings


class OpenAIProvider:
    """One OpenAIModel per model name, sharing the settings' endpoint and key."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._models: dict[str, OpenAIModel] = {}

    def __call__(self, name: str) -> Model:
        if name not in self._models:
            self._models[name] = OpenAIModel.from_settings(self.settings.model, name)
        return self._models[name]

    async def aclose(self) -> None:
        for m in self._models.values():
            await m.close()


class SingleModel:
    """Every agent uses the same model object (scripted runs, tests)."""

    def __init__(self, model: Model):
        self.model = model

    def __call__(self, name: str) -> Model:
        return self.model


def make_context(workspace: Path, settings: Settings, approve: Approver = deny_all, **kw: Any) -> RunContext:
    from tools.sandbox import probe_sandbox

    sandbox = probe_sandbox() if settings.tools.sandbox != "none" else None
    return RunContext.create(workspace, settings, approve=approve, sandbox=sandbox, **kw)


def check_budget_can_be_enforced(settings: Settings) -> None:
    if settings.limits.max_cost_usd is None:
        return
    from runtime.prices import PriceTable

    prices = PriceTable.load(settings.prices)
    models = {settings.model.name, settings.planner.model or settings.model.name}
    models |= {o.model for o in settings.agents.values() if o.model}
    unpriced = sorted(m for m in models if prices.get(m) is None)
    if unpriced:
        raise ConfigError(
            f"--max-cost cannot be enforced: no price is known for {', '.join(unpriced)}; "
            'add one under [prices."MODEL"] in .shunter/config.toml, or run without a budget.'
        )
