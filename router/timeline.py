"""A run's timeline, rebuilt from its event log: when each subtask waited (for a dependency, for a
free slot, for an approval, for the rate limiter) and when it ran, with its model and tool calls.

The event log is the only record with timing inside a subtask; waits that end with an event
(`approval`, `model.rate_limited`) carry how long they lasted, so their start is the event's time
minus that. Times are seconds since the run's first event.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The kinds of bar, in the words the report's legend uses.
RUNNING, WAIT_DEPENDENCY, WAIT_SLOT = "running", "wait-dependency", "wait-slot"
WAIT_APPROVAL, WAIT_RATE, RETRY, MODEL, TOOL = "wait-approval", "wait-rate", "retry", "model", "tool"
STATE_KINDS = (RUNNING, WAIT_DEPENDENCY, WAIT_SLOT, WAIT_APPROVAL, WAIT_RATE)

# Shorter than this is not worth drawing as a wait: scheduling noise, not waiting.
MIN_WAIT_S = 0.005

# Events that say something went wrong or was refused (the rest are the normal course of a run).
PROBLEM_EVENTS = {
    "model.error",
    "model.retry",
    "call.refused",
    "memory.embeddings_off",
    "plan.invalid",
    "plan.replan_failed",
    "plan.replan_refused",
    "plan.stream_stopped",
    "plan.structured_output_refused",
    "policy.git_config",
    "policy.unknown_tool",
    "store.error",
    "tool.denied",
    "tool.error",
    "tool.refused",
}


@dataclass
class Bar:
    lane: str
    kind: str
    start: float
    end: float
    label: str
    detail: str = ""
    status: str = ""


@dataclass
class Timeline:
    lanes: list[str]
    bars: list[Bar] = field(default_factory=list)
    duration: float = 0.0
    started_at: float | None = None
    peak_parallel: int = 0
    problems: list[dict[str, Any]] = field(default_factory=list)

    def in_lane(self, lane: str) -> list[Bar]:
        return [b for b in self.bars if b.lane == lane]


def read_events(log: Path, run_id: str) -> list[dict[str, Any]]:
    """The run's events in time order; lines that are not JSON (a torn last line) are skipped."""
    if not log.exists():
        return []
    out = []
    with log.open(encoding="utf-8", errors="replace") as f:
        for line in f:
            if run_id not in line:
                continue
            try:
                e = json.loads(line)
            except ValueError:
                continue
            if isinstance(e, dict) and e.get("run_id") == run_id and isinstance(e.get("ts"), int | float):
                out.append(e)
    return sorted(out, key=lambda e: e["ts"])


def build_timeline(events: list[dict[str, Any]], plan: dict[str, Any] | None) -> Timeline:
    steps = (plan or {}).get("subtasks", [])
    planned = [s["id"] for s in steps]
    seen = [e["subtask_id"] for e in events if e.get("subtask_id")]
    lanes = [x for x in ("planner",) if x in seen] + planned
    lanes += [x for x in dict.fromkeys(seen) if x not in lanes and x != "synthesis"]
    lanes += [x for x in ("synthesis",) if x in seen]
    tl = Timeline(lanes=lanes)
    if not events:
        return tl
    t0 = events[0]["ts"]
    tl.started_at = t0
    tl.duration = max(events[-1]["ts"] - t0, 1e-3)

    def at(e: dict[str, Any]) -> float:
        return float(e["ts"]) - t0

    for lane in lanes:
        mine = [e for e in events if e.get("subtask_id") == lane]
        tl.bars += _calls(lane, mine, at, tl.duration)
    tl.bars += _waits_for_turn(events, steps, tl.bars, at)
    tl.peak_parallel = peak_overlap([b for b in tl.bars if b.kind == RUNNING and b.lane in planned])
    tl.problems = _problems(events, at)
    return tl


