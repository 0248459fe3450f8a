"""Typed errors. The CLI turns each into one clear sentence and an exit code."""

from __future__ import annotations

from typing import Any


class ShunterError(Exception):
    """Base class: the message is a complete sentence a user can act on."""

    exit_code = 1


class ConfigError(ShunterError):
    """Bad configuration or usage (exit code 2)."""

    exit_code = 2


class McpServerError(ShunterError):
    """An MCP server did not start, answer or list its tools (exit code 2: its config is wrong or
    it is not installed)."""

    exit_code = 2


class ModelError(ShunterError):
    """The model server failed in a way retries did not fix. `status` is the HTTP status, if any."""

    def __init__(self, message: str, *, status: int | None = None):
        super().__init__(message)
        self.status = status


class TransientModelError(ModelError):
    """A failure worth retrying (connection drop, timeout, 408/409/429/5xx).

    `retry_after` is the server's requested delay in seconds, when it sent one.
    """

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None):
        super().__init__(message, status=status)
        self.retry_after = retry_after


class CircuitOpenError(ModelError):
    """The circuit breaker is open: calls fail fast until it half-opens. `retry_after` is the
    time left until it lets a probe through."""

    def __init__(self, message: str, retry_after: float = 0.0):
        super().__init__(message)
        self.retry_after = retry_after


class UsageLimitExceeded(ShunterError):
    """A usage limit would be (or was) exceeded. Names the limit and the figures."""

    def __init__(self, limit: str, value: float, maximum: float, when: str = "before the call"):
        self.limit, self.value, self.maximum = limit, value, maximum
        if value != value:  # NaN: the limit cannot be measured, `when` says why
            super().__init__(f"Usage limit {limit} of {maximum:g} {when.strip('()')}.")
            return
        super().__init__(
            f"Usage limit {limit} reached {when}: {value:g} would exceed the maximum of {maximum:g}."
        )


class RunCancelled(ShunterError):
    """The run's cancellation token fired. `finished` carries what completed before it."""

    exit_code = 130

    def __init__(self, message: str = "The run was cancelled.", finished: Any = None):
        super().__init__(message)
        self.finished = finished


class ToolDenied(ShunterError):
    """A tool call was refused by policy, scope or approval."""


class ToolFailed(ShunterError):
    """Raised by a tool that could not do what was asked (a missing file, a bad pattern). The
    message is the tool's result, word for word: the model reads it and can try again, and a
    compiled subtask that gets it fails."""


class PathDenied(ToolDenied):
    """A path is outside the workspace or on the protected list."""


class PlanError(ShunterError):
    """The planner could not produce a valid plan."""

    def __init__(self, message: str, errors: list[str] | None = None):
        super().__init__(message)
        self.errors = errors or []
