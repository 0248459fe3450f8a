"""The DBOS engine (issue 15): runs as durable workflows on `shunter worker` processes.

A run is a workflow on the runs queue; each of its subtasks a child workflow on the subtasks
queue; model calls and side-effecting tool calls are steps (runtime.durable). Every worker and
every submitter names the same database: SQLite for workers on one machine, Postgres for any
number of machines. Nothing here is used by the default local engine.
"""

from __future__ import annotations

import os
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from runtime.config import Settings
from runtime.errors import ConfigError

RUN_QUEUE = "shunter-runs"
SUBTASK_QUEUE = "shunter-subtasks"
RUN_WORKFLOW = "shunter.run"
SUBTASK_WORKFLOW = "shunter.subtask"
PERMIT_WORKFLOW = "shunter.permit"
POLL_S = 0.05
PERMIT_MARGIN_S = 1.0


def app_version() -> str:
    """Workers run only workflows of their own version: a recovered run replays on the same code."""
    try:
        return "shunter-" + version("shunter")
    except PackageNotFoundError:
        return "shunter-dev"


def engine_url(settings: Settings) -> str:
    """The engine's database: [engine] url or SHUNTER_ENGINE_URL, else an SQLite file in
    Shunter's data directory (workers on this machine only)."""
    url = settings.engine.url
    if url:
        if not url.startswith(("sqlite:///", "postgresql://", "postgres://", "postgresql+psycopg://")):
            raise ConfigError(
                f"The engine URL {url.split('@')[-1]!r} is neither sqlite:///PATH nor postgresql://...; "
                "fix [engine] url in your config or SHUNTER_ENGINE_URL."
            )
        return url
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    path = Path(base) / "shunter" / "engine.sqlite"
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def require_dbos() -> None:
    try:
        import dbos  # noqa: F401
    except ImportError:
        raise ConfigError(
            "The DBOS engine needs the dbos package, which is not installed; run "
            "pip install 'shunter[dbos]' (or use --engine local)."
        ) from None


def redacted(url: str) -> str:
    """The URL without its password, for messages and logs."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@", 1)
    return url


def rate_queues(settings: Settings) -> dict[str, tuple[str, int, float]]:
    """Model ('*' for any other) -> (queue, limit, period_s) for each requests_per_minute in
    [rate_limits]: DBOS's limiter starts at most `limit` permits per `period_s` on the queue,
    counted over every worker. Every worker must have the same [rate_limits]."""
    out = {}
    for model, lim in settings.rate_limits.items():
        rpm = lim.requests_per_minute
        if rpm is None or rpm <= 0:
            continue
        # A whole number per minute as it is; below one a minute, one per the longer period.
        limit, period = (int(rpm), 60.0 * int(rpm) / rpm) if rpm >= 1 else (1, 60.0 / rpm)
        # The limiter paces permits; each request leaves up to a few polls after its permit.
        # The margin keeps that jitter from letting limit + 1 requests reach the server in a period.
        out[model] = (f"shunter-rate-{model}", limit, period + PERMIT_MARGIN_S)
    return out
