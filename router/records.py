"""What a run produced: per-subtask records and the run result (the `run --json` contract)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

SubtaskStatus = Literal["pending", "running", "succeeded", "failed", "skipped", "cancelled", "limit"]
RunStatus = Literal["running", "succeeded", "failed", "cancelled"]


@dataclass
class SubtaskRecord:
    id: str
    agent: str
    status: SubtaskStatus = "pending"
    result: str = ""
    error: str | None = None
    files_changed: list[str] = field(default_factory=list)
    tool_calls: int = 0
    iterations: int = 0
    usage: dict[str, Any] = field(default_factory=dict)
    started_at: float | None = None
    finished_at: float | None = None
    attempts: int = 0
    call: dict[str, Any] | None = None
    """The planned tool call of a compiled subtask (references not filled in), else None."""

    @property
    def seconds(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return round(self.finished_at - self.started_at, 3)

    @property
    def done(self) -> bool:
        return self.status == "succeeded"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "agent": self.agent,
            "status": self.status,
            "result": self.result,
            "error": self.error,
            "files_changed": self.files_changed,
            "tool_calls": self.tool_calls,
            "iterations": self.iterations,
            "usage": self.usage,
            "seconds": self.seconds,
            "attempts": self.attempts,
            "call": self.call,
        }


@dataclass
class RunResult:
    run_id: str
    status: RunStatus
    request: str
    answer: str = ""
    plan: dict[str, Any] | None = None
    estimate: dict[str, Any] | None = None
    subtasks: list[SubtaskRecord] = field(default_factory=list)
    usage: dict[str, Any] = field(default_factory=dict)
    usage_breakdown: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    seconds: float = 0.0
    plans: list[dict[str, Any]] = field(default_factory=list)
    """A replanned run's earlier plans (round, plan, subtask statuses, why it was replanned)."""

    def to_dict(self) -> dict[str, Any]:
        extra = {"plans": self.plans} if self.plans else {}  # only replanned runs carry it
        return {
            "run_id": self.run_id,
            "status": self.status,
            "request": self.request,
            "answer": self.answer,
            "error": self.error,
            "usage": self.usage,
            "usage_by_agent": self.usage_breakdown.get("by_agent", {}),
            "usage_by_model": self.usage_breakdown.get("by_model", {}),
            "subtasks": [s.to_dict() for s in self.subtasks],
            "plan": self.plan,
            "estimate": self.estimate,
            "seconds": round(self.seconds, 3),
            **extra,
        }
