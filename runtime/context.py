"""RunContext: the one object that travels through a run, passed explicitly (no globals)."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from runtime.cancel import CancellationToken
from runtime.config import Settings
from runtime.errors import ConfigError
from runtime.events import EventLog
from runtime.usage import UsageLimits, UsageTracker


@dataclass(frozen=True)
class ApprovalRequest:
    """What a side-effecting tool call wants to do, shown to whoever approves it."""

    kind: Literal["write", "delete", "command", "other"]
    tool: str
    summary: str
    """One line: the command, or 'write src/x.py (12 lines)'."""
    detail: str = ""
    """A diff for writes and edits, the policy reason for commands."""
    subtask_id: str | None = None
    agent: str | None = None


Approver = Callable[[ApprovalRequest], Awaitable[bool]]


async def deny_all(request: ApprovalRequest) -> bool:
    """The default: no terminal and no --yes means side effects are refused."""
    return False


async def approve_all(request: ApprovalRequest) -> bool:
    return True


@dataclass
class FileChange:
    path: str
    """Workspace-relative path."""
    before: bytes | None
    """Content before the change; None when the file did not exist."""
    after: bytes | None
    """Content after; None when the file was deleted."""
    subtask_id: str | None = None


@dataclass
class FileChangeLog:
    """Every file change of a run, in order, so undo can restore them."""

    changes: list[FileChange] = field(default_factory=list)
    on_change: Callable[[FileChange], None] | None = None
    """Persists each change the moment it happens (set by the store)."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, change: FileChange) -> None:
        with self._lock:
            self.changes.append(change)
        if self.on_change:
            self.on_change(change)

    def for_subtask(self, subtask_id: str | None) -> list[str]:
        with self._lock:
            return sorted({c.path for c in self.changes if c.subtask_id == subtask_id})


@dataclass
class RunContext:
    """Shared by every agent of a run. `for_subtask` makes a view with the subtask's ids;
    everything mutable (tracker, token, breaker, limiter, log, changes) stays shared."""

    workspace: Path
    settings: Settings = field(default_factory=Settings)
    usage: UsageTracker = field(default_factory=UsageTracker)
    cancel: CancellationToken = field(default_factory=CancellationToken)
    events: EventLog = field(default_factory=lambda: EventLog(None))
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    approve: Approver = deny_all
    file_changes: FileChangeLog = field(default_factory=FileChangeLog)
    breaker: Any = None
    """runtime.retry.CircuitBreaker shared by every model call of the run."""
    rate_limiter: Any = None
    """runtime.ratelimit.RateLimiter shared by the run."""
    store: Any = None
    """runtime.store.Store, when the run is persisted."""
    sandbox: Any = None
    """tools.sandbox.SandboxInfo: which OS sandbox is in force."""
    tools: Any = None
    """tools.registry.ToolRegistry; None means the default registry."""
    on_text: Callable[[str, str | None], None] | None = None
    """Streaming text callback: (delta, subtask_id)."""
    subtask_id: str | None = None
    agent: str | None = None
    read_only: bool = False
    """The subtask was planned read-only: tools with a read-only mode must stay in it."""
    overrides: dict[str, Any] = field(default_factory=dict)
    """The command-line settings of the run, kept with it so a resume applies them again."""
    workspace_readers: set[str | None] = field(default_factory=set)
    """Subtasks that have read workspace files (shared by every view): sending data out of the
    machine after that needs approval."""
    approval_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    """Parallel subtasks ask one at a time: shared by every view of the run."""
    durable: Any = None
    """runtime.durable.DurableSteps when the run is a DBOS workflow: model calls and
    side-effecting tool calls become recorded steps."""

    def __post_init__(self) -> None:
        self.workspace = Path(self.workspace).resolve()

    def for_subtask(
        self, subtask_id: str | None, agent: str | None, read_only: bool | None = None
    ) -> RunContext:
        ro = self.read_only if read_only is None else read_only
        return dataclasses.replace(self, subtask_id=subtask_id, agent=agent, read_only=ro)

    @property
    def state_dir(self) -> Path:
        return self.workspace / ".shunter"

    def close(self) -> None:
        """Release the event log's sink (long-lived processes make many runs)."""
        self.events.close()

    def emit(self, event: str, level: str = "INFO", **data: Any) -> None:
        self.events.emit(event, subtask_id=self.subtask_id, agent=self.agent, level=level, **data)

    @classmethod
    def create(cls, workspace: Path, settings: Settings | None = None, **kw: Any) -> RunContext:
        """A context with limits and prices taken from settings and a JSONL log in the workspace."""
        from runtime.prices import PriceTable
        from runtime.ratelimit import RateLimiter
        from runtime.retry import CircuitBreaker

        settings = settings or Settings()
        workspace = Path(workspace).resolve()
        tracker = UsageTracker(UsageLimits.from_settings(settings.limits), PriceTable.load(settings.prices))
        run_id = kw.pop("run_id", None) or uuid.uuid4().hex[:12]
        ensure_state_dir(workspace)
        events = kw.pop("events", None) or EventLog(
            workspace / ".shunter" / "logs" / "events.jsonl", run_id=run_id, secrets=settings.secret_values()
        )
        return cls(
            workspace=workspace,
            settings=settings,
            usage=tracker,
            events=events,
            run_id=run_id,
            breaker=CircuitBreaker(settings.retry.breaker_threshold, settings.retry.breaker_cooldown_s),
            rate_limiter=RateLimiter(settings.rate_limits),
            **kw,
        )


def ensure_state_dir(workspace: Path) -> Path:
    """<workspace>/.shunter, ignored by git so run state and saved outputs are never committed."""
    state = workspace / ".shunter"
    # Shunter writes here as you: a symlink planted in a cloned repository must not redirect
    # the state, logs or saved outputs to a file outside the workspace.
    for path in (
        state,
        state / "logs",
        state / "logs" / "events.jsonl",
        state / "state.db",
        state / "outputs",
    ):
        if path.is_symlink():
            raise ConfigError(
                f"{path} is a symbolic link; Shunter keeps its state only in real files inside the "
                "workspace. Remove the link and run again."
            )
    state.mkdir(parents=True, exist_ok=True)
    ignore = state / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# Shunter's run state: not for version control.\n*\n")
    return state
