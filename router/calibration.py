"""The estimate calibrated on past runs: per agent (and agent:model, read-only or writing) how
many iterations its subtasks took and how many tokens they read and wrote, from the recorded
model calls of the most recent subtasks that ran to an end.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from planner.estimate import TOOL_RESULT_TOKENS, AgentStats
from runtime.store import Store

MIN_OBSERVATIONS = 3
"""Subtasks an agent (or agent:model) must have run before its history replaces the defaults."""
RECENT_OBSERVATIONS = 50


@dataclass
class _Observation:
    model: str
    inputs: list[int]
    outputs: list[int]
    reasoning: list[int]
    result: str


def history_stats(store: Store, min_observations: int = MIN_OBSERVATIONS) -> dict[str, AgentStats]:
    """Observed behaviour per agent and per "agent:model", from the most recent subtasks that ran
    to an end; a key appears only once it has `min_observations` of them."""
    observed: dict[tuple[str, str], _Observation] = {}
    order: list[tuple[str, str, str]] = []
    for row in store.calibration_rows():
        key = (row["run_id"], row["subtask_id"])
        if key not in observed:
            observed[key] = _Observation(row["model"], [], [], [], row["result"] or "")
            order.append((*key, row["agent"]))
        observed[key].inputs.append(row["input_tokens"] or 0)
        observed[key].outputs.append(row["output_tokens"] or 0)
        observed[key].reasoning.append(row["reasoning_tokens"] or 0)
    buckets: dict[str, list[_Observation]] = {}
    plans: dict[str, dict[str, bool]] = {}
    for run_id, sid, agent in order:
        obs = observed[(run_id, sid)]
        if run_id not in plans:
            plan = (store.get_run(run_id) or {}).get("plan") or {}
            every = [*(h["plan"] for h in store.plans(run_id)), plan]  # a replanned run's earlier plans too
            plans[run_id] = {t["id"]: bool(t.get("read_only")) for p in every for t in p.get("subtasks", [])}
        # Read-only and writing subtasks of one agent behave differently: learn them apart too.
        mode = "ro" if plans[run_id].get(sid) else "rw"
        for k in (agent, f"{agent}:{obs.model}", f"{agent}|{mode}", f"{agent}:{obs.model}|{mode}"):
            bucket = buckets.setdefault(k, [])
            if len(bucket) < RECENT_OBSERVATIONS:
                bucket.append(obs)
    return {k: _stats(v) for k, v in buckets.items() if len(v) >= min_observations}


def _stats(observations: list[_Observation]) -> AgentStats:
    from runtime.tokens import count_text

    calls = sum(len(o.inputs) for o in observations)
    # Output tokens include the reasoning (it is billed as output); learn the two apart.
    reasoning_per_iter = sum(sum(o.reasoning) for o in observations) / calls
    out_per_iter = sum(sum(o.outputs) for o in observations) / calls - reasoning_per_iter
    # Growth: how much longer each request of a conversation is than the one before.
    growths = [(o.inputs[-1] - o.inputs[0]) / (len(o.inputs) - 1) for o in observations if len(o.inputs) > 1]
    return AgentStats(
        iterations=calls / len(observations),
        output_per_iteration=out_per_iter,
        reasoning_per_iteration=reasoning_per_iter,
        growth_per_iteration=statistics.fmean(growths) if growths else out_per_iter + TOOL_RESULT_TOKENS,
        result_tokens=statistics.fmean(count_text(o.result) for o in observations),
        runs=len(observations),
    )
