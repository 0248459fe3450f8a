"""Settings: defaults < user config < workspace config < environment < CLI flags.

The user config (~/.config/shunter/config.toml, $XDG_CONFIG_HOME respected, or the file named
by $SHUNTER_CONFIG) is trusted. The workspace config (<workspace>/.shunter/config.toml, or
[tool.shunter] in pyproject.toml) is not: it ships with cloned repositories and an agent can
edit it, so it may tighten security settings but never loosen them (see `_restrict_workspace`).
Each ignored loosening becomes one line in `Settings.warnings`. Validated with pydantic; a bad
value is one clear ConfigError naming the file it came from."""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from runtime.errors import ConfigError

OPENAI_DEFAULT_BASE_URL = "https://api.openai.com/v1"

DEFAULT_SECRET_PATHS = [
    ".env", ".env.*", "!.env.example", "!.env.sample", "!.env.template",
    "*.pem", "*.key", "*.p12", "*.pfx",
    "id_rsa*", "id_ed25519*", "id_ecdsa*", "!id_rsa*.pub", "!id_ed25519*.pub", "!id_ecdsa*.pub",
    ".netrc", ".pgpass", ".npmrc", ".pypirc", ".git-credentials", ".aws/credentials*",
]  # fmt: skip


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
    api: Literal["chat", "responses", "auto"] = "auto"
    """Chat Completions or the Responses API (env SHUNTER_API); 'auto' is Responses on
    OpenAI's own endpoint and Chat Completions elsewhere (most local servers speak only that)."""


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


class RunLimits(_Section):
    """The limits of a whole run, checked before each call; runtime.usage.UsageLimits is the
    frozen form the usage tracker holds."""

    max_tokens: int | None = None
    max_requests: int | None = None
    max_tool_calls: int | None = None
    max_iterations: int | None = None
    """Agent loop iterations across the whole run."""
    max_cost_usd: float | None = None
    max_seconds: float | None = None


class LimitSettings(RunLimits):
    agent_max_iterations: int = 12
    """Iterations of one agent on one subtask."""


class ToolSettings(_Section):
    max_result_chars: int = 50_000
    """Tool results longer than this keep head and tail; the full text is saved."""
    max_read_bytes: int = 2_000_000
    protected_paths: list[str] = Field(
        default_factory=lambda: [".git/hooks", ".git/config", ".shunter", ".env"]
    )
    """Workspace-relative paths that tools may never write or delete (a `.git` folder or file
    anywhere is always protected as well). A workspace config can only add entries."""
    secret_paths: list[str] = Field(default_factory=lambda: list(DEFAULT_SECRET_PATHS))
    """Globs of files the file tools never read or search (keys, tokens, .env files), compared
    case-insensitively. Without '/' a glob matches a name at any depth; with one it matches the
    end of the path ('.aws/credentials*'); a leading '/' anchors it to the workspace; a trailing
    '/' covers everything in such a folder; '!glob' re-allows what an earlier glob matched (the
    last match wins). A workspace config can only add (non-'!') globs."""
    shell_timeout_s: float = 120.0
    shell_max_output_bytes: int = 1_000_000
    sandbox: Literal["auto", "require", "none"] = "auto"
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
    env_passthrough: list[str] = Field(default_factory=list)
    """Names of extra environment variables passed on to commands (by default they get a
    minimal environment). Only the user config and flags may set it, never a workspace."""


class AgentOverride(_Section):
    model: str | None = None
    api: Literal["chat", "responses", "auto"] | None = None
    """This agent's API, over [model] api."""
    extra_tools: list[str] = Field(default_factory=list)
    """More tools for this agent: names or globs ("git__*" is every tool of the MCP server git)."""
    max_iterations: int | None = None
    description: str | None = None
    """For a specialist declared in config (a name that is no built-in or plugin agent): what the
    planner reads to choose it."""
    mcp: list[str] = Field(default_factory=list)
    """MCP servers ([mcp.servers.NAME]) whose tools this agent gets, all of them."""


McpEffect = Literal["read", "write", "deny"]


