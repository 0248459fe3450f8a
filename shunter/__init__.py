"""Shunter: plan a request into a graph of subtasks and run them with specialist agents.

    from shunter import run_sync, approve_all
    result = run_sync("list the TODOs in src/", workspace=".", approve=approve_all)

Names are imported on first use, so `shunter --help` does not pay for the openai SDK.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Agent": "agents",
    "AgentResult": "agents",
    "default_agents": "agents",
    "register_agent": "agents",
    "Plan": "planner.models",
    "Subtask": "planner.models",
    "RunResult": "router.records",
    "SubtaskRecord": "router.records",
    "CancellationToken": "runtime.cancel",
    "Settings": "runtime.config",
    "load_settings": "runtime.config",
    "ApprovalRequest": "runtime.context",
    "RunContext": "runtime.context",
    "approve_all": "runtime.context",
    "deny_all": "runtime.context",
    "ConfigError": "runtime.errors",
    "ModelError": "runtime.errors",
    "PathDenied": "runtime.errors",
    "PlanError": "runtime.errors",
    "RunCancelled": "runtime.errors",
    "ShunterError": "runtime.errors",
    "ToolDenied": "runtime.errors",
    "UsageLimitExceeded": "runtime.errors",
    "Usage": "runtime.usage",
    "UsageLimits": "runtime.usage",
    "UsageTracker": "runtime.usage",
    "plan": "shunter.api",
    "prepare": "shunter.api",
    "run": "shunter.api",
    "run_sync": "shunter.api",
    "execute_tool": "tools",
    "register_tool": "tools",
    "tool": "tools",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'shunter' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
