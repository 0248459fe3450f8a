"""Settings: defaults < <workspace>/.shunter/config.toml (or [tool.shunter] in pyproject.toml)
< environment < CLI flags. Validated with pydantic; a bad value is one clear ConfigError."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from runtime.errors import ConfigError

OPENAI_DEFAULT_BASE_URL = "https://api.openai.com/v1"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelSettings(_Section):
    name: str = "gpt-4.1-mini"
    """Default model for every agent (env SHUNTER_MODEL)."""
    base_url: str | None = None
    """OpenAI-compatible endpoint (env OPENAI_BASE_URL); None means OpenAI itself."""
    api_key: SecretStr | None = None
    """API key (env OPENAI_API_KEY). Never logged, never passed to child processes."""
    timeout_s: float = 120.0
    """Per-call timeout in seconds."""
    stream: bool = True
    """Stream responses (live text, prompt cancellation)."""


class RetrySettings(_Section):
    attempts: int = Field(5, ge=1)
    """Total attempts per model call, the first included."""
    initial_delay_s: float = 0.5
    max_delay_s: float = 20.0
    """Cap of the exponential backoff."""
    max_retry_after_s: float = 60.0
    """A server asking to wait longer than this surfaces the error instead of sleeping."""
    breaker_threshold: int = Field(5, ge=1)
    """Consecutive transient failures that open the circuit breaker."""
    breaker_cooldown_s: float = 30.0
    """How long the breaker stays open before letting one probe through."""


class RateLimit(_Section):
    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None


class LimitSettings(_Section):
    max_tokens: int | None = None
    max_requests: int | None = None
    max_tool_calls: int | None = None
    max_iterations: int | None = None
    """Agent loop iterations across the whole run."""
    max_cost_usd: float | None = None
    max_seconds: float | None = None
    agent_max_iterations: int = 12
    """Iterations of one agent on one subtask."""


class ToolSettings(_Section):
    max_result_chars: int = 50_000
    """Tool results longer than this keep head and tail; the full text is saved."""
    max_read_bytes: int = 2_000_000
    protected_paths: list[str] = Field(
        default_factory=lambda: [".git/hooks", ".git/config", ".shunter", ".env"]
    )
    """Workspace-relative paths that tools may never write or delete."""
    shell_timeout_s: float = 120.0
    shell_max_output_bytes: int = 1_000_000
    sandbox: str = "auto"
    """'auto' (bwrap where available), 'require' (refuse to run commands without one) or 'none'."""
    shell_network: bool = False
    """Let sandboxed commands reach the network."""
    fetch_allow_private: bool = False
    """Let fetch_url reach private, loopback and link-local addresses."""
    fetch_allow_hosts: list[str] = Field(default_factory=list)
    """Hosts fetch_url may reach even when private (e.g. '127.0.0.1' in tests)."""
    fetch_max_bytes: int = 2_000_000
    fetch_timeout_s: float = 20.0
    search_provider: str | None = None
    """'searxng', 'brave' (key from the BRAVE_API_KEY environment variable) or None."""
    search_url: str | None = None
    """Base URL of the search provider (e.g. a SearXNG instance)."""


class AgentOverride(_Section):
    model: str | None = None
    extra_tools: list[str] = Field(default_factory=list)
    max_iterations: int | None = None


class PlannerSettings(_Section):
    repair_rounds: int = 2
    max_subtasks: int = 50
    max_instruction_chars: int = 4000
    model: str | None = None


class Settings(_Section):
    model: ModelSettings = Field(default_factory=ModelSettings)
    retry: RetrySettings = Field(default_factory=RetrySettings)
    limits: LimitSettings = Field(default_factory=LimitSettings)
    tools: ToolSettings = Field(default_factory=ToolSettings)
    planner: PlannerSettings = Field(default_factory=PlannerSettings)
    rate_limits: dict[str, RateLimit] = Field(default_factory=dict)
    """Per model name ('*' for every model): requests and tokens per minute."""
    prices: dict[str, dict[str, float]] = Field(default_factory=dict)
    """Per model: input, cached_input, output in USD per 1M tokens; extends the bundled table."""
    agents: dict[str, AgentOverride] = Field(default_factory=dict)
    max_parallel: int = Field(4, ge=1)
    fail_fast: bool = False
    subtask_timeout_s: float | None = None

    def secret_values(self) -> list[str]:
        """Strings that must never reach a log line or a child process."""
        key = self.model.api_key.get_secret_value() if self.model.api_key else ""
        return [key] if key else []


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _file_layer(workspace: Path) -> dict[str, Any]:
    path = workspace / ".shunter" / "config.toml"
    try:
        if path.is_file():
            return tomllib.loads(path.read_text())
        pyproject = workspace / "pyproject.toml"
        if pyproject.is_file():
            return tomllib.loads(pyproject.read_text()).get("tool", {}).get("shunter", {})
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path} is not valid TOML ({e}); fix the file or remove it.") from None
    return {}


def _env_layer(env: dict[str, str]) -> dict[str, Any]:
    model: dict[str, Any] = {}
    for var, key in (
        ("SHUNTER_MODEL", "name"),
        ("OPENAI_BASE_URL", "base_url"),
        ("OPENAI_API_KEY", "api_key"),
    ):
        if env.get(var):
            model[key] = env[var]
    return {"model": model} if model else {}


def load_settings(
    workspace: Path, overrides: dict[str, Any] | None = None, env: dict[str, str] | None = None
) -> Settings:
    """Build the settings for `workspace`; `overrides` are CLI flags (nested dicts)."""
    data = _deep_merge(_file_layer(workspace), _env_layer(dict(os.environ) if env is None else env))
    data = _deep_merge(data, overrides or {})
    try:
        return Settings.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise ConfigError(
            f"Invalid setting {where}: {err['msg']}; fix it in .shunter/config.toml, the environment or the flags."
        ) from None