class McpServer(_Section):
    """One MCP server: a program over stdio (`command`) or a streamable HTTP endpoint (`url`)."""

    command: str | None = None
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    """Variables for the program, over a minimal environment (HOME, PATH, USER, SHELL, TERM...):
    nothing else of yours, and never the API key, reaches it."""
    cwd: str | None = None
    url: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    """HTTP headers for `url` (e.g. Authorization); never logged."""
    startup_timeout_s: float = Field(30.0, gt=0)
    """How long connecting and listing the tools may take."""
    call_timeout_s: float = Field(300.0, gt=0)
    """How long one tool call may take."""
    effects: dict[str, McpEffect] = Field(default_factory=dict)
    """Per tool (the server's own name): "read" (read-only: parallel, no approval), "write"
    (needs approval) or "deny" (never offered). Unlisted tools follow the server's annotations:
    read-only only with readOnlyHint true."""

    @model_validator(mode="after")
    def _one_transport(self) -> McpServer:
        if (self.command is None) == (self.url is None):
            raise ValueError("an MCP server needs exactly one of command (stdio) and url (HTTP)")
        return self


class McpSettings(_Section):
    servers: dict[str, McpServer] = Field(default_factory=dict)
    """[mcp.servers.NAME]; their tools are NAME__TOOL."""

    @model_validator(mode="after")
    def _names(self) -> McpSettings:
        for name in self.servers:
            if not re.fullmatch(r"[A-Za-z0-9-]+(_[A-Za-z0-9-]+)*", name) or len(name) > 30:
                raise ValueError(
                    f"the MCP server name {name!r} must be letters, digits, '-' and single '_' "
                    "(at most 30), because its tools are named NAME__TOOL"
                )
        return self


class PlannerSettings(_Section):
    repair_rounds: int = 2
    max_subtasks: int = 50
    max_instruction_chars: int = 4000
    model: str | None = None
    stream_plan: bool = True
    """`shunter run` starts each subtask as soon as its line of the plan has streamed in."""
    replan_rounds: int = Field(0, ge=0)
    """Times a run with failed subtasks may go back to the planner (it then reads their results)."""


class MemorySettings(_Section):
    """How the planner recalls similar past runs: full-text search, plus embeddings (issue 17)."""

    embedder: Literal["server", "local", "off"] = "server"
    """server: the model endpoint's /v1/embeddings; local: sentence-transformers on this machine
    (the local-embeddings extra); off: full-text search only."""
    embedding_model: str = "text-embedding-3-small"
    """The server's embedding model (OpenAI's by default; name one your local server has)."""
    local_model: str | None = None
    """A sentence-transformers model folder for embedder = "local"; None is the bundled all-MiniLM-L6-v2."""
    max_distance: float | None = Field(None, gt=0, le=2)
    """Cosine distance beyond which a past request is not recalled by meaning; None is the
    embedder's own default (0.75 for the server's, 0.6 for all-MiniLM-L6-v2, whose unrelated
    sentences sit closer together)."""


class TelemetrySettings(_Section):
    capture_content: bool = False
    """Record prompts, answers, tool arguments and results on the OpenTelemetry spans (scrubbed
    of secrets). Off by default: spans then carry names, ids, tokens, costs and timings only."""


class EngineSettings(_Section):
    """Where runs execute: in this process (local), or as DBOS workflows on `shunter worker`
    processes that share the engine's database (issue 15). Only your config or the environment
    set it: a workspace must not send your runs, or read its queue, elsewhere."""

    kind: Literal["local", "dbos"] = "local"
    url: str | None = None
    """sqlite:///PATH (workers on one machine) or postgresql://... (any number of machines);
    None is an SQLite file in Shunter's data directory."""
    concurrency: int = Field(4, ge=1)
    """Runs, and subtasks, one worker takes at a time (`shunter worker --concurrency`)."""