def _calls(lane: str, events: list[dict[str, Any]], at, end_of_run: float) -> list[Bar]:
    """One lane's bars: its running spans, model and tool calls, and the waits inside them."""
    bars: list[Bar] = []
    started: float | None = None
    model_open: list[tuple[float, dict[str, Any]]] = []
    tools_open: dict[str, list[tuple[float, dict[str, Any]]]] = defaultdict(list)
    for e in events:
        kind, data, t = e.get("event"), e.get("data") or {}, at(e)
        if kind == "subtask.started":
            started = t
        elif kind == "subtask.finished" and started is not None:
            bars.append(
                Bar(lane, RUNNING, started, t, data.get("status") or "", status=data.get("status") or "")
            )
            started = None
        elif kind == "model.request" and "embeddings" not in data:
            model_open.append((t, data))
        elif kind in ("model.response", "model.error") and model_open:
            t1, req = model_open.pop(0)
            bars.append(_model_bar(lane, t1, t, req, data, failed=kind == "model.error"))
        elif kind == "tool.call":
            tools_open[str(data.get("tool"))].append((t, data))
        elif kind in ("tool.result", "tool.error", "tool.denied", "tool.refused"):
            waiting = tools_open.get(str(data.get("tool")))
            if waiting:
                t1, call = waiting.pop(0)
                ok = kind == "tool.result" and data.get("ok", True)
                args = json.dumps(call.get("args"), ensure_ascii=False)
                bars.append(
                    Bar(lane, TOOL, t1, t, str(call.get("tool")), args[:400], "ok" if ok else "failed")
                )
        elif kind in ("approval", "model.rate_limited"):
            waited = float(data.get("waited_s") or 0.0)
            if kind == "approval":
                verdict = "approved" if data.get("approved") else "refused"
                label = f"approval: {verdict}"
                bars.append(Bar(lane, WAIT_APPROVAL, t - waited, t, label, str(data.get("summary") or "")))
            else:
                bars.append(Bar(lane, WAIT_RATE, t - waited, t, "rate limiter", str(data.get("model") or "")))
        elif kind == "model.retry":
            delay = float(data.get("delay_s") or 0.0)
            bars.append(Bar(lane, RETRY, t, t + delay, "retry backoff", str(data.get("reason") or "")[:300]))
    if started is not None:  # never finished: the process died, or the log ends early
        bars.append(Bar(lane, RUNNING, started, end_of_run, "unfinished", status="interrupted"))
    for t1, req in model_open:
        bars.append(_model_bar(lane, t1, end_of_run, req, {}, failed=True))
    if lane in ("planner", "synthesis") or not any(b.kind == RUNNING for b in bars):
        # Planning and synthesis have no start and finish events: their calls are their span.
        calls = [b for b in bars if b.kind in (MODEL, TOOL)]
        if calls:
            failed = any(b.status == "failed" for b in calls)
            status = "failed" if failed else "succeeded"
            bars.append(
                Bar(
                    lane,
                    RUNNING,
                    min(b.start for b in calls),
                    max(b.end for b in calls),
                    status,
                    status=status,
                )
            )
    return bars


def _model_bar(lane: str, t1: float, t2: float, req: dict, resp: dict, failed: bool) -> Bar:
    model = str(req.get("model") or "model")
    if failed:
        return Bar(lane, MODEL, t1, t2, model, str(resp.get("error") or "no response")[:300], "failed")
    detail = f"{resp.get('input_tokens', 0):,} in, {resp.get('output_tokens', 0):,} out"
    if resp.get("tool_calls"):
        detail += f", asks for {resp['tool_calls']} tool call(s)"
    if resp.get("retries"):
        detail += f", {resp['retries']} retries"
    cost = resp.get("cost_usd")
    detail += f", ${cost:.4f}" if isinstance(cost, int | float) else ", cost unknown"
    return Bar(lane, MODEL, t1, t2, model, detail, "ok")


def _waits_for_turn(events: list[dict[str, Any]], steps: list[dict], bars: list[Bar], at) -> list[Bar]:
    """Before each start: waiting for the subtasks it depends on, then for a free slot
    (--max-parallel). A subtask can be waited for only once it is in the plan and the run began."""
    begun = [at(e) for e in events if e.get("event") == "run.started"]
    # A streamed plan: each subtask exists from the moment its part of the plan arrived.
    added = {e.get("subtask_id"): at(e) for e in events if e.get("event") == "plan.subtask_added"}
    finished: dict[str, list[float]] = defaultdict(list)
    for b in bars:
        if b.kind == RUNNING:
            finished[b.lane].append(b.end)
    out = []
    for s in steps:
        for run in [b for b in bars if b.lane == s["id"] and b.kind == RUNNING]:
            appear = max([t for t in begun if t <= run.start + 1e-9] or [run.start])
            appear = max(appear, added.get(s["id"], appear))
            deps = [
                f for d in s.get("depends_on", []) for f in finished.get(d, []) if appear <= f <= run.start
            ]
            ready = max(deps, default=appear)
            if ready - appear >= MIN_WAIT_S:
                names = ", ".join(s.get("depends_on", []))
                out.append(Bar(s["id"], WAIT_DEPENDENCY, appear, ready, f"waits for {names}"))
            if run.start - ready >= MIN_WAIT_S:
                out.append(
                    Bar(s["id"], WAIT_SLOT, ready, run.start, "waits for a free slot (--max-parallel)")
                )
    return out


def peak_overlap(bars: list[Bar]) -> int:
    """The most bars running at one moment (one ending as another starts does not overlap)."""
    points = sorted([(b.start, 1) for b in bars] + [(b.end, -1) for b in bars], key=lambda p: (p[0], p[1]))
    now = peak = 0
    for _, step in points:
        now += step
        peak = max(peak, now)
    return peak


def _problems(events: list[dict[str, Any]], at) -> list[dict[str, Any]]:
    out = []
    for e in events:
        data = e.get("data") or {}
        refused = e.get("event") == "approval" and not data.get("approved")
        failed = e.get("event") == "tool.result" and data.get("ok") is False
        if e.get("event") in PROBLEM_EVENTS or refused or failed:
            out.append(
                {"at": at(e), "subtask_id": e.get("subtask_id"), "event": e.get("event"), "data": data}
            )
    return out
