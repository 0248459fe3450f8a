"""The settings a run was started with: the overrides (CLI flags, library overrides) recorded
with the run, without secrets, and put back on the context when the run is resumed.
"""

from __future__ import annotations

from typing import Any

from runtime.config import Settings
from runtime.context import RunContext
from runtime.errors import ConfigError
from runtime.usage import UsageLimits


def merge_overrides(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """`over` on top of `base`, nested dicts merged key by key."""
    out = dict(base)
    for k, v in over.items():
        out[k] = merge_overrides(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def without_secrets(overrides: dict[str, Any]) -> dict[str, Any]:
    """`overrides` as they may be stored: a key given as an override (library users may) must
    not end up in the store."""
    return {
        k: without_secrets(v) if isinstance(v, dict) else v
        for k, v in overrides.items()
        if not (k == "api_key" or k.endswith("_api_key"))
    }


def run_overrides(ctx: RunContext) -> dict[str, Any]:
    """The settings overrides (CLI flags) the context was made with, as `prepare` records them."""
    return getattr(ctx, "overrides", None) or {}


def apply_saved_overrides(ctx: RunContext, saved: dict[str, Any] | None) -> dict[str, Any]:
    """Put the overrides a run was started with back on `ctx` (settings and usage limits), under
    the ones the context was made with now (flags given to resume win). Returns the merged
    overrides, which ctx.overrides then holds."""
    given = run_overrides(ctx)
    effective = merge_overrides(saved or {}, given)
    if effective != given:
        try:
            ctx.settings = Settings.model_validate(merge_overrides(ctx.settings.model_dump(), effective))
        except ValueError as e:
            raise ConfigError(
                f"The settings run {ctx.run_id} was started with no longer apply ({e}); resume it with "
                "flags that replace them."
            ) from None
        ctx.usage.limits = UsageLimits.from_settings(ctx.settings.limits)
    ctx.overrides = effective
    return effective