class Settings(_Section):
    engine: EngineSettings = Field(default_factory=EngineSettings)
    model: ModelSettings = Field(default_factory=ModelSettings)
    retry: RetrySettings = Field(default_factory=RetrySettings)
    limits: LimitSettings = Field(default_factory=LimitSettings)
    tools: ToolSettings = Field(default_factory=ToolSettings)
    planner: PlannerSettings = Field(default_factory=PlannerSettings)
    memory: MemorySettings = Field(default_factory=MemorySettings)

    telemetry: TelemetrySettings = Field(default_factory=TelemetrySettings)
    mcp: McpSettings = Field(default_factory=McpSettings)
    rate_limits: dict[str, RateLimit] = Field(default_factory=dict)
    """Per model name ('*' for every model): requests and tokens per minute."""
    prices: dict[str, dict[str, float]] = Field(default_factory=dict)
    """Per model: input, cached_input, output in USD per 1M tokens; extends the bundled table."""
    agents: dict[str, AgentOverride] = Field(default_factory=dict)
    max_parallel: int = Field(4, ge=1)
    fail_fast: bool = False
    subtask_timeout_s: float | None = None
    _warnings: list[str] = PrivateAttr(default_factory=list)

    @property
    def warnings(self) -> list[str]:
        """One line per workspace setting ignored because it would have loosened security."""
        return self._warnings

    def secret_values(self) -> list[str]:
        """Strings that must never reach a log line or a child process."""
        key = self.model.api_key.get_secret_value() if self.model.api_key else ""
        out = [key] if key else []
        password = urlsplit(self.engine.url or "").password  # postgresql://user:PASSWORD@host/db
        if password and len(password) >= 4:
            out.append(password)
        for server in self.mcp.servers.values():  # tokens handed to MCP servers
            out += [v for k, v in server.env.items() if _SECRET_NAME.search(k) and len(v) >= 8]
            out += [v for v in server.headers.values() if len(v) >= 8]
        return out


_SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|AUTH|CREDENTIAL", re.IGNORECASE)


# -- layers --------------------------------------------------------------------------------

_SANDBOX_STRICTNESS = {"none": 0, "auto": 1, "require": 2}
_OFF_SWITCHES = ("shell_network", "fetch_allow_private")
_BOOL = TypeAdapter(bool)
_STR_LIST = TypeAdapter(list[str])


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def user_config_path() -> Path | None:
    """Where the trusted user config lives: $SHUNTER_CONFIG, else
    $XDG_CONFIG_HOME/shunter/config.toml, else ~/.config/shunter/config.toml (None if there is
    no home folder to look in)."""
    explicit = os.environ.get("SHUNTER_CONFIG")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME", "")
    if not os.path.isabs(base):  # the XDG spec says relative values are to be ignored
        try:
            base = str(Path.home() / ".config")
        except RuntimeError:
            return None
    return Path(base) / "shunter" / "config.toml"


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path} is not valid TOML ({e}); fix the file or remove it.") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not UTF-8 text; save it as UTF-8 or remove it.") from None
    except OSError as e:
        raise ConfigError(
            f"{path} could not be read ({e.strerror}); fix its permissions or remove it."
        ) from None


def _user_layer() -> tuple[dict[str, Any], str]:
    path = user_config_path()
    if path is None:
        return {}, "the user config"
    if not path.is_file():
        if os.environ.get("SHUNTER_CONFIG"):
            raise ConfigError(
                f"SHUNTER_CONFIG names {path}, which is not a file; create it or unset SHUNTER_CONFIG."
            )
        return {}, str(path)
    return _read_toml(path), str(path)


def _workspace_layer(workspace: Path) -> tuple[dict[str, Any], str]:
    """The workspace's own settings and the name of the file they came from."""
    path = workspace / ".shunter" / "config.toml"
    if path.is_file():
        return _read_toml(path), ".shunter/config.toml"
    pyproject = workspace / "pyproject.toml"
    if not pyproject.is_file():
        return {}, ".shunter/config.toml"
    section = _read_toml(pyproject).get("tool", {})
    section = section.get("shunter", {}) if isinstance(section, dict) else {}
    if not isinstance(section, dict):
        raise ConfigError(f"{pyproject}: [tool.shunter] must be a table; fix the file.")
    return section, "[tool.shunter] in pyproject.toml"


def _env_layer(env: dict[str, str]) -> dict[str, Any]:
    model: dict[str, Any] = {}
    engine = {k: env[v] for k, v in (("url", "SHUNTER_ENGINE_URL"), ("kind", "SHUNTER_ENGINE")) if env.get(v)}
    for var, key in (
        ("SHUNTER_MODEL", "name"),
        ("OPENAI_BASE_URL", "base_url"),
        ("OPENAI_API_KEY", "api_key"),
        ("SHUNTER_API", "api"),
    ):
        if env.get(var):
            model[key] = env[var]
    return ({"model": model} if model else {}) | ({"engine": engine} if engine else {})


def _as(adapter: TypeAdapter, value: Any) -> Any:
    """`value` as pydantic would read it, or None when it is invalid (validation reports it)."""
    try:
        return adapter.validate_python(value)
    except ValidationError:
        return None


def _restrict_workspace(
    ws: dict[str, Any], trusted: Settings, source: str, user_file: str
) -> tuple[dict[str, Any], list[str]]:
    """The workspace layer with every security loosening removed, and one warning per removal.

    Lists of protected and secret paths are merged with the trusted ones rather than replacing
    them. Values of the wrong type are left in place for validation to report.
    """
    warnings: list[str] = []
    ws = dict(ws)

    def ignored(key: str, value: Any, why: str) -> None:
        warnings.append(
            f"Ignored {key} = {value!r} from {source}: {why}; a workspace config may only tighten "
            f"security, so set it in {user_file} or with a flag if you mean it."
        )

    tools = ws.get("tools")
    if isinstance(tools, dict):
        tools = dict(tools)
        t = trusted.tools
        for key in ("protected_paths", "secret_paths"):
            extra = _as(_STR_LIST, tools.get(key)) if key in tools else None
            if extra is None:
                continue
            if key == "secret_paths" and any(p.startswith("!") for p in extra):
                ignored(f"tools.{key}", [p for p in extra if p.startswith("!")], "'!' globs re-allow secrets")
                extra = [p for p in extra if not p.startswith("!")]
            base = getattr(t, key)
            tools[key] = base + [p for p in extra if p not in base]
        sandbox = tools.get("sandbox")
        if isinstance(sandbox, str) and _SANDBOX_STRICTNESS.get(sandbox, 99) < _SANDBOX_STRICTNESS[t.sandbox]:
            ignored("tools.sandbox", tools.pop("sandbox"), f"it is weaker than {t.sandbox!r}")
        for key in _OFF_SWITCHES:
            if key in tools and _as(_BOOL, tools[key]) is True and not getattr(t, key):
                ignored(f"tools.{key}", tools.pop(key), "it would turn a protection off")
        hosts = _as(_STR_LIST, tools.get("fetch_allow_hosts")) if "fetch_allow_hosts" in tools else None
        if hosts is not None:
            allowed = {h.lower() for h in t.fetch_allow_hosts}
            added = [h for h in hosts if h.lower() not in allowed]
            if added:
                ignored("tools.fetch_allow_hosts", added, "it would let fetch_url reach more hosts")
                tools["fetch_allow_hosts"] = [h for h in hosts if h.lower() in allowed]
        if "env_passthrough" in tools:
            value = tools.pop("env_passthrough")
            if value:
                ignored("tools.env_passthrough", value, "it would hand environment variables to commands")
        ws["tools"] = tools
    agents = ws.get("agents")
    if isinstance(agents, dict):
        ws["agents"] = {name: _without_extra_tools(name, cfg, ignored) for name, cfg in agents.items()}
    if "engine" in ws:
        ignored("engine", ws.pop("engine"), "it chooses which machines run your requests")
    _restrict_mcp(ws, trusted, ignored)
    _restrict_model(ws, ignored)
    _restrict_money(ws, trusted, ignored)
    _restrict_replan(ws, trusted, ignored)
    telemetry = ws.get("telemetry")
    if isinstance(telemetry, dict) and _as(_BOOL, telemetry.get("capture_content")) is True:
        if not trusted.telemetry.capture_content:  # file contents would leave for the trace backend
            ws["telemetry"] = {k: v for k, v in telemetry.items() if k != "capture_content"}
            ignored("telemetry.capture_content", True, "it would send prompts and file contents to traces")
    return ws, warnings


def _restrict_replan(ws: dict[str, Any], trusted: Settings, ignored: Any) -> None:
    """Replanning hands untrusted results to the planner: only you may turn it up."""
    planner = ws.get("planner")
    if not isinstance(planner, dict) or "replan_rounds" not in planner:
        return
    value = _as(TypeAdapter(int), planner["replan_rounds"])
    if value is not None and value > trusted.planner.replan_rounds:
        planner = dict(planner)
        ignored(
            "planner.replan_rounds", planner.pop("replan_rounds"), "it would show tool output to the planner"
        )
        ws["planner"] = planner


_LOCAL_URL = re.compile(r"^https?://(localhost|127(?:\.\d+){3}|\[::1\])(:\d+)?(/|$)", re.IGNORECASE)


def _restrict_model(ws: dict[str, Any], ignored: Any) -> None:
    """A cloned repository must not be able to send your API key to its own server: from the
    workspace, the endpoint may only be a local one (Ollama, llama.cpp...) and no key is read."""
    model = ws.get("model")
    if not isinstance(model, dict):
        return
    model = dict(model)
    if "api_key" in model:
        model.pop("api_key")
        ignored("model.api_key", "***", "keys do not belong in a workspace")
    url = model.get("base_url")
    if isinstance(url, str) and not _LOCAL_URL.match(url):
        ignored("model.base_url", model.pop("base_url"), "it would send your API key to that server")
    ws["model"] = model


def _restrict_money(ws: dict[str, Any], trusted: Settings, ignored: Any) -> None:
    """Budgets may only shrink, and known prices may not be lowered, from the workspace."""
    limits = ws.get("limits")
    if isinstance(limits, dict):
        limits = dict(limits)
        for key, value in list(limits.items()):
            current = getattr(trusted.limits, key, None)
            if (
                key.startswith("max_")
                and current is not None
                and isinstance(value, int | float)
                and value > current
            ):
                ignored(f"limits.{key}", limits.pop(key), f"it is looser than {current}")
        ws["limits"] = limits
    prices = ws.get("prices")
    if isinstance(prices, dict):
        from runtime.prices import PriceTable

        table = PriceTable.load(trusted.prices)
        kept = {}
        for name, price in prices.items():
            if table.get(name) is not None:
                ignored(f"prices.{name}", price, "a known price may not be changed from the workspace")
            else:
                kept[name] = price
        ws["prices"] = kept


def _without_extra_tools(name: str, cfg: Any, ignored: Any) -> Any:
    if not isinstance(cfg, dict):
        return cfg
    cfg = dict(cfg)
    for key in ("extra_tools", "mcp"):
        value = cfg.pop(key, None)
        if value:
            ignored(f"agents.{name}.{key}", value, "it would give an agent more tools")
    return cfg


def _restrict_mcp(ws: dict[str, Any], trusted: Settings, ignored: Any) -> None:
    """A cloned repository must not start programs or reach other hosts through MCP: from the
    workspace, a new server may only be a loopback URL, and a server of yours may only have
    tools made stricter ("write" or "deny")."""
    mcp = ws.get("mcp")
    if not isinstance(mcp, dict) or not isinstance(mcp.get("servers"), dict):
        return
    servers: dict[str, Any] = mcp["servers"]
    kept: dict[str, Any] = {}
    for name, cfg in servers.items():
        if not isinstance(cfg, dict):
            kept[name] = cfg  # validation reports it
            continue
        if name in trusted.mcp.servers:
            given = cfg.get("effects")
            effects: dict[str, Any] = given if isinstance(given, dict) else {}
            stricter = {t: e for t, e in effects.items() if e in ("write", "deny")}
            loosened = {k: v for k, v in cfg.items() if k != "effects"} | {
                t: e for t, e in effects.items() if t not in stricter
            }
            if loosened:
                ignored(f"mcp.servers.{name}", loosened, "only your config may change a server of yours")
            kept[name] = {"effects": stricter}
        elif "command" in cfg or not (isinstance(cfg.get("url"), str) and _LOCAL_URL.match(cfg["url"])):
            ignored(
                f"mcp.servers.{name}",
                cfg.get("command") or cfg.get("url"),
                "it would start a program or reach another host",
            )
        else:
            kept[name] = cfg
    ws["mcp"] = {**mcp, "servers": kept}


def _validate(data: dict[str, Any], where: str) -> Settings:
    try:
        return Settings.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise ConfigError(f"Invalid setting {loc}: {err['msg']}; fix it in {where}.") from None


def load_settings(
    workspace: Path, overrides: dict[str, Any] | None = None, env: dict[str, str] | None = None
) -> Settings:
    """Build the settings for `workspace`; `overrides` are CLI flags (nested dicts). `env`
    replaces os.environ for the environment layer (the user config is still found through
    os.environ). Warnings about ignored workspace settings are in the result's `.warnings`."""
    user, user_file = _user_layer()
    trusted = _validate(user, user_file)
    ws, ws_file = _workspace_layer(workspace)
    ws, warnings = _restrict_workspace(ws, trusted, ws_file, user_file)
    data = _deep_merge(user, ws)
    _validate(data, ws_file)
    data = _deep_merge(data, _env_layer(dict(os.environ) if env is None else env))
    data = _deep_merge(data, overrides or {})
    settings = _validate(data, "the environment or the flags")
    settings._warnings = warnings
    return settings
